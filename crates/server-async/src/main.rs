//! The `server-async` binary: parses flags and hands over to `server_common::run_binary`.

use std::num::NonZeroUsize;
use std::process::ExitCode;

use clap::Parser;
use server_async::{Flavor, Options};
use server_common::ServerArgs;

/// The uppercase echo server on tokio: one task per connection.
#[derive(Debug, Parser)]
#[command(name = "server-async", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    /// Runtime: `multi` (tokio's multi-thread, work-stealing runtime) or `current` (one
    /// thread for everything, the closest analogue of asyncio's single event loop).
    #[arg(long, default_value = "multi")]
    flavor: Flavor,

    /// Worker threads of the `multi` runtime (default: one per core).
    #[arg(long, value_name = "N")]
    workers: Option<NonZeroUsize>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = Options {
        flavor: cli.flavor,
        workers: cli.workers.map(NonZeroUsize::get),
    };
    server_common::run_binary(&cli.server, |config| server_async::start(config, options))
}
