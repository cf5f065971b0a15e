//! One accepted connection: a socket, its [`Driver`] and its one timer.
//!
//! This is the piece asyncio calls a transport (`_SelectorSocketTransport`): it owns the
//! socket and does what the shared driver asks, step by step: reads when the protocol wants
//! bytes and the socket is readable, writes whatever output the protocol holds and, when the
//! kernel buffer is full, tells the driver so and lets the loop wait for writability.
//!
//! mio reports readiness *edges*: an event says "this became readable", once, not "this is
//! readable" every poll. So the connection caches readiness the way tokio does: an event sets
//! `readable` (or tells the driver the socket is writable), and only a `WouldBlock` clears it.
//! Whatever stopped an operation early (the protocol's backpressure, the read budget) can then
//! resume it later without a new event, and nothing is lost between edges.
//!
//! With `--offload N` a `block` or `spin` delay is not spent here: [`Connection::drive`] marks
//! it offloaded in the driver and leaves it for the loop to hand to server-common's pool
//! ([`Connection::take_offload`]); the connection keeps writing and reading meanwhile, and the
//! pool's completion ends the delay ([`Driver::offload_done`]).
//!
//! The type is generic over the stream so that the state machine is tested without sockets.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::time::Instant;

use echo_core::Timeout;
use mio::Interest;
use server_common::{Driver, Step, TimerKey, Timers};

/// Reads one connection may do in one turn before it lets the others run. Without a budget, a
/// client that writes as fast as the loop answers could keep the loop to itself.
pub const READ_BUDGET: usize = 16;

/// What the loop needs from a socket beyond `Read + Write`.
pub trait Stream: Read + Write {
    /// Sends FIN after the bytes already written (a graceful close).
    fn shutdown_write(&self) -> io::Result<()>;
}

impl Stream for mio::net::TcpStream {
    fn shutdown_write(&self) -> io::Result<()> {
        self.shutdown(Shutdown::Write)
    }
}

/// How a turn of [`Connection::drive`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// Nothing more can happen until an event or a timer.
    Idle,
    /// The read budget ran out with the socket still readable: drive it again soon, without
    /// waiting for an event (none will come).
    Yielded,
    /// The protocol is done: the loop closes the connection.
    Closed,
}

/// One connection's socket, driver, readiness cache and timer.
#[derive(Debug)]
pub struct Connection<S> {
    stream: S,
    driver: Driver,
    /// The last read did not end in `WouldBlock` (or an event said there is more).
    readable: bool,
    /// The poll reported the client's FIN (or a reset). Sticky, unlike `readable`: a short
    /// read must not make the loop forget that a final read (of 0 bytes) is still owed, since
    /// no further edge will announce it. tokio keeps `READ_CLOSED` apart for the same reason.
    read_closed: bool,
    /// The armed timer, if any; it may be earlier than the protocol's deadline (see
    /// [`Connection::rearm`]).
    timer: Option<TimerKey>,
    /// Interest currently registered with the poll.
    registered: Interest,
    /// `block` and `spin` delays go to the loop's offload pool instead of holding the loop.
    offloading: bool,
    /// A spend offloaded by the last drive, for the loop to submit.
    to_offload: Option<Timeout>,
}

impl<S: Stream> Connection<S> {
    /// Wraps a just-accepted stream and its driver (asyncio: the transport, whose creation
    /// calls `connection_made`). The stream is assumed writable and not yet readable: a fresh
    /// socket has an empty send buffer, and registering it reports any bytes that already
    /// arrived.
    pub fn new(stream: S, driver: Driver, registered: Interest) -> Self {
        Connection {
            stream,
            driver,
            readable: false,
            read_closed: false,
            timer: None,
            registered,
            offloading: false,
            to_offload: None,
        }
    }

    /// From now on `block` and `spin` delays are left for the loop's offload pool
    /// ([`Connection::take_offload`]) instead of being spent on the loop's thread.
    pub fn offload_spends(&mut self) {
        self.offloading = true;
    }

    /// The spend the last [`Connection::drive`] offloaded, to submit to the pool.
    pub fn take_offload(&mut self) -> Option<Timeout> {
        self.to_offload.take()
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

    /// The socket, to register or deregister it.
    pub fn stream_mut(&mut self) -> &mut S {
        &mut self.stream
    }

    /// Records a readiness event. Errors and hang-ups count as both, so that the next read or
    /// write surfaces them.
    pub fn ready(&mut self, readable: bool, writable: bool) {
        self.readable |= readable;
        if writable {
            self.driver.writable();
        }
    }

    /// Records that the client closed its side (or the connection broke): keep reading until
    /// the read that says so, however short the reads before it.
    pub fn read_closed(&mut self) {
        self.read_closed = true;
    }

    /// Does the driver's steps until one needs an event or a timer: fires due timeouts, writes
    /// pending output, spends `block` and `spin` delays on the loop thread (every other
    /// connection of the loop waits, as behind a blocking call in a coroutine) or, offloading,
    /// leaves them for the pool ([`Connection::take_offload`]), and reads while
    /// the protocol wants bytes and the socket has them (asyncio: `data_received`,
    /// `eof_received`).
    ///
    /// # Errors
    /// Any socket error other than `WouldBlock` and `Interrupted` (a reset, a broken pipe),
    /// or a stuck protocol: the connection is dead and the caller closes it.
    pub fn drive(&mut self, buf: &mut [u8], mut now: Instant) -> io::Result<Progress> {
        let mut budget = READ_BUDGET;
        loop {
            match self.driver.next_step(now)? {
                Step::Close => return Ok(Progress::Closed),
                Step::FireTimeout => self.driver.timeout(now),
                Step::Write { .. } => self.write_once(now)?,
                Step::Spend(timeout) if self.offloading => {
                    self.driver.offload();
                    self.to_offload = Some(timeout);
                }
                Step::Spend(timeout) => {
                    self.driver.spend(timeout);
                    now = Instant::now();
                }
                Step::Wait(wait) => {
                    if !(wait.read && (self.readable || self.read_closed)) {
                        return Ok(Progress::Idle);
                    }
                    if budget == 0 {
                        return Ok(Progress::Yielded);
                    }
                    budget -= 1;
                    self.read_once(buf, now)?;
                }
            }
        }
    }

    fn read_once(&mut self, buf: &mut [u8], now: Instant) -> io::Result<()> {
        match self.stream.read(buf) {
            Ok(0) => self.driver.eof_received(now),
            Ok(n) => {
                // A read that did not fill the buffer emptied the socket: the next read would
                // only say `WouldBlock`, and bytes arriving later bring a new edge. Skipping
                // it saves a syscall per request (tokio does the same).
                self.readable = n == buf.len();
                self.driver.data_received(&buf[..n], now);
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                // After a reported hang-up this does not happen on Linux; should it, trusting
                // edges again is safe, while a sticky flag would retry the read forever.
                self.readable = false;
                self.read_closed = false;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// Writes what the kernel buffer takes; a full buffer keeps the rest in the protocol's
    /// output until the socket is writable again.
    fn write_once(&mut self, now: Instant) -> io::Result<()> {
        match self.stream.write(self.driver.output()) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => {
                // A short write filled the kernel buffer; space freed later brings an edge.
                let short = n < self.driver.output().len();
                self.driver.written(n, now);
                if short {
                    self.driver.write_blocked();
                }
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.driver.write_blocked(),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
        Ok(())
    }

    /// A deadline passed (asyncio: a `call_at` callback firing). `fired` is the key of the
    /// timer that fired, if it was this connection's, so it is not cancelled twice.
    pub fn timeout(&mut self, fired: Option<TimerKey>, now: Instant) {
        if fired.is_some() && fired == self.timer {
            self.timer = None;
        }
        self.driver.timeout(now);
    }

    /// Keeps exactly one armed timer no later than the protocol's deadline; see
    /// [`Timers::rearm`] (an earlier timer is kept, so the idle deadline moving with every
    /// request costs nothing in the queue).
    pub fn rearm<T>(&mut self, timers: &mut Timers<T>, value: impl FnOnce() -> T) {
        let wanted = self.driver.next_timeout().map(|t| t.at);
        timers.rearm(&mut self.timer, wanted, value);
    }

    /// The interest to register now, or `None` when the connection waits for nothing but a
    /// timer (mio cannot register an empty interest, so the caller keeps the old one and
    /// tolerates the spurious event it may bring).
    pub fn wanted_interest(&self) -> Option<Interest> {
        let read = self.driver.wants_read().then_some(Interest::READABLE);
        let write = self.driver.wants_write().then_some(Interest::WRITABLE);
        match (read, write) {
            (Some(r), Some(w)) => Some(r | w),
            (r, w) => r.or(w),
        }
    }

    /// The interest registered with the poll.
    pub fn registered(&self) -> Interest {
        self.registered
    }

    /// Records that `interest` is now registered.
    pub fn set_registered(&mut self, interest: Interest) {
        self.registered = interest;
    }

    /// The server is shutting down: answer what was received, then close.
    pub fn shutdown(&mut self, now: Instant) {
        self.driver.shutdown(now);
    }

    /// Ends the connection (asyncio: `connection_lost`) through [`Driver::finish`], returning
    /// its timer so the caller can cancel it. A graceful end (no `error`) sends FIN and drains
    /// what the client already sent, so that closing does not turn into a reset that could
    /// destroy the last reply in flight.
    pub fn close(mut self, error: Option<&io::Error>) -> Option<TimerKey> {
        if error.is_none() {
            let _ = self.stream.shutdown_write();
            self.discard_unread();
        }
        self.driver.finish(error);
        self.timer
    }

    fn discard_unread(&mut self) {
        let mut sink = [0u8; 4096];
        for _ in 0..64 {
            match self.stream.read(&mut sink) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;
    use std::time::Duration;

    use echo_core::{Config, DelayKind, DelayModel};
    use server_common::{ServerConfig, Stats};

    use server_common::Ticket;

    use super::*;

    /// What the fake socket does on the next read.
    enum Read {
        Data(&'static [u8]),
        WouldBlock,
        Interrupted,
        Eof,
        Reset,
    }

    /// An in-memory socket: reads follow a script, writes accept `capacity` bytes and then
    /// block.
    struct FakeStream {
        reads: VecDeque<Read>,
        written: Vec<u8>,
        capacity: usize,
        interrupt_next_write: bool,
        reads_done: usize,
    }

    impl FakeStream {
        fn new(reads: Vec<Read>) -> Self {
            FakeStream {
                reads: reads.into(),
                written: Vec::new(),
                capacity: usize::MAX,
                interrupt_next_write: false,
                reads_done: 0,
            }
        }
    }

    impl io::Read for FakeStream {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            self.reads_done += 1;
            match self.reads.pop_front().unwrap_or(Read::WouldBlock) {
                Read::Data(bytes) => {
                    buf[..bytes.len()].copy_from_slice(bytes);
                    Ok(bytes.len())
                }
                Read::WouldBlock => Err(io::ErrorKind::WouldBlock.into()),
                Read::Interrupted => Err(io::ErrorKind::Interrupted.into()),
                Read::Eof => Ok(0),
                Read::Reset => Err(io::ErrorKind::ConnectionReset.into()),
            }
        }
    }

    impl io::Write for FakeStream {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if std::mem::take(&mut self.interrupt_next_write) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            if self.capacity == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            let n = buf.len().min(self.capacity);
            self.capacity -= n;
            self.written.extend_from_slice(&buf[..n]);
            Ok(n)
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Stream for FakeStream {
        fn shutdown_write(&self) -> io::Result<()> {
            Ok(())
        }
    }

    fn config(delay_ms: u64) -> Config {
        Config {
            delay: DelayModel::Fixed(Duration::from_millis(delay_ms)).into(),
            ..Config::default()
        }
    }

    fn connection(config: &Config, reads: Vec<Read>, now: Instant) -> Connection<FakeStream> {
        let stream = FakeStream::new(reads);
        let config = ServerConfig {
            protocol: config.clone(),
            ..ServerConfig::default()
        };
        let peer = std::net::SocketAddr::from(([127, 0, 0, 1], 1));
        let driver = Driver::new(&config, Stats::new().open(), 0, peer, now);
        let mut conn = Connection::new(stream, driver, Interest::READABLE);
        conn.ready(true, false);
        conn
    }

    #[test]
    fn it_reads_until_would_block_and_answers_every_line() {
        let t0 = Instant::now();
        let steps = vec![Read::Data(b"ab\nc"), Read::Data(b"d\nef"), Read::WouldBlock];
        let mut conn = connection(&config(0), steps, t0);
        let progress = conn.drive(&mut [0; 4], t0).expect("no socket error");
        assert_eq!(progress, Progress::Idle);
        assert_eq!(conn.stream.written, b"AB\nCD\n");
        assert!(conn.stream.reads.is_empty(), "read up to the would-block");
        assert_eq!(conn.wanted_interest(), Some(Interest::READABLE));
    }

    #[test]
    fn a_read_that_does_not_fill_the_buffer_ends_the_turn_without_another_read() {
        let t0 = Instant::now();
        let mut conn = connection(&config(0), vec![Read::Data(b"ab\n"), Read::WouldBlock], t0);
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        assert_eq!(conn.stream.written, b"AB\n");
        assert_eq!(
            conn.stream.reads_done, 1,
            "the socket was empty after a short read"
        );
        conn.ready(true, false);
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        assert_eq!(conn.stream.reads_done, 2, "a new edge reads again");
    }

    #[test]
    fn an_interrupted_read_or_write_is_retried() {
        let t0 = Instant::now();
        let steps = vec![Read::Interrupted, Read::Data(b"x\n"), Read::WouldBlock];
        let mut conn = connection(&config(0), steps, t0);
        conn.stream.interrupt_next_write = true;
        conn.drive(&mut [0; 64], t0)
            .expect("interruptions are not errors");
        assert_eq!(conn.stream.written, b"X\n");
    }

    #[test]
    fn a_partial_write_keeps_the_rest_and_waits_for_writability() {
        let t0 = Instant::now();
        let mut conn = connection(&config(0), vec![Read::Data(b"hello\n")], t0);
        conn.stream.capacity = 2;
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        assert_eq!(conn.stream.written, b"HE");
        assert_eq!(
            conn.wanted_interest(),
            Some(Interest::READABLE | Interest::WRITABLE)
        );
        conn.stream.capacity = usize::MAX;
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        assert_eq!(
            conn.stream.written, b"HE",
            "no write before a writable event"
        );
        conn.ready(false, true);
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        assert_eq!(conn.stream.written, b"HELLO\n");
        assert_eq!(conn.wanted_interest(), Some(Interest::READABLE));
    }

    #[test]
    fn end_of_stream_is_reported_once_and_the_last_reply_is_sent_before_closing() {
        let t0 = Instant::now();
        let mut conn = connection(&config(0), vec![Read::Data(b"last"), Read::Eof], t0);
        conn.drive(&mut [0; 4], t0).expect("no socket error");
        assert_eq!(conn.stream.written, b"LAST\n");
        assert!(conn.driver.is_closed());
        assert_eq!(conn.stream.reads_done, 2, "no read after end of stream");
        assert_eq!(conn.wanted_interest(), None);
    }

    #[test]
    fn a_hang_up_reported_with_the_data_still_leads_to_the_end_of_stream() {
        let t0 = Instant::now();
        let mut conn = connection(&config(0), vec![Read::Data(b"bye"), Read::Eof], t0);
        conn.read_closed();
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        assert_eq!(conn.stream.written, b"BYE\n", "the final line is answered");
        assert!(
            conn.driver.is_closed(),
            "the end of stream was read despite the short read"
        );
    }

    #[test]
    fn a_hang_up_that_is_not_there_does_not_keep_the_connection_reading() {
        let t0 = Instant::now();
        let mut conn = connection(&config(0), vec![Read::WouldBlock], t0);
        conn.read_closed();
        assert_eq!(conn.drive(&mut [0; 64], t0).ok(), Some(Progress::Idle));
        assert_eq!(conn.stream.reads_done, 1, "one would-block ends the turn");
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        assert_eq!(conn.stream.reads_done, 1, "and no read without a new event");
    }

    #[test]
    fn reading_stops_while_the_protocol_applies_backpressure() {
        let t0 = Instant::now();
        let config = Config {
            max_output_bytes: 4,
            ..config(0)
        };
        let steps = vec![Read::Data(b"aaaa\nbbbb\n"), Read::Data(b"cccc\n")];
        let mut conn = connection(&config, steps, t0);
        conn.stream.capacity = 0;
        conn.drive(&mut [0; 10], t0).expect("no socket error");
        assert_eq!(
            conn.stream.reads.len(),
            1,
            "the second chunk stays in the socket"
        );
        assert_eq!(conn.wanted_interest(), Some(Interest::WRITABLE));
        conn.stream.capacity = usize::MAX;
        conn.ready(false, true);
        conn.drive(&mut [0; 10], t0).expect("no socket error");
        assert_eq!(
            conn.stream.written, b"AAAA\nBBBB\nCCCC\n",
            "reading resumed"
        );
    }

    #[test]
    fn a_flooding_client_yields_after_the_read_budget() {
        let t0 = Instant::now();
        let steps = (0..READ_BUDGET + 1).map(|_| Read::Data(b"z\n")).collect();
        let mut conn = connection(&config(0), steps, t0);
        assert_eq!(conn.drive(&mut [0; 2], t0).ok(), Some(Progress::Yielded));
        assert_eq!(conn.stream.reads.len(), 1);
        assert_eq!(conn.drive(&mut [0; 2], t0).ok(), Some(Progress::Idle));
    }

    #[test]
    fn a_reset_is_an_error_for_the_loop_to_close() {
        let t0 = Instant::now();
        let mut conn = connection(&config(0), vec![Read::Reset], t0);
        let err = conn
            .drive(&mut [0; 64], t0)
            .expect_err("a reset must surface");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    #[test]
    fn a_waiting_request_arms_one_timer_and_its_firing_sends_the_reply() {
        let t0 = Instant::now();
        let mut conn = connection(&config(100), vec![Read::Data(b"hi\n")], t0);
        let mut timers = Timers::new();
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        conn.rearm(&mut timers, || "conn");
        assert_eq!(
            timers.next_deadline(),
            Some(t0 + Duration::from_millis(100))
        );
        assert!(conn.stream.written.is_empty(), "not before the delay");
        let due = t0 + Duration::from_millis(100);
        let (key, _) = timers.pop_expired(due).expect("due at the delay");
        conn.timeout(Some(key), due);
        conn.drive(&mut [0; 64], due).expect("no socket error");
        assert_eq!(conn.stream.written, b"HI\n");
        conn.rearm(&mut timers, || "conn");
        assert_eq!(timers.len(), 1, "only the idle timer is left");
        assert_eq!(
            conn.driver.next_timeout().map(|t| t.kind),
            Some(DelayKind::Wait)
        );
    }

    #[test]
    fn an_offloading_connection_leaves_a_block_delay_to_the_pool_and_keeps_reading() {
        let t0 = Instant::now();
        let block = Config {
            delay_kind: DelayKind::Block,
            ..config(100)
        };
        let reads = vec![Read::Data(b"one\n"), Read::Data(b"two\n"), Read::WouldBlock];
        let mut conn = connection(&block, reads, t0);
        conn.offload_spends();
        let mut timers = Timers::new();
        assert_eq!(conn.drive(&mut [0; 4], t0).ok(), Some(Progress::Idle));
        let spend = conn.take_offload().expect("the first delay is offloaded");
        assert_eq!(spend.kind, DelayKind::Block);
        assert_eq!(conn.take_offload(), None, "one spend at a time");
        assert_eq!(conn.stream.reads_done, 3, "read on while the spend is away");
        conn.rearm(&mut timers, || ());
        assert!(
            timers.is_empty(),
            "the worker keeps the deadline, not a timer"
        );
        let successor = Ticket {
            key: 0,
            id: conn.driver.id() + 1,
        };
        assert!(
            !conn.driver_mut().offload_done(successor, spend.at),
            "another connection's completion"
        );
        let own = conn.driver().ticket(0);
        assert!(conn.driver_mut().offload_done(own, spend.at));
        conn.drive(&mut [0; 4], spend.at).expect("no socket error");
        assert_eq!(conn.stream.written, b"ONE\n");
        assert!(
            conn.take_offload().is_some(),
            "the second delay goes to the pool too"
        );
    }

    #[test]
    fn an_earlier_timer_is_kept_when_the_deadline_moves_later() {
        let t0 = Instant::now();
        let mut conn = connection(&config(0), vec![Read::Data(b"a\n")], t0);
        let mut timers = Timers::new();
        conn.rearm(&mut timers, || ());
        let idle = timers.next_deadline().expect("the idle limit is armed");
        let later = t0 + Duration::from_secs(1);
        conn.drive(&mut [0; 64], later).expect("no socket error");
        conn.rearm(&mut timers, || ());
        assert_eq!(timers.next_deadline(), Some(idle), "kept, not moved");
        assert_eq!(timers.len(), 1);
    }

    #[test]
    fn a_timer_is_replaced_when_the_deadline_comes_earlier() {
        let t0 = Instant::now();
        let mut conn = connection(&config(100), vec![], t0);
        let mut timers = Timers::new();
        conn.rearm(&mut timers, || ());
        assert_eq!(
            timers.next_deadline(),
            Some(t0 + Config::DEFAULT_IDLE_TIMEOUT)
        );
        conn.stream.reads.push_back(Read::Data(b"go\n"));
        conn.ready(true, false);
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        conn.rearm(&mut timers, || ());
        assert_eq!(
            timers.next_deadline(),
            Some(t0 + Duration::from_millis(100))
        );
        assert_eq!(
            timers.len(),
            1,
            "the idle timer was cancelled, not left behind"
        );
    }

    #[test]
    fn closing_returns_the_timer_for_the_loop_to_cancel() {
        let t0 = Instant::now();
        let mut conn = connection(&config(100), vec![Read::Data(b"a\n")], t0);
        let mut timers = Timers::new();
        conn.drive(&mut [0; 64], t0).expect("no socket error");
        conn.rearm(&mut timers, || ());
        let key = conn.close(None).expect("a timer was armed");
        assert_eq!(timers.cancel(key), Some(()));
    }
}
