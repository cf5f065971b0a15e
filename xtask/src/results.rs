//! The typed results of a comparison: what is written to JSON and the only thing reports are
//! rendered from.
//!
//! **JSON is the source of truth.** `summary.json` holds a [`Summary`]; each run also leaves
//! a [`RunRecord`] under `runs/`. The markdown report and the chart are pure functions of a
//! [`Summary`] (see `render.rs`), so a committed report can always be checked against its
//! JSON. Every quantity carries its unit in its name (`_seconds`, `_bytes`, `_ms`).

use std::collections::BTreeMap;

use echo_core::{DelayKind, Recipe};
use serde::{Deserialize, Serialize};

/// Bump when a field changes meaning or disappears, so old summaries are not misread.
///
/// 2: `params.delay_mean_ms` is gone (it is the mean of `params.delay`), and each Python
/// baseline has a model of its own instead of both being `python-baseline`.
pub const SCHEMA_VERSION: u32 = 2;

/// The oldest schema this xtask still reads (and upgrades on reading).
pub const OLDEST_READABLE_SCHEMA: u32 = 1;

/// Which study wrote a `summary.json`: its `kind` field, which `cargo xtask report` renders
/// it by. Summaries written before the field existed have none and are told apart by their
/// keys instead (see `report::kind_of`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// `cargo xtask compare`.
    Compare,
    /// `cargo xtask capacity`.
    Capacity,
    /// `cargo xtask scenarios`.
    Scenarios,
    /// `cargo xtask soak`.
    Soak,
}

/// One comparison: environment, parameters, and a row per server and iteration count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    /// Always [`Kind::Compare`] when written now; absent from older comparisons.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// [`SCHEMA_VERSION`] when this file was written.
    pub schema_version: u32,
    /// Short name of the comparison, the second half of its directory name.
    pub label: String,
    /// The machine and the code that were measured.
    pub env: Environment,
    /// Everything the user chose, and what was used by default.
    pub params: Params,
    /// One row per server variant and iteration count, in the order they were configured.
    pub rows: Vec<Row>,
    /// Variants that were asked for but not run, with the reason.
    pub skipped: Vec<Skipped>,
}

/// The machine and the code, as found when the comparison started.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// `model name` from /proc/cpuinfo.
    pub cpu_model: String,
    /// Logical CPUs the process may run on.
    pub cores: u32,
    /// `MemTotal` from /proc/meminfo.
    pub memory_bytes: u64,
    /// `uname -r` (from /proc/sys/kernel/osrelease).
    pub kernel: String,
    /// `rustc --version`.
    pub rustc: String,
    /// `python3 --version`, or `None` when python3 is not on PATH.
    pub python: Option<String>,
    /// `git rev-parse HEAD`, with `-dirty` appended when the work tree had changes.
    pub git_commit: String,
    /// When the comparison started, RFC 3339 in UTC.
    pub date_utc: String,
    /// Soft `RLIMIT_NOFILE` inherited by the servers and loadgen.
    pub open_files_limit: u64,
    /// `net.core.somaxconn`: the kernel caps every listen backlog at this.
    pub somaxconn: Option<u64>,
}

/// The parameters of a comparison, as used (defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Params {
    /// Connections per run; more than one value makes a sweep.
    pub iterations: Vec<u64>,
    /// The delay given to every server, written as its spec (`100ms`, `uniform:50ms..150ms`,
    /// `spin:2ms+wait:100ms`, ...): a recipe of one phase reads as the delays of before
    /// recipes. Its mean makes the physical floor.
    pub delay: Recipe,
    /// How servers spend a phase whose spec names no kind (`wait`, `block`, `spin`).
    pub delay_kind: DelayKind,
    /// Connections open at once; `None` means all of them, as in the article.
    pub concurrency: Option<u64>,
    /// Sequential requests on each connection.
    pub requests_per_conn: u64,
    /// Measured runs per server and iteration count.
    pub repeat: u32,
    /// Whether one unmeasured warm-up run preceded the measured ones.
    pub warmup: bool,
    /// Whether every server was also measured at zero delay (the floor's second term).
    pub zero_delay: bool,
    /// Listen backlog passed to every server that takes one.
    pub backlog: u32,
    /// Worker threads of the `threaded-pool` variant.
    pub pool_size: u32,
    /// loadgen's connect and reply timeout.
    pub timeout_ms: u64,
    /// The command line that produced this comparison.
    pub command: String,
}

/// A variant that was asked for but could not run, and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Skipped {
    /// Variant name, as in `--servers`.
    pub server: String,
    /// Why, in a sentence a reader can act on.
    pub reason: String,
}

/// A row's concurrency model, as the catalogue labels it (`threads`, `tokio`, `mio`,
/// `asyncio`, ...), or `external`.
///
/// Text, not an enum, so that a new model is one catalogue row; what a model is (Rust or
/// baseline, event loop or threads) is looked up there (`catalogue::side_of`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Model(String);

impl Model {
    /// The model called `name`.
    pub fn new(name: &str) -> Model {
        Model(name.to_owned())
    }

    /// Its label.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Model {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// Median and range of one quantity over the successful measured runs.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Middle value (the mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The median and range of `values`, or `None` when there are none.
    pub fn of(values: &[f64]) -> Option<Spread> {
        let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
        if sorted.is_empty() {
            return None;
        }
        sorted.sort_by(f64::total_cmp);
        let n = sorted.len();
        let median = if n % 2 == 1 {
            sorted[n / 2]
        } else {
            (sorted[n / 2 - 1] + sorted[n / 2]) / 2.0
        };
        Some(Spread {
            median,
            min: sorted[0],
            max: sorted[n - 1],
        })
    }
}

/// One server variant at one iteration count: the medians over its successful runs.
///
/// A run whose loadgen reported any failed request, or whose server did not start or exit
/// cleanly, is counted in `runs_failed` and left out of every figure here.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Row {
    /// Variant name (`tokio-multi`, `python-asyncio`, ...).
    pub server: String,
    /// Concurrency model.
    pub model: Model,
    /// The command that started the server (with the port as `0` or `{port}`).
    pub command: String,
    /// Connections in each run.
    pub iterations: u64,
    /// Connections open at once (iterations, or the concurrency limit if lower).
    pub concurrent_connections: u64,
    /// Measured runs attempted.
    pub runs: u32,
    /// Measured runs that failed; their figures are not in this row.
    pub runs_failed: u32,
    /// Why the runs failed, one line per distinct reason.
    pub failure_reasons: Vec<String>,
    /// Requests that failed or were never sent, over every measured run (failed runs too).
    pub requests_failed: u64,
    /// Figures over the successful runs; `None` when every run failed.
    pub measured: Option<Measured>,
    /// Median wall time of the zero-delay runs, when they were made and succeeded.
    pub zero_delay_wall_seconds: Option<f64>,
    /// What went wrong with connections over every measured run, failed runs included;
    /// absent in summaries written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
}

/// What went wrong with a server's connections (issue 13): the client's failures by kind,
/// the connections the server itself shed, and the kernel's listen-queue overflows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Faults {
    /// Connections the server refused (loadgen's `connection_refused`).
    pub connections_refused: u64,
    /// Connections the server reset (loadgen's `reset`).
    pub connections_reset: u64,
    /// Connects and replies that did not complete within loadgen's timeout
    /// (`connect_timeout` plus `reply_timeout`).
    pub timed_out: u64,
    /// Connections the server turned away with `ERR server busy` (load shedding), from the
    /// `shed N` of its summary line; `None` when it printed no summary line (the Python
    /// baselines, a server given with `--external`).
    pub shed: Option<u64>,
    /// `TcpExt ListenOverflows` increase while the server ran: SYNs dropped because an
    /// accept queue was full. Machine-wide (the whole network namespace), not this server's
    /// alone.
    pub listen_overflows: u64,
}

impl Faults {
    /// The client's share of the faults, from loadgen's failures by kind (as named in its
    /// report).
    pub fn from_failures(failures_by_kind: &BTreeMap<String, u64>) -> Faults {
        let count = |kind: &str| failures_by_kind.get(kind).copied().unwrap_or(0);
        Faults {
            connections_refused: count("connection_refused"),
            connections_reset: count("reset"),
            timed_out: count("connect_timeout") + count("reply_timeout"),
            shed: None,
            listen_overflows: 0,
        }
    }

    /// Both counts together; `shed` is known when either knows it.
    pub fn plus(self, other: Faults) -> Faults {
        let shed = match (self.shed, other.shed) {
            (None, None) => None,
            (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
        };
        Faults {
            connections_refused: self.connections_refused + other.connections_refused,
            connections_reset: self.connections_reset + other.connections_reset,
            timed_out: self.timed_out + other.timed_out,
            shed,
            listen_overflows: self.listen_overflows + other.listen_overflows,
        }
    }

    /// Whether nothing went wrong, so a report has nothing to show.
    pub fn is_zero(&self) -> bool {
        [
            self.connections_refused,
            self.connections_reset,
            self.timed_out,
            self.shed.unwrap_or(0),
            self.listen_overflows,
        ]
        .iter()
        .all(|&n| n == 0)
    }
}

/// The figures of a row, over its successful measured runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Measured {
    /// loadgen's wall time for the whole run.
    pub wall_seconds: Spread,
    /// Successful requests per second (median).
    pub throughput_rps: f64,
    /// Median request latency (median over runs).
    pub latency_p50_ms: f64,
    /// 99th percentile request latency (median over runs).
    pub latency_p99_ms: f64,
    /// Slowest request of any run.
    pub latency_max_ms: f64,
    /// Time until loadgen had every concurrent connection established (median over runs):
    /// how much of the wall time went into connecting.
    pub all_connected_seconds: Option<f64>,
    /// Peak resident memory of the server process (median over runs).
    pub peak_rss_bytes: f64,
    /// Resident memory right after the server said it was listening (median over runs).
    pub idle_rss_bytes: f64,
    /// Most threads the server had at once (largest over runs).
    pub peak_threads: u64,
    /// User plus system CPU time of the server (median over runs).
    pub cpu_seconds: f64,
    /// User plus system CPU time of loadgen, the client (median over runs): with the server's,
    /// it says whether the two cores were saturated.
    pub client_cpu_seconds: Option<f64>,
    /// loadgen's schedule lag (medians of p50 and p99 over the runs that measured one, the
    /// largest max); `None` where no run measured it (closed loop, or a schema-1 loadgen).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_schedule_lag: Option<ScheduleLag>,
    /// Voluntary context switches of the server, every thread (median over runs).
    pub voluntary_ctx_switches: f64,
    /// Involuntary context switches of the server, every thread (median over runs).
    pub involuntary_ctx_switches: f64,
    /// Kernel `TcpExt ListenOverflows` increase during the runs (sum over runs).
    pub listen_overflows: u64,
    /// Kernel `TcpExt ListenDrops` increase during the runs (sum over runs).
    pub listen_drops: u64,
}

/// Which of the three kinds of run a [`RunRecord`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunKind {
    /// Unmeasured: warms caches and the kernel's socket state.
    Warmup,
    /// Counted in the row's figures.
    Measured,
    /// The same run at zero delay: the server's own cost, the floor's second term.
    ZeroDelay,
}

/// Everything known about one run; written to `runs/<server>-<iterations>-<kind>-<n>.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Variant name.
    pub server: String,
    /// Connections in this run.
    pub iterations: u64,
    /// Warm-up, measured or zero-delay.
    pub kind: RunKind,
    /// 1-based index among runs of this kind.
    pub index: u32,
    /// The server's command line as started.
    pub server_command: String,
    /// loadgen's command line as started.
    pub loadgen_command: String,
    /// `None` when the run succeeded; otherwise why it failed.
    pub failure: Option<String>,
    /// Why the server cannot run on this machine, when it exited at start saying so
    /// (status 3 and a `skipped: <reason>` line): the row is skipped, not failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
    /// What loadgen measured; `None` when it produced no report.
    pub load: Option<LoadFigures>,
    /// loadgen's own CPU time, user plus system; `None` when it could not be reaped.
    pub client_cpu_seconds: Option<f64>,
    /// What was sampled from the server process; `None` when it never started.
    pub process: Option<ProcessFigures>,
    /// `TcpExt ListenOverflows` increase while the server ran (whole network namespace).
    pub listen_overflows: u64,
    /// `TcpExt ListenDrops` increase while the server ran (whole network namespace).
    pub listen_drops: u64,
    /// How the server ended.
    pub exit: Option<ExitRecord>,
    /// loadgen's own JSON report, unchanged.
    pub loadgen_report: Option<serde_json::Value>,
}

/// The part of loadgen's report that the tables use.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadFigures {
    /// Wall time of the whole run.
    pub wall_seconds: f64,
    /// Requests answered correctly.
    pub requests_ok: u64,
    /// Requests that failed for any reason.
    pub requests_failed: u64,
    /// Failed requests by loadgen's failure kind.
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Successful requests per second.
    pub throughput_rps: f64,
    /// Median latency.
    pub latency_p50_ms: f64,
    /// 99th percentile latency.
    pub latency_p99_ms: f64,
    /// Slowest request.
    pub latency_max_ms: f64,
    /// Time until every connection of the first wave was established; `None` when none was.
    pub all_connected_seconds: Option<f64>,
    /// loadgen's own schedule lag, where it measured one (open loop, schema-2 reports).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_lag: Option<ScheduleLag>,
}

/// loadgen's own schedule lag in an open-loop run (how late the client itself sent each
/// request against its schedule), in milliseconds: p50, p99 and max.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleLag {
    /// Median lag.
    pub p50_ms: f64,
    /// 99th percentile lag: what decides whether a step was client-bound.
    pub p99_ms: f64,
    /// Largest lag.
    pub max_ms: f64,
}

/// What the server process cost, from /proc samples and from `wait4`'s resource usage.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ProcessFigures {
    /// Peak resident memory (the larger of the kernel's high-water mark and the samples).
    pub peak_rss_bytes: u64,
    /// Resident memory at the first sample, right after the listening line.
    pub idle_rss_bytes: u64,
    /// Most threads seen in one sample.
    pub peak_threads: u64,
    /// User CPU time, all threads.
    pub user_cpu_seconds: f64,
    /// System CPU time, all threads.
    pub system_cpu_seconds: f64,
    /// Voluntary context switches, all threads (including those that exited).
    pub voluntary_ctx_switches: u64,
    /// Involuntary context switches, all threads (including those that exited).
    pub involuntary_ctx_switches: u64,
    /// How many /proc samples were taken.
    pub samples: u64,
}

/// How a server process ended after SIGTERM.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExitRecord {
    /// Exit status, when it exited.
    pub code: Option<i32>,
    /// Signal that ended it, when one did.
    pub signal: Option<i32>,
    /// True when it exited with status 0 within the timeout.
    pub clean: bool,
    /// Time from SIGTERM to exit.
    pub stop_seconds: f64,
    /// The last line it wrote to stderr (its summary, if it prints one).
    pub last_stderr_line: Option<String>,
}
