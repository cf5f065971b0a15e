//! The `server-uring` binary, thin: `server_common::run_binary` parses the flags (the common
//! ones and [`server_uring::VariantArgs`]), prints `listening on`, waits for SIGINT or SIGTERM,
//! drains and prints the summary. Where io_uring is unavailable it exits at start with
//! `error: cannot serve on ...: io_uring unavailable: <cause>`.

use std::process::ExitCode;

use server_uring::VariantArgs;

/// The first line of `--help`.
const ABOUT: &str = "Uppercase echo server on a hand-written io_uring completion loop";

fn main() -> ExitCode {
    server_common::run_binary::<VariantArgs>("server-uring", ABOUT)
}
