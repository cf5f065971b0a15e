//! Line and raw framing under arbitrary byte streams and chunkings, checked against a model.
//!
//! The input is read as a small header that picks a configuration, then a list of chunks:
//!
//! | byte | meaning |
//! |---|---|
//! | 0 | bit 0: raw framing (else line); bits 1–2: the fixed delay in ms (0 answers at once); bit 3: the connection ends with a server shutdown instead of the client's half-close |
//! | 1 | `max_line_bytes` = 1 + byte % 32, small so that the limit is hit often |
//! | 2 | `max_output_bytes` = 1 + byte % 64, small so that backpressure is hit often |
//! | 3 | the most a write takes at once = 1 + byte % 16 (partial writes) |
//! | then | records `[len][len bytes]`: one read of the server each; `len` 0 lets time pass to the next deadline |
//!
//! A connection is driven by the protocol contract (`echo_core::protocol`): read only while
//! `wants_read`, write whatever `output` holds, fire `next_timeout`, and after the last chunk a
//! half-close or a shutdown. What it wrote must equal [`expected`], its stats must count the same replies
//! and `ERR` lines, and it must end closed. The invariant that keeps servers from hanging is
//! checked on the way: a connection that refuses reads always has output or a deadline.

use std::time::{Duration, Instant};

use echo_core::{Config, DelayModel, EchoProtocol, Framing, Protocol};

/// Steps after which a connection that has neither closed nor run out of input is taken to
/// hang; far more than any input of a fuzzer's size needs.
const MAX_STEPS: usize = 1_000_000;

/// One fuzz input, decoded.
#[derive(Debug, Clone, PartialEq)]
pub struct Case {
    /// The configuration the connection runs with.
    pub config: Config,
    /// The most bytes one write takes.
    pub write_max: usize,
    /// The server's reads, in order; an empty one lets time pass instead.
    pub chunks: Vec<Vec<u8>>,
    /// The end: the server shuts down (`true`) or the client half-closes.
    pub shutdown: bool,
}

impl Case {
    /// Decodes fuzz bytes (see the module docs); short or truncated input still decodes.
    pub fn decode(data: &[u8]) -> Case {
        let header = |i: usize| data.get(i).copied().unwrap_or(0);
        let flags = header(0);
        let config = Config {
            framing: if flags & 1 == 1 {
                Framing::Raw
            } else {
                Framing::Line
            },
            delay: DelayModel::Fixed(Duration::from_millis(u64::from((flags >> 1) & 3))).into(),
            max_line_bytes: 1 + usize::from(header(1) % 32),
            max_output_bytes: 1 + usize::from(header(2) % 64),
            idle_timeout: None,
            ..Config::default()
        };
        let write_max = 1 + usize::from(header(3) % 16);
        let mut chunks = Vec::new();
        let mut rest = data.get(4..).unwrap_or_default();
        while let Some((&len, tail)) = rest.split_first() {
            let len = usize::from(len).min(tail.len());
            chunks.push(tail[..len].to_vec());
            rest = &tail[len..];
        }
        Case {
            config,
            write_max,
            chunks,
            shutdown: flags & 8 == 8,
        }
    }
}

/// What the wire protocol (`docs/PROTOCOL.md`) says a client receives, and how many of its
/// lines are replies and how many `ERR` lines.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Every byte the client reads before the server closes.
    pub bytes: Vec<u8>,
    /// Requests answered with their upper case.
    pub replies: u64,
    /// `ERR` lines.
    pub errors: u64,
}

impl Expected {
    fn answer(&mut self, request: &[u8], max_line_bytes: usize, end: &[u8]) -> bool {
        if request.len() > max_line_bytes {
            self.errors += 1;
            self.bytes.extend_from_slice(
                format!("ERR line too long (limit {max_line_bytes} bytes)").as_bytes(),
            );
            self.bytes.extend_from_slice(end);
            return false;
        }
        match std::str::from_utf8(request) {
            Ok(text) => {
                self.replies += 1;
                self.bytes.extend_from_slice(text.to_uppercase().as_bytes());
            }
            Err(_) => {
                self.errors += 1;
                self.bytes.extend_from_slice(b"ERR invalid utf-8");
            }
        }
        self.bytes.extend_from_slice(end);
        true
    }
}

/// The model: line framing answers each `\n`-terminated line in order and stops after a line
/// over the limit; an unterminated last line is answered at a half-close, and dropped at a
/// shutdown unless it is already over the limit. Raw framing answers the first read as one
/// message, without a newline, and nothing else.
pub fn expected(case: &Case) -> Expected {
    let max = case.config.max_line_bytes;
    let mut expected = Expected::default();
    match case.config.framing {
        Framing::Raw => {
            if let Some(first) = case.chunks.iter().find(|c| !c.is_empty()) {
                expected.answer(first, max, b"");
            }
        }
        Framing::Line => {
            let stream = case.chunks.concat();
            let mut lines = stream.split(|&b| b == b'\n').peekable();
            while let Some(line) = lines.next() {
                let last = lines.peek().is_none();
                if last && (line.is_empty() || (case.shutdown && line.len() <= max)) {
                    break;
                }
                if !expected.answer(line, max, b"\n") {
                    break;
                }
            }
        }
    }
    expected
}

/// One connection driven by the contract, with a hand-moved clock.
struct Connection {
    protocol: EchoProtocol,
    now: Instant,
    write_max: usize,
    written: Vec<u8>,
    steps: usize,
}

impl Connection {
    fn step(&mut self) {
        self.steps += 1;
        assert!(
            self.steps < MAX_STEPS,
            "connection made no progress in {MAX_STEPS} steps"
        );
    }

    /// Writes all pending output, at most `write_max` bytes a write.
    fn write(&mut self) {
        while !self.protocol.is_closed() {
            if self.protocol.output().is_empty() {
                return;
            }
            self.step();
            let out = self.protocol.output();
            let n = out.len().min(self.write_max);
            self.written.extend_from_slice(&out[..n]);
            self.protocol.output_written(n, self.now);
        }
    }

    /// Lets time pass to the next deadline and fires it; false when there is none.
    fn wait(&mut self) -> bool {
        let Some(timeout) = self.protocol.next_timeout() else {
            return false;
        };
        self.step();
        self.now = self.now.max(timeout.at);
        self.protocol.timeout(self.now);
        self.write();
        true
    }

    /// Waits out backpressure, then hands the chunk over; false once the connection closed.
    fn read(&mut self, chunk: &[u8]) -> bool {
        loop {
            if self.protocol.is_closed() {
                return false;
            }
            if self.protocol.wants_read() {
                self.protocol.data_received(chunk, self.now);
                self.write();
                return true;
            }
            assert!(
                self.wait(),
                "refuses reads with no output and no deadline: it would hang"
            );
        }
    }
}

/// Drives one connection through `data` (see the module docs) and panics where echo-core
/// disagrees with the model or breaks the contract.
pub fn check(data: &[u8]) {
    let case = Case::decode(data);
    let mut conn = Connection {
        protocol: EchoProtocol::new(&case.config, 0),
        now: Instant::now(),
        write_max: case.write_max,
        written: Vec::new(),
        steps: 0,
    };
    conn.protocol.connection_made(conn.now);
    for chunk in &case.chunks {
        if chunk.is_empty() {
            conn.wait();
        } else if !conn.read(chunk) {
            break;
        }
    }
    if case.shutdown {
        // A give-up instant past every delay of the case: all of it is answered.
        let give_up_at = conn.now + std::time::Duration::from_secs(3600);
        conn.protocol.shutdown(conn.now, give_up_at);
    } else {
        conn.protocol.eof_received(conn.now);
    }
    conn.write();
    while !conn.protocol.is_closed() {
        assert!(conn.wait(), "open at its end with nothing to wait for");
    }
    let stats = conn.protocol.stats();
    conn.protocol.connection_lost();
    let want = expected(&case);
    assert_eq!(
        conn.written.escape_ascii().to_string(),
        want.bytes.escape_ascii().to_string(),
        "written bytes differ from the model for {case:?}"
    );
    assert_eq!(stats.requests, want.replies, "replies counted for {case:?}");
    assert_eq!(stats.errors, want.errors, "ERR lines counted for {case:?}");
}
