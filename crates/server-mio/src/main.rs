//! The `server-mio` binary, thin: `server_common::run_binary` parses the flags (the common
//! ones and [`server_mio::VariantArgs`]), prints `listening on`, waits for SIGINT or SIGTERM,
//! drains and prints the summary.

use std::process::ExitCode;

use server_mio::VariantArgs;

/// The first line of `--help`.
const ABOUT: &str =
    "Uppercase echo server on a hand-written mio event loop (asyncio's model, written out)";

fn main() -> ExitCode {
    server_common::run_binary::<VariantArgs>("server-mio", ABOUT)
}
