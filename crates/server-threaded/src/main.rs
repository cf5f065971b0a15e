//! The `server-threaded` binary: parses flags and hands over to `server_common::run_binary`.

use std::process::ExitCode;

use clap::Parser;
use server_common::ServerArgs;
use server_threaded::VariantArgs;

/// The uppercase echo server on std threads: one thread per connection, or a bounded pool.
#[derive(Debug, Parser)]
#[command(name = "server-threaded", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    #[command(flatten)]
    variant: VariantArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = cli.variant.mode();
    server_common::run_binary(&cli.server, |config| server_threaded::start(config, mode))
}
