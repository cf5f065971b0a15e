//! `cargo xtask compare`: the article's experiment in one command.
//!
//! Builds the release binaries, then for every iteration count runs each server variant in
//! rounds: one unmeasured warm-up round, then `--repeat` rounds of a measured run and a
//! zero-delay run per server. Rounds interleave the servers, so that a slow minute of the
//! shared machine spreads over every row instead of sinking one. Each run starts a fresh
//! server (so peak memory and CPU belong to that run alone), drives it with loadgen in a
//! separate process, samples it from /proc, stops it with SIGTERM and records everything
//! under `runs/`. The rows, `summary.json`, `README.md` and the chart come out of those
//! records at the end.

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};

use crate::aggregate::{self, RowKey};
use crate::env::{self, ListenCounters};
use crate::load::{self, LoadSpec};
use crate::procstat::{self, Sampler};
use crate::results::{
    Environment, Model, Params, RunKind, RunRecord, SCHEMA_VERSION, Skipped, Summary,
};
use crate::server;
use crate::variants::{self, Settings, Variant};

/// How long a server may take to print its listening line.
const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to exit after SIGTERM (its own shutdown timeout is 5 s).
const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Options of `cargo xtask compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Connections per run (the article's "iterations"); a comma-separated list makes a sweep.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub iterations: Vec<u64>,
    /// Simulated IO delay per request, any spec the servers accept (`100ms`, `exp:100ms`).
    #[arg(long, default_value = "100ms")]
    pub delay: String,
    /// How servers spend the delay: wait, block or spin.
    #[arg(long, default_value = "wait")]
    pub delay_kind: String,
    /// Connections open at once (default: all of them, as in the article). Must fit the
    /// open-file limit of both loadgen and the server.
    #[arg(long)]
    pub concurrency: Option<u64>,
    /// Sequential requests on each connection.
    #[arg(long, default_value_t = 1)]
    pub requests_per_conn: u64,
    /// Variants to run, comma-separated (default: all). Known: threaded, threaded-pool,
    /// tokio-multi, tokio-current, mio, mio-2loops, python-threaded, python-asyncio.
    #[arg(long, value_delimiter = ',')]
    pub servers: Vec<String>,
    /// Measured runs per server and iteration count; the report shows median and range.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Output directory (default: benches-results/<date>-<label>).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label of the output directory (default: compare-<N> or sweep-<N1>-<N2>...).
    #[arg(long)]
    pub label: Option<String>,
    /// Another server speaking the protocol: NAME=COMMAND, with `{port}` (and optionally
    /// `{delay}` or `{delay_ms}`) in COMMAND. Repeatable.
    #[arg(long = "external", value_name = "NAME=COMMAND")]
    pub externals: Vec<String>,
    /// Listen backlog given to every server, the Python baselines included (their own
    /// defaults, 5 and 100, make the kernel drop SYNs under a burst).
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,
    /// Worker threads of the threaded-pool variant.
    #[arg(long, default_value_t = 256)]
    pub pool_size: u32,
    /// loadgen's connect and reply timeout.
    #[arg(long, default_value = "60s")]
    pub timeout: humantime::Duration,
    /// Skip the unmeasured warm-up round.
    #[arg(long)]
    pub no_warmup: bool,
    /// Skip the zero-delay runs (the report then cannot show the floor's second term).
    #[arg(long)]
    pub no_zero_delay: bool,
    /// Use the release binaries already built instead of running cargo build.
    #[arg(long)]
    pub no_build: bool,
}

/// Everything a run needs besides its step.
struct Study {
    variants: Vec<Variant>,
    settings: Settings,
    delay: String,
    load: LoadSpec,
    runs_dir: PathBuf,
}

/// One run to make.
#[derive(Debug, Clone, Copy)]
struct Step {
    variant: usize,
    iterations: u64,
    kind: RunKind,
    index: u32,
}

/// Runs the comparison and writes its results.
///
/// # Errors
/// On bad options, a failed build, or results that cannot be written; and, after writing
/// everything, when any row had failed runs (so scripts notice).
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    validate(&args)?;
    let delay_model: echo_core::DelayModel = args
        .delay
        .parse()
        .with_context(|| format!("--delay `{}`", args.delay))?;
    let mut settings = settings(&args, &root);
    let environment = env::capture(&root);
    let (selected, skipped) = select(&args, &settings, environment.python.is_some())?;
    if !args.no_build {
        build(&root, &selected)?;
    }
    settings.bin_dir = release_dir(&root)?;
    let out = output_dir(&args, &root, &environment)?;
    let ctx = context(&args, settings, selected, &out)?;
    let records = execute(&ctx, &steps(&args, &ctx.variants))?;
    let params = params(&args, delay_model.mean());
    let summary = summarize(&ctx, environment, params, skipped, &records, &args);
    crate::report::write_all(&out, &summary)?;
    println!("{}", crate::render::headline(&summary));
    eprintln!("results: {}", out.join("README.md").display());
    let failed = summary.rows.iter().filter(|r| r.runs_failed > 0).count();
    if failed > 0 {
        bail!(
            "{failed} rows had failed runs; see {}",
            out.join("README.md").display()
        );
    }
    Ok(())
}

fn validate(args: &CompareArgs) -> anyhow::Result<()> {
    if args.iterations.is_empty() || args.iterations.contains(&0) {
        bail!(
            "--iterations needs positive counts, got {:?}",
            args.iterations
        );
    }
    if args.repeat == 0 || args.requests_per_conn == 0 || args.concurrency == Some(0) {
        bail!("--repeat, --requests-per-conn and --concurrency must be positive");
    }
    if !["wait", "block", "spin"].contains(&args.delay_kind.as_str()) {
        bail!(
            "--delay-kind `{}`: want wait, block or spin",
            args.delay_kind
        );
    }
    Ok(())
}

/// The variants asked for, and those that cannot run here with the reason.
fn select(
    args: &CompareArgs,
    settings: &Settings,
    has_python: bool,
) -> anyhow::Result<(Vec<Variant>, Vec<Skipped>)> {
    let names: Vec<String> = if args.servers.is_empty() {
        variants::BUILTIN.iter().map(|s| (*s).to_owned()).collect()
    } else {
        args.servers.clone()
    };
    let mut selected = Vec::new();
    let mut skipped = Vec::new();
    for name in &names {
        let variant = variants::builtin(name.trim(), settings)?;
        match python_blocker(&variant, args, has_python) {
            Some(reason) => skipped.push(Skipped {
                server: variant.name,
                reason,
            }),
            None => selected.push(variant),
        }
    }
    for spec in &args.externals {
        selected.push(variants::external(spec)?);
    }
    Ok((selected, skipped))
}

/// Why a Python baseline cannot run with these options, if it cannot.
fn python_blocker(variant: &Variant, args: &CompareArgs, has_python: bool) -> Option<String> {
    if variant.model != Model::PythonBaseline {
        return None;
    }
    if !has_python {
        return Some("python3 is not on PATH, so the article's baselines could not run".to_owned());
    }
    if args.delay_kind != "wait" {
        return Some(format!(
            "the baselines only implement --delay-kind wait, not {}",
            args.delay_kind
        ));
    }
    if args.delay.contains(':') {
        return Some(format!(
            "the baselines only take a fixed delay, not `{}`",
            args.delay
        ));
    }
    None
}

/// `cargo build --release` of the packages the selected variants need, plus loadgen.
fn build(root: &Path, selected: &[Variant]) -> anyhow::Result<()> {
    let mut packages: Vec<&str> = selected.iter().filter_map(Variant::package).collect();
    packages.push("loadgen");
    packages.sort_unstable();
    packages.dedup();
    let mut command = Command::new(cargo());
    command.current_dir(root).args(["build", "--release"]);
    for package in &packages {
        command.args(["-p", package]);
    }
    eprintln!(
        "building: cargo build --release -p {}",
        packages.join(" -p ")
    );
    let status = command.status().context("cannot run cargo build")?;
    if !status.success() {
        bail!(
            "cargo build --release -p {} failed with {status}",
            packages.join(" -p ")
        );
    }
    Ok(())
}

fn cargo() -> String {
    std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned())
}

/// `<target dir>/release`, asking cargo where the target directory is (it honours
/// CARGO_TARGET_DIR and .cargo/config.toml).
fn release_dir(root: &Path) -> anyhow::Result<PathBuf> {
    let out = Command::new(cargo())
        .current_dir(root)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .output()
        .context("cannot run cargo metadata")?;
    if !out.status.success() {
        bail!(
            "cargo metadata failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let meta: serde_json::Value =
        serde_json::from_slice(&out.stdout).context("cargo metadata output")?;
    let target = meta["target_directory"]
        .as_str()
        .context("cargo metadata has no target_directory")?;
    Ok(Path::new(target).join("release"))
}

/// `--out`, or `benches-results/<date>-<label>`; stale run records in it are removed.
fn output_dir(args: &CompareArgs, root: &Path, env: &Environment) -> anyhow::Result<PathBuf> {
    let out = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let date = env.date_utc.get(..10).unwrap_or("undated");
            root.join("benches-results")
                .join(format!("{date}-{}", label(args)))
        }
    };
    let runs = out.join("runs");
    if runs.is_dir() {
        for entry in fs::read_dir(&runs).with_context(|| format!("reading {}", runs.display()))? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "json") {
                fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
            }
        }
    }
    fs::create_dir_all(&runs).with_context(|| format!("creating {}", runs.display()))?;
    Ok(out)
}

fn label(args: &CompareArgs) -> String {
    if let Some(label) = &args.label {
        return label.clone();
    }
    let counts: Vec<String> = args.iterations.iter().map(u64::to_string).collect();
    match counts.as_slice() {
        [one] => format!("compare-{one}"),
        many => format!("sweep-{}", many.join("-")),
    }
}

/// What every variant is started with; `bin_dir` is filled in once cargo says where.
fn settings(args: &CompareArgs, root: &Path) -> Settings {
    Settings {
        root: root.to_path_buf(),
        bin_dir: PathBuf::new(),
        delay_kind: args.delay_kind.clone(),
        backlog: args.backlog,
        pool_size: args.pool_size,
        workers: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
    }
}

fn context(
    args: &CompareArgs,
    settings: Settings,
    variants: Vec<Variant>,
    out: &Path,
) -> anyhow::Result<Study> {
    let loadgen = settings.bin_dir.join("loadgen");
    if !loadgen.is_file() {
        bail!(
            "no loadgen binary at {} (build it, or drop --no-build)",
            loadgen.display()
        );
    }
    Ok(Study {
        variants,
        settings,
        delay: args.delay.clone(),
        load: LoadSpec {
            program: loadgen,
            iterations: 0,
            concurrency: args.concurrency,
            requests_per_conn: args.requests_per_conn,
            timeout: *args.timeout,
        },
        runs_dir: out.join("runs"),
    })
}

/// The runs to make, in order: per iteration count, a warm-up round, then rounds of a
/// measured and a zero-delay run per server.
fn steps(args: &CompareArgs, variants: &[Variant]) -> Vec<Step> {
    let mut steps = Vec::new();
    let round = |steps: &mut Vec<Step>, iterations, kind, index| {
        for (i, v) in variants.iter().enumerate() {
            if kind != RunKind::ZeroDelay || v.controls_delay() {
                steps.push(Step {
                    variant: i,
                    iterations,
                    kind,
                    index,
                });
            }
        }
    };
    for &n in &args.iterations {
        if !args.no_warmup {
            round(&mut steps, n, RunKind::Warmup, 1);
        }
        for index in 1..=args.repeat {
            round(&mut steps, n, RunKind::Measured, index);
            if !args.no_zero_delay {
                round(&mut steps, n, RunKind::ZeroDelay, index);
            }
        }
    }
    steps
}

/// Makes every run, printing a progress line per run and saving each record.
fn execute(ctx: &Study, steps: &[Step]) -> anyhow::Result<Vec<RunRecord>> {
    let mut records = Vec::with_capacity(steps.len());
    for (i, step) in steps.iter().enumerate() {
        let variant = &ctx.variants[step.variant];
        let kind = kind_name(step.kind);
        eprint!(
            "[{}/{}] {} n={} {kind} {}: ",
            i + 1,
            steps.len(),
            variant.name,
            step.iterations,
            step.index
        );
        let name = format!("{}-{}-{kind}-{}", variant.name, step.iterations, step.index);
        let record = run_step(
            ctx,
            variant,
            step,
            &ctx.runs_dir.join(format!("{name}.loadgen.json")),
        );
        eprintln!("{}", outcome_line(&record));
        let path = ctx.runs_dir.join(format!("{name}.json"));
        crate::report::write_json(&path, &record)?;
        records.push(record);
    }
    Ok(records)
}

fn kind_name(kind: RunKind) -> &'static str {
    match kind {
        RunKind::Warmup => "warmup",
        RunKind::Measured => "run",
        RunKind::ZeroDelay => "zero-delay",
    }
}

fn outcome_line(record: &RunRecord) -> String {
    let wall = record
        .load
        .as_ref()
        .map_or_else(|| "-".to_owned(), |l| format!("{:.3} s", l.wall_seconds));
    match &record.failure {
        None => format!("{wall} ok"),
        Some(reason) => format!("{wall} FAILED: {reason}"),
    }
}

/// One run: a fresh server, loadgen against it, /proc samples, SIGTERM, the record.
fn run_step(ctx: &Study, variant: &Variant, step: &Step, json: &Path) -> RunRecord {
    let delay = if step.kind == RunKind::ZeroDelay {
        "0"
    } else {
        ctx.delay.as_str()
    };
    let mut record = empty_record(variant, step);
    let launch = match variant.launch(&ctx.settings, delay) {
        Ok(launch) => launch,
        Err(e) => return failed(record, format!("{e:#}")),
    };
    record.server_command = launch.command_line();
    let before = ListenCounters::read().unwrap_or_default();
    let server = match server::start(&launch, START_TIMEOUT) {
        Ok(server) => server,
        Err(e) => return failed(record, format!("{e:#}")),
    };
    let sampler = Sampler::start(server.pid());
    let spec = LoadSpec {
        iterations: step.iterations,
        ..ctx.load.clone()
    };
    let outcome = load::run(&spec, server.addr(), json);
    let peaks = sampler.stop();
    let tail = server.stderr_tail_text();
    let stopped = server.stop(STOP_TIMEOUT);
    let delta = ListenCounters::read().unwrap_or_default().since(before);
    let _ = fs::remove_file(json);
    record.loadgen_command = outcome.command;
    record.client_cpu_seconds = outcome.client_cpu_seconds;
    record.load = outcome.report.as_ref().map(load::figures);
    record.loadgen_report = outcome
        .report
        .as_ref()
        .and_then(|r| serde_json::to_value(r).ok());
    (record.listen_overflows, record.listen_drops) = (delta.overflows, delta.drops);
    record.failure = outcome.failure;
    match stopped {
        Ok((exit, usage)) => {
            record.process = Some(procstat::figures(peaks, usage));
            if !exit.clean && record.failure.is_none() {
                record.failure = Some(unclean_exit(&variant.name, &exit, &tail));
            }
            record.exit = Some(exit);
        }
        Err(e) => record.failure = Some(format!("{e:#}")),
    }
    record
}

fn empty_record(variant: &Variant, step: &Step) -> RunRecord {
    RunRecord {
        server: variant.name.clone(),
        iterations: step.iterations,
        kind: step.kind,
        index: step.index,
        server_command: String::new(),
        loadgen_command: String::new(),
        failure: None,
        load: None,
        client_cpu_seconds: None,
        process: None,
        listen_overflows: 0,
        listen_drops: 0,
        exit: None,
        loadgen_report: None,
    }
}

fn failed(mut record: RunRecord, reason: String) -> RunRecord {
    eprintln!("\n{reason}");
    record.failure = Some(reason);
    record
}

fn unclean_exit(name: &str, exit: &crate::results::ExitRecord, tail: &str) -> String {
    let how = match (exit.code, exit.signal) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => "ended in an unknown way".to_owned(),
    };
    let last = exit.last_stderr_line.as_deref().unwrap_or("(none)");
    format!(
        "server {name} {how} after SIGTERM ({:.1} s); last stderr line: {last}; before SIGTERM {tail}",
        exit.stop_seconds
    )
}

fn params(args: &CompareArgs, delay_mean: Duration) -> Params {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    Params {
        iterations: args.iterations.clone(),
        delay: args.delay.clone(),
        delay_mean_ms: delay_mean.as_secs_f64() * 1000.0,
        delay_kind: args.delay_kind.clone(),
        concurrency: args.concurrency,
        requests_per_conn: args.requests_per_conn,
        repeat: args.repeat,
        warmup: !args.no_warmup,
        zero_delay: !args.no_zero_delay,
        backlog: args.backlog,
        pool_size: args.pool_size,
        timeout_ms: u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX),
        command: format!("cargo xtask {}", argv.join(" ")),
    }
}

fn summarize(
    ctx: &Study,
    env: Environment,
    params: Params,
    skipped: Vec<Skipped>,
    records: &[RunRecord],
    args: &CompareArgs,
) -> Summary {
    let mut rows = Vec::new();
    for &n in &args.iterations {
        for variant in &ctx.variants {
            let mine: Vec<RunRecord> = records
                .iter()
                .filter(|r| r.server == variant.name && r.iterations == n)
                .cloned()
                .collect();
            let command = mine
                .iter()
                .find(|r| r.kind == RunKind::Measured && !r.server_command.is_empty())
                .map_or_else(String::new, |r| r.server_command.clone());
            let key = RowKey {
                server: &variant.name,
                model: variant.model,
                command: shorten_command(&command, &ctx.settings),
                iterations: n,
                concurrent_connections: args.concurrency.map_or(n, |c| c.min(n)),
            };
            rows.push(aggregate::row(key, &mine));
        }
    }
    Summary {
        schema_version: SCHEMA_VERSION,
        label: label(args),
        env,
        params,
        rows,
        skipped,
    }
}

/// Drops the machine-specific directories from a command line, so reports read the same
/// on every machine.
fn shorten_command(command: &str, settings: &Settings) -> String {
    let bin = format!("{}/", settings.bin_dir.display());
    let root = format!("{}/", settings.root.display());
    command.replace(&bin, "").replace(&root, "")
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        compare: CompareArgs,
    }

    fn args(line: &[&str]) -> CompareArgs {
        let argv = std::iter::once("compare").chain(line.iter().copied());
        Cli::try_parse_from(argv).expect("valid flags").compare
    }

    fn variants(names: &[&str]) -> Vec<Variant> {
        let settings = settings(&args(&[]), Path::new("/repo"));
        names
            .iter()
            .map(|n| variants::builtin(n, &settings).expect("known"))
            .collect()
    }

    #[test]
    fn the_defaults_are_the_articles_experiment_repeated_three_times() {
        let a = args(&[]);
        assert_eq!(
            (a.iterations.as_slice(), a.delay.as_str(), a.repeat),
            (&[10000][..], "100ms", 3)
        );
        assert_eq!(label(&a), "compare-10000");
        assert_eq!(
            label(&args(&["--iterations", "1000,50000"])),
            "sweep-1000-50000"
        );
    }

    #[test]
    fn rounds_interleave_servers_after_one_warmup_round() {
        let steps = steps(&args(&["--repeat", "2"]), &variants(&["mio", "threaded"]));
        let plan: Vec<(usize, RunKind, u32)> =
            steps.iter().map(|s| (s.variant, s.kind, s.index)).collect();
        use RunKind::*;
        assert_eq!(
            plan,
            [
                (0, Warmup, 1),
                (1, Warmup, 1),
                (0, Measured, 1),
                (1, Measured, 1),
                (0, ZeroDelay, 1),
                (1, ZeroDelay, 1),
                (0, Measured, 2),
                (1, Measured, 2),
                (0, ZeroDelay, 2),
                (1, ZeroDelay, 2),
            ]
        );
    }

    #[test]
    fn without_python_the_baselines_are_skipped_with_the_reason() {
        let a = args(&["--servers", "mio,python-asyncio"]);
        let settings = settings(&a, Path::new("/repo"));
        let (selected, skipped) = select(&a, &settings, false).expect("known names");
        assert_eq!(selected.len(), 1);
        assert_eq!(skipped[0].server, "python-asyncio");
        assert!(
            skipped[0].reason.contains("python3 is not on PATH"),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn nonsense_options_are_refused_before_anything_runs() {
        assert!(validate(&args(&["--iterations", "0"])).is_err());
        assert!(validate(&args(&["--delay-kind", "nap"])).is_err());
        assert!(validate(&args(&["--concurrency", "0"])).is_err());
        assert!(validate(&args(&[])).is_ok());
    }
}
