//! A simulated server for the tests: drives an [`EchoProtocol`] the way the contract in
//! `protocol.rs` says a server must, with a clock the test moves by hand.

// Each test binary that includes this module uses a different part of it.
#![allow(dead_code)]

use std::time::{Duration, Instant};

use echo_core::{Config, EchoProtocol, Protocol};

/// One connection, a fake clock and everything the "server" has written so far.
pub struct Sim {
    pub conn: EchoProtocol,
    pub start: Instant,
    pub now: Instant,
    pub written: Vec<u8>,
}

impl Sim {
    pub fn new(config: &Config) -> Self {
        let start = Instant::now();
        let mut conn = EchoProtocol::new(config, 0);
        conn.connection_made(start);
        Sim {
            conn,
            start,
            now: start,
            written: Vec::new(),
        }
    }

    /// Sends bytes as one chunk, as a server would after one read.
    pub fn send(&mut self, data: &[u8]) {
        assert!(
            self.conn.wants_read(),
            "sent while the protocol refuses reads"
        );
        self.conn.data_received(data, self.now);
    }

    /// Writes all pending output, as a client that always reads would let the server do.
    pub fn flush(&mut self) {
        let out = self.conn.output().to_vec();
        if !out.is_empty() {
            self.written.extend_from_slice(&out);
            self.conn.output_written(out.len(), self.now);
        }
    }

    /// Moves the clock forward to `start + elapsed`, firing every deadline met on the way and
    /// flushing output after each step.
    pub fn run_until(&mut self, elapsed: Duration) {
        let end = self.start + elapsed;
        self.flush();
        while let Some(t) = self.conn.next_timeout() {
            if t.at > end || self.conn.is_closed() {
                break;
            }
            self.now = self.now.max(t.at);
            self.conn.timeout(self.now);
            self.flush();
        }
        self.now = self.now.max(end);
    }

    /// The written output as text.
    pub fn text(&self) -> String {
        String::from_utf8(self.written.clone()).expect("replies are UTF-8")
    }

    pub fn elapsed(&self) -> Duration {
        self.now - self.start
    }
}

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}
