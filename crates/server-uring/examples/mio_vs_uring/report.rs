//! The mio-vs-uring benchmark's results: typed, serializable, with units in the names, and the
//! markdown rendered from them. Shared with `tests/bench_report.rs`, which checks that the
//! committed markdown is exactly what the committed JSON renders to.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

/// Everything measured, with units in the names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results {
    /// The command that produced these results, as typed at the repository root.
    pub command: String,
    /// Anything said about the run after it (a missed target's cause, a profile summary).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
    /// CPU model and count, and kernel release, of the machine measured on.
    pub environment: String,
    /// The 1-minute load average when the run began: the machine is shared.
    pub load_average_at_start: f64,
    /// Why system calls and context switches were not counted, when they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub perf_not_measured: Option<String>,
    /// One entry per (delay, connections).
    pub scenarios: Vec<Scenario>,
}

/// One load shape, both servers measured under it in alternating runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    /// The servers' `--delay`, in milliseconds.
    pub delay_ms: u64,
    /// Persistent client connections, all open at once.
    pub connections: u64,
    /// Sequential requests on each connection.
    pub requests_per_conn: u64,
    /// mio first, then uring.
    pub servers: Vec<ServerRuns>,
}

/// One server's runs in one scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerRuns {
    /// Short name of the server.
    pub name: String,
    /// The server's own flags.
    pub args: Vec<String>,
    /// One entry per round.
    pub runs: Vec<Run>,
}

/// What one loadgen run against a fresh server measured.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Run {
    /// Requests answered correctly.
    pub requests_ok: u64,
    /// Requests that failed.
    pub requests_failed: u64,
    /// Throughput as loadgen measured it (connect included).
    pub requests_per_second: f64,
    /// 99th percentile latency per request, connect included.
    pub p99_ms: f64,
    /// Server user CPU time over the run, from `/proc/PID/stat`.
    pub user_cpu_seconds: f64,
    /// Server system CPU time over the run, from `/proc/PID/stat`.
    pub system_cpu_seconds: f64,
    /// System calls the server entered over the run (`raw_syscalls:sys_enter`), if counted.
    pub syscalls: Option<u64>,
    /// The server's context switches over the run, if counted.
    pub context_switches: Option<u64>,
}

impl Run {
    fn per_request(&self, total: f64) -> f64 {
        total / (self.requests_ok.max(1) as f64)
    }
    fn user_us(&self) -> f64 {
        self.per_request(self.user_cpu_seconds * 1e6)
    }
    fn system_us(&self) -> f64 {
        self.per_request(self.system_cpu_seconds * 1e6)
    }
    fn cpu_us(&self) -> f64 {
        self.user_us() + self.system_us()
    }
    fn syscalls_per_request(&self) -> Option<f64> {
        self.syscalls.map(|n| self.per_request(n as f64))
    }
    fn switches_per_request(&self) -> Option<f64> {
        self.context_switches.map(|n| self.per_request(n as f64))
    }
}

/// The middle value (the upper one of an even count); 0 when empty.
pub fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
}

/// The median over `runs` of `figure`, or `None` when a run lacks it.
fn median_of(runs: &[Run], figure: impl Fn(&Run) -> Option<f64>) -> Option<f64> {
    let values: Option<Vec<f64>> = runs.iter().map(figure).collect();
    values.filter(|v| !v.is_empty()).map(|v| median(&v))
}

/// The medians a row shows.
struct Row {
    rate: f64,
    p99_ms: f64,
    user_us: f64,
    system_us: f64,
    cpu_us: f64,
    syscalls: Option<f64>,
    switches: Option<f64>,
    failed: u64,
}

fn row(server: &ServerRuns) -> Row {
    let runs = &server.runs;
    let of = |f: fn(&Run) -> f64| median_of(runs, |r| Some(f(r))).unwrap_or(0.0);
    Row {
        rate: of(|r| r.requests_per_second),
        p99_ms: of(|r| r.p99_ms),
        user_us: of(Run::user_us),
        system_us: of(Run::system_us),
        cpu_us: of(Run::cpu_us),
        syscalls: median_of(runs, Run::syscalls_per_request),
        switches: median_of(runs, Run::switches_per_request),
        failed: runs.iter().map(|r| r.requests_failed).sum(),
    }
}

fn optional(value: Option<f64>, digits: usize) -> String {
    value.map_or("not measured".to_owned(), |v| format!("{v:.digits$}"))
}

/// The markdown report of the results in `<out>.json` (`out` repository-relative).
pub fn render_markdown(results: &Results, out: &str) -> String {
    let mut md = String::from("# mio vs io_uring, one loop each, persistent connections\n\n");
    let _ = writeln!(
        md,
        "Rendered from `{out}.json` by `cargo run --release -p server-uring --example \
         mio_vs_uring -- --out {out} --render-only`; do not edit by hand.\n"
    );
    let _ = writeln!(
        md,
        "Measured (after `cargo build --release -p server-mio -p server-uring -p loadgen`) \
         with: `{}`\n",
        results.command
    );
    let _ = writeln!(
        md,
        "Machine: {} (load average {:.2} at the start; the machine is shared)\n",
        results.environment, results.load_average_at_start
    );
    md.push_str(
        "Each run: a fresh server (`--loops 1 --idle-timeout off`) pinned to CPU 0, loadgen \
         pinned to CPU 1 with every connection open at once, each making its requests one \
         after another (closed loop); mio and uring alternate run by run. CPU time comes from \
         `/proc/PID/stat`, system calls and context switches from `perf stat -e \
         raw_syscalls:sys_enter,context-switches -p PID` over the whole run, connection set-up \
         and tear-down included (amortised over the requests of each connection). Figures are \
         medians over the rounds.\n\n",
    );
    if let Some(why) = &results.perf_not_measured {
        let _ = writeln!(
            md,
            "System calls and context switches not measured: {why}\n"
        );
    }
    md.push_str(
        "| delay | connections | requests/conn | server | req/s | p99 ms | user µs/req | \
         system µs/req | CPU µs/req | syscalls/req | ctx switches/req | failed |\n",
    );
    md.push_str("|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n");
    for scenario in &results.scenarios {
        for server in &scenario.servers {
            let r = row(server);
            let _ = writeln!(
                md,
                "| {} ms | {} | {} | {} (`{}`) | {:.0} | {:.1} | {:.2} | {:.2} | {:.2} | {} | {} \
                 | {} |",
                scenario.delay_ms,
                scenario.connections,
                scenario.requests_per_conn,
                server.name,
                server.args.join(" "),
                r.rate,
                r.p99_ms,
                r.user_us,
                r.system_us,
                r.cpu_us,
                optional(r.syscalls, 3),
                optional(r.switches, 3),
                r.failed
            );
        }
    }
    md.push_str(&render_verdict(results));
    if let Some(note) = &results.note {
        let _ = writeln!(md, "\nNote: {note}");
    }
    md
}

/// The targets, scenario by scenario, as ratios of the same run.
fn render_verdict(results: &Results) -> String {
    let met = |ok: bool| if ok { "met" } else { "NOT met" };
    let mut text = String::from("\nuring against mio, scenario by scenario:\n\n");
    for scenario in &results.scenarios {
        let [mio, uring] = [&scenario.servers[0], &scenario.servers[1]].map(row);
        let cpu = uring.cpu_us / mio.cpu_us.max(f64::MIN_POSITIVE);
        let rate = uring.rate / mio.rate.max(f64::MIN_POSITIVE);
        let _ = write!(
            text,
            "- {} ms, {} connections: CPU per request x{cpu:.2} (target <= 0.8: {}); requests \
             per second x{rate:.2}",
            scenario.delay_ms,
            scenario.connections,
            met(cpu <= 0.8)
        );
        if let (Some(u), Some(m)) = (uring.syscalls, mio.syscalls) {
            let _ = write!(text, "; system calls per request {u:.3} against {m:.3}");
            if scenario.delay_ms == 100 && scenario.connections >= 1000 {
                let _ = write!(text, " (target <= 0.5: {})", met(u <= 0.5));
            }
        }
        text.push_str(".\n");
    }
    text.push_str(
        "\nThe max sustainable rate target is measured by `cargo xtask capacity` on the `mio` \
         and `uring` catalogue rows, not here.\n",
    );
    text
}
