//! `cargo xtask capacity`: how many requests per second each server sustains at an SLO when
//! every request waits on IO, and what each request costs it (issue 10).
//!
//! Per server, a [`search`] steps an open-loop rate up geometrically and bisects to the
//! highest rate whose step meets the [`slo`]; each step opens the persistent
//! [`connections`] Little's law asks for (checked against both processes' open-file limits
//! before anything runs), is measured by [`step`] with the server and loadgen pinned to CPUs
//! of their own, and its figures and verdict go into the [`results`]. A step where loadgen,
//! not the server, fell behind is client-bound and never taken as the server's limit: the
//! search goes on below it. After each search an [`independent`] client checks the rate
//! found; after every search loadgen itself is run at 1.25 × the best rate, to show that it
//! carries it. The rate a search finds is published only once it held over a longer
//! confirmation window (a short step can pass by luck, or end before a server near
//! saturation falls behind); see [`search`]. The [`budget`](mod@budget) of the whole study is worked out and printed before the first
//! server starts.

pub mod budget;
pub mod connections;
pub mod independent;
pub mod results;
pub mod search;
pub mod slo;
pub mod step;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::bail;
use clap::builder::PossibleValuesParser;
use echo_core::{DelayKind, DelayModel, Recipe};
use loadgen::request_log::Near;
use server_process::{SpeedProbe, steadiness};

use self::budget::Budget;
use self::connections::{ConnectionPlan, MIN_CONNECTIONS, OpenFiles};
use self::results::{
    Bound, CapacitySummary, CpuPlacement, IndependentClient, JudgedStep, LoadgenHeadroom,
    MachineSpeed, SCHEMA_VERSION, ServerCapacity, Settings, StallChecks, StudyMachine,
};
use self::search::{Next, Search, SearchSettings};
use self::slo::{JudgedOn, Slo, Verdict};
use self::step::{Load, Measurement, Rig, StepError};
use crate::catalogue::{self, Side, Variant};
use crate::measured::{Measured, NotMeasured};
use crate::results::{Faults, Kind, Skipped};
use crate::run::env;
use crate::study::{self, Wanted};

/// Options of `cargo xtask capacity`.
#[derive(Debug, Clone, clap::Args)]
pub struct CapacityArgs {
    /// Variants to run, comma-separated (default: every one but the `-offload` rows, which
    /// differ only where a delay blocks; in catalogue order).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(catalogue::names()))]
    pub servers: Vec<String>,
    /// Another server speaking the protocol: NAME=COMMAND, with `{port}` (and optionally
    /// `{delay}` or `{delay_ms}`) in COMMAND. Repeatable.
    #[arg(long = "external", value_name = "NAME=COMMAND")]
    pub externals: Vec<String>,
    /// Simulated work per request, any recipe the servers accept: `100ms`, `fixed:100ms`,
    /// `uniform:50ms..150ms`, `exp:100ms`, or phases `KIND:DURATION` joined by `+`
    /// (`spin:2ms+wait:100ms`).
    #[arg(long, default_value = "100ms")]
    pub delay: Recipe,
    /// How servers spend a phase that names no kind: wait, block or spin.
    #[arg(long, default_value = "wait")]
    pub delay_kind: DelayKind,
    /// The SLO's p99 latency limit, in multiples of the delay's mean.
    #[arg(long, default_value_t = 1.5)]
    pub slo_p99: f64,
    /// The first rate measured, requests per second.
    #[arg(long, default_value_t = 2000.0)]
    pub start_rate: f64,
    /// Each step up multiplies the rate by this.
    #[arg(long, default_value_t = 2.0)]
    pub step_factor: f64,
    /// Bisection stops when the first broken rate is within this fraction of the last
    /// sustained one.
    #[arg(long, default_value_t = 0.05)]
    pub precision: f64,
    /// Measured seconds of each step of the search. Short, because a step only has to
    /// locate the knee: the rate found is published only after it held a confirmation
    /// (`--confirm-window`).
    #[arg(long, default_value = "2s")]
    pub window: humantime::Duration,
    /// Measured seconds of a confirmation: the rate the search found is held this long
    /// before it is published, and lower after each broken confirmation.
    /// 5 s is 2.5 times a search step's evidence, and three of them fit the 15 minutes.
    #[arg(long, default_value = "5s")]
    pub confirm_window: humantime::Duration,
    /// Confirmations per server at most: the rate found, then lower after each broken one,
    /// by four times the precision first and twice as deep each time after (21 %, 46 % at
    /// 5 %); when all break, no rate is published (when loadgen fell behind in them, the rate
    /// found is, marked unconfirmed and client-bound). 0 publishes the rate found
    /// unconfirmed.
    #[arg(long, default_value_t = 3)]
    pub confirmations: u32,
    /// Broken steps per server measured once more before the search takes their rate as
    /// broken (the first this many; confirmations aside; only a break one slowdown could
    /// explain: p99 within twice the limit, no failed request, the rate achieved). On a machine whose CPUs slow
    /// down now and then, one slowdown breaks a short step far below a server's limit, and
    /// a rate taken as broken caps the search for good, while a rate found too high is
    /// caught by the confirmations. 0 takes every broken step at its word.
    #[arg(long, default_value_t = 1)]
    pub broken_retries: u32,
    /// Unmeasured time at the step's rate before its window.
    #[arg(long, default_value = "1s")]
    pub warmup: humantime::Duration,
    /// Persistent connections of every step [default: 2 × rate × delay (Little's law), at
    /// least 50, within both processes' open-file limits].
    #[arg(long)]
    pub connections: Option<u64>,
    /// The highest rate tried [default: what the connections that fit can carry].
    #[arg(long)]
    pub max_rate: Option<f64>,
    /// CPUs every server is pinned to, comma-separated (multi-threaded servers included).
    #[arg(long, value_delimiter = ',', default_value = "0")]
    pub server_cpus: Vec<u32>,
    /// CPUs loadgen is pinned to, comma-separated; disjoint from the servers'.
    #[arg(long, value_delimiter = ',', default_value = "1")]
    pub loadgen_cpus: Vec<u32>,
    /// Refuse to start when the worst-case estimate is longer than this.
    #[arg(long, default_value = "15m")]
    pub time_limit: humantime::Duration,
    /// Output directory (default: `benches-results/<date>-<label>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label of the output directory.
    #[arg(long, default_value = "capacity")]
    pub label: String,
    #[command(flatten)]
    pub server_flags: study::ServerFlags,
    /// loadgen's connect and reply timeout: a reply slower than this is a failed request
    /// (a broken step). Short, because a step where a server leaves requests unanswered
    /// lasts until they time out, chained: threaded-pool's steps took 40 s at 10 s, and
    /// 8.5 s at 2 s, with the same failures [default: 10 × the SLO's p99 limit, at least 2s].
    #[arg(long)]
    pub timeout: Option<humantime::Duration>,
    /// Run loadgen and the independent client under the default policy. Without this flag
    /// they run under the real-time policy `SCHED_FIFO` at priority 5 (`chrt -f 5`) where
    /// the machine allows it, so that no other process of the machine preempts them on
    /// their CPU (here a tool backend outside the project takes a CPU for about 20 ms every
    /// second or so), and the speed probe runs real-time one priority above them, so that
    /// each of its samples runs whole (beside a real-time client a probe of the default
    /// policy runs in the client's gaps) and it can wake every 2 ms to see whether the host
    /// stopped its CPU (a wake-up over 1 ms late). A machine that refuses the policy gets a line on
    /// stderr and default-policy clients, and the report says which ran.
    #[arg(long)]
    pub no_realtime_clients: bool,
    /// Skip the independent check: an open-loop client of its own (olc, C, built with cc)
    /// at 90 % of each server's max sustainable rate, whose p99 is held against the SLO.
    #[arg(long)]
    pub no_independent_check: bool,
    /// Do not run the speed probe: a thread on each of the study's CPUs that measures how
    /// fast it runs every 10 ms (about 0.7 % of each CPU), so that each step says how much
    /// of it ran on slowed CPUs.
    #[arg(long)]
    pub no_speed_probe: bool,
    /// Judge each step's p99 only on the requests due away from the machine's slowdowns, as
    /// the speed probe finds them: none slowed from 30 ms before a request's due time to the
    /// p99 limit after it. Failures and the achieved rate are still judged on every request,
    /// the whole window's figures are still reported, and the report says on every page
    /// which judgement it used. The independent check is judged the same way. (A client's
    /// own lag is judged away from the slowdowns in any case.)
    #[arg(long, conflicts_with = "no_speed_probe")]
    pub away_from_slowdowns: bool,
}

/// The study's first step down after a broken confirmation: 21 % at 5 % precision, then 46 %
/// (see [`SearchSettings::confirmation_step`] for the runs that chose it).
const FIRST_STEP_DOWN_DOUBLINGS: u32 = 1;

/// loadgen's headroom run sends at this multiple of the best server's max (issue 10).
pub const HEADROOM_MULTIPLE: f64 = 1.25;

/// Everything decided before the first server starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The SLO every step is judged by.
    pub slo: Slo,
    /// How each server's rate is searched.
    pub search: SearchSettings,
    /// The connections of each step.
    pub connections: ConnectionPlan,
    /// What the search's ceiling stands for when a server reaches it.
    pub ceiling_bound: Bound,
    /// Where servers and loadgen run.
    pub cpus: CpuPlacement,
    /// The measured window of a confirmation.
    pub confirm_window: Duration,
    /// loadgen's connect and reply timeout: longer than the SLO's p99 limit.
    pub timeout: Duration,
}

/// The `SCHED_FIFO` priority of the clients (`chrt -f 5`): any real-time priority keeps the
/// default policy's processes off their CPU; a low one leaves the kernel's own real-time
/// threads above them.
const CLIENT_FIFO_PRIORITY: i32 = 5;

/// The shortest default reply timeout: far above the p99 limit at the default delay, and
/// above a connect that needed one SYN retransmission (1 s).
const MIN_DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);

/// Checks every flag against the machine and works out the SLO, the search and the
/// connections, before anything runs.
///
/// # Errors
/// Naming the flag and value at fault: CPUs that do not exist or overlap, connections that
/// do not fit the open-file limits (`limits`), search settings that cannot end.
pub fn plan(args: &CapacityArgs, n_cpus: u32, limits: &[OpenFiles]) -> anyhow::Result<Plan> {
    let cpus = placement(args, n_cpus)?;
    if !(args.slo_p99.is_finite() && args.slo_p99 > 1.0) {
        bail!(
            "--slo-p99 {}: want a multiple of the delay above 1",
            args.slo_p99
        );
    }
    if let Some(rate) = args.max_rate.filter(|r| !(r.is_finite() && *r > 0.0)) {
        bail!("--max-rate {rate}: want a positive rate");
    }
    if args.window.is_zero() {
        bail!("--window 0s: want a measured window");
    }
    if args.confirmations > 0 && args.confirm_window.is_zero() {
        bail!("--confirm-window 0s: want a measured window, or --confirmations 0");
    }
    let delay = args.delay.mean();
    let mut slo = Slo::for_delay(delay);
    slo.p99_max_over_delay = args.slo_p99;
    if args.away_from_slowdowns {
        slo.judged_on = JudgedOn::AwayFromSlowdowns;
    }
    let p99_limit = Duration::from_secs_f64(slo.p99_max_ms() / 1e3);
    let timeout = match args.timeout {
        Some(timeout) if *timeout <= p99_limit => bail!(
            "--timeout {timeout}: want it above the SLO's p99 limit of {}, or replies the SLO \
             allows fail",
            echo_core::format_duration(p99_limit)
        ),
        Some(timeout) => *timeout,
        None => (p99_limit * 10).max(MIN_DEFAULT_TIMEOUT),
    };
    let connections = connections::plan(delay, args.connections, args.max_rate, limits)?;
    let carries = connections
        .carries_requests_per_second
        .unwrap_or(f64::INFINITY);
    let (ceiling, ceiling_bound) = match args.max_rate {
        Some(max) if max <= carries => (max, Bound::MaxRate),
        _ if carries.is_finite() => (carries, Bound::Connections),
        _ => (
            SearchSettings::default().ceiling_requests_per_second,
            Bound::MaxRate,
        ),
    };
    let start = args.start_rate.min(ceiling);
    let search = SearchSettings {
        start_requests_per_second: start,
        step_factor: args.step_factor,
        precision: args.precision,
        floor_requests_per_second: (start / 10.0).max(1.0).min(start),
        ceiling_requests_per_second: ceiling,
        confirmations: args.confirmations,
        broken_retries: args.broken_retries,
        broken_retry_p99_within: Some(search::RETRY_P99_WITHIN),
        first_step_down_doublings: FIRST_STEP_DOWN_DOUBLINGS,
        ..SearchSettings::default()
    };
    search.validate()?;
    Ok(Plan {
        slo,
        search,
        connections,
        ceiling_bound,
        cpus,
        confirm_window: *args.confirm_window,
        timeout,
    })
}

fn placement(args: &CapacityArgs, n_cpus: u32) -> anyhow::Result<CpuPlacement> {
    let sets = [
        ("--server-cpus", &args.server_cpus),
        ("--loadgen-cpus", &args.loadgen_cpus),
    ];
    for (flag, cpus) in sets {
        if cpus.is_empty() {
            bail!("{flag}: want at least one CPU");
        }
        if let Some(cpu) = cpus.iter().find(|&&cpu| cpu >= n_cpus) {
            bail!(
                "{flag} {cpu}: this machine has CPUs 0 to {}",
                n_cpus.saturating_sub(1)
            );
        }
    }
    if let Some(cpu) = args
        .server_cpus
        .iter()
        .find(|c| args.loadgen_cpus.contains(c))
    {
        bail!(
            "CPU {cpu} is in both --server-cpus and --loadgen-cpus: loadgen would be measured with the server"
        );
    }
    Ok(CpuPlacement {
        server_cpus: args.server_cpus.clone(),
        loadgen_cpus: args.loadgen_cpus.clone(),
        clients_fifo_priority: None,
    })
}

/// The open-file limit each process will run with: servers and loadgen raise their soft
/// limit to the hard one, which they inherit from this process.
pub fn open_file_limits() -> Vec<OpenFiles> {
    OpenFiles::server_and_loadgen(connections::hard_open_files_limit())
}

/// Runs the capacity study and writes its results.
///
/// # Errors
/// On bad options or limits (before anything runs), a failed build, or results that cannot
/// be written.
pub fn run(args: CapacityArgs) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    let n_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    let plan = plan(&args, n_cpus, &open_file_limits())?;
    let environment = env::capture(&root);
    let wanted = Wanted {
        servers: &args.servers,
        externals: &args.externals,
    };
    let (selected, skipped) = wanted.select(environment.python.is_some())?;
    let budget = budget(&plan, selected.len() as u32, &args);
    eprintln!("{}", budget.describe());
    budget.check(*args.time_limit)?;
    let perf = step::probe_perf();
    if let Err(reason) = &perf {
        eprintln!("system calls and context switches: {reason}");
    }
    let mut settings = study_settings(&args, &root);
    let loadgen;
    (settings.bin_dir, loadgen) = study::binaries(&root, &selected, args.server_flags.no_build)?;
    let out = study::output_dir(
        args.out.as_deref(),
        &root,
        &environment.date_utc,
        &args.label,
    )?;
    let mut cpus = plan.cpus.clone();
    cpus.clients_fifo_priority = clients_priority(&args);
    let mut rig = Rig {
        settings,
        loadgen,
        cpus,
        warmup: *args.warmup,
        window: *args.window,
        timeout: plan.timeout,
        give_up_after: None,
        perf,
        runs_dir: out.join("runs"),
        machine: None,
        // Every step is logged, so that it is judged again away from the slowdowns too.
        away_from_slowdowns: Some(Near::through_latency(Duration::from_secs_f64(
            plan.slo.p99_max_ms() / 1e3,
        ))),
    };
    let olc = if args.no_independent_check {
        Err("--no-independent-check was given".to_owned())
    } else {
        let target = rig
            .settings
            .bin_dir
            .parent()
            .unwrap_or(&rig.settings.bin_dir);
        independent::build(&root, target)
    };
    if let Err(reason) = &olc {
        eprintln!("independent check: not checked: {reason}");
    }
    let study_began = Instant::now();
    rig.machine = start_speed_probe(&args, &rig.cpus)?;
    let (ceiling, ceiling_server) = loadgen_ceiling(&rig, &selected);
    let mut servers = Vec::new();
    let mut skipped = skipped;
    for variant in &selected {
        match search_server(&rig, &plan, &args.delay, variant)? {
            Ok(mut server) => {
                if let Ok(olc) = &olc {
                    server.independent_check =
                        check_independently(&rig, olc, &args.delay, variant, &server);
                }
                servers.push(server);
            }
            Err(reason) => {
                eprintln!("{}: skipped: {reason}", variant.name);
                skipped.push(Skipped {
                    server: variant.name.clone(),
                    reason,
                });
            }
        }
    }
    let headroom = loadgen_headroom(&rig, &plan, &selected, &servers);
    let machine = rig
        .machine
        .as_ref()
        .and_then(|probe| study_machine(probe, &plan.cpus, study_began));
    let summary = CapacitySummary {
        kind: Some(Kind::Capacity),
        schema_version: SCHEMA_VERSION,
        label: args.label.clone(),
        env: environment,
        settings: Settings {
            delay: args.delay.clone(),
            delay_kind: args.delay_kind,
            slo: plan.slo,
            search: plan.search,
            connections: plan.connections.rule,
            warmup_seconds: args.warmup.as_secs_f64(),
            warmup_on_window_connections: true,
            window_seconds: args.window.as_secs_f64(),
            confirm_window_seconds: (plan.search.confirmations > 0)
                .then_some(plan.confirm_window.as_secs_f64()),
            // The rig's: the plan's CPUs with the clients' policy as the machine allowed it.
            cpus: rig.cpus.clone(),
            command: command_line(),
        },
        loadgen_ceiling_requests_per_second: ceiling,
        loadgen_ceiling_server: ceiling_server,
        loadgen_headroom: headroom,
        independent_client: Some(IndependentClient {
            client: independent::CLIENT.to_owned(),
            share_of_max: independent::SHARE_OF_MAX,
            not_checked: olc.err(),
        }),
        machine,
        servers,
        skipped,
    };
    crate::report::write_capacity(&out, &summary)?;
    study::announce(&out, &crate::export::capacity::headline(&summary));
    Ok(())
}

/// The clients' real-time priority: [`CLIENT_FIFO_PRIORITY`] unless
/// `--no-realtime-clients` or the machine refuses the policy (said on stderr).
fn clients_priority(args: &CapacityArgs) -> Option<i32> {
    (!args.no_realtime_clients)
        .then(|| server_process::fifo_where_allowed(CLIENT_FIFO_PRIORITY, "clients"))
        .flatten()
}

/// The speed probe on every CPU of the study, unless `--no-speed-probe`; real-time above
/// the clients when they are real-time; a probe that
/// cannot start is reported and left out, since the study can still run without it.
/// With `--away-from-slowdowns` the probe is what the steps are judged by, so a probe that
/// cannot start stops the study before anything runs.
fn start_speed_probe(
    args: &CapacityArgs,
    cpus: &CpuPlacement,
) -> anyhow::Result<Option<Arc<SpeedProbe>>> {
    if args.no_speed_probe {
        return Ok(None);
    }
    match SpeedProbe::beside_clients(&cpus.all(), cpus.clients_fifo_priority) {
        Ok(probe) => Ok(Some(Arc::new(probe))),
        Err(e) if args.away_from_slowdowns => {
            bail!("--away-from-slowdowns: the speed probe that finds the slowdowns cannot run: {e}")
        }
        Err(e) => {
            eprintln!("speed probe: not run: {e}");
            Ok(None)
        }
    }
}

/// How fast the servers' and loadgen's CPUs ran from `began` to now; stops the probe.
fn study_machine(probe: &SpeedProbe, cpus: &CpuPlacement, began: Instant) -> Option<StudyMachine> {
    probe.stop();
    let end = Instant::now();
    Some(StudyMachine {
        server_cpus: MachineSpeed::of(probe.over(&cpus.servers(), began, end))?,
        loadgen_cpus: MachineSpeed::of(probe.over(&cpus.loadgen(), began, end))?,
        period_seconds: steadiness::PERIOD.as_secs_f64(),
        slowed_below: steadiness::SLOW,
        stall_checks: probe.checks_stalls().then(|| StallChecks {
            every_ms: steadiness::CHECK.as_secs_f64() * 1e3,
            late_ms: steadiness::STALL.as_secs_f64() * 1e3,
        }),
    })
}

/// The worst-case time of the study `plan` makes of `servers` servers.
fn budget(plan: &Plan, servers: u32, args: &CapacityArgs) -> Budget {
    let confirmations = plan.search.confirmations;
    Budget::new(
        servers,
        plan.search.max_steps() - confirmations,
        *args.warmup,
        *args.window,
    )
    .with_confirmations(confirmations, plan.confirm_window)
    .with_independent_checks(!args.no_independent_check)
}

fn study_settings(args: &CapacityArgs, root: &Path) -> catalogue::Settings {
    let workers = args.server_cpus.len() as u32;
    args.server_flags
        .settings(root, PathBuf::new(), args.delay_kind, workers)
}

/// The command that runs this study, as the user typed it after `cargo xtask`.
pub fn command_line() -> String {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", argv.join(" "))
}

/// loadgen's own ceiling: closed loop on persistent connections against the first
/// event-loop server at zero delay, where the server answers as fast as it can. It is a
/// lower bound of what loadgen carries (the server may be the limit).
fn loadgen_ceiling(rig: &Rig, variants: &[Variant]) -> (Measured<f64>, Option<String>) {
    let event_loop = |v: &&Variant| {
        v.entry()
            .is_some_and(|e| e.side == Side::Rust { event_loop: true })
    };
    let Some(variant) = variants.iter().find(event_loop) else {
        let reason = "no event-loop server of this project was selected to measure it against";
        return (Err(NotMeasured::new(reason)), None);
    };
    let load = Load {
        requests_per_second: None,
        connections: MIN_CONNECTIONS,
        delay: DelayModel::Fixed(Duration::ZERO).into(),
    };
    eprint!("loadgen's ceiling against {} at zero delay: ", variant.name);
    let name = format!("loadgen-ceiling-{}", variant.name);
    let measured =
        unobserved(rig, "not counted in loadgen's ceiling run").measure(variant, load, &name);
    let ceiling = measured
        .map(|m| m.step.achieved_requests_per_second)
        .map_err(|e| NotMeasured::new(e.to_string()));
    match &ceiling {
        Ok(rate) => eprintln!("{rate:.0} req/s"),
        Err(reason) => eprintln!("{reason}"),
    }
    (ceiling, Some(variant.name.clone()))
}

/// A rig whose steps are not observed by perf: its tracepoint would slow the server a
/// little at high rates, and runs that check the client count only rates.
fn unobserved(rig: &Rig, why: &str) -> Rig {
    Rig {
        perf: Err(NotMeasured::new(why)),
        ..rig.clone()
    }
}

/// loadgen open loop at [`HEADROOM_MULTIPLE`] × the best server's max, against that server at
/// zero delay (the server is then not what limits it), on the connections a step at that
/// rate opens: whether the client carries the rate on its own CPUs. `None` when no server
/// sustained a rate.
fn loadgen_headroom(
    rig: &Rig,
    plan: &Plan,
    variants: &[Variant],
    servers: &[ServerCapacity],
) -> Option<LoadgenHeadroom> {
    let best = crate::export::figures::by_capacity_of(servers)
        .first()
        .copied()?;
    let variant = variants.iter().find(|v| v.name == best.name)?;
    let rate = HEADROOM_MULTIPLE * best.max_sustainable_requests_per_second;
    let load = Load {
        requests_per_second: Some(rate),
        connections: plan
            .connections
            .rule
            .for_rate(rate)
            .min(plan.connections.fit),
        delay: DelayModel::Fixed(Duration::ZERO).into(),
    };
    eprint!(
        "loadgen's headroom: {rate:.0} req/s on {} connections against {} at zero delay: ",
        load.connections, variant.name
    );
    // Logged, so that its lag can be judged away from the machine's slowdowns too.
    let rig = Rig {
        away_from_slowdowns: Some(Near::CLIENT),
        ..unobserved(rig, "not counted in loadgen's headroom run")
    };
    let name = format!("loadgen-headroom-{}", variant.name);
    let (step, failure) = match rig.measure(variant, load, &name) {
        Ok(measured) => {
            eprintln!(
                "{:.0} req/s, loadgen lag p99 {}",
                measured.step.achieved_requests_per_second,
                measured
                    .step
                    .loadgen
                    .lag_p99_ms
                    .as_ref()
                    .map_or_else(|m| m.to_string(), |lag| format!("{lag:.2} ms"))
            );
            (Some(measured.step), None)
        }
        Err(e) => {
            eprintln!("failed: {e}");
            (None, Some(e.to_string()))
        }
    };
    Some(LoadgenHeadroom {
        server: variant.name.clone(),
        multiple_of_best_max: HEADROOM_MULTIPLE,
        step,
        failure,
    })
}

/// The independent client at [`independent::SHARE_OF_MAX`] of `server`'s max, on the
/// connections of its max step; `None` when it sustained no rate.
fn check_independently(
    rig: &Rig,
    olc: &Path,
    delay: &Recipe,
    variant: &Variant,
    server: &ServerCapacity,
) -> Option<results::IndependentCheck> {
    let max = server.max_sustainable_requests_per_second;
    let max_step = server
        .steps
        .iter()
        .find(|s| s.verdict == Verdict::Sustained && s.step.target_requests_per_second == max)?;
    let rate = independent::SHARE_OF_MAX * max;
    let connections = max_step.step.connections;
    eprint!(
        "{} independent check: olc at {rate:.0} req/s on {connections} connections: ",
        variant.name
    );
    let rig = Rig {
        window: independent::WINDOW,
        ..unobserved(rig, "not counted in the independent check")
    };
    let name = format!("{}-independent-{rate:.0}", variant.name);
    let check = independent::check(&rig, olc, variant, delay, rate, connections, &name);
    match &check.outcome {
        results::IndependentOutcome::Measured {
            latency, errors, ..
        } => {
            eprintln!("p99 {:.1} ms, {errors} errors", latency.p99_ms);
        }
        results::IndependentOutcome::Failed { reason } => eprintln!("failed: {reason}"),
    }
    Some(check)
}

/// One server's search to its end; `Ok(Err(reason))` when the server never completed a
/// step (it did not start, or is a baseline that skipped itself). Confirmations are
/// measured over the plan's confirmation window.
///
/// # Errors
/// When the search settings are invalid (checked before, so not in practice).
fn search_server(
    rig: &Rig,
    plan: &Plan,
    delay: &Recipe,
    variant: &Variant,
) -> anyhow::Result<Result<ServerCapacity, String>> {
    let confirming = Rig {
        window: plan.confirm_window,
        ..rig.clone()
    };
    search_with(plan, delay, variant, |load, confirmation, name| {
        let rig = if confirmation { &confirming } else { rig };
        rig.measure(variant, load, name)
    })
}

/// [`search_server`] with the steps measured by `measure` (its load, whether it is a
/// confirmation, the name of its record), so that the search is tested against stand-ins.
fn search_with(
    plan: &Plan,
    delay: &Recipe,
    variant: &Variant,
    mut measure: impl FnMut(Load, bool, &str) -> Result<Measurement, StepError>,
) -> anyhow::Result<Result<ServerCapacity, String>> {
    let (mut search, mut next) = Search::new(plan.search)?;
    let mut steps: Vec<JudgedStep> = Vec::new();
    let mut command = String::new();
    let mut failure = None;
    let mut faults = Faults::default();
    let result = loop {
        let (rate, confirmation, again) = match next {
            Next::Done(result) => break Some(result),
            Next::Measure {
                requests_per_second,
                confirmation,
                again,
            } => (requests_per_second, confirmation, again),
        };
        let load = Load {
            requests_per_second: Some(rate),
            connections: plan.connections.rule.for_rate(rate),
            delay: delay.clone(),
        };
        let (what, suffix) = if confirmation {
            (
                format!(
                    " (confirmation over {})",
                    echo_core::format_duration(plan.confirm_window)
                ),
                "-confirm",
            )
        } else if again {
            (" (measured again)".to_owned(), "-again")
        } else {
            (String::new(), "")
        };
        eprint!(
            "{} step {}{what}: {rate:.0} req/s on {} connections: ",
            variant.name,
            steps.len() + 1,
            load.connections
        );
        let name = format!("{}-{:02}-{rate:.0}{suffix}", variant.name, steps.len() + 1);
        match measure(load, confirmation, &name) {
            Ok(measured) => {
                let verdict = plan.slo.judge(&measured.step);
                let away = measured
                    .step
                    .away_from_slowdowns
                    .and_then(|a| a.latency_p99_ms)
                    .map_or_else(String::new, |p99| {
                        format!(" ({p99:.1} ms away from slowdowns)")
                    });
                eprintln!(
                    "{:.0} req/s, p99 {:.1} ms{away}: {verdict}",
                    measured.step.achieved_requests_per_second, measured.step.latency.p99_ms
                );
                command = measured.server_command;
                faults = faults.plus(measured.faults);
                next = search.observe(&verdict);
                steps.push(JudgedStep {
                    step: measured.step,
                    verdict,
                    confirmation,
                    again,
                });
            }
            Err(StepError::Skipped(reason)) if steps.is_empty() => return Ok(Err(reason)),
            Err(e) => {
                eprintln!("failed: {e}");
                failure = Some(e.to_string());
                break None;
            }
        }
    };
    let mut server = server_result(plan, variant, command, steps, result, failure);
    server.faults = Some(faults);
    Ok(Ok(server))
}

fn server_result(
    plan: &Plan,
    variant: &Variant,
    command: String,
    steps: Vec<JudgedStep>,
    result: Option<search::SearchResult>,
    failure: Option<String>,
) -> ServerCapacity {
    // A search cut short publishes only what held over the confirmation window, when
    // confirmations were asked for.
    let confirms = plan.search.confirmations > 0;
    let sustained_max = steps
        .iter()
        .filter(|s| s.verdict == Verdict::Sustained && (s.confirmation || !confirms))
        .map(|s| s.step.target_requests_per_second)
        .fold(0.0, f64::max);
    let confirmed_over_seconds = result
        .is_some_and(|r| r.confirmed)
        .then_some(plan.confirm_window.as_secs_f64());
    let client_bound_from = result.and_then(|r| r.client_bound_requests_per_second);
    let (max, first_broken, bound) = match result {
        Some(result) => {
            let broken = result.first_broken_requests_per_second.and_then(|rate| {
                steps.iter().find(|s| {
                    s.step.target_requests_per_second == rate
                        && matches!(s.verdict, Verdict::Broken { .. })
                })
            });
            let bound = plan
                .slo
                .bound(result.end, broken.map(|s| &s.step), plan.ceiling_bound);
            (
                result.max_sustainable_requests_per_second,
                result.first_broken_requests_per_second,
                bound,
            )
        }
        None => (sustained_max, None, Bound::Slo),
    };
    ServerCapacity {
        name: variant.name.clone(),
        model: variant.model.clone(),
        command,
        max_sustainable_requests_per_second: max,
        first_broken_requests_per_second: first_broken,
        bound,
        client_bound_from_requests_per_second: client_bound_from,
        confirmed_over_seconds,
        steps,
        failure,
        faults: None,
        independent_check: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(line: &[&str]) -> CapacityArgs {
        crate::study::parse_args(line)
    }

    fn limits(limit: u64) -> Vec<OpenFiles> {
        OpenFiles::server_and_loadgen(limit)
    }

    #[test]
    fn the_defaults_are_the_issues_slo_on_cpu_0_and_1() {
        let plan = plan(&args(&[]), 2, &limits(20_000)).expect("fits");
        assert_eq!(plan.slo.p99_max_ms(), 150.0);
        assert_eq!(plan.cpus.server_cpus, [0]);
        assert_eq!(plan.cpus.loadgen_cpus, [1]);
        assert_eq!(plan.search.start_requests_per_second, 2000.0);
        assert_eq!(plan.search.ceiling_requests_per_second, 98_720.0);
        assert_eq!(plan.ceiling_bound, Bound::Connections);
        assert_eq!(plan.connections.rule.for_rate(20_000.0), 4_000);
    }

    #[test]
    fn the_slo_is_judged_over_every_request_unless_asked_to_judge_away_from_slowdowns() {
        let every = plan(&args(&[]), 2, &limits(20_000)).expect("fits");
        assert_eq!(every.slo.judged_on, JudgedOn::EveryRequest);
        let away = plan(&args(&["--away-from-slowdowns"]), 2, &limits(20_000)).expect("fits");
        assert_eq!(away.slo.judged_on, JudgedOn::AwayFromSlowdowns);
        // The probe finds the slowdowns: it cannot be turned off then.
        let refused = crate::study::try_parse_args::<CapacityArgs>(&[
            "--away-from-slowdowns",
            "--no-speed-probe",
        ])
        .expect_err("refused");
        assert!(refused.contains("--no-speed-probe"), "{refused}");
    }

    #[test]
    fn a_recipe_of_several_phases_is_taken_and_its_slo_is_a_multiple_of_the_whole_request() {
        let a = args(&["--delay", "spin:2ms+wait:100ms"]);
        assert_eq!(a.delay.to_string(), "spin:2ms+wait:100ms");
        let plan = plan(&a, 2, &limits(20_000)).expect("fits");
        assert_eq!(plan.slo.p99_max_ms(), 153.0);
    }

    #[test]
    fn the_default_study_of_every_variant_fits_in_fifteen_minutes() {
        let a = args(&[]);
        let plan = plan(&a, 2, &limits(20_000)).expect("fits");
        let servers = catalogue::default_names().count() as u32;
        let budget = budget(&plan, servers, &a);
        assert!(budget.independent_checks > 0, "the check is on by default");
        assert_eq!(
            budget.max_confirmations_per_server,
            3,
            "{}",
            budget.describe()
        );
        assert!(budget.check(*a.time_limit).is_ok(), "{}", budget.describe());
    }

    fn rig(dir: &Path) -> Rig {
        let a = args(&[]);
        let mut settings = study_settings(&a, dir);
        settings.bin_dir = dir.to_path_buf();
        Rig {
            settings,
            loadgen: dir.join("loadgen-is-never-started"),
            cpus: plan_of(&[]).cpus,
            warmup: *a.warmup,
            window: *a.window,
            timeout: plan_of(&[]).timeout,
            perf: Err(NotMeasured::new("not in tests")),
            runs_dir: dir.to_path_buf(),
            give_up_after: None,
            machine: None,
            away_from_slowdowns: None,
        }
    }

    /// The search of a stand-in server made by `fake` in a scratch directory of its own.
    fn search_fake(label: &str, fake: fn(&Path) -> Variant) -> Result<ServerCapacity, String> {
        let scratch = format!("xtask-capacity-{label}-{}", std::process::id());
        let dir = std::env::temp_dir().join(scratch);
        let variant = fake(&dir);
        let searched = search_server(&rig(&dir), &plan_of(&[]), &Recipe::default(), &variant);
        let _ = std::fs::remove_dir_all(&dir);
        searched.expect("valid settings")
    }

    #[test]
    fn a_server_that_exits_3_saying_skipped_is_skipped_with_its_reason() {
        let searched = search_fake("skip", study::fake::skipping_server);
        assert_eq!(searched, Err("io_uring unavailable: test".to_owned()));
    }

    #[test]
    fn a_server_that_dies_at_start_for_another_reason_is_a_failed_row_not_a_skipped_one() {
        let server = search_fake("crash", study::fake::crashing_server).expect("a row, not a skip");
        assert!(server.steps.is_empty());
        assert_eq!(server.max_sustainable_requests_per_second, 0.0);
        let failure = server.failure.expect("the reason");
        assert!(failure.contains("bind: out of luck"), "{failure}");
    }

    #[test]
    fn a_server_that_passes_short_steps_but_breaks_the_confirmation_does_not_publish_that_rate() {
        let plan = plan_of(&[]);
        let variant = catalogue::builtin("mio").expect("known");
        let fake = study::fake::falling_behind(5000.0, 4800.0, plan.confirm_window);
        let server = search_with(&plan, &Recipe::default(), &variant, fake)
            .expect("valid settings")
            .expect("a row");
        let short_max = server
            .steps
            .iter()
            .filter(|s| !s.confirmation && s.verdict == Verdict::Sustained)
            .map(|s| s.step.target_requests_per_second)
            .fold(0.0, f64::max);
        assert_eq!(short_max, 5000.0, "the short steps held 5000 req/s");
        let confirmations: Vec<(f64, bool)> = server
            .steps
            .iter()
            .filter(|s| s.confirmation)
            .map(|s| {
                (
                    s.step.target_requests_per_second,
                    s.verdict == Verdict::Sustained,
                )
            })
            .collect();
        // The study's first step down is 21 %.
        let step = plan.search.confirmation_step(1);
        assert!((step - 1.21).abs() < 1e-12, "{step}");
        assert_eq!(confirmations, [(5000.0, false), (5000.0 / step, true)]);
        assert_eq!(server.max_sustainable_requests_per_second, 5000.0 / step);
        assert_eq!(server.first_broken_requests_per_second, Some(5000.0));
        assert_eq!(server.confirmed_over_seconds, Some(5.0));
        assert!(
            server
                .steps
                .iter()
                .filter(|s| s.confirmation)
                .all(|s| s.step.window_seconds == 5.0)
        );
        assert_eq!(server.bound, Bound::Slo);
    }

    /// A server that holds up to 30000 req/s, whose first step at 4000 broke all the same
    /// (as one slowdown of the machine breaks a short step far below a server's limit).
    fn unlucky_at_4000(
        plan: &Plan,
    ) -> impl FnMut(Load, bool, &str) -> Result<Measurement, StepError> {
        let mut holds = study::fake::falling_behind(30_000.0, 30_000.0, plan.confirm_window);
        let mut unlucky = true;
        move |load: Load, confirmation: bool, name: &str| {
            let rate = load.requests_per_second;
            let mut measured = holds(load, confirmation, name)?;
            if rate == Some(4000.0) && std::mem::take(&mut unlucky) {
                measured.step.latency.p99_ms = 250.0;
            }
            Ok(measured)
        }
    }

    #[test]
    fn a_step_broken_once_by_the_machine_is_measured_again_and_does_not_cap_the_study() {
        let plan = plan_of(&[]);
        assert_eq!(plan.search.broken_retries, 1, "the study's default");
        let variant = catalogue::builtin("mio").expect("known");
        let server = search_with(&plan, &Recipe::default(), &variant, unlucky_at_4000(&plan))
            .expect("valid settings")
            .expect("a row");
        let at_4000: Vec<(bool, bool)> = server
            .steps
            .iter()
            .filter(|s| s.step.target_requests_per_second == 4000.0)
            .map(|s| (s.again, s.verdict == Verdict::Sustained))
            .collect();
        assert_eq!(at_4000, [(false, false), (true, true)]);
        let max = server.max_sustainable_requests_per_second;
        assert!(max > 28_000.0, "{max}");

        let once = plan_of(&["--broken-retries", "0"]);
        let taken = search_with(&once, &Recipe::default(), &variant, unlucky_at_4000(&once))
            .expect("valid settings")
            .expect("a row");
        let max = taken.max_sustainable_requests_per_second;
        assert!(
            max < 4000.0,
            "without the retry one unlucky step caps it: {max}"
        );
    }

    #[test]
    fn a_server_that_breaks_every_confirmation_publishes_no_rate() {
        let plan = plan_of(&[]);
        let variant = catalogue::builtin("mio").expect("known");
        let fake = study::fake::falling_behind(5000.0, 1000.0, plan.confirm_window);
        let server = search_with(&plan, &Recipe::default(), &variant, fake)
            .expect("valid settings")
            .expect("a row");
        assert_eq!(server.steps.iter().filter(|s| s.confirmation).count(), 3);
        assert_eq!(server.max_sustainable_requests_per_second, 0.0);
        assert_eq!(server.bound, Bound::Unconfirmed);
        assert_eq!(server.confirmed_over_seconds, None);
    }

    #[test]
    fn a_client_that_falls_behind_in_every_confirmation_never_makes_it_the_servers_limit() {
        let plan = plan_of(&[]);
        let variant = catalogue::builtin("mio").expect("known");
        let mut fake = study::fake::falling_behind(5000.0, 5000.0, plan.confirm_window);
        let lagging = |load: Load, confirmation: bool, name: &str| {
            let mut measured = fake(load, confirmation, name)?;
            if confirmation {
                measured.step.latency.p99_ms = 300.0;
                measured.step.loadgen.lag_p99_ms = Ok(30.0);
                measured.step.loadgen.lag_is_clients_own = true;
            }
            Ok(measured)
        };
        let server = search_with(&plan, &Recipe::default(), &variant, lagging)
            .expect("valid settings")
            .expect("a row");
        assert_eq!(server.bound, Bound::Client);
        // The rate the search found stands, unconfirmed: loadgen's lag is not the server's.
        assert_eq!(server.max_sustainable_requests_per_second, 5000.0);
        assert_eq!(server.confirmed_over_seconds, None);
        assert_eq!(server.first_broken_requests_per_second, Some(5250.0));
        // The third confirmation: the second step down twice as deep as the first.
        let lowest = server
            .client_bound_from_requests_per_second
            .expect("client-bound");
        assert!((lowest - 5000.0 / 1.21 / 1.4641).abs() < 1e-9, "{lowest}");
    }

    #[test]
    fn a_max_rate_below_what_the_connections_carry_is_the_ceiling() {
        let plan = plan(&args(&["--max-rate", "4000"]), 2, &limits(20_000)).expect("fits");
        assert_eq!(plan.search.ceiling_requests_per_second, 4000.0);
        assert_eq!(plan.ceiling_bound, Bound::MaxRate);
        let plan = plan_of(&["--max-rate", "500"]);
        assert_eq!(plan.search.start_requests_per_second, 500.0);
    }

    fn plan_of(line: &[&str]) -> Plan {
        plan(&args(line), 2, &limits(20_000)).expect("valid")
    }

    #[test]
    fn real_time_clients_get_a_real_time_probe_unless_the_study_says_not_to() {
        let plan = plan(&args(&["--away-from-slowdowns"]), 2, &limits(20_000)).expect("valid");
        assert_eq!(plan.slo.judged_on, JudgedOn::AwayFromSlowdowns);
        assert_eq!(clients_priority(&args(&["--no-realtime-clients"])), None);
        let mut cpus = plan.cpus.clone();
        cpus.clients_fifo_priority = clients_priority(&args(&[]));
        match server_process::fifo_allowed(CLIENT_FIFO_PRIORITY) {
            Ok(()) => assert_eq!(cpus.clients_fifo_priority, Some(CLIENT_FIFO_PRIORITY)),
            Err(_) => assert_eq!(cpus.clients_fifo_priority, None, "the machine refused it"),
        }
        let probe = start_speed_probe(&args(&["--away-from-slowdowns"]), &cpus)
            .expect("the probe starts on this machine's CPUs 0 and 1")
            .expect("the steps are judged by the probe");
        std::thread::sleep(server_process::steadiness::PERIOD * 3);
        probe.stop();
        assert!(!probe.samples(0).is_empty() && !probe.samples(1).is_empty());
    }

    #[test]
    fn cpus_that_do_not_exist_or_overlap_are_refused_before_anything_runs() {
        let refused = |line: &[&str]| {
            plan(&args(line), 2, &limits(20_000))
                .expect_err("refused")
                .to_string()
        };
        assert_eq!(
            refused(&["--server-cpus", "2"]),
            "--server-cpus 2: this machine has CPUs 0 to 1"
        );
        assert!(refused(&["--loadgen-cpus", "0"]).starts_with("CPU 0 is in both"));
    }

    #[test]
    fn connections_that_do_not_fit_the_open_file_limit_are_refused_before_anything_runs() {
        let message = plan(&args(&["--connections", "30000"]), 2, &limits(20_000))
            .expect_err("does not fit")
            .to_string();
        assert!(
            message.contains("--connections 30000 does not fit"),
            "{message}"
        );
    }

    #[test]
    fn the_timeout_follows_the_slo_and_one_the_slo_would_break_is_refused() {
        assert_eq!(plan_of(&[]).timeout, Duration::from_secs(2));
        assert_eq!(
            plan_of(&["--delay", "1s"]).timeout,
            Duration::from_secs(15),
            "10 × a 1.5 s p99 limit"
        );
        assert_eq!(
            plan_of(&["--timeout", "500ms"]).timeout,
            Duration::from_millis(500)
        );
        let message = plan(&args(&["--timeout", "150ms"]), 2, &limits(20_000))
            .expect_err("the SLO allows 150 ms")
            .to_string();
        assert!(
            message.starts_with("--timeout 150ms: want it above the SLO's p99 limit of 150ms"),
            "{message}"
        );
    }

    #[test]
    fn an_slo_that_the_delay_alone_breaks_is_refused() {
        let message = plan(&args(&["--slo-p99", "1"]), 2, &limits(20_000))
            .expect_err("p99 cannot be below the delay")
            .to_string();
        assert!(message.starts_with("--slo-p99 1:"), "{message}");
    }

    #[test]
    fn a_search_that_reached_its_ceiling_says_what_the_ceiling_was() {
        let plan = plan_of(&["--max-rate", "2000"]);
        let variant = catalogue::builtin("mio").expect("known");
        let steps: Vec<JudgedStep> = [1000.0, 2000.0]
            .map(|rate| JudgedStep {
                step: results::sample_step(rate),
                verdict: Verdict::Sustained,
                confirmation: false,
                again: false,
            })
            .to_vec();
        let result = search::SearchResult {
            max_sustainable_requests_per_second: 2000.0,
            first_broken_requests_per_second: None,
            client_bound_requests_per_second: None,
            end: search::End::Ceiling,
            steps: 2,
            confirmed: false,
        };
        let server = server_result(&plan, &variant, String::new(), steps, Some(result), None);
        assert_eq!(server.bound, Bound::MaxRate);
        assert_eq!(server.max_sustainable_requests_per_second, 2000.0);
    }
}
