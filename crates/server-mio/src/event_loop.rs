//! The event loop: one thread, one `mio::Poll`, every connection.
//!
//! It is the loop asyncio runs in `BaseEventLoop._run_once`, written out:
//!
//! 1. work out how long `poll` may sleep: zero if a connection yielded with bytes still
//!    waiting, else until the first timer (asyncio: the head of `_scheduled`);
//! 2. `poll` for readiness (asyncio: `selector.select(timeout)`);
//! 3. handle each event: the listener accepts until `WouldBlock`, a connection reads and
//!    writes until `WouldBlock` (asyncio: `_ready` callbacks of the selector's readers and
//!    writers);
//! 4. fire the timers that are due (asyncio: moving due `TimerHandle`s to `_ready`);
//! 5. after every callback, bring the connection's registration and timer in line with what
//!    its protocol now wants.
//!
//! Tokens: the listener and the waker have fixed tokens at the top of the range; a
//! connection's token is its key in the slab. Keys are reused, so an event that arrives for a
//! connection closed earlier in the same round reaches its successor: it only marks that
//! socket ready, a read or write answers `WouldBlock`, and nothing else happens. Spurious
//! wake-ups are harmless by the same reasoning.
//!
//! With `--offload N` the loop holds an [`Offload`] on the server's pool: a connection's
//! `block` or `spin` delay is submitted there under the connection's [`Ticket`](server_common::Ticket) (slab key and
//! id), and a worker's completion comes back through the same [`Waker`] that stop uses; the
//! loop then hands it to the connection only if the ticket's id is still the one at that key,
//! so a completion never reaches a successor in a reused slot.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use mio::event::Event;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};
use server_common::{
    AcceptBackoff, Driver, LoopSettings, LoopTimer as Timer, Offload, OffloadPool, Stats, TimerKey,
    Timers,
};
use slab::Slab;

use crate::connection::{Connection, Progress};

/// The listener's token; connection tokens are slab keys, far below it.
const LISTENER: Token = Token(usize::MAX - 1);
/// The token of the waker that interrupts `poll` for shutdown and offload completions.
const WAKER: Token = Token(usize::MAX);
/// Events taken from the kernel per `poll`.
const EVENTS_CAPACITY: usize = 1024;
/// Bytes read per `read` call; one buffer per loop, shared by every connection.
const READ_BUFFER_BYTES: usize = 64 * 1024;

/// What can stop a loop from outside: a flag and a waker to make `poll` notice it.
#[derive(Debug, Clone)]
pub struct StopHandle {
    flag: Arc<AtomicBool>,
    waker: Arc<Waker>,
}

impl server_common::Stop for StopHandle {
    /// Sets the flag and wakes `poll`; writing to the waker's eventfd fails only in a broken
    /// process.
    fn stop(&self) -> io::Result<()> {
        self.flag.store(true, Ordering::SeqCst);
        self.waker.wake()
    }
}

/// One single-threaded event loop over one listener.
pub struct EventLoop {
    poll: Poll,
    listener: Option<TcpListener>,
    /// The listener is registered (not paused for back-off or the connection limit).
    listening: bool,
    resume_timer: server_common::ResumeTimer,
    backoff: AcceptBackoff,
    connections: Slab<Connection<TcpStream>>,
    timers: Timers<Timer>,
    /// Connections that yielded with their read budget spent, to drive again at once.
    again: Vec<usize>,
    buf: Box<[u8]>,
    settings: LoopSettings,
    stats: Arc<Stats>,
    stop: Arc<AtomicBool>,
    /// The server's offload pool, when `block` and `spin` delays go there.
    offload: Option<Offload>,
    draining: bool,
    deadline_passed: bool,
    accepted: u64,
}

impl EventLoop {
    /// A loop that will serve `listener` (already bound, listening and non-blocking),
    /// offloading `block` and `spin` delays to `pool` when there is one.
    ///
    /// # Errors
    /// Creating the poll, the waker, or registering the listener failed.
    pub fn new(
        listener: TcpListener,
        settings: LoopSettings,
        stats: Arc<Stats>,
        pool: Option<Arc<OffloadPool>>,
    ) -> io::Result<(EventLoop, StopHandle)> {
        let poll = Poll::new()?;
        let waker = Arc::new(Waker::new(poll.registry(), WAKER)?);
        let offload = pool.map(|pool| {
            let waker = Arc::clone(&waker);
            Offload::new(pool, move || waker.wake())
        });
        let stop = Arc::new(AtomicBool::new(false));
        let backoff = AcceptBackoff::new(Arc::clone(&stats), settings.config.max_connections);
        let mut event_loop = EventLoop {
            poll,
            listener: Some(listener),
            listening: false,
            resume_timer: server_common::ResumeTimer::default(),
            backoff,
            connections: Slab::new(),
            timers: Timers::new(),
            again: Vec::new(),
            buf: vec![0; READ_BUFFER_BYTES].into_boxed_slice(),
            settings,
            stats,
            stop: Arc::clone(&stop),
            offload,
            draining: false,
            deadline_passed: false,
            accepted: 0,
        };
        event_loop.resume_accepting()?;
        Ok((event_loop, StopHandle { flag: stop, waker }))
    }

    /// Runs until stopped and drained (or the shutdown deadline passes).
    ///
    /// # Errors
    /// `poll` itself failed; connection errors never end the loop.
    pub fn run(mut self) -> io::Result<()> {
        let mut events = Events::with_capacity(EVENTS_CAPACITY);
        while !self.finished() {
            let timeout = self.poll_timeout();
            match self.poll.poll(&mut events, timeout) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(e),
            }
            for event in events.iter() {
                self.dispatch(event);
            }
            self.fire_timers(Instant::now());
            self.drive_yielded();
            if !self.draining && self.stop.load(Ordering::SeqCst) {
                self.begin_shutdown();
            }
        }
        self.close_all();
        Ok(())
    }

    fn finished(&self) -> bool {
        self.draining && (self.connections.is_empty() || self.deadline_passed)
    }

    fn poll_timeout(&self) -> Option<Duration> {
        if self.again.is_empty() {
            self.timers.next_timeout(Instant::now())
        } else {
            Some(Duration::ZERO)
        }
    }

    fn dispatch(&mut self, event: &Event) {
        match event.token() {
            LISTENER => self.accept_all(),
            // The stop flag is read after the round; offload completions are taken now.
            WAKER => self.take_offloaded(),
            Token(key) => {
                let Some(conn) = self.connections.get_mut(key) else {
                    return; // spurious: the connection is gone
                };
                let broken = event.is_error() || event.is_read_closed() || event.is_write_closed();
                conn.ready(event.is_readable() || broken, event.is_writable() || broken);
                if event.is_read_closed() || event.is_error() {
                    conn.read_closed();
                }
                self.settle(key);
            }
        }
    }

    /// Accepts until `WouldBlock` (asyncio: `_accept_connection`, which also loops up to its
    /// backlog), by the shared accept policy: at the connection limit or after a failure that
    /// is not transient, it stops accepting (see [`EventLoop::pause_accepting`]); pending
    /// connections wait in the kernel's backlog.
    fn accept_all(&mut self) {
        while self.listening {
            if !self.backoff.has_room() {
                self.pause_accepting(AcceptBackoff::FULL_RECHECK);
                return;
            }
            let Some(listener) = &self.listener else {
                return;
            };
            match listener.accept() {
                Ok((stream, peer)) => {
                    self.backoff.accepted();
                    self.admit(stream, peer);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) => {
                    if let Some(pause) = self.backoff.failed(&e) {
                        self.pause_accepting(pause);
                        return;
                    }
                }
            }
        }
    }

    /// Registers a new connection and gives it its first turn (asyncio: creating the
    /// transport, which calls `connection_made` and starts reading).
    fn admit(&mut self, mut stream: TcpStream, peer: SocketAddr) {
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(%peer, error = %e, "could not set TCP_NODELAY");
        }
        let entry = self.connections.vacant_entry();
        let key = entry.key();
        let registry = self.poll.registry();
        if let Err(e) = registry.register(&mut stream, Token(key), Interest::READABLE) {
            tracing::warn!(%peer, error = %e, "could not register a connection; dropping it");
            self.stats.accept_error();
            return;
        }
        let id = self.settings.connection_id(self.accepted);
        self.accepted += 1;
        let now = Instant::now();
        let driver = Driver::new(&self.settings.config, self.stats.open(), id, peer, now);
        let mut conn = Connection::new(stream, driver, Interest::READABLE);
        if self.offload.is_some() {
            conn.offload_spends();
        }
        if self.draining {
            conn.shutdown(now);
        }
        entry.insert(conn);
        self.settle(key);
    }

    /// After any callback: let the connection do what its driver says until it waits, then
    /// close it if it is done, else align the timer and the registered interest with what it
    /// waits for.
    fn settle(&mut self, key: usize) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        match conn.drive(&mut self.buf, Instant::now()) {
            Err(e) => self.close(key, Some(e)),
            Ok(Progress::Closed) => self.close(key, None),
            Ok(progress) => {
                if progress == Progress::Yielded {
                    self.again.push(key);
                }
                if let (Some(spend), Some(offload)) = (conn.take_offload(), &mut self.offload) {
                    offload.submit(conn.driver().ticket(key), spend);
                }
                conn.rearm(&mut self.timers, || Timer::Connection(key));
                self.update_interest(key);
            }
        }
    }

    fn update_interest(&mut self, key: usize) {
        let Some(conn) = self.connections.get_mut(key) else {
            return;
        };
        let Some(wanted) = conn.wanted_interest() else {
            return; // waits only on a timer: keep the old interest
        };
        if wanted == conn.registered() {
            return;
        }
        match self
            .poll
            .registry()
            .reregister(conn.stream_mut(), Token(key), wanted)
        {
            Ok(()) => conn.set_registered(wanted),
            Err(e) => self.close(key, Some(e)),
        }
    }

    /// Closes a connection (asyncio: `connection_lost`), cancels its timer and, if accepting
    /// was paused for lack of room or descriptors, accepts again: one just freed up.
    fn close(&mut self, key: usize, error: Option<io::Error>) {
        let Some(mut conn) = self.connections.try_remove(key) else {
            return;
        };
        let _ = self.poll.registry().deregister(conn.stream_mut());
        if let (true, Some(offload)) = (conn.driver().is_offloaded(), &mut self.offload) {
            offload.cancel(conn.driver().ticket(key));
        }
        if let Some(timer) = conn.close(error.as_ref()) {
            self.timers.cancel(timer);
        }
        if !self.listening && !self.draining {
            if let Err(e) = self.resume_accepting() {
                tracing::warn!(error = %e, "could not resume accepting");
            }
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

    fn fire_timers(&mut self, now: Instant) {
        // server-common's, as server-uring's: which timers are due, in what order, and which
        // wait for the next round; what each one does is this loop's `TimerLoop` below.
        server_common::fire_due(self, now);
    }

    fn drive_yielded(&mut self) {
        for key in std::mem::take(&mut self.again) {
            if let Some(conn) = self.connections.get_mut(key) {
                conn.ready(true, false);
                self.settle(key);
            }
        }
    }

    /// Deregisters the listener and arms a timer to try again after `pause`. A closing
    /// connection resumes sooner; the timer covers room freed elsewhere (another loop's
    /// connections, descriptors of another process).
    fn pause_accepting(&mut self, pause: std::time::Duration) {
        self.stop_listening();
        let at = Instant::now() + pause;
        self.resume_timer.arm(&mut self.timers, at);
    }

    fn stop_listening(&mut self) {
        if let (Some(listener), true) = (&mut self.listener, self.listening) {
            let _ = self.poll.registry().deregister(listener);
        }
        self.listening = false;
    }

    /// Registers the listener again; connections that queued up meanwhile are reported by the
    /// registration itself.
    fn resume_accepting(&mut self) -> io::Result<()> {
        if self.listening || self.draining {
            return Ok(());
        }
        let Some(listener) = &mut self.listener else {
            return Ok(());
        };
        self.resume_timer.cancel(&mut self.timers);
        self.poll
            .registry()
            .register(listener, LISTENER, Interest::READABLE)?;
        self.listening = true;
        Ok(())
    }

    /// Stops accepting (the listener closes, so new connects are refused), tells every
    /// protocol to finish up (asyncio: `server.close()`, then the application's own drain),
    /// and arms the shutdown deadline.
    ///
    /// The deadline is server-common's, as server-uring's; the drain stays here, because a
    /// readiness loop reads what a socket holds by marking it readable and driving it, where
    /// a completion loop must read it outside the ring.
    fn begin_shutdown(&mut self) {
        // Connections the kernel completed before the signal are taken in too: their clients
        // may already have sent requests.
        self.accept_all();
        self.draining = true;
        self.stop_listening();
        self.listener = None;
        let now = Instant::now();
        let deadline = now + self.settings.config.shutdown_timeout;
        server_common::arm_shutdown_deadline(&mut self.timers, &mut self.resume_timer, deadline);
        let keys: Vec<usize> = self.connections.iter().map(|(key, _)| key).collect();
        for key in keys {
            // Read what the kernel already holds first: "requests already received" means
            // received by the machine, not only by the protocol.
            if let Some(conn) = self.connections.get_mut(key) {
                conn.ready(true, false);
            }
            self.settle(key);
            if let Some(conn) = self.connections.get_mut(key) {
                conn.shutdown(now);
            }
            self.settle(key);
        }
    }

    /// Closes whatever outlived the shutdown deadline, at once: nothing of a readiness loop's
    /// connection is in the kernel's hands.
    fn close_all(&mut self) {
        let keys = server_common::left_at_deadline(self.connections.iter().map(|(key, _)| key));
        for key in keys {
            self.close(key, None);
        }
    }
}

/// The loop's timers fire through server-common's [`server_common::fire_due`], as
/// server-uring's do; only what the shutdown deadline does is this loop's own.
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
        if let Err(e) = self.resume_accepting() {
            tracing::warn!(error = %e, "could not resume accepting");
        }
    }

    /// Ends the loop after this turn; `close_all` then closes what is left.
    fn shutdown_deadline_due(&mut self) {
        self.deadline_passed = true;
    }
}

impl server_common::Loop for EventLoop {
    fn run(self) -> io::Result<()> {
        EventLoop::run(self)
    }
}
