//! The targets a report checks and the published figures it compares with, as data in one
//! place: issue 6's thresholds, issue 10's capacity targets, issue 12's scenario targets, the
//! article's own measurements, and what the article's own client measured on a machine like
//! the project's when the project began.
//!
//! Which rows are checked comes from the catalogue (`Side::Rust`, and `event_loop` for the
//! event-loop targets); the reference row is found by its model.

use crate::catalogue::{self, Executor, Side};
use crate::export::figures::{
    self, IndependentVerdict, full_floor_seconds, reference_row, rows_at, rss_per_conn_kib,
};
use crate::export::format::{dash, num, ratio, secs};
use crate::results::{Params, Row, Summary};
use crate::study::capacity::results::{
    Bound, CapacitySummary, IndependentOutcome, JudgedStep, LoadgenHeadroom, ServerCapacity,
};
use crate::study::capacity::slo::blamed_lag;
use crate::study::scenarios::results::{Cell, Figures, ScenarioRun, ScenariosSummary};
use crate::study::scenarios::scenario::{BLOCKING, CPU, HONEST, MIXED};

/// Issue 6's thresholds for the project's event-loop servers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Thresholds {
    /// Wall time at most this many times the floor.
    pub floor_ratio_max: f64,
    /// At least this many times faster than the reference row (and the article's figure).
    pub reference_speedup_min: f64,
    /// At most this much resident memory per concurrent connection, in KiB.
    pub rss_per_conn_kib_max: f64,
}

/// The thresholds of issue 6.
pub const ISSUE_6: Thresholds = Thresholds {
    floor_ratio_max: 1.5,
    reference_speedup_min: 10.0,
    rss_per_conn_kib_max: 2.0,
};

/// A measurement of the article's setting made elsewhere, quoted beside this run's.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Published {
    /// Where and how it was measured, as a phrase (`on a 4-core 2014 laptop`).
    pub how: &'static str,
    /// Connections per run.
    pub connections: u64,
    /// The delay of each request.
    pub delay_ms: f64,
    /// The thread-per-connection server's time.
    pub threads_seconds: f64,
    /// The asyncio server's time.
    pub asyncio_seconds: f64,
}

/// The article's own figures: its client against its servers.
pub const ARTICLE: Published = Published {
    how: "on a 4-core 2014 laptop",
    connections: 10000,
    delay_ms: 100.0,
    threads_seconds: 36.9,
    asyncio_seconds: 20.1,
};

/// The article's own client against its own servers given a 4096 backlog, measured when this
/// project began (that client is not part of the repository).
pub const ARTICLE_CLIENT_HERE: Published = Published {
    how: "on a 2-core machine over loopback",
    connections: 10000,
    delay_ms: 100.0,
    threads_seconds: 3.5,
    asyncio_seconds: 1.07,
};

/// Whether `n` connections under these parameters is the article's own setting.
pub fn article_setting(params: &Params, n: u64) -> bool {
    n == ARTICLE.connections
        && params.delay.mean().as_secs_f64() * 1000.0 == ARTICLE.delay_ms
        && params.requests_per_conn == 1
}

/// One target, checked against one row.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Whether the row met it.
    pub met: bool,
    /// What was checked and what was measured, as a line of the report.
    pub text: String,
}

/// Every check of every project row, per iteration count, in table order.
pub fn checks(summary: &Summary) -> Vec<Check> {
    let mut checks = Vec::new();
    for &n in &summary.params.iterations {
        let rows = rows_at(summary, n);
        let reference = reference_row(&rows);
        for row in &rows {
            let Side::Rust { event_loop } = catalogue::side_of(&row.model) else {
                continue;
            };
            checks.push(no_failures(row));
            if event_loop {
                checks.extend(floor_check(summary, row));
                checks.extend(reference.and_then(|r| reference_check(row, r)));
                checks.extend(article_check(summary, row));
                checks.extend(memory_check(row));
            }
        }
    }
    checks
}

fn no_failures(row: &Row) -> Check {
    Check {
        met: row.requests_failed == 0 && row.runs_failed == 0 && row.measured.is_some(),
        text: format!(
            "{} at {}: zero failed requests (got {} in {} failed runs of {})",
            row.server, row.iterations, row.requests_failed, row.runs_failed, row.runs
        ),
    }
}

fn floor_check(summary: &Summary, row: &Row) -> Option<Check> {
    let wall = figures::wall(row)?;
    let floor = full_floor_seconds(summary, row)?;
    let max = ISSUE_6.floor_ratio_max;
    Some(Check {
        met: wall <= max * floor,
        text: format!(
            "{} at {}: wall time at most {max}× the floor (got {} s against {} s, {})",
            row.server,
            row.iterations,
            secs(wall),
            secs(floor),
            ratio(wall / floor)
        ),
    })
}

fn reference_check(row: &Row, reference: &Row) -> Option<Check> {
    let wall = figures::wall(row)?;
    let theirs = figures::wall(reference)?;
    let min = ISSUE_6.reference_speedup_min;
    Some(Check {
        met: theirs >= min * wall,
        text: format!(
            "{} at {}: at least {min}× faster than {} (got {}: {} s against {} s)",
            row.server,
            row.iterations,
            reference.server,
            ratio(theirs / wall),
            secs(wall),
            secs(theirs)
        ),
    })
}

/// Against the article's published asyncio figure, where this run reproduces its setting.
fn article_check(summary: &Summary, row: &Row) -> Option<Check> {
    let wall = figures::wall(row)?;
    let (min, theirs) = (ISSUE_6.reference_speedup_min, ARTICLE.asyncio_seconds);
    article_setting(&summary.params, row.iterations).then(|| Check {
        met: theirs >= min * wall,
        text: format!(
            "{} at {}: at least {min}× faster than the article's published asyncio figure \
             (got {}: {} s against {theirs} s)",
            row.server,
            row.iterations,
            ratio(theirs / wall),
            secs(wall)
        ),
    })
}

fn memory_check(row: &Row) -> Option<Check> {
    let kib = rss_per_conn_kib(row)?;
    let max = ISSUE_6.rss_per_conn_kib_max;
    Some(Check {
        met: kib <= max,
        text: format!(
            "{} at {}: at most {max} KiB resident per concurrent connection (got {} KiB)",
            row.server,
            row.iterations,
            num(kib)
        ),
    })
}

/// Issue 10's targets for a capacity study.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapacityThresholds {
    /// The best Rust row's max sustainable rate over the reference row's, at least.
    pub reference_capacity_ratio_min: f64,
    /// The best Rust row's max sustainable rate over the strongest threads row's (the one
    /// whose search held the highest rate: `threaded` in every run so far), at least.
    pub threads_capacity_ratio_min: f64,
    /// The best Rust row's user-space share of its CPU per request, at most.
    pub user_cpu_share_max: f64,
    /// loadgen's own ceiling over the best server's max sustainable rate, at least.
    pub client_headroom_min: f64,
}

/// The targets of issue 10.
pub const ISSUE_10: CapacityThresholds = CapacityThresholds {
    reference_capacity_ratio_min: 6.0,
    threads_capacity_ratio_min: 2.0,
    user_cpu_share_max: 0.25,
    client_headroom_min: 1.25,
};

/// Every target of issue 10 checked on a capacity study; one that cannot be checked (a row
/// or a figure is missing) is listed as missed, with the reason.
pub fn capacity_checks(summary: &CapacitySummary) -> Vec<Check> {
    let t = ISSUE_10;
    let best = figures::best_of_side(summary, Side::Rust { event_loop: true })
        .or_else(|| figures::best_of_side(summary, Side::Rust { event_loop: false }));
    let Some(best) = best else {
        return vec![missing("no Rust row sustained any rate: nothing to check")];
    };
    let max = best.max_sustainable_requests_per_second;
    let ratio_check = |other: Option<&ServerCapacity>, what: &str, min: f64| match other {
        Some(other) if other.max_sustainable_requests_per_second > 0.0 => {
            let theirs = other.max_sustainable_requests_per_second;
            Check {
                met: max >= min * theirs,
                text: format!(
                    "{}'s max sustainable rate at least {min}× {}'s (got {}: {max:.0} against \
                     {theirs:.0} req/s)",
                    best.name,
                    other.name,
                    ratio(max / theirs)
                ),
            }
        }
        Some(other) => missing(&format!(
            "{}'s rate at least {min}× {what}'s: {} published no rate ({})",
            best.name,
            other.name,
            super::capacity::bound_cell(other)
        )),
        None => missing(&format!(
            "{}'s rate at least {min}× {what}'s: no such row ran",
            best.name
        )),
    };
    let reference = figures::reference_capacity(summary);
    let threads = figures::strongest_of_side(summary, Side::Rust { event_loop: false });
    let mut reference_ratio = ratio_check(
        reference,
        "the reference row",
        t.reference_capacity_ratio_min,
    );
    if let Some(reference) = reference.filter(|_| !reference_ratio.met) {
        reference_ratio.text.push_str(&kernel_floor(
            summary,
            reference,
            t.reference_capacity_ratio_min,
        ));
    }
    vec![
        reference_ratio,
        ratio_check(
            threads,
            "the strongest threads row",
            t.threads_capacity_ratio_min,
        ),
        user_share_check(summary, best),
        client_bound_check(summary),
        headroom_check(summary, max),
        independent_check(summary),
    ]
}

/// Why a missed ratio against the reference row is or is not the model's doing, in numbers:
/// the rate a server would reach on the servers' CPUs if it spent no user-space time at all,
/// only the least system time per request any row spent at its published rate (on loopback
/// that is mostly TCP's own work, the same path whatever the model), set against the rate
/// the ratio needs. System time per request falls as the rate rises (more events per
/// wake-up), so this ceiling holds for the rates measured, not beyond them. Empty when the
/// reference row published no rate or no row's system time was measured.
fn kernel_floor(summary: &CapacitySummary, reference: &ServerCapacity, min: f64) -> String {
    let theirs = reference.max_sustainable_requests_per_second;
    let least = figures::by_capacity(summary)
        .into_iter()
        .filter_map(|server| {
            let step = figures::cost_step(server, server.max_sustainable_requests_per_second)?;
            let system_us = step.step.server.system_cpu_us_per_request;
            (system_us > 0.0).then_some((server, step, system_us))
        })
        .min_by(|a, b| a.2.total_cmp(&b.2));
    let Some((server, step, system_us)) = least.filter(|_| theirs > 0.0) else {
        return String::new();
    };
    let cpus = &summary.settings.cpus.server_cpus;
    let ceiling = cpus.len().max(1) as f64 * 1e6 / system_us;
    let needed = min * theirs;
    let verdict = if ceiling < needed {
        "no server could reach that here"
    } else {
        "the kernel's share alone does not rule it out"
    };
    format!(
        "; {verdict}: {min}× is {needed:.0} req/s, and a server spending no user-space time \
         at all would sustain at most about {ceiling:.0} req/s on {} ({} {}'s): 10⁶ µs per \
         CPU over {} µs, the least system CPU per request of any row at its published rate \
         ({} at {:.0} req/s), mostly TCP's own work over loopback, which every model pays \
         (it falls as the rate rises: this holds for the rates measured)",
        super::capacity::cpu_text(cpus),
        ratio(ceiling / theirs),
        reference.name,
        num(system_us),
        server.name,
        step.step.target_requests_per_second,
    )
}

/// "The published rates are real": every server's max rate checked by the independent
/// client within the SLO.
fn independent_check(summary: &CapacitySummary) -> Check {
    let Some(client) = &summary.independent_client else {
        return missing(
            "an independent open-loop client at 90 % of each reported max rate sees p99 \
             within the SLO: not checked by this study (follow-up: the fidelity benchmark's \
             independent client)",
        );
    };
    let what = format!(
        "an independent open-loop client at {:.0} % of each reported max rate sees p99 within \
         the SLO",
        client.share_of_max * 100.0
    );
    if let Some(reason) = &client.not_checked {
        return missing(&format!("{what}: not checked: {reason}"));
    }
    let mut held = Vec::new();
    let mut missed = Vec::new();
    let mut inconclusive = Vec::new();
    for server in figures::by_capacity(summary) {
        let check = server.independent_check.as_ref();
        let verdict = check.and_then(|c| figures::independent_verdict(summary, c));
        // The p99 the verdict was on: away from the slowdowns when the SLO judges so.
        let slo = &summary.settings.slo;
        let p99 = check.and_then(|c| match &c.outcome {
            IndependentOutcome::Measured {
                latency,
                away_from_slowdowns,
                ..
            } => Some(
                slo.away(*away_from_slowdowns)
                    .map_or(latency.p99_ms, |a| a.p99_ms),
            ),
            IndependentOutcome::Failed { .. } => None,
        });
        let name = &server.name;
        match (verdict, p99) {
            (Some(IndependentVerdict::Held), Some(p99)) => {
                held.push(format!("{name} {} ms", num(p99)));
            }
            (Some(IndependentVerdict::Missed), Some(p99)) => {
                missed.push(format!("{name} {} ms", num(p99)));
            }
            (Some(IndependentVerdict::Inconclusive { client_lag_p99_ms }), _) => {
                inconclusive.push(format!("{name} (lag p99 {} ms)", num(client_lag_p99_ms)));
            }
            _ => missed.push(format!("{name} not measured")),
        }
    }
    let limit = super::capacity::latency_limit(&summary.settings.slo);
    let mut parts = Vec::new();
    if !missed.is_empty() {
        parts.push(format!("missed by {}", missed.join(", ")));
    }
    if !inconclusive.is_empty() {
        parts.push(format!(
            "inconclusive, the independent client fell behind, for {} (not shown to hold)",
            inconclusive.join(", ")
        ));
    }
    let text = if parts.is_empty() {
        format!("{what} ({limit}): {}", held.join(", "))
    } else {
        if !held.is_empty() {
            parts.push(format!("held by {}", held.join(", ")));
        }
        format!(
            "{what} ({limit}, no error, the rate achieved): {}",
            parts.join("; ")
        )
    };
    Check {
        met: missed.is_empty() && inconclusive.is_empty() && !held.is_empty(),
        text,
    }
}

fn missing(text: &str) -> Check {
    Check {
        met: false,
        text: text.to_owned(),
    }
}

/// Checked at the best row's published rate (its confirmation, when it had one): the step
/// with the most CPU time, which is what makes a user/system split precise. The kernel (tick
/// accounting, as here) charges each timer tick wholly to user or system time by where the
/// tick lands, so a step with a few hundred milliseconds of CPU gives the split only to
/// within several points; the cost table's low common rate is such a step, and is shown
/// beside it.
fn user_share_check(summary: &CapacitySummary, best: &ServerCapacity) -> Check {
    let max = ISSUE_10.user_cpu_share_max;
    let published = figures::cost_step(best, best.max_sustainable_requests_per_second)
        .and_then(with_user_share);
    let Some((step, share)) = published else {
        return missing(&format!(
            "{}'s user-space CPU share: no step to measure it on",
            best.name
        ));
    };
    let described = |step: &JudgedStep, share: f64| {
        format!(
            "{:.0} %: {} of {} µs at {:.0} req/s, from about {} ms of CPU",
            share * 100.0,
            num(step.step.server.user_cpu_us_per_request),
            num(figures::cpu_us_per_request(&step.step)),
            step.step.target_requests_per_second,
            num(figures::cpu_us_per_request(&step.step) * step.step.requests_ok as f64 / 1e3),
        )
    };
    let mut text = format!(
        "{}'s user-space CPU at most {:.0} % of its CPU per request at its published rate (got \
         {}",
        best.name,
        max * 100.0,
        described(step, share)
    );
    let cost_table = figures::common_rate(summary)
        .and_then(|rate| figures::cost_step(best, rate))
        .filter(|other| {
            other.step.target_requests_per_second < step.step.target_requests_per_second
        })
        .and_then(with_user_share);
    if let Some((other, other_share)) = cost_table {
        text.push_str(&format!(
            "; at the cost table's rate {}, a split the kernel's tick sampling gives only to \
             within several points",
            described(other, other_share)
        ));
    }
    text.push(')');
    Check {
        met: share <= max,
        text,
    }
}

fn with_user_share(step: &JudgedStep) -> Option<(&JudgedStep, f64)> {
    Some((step, figures::user_share(&step.step)?))
}

fn client_bound_check(summary: &CapacitySummary) -> Check {
    let bound: Vec<&str> = summary
        .servers
        .iter()
        .filter(|s| s.bound == Bound::Client)
        .map(|s| s.name.as_str())
        .collect();
    Check {
        met: bound.is_empty(),
        text: if bound.is_empty() {
            "no server's limit is a step where loadgen was the bottleneck".to_owned()
        } else {
            format!(
                "no server's limit is loadgen's: {} stopped at a client-bound step (their rates \
                 are lower bounds)",
                bound.join(", ")
            )
        },
    }
}

fn headroom_check(summary: &CapacitySummary, best_max: f64) -> Check {
    let min = ISSUE_10.client_headroom_min;
    if let Some(headroom) = &summary.loadgen_headroom {
        return headroom_run_check(summary, headroom, best_max);
    }
    match &summary.loadgen_ceiling_requests_per_second {
        Ok(ceiling) => Check {
            met: *ceiling >= min * best_max,
            text: format!(
                "loadgen carries at least {min}× the best server's max rate on its own CPUs \
                 (got {}: {ceiling:.0} against {best_max:.0} req/s)",
                ratio(ceiling / best_max)
            ),
        },
        Err(missing_ceiling) => missing(&format!(
            "loadgen carries at least {min}× the best server's max rate: its ceiling was {missing_ceiling}"
        )),
    }
}

/// The headroom target judged on loadgen's run at a multiple of the best max.
fn headroom_run_check(
    summary: &CapacitySummary,
    headroom: &LoadgenHeadroom,
    best_max: f64,
) -> Check {
    let min = ISSUE_10.client_headroom_min;
    let what = format!(
        "loadgen carries at least {min}× the best server's max rate on its own CPUs \
         (open loop at {} × {best_max:.0} req/s against {} at zero delay",
        headroom.multiple_of_best_max, headroom.server
    );
    let (Some(step), Some(carried)) = (
        headroom.step.as_ref(),
        figures::headroom_carried(summary, headroom),
    ) else {
        let why = headroom
            .failure
            .as_deref()
            .unwrap_or("nothing was measured");
        return missing(&format!("{what}): not measured: {why}"));
    };
    let lag = step
        .loadgen
        .lag_p99_ms
        .as_ref()
        .map_or_else(|m| m.to_string(), |lag| format!("{} ms", num(*lag)));
    let away = step.away_from_slowdowns.map_or_else(String::new, |away| {
        format!(
            "; away from the machine's slowdowns (the {:.1} % of its requests due with no \
             slowed probe sample in the {} ms before or the {} ms after) its lag p99 {} and \
             {:.3} % late, and {:.1} % of its late starts were due near a slowdown",
            away.away_percent(),
            num(away.before_due_ms),
            num(away.after_due_ms),
            away.schedule_lag_p99_us
                .map_or_else(dash, |us| format!("{} ms", num(us / 1e3))),
            away.late_percent(),
            away.late_near_percent(),
        )
    });
    let blamed = blamed_lag(
        step.loadgen.lag_p99_ms.as_ref().ok().copied(),
        step.away_from_slowdowns.as_ref(),
    );
    let judged = blamed
        .filter(|lag| lag.away_from_slowdowns)
        .map_or_else(String::new, |lag| {
            format!(
                "; judged there, as a client is, on its own lag: p99 {} ms",
                num(lag.p99_ms)
            )
        });
    Check {
        met: carried && headroom.multiple_of_best_max >= min,
        text: format!(
            "{what}, {} connections): achieved {:.0} of {:.0} req/s, {} failed, its lag p99 \
             {lag} (limit {} ms), its CPU {:.0} %{away}{judged}",
            step.connections,
            step.achieved_requests_per_second,
            step.target_requests_per_second,
            step.requests_failed,
            num(summary.settings.slo.client_lag_p99_max_ms),
            step.loadgen.cpu_ratio * 100.0
        ),
    }
}
/// Issue 12's targets for a scenarios study, checked on the scenarios they name
/// ([`crate::study::scenarios::scenario`]'s defaults).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScenarioThresholds {
    /// Under a blocking delay a single event loop answers at most this many times one
    /// request per delay: it collapsed, as the issue wants shown.
    pub collapsed_max_over_one_per_delay: f64,
    /// Under a blocking delay an offload variant answers at least this share of what it
    /// answers when the wait is honest (within 2×).
    pub offload_min_share_of_honest: f64,
    /// CPU-bound, each of the project's threaded rows answers at least this many times what
    /// the best single event loop answers.
    pub threads_over_one_loop_min: f64,
}

/// The targets of issue 12.
pub const ISSUE_12: ScenarioThresholds = ScenarioThresholds {
    collapsed_max_over_one_per_delay: 1.5,
    offload_min_share_of_honest: 0.5,
    threads_over_one_loop_min: 1.5,
};

/// Every target of issue 12 checked on a scenarios study; one that cannot be checked (its
/// scenario or its rows did not run) is listed as missed, with the reason.
pub fn scenario_checks(summary: &ScenariosSummary) -> Vec<Check> {
    let mut checks = collapse_checks(summary);
    checks.extend(offload_checks(summary));
    checks.extend(threads_checks(summary));
    checks.extend(mixed_checks(summary));
    checks
}

/// The scenario called `name` with its figures, or the check that says why it is missing.
fn ran<'a>(summary: &'a ScenariosSummary, name: &str) -> Result<&'a ScenarioRun, Check> {
    match summary.scenario(name) {
        None => Err(missing(&format!(
            "the `{name}` scenario's targets: not checked, this study did not run it"
        ))),
        Some(run) => match &run.skipped {
            Some(reason) => Err(missing(&format!(
                "the `{name}` scenario's targets: not checked, it was skipped: {reason}"
            ))),
            None => Ok(run),
        },
    }
}

/// The cells of `run` whose executor is `executor`, with figures.
fn cells_of(run: &ScenarioRun, executor: Executor) -> Vec<(&Cell, &Figures)> {
    run.cells
        .iter()
        .filter(|c| c.executor == executor)
        .filter_map(|c| Some((c, c.figures.as_ref()?)))
        .collect()
}

fn collapse_checks(summary: &ScenariosSummary) -> Vec<Check> {
    let run = match ran(summary, BLOCKING) {
        Ok(run) => run,
        Err(check) => return vec![check],
    };
    let delay = run.scenario.mean_delay();
    let one_per_delay = 1.0 / delay.as_secs_f64().max(f64::MIN_POSITIVE);
    let max = ISSUE_12.collapsed_max_over_one_per_delay;
    let loops = cells_of(run, Executor::OneLoop);
    if loops.is_empty() {
        return vec![missing(
            "a single event loop collapses under a blocking delay: no single-loop row ran",
        )];
    }
    loops
        .iter()
        .map(|(cell, figures)| {
            let answered = figures.answered_requests_per_second();
            Check {
                met: answered <= max * one_per_delay,
                text: format!(
                    "{} under `{}`: a single event loop collapses to about 1/delay = {} req/s, \
                     at most {max}× that (got {} req/s, {} of 1/delay)",
                    cell.server,
                    run.scenario.spec,
                    num(one_per_delay),
                    num(answered),
                    ratio(answered / one_per_delay)
                ),
            }
        })
        .collect()
}

fn offload_checks(summary: &ScenariosSummary) -> Vec<Check> {
    let (blocking, honest) = match (ran(summary, BLOCKING), ran(summary, HONEST)) {
        (Ok(blocking), Ok(honest)) => (blocking, honest),
        (Err(check), _) | (_, Err(check)) => return vec![check],
    };
    let min = ISSUE_12.offload_min_share_of_honest;
    let offloaded = cells_of(blocking, Executor::Offload);
    if offloaded.is_empty() {
        return vec![missing(&format!(
            "an offload variant under `{}` answers at least {min}× its honest-wait rate: no \
             offload row ran (the offload variants are issue 12 part 2)",
            blocking.scenario.spec
        ))];
    }
    offloaded
        .iter()
        .map(|(cell, figures)| {
            let answered = figures.answered_requests_per_second();
            match honest.figures(&cell.server) {
                Some(theirs) if theirs.step.requests_ok > 0 => {
                    let honest_rate = theirs.answered_requests_per_second();
                    Check {
                        met: answered >= min * honest_rate,
                        text: format!(
                            "{} under `{}` stays within 2× of its honest-wait rate (got {} \
                             against {} req/s, {})",
                            cell.server,
                            blocking.scenario.spec,
                            num(answered),
                            num(honest_rate),
                            ratio(answered / honest_rate)
                        ),
                    }
                }
                _ => missing(&format!(
                    "{} under `{}` stays within 2× of its honest-wait rate: it answered nothing \
                     with the honest wait",
                    cell.server, blocking.scenario.spec
                )),
            }
        })
        .collect()
}

fn threads_checks(summary: &ScenariosSummary) -> Vec<Check> {
    let run = match ran(summary, CPU) {
        Ok(run) => run,
        Err(check) => return vec![check],
    };
    let min = ISSUE_12.threads_over_one_loop_min;
    let best_loop = cells_of(run, Executor::OneLoop).into_iter().max_by(|a, b| {
        a.1.answered_requests_per_second()
            .total_cmp(&b.1.answered_requests_per_second())
    });
    let threads: Vec<(&Cell, &Figures)> = cells_of(run, Executor::Threads)
        .into_iter()
        .filter(|(c, _)| matches!(catalogue::side_of(&c.model), Side::Rust { .. }))
        .collect();
    let Some((loop_cell, loop_figures)) = best_loop.filter(|_| !threads.is_empty()) else {
        return vec![missing(&format!(
            "under `{}` the threaded rows answer at least {min}× the single-loop rows: it needs \
             both a threaded row of the project and a single-loop row",
            run.scenario.spec
        ))];
    };
    let theirs = loop_figures.answered_requests_per_second();
    threads
        .iter()
        .map(|(cell, figures)| {
            let answered = figures.answered_requests_per_second();
            Check {
                met: answered >= min * theirs,
                text: format!(
                    "{} under `{}` answers at least {min}× the best single loop, {} (got {}: {} \
                     against {} req/s)",
                    cell.server,
                    run.scenario.spec,
                    loop_cell.server,
                    ratio(answered / theirs.max(f64::MIN_POSITIVE)),
                    num(answered),
                    num(theirs)
                ),
            }
        })
        .collect()
}

fn mixed_checks(summary: &ScenariosSummary) -> Vec<Check> {
    let run = match ran(summary, MIXED) {
        Ok(run) => run,
        Err(check) => return vec![check],
    };
    let honest = summary.scenario(HONEST);
    run.cells
        .iter()
        .map(
            |cell| match cell.figures.as_ref().filter(|f| f.step.requests_ok > 0) {
                Some(figures) => {
                    let p99 = figures.step.latency.p99_ms;
                    let against = honest
                        .and_then(|h| h.figures(&cell.server))
                        .filter(|f| f.step.requests_ok > 0)
                        .map_or_else(String::new, |h| {
                            format!(
                                " against {} ms with the honest wait ({:+.1} ms)",
                                num(h.step.latency.p99_ms),
                                p99 - h.step.latency.p99_ms
                            )
                        });
                    Check {
                        met: true,
                        text: format!(
                            "{} ({}) under `{}` states its CPU per answered request and p99: {} µs \
                         (user + system), p99 {} ms{against}",
                            cell.server,
                            cell.model,
                            run.scenario.spec,
                            num(figures
                                .cpu_us_per_answered_request(summary.settings.warmup_seconds)),
                            num(p99)
                        ),
                    }
                }
                None => missing(&format!(
                    "{} under `{}` states its CPU per request and p99: it answered no request",
                    cell.server, run.scenario.spec
                )),
            },
        )
        .collect()
}
