//! `server-mio`: the hand-written mio event loop as a binary. Thin: it parses flags and hands
//! over to server-common's `run_binary`, which prints `listening on`, waits for SIGINT or
//! SIGTERM, drains and prints the summary.

use std::process::ExitCode;

use clap::Parser;
use server_common::ServerArgs;

/// Uppercase echo server on a hand-written mio event loop (asyncio's model, written out).
#[derive(Debug, Parser)]
#[command(name = "server-mio", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Event loops, each on its own thread, sharing the port through SO_REUSEPORT. 1 is
    /// asyncio's model: one thread for everything.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    loops: u16,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let loops = usize::from(cli.loops);
    server_common::run_binary(&cli.server, |config| server_mio::start(config, loops))
}
