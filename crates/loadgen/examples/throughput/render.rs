//! The results of the client-throughput benchmark as JSON types, and the markdown rendered
//! from them. Kept apart from the measuring code so that `tests/throughput_report.rs` can
//! re-render the committed JSON and check the committed markdown byte for byte.

use serde::{Deserialize, Serialize};

/// Version of [`ThroughputResults`]'s JSON.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything one run of the benchmark measured: the source of truth for its markdown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputResults {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// The command that made the measurements, relative to the repository root.
    pub command: String,
    /// CPUs available to the client.
    pub n_cpus: u64,
    /// Kernel release, when known.
    pub kernel_release: Option<String>,
    /// The 1, 5 and 15 minute load averages before the measurements.
    pub load_average_before: String,
    /// The same after them.
    pub load_average_after: String,
    /// One row per measured configuration, in the order measured.
    pub rows: Vec<ThroughputRow>,
}

/// One measured configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ThroughputRow {
    /// `persistent` (connections kept open) or `burst` (one request per connection).
    pub load: String,
    /// Connections: kept open, or opened at once in a burst.
    pub n_connections: u64,
    /// Client threads.
    pub n_threads: u64,
    /// Wall time of the measured run.
    pub wall_time_seconds: f64,
    /// Requests answered correctly.
    pub requests_ok: u64,
    /// `requests_ok / wall_time_seconds`.
    pub throughput_requests_per_second: f64,
    /// User CPU of the client process over the measured run.
    pub client_user_seconds: f64,
    /// System CPU of the client process over the measured run.
    pub client_system_seconds: f64,
    /// CPU (user + system) of the server process over the same run.
    pub server_cpu_seconds: f64,
    /// Median request latency.
    pub latency_p50_us: f64,
    /// 99th-percentile request latency.
    pub latency_p99_us: f64,
}

/// The markdown page for `results`.
pub fn render(results: &ThroughputResults) -> String {
    let mut text = format!(
        "# loadgen throughput (zero-delay server, persistent connections)\n\n\
         Written by `crates/loadgen/examples/throughput/main.rs` from\n\
         `benches-results/loadgen-throughput.json`; do not edit by hand. Re-render with\n\
         `cargo run --release -p loadgen --example throughput -- --render \
         benches-results/loadgen-throughput.json --out benches-results/loadgen-throughput.md`.\n\n\
         Command: `{}`\n\n\
         Machine: {} CPUs, kernel {}; load average {} before and {}\n\
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
        results.command,
        results.n_cpus,
        results.kernel_release.as_deref().unwrap_or("unknown"),
        results.load_average_before,
        results.load_average_after,
    );
    for row in &results.rows {
        text.push_str(&render_row(row));
    }
    text
}

fn render_row(row: &ThroughputRow) -> String {
    let per_request_us = |cpu: f64| cpu * 1e6 / row.requests_ok.max(1) as f64;
    let load = match row.load.as_str() {
        "burst" => "burst, 1 request/conn",
        other => other,
    };
    format!(
        "| {} | {} | {} | {:.2} | {} | {:.0} | {:.2} ({:.2} + {:.2}) | {:.2} | {:.1} | {:.1} |\n",
        load,
        row.n_connections,
        row.n_threads,
        row.wall_time_seconds,
        row.requests_ok,
        row.throughput_requests_per_second,
        per_request_us(row.client_user_seconds + row.client_system_seconds),
        per_request_us(row.client_user_seconds),
        per_request_us(row.client_system_seconds),
        per_request_us(row.server_cpu_seconds),
        row.latency_p50_us,
        row.latency_p99_us,
    )
}
