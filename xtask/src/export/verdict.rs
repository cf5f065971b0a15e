//! The generated prose of a report: the verdict (which model won, by how much), and the
//! paragraphs that explain the tables.
//!
//! Facts about the machine come from the recorded environment (`summary.env`), facts about
//! the article from [`crate::export::targets`]; nothing here states a number of its own.

use std::fmt::Write as _;

use crate::export::figures::{
    best_per_model, full_floor_seconds, reference_name, rows_at, rss_per_conn_kib, wall_or_infinity,
};
use crate::export::format::{num, ratio, secs};
use crate::export::targets::{ARTICLE, ARTICLE_CLIENT_HERE, article_setting};
use crate::results::{Row, Summary};

/// The generated sentence or two saying which model won, by how much, at `n` connections.
pub fn verdict(summary: &Summary, n: u64) -> String {
    let rows = rows_at(summary, n);
    let mut ok: Vec<&Row> = rows
        .iter()
        .copied()
        .filter(|r| r.measured.is_some())
        .collect();
    ok.sort_by(|a, b| wall_or_infinity(a).total_cmp(&wall_or_infinity(b)));
    let Some(winner) = ok.first() else {
        return format!("At {n} connections no server completed a run without failures.");
    };
    let best = wall_or_infinity(winner);
    let mut text = format!(
        "At {n} connections **{}** ({}) was fastest: {} s median",
        winner.server,
        winner.model,
        secs(best)
    );
    if let Some(floor) = full_floor_seconds(summary, winner) {
        let _ = write!(
            text,
            ", {} its floor of {} s",
            ratio(best / floor),
            secs(floor)
        );
    }
    text.push('.');
    let others = best_per_model(&ok, &winner.model);
    if !others.is_empty() {
        let parts: Vec<String> = others
            .iter()
            .map(|r| {
                let wall = wall_or_infinity(r);
                format!(
                    "{} {} s ({} slower)",
                    r.server,
                    secs(wall),
                    ratio(wall / best)
                )
            })
            .collect();
        let _ = write!(text, " Best of each other model: {}.", parts.join("; "));
    }
    if article_setting(&summary.params, n) {
        let _ = write!(
            text,
            " The article took {} s (threads) and {} s (asyncio) for this {}: {} and {} \
             the time of this run's winner.",
            ARTICLE.threads_seconds,
            ARTICLE.asyncio_seconds,
            ARTICLE.how,
            ratio(ARTICLE.threads_seconds / best),
            ratio(ARTICLE.asyncio_seconds / best)
        );
    }
    text.push_str(&memory_sentence(&ok));
    text.push_str(&failure_sentence(&rows));
    text
}

fn memory_sentence(ok: &[&Row]) -> String {
    let mut per_conn: Vec<(&Row, f64)> = ok
        .iter()
        .filter_map(|r| Some((*r, rss_per_conn_kib(r)?)))
        .collect();
    per_conn.sort_by(|a, b| a.1.total_cmp(&b.1));
    match (per_conn.first(), per_conn.last()) {
        (Some((low, l)), Some((high, h))) if low.server != high.server => format!(
            " Memory per concurrent connection ranged from {} KiB ({}) to {} KiB ({}), {} as much.",
            num(*l),
            low.server,
            num(*h),
            high.server,
            ratio(h / l.max(f64::MIN_POSITIVE))
        ),
        _ => String::new(),
    }
}

fn failure_sentence(rows: &[&Row]) -> String {
    let failed: Vec<String> = rows
        .iter()
        .filter(|r| r.runs_failed > 0)
        .map(|r| format!("{} ({} of {} runs)", r.server, r.runs_failed, r.runs))
        .collect();
    if failed.is_empty() {
        String::new()
    } else {
        format!(
            " Failed runs, left out of the figures: {}.",
            failed.join(", ")
        )
    }
}

/// Why every server gets the same backlog.
pub fn backlog(summary: &Summary) -> String {
    format!(
        "Every server, the Python baselines included, gets listen backlog {}; the article's \
         servers had 5 (socketserver) and 100 (asyncio), which on Linux turns a burst of \
         connects into 1 s SYN retransmits.\n",
        summary.params.backlog
    )
}

/// What the floor is and how to read the floor table.
pub fn floor(summary: &Summary) -> String {
    format!(
        "The floor of a run is what it cannot beat: the delay every connection must wait \
         (per wave of concurrent connections and per request) plus the same server's time for \
         the same run at zero delay. \"All connected after\" is when loadgen had its whole \
         first wave of connections established: a burst of connects costs the kernel, the \
         server's accept loop and the client real time before any delay starts. \"Cores busy\" is \
         server plus loadgen CPU time over the wall time: near the machine's {} cores, the \
         run was bound by CPU (the client's included), not by waiting. A wall / floor below 1× \
         is possible: with a delay, connecting and waiting overlap, while the floor adds them.\n\n",
        summary.env.cores
    )
}

/// Which targets are checked, and against what.
pub fn targets(summary: &Summary) -> String {
    format!(
        "Issue 6 sets them for {} connections and a {} ms delay; they are checked here at \
         every iteration count of this run. \"Faster than {reference}\" is checked twice: \
         against the {reference} row measured in this run, which gets the same listen backlog \
         ({}) and the same fast client as every Rust row (so it is only as slow as Python's own \
         event loop), and, at {} connections and {} ms, against the article's published {} s.\n",
        ARTICLE.connections,
        ARTICLE.delay_ms,
        summary.params.backlog,
        ARTICLE.connections,
        ARTICLE.delay_ms,
        ARTICLE.asyncio_seconds,
        reference = reference_name(summary),
    )
}

/// The closing notes on each column, and the article's figures for comparison.
pub fn how_to_read(summary: &Summary) -> String {
    let mut out = String::from("## How to read this\n\n");
    let _ = write!(
        out,
        "- **wall s** is loadgen's time for the whole run (all connections, every request), \
         median of the successful measured runs with their range; **× fastest** compares it \
         with the fastest row, **× delay floor** with the time the delay alone imposes.\n\
         - **failed runs** are runs in which loadgen counted any failed request, or the server \
         did not start or exit cleanly after SIGTERM; they are never averaged in.\n\
         - **peak RSS** is the server's resident-memory high-water mark; **RSS/conn** is \
         (peak − RSS right after start) ÷ concurrent connections.\n\
         - **CPU s** and **ctx switches** come from `wait4` and cover every thread the server \
         ever had; **peak threads** is sampled from /proc every 50 ms.\n\
         - **listen overflows** is the rise of the kernel's `TcpExt ListenOverflows` during the \
         runs (summed): each one is a SYN dropped by a full accept queue and retried by the \
         client 1 s later. It counts for the whole machine, so other activity can add to it.\n\
         - Every server runs in its own process on 127.0.0.1, freshly started for each run; \
         loadgen runs in another, on the same {} cores.\n\n",
        summary.env.cores
    );
    let (article, here) = (ARTICLE, ARTICLE_CLIENT_HERE);
    let _ = writeln!(
        out,
        "For comparison, the article measured {} connections at {} ms in {} s (threads) \
         and {} s (asyncio) {}; {}, its own Python client against its own servers with a 4096 \
         backlog took {} s (threads) and {} s (asyncio) when this project began (that client \
         is not part of this repository). The python rows above are those servers, moved to \
         the line protocol and driven by loadgen (see `baselines/README.md`); this run's delay \
         was {}.",
        article.connections,
        article.delay_ms,
        article.threads_seconds,
        article.asyncio_seconds,
        article.how,
        here.how,
        here.threads_seconds,
        here.asyncio_seconds,
        summary.params.delay
    );
    out
}
