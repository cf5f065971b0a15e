//! The `server-threaded` binary, thin: `server_common::run_binary` parses the flags (the common
//! ones and [`server_threaded::VariantArgs`]), prints `listening on`, waits for SIGINT or SIGTERM,
//! drains and prints the summary.

use std::process::ExitCode;

use server_threaded::VariantArgs;

/// The first line of `--help`.
const ABOUT: &str =
    "The uppercase echo server on std threads: one thread per connection, or a bounded pool";

fn main() -> ExitCode {
    server_common::run_binary::<VariantArgs>("server-threaded", ABOUT)
}
