//! The results of the fidelity benchmark as JSON types, and the markdown rendered from them.
//! Kept apart from the measuring code so that `tests/fidelity_report.rs` can re-render the
//! committed JSON and check the committed markdown byte for byte.

use std::fmt::Write as _;

pub use loadgen::request_log::AwayFromSlowdowns;
use serde::{Deserialize, Serialize};

/// Version of [`FidelityResults`]'s JSON.
pub const SCHEMA_VERSION: u32 = 1;

/// Issue 15's targets for loadgen, checked on every loadgen row.
pub struct Targets {
    /// Most late starts, percent of the requests.
    pub late_percent: f64,
    /// Highest schedule-lag p99, µs.
    pub lag_p99_us: f64,
    /// Largest difference of loadgen's p99 from olc's, µs.
    pub p99_gap_us: f64,
}

/// The targets of issue 15.
pub const TARGETS: Targets = Targets {
    late_percent: 0.1,
    lag_p99_us: 1000.0,
    p99_gap_us: 2000.0,
};

/// One run of the benchmark: every client at every rate, one after the other per server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityResults {
    /// [`SCHEMA_VERSION`] when written.
    pub schema_version: u32,
    /// The command that made the measurements, relative to the repository root.
    pub command: String,
    /// The server's command line (pinned to CPU 0).
    pub server_command: String,
    /// Kernel release, when known.
    pub kernel_release: Option<String>,
    /// The 1, 5 and 15 minute load averages before the measurements.
    pub load_average_before: String,
    /// The same after them.
    pub load_average_after: String,
    /// Schedule-lag p99 above which a run counts as client-bound.
    pub max_schedule_lag_us: f64,
    /// The share of the speed probe's samples on CPUs 0 and 1 that ran below half their
    /// CPU's fastest, over the whole benchmark, in percent (`None` in results written before
    /// the probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_slowed_percent: Option<f64>,
    /// The `SCHED_FIFO` priority every client ran at (`None`: the default policy, and
    /// results written before there was a choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clients_fifo_priority: Option<i32>,
    /// The `SCHED_FIFO` priority the server ran at (`None`: the default policy, and results
    /// written before there was a choice).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server_fifo_priority: Option<i32>,
    /// One row per client run, grouped by connections and rate.
    pub rows: Vec<FidelityRow>,
}

/// One client's run at one rate.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FidelityRow {
    /// `loadgen`, `loadgen-before` (the binary before issue 15) or `olc`.
    pub client: String,
    /// Which round of the clients at this rate the run was, from 1 (`--rounds`; absent in
    /// the JSON for the first, and in results written before there were rounds).
    #[serde(default = "first_round", skip_serializing_if = "is_first_round")]
    pub round: u32,
    /// Persistent connections.
    pub n_connections: u64,
    /// Intended rate.
    pub rate_requests_per_second: f64,
    /// Length of the measured schedule.
    pub duration_seconds: f64,
    /// Requests answered correctly in the measured schedule.
    pub requests_ok: u64,
    /// Failed requests (wrong reply, reset, ...).
    pub requests_failed: u64,
    /// Requests sent more than 1 ms after their due time.
    pub requests_started_late: u64,
    /// Latency from the intended start: median.
    pub latency_p50_us: f64,
    /// Latency from the intended start: 90th percentile.
    pub latency_p90_us: f64,
    /// Latency from the intended start: 99th percentile.
    pub latency_p99_us: f64,
    /// Latency from the intended start: largest.
    pub latency_max_us: f64,
    /// Latency from the actual send: 99th percentile (`None` where the client has no such
    /// clock: loadgen before issue 15).
    pub latency_from_send_p99_us: Option<f64>,
    /// Schedule lag (send − due): median.
    pub schedule_lag_p50_us: Option<f64>,
    /// Schedule lag: 99th percentile.
    pub schedule_lag_p99_us: Option<f64>,
    /// Schedule lag: largest.
    pub schedule_lag_max_us: Option<f64>,
    /// Client lag (send − the later of due and the moment a connection was idle): median
    /// (`None` where the client reports none: results written before it, loadgen-before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_lag_p50_us: Option<f64>,
    /// Client lag: 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_lag_p99_us: Option<f64>,
    /// Client lag: largest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_lag_max_us: Option<f64>,
    /// Requests that waited for a busy connection after their due time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requests_waited_for_connection: Option<u64>,
    /// Read lag (a reply's read − its arrival as the kernel stamped it; its latency ends at
    /// the arrival): median (`None` where the client does not stamp replies: olc,
    /// loadgen-before, results written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_lag_p50_us: Option<f64>,
    /// Read lag: 99th percentile.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_lag_p99_us: Option<f64>,
    /// Read lag: largest.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub read_lag_max_us: Option<f64>,
    /// CPU (user + system) of the client process over its whole run, connects included.
    pub client_cpu_seconds: f64,
    /// Requests the client sent over its whole run (the divisor of CPU per request).
    pub requests_sent: u64,
    /// CPU of the client over a stretch of its schedule alone, every connection open: from
    /// 1 s after its open descriptors first reached the connection count to 1.5 s before
    /// it exited, sampled from `/proc` every 100 ms (`None` where that stretch was under
    /// 2 s, and in results written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule_cpu: Option<ScheduleCpu>,
    /// CPU of the server over the same client run.
    pub server_cpu_seconds: f64,
    /// The share of the speed probe's samples on CPUs 0 and 1 over this client's run that
    /// ran slowed, in percent (`None` in results written before the probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpus_slowed_percent: Option<f64>,
    /// loadgen's rows: the same run judged on the requests due away from the machine's
    /// slowdowns, from its request log (`None` for the other clients, and in results
    /// written before it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub away_from_slowdowns: Option<AwayFromSlowdowns>,
}

fn first_round() -> u32 {
    1
}

/// serde's `skip_serializing_if` passes a reference.
fn is_first_round(round: &u32) -> bool {
    *round == 1
}

/// A client's CPU over a stretch of its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ScheduleCpu {
    /// User + system CPU over the stretch.
    pub cpu_seconds: f64,
    /// How long the stretch was.
    pub seconds: f64,
}

/// Whether the late-start and lag targets hold over the requests away from slowdowns.
fn meets_late_and_lag(away: &AwayFromSlowdowns) -> bool {
    away.late_percent() <= TARGETS.late_percent
        && away
            .schedule_lag_p99_us
            .is_some_and(|p99| p99 <= TARGETS.lag_p99_us)
}

impl FidelityRow {
    /// The lag a run is judged client-bound on: the client lag where it was measured, else
    /// the schedule lag.
    fn judged_lag_p99_us(&self) -> Option<f64> {
        self.client_lag_p99_us.or(self.schedule_lag_p99_us)
    }

    /// Client CPU per request sent, microseconds.
    pub fn cpu_us_per_request(&self) -> f64 {
        self.client_cpu_seconds * 1e6 / self.requests_sent.max(1) as f64
    }

    /// Client CPU per request due over the stretch of its schedule alone, microseconds.
    pub fn schedule_cpu_us_per_request(&self) -> Option<f64> {
        self.schedule_cpu.map(|cpu| {
            cpu.cpu_seconds * 1e6 / (self.rate_requests_per_second * cpu.seconds).max(1.0)
        })
    }

    fn late_percent(&self) -> f64 {
        let total = (self.requests_ok + self.requests_failed).max(1);
        100.0 * self.requests_started_late as f64 / total as f64
    }

    /// Whether `other` ran against the same server at the same rate.
    fn same_cell(&self, other: &FidelityRow) -> bool {
        other.n_connections == self.n_connections
            && other.rate_requests_per_second == self.rate_requests_per_second
    }
}

/// olc's run in the same round of `row`'s cell: the run `row` is compared with.
fn olc_run<'a>(results: &'a FidelityResults, row: &FidelityRow) -> Option<&'a FidelityRow> {
    results
        .rows
        .iter()
        .find(|other| other.client == "olc" && other.round == row.round && row.same_cell(other))
}

/// How loadgen's p99 compares with olc's over every run of `row`'s cell.
#[derive(Debug, Clone, PartialEq)]
enum P99Check {
    /// Within the target in every run where olc kept its schedule.
    Met,
    /// Over it in every such run, on the same side of olc's.
    Missed,
    /// Nothing to judge on, or runs that disagree: the reason.
    Inconclusive(String),
}

/// loadgen's p99 against olc's of the same run, over every run of `row`'s cell where olc kept
/// its own schedule (where it fell behind, its p99 carries its own lag). With several runs
/// of each, a gap is a miss only when every run shows it on the same side: a server's p99
/// near its knee moves by more than the target between runs of one client, and gaps of
/// both signs are that spread, not loadgen's.
fn p99_check(results: &FidelityResults, row: &FidelityRow) -> P99Check {
    let mut gaps = Vec::new();
    let mut runs_behind = 0;
    for ours in results
        .rows
        .iter()
        .filter(|other| other.client == "loadgen" && row.same_cell(other))
    {
        match olc_run(results, ours) {
            Some(olc)
                if olc
                    .judged_lag_p99_us()
                    .is_some_and(|p99| p99 > results.max_schedule_lag_us) =>
            {
                runs_behind += 1;
            }
            Some(olc) => gaps.push(ours.latency_p99_us - olc.latency_p99_us),
            None => {}
        }
    }
    let limit = TARGETS.p99_gap_us;
    if gaps.is_empty() {
        return P99Check::Inconclusive(if runs_behind > 0 {
            "p99 vs olc inconclusive (olc fell behind)".to_owned()
        } else {
            "p99 vs olc inconclusive (no olc run)".to_owned()
        });
    }
    if gaps.iter().all(|gap| gap.abs() <= limit) {
        P99Check::Met
    } else if gaps.iter().all(|gap| *gap > limit) || gaps.iter().all(|gap| *gap < -limit) {
        P99Check::Missed
    } else {
        let listed: Vec<String> = gaps
            .iter()
            .map(|gap| format!("{:+.1}", gap / 1000.0))
            .collect();
        P99Check::Inconclusive(format!(
            "p99 vs olc inconclusive (the gap moved between runs: {} ms)",
            listed.join(", ")
        ))
    }
}

/// The markdown page for `results`.
pub fn render(results: &FidelityResults) -> String {
    let mut text = String::new();
    let _ = write!(
        text,
        "# loadgen fidelity: open loop at high rates against an independent client (issue 15)\n\n\
         Written by `crates/loadgen/examples/fidelity/main.rs` from\n\
         `benches-results/loadgen-fidelity.json`; do not edit by hand. Re-render with\n\
         `cargo run --release -p loadgen --example fidelity -- --render \
         benches-results/loadgen-fidelity.json --out benches-results/loadgen-fidelity.md`.\n\n\
         Command: `{}`\n\n\
         Server: `{}`, pinned to CPU 0, one fresh server per rate; every client runs on it\n\
         one after the other, pinned to CPU 1. Kernel {}; load average {} before and {}\n\
         after (the machine is shared: other work competes for its two cores).\n\n",
        results.command,
        results.server_command,
        results.kernel_release.as_deref().unwrap_or("unknown"),
        results.load_average_before,
        results.load_average_after,
    );
    text.push_str(CLIENTS);
    if let Some(priority) = results.clients_fifo_priority {
        let server = match results.server_fifo_priority {
            Some(server) => format!(
                "The server ran under `SCHED_FIFO` too, at priority {server}, so that no other \
                 process delayed its replies on CPU 0 (with it under the default policy, the \
                 backend's turns on CPU 0, up to 12.7 ms each, made most of a run's p99 at \
                 30,000 requests/s: 102.7–116.5 ms for either client in alternating runs, \
                 101.3–101.6 ms with the server real-time; see `main.rs`); loadgen-before ran \
                 under the default policy"
            ),
            None => "The server and loadgen-before ran under the default policy".to_owned(),
        };
        let _ = writeln!(
            text,
            "loadgen and olc ran under the real-time policy `SCHED_FIFO` at priority \
             {priority} (`chrt -f {priority}`), so that no other process of the machine \
             preempted them on CPU 1 (this machine's tool backend takes a CPU for about 20 ms \
             every second or so); the speed probe ran real-time one priority above them, and \
             also woke every 2 ms between its samples: a wake-up more than 1 ms late marks \
             its next sample slowed, from the wake-up's due time (the CPU was stopped from \
             outside). {server}: under `SCHED_FIFO` loadgen-before's tokio runtime fell apart \
             at 30000 requests/s and more (p99 387–823 ms, 4–32 % of its requests late).\n"
        );
    }
    let with_schedule_cpu = results.rows.iter().any(|row| row.schedule_cpu.is_some());
    if with_schedule_cpu {
        text.push_str(
            "**CPU, schedule alone** is the client's CPU over a stretch of its schedule with \
             every connection open (from 1 s after its open descriptors reached the \
             connection count to 1.5 s before it exited, from `/proc` every 100 ms) per \
             request due in it: loadgen opens and primes every connection before its \
             schedule, loadgen-before opens each when its first request falls due, so their \
             whole-run figures carry different connect costs.\n\n",
        );
    }
    let with_read_lag = results.rows.iter().any(|row| row.read_lag_p99_us.is_some());
    let with_client_lag = results
        .rows
        .iter()
        .any(|row| row.client_lag_p99_us.is_some());
    if with_client_lag {
        let _ = writeln!(
            text,
            "Latency is from each request's intended start (ms); \"from send\" from its actual \
             write; lag is send − due (µs); client lag is send − the later of due and the \
             moment a connection became idle for the request (µs), and \"waited\" counts the \
             requests due while every connection was busy (the server's slowness). A run is \
             client-bound when its client-lag p99 is over {:.0} µs. CPU is the client \
             process's user + system time over its whole run (connects included) per request \
             sent.\n",
            results.max_schedule_lag_us
        );
    } else {
        let _ = writeln!(
            text,
            "Latency is from each request's intended start (ms); \"from send\" from its actual \
             write; lag is send − due (µs). A run is client-bound when its lag p99 is over \
             {:.0} µs. CPU is the client process's user + system time over its whole run \
             (connects included) per request sent.\n",
            results.max_schedule_lag_us
        );
    }
    if with_read_lag {
        text.push_str(
            "loadgen ends a latency when the reply arrived, as the kernel stamped it \
             (`SO_TIMESTAMPING`), not when it read it; read lag is the read − that arrival \
             (µs), the client's own delay on the receiving side. olc ends it at its read.\n\n",
        );
    }
    if let Some(slowed) = results.cpus_slowed_percent {
        let _ = writeln!(
            text,
            "A speed probe ran throughout (`server_process::steadiness`): a thread on CPU 0 \
             and one on CPU 1 time the same arithmetic every 10 ms by their own CPU time. \
             These virtual CPUs now and then run at a fraction of their speed for tens of \
             milliseconds, unseen by the machine's kernel (no steal time, no other task), and \
             a client whose core is busy falls behind then. Over the whole benchmark {slowed:.1} \
             % of the probe's samples ran below half their CPU's fastest; **CPUs slowed** is \
             that share over each client's run.\n"
        );
    }
    if let Some(away) = results.rows.iter().find_map(|row| row.away_from_slowdowns) {
        let (late, near, logged, away_requests) = results
            .rows
            .iter()
            .filter_map(|row| row.away_from_slowdowns)
            .fold((0, 0, 0, 0), |(late, near, logged, away), a| {
                (
                    late + a.requests_started_late + a.late_near_slowdowns,
                    near + a.late_near_slowdowns,
                    logged + a.requests_logged,
                    away + a.requests,
                )
            });
        let near_share = 100.0 * (logged - away_requests) as f64 / logged.max(1) as f64;
        let _ = writeln!(
            text,
            "loadgen logs every request (`--request-log`), so its rows are judged again on \
             the requests due **away from slowdowns**: with no slowed probe sample from {:.0} \
             ms before their due time to {:.0} ms after (a slowdown, or the catch-up after \
             one). The column gives the share of the requests that were away, their late \
             starts and their lag p99 (µs). Over every loadgen row, {near} of its {late} late \
             starts ({:.1} %) were due near a slowdown, where {near_share:.1} % of its \
             requests were.\n",
            away.before_due_ms,
            away.after_due_ms,
            100.0 * near as f64 / late.max(1) as f64,
        );
    }
    let rounds = results.rows.iter().map(|row| row.round).max().unwrap_or(1);
    // The rows are in the order the clients ran: the runs in which olc went first.
    let mut olc_first: Vec<u32> = results
        .rows
        .iter()
        .enumerate()
        .filter(|(i, row)| {
            row.client == "olc"
                && results.rows[*i..].iter().any(|later| {
                    later.client == "loadgen" && later.round == row.round && row.same_cell(later)
                })
        })
        .map(|(_, row)| row.round)
        .collect();
    olc_first.sort_unstable();
    olc_first.dedup();
    let order = if olc_first.is_empty() {
        "loadgen first in each".to_owned()
    } else {
        let runs: Vec<String> = olc_first.iter().map(u32::to_string).collect();
        format!(
            "olc first in run {} and loadgen first in the others",
            runs.join(", ")
        )
    };
    let rounds_text = if rounds > 1 {
        format!(
            " Each client ran {rounds} times on each server (*run 2* and on), {order}, since \
             near the server's knee its p99 moves by more than {:.0} ms between runs of one \
             client. So a p99 gap is a miss only when every run shows it on the same side of \
             olc's; within {:.0} ms in every run is met, and gaps that change sides are the \
             server's spread, inconclusive. The verdict is the cell's, on each of its loadgen \
             rows.",
            TARGETS.p99_gap_us / 1000.0,
            TARGETS.p99_gap_us / 1000.0
        )
    } else {
        String::new()
    };
    let _ = writeln!(
        text,
        "The targets column checks loadgen's rows against issue 15: late starts ≤ {} %, \
         lag p99 ≤ {:.0} µs, p99 within {:.0} ms of olc's at the same rate (of the same run; \
         inconclusive where olc itself was client-bound: its p99 then carries its own lag), \
         and, where both were measured, CPU per request over the schedule alone no higher \
         than loadgen-before's.{rounds_text}\n",
        TARGETS.late_percent,
        TARGETS.lag_p99_us,
        TARGETS.p99_gap_us / 1000.0
    );
    text.push_str(
        "| connections | rate req/s | client | ok | late | p50 ms | p90 ms | p99 ms | max ms | p99 from send ms | lag p50 / p99 / max µs |",
    );
    if with_client_lag {
        text.push_str(" client lag p50 / p99 / max µs | waited |");
    }
    if with_read_lag {
        text.push_str(" read lag p50 / p99 / max µs |");
    }
    let with_probe = results.cpus_slowed_percent.is_some();
    let with_away = results
        .rows
        .iter()
        .any(|row| row.away_from_slowdowns.is_some());
    text.push_str(" client CPU µs/req |");
    if with_schedule_cpu {
        text.push_str(" CPU, schedule alone µs/req |");
    }
    text.push_str(" server CPU s |");
    if with_probe {
        text.push_str(" CPUs slowed |");
    }
    if with_away {
        text.push_str(" away from slowdowns: requests / late / lag p99 µs |");
    }
    text.push_str(" p99 − olc p99 ms | client-bound | targets |\n");
    let n_columns = 16
        + if with_client_lag { 2 } else { 0 }
        + usize::from(with_read_lag)
        + usize::from(with_probe)
        + usize::from(with_away)
        + usize::from(with_schedule_cpu);
    text.push('|');
    text.push_str(&"---|".repeat(n_columns));
    text.push('\n');
    for row in &results.rows {
        text.push_str(&render_row(
            results,
            row,
            with_client_lag,
            with_read_lag,
            with_away,
            with_schedule_cpu,
        ));
    }
    text
}

/// `p50 / p99 / max` in whole µs, or `–` where the client has no such clock.
fn lag_cell(p50: Option<f64>, p99: Option<f64>, max: Option<f64>) -> String {
    let us = |us: Option<f64>| us.map_or("–".to_owned(), |us| format!("{us:.0}"));
    match (p50, p99) {
        (Some(_), Some(_)) => format!("{} / {} / {}", us(p50), us(p99), us(max)),
        _ => "–".to_owned(),
    }
}

/// What the clients are, said once on the page.
const CLIENTS: &str = "Clients:\n\
- **loadgen**: this crate's binary at this commit (`target/release/loadgen`).\n\
- **loadgen-before**: the binary of the commit before issue 15 (`d0f15d7`), built from it\n  \
  into `target/old-bin/loadgen`; its latency is from the schedule but it has no second\n  \
  clock, so it shows no lag.\n\
- **olc**: `crates/loadgen/examples/fidelity/olc.c`, a small open-loop client in C written\n  \
  for this benchmark (`cc -O2`, built by the example). It is *not* a third-party tool: no\n  \
  public open-loop client speaking raw TCP lines could be installed here (tcpkali and\n  \
  wrk2 are not in Debian; fortio needs the Go module proxy, which this machine cannot\n  \
  reach; Debian's wrk, h2load and sockperf speak HTTP or their own framing). It shares no\n  \
  code or design with loadgen: one epoll loop, wrk2-style pacing per connection\n  \
  (connection c sends request k at start + (k·N + c)/rate), exact percentiles from all\n  \
  samples. It sleeps on its timer for at least 500 µs at a time and then sends every\n  \
  request due by then (one wake-up per due time saturated its core before 55,000 req/s).\n\n";

fn render_row(
    results: &FidelityResults,
    row: &FidelityRow,
    with_client_lag: bool,
    with_read_lag: bool,
    with_away: bool,
    with_schedule_cpu: bool,
) -> String {
    let ms = |us: f64| format!("{:.1}", us / 1000.0);
    let mut lag = lag_cell(
        row.schedule_lag_p50_us,
        row.schedule_lag_p99_us,
        row.schedule_lag_max_us,
    );
    if with_client_lag {
        let client = lag_cell(
            row.client_lag_p50_us,
            row.client_lag_p99_us,
            row.client_lag_max_us,
        );
        let waited = row
            .requests_waited_for_connection
            .map_or("–".to_owned(), |n| n.to_string());
        let _ = write!(lag, " | {client} | {waited}");
    }
    if with_read_lag {
        let read = lag_cell(
            row.read_lag_p50_us,
            row.read_lag_p99_us,
            row.read_lag_max_us,
        );
        let _ = write!(lag, " | {read}");
    }
    let gap_us = olc_run(results, row)
        .filter(|_| row.client != "olc")
        .map(|olc| row.latency_p99_us - olc.latency_p99_us);
    let versus = gap_us.map_or("–".to_owned(), |gap| format!("{:+.1}", gap / 1000.0));
    let bound = match row.judged_lag_p99_us() {
        Some(p99) if p99 > results.max_schedule_lag_us => "**yes**",
        Some(_) => "no",
        None => "–",
    };
    let before_cpu = results
        .rows
        .iter()
        .find(|other| other.client == "loadgen-before" && row.same_cell(other))
        .and_then(FidelityRow::schedule_cpu_us_per_request);
    let targets = if row.client == "loadgen" {
        let mut verdict = targets_verdict(row, &p99_check(results, row), before_cpu);
        if let Some(away) = row
            .away_from_slowdowns
            .filter(|_| verdict.starts_with("missed"))
        {
            verdict.push_str(if meets_late_and_lag(&away) {
                "; away from slowdowns late and lag met"
            } else {
                "; away from slowdowns late or lag missed too"
            });
        }
        verdict
    } else {
        "–".to_owned()
    };
    let slowed = if results.cpus_slowed_percent.is_some() {
        let cell = row
            .cpus_slowed_percent
            .map_or("–".to_owned(), |p| format!("{p:.1} %"));
        format!(" {cell} |")
    } else {
        String::new()
    };
    let schedule_cpu = if with_schedule_cpu {
        let cell = row
            .schedule_cpu_us_per_request()
            .map_or("–".to_owned(), |us| format!("{us:.2}"));
        format!(" {cell} |")
    } else {
        String::new()
    };
    let away = if with_away {
        let cell = row.away_from_slowdowns.map_or("–".to_owned(), |a| {
            format!(
                "{:.1} % / {:.3} % / {}",
                a.away_percent(),
                a.late_percent(),
                a.schedule_lag_p99_us
                    .map_or("–".to_owned(), |us| format!("{us:.0}"))
            )
        });
        format!(" {cell} |")
    } else {
        String::new()
    };
    let client = if row.round > 1 {
        format!("{}, run {}", row.client, row.round)
    } else {
        row.client.clone()
    };
    format!(
        "| {} | {:.0} | {} | {} | {} ({:.2} %) | {} | {} | {} | {} | {} | {} | {:.2} |{schedule_cpu} {:.2} |{slowed}{away} {} | {} | {} |\n",
        row.n_connections,
        row.rate_requests_per_second,
        client,
        row.requests_ok,
        row.requests_started_late,
        row.late_percent(),
        ms(row.latency_p50_us),
        ms(row.latency_p90_us),
        ms(row.latency_p99_us),
        ms(row.latency_max_us),
        row.latency_from_send_p99_us.map_or("–".to_owned(), ms),
        lag,
        row.cpu_us_per_request(),
        row.server_cpu_seconds,
        versus,
        bound,
        targets,
    )
}

/// `met`, or which of the issue-15 targets the row missed (the CPU only where both loadgens'
/// schedule-alone CPU was measured), the p99 as [`p99_check`] found it over the cell's runs:
/// an inconclusive p99 is not met, and says why.
fn targets_verdict(row: &FidelityRow, p99: &P99Check, before_cpu_us: Option<f64>) -> String {
    let mut missed = Vec::new();
    if row.late_percent() > TARGETS.late_percent {
        missed.push("late");
    }
    if row
        .schedule_lag_p99_us
        .is_none_or(|p99| p99 > TARGETS.lag_p99_us)
    {
        missed.push("lag");
    }
    if let (Some(ours), Some(before)) = (row.schedule_cpu_us_per_request(), before_cpu_us) {
        if ours > before {
            missed.push("cpu");
        }
    }
    let inconclusive = match p99 {
        P99Check::Met => None,
        P99Check::Missed => {
            missed.push("p99");
            None
        }
        P99Check::Inconclusive(why) => Some(why.clone()),
    };
    match (missed.is_empty(), inconclusive) {
        (true, None) => "met".to_owned(),
        (true, Some(inconclusive)) => inconclusive,
        (false, None) => format!("missed: {}", missed.join(", ")),
        (false, Some(inconclusive)) => format!("missed: {}; {inconclusive}", missed.join(", ")),
    }
}
