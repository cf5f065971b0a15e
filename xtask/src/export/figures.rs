//! Numbers derived from a summary's stored ones: the floors, memory per connection, the
//! fastest row, the best row of each model, and the reference row, found by its model.
//!
//! Derived figures are computed here, never stored twice in the JSON.

use crate::catalogue;
use crate::results::{Model, Params, Row, Summary};

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
