//! The client's inner loop: a worker makes connections one after another, each carrying
//! its requests, and records every outcome into its thread's [`Measurements`].
//!
//! All workers of one client thread share one [`Shard`] (one set of histograms, behind a
//! `RefCell`, since a single-threaded runtime never runs two of them at once): ten thousand
//! workers with a histogram each would need gigabytes.
//!
//! Closed loop, a worker sends each request as soon as the previous reply is in. Open loop,
//! the thread's workers first open their connections ([`connect_phase`]), then take turns
//! from the thread's [`dispatcher`], which hands each due request to an idle connection.

use std::cell::{Cell, RefCell};
use std::net::SocketAddr;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::dispatch::{Dispatch, Turn};
use crate::exchange::{Expectation, exchange};
use crate::net::{connect, source_address};
use crate::plan::Plan;
use crate::report::{FailureKind, Measurements, RequestTimes};
use crate::timer::PreciseTimer;

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
    /// This client thread's index: its first open-loop request and source address.
    pub thread_index: u64,
    /// The number of client threads: the stride of requests and source addresses.
    pub n_threads: u64,
    /// Open loop: this thread's share of the schedule, the idle connections and the
    /// handoff of due requests to them.
    pub dispatch: Dispatch<OwnedWriteHalf>,
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

/// Open loop, before the schedule starts: opens the first connection of `n_workers` workers
/// at once, and primes each with one unmeasured request. Returns one entry per worker that
/// claimed a connection (`None` if its connect or priming failed, which is counted).
///
/// A connect completes in the kernel before the server has accepted it: right after ten
/// thousand connects server-mio was still draining its accept queue, and the first
/// scheduled requests waited for that (p99 206 ms at 2000 req/s). A connection that has
/// answered once is being served, so the schedule measures the server's steady state.
pub async fn connect_phase(shard: Rc<Shard>, n_workers: u64) -> Vec<Option<TcpStream>> {
    let handles: Vec<_> = (0..n_workers)
        .map(|_| {
            let shard = Rc::clone(&shard);
            tokio::task::spawn_local(async move {
                if !shard.plan.claim_connection() {
                    return None;
                }
                let Some(mut stream) = shard.open(true).await else {
                    return Some(None);
                };
                let mut buffer = Vec::new();
                let (mut reader, writer) = stream.split();
                match exchange(&mut reader, &writer, &mut buffer, &shard.expect, 0).await {
                    Ok(()) => Some(Some(stream)),
                    Err(kind) => {
                        // The priming stands for the connection's first request.
                        shard.fail(kind, shard.requests_per_conn - 1);
                        Some(None)
                    }
                }
            })
        })
        .collect();
    let mut streams = Vec::with_capacity(handles.len());
    for handle in handles {
        match handle.await {
            Ok(Some(stream)) => streams.push(stream),
            Ok(None) => {}
            Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
            Err(_cancelled) => {}
        }
    }
    streams
}

/// Open loop: carries the requests handed to it by the dispatch, on `first` and then on new
/// connections while the plan has some, until the schedule is over. Register it with
/// [`Dispatch::worker_started`] before the dispatcher starts.
pub async fn open_loop_worker(shard: Rc<Shard>, first: Option<TcpStream>) {
    let mut next = first;
    loop {
        let stream = match next.take() {
            Some(stream) => Some(stream),
            None if shard.plan.claim_connection() => shard.open(false).await,
            None => break,
        };
        if let Some(stream) = stream {
            let (mut reader, writer) = stream.into_split();
            let turn = Rc::new(Turn::new(writer));
            if !shard.scheduled_requests(&mut reader, &turn).await {
                // The dispatch let go of the turn when it finished, so this is the only
                // reference; were it not, the connection would merely close early.
                let whole = Rc::try_unwrap(turn).map(|turn| reader.reunite(turn.connection));
                if let Ok(Ok(stream)) = whole {
                    shard.parked.borrow_mut().push(stream);
                }
                break;
            }
        }
    }
    shard.dispatch.worker_done();
}

/// The dispatcher's timer wakes it at most once per quantum. Every sleep costs a
/// `timerfd_settime`, an `epoll_wait` and usually a context switch: at 30,000 requests/s a
/// quantum of 100 µs still meant 8,400 context switches a second (0.28 per request, against
/// 0.04 with tokio's millisecond wheel) and 0.5 more system calls per request. Requests
/// falling due within a quantum of the previous wake-up wait for the next one, so the
/// quantum bounds the lag it adds (a quarter of the 1 ms `--max-lag` default), and each
/// wake-up writes every request due by then. While replies come in the timer hardly
/// matters: every worker going idle hands out what has fallen due since
/// ([`Dispatch::next_turn`]), with no system call.
pub const DISPATCH_QUANTUM: std::time::Duration = std::time::Duration::from_micros(250);

/// Open loop: wakes for this thread's due times (every `n_threads`-th request of the
/// schedule) when no reply comes to dispatch them, until the schedule or the workers are
/// used up.
pub async fn dispatcher(shard: Rc<Shard>) {
    // Without a timerfd (not Linux, or refused) tokio's millisecond timer stands in, and the
    // measured schedule lag shows what that costs.
    let timer = PreciseTimer::new().ok();
    let mut last_wake = Instant::now();
    while let Some(due) = shard.dispatch.pump_until_a_due_time().await {
        let wake = due.max(last_wake + DISPATCH_QUANTUM);
        let waited = match &timer {
            Some(timer) => timer.sleep_until(wake).await.is_ok(),
            None => false,
        };
        if !waited {
            tokio::time::sleep_until(wake.into()).await;
        }
        last_wake = Instant::now();
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
        let (mut reader, writer) = stream.split();
        let mut buffer = Vec::with_capacity(self.expect.reply.len() * 2);
        for index in 0..self.requests_per_conn {
            let unsent = self.requests_per_conn - index;
            let sent = Instant::now();
            if self.plan.expired(sent) {
                return false;
            }
            let outcome = exchange(&mut reader, &writer, &mut buffer, &self.expect, 0).await;
            if let Err(kind) = outcome {
                self.fail(kind, unsent - 1);
                return true;
            }
            let times = RequestTimes::unscheduled(sent, Instant::now());
            self.measurements.borrow_mut().record_request(&times, false);
            self.progress(1);
        }
        true
    }

    /// Open loop: carries one connection's requests as the dispatch hands them out, writing
    /// what the dispatcher did not (all of a request handed out by a worker going idle).
    /// Returns `false` when the phase has no more turns.
    async fn scheduled_requests(
        &self,
        reader: &mut OwnedReadHalf,
        turn: &Rc<Turn<OwnedWriteHalf>>,
    ) -> bool {
        let mut buffer = Vec::with_capacity(self.expect.reply.len() * 2);
        for index in 0..self.requests_per_conn {
            let unsent = self.requests_per_conn - index;
            let Some(handed) = self.dispatch.next_turn(turn).await else {
                if self.plan.bounded_by_count() {
                    self.measurements.borrow_mut().requests_not_sent += unsent;
                }
                return false;
            };
            let written = match handed.written {
                Ok(written) => written,
                Err(kind) => {
                    self.fail(kind, unsent - 1);
                    return true;
                }
            };
            // Nothing written yet (left to this task, or the socket was full): it starts now.
            let sent = if written == 0 {
                Instant::now()
            } else {
                handed.sent
            };
            let outcome = exchange(reader, &turn.connection, &mut buffer, &self.expect, written);
            let outcome = outcome.await;
            if let Err(kind) = outcome {
                self.fail(kind, unsent - 1);
                return true;
            }
            let times = RequestTimes {
                due: handed.due,
                ready: handed.ready,
                sent,
                done: Instant::now(),
            };
            self.measurements.borrow_mut().record_request(&times, true);
            self.progress(1);
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
