//! The typed results of a capacity study: what `summary.json` holds, and the only thing its
//! tables, paragraph and chart are rendered from.
//!
//! One [`CapacitySummary`] per run: the machine, the settings (SLO, search, connections,
//! CPUs), loadgen's own ceiling, and per server its [`ServerCapacity`]: the numeric
//! `max_sustainable_requests_per_second`, what bound it, and every step the search measured
//! with its [`Verdict`]. Units are in the names (`_requests_per_second`, `_ms`, `_us`,
//! `_bytes`, `_ratio` for a fraction of the CPUs a process may use). A figure that depends
//! on the machine is a [`Measured`], written as the number or as the reason it is missing.

use std::collections::BTreeMap;

use echo_core::{DelayKind, Recipe};
use serde::{Deserialize, Serialize};

use super::connections::ConnectionRule;
use super::search::SearchSettings;
use super::slo::{JudgedOn, Slo, Verdict};
use crate::export::latency_chart::{LatencyChart, Point, Series};
use crate::measured::{Measured, field};
use crate::results::{Environment, Faults, Kind, Model, Skipped};
pub use loadgen::request_log::AwayFromSlowdowns;

/// Bump when a field changes meaning or disappears, so old summaries are not misread.
pub const SCHEMA_VERSION: u32 = 1;

/// One capacity study.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CapacitySummary {
    /// Always [`Kind::Capacity`] when written now; absent from older studies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<Kind>,
    /// [`SCHEMA_VERSION`] when this file was written.
    pub schema_version: u32,
    /// Short name of the study, the second half of its directory name.
    pub label: String,
    /// The machine and the code that were measured.
    pub env: Environment,
    /// Everything the user chose, and what was used by default.
    pub settings: Settings,
    /// The highest rate loadgen sustains on its own CPUs against the fastest server at zero
    /// delay: no server result above it could be told from the client's limit.
    #[serde(with = "field")]
    pub loadgen_ceiling_requests_per_second: Measured<f64>,
    /// The server loadgen's ceiling was measured against (closed loop, zero delay).
    pub loadgen_ceiling_server: Option<String>,
    /// loadgen open loop at a multiple of the best server's max sustainable rate, on its
    /// own CPUs: whether it carries that rate (issue 10: at least 1.25×). Absent in studies
    /// made before it was measured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub loadgen_headroom: Option<LoadgenHeadroom>,
    /// The independent client that checked each server's max rate, or why it did not.
    /// Absent in studies made before the check existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub independent_client: Option<IndependentClient>,
    /// How fast the CPUs ran over the whole study, by the speed probe; absent where it
    /// could not run, and from studies made before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<StudyMachine>,
    /// One entry per server, in the order they were measured.
    pub servers: Vec<ServerCapacity>,
    /// Servers that were asked for but not run, with the reason.
    pub skipped: Vec<Skipped>,
}

/// The settings of a study, as used (defaults filled in).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The delay every server was given: its spec, a recipe of one phase or several.
    pub delay: Recipe,
    /// How servers spent a phase whose spec names no kind.
    pub delay_kind: DelayKind,
    /// What a step must meet.
    pub slo: Slo,
    /// How the rate was searched.
    pub search: SearchSettings,
    /// How many connections each step opened.
    pub connections: ConnectionRule,
    /// Unmeasured seconds at each step's rate before its window.
    pub warmup_seconds: f64,
    /// Whether the warm-up was the first stretch of the window's own schedule, on its
    /// connections (loadgen since `--warmup` with `--duration` became that); `false` for
    /// studies made before, whose loadgen warmed up on connections of its own and closed
    /// them before the window opened new ones (each step connected twice, and its window
    /// began with no request in flight).
    #[serde(default)]
    pub warmup_on_window_connections: bool,
    /// Measured seconds of each step.
    pub window_seconds: f64,
    /// Measured seconds of each confirmation of a rate found; absent when the study
    /// confirmed nothing (studies made before confirmations, or `--confirmations 0`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirm_window_seconds: Option<f64>,
    /// Which CPUs the servers and loadgen ran on.
    pub cpus: CpuPlacement,
    /// The command line that produced this study.
    pub command: String,
}

/// Which CPUs each process was pinned to; every server got the same set, multi-threaded
/// ones included, so rows compare models and not core counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuPlacement {
    /// CPU numbers every server ran on.
    pub server_cpus: Vec<u32>,
    /// CPU numbers loadgen ran on, disjoint from the servers'.
    pub loadgen_cpus: Vec<u32>,
    /// The `SCHED_FIFO` priority loadgen and the independent client ran at, so that no
    /// other process of the machine preempts them on their CPUs
    /// ([`server_process::run_fifo`]); `None`: the default policy (every study before
    /// there was a choice, a study with `--no-realtime-clients`, or a machine that refused it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients_fifo_priority: Option<i32>,
}

impl CpuPlacement {
    /// Every CPU of the study, the servers' first, as the speed probe takes them.
    pub fn all(&self) -> Vec<usize> {
        self.server_cpus
            .iter()
            .chain(&self.loadgen_cpus)
            .map(|&cpu| cpu as usize)
            .collect()
    }

    /// The servers' CPUs, as the speed probe takes them.
    pub fn servers(&self) -> Vec<usize> {
        self.server_cpus.iter().map(|&cpu| cpu as usize).collect()
    }

    /// loadgen's CPUs, as the speed probe takes them.
    pub fn loadgen(&self) -> Vec<usize> {
        self.loadgen_cpus.iter().map(|&cpu| cpu as usize).collect()
    }
}

/// What bound a server's max sustainable rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    /// The next rate broke the SLO while the server's CPUs still had room: latency degraded.
    Slo,
    /// The next rate broke the SLO with the server's CPUs saturated.
    ServerCpu,
    /// The next rate broke the SLO by failed requests (refused or reset connects, reply
    /// timeouts) while the server's CPUs still had room.
    Failures,
    /// The highest rate the connections that fit could carry was sustained.
    Connections,
    /// loadgen fell behind before the server did: the rate is only a lower bound.
    Client,
    /// The `--max-rate` asked for was sustained.
    MaxRate,
    /// The search found a rate, but every confirmation of it (and of the rates a precision
    /// below) broke over the confirmation window: no rate is published.
    Unconfirmed,
}

/// One server's search and its answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCapacity {
    /// Variant name (`mio`, `python-asyncio`, ...).
    pub name: String,
    /// Concurrency model.
    pub model: Model,
    /// The command that started it (with the port as `{port}`).
    pub command: String,
    /// The highest rate measured as meeting the SLO; 0 when none was.
    pub max_sustainable_requests_per_second: f64,
    /// The lowest rate at which the server broke the SLO, if any (never a client-bound step).
    pub first_broken_requests_per_second: Option<f64>,
    /// What bound the max sustainable rate.
    pub bound: Bound,
    /// The lowest rate at which loadgen fell behind, when it did: with bound `client`, the
    /// search bisected below it, and the server's figure is "client-bound above" its max.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_bound_from_requests_per_second: Option<f64>,
    /// The confirmation window the max held over, when it was confirmed; absent for a rate
    /// published unconfirmed (or none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confirmed_over_seconds: Option<f64>,
    /// Every step, in the order measured.
    pub steps: Vec<JudgedStep>,
    /// Why the search stopped before it had an answer (the server did not start, or loadgen
    /// left no report), if it did.
    pub failure: Option<String>,
    /// What went wrong with connections over every step of the search.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub faults: Option<Faults>,
    /// The independent client at a share of the max sustainable rate, when it was run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub independent_check: Option<IndependentCheck>,
}

/// loadgen open loop at a multiple of the best server's max sustainable rate, against that
/// server at zero delay (so the server is not what limits it), with the connections a step
/// at that rate opens: does the client carry it on its own CPUs?
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadgenHeadroom {
    /// The server it ran against: the one with the highest max sustainable rate.
    pub server: String,
    /// The rate over that server's max sustainable rate (1.25 in issue 10).
    pub multiple_of_best_max: f64,
    /// What was measured; `None` when the run failed.
    pub step: Option<Step>,
    /// Why the run measured nothing, when it did not.
    pub failure: Option<String>,
}

/// The independent open-loop client that checks the published rates (issue 10: "the
/// published rates are real").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndependentClient {
    /// What it is and where it comes from.
    pub client: String,
    /// The share of each server's max sustainable rate it sends at.
    pub share_of_max: f64,
    /// Why no server was checked, when none was (`--no-independent-check`, no C compiler).
    pub not_checked: Option<String>,
}

/// One server checked by the independent client, with the same server CPUs, the same
/// client CPUs and the connections of the server's max step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IndependentCheck {
    /// The rate it sent at.
    pub requests_per_second: f64,
    /// Its persistent connections.
    pub connections: u64,
    /// Its measured window, after a warm-up as long as the search's.
    pub window_seconds: f64,
    /// Its command line, as typed from the repository root (the port as `{port}`).
    pub command: String,
    /// What it saw.
    #[serde(flatten)]
    pub outcome: IndependentOutcome,
}

/// What the independent client saw.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum IndependentOutcome {
    /// It ran to its end.
    Measured {
        /// Right replies to requests due in the window.
        requests_ok: u64,
        /// Requests it sent, warm-up included.
        requests_sent: u64,
        /// Wrong replies, closed connections and short writes.
        errors: u64,
        /// Latency from each request's intended start.
        latency: Latency,
        /// How late it sent requests against its own schedule, p99 (a wait for a busy
        /// connection included: a slow server's doing).
        schedule_lag_p99_ms: f64,
        /// How late it sent requests for reasons of its own, p99: its schedule lag without
        /// the waits for a busy connection, as loadgen's client lag. Absent from checks by
        /// an olc that did not report it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_lag_p99_ms: Option<f64>,
        /// Its CPU time over the run.
        cpu_seconds: f64,
        /// Its run judged again on the requests due away from the machine's slowdowns,
        /// from its request log; absent without the speed probe and from older checks.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        away_from_slowdowns: Option<AwayFromSlowdowns>,
    },
    /// It could not run or said nothing readable.
    Failed {
        /// Why.
        reason: String,
    },
}

/// A step with the SLO's judgement of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgedStep {
    /// What was measured.
    #[serde(flatten)]
    pub step: Step,
    /// Whether it met the SLO, and what broke it when not.
    pub verdict: Verdict,
    /// Whether it confirmed the rate a search found, over the confirmation window.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub confirmation: bool,
    /// Whether it measured the rate of the step before once more, after that one broke (or
    /// loadgen fell behind in it) with a retry left: only this verdict moved the search.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub again: bool,
}

/// One step: one server at one target rate for one measured window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    /// The open-loop rate loadgen was asked for.
    pub target_requests_per_second: f64,
    /// Successful requests per second over the window.
    pub achieved_requests_per_second: f64,
    /// Persistent connections loadgen held.
    pub connections: u64,
    /// Length of the measured window.
    pub window_seconds: f64,
    /// Requests with the right reply in the window.
    pub requests_ok: u64,
    /// Requests that failed or were never sent.
    pub requests_failed: u64,
    /// Failed requests by loadgen's failure kind (only kinds that occurred).
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Requests that could not start on schedule (no free connection, or loadgen behind).
    pub requests_started_late: u64,
    /// Latency of successful requests from their intended start.
    pub latency: Latency,
    /// p99 of the same requests from their actual send: the server's part, which loadgen's
    /// own lag cannot have added to (absent from studies made before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub p99_from_send_ms: Option<f64>,
    /// What the server spent.
    pub server: ServerCost,
    /// What loadgen spent, to tell the client's limit from the server's.
    pub loadgen: LoadgenCost,
    /// How fast the server's and loadgen's CPUs ran during loadgen's run, by the speed probe
    /// (absent where it did not run, and from studies made before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub machine: Option<MachineSpeed>,
    /// loadgen's late starts and lag over the requests due away from the machine's
    /// slowdowns, from its request log; only for a run that logged (loadgen's headroom).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_from_slowdowns: Option<AwayFromSlowdowns>,
}

/// How fast some CPUs ran over some time, by the speed probe of
/// [`server_process::steadiness`]: one sample per CPU every 10 ms, judged against the
/// fastest sample of its CPU over the whole study. These virtual CPUs now and then run at a
/// fifth of their speed for tens of milliseconds, which the machine's kernel does not see;
/// a step that ran through such slowdowns was measured on a slower machine.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MachineSpeed {
    /// Probe samples taken, every CPU together.
    pub samples: u64,
    /// The share of them that ran below [`server_process::steadiness::SLOW`] of their CPU's
    /// fastest.
    pub slowed_fraction: f64,
    /// The slowest sample, as a fraction of its CPU's fastest.
    pub slowest: f64,
}

impl MachineSpeed {
    /// From the probe's judgement; `None` when it took no sample.
    pub fn of(seen: server_process::Steadiness) -> Option<MachineSpeed> {
        Some(MachineSpeed {
            samples: seen.samples,
            slowed_fraction: seen.slowed_fraction()?,
            slowest: seen.slowest,
        })
    }
}

/// How fast the CPUs ran over the whole study, the server's and loadgen's apart.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StudyMachine {
    /// The servers' CPUs.
    pub server_cpus: MachineSpeed,
    /// loadgen's CPUs.
    pub loadgen_cpus: MachineSpeed,
    /// Seconds between two samples of one CPU.
    pub period_seconds: f64,
    /// A sample below this fraction of its CPU's fastest is slowed.
    pub slowed_below: f64,
    /// How a real-time probe looked for stalls of its CPUs between samples (`None`: a
    /// probe of the default policy, which does not, and studies before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stall_checks: Option<StallChecks>,
}

/// A real-time probe's checks for stalls: a wake-up every `every_ms`, and one later than
/// `late_ms` marks the next sample slowed (`server_process::steadiness::STALL`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct StallChecks {
    /// Milliseconds between two checks.
    pub every_ms: f64,
    /// A wake-up later than this many milliseconds was a stall.
    pub late_ms: f64,
}

/// A latency distribution in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Latency {
    /// Median.
    pub p50_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// 99th percentile: what the SLO limits.
    pub p99_ms: f64,
    /// 99.9th percentile.
    pub p99_9_ms: f64,
    /// Slowest request.
    pub max_ms: f64,
}

impl Latency {
    /// From loadgen's percentiles, which are in microseconds.
    pub fn from_percentiles(p: &loadgen::Percentiles) -> Latency {
        Latency::from_micros([p.p50_us, p.p90_us, p.p99_us, p.p99_9_us, p.max_us])
    }

    /// From p50, p90, p99, p99.9 and max in microseconds, as clients report them.
    pub fn from_micros([p50, p90, p99, p99_9, max]: [f64; 5]) -> Latency {
        Latency {
            p50_ms: p50 / 1e3,
            p90_ms: p90 / 1e3,
            p99_ms: p99 / 1e3,
            p99_9_ms: p99_9 / 1e3,
            max_ms: max / 1e3,
        }
    }
}

/// What the server process spent in a step's window, per successful request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerCost {
    /// User-space CPU time per request, every thread.
    pub user_cpu_us_per_request: f64,
    /// Kernel CPU time per request, every thread.
    pub system_cpu_us_per_request: f64,
    /// User plus system CPU over the window, as a fraction of the CPUs it was pinned to.
    pub cpu_ratio: f64,
    /// System calls per request (perf's `raw_syscalls:sys_enter`).
    #[serde(with = "field")]
    pub syscalls_per_request: Measured<f64>,
    /// Context switches per request, voluntary and involuntary (perf's `context-switches`).
    #[serde(with = "field")]
    pub context_switches_per_request: Measured<f64>,
    /// Peak resident memory.
    pub peak_rss_bytes: u64,
    /// Most threads at once.
    pub peak_threads: u64,
}

/// What loadgen spent in a step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoadgenCost {
    /// User plus system CPU time over its whole run (warm-up and connecting included).
    pub cpu_seconds: f64,
    /// That CPU time over its run, as a fraction of the CPUs it was pinned to.
    pub cpu_ratio: f64,
    /// How late loadgen itself started requests against their schedule, p99; missing for a
    /// loadgen that does not report it.
    #[serde(with = "field")]
    pub lag_p99_ms: Measured<f64>,
    /// Whether `lag_p99_ms` is loadgen's own lag alone (its `client_lag`, which leaves out
    /// the time a request waited because every connection was busy), so that only the
    /// client is to blame for it. False for a loadgen that reports only its schedule lag,
    /// which includes those waits (a slow server's doing).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub lag_is_clients_own: bool,
    /// Requests that waited because no connection was idle (every connection busy: the
    /// server was slow); `None` for a loadgen that does not count them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_waited_for_connection: Option<u64>,
    /// How long replies waited in their sockets before loadgen read them, p99 (read minus
    /// the kernel's arrival stamp): the client's delay on the receiving side, which the
    /// latencies leave out. `None` for a loadgen that does not stamp replies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_lag_p99_ms: Option<f64>,
}

impl CapacitySummary {
    /// The latency-against-throughput chart of this study: per server, its steps' p99 (as
    /// the SLO judged it: away from the machine's slowdowns when it judged so) against their
    /// achieved rate, and the SLO's p99 limit.
    pub fn latency_chart(&self) -> LatencyChart {
        let series = self
            .servers
            .iter()
            .map(|server| Series {
                name: server.name.clone(),
                points: server
                    .steps
                    .iter()
                    .filter(|s| s.step.requests_ok > 0)
                    .map(|s| Point {
                        achieved_requests_per_second: s.step.achieved_requests_per_second,
                        p99_ms: self.settings.slo.judged(&s.step).latency.p99_ms,
                        sustained: s.verdict == Verdict::Sustained,
                    })
                    .collect(),
            })
            .collect();
        let cpus = &self.settings.cpus.server_cpus;
        let cpus: Vec<String> = cpus.iter().map(ToString::to_string).collect();
        let cpu_word = if cpus.len() == 1 { "CPU" } else { "CPUs" };
        // Short enough for the chart's title line.
        let what = match self.settings.slo.judged_on {
            JudgedOn::EveryRequest => "p99 latency against achieved throughput",
            JudgedOn::AwayFromSlowdowns => "p99 away from slowdowns against throughput",
        };
        LatencyChart {
            caption: format!(
                "{what} ({} delay, servers on {cpu_word} {})",
                self.settings.delay,
                cpus.join(",")
            ),
            series,
            slo_p99_ms: self.settings.slo.p99_max_ms(),
        }
    }
}

/// A step that meets the default SLO at 100 ms, for tests to bend one field at a time.
#[cfg(test)]
pub(crate) fn sample_step(target_requests_per_second: f64) -> Step {
    Step {
        target_requests_per_second,
        achieved_requests_per_second: target_requests_per_second,
        connections: 2_000,
        window_seconds: 5.0,
        requests_ok: (target_requests_per_second * 5.0) as u64,
        requests_failed: 0,
        failures_by_kind: BTreeMap::new(),
        requests_started_late: 0,
        latency: Latency {
            p50_ms: 100.4,
            p90_ms: 101.0,
            p99_ms: 104.0,
            p99_9_ms: 110.0,
            max_ms: 120.0,
        },
        p99_from_send_ms: Some(103.5),
        server: ServerCost {
            user_cpu_us_per_request: 1.2,
            system_cpu_us_per_request: 3.8,
            cpu_ratio: 0.05,
            syscalls_per_request: Ok(2.7),
            context_switches_per_request: Ok(0.08),
            peak_rss_bytes: 9 << 20,
            peak_threads: 2,
        },
        loadgen: LoadgenCost {
            cpu_seconds: 0.4,
            cpu_ratio: 0.07,
            lag_p99_ms: Ok(0.2),
            lag_is_clients_own: false,
            requests_waited_for_connection: None,
            read_lag_p99_ms: None,
        },
        machine: Some(MachineSpeed {
            samples: 1_200,
            slowed_fraction: 0.0,
            slowest: 0.8,
        }),
        away_from_slowdowns: None,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::measured::NotMeasured;
    use crate::study::capacity::connections::{self, OpenFiles};

    fn summary() -> CapacitySummary {
        let slo = Slo::for_delay(Duration::from_millis(100));
        let limits = [OpenFiles {
            process: "server".to_owned(),
            limit: 20_000,
        }];
        let plan =
            connections::plan(Duration::from_millis(100), None, None, &limits).expect("fits");
        let mut unmeasured = sample_step(2000.0);
        unmeasured.server.syscalls_per_request = Err(NotMeasured::new("perf is not installed"));
        unmeasured.latency.p99_ms = 300.0;
        let steps = [sample_step(1000.0), unmeasured]
            .into_iter()
            .map(|step| JudgedStep {
                verdict: slo.judge(&step),
                step,
                confirmation: false,
                again: false,
            })
            .collect();
        CapacitySummary {
            kind: Some(Kind::Capacity),
            schema_version: SCHEMA_VERSION,
            label: "capacity".to_owned(),
            env: Environment {
                cpu_model: "test cpu".to_owned(),
                cores: 2,
                memory_bytes: 1 << 34,
                kernel: "6.18".to_owned(),
                rustc: "rustc 1.95.0".to_owned(),
                python: None,
                git_commit: "abc".to_owned(),
                date_utc: "2026-12-01T00:00:00Z".to_owned(),
                open_files_limit: 20_000,
                somaxconn: Some(4096),
            },
            settings: Settings {
                delay: Recipe::default(),
                delay_kind: DelayKind::Wait,
                slo,
                search: SearchSettings::default(),
                connections: plan.rule,
                warmup_seconds: 1.0,
                warmup_on_window_connections: true,
                window_seconds: 5.0,
                confirm_window_seconds: None,
                cpus: CpuPlacement {
                    server_cpus: vec![0],
                    loadgen_cpus: vec![1],
                    clients_fifo_priority: None,
                },
                command: "cargo xtask capacity".to_owned(),
            },
            loadgen_ceiling_requests_per_second: Err(NotMeasured::new("not run")),
            loadgen_ceiling_server: None,
            loadgen_headroom: None,
            machine: None,
            independent_client: None,
            servers: vec![ServerCapacity {
                name: "mio".to_owned(),
                model: Model::new("mio"),
                command: "server-mio --port {port}".to_owned(),
                max_sustainable_requests_per_second: 1000.0,
                first_broken_requests_per_second: Some(2000.0),
                bound: Bound::Slo,
                client_bound_from_requests_per_second: None,
                confirmed_over_seconds: None,
                steps,
                failure: None,
                faults: None,
                independent_check: None,
            }],
            skipped: vec![],
        }
    }

    #[test]
    fn a_summary_survives_json_exactly() {
        let summary = summary();
        let json = serde_json::to_string_pretty(&summary).expect("serializes");
        let back: CapacitySummary = serde_json::from_str(&json).expect("deserializes");
        assert_eq!(back, summary);
    }

    #[test]
    fn the_json_holds_the_numeric_max_rate_per_server_by_name_and_readable_verdicts() {
        let value = serde_json::to_value(summary()).expect("serializes");
        assert_eq!(value["kind"], "capacity", "report renders it by its kind");
        let server = &value["servers"][0];
        assert_eq!(server["name"], "mio");
        assert_eq!(server["max_sustainable_requests_per_second"], 1000.0);
        assert_eq!(server["bound"], "slo");
        let broken = &server["steps"][1];
        assert_eq!(broken["target_requests_per_second"], 2000.0);
        assert_eq!(broken["verdict"]["verdict"], "broken");
        assert_eq!(broken["verdict"]["breaches"][0]["breach"], "latency");
        assert_eq!(
            broken["server"]["syscalls_per_request"]["not_measured"],
            "perf is not installed"
        );
        assert_eq!(server["steps"][0]["server"]["syscalls_per_request"], 2.7);
    }

    #[test]
    fn the_chart_has_a_point_per_step_and_the_slo_limit() {
        let chart = summary().latency_chart();
        assert_eq!(chart.slo_p99_ms, 150.0);
        assert_eq!(
            chart.caption,
            "p99 latency against achieved throughput (100ms delay, servers on CPU 0)"
        );
        let points = &chart.series[0].points;
        assert_eq!(points.len(), 2);
        assert!(points[0].sustained && !points[1].sustained);
        assert_eq!(points[1].p99_ms, 300.0);
    }
}
