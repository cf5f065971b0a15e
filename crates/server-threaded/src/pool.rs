//! The bounded worker pool: N threads taking accepted connections from a queue, each
//! serving one connection to its end before taking the next.
//!
//! The queue itself is unbounded in length but not in practice: queued connections count as
//! open, so `max_connections` and the descriptor limit cap it. Every connection's time in
//! the queue is recorded in the stats (`queued_connections`, `peak_queued_connections`,
//! `queue_wait_seconds`), which is what makes a pool's latency explainable.

use std::collections::VecDeque;
use std::io;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;

use server_common::QueueTicket;

use crate::{Accepted, Shared, THREAD_STACK_BYTES, connection};

#[derive(Debug, Default)]
struct Queue {
    items: Mutex<VecDeque<(Accepted, QueueTicket)>>,
    ready: Condvar,
}

/// A handle on the pool: the acceptor pushes into it, shutdown closes and joins it.
#[derive(Debug, Clone)]
pub(crate) struct Pool {
    queue: Arc<Queue>,
    shared: Arc<Shared>,
    workers: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Pool {
    /// Starts `workers` threads waiting for connections.
    pub(crate) fn start(workers: usize, shared: &Arc<Shared>) -> io::Result<Pool> {
        let queue = Arc::new(Queue::default());
        let mut handles = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (queue, shared) = (Arc::clone(&queue), Arc::clone(shared));
            let handle = std::thread::Builder::new()
                .name("echo-worker".to_owned())
                .stack_size(THREAD_STACK_BYTES)
                .spawn(move || work(&queue, &shared))?;
            handles.push(handle);
        }
        Ok(Pool {
            queue,
            shared: Arc::clone(shared),
            workers: Arc::new(Mutex::new(handles)),
        })
    }

    fn lock(&self) -> MutexGuard<'_, VecDeque<(Accepted, QueueTicket)>> {
        lock(&self.queue)
    }

    /// Queues an accepted connection for the next free worker.
    pub(crate) fn push(&self, accepted: Accepted) {
        let ticket = self.shared.stats.enqueue();
        self.lock().push_back((accepted, ticket));
        self.queue.ready.notify_one();
    }

    /// At shutdown (after the stop flag is set): drops connections still queued (the server
    /// never read from them, so nothing is owed) and wakes idle workers so they exit.
    pub(crate) fn close(&self) {
        let left: Vec<_> = self.lock().drain(..).collect();
        for (accepted, ticket) in left {
            self.shared.stats.dequeue(ticket);
            drop(accepted);
        }
        // Taking the lock first means no worker is between its stop check and its wait.
        let _queue = self.lock();
        self.queue.ready.notify_all();
    }

    /// Waits for every worker to exit.
    pub(crate) fn join(self) -> io::Result<()> {
        let handles =
            std::mem::take(&mut *self.workers.lock().unwrap_or_else(PoisonError::into_inner));
        for handle in handles {
            handle
                .join()
                .map_err(|_| io::Error::other("a pool worker panicked"))?;
        }
        Ok(())
    }
}

fn lock(queue: &Queue) -> MutexGuard<'_, VecDeque<(Accepted, QueueTicket)>> {
    queue.items.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A worker: take the oldest queued connection, serve it to its end, repeat until shutdown.
fn work(queue: &Queue, shared: &Shared) {
    loop {
        let next = {
            let mut items = lock(queue);
            loop {
                if let Some(item) = items.pop_front() {
                    break Some(item);
                }
                if shared.is_stopping() {
                    break None;
                }
                items = queue
                    .ready
                    .wait(items)
                    .unwrap_or_else(PoisonError::into_inner);
            }
        };
        let Some((accepted, ticket)) = next else {
            return;
        };
        shared.stats.dequeue(ticket);
        connection::serve(accepted, shared);
    }
}
