//! Project automation, run as `cargo xtask <command>` (the alias is in .cargo/config.toml).
//!
//! One subcommand a file, as in rust-analyzer's xtask:
//! - [`study::compare`]: builds the servers and loadgen, runs the article's experiment on
//!   every server variant, and writes `benches-results/<date>-<label>/`;
//! - [`study::capacity`]: searches each variant's max sustainable rate at an SLO, with the
//!   server and loadgen pinned to CPUs of their own, and what each request costs, and writes
//!   `benches-results/<date>-capacity/`;
//! - [`study::scenarios`]: every variant in each scenario (an honest wait, a blocking
//!   driver, CPU work then a wait, CPU-bound work) at one common load, the server free to use
//!   every core, and writes `benches-results/<date>-scenarios/`;
//! - [`report`]: re-renders a comparison's, a capacity study's or a scenarios study's report
//!   from its `summary.json`.
//! - [`study::soak`]: soaks each server under a steady normal load with hostile clients
//!   mixed in, and judges leaks and correctness, writing `benches-results/<date>-soak/`;
//! - [`report`]: re-renders a comparison's, a capacity study's or a soak's report from its
//!   `summary.json`.
//!
//! Their parts, arrows pointing down: [`catalogue`] (every server variant, one row each);
//! [`study`] (one file per question, and what a study needs: build, one run); [`run`] (one
//! server process, one loadgen run, /proc samples, perf counts, the machine); [`measured`] (a
//! figure or why it is missing); [`aggregate`] (runs into rows); [`results`] (the JSON types); [`export`] (markdown, SVG and JSON from a summary
//! only). Nothing in `run` or `export` knows which study called it.
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
//! - **Settings are typed end to end**: a delay is an `echo_core::Recipe` from the
//!   command line to `summary.json`, parsed once by echo-core's parser and given to every
//!   server as its spec.
//! - **Records name no machine's directories**: commands are written as a user types them
//!   from the repository root (`target/release/server-mio ...`).

pub mod aggregate;
pub mod catalogue;
pub mod export;
pub mod measured;
pub mod report;
pub mod results;
pub mod run;
pub mod study;

use std::path::PathBuf;

/// The workspace root: the parent of this crate's directory.
pub fn workspace_root() -> PathBuf {
    let manifest = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    manifest
        .parent()
        .map_or(manifest.clone(), |p| p.to_path_buf())
}
