//! Counters every server keeps, shared between its threads or tasks, and the [`Summary`]
//! snapshot a server reports (as JSON for tools, as one line on stderr at exit).
//!
//! The counters are plain relaxed atomics: each is exact on its own, but a snapshot taken
//! while connections come and go may mix moments (e.g. `connections_open` may lag
//! `connections_accepted` by a connection being set up). That is fine for monitoring and
//! exact once the server has shut down.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use echo_core::{ConnectionStats, Refusal};
use serde::Serialize;

/// Live counters of one server. Share it as `Arc<Stats>`.
#[derive(Debug, Default)]
pub struct Stats {
    accepted: AtomicU64,
    open: AtomicU64,
    peak_open: AtomicU64,
    closed: AtomicU64,
    connection_errors: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    accept_errors: AtomicU64,
    accept_backoffs: AtomicU64,
    queued: AtomicU64,
    peak_queued: AtomicU64,
    dequeued: AtomicU64,
    queue_wait_nanos: AtomicU64,
    pool_workers_used: AtomicU64,
    shed: AtomicU64,
    refused_at_shutdown: AtomicU64,
}

impl Stats {
    /// Fresh counters, ready to share.
    pub fn new() -> Arc<Self> {
        Arc::new(Stats::default())
    }

    /// Counts an accepted connection as open until the returned guard is dropped. Create it
    /// right after `accept`, so that a connection still waiting for a thread or a task counts.
    pub fn open(self: &Arc<Self>) -> ConnectionGuard {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        let open = self.open.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_open.fetch_max(open, Ordering::Relaxed);
        ConnectionGuard {
            stats: Arc::clone(self),
            seen: ConnectionStats::default(),
        }
    }

    /// Connections open now (accepted and not yet closed).
    pub fn open_connections(&self) -> u64 {
        self.open.load(Ordering::Relaxed)
    }

    /// An `accept` failed (any error but `WouldBlock`); see [`crate::accept`].
    pub fn accept_error(&self) {
        self.accept_errors.fetch_add(1, Ordering::Relaxed);
    }

    /// The server stopped accepting for a while: a pause after a failed accept, or a stretch
    /// at `max_connections`; see [`crate::accept`].
    pub fn accept_backoff(&self) {
        self.accept_backoffs.fetch_add(1, Ordering::Relaxed);
    }

    /// A connection joined a worker pool's queue; hand the ticket to [`Stats::dequeue`].
    pub fn enqueue(&self) -> QueueTicket {
        let queued = self.queued.fetch_add(1, Ordering::Relaxed) + 1;
        self.peak_queued.fetch_max(queued, Ordering::Relaxed);
        QueueTicket {
            since: Instant::now(),
        }
    }

    /// A queued connection was taken by a worker (or dropped at shutdown).
    pub fn dequeue(&self, ticket: QueueTicket) {
        self.queued.fetch_sub(1, Ordering::Relaxed);
        self.dequeued.fetch_add(1, Ordering::Relaxed);
        let waited = u64::try_from(ticket.since.elapsed().as_nanos()).unwrap_or(u64::MAX);
        self.queue_wait_nanos.fetch_add(waited, Ordering::Relaxed);
    }

    /// A pool worker took its first connection.
    pub fn pool_worker_used(&self) {
        self.pool_workers_used.fetch_add(1, Ordering::Relaxed);
    }

    /// A queued connection was turned away with `refusal`'s `ERR` line instead of being
    /// served (hand its ticket back with [`Stats::dequeue`] as well).
    pub fn refused(&self, refusal: Refusal) {
        let counter = match refusal {
            Refusal::Busy => &self.shed,
            Refusal::ShuttingDown => &self.refused_at_shutdown,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A snapshot of every counter.
    pub fn summary(&self) -> Summary {
        let load = |counter: &AtomicU64| counter.load(Ordering::Relaxed);
        Summary {
            connections_accepted: load(&self.accepted),
            connections_open: load(&self.open),
            peak_open_connections: load(&self.peak_open),
            connections_closed: load(&self.closed),
            connection_errors: load(&self.connection_errors),
            requests: load(&self.requests),
            errors: load(&self.errors),
            accept_errors: load(&self.accept_errors),
            accept_backoffs: load(&self.accept_backoffs),
            queued_connections: load(&self.queued),
            peak_queued_connections: load(&self.peak_queued),
            dequeued_connections: load(&self.dequeued),
            queue_wait_seconds: Duration::from_nanos(load(&self.queue_wait_nanos)).as_secs_f64(),
            pool_workers_used: load(&self.pool_workers_used),
            shed_connections: load(&self.shed),
            shutdown_refused_connections: load(&self.refused_at_shutdown),
        }
    }
}

/// Proof that a connection sat in a queue since an instant; see [`Stats::enqueue`].
#[derive(Debug)]
#[must_use = "hand the ticket back with Stats::dequeue, or the queue gauge never drops"]
pub struct QueueTicket {
    since: Instant,
}

impl QueueTicket {
    /// When the connection joined the queue: a queue timeout counts from here.
    pub fn since(&self) -> Instant {
        self.since
    }
}

/// One open connection's share of the [`Stats`]: counts it closed when dropped, and adds its
/// protocol's progress to the server totals as it happens (so that a live snapshot shows
/// requests already answered, not only those of closed connections).
#[derive(Debug)]
pub struct ConnectionGuard {
    stats: Arc<Stats>,
    seen: ConnectionStats,
}

impl ConnectionGuard {
    /// Adds what the protocol did since the last call. Cheap when nothing changed; call it
    /// after every callback or once per loop iteration.
    pub fn record(&mut self, now: ConnectionStats) {
        let requests = now.requests.saturating_sub(self.seen.requests);
        let errors = now.errors.saturating_sub(self.seen.errors);
        if requests > 0 {
            self.stats.requests.fetch_add(requests, Ordering::Relaxed);
        }
        if errors > 0 {
            self.stats.errors.fetch_add(errors, Ordering::Relaxed);
        }
        self.seen = now;
    }

    /// The connection ended on a socket error (a reset, a broken pipe) rather than a close.
    pub fn failed(&self) {
        self.stats.connection_errors.fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for ConnectionGuard {
    fn drop(&mut self) {
        self.stats.open.fetch_sub(1, Ordering::Relaxed);
        self.stats.closed.fetch_add(1, Ordering::Relaxed);
    }
}

/// A snapshot of a server's [`Stats`]. Its `Display` is the one-line summary a server
/// binary prints to stderr at exit.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Summary {
    /// Connections accepted since start.
    pub connections_accepted: u64,
    /// Connections open at the snapshot (zero after a clean shutdown).
    pub connections_open: u64,
    /// Most connections open at once.
    pub peak_open_connections: u64,
    /// Connections closed, for any reason.
    pub connections_closed: u64,
    /// Connections that ended on a socket error (reset, broken pipe).
    pub connection_errors: u64,
    /// Requests answered with their upper-cased reply.
    pub requests: u64,
    /// `ERR` replies the protocol sent (invalid UTF-8, line too long, idle timeout); the
    /// `ERR` lines of connections refused from a queue are counted apart, below.
    pub errors: u64,
    /// Failed `accept` calls (any error but `WouldBlock`, transient ones included).
    pub accept_errors: u64,
    /// Times the server stopped accepting: one per pause after a failed accept, one per
    /// stretch at `max_connections`.
    pub accept_backoffs: u64,
    /// Accepted connections waiting for a pool worker at the snapshot (pools only).
    pub queued_connections: u64,
    /// Most connections waiting for a pool worker at once (pools only).
    pub peak_queued_connections: u64,
    /// Connections that left the pool's queue (pools only).
    pub dequeued_connections: u64,
    /// Time all dequeued connections spent waiting for a worker, summed (pools only).
    pub queue_wait_seconds: f64,
    /// Pool workers that have served at least one connection (pools only): the pool's working
    /// set, since idle workers are woken most recently idle first.
    pub pool_workers_used: u64,
    /// Queued connections turned away with `ERR server busy` after waiting longer than the
    /// queue timeout: load shedding (pools only). Shown in the summary line as `shed N`.
    pub shed_connections: u64,
    /// Queued connections turned away with `ERR server shutting down` because the shutdown
    /// timeout passed before a worker was free (pools only). Shown in the summary line as
    /// `refused at shutdown N`.
    pub shutdown_refused_connections: u64,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "connections {}, requests {}, errors {} (peak open {}, connection errors {}, \
             accept errors {}, accept back-offs {}",
            self.connections_accepted,
            self.requests,
            self.errors,
            self.peak_open_connections,
            self.connection_errors,
            self.accept_errors,
            self.accept_backoffs,
        )?;
        if self.dequeued_connections > 0 {
            let mean_ms = self.queue_wait_seconds * 1000.0 / self.dequeued_connections as f64;
            write!(
                f,
                ", peak queued {}, mean queue wait {mean_ms:.1} ms, workers used {}",
                self.peak_queued_connections, self.pool_workers_used
            )?;
        }
        if self.shed_connections > 0 {
            write!(f, ", shed {}", self.shed_connections)?;
        }
        if self.shutdown_refused_connections > 0 {
            write!(
                f,
                ", refused at shutdown {}",
                self.shutdown_refused_connections
            )?;
        }
        f.write_str(")")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_guard_counts_its_connection_open_until_dropped() {
        let stats = Stats::new();
        let guard = stats.open();
        assert_eq!(stats.summary().connections_open, 1);
        drop(guard);
        let summary = stats.summary();
        assert_eq!(
            (summary.connections_open, summary.connections_closed),
            (0, 1)
        );
        assert_eq!(summary.peak_open_connections, 1);
    }

    #[test]
    fn recording_protocol_progress_adds_only_the_difference() {
        let stats = Stats::new();
        let mut guard = stats.open();
        guard.record(ConnectionStats {
            requests: 2,
            errors: 1,
        });
        guard.record(ConnectionStats {
            requests: 5,
            errors: 1,
        });
        let summary = stats.summary();
        assert_eq!((summary.requests, summary.errors), (5, 1));
    }

    #[test]
    fn the_summary_line_names_connections_requests_and_errors() {
        let summary = Summary {
            connections_accepted: 3,
            requests: 7,
            errors: 1,
            ..Summary::default()
        };
        let line = summary.to_string();
        assert!(
            line.starts_with("connections 3, requests 7, errors 1"),
            "{line}"
        );
        assert!(!line.contains('\n'));
    }

    #[test]
    fn the_queue_gauge_rises_and_falls_with_tickets() {
        let stats = Stats::new();
        let first = stats.enqueue();
        let second = stats.enqueue();
        stats.dequeue(first);
        let summary = stats.summary();
        assert_eq!(
            (summary.queued_connections, summary.peak_queued_connections),
            (1, 2)
        );
        stats.dequeue(second);
        assert_eq!(stats.summary().dequeued_connections, 2);
        stats.pool_worker_used();
        let line = stats.summary().to_string();
        assert!(line.contains("peak queued 2"), "{line}");
        assert!(line.contains("workers used 1"), "{line}");
    }

    #[test]
    fn refusals_are_counted_by_reason_and_named_in_the_summary_line() {
        let stats = Stats::new();
        assert!(!stats.summary().to_string().contains("shed"));
        stats.refused(Refusal::Busy);
        stats.refused(Refusal::Busy);
        stats.refused(Refusal::ShuttingDown);
        let summary = stats.summary();
        assert_eq!(
            (
                summary.shed_connections,
                summary.shutdown_refused_connections
            ),
            (2, 1)
        );
        let line = summary.to_string();
        assert!(line.contains(", shed 2, refused at shutdown 1)"), "{line}");
    }
}
