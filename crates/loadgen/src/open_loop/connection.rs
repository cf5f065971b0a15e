//! One connection of the event loop: its state, the write of a request (resumed when the
//! socket takes only part of it) and the reads that collect its reply.
//!
//! The connection does IO and keeps what it saw; it never reads the clock except to stamp
//! the first byte of a write, and it judges nothing: the loop judges what was received
//! (with [`crate::exchange::Expectation::judge`]) once per chunk of events, after reading
//! the clock once for all of them.

use std::io::{self, Write};
use std::os::fd::AsRawFd;
use std::time::Instant;

use mio::net::TcpStream;

use crate::arrival::{self, Stamp};
use crate::net::{Phase, classify};
use crate::report::FailureKind;

/// Where a connection is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// Its non-blocking connect is under way.
    Connecting {
        /// When the connect began.
        began: Instant,
        /// One of the connections opened before the schedule (counted in `all_connected`).
        first: bool,
    },
    /// A request is being written or its reply read.
    Busy(Request),
    /// Waiting for a request, in the loop's idle queue since then.
    Idle {
        /// When it became idle: its last reply's arrival (or the read, without a stamp).
        since: Instant,
    },
    /// Done for the phase, kept open until the loop ends (closing is left to the end, so
    /// that it never delays the reading of the last replies).
    Parked,
}

/// A request on its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Request {
    /// `None` for the unmeasured request that primes a connection before the schedule.
    pub scheduled: Option<Scheduled>,
    /// Bytes of the request written so far.
    pub written: usize,
    /// When its first byte was written.
    pub sent: Option<Instant>,
}

/// A scheduled request's two times before its send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scheduled {
    /// Its due time in the schedule.
    pub due: Instant,
    /// The later of `due` and the moment its connection became idle.
    pub ready: Instant,
}

/// One client socket and what it has received.
#[derive(Debug)]
pub struct Connection {
    /// The socket, registered readable and writable (edge-triggered).
    pub stream: TcpStream,
    /// Where it is.
    pub state: State,
    /// Scheduled requests it may still carry.
    pub requests_left: u64,
    /// Bytes received and not yet taken by a reply.
    pub received: Vec<u8>,
    /// The peer closed its side (a read returned 0).
    pub peer_closed: bool,
    /// The kernel's receive timestamp of the data last read, when it gave one: the
    /// arrival of the reply that data ends ([`crate::arrival`]).
    pub arrived: Option<Stamp>,
    /// A read or write failed; the failure is counted when the connection is next judged.
    pub error: Option<FailureKind>,
    /// Unique in the loop: tells this connection from a later one in the same slab slot.
    pub id: u64,
    /// The ticket of its live deadline ([`super::deadlines`]).
    pub ticket: u64,
}

impl Connection {
    /// A connection whose connect has begun.
    pub fn connecting(stream: TcpStream, state: State, requests_left: u64, id: u64) -> Self {
        Connection {
            stream,
            state,
            requests_left,
            received: Vec::new(),
            peer_closed: false,
            arrived: None,
            error: None,
            id,
            ticket: 0,
        }
    }

    /// Whether a deadline is running for it (connecting, or a request in flight).
    pub fn timed(&self) -> bool {
        matches!(self.state, State::Connecting { .. } | State::Busy(_))
    }

    /// Writes what is left of `request` until it is all written or the socket takes no
    /// more (then the loop resumes at its next writable event). `Ok(true)` once all of it is
    /// written.
    ///
    /// # Errors
    /// The write's failure kind (a reset, a broken pipe).
    pub fn write_rest(&mut self, request: &[u8]) -> Result<bool, FailureKind> {
        let State::Busy(ref mut inflight) = self.state else {
            return Ok(true);
        };
        while inflight.written < request.len() {
            let stamp = Instant::now();
            match self.stream.write(&request[inflight.written..]) {
                Ok(0) => return Err(FailureKind::Other),
                Ok(n) => {
                    inflight.written += n;
                    inflight.sent.get_or_insert(stamp);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(classify(&e, Phase::Exchange)),
            }
        }
        Ok(true)
    }

    /// Reads what has arrived into `received` through `scratch`, keeping the kernel's
    /// timestamp of the last data read in `arrived`. One read is enough unless it filled
    /// `scratch` or the peer has closed (`read_closed`: read on to see the end): a shorter
    /// read of a stream socket has emptied its receive queue, and whatever arrives later is
    /// a new edge. Reading until `EAGAIN` would cost one more `recvmsg` per reply.
    pub fn read_available(&mut self, scratch: &mut [u8], read_closed: bool) {
        loop {
            match arrival::recv(self.stream.as_raw_fd(), scratch) {
                Ok((0, _)) => {
                    self.peer_closed = true;
                    return;
                }
                Ok((n, stamp)) => {
                    self.received.extend_from_slice(&scratch[..n]);
                    self.arrived = stamp;
                    if n < scratch.len() && !read_closed {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => {
                    self.error.get_or_insert(classify(&e, Phase::Exchange));
                    return;
                }
            }
        }
    }

    /// Whether its connect has completed: `Ok(true)` once established, `Ok(false)` on a
    /// spurious wake-up while it is still under way.
    ///
    /// # Errors
    /// The connect's failure kind (refused, no port, ...).
    pub fn connect_result(&self) -> Result<bool, FailureKind> {
        let failed = |e: io::Error| classify(&e, Phase::Connect);
        if let Some(error) = self.stream.take_error().map_err(failed)? {
            return Err(failed(error));
        }
        match self.stream.peer_addr() {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::NotConnected => Ok(false),
            Err(e) => Err(failed(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Interest, Poll, Token};
    use std::time::Duration;

    /// A non-blocking client socket and the blocking peer it is connected to.
    fn socket_pair() -> (std::net::TcpStream, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let client = std::net::TcpStream::connect(listener.local_addr().expect("address"))
            .expect("connects");
        client.set_nonblocking(true).expect("non-blocking");
        let (peer, _) = listener.accept().expect("accepts");
        (client, peer)
    }

    fn written(connection: &Connection) -> usize {
        match connection.state {
            State::Busy(request) => request.written,
            other => panic!("not busy: {other:?}"),
        }
    }

    #[test]
    fn a_write_the_socket_takes_only_part_of_resumes_on_writable_events_until_done() {
        let (client, mut peer) = socket_pair();
        let mut poll = Poll::new().expect("a poll");
        let mut stream = TcpStream::from_std(client);
        let interest = Interest::READABLE | Interest::WRITABLE;
        poll.registry()
            .register(&mut stream, Token(0), interest)
            .expect("registers");
        let request = Request {
            scheduled: None,
            written: 0,
            sent: None,
        };
        let mut connection = Connection::connecting(stream, State::Busy(request), 1, 1);
        let bytes = vec![b'x'; 16 << 20];
        // Nobody reads yet: the socket's buffers fill and the write stops at EAGAIN.
        assert_eq!(connection.write_rest(&bytes), Ok(false));
        let first = written(&connection);
        assert!(
            first > 0 && first < bytes.len(),
            "{first} of {} bytes",
            bytes.len()
        );
        let reader = std::thread::spawn(move || {
            let mut sink = vec![0; bytes.len()];
            std::io::Read::read_exact(&mut peer, &mut sink).map(|()| sink)
        });
        let bytes = vec![b'x'; 16 << 20];
        let mut events = Events::with_capacity(8);
        let mut done = false;
        while !done {
            poll.poll(&mut events, Some(Duration::from_secs(10)))
                .expect("polls");
            assert!(!events.is_empty(), "no writable event within 10 s");
            if events.iter().any(|event| event.is_writable()) {
                done = connection.write_rest(&bytes).expect("writes");
            }
        }
        assert_eq!(written(&connection), bytes.len());
        let received = reader.join().expect("joins").expect("reads it all");
        assert_eq!(received, bytes);
    }

    #[test]
    fn one_read_takes_what_has_arrived_and_a_close_is_seen() {
        let (client, mut peer) = socket_pair();
        std::io::Write::write_all(&mut peer, b"AB\nCD\n").expect("writes");
        drop(peer);
        let idle = State::Idle {
            since: Instant::now(),
        };
        let mut connection = Connection::connecting(TcpStream::from_std(client), idle, 1, 1);
        let mut scratch = [0; 4];
        // The peer's close is known (as epoll's read-closed flag says): read on to the end.
        while !connection.peer_closed {
            connection.read_available(&mut scratch, true);
        }
        assert_eq!(connection.received, b"AB\nCD\n");
        assert_eq!(connection.error, None);
    }
}
