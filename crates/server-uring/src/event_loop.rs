//! The completion loop: one thread, one ring, every connection.
//!
//! Each turn of the loop:
//!
//! 1. **One `io_uring_enter`** submits every operation queued since the last turn (receives,
//!    sends, cancellations, accepts) and waits for at least one completion, or until the first
//!    timer of the shared [`Timers`] queue is due (the wait's timeout, `IORING_FEAT_EXT_ARG`);
//!    asyncio: `selector.select(timeout)`, except that the IO itself happened in the kernel.
//! 2. **Completions.** Each one names, in its `user_data`, a connection's slab key and the
//!    operation ([`Op`]), or one of the loop's own operations (the accept, the stop signal's
//!    poll). A receive's bytes are copied into the protocol and its buffer goes straight back
//!    to the ring; a send's completion tells the driver how much left.
//! 3. **Timers** that are due fire (a request's delay, the idle limit, a resume of accepting,
//!    the shutdown deadline).
//! 4. After every callback the connection is driven again, and what it asks for is queued
//!    for the next turn's single enter: submissions are batched, never made one by one.
//!
//! # Why the wait's timeout rather than timeout operations
//!
//! The deadlines live in server-common's `(deadline, id)` queue as in server-mio, and the loop
//! waits no longer than the first of them. A ring timeout operation per deadline would cost an
//! operation to arm, one to cancel and a completion for each of them whenever a deadline moves
//! (the idle limit moves with every request); the wait's timeout costs nothing, and the enter
//! that carries it is made anyway.
//!
//! # Accepting
//!
//! A multishot accept (Linux 5.19) stays armed and completes once per connection; on a kernel
//! that refuses it (`EINVAL` before any connection) the loop falls back to one single-shot
//! accept at a time. The shared accept policy applies as in every server: a failure counts and
//! pauses (the multishot accept is cancelled and a resume timer armed), and at
//! `max_connections` the accept is cancelled too. Connections the kernel completed before the
//! cancellation took effect are *parked*, not refused: they wait unserved, as they would have
//! in the backlog, and are admitted first when room frees up.
//!
//! # Offload
//!
//! With `--offload N` the loop holds an [`Offload`] on the server's pool. A connection's
//! `block` or `spin` delay is submitted there under its [`server_common::Ticket`], and a
//! worker's completion writes the loop's eventfd, the one the stop signal writes, whose poll
//! is in the ring: the wake-up is one more completion of the same enter, and no thread but the
//! loop's touches the ring (it is single-issuer). `IORING_OP_MSG_RING` would post the
//! completion straight into the ring, but every worker would need a ring of its own to send
//! it from; an eventfd costs one `write` per batch of completions. The poll stays armed while
//! the loop runs or any offloaded spend is out, so a completion is never missed in a drain.
//!
//! # Cancellation, close and memory
//!
//! See the crate docs for the invariants. In short: a connection's slot is freed only when
//! every operation it submitted has completed (cancellations included), the loop's own
//! operations reference no memory at all (the accept passes no address, the stop poll has no
//! buffer), and the loop ends only once its accept and poll have completed too, after which it
//! unregisters the buffer ring.

use std::collections::VecDeque;
use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, TcpListener};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use io_uring::types::{Fd, SubmitArgs, Timespec};
use io_uring::{IoUring, cqueue, opcode, squeue};
use server_common::{
    AcceptBackoff, Driver, LoopSettings, LoopTimer as Timer, Offload, OffloadPool, Stats, TimerKey,
    Timers, set_nodelay,
};
use slab::Slab;

use crate::buffers::{self, BufferRing};
use crate::connection::{Connection, Op, Progress, Received, Submit};
use crate::ring::Ring;

/// `user_data` of the accept (multishot or single-shot).
const ACCEPT: u64 = u64::MAX;
/// `user_data` of the poll on the eventfd (the stop signal, offload completions).
const WAKE: u64 = u64::MAX - 1;
/// `user_data` of a cancellation of the accept.
const ACCEPT_CANCEL: u64 = u64::MAX - 2;
/// `user_data` of a cancellation of the eventfd poll (a drain with no connection left but
/// offloaded spends still out for closed ones).
const WAKE_CANCEL: u64 = u64::MAX - 3;
/// Submission queue slots; the completion queue has four times as many. A turn that queues
/// more (10000 connections whose delays end together) submits early, once per full queue.
const SUBMISSION_ENTRIES: u32 = 4096;
/// Bytes of the buffer a shutdown reads sockets into synchronously.
const SCRATCH_BYTES: usize = 64 * 1024;

/// The `user_data` of a connection's operation: its slab key and the operation.
fn user_data(key: usize, op: Op) -> u64 {
    let tag = match op {
        Op::Recv => 0,
        Op::Send => 1,
        Op::Cancel => 2,
    };
    ((key as u64) << 2) | tag
}

/// The connection and operation a completion is for.
fn decode(user_data: u64) -> (usize, Op) {
    let op = match user_data & 3 {
        0 => Op::Recv,
        1 => Op::Send,
        _ => Op::Cancel,
    };
    ((user_data >> 2) as usize, op)
}

/// What can stop a loop from outside: a flag, and an eventfd whose poll completes in the ring.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    eventfd: Arc<OwnedFd>,
}

impl server_common::Stop for StopHandle {
    /// Sets the flag and writes the eventfd; writing fails only in a broken process.
    fn stop(&self) -> io::Result<()> {
        self.flag.store(true, Ordering::SeqCst);
        signal(&self.eventfd)
    }
}

/// Adds one to `eventfd`, completing the loop's poll on it.
fn signal(eventfd: &OwnedFd) -> io::Result<()> {
    let one = 1u64.to_ne_bytes();
    // SAFETY: writes 8 bytes from a live array to a descriptor the caller keeps open.
    let n = unsafe { libc::write(eventfd.as_raw_fd(), one.as_ptr().cast(), 8) };
    if n == 8 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// One single-threaded completion loop over one listener.
pub struct EventLoop {
    /// Declared before `buffers`: the ring is destroyed before the buffers it may write.
    ring: Ring,
    buffers: BufferRing,
    listener: Option<TcpListener>,
    /// The kernel takes multishot accepts (cleared on its first refusal).
    multishot: bool,
    /// An accept is in the ring (a multishot one until its last completion).
    accept_in_flight: bool,
    /// A cancellation of it is in the ring or done, and its last completion not yet in.
    accept_cancelled: bool,
    /// Cancellations of the accept not yet completed.
    accept_cancels: u32,
    /// Some connection was ever accepted (a later `EINVAL` is not "no multishot").
    ever_accepted: bool,
    /// Accepting is paused until this timer (a back-off, or a re-check at the limit).
    resume_timer: server_common::ResumeTimer,
    /// Connections accepted by the kernel while the loop was full; admitted first.
    parked: VecDeque<OwnedFd>,
    backoff: AcceptBackoff,
    connections: Slab<Connection>,
    timers: Timers<Timer>,
    /// Connections whose receive found no buffer, to submit again after this turn.
    starved: Vec<usize>,
    /// Reused between callbacks: what a connection asks to submit.
    submits: Vec<Submit>,
    /// Reused between turns: the completions taken from the queue.
    batch: Vec<(u64, i32, u32)>,
    scratch: Box<[u8]>,
    settings: LoopSettings,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    eventfd: Arc<OwnedFd>,
    wake_in_flight: bool,
    /// A cancellation of the eventfd poll is in the ring.
    wake_cancel_in_flight: bool,
    /// The server's offload pool, when `block` and `spin` delays go there.
    offload: Option<Offload>,
    draining: bool,
    accepted: u64,
}

impl EventLoop {
    /// A loop that will serve `listener` (bound and listening, blocking: the ring waits for
    /// it), offloading `block` and `spin` delays to `pool` when there is one. Sets up the ring
    /// and its buffers here, on the caller's thread, so that a machine without io_uring fails
    /// the server's start with the reason.
    ///
    /// # Errors
    /// `Unsupported` naming why io_uring cannot be used; creating the eventfd failed.
    pub fn new(
        listener: TcpListener,
        settings: LoopSettings,
        stats: Arc<Stats>,
        pool: Option<Arc<OffloadPool>>,
    ) -> io::Result<(EventLoop, StopHandle)> {
        let ring = Ring::new(SUBMISSION_ENTRIES)?;
        let buffers = BufferRing::register(&ring.ring)?;
        // SAFETY: plain eventfd creation; the result is checked before it is owned.
        let raw = unsafe { libc::eventfd(0, libc::EFD_CLOEXEC | libc::EFD_NONBLOCK) };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a fresh descriptor nobody else owns.
        let eventfd = Arc::new(unsafe { OwnedFd::from_raw_fd(raw) });
        let offload = pool.map(|pool| {
            let eventfd = Arc::clone(&eventfd);
            Offload::new(pool, move || signal(&eventfd))
        });
        let stop = Arc::new(AtomicBool::new(false));
        let backoff = AcceptBackoff::new(Arc::clone(&stats), settings.config.max_connections);
        let event_loop = EventLoop {
            ring,
            buffers,
            listener: Some(listener),
            multishot: true,
            accept_in_flight: false,
            accept_cancelled: false,
            accept_cancels: 0,
            ever_accepted: false,
            resume_timer: server_common::ResumeTimer::default(),
            parked: VecDeque::new(),
            backoff,
            connections: Slab::new(),
            timers: Timers::new(),
            starved: Vec::new(),
            submits: Vec::new(),
            batch: Vec::new(),
            scratch: vec![0; SCRATCH_BYTES].into_boxed_slice(),
            settings,
            stats,
            stop: Arc::clone(&stop),
            eventfd: Arc::clone(&eventfd),
            wake_in_flight: false,
            wake_cancel_in_flight: false,
            offload,
            draining: false,
            accepted: 0,
        };
        Ok((
            event_loop,
            StopHandle {
                flag: stop,
                eventfd,
            },
        ))
    }

    /// Runs until stopped and drained (or the shutdown deadline passes and every operation
    /// has come back); the same as [`server_common::Loop::run`].
    ///
    /// # Errors
    /// `io_uring_enter` itself failed; connection errors never end the loop.
    pub fn run(mut self) -> io::Result<()> {
        self.ring.enable()?;
        self.arm_wake();
        self.start_accepting();
        while !self.finished() {
            self.enter(self.timers.next_timeout(Instant::now()))?;
            self.complete_all();
            self.fire_timers(Instant::now());
            self.retry_starved();
            if !self.draining && self.stop.load(Ordering::SeqCst) {
                self.begin_shutdown()?;
            }
            self.cancel_wake_when_drained();
        }
        // Nothing is in flight any more; the group goes before the ring and its memory.
        let _ = self
            .ring
            .ring
            .submitter()
            .unregister_buf_ring(buffers::GROUP);
        Ok(())
    }

    fn finished(&self) -> bool {
        self.draining
            && self.connections.is_empty()
            && !self.accept_in_flight
            && self.accept_cancels == 0
            && !self.wake_in_flight
            && !self.wake_cancel_in_flight
    }

    /// A drained loop still keeps its eventfd poll armed while offloaded spends are out; once
    /// no connection is left they can only be for closed ones (run to the end by their
    /// workers, their completions dropped), so the poll is cancelled rather than waited for.
    fn cancel_wake_when_drained(&mut self) {
        if self.draining
            && self.connections.is_empty()
            && self.wake_in_flight
            && !self.wake_cancel_in_flight
        {
            let sqe = opcode::AsyncCancel::new(WAKE)
                .build()
                .user_data(WAKE_CANCEL);
            // SAFETY: a cancellation references no memory.
            unsafe { push(&mut self.ring.ring, &sqe) };
            self.wake_cancel_in_flight = true;
        }
    }

    /// The one `io_uring_enter` of a turn: submits everything queued and waits for a
    /// completion, at most `timeout` (none: until one comes).
    fn enter(&mut self, timeout: Option<Duration>) -> io::Result<()> {
        let submitter = self.ring.ring.submitter();
        let result = match timeout.map(whole_milliseconds) {
            None => submitter.submit_and_wait(1),
            Some(timeout) => {
                let timespec = Timespec::from(timeout);
                let args = SubmitArgs::new().timespec(&timespec);
                submitter.submit_with_args(1, &args)
            }
        };
        match result {
            Ok(_) => Ok(()),
            // The timeout passed, a signal came, or the completion queue must be read first.
            Err(e)
                if matches!(
                    e.raw_os_error(),
                    Some(libc::ETIME | libc::EINTR | libc::EBUSY)
                ) =>
            {
                Ok(())
            }
            Err(e) => Err(e),
        }
    }

    fn complete_all(&mut self) {
        let mut batch = std::mem::take(&mut self.batch);
        batch.clear();
        batch.extend(
            self.ring
                .ring
                .completion()
                .map(|cqe| (cqe.user_data(), cqe.result(), cqe.flags())),
        );
        for &(user_data, result, flags) in &batch {
            match user_data {
                ACCEPT => self.accepted_one(result, flags),
                WAKE => self.woken(),
                ACCEPT_CANCEL => self.accept_cancels = self.accept_cancels.saturating_sub(1),
                WAKE_CANCEL => self.wake_cancel_in_flight = false,
                _ => self.completed(user_data, result, flags),
            }
        }
        self.batch = batch;
    }

    /// A connection's operation completed.
    fn completed(&mut self, user_data: u64, result: i32, flags: u32) {
        let (key, op) = decode(user_data);
        let now = Instant::now();
        let Some(conn) = self.connections.get_mut(key) else {
            // Cannot happen: a slot is freed only with nothing in flight.
            tracing::error!(key, ?op, "a completion for no connection");
            return;
        };
        match op {
            Op::Recv => {
                let buffer = cqueue::buffer_select(flags);
                let outcome = match (result, buffer) {
                    (n, Some(id)) if n > 0 => Received::Data(self.buffers.bytes(id, n as usize)),
                    (n, None) if n > 0 => Received::Failed(io::Error::other(format!(
                        "a receive of {n} bytes came without a buffer"
                    ))),
                    (0, _) => Received::Eof,
                    (n, _) if -n == libc::ENOBUFS => Received::NoBuffer,
                    (n, _) => Received::Failed(io::Error::from_raw_os_error(-n)),
                };
                conn.received(outcome, now);
                if let Some(id) = buffer {
                    self.buffers.recycle(id);
                }
                if result == -libc::ENOBUFS {
                    self.starved.push(key);
                }
            }
            Op::Send => {
                let sent = usize::try_from(result)
                    .map_err(|_| io::Error::from_raw_os_error(result.saturating_neg()));
                conn.sent(sent, now);
            }
            Op::Cancel => conn.cancelled(),
        }
        self.settle(key);
    }

    /// After any callback: let the connection do what its driver says until it waits, queue
    /// what it asks to submit, align its timer, and free it once it is closed.
    fn settle(&mut self, key: usize) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        let mut submits = std::mem::take(&mut self.submits);
        submits.clear();
        let progress = conn.drive(Instant::now(), &mut submits);
        conn.rearm(&mut self.timers, || Timer::Connection(key));
        for &submit in &submits {
            let sqe = match submit {
                Submit::Offload(timeout) => {
                    if let Some(offload) = &mut self.offload {
                        offload.submit(conn.driver().ticket(key), timeout);
                    }
                    continue;
                }
                Submit::Recv => BufferRing::recv(conn.fd()).user_data(user_data(key, Op::Recv)),
                Submit::Send => {
                    let buf = conn.send_buffer();
                    let len = u32::try_from(buf.len()).unwrap_or(u32::MAX);
                    opcode::Send::new(conn.fd(), buf.as_ptr(), len)
                        .flags(libc::MSG_NOSIGNAL)
                        .build()
                        .user_data(user_data(key, Op::Send))
                }
                Submit::Cancel(op) => opcode::AsyncCancel::new(user_data(key, op))
                    .build()
                    .user_data(user_data(key, Op::Cancel)),
            };
            // SAFETY: a send's buffer is the connection's send buffer, which it leaves alone
            // until the send's completion, and the connection stays in its slot until then; a
            // receive's buffer belongs to the buffer ring, alive as long as the ring.
            unsafe { push(&mut self.ring.ring, &sqe) };
        }
        self.submits = submits;
        if !self.wake_in_flight && self.offload.as_ref().is_some_and(|o| o.in_flight() > 0) {
            self.arm_wake();
        }
        if progress == Progress::Closed {
            self.close(key);
        }
    }

    /// Frees a closed connection's slot (asyncio: `connection_lost`), cancels its timer and,
    /// if accepting was paused, accepts again: a descriptor or a place just freed up.
    fn close(&mut self, key: usize) {
        let Some(conn) = self.connections.try_remove(key) else {
            return;
        };
        if let (true, Some(offload)) = (conn.driver().is_offloaded(), &mut self.offload) {
            offload.cancel(conn.driver().ticket(key));
        }
        if let Some(timer) = conn.close() {
            self.timers.cancel(timer);
        }
        if !self.draining && (self.resume_timer.is_armed(&self.timers) || !self.parked.is_empty()) {
            self.resume_accepting();
        }
    }

    fn retry_starved(&mut self) {
        for key in std::mem::take(&mut self.starved) {
            if self
                .connections
                .get_mut(key)
                .is_some_and(|c| c.take_starved())
            {
                self.settle(key);
            }
        }
    }

    fn fire_timers(&mut self, now: Instant) {
        // server-common's, as server-mio's: which timers are due, in what order, and which
        // wait for the next round; what each one does is this loop's `TimerLoop` below.
        server_common::fire_due(self, now);
    }

    /// Arms the poll on the stop eventfd.
    fn arm_wake(&mut self) {
        let sqe = opcode::PollAdd::new(Fd(self.eventfd.as_raw_fd()), libc::POLLIN as u32)
            .build()
            .user_data(WAKE);
        // SAFETY: a poll references no memory.
        unsafe { push(&mut self.ring.ring, &sqe) };
        self.wake_in_flight = true;
    }

    /// The eventfd was written: by a stop (the flag is read after this turn) or by offload
    /// workers, whose completions are handed on now. The poll is armed again unless the loop
    /// is stopping with no offloaded spend out that a connection still waits for.
    fn woken(&mut self) {
        self.wake_in_flight = false;
        let mut sink = [0u8; 8];
        // SAFETY: reads at most 8 bytes into a live array from a non-blocking eventfd.
        unsafe { libc::read(self.eventfd.as_raw_fd(), sink.as_mut_ptr().cast(), 8) };
        self.take_offloaded();
        let offloaded = self.offload.as_ref().is_some_and(|o| o.in_flight() > 0);
        let awaited = offloaded && !(self.draining && self.connections.is_empty());
        if (!self.stop.load(Ordering::SeqCst) || awaited) && !self.wake_in_flight {
            self.arm_wake();
        }
    }

    /// Hands each finished offloaded spend to its connection, if that connection is still the
    /// one at the ticket's key, and drives it on.
    fn take_offloaded(&mut self) {
        let done = self.offload.as_mut().map(Offload::completed);
        for ticket in done.unwrap_or_default() {
            let now = Instant::now();
            if let Some(conn) = self.connections.get_mut(ticket.key) {
                if conn.driver_mut().offload_done(ticket, now) {
                    self.settle(ticket.key);
                }
            }
        }
    }

    /// Submits an accept unless one is in flight, accepting is paused or the loop is full.
    fn start_accepting(&mut self) {
        if self.draining || self.accept_in_flight || self.resume_timer.is_armed(&self.timers) {
            return;
        }
        let Some(listener) = &self.listener else {
            return;
        };
        let fd = Fd(listener.as_raw_fd());
        if !self.backoff.has_room() {
            self.pause_accepting(AcceptBackoff::FULL_RECHECK);
            return;
        }
        // No peer address is asked for: a multishot accept cannot take one, and the driver
        // needs it only for `--verbose` (see `admit`).
        let sqe = if self.multishot {
            opcode::AcceptMulti::new(fd)
                .flags(libc::SOCK_CLOEXEC)
                .build()
        } else {
            opcode::Accept::new(fd, std::ptr::null_mut(), std::ptr::null_mut())
                .flags(libc::SOCK_CLOEXEC)
                .build()
        };
        // SAFETY: an accept without an address references no memory.
        unsafe { push(&mut self.ring.ring, &sqe.user_data(ACCEPT)) };
        self.accept_in_flight = true;
        self.accept_cancelled = false;
    }

    /// The accept completed once: a connection, or a failure; without `IORING_CQE_F_MORE` it
    /// is over and must be submitted again.
    fn accepted_one(&mut self, result: i32, flags: u32) {
        if !cqueue::more(flags) {
            self.accept_in_flight = false;
        }
        if result >= 0 {
            // SAFETY: a successful accept returns a fresh descriptor that nobody else owns.
            let fd = unsafe { OwnedFd::from_raw_fd(result) };
            self.ever_accepted = true;
            self.backoff.accepted();
            self.admit_or_park(fd);
        } else if self.accept_refused(-result) {
            self.multishot = false;
            tracing::info!("the kernel refuses multishot accept; accepting one at a time");
        } else if -result != libc::ECANCELED && !self.draining {
            let err = io::Error::from_raw_os_error(-result);
            if let Some(pause) = self.backoff.failed(&err) {
                self.pause_accepting(pause);
            }
        }
        if self.draining {
            if !self.accept_in_flight {
                self.listener = None;
            }
            return;
        }
        self.start_accepting();
    }

    /// Whether an accept error says the kernel has no multishot accept.
    fn accept_refused(&self, errno: i32) -> bool {
        errno == libc::EINVAL && self.multishot && !self.ever_accepted && !self.accept_in_flight
    }

    /// Admits a new connection, or parks it when the loop is full (or others wait before it).
    fn admit_or_park(&mut self, fd: OwnedFd) {
        if self.draining {
            self.admit(fd);
        } else if !self.parked.is_empty() || !self.backoff.has_room() {
            self.parked.push_back(fd);
            self.pause_accepting(AcceptBackoff::FULL_RECHECK);
        } else {
            self.admit(fd);
            if !self.backoff.has_room() {
                self.pause_accepting(AcceptBackoff::FULL_RECHECK);
            }
        }
    }

    /// Takes a new connection in and gives it its first turn (asyncio: creating the transport,
    /// which calls `connection_made` and starts reading). During a shutdown it reads what the
    /// socket already holds and is told to finish at once.
    fn admit(&mut self, fd: OwnedFd) {
        if let Err(e) = set_nodelay(&fd) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        // The address costs a system call per connection; only `--verbose` logs it.
        let peer = if self.settings.config.verbose {
            peer_addr(&fd)
        } else {
            SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0)
        };
        let id = self.settings.connection_id(self.accepted);
        self.accepted += 1;
        let now = Instant::now();
        let driver = Driver::new(&self.settings.config, self.stats.open(), id, peer, now);
        let mut conn = Connection::new(fd, driver);
        if self.offload.is_some() {
            conn.offload_spends();
        }
        if self.draining {
            conn.read_now(&mut self.scratch, now);
            conn.shutdown(now);
        }
        let key = self.connections.insert(conn);
        self.settle(key);
    }

    /// Stops accepting for `pause`: cancels the accept in flight and arms the resume timer. A
    /// closing connection resumes sooner; the timer covers room freed elsewhere.
    fn pause_accepting(&mut self, pause: Duration) {
        self.cancel_accept();
        let at = Instant::now() + pause;
        self.resume_timer.arm(&mut self.timers, at);
    }

    fn cancel_accept(&mut self) {
        if self.accept_in_flight && !self.accept_cancelled {
            let sqe = opcode::AsyncCancel::new(ACCEPT)
                .build()
                .user_data(ACCEPT_CANCEL);
            // SAFETY: a cancellation references no memory.
            unsafe { push(&mut self.ring.ring, &sqe) };
            self.accept_cancelled = true;
            self.accept_cancels += 1;
        }
    }

    /// Admits parked connections while there is room, then accepts again.
    fn resume_accepting(&mut self) {
        self.resume_timer.cancel(&mut self.timers);
        while !self.parked.is_empty() && self.backoff.has_room() {
            if let Some(fd) = self.parked.pop_front() {
                self.admit(fd);
            }
        }
        if self.parked.is_empty() {
            self.start_accepting();
        } else {
            self.pause_accepting(AcceptBackoff::FULL_RECHECK);
        }
    }

    /// Stops accepting (the listener closes once its accept is gone, so new connects are
    /// refused), takes in what the kernel already completed, reads what every socket already
    /// holds, tells every protocol to finish up (asyncio: `server.close()`, then the
    /// application's own drain), and arms the shutdown deadline.
    ///
    /// The deadline is server-common's, as server-mio's; the drain stays here, because a
    /// completion loop must first take the completions the kernel already has and then read
    /// each socket outside the ring (no completion will bring those bytes), where a readiness
    /// loop only marks the socket readable.
    fn begin_shutdown(&mut self) -> io::Result<()> {
        self.draining = true;
        self.cancel_accept();
        let now = Instant::now();
        let deadline = now + self.settings.config.shutdown_timeout;
        server_common::arm_shutdown_deadline(&mut self.timers, &mut self.resume_timer, deadline);
        // Completions the kernel already has (bytes received into a pending receive, accepted
        // connections) first: they are requests already received.
        self.enter(Some(Duration::ZERO))?;
        self.complete_all();
        self.accept_queued();
        for fd in std::mem::take(&mut self.parked) {
            self.admit(fd);
        }
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            if let Some(conn) = self.connections.get_mut(key) {
                conn.read_now(&mut self.scratch, now);
                conn.shutdown(now);
            }
            self.settle(key);
        }
        if !self.accept_in_flight {
            self.listener = None;
        }
        Ok(())
    }

    /// Accepts, without waiting, the connections still in the listener's queue.
    fn accept_queued(&mut self) {
        let Some(listener) = &self.listener else {
            return;
        };
        let mut queued = Vec::new();
        if listener.set_nonblocking(true).is_ok() {
            while let Ok((stream, _)) = listener.accept() {
                queued.push(OwnedFd::from(stream));
            }
        }
        for fd in queued {
            self.admit(fd);
        }
    }

    /// The shutdown deadline passed: closes whatever is left, once its operations are back
    /// (a completion loop cannot free a connection the kernel still writes into).
    fn close_all(&mut self) {
        let keys = server_common::left_at_deadline(self.connections.iter().map(|(key, _)| key));
        for key in keys {
            if let Some(conn) = self.connections.get_mut(key) {
                conn.close_now();
            }
            self.settle(key);
        }
    }
}

/// The loop's timers fire through server-common's [`server_common::fire_due`], as
/// server-mio's do; only what the shutdown deadline does is this loop's own.
impl server_common::TimerLoop for EventLoop {
    fn timers(&mut self) -> &mut Timers<Timer> {
        &mut self.timers
    }

    fn connection_due(&mut self, key: usize, fired: TimerKey) {
        if let Some(conn) = self.connections.get_mut(key) {
            conn.timeout(Some(fired), Instant::now());
            self.settle(key);
        }
    }

    fn resume_due(&mut self) {
        self.resume_accepting();
    }

    /// Starts closing what is left at once; the loop ends when the last completion is back.
    fn shutdown_deadline_due(&mut self) {
        self.close_all();
    }
}

impl server_common::Loop for EventLoop {
    fn run(self) -> io::Result<()> {
        EventLoop::run(self)
    }
}

/// `timeout` rounded up to a whole millisecond: the resolution `epoll_wait` gives server-mio
/// (mio rounds up the same way), so that both loops coalesce the timers due within the same
/// millisecond into one wake-up, and neither wakes early. A nanosecond wait would wake once
/// per distinct deadline: 10000 connections accepted over a few milliseconds would cost as
/// many turns per delay.
fn whole_milliseconds(timeout: Duration) -> Duration {
    let millis = timeout.as_nanos().div_ceil(1_000_000);
    Duration::from_millis(u64::try_from(millis).unwrap_or(u64::MAX))
}

/// Queues `sqe`, handing the queue to the kernel first when it is full.
///
/// # Safety
/// Every buffer `sqe` points to stays valid and untouched until its completion.
unsafe fn push(ring: &mut IoUring, sqe: &squeue::Entry) {
    loop {
        // SAFETY: as the caller promises.
        if unsafe { ring.submission().push(sqe) }.is_ok() {
            return;
        }
        if let Err(e) = ring.submit() {
            tracing::warn!(error = %e, "could not submit a full queue; retrying");
        }
    }
}

/// The client's address, for the `--verbose` log.
fn peer_addr(fd: &OwnedFd) -> SocketAddr {
    socket2::SockRef::from(fd)
        .peer_addr()
        .ok()
        .and_then(|addr| addr.as_socket())
        .unwrap_or(SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), 0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_are_rounded_up_to_whole_milliseconds_as_epoll_waits_are() {
        assert_eq!(whole_milliseconds(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            whole_milliseconds(Duration::from_nanos(1)),
            Duration::from_millis(1)
        );
        assert_eq!(
            whole_milliseconds(Duration::from_micros(2500)),
            Duration::from_millis(3)
        );
        assert_eq!(
            whole_milliseconds(Duration::from_millis(7)),
            Duration::from_millis(7)
        );
    }

    #[test]
    fn user_data_names_the_connection_and_the_operation_and_never_the_loops_own() {
        for key in [0, 1, 4095, 1 << 40] {
            for op in [Op::Recv, Op::Send, Op::Cancel] {
                let data = user_data(key, op);
                assert_eq!(decode(data), (key, op));
                assert!(![ACCEPT, WAKE, ACCEPT_CANCEL, WAKE_CANCEL].contains(&data));
            }
        }
    }
}
