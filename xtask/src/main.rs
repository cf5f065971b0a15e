//! `cargo xtask`: parses the command line and hands over to the library; see `lib.rs`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Project automation for the threads vs tokio vs mio study.
#[derive(Debug, Parser)]
#[command(name = "cargo xtask", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Build the servers and loadgen, run the article's experiment on every variant, and
    /// write benches-results/<date>-<label>/ (JSON, README.md, chart.svg) and LATEST.md.
    Compare(xtask::study::compare::CompareArgs),
    /// Search each variant's max sustainable request rate at an SLO (default p99 ≤ 1.5 ×
    /// the 100 ms delay) on persistent connections, with the server and loadgen pinned to
    /// CPUs of their own, each rate found confirmed over a longer window before it is
    /// published, and what each request costs; writes
    /// benches-results/<date>-capacity/ (JSON, README.md, latency.svg) and LATEST.md.
    Capacity(xtask::study::capacity::CapacityArgs),
    /// Run every server in each scenario (honest wait, blocking driver, CPU work then a
    /// wait, CPU-bound) at one common open-loop load on persistent connections, the server
    /// free to use every core; writes benches-results/<date>-scenarios/ (JSON, README.md with
    /// a table per metric, a paragraph per scenario and issue 12's targets) and LATEST.md.
    /// With --render DIR, re-renders a written study instead.
    Scenarios(xtask::study::scenarios::ScenariosArgs),
    /// Soak each Rust server for --duration under a steady normal load (loadgen windows,
    /// every reply checked) with waves of hostile clients, sampling RSS, descriptors, threads
    /// and CPU every second; judges leaks and correctness and writes
    /// benches-results/<date>-soak/ (JSON, README.md, an SVG per server).
    Soak(xtask::study::soak::SoakArgs),
    /// Re-render DIR/README.md (and its chart) from DIR/summary.json, and LATEST.md.
    Report {
        /// A comparison, capacity, scenarios or soak directory, e.g. benches-results/2026-11-25-compare-10000.
        dir: PathBuf,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Cmd::Compare(args) => xtask::study::compare::run(args),
        Cmd::Capacity(args) => xtask::study::capacity::run(args),
        Cmd::Scenarios(args) => xtask::study::scenarios::run(args),
        Cmd::Soak(args) => xtask::study::soak::run(args),
        Cmd::Report { dir } => xtask::report::run(&dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}
