//! The benchmark's results: typed, serializable, with units in the names, and the markdown
//! rendered from them. Shared with `tests/bench_report.rs`, which checks that the committed
//! markdown is exactly what the committed JSON renders to.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Everything measured, with units in the names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The command that produced these results, as typed at the repository root.
    pub command: String,
    /// Anything done to this file after the run (e.g. paths rewritten), so the report says
    /// how its JSON came to be what it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// CPU model and count, and kernel release, of the machine measured on.
    pub environment: String,
    /// Persistent connections per throughput run.
    pub connections: u64,
    /// Requests on each connection per throughput run.
    pub requests_per_conn: u64,
    /// Idle connections held for the memory measurement.
    pub idle_connections: usize,
    /// One entry per server.
    pub servers: Vec<ServerResult>,
}

/// One server's figures.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerResult {
    /// Short name of the variant.
    pub name: String,
    /// The server's flags.
    pub args: Vec<String>,
    /// Throughput of each run, as loadgen measured it.
    pub throughput_requests_per_second: Vec<f64>,
    /// Median of those runs.
    pub median_throughput_requests_per_second: f64,
    /// Requests that failed over all runs.
    pub requests_failed: u64,
    /// Server CPU time (user + system) per answered request, for each run: what a request
    /// costs the server, whether or not the client was the bottleneck.
    pub cpu_microseconds_per_request: Vec<f64>,
    /// Median of those runs.
    pub median_cpu_microseconds_per_request: f64,
    /// Server CPU time over the run's wall time, for each run: below 1, the server had
    /// time to spare and the client (or the machine) set the pace.
    pub cpu_busy_fraction: Vec<f64>,
    /// Resident memory once listening, before any connection.
    pub rss_before_bytes: u64,
    /// Resident memory with the idle connections open.
    pub rss_idle_bytes: u64,
    /// `(rss_idle - rss_before) / idle_connections`: user-space memory per connection
    /// (kernel socket buffers are not in a process's RSS).
    pub bytes_per_idle_connection: f64,
}

/// The middle value (the upper one of an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The markdown report of the results in `<out>.json` (`out` repository-relative): a table
/// per server and the verdict against issue 4's targets.
pub fn render_markdown(results: &Results, out: &str) -> String {
    let mut md = String::from("# One mio loop vs tokio current-thread, zero delay\n\n");
    let _ = writeln!(
        md,
        "Rendered from `{out}.json` by `cargo run --release -p server-mio --example \
         mio_vs_tokio_current -- --out {out} --render-only`; do not edit by hand.\n"
    );
    let _ = writeln!(
        md,
        "Measured (after `cargo build --release -p server-mio -p server-async -p loadgen`) \
         with: `{}`\n",
        results.command
    );
    if let Some(note) = &results.note {
        let _ = writeln!(md, "Note: {note}\n");
    }
    let _ = writeln!(md, "Machine: {}\n", results.environment);
    let _ = writeln!(
        md,
        "Load: {} persistent connections x {} requests each, line framing, delay 0; server on \
         CPU 0, loadgen on CPU 1. Memory: {} connections that made one request each, then \
         idle.\n",
        results.connections, results.requests_per_conn, results.idle_connections
    );
    md.push_str(
        "| server | best req/s | median req/s | runs (req/s) | server CPU µs/request \
         | server CPU busy | failed | RSS before | RSS with idle conns | bytes per idle conn |\n",
    );
    md.push_str("|---|---:|---:|---|---:|---|---:|---:|---:|---:|\n");
    for s in &results.servers {
        let _ = writeln!(
            md,
            "| {} (`{}`) | {:.0} | {:.0} | {} | {:.1} | {} | {} | {:.1} MiB | {:.1} MiB | {:.0} |",
            s.name,
            s.args.join(" "),
            best(&s.throughput_requests_per_second),
            s.median_throughput_requests_per_second,
            list(&s.throughput_requests_per_second, |r| format!("{r:.0}")),
            s.median_cpu_microseconds_per_request,
            list(&s.cpu_busy_fraction, |f| format!("{:.0}%", f * 100.0)),
            s.requests_failed,
            s.rss_before_bytes as f64 / 1048576.0,
            s.rss_idle_bytes as f64 / 1048576.0,
            s.bytes_per_idle_connection
        );
    }
    md.push_str(&render_verdict(results));
    md
}

fn list(values: &[f64], format: impl Fn(f64) -> String) -> String {
    values
        .iter()
        .map(|&v| format(v))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The fastest run: on a shared machine, interference only ever slows a run down, so the
/// best of several alternating runs is the closest to what the server can do.
fn best(values: &[f64]) -> f64 {
    values.iter().copied().fold(0.0, f64::max)
}

/// Ratios `a[i] / b[i]` of runs made back to back, so that slow drift on the machine
/// cancels out; returns their median and how many exceed 1.
fn paired(a: &[f64], b: &[f64]) -> (f64, usize, usize) {
    let ratios: Vec<f64> = a
        .iter()
        .zip(b)
        .map(|(x, y)| x / y.max(f64::MIN_POSITIVE))
        .collect();
    let wins = ratios.iter().filter(|&&r| r > 1.0).count();
    (median(&ratios), wins, ratios.len())
}

fn render_verdict(results: &Results) -> String {
    let [mio, tokio] = [&results.servers[0], &results.servers[1]];
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let (rps, rps_wins, n) = paired(
        &mio.throughput_requests_per_second,
        &tokio.throughput_requests_per_second,
    );
    let best_ratio = best(&mio.throughput_requests_per_second)
        / best(&tokio.throughput_requests_per_second).max(f64::MIN_POSITIVE);
    // Requests per second of server CPU is 1 / (CPU per request): tokio's cost over mio's.
    let (cpu, cpu_wins, _) = paired(
        &tokio.cpu_microseconds_per_request,
        &mio.cpu_microseconds_per_request,
    );
    let memory =
        mio.bytes_per_idle_connection / tokio.bytes_per_idle_connection.max(f64::MIN_POSITIVE);
    let mut text = format!(
        "\nmio / tokio, each round's two runs compared (median of the {n} ratios):\n\n\
         - requests per second x{rps:.2}, mio ahead in {rps_wins} of {n} rounds; best runs \
         x{best_ratio:.2} (target >= 1: {});\n\
         - requests per second of server CPU (1 / CPU per request) x{cpu:.2}, mio ahead in \
         {cpu_wins} of {n} rounds (target >= 1: {});\n\
         - memory per idle connection x{memory:.2} (target <= 1: {}).\n",
        met(rps >= 1.0),
        met(cpu >= 1.0),
        met(memory <= 1.0)
    );
    let busiest = [mio, tokio]
        .iter()
        .map(|s| median(&s.cpu_busy_fraction))
        .fold(0.0, f64::max);
    if busiest < 0.9 {
        let _ = write!(
            text,
            "\nNeither server was saturated in the median run (CPU busy at most {:.0}%): the \
             client and the other work on the shared machine set the pace, so the req/s columns \
             carry that noise, while CPU per request is the server's own cost.\n",
            busiest * 100.0
        );
    }
    text
}
