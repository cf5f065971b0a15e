//! The `server-async` binary: parses flags and hands over to `server_common::run_binary`.

use std::process::ExitCode;

use clap::Parser;
use server_async::VariantArgs;
use server_common::ServerArgs;

/// The uppercase echo server on tokio: one task per connection.
#[derive(Debug, Parser)]
#[command(name = "server-async", version)]
struct Cli {
    #[command(flatten)]
    server: ServerArgs,

    #[command(flatten)]
    variant: VariantArgs,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let options = cli.variant.options();
    server_common::run_binary(&cli.server, |config| server_async::start(config, options))
}
