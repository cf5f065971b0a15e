//! Numbers derived from a summary's stored ones: the floors, memory per connection, the
//! fastest row, the best row of each model, and the reference row, found by its model; for a
//! capacity study, the servers by capacity, the rate every one sustained and the step whose
//! costs are compared.
//!
//! Derived figures are computed here, never stored twice in the JSON.

use crate::catalogue;
use crate::results::{Model, Params, Row, Summary};
use crate::study::capacity::results::{
    CapacitySummary, IndependentCheck, IndependentOutcome, JudgedStep, LoadgenHeadroom,
    ServerCapacity, Step,
};
use crate::study::capacity::slo::{Verdict, blamed_lag};

/// The rows at `n` connections, in table order.
pub fn rows_at(summary: &Summary, n: u64) -> Vec<&Row> {
    summary.rows.iter().filter(|r| r.iterations == n).collect()
}

/// Every server name, in table order, once.
pub fn server_names(summary: &Summary) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for row in &summary.rows {
        if !names.contains(&row.server.as_str()) {
            names.push(&row.server);
        }
    }
    names
}

/// The median wall time, when the row has figures.
pub fn wall(row: &Row) -> Option<f64> {
    Some(row.measured.as_ref()?.wall_seconds.median)
}

/// The median wall time, or infinity for a row without figures (so it sorts last).
pub fn wall_or_infinity(row: &Row) -> f64 {
    wall(row).unwrap_or(f64::INFINITY)
}

/// The fastest median wall time among `rows`.
pub fn fastest_wall(rows: &[&Row]) -> Option<f64> {
    rows.iter().filter_map(|r| wall(r)).min_by(f64::total_cmp)
}

/// The first of `rows` whose model is the catalogue's reference model (the article's
/// asyncio server), whatever its name.
pub fn reference_row<'a>(rows: &[&'a Row]) -> Option<&'a Row> {
    let model = catalogue::reference_model()?;
    rows.iter().copied().find(|r| r.model == model)
}

/// The name the reference row has in this summary, for prose and column titles.
pub fn reference_name(summary: &Summary) -> String {
    let rows: Vec<&Row> = summary.rows.iter().collect();
    reference_row(&rows).map_or_else(
        || catalogue::reference_model().map_or_else(String::new, |m| m.to_string()),
        |r| r.server.clone(),
    )
}

/// From rows sorted fastest first: the first row of each model other than `winner`.
pub fn best_per_model<'a>(sorted: &[&'a Row], winner: &Model) -> Vec<&'a Row> {
    let mut seen = vec![winner];
    let mut best = Vec::new();
    for row in sorted {
        if !seen.contains(&&row.model) {
            seen.push(&row.model);
            best.push(*row);
        }
    }
    best
}

/// The time the delay alone imposes: one delay per request, per wave of concurrent
/// connections.
pub fn delay_floor_seconds(params: &Params, n: u64, concurrent: u64) -> f64 {
    let waves = n.div_ceil(concurrent.max(1));
    (waves * params.requests_per_conn) as f64 * params.delay.mean().as_secs_f64()
}

/// The delay floor plus the same server's zero-delay time (issue 6's floor).
pub fn full_floor_seconds(summary: &Summary, row: &Row) -> Option<f64> {
    let delay = delay_floor_seconds(&summary.params, row.iterations, row.concurrent_connections);
    Some(delay + row.zero_delay_wall_seconds?)
}

/// (peak RSS − RSS at start) ÷ concurrent connections, in KiB.
pub fn rss_per_conn_kib(row: &Row) -> Option<f64> {
    let m = row.measured.as_ref()?;
    let grown = (m.peak_rss_bytes - m.idle_rss_bytes).max(0.0);
    Some(grown / row.concurrent_connections.max(1) as f64 / 1024.0)
}

/// A capacity study's servers that sustained some rate, fastest first.
pub fn by_capacity(summary: &CapacitySummary) -> Vec<&ServerCapacity> {
    by_capacity_of(&summary.servers)
}

/// Of `servers`, those that sustained some rate, fastest first.
pub fn by_capacity_of(servers: &[ServerCapacity]) -> Vec<&ServerCapacity> {
    let mut servers: Vec<&ServerCapacity> = servers
        .iter()
        .filter(|s| s.max_sustainable_requests_per_second > 0.0)
        .collect();
    servers.sort_by(|a, b| {
        b.max_sustainable_requests_per_second
            .total_cmp(&a.max_sustainable_requests_per_second)
    });
    servers
}

/// The capacity study's server of the reference model (the article's asyncio server).
pub fn reference_capacity(summary: &CapacitySummary) -> Option<&ServerCapacity> {
    let model = catalogue::reference_model()?;
    summary.servers.iter().find(|s| s.model == model)
}

/// The server of catalogue side `side` whose search held the highest rate in any step,
/// confirmed or not (0 for a server that held none), whatever it published: the row a
/// ratio against that side must beat. Picking among published rates alone would compare
/// against a weaker row whenever the strongest one's confirmations all broke.
pub fn strongest_of_side(
    summary: &CapacitySummary,
    side: catalogue::Side,
) -> Option<&ServerCapacity> {
    let held = |server: &ServerCapacity| {
        server
            .steps
            .iter()
            .filter(|j| j.verdict == Verdict::Sustained)
            .map(|j| j.step.target_requests_per_second)
            .fold(server.max_sustainable_requests_per_second, f64::max)
    };
    summary
        .servers
        .iter()
        .filter(|s| catalogue::side_of(&s.model) == side)
        .max_by(|a, b| held(a).total_cmp(&held(b)))
}

/// The best server whose catalogue side is `side`, if any sustained a rate.
pub fn best_of_side(summary: &CapacitySummary, side: catalogue::Side) -> Option<&ServerCapacity> {
    by_capacity(summary)
        .into_iter()
        .find(|s| catalogue::side_of(&s.model) == side)
}

/// The highest rate every server that sustained any rate sustained: the lowest of their max
/// sustainable rates. `None` when no server sustained one.
pub fn common_rate(summary: &CapacitySummary) -> Option<f64> {
    by_capacity(summary)
        .iter()
        .map(|s| s.max_sustainable_requests_per_second)
        .min_by(f64::total_cmp)
}

/// `server`'s sustained step with the highest target at or below `rate`, or, when its search
/// never went that low, its lowest sustained step: where its costs are compared with the
/// other servers'.
pub fn cost_step(server: &ServerCapacity, rate: f64) -> Option<&JudgedStep> {
    let sustained = || {
        server
            .steps
            .iter()
            .filter(|s| s.verdict == Verdict::Sustained)
    };
    let target = |s: &&JudgedStep| s.step.target_requests_per_second;
    sustained()
        .filter(|s| target(s) <= rate)
        .max_by(|a, b| target(a).total_cmp(&target(b)))
        .or_else(|| sustained().min_by(|a, b| target(a).total_cmp(&target(b))))
}

/// CPU per request, user plus system, in µs.
pub fn cpu_us_per_request(step: &Step) -> f64 {
    step.server.user_cpu_us_per_request + step.server.system_cpu_us_per_request
}

/// The user-space share of the CPU per request, or `None` when there was no CPU time.
pub fn user_share(step: &Step) -> Option<f64> {
    let total = cpu_us_per_request(step);
    (total > 0.0).then(|| step.server.user_cpu_us_per_request / total)
}

/// Peak resident memory per connection in KiB (the whole process, not its growth: a step
/// has no idle baseline).
pub fn rss_per_connection_kib(step: &Step) -> f64 {
    step.server.peak_rss_bytes as f64 / step.connections.max(1) as f64 / 1024.0
}

/// What the independent client's check of a server shows.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IndependentVerdict {
    /// p99 within its limit, no error, and at least the SLO's share of the requests due in
    /// its window answered.
    Held,
    /// The server did not hold the rate for the independent client.
    Missed,
    /// The independent client itself fell behind its schedule (its own lag p99 over the
    /// limit past which a loadgen step is client-bound): the check shows nothing either way.
    Inconclusive {
        /// The client's own lag, p99.
        client_lag_p99_ms: f64,
    },
}

/// What the independent client's check of a server shows; `None` when it measured nothing.
pub fn independent_verdict(
    summary: &CapacitySummary,
    check: &IndependentCheck,
) -> Option<IndependentVerdict> {
    let IndependentOutcome::Measured {
        requests_ok,
        errors,
        latency,
        client_lag_p99_ms,
        away_from_slowdowns,
        ..
    } = &check.outcome
    else {
        return None;
    };
    let slo = &summary.settings.slo;
    let p99_ms = slo
        .away(*away_from_slowdowns)
        .map_or(latency.p99_ms, |away| away.p99_ms);
    let lag = blamed_lag(*client_lag_p99_ms, away_from_slowdowns.as_ref());
    if let Some(lag) = lag.filter(|lag| lag.p99_ms > slo.client_lag_p99_max_ms) {
        return Some(IndependentVerdict::Inconclusive {
            client_lag_p99_ms: lag.p99_ms,
        });
    }
    let due = check.requests_per_second * check.window_seconds;
    let held = p99_ms <= slo.p99_max_ms()
        && *errors == 0
        && *requests_ok as f64 >= slo.achieved_min_ratio * due;
    Some(if held {
        IndependentVerdict::Held
    } else {
        IndependentVerdict::Missed
    })
}

/// Whether loadgen carried its headroom run: the SLO's share of the rate achieved, nothing
/// failed, and its own lag (as a client is blamed: away from the machine's slowdowns when it
/// logged its requests, see [`blamed_lag`]) within the limit past which a step is
/// client-bound. `None` when the run measured nothing.
pub fn headroom_carried(summary: &CapacitySummary, headroom: &LoadgenHeadroom) -> Option<bool> {
    let slo = &summary.settings.slo;
    let step = headroom.step.as_ref()?;
    let lag = blamed_lag(
        step.loadgen.lag_p99_ms.as_ref().ok().copied(),
        step.away_from_slowdowns.as_ref(),
    );
    let lag_ok = lag.is_some_and(|lag| lag.p99_ms <= slo.client_lag_p99_max_ms);
    Some(
        lag_ok
            && step.requests_failed == 0
            && step.achieved_requests_per_second
                >= slo.achieved_min_ratio * step.target_requests_per_second,
    )
}
