//! The idle-memory benchmark's results, typed and serializable (the JSON is the source of
//! truth, in a [`Results`]), and the markdown rendered from them. Shared with `tests/reports.rs`, which checks
//! that the committed markdown is exactly what the committed JSON renders to.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use crate::common::{Results, header};

/// One server variant's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IdleMemory {
    /// The binary (relative to the repository root) and the flags it was run with.
    pub server: String,
    /// Connections held open.
    pub connections: usize,
    /// Connections that failed to connect or to get their reply.
    pub failed_connections: usize,
    /// Server RSS before any connection.
    pub rss_before_bytes: u64,
    /// Server RSS with every connection open and idle.
    pub rss_after_bytes: u64,
    /// `(after - before) / connections`.
    pub rss_per_connection_bytes: f64,
}

/// The markdown report of `results`, read from `json_path` (repository-relative).
pub fn render(results: &Results<IdleMemory>, json_path: &str) -> String {
    let mut md = header(
        "Resident memory per idle connection (issue 3 target: tokio <= 2 KiB at 10000)",
        "idle_memory",
        json_path,
        &results.command,
    );
    md.push_str("| server | connections | failed | RSS before (KiB) | RSS after (KiB) | per connection (bytes) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|\n");
    for row in &results.servers {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {:.0} |",
            row.server,
            row.connections,
            row.failed_connections,
            row.rss_before_bytes / 1024,
            row.rss_after_bytes / 1024,
            row.rss_per_connection_bytes
        );
    }
    md
}
