//! Benchmark of the client itself: how many requests per second loadgen drives, and how
//! much CPU it spends per request, against a zero-delay server on persistent connections.
//!
//! The server is this same program started again as a child process (`throughput serve`),
//! so that `getrusage(RUSAGE_SELF)` in the parent counts the client's CPU time only: the
//! loadgen threads, plus an idle main thread. The server's CPU is read from
//! `/proc/<pid>/stat` for context.
//!
//! ```text
//! cargo run --release -p loadgen --example throughput -- \
//!     [--connections 32,256] [--threads 1,2] [--seconds 5] [--burst 10000] \
//!     [--json FILE.json] [--out FILE.md]
//! cargo run --release -p loadgen --example throughput -- --render FILE.json [--out FILE.md]
//! ```
//!
//! `--burst N` adds the article's load: N connections at once, one request each, so that
//! the client's cost per connection (socket, connect, close) is measured too. The results
//! are written as JSON (`--json`, the source of truth) and rendered to markdown (`--out`,
//! else stdout); `--render` re-renders a JSON file without measuring anything.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use loadgen::{Config, Report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

#[path = "../common/mod.rs"]
mod common;
mod render;

use render::{SCHEMA_VERSION, ThroughputResults, ThroughputRow};

const USAGE: &str = "\
How many requests per second loadgen drives, and its CPU per request, at zero delay.

usage: throughput [--connections 32 (or a list: 32,256)] [--threads 1 (or 1,2)] [--seconds 5]
                  [--burst N (the article's load: N connections at once)]
                  [--json FILE.json] [--out FILE.md]
       throughput --render FILE.json [--out FILE.md]";

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve();
    }
    let options = Options::parse(&args)?;
    options.output.run(
        SCHEMA_VERSION,
        |results: &ThroughputResults| results.schema_version,
        || measure_results(&options, &args),
        render::render,
    )
}

/// Starts the server, measures every configuration, and stops the server.
fn measure_results(options: &Options, args: &[String]) -> anyhow::Result<ThroughputResults> {
    let load_average_before = common::load_average();
    let mut server = spawn_server()?;
    let rows = server_addr(&mut server).and_then(|addr| measure_all(options, addr, server.id()));
    let _ = server.kill();
    let _ = server.wait();
    let rows = rows?;
    let environment = rows.first().map(|row| row.report.environment.clone());
    Ok(ThroughputResults {
        schema_version: SCHEMA_VERSION,
        command: format!(
            "cargo run --release -p loadgen --example throughput -- {}",
            args.join(" ")
        ),
        n_cpus: environment.as_ref().map_or(0, |e| e.n_cpus),
        kernel_release: environment.and_then(|e| e.kernel_release),
        load_average_before,
        load_average_after: common::load_average(),
        rows: rows.iter().map(Row::to_result).collect(),
    })
}

/// What to measure: every combination of the listed connection and thread counts, then
/// (with `--burst N`) the article's load for each thread count.
struct Options {
    connections: Vec<u64>,
    threads: Vec<u64>,
    burst: Option<u64>,
    seconds: u64,
    output: common::Output,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            connections: vec![32],
            threads: vec![1],
            burst: None,
            seconds: 5,
            output: common::Output::default(),
        };
        for (flag, value) in common::flag_pairs(args, USAGE)? {
            match flag {
                "--connections" => options.connections = common::counts(flag, value)?,
                "--threads" => options.threads = common::counts(flag, value)?,
                "--burst" => options.burst = Some(value.parse().context("--burst")?),
                "--seconds" => options.seconds = value.parse().context("--seconds")?,
                _ if options.output.take(flag, value) => {}
                other => bail!("unknown option {other}"),
            }
        }
        Ok(options)
    }
}

/// The shape of a measured load.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// This many connections kept open, sending request after request for a while.
    Persistent(u64),
    /// The article's load: this many connections at once, one request each.
    Burst(u64),
}

/// One measured configuration.
struct Row {
    load: Load,
    report: Report,
    client_cpu: Cpu,
    server_cpu_seconds: f64,
}

impl Row {
    fn to_result(&self) -> ThroughputRow {
        let report = &self.report;
        let (load, n_connections) = match self.load {
            Load::Persistent(n) => ("persistent", n),
            Load::Burst(n) => ("burst", n),
        };
        ThroughputRow {
            load: load.to_owned(),
            n_connections,
            n_threads: report.parameters.n_threads,
            wall_time_seconds: report.wall_time_seconds,
            requests_ok: report.requests_ok,
            throughput_requests_per_second: report.throughput_requests_per_second,
            client_user_seconds: self.client_cpu.user_seconds,
            client_system_seconds: self.client_cpu.system_seconds,
            server_cpu_seconds: self.server_cpu_seconds,
            latency_p50_us: report.latency.p50_us,
            latency_p99_us: report.latency.p99_us,
        }
    }
}

fn measure_all(options: &Options, addr: SocketAddr, server_pid: u32) -> anyhow::Result<Vec<Row>> {
    let mut loads: Vec<Load> = options
        .connections
        .iter()
        .map(|&n| Load::Persistent(n))
        .collect();
    loads.extend(options.burst.map(Load::Burst));
    let mut rows = Vec::new();
    for &load in &loads {
        for &threads in &options.threads {
            let mut config = Config::new(addr);
            config.n_threads = usize::try_from(threads)?;
            config.timeout = Duration::from_secs(5);
            rows.push(measure(config, load, server_pid, options.seconds)?);
        }
    }
    Ok(rows)
}

/// Warms up, then runs the measured load, timing client and server CPU around it.
fn measure(mut config: Config, load: Load, server_pid: u32, seconds: u64) -> anyhow::Result<Row> {
    match load {
        Load::Persistent(connections) => {
            config.n_connections = connections;
            config.requests_per_conn = u64::MAX / 2;
            config.duration = Some(Duration::from_secs(1));
        }
        Load::Burst(connections) => config.n_connections = connections.min(1000),
    }
    loadgen::run(&config).context("warmup run")?;
    match load {
        Load::Persistent(_) => config.duration = Some(Duration::from_secs(seconds)),
        Load::Burst(connections) => config.n_connections = connections,
    }
    let (client_before, server_before) =
        (own_cpu_seconds(), common::process_cpu_seconds(server_pid)?);
    let report = loadgen::run(&config).context("measured run")?;
    let client_cpu = own_cpu_seconds().since(client_before);
    let server_cpu_seconds = common::process_cpu_seconds(server_pid)? - server_before;
    if report.requests_failed > 0 {
        bail!(
            "{} requests failed: {:?}",
            report.requests_failed,
            report.failures
        );
    }
    Ok(Row {
        load,
        report,
        client_cpu,
        server_cpu_seconds,
    })
}

/// Starts `throughput serve` and reads the address it listens on.
fn spawn_server() -> anyhow::Result<Child> {
    let exe = std::env::current_exe().context("cannot find this program")?;
    let child = Command::new(exe)
        .arg("serve")
        .stdout(Stdio::piped())
        .spawn()
        .context("cannot start the server process")?;
    Ok(child)
}

fn server_addr(server: &mut Child) -> anyhow::Result<SocketAddr> {
    let stdout = server.stdout.take().context("server has no stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    line.trim()
        .parse()
        .with_context(|| format!("server printed {line:?}"))
}

/// User and system CPU time of this process so far.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    user_seconds: f64,
    system_seconds: f64,
}

impl Cpu {
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            user_seconds: self.user_seconds - before.user_seconds,
            system_seconds: self.system_seconds - before.system_seconds,
        }
    }
}

fn own_cpu_seconds() -> Cpu {
    let (user_seconds, system_seconds) = common::rusage_seconds(libc::RUSAGE_SELF);
    Cpu {
        user_seconds,
        system_seconds,
    }
}

/// The server process: a zero-delay line echo on one single-threaded runtime.
fn serve() -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // A backlog of 4096 (somaxconn here) so bursts of connects are not dropped.
        let socket = TcpSocket::new_v4()?;
        socket.bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        let listener = socket.listen(4096)?;
        let mut stdout = std::io::stdout();
        writeln!(stdout, "{}", listener.local_addr()?)?;
        stdout.flush()?;
        loop {
            let (stream, _) = listener.accept().await?;
            tokio::spawn(echo(stream));
        }
    })
}

async fn echo(mut stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut buffer = Vec::with_capacity(4096);
    let mut replies = Vec::with_capacity(4096);
    loop {
        if stream.read_buf(&mut buffer).await? == 0 {
            return Ok(());
        }
        let Some(end) = buffer.iter().rposition(|&b| b == b'\n') else {
            continue;
        };
        for line in buffer[..=end].split_inclusive(|&b| b == b'\n') {
            replies.extend_from_slice(String::from_utf8_lossy(line).to_uppercase().as_bytes());
        }
        buffer.drain(..=end);
        stream.write_all(&replies).await?;
        replies.clear();
    }
}
