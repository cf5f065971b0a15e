//! The closed loop's inner loop: a worker makes connections one after another, each carrying
//! its requests, and records every outcome into its thread's [`Measurements`].
//!
//! All workers of one client thread share one [`Shard`] (one set of histograms, behind a
//! `RefCell`, since a single-threaded runtime never runs two of them at once): ten thousand
//! workers with a histogram each would need gigabytes.
//!
//! Closed loop: a worker sends each request as soon as the previous reply is in. The open
//! loop is not made of workers but of one event loop per thread ([`crate::open_loop`]).

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::net::TcpStream;

use crate::exchange::{Expectation, exchange};
use crate::net::{connect, source_address};
use crate::plan::Plan;
use crate::report::{FailureKind, Measurements, RequestTimes};

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
    /// The number of client threads: the stride of source addresses.
    pub n_threads: u64,
    /// Connections whose worker is done while others still wait for replies: closed only
    /// after every worker of the thread is done ([`Shard::close_parked`]). Closing ~10000
    /// sockets takes ~300 ms of the client's CPU, and done as each worker ended it delayed
    /// the reading of the last replies: at 2000 req/s the last 1 % of requests measured
    /// 430 ms instead of 100.
    pub parked: RefCell<Vec<TcpStream>>,
}

/// Closed loop: makes connections until the plan has none left.
pub async fn worker(shard: Rc<Shard>) {
    let mut first = true;
    while shard.plan.claim_connection() {
        let opened = shard.open(first).await;
        first = false;
        if let Some(mut stream) = opened {
            if !shard.requests(&mut stream).await {
                shard.parked.borrow_mut().push(stream);
                break;
            }
        }
    }
}

impl Shard {
    /// Closes the connections parked at the end of the phase; call once every worker is
    /// done.
    pub fn close_parked(&self) {
        self.parked.borrow_mut().clear();
    }

    /// Closed loop: sends one connection's requests, each right after the previous reply.
    /// Returns `false` when the phase's time is up.
    async fn requests(&self, stream: &mut TcpStream) -> bool {
        let mut buffer = Vec::with_capacity(self.expect.reply.len() * 2);
        for index in 0..self.requests_per_conn {
            let unsent = self.requests_per_conn - index;
            let sent = Instant::now();
            if self.plan.expired(sent) {
                return false;
            }
            let outcome = exchange(stream, &mut buffer, &self.expect).await;
            // A request sent in the warm-up is not measured, nor is its failure.
            let measured = self.plan.measures(sent);
            if let Err(kind) = outcome {
                if measured {
                    self.fail(kind, unsent - 1);
                }
                return true;
            }
            if measured {
                let times = RequestTimes::unscheduled(sent, Instant::now());
                self.measurements.borrow_mut().record_request(&times, false);
                self.progress(1);
            }
        }
        true
    }

    /// Connects, recording the connect time, or the failure and the requests it cancels.
    async fn open(&self, first: bool) -> Option<TcpStream> {
        let source_index = self.next_source.get();
        self.next_source.set(source_index + self.n_threads);
        let source = source_address(source_index, self.n_source_addresses);
        let began = Instant::now();
        match connect(self.target, source, self.expect.timeout).await {
            Ok(stream) => {
                let established = Instant::now();
                let mut measurements = self.measurements.borrow_mut();
                measurements.record_connect(established - began);
                if first {
                    let since_start = established - self.plan.created;
                    measurements.all_connected = measurements.all_connected.max(Some(since_start));
                }
                Some(stream)
            }
            Err(_) if !self.plan.measures(began) => None,
            Err(kind) => {
                self.fail(kind, self.requests_per_conn - 1);
                None
            }
        }
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
