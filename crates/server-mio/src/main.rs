//! `server-mio`: the hand-written mio event loop as a binary. Thin: it parses flags and hands
//! over to server-common's `run_binary`, which prints `listening on`, waits for SIGINT or
//! SIGTERM, drains and prints the summary.

use std::process::ExitCode;

use clap::Parser;
use server_common::ServerArgs;
use server_mio::VariantArgs;

/// Uppercase echo server on a hand-written mio event loop (asyncio's model, written out).
#[derive(Debug, Parser)]
#[command(name = "server-mio", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    #[command(flatten)]
    variant: VariantArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loops = usize::from(cli.variant.loops);
    server_common::run_binary(&cli.server, |config| server_mio::start(config, loops))
}
