//! The typed results of a scenarios study: what `summary.json` holds, and the only thing its
//! tables, paragraphs and targets are rendered from.
//!
//! One [`ScenariosSummary`] per run: the machine, the common load, and per scenario its
//! [`ScenarioRun`]: the connections it got and one [`Cell`] per server, whose figures are a
//! capacity [`Step`] (the same measurement of one server under one load) plus the length of
//! loadgen's measured phase. Units are in the names, as in every summary of this crate.

use serde::{Deserialize, Serialize};

use super::scenario::Scenario;
use crate::catalogue::Executor;
use crate::results::{Environment, Kind, Model, Skipped};
use crate::study::capacity::results::Step;

/// Bump when a field changes meaning or disappears, so old summaries are not misread.
pub const SCHEMA_VERSION: u32 = 1;

/// One scenarios study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenariosSummary {
    /// Always [`Kind::Scenarios`] when written now; absent from older studies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// [`SCHEMA_VERSION`] when this file was written.
    pub schema_version: u32,
    /// Short name of the study, the second half of its directory name.
    pub label: String,
    /// The machine and the code that were measured.
    pub env: Environment,
    /// The common load and everything else chosen.
    pub settings: Settings,
    /// One entry per scenario, in column order.
    pub scenarios: Vec<ScenarioRun>,
    /// Servers asked for that ran in no scenario, with the reason.
    pub skipped: Vec<Skipped>,
}

/// The common load of every cell, as used (defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The open-loop rate loadgen offers every server in every scenario.
    pub requests_per_second: f64,
    /// Unmeasured seconds at that rate before each window.
    pub warmup_seconds: f64,
    /// Measured seconds of each cell.
    pub window_seconds: f64,
    /// loadgen's reply timeout: a reply slower than this fails.
    pub timeout_seconds: f64,
    /// A request no connection could send within this of its due time was given up.
    pub give_up_after_seconds: f64,
    /// The CPUs servers and loadgen may use: all of them, shared (the server is not pinned).
    pub cpus: Vec<u32>,
    /// Listen backlog of every server.
    pub backlog: u32,
    /// Threads of `threaded-pool`.
    pub pool_size: u32,
    /// Workers of the multi-threaded runtimes: the machine's cores.
    pub workers: u32,
    /// The command line that produced this study.
    pub command: String,
}

/// One scenario and what every server did in it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScenarioRun {
    /// Name, spec and what it models.
    #[serde(flatten)]
    pub scenario: Scenario,
    /// Persistent connections of each cell: 2 × rate × the spec's mean delay, at least 50.
    pub connections: u64,
    /// Why no server ran this scenario, if none did. The study runs every scenario now that
    /// every server takes any recipe; the field stays so that the summary's shape does.
    pub skipped: Option<String>,
    /// One cell per server, in catalogue order.
    pub cells: Vec<Cell>,
}

/// One server in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Cell {
    /// Variant name (`mio`, `python-asyncio`, ...).
    pub server: String,
    /// Concurrency model.
    pub model: Model,
    /// What runs its requests' work (a thread each, one loop, several, an offload pool).
    pub executor: Executor,
    /// The server's command line, as typed from the repository root.
    pub command: String,
    /// What was measured; `None` when the cell did not run.
    pub figures: Option<Figures>,
    /// Why the cell has no figures (the server did not start, loadgen left no report, the
    /// variant cannot take this delay).
    pub failure: Option<String>,
}

/// What one cell measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Figures {
    /// The step's figures, as the capacity study measures a step (its
    /// `achieved_requests_per_second` is over the window; see [`Figures::answered_requests_per_second`]).
    #[serde(flatten)]
    pub step: Step,
    /// loadgen's measured phase, from its first due request to its last answer or give-up.
    pub measured_seconds: f64,
    /// The server's user plus system CPU time over loadgen's whole run, warm-up included.
    pub server_cpu_seconds: f64,
}

impl Figures {
    /// Requests answered per second of loadgen's measured phase. A server that keeps up
    /// reads slightly under the rate (the last replies come a delay after the schedule); one
    /// that does not reads what it answered, not its backlog counted into the window.
    pub fn answered_requests_per_second(&self) -> f64 {
        self.step.requests_ok as f64 / self.measured_seconds.max(f64::MIN_POSITIVE)
    }

    /// Server CPU per answered request in µs, user plus system: its CPU over loadgen's
    /// whole run, over the requests answered in it, the warm-up's taken at the measured
    /// phase's answered rate (loadgen does not count them). Unlike the capacity step's
    /// per-request figure, which divides by every request offered, this is what an answer
    /// cost a server that did not keep up.
    pub fn cpu_us_per_answered_request(&self, warmup_seconds: f64) -> f64 {
        let answered =
            self.step.requests_ok as f64 + self.answered_requests_per_second() * warmup_seconds;
        self.server_cpu_seconds * 1e6 / answered.max(1.0)
    }

    /// [`Figures::cpu_us_per_answered_request`] split into user and system time, in the
    /// shares `wait4` measured.
    pub fn cpu_split_us_per_answered_request(&self, warmup_seconds: f64) -> (f64, f64) {
        let total = self.cpu_us_per_answered_request(warmup_seconds);
        let user_share = crate::export::figures::user_share(&self.step).unwrap_or(0.0);
        (total * user_share, total * (1.0 - user_share))
    }

    /// Requests loadgen gave up on, never sending them: the failures that have no kind.
    pub fn not_sent(&self) -> u64 {
        let kinds: u64 = self.step.failures_by_kind.values().sum();
        self.step.requests_failed.saturating_sub(kinds)
    }
}

impl ScenariosSummary {
    /// The scenario called `name`, if this study ran it.
    pub fn scenario(&self, name: &str) -> Option<&ScenarioRun> {
        self.scenarios.iter().find(|s| s.scenario.name == name)
    }
}

impl ScenarioRun {
    /// The cell of `server`, if it has figures.
    pub fn figures(&self, server: &str) -> Option<&Figures> {
        self.cells
            .iter()
            .find(|c| c.server == server)
            .and_then(|c| c.figures.as_ref())
    }

    /// The cells with figures, most requests answered first; within 2 % of the most, the
    /// lower p99 first, so that noise in rows that all kept up does not pick the winner.
    pub fn ranked(&self) -> Vec<(&Cell, &Figures)> {
        let mut ranked: Vec<(&Cell, &Figures)> = self
            .cells
            .iter()
            .filter_map(|c| Some((c, c.figures.as_ref()?)))
            .filter(|(_, f)| f.step.requests_ok > 0)
            .collect();
        let best = ranked
            .iter()
            .map(|(_, f)| f.answered_requests_per_second())
            .fold(0.0, f64::max);
        let tied = |f: &Figures| f.answered_requests_per_second() >= TIED_SHARE * best;
        ranked.sort_by(|(_, a), (_, b)| match (tied(a), tied(b)) {
            (true, true) => a.step.latency.p99_ms.total_cmp(&b.step.latency.p99_ms),
            _ => b
                .answered_requests_per_second()
                .total_cmp(&a.answered_requests_per_second()),
        });
        ranked
    }
}

/// Rows answering at least this share of the most answered kept up as well as it did; the
/// lower p99 decides between them.
pub const TIED_SHARE: f64 = 0.98;
