//! The offload pool of loop-based servers (`--offload N`): `block` and `spin` spends run on a
//! bounded set of worker threads instead of on the loop, which keeps serving everything else.
//!
//! This is the fix people reach for when an event loop meets a driver that blocks: asyncio's
//! `loop.run_in_executor(ThreadPoolExecutor(N), ...)`, tokio's `spawn_blocking`. For the
//! hand-written loops (server-mio, server-uring) it is written once, here:
//!
//! - [`OffloadPool`]: N worker threads and one first-in first-out queue of jobs, shared by every
//!   loop of a server.
//! - [`Offload`]: one loop's side of it. [`Offload::submit`] queues a spend for a connection,
//!   named by its [`Ticket`]; a worker spends it ([`crate::spend_on_thread`]), puts the ticket in
//!   the loop's inbox and calls the loop's waker (a `mio::Waker`, an eventfd the ring polls),
//!   once per batch: a worker wakes the loop only when the inbox was empty. The loop takes the
//!   tickets back with [`Offload::completed`] and tells the connection's driver
//!   ([`crate::Driver::offloaded`]).
//!
//! # Bounds
//!
//! The pool has N threads and never more. Its queue is bounded by construction: the driver
//! hands out one spend at a time per connection, and a connection whose spend is offloaded gets
//! no other until it is back, so the queue holds at most one job per open connection
//! (`--max-connections`, and before that the descriptor limit). When every worker is busy a job
//! waits its turn in the queue, in the order submitted: it is never dropped, refused or run on
//! the loop, so no request is left without its reply; a queued request's latency shows the
//! wait, which is what a too-small pool costs.
//!
//! # Closed connections and reused slots
//!
//! A loop reuses slab keys, so a completion could reach a successor in its connection's slot.
//! A [`Ticket`] carries the connection's id too (unique in the server, never reused), and the
//! loop hands a completion on only to the connection with that key *and* id whose spend is
//! offloaded ([`Ticket::is_for`]). A connection closed with its job still queued withdraws it
//! ([`Offload::cancel`]); a job already running finishes (it holds nothing of the connection)
//! and its ticket is dropped on arrival.
//!
//! # Shutdown
//!
//! A loop drains as always: a connection whose spend is offloaded is still open, so the loop
//! waits for its completion and writes the reply, or closes it at the shutdown deadline. When
//! the last loop lets go of the pool, queued jobs are dropped (their connections are gone) and
//! the workers are told to stop: an idle one ends at once, a busy one after the spend it runs
//! (at most one delay, for a connection already closed). The pool does not wait for those, so
//! a long `block` delay cannot hold a shutdown past its deadline.

use std::collections::VecDeque;
use std::fmt;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::{self, JoinHandle};
use std::time::Instant;

use echo_core::Timeout;

use crate::delay::Work;

/// The largest pool `--offload` accepts: beyond it threads cost more than they serve on the
/// project's 2-core machines, and a larger number is more likely a typo.
pub const MAX_OFFLOAD_THREADS: usize = 1024;

/// Stack of a worker: it only sleeps or spins, then pushes a ticket and wakes a loop.
const WORKER_STACK_BYTES: usize = 128 * 1024;

/// Names the connection a spend is for: its slab key in the loop, and its id in the server
/// (which a reused key does not share).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ticket {
    /// The connection's key in its loop's slab.
    pub key: usize,
    /// The connection's id ([`crate::Driver::id`]).
    pub id: u64,
}

impl Ticket {
    /// Whether a completion with this ticket belongs to the connection now at its key:
    /// the same id (not a successor in a reused slot) with a spend offloaded.
    pub fn is_for(&self, driver: &crate::Driver) -> bool {
        driver.id() == self.id && driver.is_offloaded()
    }
}

/// What wakes a loop when its inbox gets its first completion.
type Waker = Box<dyn Fn() -> io::Result<()> + Send + Sync>;

/// One loop's completions, filled by workers.
struct Inbox {
    done: Mutex<Vec<Ticket>>,
    wake: Waker,
}

impl Inbox {
    fn deliver(&self, ticket: Ticket) {
        let was_empty = {
            let mut done = lock(&self.done);
            done.push(ticket);
            done.len() == 1
        };
        if was_empty {
            if let Err(e) = (self.wake)() {
                tracing::error!(error = %e, "could not wake a loop for an offloaded spend");
            }
        }
    }
}

struct Job {
    ticket: Ticket,
    work: Work,
    inbox: Arc<Inbox>,
}

#[derive(Default)]
struct Queue {
    jobs: VecDeque<Job>,
    closed: bool,
}

struct Shared {
    queue: Mutex<Queue>,
    available: Condvar,
}

/// N worker threads and their queue, shared by the loops of one server; see the module docs.
pub struct OffloadPool {
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
}

impl fmt::Debug for OffloadPool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OffloadPool")
            .field("threads", &self.workers.len())
            .finish_non_exhaustive()
    }
}

impl OffloadPool {
    /// Starts `threads` workers (1 to [`MAX_OFFLOAD_THREADS`]), named `offload-<index>`.
    ///
    /// # Errors
    /// `InvalidInput` naming `threads` when it is out of range; a thread could not be created
    /// (those already started are stopped again).
    pub fn start(threads: usize) -> io::Result<Arc<OffloadPool>> {
        if !(1..=MAX_OFFLOAD_THREADS).contains(&threads) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!(
                    "invalid offload pool of {threads} threads (expected 1 to {MAX_OFFLOAD_THREADS})"
                ),
            ));
        }
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            available: Condvar::new(),
        });
        let mut pool = OffloadPool {
            shared,
            workers: Vec::with_capacity(threads),
        };
        for index in 0..threads {
            let shared = Arc::clone(&pool.shared);
            let worker = thread::Builder::new()
                .name(format!("offload-{index}"))
                .stack_size(WORKER_STACK_BYTES)
                .spawn(move || work(&shared))?;
            pool.workers.push(worker);
        }
        Ok(Arc::new(pool))
    }

    /// How many workers the pool has.
    pub fn threads(&self) -> usize {
        self.workers.len()
    }

    fn push(&self, job: Job) {
        lock(&self.shared.queue).jobs.push_back(job);
        self.shared.available.notify_one();
    }

    /// Removes the queued job for `ticket`; false when none is queued (it runs or ran).
    fn withdraw(&self, ticket: Ticket) -> bool {
        let mut queue = lock(&self.shared.queue);
        let before = queue.jobs.len();
        queue.jobs.retain(|job| job.ticket != ticket);
        queue.jobs.len() < before
    }
}

impl Drop for OffloadPool {
    /// Drops what is still queued and tells every worker to stop once its current spend is
    /// done; idle workers end now. Nobody waits for a busy one (see the module docs).
    fn drop(&mut self) {
        {
            let mut queue = lock(&self.shared.queue);
            queue.closed = true;
            queue.jobs.clear();
        }
        self.shared.available.notify_all();
        self.workers.clear();
    }
}

/// A worker's life: take the oldest job, spend it, hand its ticket back; until closed.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut queue = lock(&shared.queue);
            loop {
                if queue.closed {
                    return;
                }
                if let Some(job) = queue.jobs.pop_front() {
                    break job;
                }
                queue = shared
                    .available
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        job.work.spend();
        job.inbox.deliver(job.ticket);
    }
}

/// A lock that survives a panic elsewhere: the queue and the inboxes hold plain data, valid
/// between any two operations.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One loop's use of the pool: what it submitted and what came back; see the module docs.
pub struct Offload {
    pool: Arc<OffloadPool>,
    inbox: Arc<Inbox>,
    in_flight: usize,
}

impl fmt::Debug for Offload {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Offload")
            .field("pool", &self.pool)
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl Offload {
    /// A loop's handle on `pool`; `wake` makes the loop look at its completions (it is called
    /// from worker threads, and must not block).
    pub fn new(
        pool: Arc<OffloadPool>,
        wake: impl Fn() -> io::Result<()> + Send + Sync + 'static,
    ) -> Offload {
        Offload {
            pool,
            inbox: Arc::new(Inbox {
                done: Mutex::new(Vec::new()),
                wake: Box::new(wake),
            }),
            in_flight: 0,
        }
    }

    /// Queues the spend of `timeout` for the connection `ticket` names (after
    /// [`crate::Driver::offload`]); it runs when a worker is free, oldest first.
    pub fn submit(&mut self, ticket: Ticket, timeout: Timeout) {
        self.in_flight += 1;
        self.pool.push(Job {
            ticket,
            // Its length is fixed now: a job that waits for a worker still takes all of it.
            work: Work::left_of(timeout, Instant::now()),
            inbox: Arc::clone(&self.inbox),
        });
    }

    /// Withdraws the job of a closing connection if it is still queued; one already running
    /// comes back later, to be dropped by [`Ticket::is_for`].
    pub fn cancel(&mut self, ticket: Ticket) {
        if self.pool.withdraw(ticket) {
            self.in_flight -= 1;
        }
    }

    /// The tickets of the spends finished since the last call, in the order they finished.
    pub fn completed(&mut self) -> Vec<Ticket> {
        let done = std::mem::take(&mut *lock(&self.inbox.done));
        self.in_flight = self.in_flight.saturating_sub(done.len());
        done
    }

    /// Jobs submitted and neither back nor withdrawn: a loop that must hear of them keeps its
    /// waker armed while this is not zero.
    pub fn in_flight(&self) -> usize {
        self.in_flight
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc;
    use std::time::{Duration, Instant};

    use echo_core::DelayKind;

    use super::*;

    /// An offload whose waker sends on a channel, so a test waits for wake-ups, not for time.
    fn offload(threads: usize) -> io::Result<(Offload, mpsc::Receiver<()>)> {
        let (woken, wakes) = mpsc::channel();
        let woken = Mutex::new(woken);
        let offload = Offload::new(OffloadPool::start(threads)?, move || {
            lock(&woken).send(()).map_err(io::Error::other)
        });
        Ok((offload, wakes))
    }

    fn timeout(after: Duration) -> Timeout {
        Timeout {
            at: Instant::now() + after,
            kind: DelayKind::Block,
        }
    }

    fn ticket(key: usize) -> Ticket {
        Ticket {
            key,
            id: key as u64 + 100,
        }
    }

    /// Waits for wake-ups until `n` tickets came back.
    fn collect(
        offload: &mut Offload,
        wakes: &mpsc::Receiver<()>,
        n: usize,
    ) -> io::Result<Vec<Ticket>> {
        let mut done = Vec::new();
        while done.len() < n {
            wakes
                .recv_timeout(Duration::from_secs(10))
                .map_err(io::Error::other)?;
            done.extend(offload.completed());
        }
        Ok(done)
    }

    #[test]
    fn more_jobs_than_workers_wait_their_turn_and_each_takes_its_whole_length() -> io::Result<()> {
        let (mut offload, wakes) = offload(2)?;
        let submitted = Instant::now();
        let deadlines: Vec<Timeout> = (0..6).map(|_| timeout(Duration::from_millis(5))).collect();
        for (key, deadline) in deadlines.iter().enumerate() {
            offload.submit(ticket(key), *deadline);
        }
        assert_eq!(offload.in_flight(), 6);
        let done = collect(&mut offload, &wakes, 6)?;
        // Two workers, six jobs of 5 ms each: three rounds. A queued job that spent only
        // what was left of its deadline would let all six finish after about one.
        assert!(
            submitted.elapsed() >= Duration::from_millis(15),
            "a queued job was cut short of its length"
        );
        let mut keys: Vec<usize> = done.iter().map(|t| t.key).collect();
        keys.sort_unstable();
        assert_eq!(keys, (0..6).collect::<Vec<_>>());
        assert_eq!(offload.in_flight(), 0);
        Ok(())
    }

    #[test]
    fn a_withdrawn_job_leaves_the_queue_and_the_count_and_the_others_keep_their_order() {
        // A pool without workers: what is queued stays queued, so the test sees the queue.
        let pool = Arc::new(OffloadPool {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                available: Condvar::new(),
            }),
            workers: Vec::new(),
        });
        let mut offload = Offload::new(Arc::clone(&pool), || Ok(()));
        for key in 0..3 {
            offload.submit(ticket(key), timeout(Duration::ZERO));
        }
        offload.cancel(ticket(1));
        offload.cancel(ticket(7));
        assert_eq!(offload.in_flight(), 2);
        let queued: Vec<Ticket> = lock(&pool.shared.queue)
            .jobs
            .iter()
            .map(|job| job.ticket)
            .collect();
        assert_eq!(queued, vec![ticket(0), ticket(2)]);
    }

    #[test]
    fn loops_sharing_a_pool_each_get_their_own_completions() -> io::Result<()> {
        let pool = OffloadPool::start(2)?;
        let mut loops = Vec::new();
        for _ in 0..2 {
            let (woken, wakes) = mpsc::channel();
            let woken = Mutex::new(woken);
            let offload = Offload::new(Arc::clone(&pool), move || {
                lock(&woken).send(()).map_err(io::Error::other)
            });
            loops.push((offload, wakes));
        }
        drop(pool);
        for (index, (offload, _)) in loops.iter_mut().enumerate() {
            offload.submit(ticket(index), timeout(Duration::ZERO));
        }
        for (index, (offload, wakes)) in loops.iter_mut().enumerate() {
            assert_eq!(collect(offload, wakes, 1)?, vec![ticket(index)]);
        }
        Ok(())
    }

    #[test]
    fn a_pool_out_of_range_is_refused_naming_its_size() {
        for threads in [0, MAX_OFFLOAD_THREADS + 1] {
            let err = OffloadPool::start(threads).expect_err("out of range");
            assert!(
                err.to_string().contains(&format!("{threads} threads")),
                "{err}"
            );
        }
    }
}
