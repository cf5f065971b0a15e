//! `cargo xtask scenarios`: what each concurrency model does when the wait is not an honest
//! IO wait (issue 12 part 3). A matrix of [`scenario`] × server at one common load:
//! persistent connections, a fixed open-loop rate, a warm-up and a measured window.
//!
//! Each cell is one capacity step ([`crate::study::capacity::step::Rig::measure`]: a fresh
//! server, loadgen in its own process, /proc samples, SIGTERM) with the scenario's delay,
//! except that here the server may use every core and shares them with loadgen: the load is
//! small, and the CPU-bound scenario is about what a server does with more than one core.
//! Connections follow Little's law with headroom for each scenario's mean delay, checked
//! against the open-file limits; the time the study can take is worked out and refused past
//! `--time-limit` before the first server starts. A server that cannot keep up does not hang
//! the study: loadgen fails a reply slower than `--timeout` and gives up on a request it
//! could not send within `--give-up-after` of its due time, so every cell ends within a
//! bound of its window, with what the server could not take counted. The [`results`] go to `benches-results/<date>-scenarios/`
//! and the report is rendered from them alone ([`crate::export::scenarios`]).

pub mod results;
pub mod scenario;

use std::fs;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::builder::PossibleValuesParser;
use echo_core::{DelayKind, Recipe};

use self::results::{Cell, Figures, SCHEMA_VERSION, ScenarioRun, ScenariosSummary, Settings};
use self::scenario::Scenario;
use crate::catalogue::{self, CATALOGUE, Entry, Executor, Side, Variant};
use crate::measured::NotMeasured;
use crate::run::env;
use crate::study::capacity::budget::STEP_OVERHEAD;
use crate::study::capacity::connections::{self, OpenFiles};
use crate::study::capacity::results::CpuPlacement;
use crate::study::capacity::step::{Load, Rig, StepError};
use crate::study::capacity::{command_line, open_file_limits};
use crate::study::{self, Wanted};

/// Options of `cargo xtask scenarios`.
#[derive(Debug, Clone, clap::Args)]
pub struct ScenariosArgs {
    /// Scenarios, comma-separated, one column each: a default's name (honest = wait:100ms,
    /// blocking = block:100ms, mixed = spin:2ms+wait:100ms, cpu = spin:20ms), or NAME=SPEC
    /// for another delay spec (KIND:DURATION phases joined by +) [default: the four].
    #[arg(long, value_delimiter = ',', value_name = "NAME[=SPEC]")]
    pub scenarios: Vec<String>,
    /// Variants to run, comma-separated [default: every project row, the article's asyncio
    /// server and every offload variant, in catalogue order].
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(catalogue::names()))]
    pub servers: Vec<String>,
    /// The open-loop rate offered to every server in every scenario, requests per second:
    /// one the best row sustains with an honest 100 ms wait.
    #[arg(long, default_value_t = 500.0)]
    pub rate: f64,
    /// Unmeasured time at the rate before each cell's window.
    #[arg(long, default_value = "1s")]
    pub warmup: humantime::Duration,
    /// Measured time of each cell.
    #[arg(long, default_value = "5s")]
    pub window: humantime::Duration,
    /// loadgen's reply timeout: a reply slower than this is a failed request. Longer than a
    /// blocked single loop's queue (connections × delay), so that it is seen answering one
    /// request per delay rather than timing out every one.
    #[arg(long, default_value = "15s")]
    pub timeout: humantime::Duration,
    /// loadgen gives up on (does not send) a request that no connection could send within
    /// this of its due time, so that a server that cannot keep up does not make a cell
    /// outlast its window by its whole backlog.
    #[arg(long, default_value = "1s")]
    pub give_up_after: humantime::Duration,
    /// Refuse to start when the worst-case estimate (no server keeps up) is longer than this.
    #[arg(long, default_value = "20m")]
    pub time_limit: humantime::Duration,
    /// Output directory (default: `benches-results/<date>-<label>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label of the output directory.
    #[arg(long, default_value = "scenarios")]
    pub label: String,
    #[command(flatten)]
    pub server_flags: study::ServerFlags,
    /// Run nothing: re-render DIR/README.md from DIR/summary.json (and LATEST.md).
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
}

/// How servers spend a phase whose spec names no kind (`--delay-kind`): the honest wait.
const UNNAMED_KIND: DelayKind = DelayKind::Wait;

/// Whether a catalogue row runs when `--servers` is not given: every project row, the
/// article's asyncio server (the reference), and every offload variant (the fix). The other
/// Python styles measure the same single loop again.
pub fn runs_by_default(entry: &Entry) -> bool {
    matches!(entry.side, Side::Rust { .. })
        || entry.side == (Side::Baseline { reference: true })
        || entry.executor == Executor::Offload
}

/// The servers of the study: `--servers`, or the rows that run by default.
pub fn server_names(args: &ScenariosArgs) -> Vec<String> {
    if !args.servers.is_empty() {
        return args.servers.clone();
    }
    CATALOGUE
        .iter()
        .filter(|e| runs_by_default(e))
        .map(|e| e.name.to_owned())
        .collect()
}

/// Everything decided before the first server starts.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// The scenarios, in column order, each with its connections.
    pub scenarios: Vec<(Scenario, u64)>,
    /// How long the study may take.
    pub estimate: Estimate,
}

/// How long a study takes: every cell is warm-up + window + starting and stopping when its
/// server keeps up. A server that does not keeps each of loadgen's two phases longer: its
/// connections' first requests queue up (priming), the last due requests may start up to
/// `--give-up-after` late, and the requests still in flight drain. The slowest executor, one
/// loop, holds its thread for every `block` and `spin` phase in turn and waits out the `wait`
/// phases side by side, so it drains a full queue in connections × the held time + the
/// waited time; `--timeout` bounds each wait whatever the server does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Estimate {
    /// Scenarios × servers.
    pub cells: u32,
    /// Every cell, when every server keeps up.
    pub kept_up: Duration,
    /// Every cell, when no server keeps up.
    pub overloaded: Duration,
}

impl Estimate {
    /// The estimate of `n_servers` servers in each of `scenarios` (with their connections).
    ///
    /// # Errors
    /// When a scenario's spec does not parse.
    pub fn new(
        n_servers: u32,
        scenarios: &[(Scenario, u64)],
        args: &ScenariosArgs,
    ) -> anyhow::Result<Estimate> {
        let per_cell = *args.warmup + *args.window + STEP_OVERHEAD;
        let mut overloaded = Duration::ZERO;
        for (scenario, connections) in scenarios {
            let (mut held, mut waited) = (Duration::ZERO, Duration::ZERO);
            for phase in scenario.spec.phases() {
                match phase.kind_or(UNNAMED_KIND) {
                    DelayKind::Wait => waited += phase.duration.mean(),
                    DelayKind::Block | DelayKind::Spin => held += phase.duration.mean(),
                }
            }
            let queue = (held.saturating_mul(u32::try_from(*connections).unwrap_or(u32::MAX))
                + waited)
                .min(*args.timeout);
            overloaded += per_cell + 2 * (2 * queue + *args.give_up_after);
        }
        Ok(Estimate {
            cells: n_servers.saturating_mul(u32::try_from(scenarios.len()).unwrap_or(u32::MAX)),
            kept_up: per_cell * u32::try_from(scenarios.len()).unwrap_or(u32::MAX) * n_servers,
            overloaded: overloaded * n_servers,
        })
    }

    /// The longest the study can take.
    pub fn worst_case(&self) -> Duration {
        self.overloaded
    }

    /// The line printed before the study starts.
    pub fn describe(&self) -> String {
        format!(
            "estimate: {} cells, {} when every server keeps up, at most {} when none does",
            self.cells,
            minutes(self.kept_up),
            minutes(self.overloaded)
        )
    }

    /// Refuses a worst case over `limit`.
    ///
    /// # Errors
    /// When the worst case exceeds `limit`, naming both and the flags that shorten it.
    pub fn check(&self, limit: Duration) -> anyhow::Result<()> {
        if self.worst_case() > limit {
            bail!(
                "the study could take {} (worst case), over --time-limit {}: choose fewer \
                 --scenarios or --servers, a shorter --window, --warmup, --timeout or \
                 --give-up-after, or raise --time-limit",
                minutes(self.worst_case()),
                minutes(limit)
            );
        }
        Ok(())
    }
}

/// `9.5 min`: durations of a study as a reader thinks of them.
fn minutes(duration: Duration) -> String {
    format!("{:.1} min", duration.as_secs_f64() / 60.0)
}

/// Checks the flags against the machine and works out each scenario's connections and the
/// time the study takes (for [`Estimate::check`]), before anything runs.
///
/// # Errors
/// Naming the flag and value at fault: a rate, window or timeout that cannot be measured,
/// connections that do not fit the open-file limits (`limits`).
pub fn plan(
    args: &ScenariosArgs,
    scenarios: Vec<Scenario>,
    n_servers: usize,
    limits: &[OpenFiles],
) -> anyhow::Result<Plan> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate {}: want a positive rate", args.rate);
    }
    let durations = [
        ("--window", args.window),
        ("--timeout", args.timeout),
        ("--give-up-after", args.give_up_after),
    ];
    for (flag, value) in durations {
        if value.is_zero() {
            bail!("{flag} 0s: want a positive duration");
        }
    }
    if n_servers == 0 {
        bail!("--servers: no server to run");
    }
    let mut planned = Vec::with_capacity(scenarios.len());
    for scenario in scenarios {
        let delay = scenario.mean_delay();
        let connections = connections::plan(delay, None, Some(args.rate), limits)
            .with_context(|| format!("scenario {scenario}"))?
            .rule
            .for_rate(args.rate);
        planned.push((scenario, connections));
    }
    let estimate = Estimate::new(u32::try_from(n_servers).unwrap_or(u32::MAX), &planned, args)?;
    Ok(Plan {
        scenarios: planned,
        estimate,
    })
}

/// Runs the study and writes its results, or with `--render` re-renders a written one.
///
/// # Errors
/// On bad options or limits (before anything runs), a failed build, or results that cannot
/// be written.
pub fn run(args: ScenariosArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.render {
        return crate::report::run(dir);
    }
    let root = crate::workspace_root();
    let names = server_names(&args);
    let scenarios = scenario::select(&args.scenarios)?;
    let plan = plan(&args, scenarios, names.len(), &open_file_limits())?;
    eprintln!("{}", plan.estimate.describe());
    plan.estimate.check(*args.time_limit)?;
    let environment = env::capture(&root);
    let has_python = environment.python.is_some();
    let wanted = Wanted {
        servers: &names,
        externals: &[],
    };
    let (variants, skipped) = wanted.select(has_python)?;
    let (bin_dir, loadgen) = study::binaries(&root, &variants, args.server_flags.no_build)?;
    let out = study::output_dir(
        args.out.as_deref(),
        &root,
        &environment.date_utc,
        &args.label,
    )?;
    let cpus: Vec<u32> = (0..environment.cores).collect();
    let rig = Rig {
        settings: args
            .server_flags
            .settings(&root, bin_dir, UNNAMED_KIND, environment.cores),
        loadgen,
        cpus: CpuPlacement {
            server_cpus: cpus.clone(),
            loadgen_cpus: cpus.clone(),
            clients_fifo_priority: None,
        },
        warmup: *args.warmup,
        window: *args.window,
        timeout: *args.timeout,
        give_up_after: Some(*args.give_up_after),
        perf: Err(NotMeasured::new("not counted by the scenarios study")),
        // Its server and loadgen share every CPU, so the probe would say nothing of either
        // alone; the capacity study, with CPUs apart, runs it.
        machine: None,
        away_from_slowdowns: None,
        runs_dir: out.join("runs"),
    };
    let mut matrix = Matrix {
        rig: &rig,
        rate: args.rate,
        done: 0,
        cells: plan.estimate.cells,
    };
    let scenarios = plan
        .scenarios
        .iter()
        .map(|(scenario, connections)| matrix.scenario(scenario, *connections, &variants))
        .collect();
    let summary = ScenariosSummary {
        kind: Some(crate::results::Kind::Scenarios),
        schema_version: SCHEMA_VERSION,
        label: args.label.clone(),
        env: environment,
        settings: Settings {
            requests_per_second: args.rate,
            warmup_seconds: args.warmup.as_secs_f64(),
            window_seconds: args.window.as_secs_f64(),
            timeout_seconds: args.timeout.as_secs_f64(),
            give_up_after_seconds: args.give_up_after.as_secs_f64(),
            cpus,
            backlog: args.server_flags.backlog,
            pool_size: args.server_flags.pool_size,
            workers: rig.settings.workers,
            command: command_line(),
        },
        scenarios,
        skipped,
    };
    crate::report::write_scenarios(&out, &summary)?;
    study::announce(&out, &crate::export::scenarios::headline(&summary));
    Ok(())
}

/// The cells of a study as they are measured, with the progress count.
struct Matrix<'a> {
    rig: &'a Rig,
    rate: f64,
    done: u32,
    cells: u32,
}

impl Matrix<'_> {
    /// Every server in `scenario`, each given its recipe as `--delay SPEC`.
    fn scenario(
        &mut self,
        scenario: &Scenario,
        connections: u64,
        variants: &[Variant],
    ) -> ScenarioRun {
        let mut run = ScenarioRun {
            scenario: scenario.clone(),
            connections,
            skipped: None,
            cells: Vec::new(),
        };
        for variant in variants {
            self.done += 1;
            eprint!(
                "[{}/{}] {} × {}: ",
                self.done, self.cells, scenario.name, variant.name
            );
            let load = Load {
                requests_per_second: Some(self.rate),
                connections,
                delay: scenario.spec.clone(),
            };
            let name = format!("{}-{}", scenario.name, variant.name);
            let cell = measure(self.rig, variant, load, &name);
            eprintln!("{}", progress_line(&cell));
            run.cells.push(cell);
        }
        run
    }
}

/// One cell: `variant` under `load`, with loadgen's measured phase read back from the report
/// the rig keeps under `runs/<name>.json`.
fn measure(rig: &Rig, variant: &Variant, load: Load, name: &str) -> Cell {
    let measured = rig.measure(variant, load.clone(), name).and_then(|m| {
        let path = rig.runs_dir.join(format!("{name}.json"));
        let report = fs::read_to_string(&path)
            .map_err(|e| format!("reading {}: {e}", path.display()))
            .and_then(|text| loadgen::Report::from_json(&text).map_err(|e| e.to_string()))
            .map_err(StepError::Failed)?;
        Ok((m, report.wall_time_seconds))
    });
    match measured {
        Ok((m, measured_seconds)) => Cell {
            server: variant.name.clone(),
            model: variant.model.clone(),
            executor: executor(variant),
            command: m.server_command,
            figures: Some(Figures {
                step: m.step,
                measured_seconds,
                server_cpu_seconds: m.server_cpu_seconds,
            }),
            failure: None,
        },
        Err(reason) => failed_cell(rig, variant, &load.delay, reason.to_string()),
    }
}

fn failed_cell(rig: &Rig, variant: &Variant, delay: &Recipe, reason: String) -> Cell {
    let command = variant.launch(&rig.settings, delay).map_or_else(
        |_| String::new(),
        |launch| rig.settings.for_the_record(&launch.command_line()),
    );
    Cell {
        server: variant.name.clone(),
        model: variant.model.clone(),
        executor: executor(variant),
        command,
        figures: None,
        failure: Some(reason),
    }
}

/// The catalogue's executor of `variant` (every variant of this study is a catalogue row).
fn executor(variant: &Variant) -> Executor {
    variant.entry().map_or(Executor::OneLoop, |e| e.executor)
}

fn progress_line(cell: &Cell) -> String {
    match (&cell.figures, &cell.failure) {
        (Some(f), _) => format!(
            "{:.1} req/s answered, p99 {:.1} ms, {} failed",
            f.answered_requests_per_second(),
            f.step.latency.p99_ms,
            f.step.requests_failed
        ),
        (None, Some(reason)) => format!("not measured: {reason}"),
        (None, None) => "not measured".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> ScenariosArgs {
        crate::study::parse_args(line)
    }

    fn plan_of(line: &[&str], limit: u64) -> anyhow::Result<Plan> {
        let a = args(line);
        let scenarios = scenario::select(&a.scenarios)?;
        let limits = OpenFiles::server_and_loadgen(limit);
        plan(&a, scenarios, server_names(&a).len(), &limits)
    }

    #[test]
    fn by_default_every_project_row_and_the_articles_asyncio_server_run() {
        let names = server_names(&args(&[]));
        for entry in CATALOGUE {
            let expected = matches!(entry.side, Side::Rust { .. })
                || entry.name == "python-asyncio"
                || entry.executor == Executor::Offload;
            assert_eq!(
                names.contains(&entry.name.to_owned()),
                expected,
                "{}",
                entry.name
            );
        }
        assert_eq!(server_names(&args(&["--servers", "mio"])), ["mio"]);
    }

    #[test]
    fn each_scenario_gets_twice_littles_law_of_its_own_mean_delay() {
        let plan = plan_of(&[], 20_000).expect("fits");
        let connections: Vec<(&str, u64)> = plan
            .scenarios
            .iter()
            .map(|(s, c)| (s.name.as_str(), *c))
            .collect();
        assert_eq!(
            connections,
            [
                ("honest", 100),
                ("blocking", 100),
                ("mixed", 102),
                ("cpu", 50)
            ]
        );
    }

    #[test]
    fn the_default_study_fits_its_time_limit_and_one_over_it_is_refused() {
        let a = args(&[]);
        let plan = plan_of(&[], 20_000).expect("fits");
        assert!(plan.estimate.check(*a.time_limit).is_ok());
        assert!(
            server_names(&a).iter().any(|n| n.ends_with("-offload")),
            "the offload rows run by default"
        );
        let estimate = plan.estimate;
        assert!(
            estimate.check(*a.time_limit).is_ok(),
            "{}",
            estimate.describe()
        );
        assert!(estimate.kept_up <= Duration::from_secs(10 * 60));
        let message = plan_of(&["--window", "60s"], 20_000)
            .expect("fits")
            .estimate
            .check(*a.time_limit)
            .expect_err("too long")
            .to_string();
        assert!(message.starts_with("the study could take"), "{message}");
        assert!(message.contains("over --time-limit 20.0 min"), "{message}");
    }

    #[test]
    fn connections_that_do_not_fit_the_open_file_limit_are_refused_naming_the_scenario() {
        let message = format!(
            "{:#}",
            plan_of(&["--rate", "200000"], 20_000).expect_err("40000 connections")
        );
        assert!(
            message.starts_with("scenario honest (`wait:100ms`): --max-rate 200000 req/s"),
            "{message}"
        );
    }

    #[test]
    fn a_rate_or_window_that_cannot_be_measured_is_refused() {
        let refused = |line: &[&str]| plan_of(line, 20_000).expect_err("refused").to_string();
        assert_eq!(refused(&["--rate", "0"]), "--rate 0: want a positive rate");
        assert_eq!(
            refused(&["--window", "0s"]),
            "--window 0s: want a positive duration"
        );
    }
}
