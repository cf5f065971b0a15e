//! The targets a report checks and the published figures it compares with, as data in one
//! place: issue 6's thresholds, the article's own measurements, and what the article's own
//! client measured on a machine like the project's when the project began.
//!
//! Which rows are checked comes from the catalogue (`Side::Rust`, and `event_loop` for the
//! event-loop targets); the reference row is found by its model.

use crate::catalogue::{self, Side};
use crate::export::figures::{self, full_floor_seconds, reference_row, rows_at, rss_per_conn_kib};
use crate::export::format::{num, ratio, secs};
use crate::results::{Params, Row, Summary};

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
