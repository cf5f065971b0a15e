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

use std::path::{Path, PathBuf};

use anyhow::bail;
use clap::builder::PossibleValuesParser;
use echo_core::{DelayKind, Recipe};

use crate::aggregate::{self, RowKey};
use crate::catalogue::{self, Settings, Variant};
use crate::results::{Environment, Params, RunKind, RunRecord, SCHEMA_VERSION, Skipped, Summary};
use crate::run::env;
use crate::run::load::LoadSpec;
use crate::study::{self, Bench, Step};

/// Options of `cargo xtask compare`.
#[derive(Debug, Clone, clap::Args)]
pub struct CompareArgs {
    /// Connections per run (the article's "iterations"); a comma-separated list makes a sweep.
    #[arg(long, value_delimiter = ',', default_value = "10000")]
    pub iterations: Vec<u64>,
    /// Simulated work per request, any recipe the servers accept: `100ms`, `fixed:100ms`,
    /// `uniform:50ms..150ms`, `exp:100ms`, or phases `KIND:DURATION` joined by `+`
    /// (`spin:2ms+wait:100ms`).
    #[arg(long, default_value = "100ms")]
    pub delay: Recipe,
    /// How servers spend a phase that names no kind: wait, block or spin.
    #[arg(long, default_value = "wait")]
    pub delay_kind: DelayKind,
    /// Connections open at once (default: all of them, as in the article). Must fit the
    /// open-file limit of both loadgen and the server.
    #[arg(long)]
    pub concurrency: Option<u64>,
    /// Sequential requests on each connection.
    #[arg(long, default_value_t = 1)]
    pub requests_per_conn: u64,
    /// Variants to run, comma-separated (default: every one but the `-offload` rows, which
    /// differ only where a delay blocks; in this order).
    #[arg(long, value_delimiter = ',', value_parser = PossibleValuesParser::new(catalogue::names()))]
    pub servers: Vec<String>,
    /// Measured runs per server and iteration count; the report shows median and range.
    #[arg(long, default_value_t = 3)]
    pub repeat: u32,
    /// Output directory (default: `benches-results/<date>-<label>`).
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Label of the output directory (default: `compare-<N>` or `sweep-<N1>-<N2>...`).
    #[arg(long)]
    pub label: Option<String>,
    /// Another server speaking the protocol: NAME=COMMAND, with `{port}` (and optionally
    /// `{delay}` or `{delay_ms}`) in COMMAND. Repeatable.
    #[arg(long = "external", value_name = "NAME=COMMAND")]
    pub externals: Vec<String>,
    #[command(flatten)]
    pub server_flags: study::ServerFlags,
    /// loadgen's connect and reply timeout.
    #[arg(long, default_value = "60s")]
    pub timeout: humantime::Duration,
    /// Skip the unmeasured warm-up round.
    #[arg(long)]
    pub no_warmup: bool,
    /// Skip the zero-delay runs (the report then cannot show the floor's second term).
    #[arg(long)]
    pub no_zero_delay: bool,
}

/// Runs the comparison and writes its results.
///
/// # Errors
/// On bad options, a failed build, or results that cannot be written; and, after writing
/// everything, when any row had failed runs (so scripts notice).
pub fn run(args: CompareArgs) -> anyhow::Result<()> {
    let root = crate::workspace_root();
    validate(&args)?;
    let mut settings = settings(&args, &root);
    let environment = env::capture(&root);
    let (selected, skipped) = select(&args, environment.python.is_some())?;
    if !args.server_flags.no_build {
        study::build(&root, &selected)?;
    }
    settings.bin_dir = study::release_dir(&root)?;
    let out = study::output_dir(
        args.out.as_deref(),
        &root,
        &environment.date_utc,
        &label(&args),
    )?;
    let bench = bench(&args, settings, selected, &out)?;
    let records = bench.execute(&steps(&args, &bench.variants))?;
    let summary = summarize(&bench, environment, params(&args), skipped, &records, &args);
    crate::report::write_all(&out, &summary)?;
    study::announce(&out, &crate::export::markdown::headline(&summary));
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
        bail!(
            "--repeat, --requests-per-conn and --concurrency must be positive, got {}, {} and {:?}",
            args.repeat,
            args.requests_per_conn,
            args.concurrency
        );
    }
    Ok(())
}

/// The variants asked for, and those that cannot run here with the reason.
fn select(args: &CompareArgs, has_python: bool) -> anyhow::Result<(Vec<Variant>, Vec<Skipped>)> {
    let wanted = study::Wanted {
        servers: &args.servers,
        externals: &args.externals,
    };
    wanted.select(has_python)
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
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get() as u32);
    args.server_flags
        .settings(root, PathBuf::new(), args.delay_kind, workers)
}

fn bench(
    args: &CompareArgs,
    settings: Settings,
    variants: Vec<Variant>,
    out: &Path,
) -> anyhow::Result<Bench> {
    let loadgen = settings.bin_dir.join("loadgen");
    if !loadgen.is_file() {
        bail!(
            "no loadgen binary at {} (build it, or drop --no-build)",
            loadgen.display()
        );
    }
    Ok(Bench {
        variants,
        settings,
        delay: args.delay.clone(),
        load: LoadSpec {
            program: loadgen,
            iterations: 0,
            concurrency: args.concurrency,
            requests_per_conn: args.requests_per_conn,
            timeout: *args.timeout,
            timed: None,
            cpus: None,
            request_log: None,
            fifo_priority: None,
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

fn params(args: &CompareArgs) -> Params {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    Params {
        iterations: args.iterations.clone(),
        delay: args.delay.clone(),
        delay_kind: args.delay_kind,
        concurrency: args.concurrency,
        requests_per_conn: args.requests_per_conn,
        repeat: args.repeat,
        warmup: !args.no_warmup,
        zero_delay: !args.no_zero_delay,
        backlog: args.server_flags.backlog,
        pool_size: args.server_flags.pool_size,
        timeout_ms: u64::try_from(args.timeout.as_millis()).unwrap_or(u64::MAX),
        command: format!("cargo xtask {}", argv.join(" ")),
    }
}

fn summarize(
    bench: &Bench,
    env: Environment,
    params: Params,
    skipped: Vec<Skipped>,
    records: &[RunRecord],
    args: &CompareArgs,
) -> Summary {
    let mut rows = Vec::new();
    let mut skipped = skipped;
    for variant in &bench.variants {
        let said = records
            .iter()
            .find(|r| r.server == variant.name && r.skipped.is_some());
        if let Some(reason) = said.and_then(|r| r.skipped.clone()) {
            skipped.push(Skipped {
                server: variant.name.clone(),
                reason,
            });
        }
    }
    for &n in &args.iterations {
        for variant in &bench.variants {
            if skipped.iter().any(|s| s.server == variant.name) {
                continue;
            }
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
                model: variant.model.clone(),
                command,
                iterations: n,
                concurrent_connections: args.concurrency.map_or(n, |c| c.min(n)),
            };
            rows.push(aggregate::row(key, &mine));
        }
    }
    Summary {
        kind: Some(crate::results::Kind::Compare),
        schema_version: SCHEMA_VERSION,
        label: label(args),
        env,
        params,
        rows,
        skipped,
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use clap::Parser;
    use echo_core::DelayModel;

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
        names
            .iter()
            .map(|n| catalogue::builtin(n).expect("known"))
            .collect()
    }

    #[test]
    fn the_defaults_are_the_articles_experiment_repeated_three_times() {
        let a = args(&[]);
        assert_eq!(
            (
                a.iterations.as_slice(),
                a.delay.to_string().as_str(),
                a.repeat
            ),
            (&[10000][..], "100ms", 3)
        );
        assert_eq!(a.delay_kind, DelayKind::Wait);
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
        let (selected, skipped) = select(&a, false).expect("known names");
        assert_eq!(selected.len(), 1);
        assert_eq!(skipped[0].server, "python-asyncio");
        assert!(
            skipped[0].reason.contains("python3 is not on PATH"),
            "{}",
            skipped[0].reason
        );
    }

    #[test]
    fn a_baseline_runs_at_every_recipe_the_servers_take() {
        for (delay, given) in [
            ("fixed:100ms", "100ms"),
            ("exp:100ms", "exp:100ms"),
            ("uniform:50ms..150ms", "uniform:50ms..150ms"),
            ("spin:2ms+wait:100ms", "spin:2ms+wait:100ms"),
        ] {
            let a = args(&["--servers", "python-asyncio", "--delay", delay]);
            let (selected, skipped) = select(&a, true).expect("known names");
            assert_eq!(
                (selected.len(), skipped.len()),
                (1, 0),
                "{delay}: {skipped:?}"
            );
            let launch = selected[0]
                .launch(&settings(&a, Path::new("/repo")), &a.delay)
                .expect("launches");
            assert!(
                launch.command_line().contains(&format!("--delay {given} ")),
                "{delay}: {}",
                launch.command_line()
            );
        }
    }

    fn environment() -> Environment {
        Environment {
            cpu_model: "test cpu".to_owned(),
            cores: 2,
            memory_bytes: 1 << 34,
            kernel: "6.18".to_owned(),
            rustc: "rustc".to_owned(),
            python: None,
            git_commit: "abc".to_owned(),
            date_utc: "2026-12-01T00:00:00Z".to_owned(),
            open_files_limit: 20_000,
            somaxconn: Some(4096),
        }
    }

    #[test]
    fn a_server_that_exits_3_saying_skipped_is_a_skipped_row_with_its_reason_not_a_failure() {
        let dir = std::env::temp_dir().join(format!("xtask-compare-skip-{}", std::process::id()));
        let a = args(&["--iterations", "10", "--repeat", "2"]);
        let bench = Bench {
            variants: vec![study::fake::skipping_server(&dir)],
            settings: settings(&a, &dir),
            delay: a.delay.clone(),
            load: LoadSpec {
                program: dir.join("loadgen-is-never-started"),
                iterations: 0,
                concurrency: None,
                requests_per_conn: 1,
                timeout: Duration::from_secs(1),
                timed: None,
                cpus: None,
                request_log: None,
                fifo_priority: None,
            },
            runs_dir: dir.clone(),
        };
        let records = bench.execute(&steps(&a, &bench.variants)).expect("records");
        assert_eq!(
            records.len(),
            1,
            "no step is tried after the server skipped"
        );
        assert_eq!(
            records[0].skipped.as_deref(),
            Some("io_uring unavailable: test")
        );
        let summary = summarize(&bench, environment(), params(&a), vec![], &records, &a);
        let _ = std::fs::remove_dir_all(&dir);
        assert!(summary.rows.is_empty(), "{:?}", summary.rows);
        assert_eq!(
            summary.skipped,
            [Skipped {
                server: "fake-uring".to_owned(),
                reason: "io_uring unavailable: test".to_owned()
            }]
        );
    }

    #[test]
    fn the_baselines_take_every_delay_kind() {
        let a = args(&["--servers", "python-asyncio", "--delay-kind", "block"]);
        let (selected, skipped) = select(&a, true).expect("known names");
        assert_eq!((selected.len(), skipped.len()), (1, 0), "{skipped:?}");
    }

    #[test]
    fn a_fixed_delay_may_be_written_with_its_distribution() {
        let a = args(&["--delay", "fixed:100ms", "--delay-kind", "block"]);
        assert_eq!(
            a.delay,
            Recipe::from(DelayModel::Fixed(Duration::from_millis(100)))
        );
        assert_eq!(a.delay_kind, DelayKind::Block);
        assert_eq!(params(&a).delay.to_string(), "100ms");
    }

    #[test]
    fn nonsense_options_are_refused_before_anything_runs() {
        assert!(validate(&args(&["--iterations", "0"])).is_err());
        assert!(validate(&args(&["--concurrency", "0"])).is_err());
        assert!(validate(&args(&[])).is_ok());
        let cli = |line: &[&str]| {
            Cli::try_parse_from(std::iter::once("compare").chain(line.iter().copied()))
        };
        let kind = cli(&["--delay-kind", "nap"])
            .err()
            .expect("refused")
            .to_string();
        assert!(kind.contains("invalid delay kind \"nap\""), "{kind}");
        let delay = cli(&["--delay", "10parsecs"])
            .err()
            .expect("refused")
            .to_string();
        assert!(
            delay.contains("invalid delay spec \"10parsecs\""),
            "{delay}"
        );
        let server = cli(&["--servers", "nginx"])
            .err()
            .expect("refused")
            .to_string();
        assert!(
            server.contains("threaded-pool"),
            "the help lists the catalogue: {server}"
        );
    }
}
