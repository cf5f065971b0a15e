//! Project automation, run as `cargo xtask <command>` (the alias is in .cargo/config.toml).
//!
//! One subcommand a file, as in rust-analyzer's xtask:
//! - [`compare`]: builds the servers and loadgen, runs the article's experiment on every
//!   server variant, and writes `benches-results/<date>-<label>/`;
//! - [`report`]: re-renders a comparison's report from its `summary.json`.
//!
//! Their parts: [`variants`] (which servers, started how), [`server`] (one server process's
//! life), [`load`] (one loadgen run), [`procstat`] (what the server process cost), [`env`]
//! (machine and kernel counters), [`aggregate`] (runs into rows), [`results`] (the JSON
//! types), [`render`] and [`chart`] (markdown and SVG from the JSON only).
//!
//! Invariants:
//! - **JSON is the source of truth.** Reports and charts are rendered from `summary.json`
//!   alone, deterministically; a test re-renders every committed report and compares bytes.
//! - **A failed run is never averaged in.** Any failed request, a server that does not start
//!   or does not exit 0 after SIGTERM makes the run failed; rows show it and leave it out.
//! - **Every run starts a fresh server process**, so its peak memory, threads and CPU time
//!   belong to that run alone; loadgen always runs in a process of its own.
//! - **Every server gets the same delay, delay kind and listen backlog**, the Python
//!   baselines included, so rows differ only in their concurrency model.

pub mod aggregate;
pub mod chart;
pub mod compare;
pub mod env;
pub mod load;
pub mod procstat;
pub mod render;
pub mod report;
pub mod results;
pub mod server;
pub mod variants;

use std::path::PathBuf;

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), |p| p.to_path_buf())
}
