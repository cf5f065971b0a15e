//! Measuring one step of a capacity search: a fresh server pinned to the server CPUs, perf
//! attached to it with its counters off, loadgen pinned to its own CPUs on persistent
//! connections at the step's rate, /proc samples, SIGTERM, and the [`Step`] that came out.
//!
//! perf is attached before loadgen connects (a thread-per-connection server then starts its
//! threads under perf's inherited counters, see [`crate::run::perf`]) and enabled just before
//! loadgen starts; it is disabled when loadgen has exited. The server's CPU time comes from
//! `wait4` when it is reaped. So every cost covers loadgen's whole run, warm-up and
//! connecting included, and is divided by the requests of that whole run: the measured
//! window's, plus the warm-up's counted at its target rate (loadgen does not report them).
//! The report says so.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_core::Recipe;
use loadgen::request_log::{Near, RequestLog};
use loadgen::{FailureKind, Report};
use server_process::SpeedProbe;

use super::results::{
    AwayFromSlowdowns, CpuPlacement, Latency, LoadgenCost, MachineSpeed, ServerCost, Step,
};
use crate::catalogue::{Settings, Variant};
use crate::measured::Measured;
use crate::results::Faults;
use crate::run::env::ListenCounters;
use crate::run::load::{self, LoadSpec, Timed};
use crate::run::perf::{KernelCounts, Perf};
use crate::run::procstat::{Peaks, Sampler, Usage};
use crate::run::server::{ServerProcess, shed_connections};
use crate::study::{START_TIMEOUT, STOP_TIMEOUT};

/// Requests each persistent connection may carry: more than any step sends, so loadgen
/// never closes a connection to open another.
const REQUESTS_PER_CONNECTION: u64 = 1_000_000_000;

/// Everything a step needs besides its rate and connections.
#[derive(Debug, Clone)]
pub struct Rig {
    /// How every server is started.
    pub settings: Settings,
    /// The loadgen executable.
    pub loadgen: PathBuf,
    /// Where servers and loadgen run.
    pub cpus: CpuPlacement,
    /// Unmeasured time at the step's rate before its window.
    pub warmup: Duration,
    /// The measured window.
    pub window: Duration,
    /// loadgen's connect and reply timeout.
    pub timeout: Duration,
    /// How late loadgen may start a request before giving it up; `None`: its timeout.
    pub give_up_after: Option<Duration>,
    /// perf, or why system calls and context switches cannot be counted here.
    pub perf: Measured<Perf>,
    /// Where loadgen's raw reports are kept.
    pub runs_dir: PathBuf,
    /// The speed probe on the server's and loadgen's CPUs, running through the study; `None`
    /// when it is off or could not start.
    pub machine: Option<Arc<SpeedProbe>>,
    /// Whether loadgen logs every request (`--request-log`, in a temporary file) so that
    /// the step is judged again away from the probe's slowdowns (only with the probe), and
    /// how near a slowed moment puts a request out of that judgement.
    pub away_from_slowdowns: Option<Near>,
}

/// What one step asks for.
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    /// Open-loop rate; `None` for closed loop (as fast as replies come).
    pub requests_per_second: Option<f64>,
    /// Persistent connections.
    pub connections: u64,
    /// The delay the server is given, a recipe of one phase or several.
    pub delay: Recipe,
}

/// A measured step and the server command that ran it, as typed from the repository root.
#[derive(Debug, Clone, PartialEq)]
pub struct Measurement {
    /// The step's figures.
    pub step: Step,
    /// The server's command line.
    pub server_command: String,
    /// What went wrong with the step's connections.
    pub faults: Faults,
    /// The server's user plus system CPU time over loadgen's whole run (`wait4`); 0 when
    /// it could not be reaped.
    pub server_cpu_seconds: f64,
}

/// Why a step measured nothing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StepError {
    /// The server cannot run on this machine and said so (status 3, `skipped: <reason>`).
    Skipped(String),
    /// It did not start for another reason, or loadgen left no report; the text says what
    /// happened.
    Failed(String),
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepError::Skipped(reason) => write!(f, "skipped: {reason}"),
            StepError::Failed(reason) => f.write_str(reason),
        }
    }
}

/// A server started for one step, pinned to the server CPUs.
#[derive(Debug)]
pub struct Started {
    /// The process.
    pub server: ServerProcess,
    /// Its command line, as typed from the repository root.
    pub command: String,
    /// The kernel's listen counters just before it started.
    pub listen_before: ListenCounters,
}

impl Rig {
    /// Starts a fresh `variant` at `delay`, pinned to the server CPUs.
    ///
    /// # Errors
    /// [`StepError::Skipped`] when the server says it cannot run here, otherwise
    /// [`StepError::Failed`] naming what went wrong.
    pub fn start(&self, variant: &Variant, delay: &Recipe) -> Result<Started, StepError> {
        let launch = variant
            .launch(&self.settings, delay)
            .map_err(|e| StepError::Failed(format!("{e:#}")))?
            .cpus(
                &self
                    .cpus
                    .server_cpus
                    .iter()
                    .map(|&cpu| cpu as usize)
                    .collect::<Vec<_>>(),
            );
        let command = self.settings.for_the_record(&launch.command_line());
        let listen_before = ListenCounters::read().unwrap_or_default();
        let server =
            ServerProcess::start(&launch, START_TIMEOUT).map_err(|e| match e.skipped() {
                Some(reason) => StepError::Skipped(reason.to_owned()),
                None => StepError::Failed(format!("{e:#}")),
            })?;
        Ok(Started {
            server,
            command,
            listen_before,
        })
    }

    /// Measures `variant` under `load`; loadgen's report is kept as `runs/<name>.json`.
    ///
    /// # Errors
    /// As [`Rig::start`], or [`StepError::Failed`] when loadgen leaves no report.
    pub fn measure(
        &self,
        variant: &Variant,
        load: Load,
        name: &str,
    ) -> Result<Measurement, StepError> {
        let Started {
            server,
            command: server_command,
            listen_before,
        } = self.start(variant, &load.delay)?;
        let sampler = Sampler::start(server.pid());
        let mut counting = self.perf.clone().and_then(|perf| perf.attach(server.pid()));
        if let Ok(counting) = counting.as_mut() {
            let _ = counting.enable();
        }
        let json = self.runs_dir.join(format!("{name}.json"));
        // Only an open loop has a schedule to log (loadgen's ceiling is a closed loop).
        let request_log = load
            .requests_per_second
            .and_then(|_| self.request_log(name));
        let spec = LoadSpec {
            request_log: request_log.clone(),
            ..self.spec(&load)
        };
        let started = Instant::now();
        let outcome = load::run(&spec, server.addr(), &json);
        let elapsed = started.elapsed();
        let machine = self.machine.as_ref().and_then(|probe| {
            MachineSpeed::of(probe.over(&self.cpus.all(), started, Instant::now()))
        });
        let away_from_slowdowns = request_log
            .and_then(|path| self.away_from_slowdowns(&path, &format!("{name}: loadgen's")));
        let counts = counting.and_then(|counting| counting.stop());
        let peaks = sampler.stop();
        let tail = server.stderr_tail_text();
        let exit = server.stop(STOP_TIMEOUT).ok();
        let overflows = ListenCounters::read()
            .unwrap_or_default()
            .since(listen_before)
            .overflows;
        let usage = exit.as_ref().map(|exit| exit.usage);
        let report = outcome.report.ok_or_else(|| {
            let why = outcome.failure.unwrap_or_default();
            StepError::Failed(format!("loadgen left no report: {why}; server {tail}"))
        })?;
        let lag = OwnLag::of(&report);
        let run = Run {
            load,
            report: &report,
            elapsed,
            warmup: self.warmup,
            counts,
            peaks,
            usage,
            loadgen_cpu_seconds: outcome.client_cpu_seconds,
            lag,
        };
        let step = Step {
            machine,
            away_from_slowdowns,
            ..run.step(&self.cpus)
        };
        let faults = Faults {
            shed: exit
                .as_ref()
                .and_then(|e| e.last_stderr_line())
                .and_then(shed_connections),
            listen_overflows: overflows,
            ..Faults::from_failures(&step.failures_by_kind)
        };
        let usage = run.usage.unwrap_or_default();
        Ok(Measurement {
            step,
            server_command,
            faults,
            server_cpu_seconds: usage.user_cpu_seconds + usage.system_cpu_seconds,
        })
    }

    /// Where the client of the run `name` logs its requests, when the rig judges runs away
    /// from the machine's slowdowns: a file of this process in the temporary directory.
    pub fn request_log(&self, name: &str) -> Option<PathBuf> {
        self.machine
            .as_ref()
            .zip(self.away_from_slowdowns)
            .map(|_| {
                std::env::temp_dir().join(format!("xtask-{name}-{}.requests", std::process::id()))
            })
    }

    /// The run logged at `path` judged away from the probe's slowdowns so far; the log is
    /// removed. `None`, said on stderr with `whose` log it was, when it cannot be read.
    pub fn away_from_slowdowns(&self, path: &Path, whose: &str) -> Option<AwayFromSlowdowns> {
        let (probe, near) = self.machine.as_ref().zip(self.away_from_slowdowns)?;
        let log = RequestLog::read(path);
        let _ = std::fs::remove_file(path);
        match log {
            Ok(log) => Some(log.away_from_slowdowns(&probe.slowed_at(&self.cpus.all()), near)),
            Err(e) => {
                eprintln!("{whose} request log {}: {e}", path.display());
                None
            }
        }
    }

    fn spec(&self, load: &Load) -> LoadSpec {
        LoadSpec {
            program: self.loadgen.clone(),
            iterations: load.connections,
            concurrency: None,
            requests_per_conn: REQUESTS_PER_CONNECTION,
            timeout: self.timeout,
            timed: Some(Timed {
                requests_per_second: load.requests_per_second,
                duration: self.window,
                warmup: self.warmup,
                give_up_after: self.give_up_after,
            }),
            cpus: Some(cpu_list(&self.cpus.loadgen_cpus)),
            request_log: None,
            fifo_priority: self.cpus.clients_fifo_priority,
        }
    }
}

/// `0` or `0,2,3`: CPUs as taskset takes them.
pub fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// What a loadgen report says of its own lag: `client_lag` (its lag without the waits for a
/// busy connection) and `requests_waited_for_connection`, both absent from reports older
/// than schema 3, which are judged by their schedule lag instead; and its `read_lag`, empty
/// in reports from before loadgen stamped its replies on arrival.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OwnLag {
    /// The client lag's p99 in milliseconds, when loadgen reported a lag of its own.
    pub p99_ms: Option<f64>,
    /// Requests due while every connection was busy, when reported.
    pub requests_waited_for_connection: Option<u64>,
    /// The read lag's p99 in milliseconds, when loadgen timed replies by their arrival.
    pub read_p99_ms: Option<f64>,
}

/// The first loadgen report schema with a client lag of its own.
const CLIENT_LAG_SCHEMA: u32 = 3;

impl OwnLag {
    /// From a loadgen report.
    pub fn of(report: &Report) -> OwnLag {
        if report.schema_version < CLIENT_LAG_SCHEMA {
            return OwnLag::default();
        }
        let lag = &report.client_lag;
        OwnLag {
            p99_ms: (lag.count > 0).then_some(lag.p99_us / 1e3),
            requests_waited_for_connection: Some(report.requests_waited_for_connection),
            read_p99_ms: (report.read_lag.count > 0).then_some(report.read_lag.p99_us / 1e3),
        }
    }
}

/// What came back from one step's processes, before it is a [`Step`].
#[derive(Debug)]
struct Run<'a> {
    load: Load,
    report: &'a Report,
    elapsed: Duration,
    warmup: Duration,
    counts: Measured<KernelCounts>,
    peaks: Peaks,
    usage: Option<Usage>,
    loadgen_cpu_seconds: Option<f64>,
    lag: OwnLag,
}

impl Run<'_> {
    fn step(&self, cpus: &CpuPlacement) -> Step {
        let report = self.report;
        let failed = report.requests_failed + report.requests_not_sent;
        let failures_by_kind = FailureKind::ALL
            .iter()
            .filter(|&&k| report.failures.get(k) > 0)
            .map(|&k| (k.name().to_owned(), report.failures.get(k)))
            .collect();
        // The schedule spans the window; the replies of its last requests arrive up to a
        // delay later, so the rate is the window's requests over the window, not over
        // loadgen's wall time (which would make every step fall a delay's share short).
        let window_seconds = report
            .parameters
            .duration_seconds
            .unwrap_or(report.wall_time_seconds);
        let achieved = report.requests_ok as f64 / window_seconds.max(f64::MIN_POSITIVE);
        Step {
            target_requests_per_second: self.load.requests_per_second.unwrap_or(0.0),
            achieved_requests_per_second: achieved,
            connections: self.load.connections,
            window_seconds,
            requests_ok: report.requests_ok,
            requests_failed: failed,
            failures_by_kind,
            requests_started_late: report.requests_started_late,
            latency: Latency::from_percentiles(&report.latency),
            p99_from_send_ms: (report.latency_from_send.count > 0)
                .then(|| report.latency_from_send.p99_us / 1e3),
            server: self.server_cost(cpus.server_cpus.len()),
            loadgen: self.loadgen_cost(cpus.loadgen_cpus.len()),
            machine: None,
            away_from_slowdowns: None,
        }
    }

    /// Requests of loadgen's whole run: the window's, and the warm-up's at its target rate.
    fn requests(&self) -> f64 {
        let report = self.report;
        let window = report.requests_ok + report.requests_failed + report.requests_not_sent;
        let warmup = self
            .load
            .requests_per_second
            .unwrap_or(report.throughput_requests_per_second)
            * self.warmup.as_secs_f64();
        (window as f64 + warmup).max(1.0)
    }

    fn server_cost(&self, n_cpus: usize) -> ServerCost {
        let requests = self.requests();
        let usage = self.usage.unwrap_or_default();
        let cpu = usage.user_cpu_seconds + usage.system_cpu_seconds;
        let per_request = |counted: fn(&KernelCounts) -> u64| -> Measured<f64> {
            self.counts.clone().map(|c| counted(&c) as f64 / requests)
        };
        ServerCost {
            user_cpu_us_per_request: usage.user_cpu_seconds * 1e6 / requests,
            system_cpu_us_per_request: usage.system_cpu_seconds * 1e6 / requests,
            cpu_ratio: ratio(cpu, self.elapsed, n_cpus),
            syscalls_per_request: per_request(|c| c.syscalls),
            context_switches_per_request: per_request(|c| c.context_switches),
            peak_rss_bytes: self.peaks.peak_rss_bytes.max(usage.max_rss_bytes),
            peak_threads: self.peaks.peak_threads,
        }
    }

    fn loadgen_cost(&self, n_cpus: usize) -> LoadgenCost {
        let cpu_seconds = self.loadgen_cpu_seconds.unwrap_or(0.0);
        let (lag_p99_ms, lag_is_clients_own) = match self.lag.p99_ms {
            Some(own) => (Ok(own), true),
            None => (load::schedule_lag(self.report).map(|lag| lag.p99_ms), false),
        };
        LoadgenCost {
            cpu_seconds,
            cpu_ratio: ratio(cpu_seconds, self.elapsed, n_cpus),
            lag_p99_ms,
            lag_is_clients_own,
            requests_waited_for_connection: self.lag.requests_waited_for_connection,
            read_lag_p99_ms: self.lag.read_p99_ms,
        }
    }
}

/// CPU time over a run, as a fraction of the CPUs the process may use.
fn ratio(cpu_seconds: f64, elapsed: Duration, n_cpus: usize) -> f64 {
    let available = elapsed.as_secs_f64() * n_cpus.max(1) as f64;
    if available > 0.0 {
        cpu_seconds / available
    } else {
        0.0
    }
}

/// Why perf cannot count here, checked once before the study: perf attached to this very
/// process and enabled, or the reason it could not be.
pub fn probe_perf() -> Measured<Perf> {
    let perf = Perf::default();
    let counting = perf.start(std::process::id())?;
    counting.stop()?;
    Ok(perf)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::measured::NotMeasured;

    #[test]
    fn cpus_are_listed_as_taskset_takes_them() {
        assert_eq!(cpu_list(&[0]), "0");
        assert_eq!(cpu_list(&[0, 2, 3]), "0,2,3");
    }

    #[test]
    fn cpu_time_is_a_fraction_of_the_cpus_over_the_run() {
        assert_eq!(ratio(1.0, Duration::from_secs(2), 1), 0.5);
        assert_eq!(ratio(1.0, Duration::from_secs(1), 2), 0.5);
        assert_eq!(ratio(1.0, Duration::ZERO, 1), 0.0);
    }

    #[test]
    fn loadgens_own_lag_is_read_when_it_reports_one_and_absent_otherwise() {
        let mut report = crate::run::load::tests::report_of_one_request(
            Duration::from_millis(30),
            Duration::from_micros(1500),
        );
        let own = OwnLag::of(&report);
        assert_eq!(own.requests_waited_for_connection, Some(1));
        let p99 = own.p99_ms.expect("a lag of its own");
        assert!((1.4..1.6).contains(&p99), "not the 30 ms wait: {p99}");
        let read = own.read_p99_ms.expect("the reply was stamped on arrival");
        assert!((1.9..2.1).contains(&read), "the 2 ms read lag: {read}");
        report.read_lag.count = 0;
        assert_eq!(
            OwnLag::of(&report).read_p99_ms,
            None,
            "no stamps: no read lag"
        );
        report.client_lag.count = 0;
        assert_eq!(OwnLag::of(&report).p99_ms, None, "closed loop: no lag");
        report.schema_version = CLIENT_LAG_SCHEMA - 1;
        assert_eq!(OwnLag::of(&report), OwnLag::default(), "an older report");
    }

    #[test]
    fn a_missing_perf_is_not_measured_with_its_reason() {
        let missing: Measured<Perf> = Err(NotMeasured::new("perf is not installed"));
        let counted = missing.and_then(|perf| perf.attach(1)).map(|_| ());
        assert_eq!(counted, Err(NotMeasured::new("perf is not installed")));
    }
}
