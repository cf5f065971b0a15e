//! `cargo xtask soak`: does a server stay correct and leak nothing under a steady normal load
//! with hostile clients mixed in (issue 13)?
//!
//! Per server, for `--duration`: a fresh server process; a [`Timeline`] reading its RSS,
//! descriptors, threads and CPU every second; the normal load as consecutive loadgen windows
//! of `--window` each (open loop at `--rate` on `--connections` persistent connections,
//! every reply checked byte for byte by loadgen), so that p99 exists over time, one point a
//! window; and inside every window, `--wave-offset` after its start, a wave of the
//! [`hostile`] clients, after which the descriptors must come back to what they were just
//! before it. The wave runs inside a window so that the baseline and the settled count both
//! see the same normal connections. The [`results::Verdict`] is judged from those records
//! alone. With `--parallel N` several servers are soaked at once, each with its own loadgen
//! and hostile clients: a soak checks leaks and correctness, not speed.
//!
//! Before anything runs, the plan is checked ([`plan`]): the wave and its settling fit in a
//! window, the descriptors fit every process's limit, the warm-up leaves samples to judge,
//! and the time estimate is within `--time-limit`.

pub mod results;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::builder::PossibleValuesParser;
use echo_core::{DelayKind, Recipe as DelaySpec};
use hostile::{Kind, WaveReport};
use server_process::procfs;

use self::results::{
    Criteria, HostileTally, SCHEMA_VERSION, ServerSoak, Settings, SoakSummary, Verdict, Wave,
    Window,
};
use crate::catalogue::{self, Side, Variant};
use crate::run::env;
use crate::run::load::{self, LoadOutcome, LoadSpec, Timed};
use crate::run::procstat::Timeline;
use crate::run::server::{self, ServerProcess};
use crate::study::{self, START_TIMEOUT, STOP_TIMEOUT, Wanted};

/// Requests each persistent connection may carry: more than any window sends.
const REQUESTS_PER_CONNECTION: u64 = 1_000_000_000;
/// How often descriptors are counted while a wave runs and settles.
const FD_POLL: Duration = Duration::from_millis(20);
/// Descriptors a server or this process holds besides connections (listener, pipes, ring,
/// epoll, stdio), with room to spare.
const FD_SLACK: u64 = 100;
/// Time a server takes to start and stop, added to each soak in the estimate.
const START_STOP_ESTIMATE: Duration = Duration::from_secs(10);

/// Options of `cargo xtask soak`.
#[derive(Debug, Clone, clap::Args)]
pub struct SoakArgs {
    /// How long each server is soaked.
    #[arg(long, default_value = "2m")]
    pub duration: humantime::Duration,
    /// Variants to soak, comma-separated (default: every Rust row of the catalogue).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(catalogue::names()))]
    pub servers: Vec<String>,
    /// Servers soaked at once, each with its own loadgen and hostile clients.
    #[arg(long, default_value_t = 1)]
    pub parallel: u32,
    /// Time from the start after which RSS growth is judged.
    #[arg(long, default_value = "30s")]
    pub warmup: humantime::Duration,
    /// Length of each loadgen window of the normal load (one p99 point, one hostile wave).
    #[arg(long, default_value = "6s")]
    pub window: humantime::Duration,
    /// The normal load: open-loop requests per second.
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// The normal load's persistent connections.
    #[arg(long, default_value_t = 50)]
    pub connections: u64,
    /// Simulated IO delay per request.
    #[arg(long, default_value = "100ms")]
    pub delay: DelaySpec,
    /// How servers spend the delay: wait, block or spin.
    #[arg(long, default_value = "wait")]
    pub delay_kind: DelayKind,
    /// Hostile clients of each kind in each wave.
    #[arg(long, default_value_t = 4)]
    pub wave_clients: u32,
    /// When each wave starts, from the start of its window.
    #[arg(long, default_value = "1s")]
    pub wave_offset: humantime::Duration,
    /// How long never-readers and idle clients hold their connections.
    #[arg(long, default_value = "1s")]
    pub hold: humantime::Duration,
    /// Between two bytes of a dribbler.
    #[arg(long, default_value = "50ms")]
    pub dribble_interval: humantime::Duration,
    /// How long descriptors may take to come back after a wave.
    #[arg(long, default_value = "2s")]
    pub settle_limit: humantime::Duration,
    /// Refuse to start when the estimate is longer than this.
    #[arg(long, default_value = "30m")]
    pub time_limit: humantime::Duration,
    /// Output directory (default: `benches-results/<date>-<label>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label of the output directory.
    #[arg(long, default_value = "soak")]
    pub label: String,
    #[command(flatten)]
    pub server_flags: study::ServerFlags,
    /// loadgen's connect and reply timeout, and the hostile clients' patience.
    #[arg(long, default_value = "10s")]
    pub timeout: humantime::Duration,
    /// Re-render the soak report in DIR from its summary.json, and do nothing else.
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
}

/// Everything a server's soak needs, decided before the first one starts.
#[derive(Debug, Clone)]
pub struct Plan {
    /// How long each server is soaked.
    pub duration: Duration,
    /// RSS growth is judged after this.
    pub warmup: Duration,
    /// Each loadgen window.
    pub window: Duration,
    /// Between two readings of the server.
    pub sample_interval: Duration,
    /// The normal load's rate.
    pub requests_per_second: f64,
    /// The normal load's connections.
    pub connections: u64,
    /// The delay of every request.
    pub delay: DelaySpec,
    /// loadgen's timeout.
    pub timeout: Duration,
    /// Each wave's clients.
    pub wave: Vec<(Kind, usize)>,
    /// When each wave starts in its window.
    pub wave_offset: Duration,
    /// How long descriptors may take to come back.
    pub settle_limit: Duration,
    /// How the hostile clients misbehave.
    pub hostile: hostile::Settings,
    /// The pass criteria.
    pub criteria: Criteria,
}

impl Plan {
    /// Windows of each server's soak.
    pub fn windows(&self) -> u32 {
        let n = self.duration.as_secs_f64() / self.window.as_secs_f64();
        (n.floor() as u32).max(1)
    }

    /// Hostile clients of one wave.
    pub fn wave_clients(&self) -> u64 {
        self.wave.iter().map(|&(_, n)| n as u64).sum()
    }

    /// The longest a wave's clients take: the hold, a dribble, or a reply, whichever is
    /// longest, plus a second for the rest.
    pub fn wave_bound(&self) -> Duration {
        let dribble = self.hostile.dribble_interval * 8;
        self.hostile.hold.max(dribble).max(self.delay.mean() * 2) + Duration::from_secs(1)
    }
}

/// The open-file limit each process runs with: servers and loadgen raise their soft limit
/// to the hard one; the hostile clients live in this process, under its soft limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// This process's soft `RLIMIT_NOFILE`.
    pub this_process: u64,
    /// The hard limit the children inherit.
    pub children: u64,
}

impl Limits {
    /// This machine's.
    pub fn here() -> Limits {
        let mut limit = libc::rlimit {
            rlim_cur: 1024,
            rlim_max: 1024,
        };
        // SAFETY: getrlimit writes into the struct we pass and nothing else.
        let _ = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
        Limits {
            this_process: limit.rlim_cur,
            children: limit.rlim_max,
        }
    }
}

/// Checks the flags against each other and the machine's limits, before anything runs.
///
/// # Errors
/// Naming the flag and value at fault.
pub fn plan(args: &SoakArgs, limits: Limits) -> anyhow::Result<Plan> {
    if !(args.rate.is_finite() && args.rate > 0.0) {
        bail!("--rate {}: want a positive rate", args.rate);
    }
    if args.connections == 0 {
        bail!("--connections 0: the normal load needs a connection");
    }
    if args.parallel == 0 {
        bail!("--parallel 0: want at least one server at a time");
    }
    let hostile = hostile::Settings {
        max_line_bytes: echo_core::Config::default().max_line_bytes,
        dribble_interval: *args.dribble_interval,
        hold: *args.hold,
        patience: *args.timeout,
        ..hostile::Settings::default()
    };
    let per_kind = args.wave_clients as usize;
    let plan = Plan {
        duration: *args.duration,
        warmup: *args.warmup,
        window: *args.window,
        sample_interval: Duration::from_secs(1),
        requests_per_second: args.rate,
        connections: args.connections,
        delay: args.delay.clone(),
        timeout: *args.timeout,
        wave: Kind::ALL.iter().map(|&k| (k, per_kind)).collect(),
        wave_offset: *args.wave_offset,
        settle_limit: *args.settle_limit,
        hostile,
        criteria: Criteria::default(),
    };
    let needed = plan.wave_offset + plan.wave_bound() + plan.settle_limit;
    if needed > plan.window {
        bail!(
            "--window {}: a wave ({} in, up to {} long, then up to {} to settle) needs {}",
            humantime::format_duration(plan.window),
            humantime::format_duration(plan.wave_offset),
            humantime::format_duration(plan.wave_bound()),
            humantime::format_duration(plan.settle_limit),
            humantime::format_duration(needed)
        );
    }
    let judged = plan.duration.saturating_sub(plan.warmup);
    let min_judged = plan.sample_interval * (2 * Criteria::MIN_END_SAMPLES as u32 + 1);
    if judged < min_judged {
        bail!(
            "--duration {} with --warmup {}: want at least {} after the warm-up to judge RSS growth",
            humantime::format_duration(plan.duration),
            humantime::format_duration(plan.warmup),
            humantime::format_duration(min_judged)
        );
    }
    let wave = plan.wave_clients();
    if wave as usize > hostile::wave::MAX_CLIENTS {
        bail!(
            "--wave-clients {}: {wave} clients a wave, at most {}",
            args.wave_clients,
            hostile::wave::MAX_CLIENTS
        );
    }
    let here = u64::from(args.parallel) * wave + FD_SLACK;
    if here > limits.this_process {
        bail!(
            "--parallel {} × {wave} hostile clients need {here} descriptors here, over the open-file limit of {}",
            args.parallel,
            limits.this_process
        );
    }
    let server = args.connections + wave + FD_SLACK;
    if server > limits.children {
        bail!(
            "--connections {} plus {wave} hostile clients need {server} descriptors in each server, over the open-file limit of {}",
            args.connections,
            limits.children
        );
    }
    Ok(plan)
}

/// The time the whole soak takes: each server's duration plus its start and stop, in rounds
/// of `parallel`.
pub fn estimate(plan: &Plan, servers: usize, parallel: u32) -> Duration {
    let rounds = servers.div_ceil(parallel.max(1) as usize) as u32;
    (plan.window * plan.windows() + START_STOP_ESTIMATE) * rounds
}

/// The names of every Rust row of the catalogue, the default selection.
fn rust_rows() -> Vec<String> {
    catalogue::CATALOGUE
        .iter()
        .filter(|e| matches!(e.side, Side::Rust { .. }))
        .map(|e| e.name.to_owned())
        .collect()
}

/// Runs the soak and writes its results (or, with `--render`, re-renders a committed one).
///
/// # Errors
/// On bad options or limits (before anything runs), a failed build, or results that cannot
/// be written.
pub fn run(args: SoakArgs) -> anyhow::Result<()> {
    if let Some(dir) = &args.render {
        return crate::report::run(dir);
    }
    let root = crate::workspace_root();
    let plan = plan(&args, Limits::here())?;
    let servers = if args.servers.is_empty() {
        rust_rows()
    } else {
        args.servers.clone()
    };
    let wanted = Wanted {
        servers: &servers,
        externals: &[],
    };
    let environment = env::capture(&root);
    let (selected, skipped) = wanted.select(environment.python.is_some())?;
    let estimate = estimate(&plan, selected.len(), args.parallel);
    eprintln!(
        "soak of {} servers, {} at a time, {} windows of {} each: about {}",
        selected.len(),
        args.parallel.min(selected.len().max(1) as u32),
        plan.windows(),
        humantime::format_duration(plan.window),
        humantime::format_duration(Duration::from_secs(estimate.as_secs()))
    );
    if estimate > *args.time_limit {
        bail!(
            "the soak would take about {}, over --time-limit {}",
            humantime::format_duration(Duration::from_secs(estimate.as_secs())),
            args.time_limit
        );
    }
    if !args.server_flags.no_build {
        study::build(&root, &selected)?;
    }
    let rig = Rig::new(server_settings(&root, &args)?, plan)?;
    let out = study::output_dir(
        args.out.as_deref(),
        &root,
        &environment.date_utc,
        &args.label,
    )?;
    let soaks = soak_all(&rig, &selected, args.parallel, &out.join("runs"));
    let summary = SoakSummary {
        kind: crate::results::Kind::Soak,
        schema_version: SCHEMA_VERSION,
        label: args.label.clone(),
        env: environment,
        settings: settings(&args, &rig.plan),
        servers: soaks,
        skipped,
    };
    crate::report::write_soak(&out, &summary)?;
    study::announce(&out, &crate::export::soak::headline(&summary));
    Ok(())
}

fn settings(args: &SoakArgs, plan: &Plan) -> Settings {
    Settings {
        command: command_line(),
        duration_seconds: plan.duration.as_secs_f64(),
        warmup_seconds: plan.warmup.as_secs_f64(),
        window_seconds: plan.window.as_secs_f64(),
        delay: plan.delay.clone(),
        delay_kind: args.delay_kind,
        requests_per_second: plan.requests_per_second,
        connections: plan.connections,
        parallel: args.parallel,
        wave_offset_seconds: plan.wave_offset.as_secs_f64(),
        settle_limit_seconds: plan.settle_limit.as_secs_f64(),
        wave: plan
            .wave
            .iter()
            .map(|&(kind, n)| (kind.name().to_owned(), n as u32))
            .collect(),
        hostile_hold_seconds: plan.hostile.hold.as_secs_f64(),
        dribble_interval_ms: plan.hostile.dribble_interval.as_secs_f64() * 1e3,
        sample_interval_seconds: plan.sample_interval.as_secs_f64(),
        criteria: plan.criteria,
    }
}

/// How every server is started: the release binaries under `root`.
///
/// # Errors
/// When cargo cannot say where the release directory is.
pub fn server_settings(root: &Path, args: &SoakArgs) -> anyhow::Result<catalogue::Settings> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    Ok(args
        .server_flags
        .settings(root, study::release_dir(root)?, args.delay_kind, workers))
}

fn command_line() -> String {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    format!("cargo xtask {}", argv.join(" "))
}

/// Soaks every variant, `parallel` at a time, in the order given.
fn soak_all(rig: &Rig, variants: &[Variant], parallel: u32, runs_dir: &Path) -> Vec<ServerSoak> {
    let next = Mutex::new(variants.iter().enumerate());
    let done: Mutex<Vec<(usize, ServerSoak)>> = Mutex::new(Vec::new());
    std::thread::scope(|scope| {
        for _ in 0..parallel.max(1) {
            scope.spawn(|| {
                loop {
                    let Some((i, variant)) = next.lock().map(|mut it| it.next()).ok().flatten()
                    else {
                        return;
                    };
                    let soak = rig.soak(variant, runs_dir);
                    eprintln!(
                        "{}: {}",
                        soak.name,
                        crate::export::soak::verdict_line(&soak)
                    );
                    if let Ok(mut done) = done.lock() {
                        done.push((i, soak));
                    }
                }
            });
        }
    });
    let mut done = done.into_inner().unwrap_or_default();
    done.sort_by_key(|(i, _)| *i);
    done.into_iter().map(|(_, soak)| soak).collect()
}

/// What every server's soak is run with.
#[derive(Debug, Clone)]
pub struct Rig {
    /// How servers are started.
    pub settings: catalogue::Settings,
    /// The loadgen binary.
    pub loadgen: PathBuf,
    /// The soak's plan.
    pub plan: Plan,
}

impl Rig {
    /// The rig that starts servers with `settings` (its `bin_dir` holding loadgen too).
    ///
    /// # Errors
    /// When the binary directory holds no loadgen.
    pub fn new(settings: catalogue::Settings, plan: Plan) -> anyhow::Result<Rig> {
        let loadgen = settings.bin_dir.join("loadgen");
        if !loadgen.is_file() {
            bail!(
                "no loadgen binary at {} (build it, or drop --no-build)",
                loadgen.display()
            );
        }
        Ok(Rig {
            settings,
            loadgen,
            plan,
        })
    }

    fn load_spec(&self) -> LoadSpec {
        LoadSpec {
            program: self.loadgen.clone(),
            iterations: self.plan.connections,
            concurrency: None,
            requests_per_conn: REQUESTS_PER_CONNECTION,
            timeout: self.plan.timeout,
            timed: Some(Timed {
                requests_per_second: Some(self.plan.requests_per_second),
                duration: self.plan.window,
                warmup: Duration::ZERO,
                give_up_after: None,
            }),
            cpus: None,
            request_log: None,
            fifo_priority: None,
        }
    }

    /// One server's whole soak; loadgen's reports go under `runs_dir` and are removed once
    /// read. Never fails: what went wrong is the soak's `failure`, and fails its verdict.
    pub fn soak(&self, variant: &Variant, runs_dir: &Path) -> ServerSoak {
        let mut soak = ServerSoak {
            name: variant.name.clone(),
            model: variant.model.clone(),
            command: String::new(),
            loadgen_command: String::new(),
            samples: Vec::new(),
            windows: Vec::new(),
            waves: Vec::new(),
            hostile: BTreeMap::new(),
            exit: None,
            failure: None,
            verdict: Verdict::judge(&[], &[], &[], None, 0.0, &self.plan.criteria),
        };
        match self.soak_into(variant, runs_dir, &mut soak) {
            Ok(()) => {}
            Err(e) => soak.failure = Some(format!("{e:#}")),
        }
        soak.verdict = Verdict::judge(
            &soak.samples,
            &soak.windows,
            &soak.waves,
            soak.failure.as_deref(),
            self.plan.warmup.as_secs_f64(),
            &self.plan.criteria,
        );
        soak
    }

    fn soak_into(
        &self,
        variant: &Variant,
        runs_dir: &Path,
        soak: &mut ServerSoak,
    ) -> anyhow::Result<()> {
        let launch = variant.launch(&self.settings, &self.plan.delay)?;
        soak.command = self.settings.for_the_record(&launch.command_line());
        let server = ServerProcess::start(&launch, START_TIMEOUT)
            .with_context(|| format!("starting {}", variant.name))?;
        let (pid, addr) = (server.pid(), server.addr());
        // Before any load: what the normal connections add to is this.
        let idle_fds =
            procfs::open_descriptors(pid).context("counting the server's descriptors")?;
        let t0 = Instant::now();
        let timeline = Timeline::start(pid, self.plan.sample_interval, t0);
        let json = runs_dir.join(format!("{}.loadgen.json", variant.name));
        let spec = self.load_spec();
        for i in 0..self.plan.windows() {
            let server = Target {
                addr,
                pid,
                idle_fds,
            };
            let (window, wave) = self.window(&spec, server, t0, &json);
            let (window, outcome) = window;
            if i == 0 {
                soak.loadgen_command = self.settings.for_the_record(&outcome.command);
            }
            if let Some((wave, report)) = wave {
                tally(&mut soak.hostile, &report);
                soak.waves.push(wave);
            }
            soak.windows.push(window);
        }
        let _ = std::fs::remove_file(&json);
        soak.samples = timeline.stop();
        let tail = server.stderr_tail_text();
        let exit = server.stop(STOP_TIMEOUT)?;
        let exit = server::exit_record(&exit);
        let clean = exit.clean;
        soak.exit = Some(exit);
        if !clean {
            bail!(
                "{} did not exit cleanly after SIGTERM: {tail}",
                variant.name
            );
        }
        Ok(())
    }

    /// One loadgen window, and the hostile wave inside it.
    fn window(
        &self,
        spec: &LoadSpec,
        server: Target,
        t0: Instant,
        json: &Path,
    ) -> ((Window, LoadOutcome), Option<(Wave, WaveReport)>) {
        let start = t0.elapsed().as_secs_f64();
        let started = Instant::now();
        std::thread::scope(|scope| {
            let load = scope.spawn(|| load::run(spec, server.addr, json));
            // The wave's place in the window is the schedule itself, not a wait for an event.
            std::thread::sleep(self.plan.wave_offset);
            let latest =
                started + self.plan.window - self.plan.wave_bound() - self.plan.settle_limit;
            let wave = self.wave(server, t0, latest, &|| !load.is_finished());
            let outcome = load.join().unwrap_or_else(|_| LoadOutcome {
                command: String::new(),
                report: None,
                failure: Some("the thread running loadgen panicked".to_owned()),
                client_cpu_seconds: None,
            });
            let end = start + started.elapsed().as_secs_f64();
            ((window_record(&outcome, start, end), outcome), wave)
        })
    }

    /// One hostile wave, once the normal load's connections are all open (the server's
    /// descriptors at least its idle count plus `--connections`; a wave that could not start
    /// by `latest` is recorded as not run): the descriptors just before, the clients all at
    /// once (the descriptors counted meanwhile for the peak), then the settling, counted until
    /// they are back at the baseline or the settle limit passes. A settling seen only after
    /// the normal load ended (`load_open` false) proves nothing and is not counted as one.
    fn wave(
        &self,
        server: Target,
        t0: Instant,
        latest: Instant,
        load_open: &dyn Fn() -> bool,
    ) -> Option<(Wave, WaveReport)> {
        let Target {
            addr,
            pid,
            idle_fds,
        } = server;
        let steady = idle_fds + self.plan.connections;
        let baseline = loop {
            let fds = procfs::open_descriptors(pid).ok()?;
            if fds >= steady {
                break fds;
            }
            if Instant::now() >= latest || !load_open() {
                let at = t0.elapsed().as_secs_f64();
                let note = format!(
                    "did not run: the normal load had {} of its {} connections open",
                    fds.saturating_sub(idle_fds),
                    self.plan.connections
                );
                return Some((Wave::not_run(at, fds, note), WaveReport::default()));
            }
            std::thread::sleep(FD_POLL);
        };
        let start = t0.elapsed().as_secs_f64();
        let mut peak = baseline;
        let report = std::thread::scope(|scope| {
            let clients =
                scope.spawn(|| hostile::run_wave(addr, &self.plan.wave, &self.plan.hostile));
            while !clients.is_finished() {
                peak = peak.max(procfs::open_descriptors(pid).unwrap_or(0));
                std::thread::sleep(FD_POLL);
            }
            clients.join()
        });
        let report = match report {
            Ok(Ok(report)) => report,
            Ok(Err(reason)) => WaveReport {
                outcomes: vec![hostile::Outcome {
                    kind: Kind::ConnectAndClose,
                    saw: String::new(),
                    problem: Some(reason),
                }],
            },
            Err(_) => WaveReport::default(),
        };
        let ended = Instant::now();
        let end = t0.elapsed().as_secs_f64();
        let (settled_fds, settled_after, note) = loop {
            let open = load_open();
            let fds = procfs::open_descriptors(pid).unwrap_or(u64::MAX);
            peak = peak.max(fds);
            if fds <= baseline && open {
                break (fds, Some(ended.elapsed().as_secs_f64()), None);
            }
            if fds <= baseline {
                let note =
                    "was judged only after the normal load's window ended, which proves nothing";
                break (fds, None, Some(note.to_owned()));
            }
            if ended.elapsed() >= self.plan.settle_limit {
                break (fds, None, None);
            }
            std::thread::sleep(FD_POLL);
        };
        let wave = Wave {
            start_seconds: start,
            end_seconds: end,
            baseline_fds: baseline,
            peak_fds: peak,
            settled_fds,
            settled_after_seconds: settled_after,
            clients: report.outcomes.len() as u64,
            conforming: report.outcomes.iter().filter(|o| o.conforms()).count() as u64,
            note,
        };
        Some((wave, report))
    }
}

/// The server under soak, as a wave sees it.
#[derive(Debug, Clone, Copy)]
struct Target {
    addr: SocketAddr,
    pid: u32,
    /// Its descriptors before any load.
    idle_fds: u64,
}

/// A window's record from loadgen's outcome.
fn window_record(outcome: &LoadOutcome, start: f64, end: f64) -> Window {
    let figures = outcome.report.as_ref().map(load::figures);
    Window {
        start_seconds: start,
        end_seconds: end,
        requests_ok: figures.as_ref().map_or(0, |f| f.requests_ok),
        requests_failed: figures.as_ref().map_or(0, |f| f.requests_failed),
        failures_by_kind: figures
            .as_ref()
            .map(|f| f.failures_by_kind.clone())
            .unwrap_or_default(),
        latency_p50_ms: figures.as_ref().map_or(0.0, |f| f.latency_p50_ms),
        latency_p99_ms: figures.as_ref().map_or(0.0, |f| f.latency_p99_ms),
        latency_max_ms: figures.as_ref().map_or(0.0, |f| f.latency_max_ms),
        schedule_lag_p99_ms: figures
            .as_ref()
            .and_then(|f| f.schedule_lag.as_ref())
            .map(|lag| lag.p99_ms),
        failure: outcome.failure.clone(),
    }
}

/// Adds a wave's outcomes to the soak's tally by kind.
fn tally(tallies: &mut BTreeMap<String, HostileTally>, report: &WaveReport) {
    for outcome in &report.outcomes {
        let t = tallies.entry(outcome.kind.name().to_owned()).or_default();
        t.clients += 1;
        match &outcome.problem {
            None => {
                t.conforming += 1;
                if t.example.is_none() {
                    t.example = Some(outcome.saw.clone());
                }
            }
            Some(problem) if t.problems.len() < 5 => t.problems.push(problem.clone()),
            Some(_) => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        soak: SoakArgs,
    }

    fn args(line: &[&str]) -> SoakArgs {
        let argv = std::iter::once("soak").chain(line.iter().copied());
        Cli::try_parse_from(argv).expect("valid flags").soak
    }

    const LIMITS: Limits = Limits {
        this_process: 20_000,
        children: 20_000,
    };

    #[test]
    fn the_default_soak_of_every_rust_row_fits_its_time_limit() {
        let a = args(&[]);
        let plan = plan(&a, LIMITS).expect("the defaults fit");
        assert_eq!(plan.windows(), 20);
        assert_eq!(plan.wave_clients(), 28);
        let rows = rust_rows();
        assert!(
            rows.contains(&"uring".to_owned()) && !rows.iter().any(|r| r.starts_with("python"))
        );
        assert!(estimate(&plan, rows.len(), a.parallel) <= *a.time_limit);
    }

    #[test]
    fn a_window_too_short_for_its_wave_is_refused_naming_the_flag() {
        let message = plan(&args(&["--window", "2s"]), LIMITS)
            .expect_err("no room for a wave")
            .to_string();
        assert!(message.starts_with("--window 2s: a wave"), "{message}");
    }

    #[test]
    fn descriptors_over_the_limits_are_refused_before_anything_runs() {
        let small = Limits {
            this_process: 1024,
            children: 20_000,
        };
        let message = plan(&args(&["--parallel", "40"]), small)
            .expect_err("40 waves of 28 do not fit 1024")
            .to_string();
        assert!(
            message.starts_with("--parallel 40 × 28 hostile clients"),
            "{message}"
        );
        let message = plan(&args(&["--connections", "19950"]), LIMITS)
            .expect_err("over the server's limit")
            .to_string();
        assert!(message.starts_with("--connections 19950"), "{message}");
    }

    #[test]
    fn a_warm_up_that_leaves_nothing_to_judge_is_refused() {
        let message = plan(&args(&["--duration", "30s"]), LIMITS)
            .expect_err("all warm-up")
            .to_string();
        assert!(message.contains("after the warm-up"), "{message}");
    }
}
