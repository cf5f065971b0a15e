//! A whole run: check limits, run the warmup and the measured phase on the client threads,
//! and turn the measurements into a [`Report`].
//!
//! Open loop, each phase has two steps: every client thread's event loop
//! ([`crate::open_loop`]) opens its connections, all threads meet at a barrier, and only then
//! does the schedule begin (see [`crate::plan`]). Closed loop, each client thread runs its
//! workers on a single-threaded tokio runtime.

use std::io;
use std::rc::Rc;
use std::sync::{Arc, Barrier};
use std::time::{Duration, SystemTime};

use tokio::task::LocalSet;

use crate::config::Config;
use crate::error::{Error, Result};
use crate::exchange::Expectation;
use crate::plan::Plan;
use crate::progress::Progress;
use crate::report::{Environment, Measurements, Report, RunInfo};
use crate::worker::{Shard, worker};
use crate::{limits, open_loop, request_log};

/// Runs the load described by `config` and reports on it.
///
/// Raises the open-file limit first and refuses a concurrency that cannot fit. Failed
/// requests do not make this fail: they are counted in the report by kind.
///
/// # Errors
/// Invalid configuration, too many connections for the open-file limit, or a runtime that
/// cannot start.
pub fn run(config: &Config) -> Result<Report> {
    config.validate()?;
    let open_files_limit = limits::raise_open_files_limit()?;
    limits::check_fits(config.effective_concurrency(), open_files_limit)?;
    if !config.warmup.is_zero() && config.duration.is_none() {
        // A run of so many connections measures every one of them, so its warm-up is a
        // phase of its own, as long as asked, with the measured phase's requests per
        // connection: a persistent-connection load is warmed up on persistent connections,
        // not on a storm of connects the measured phase never makes. A timed run warms up
        // inside its phase instead ([`Plan::with_warmup`]).
        let plan = Plan::new(
            config.n_connections,
            config.requests_per_conn,
            Some(config.warmup),
            config.rate,
        );
        run_phase(config, Arc::new(plan), Phase::Warmup)?;
    }
    let plan = Plan::new(
        config.n_connections,
        config.requests_per_conn,
        config.duration,
        config.rate,
    )
    .with_warmup(config.warmup);
    let plan = Arc::new(plan);
    let (measurements, wall_time) = run_phase(config, Arc::clone(&plan), Phase::Measured)?;
    // The measured part's start (the warm-up's end), on the wall clock.
    let started_at = SystemTime::now() - plan.measured_from().elapsed();
    if let Some(path) = &config.request_log {
        let requests = measurements.request_log.as_deref().unwrap_or_default();
        request_log::write(path, plan.measured_from(), requests).map_err(|source| {
            Error::RequestLog {
                path: path.clone(),
                source,
            }
        })?;
    }
    let info = RunInfo {
        target: config.target.to_string(),
        parameters: config.parameters(),
        environment: Environment::current(open_files_limit),
        started_at,
        wall_time,
        runs_merged: 1,
    };
    Ok(Report::build(info, &measurements)?)
}

/// Which phase of a run: only the measured one is reported, and logged for `--request-log`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Warmup,
    Measured,
}

/// Runs one phase on `n_threads` threads and returns what they measured and how long its
/// measured part took (from the warm-up's end).
fn run_phase(config: &Config, plan: Arc<Plan>, phase: Phase) -> Result<(Measurements, Duration)> {
    let label = match phase {
        Phase::Warmup => "warmup",
        Phase::Measured => "load",
    };
    let log_requests = phase == Phase::Measured && config.request_log.is_some();
    let n_workers = config.effective_concurrency();
    let n_threads = config.effective_threads();
    let total = plan.bounded_by_count().then(|| {
        config
            .n_connections
            .saturating_mul(config.requests_per_conn)
    });
    let progress = config
        .progress
        .then(|| Progress::start(Arc::clone(&plan), label, total));
    let barrier = Barrier::new(usize::try_from(n_threads).unwrap_or(usize::MAX));
    let outcomes: Vec<io::Result<Measurements>> = std::thread::scope(|scope| {
        let barrier = &barrier;
        let threads: Vec<_> = (0..n_threads)
            .map(|index| {
                let share = n_workers / n_threads + u64::from(index < n_workers % n_threads);
                let plan = Arc::clone(&plan);
                let shard = ShardSpec {
                    index,
                    n_threads,
                    n_workers: share,
                    log_requests,
                };
                scope.spawn(move || run_shard(config, plan, shard, barrier))
            })
            .collect();
        threads.into_iter().map(join).collect()
    });
    let wall_time = plan.measured_from().elapsed();
    if let Some(progress) = progress {
        progress.finish();
    }
    let mut total = Measurements::default();
    for outcome in outcomes {
        total.merge(&outcome.map_err(Error::Runtime)?);
    }
    Ok((total, wall_time))
}

fn join<T>(thread: std::thread::ScopedJoinHandle<'_, T>) -> T {
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// Which part of the workers a client thread runs.
#[derive(Debug, Clone, Copy)]
struct ShardSpec {
    index: u64,
    n_threads: u64,
    n_workers: u64,
    log_requests: bool,
}

/// Runs `spec.n_workers` workers on this thread: open loop on the thread's event loop
/// ([`open_loop::run`], which meets the other threads at `barrier` once its connections are
/// open), closed loop on a single-threaded tokio runtime.
fn run_shard(
    config: &Config,
    plan: Arc<Plan>,
    spec: ShardSpec,
    barrier: &Barrier,
) -> io::Result<Measurements> {
    if plan.open_loop() {
        let shard = open_loop::Shard {
            index: spec.index,
            n_threads: spec.n_threads,
            n_workers: spec.n_workers,
            log_requests: spec.log_requests,
        };
        return open_loop::run(config, plan, shard, barrier);
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let shard = Rc::new(Shard {
        plan,
        expect: Expectation {
            request: config.request_bytes(),
            reply: config.expected_reply(),
            framing: config.framing,
            timeout: config.timeout,
        },
        target: config.target,
        requests_per_conn: config.requests_per_conn,
        n_source_addresses: config.effective_source_addresses(),
        count_progress: config.progress,
        measurements: Default::default(),
        next_source: spec.index.into(),
        n_threads: spec.n_threads,
        parked: Default::default(),
    });
    let local = LocalSet::new();
    local.block_on(&runtime, run_workers(Rc::clone(&shard), spec.n_workers));
    shard.close_parked();
    Ok(shard.measurements.take())
}

async fn run_workers(shard: Rc<Shard>, n_workers: u64) {
    let handles: Vec<_> = (0..n_workers)
        .map(|_| tokio::task::spawn_local(worker(Rc::clone(&shard))))
        .collect();
    for handle in handles {
        if let Err(error) = handle.await {
            if error.is_panic() {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    }
}
