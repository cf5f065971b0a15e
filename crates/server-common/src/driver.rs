//! What a connection does next: the one decision every server makes the same way, whatever
//! its IO.
//!
//! A server owns sockets and a way to wait (a blocking call, a tokio future, `epoll`, a
//! completion ring); echo-core owns the protocol. Between them sits one question, asked after
//! every callback: *now what?* [`next_step`] answers it from the protocol's state, the clock
//! and two facts about the socket, and each server maps the [`Step`] to its own IO and
//! nothing more. [`Driver`] wraps one connection's protocol with those facts, the stop request
//! and the end-of-connection bookkeeping, so that no server writes them again.
//!
//! # The order of operations
//!
//! 1. [`Step::Close`] once the protocol is closed: nothing else is done for it.
//! 2. [`Step::FireTimeout`] when the protocol's deadline has passed: a request's delay that
//!    is over produces its reply, and that reply is the first thing to write.
//! 3. [`Step::Write`] while output is pending and the socket is not known to be full: a reply
//!    that exists goes out before anything else happens.
//! 4. [`Step::Spend`] for a `block` or `spin` delay: hold the thread until its deadline.
//! 5. [`Step::Wait`] otherwise: for input (if the protocol wants it), for room to write (if
//!    output is stuck behind a full socket) and for the deadline, whichever comes first.
//!
//! **Write before spend** is the rule that matters between servers: a reply already owed is
//! written before a `block` or `spin` delay holds the thread, because a blocking call in the
//! server code would come after the `send` of the previous reply, not before it; holding a
//! finished reply back for the length of the next request's delay would charge the client a
//! delay it did not ask for. When the socket takes no more (a slow reader), the delay is spent
//! anyway, with the rest of the reply waiting: a `block` delay holds its thread whatever the
//! client does, which is what the kind is for. A blocking server gets the same effect by
//! writing with the deadline as its timeout (the `until` of [`Step::Write`]).
//!
//! # Recipes
//!
//! A request's delay is a recipe of phases (`spin:2ms+wait:100ms`), which the protocol hands
//! out one at a time as its timeout: a `block` or `spin` phase is one [`Step::Spend`], a
//! `wait` phase the deadline of a [`Step::Wait`], as a one-phase delay of that kind always
//! was. The step that ends a phase ([`Driver::spend`], or [`Driver::timeout`] after
//! [`Step::FireTimeout`]) begins the next, and the reply is written after the last. So the
//! phases run in order in every server with no code of their own, and the idle limit is
//! unchanged: it does not run while a request is in any of its phases.
//!
//! # Shutdown mid-recipe
//!
//! [`Driver::shutdown`] lets a request in the middle of its recipe run its remaining phases
//! and be answered, as any request already received is; a `block` or `spin` phase under way
//! is not cut short. The server's shutdown timeout bounds that: a connection still in a phase
//! when it passes is closed without its reply.
//!
//! # Completion-based servers
//!
//! The step does not assume readiness. A loop whose reads and writes complete later (io_uring)
//! reads [`Wait::read`] as "have a read submitted" (one already in flight satisfies it), and
//! marks a submitted write with [`Driver::write_blocked`] and its completion with
//! [`Driver::writable`], so that [`Step::Write`] never asks for a second write while the first
//! owns the buffer.
//!
//! # Offloaded spends
//!
//! A loop with a worker pool (`--offload N`, see [`crate::offload`]) does not hold its thread
//! for a [`Step::Spend`]: it hands the spend to the pool and marks it with [`Driver::offload`].
//! Until [`Driver::offloaded`] reports it done, the protocol's deadline belongs to the worker,
//! not to the loop: no [`Step::FireTimeout`], no second [`Step::Spend`], no deadline in
//! [`Step::Wait`] (and none from [`Driver::next_timeout`], so the loop arms no timer that could
//! fire the delay early); the connection still writes what it owes and reads while the
//! protocol wants input, and a [`Wait`] with nothing set means "wait for the completion".

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use echo_core::{DelayKind, EchoProtocol, Protocol, Timeout};

use crate::config::ServerConfig;
use crate::offload::Ticket;
use crate::stats::ConnectionGuard;

/// What a connection does next; see the module docs for the order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The protocol is done: close the socket without writing more, then
    /// [`Driver::finish`].
    Close,
    /// The deadline has passed: call [`Driver::timeout`].
    FireTimeout,
    /// Write [`Driver::output`] and report it with [`Driver::written`].
    Write {
        /// The protocol's deadline: a server whose write blocks gives up there, so a client
        /// that does not read cannot hold a reply's delay or the idle limit back.
        until: Option<Instant>,
    },
    /// A `block` or `spin` delay: hold this thread until `timeout.at`, then fire the
    /// timeout; [`Driver::spend`] does both.
    Spend(Timeout),
    /// Nothing can be done at once: wait for the first of what [`Wait`] names.
    Wait(Wait),
}

/// What a waiting connection waits for. At least one of them is set, unless a spend is
/// offloaded ([`SocketState::spend_offloaded`]): then its completion may be all there is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wait {
    /// Input: the socket readable (readiness), a read submitted (completion), or a read with
    /// `until` as its timeout (blocking).
    pub read: bool,
    /// Room to write: pending output is stuck behind a full socket.
    pub write: bool,
    /// The protocol's deadline (a `wait` delay or the idle limit).
    pub until: Option<Instant>,
}

/// What the server knows about the socket that the protocol does not.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SocketState {
    /// A read returned end of stream: never read again.
    pub eof: bool,
    /// The last write found the socket full (or a write is in flight): wait for room before
    /// writing again.
    pub write_blocked: bool,
    /// A `block` or `spin` spend is on a worker ([`Driver::offload`]): the protocol's deadline
    /// is the worker's, and its completion is what the connection waits for.
    pub spend_offloaded: bool,
}

/// The decision itself, for any protocol: see the module docs.
///
/// # Errors
/// When the protocol breaks its contract and leaves nothing to read, write or wait for (the
/// connection would hang; the server closes it as failed). A connection whose spend is
/// offloaded always has its completion to wait for.
pub fn next_step(protocol: &impl Protocol, socket: SocketState, now: Instant) -> io::Result<Step> {
    if protocol.is_closed() {
        return Ok(Step::Close);
    }
    let timeout = protocol.next_timeout().filter(|_| !socket.spend_offloaded);
    if timeout.is_some_and(|t| t.at <= now) {
        return Ok(Step::FireTimeout);
    }
    let until = timeout.map(|t| t.at);
    let output = !protocol.output().is_empty();
    if output && !socket.write_blocked {
        return Ok(Step::Write { until });
    }
    if let Some(t) = timeout.filter(|t| t.kind != DelayKind::Wait) {
        return Ok(Step::Spend(t));
    }
    let read = protocol.wants_read() && !socket.eof;
    if !read && !output && until.is_none() && !socket.spend_offloaded {
        return Err(io::Error::other(
            "protocol is stuck: nothing to read, write or wait for",
        ));
    }
    Ok(Step::Wait(Wait {
        read,
        write: output,
        until,
    }))
}

/// One connection's protocol with what every server keeps beside it: the socket facts of
/// [`SocketState`], whether it was told to stop, its share of the stats, and its end.
///
/// Create it right after `accept`; call [`Driver::next_step`] after every callback and do what
/// it says; end with [`Driver::finish`], exactly once, whatever happened.
#[derive(Debug)]
pub struct Driver {
    protocol: EchoProtocol,
    guard: ConnectionGuard,
    id: u64,
    verbose: bool,
    socket: SocketState,
    stopping: bool,
    shutdown_timeout: Duration,
}

/// The moment a shutdown keeps before its timeout to write the `ERR server shutting down`
/// lines (a fifth of the timeout, at most 100 ms): the protocol gives up that much earlier, so
/// the goodbye is out before the server closes what is left.
pub fn shutdown_goodbye(shutdown_timeout: Duration) -> Duration {
    (shutdown_timeout / 5).min(Duration::from_millis(100))
}

impl Driver {
    /// A connection numbered `id` (which seeds its delays) from `peer`, counted by `guard`;
    /// calls `connection_made`. With `config.verbose`, logs it.
    pub fn new(
        config: &ServerConfig,
        guard: ConnectionGuard,
        id: u64,
        peer: SocketAddr,
        now: Instant,
    ) -> Driver {
        let mut protocol = EchoProtocol::new(&config.protocol, id);
        protocol.connection_made(now);
        if config.verbose {
            tracing::info!(%peer, id, "connection made");
        }
        Driver {
            protocol,
            guard,
            id,
            verbose: config.verbose,
            socket: SocketState::default(),
            stopping: false,
            shutdown_timeout: config.shutdown_timeout,
        }
    }

    /// What to do now (see [`next_step`]); also adds the protocol's progress to the stats.
    ///
    /// # Errors
    /// As [`next_step`].
    pub fn next_step(&mut self, now: Instant) -> io::Result<Step> {
        self.guard.record(self.protocol.stats());
        let step = next_step(&self.protocol, self.socket, now)?;
        let Some(give_up_at) = self.offloaded_give_up() else {
            return Ok(step);
        };
        // An offloaded spend during a stop: the stop's deadline still comes first.
        let until = |until: Option<Instant>| Some(until.map_or(give_up_at, |u| u.min(give_up_at)));
        Ok(match step {
            _ if now >= give_up_at => Step::FireTimeout,
            Step::Wait(wait) => Step::Wait(Wait {
                until: until(wait.until),
                ..wait
            }),
            Step::Write { until: at } => Step::Write { until: until(at) },
            other => other,
        })
    }

    /// The stop's give-up deadline while a spend is offloaded: the one deadline of the
    /// protocol the worker does not keep, so the loop's timer must.
    fn offloaded_give_up(&self) -> Option<Instant> {
        self.protocol
            .give_up_deadline()
            .filter(|_| self.socket.spend_offloaded)
    }

    /// Bytes read from the socket (never empty).
    pub fn data_received(&mut self, data: &[u8], now: Instant) {
        self.protocol.data_received(data, now);
    }

    /// A read returned end of stream; the connection never reads again.
    pub fn eof_received(&mut self, now: Instant) {
        self.socket.eof = true;
        self.protocol.eof_received(now);
    }

    /// The bytes to write next.
    pub fn output(&self) -> &[u8] {
        self.protocol.output()
    }

    /// `n` bytes of [`Driver::output`] were written.
    pub fn written(&mut self, n: usize, now: Instant) {
        self.protocol.output_written(n, now);
    }

    /// The socket took no more (`WouldBlock`, a short write) or a write is in flight: the
    /// next steps wait for room instead of writing.
    pub fn write_blocked(&mut self) {
        self.socket.write_blocked = true;
    }

    /// The socket has room again (a writable event, a write's completion).
    pub fn writable(&mut self) {
        self.socket.write_blocked = false;
    }

    /// Whether the last write found the socket full.
    pub fn is_write_blocked(&self) -> bool {
        self.socket.write_blocked
    }

    /// Does a [`Step::Spend`]: holds this thread until `timeout.at` (see
    /// [`crate::spend_on_thread`]), then fires the timeout. A socket found full stays full to
    /// the driver until the server sees room: for a completion loop a write is still in
    /// flight, and a readiness loop hears of the room as an event.
    pub fn spend(&mut self, timeout: Timeout) {
        crate::delay::spend_on_thread(timeout);
        self.protocol.timeout(Instant::now());
    }

    /// Marks a [`Step::Spend`] as handed to a worker instead of done here: until
    /// [`Driver::offloaded`], the deadline is the worker's (see the module docs).
    pub fn offload(&mut self) {
        self.socket.spend_offloaded = true;
    }

    /// The worker finished the offloaded spend: the delay is over, and the protocol hears so
    /// as from [`Driver::spend`]. A call with no spend offloaded is ignored, so a completion
    /// that outlived its purpose does nothing.
    pub fn offloaded(&mut self, now: Instant) {
        if std::mem::take(&mut self.socket.spend_offloaded) {
            self.protocol.timeout(now);
        }
    }

    /// This connection's [`Ticket`] in an offload pool while it sits at `key` in its loop.
    pub fn ticket(&self, key: usize) -> Ticket {
        Ticket { key, id: self.id }
    }

    /// An offload pool finished a spend with `ticket`: ends the delay as
    /// [`Driver::offloaded`] if the spend is this connection's (not a predecessor's in the
    /// same slot), returning whether it was.
    pub fn offload_done(&mut self, ticket: Ticket, now: Instant) -> bool {
        if !ticket.is_for(self) {
            return false;
        }
        self.offloaded(now);
        true
    }

    /// Whether a spend is on a worker ([`Driver::offload`]) and not yet back.
    pub fn is_offloaded(&self) -> bool {
        self.socket.spend_offloaded
    }

    /// A deadline passed (an early or spurious call is harmless). Ignored while a spend is
    /// offloaded: that deadline ends with the worker's completion, not with a loop's timer;
    /// unless the stop's give-up deadline passed, when the spend is abandoned (its completion
    /// will be ignored) and the protocol tells the request `ERR server shutting down`.
    pub fn timeout(&mut self, now: Instant) {
        if !self.socket.spend_offloaded {
            self.protocol.timeout(now);
        } else if self.offloaded_give_up().is_some_and(|at| now >= at) {
            self.socket.spend_offloaded = false;
            self.protocol.timeout(now);
        }
    }

    /// The server is stopping, as of now: see [`Driver::shutdown_since`].
    pub fn shutdown(&mut self, now: Instant) {
        self.shutdown_since(now, now);
    }

    /// The server began stopping at `stopped_at` (a server that tells a connection late, e.g.
    /// one taken from a queue after the stop, passes the stop's instant): the protocol answers
    /// what it has received, then closes; what is still unanswered when the shutdown timeout
    /// is about to pass (less [`shutdown_goodbye`]) is told `ERR server shutting down`. Only
    /// the first call reaches the protocol.
    pub fn shutdown_since(&mut self, now: Instant, stopped_at: Instant) {
        if !std::mem::replace(&mut self.stopping, true) {
            let give_up_at =
                stopped_at + self.shutdown_timeout - shutdown_goodbye(self.shutdown_timeout);
            self.protocol.shutdown(now, give_up_at);
        }
    }

    /// Whether [`Driver::shutdown`] was called.
    pub fn is_stopping(&self) -> bool {
        self.stopping
    }

    /// Whether a wait now would be for input ([`Wait::read`]).
    pub fn wants_read(&self) -> bool {
        self.protocol.wants_read() && !self.socket.eof
    }

    /// Whether a wait now would be for room to write ([`Wait::write`]).
    pub fn wants_write(&self) -> bool {
        self.socket.write_blocked && !self.protocol.output().is_empty()
    }

    /// The protocol's next deadline, for a server that keeps its own timers; while a spend
    /// is offloaded only a stop's give-up deadline (the worker keeps the spend's own).
    pub fn next_timeout(&self) -> Option<Timeout> {
        if self.socket.spend_offloaded {
            return self.offloaded_give_up().map(|at| Timeout {
                at,
                kind: DelayKind::Wait,
            });
        }
        self.protocol.next_timeout()
    }

    /// Whether the socket must close now ([`Step::Close`]).
    pub fn is_closed(&self) -> bool {
        self.protocol.is_closed()
    }

    /// The connection's number.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The connection is over, closed (`error` is `None`) or broken: calls `connection_lost`,
    /// settles the stats (the connection counts closed once this returns) and, with
    /// `verbose`, logs how it ended.
    pub fn finish(mut self, error: Option<&io::Error>) {
        self.protocol.connection_lost();
        self.guard.record(self.protocol.stats());
        if error.is_some() {
            self.guard.failed();
        }
        if self.verbose {
            let (id, requests) = (self.id, self.protocol.stats().requests);
            match error {
                None => tracing::info!(id, requests, "connection closed"),
                Some(err) => tracing::info!(id, requests, "connection lost: {err}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use echo_core::{ConnectionStats, DelayModel};

    use super::*;
    use crate::stats::Stats;

    const DELAY: Duration = Duration::from_millis(100);

    fn config(kind: DelayKind) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.protocol.delay = DelayModel::Fixed(DELAY).into();
        config.protocol.delay_kind = kind;
        config
    }

    fn driver(config: &ServerConfig, stats: &std::sync::Arc<Stats>, t0: Instant) -> Driver {
        let peer = SocketAddr::from(([127, 0, 0, 1], 1));
        Driver::new(config, stats.open(), 7, peer, t0)
    }

    fn step(driver: &mut Driver, now: Instant) -> Step {
        driver.next_step(now).expect("the protocol is never stuck")
    }

    #[test]
    fn a_fresh_connection_waits_for_input_and_the_idle_limit() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Wait), &Stats::new(), t0);
        let idle = t0 + echo_core::Config::DEFAULT_IDLE_TIMEOUT;
        assert_eq!(
            step(&mut conn, t0),
            Step::Wait(Wait {
                read: true,
                write: false,
                until: Some(idle)
            })
        );
    }

    #[test]
    fn a_due_timeout_comes_first_and_its_reply_is_written_next() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Wait), &Stats::new(), t0);
        conn.data_received(b"hi\n", t0);
        assert_eq!(
            step(&mut conn, t0),
            Step::Wait(Wait {
                read: true,
                write: false,
                until: Some(t0 + DELAY)
            })
        );
        let due = t0 + DELAY;
        assert_eq!(step(&mut conn, due), Step::FireTimeout);
        conn.timeout(due);
        assert!(matches!(step(&mut conn, due), Step::Write { .. }));
        assert_eq!(conn.output(), b"HI\n");
    }

    #[test]
    fn a_block_delay_with_a_reply_pending_writes_the_reply_before_spending_the_delay() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Block), &Stats::new(), t0);
        conn.data_received(b"first\nsecond\n", t0);
        let first_due = t0 + DELAY;
        assert_eq!(
            step(&mut conn, t0),
            Step::Spend(Timeout {
                at: first_due,
                kind: DelayKind::Block
            })
        );
        conn.timeout(first_due);
        // FIRST is owed and the second request's block delay has begun.
        let second_due = first_due + DELAY;
        assert_eq!(
            step(&mut conn, first_due),
            Step::Write {
                until: Some(second_due)
            }
        );
        conn.written(conn.output().len(), first_due);
        assert_eq!(
            step(&mut conn, first_due),
            Step::Spend(Timeout {
                at: second_due,
                kind: DelayKind::Block
            })
        );
    }

    #[test]
    fn a_block_delay_is_spent_with_the_reply_pending_once_the_socket_takes_no_more() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Spin), &Stats::new(), t0);
        conn.data_received(b"first\nsecond\n", t0);
        conn.timeout(t0 + DELAY);
        conn.written(2, t0 + DELAY);
        conn.write_blocked();
        assert_eq!(
            step(&mut conn, t0 + DELAY),
            Step::Spend(Timeout {
                at: t0 + DELAY * 2,
                kind: DelayKind::Spin
            })
        );
        assert!(conn.wants_write());
        conn.writable();
        assert!(matches!(step(&mut conn, t0 + DELAY), Step::Write { .. }));
    }

    #[test]
    fn a_wait_delay_behind_a_full_socket_waits_for_room_input_and_the_deadline() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Wait), &Stats::new(), t0);
        conn.data_received(b"first\nsecond\n", t0);
        conn.timeout(t0 + DELAY);
        conn.write_blocked();
        assert_eq!(
            step(&mut conn, t0 + DELAY),
            Step::Wait(Wait {
                read: true,
                write: true,
                until: Some(t0 + DELAY * 2)
            })
        );
    }

    #[test]
    fn an_offloaded_spend_leaves_the_deadline_to_its_worker_and_ends_with_the_completion() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Block), &Stats::new(), t0);
        conn.data_received(b"first\n", t0);
        assert!(matches!(step(&mut conn, t0), Step::Spend(_)));
        conn.offload();
        let late = t0 + DELAY * 2;
        // Past the deadline the loop neither fires nor spends it again, and arms no timer.
        assert_eq!(
            step(&mut conn, late),
            Step::Wait(Wait {
                read: true,
                write: false,
                until: None
            })
        );
        assert_eq!(conn.next_timeout(), None);
        conn.timeout(late);
        assert!(
            conn.output().is_empty(),
            "a loop timer ended the worker's spend"
        );
        conn.offloaded(late);
        assert!(!conn.is_offloaded());
        assert!(matches!(step(&mut conn, late), Step::Write { .. }));
        assert_eq!(conn.output(), b"FIRST\n");
        // A second completion for the same spend changes nothing.
        conn.offloaded(late);
        assert_eq!(conn.output(), b"FIRST\n");
    }

    #[test]
    fn an_offloaded_spend_after_end_of_stream_is_waited_for_not_a_stuck_protocol() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Spin), &Stats::new(), t0);
        conn.data_received(b"last\n", t0);
        conn.eof_received(t0);
        conn.offload();
        assert_eq!(
            step(&mut conn, t0),
            Step::Wait(Wait {
                read: false,
                write: false,
                until: None
            })
        );
    }

    #[test]
    fn after_end_of_stream_the_connection_never_waits_for_input_and_closes_once_answered() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Wait), &Stats::new(), t0);
        conn.data_received(b"last", t0);
        conn.eof_received(t0);
        assert!(!conn.wants_read());
        assert_eq!(
            step(&mut conn, t0),
            Step::Wait(Wait {
                read: false,
                write: false,
                until: Some(t0 + DELAY)
            })
        );
        conn.timeout(t0 + DELAY);
        assert!(matches!(step(&mut conn, t0 + DELAY), Step::Write { .. }));
        conn.written(conn.output().len(), t0 + DELAY);
        assert_eq!(step(&mut conn, t0 + DELAY), Step::Close);
    }

    #[test]
    fn shutdown_reaches_the_protocol_once_and_closes_an_idle_connection() {
        let t0 = Instant::now();
        let mut conn = driver(&config(DelayKind::Wait), &Stats::new(), t0);
        conn.shutdown(t0);
        conn.shutdown(t0);
        assert!(conn.is_stopping());
        assert_eq!(step(&mut conn, t0), Step::Close);
    }

    #[test]
    fn a_request_unanswered_near_the_shutdown_timeout_is_told_the_server_is_shutting_down() {
        let t0 = Instant::now();
        let mut settings = config(DelayKind::Block);
        settings.shutdown_timeout = Duration::from_millis(500);
        let mut conn = driver(&settings, &Stats::new(), t0);
        conn.data_received(b"slow\n", t0);
        conn.shutdown(t0);
        let give_up_at = t0 + Duration::from_millis(400);
        // The block delay (100 ms) ends first and is answered.
        conn.timeout(t0 + DELAY);
        assert_eq!(conn.output(), b"SLOW\n");
        conn.written(5, t0 + DELAY);
        assert_eq!(step(&mut conn, t0 + DELAY), Step::Close);
        let mut late = driver(&settings, &Stats::new(), t0);
        late.data_received(b"late\n", give_up_at - DELAY / 2);
        late.shutdown_since(give_up_at - DELAY / 2, t0);
        assert_eq!(
            step(&mut late, give_up_at - DELAY / 2),
            Step::Spend(Timeout {
                at: give_up_at,
                kind: DelayKind::Block
            })
        );
        late.timeout(give_up_at);
        assert_eq!(late.output(), b"ERR server shutting down\n");
    }

    #[test]
    fn an_offloaded_spend_still_unfinished_at_the_stops_deadline_is_told_the_server_is_shutting_down()
     {
        let t0 = Instant::now();
        let mut settings = config(DelayKind::Block);
        settings.shutdown_timeout = Duration::from_millis(50);
        let mut conn = driver(&settings, &Stats::new(), t0);
        conn.data_received(b"slow\n", t0);
        assert!(matches!(step(&mut conn, t0), Step::Spend(_)));
        conn.offload();
        conn.shutdown(t0);
        let give_up_at = t0 + Duration::from_millis(40);
        // The worker keeps the spend's deadline, the loop the stop's.
        assert_eq!(
            conn.next_timeout(),
            Some(Timeout {
                at: give_up_at,
                kind: DelayKind::Wait
            })
        );
        assert!(matches!(
            step(&mut conn, t0),
            Step::Wait(Wait {
                until: Some(at),
                ..
            }) if at == give_up_at
        ));
        assert_eq!(step(&mut conn, give_up_at), Step::FireTimeout);
        conn.timeout(give_up_at);
        assert_eq!(conn.output(), b"ERR server shutting down\n");
        assert!(!conn.is_offloaded(), "the spend is abandoned");
        // The worker's completion, when it comes, changes nothing.
        conn.offloaded(t0 + DELAY);
        assert_eq!(conn.output(), b"ERR server shutting down\n");
    }

    #[test]
    fn finishing_settles_the_stats_once_and_counts_a_broken_connection() {
        let t0 = Instant::now();
        let stats = Stats::new();
        let settings = config(DelayKind::Wait);
        let mut conn = driver(&settings, &stats, t0);
        conn.data_received(b"a\n", t0);
        conn.timeout(t0 + DELAY);
        conn.finish(None);
        let broken = driver(&settings, &stats, t0);
        broken.finish(Some(&io::ErrorKind::ConnectionReset.into()));
        let summary = stats.summary();
        assert_eq!(summary.requests, 1);
        assert_eq!(
            (summary.connections_closed, summary.connections_open),
            (2, 0)
        );
        assert_eq!(summary.connection_errors, 1);
    }

    fn recipe_config(spec: &str) -> ServerConfig {
        let mut config = ServerConfig::default();
        config.protocol.delay = spec.parse().expect("a recipe");
        config
    }

    #[test]
    fn a_recipe_is_spent_phase_by_phase_and_answered_after_the_last() {
        let t0 = Instant::now();
        let mut conn = driver(&recipe_config("spin:1ms+wait:50ms"), &Stats::new(), t0);
        conn.data_received(b"mixed\n", t0);
        let spin = Timeout {
            at: t0 + Duration::from_millis(1),
            kind: DelayKind::Spin,
        };
        assert_eq!(step(&mut conn, t0), Step::Spend(spin));
        conn.spend(spin);
        let after_spin = Instant::now();
        assert!(after_spin >= spin.at, "spent before its deadline");
        let Step::Wait(wait) = step(&mut conn, after_spin) else {
            panic!("the wait phase is a wait");
        };
        let until = wait.until.expect("the wait phase's deadline");
        assert!(until >= spin.at + Duration::from_millis(50), "{wait:?}");
        assert!(conn.output().is_empty(), "no reply before the last phase");
        assert_eq!(step(&mut conn, until), Step::FireTimeout);
        conn.timeout(until);
        assert!(matches!(step(&mut conn, until), Step::Write { .. }));
        assert_eq!(conn.output(), b"MIXED\n");
    }

    #[test]
    fn a_block_phase_after_a_wait_phase_is_spent_once_the_wait_is_over() {
        let t0 = Instant::now();
        let mut conn = driver(&recipe_config("wait:10ms+block:20ms"), &Stats::new(), t0);
        conn.data_received(b"x\n", t0);
        let waited = t0 + Duration::from_millis(10);
        assert!(matches!(step(&mut conn, t0), Step::Wait(w) if w.until == Some(waited)));
        assert_eq!(step(&mut conn, waited), Step::FireTimeout);
        conn.timeout(waited);
        assert_eq!(
            step(&mut conn, waited),
            Step::Spend(Timeout {
                at: waited + Duration::from_millis(20),
                kind: DelayKind::Block
            })
        );
    }

    #[test]
    fn shutdown_mid_recipe_runs_the_remaining_phases_then_closes() {
        let t0 = Instant::now();
        let mut conn = driver(&recipe_config("wait:10ms+wait:20ms"), &Stats::new(), t0);
        conn.data_received(b"owed\n", t0);
        let first = t0 + Duration::from_millis(10);
        conn.timeout(first);
        conn.shutdown(first);
        let last = first + Duration::from_millis(20);
        assert!(matches!(step(&mut conn, first), Step::Wait(w) if w.until == Some(last)));
        conn.timeout(last);
        assert!(matches!(step(&mut conn, last), Step::Write { .. }));
        conn.written(conn.output().len(), last);
        assert_eq!(step(&mut conn, last), Step::Close);
    }

    /// A protocol that breaks the contract: open, yet nothing to read, write or wait for.
    struct Stuck;

    impl Protocol for Stuck {
        fn connection_made(&mut self, _: Instant) {}
        fn data_received(&mut self, _: &[u8], _: Instant) {}
        fn eof_received(&mut self, _: Instant) {}
        fn timeout(&mut self, _: Instant) {}
        fn output_written(&mut self, _: usize, _: Instant) {}
        fn shutdown(&mut self, _: Instant, _: Instant) {}
        fn connection_lost(&mut self) {}
        fn output(&self) -> &[u8] {
            &[]
        }
        fn wants_read(&self) -> bool {
            false
        }
        fn next_timeout(&self) -> Option<Timeout> {
            None
        }
        fn is_closed(&self) -> bool {
            false
        }
        fn stats(&self) -> ConnectionStats {
            ConnectionStats::default()
        }
    }

    #[test]
    fn a_protocol_with_nothing_to_wait_for_is_an_error_not_a_hang() {
        let err =
            next_step(&Stuck, SocketState::default(), Instant::now()).expect_err("stuck protocol");
        assert!(err.to_string().contains("stuck"), "{err}");
    }
}
