//! The bounded worker pool: N threads taking accepted connections from a queue, each
//! serving one connection to its end before taking the next.
//!
//! The queue itself is unbounded in length but not in practice: queued connections count as
//! open, so `max_connections` and the descriptor limit cap it. Every connection's time in
//! the queue is recorded in the stats (`queued_connections`, `peak_queued_connections`,
//! `queue_wait_seconds`), which is what makes a pool's latency explainable.
//!
//! **Connections in arrival order, workers most recently idle first.** Each idle worker
//! sleeps on its own condition variable, on a stack of idle workers; a new connection wakes
//! the top one. A worker's first connection touches pages of its stack that stay resident, so
//! waking workers round-robin (what one shared condition variable does) spreads work over all
//! N in turn and RSS creeps up for as long as some worker is still untouched: 256 workers ×
//! one stack page each was the +14 % growth of the issue-13 soak. Waking the most recently
//! idle keeps the set of workers in use at the peak of concurrent connections (shown as
//! `workers used` in the summary), as folly's `LifoSem` does for the same reason.
//!
//! **No accepted client is left in silence.** A client in the queue has sent its request to a
//! server that accepted it, so it is either served or told why not, in an `ERR` line
//! ([`echo_core::Refusal`]), then closed:
//! - with a queue timeout, a warden thread turns away every connection that has waited longer
//!   (`ERR server busy`, counted as `shed_connections`): load shedding, so that a client learns
//!   instead of hanging while N holders keep the N workers;
//! - at shutdown the workers go on serving the queue; when the shutdown timeout passes, what
//!   is still queued is turned away (`ERR server shutting down`, counted as
//!   `shutdown_refused_connections`) before the connections still busy are forced closed.

use std::collections::VecDeque;
use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use echo_core::Refusal;
use server_common::QueueTicket;

use crate::{Accepted, Shared, THREAD_STACK_BYTES, connection};

/// Reads of a refused client's unread input before the close, so that the close is a FIN
/// after the `ERR` line rather than a reset that could destroy it; bounded, because a
/// hostile client can keep sending.
const REFUSAL_DRAIN_READS: usize = 16;

#[derive(Debug)]
struct State {
    items: VecDeque<(Accepted, QueueTicket)>,
    /// Workers waiting for a connection, the most recently idle last; a worker is listed at
    /// most once, from when it finds the queue empty until it is woken or takes a connection.
    idle: Vec<usize>,
    /// Whether each worker has served a connection yet (for `workers used`).
    used: Vec<bool>,
    /// Set once the pool is being joined: the warden exits.
    closed: bool,
}

#[derive(Debug)]
struct Queue {
    state: Mutex<State>,
    /// One per worker: worker `w` waits on `ready[w]` for a connection (or for the stop).
    ready: Box<[Condvar]>,
    /// The warden waits here for the queue to change (or for its oldest entry's deadline).
    changed: Condvar,
}

impl Queue {
    fn new(workers: usize) -> Queue {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                idle: Vec::with_capacity(workers),
                used: vec![false; workers],
                closed: false,
            }),
            ready: (0..workers).map(|_| Condvar::new()).collect(),
            changed: Condvar::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes every worker (the stop).
    fn wake_all(&self) {
        for ready in &self.ready {
            ready.notify_all();
        }
    }
}

/// A handle on the pool: the acceptor pushes into it, shutdown refuses what is left and joins.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    queue: Arc<Queue>,
    shared: Arc<Shared>,
    threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Pool {
    /// Starts `workers` threads waiting for connections and, with a `queue_timeout`, the
    /// warden that sheds connections queued longer than that.
    pub(crate) fn start(
        workers: usize,
        queue_timeout: Option<Duration>,
        shared: &Arc<Shared>,
    ) -> io::Result<Pool> {
        let queue = Arc::new(Queue::new(workers));
        let mut threads = Vec::with_capacity(workers + 1);
        for worker in 0..workers {
            let (queue, shared) = (Arc::clone(&queue), Arc::clone(shared));
            let handle = std::thread::Builder::new()
                .name("echo-worker".to_owned())
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || work(worker, &queue, &shared))?;
            threads.push(handle);
        }
        if let Some(timeout) = queue_timeout {
            let (queue, shared) = (Arc::clone(&queue), Arc::clone(shared));
            let handle = std::thread::Builder::new()
                .name("echo-queue-warden".to_owned())
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || shed(&queue, &shared, timeout))?;
            threads.push(handle);
        }
        Ok(Pool {
            queue,
            shared: Arc::clone(shared),
            threads: Arc::new(Mutex::new(threads)),
        })
    }

    /// Queues an accepted connection and wakes the most recently idle worker, if any is idle
    /// (otherwise the next worker to finish takes it).
    pub(crate) fn push(&self, accepted: Accepted) {
        let ticket = self.shared.stats.enqueue();
        let mut state = self.queue.lock();
        state.items.push_back((accepted, ticket));
        if let Some(worker) = state.idle.pop() {
            self.queue.ready[worker].notify_one();
        }
        drop(state);
        self.queue.changed.notify_one();
    }

    /// At shutdown (after the stop flag is set): wakes idle workers, which serve what is
    /// queued and exit once the queue is empty.
    pub(crate) fn stop(&self) {
        // Taking the lock first means no worker is between its stop check and its wait.
        let _state = self.queue.lock();
        self.queue.wake_all();
    }

    /// The shutdown timeout passed: turns away every connection still queued with
    /// `ERR server shutting down`; returns how many.
    pub(crate) fn refuse_queued(&self) -> usize {
        let left: Vec<_> = self.queue.lock().items.drain(..).collect();
        let n = left.len();
        for (accepted, ticket) in left {
            refuse(accepted, ticket, Refusal::ShuttingDown, &self.shared);
        }
        n
    }

    /// Waits for every worker and the warden to exit; call after [`Pool::stop`] once the
    /// connections have closed.
    pub(crate) fn join(self) -> io::Result<()> {
        self.queue.lock().closed = true;
        self.queue.changed.notify_all();
        let handles =
            std::mem::take(&mut *self.threads.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            handle
                .join()
                .map_err(|_| io::Error::other("a pool thread panicked"))?;
        }
        Ok(())
    }
}

/// Worker `worker`: take the oldest queued connection, serve it to its end, repeat until
/// shutdown has emptied the queue. With nothing queued it goes on top of the idle stack and
/// sleeps on its own condition variable.
fn work(worker: usize, queue: &Queue, shared: &Shared) {
    loop {
        let next = {
            let mut state = queue.lock();
            let next = loop {
                // Past the give-up instant a queued client could only be told the server is
                // shutting down: `refuse_queued` does that, and counts it as refused.
                if shared.is_giving_up(Instant::now()) {
                    break None;
                }
                if let Some(item) = state.items.pop_front() {
                    if !std::mem::replace(&mut state.used[worker], true) {
                        shared.stats.pool_worker_used();
                    }
                    break Some(item);
                }
                if shared.is_stopping() {
                    break None;
                }
                if !state.idle.contains(&worker) {
                    state.idle.push(worker);
                }
                state = queue.ready[worker]
                    .wait(state)
                    .unwrap_or_else(PoisonError::into_inner);
            };
            // Woken spuriously, or by the stop, while still listed: not idle any more.
            state.idle.retain(|&idle| idle != worker);
            next
        };
        let Some((accepted, ticket)) = next else {
            return;
        };
        shared.stats.dequeue(ticket);
        connection::serve(accepted, shared);
    }
}

/// The warden: sleeps until the oldest queued connection has waited `timeout`, turns away
/// every connection that has (`ERR server busy`), and repeats until the pool is joined. The
/// queue is in arrival order, so the expired connections are always at its front.
fn shed(queue: &Queue, shared: &Shared, timeout: Duration) {
    let mut state = queue.lock();
    while !state.closed {
        let now = Instant::now();
        let mut expired = Vec::new();
        while state
            .items
            .front()
            .is_some_and(|(_, ticket)| ticket.since() + timeout <= now)
        {
            expired.extend(state.items.pop_front());
        }
        if !expired.is_empty() {
            drop(state);
            for (accepted, ticket) in expired {
                refuse(accepted, ticket, Refusal::Busy, shared);
            }
            state = queue.lock();
            continue;
        }
        state = match state
            .items
            .front()
            .map(|(_, ticket)| ticket.since() + timeout)
        {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(now);
                let waited = queue.changed.wait_timeout(state, left);
                waited.unwrap_or_else(PoisonError::into_inner).0
            }
            None => queue
                .changed
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner),
        };
    }
}

/// Tells a queued client why it is not served and closes its connection: the `ERR` line, then
/// a FIN, then its unread input read away so that the close does not turn into a reset.
/// Nothing here blocks: the line is a few bytes into an empty send buffer, and the socket is
/// non-blocking. A client that is already gone is counted as a connection error.
fn refuse(accepted: Accepted, ticket: QueueTicket, refusal: Refusal, shared: &Shared) {
    shared.stats.dequeue(ticket);
    shared.stats.refused(refusal);
    let Accepted {
        registration,
        mut stream,
        guard,
        id,
        peer,
    } = accepted;
    let line = refusal.message(shared.config.protocol.framing);
    let sent = stream
        .set_nonblocking(true)
        .and_then(|()| stream.write_all(&line))
        .and_then(|()| stream.shutdown(Shutdown::Write));
    match &sent {
        Ok(()) => {
            let mut sink = [0u8; 4096];
            for _ in 0..REFUSAL_DRAIN_READS {
                if !matches!(stream.read(&mut sink), Ok(n) if n > 0) {
                    break;
                }
            }
        }
        Err(_) => guard.failed(),
    }
    if shared.config.verbose {
        match sent {
            Ok(()) => tracing::info!(%peer, id, "connection refused: {}", refusal.text()),
            Err(err) => tracing::info!(%peer, id, "connection lost while refused: {err}"),
        }
    }
    // Unregister before the descriptor is closed: see `registry`.
    drop(registration);
    drop(stream);
    drop(guard);
}
