//! A soak's report (`README.md`) and its files (`summary.json`, one chart per server),
//! rendered from a [`SoakSummary`] alone, like every other report.

use std::fmt::Write as _;
use std::path::Path;

use crate::export::format::{MIB, dash, escape, num};
use crate::export::{self, Exporter, JsonExporter, README_FILE, markdown, soak_chart};
use crate::study::soak::results::{ServerSoak, SoakSummary};

/// A soak's `README.md`.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoakMarkdownExporter;

impl Exporter<SoakSummary> for SoakMarkdownExporter {
    fn file_name(&self) -> &'static str {
        README_FILE
    }

    fn serialize(&self, summary: &SoakSummary) -> anyhow::Result<Option<String>> {
        Ok(Some(readme(summary)))
    }
}

/// The chart file of `server` in a soak's directory.
pub fn chart_file(server: &str) -> String {
    format!("soak-{server}.svg")
}

/// Writes a soak's report and its charts into `dir`, and its summary first when
/// `with_summary` (a new soak; a re-render leaves the summary as it is).
///
/// # Errors
/// When a file cannot be rendered or written; the message names it.
pub fn write(dir: &Path, summary: &SoakSummary, with_summary: bool) -> anyhow::Result<()> {
    if with_summary {
        export::write(dir, summary, &[&JsonExporter])?;
    }
    export::write(dir, summary, &[&SoakMarkdownExporter])?;
    for server in &summary.servers {
        let path = dir.join(chart_file(&server.name));
        export::write_text(&path, &soak_chart::svg(server, &summary.settings)?)?;
    }
    Ok(())
}

/// The report.
pub fn readme(summary: &SoakSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Soak `{}`\n", summary.label);
    out.push_str(
        "Rendered from `summary.json` by `cargo xtask soak --render DIR` (or `cargo xtask \
         report DIR`); do not edit by hand.\n\n",
    );
    markdown::environment(&mut out, &summary.env);
    what_it_checks(&mut out, summary);
    out.push_str(&headline(summary));
    verdict_table(&mut out, summary);
    hostile_table(&mut out, summary);
    charts(&mut out, summary);
    how_to_read(&mut out, summary);
    out
}

/// One sentence on the whole soak: what `soak` prints at the end.
pub fn headline(summary: &SoakSummary) -> String {
    let s = &summary.settings;
    let failed: Vec<&str> = summary
        .servers
        .iter()
        .filter(|v| !v.verdict.passed)
        .map(|v| v.name.as_str())
        .collect();
    let n = summary.servers.len();
    let result = if failed.is_empty() {
        format!("**all {n} passed**")
    } else {
        format!("**{} of {n} failed** ({})", failed.len(), failed.join(", "))
    };
    format!(
        "Soak of {n} servers for {} s each under {} req/s with hostile waves every {} s: {result}.\n\n",
        num(s.duration_seconds),
        num(s.requests_per_second),
        num(s.window_seconds)
    )
}

/// One server's verdict in a line, for progress output.
pub fn verdict_line(server: &ServerSoak) -> String {
    let v = &server.verdict;
    let growth = v
        .rss_growth_fraction
        .map_or_else(dash, |g| format!("{:+.1} %", g * 100.0));
    let facts = format!(
        "{} requests ok, {} failed, RSS {growth}, {}/{} waves settled, {}/{} hostile clients conforming",
        v.requests_ok,
        v.requests_failed,
        v.waves_settled,
        v.waves,
        v.hostile_conforming,
        v.hostile_clients
    );
    if v.passed {
        format!("passed: {facts}")
    } else {
        format!("FAILED: {}; {facts}", v.reasons.join("; "))
    }
}

fn what_it_checks(out: &mut String, summary: &SoakSummary) {
    let s = &summary.settings;
    let wave: Vec<String> = s.wave.iter().map(|(k, n)| format!("{n} {k}")).collect();
    let _ = writeln!(
        out,
        "**What this checks: correctness and leaks, not speed.** Each server ran for {} s under \
         a steady normal load: loadgen in open loop at {} req/s on {} persistent connections, \
         {} delay ({}), every reply checked byte for byte, as consecutive windows of {} s (one \
         p99 point each). {} s into every window a wave of hostile clients ({}; never-readers and \
         idle clients hold {} s, dribblers send a byte every {} ms) ran against it. RSS, open \
         descriptors, threads and CPU were read from `/proc` every {} s.",
        num(s.duration_seconds),
        num(s.requests_per_second),
        s.connections,
        s.delay,
        s.delay_kind,
        num(s.window_seconds),
        num(s.wave_offset_seconds),
        wave.join(", "),
        num(s.hostile_hold_seconds),
        num(s.dribble_interval_ms),
        num(s.sample_interval_seconds)
    );
    if s.parallel > 1 {
        let _ = writeln!(
            out,
            "{} servers were soaked at a time on the same {} cores, each with its own loadgen \
             and hostile clients: latencies here are not a measure of any server's speed.",
            s.parallel, summary.env.cores
        );
    }
    let _ = writeln!(out, "\nCommand: `{}`\n", s.command);
}

fn verdict_table(out: &mut String, summary: &SoakSummary) {
    out.push_str("## Verdict per server\n\n");
    out.push_str(
        "| server | model | verdict | normal requests ok | failed | p99 ms, median of windows (max) | loadgen lag p99 ms, max | RSS MiB after warm-up → end | RSS growth | descriptors, baseline (peak) | waves settled | hostile clients conforming | threads | CPU s |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for server in &summary.servers {
        let v = &server.verdict;
        let mib = |b: Option<u64>| b.map_or_else(dash, |b| num(b as f64 / MIB));
        let growth = v
            .rss_growth_fraction
            .map_or_else(dash, |g| format!("{:+.1} %", g * 100.0));
        let p99: Vec<f64> = server.windows.iter().map(|w| w.latency_p99_ms).collect();
        let p99_cell = if p99.is_empty() {
            dash()
        } else {
            format!(
                "{} ({})",
                num(median(&p99)),
                num(p99.iter().copied().fold(0.0, f64::max))
            )
        };
        let lag = server
            .windows
            .iter()
            .filter_map(|w| w.schedule_lag_p99_ms)
            .reduce(f64::max)
            .map_or_else(dash, num);
        let baselines: Vec<u64> = server.waves.iter().map(|w| w.baseline_fds).collect();
        let fds = match (baselines.iter().min(), baselines.iter().max()) {
            (Some(lo), Some(hi)) => {
                let peak = server.waves.iter().map(|w| w.peak_fds).max().unwrap_or(0);
                let range = if lo == hi {
                    lo.to_string()
                } else {
                    format!("{lo}–{hi}")
                };
                format!("{range} ({peak})")
            }
            _ => dash(),
        };
        let threads = match (
            server.samples.iter().map(|s| s.threads).min(),
            server.samples.iter().map(|s| s.threads).max(),
        ) {
            (Some(lo), Some(hi)) if lo == hi => lo.to_string(),
            (Some(lo), Some(hi)) => format!("{lo}–{hi}"),
            _ => dash(),
        };
        let cpu = server
            .samples
            .last()
            .map_or_else(dash, |s| num(s.cpu_seconds));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {p99_cell} | {lag} | {} → {} | {growth} | {fds} | {}/{} | {}/{} | {threads} | {cpu} |",
            server.name,
            server.model,
            if v.passed { "passed" } else { "**failed**" },
            v.requests_ok,
            v.requests_failed,
            mib(v.rss_after_warmup_bytes),
            mib(v.rss_at_end_bytes),
            v.waves_settled,
            v.waves,
            v.hostile_conforming,
            v.hostile_clients
        );
    }
    out.push('\n');
    for server in summary.servers.iter().filter(|s| !s.verdict.passed) {
        let _ = writeln!(out, "- **{}** failed:", server.name);
        for reason in &server.verdict.reasons {
            let _ = writeln!(out, "  - {}", escape(reason));
        }
    }
    for skipped in &summary.skipped {
        let _ = writeln!(
            out,
            "- {} was not soaked: {}",
            skipped.server, skipped.reason
        );
    }
    if summary.servers.iter().any(|s| !s.verdict.passed) || !summary.skipped.is_empty() {
        out.push('\n');
    }
}

fn hostile_table(out: &mut String, summary: &SoakSummary) {
    out.push_str("## What the hostile clients saw\n\n");
    out.push_str(
        "Each kind judges what it saw against `docs/PROTOCOL.md`; the cells are conforming / \
         run, per server.\n\n",
    );
    let _ = write!(out, "| kind | what a conforming client saw |");
    for server in &summary.servers {
        let _ = write!(out, " {} |", server.name);
    }
    out.push_str("\n|---|---|");
    out.push_str(&"---|".repeat(summary.servers.len()));
    out.push('\n');
    for kind in summary.settings.wave.keys() {
        let example = summary
            .servers
            .iter()
            .find_map(|s| s.hostile.get(kind).and_then(|t| t.example.clone()))
            .map_or_else(dash, |e| {
                format!("`{}`", escape(e.trim_end()).replace('`', "'"))
            });
        let _ = write!(out, "| {kind} | {example} |");
        for server in &summary.servers {
            let cell = server
                .hostile
                .get(kind)
                .map_or_else(dash, |t| format!("{}/{}", t.conforming, t.clients));
            let _ = write!(out, " {cell} |");
        }
        out.push('\n');
    }
    out.push('\n');
    for server in &summary.servers {
        for (kind, tally) in &server.hostile {
            for problem in &tally.problems {
                let _ = writeln!(out, "- {} {kind}: {}", server.name, escape(problem));
            }
        }
    }
}

fn charts(out: &mut String, summary: &SoakSummary) {
    out.push_str("## Over time\n\n");
    out.push_str(
        "Per server: RSS, open descriptors (the shaded spans are the hostile waves) and each \
         window's p99, against time since the server started.\n\n",
    );
    for server in &summary.servers {
        let _ = writeln!(
            out,
            "![{0}: RSS, descriptors and p99 over time]({1})\n",
            server.name,
            chart_file(&server.name)
        );
    }
}

fn how_to_read(out: &mut String, summary: &SoakSummary) {
    let s = &summary.settings;
    let c = &s.criteria;
    let _ = writeln!(
        out,
        "## How the verdict is made\n\n\
         A server passes when all of these hold:\n\
         - **no normal request failed or got a wrong reply** over every window (loadgen checks \
           each reply byte for byte; a request not sent counts as failed);\n\
         - **RSS grew at most {:.0} % after the warm-up**: the median of the first {:.0} % of \
           the samples after {} s against the median of the last {:.0} % (at least {} samples \
           each), so a transient peak of one wave does not count but a steady climb does;\n\
         - **descriptors came back to their baseline after every wave**: counted just before \
           the wave, while the normal load's connections were open, and again until they were \
           no more than that, within {} s of the wave's end;\n\
         - **every hostile client saw the server keep the protocol** (the `ERR` lines of an \
           oversized line and of invalid UTF-8, a dribbler's reply, silence for an idle client, \
           a never-reader kept, not dropped, for its hold);\n\
         - the server started, ran to the end and exited 0 after SIGTERM.\n",
        c.max_rss_growth_fraction * 100.0,
        c.end_fraction * 100.0,
        num(s.warmup_seconds),
        c.end_fraction * 100.0,
        crate::study::soak::results::Criteria::MIN_END_SAMPLES,
        num(s.settle_limit_seconds)
    );
}

fn median(values: &[f64]) -> f64 {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted[sorted.len() / 2]
}
