//! The `server-threaded` binary: parses flags and hands over to `server_common::run_binary`.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use server_common::ServerArgs;
use server_threaded::Mode;

/// The uppercase echo server on std threads: one thread per connection, or a bounded pool.
#[derive(Debug, Parser)]
#[command(name = "server-threaded", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Serve with a pool of N worker threads and a queue of accepted connections, instead
    /// of one thread per connection. A worker serves one connection to its end, so more
    /// than N simultaneous clients wait in the queue (shown in the exit summary).
    #[arg(long, value_name = "N")]
    pool: Option<NonZeroUsize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let mode = match cli.pool {
        Some(workers) => Mode::Pool {
            workers: workers.get(),
        },
        None => Mode::PerConnection,
    };
    server_common::run_binary(&cli.server, |config| server_threaded::start(config, mode))
}
