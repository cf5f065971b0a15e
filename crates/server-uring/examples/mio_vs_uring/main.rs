//! Benchmark for issue 11's targets: one mio loop against one io_uring loop, side by side in
//! one run, at zero delay and at 100 ms, with 1000 and 10000 persistent connections: server
//! CPU per request (user and system), system calls and context switches per request, and the
//! rate achieved.
//!
//! For every scenario and round it starts each server binary in turn (alternating, so drift
//! on the shared machine hits both), pinned to CPU 0, attaches `perf stat -e
//! raw_syscalls:sys_enter,context-switches -p PID` to it, and drives it with the `loadgen`
//! binary pinned to CPU 1: every connection open at once, each making its requests one after
//! another. Server CPU time is read from `/proc/PID/stat` before and after the load. Servers
//! run through the project's process harness (`server-process`). Writes the results as JSON
//! (the source of truth) and renders the markdown from it (`report.rs`);
//! `tests/bench_report.rs` checks that the committed markdown is that rendering, and
//! `--render-only` redoes it after a change to the rendering.
//!
//! ```text
//! cargo build --release -p server-mio -p server-uring -p loadgen
//! cargo run --release -p server-uring --example mio_vs_uring -- \
//!     --bin-dir target/release --out benches-results/mio-vs-uring
//! cargo run --release -p server-uring --example mio_vs_uring -- \
//!     --out benches-results/mio-vs-uring --render-only
//! ```

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Parser;
use report::{Results, Run, Scenario, ServerRuns, render_markdown};
use server_process::{Launch, ServerProcess, bench, pin_to_cpus, procfs};

mod report;

/// Compare one mio loop with one io_uring loop on persistent connections.
#[derive(Debug, Parser)]
struct Options {
    /// Folder holding the release binaries `server-mio`, `server-uring` and `loadgen`, inside
    /// the repository (it is recorded relative to the repository root).
    #[arg(long, default_value = "target/release")]
    bin_dir: PathBuf,
    /// Output path without extension: `.json` and `.md` are written beside each other.
    #[arg(long)]
    out: PathBuf,
    /// Runs per server and scenario, alternating between the servers.
    #[arg(long, default_value_t = 3)]
    rounds: usize,
    /// Persistent connection counts to measure.
    #[arg(long, value_delimiter = ',', default_value = "1000,10000")]
    connections: Vec<u64>,
    /// Server delays to measure, in milliseconds.
    #[arg(long, value_delimiter = ',', default_value = "0,100")]
    delays_ms: Vec<u64>,
    /// About how long each run lasts: sets the requests per connection.
    #[arg(long, default_value_t = 6)]
    seconds: u64,
    /// Measure nothing: render `<out>.md` again from `<out>.json`.
    #[arg(long)]
    render_only: bool,
}

/// The two servers compared: name, binary, flags.
const SERVERS: [(&str, &str, &[&str]); 2] = [
    ("mio", "server-mio", &["--loops", "1"]),
    ("uring", "server-uring", &["--loops", "1"]),
];

type Server = (&'static str, &'static str, &'static [&'static str]);

/// The CPU the server runs on, and the one loadgen runs on.
const SERVER_CPU: usize = 0;
const CLIENT_CPU: usize = 1;

/// How long a server may take to announce itself, and to exit after SIGTERM.
const PATIENCE: Duration = Duration::from_secs(30);

/// A guess at one loop's zero-delay rate, only to size the runs to about `--seconds`.
const ZERO_DELAY_RATE_GUESS: u64 = 80_000;

fn main() -> anyhow::Result<()> {
    let options = Options::parse();
    if options.render_only {
        return render_again(&options.out);
    }
    let load_average_at_start = load_average();
    let mut perf_not_measured = None;
    let mut scenarios = Vec::new();
    for &delay_ms in &options.delays_ms {
        for &connections in &options.connections {
            let mut scenario = Scenario {
                delay_ms,
                connections,
                requests_per_conn: requests_per_conn(&options, delay_ms, connections),
                servers: SERVERS.iter().map(empty).collect(),
            };
            let load = Load {
                delay_ms,
                connections,
                requests_per_conn: scenario.requests_per_conn,
            };
            for round in 0..options.rounds {
                for (runs, server) in scenario.servers.iter_mut().zip(SERVERS) {
                    let run = one_run(&options, load, server, &mut perf_not_measured)?;
                    eprintln!(
                        "{delay_ms} ms, {connections} conns, {}: round {round}: {:.0} req/s, \
                         {:.2} us CPU/request, syscalls {:?}, failed {}",
                        server.0,
                        run.requests_per_second,
                        (run.user_cpu_seconds + run.system_cpu_seconds) * 1e6
                            / run.requests_ok.max(1) as f64,
                        run.syscalls,
                        run.requests_failed
                    );
                    runs.runs.push(run);
                }
            }
            scenarios.push(scenario);
        }
    }
    let results = Results {
        command: bench::recorded_command(
            "cargo run --release -p server-uring --example mio_vs_uring --",
        )?,
        note: None,
        environment: bench::environment(),
        load_average_at_start,
        perf_not_measured,
        scenarios,
    };
    write_outputs(&options.out, &results)
}

fn requests_per_conn(options: &Options, delay_ms: u64, connections: u64) -> u64 {
    let per_second = 1000u64
        .checked_div(delay_ms)
        .unwrap_or(ZERO_DELAY_RATE_GUESS / connections.max(1));
    (options.seconds * per_second).max(10)
}

fn empty(server: &Server) -> ServerRuns {
    ServerRuns {
        name: server.0.to_owned(),
        args: server.2.iter().map(|&arg| arg.to_owned()).collect(),
        runs: Vec::new(),
    }
}

/// The load of one scenario.
#[derive(Debug, Clone, Copy)]
struct Load {
    delay_ms: u64,
    connections: u64,
    requests_per_conn: u64,
}

/// One loadgen run against a fresh server, counted by perf where it can.
fn one_run(
    options: &Options,
    scenario: Load,
    server: Server,
    perf_not_measured: &mut Option<String>,
) -> anyhow::Result<Run> {
    let process = start(&options.bin_dir, server, scenario.delay_ms)?;
    let perf = match Perf::attach(process.pid()) {
        Ok(perf) => Some(perf),
        Err(why) => {
            perf_not_measured.get_or_insert(why);
            None
        }
    };
    let before = procfs::read_cpu_ticks(process.pid())?;
    let json = std::env::temp_dir().join(format!(
        "mio-vs-uring-{}-{}.json",
        server.0,
        std::process::id()
    ));
    let mut loadgen = Command::new(options.bin_dir.join("loadgen"));
    pin_to_cpus(&mut loadgen, &[CLIENT_CPU])?;
    let status = loadgen
        .arg(process.addr().to_string())
        .args(["-n", &scenario.connections.to_string()])
        .args(["-m", &scenario.requests_per_conn.to_string()])
        .args(["--timeout", "30s", "--quiet", "--json"])
        .arg(&json)
        .status()
        .context("cannot run loadgen")?;
    let after = procfs::read_cpu_ticks(process.pid())?;
    let counts = perf.map(Perf::stop).transpose();
    bench::stop_cleanly(process, PATIENCE)?;
    if !status.success() {
        bail!("loadgen against {} failed: {status}", server.0);
    }
    let (syscalls, context_switches) = match counts {
        Ok(Some((syscalls, switches))) => (Some(syscalls), Some(switches)),
        Ok(None) => (None, None),
        Err(why) => {
            perf_not_measured.get_or_insert(why);
            (None, None)
        }
    };
    let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json)?)?;
    let _ = std::fs::remove_file(&json);
    Ok(Run {
        requests_ok: report["requests_ok"].as_u64().unwrap_or(0),
        requests_failed: report["requests_failed"].as_u64().unwrap_or(0),
        requests_per_second: report["throughput_requests_per_second"]
            .as_f64()
            .unwrap_or(0.0),
        p99_ms: report["latency"]["p99_us"].as_f64().unwrap_or(0.0) / 1000.0,
        user_cpu_seconds: procfs::ticks_to_seconds(after.0.saturating_sub(before.0)),
        system_cpu_seconds: procfs::ticks_to_seconds(after.1.saturating_sub(before.1)),
        syscalls,
        context_switches,
    })
}

/// A minimal `perf stat` attached to one process, its CSV counts written to a file.
struct Perf {
    child: Child,
    /// Kept open: perf may take a closed control pipe as a reason to stop.
    _control: ChildStdin,
    output: PathBuf,
}

impl Perf {
    /// The events counted.
    const EVENTS: &str = "raw_syscalls:sys_enter,context-switches";

    /// Starts counting `pid`; returns once perf has acknowledged that its counters are on
    /// (`-D -1 --control fd:0,1`: perf reads `enable` on its stdin and answers `ack` on its
    /// stdout), so the window starts at a known point. `Err` says why nothing is counted.
    fn attach(pid: u32) -> Result<Perf, String> {
        let output = std::env::temp_dir().join(format!("mio-vs-uring-perf-{pid}.csv"));
        let mut child = Command::new("perf")
            .env("LC_ALL", "C")
            .args(["stat", "-x,", "-e", Self::EVENTS, "-p", &pid.to_string()])
            .args(["-D", "-1", "--control", "fd:0,1", "-o"])
            .arg(&output)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            // Its only other words are "Events enabled/disabled".
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start perf: {e}"))?;
        let (Some(mut control), Some(acks)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err("perf started without its pipes".to_owned());
        };
        let mut ack = String::new();
        let acked = writeln!(control, "enable")
            .and_then(|()| control.flush())
            .and_then(|()| BufReader::new(acks).read_line(&mut ack));
        if acked.is_err() || !ack.starts_with("ack") {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!(
                "perf did not acknowledge enable ({acked:?}, {ack:?})"
            ));
        }
        Ok(Perf {
            child,
            _control: control,
            output,
        })
    }

    /// Stops perf (SIGINT, by its PID) and returns (system calls, context switches).
    fn stop(mut self) -> Result<(u64, u64), String> {
        let pid = libc::pid_t::try_from(self.child.id()).map_err(|e| e.to_string())?;
        // SAFETY: signals a child this value owns and has not reaped.
        unsafe { libc::kill(pid, libc::SIGINT) };
        self.child.wait().map_err(|e| format!("perf: {e}"))?;
        let text = std::fs::read_to_string(&self.output)
            .map_err(|e| format!("cannot read {}: {e}", self.output.display()))?;
        let _ = std::fs::remove_file(&self.output);
        let count = |event: &str| {
            text.lines()
                .map(|line| line.split(',').collect::<Vec<_>>())
                .find(|fields| fields.get(2) == Some(&event))
                .and_then(|fields| fields[0].parse::<u64>().ok())
                .ok_or_else(|| format!("perf counted no {event}: {}", text.trim()))
        };
        Ok((count("raw_syscalls:sys_enter")?, count("context-switches")?))
    }
}

/// The 1-minute load average.
fn load_average() -> f64 {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Starts a server on a free port with `delay_ms`, pinned to [`SERVER_CPU`].
fn start(
    bin_dir: &Path,
    (name, binary, args): Server,
    delay_ms: u64,
) -> anyhow::Result<ServerProcess> {
    let delay = format!("{delay_ms}ms");
    let launch = Launch::new(bin_dir.join(binary))
        .name(name)
        .args(["--port", "0", "--delay", &delay, "--idle-timeout", "off"])
        .args(args.iter().copied())
        .cpus(&[SERVER_CPU]);
    Ok(ServerProcess::start(&launch, PATIENCE)?)
}

/// Renders `<out>.md` from `<out>.json`, as `--render-only` asks.
fn render_again(out: &Path) -> anyhow::Result<()> {
    Ok(bench::render_again(out, render)?)
}

/// Writes the JSON, then renders the markdown from the JSON as written.
fn write_outputs(out: &Path, results: &Results) -> anyhow::Result<()> {
    let json = serde_json::to_string_pretty(results)? + "\n";
    Ok(bench::write_outputs(out, &json, render)?)
}

fn render(json: &str, out: &str) -> serde_json::Result<String> {
    Ok(render_markdown(&serde_json::from_str(json)?, out))
}
