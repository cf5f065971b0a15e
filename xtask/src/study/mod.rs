//! The studies, one question each: [`compare`] (the article's experiment on every variant),
//! [`capacity`] (the max sustainable rate at an SLO, and the cost of a request),
//! [`scenarios`] (each model when the wait is honest, blocking, mixed or CPU-bound) and
//! [`soak`] (correctness and leaks under a steady load with hostile clients mixed in).
//!
//! What every study needs lives here, so that the next one (scenarios, soak) is its own plan
//! of runs and nothing more: building the binaries, finding them, the output directory, the
//! selection of variants ([`Wanted`]), and [`Bench::run`], one measured run of one variant (a fresh server, loadgen in
//! its own process, /proc samples, SIGTERM, the record). A study decides what to run;
//! [`crate::run`] runs it; [`crate::export`] writes what came out.

pub mod capacity;
pub mod compare;
#[cfg(test)]
pub(crate) mod fake;
pub mod scenarios;
pub mod soak;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use echo_core::{DelayModel, Recipe};

use crate::catalogue::{self, Settings, Variant};
use crate::results::{ExitRecord, RunKind, RunRecord, Skipped};
use crate::run::env::ListenCounters;
use crate::run::load::{self, LoadSpec};
use crate::run::procstat::{self, Sampler};
use crate::run::server::{self, ServerProcess};

/// The flags every study gives its servers, and whether to build them first: one struct
/// flattened into each study's arguments, so that `--backlog 128` means the same in all four.
#[derive(Debug, Clone, clap::Args)]
pub struct ServerFlags {
    /// Listen backlog given to every server, the Python baselines included (their own
    /// defaults, 5 and 100, make the kernel drop SYNs under a burst).
    #[arg(long, default_value_t = 4096)]
    pub backlog: u32,
    /// Worker threads of the threaded-pool variant.
    #[arg(long, default_value_t = 256)]
    pub pool_size: u32,
    /// Use the release binaries already built instead of running cargo build.
    #[arg(long)]
    pub no_build: bool,
}

impl ServerFlags {
    /// How every variant is started: with these flags, `delay_kind` and `workers` for
    /// tokio-multi, from `root` and the binaries in `bin_dir` (empty until cargo says where).
    pub fn settings(
        &self,
        root: &Path,
        bin_dir: PathBuf,
        delay_kind: echo_core::DelayKind,
        workers: u32,
    ) -> Settings {
        Settings {
            root: root.to_path_buf(),
            bin_dir,
            delay_kind,
            backlog: self.backlog,
            pool_size: self.pool_size,
            workers,
        }
    }
}

/// The end of a study: its headline on stdout (for a script), and where its report is on
/// stderr (for the person who ran it).
pub fn announce(out: &Path, headline: &str) {
    println!("{headline}");
    eprintln!(
        "results: {}",
        out.join(crate::export::README_FILE).display()
    );
}

/// How long a server may take to print its listening line.
pub const START_TIMEOUT: Duration = Duration::from_secs(15);
/// How long a server may take to exit after SIGTERM (its own shutdown timeout is 5 s).
pub const STOP_TIMEOUT: Duration = Duration::from_secs(15);

/// Everything a run needs besides what it is: the variants, how they are started, the load
/// and where records go.
#[derive(Debug, Clone)]
pub struct Bench {
    /// The variants of this study, indexed by [`Step::variant`].
    pub variants: Vec<Variant>,
    /// What every variant is started with.
    pub settings: Settings,
    /// The delay of measured runs, a recipe of one phase or several (zero-delay runs get
    /// zero).
    pub delay: Recipe,
    /// The load of every run, but for its connection count.
    pub load: LoadSpec,
    /// Where each run's record is written.
    pub runs_dir: PathBuf,
}

/// One run to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Step {
    /// Index into [`Bench::variants`].
    pub variant: usize,
    /// Connections of this run.
    pub iterations: u64,
    /// What the run is for.
    pub kind: RunKind,
    /// 1-based number among the runs of the same variant, count and kind.
    pub index: u32,
}

impl Bench {
    /// Makes every step in order, printing a progress line per run and saving each record
    /// under [`Bench::runs_dir`]. Once a variant's server has said it cannot run here (see
    /// [`RunRecord::skipped`]), its later steps are not tried.
    ///
    /// # Errors
    /// When a record cannot be written; a failed run is a record, not an error.
    pub fn execute(&self, steps: &[Step]) -> anyhow::Result<Vec<RunRecord>> {
        let mut records: Vec<RunRecord> = Vec::with_capacity(steps.len());
        for (i, step) in steps.iter().enumerate() {
            let variant = &self.variants[step.variant];
            let skipped = |r: &RunRecord| r.server == variant.name && r.skipped.is_some();
            if records.iter().any(skipped) {
                continue;
            }
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
            let json = self.runs_dir.join(format!("{name}.loadgen.json"));
            let record = self.run(step, &json);
            eprintln!("{}", outcome_line(&record));
            let path = self.runs_dir.join(format!("{name}.json"));
            crate::report::write_json(&path, &record)?;
            records.push(record);
        }
        Ok(records)
    }

    /// One run: a fresh server, loadgen against it (its report in `json`, removed after),
    /// /proc samples, SIGTERM, the record. Commands are recorded as typed from the
    /// repository root.
    pub fn run(&self, step: &Step, json: &Path) -> RunRecord {
        let variant = &self.variants[step.variant];
        let delay = if step.kind == RunKind::ZeroDelay {
            Recipe::from(DelayModel::Fixed(Duration::ZERO))
        } else {
            self.delay.clone()
        };
        let mut record = empty_record(variant, step);
        let launch = match variant.launch(&self.settings, &delay) {
            Ok(launch) => launch,
            Err(e) => return failed(record, format!("{e:#}")),
        };
        record.server_command = self.settings.for_the_record(&launch.command_line());
        let before = ListenCounters::read().unwrap_or_default();
        let server = match ServerProcess::start(&launch, START_TIMEOUT) {
            Ok(server) => server,
            Err(e) => match e.skipped() {
                Some(reason) => {
                    record.failure = Some(format!("skipped: {reason}"));
                    record.skipped = Some(reason.to_owned());
                    return record;
                }
                None => return failed(record, e.to_string()),
            },
        };
        let sampler = Sampler::start(server.pid());
        let spec = LoadSpec {
            iterations: step.iterations,
            ..self.load.clone()
        };
        let outcome = load::run(&spec, server.addr(), json);
        let peaks = sampler.stop();
        let tail = server.stderr_tail_text();
        let stopped = server.stop(STOP_TIMEOUT);
        let delta = ListenCounters::read().unwrap_or_default().since(before);
        let _ = fs::remove_file(json);
        record.loadgen_command = self.settings.for_the_record(&outcome.command);
        record.client_cpu_seconds = outcome.client_cpu_seconds;
        record.load = outcome.report.as_ref().map(load::figures);
        record.loadgen_report = outcome
            .report
            .as_ref()
            .and_then(|r| serde_json::to_value(r).ok());
        (record.listen_overflows, record.listen_drops) = (delta.overflows, delta.drops);
        record.failure = outcome.failure;
        match stopped {
            Ok(exit) => {
                record.process = Some(procstat::figures(peaks, Some(exit.usage)));
                let exit = server::exit_record(&exit);
                if !exit.clean && record.failure.is_none() {
                    record.failure = Some(unclean_exit(&variant.name, &exit, &tail));
                }
                record.exit = Some(exit);
            }
            Err(e) => record.failure = Some(e.to_string()),
        }
        record
    }
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
    if let Some(reason) = &record.skipped {
        return format!("skipped: {reason}");
    }
    match &record.failure {
        None => format!("{wall} ok"),
        Some(reason) => format!("{wall} FAILED: {reason}"),
    }
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
        skipped: None,
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

fn unclean_exit(name: &str, exit: &ExitRecord, tail: &str) -> String {
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

/// The servers a study was asked for: `--servers` (every default catalogue row when empty)
/// and `--external`. Which of them can run does not depend on the delay: every server, the
/// Python baselines included, takes any recipe.
#[derive(Debug, Clone, Copy)]
pub struct Wanted<'a> {
    /// Catalogue names; empty for every row run by default.
    pub servers: &'a [String],
    /// `NAME=COMMAND` specs.
    pub externals: &'a [String],
}

impl Wanted<'_> {
    /// The variants to run, and those that cannot run here with the reason.
    ///
    /// # Errors
    /// When a name is not in the catalogue or an external spec is malformed.
    pub fn select(&self, has_python: bool) -> anyhow::Result<(Vec<Variant>, Vec<Skipped>)> {
        let names: Vec<&str> = if self.servers.is_empty() {
            catalogue::default_names().collect()
        } else {
            self.servers.iter().map(|s| s.trim()).collect()
        };
        let mut selected = Vec::new();
        let mut skipped = Vec::new();
        for name in names {
            let variant = catalogue::builtin(name)?;
            match Self::baseline_blocker(&variant, has_python) {
                Some(reason) => skipped.push(Skipped {
                    server: variant.name,
                    reason,
                }),
                None => selected.push(variant),
            }
        }
        for spec in self.externals {
            selected.push(catalogue::external(spec)?);
        }
        Ok((selected, skipped))
    }

    /// Why a Python baseline cannot run on this machine, if it cannot: no python3, or no
    /// module it needs beyond the standard library.
    fn baseline_blocker(variant: &Variant, has_python: bool) -> Option<String> {
        if !variant.is_baseline() {
            return None;
        }
        if !has_python {
            return Some(
                "python3 is not on PATH, so the article's baselines could not run".to_owned(),
            );
        }
        if let Some(module) = variant.python_module() {
            if !python_imports(module) {
                return Some(format!(
                    "python3 cannot import {module} (pip install {module})"
                ));
            }
        }
        None
    }
}

/// Whether `python3 -c "import MODULE"` succeeds.
fn python_imports(module: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {module}")])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// A study's options parsed from `line` (the words after the subcommand), for tests.
#[cfg(test)]
pub(crate) fn parse_args<A: clap::Args>(line: &[&str]) -> A {
    try_parse_args(line).expect("valid flags")
}

/// As [`parse_args`], or clap's message when the flags are refused.
#[cfg(test)]
pub(crate) fn try_parse_args<A: clap::Args>(line: &[&str]) -> Result<A, String> {
    use clap::Parser;

    #[derive(Parser)]
    struct Cli<A: clap::Args> {
        #[command(flatten)]
        args: A,
    }
    let argv = std::iter::once("study").chain(line.iter().copied());
    Cli::<A>::try_parse_from(argv)
        .map(|cli| cli.args)
        .map_err(|e| e.to_string())
}

/// Builds what `variants` need (unless `no_build`), and finds the release directory and
/// loadgen in it: `(release dir, loadgen)`.
///
/// # Errors
/// When the build fails, cargo cannot say where the target directory is, or there is no
/// loadgen binary.
pub fn binaries(
    root: &Path,
    variants: &[Variant],
    no_build: bool,
) -> anyhow::Result<(PathBuf, PathBuf)> {
    if !no_build {
        build(root, variants)?;
    }
    let bin_dir = release_dir(root)?;
    let loadgen = bin_dir.join("loadgen");
    if !loadgen.is_file() {
        bail!(
            "no loadgen binary at {} (build it, or drop --no-build)",
            loadgen.display()
        );
    }
    Ok((bin_dir, loadgen))
}

/// `cargo build --release` of the packages `variants` need, plus loadgen.
///
/// # Errors
/// When cargo cannot run or the build fails.
pub fn build(root: &Path, variants: &[Variant]) -> anyhow::Result<()> {
    let mut packages: Vec<&str> = variants.iter().filter_map(Variant::package).collect();
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
///
/// # Errors
/// When cargo metadata cannot run or says nothing about the target directory.
pub fn release_dir(root: &Path) -> anyhow::Result<PathBuf> {
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

/// `out`, or `benches-results/<date>-<label>` under `root`, with an empty `runs/` in it:
/// stale run records there are removed.
///
/// # Errors
/// When the directory cannot be listed, cleaned or created.
pub fn output_dir(
    out: Option<&Path>,
    root: &Path,
    date_utc: &str,
    label: &str,
) -> anyhow::Result<PathBuf> {
    let out = match out {
        Some(dir) => dir.to_path_buf(),
        None => {
            let date = date_utc.get(..10).unwrap_or("undated");
            root.join("benches-results").join(format!("{date}-{label}"))
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
