//! Benchmark for issue 4's target: at zero delay on persistent connections, one mio loop
//! serves at least as many requests per second as tokio's current-thread runtime, and uses
//! no more memory per connection.
//!
//! Runs the two server binaries in turns (alternating, `--rounds` times, so drift on the
//! shared machine hits both), drives each with the `loadgen` binary, then measures each
//! server's resident memory before and after opening `--idle-connections` connections that
//! each made one request and then sit idle. The server is pinned to CPU 0 and the client to
//! CPU 1, so the two do not fight over one core. Servers run through the project's one
//! process harness (`server-process`), which also reads their CPU time and memory from
//! `/proc`. Writes the results as JSON (the source of truth) and renders the markdown table
//! from it (`report.rs`); `tests/bench_report.rs` checks that the committed markdown is that
//! rendering, and `--render-only` redoes it after a change to the rendering.
//!
//! ```text
//! cargo build --release -p server-mio -p server-async -p loadgen
//! cargo run --release -p server-mio --example mio_vs_tokio_current -- \
//!     --bin-dir target/release --out benches-results/mio-vs-tokio-current
//! cargo run --release -p server-mio --example mio_vs_tokio_current -- \
//!     --out benches-results/mio-vs-tokio-current --render-only
//! ```

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use report::{Results, ServerResult, median, render_markdown};
use server_process::{Launch, ServerProcess, bench, pin_to_cpus, procfs};

mod report;

/// Compare one mio loop with tokio's current-thread runtime at zero delay.
#[derive(Debug, Parser)]
struct Options {
    /// Folder holding the release binaries `server-mio`, `server-async` and `loadgen`, inside
    /// the repository (it is recorded relative to the repository root).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Output path without extension: `.json` and `.md` are written beside each other.
    #[arg(long)]
    out: PathBuf,
    /// Throughput runs per server, alternating between the servers.
    #[arg(long, default_value_t = 15)]
    rounds: usize,
    /// Persistent client connections in each throughput run.
    #[arg(long, default_value_t = 100)]
    connections: u64,
    /// Sequential requests on each of those connections.
    #[arg(long, default_value_t = 1000)]
    requests_per_conn: u64,
    /// Idle connections held open to measure memory per connection.
    #[arg(long, default_value_t = 10_000)]
    idle_connections: usize,
    /// Measure nothing: render `<out>.md` again from `<out>.json` (after a change to the
    /// rendering).
    #[arg(long)]
    render_only: bool,
}

/// The two variants compared: name, binary, flags.
const VARIANTS: [(&str, &str, &[&str]); 2] = [
    ("mio, 1 loop", "server-mio", &["--loops", "1"]),
    (
        "tokio current-thread",
        "server-async",
        &["--flavor", "current"],
    ),
];

/// Flags both servers get: zero delay, no idle limit during the run.
const COMMON_ARGS: [&str; 6] = ["--port", "0", "--delay", "0", "--idle-timeout", "off"];

/// The CPU the server runs on, and the one loadgen runs on.
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// How long a server may take to announce itself, and to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(30);

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if options.render_only {
        return render_again(&options.out);
    }
    let mut servers: Vec<ServerResult> = VARIANTS.iter().map(empty_result).collect();
    for round in 0..options.rounds {
        for (result, variant) in servers.iter_mut().zip(VARIANTS) {
            let run = throughput_run(&options, variant, round)?;
            result.record(&run);
        }
    }
    for (result, variant) in servers.iter_mut().zip(VARIANTS) {
        result.median_throughput_requests_per_second =
            median(&result.throughput_requests_per_second);
        result.median_cpu_microseconds_per_request = median(&result.cpu_microseconds_per_request);
        measure_memory(&options, variant, result)?;
    }
    let results = Results {
        command: bench::recorded_command(
            "cargo run --release -p server-mio --example mio_vs_tokio_current --",
        )?,
        note: None,
        environment: bench::environment(),
        connections: options.connections,
        requests_per_conn: options.requests_per_conn,
        idle_connections: options.idle_connections,
        servers,
    };
    write_outputs(&options.out, &results)
}

fn empty_result(variant: &(&'static str, &'static str, &'static [&'static str])) -> ServerResult {
    ServerResult {
        name: variant.0.to_owned(),
        args: variant.2.iter().map(|&arg| arg.to_owned()).collect(),
        throughput_requests_per_second: Vec::new(),
        median_throughput_requests_per_second: 0.0,
        requests_failed: 0,
        cpu_microseconds_per_request: Vec::new(),
        median_cpu_microseconds_per_request: 0.0,
        cpu_busy_fraction: Vec::new(),
        rss_before_bytes: 0,
        rss_idle_bytes: 0,
        bytes_per_idle_connection: 0.0,
    }
}

type Variant = (&'static str, &'static str, &'static [&'static str]);

/// What one loadgen run against a fresh server measured.
struct Run {
    requests_per_second: f64,
    requests_failed: u64,
    cpu_microseconds_per_request: f64,
    cpu_busy_fraction: f64,
}

impl ServerResult {
    fn record(&mut self, run: &Run) {
        self.throughput_requests_per_second
            .push(run.requests_per_second);
        self.cpu_microseconds_per_request
            .push(run.cpu_microseconds_per_request);
        self.cpu_busy_fraction.push(run.cpu_busy_fraction);
        self.requests_failed += run.requests_failed;
    }
}

/// One loadgen run against a fresh server.
fn throughput_run(options: &Options, variant: Variant, round: usize) -> anyhow::Result<Run> {
    let server = start(&options.bin_dir, variant)?;
    let json = std::env::temp_dir().join(format!("mio-vs-tokio-{}-{round}.json", variant.1));
    let mut loadgen = Command::new(options.bin_dir.join("loadgen"));
    pin_to_cpus(&mut loadgen, &[CLIENT_CPU])?;
    let status = loadgen
        .arg(server.addr().to_string())
        .args(["-n", &options.connections.to_string()])
        .args(["-m", &options.requests_per_conn.to_string()])
        .args(["--quiet", "--json"])
        .arg(&json)
        .status()
        .context("cannot run loadgen")?;
    let cpu_seconds = server.sample()?.cpu_time().as_secs_f64();
    bench::stop_cleanly(server, PATIENCE)?;
    if !status.success() {
        bail!("loadgen against {} failed: {status}", variant.0);
    }
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let field = |name: &str| report[name].as_f64().unwrap_or(0.0);
    let run = Run {
        requests_per_second: field("throughput_requests_per_second"),
        requests_failed: report["requests_failed"].as_u64().unwrap_or(0),
        cpu_microseconds_per_request: cpu_seconds * 1e6 / field("requests_ok").max(1.0),
        cpu_busy_fraction: cpu_seconds / field("wall_time_seconds").max(f64::MIN_POSITIVE),
    };
    eprintln!(
        "{}: round {round}: {:.0} req/s, {:.1} us CPU/request, {} failed",
        variant.0, run.requests_per_second, run.cpu_microseconds_per_request, run.requests_failed
    );
    Ok(run)
}

/// RSS of a fresh server before and after `idle_connections` clients made one request each.
fn measure_memory(
    options: &Options,
    variant: Variant,
    result: &mut ServerResult,
) -> anyhow::Result<()> {
    let server = start(&options.bin_dir, variant)?;
    result.rss_before_bytes = procfs::read_status(server.pid())?.rss_bytes;
    let idle = open_idle_connections(server.addr(), options.idle_connections)
        .with_context(|| format!("opening idle connections to {}", variant.0))?;
    result.rss_idle_bytes = procfs::read_status(server.pid())?.rss_bytes;
    drop(idle);
    bench::stop_cleanly(server, PATIENCE)?;
    let grown = result
        .rss_idle_bytes
        .saturating_sub(result.rss_before_bytes);
    result.bytes_per_idle_connection = grown as f64 / options.idle_connections.max(1) as f64;
    eprintln!(
        "{}: {:.0} bytes per idle connection",
        variant.0, result.bytes_per_idle_connection
    );
    Ok(())
}

fn open_idle_connections(addr: SocketAddr, n: usize) -> io::Result<Vec<TcpStream>> {
    let mut streams = Vec::with_capacity(n);
    let mut reply = [0u8; 64];
    for _ in 0..n {
        let mut stream = TcpStream::connect(addr)?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        stream.write_all(b"hello\n")?;
        let mut got = 0;
        while !reply[..got].contains(&b'\n') {
            match stream.read(&mut reply[got..])? {
                0 => return Err(io::ErrorKind::UnexpectedEof.into()),
                n => got += n,
            }
        }
        streams.push(stream);
    }
    Ok(streams)
}

/// Starts a variant on a free port, pinned to [`SERVER_CPU`].
fn start(bin_dir: &Path, (name, binary, args): Variant) -> anyhow::Result<ServerProcess> {
    let launch = Launch::new(bin_dir.join(binary))
        .name(name)
        .args(COMMON_ARGS)
        .args(args.iter().copied())
        .cpus(&[SERVER_CPU]);
    Ok(ServerProcess::start(&launch, PATIENCE)?)
}

/// Renders `<out>.md` from `<out>.json`, as `--render-only` asks.
fn render_again(out: &Path) -> anyhow::Result<()> {
    Ok(bench::render_again(out, render)?)
}

/// Writes the JSON, then renders the markdown from the JSON as written (not from the values
/// in memory), so that `tests/bench_report.rs` can demand an exact match.
fn write_outputs(out: &Path, results: &Results) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(results)? + "\n";
    Ok(bench::write_outputs(out, &json, render)?)
}

fn render(json: &str, out: &str) -> serde_json::Result<String> {
    Ok(render_markdown(&serde_json::from_str(json)?, out))
}
