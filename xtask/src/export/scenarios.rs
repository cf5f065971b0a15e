//! The markdown report of one scenarios study, rendered from its [`ScenariosSummary`] and
//! nothing else: one table per metric with the scenarios as columns, a generated paragraph
//! per scenario (which model won, by how much, in the summary's numbers), issue 12's targets,
//! and how to read it.
//!
//! Like every report here it is a pure function of its JSON, with fixed precisions, so
//! rendering the same `summary.json` twice gives the same bytes.

use std::fmt::Write as _;

use crate::export::format::{dash, escape, num, ratio};
use crate::export::{markdown, targets};
use crate::results::Model;
use crate::study::scenarios::results::{
    Figures, ScenarioRun, ScenariosSummary, Settings, TIED_SHARE,
};

/// Answering at least this share of what keeping up answers counts as keeping up (the
/// capacity SLO's achieved-rate share).
const KEPT_UP_SHARE: f64 = 0.97;

/// What a server that keeps up answers per second of loadgen's measured phase: the rate
/// over the window, spread over the window and the delay its last replies take.
fn keeping_up_rate(summary: &ScenariosSummary, run: &ScenarioRun) -> f64 {
    let s = &summary.settings;
    let delay = run.scenario.mean_delay().as_secs_f64();
    s.requests_per_second * s.window_seconds / (s.window_seconds + delay)
}

/// The whole `README.md` of one scenarios study.
pub fn readme(summary: &ScenariosSummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Scenarios `{}`\n", summary.label);
    out.push_str(
        "Rendered from `summary.json` by `cargo xtask scenarios --render DIR` (or `cargo xtask \
         report DIR`); do not edit by hand. loadgen's raw report of every cell is under \
         `runs/`.\n\n",
    );
    markdown::environment(&mut out, &summary.env);
    settings(&mut out, summary);
    out.push_str(&headline(summary));
    for (title, metric) in METRICS.iter().skip(1) {
        table(&mut out, summary, title, *metric);
    }
    not_run(&mut out, summary);
    out.push_str("## Targets\n\n");
    out.push_str(
        "Issue 12's targets, checked on the scenarios they name; a target that cannot be \
         checked here is missed, with the reason.\n\n",
    );
    markdown::check_list(&mut out, &targets::scenario_checks(summary));
    how_to_read(&mut out, summary);
    out
}

/// The scenarios, the answered-rate table and a paragraph per scenario: what `scenarios`
/// prints at the end.
pub fn headline(summary: &ScenariosSummary) -> String {
    let mut out = String::new();
    scenarios_table(&mut out, summary);
    let (title, metric) = METRICS[0];
    table(&mut out, summary, title, metric);
    out.push_str("## What each scenario shows\n\n");
    for run in &summary.scenarios {
        let _ = writeln!(
            out,
            "### {} (`{}`)\n\n{}\n",
            run.scenario.name,
            run.scenario.spec,
            paragraph(summary, run)
        );
    }
    out
}

fn cpu_list(cpus: &[u32]) -> String {
    cpus.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

fn settings(out: &mut String, summary: &ScenariosSummary) {
    let s = &summary.settings;
    out.push_str("## Settings\n\n");
    out.push_str(
        "| offered rate | warm-up | window | reply timeout | give up after | CPUs (servers and loadgen) | backlog |\n",
    );
    out.push_str("|---|---|---|---|---|---|---|\n");
    let _ = writeln!(
        out,
        "| {:.0} req/s | {} s | {} s | {} s | {} s | {} | {} |\n",
        s.requests_per_second,
        num(s.warmup_seconds),
        num(s.window_seconds),
        num(s.timeout_seconds),
        num(s.give_up_after_seconds),
        cpu_list(&s.cpus),
        s.backlog
    );
    let _ = writeln!(out, "Command: `{}`\n", s.command);
    let _ = writeln!(
        out,
        "Every server may use all {} CPUs (it is not pinned) and shares them with loadgen: the \
         load is small, and the CPU-bound scenario is about what a server does with more than \
         one core. loadgen's own CPU and schedule lag are in the last table. Every cell is a \
         fresh server on persistent connections, offered {:.0} req/s open loop.\n",
        s.cpus.len(),
        s.requests_per_second
    );
}

fn scenarios_table(out: &mut String, summary: &ScenariosSummary) {
    out.push_str("## Scenarios\n\n| scenario | delay spec | what it models | connections |\n|---|---|---|---|\n");
    for run in &summary.scenarios {
        let s = &run.scenario;
        let models = match &run.skipped {
            Some(reason) => format!("{} (**not run**: {})", s.models, reason),
            None => s.models.clone(),
        };
        let _ = writeln!(
            out,
            "| {} | `{}` | {} | {} |",
            s.name,
            s.spec,
            escape(&models),
            run.connections
        );
    }
    for skipped in &summary.skipped {
        let _ = writeln!(
            out,
            "\nNot run anywhere: {}: {}.",
            skipped.server, skipped.reason
        );
    }
    out.push('\n');
}

/// One cell of a metric table, from the study's settings and a cell's figures.
type Metric = fn(&Settings, &Figures) -> String;

/// Every table of the report, in order: the title and the cell.
const METRICS: [(&str, Metric); 7] = [
    ("Requests answered per second", |_, f| {
        num(f.answered_requests_per_second())
    }),
    ("p50 latency, ms", |_, f| num(f.step.latency.p50_ms)),
    ("p99 latency, ms", |_, f| num(f.step.latency.p99_ms)),
    ("Failed requests, by kind", |_, f| failures(f)),
    (
        "Server CPU per answered request, µs (user + system)",
        |s, f| {
            let (user, system) = f.cpu_split_us_per_answered_request(s.warmup_seconds);
            format!(
                "{} ({} + {})",
                num(f.cpu_us_per_answered_request(s.warmup_seconds)),
                num(user),
                num(system)
            )
        },
    ),
    ("Server CPU, share of every core", |_, f| {
        format!("{:.0} %", f.step.server.cpu_ratio * 100.0)
    }),
    ("loadgen: CPU share and schedule lag p99", |_, f| {
        let lag = f.step.loadgen.lag_p99_ms.as_ref().map_or_else(
            |_| "not measured".to_owned(),
            |lag| format!("{} ms", num(*lag)),
        );
        format!("{:.0} %, {lag}", f.step.loadgen.cpu_ratio * 100.0)
    }),
];

fn failures(figures: &Figures) -> String {
    let step = &figures.step;
    if step.requests_failed == 0 {
        return "0".to_owned();
    }
    let mut kinds: Vec<String> = step
        .failures_by_kind
        .iter()
        .map(|(kind, n)| format!("{kind} {n}"))
        .collect();
    if figures.not_sent() > 0 {
        kinds.push(format!("not sent {}", figures.not_sent()));
    }
    format!("{} ({})", step.requests_failed, kinds.join(", "))
}

/// Every server of the study, in the order first met, with its model.
fn servers(summary: &ScenariosSummary) -> Vec<(&str, &Model)> {
    let mut servers: Vec<(&str, &Model)> = Vec::new();
    for cell in summary.scenarios.iter().flat_map(|s| &s.cells) {
        if !servers.iter().any(|(name, _)| *name == cell.server) {
            servers.push((&cell.server, &cell.model));
        }
    }
    servers
}

fn table(out: &mut String, summary: &ScenariosSummary, title: &str, metric: Metric) {
    let _ = writeln!(out, "## {title}\n");
    let names: Vec<&str> = summary
        .scenarios
        .iter()
        .map(|s| s.scenario.name.as_str())
        .collect();
    let _ = writeln!(out, "| server | model | {} |", names.join(" | "));
    let _ = writeln!(out, "|---|---|{}", "---|".repeat(names.len()));
    for (server, model) in servers(summary) {
        let cells: Vec<String> = summary
            .scenarios
            .iter()
            .map(|run| match run.cells.iter().find(|c| c.server == server) {
                Some(cell) => cell.figures.as_ref().map_or_else(
                    || "not measured".to_owned(),
                    |f| metric(&summary.settings, f),
                ),
                None => dash(),
            })
            .collect();
        let _ = writeln!(out, "| {server} | {model} | {} |", cells.join(" | "));
    }
    out.push('\n');
}

/// Which model won `run`, by how much, and who did not keep up, in the summary's numbers.
pub fn paragraph(summary: &ScenariosSummary, run: &ScenarioRun) -> String {
    if let Some(reason) = &run.skipped {
        return format!("Not run: {reason}.");
    }
    let ranked = run.ranked();
    let Some((winner, best)) = ranked.first() else {
        return "No server answered a request.".to_owned();
    };
    let rate = summary.settings.requests_per_second;
    let answered = best.answered_requests_per_second();
    let mut text = format!(
        "**{}** ({}) wins: {} req/s answered of the {rate:.0} offered, p99 {} ms, {} µs of \
         server CPU per answered request.",
        winner.server,
        winner.model,
        num(answered),
        num(best.step.latency.p99_ms),
        num(best.cpu_us_per_answered_request(summary.settings.warmup_seconds))
    );
    let tied = ranked
        .iter()
        .filter(|(_, f)| f.answered_requests_per_second() >= TIED_SHARE * answered)
        .count();
    if tied > 1 {
        let _ = write!(
            text,
            " {tied} rows answered within {:.0} % of the most; of those it had the lowest p99.",
            (1.0 - TIED_SHARE) * 100.0
        );
    }
    let mut seen = vec![&winner.model];
    let others: Vec<String> = ranked
        .iter()
        .filter(|(cell, _)| {
            let new = !seen.contains(&&cell.model);
            if new {
                seen.push(&cell.model);
            }
            new
        })
        .map(|(cell, f)| {
            let theirs = f.answered_requests_per_second();
            format!(
                "{} {} req/s at p99 {} ms ({} answered {} as many, p99 {} of theirs)",
                cell.server,
                num(theirs),
                num(f.step.latency.p99_ms),
                winner.server,
                ratio(answered / theirs),
                ratio(best.step.latency.p99_ms / f.step.latency.p99_ms.max(f64::MIN_POSITIVE))
            )
        })
        .collect();
    if !others.is_empty() {
        let _ = write!(text, " Best of each other model: {}.", others.join("; "));
    }
    let kept_up = keeping_up_rate(summary, run);
    let behind: Vec<String> = run
        .cells
        .iter()
        .filter_map(|c| Some((c, c.figures.as_ref()?)))
        .filter(|(_, f)| f.answered_requests_per_second() < KEPT_UP_SHARE * kept_up)
        .map(|(c, f)| {
            format!(
                "{} ({} req/s, {} failed)",
                c.server,
                num(f.answered_requests_per_second()),
                f.step.requests_failed
            )
        })
        .collect();
    if !behind.is_empty() {
        let _ = write!(
            text,
            " Did not keep up (answered under {:.0} % of the {} req/s a server keeping up \
             answers over the phase): {}.",
            KEPT_UP_SHARE * 100.0,
            num(kept_up),
            behind.join(", ")
        );
    }
    let unmeasured = run.cells.iter().filter(|c| c.figures.is_none()).count();
    if unmeasured > 0 {
        let _ = write!(text, " {unmeasured} cells were not measured (see below).");
    }
    text
}

fn not_run(out: &mut String, summary: &ScenariosSummary) {
    let cells: Vec<String> = summary
        .scenarios
        .iter()
        .flat_map(|run| {
            run.cells.iter().filter_map(move |cell| {
                let reason = cell.failure.as_ref()?;
                Some(format!(
                    "- {} × {}: {}",
                    run.scenario.name,
                    cell.server,
                    escape(reason)
                ))
            })
        })
        .collect();
    if cells.is_empty() {
        return;
    }
    out.push_str("## Cells not measured\n\n");
    for line in cells {
        let _ = writeln!(out, "{line}");
    }
    out.push('\n');
}

fn how_to_read(out: &mut String, summary: &ScenariosSummary) {
    let s = &summary.settings;
    let _ = write!(
        out,
        "## How to read this\n\n\
         - **Requests answered per second** is loadgen's correct replies over its measured \
         phase, from the first scheduled request to the last answer. A server that keeps up \
         reads a little under the {:.0} req/s offered (the last replies arrive a delay after \
         the {} s schedule ends); one that does not reads what it really answered.\n\
         - loadgen fails a reply slower than {} s (`reply_timeout`), and gives up on a request \
         that no connection could send within {} s of its due time (**not sent**): what a \
         server could not take is counted, and a cell outlasts its window only by the queue \
         its server had.\n\
         - Latency is measured from each request's intended start (coordinated omission \
         corrected), over the answered requests only.\n\
         - **Server CPU** comes from `wait4` of the server (every thread), over loadgen's \
         whole run, warm-up included; per answered request it is divided by the requests \
         answered in that run (the warm-up's taken at the measured phase's answered rate, \
         since loadgen does not count them), so a row that did not keep up shows what each \
         answer cost it. The share is of all {} cores over loadgen's run.\n\
         - The winner of a scenario answered the most requests; rows within {:.0} % of the \
         most count as keeping up alike, and of those the lowest p99 wins.\n\
         - Every server is given each scenario's recipe as it is (`--delay SPEC`), each phase \
         spent its own way (docs/PROTOCOL.md).\n",
        s.requests_per_second,
        num(s.window_seconds),
        num(s.timeout_seconds),
        num(s.give_up_after_seconds),
        s.cpus.len(),
        (1.0 - TIED_SHARE) * 100.0
    );
}

/// The scenarios studies' part of `LATEST.md`, newest first: `(directory name, summary)`.
pub fn latest(entries: &[(String, ScenariosSummary)]) -> String {
    let mut out = String::from(
        "\n## Scenarios studies\n\n| directory | date (UTC) | scenarios | offered req/s | commit |\n|---|---|---|---|---|\n",
    );
    for (dir, s) in entries {
        let names: Vec<&str> = s
            .scenarios
            .iter()
            .map(|r| r.scenario.name.as_str())
            .collect();
        let _ = writeln!(
            out,
            "| [{dir}]({dir}/README.md) | {} | {} | {:.0} | `{}` |",
            s.env.date_utc,
            names.join(", "),
            s.settings.requests_per_second,
            crate::export::format::short_commit(&s.env.git_commit)
        );
    }
    out
}
