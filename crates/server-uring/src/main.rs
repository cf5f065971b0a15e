//! The `server-uring` binary, thin: `server_common::run_binary` parses the flags (the common
//! ones and [`server_uring::VariantArgs`]), prints `listening on`, waits for SIGINT or SIGTERM,
//! drains and prints the summary. Where io_uring is unavailable it exits at once, before
//! parsing anything, with status 3 and `skipped: io_uring unavailable: <cause>` on stderr (the
//! convention of the optional baselines, so a study shows the row as skipped with the reason).

use std::process::ExitCode;

use server_uring::VariantArgs;

/// The first line of `--help`.
const ABOUT: &str = "Uppercase echo server on a hand-written io_uring completion loop";

fn main() -> ExitCode {
    if let Err(unavailable) = server_uring::ring::probe() {
        eprintln!("skipped: {unavailable}");
        return ExitCode::from(server_uring::ring::EXIT_SKIPPED);
    }
    server_common::run_binary::<VariantArgs>("server-uring", ABOUT)
}
