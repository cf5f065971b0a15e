//! The human summary printed at the end of a run, rendered from the [`Report`] so that the
//! text and the JSON always agree.

use std::fmt::Write as _;

use crate::report::{Percentiles, Report};

/// Renders the summary: wall time, requests ok and failed (by kind), req/s, and the
/// connect-time and latency percentiles; open loop also the latency from the actual send,
/// the schedule lag, the client's own lag (and how many requests waited for a connection),
/// the read lag (and how many replies were timed by the kernel's stamp) and, when the client
/// lag's p99 is over `--max-lag`, that the run was client-bound.
pub fn render(report: &Report) -> String {
    let mut text = String::new();
    let p = &report.parameters;
    let _ = writeln!(
        text,
        "loadgen {} -> {}: {} connections, concurrency {}, {} request(s) each, {} framing",
        report.tool_version,
        report.target,
        p.n_connections,
        p.concurrency,
        p.requests_per_conn,
        p.framing
    );
    let _ = writeln!(text, "  wall time        {:.3} s", report.wall_time_seconds);
    let _ = writeln!(
        text,
        "  requests         {} ok, {} failed, {} not sent",
        report.requests_ok, report.requests_failed, report.requests_not_sent
    );
    for (kind, count) in report.failures.nonzero() {
        let _ = writeln!(text, "    {:<22} {count}", kind.name());
    }
    if p.rate_requests_per_second.is_some() {
        let _ = writeln!(text, "  started late     {}", report.requests_started_late);
        let _ = writeln!(
            text,
            "  waited for conn  {}",
            report.requests_waited_for_connection
        );
    }
    let _ = writeln!(
        text,
        "  throughput       {:.1} req/s",
        report.throughput_requests_per_second
    );
    if let Some(seconds) = report.all_connected_seconds {
        let _ = writeln!(text, "  all connected    {seconds:.3} s");
    }
    text.push_str(&line("connect time", &report.connect_time));
    text.push_str(&line("latency", &report.latency));
    if p.rate_requests_per_second.is_some() {
        text.push_str(&line("  from send", &report.latency_from_send));
        text.push_str(&line("schedule lag", &report.schedule_lag));
        text.push_str(&line("client lag", &report.client_lag));
        text.push_str(&line("read lag", &report.read_lag));
        let _ = writeln!(
            text,
            "  replies timed    {} by the kernel's arrival stamp, {} by their read",
            report.replies_timed_by_kernel,
            report
                .requests_ok
                .saturating_sub(report.replies_timed_by_kernel)
        );
    }
    if report.client_bound {
        let _ = writeln!(
            text,
            "  client-bound: client lag p99 {} is over --max-lag {}; the latencies include \
             the client's own lag",
            format_us(report.client_lag.p99_us),
            format_us(p.max_schedule_lag_us)
        );
    }
    text
}

fn line(name: &str, stats: &Percentiles) -> String {
    format!(
        "  {name:<16} p50 {} p90 {} p99 {} p99.9 {} max {} ({} samples)\n",
        format_us(stats.p50_us),
        format_us(stats.p90_us),
        format_us(stats.p99_us),
        format_us(stats.p99_9_us),
        format_us(stats.max_us),
        stats.count
    )
}

/// Formats microseconds the way the summary shows them, with a unit that keeps 3-4
/// significant digits (`250.1µs`, `12.35ms`, `1.07s`).
pub fn format_us(value: f64) -> String {
    if value >= 1_000_000.0 {
        format!("{:.2}s", value / 1_000_000.0)
    } else if value >= 1_000.0 {
        format!("{:.2}ms", value / 1_000.0)
    } else {
        format!("{value:.1}µs")
    }
}
