//! The client's inner loop: a worker makes connections one after another, each carrying
//! its requests, and records every outcome into its thread's [`Measurements`].
//!
//! All workers of one client thread share one [`Shard`] (one set of histograms, behind a
//! `RefCell`, since a single-threaded runtime never runs two of them at once): ten thousand
//! workers with a histogram each would need gigabytes.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::net::TcpStream;

use crate::config::LATE_START_TOLERANCE;
use crate::exchange::{Expectation, exchange};
use crate::net::{connect, source_address};
use crate::plan::Plan;
use crate::report::{FailureKind, Measurements};

/// What the workers of one client thread share.
#[derive(Debug)]
pub struct Shard {
    /// The phase's work, shared with the other threads.
    pub plan: Arc<Plan>,
    /// Requests to send and replies to expect.
    pub expect: Expectation,
    /// The server.
    pub target: SocketAddr,
    /// Requests per connection.
    pub requests_per_conn: u64,
    /// Loopback source addresses to cycle through (0: let the kernel choose).
    pub n_source_addresses: u32,
    /// Count finished requests for the progress bar.
    pub count_progress: bool,
    /// Everything recorded by this thread's workers.
    pub measurements: RefCell<Measurements>,
    /// Index of the next source address; threads start at different offsets.
    pub next_source: Cell<u64>,
    /// Added to `next_source` after each use: the number of client threads.
    pub source_stride: u64,
}

/// Makes connections until the plan has none left.
pub async fn worker(shard: Rc<Shard>) {
    let mut first = true;
    while shard.plan.claim_connection() {
        if !shard.connection(first).await {
            break;
        }
        first = false;
    }
}

impl Shard {
    /// One connection and its requests. Returns `false` when the phase has no more work.
    async fn connection(&self, first: bool) -> bool {
        let Some(mut origin) = self.next_start().await else {
            return false;
        };
        let Some(mut stream) = self.open(first).await else {
            return true;
        };
        let mut buffer = Vec::with_capacity(self.expect.reply.len() * 2);
        for index in 0..self.requests_per_conn {
            if index > 0 {
                let Some(next) = self.next_start().await else {
                    return false;
                };
                origin = next;
            }
            if !self.plan.open_loop() {
                origin = Instant::now();
            }
            let outcome = exchange(&mut stream, &mut buffer, &self.expect).await;
            if let Err(kind) = outcome {
                self.fail(kind, self.requests_per_conn - 1 - index);
                return true;
            }
            let done = Instant::now();
            self.measurements.borrow_mut().record_latency(done - origin);
            self.progress(1);
        }
        true
    }

    /// Connects, recording the connect time, or the failure and the requests it cancels.
    async fn open(&self, first: bool) -> Option<TcpStream> {
        let source_index = self.next_source.get();
        self.next_source.set(source_index + self.source_stride);
        let source = source_address(source_index, self.n_source_addresses);
        let began = Instant::now();
        match connect(self.target, source, self.expect.timeout).await {
            Ok(stream) => {
                let established = Instant::now();
                let mut measurements = self.measurements.borrow_mut();
                measurements.record_connect(established - began);
                if first {
                    let since_start = established - self.plan.start;
                    measurements.all_connected = measurements.all_connected.max(Some(since_start));
                }
                Some(stream)
            }
            Err(kind) => {
                self.fail(kind, self.requests_per_conn - 1);
                None
            }
        }
    }

    /// Waits for the next request's turn and returns the instant its latency is measured
    /// from, or `None` when the phase is over.
    ///
    /// Closed loop: now, without waiting. Open loop: a request that fell due while its
    /// connection was still busy is timed from its scheduled start (so a slow server cannot
    /// hide behind the client it slowed down: coordinated omission); one that was waited
    /// for is timed from when the wait ended, so the timer's millisecond granularity is not
    /// charged to the server.
    async fn next_start(&self) -> Option<Instant> {
        let now = Instant::now();
        let slot = self.plan.claim_slot(now, LATE_START_TOLERANCE)?;
        if !self.plan.open_loop() {
            return Some(now);
        }
        if slot.late {
            self.measurements.borrow_mut().requests_started_late += 1;
        }
        if slot.due <= now {
            return Some(slot.due);
        }
        if slot.due > now + Duration::from_micros(50) {
            tokio::time::sleep_until(slot.due.into()).await;
        }
        Some(Instant::now())
    }

    /// Counts a failure, and the requests of its connection that will not be sent.
    fn fail(&self, kind: FailureKind, requests_cancelled: u64) {
        self.progress(1 + requests_cancelled);
        let mut measurements = self.measurements.borrow_mut();
        measurements.failures.add(kind, 1);
        if self.plan.bounded_by_count() {
            measurements.requests_not_sent += requests_cancelled;
        }
    }

    fn progress(&self, requests: u64) {
        if self.count_progress {
            self.plan.finished.fetch_add(requests, Ordering::Relaxed);
        }
    }
}
