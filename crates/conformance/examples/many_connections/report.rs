//! The many-connections benchmark's results, typed and serializable (the JSON is the source
//! of truth), and the markdown rendered from them. Shared with `tests/reports.rs`, which
//! checks that the committed markdown is exactly what the committed JSON renders to.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::common::{Results, header};

/// One server variant's run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManyConnections {
    /// The binary (relative to the repository root) and the flags it was run with.
    pub server: String,
    /// Connections held open at once.
    pub connections: usize,
    /// Requests per connection.
    pub rounds: usize,
    /// Requests answered correctly.
    pub ok_requests: usize,
    /// Connections that could not be made, plus requests unanswered or answered wrongly.
    pub failures: usize,
    /// Time to open every connection (and send the first requests).
    pub connect_seconds: f64,
    /// Time of each round: reading every reply (and sending the next requests).
    pub round_seconds: Vec<f64>,
    /// Server threads with every connection open and served once.
    pub server_threads: u64,
    /// Server RSS with every connection open and served once.
    pub server_rss_bytes: u64,
}

/// The markdown report of `results`, read from `json_path` (repository-relative).
pub fn render(results: &Results<ManyConnections>, json_path: &str) -> String {
    let mut md = header(
        "Concurrent connections at 100 ms (issue 3 target: threaded survives 10000 without a failed request)",
        "many_connections",
        json_path,
        &results.command,
    );
    md.push_str("| server | connections | rounds | ok requests | failures | connect (s) | rounds (s) | server threads | server RSS (MiB) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---|---:|---:|\n");
    for row in &results.servers {
        let rounds: Vec<String> = row
            .round_seconds
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {:.2} | {} | {} | {:.1} |",
            row.server,
            row.connections,
            row.rounds,
            row.ok_requests,
            row.failures,
            row.connect_seconds,
            rounds.join(", "),
            row.server_threads,
            row.server_rss_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    md
}
