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
//!     [--connections 32,256] [--threads 1,2] [--seconds 5] [--burst 10000] [--out FILE]
//! ```
//!
//! `--burst N` adds the article's load: N connections at once, one request each, so that
//! the client's cost per connection (socket, connect, close) is measured too.
//!
//! ```text
//! ```

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use loadgen::{Config, Report};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("serve") {
        return serve();
    }
    let options = Options::parse(&args)?;
    let load_before = load_average();
    let mut server = spawn_server()?;
    let rows = server_addr(&mut server).and_then(|addr| measure_all(&options, addr, server.id()));
    let _ = server.kill();
    let _ = server.wait();
    let text = render(&args, &rows?, &load_before);
    print!("{text}");
    if let Some(path) = &options.out {
        std::fs::write(path, &text).with_context(|| format!("cannot write {path}"))?;
    }
    Ok(())
}

/// What to measure: every combination of the listed connection and thread counts, then
/// (with `--burst N`) the article's load for each thread count.
struct Options {
    connections: Vec<u64>,
    threads: Vec<u64>,
    burst: Option<u64>,
    seconds: u64,
    out: Option<String>,
}

impl Options {
    fn parse(args: &[String]) -> anyhow::Result<Options> {
        let mut options = Options {
            connections: vec![32],
            threads: vec![1],
            burst: None,
            seconds: 5,
            out: None,
        };
        let mut args = args.iter();
        while let Some(flag) = args.next() {
            let value = args
                .next()
                .with_context(|| format!("{flag} needs a value"))?;
            let list = || -> anyhow::Result<Vec<u64>> {
                value
                    .split(',')
                    .map(|n| n.parse().with_context(|| format!("{flag} {value}")))
                    .collect()
            };
            match flag.as_str() {
                "--connections" => options.connections = list()?,
                "--threads" => options.threads = list()?,
                "--burst" => options.burst = Some(value.parse().context("--burst")?),
                "--seconds" => options.seconds = value.parse().context("--seconds")?,
                "--out" => options.out = Some(value.clone()),
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
    let (client_before, server_before) = (own_cpu_seconds(), process_cpu_seconds(server_pid)?);
    let report = loadgen::run(&config).context("measured run")?;
    let client_cpu = own_cpu_seconds().since(client_before);
    let server_cpu_seconds = process_cpu_seconds(server_pid)? - server_before;
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

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` shows them.
fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn render(args: &[String], rows: &[Row], load_before: &str) -> String {
    let command = format!(
        "cargo run --release -p loadgen --example throughput -- {}",
        args.join(" ")
    );
    let environment = rows.first().map(|row| &row.report.environment);
    let load_after = load_average();
    let mut text = format!(
        "# loadgen throughput (zero-delay server, persistent connections)\n\n\
         Written by `crates/loadgen/examples/throughput.rs`; do not edit by hand.\n\n\
         Command: `{command}`\n\n\
         Machine: {} CPUs, kernel {}; load average {load_before} before and {load_after}\n\
         after the measurements (the machine is shared: other work competes for its two\n\
         cores).\n\n\
         The server is a minimal single-threaded tokio line echo in a separate process.\n\
         Client CPU is `getrusage(RUSAGE_SELF)` of the loadgen process over the measured run\n\
         (after a warmup run: 1 s persistent, or a burst of at most 1000); server CPU is from\n\
         `/proc/<pid>/stat` over the same run. The user part is loadgen's own work; the\n\
         system part is the kernel's TCP path, and on loopback the kernel time of a `send` or\n\
         a `connect` includes the receiving side's TCP processing, which is why the client and\n\
         the server spend about the same per request. With one request per connection, CPU\n\
         per request is CPU per connection (socket, connect, close included).\n\n\
         | load | connections | client threads | seconds | requests ok | req/s | client CPU µs/req (user + system) | server CPU µs/req | p50 latency µs | p99 latency µs |\n\
         |---|---|---|---|---|---|---|---|---|---|\n",
        environment.map_or(0, |e| e.n_cpus),
        environment
            .and_then(|e| e.kernel_release.as_deref())
            .unwrap_or("unknown"),
    );
    for row in rows {
        let report = &row.report;
        let per_request_us = |cpu: f64| cpu * 1e6 / report.requests_ok as f64;
        let (load_name, connections) = match row.load {
            Load::Persistent(n) => ("persistent", n),
            Load::Burst(n) => ("burst, 1 request/conn", n),
        };
        text.push_str(&format!(
            "| {} | {} | {} | {:.2} | {} | {:.0} | {:.2} ({:.2} + {:.2}) | {:.2} | {:.1} | {:.1} |\n",
            load_name,
            connections,
            report.parameters.n_threads,
            report.wall_time_seconds,
            report.requests_ok,
            report.throughput_requests_per_second,
            per_request_us(row.client_cpu.total()),
            per_request_us(row.client_cpu.user_seconds),
            per_request_us(row.client_cpu.system_seconds),
            per_request_us(row.server_cpu_seconds),
            report.latency.p50_us,
            report.latency.p99_us,
        ));
    }
    text
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
    fn total(self) -> f64 {
        self.user_seconds + self.system_seconds
    }

    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            user_seconds: self.user_seconds - before.user_seconds,
            system_seconds: self.system_seconds - before.system_seconds,
        }
    }
}

fn own_cpu_seconds() -> Cpu {
    // SAFETY: getrusage only writes the zero-initialised struct it is handed.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(libc::RUSAGE_SELF, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    Cpu {
        user_seconds: seconds(usage.ru_utime),
        system_seconds: seconds(usage.ru_stime),
    }
}

/// User plus system CPU time of another process, from `/proc/<pid>/stat`.
fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the file, 11 and 12 after the name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11) + ticks(12)) / hz)
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
