//! The markdown report of one capacity study, rendered from its [`CapacitySummary`] and
//! nothing else: the capacity table, the cost table at the highest rate every server
//! sustained, the generated paragraph, the targets, and every step of every search.
//!
//! Like a comparison's report it is a pure function of its JSON, with fixed precisions, so
//! rendering the same `summary.json` twice gives the same bytes.

use std::fmt::Write as _;

use crate::catalogue::{self, Side};
use crate::export::figures::{
    IndependentVerdict, best_of_side, by_capacity, common_rate, cost_step, cpu_us_per_request,
    independent_verdict, reference_capacity, rss_per_connection_kib, user_share,
};
use crate::export::format::{MIB, dash, escape, num, ratio};
use crate::export::{LATENCY_CHART_FILE, markdown, targets};
use crate::measured::Measured;
use crate::study::capacity::results::{
    AwayFromSlowdowns, Bound, CapacitySummary, IndependentOutcome, JudgedStep, MachineSpeed,
    ServerCapacity, Step,
};
use crate::study::capacity::search::SearchSettings;
use crate::study::capacity::slo::{JudgedOn, Slo, Verdict};

/// The whole `README.md` of one capacity study.
pub fn readme(summary: &CapacitySummary) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Capacity `{}`\n", summary.label);
    out.push_str(
        "Rendered from `summary.json` by `cargo xtask report`; do not edit by hand. loadgen's \
         raw report of every step is under `runs/`.\n\n",
    );
    markdown::environment(&mut out, &summary.env);
    settings(&mut out, summary);
    out.push_str(&headline(summary));
    let _ = writeln!(
        out,
        "![p99 latency against achieved throughput, one line per server]({LATENCY_CHART_FILE})\n"
    );
    costs(&mut out, summary);
    independent_section(&mut out, summary);
    let faults = summary
        .servers
        .iter()
        .filter_map(|s| Some((s.name.clone(), s.faults.as_ref()?)));
    markdown::faults_section(&mut out, "over every step of its search", faults);
    machine_section(&mut out, summary);
    targets_section(&mut out, summary);
    steps(&mut out, summary);
    how_to_read(&mut out, summary);
    out
}

/// The capacity table and the paragraph: what `capacity` prints at the end.
pub fn headline(summary: &CapacitySummary) -> String {
    let mut out = String::new();
    capacity_table(&mut out, summary);
    out.push_str("## Verdict\n\n");
    out.push_str(&paragraph(summary));
    out.push_str("\n\n");
    out
}

/// The SLO's latency limit as the report states it, with the requests it is taken over when
/// those are not all of them: `p99 ≤ 150 ms`.
pub(super) fn latency_limit(slo: &Slo) -> String {
    let over = match slo.judged_on {
        JudgedOn::EveryRequest => "",
        JudgedOn::AwayFromSlowdowns => " away from the machine's slowdowns",
    };
    format!("p99 ≤ {} ms{over}", num(slo.p99_max_ms()))
}

pub(super) fn cpu_text(cpus: &[u32]) -> String {
    let list: Vec<String> = cpus.iter().map(u32::to_string).collect();
    let word = if cpus.len() == 1 { "CPU" } else { "CPUs" };
    format!("{word} {}", list.join(","))
}

fn settings(out: &mut String, summary: &CapacitySummary) {
    let s = &summary.settings;
    out.push_str("## Settings\n\n");
    out.push_str("| delay | delay kind | SLO | start rate | step factor | precision | warm-up | window | connections | servers on | loadgen on |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|\n");
    let connections = s.connections.fixed.map_or_else(
        || "2 × rate × delay, at least 50".to_owned(),
        |c| c.to_string(),
    );
    let _ = writeln!(
        out,
        "| {} | {} | {}, {} failed, achieved ≥ {:.0} % | {:.0} req/s | {} | {:.0} % | {} s | {} s | {connections} | {} | {} |\n",
        s.delay,
        s.delay_kind,
        latency_limit(&s.slo),
        s.slo.failed_requests_max,
        s.slo.achieved_min_ratio * 100.0,
        s.search.start_requests_per_second,
        s.search.step_factor,
        s.search.precision * 100.0,
        num(s.warmup_seconds),
        num(s.window_seconds),
        cpu_text(&s.cpus.server_cpus),
        cpu_text(&s.cpus.loadgen_cpus),
    );
    let _ = writeln!(out, "Command: `{}`\n", s.command);
    let _ = writeln!(
        out,
        "Every server, multi-threaded ones included, ran pinned to {} and loadgen to {}{}. \
         The search tried rates from {:.0} up to {:.0} req/s (the ceiling: what the connections that fit the open-file limits carry, or \
         `--max-rate`). A step is \
         client-bound, and never a server's limit, when {}.\n",
        cpu_text(&s.cpus.server_cpus),
        cpu_text(&s.cpus.loadgen_cpus),
        realtime_clients(s.cpus.clients_fifo_priority),
        s.search.floor_requests_per_second,
        s.search.ceiling_requests_per_second,
        client_bound_rule(summary),
    );
    if let Some(sentence) = broken_retries(&s.search) {
        let _ = writeln!(out, "{sentence}\n");
    }
    if let Some(window) = s.confirm_window_seconds {
        let _ = writeln!(
            out,
            "The rate a search found was published only once confirmed: held for a {} s \
             window (after the same warm-up) with the SLO met; {}.\n",
            num(window),
            step_downs(&s.search)
        );
    }
    let against = summary
        .loadgen_ceiling_server
        .as_deref()
        .unwrap_or("no server");
    let ceiling = match &summary.loadgen_ceiling_requests_per_second {
        Ok(rate) => format!(
            "{rate:.0} req/s (closed loop, 50 persistent connections, against {against} at zero \
             delay; a lower bound, since the server may be what limits it)"
        ),
        Err(missing) => missing.to_string(),
    };
    let _ = writeln!(
        out,
        "loadgen's own ceiling on {}: {ceiling}.\n",
        cpu_text(&s.cpus.loadgen_cpus)
    );
}

/// What the search did with a broken step, when it measured some again; `None` for a
/// study that took every break at its word (all studies made before the retry).
fn broken_retries(search: &SearchSettings) -> Option<String> {
    let (subject, verb) = match search.broken_retries {
        0 => return None,
        1 => (
            "The first step of each search that broke the SLO".to_owned(),
            "was",
        ),
        n => (
            format!("The first {n} steps of each search that broke the SLO"),
            "were",
        ),
    };
    let when = search
        .broken_retry_p99_within
        .map_or_else(String::new, |within| {
            format!(
                ", when one slowdown could explain the break (a p99 within {}× the limit, no \
                 failed request, the rate achieved),",
                num(within)
            )
        });
    let which = format!("{subject}{when} {verb}");
    Some(format!(
        "{which} measured once more (marked *again* under Every step) before the search took \
         its rate as broken: one slowdown of the machine breaks a short step far below a \
         server's limit, and a rate taken as broken caps the search for good, while a rate \
         found too high is caught by the confirmations. Only the second verdict moved the \
         search."
    ))
}

/// What the search did after a broken confirmation, from its settings: how deep each step
/// down went (twice as deep as the last each time), and how many confirmations it had.
fn step_downs(search: &SearchSettings) -> String {
    let total = search.confirmations;
    if total <= 1 {
        return format!("at most {total} confirmation, and none after a broken one");
    }
    let ordinal = |n: u32| match n {
        1 => "first".to_string(),
        2 => "second".to_string(),
        3 => "third".to_string(),
        n => format!("{n}th"),
    };
    let depths: Vec<String> = (1..total)
        .map(|broken| {
            let depth = (search.confirmation_step(broken) - 1.0) * 100.0;
            format!(
                "{depth:.0} % lower after the {} broken one",
                ordinal(broken)
            )
        })
        .collect();
    format!(
        "when a confirmation broke, the search stepped down and confirmed again: {} (each \
         step twice as deep as the last), at most {total} confirmations in all",
        depths.join(", ")
    )
}

/// When a step counts as client-bound, as the judge decided it for this study's loadgen:
/// by its own lag where it reported one, else by its schedule lag and CPU.
fn client_bound_rule(summary: &CapacitySummary) -> String {
    let slo = &summary.settings.slo;
    let own = summary
        .servers
        .iter()
        .flat_map(|s| &s.steps)
        .any(|s| s.step.loadgen.lag_is_clients_own);
    let away = summary.servers.iter().flat_map(|s| &s.steps).any(|s| {
        s.step
            .away_from_slowdowns
            .is_some_and(|a| a.client_lag_p99_ms.is_some())
    });
    if away {
        format!(
            "loadgen's own lag p99 over the requests due away from the machine's slowdowns \
             was over {} ms (its client lag, which leaves out the time a request waited for a \
             busy connection: that wait is the server's; and in a slowdown every process on \
             the machine falls behind, so loadgen is blamed only for falling behind while the \
             machine ran at full speed)",
            num(slo.client_lag_p99_max_ms)
        )
    } else if own {
        format!(
            "loadgen's own lag p99 was over {} ms (its client lag, which leaves out the time \
             a request waited for a busy connection: that wait is the server's)",
            num(slo.client_lag_p99_max_ms)
        )
    } else {
        format!(
            "loadgen's schedule lag p99 was over {} ms or its CPU over {:.0} %",
            num(slo.client_lag_p99_max_ms),
            slo.client_cpu_max_ratio * 100.0
        )
    }
}

/// The clause saying loadgen and the independent client ran under `SCHED_FIFO`, and why;
/// empty under the default policy (every study before there was a choice).
fn realtime_clients(priority: Option<i32>) -> String {
    priority.map_or_else(String::new, |priority| {
        format!(
            ", loadgen and the independent client under the real-time policy `SCHED_FIFO` \
             at priority {priority} (`chrt -f {priority}`), so that no other process of the \
             machine preempted them on their CPU (the servers ran under the default policy)"
        )
    })
}

fn bound_text(bound: Bound) -> &'static str {
    match bound {
        Bound::Slo => "SLO: latency degraded",
        Bound::ServerCpu => "server CPU",
        Bound::Failures => "SLO: requests failed",
        Bound::Connections => "connections (open-file limit)",
        Bound::Client => "client (a lower bound)",
        Bound::MaxRate => "--max-rate",
        Bound::Unconfirmed => "unconfirmed: every confirmation broke",
    }
}

/// What bound a server, as its table cell: why it stopped, or its bound, with the rate the
/// client fell behind at when that is what stopped the search.
pub(super) fn bound_cell(server: &ServerCapacity) -> String {
    let max = server.max_sustainable_requests_per_second;
    let client_from = server
        .client_bound_from_requests_per_second
        .filter(|_| server.bound == Bound::Client);
    match (&server.failure, client_from) {
        (Some(why), _) => format!("stopped: {}", escape(why)),
        (None, Some(from)) if max > 0.0 => {
            format!("client-bound above {max:.0} (loadgen fell behind at {from:.0} req/s)")
        }
        (None, Some(from)) if server.steps.iter().any(|s| s.confirmation) => {
            format!("client: loadgen fell behind in every confirmation, down to {from:.0} req/s")
        }
        (None, Some(from)) => {
            format!("client: loadgen fell behind at every rate, down to {from:.0} req/s")
        }
        (None, None) => bound_text(server.bound).to_owned(),
    }
}

fn capacity_table(out: &mut String, summary: &CapacitySummary) {
    let reference = reference_capacity(summary);
    let reference_name = reference.map_or_else(
        || catalogue::reference_model().map_or_else(String::new, |m| m.to_string()),
        |r| r.name.clone(),
    );
    let _ = writeln!(
        out,
        "## Capacity at a {} delay ({})\n",
        summary.settings.delay,
        latency_limit(&summary.settings.slo)
    );
    let _ = writeln!(
        out,
        "| server | model | max sustainable req/s | × fastest | × {reference_name} | bound | first broken req/s | steps |"
    );
    out.push_str("|---|---|---|---|---|---|---|---|\n");
    let fastest = by_capacity(summary)
        .first()
        .map(|s| s.max_sustainable_requests_per_second);
    let theirs = reference
        .map(|r| r.max_sustainable_requests_per_second)
        .filter(|r| *r > 0.0);
    for server in &summary.servers {
        // A server with no rate shows none, not a rate of 0 at 0.00× the fastest: its bound
        // cell says why it has none.
        let max = Some(server.max_sustainable_requests_per_second).filter(|m| *m > 0.0);
        let against = |other: Option<f64>| {
            max.zip(other.filter(|o| *o > 0.0))
                .map_or_else(dash, |(max, other)| ratio(max / other))
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} | {} |",
            server.name,
            server.model,
            max.map_or_else(|| "none".to_string(), |max| format!("{max:.0}")),
            against(fastest),
            against(theirs),
            bound_cell(server),
            server
                .first_broken_requests_per_second
                .map_or_else(dash, |r| format!("{r:.0}")),
            server.steps.len()
        );
    }
    for skipped in &summary.skipped {
        let _ = writeln!(
            out,
            "| {} | skipped: {} |",
            skipped.server,
            escape(&skipped.reason)
        );
    }
    out.push('\n');
    confirmations_line(out, summary);
}

/// Which rates were confirmed, over which window, when the study confirmed them.
fn confirmations_line(out: &mut String, summary: &CapacitySummary) {
    let Some(window) = summary.settings.confirm_window_seconds else {
        return;
    };
    let names = |confirmed: bool| -> Vec<&str> {
        summary
            .servers
            .iter()
            .filter(|s| s.confirmed_over_seconds.is_some() == confirmed)
            .map(|s| s.name.as_str())
            .collect()
    };
    let (confirmed, not) = (names(true), names(false));
    let mut parts = Vec::new();
    if !confirmed.is_empty() {
        parts.push(format!(
            "confirmed over a {} s window: {}",
            num(window),
            confirmed.join(", ")
        ));
    }
    if !not.is_empty() {
        parts.push(format!(
            "not confirmed (no rate published, or the search stopped first): {}",
            not.join(", ")
        ));
    }
    let _ = writeln!(out, "Max sustainable rates {}.\n", parts.join("; "));
}

/// The independent client's check of each server, when the study made it (or why not).
fn independent_section(out: &mut String, summary: &CapacitySummary) {
    let Some(client) = &summary.independent_client else {
        return;
    };
    let s = &summary.settings;
    out.push_str(
        "## Independent check

",
    );
    let _ = writeln!(
        out,
        "Is each published rate real? After its search, each server was started again and \
         driven by {} at {:.0} % of its max sustainable rate, with the connections of its max \
         step, the server on {} and the client on {}, {} s of warm-up and a {} s window; \
         latency from each request's intended start, exact percentiles. It shares no code \
         with loadgen and paces each connection on its own schedule.\n",
        client.client,
        client.share_of_max * 100.0,
        cpu_text(&s.cpus.server_cpus),
        cpu_text(&s.cpus.loadgen_cpus),
        num(s.warmup_seconds),
        num(s.window_seconds)
    );
    if let Some(reason) = &client.not_checked {
        let _ = writeln!(out, "Not checked: {reason}.\n");
        return;
    }
    let logged = summary.servers.iter().any(|server| {
        server.independent_check.as_ref().is_some_and(|check| {
            matches!(
                check.outcome,
                IndependentOutcome::Measured {
                    away_from_slowdowns: Some(_),
                    ..
                }
            )
        })
    });
    if logged {
        let _ = writeln!(
            out,
            "It logged its requests, so a check is *inconclusive* only when its own lag p99 \
             over the requests due away from the machine's slowdowns was over {} ms, as for \
             loadgen; the lag column is over every request.\n",
            num(s.slo.client_lag_p99_max_ms)
        );
    }
    let with_away = logged;
    let (away_header, away_rule) = if with_away {
        (" p99 away ms (requests away) |", "---|")
    } else {
        ("", "")
    };
    let _ = writeln!(
        out,
        "| server | max sustainable req/s | sent at req/s | connections | answered | p50 ms | p99 ms |{away_header} max ms | errors | client lag p99 ms | within the SLO |"
    );
    let _ = writeln!(
        out,
        "|---|---|---|---|---|---|---|{away_rule}---|---|---|---|"
    );
    for server in by_capacity(summary) {
        let Some(check) = &server.independent_check else {
            continue;
        };
        let cells = match &check.outcome {
            IndependentOutcome::Measured {
                requests_ok,
                errors,
                latency,
                schedule_lag_p99_ms,
                client_lag_p99_ms,
                away_from_slowdowns,
                ..
            } => format!(
                "{requests_ok} | {} | {} |{} {} | {errors} | {} | {}",
                num(latency.p50_ms),
                num(latency.p99_ms),
                if with_away {
                    format!(" {} |", away_cell(away_from_slowdowns.as_ref()))
                } else {
                    String::new()
                },
                num(latency.max_ms),
                num(client_lag_p99_ms.unwrap_or(*schedule_lag_p99_ms)),
                independent_cell(independent_verdict(summary, check))
            ),
            IndependentOutcome::Failed { reason } => {
                let away = if with_away { " |" } else { "" };
                format!("failed: {} | | |{away} | | | **no**", escape(reason))
            }
        };
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} | {cells} |",
            server.name,
            server.max_sustainable_requests_per_second,
            check.requests_per_second,
            check.connections
        );
    }
    out.push('\n');
}

/// Whether a check held, as its table cell.
fn independent_cell(verdict: Option<IndependentVerdict>) -> String {
    match verdict {
        Some(IndependentVerdict::Held) => "yes".to_owned(),
        Some(IndependentVerdict::Inconclusive { client_lag_p99_ms }) => format!(
            "inconclusive: the independent client fell behind (lag p99 {} ms)",
            num(client_lag_p99_ms)
        ),
        Some(IndependentVerdict::Missed) | None => "**no**".to_owned(),
    }
}

fn measured_cell(value: &Measured<f64>) -> String {
    value
        .as_ref()
        .map_or_else(|_| "not measured".to_owned(), |v| num(*v))
}

fn costs(out: &mut String, summary: &CapacitySummary) {
    let Some(rate) = common_rate(summary) else {
        return;
    };
    let _ = writeln!(
        out,
        "## Cost per request at {rate:.0} req/s, the highest rate every row sustained\n"
    );
    out.push_str(
        "Each row is the server's sustained step with the highest rate at or below it (or its \
         lowest sustained step, when its search never went that low). On loopback the kernel \
         hands a segment to the receiving socket on the sender's core, inside the send: a \
         server's system time includes the receive path of the replies it writes into \
         loadgen's sockets, and loadgen's CPU includes the server's receive path and the \
         wake-up of the server thread it writes to.\n\n",
    );
    out.push_str("| server | step req/s | achieved req/s | p50 ms | p99 ms | CPU µs/request (user + system) | user share | syscalls/request | ctx switches/request | peak RSS MiB | RSS/connection KiB | peak threads | loadgen CPU |\n");
    out.push_str("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    for server in by_capacity(summary) {
        let Some(judged) = cost_step(server, rate) else {
            continue;
        };
        let step = &judged.step;
        let _ = writeln!(
            out,
            "| {} | {:.0} | {:.0} | {} | {} | {} ({} + {}) | {} | {} | {} | {} | {} | {} | {:.0} % |",
            server.name,
            step.target_requests_per_second,
            step.achieved_requests_per_second,
            num(step.latency.p50_ms),
            num(step.latency.p99_ms),
            num(cpu_us_per_request(step)),
            num(step.server.user_cpu_us_per_request),
            num(step.server.system_cpu_us_per_request),
            user_share(step).map_or_else(dash, |s| format!("{:.0} %", s * 100.0)),
            measured_cell(&step.server.syscalls_per_request),
            measured_cell(&step.server.context_switches_per_request),
            num(step.server.peak_rss_bytes as f64 / MIB),
            num(rss_per_connection_kib(step)),
            step.server.peak_threads,
            step.loadgen.cpu_ratio * 100.0
        );
    }
    out.push('\n');
}

/// Every distinct reason a cost figure is missing, in the order first met.
fn not_measured_reasons(summary: &CapacitySummary) -> Vec<String> {
    let mut reasons: Vec<String> = Vec::new();
    let figures = summary.servers.iter().flat_map(|s| &s.steps).flat_map(|s| {
        [
            &s.step.server.syscalls_per_request,
            &s.step.server.context_switches_per_request,
            &s.step.loadgen.lag_p99_ms,
        ]
    });
    for figure in figures {
        if let Err(missing) = figure
            && !reasons.contains(&missing.reason)
        {
            reasons.push(missing.reason.clone());
        }
    }
    reasons
}

/// Who won, by how much, and why, in numbers.
pub fn paragraph(summary: &CapacitySummary) -> String {
    let ranked = by_capacity(summary);
    let Some(winner) = ranked.first() else {
        return "No server sustained any rate at this SLO.".to_owned();
    };
    let s = &summary.settings;
    let max = winner.max_sustainable_requests_per_second;
    let mut text = format!(
        "At a {} delay and {}, **{}** ({}) sustained the most: {max:.0} req/s on {}.",
        s.delay,
        latency_limit(&s.slo),
        winner.name,
        winner.model,
        cpu_text(&s.cpus.server_cpus)
    );
    let mut seen = vec![&winner.model];
    let others: Vec<String> = ranked
        .iter()
        .filter(|r| {
            let new = !seen.contains(&&r.model);
            if new {
                seen.push(&r.model);
            }
            new
        })
        .map(|r| {
            let theirs = r.max_sustainable_requests_per_second;
            format!(
                "{} {theirs:.0} req/s ({} sustained {} that)",
                r.name,
                winner.name,
                ratio(max / theirs)
            )
        })
        .collect();
    if !others.is_empty() {
        let _ = write!(text, " Best of each other model: {}.", others.join("; "));
    }
    if let Some(rate) = common_rate(summary) {
        let costs: Vec<String> = ranked
            .iter()
            .filter_map(|r| Some((r, &cost_step(r, rate)?.step)))
            .map(|(r, step)| {
                let syscalls = step
                    .server
                    .syscalls_per_request
                    .as_ref()
                    .map_or_else(|_| String::new(), |v| format!(", {} system calls", num(*v)));
                format!(
                    "{} {} µs ({} user){syscalls}",
                    r.name,
                    num(cpu_us_per_request(step)),
                    num(step.server.user_cpu_us_per_request)
                )
            })
            .collect();
        let _ = write!(
            text,
            " Why, per request in the cost table (at {rate:.0} req/s, the rate every row \
             sustained, or a row's lowest step when its search never went that low), in server \
             CPU: {}.",
            costs.join("; ")
        );
    }
    let client_bound: Vec<&str> = summary
        .servers
        .iter()
        .filter(|s| s.bound == Bound::Client)
        .map(|s| s.name.as_str())
        .collect();
    if !client_bound.is_empty() {
        let _ = write!(
            text,
            " loadgen, not the server, was the limit of {}: their rates are lower bounds.",
            client_bound.join(", ")
        );
    }
    if let Some(threads) = best_of_side(summary, Side::Rust { event_loop: false })
        && threads.name != winner.name
    {
        let _ = write!(
            text,
            " A thread per connection ({}) peaked at {} threads.",
            threads.name,
            threads
                .steps
                .iter()
                .map(|s| s.step.server.peak_threads)
                .max()
                .unwrap_or(0)
        );
    }
    text
}

fn targets_section(out: &mut String, summary: &CapacitySummary) {
    out.push_str("## Targets\n\n");
    out.push_str(
        "Issue 10's targets, checked on the best Rust row (an event loop where one ran); a \
         target that cannot be checked here is missed, with the reason.\n\n",
    );
    let checks = targets::capacity_checks(summary);
    markdown::check_list(out, &checks);
}

fn steps(out: &mut String, summary: &CapacitySummary) {
    out.push_str("## Every step\n\n");
    for server in &summary.servers {
        let _ = writeln!(
            out,
            "### {}\n\nCommand: `{}`\n",
            server.name,
            escape(&server.command)
        );
        let columns = Columns::of(summary);
        out.push_str(
            "| # | target req/s | achieved req/s | connections | p50 ms | p90 ms | p99 ms |",
        );
        if columns.away {
            out.push_str(" p99 away ms (requests away) |");
        }
        out.push_str(" p99.9 ms | max ms | failed | started late | CPU µs/req user + sys | server CPU | syscalls/req | ctx sw/req | RSS MiB | threads | loadgen CPU | loadgen lag p99 ms | loadgen read lag p99 ms |");
        out.push_str(if columns.probed {
            " CPUs slowed | verdict |\n"
        } else {
            " verdict |\n"
        });
        out.push_str(
            "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
        );
        if columns.away {
            out.push_str("---|");
        }
        out.push_str(if columns.probed {
            "---|---|\n"
        } else {
            "---|\n"
        });
        for (i, judged) in server.steps.iter().enumerate() {
            let number = if judged.confirmation {
                format!(
                    "{} (confirmation, {} s)",
                    i + 1,
                    num(judged.step.window_seconds)
                )
            } else if judged.again {
                format!("{} (again)", i + 1)
            } else {
                (i + 1).to_string()
            };
            out.push_str(&step_line(&number, judged, columns));
        }
        out.push('\n');
    }
    let reasons = not_measured_reasons(summary);
    if !reasons.is_empty() {
        let _ = writeln!(out, "Not measured: {}.\n", reasons.join("; "));
    }
}

/// The columns of Every step that only some studies have.
#[derive(Debug, Clone, Copy)]
struct Columns {
    /// The speed probe ran: **CPUs slowed**.
    probed: bool,
    /// Steps were judged again away from the slowdowns, latency included: **p99 away**.
    away: bool,
}

impl Columns {
    fn of(summary: &CapacitySummary) -> Columns {
        Columns {
            probed: summary.machine.is_some(),
            away: summary.servers.iter().flat_map(|s| &s.steps).any(|j| {
                j.step
                    .away_from_slowdowns
                    .is_some_and(|a| a.latency_p99_ms.is_some())
            }),
        }
    }
}

/// A p99 away from the slowdowns and the share of the requests it is over: `101 (72 %)`.
fn away_cell(away: Option<&AwayFromSlowdowns>) -> String {
    away.and_then(|a| {
        Some(format!(
            "{} ({:.0} %)",
            num(a.latency_p99_ms?),
            a.away_percent()
        ))
    })
    .unwrap_or_else(dash)
}

fn step_line(number: &str, judged: &JudgedStep, columns: Columns) -> String {
    let step = &judged.step;
    let failed = if step.failures_by_kind.is_empty() {
        step.requests_failed.to_string()
    } else {
        let kinds: Vec<String> = step
            .failures_by_kind
            .iter()
            .map(|(kind, n)| format!("{kind} {n}"))
            .collect();
        format!("{} ({})", step.requests_failed, kinds.join(", "))
    };
    let away = if columns.away {
        format!(" {} |", away_cell(step.away_from_slowdowns.as_ref()))
    } else {
        String::new()
    };
    format!(
        "| {number} | {:.0} | {:.0} | {} | {} | {} | {} |{away} {} | {} | {failed} | {} | {} + {} | {:.0} % | {} | {} | {} | {} | {:.0} % | {} | {} | {}{} |\n",
        step.target_requests_per_second,
        step.achieved_requests_per_second,
        step.connections,
        num(step.latency.p50_ms),
        num(step.latency.p90_ms),
        num(step.latency.p99_ms),
        num(step.latency.p99_9_ms),
        num(step.latency.max_ms),
        step.requests_started_late,
        num(step.server.user_cpu_us_per_request),
        num(step.server.system_cpu_us_per_request),
        step.server.cpu_ratio * 100.0,
        measured_cell(&step.server.syscalls_per_request),
        measured_cell(&step.server.context_switches_per_request),
        num(step.server.peak_rss_bytes as f64 / MIB),
        step.server.peak_threads,
        step.loadgen.cpu_ratio * 100.0,
        measured_cell(&step.loadgen.lag_p99_ms),
        step.loadgen.read_lag_p99_ms.map_or_else(dash, num),
        if columns.probed {
            format!("{} | ", slowed_cell(step.machine.as_ref()))
        } else {
            String::new()
        },
        escape(&judged.verdict.to_string())
    )
}

/// A step's share of slowed probe samples: `3.1 %`, or a dash where none were taken.
fn slowed_cell(machine: Option<&MachineSpeed>) -> String {
    machine.map_or_else(dash, |m| format!("{:.1} %", m.slowed_fraction * 100.0))
}

/// What the speed probe saw over the study; nothing for a study made without it.
fn machine_section(out: &mut String, summary: &CapacitySummary) {
    let Some(machine) = &summary.machine else {
        return;
    };
    let steps: Vec<(&str, &JudgedStep)> = summary
        .servers
        .iter()
        .flat_map(|s| s.steps.iter().map(move |j| (s.name.as_str(), j)))
        .collect();
    let probed = steps
        .iter()
        .filter(|(_, j)| j.step.machine.is_some())
        .count();
    let slowed = steps
        .iter()
        .filter(|(_, j)| j.step.machine.is_some_and(|m| m.slowed_fraction > 0.0))
        .count();
    let worst = steps
        .iter()
        .filter_map(|(name, j)| Some((*name, j, j.step.machine?)))
        .max_by(|a, b| a.2.slowed_fraction.total_cmp(&b.2.slowed_fraction));
    out.push_str(
        "## How steady the machine was

",
    );
    let _ =
        write!(
        out,
        "A speed probe ran through the study: a thread on each CPU that times the same \
         arithmetic every {} ms, by the thread's CPU time, and judges it against the fastest \
         time of its CPU. On these virtual machines a CPU now and then runs at a fraction of \
         its speed for tens of milliseconds, which the machine's kernel does not see (no \
         steal time, no other task); a step that ran through it was measured on a slower \
         machine, whatever the server did.{} The servers' {} ran below {:.0} % of their \
         fastest{} in {:.1} % of the probe's {} samples over the study (the slowest at {:.0} \
         %), loadgen's {} in {:.1} % of {} (the slowest at {:.0} %).",
        num(machine.period_seconds * 1e3),
        machine.stall_checks.map_or_else(String::new, |checks| format!(
            " The probe ran real-time, above the clients, and also woke every {} ms between \
             its samples: a wake-up more than {} ms late counted its next sample as slowed, \
             from the wake-up's due time, since nothing of the machine's own keeps such a \
             thread waiting that long: the host had stopped the CPU (it does so for 3 to 25 \
             ms now and then, which the arithmetic sees only when it falls inside a sample).",
            num(checks.every_ms),
            num(checks.late_ms)
        )),
        cpu_text(&summary.settings.cpus.server_cpus),
        machine.slowed_below * 100.0,
        if machine.stall_checks.is_some() {
            " or followed a stall"
        } else {
            ""
        },
        machine.server_cpus.slowed_fraction * 100.0,
        machine.server_cpus.samples,
        machine.server_cpus.slowest * 100.0,
        cpu_text(&summary.settings.cpus.loadgen_cpus),
        machine.loadgen_cpus.slowed_fraction * 100.0,
        machine.loadgen_cpus.samples,
        machine.loadgen_cpus.slowest * 100.0,
    );
    let _ = write!(
        out,
        " {slowed} of the {probed} probed steps ran partly slowed (the **CPUs slowed** \
         column under Every step: the share of samples on the server's and loadgen's CPUs, \
         over loadgen's whole run)"
    );
    if let Some((name, judged, m)) = worst.filter(|w| w.2.slowed_fraction > 0.0) {
        let _ = write!(
            out,
            "; the most was {name}'s step at {:.0} req/s, {:.1} %, which {}",
            judged.step.target_requests_per_second,
            m.slowed_fraction * 100.0,
            match judged.verdict {
                Verdict::Sustained => "still met the SLO",
                Verdict::Broken { .. } => "broke the SLO",
                Verdict::ClientBound { .. } => "broke the SLO with loadgen behind",
            }
        );
    }
    let mean = |sustained: bool| {
        let shares: Vec<f64> = steps
            .iter()
            .filter(|(_, j)| matches!(j.verdict, Verdict::Sustained) == sustained)
            .filter_map(|(_, j)| Some(j.step.machine?.slowed_fraction))
            .collect();
        (!shares.is_empty()).then(|| 100.0 * shares.iter().sum::<f64>() / shares.len() as f64)
    };
    if let (Some(sustained), Some(broken)) = (mean(true), mean(false)) {
        // Within a point of each other, a step's share does not tell breaks from passes.
        let reading = if (broken - sustained).abs() < 1.0 {
            "about the same, so a step's share alone does not tell a break from a pass: \
             where in its window a slowdown falls matters more"
        } else if broken > sustained {
            "the broken steps ran more slowed"
        } else {
            "the broken steps ran less slowed, so the slowdowns do not explain them"
        };
        let _ = write!(
            out,
            ". On average a sustained step ran {sustained:.1} % slowed and a broken one \
             {broken:.1} %: {reading}"
        );
    }
    out.push_str(". The probe itself takes about 0.7 % of each CPU.");
    if let Some(text) = away_text(summary, &steps) {
        out.push(' ');
        out.push_str(&text);
    }
    out.push_str("\n\n");
}

/// How the steps' p99 read over the requests due away from the slowdowns (the **p99 away**
/// column), against their p99 over every request; `None` when no step has it, unless the
/// study asked to judge on it: then that every step was judged over every request.
fn away_text(summary: &CapacitySummary, steps: &[(&str, &JudgedStep)]) -> Option<String> {
    let away: Vec<(&Step, &AwayFromSlowdowns, f64)> = steps
        .iter()
        .filter_map(|(_, j)| {
            let away = j.step.away_from_slowdowns.as_ref()?;
            Some((&j.step, away, away.latency_p99_ms?))
        })
        .collect();
    let Some((_, first, _)) = away.first() else {
        return (summary.settings.slo.judged_on == JudgedOn::AwayFromSlowdowns).then(|| {
            "No step had a request due away from the slowdowns (or a log to tell), so every \
             step was judged over every request, `--away-from-slowdowns` notwithstanding."
                .to_owned()
        });
    };
    let limit = summary.settings.slo.p99_max_ms();
    let over: Vec<f64> = away
        .iter()
        .filter(|(step, ..)| step.latency.p99_ms > limit)
        .map(|&(.., p99)| p99)
        .collect();
    let within_away = over.iter().filter(|&&p99| p99 <= limit).count();
    let only_away = away
        .iter()
        .filter(|&&(step, _, p99)| p99 > limit && step.latency.p99_ms <= limit)
        .count();
    let share = away.iter().map(|(_, a, _)| a.away_percent()).sum::<f64>() / away.len() as f64;
    let judged = match summary.settings.slo.judged_on {
        JudgedOn::AwayFromSlowdowns => {
            "The steps were judged on them (`--away-from-slowdowns`): their p99 and loadgen's \
             own lag, not their failures or achieved rate."
        }
        JudgedOn::EveryRequest => {
            "The steps were judged over every request, as the SLO is given; \
             `--away-from-slowdowns` judges them away from the slowdowns instead."
        }
    };
    Some(format!(
        "Every step was also measured over the requests due away from the slowdowns: with no \
         slowed sample on any CPU of the study from {:.0} ms before the request's due time to \
         {:.0} ms after it, {share:.0} % of a step's requests on average (the **p99 away** column \
         under Every step). Of the {} whose p99 over every request was over {} ms, \
         {within_away} {} within it away from the slowdowns; {} within it over every request \
         {} over it away from them. {judged}",
        first.before_due_ms,
        first.after_due_ms,
        steps_text(over.len()),
        num(limit),
        were(within_away),
        steps_text(only_away),
        were(only_away),
    ))
}

/// `1 step`, `3 steps`.
fn steps_text(n: usize) -> String {
    format!("{n} step{}", if n == 1 { "" } else { "s" })
}

/// The verb for `n` steps: `was`, `were`.
fn were(n: usize) -> &'static str {
    if n == 1 { "was" } else { "were" }
}

fn how_to_read(out: &mut String, summary: &CapacitySummary) {
    let s = &summary.settings;
    let _ = write!(
        out,
        "## How to read this\n\n\
         - **max sustainable req/s** is the highest open-loop rate whose step met the SLO; the \
         search steps up by × {} from {:.0} req/s, then bisects between the last good and the \
         first bad step to {:.0} %. **× fastest** and **× {}** divide it by the fastest row's \
         and the reference row's (the article's asyncio server, found by its model).\n\
         - **bound** says what stopped the search: the SLO (latency degraded with CPU to \
         spare), the server's CPU (saturated at its first broken step), the connections that \
         fit the open-file limits, `--max-rate`, or the client (loadgen fell behind: the rate \
         is a lower bound, never the server's limit).\n\
         - Each step is a fresh server on persistent connections (2 × rate × delay, Little's \
         law, at least 50), {} s of warm-up {} and a {} s window; latency is measured from each \
         request's intended start (coordinated omission corrected), so a late client does \
         not hide a slow server, to its reply's arrival as the kernel stamped it (where \
         loadgen reports a read lag), so a busy client does not add its own delay in reading \
         it.\n\
         - Costs (CPU, system calls, context switches) cover loadgen's whole run, warm-up and \
         connecting included, divided by the requests of that run (the warm-up's counted at \
         its target rate). CPU comes from `wait4` of the server, every thread; system calls \
         and context switches from `perf stat -e raw_syscalls:sys_enter,context-switches -p \
         PID`, attached before loadgen connects. **RSS/connection** is the peak resident set \
         over the step's connections (the whole process, not its growth).\n\
         - **loadgen CPU** is its CPU time over its run as a share of its CPUs; **loadgen lag** \
         is how late loadgen itself sent requests against its schedule; **loadgen read lag** how \
         long replies waited in their sockets before it read them (left out of the latency).\n",
        s.search.step_factor,
        s.search.start_requests_per_second,
        s.search.precision * 100.0,
        reference_capacity(summary).map_or("the reference", |r| r.name.as_str()),
        num(s.warmup_seconds),
        if s.warmup_on_window_connections {
            "(the first stretch of the window's schedule, on its connections)"
        } else {
            "(on connections of its own, closed before the window opened new ones: each \
             step connected twice, and its window began with no request in flight)"
        },
        num(s.window_seconds),
    );
    if Columns::of(summary).away {
        out.push_str(
            "- **p99 away** is a step's p99 over its requests due away from the machine's \
             slowdowns (see How steady the machine was), with their share of its requests; \
             the same for the independent client.\n",
        );
    }
    if let Some(window) = s.confirm_window_seconds {
        let _ = writeln!(
            out,
            "- A **confirmation** (marked so under Every step) holds the rate found for {} s, \
             so a rate that passed a short step by luck, or before the server fell behind, is \
             not published; the max is the highest confirmed rate, and a client-bound \
             confirmation is the client's ceiling, never the server's limit.",
            num(window)
        );
    }
}

/// The capacity studies' part of `LATEST.md`, newest first: `(directory name, summary)`.
pub fn latest(entries: &[(String, CapacitySummary)]) -> String {
    let mut out = String::from(
        "\n## Capacity studies\n\n| directory | date (UTC) | delay | best server | max sustainable req/s | commit |\n|---|---|---|---|---|---|\n",
    );
    for (dir, s) in entries {
        let best = by_capacity(s).first().copied();
        let _ = writeln!(
            out,
            "| [{dir}]({dir}/README.md) | {} | {} | {} | {} | `{}` |",
            s.env.date_utc,
            s.settings.delay,
            best.map_or_else(dash, |b| b.name.clone()),
            best.map_or_else(dash, |b| format!(
                "{:.0}",
                b.max_sustainable_requests_per_second
            )),
            crate::export::format::short_commit(&s.env.git_commit)
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bound_reads_as_words() {
        assert_eq!(bound_text(Bound::Client), "client (a lower bound)");
        assert_eq!(bound_text(Bound::ServerCpu), "server CPU");
        assert_eq!(bound_text(Bound::Failures), "SLO: requests failed");
    }

    #[test]
    fn cpus_are_named_in_the_singular_or_plural() {
        assert_eq!(cpu_text(&[0]), "CPU 0");
        assert_eq!(cpu_text(&[0, 1]), "CPUs 0,1");
    }
}
