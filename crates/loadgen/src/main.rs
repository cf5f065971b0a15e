//! The `loadgen` command: parses options, calls [`loadgen::run`], prints the summary and
//! writes the JSON report. Exits 1 when requests failed (above `--max-error-rate`), 2 when
//! the run could not be made. `loadgen merge A.json B.json` merges reports instead.

use std::io::{IsTerminal, Write};
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::{Parser, Subcommand};
use echo_core::Framing;
use loadgen::{Config, Report};

/// Load client for the uppercase echo protocol, with JSON timing reports.
#[derive(Debug, Parser)]
#[command(
    version,
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Server address, e.g. 127.0.0.1:9090 or localhost:9090.
    #[arg(required = true)]
    addr: Option<String>,
    /// Connections to make (the article's iterations).
    #[arg(
        short = 'n',
        long,
        visible_alias = "iterations",
        default_value_t = 1000
    )]
    connections: u64,
    /// Most connections open at once [default: all of them].
    #[arg(short = 'c', long)]
    concurrency: Option<u64>,
    /// Sequential requests on each connection.
    #[arg(short = 'm', long, default_value_t = 1)]
    requests_per_conn: u64,
    /// Open loop: start this many requests per second. A latency runs from the request's
    /// due time to its reply's arrival as the kernel stamped it; the wait until loadgen read
    /// the reply is reported apart, as the read lag.
    #[arg(long)]
    rate: Option<f64>,
    /// Run for this long (e.g. 10s) instead of for a number of connections; workers then
    /// reconnect after each connection's requests, and --connections only sets the default
    /// concurrency.
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Unmeasured warmup before the run (e.g. 2s). With --duration it is the start of the
    /// same schedule on the same connections, and only what is due (closed loop: sent)
    /// after it is measured; a run of so many connections warms up for this long on
    /// connections of its own first.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "0s")]
    warmup: Duration,
    /// Limit on each connect and on each reply.
    #[arg(long, value_parser = humantime::parse_duration, default_value = "10s")]
    timeout: Duration,
    /// Open loop: give up on a request that no connection could send within this of its due
    /// time; it is counted in `requests_not_sent`, and a server that cannot keep up does not
    /// make the run outlast its schedule by its whole backlog [default: the --timeout].
    #[arg(long, value_parser = humantime::parse_duration)]
    give_up_after: Option<Duration>,
    /// `line` (the project's protocol) or `raw` (the article's: no newline, server closes).
    #[arg(long, default_value = "line")]
    framing: Framing,
    /// The request text.
    #[arg(long, default_value = loadgen::config::DEFAULT_MESSAGE)]
    message: String,
    /// Client threads, each with its own event loop (open loop) or tokio runtime (closed loop).
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Loopback source addresses to spread client sockets over [default: 16 for a
    /// 127.0.0.0/8 target]; 0 lets the kernel choose.
    #[arg(long)]
    source_addresses: Option<u32>,
    /// Write the JSON report to this file (`-` for stdout).
    #[arg(long)]
    json: Option<PathBuf>,
    /// Open loop: a client-lag p99 (actual send minus the later of the due time and the
    /// moment a connection was idle for it) above this marks the run client-bound, in the
    /// summary and the JSON (`client_bound`).
    #[arg(long, value_parser = humantime::parse_duration, default_value = "1ms")]
    max_lag: Duration,
    /// Open loop: write every request answered in the measured phase to this file, one line
    /// each (due, ready, sent, done and read, µs from the measured part's start, after any
    /// --warmup, whose CLOCK_MONOTONIC reading heads the file), to see when in the run its
    /// lag fell.
    #[arg(long, value_name = "FILE")]
    request_log: Option<PathBuf>,
    /// Fraction of failed requests tolerated before exiting non-zero.
    #[arg(long, default_value_t = 0.0)]
    max_error_rate: f64,
    /// No progress bar and no summary.
    #[arg(short, long)]
    quiet: bool,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Merge the JSON reports of runs against the same target (several loadgen processes or
    /// hosts run at once) into one; exits 0 once merged, whatever the reports counted.
    Merge {
        /// The reports to merge.
        #[arg(required = true, num_args = 2..)]
        reports: Vec<PathBuf>,
        /// Where to write the merged report (`-` for stdout).
        #[arg(long, default_value = "-")]
        json: PathBuf,
        /// No summary.
        #[arg(short, long)]
        quiet: bool,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Some(Command::Merge {
        reports,
        json,
        quiet,
    }) = &cli.command
    {
        return match merge(reports, json, *quiet) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("loadgen merge: {error:#}");
                ExitCode::from(2)
            }
        };
    }
    match run(&cli) {
        Ok(report) if report.requests_failed > 0 && report.error_rate() > cli.max_error_rate => {
            eprintln!(
                "loadgen: {} of {} requests failed (error rate {:.4}, allowed {})",
                report.requests_failed,
                report.requests_ok + report.requests_failed,
                report.error_rate(),
                cli.max_error_rate
            );
            ExitCode::from(1)
        }
        Ok(_) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("loadgen: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: &Cli) -> anyhow::Result<Report> {
    let config = config(cli)?;
    let report =
        loadgen::run(&config).with_context(|| format!("load run against {}", config.target))?;
    emit(&report, cli.json.as_deref(), cli.quiet)?;
    Ok(report)
}

fn merge(paths: &[PathBuf], json: &Path, quiet: bool) -> anyhow::Result<()> {
    let mut merged: Option<Report> = None;
    for path in paths {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read report {}", path.display()))?;
        let report = Report::from_json(&text)
            .with_context(|| format!("cannot read report {}", path.display()))?;
        merged = Some(match merged {
            None => report,
            Some(so_far) => so_far
                .merge(&report)
                .with_context(|| format!("cannot merge report {}", path.display()))?,
        });
    }
    let merged = merged.context("no reports to merge")?;
    emit(&merged, Some(json), quiet)
}

/// Prints the summary (to stderr when the JSON goes to stdout) and writes the JSON.
fn emit(report: &Report, json: Option<&Path>, quiet: bool) -> anyhow::Result<()> {
    let json_to_stdout = json.is_some_and(|path| path.as_os_str() == "-");
    if !quiet {
        let summary = loadgen::summary::render(report);
        if json_to_stdout {
            eprint!("{summary}");
        } else {
            print!("{summary}");
        }
    }
    match json {
        Some(path) => write_json(path, report),
        None => Ok(()),
    }
}

fn config(cli: &Cli) -> anyhow::Result<Config> {
    if !(0.0..=1.0).contains(&cli.max_error_rate) {
        bail!(
            "--max-error-rate {} is not between 0 and 1",
            cli.max_error_rate
        );
    }
    let addr = cli
        .addr
        .as_deref()
        .context("a server address is required")?;
    let mut config = Config::new(resolve(addr)?);
    config.n_connections = cli.connections;
    config.concurrency = cli.concurrency;
    config.requests_per_conn = cli.requests_per_conn;
    config.rate = cli.rate;
    config.duration = cli.duration;
    config.warmup = cli.warmup;
    config.timeout = cli.timeout;
    config.give_up_after = cli.give_up_after;
    config.framing = cli.framing;
    config.message.clone_from(&cli.message);
    config.n_threads = cli.threads;
    config.source_addresses = cli.source_addresses;
    config.max_schedule_lag = cli.max_lag;
    config.request_log.clone_from(&cli.request_log);
    config.progress = !cli.quiet && std::io::stderr().is_terminal();
    Ok(config)
}

fn resolve(addr: &str) -> anyhow::Result<SocketAddr> {
    addr.to_socket_addrs()
        .with_context(|| format!("cannot resolve server address {addr:?}"))?
        .next()
        .with_context(|| format!("server address {addr:?} resolves to nothing"))
}

fn write_json(path: &Path, report: &Report) -> anyhow::Result<()> {
    let json = report.to_json();
    if path.as_os_str() == "-" {
        let mut stdout = std::io::stdout().lock();
        return stdout
            .write_all(json.as_bytes())
            .and_then(|()| stdout.flush())
            .context("cannot write the json report to stdout");
    }
    std::fs::write(path, json)
        .with_context(|| format!("cannot write the json report to {}", path.display()))
}
