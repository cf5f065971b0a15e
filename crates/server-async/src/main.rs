//! The `server-async` binary, thin: `server_common::run_binary` parses the flags (the common
//! ones and [`server_async::VariantArgs`]), prints `listening on`, waits for SIGINT or SIGTERM,
//! drains and prints the summary.

use std::process::ExitCode;

use server_async::VariantArgs;

/// The first line of `--help`.
const ABOUT: &str = "The uppercase echo server on tokio: one task per connection";

fn main() -> ExitCode {
    server_common::run_binary::<VariantArgs>("server-async", ABOUT)
}
