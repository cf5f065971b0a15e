//! Open loop on one client thread: a hand-written event loop on `mio` that owns the
//! thread's connections and writes every request the moment it falls due, on the connection
//! idle longest.
//!
//! # Why the loop is hand-written
//! The open loop ran on a tokio current-thread runtime with a task per connection. In that
//! scheduler a woken task runs only after every task already in the run queue, and the IO
//! driver queues a task for every event of a batch (up to 1024); at 30,000 requests/s over
//! 10000 connections the server's replies arrive in bursts of hundreds, so a request falling
//! due was written only after the replies of a whole batch had been read through the queue.
//! Against server-mio at 100 ms the schedule lag was p99 3.9 ms at 30,000 requests/s and tens
//! of milliseconds at 60,000 with the client's core not saturated, and 0.58 % of the
//! requests at 10,000/s started more than 1 ms late (olc, one C epoll loop: 0.02 %). Handing
//! due requests out from every task as it went idle, and writing them from a timerfd-woken
//! dispatcher, halved that but could not bound it: the queue is tokio's, not ours.
//!
//! Here the loop decides the order itself. It waits until the next due time; then it
//! handles the ready events in chunks of at most [`CHUNK`] (one `epoll_wait` each) and,
//! between chunks, ends what timed out and writes every request now due, so a due request
//! waits for at most one chunk of reads. A request of ~45 bytes on an idle socket is written
//! at once; should the socket take only part of it (or nothing: `EAGAIN`), the rest is
//! written at its next writable event (the sockets are registered readable and writable,
//! edge-triggered, which costs nothing while their send buffers never fill).
//!
//! # Wake-ups, timeouts and the clock
//! `epoll_wait` waits whole milliseconds, so the next due time is a [`Timer`] (a timerfd in
//! the same poll) armed only while a connection is idle to take it, and only when it is not
//! already armed to fire earlier (a wake-up with nothing due re-arms it). Reply and connect
//! timeouts are a [`deadlines::Deadlines`] FIFO (one `--timeout` for all, so the order of
//! pushes is the order of expiry) that sets only the poll's coarse timeout: no system call
//! per request. A readable event costs one `recvmsg` into a 64 KiB buffer (see
//! `connection::Connection::read_available`), which also brings the kernel's timestamp of
//! the reply's arrival ([`crate::arrival`]); that is the reply's completion time, so the time
//! it waited for the loop to come to it is not counted as latency (it is the read lag). The
//! clocks are read once per chunk, after all its reads have returned: that reading carries
//! the chunk's timestamps over to [`Instant`]s, is the idle time of its connections and the
//! completion time of a reply without a timestamp (overstated by the chunk's reads, never
//! understated). The clock is also read once before each write, which is its send time.
//!
//! Since a stamped reply's latency does not depend on when it is read, the loop does not
//! wake for each one while a request will fall due within `SNOOZE`: it sleeps on the timer
//! alone, writes what is due on the connections already idle, and only then reads in every
//! reply that came meanwhile (see `EventLoop::snoozes`). At 10,000 requests/s over 10000
//! connections sleeping so halved its context switches (0.57 per request, from 1.2) and cut
//! its `epoll_wait`s from 1.6 to 0.65 per request; at 30,000/s they went from 0.84 to 0.24,
//! and its CPU per request from 20.4–20.7 µs to 16.8–18.7 µs (`perf stat`, server-mio at
//! 100 ms on CPU 0, loadgen on CPU 1, alternating pairs). Writing before reading took the
//! reads (up to a chunk of them) out of every due request's lag: against `chrt -f 4
//! taskset -c 0 server-mio --delay 100ms --idle-timeout off`, loadgen `chrt -f 5 taskset -c
//! 1`, 10 s, alternating with the loop that read first, the lag p50 / p99 went from
//! 278–285 / 845–863 µs to 177–185 / 524–556 µs at 60,000 requests/s over 10000
//! connections, from 249–257 / 663–680 to 157–168 / 530–532 over 15000, and from
//! 302–306 / 620–628 to 249–250 / 531–543 at 30,000/s over 10000, its CPU per request
//! within the pairs' spread (11.4–12.3 µs against 11.7–12.4 at 60,000/s).
//!
//! # Measured
//! Server-mio at 100 ms delay on CPU 0, loadgen on CPU 1, both under `chrt -f 5`, 10000
//! connections, 10 s after a 2 s warm-up, alternated in pairs with the binary before this
//! loop and with olc (the C epoll client of the fidelity benchmark), on the shared machine
//! while other loads ran (olc itself missed its earlier figures by far at 30,000/s and more);
//! two rounds each, this loop first:
//!
//! | req/s | late starts (> 1 ms) | lag p99 | p99 from due | CPU per request |
//! |---|---|---|---|---|
//! | 2,000 | 0.01–0.25 % (before 0.24–0.57 %, olc 0.05–0.31 %) | 0.11 ms (0.10–0.31) | 100.7–101.7 ms (olc 100.6–101.1) | 32–36 µs (before 42–60, d0f15d7 65) |
//! | 10,000 | 0.12–0.18 % (0.61–0.81 %, olc 0.08–0.20 %) | 0.13–0.14 ms (0.85–0.95) | 100.9–101.0 ms (olc 100.5–101.0) | 19–22 µs (25, d0f15d7 16) |
//! | 30,000 | 1.7–5.5 % (6.1–6.3 %, olc 3.3–3.8 %) | 2.1–8.1 ms (8.6–9.7, olc 5.0–5.5) | 120–138 ms (olc 111–123) | 12–15 µs (14–15, d0f15d7 12.4) |
//! | 60,000 | 6.2–8.1 % (14.3–14.5 %, olc 12.2–13.3 %) | 9.1–12.9 ms (36–58, olc 18–22) | 162–172 ms (olc 162–170) | 10.1–10.5 µs (11.4–12.3, d0f15d7 10.0) |
//! | 60,000, 15000 connections | 5.6–10.0 % (18.2–22.7 %, olc 6.6–11.1 %) | 12.2–27.3 ms (37–61, olc 18–26) | 147–216 ms (olc 169–177) | 9.5–12.2 µs (14.1–14.3, d0f15d7 10.9) |
//!
//! The lag left at 30,000/s and more comes in bursts that olc shows too, larger: the loop
//! is not the limit there, the shared machine and the server's bursts of replies are. Without
//! the timer's quantum ([`crate::timer::QUANTUM`]) the CPU per request was 15–21 µs at
//! 30,000/s.
//!
//! # Two lags
//! A request's **schedule lag** runs from its due time to its write. When no connection was
//! idle at its due time (every one waiting for a reply: the server's slowness, not the
//! client's) it also includes the wait for a connection; its **client lag** runs from the
//! later of its due time and the moment a connection became idle for it, so it is the
//! client's own delay alone. Such a request counts as having waited for a connection. A
//! connection is idle from its reply's arrival, not from the read, so a reply the loop was
//! slow to read delays the next request on the client's account.
//!
//! # Phases
//! Every connection is opened and primed with one unmeasured request before the schedule
//! begins (a barrier across client threads), so connect time never counts as latency. A
//! warm-up (`--warmup` with `--duration`) is the schedule's first stretch: its requests are
//! sent and answered like the others and not recorded, nor are their failures and the
//! requests due in it that were given up, so the window starts in the schedule's steady
//! state, with the warm-up's requests in flight. A
//! connection that fails, or has carried its `--requests-per-conn`, is closed and its worker
//! opens another while the plan has some (unprimed, inside the schedule). A request no
//! connection was idle for within `--give-up-after` of its due time is not sent and is
//! counted so. Connections still open when the schedule ends are closed only once the loop
//! is done, so closing thousands of sockets never delays the reading of the last replies.

mod connection;
pub mod deadlines;

use std::collections::VecDeque;
use std::io;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use slab::Slab;

use crate::arrival::Clocks;
use crate::config::Config;
use crate::exchange::Expectation;
use crate::net::{Phase, classify, source_address, start_connect};
use crate::plan::Plan;
use crate::report::{FailureKind, Measurements, RequestTimes};
use crate::timer::{QUANTUM, Timer};
use connection::{Connection, Request, Scheduled, State};
use deadlines::Deadlines;

/// Most events handled between two looks at the schedule: a due request waits for at most
/// this many connections' reads (a few microseconds each).
pub const CHUNK: usize = 64;

/// How near the timer's deadline must be for the loop to sleep on the timer alone (see
/// [`EventLoop::snoozes`]): it bounds how long a reply may wait unread for the next due
/// request, a wait the reply's arrival stamp keeps out of its latency.
const SNOOZE: Duration = Duration::from_millis(1);

/// Bytes one `recv` may take: many replies, should several have arrived.
const READ_BUFFER_BYTES: usize = 64 * 1024;

const TIMER: Token = Token(usize::MAX);

/// This thread's share of the schedule, read ahead of the next request where a wake-up can
/// take several.
struct Dues {
    plan: Arc<Plan>,
    /// The thread's first request index, and the step between its requests.
    first: u64,
    stride: u64,
    /// How many of its requests have been handed out or given up on.
    next: u64,
}

impl Dues {
    /// When the next request is due; `None` once the schedule is used up.
    fn peek(&self) -> Option<Instant> {
        self.ahead(0)
    }

    fn ahead(&self, n: u64) -> Option<Instant> {
        self.plan
            .nth_due(self.first, self.stride, self.next.checked_add(n)?)
    }

    fn advance(&mut self) {
        self.next += 1;
    }

    /// The due time of the last request due within `window` of the next one: one wake-up
    /// then writes them all, the next one at most `window` late. Where requests are more
    /// than `window` apart, that is the next one's own due time. At 2000 requests/s and a
    /// 500 µs window this halves the wake-ups (two requests each) for a lag of at most the
    /// window, which the timer's quantum allowed already; at 10,000/s a wake-up takes six
    /// requests where it took five.
    fn batch_end(&self, window: Duration) -> Option<Instant> {
        let next = self.peek()?;
        let mut last = next;
        for n in 1.. {
            match self.ahead(n) {
                Some(due) if due <= next + window => last = due,
                _ => break,
            }
        }
        Some(last)
    }
}

/// Which part of the run a client thread carries.
#[derive(Debug, Clone, Copy)]
pub struct Shard {
    /// This thread's index: its first request of the schedule and first source address.
    pub index: u64,
    /// The number of client threads: the stride of requests and source addresses.
    pub n_threads: u64,
    /// Connections open at once on this thread.
    pub n_workers: u64,
    /// Whether to keep every answered request's instants, for `--request-log`.
    pub log_requests: bool,
}

/// Runs one thread's share of an open-loop phase: opens and primes its connections, waits at
/// `barrier` for every other thread to have done so, then carries its share of the schedule.
/// The barrier is always reached, even when the loop cannot start.
///
/// # Errors
/// The poll's or the timer's error (none is expected on Linux).
pub fn run(
    config: &Config,
    plan: Arc<Plan>,
    shard: Shard,
    barrier: &Barrier,
) -> io::Result<Measurements> {
    let mut event_loop = match EventLoop::new(config, plan, shard) {
        Ok(event_loop) => event_loop,
        Err(error) => {
            barrier.wait();
            return Err(error);
        }
    };
    let primed = event_loop.connect_phase(shard.n_workers);
    barrier.wait();
    primed?;
    event_loop.plan.begin_schedule();
    event_loop.schedule_phase()?;
    Ok(event_loop.measurements)
}

/// The state of one client thread's loop.
struct EventLoop<'a> {
    config: &'a Config,
    expect: Expectation,
    plan: Arc<Plan>,
    shard: Shard,
    poll: Poll,
    events: Events,
    timer: Timer,
    connections: Slab<Connection>,
    /// Idle connections, the one idle longest first.
    idle: VecDeque<usize>,
    deadlines: Deadlines,
    dues: Dues,
    measurements: Measurements,
    scratch: Vec<u8>,
    /// Connections of the current chunk to judge once the clock is read.
    ready: Vec<(usize, u64)>,
    /// Both clocks as read after the current chunk's reads: its replies' kernel timestamps
    /// are carried over to [`Instant`]s by this reading.
    clocks: Clocks,
    /// Whether the last poll took every event that was ready (fewer than [`CHUNK`]).
    drained: bool,
    /// Whether the last reply read carried the kernel's arrival stamp.
    stamped: bool,
    /// Connections with a deadline running (connecting or busy).
    active: u64,
    /// Connections whose connect is under way.
    connecting: u64,
    /// Workers not yet done: each has a connection, or is about to open one.
    workers: u64,
    /// Workers whose connection failed before the schedule; they reconnect when it begins.
    vacant: u64,
    scheduling: bool,
    finished: bool,
    given_up: u64,
    next_source: u64,
    next_id: u64,
}

impl<'a> EventLoop<'a> {
    fn new(config: &'a Config, plan: Arc<Plan>, shard: Shard) -> io::Result<EventLoop<'a>> {
        let poll = Poll::new()?;
        let timer = Timer::new(poll.registry(), TIMER)?;
        let dues = Dues {
            plan: Arc::clone(&plan),
            first: shard.index,
            stride: shard.n_threads,
            next: 0,
        };
        Ok(EventLoop {
            config,
            expect: Expectation {
                request: config.request_bytes(),
                reply: config.expected_reply(),
                framing: config.framing,
                timeout: config.timeout,
            },
            plan,
            shard,
            poll,
            events: Events::with_capacity(CHUNK),
            timer,
            connections: Slab::with_capacity(usize::try_from(shard.n_workers).unwrap_or(0)),
            idle: VecDeque::new(),
            deadlines: Deadlines::default(),
            dues,
            measurements: Measurements {
                request_log: shard.log_requests.then(Vec::new),
                ..Measurements::default()
            },
            scratch: vec![0; READ_BUFFER_BYTES],
            ready: Vec::with_capacity(CHUNK),
            clocks: Clocks::now(),
            drained: true,
            stamped: false,
            active: 0,
            connecting: 0,
            workers: 0,
            vacant: 0,
            scheduling: false,
            finished: false,
            given_up: 0,
            next_source: shard.index,
            next_id: 0,
        })
    }

    /// Opens the first connection of each of `n_workers` workers and primes it; returns once
    /// every one is idle or has failed.
    fn connect_phase(&mut self, n_workers: u64) -> io::Result<()> {
        for _ in 0..n_workers {
            if !self.plan.claim_connection() {
                break;
            }
            self.workers += 1;
            if let Err(kind) = self.open(true) {
                self.fail(kind, self.config.requests_per_conn - 1);
                self.vacant += 1;
            }
        }
        while self.active > 0 {
            self.turn()?;
        }
        Ok(())
    }

    /// Carries the schedule until it is used up and every request in flight has ended.
    fn schedule_phase(&mut self) -> io::Result<()> {
        self.scheduling = true;
        for _ in 0..std::mem::take(&mut self.vacant) {
            self.replace();
        }
        self.dispatch_due()?;
        while !(self.finished && self.active == 0) {
            self.turn()?;
        }
        // A count-bounded phase counts what it gave up on as its connections' unused
        // requests; a timed one has no such count, so its given-up requests are added here.
        if !self.plan.bounded_by_count() {
            self.measurements.requests_not_sent += self.given_up;
        }
        Ok(())
    }

    /// One wait and one chunk of events: their IO, one clock reading, their judgement,
    /// then every request due, then the timeouts.
    fn turn(&mut self) -> io::Result<()> {
        let timeout = if self.gathers() {
            let now = Instant::now();
            self.timer.arm(now + SNOOZE, now)?;
            self.timer.wait()?;
            Some(Duration::ZERO)
        } else if self.snoozes() {
            self.timer.wait()?;
            // What fell due is written before the replies that came meanwhile are read: they
            // are stamped, so reading them later costs their latency nothing, while each read
            // before the writes (up to a chunk of them) would add to every due request's lag.
            self.dispatch_due()?;
            Some(Duration::ZERO)
        } else {
            self.deadlines
                .first()
                .map(|first| first.saturating_duration_since(Instant::now()))
        };
        match self.poll.poll(&mut self.events, timeout) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => return Ok(()),
            Err(e) => return Err(e),
        }
        let mut n_events = 0;
        for event in self.events.iter() {
            n_events += 1;
            if event.token() == TIMER {
                self.timer.fired();
                continue;
            }
            let Some(connection) = self.connections.get_mut(event.token().0) else {
                continue;
            };
            match connection.state {
                State::Connecting { .. } | State::Parked => {}
                State::Busy(_) | State::Idle { .. } => {
                    if event.is_writable() {
                        if let Err(kind) = connection.write_rest(&self.expect.request) {
                            connection.error.get_or_insert(kind);
                        }
                    }
                    if event.is_readable() || event.is_read_closed() || event.is_error() {
                        connection.read_available(&mut self.scratch, event.is_read_closed());
                    }
                }
            }
            self.ready.push((event.token().0, connection.id));
        }
        self.drained = n_events < CHUNK;
        self.clocks = Clocks::now();
        let now = self.clocks.monotonic;
        let mut ready = std::mem::take(&mut self.ready);
        for (key, id) in ready.drain(..) {
            if self.connections.get(key).is_some_and(|c| c.id == id) {
                self.settle(key, now)?;
            }
        }
        self.ready = ready;
        // Timeouts first: a worker whose connection timed out may be done, and the schedule
        // with it, which the dispatch must see before the loop waits again.
        self.expire(Instant::now());
        self.dispatch_due()
    }

    /// Whether the next wait is for the timer alone, replies left unread until it fires: the
    /// schedule is under way, a connection is idle, the timer is armed to fire within
    /// [`SNOOZE`], no event is left over from the last poll, and replies carry the kernel's
    /// arrival stamp. Then a reply read late still ends at its arrival, so waking for each
    /// one would cost a wake-up and an `epoll_wait` and gain nothing: the connection it frees
    /// is idle from its arrival either way (see [`EventLoop::complete`]), and the timer's
    /// wake-up writes what is due, then reads every reply in. Without stamps (the kernel
    /// turns them on late, or not at all) a reply is timed by its read, and the loop wakes
    /// for each. While no connection is idle, a request due may be waiting for one, so the
    /// loop wakes for the reply that frees one.
    fn snoozes(&self) -> bool {
        self.scheduling
            && !self.idle.is_empty()
            && self.stamped
            && self.drained
            && self
                .timer
                .armed()
                .is_some_and(|at| at.saturating_duration_since(Instant::now()) <= SNOOZE)
    }

    /// Whether the next wait sleeps a [`SNOOZE`] on the timer, gathering replies, though no
    /// request is due: no connect is under way (its time is read when its event is handled),
    /// no event is left over from the last poll, and either the schedule has not begun (the
    /// replies are the unmeasured primes) or it is over and replies carry the kernel's
    /// arrival stamp (the last replies, whose latency does not depend on when they are
    /// read). Waking for each reply there cost a context switch per few replies: priming
    /// 10000 connections against server-mio at 100 ms took about 3200 wake-ups in 150 ms,
    /// and a 1 s run at 10,000 requests/s took 6400 context switches in all; gathered, 2200.
    fn gathers(&self) -> bool {
        self.connecting == 0
            && self.drained
            && (!self.scheduling || (self.finished && self.stamped))
    }

    /// Acts on what a connection's IO of this chunk brought, `now` being the time read
    /// after the chunk's reads.
    fn settle(&mut self, key: usize, now: Instant) -> io::Result<()> {
        match self.connections[key].state {
            State::Connecting { began, first } => match self.connections[key].connect_result() {
                Ok(false) => {}
                Ok(true) => {
                    self.measurements
                        .record_connect(now.saturating_duration_since(began));
                    if first {
                        let since = now.saturating_duration_since(self.plan.created);
                        let all = &mut self.measurements.all_connected;
                        *all = (*all).max(Some(since));
                    }
                    if self.scheduling {
                        self.go_idle(key, now);
                    } else {
                        self.prime(key, now);
                    }
                }
                Err(kind) => self.end(key, kind),
            },
            State::Busy(_) => self.judge(key, now),
            State::Idle { .. } | State::Parked => {}
        }
        Ok(())
    }

    /// Writes the unmeasured request that primes a new connection before the schedule.
    fn prime(&mut self, key: usize, now: Instant) {
        let request = Request {
            scheduled: None,
            written: 0,
            sent: None,
        };
        self.start(key, request, now);
    }

    /// Puts `request` in flight on the connection at `key` and writes what the socket takes.
    fn start(&mut self, key: usize, request: Request, now: Instant) {
        self.set_state(key, State::Busy(request));
        let ticket = self.deadlines.push(now + self.expect.timeout, key);
        let connection = &mut self.connections[key];
        connection.ticket = ticket;
        match connection.write_rest(&self.expect.request) {
            Err(kind) => self.end(key, kind),
            // Bytes already received (or the peer's close) are the reply's start.
            Ok(true) if !connection.received.is_empty() || connection.peer_closed => {
                self.judge(key, Instant::now());
            }
            Ok(_) => {}
        }
    }

    /// Judges what a busy connection has received.
    fn judge(&mut self, key: usize, now: Instant) {
        let connection = &mut self.connections[key];
        let State::Busy(request) = connection.state else {
            return;
        };
        let verdict = if request.written < self.expect.request.len() {
            Ok(None)
        } else {
            self.expect
                .judge(&connection.received, connection.peer_closed)
        };
        match verdict {
            Ok(Some(n)) => {
                connection.received.drain(..n);
                self.complete(key, request, now);
            }
            Ok(None) => {
                if let Some(kind) = connection.error {
                    self.end(key, kind);
                }
            }
            Err(kind) => self.end(key, kind),
        }
    }

    /// Records a request whose whole, right reply was read by `now`: it ended when the
    /// reply arrived, as the kernel stamped it (kept between the send and the read), or at
    /// `now` when there is no stamp. The connection is idle from that end: a request that
    /// waited for a connection while this reply lay unread waited for the client, and its
    /// client lag says so.
    fn complete(&mut self, key: usize, request: Request, now: Instant) {
        let arrived = self.connections[key].arrived.take();
        self.stamped = arrived.is_some();
        let Some(scheduled) = request.scheduled else {
            self.go_idle(key, now);
            return;
        };
        let sent = request.sent.unwrap_or(now);
        let arrived = arrived.map(|stamp| self.clocks.instant_of(stamp).max(sent).min(now));
        let times = RequestTimes {
            due: scheduled.due,
            ready: scheduled.ready,
            sent,
            done: arrived.unwrap_or(now),
            read: arrived.map(|_| now),
        };
        if self.plan.measures(times.due) {
            self.measurements.record_request(&times, true);
            self.progress(1);
        }
        let connection = &mut self.connections[key];
        connection.requests_left -= 1;
        if connection.requests_left == 0 {
            self.remove(key);
            self.replace();
        } else {
            self.go_idle(key, times.done);
        }
    }

    /// Queues the connection at `key` as idle since `now`, or parks it once the schedule
    /// is over.
    fn go_idle(&mut self, key: usize, now: Instant) {
        if self.finished {
            self.park(key);
        } else {
            self.set_state(key, State::Idle { since: now });
            self.idle.push_back(key);
        }
    }

    /// Keeps the connection open, unused, until the loop ends; a count-bounded phase counts
    /// its requests left as not sent.
    fn park(&mut self, key: usize) {
        if self.plan.bounded_by_count() {
            self.measurements.requests_not_sent += self.connections[key].requests_left;
        }
        self.set_state(key, State::Parked);
    }

    /// Writes every request due by now to the connections idle longest, until none is due
    /// or none is idle, and while one is idle arms the timer for the next due time, or for
    /// the last one due within a [`QUANTUM`] after it (see [`Dues::batch_end`]).
    fn dispatch_due(&mut self) -> io::Result<()> {
        if !self.scheduling {
            return Ok(());
        }
        while !self.finished {
            if self.workers == 0 {
                self.finish();
                break;
            }
            let now = Instant::now();
            let Some(due) = self.dues.peek() else {
                self.finish();
                break;
            };
            if due > now {
                if !self.idle.is_empty() {
                    self.timer
                        .arm(self.dues.batch_end(QUANTUM).unwrap_or(due), now)?;
                }
                break;
            }
            if now.saturating_duration_since(due) > self.config.effective_give_up_after() {
                self.dues.advance();
                if self.plan.measures(due) {
                    self.given_up += 1;
                }
                continue;
            }
            let Some(key) = self.idle.pop_front() else {
                break;
            };
            self.dues.advance();
            self.hand_out(key, due, now);
        }
        Ok(())
    }

    /// Writes the request due at `due` on the idle connection at `key`.
    fn hand_out(&mut self, key: usize, due: Instant, now: Instant) {
        let connection = &self.connections[key];
        if let Some(kind) = connection.error {
            self.end(key, kind);
            return;
        }
        let State::Idle { since } = connection.state else {
            return;
        };
        let scheduled = Scheduled {
            due,
            ready: due.max(since),
        };
        let request = Request {
            scheduled: Some(scheduled),
            written: 0,
            sent: None,
        };
        self.start(key, request, now);
    }

    /// The schedule is over: every idle connection is parked, and every busy one once its
    /// reply is in.
    fn finish(&mut self) {
        self.finished = true;
        while let Some(key) = self.idle.pop_front() {
            self.park(key);
        }
    }

    /// Ends every connection whose deadline has passed by `now`.
    fn expire(&mut self, now: Instant) {
        loop {
            let connections = &self.connections;
            let live = |entry: &deadlines::Entry| {
                connections
                    .get(entry.key)
                    .is_some_and(|c| c.ticket == entry.ticket && c.timed())
            };
            let Some(entry) = self.deadlines.pop_expired(now, live) else {
                return;
            };
            let kind = match self.connections[entry.key].state {
                State::Connecting { .. } => FailureKind::ConnectTimeout,
                _ => FailureKind::ReplyTimeout,
            };
            self.end(entry.key, kind);
        }
    }

    /// Starts a connect for a worker; `first` marks the connections opened before the
    /// schedule.
    fn open(&mut self, first: bool) -> Result<(), FailureKind> {
        let source = source_address(self.next_source, self.config.effective_source_addresses());
        self.next_source += self.shard.n_threads;
        let began = Instant::now();
        let mut stream =
            start_connect(self.config.target, source).map_err(|e| classify(&e, Phase::Connect))?;
        let key = self.connections.vacant_key();
        self.poll
            .registry()
            .register(
                &mut stream,
                Token(key),
                Interest::READABLE | Interest::WRITABLE,
            )
            .map_err(|e| classify(&e, Phase::Connect))?;
        self.next_id += 1;
        let state = State::Connecting { began, first };
        let mut connection =
            Connection::connecting(stream, state, self.config.requests_per_conn, self.next_id);
        connection.ticket = self.deadlines.push(began + self.expect.timeout, key);
        self.connections.insert(connection);
        self.active += 1;
        self.connecting += 1;
        Ok(())
    }

    /// A worker's connection is gone: it opens another while the plan has some (before the
    /// schedule, when the schedule begins), and is done otherwise.
    fn replace(&mut self) {
        loop {
            if !self.plan.claim_connection() {
                self.workers -= 1;
                return;
            }
            if self.finished {
                // Every connection left would be told at once that the schedule is over: a
                // count-bounded phase counts their requests as not sent without opening them.
                if self.plan.bounded_by_count() {
                    let per_conn = self.config.requests_per_conn;
                    self.measurements.requests_not_sent += per_conn;
                    while self.plan.claim_connection() {
                        self.measurements.requests_not_sent += per_conn;
                    }
                }
                self.workers -= 1;
                return;
            }
            match self.open(false) {
                Ok(()) => return,
                Err(_) if self.warming_up() => {}
                Err(kind) => self.fail(kind, self.config.requests_per_conn - 1),
            }
        }
    }

    /// Counts the failure of the connection at `key` and its requests it will not send, and
    /// closes it.
    fn end(&mut self, key: usize, kind: FailureKind) {
        let requests_left = self.connections[key].requests_left;
        if !self.fails_in_warmup(key) {
            self.fail(kind, requests_left.saturating_sub(1));
        }
        self.remove(key);
        if self.scheduling {
            self.replace();
        } else {
            self.vacant += 1;
        }
    }

    /// Whether the schedule is in its unmeasured warm-up ([`Plan::with_warmup`]).
    fn warming_up(&self) -> bool {
        self.scheduling && !self.plan.measures(Instant::now())
    }

    /// Whether the connection at `key`, failing now, fails the warm-up rather than the
    /// measured run: the request it carries was due in the warm-up, or it carries none and
    /// the warm-up is on. A failure is the measured run's when its request is: counting
    /// the warm-up's failures against the window's requests would mix two runs' figures.
    /// (The connects and primes before the schedule are the measured run's connections.)
    fn fails_in_warmup(&self, key: usize) -> bool {
        match self.connections[key].state {
            State::Busy(Request {
                scheduled: Some(scheduled),
                ..
            }) => !self.plan.measures(scheduled.due),
            _ => self.warming_up(),
        }
    }

    /// Closes the connection at `key`.
    fn remove(&mut self, key: usize) {
        let connection = self.connections.remove(key);
        if connection.timed() {
            self.active -= 1;
        }
        if matches!(connection.state, State::Connecting { .. }) {
            self.connecting -= 1;
        }
    }

    fn set_state(&mut self, key: usize, state: State) {
        let connection = &mut self.connections[key];
        let was_timed = connection.timed();
        if matches!(connection.state, State::Connecting { .. }) {
            self.connecting -= 1;
        }
        connection.state = state;
        match (was_timed, connection.timed()) {
            (false, true) => self.active += 1,
            (true, false) => self.active -= 1,
            _ => {}
        }
    }

    /// Counts a failure, and the requests of its connection that will not be sent.
    fn fail(&mut self, kind: FailureKind, requests_cancelled: u64) {
        self.progress(1 + requests_cancelled);
        self.measurements.failures.add(kind, 1);
        if self.plan.bounded_by_count() {
            self.measurements.requests_not_sent += requests_cancelled;
        }
    }

    fn progress(&self, requests: u64) {
        if self.config.progress {
            self.plan.finished.fetch_add(requests, Ordering::Relaxed);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dues(n_requests: u64, rate: f64, stride: u64) -> (Dues, Instant) {
        let plan = Arc::new(Plan::new(n_requests, 1, None, Some(rate)));
        let origin = plan.begin_schedule();
        let dues = Dues {
            plan,
            first: 0,
            stride,
            next: 0,
        };
        (dues, origin)
    }

    #[test]
    fn a_wake_up_takes_every_request_due_within_the_window_of_the_next_one() {
        let window = Duration::from_micros(500);
        // 2000/s: requests 500 µs apart, two to a wake-up.
        let (mut at_2000, origin) = dues(10, 2000.0, 1);
        assert_eq!(at_2000.batch_end(window), Some(origin + window));
        at_2000.advance();
        at_2000.advance();
        assert_eq!(at_2000.batch_end(window), Some(origin + window * 3));
        // 1000/s: 1 ms apart, each its own.
        let (spread, origin) = dues(10, 1000.0, 1);
        assert_eq!(spread.batch_end(window), Some(origin));
        // A thread's share (every 4th of 8000/s) is as far apart as 2000/s.
        let (share, origin) = dues(40, 8000.0, 4);
        assert_eq!(share.batch_end(window), Some(origin + window));
        // The schedule's end stops the look-ahead, and nothing is due past it.
        let (mut last, origin) = dues(2, 10_000.0, 1);
        assert_eq!(
            last.batch_end(window),
            Some(origin + Duration::from_micros(100))
        );
        last.advance();
        last.advance();
        assert_eq!(last.batch_end(window), None);
    }
}
