//! One accepted connection: a socket, its [`Driver`], the operations it has in the ring, its
//! send buffer and its one timer.
//!
//! This is server-mio's `connection.rs` turned inside out. A readiness loop asks "can I read
//! now?" and reads; a completion loop submits the read first and hears later that it happened.
//! So the connection never does IO itself: [`Connection::drive`] does the driver's steps and
//! says which operations to submit ([`Submit`]), and the loop tells it of their completions
//! ([`Connection::received`], [`Connection::sent`], [`Connection::cancelled`]). That keeps
//! the state machine testable without a ring.
//!
//! # What the driver's steps become
//!
//! - [`Step::Wait`] with `read`: have a receive submitted; one already in flight satisfies it
//!   (the driver's contract for completion loops). A receive in flight when the protocol stops
//!   wanting input (backpressure) is left to complete: it brings at most one buffer (2 KiB)
//!   more, which the protocol takes within its limits.
//! - [`Step::Write`]: copy the output into the connection's send buffer, submit one send and
//!   mark the socket [`Driver::write_blocked`] until its completion, so that the driver never
//!   asks for a second send while the kernel owns the buffer.
//! - [`Step::Spend`] and [`Step::FireTimeout`]: as in every server. With `--offload N`, a
//!   spend is not done here: the driver marks it offloaded and [`Submit::Offload`] asks the
//!   loop to hand it to server-common's pool; the pool's completion ends it
//!   ([`Driver::offload_done`]). It is not an operation of the ring and is not counted in
//!   [`Connection::in_flight`]: it holds no memory of the connection, and a completion for a
//!   connection gone from its slot is recognised by its ticket and dropped.
//! - [`Step::Close`] or an error: cancel whatever is in flight, and close only once every
//!   completion (the cancellations' own included) has arrived.
//!
//! # Invariants (what keeps the kernel off freed memory)
//!
//! - The send buffer is not touched (written, moved, dropped) while a send is in flight; the
//!   loop builds the send from [`Connection::send_buffer`] and the connection refills it only
//!   after [`Connection::sent`].
//! - [`Connection::in_flight`] counts every operation submitted for this connection and not yet
//!   completed; [`Progress::Closed`] (the loop may free the slot) comes only when it is zero.
//!   Since a slot is never reused while a completion can still name it, a completion's
//!   `user_data` (slot key and operation) always finds the connection it was made for.
//! - Receives own no connection memory: their buffer comes from the loop's provided-buffer ring.

use std::io;
use std::os::fd::{AsRawFd, OwnedFd};
use std::time::Instant;

use echo_core::Timeout;
use server_common::{Driver, Step, TimerKey, Timers};

/// An operation a connection has in the ring; tagged into the completion's `user_data`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// A receive into a provided buffer.
    Recv,
    /// A send from the connection's send buffer.
    Send,
    /// An `AsyncCancel` of this connection's receive or send.
    Cancel,
}

/// What the loop must submit for a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Submit {
    /// A receive with buffer selection.
    Recv,
    /// A send of [`Connection::send_buffer`].
    Send,
    /// An `AsyncCancel` of the connection's operation `Op` (a receive or a send).
    Cancel(Op),
    /// Not for the ring: a `block` or `spin` delay for the loop's offload pool.
    Offload(Timeout),
}

/// How a turn of [`Connection::drive`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Waiting for a completion or a timer.
    Open,
    /// Closing: waiting for the completions of what is still in flight.
    Closing,
    /// Closed with nothing in flight: the loop calls [`Connection::close`] and frees the slot.
    Closed,
}

/// What a completed receive brought.
#[derive(Debug)]
pub enum Received<'a> {
    /// Bytes (never empty).
    Data(&'a [u8]),
    /// End of stream.
    Eof,
    /// The loop's buffers ran out: submit the receive again later.
    NoBuffer,
    /// The receive failed (a reset), or was cancelled.
    Failed(io::Error),
}

/// One connection's socket, driver, operations in flight and timer.
#[derive(Debug)]
pub struct Connection {
    fd: OwnedFd,
    driver: Driver,
    /// Owned by the kernel while `send_in_flight`.
    send_buffer: Vec<u8>,
    recv_in_flight: bool,
    send_in_flight: bool,
    cancels_in_flight: u8,
    /// The receive came back `ENOBUFS`; the loop submits it again after this turn.
    recv_starved: bool,
    /// A completion said the socket broke; the next [`Connection::drive`] closes with it.
    broken: Option<io::Error>,
    /// The loop asked for a close ([`Connection::close_now`]); the next drive starts it.
    close_requested: bool,
    /// Set once the connection is closing; the error, if it broke.
    closing: Option<Option<io::Error>>,
    timer: Option<TimerKey>,
    /// `block` and `spin` delays go to the loop's offload pool ([`Submit::Offload`]).
    offloading: bool,
}

impl Connection {
    /// Wraps a just-accepted socket and its driver (asyncio: the transport, whose creation
    /// calls `connection_made`).
    pub fn new(fd: OwnedFd, driver: Driver) -> Connection {
        Connection {
            fd,
            driver,
            send_buffer: Vec::new(),
            recv_in_flight: false,
            send_in_flight: false,
            cancels_in_flight: 0,
            recv_starved: false,
            broken: None,
            close_requested: false,
            closing: None,
            timer: None,
            offloading: false,
        }
    }

    /// From now on `block` and `spin` delays are asked of the loop's offload pool
    /// ([`Submit::Offload`]) instead of being spent on the loop's thread.
    pub fn offload_spends(&mut self) {
        self.offloading = true;
    }

    /// The connection's driver, for what the loop asks of it directly (its offload ticket).
    pub fn driver(&self) -> &Driver {
        &self.driver
    }

    /// The connection's driver, to hand it an offloaded spend's completion
    /// ([`Driver::offload_done`]).
    pub fn driver_mut(&mut self) -> &mut Driver {
        &mut self.driver
    }

    /// The socket's descriptor, to build submissions.
    pub fn fd(&self) -> io_uring::types::Fd {
        io_uring::types::Fd(self.fd.as_raw_fd())
    }

    /// The bytes of the send to submit ([`Submit::Send`]); the kernel owns them until
    /// [`Connection::sent`].
    pub fn send_buffer(&self) -> &[u8] {
        &self.send_buffer
    }

    /// Operations submitted and not yet completed.
    pub fn in_flight(&self) -> usize {
        usize::from(self.recv_in_flight)
            + usize::from(self.send_in_flight)
            + usize::from(self.cancels_in_flight)
    }

    /// Does the driver's steps until the connection waits, pushing what to submit onto `out`:
    /// fires due timeouts, starts a send of pending output, spends `block` and `spin` delays on
    /// the loop thread (or, offloading, asks for them with [`Submit::Offload`]), and keeps a
    /// receive submitted while the protocol wants bytes.
    pub fn drive(&mut self, mut now: Instant, out: &mut Vec<Submit>) -> Progress {
        if let Some(e) = self.broken.take() {
            self.begin_close(Some(e), out);
        }
        if std::mem::take(&mut self.close_requested) {
            self.begin_close(None, out);
        }
        while self.closing.is_none() {
            let step = match self.driver.next_step(now) {
                Ok(step) => step,
                Err(e) => {
                    self.begin_close(Some(e), out);
                    break;
                }
            };
            match step {
                Step::Close => self.begin_close(None, out),
                Step::FireTimeout => self.driver.timeout(now),
                Step::Write { .. } => self.start_send(out),
                Step::Spend(timeout) if self.offloading => {
                    self.driver.offload();
                    out.push(Submit::Offload(timeout));
                }
                Step::Spend(timeout) => {
                    self.driver.spend(timeout);
                    now = Instant::now();
                }
                Step::Wait(wait) => {
                    if wait.read && !self.recv_in_flight && !self.recv_starved {
                        self.recv_in_flight = true;
                        out.push(Submit::Recv);
                    }
                    return Progress::Open;
                }
            }
        }
        if self.in_flight() == 0 {
            Progress::Closed
        } else {
            Progress::Closing
        }
    }

    fn start_send(&mut self, out: &mut Vec<Submit>) {
        debug_assert!(!self.send_in_flight, "the driver asked for a second send");
        self.send_buffer.clear();
        self.send_buffer.extend_from_slice(self.driver.output());
        self.send_in_flight = true;
        self.driver.write_blocked();
        out.push(Submit::Send);
    }

    /// Asks for a graceful close whatever the protocol's state (the shutdown deadline passed):
    /// the next [`Connection::drive`] cancels what is in flight and closes once it is back.
    pub fn close_now(&mut self) {
        self.close_requested = true;
    }

    /// Starts closing: cancels what is in flight. The connection is [`Progress::Closed`] once
    /// every completion has come back.
    fn begin_close(&mut self, error: Option<io::Error>, out: &mut Vec<Submit>) {
        if self.closing.is_some() {
            return;
        }
        self.closing = Some(error);
        for (in_flight, op) in [
            (self.recv_in_flight, Op::Recv),
            (self.send_in_flight, Op::Send),
        ] {
            if in_flight {
                self.cancels_in_flight += 1;
                out.push(Submit::Cancel(op));
            }
        }
    }

    /// A receive completed (asyncio: `data_received`, `eof_received`). A receive that brings
    /// anything after closing began is dropped.
    pub fn received(&mut self, outcome: Received<'_>, now: Instant) {
        self.recv_in_flight = false;
        if self.closing.is_some() {
            return;
        }
        match outcome {
            Received::Data(bytes) => self.driver.data_received(bytes, now),
            Received::Eof => self.driver.eof_received(now),
            Received::NoBuffer => self.recv_starved = true,
            Received::Failed(e) => self.broken = Some(e),
        }
    }

    /// Whether the receive came back for want of a buffer and is to be submitted again.
    pub fn take_starved(&mut self) -> bool {
        std::mem::take(&mut self.recv_starved)
    }

    /// A send completed with `result` (bytes sent, or the error): the driver hears how much
    /// was written, and that the socket may take more.
    pub fn sent(&mut self, result: io::Result<usize>, now: Instant) {
        self.send_in_flight = false;
        if self.closing.is_some() {
            return;
        }
        match result {
            Ok(0) => self.broken = Some(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                self.driver.written(n.min(self.send_buffer.len()), now);
                self.driver.writable();
            }
            Err(e) => self.broken = Some(e),
        }
    }

    /// An `AsyncCancel` for this connection completed (found its target or not: either way
    /// the target's own completion comes, or came, separately).
    pub fn cancelled(&mut self) {
        self.cancels_in_flight = self.cancels_in_flight.saturating_sub(1);
    }

    /// A deadline passed (asyncio: a `call_at` callback). `fired` is the key of the timer that
    /// fired, if it was this connection's, so it is not cancelled twice.
    pub fn timeout(&mut self, fired: Option<TimerKey>, now: Instant) {
        if fired.is_some() && fired == self.timer {
            self.timer = None;
        }
        self.driver.timeout(now);
    }

    /// Keeps one armed timer no later than the protocol's deadline (none once closing); see
    /// [`Timers::rearm`].
    pub fn rearm<T>(&mut self, timers: &mut Timers<T>, value: impl FnOnce() -> T) {
        let wanted = match self.closing {
            None => self.driver.next_timeout().map(|t| t.at),
            Some(_) => None,
        };
        timers.rearm(&mut self.timer, wanted, value);
    }

    /// The server is shutting down: answer what was received, then close.
    pub fn shutdown(&mut self, now: Instant) {
        self.driver.shutdown(now);
    }

    /// Whether the protocol wants bytes and no receive is in flight: a shutdown reads such a
    /// socket at once ([`Connection::read_now`]), since no completion will bring its bytes.
    pub fn wants_read_now(&self) -> bool {
        self.closing.is_none()
            && self.broken.is_none()
            && !self.recv_in_flight
            && self.driver.wants_read()
    }

    /// Reads what the socket already holds, without waiting (`MSG_DONTWAIT`), into `scratch`:
    /// for a shutdown, where "requests already received" means received by the machine.
    pub fn read_now(&mut self, scratch: &mut [u8], now: Instant) {
        while self.wants_read_now() {
            match recv_now(&self.fd, scratch) {
                Ok(0) => self.driver.eof_received(now),
                Ok(n) => self.driver.data_received(&scratch[..n], now),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    self.broken = Some(e);
                    return;
                }
            }
        }
    }

    /// Ends the connection (asyncio: `connection_lost`) through [`Driver::finish`], returning
    /// its timer for the caller to cancel. Call it only once [`Connection::drive`] said
    /// [`Progress::Closed`]. A graceful end sends FIN and drains what the client already sent,
    /// so that closing does not turn into a reset that could destroy the last reply in flight.
    pub fn close(mut self) -> Option<TimerKey> {
        debug_assert_eq!(self.in_flight(), 0, "closed with operations in flight");
        let error = self.closing.take().flatten();
        if error.is_none() {
            // SAFETY: shutting down a descriptor this value owns.
            unsafe { libc::shutdown(self.fd.as_raw_fd(), libc::SHUT_WR) };
            let mut sink = [0u8; 4096];
            for _ in 0..64 {
                match recv_now(&self.fd, &mut sink) {
                    Ok(n) if n > 0 => {}
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    _ => break,
                }
            }
        }
        self.driver.finish(error.as_ref());
        self.timer
    }
}

/// One `recv(MSG_DONTWAIT)` on `fd`.
fn recv_now(fd: &OwnedFd, buf: &mut [u8]) -> io::Result<usize> {
    // SAFETY: `buf` is valid for writes of `buf.len()` bytes for the duration of the call.
    let n = unsafe {
        libc::recv(
            fd.as_raw_fd(),
            buf.as_mut_ptr().cast(),
            buf.len(),
            libc::MSG_DONTWAIT,
        )
    };
    usize::try_from(n).map_err(|_| io::Error::last_os_error())
}

#[cfg(test)]
mod tests {
    use std::os::fd::FromRawFd;
    use std::time::Duration;

    use echo_core::{Config, DelayModel};
    use server_common::{ServerConfig, Stats};

    use server_common::Ticket;

    use super::*;

    fn connection(delay_ms: u64, max_output_bytes: usize, now: Instant) -> Connection {
        // Any descriptor will do: these tests never reach the socket calls.
        // SAFETY: `dup` returns a fresh descriptor that the OwnedFd then owns.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::dup(0)) };
        let config = ServerConfig {
            protocol: Config {
                delay: DelayModel::Fixed(Duration::from_millis(delay_ms)).into(),
                max_output_bytes,
                ..Config::default()
            },
            ..ServerConfig::default()
        };
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        Connection::new(fd, Driver::new(&config, Stats::new().open(), 0, peer, now))
    }

    fn drive(conn: &mut Connection, now: Instant) -> (Progress, Vec<Submit>) {
        let mut out = Vec::new();
        (conn.drive(now, &mut out), out)
    }

    #[test]
    fn an_offloading_connection_asks_for_the_pool_and_counts_no_ring_operation_for_it() {
        let t0 = Instant::now();
        // SAFETY: `dup` returns a fresh descriptor that the OwnedFd then owns.
        let fd = unsafe { OwnedFd::from_raw_fd(libc::dup(0)) };
        let mut config = ServerConfig::default();
        config.protocol.delay = DelayModel::Fixed(Duration::from_millis(100)).into();
        config.protocol.delay_kind = echo_core::DelayKind::Block;
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let mut conn = Connection::new(fd, Driver::new(&config, Stats::new().open(), 3, peer, t0));
        conn.offload_spends();
        drive(&mut conn, t0);
        conn.received(Received::Data(b"one\n"), t0);
        let (progress, submits) = drive(&mut conn, t0);
        assert_eq!(progress, Progress::Open);
        let [Submit::Offload(spend), Submit::Recv] = submits[..] else {
            panic!("expected the offload and a receive, got {submits:?}");
        };
        assert_eq!(conn.in_flight(), 1, "only the receive is the ring's");
        let stranger = Ticket { key: 0, id: 4 };
        assert!(
            !conn.driver_mut().offload_done(stranger, spend.at),
            "a predecessor's completion"
        );
        assert!(conn.driver().is_offloaded());
        let own = conn.driver().ticket(0);
        assert!(conn.driver_mut().offload_done(own, spend.at));
        assert_eq!(
            drive(&mut conn, spend.at),
            (Progress::Open, vec![Submit::Send])
        );
        assert_eq!(conn.send_buffer(), b"ONE\n");
    }

    #[test]
    fn a_fresh_connection_submits_one_receive_and_no_second_while_it_is_in_flight() {
        let t0 = Instant::now();
        let mut conn = connection(0, 1 << 20, t0);
        assert_eq!(drive(&mut conn, t0), (Progress::Open, vec![Submit::Recv]));
        assert_eq!(drive(&mut conn, t0), (Progress::Open, vec![]));
        assert_eq!(conn.in_flight(), 1);
    }

    #[test]
    fn a_line_received_is_sent_from_the_connections_buffer_and_one_send_at_a_time() {
        let t0 = Instant::now();
        let mut conn = connection(0, 1 << 20, t0);
        drive(&mut conn, t0);
        conn.received(Received::Data(b"ab\n"), t0);
        assert_eq!(
            drive(&mut conn, t0),
            (Progress::Open, vec![Submit::Send, Submit::Recv])
        );
        assert_eq!(conn.send_buffer(), b"AB\n");
        conn.received(Received::Data(b"cd\n"), t0);
        let (_, out) = drive(&mut conn, t0);
        assert_eq!(
            out,
            vec![Submit::Recv],
            "no second send while one is in flight"
        );
        assert_eq!(
            conn.send_buffer(),
            b"AB\n",
            "the buffer in flight is untouched"
        );
        conn.sent(Ok(3), t0);
        let (_, out) = drive(&mut conn, t0);
        assert_eq!(out, vec![Submit::Send]);
        assert_eq!(conn.send_buffer(), b"CD\n");
    }

    #[test]
    fn a_short_send_sends_the_rest_next() {
        let t0 = Instant::now();
        let mut conn = connection(0, 1 << 20, t0);
        drive(&mut conn, t0);
        conn.received(Received::Data(b"hello\n"), t0);
        drive(&mut conn, t0);
        conn.sent(Ok(2), t0);
        let (_, out) = drive(&mut conn, t0);
        assert_eq!(out, vec![Submit::Send]);
        assert_eq!(conn.send_buffer(), b"LLO\n");
    }

    #[test]
    fn no_reply_is_sent_before_the_delay_and_the_timer_brings_it() {
        let t0 = Instant::now();
        let mut conn = connection(100, 1 << 20, t0);
        let mut timers = Timers::new();
        drive(&mut conn, t0);
        conn.received(Received::Data(b"hi\n"), t0);
        let (_, out) = drive(&mut conn, t0);
        assert_eq!(out, vec![Submit::Recv]);
        conn.rearm(&mut timers, || ());
        let due = t0 + Duration::from_millis(100);
        assert_eq!(timers.next_deadline(), Some(due));
        let (key, ()) = timers.pop_expired(due).expect("due at the delay");
        conn.timeout(Some(key), due);
        let (_, out) = drive(&mut conn, due);
        assert_eq!(out, vec![Submit::Send]);
        assert_eq!(conn.send_buffer(), b"HI\n");
    }

    #[test]
    fn end_of_stream_closes_after_the_last_reply_is_sent() {
        let t0 = Instant::now();
        let mut conn = connection(0, 1 << 20, t0);
        drive(&mut conn, t0);
        conn.received(Received::Data(b"last"), t0);
        drive(&mut conn, t0);
        conn.received(Received::Eof, t0);
        assert_eq!(drive(&mut conn, t0), (Progress::Open, vec![Submit::Send]));
        assert_eq!(conn.send_buffer(), b"LAST\n");
        conn.sent(Ok(5), t0);
        assert_eq!(drive(&mut conn, t0), (Progress::Closed, vec![]));
        conn.close();
    }

    #[test]
    fn a_reset_cancels_nothing_more_and_closes_once_the_send_in_flight_completes() {
        let t0 = Instant::now();
        let mut conn = connection(0, 1 << 20, t0);
        drive(&mut conn, t0);
        conn.received(Received::Data(b"x\n"), t0);
        drive(&mut conn, t0);
        conn.received(Received::Failed(io::ErrorKind::ConnectionReset.into()), t0);
        assert_eq!(
            drive(&mut conn, t0),
            (Progress::Closing, vec![Submit::Cancel(Op::Send)])
        );
        conn.sent(Err(io::Error::from_raw_os_error(libc::ECANCELED)), t0);
        assert_eq!(
            drive(&mut conn, t0).0,
            Progress::Closing,
            "the cancel is in flight"
        );
        conn.cancelled();
        assert_eq!(drive(&mut conn, t0), (Progress::Closed, vec![]));
        conn.close();
    }

    #[test]
    fn the_idle_limit_cancels_the_pending_receive_and_waits_for_both_completions() {
        let t0 = Instant::now();
        let mut conn = connection(0, 1 << 20, t0);
        drive(&mut conn, t0);
        let late = t0 + Config::DEFAULT_IDLE_TIMEOUT;
        conn.timeout(None, late);
        let (progress, out) = drive(&mut conn, late);
        assert_eq!((progress, out), (Progress::Open, vec![Submit::Send]));
        assert!(conn.send_buffer().starts_with(b"ERR idle timeout"));
        let n = conn.send_buffer().len();
        conn.sent(Ok(n), late);
        assert_eq!(
            drive(&mut conn, late),
            (Progress::Closing, vec![Submit::Cancel(Op::Recv)])
        );
        conn.cancelled();
        assert_eq!(drive(&mut conn, late).0, Progress::Closing);
        conn.received(
            Received::Failed(io::Error::from_raw_os_error(libc::ECANCELED)),
            late,
        );
        assert_eq!(drive(&mut conn, late).0, Progress::Closed);
        conn.close();
    }

    #[test]
    fn a_receive_starved_of_buffers_is_submitted_again_when_asked() {
        let t0 = Instant::now();
        let mut conn = connection(0, 1 << 20, t0);
        drive(&mut conn, t0);
        conn.received(Received::NoBuffer, t0);
        assert_eq!(drive(&mut conn, t0), (Progress::Open, vec![]));
        assert!(conn.take_starved());
        assert_eq!(drive(&mut conn, t0), (Progress::Open, vec![Submit::Recv]));
    }

    #[test]
    fn backpressure_stops_submitting_receives_until_the_client_reads() {
        let t0 = Instant::now();
        let mut conn = connection(0, 4, t0);
        drive(&mut conn, t0);
        conn.received(Received::Data(b"aaaa\nbbbb\n"), t0);
        let (_, out) = drive(&mut conn, t0);
        assert_eq!(
            out,
            vec![Submit::Send],
            "output above the limit: no receive"
        );
        let mut out = out;
        for _ in 0..4 {
            if out.contains(&Submit::Recv) {
                break;
            }
            let n = conn.send_buffer().len();
            conn.sent(Ok(n), t0);
            out = drive(&mut conn, t0).1;
        }
        assert!(
            out.contains(&Submit::Recv),
            "the client read: receive again"
        );
    }
}
