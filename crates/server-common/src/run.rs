//! [`run_binary`]: everything a server binary does, from parsing its flags to its exit
//! summary, so that each `main.rs` is one call and every server behaves the same from the
//! outside.

use std::io::{self, IsTerminal, Write};
use std::process::ExitCode;

use anyhow::Context;
use clap::{Args, Command, FromArgMatches};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::Signals;
use tracing_subscriber::EnvFilter;

use crate::args::{ServerArgs, Variant};
use crate::config::ServerConfig;
use crate::net::raise_nofile_limit;
use crate::server::Server;

/// Runs a server binary to completion: parses the common flags and the variant's own `V`
/// (the binary is called `name`, and `--help` starts with `about`), sets up logging, raises
/// the open-file limit, starts the server `V` selects, prints `listening on <ip>:<port>` to
/// stdout, serves until SIGINT or SIGTERM, shuts down (answering what was received), prints
/// the summary line to stderr and returns success. On failure prints `error: ...` naming the
/// address or flag and returns failure; on bad flags, clap's message and exit code.
pub fn run_binary<V: Variant>(name: &'static str, about: &'static str) -> ExitCode {
    let command = Command::new(name).version(env!("CARGO_PKG_VERSION"));
    // `about` goes on last: each flattened `Args` struct sets the command's about to its own
    // doc comment, so set first it was replaced by a developer's note about `VariantArgs`.
    let matches = V::augment_args(ServerArgs::augment_args(command))
        .about(about)
        .long_about(None)
        .get_matches();
    let parsed = ServerArgs::from_arg_matches(&matches)
        .and_then(|args| Ok((args, V::from_arg_matches(&matches)?)));
    let (args, variant) = parsed.unwrap_or_else(|err| err.exit());
    match run(&args, |config| variant.start(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

/// The allocation size from which [`return_large_buffers_to_the_system`] maps memory of its
/// own: above the requests' own buffers (a line, a 4 KiB read), below the 64 KiB a line may
/// grow to before it is refused as too long.
const MMAP_THRESHOLD_BYTES: libc::c_int = 16 * 1024;

/// Makes every allocation of at least [`MMAP_THRESHOLD_BYTES`] a mapping of its own, given
/// back to the system when it is freed.
///
/// glibc maps large allocations only until the first such mapping is freed; then it raises
/// its threshold (up to 32 MiB) and serves them from the heap, which it can seldom shrink. A
/// server that meets a wave of oversized lines (a 64 KiB buffer on many connections at once)
/// then keeps that memory for good: in a 10-minute soak with hostile waves server-mio's RSS
/// grew 30 %, and 2 % with this threshold fixed (README, Soak). Setting it also turns the
/// raising off.
fn return_large_buffers_to_the_system() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes an allocator setting; it takes no pointers.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
    }
}

fn run<S, F>(args: &ServerArgs, start: F) -> anyhow::Result<()>
where
    S: Server + 'static,
    F: FnOnce(ServerConfig) -> io::Result<S>,
{
    init_logging(args.verbose);
    let config = args.to_config().context("invalid flags")?;
    return_large_buffers_to_the_system();
    if let Err(err) = raise_nofile_limit() {
        tracing::warn!("cannot raise the open-file limit: {err}");
    }
    // Registered before the server starts, so that a signal sent as soon as the
    // `listening on` line appears is not lost (or fatal).
    let mut signals = Signals::new([SIGINT, SIGTERM]).context("cannot install signal handlers")?;
    let addr = config.addr;
    let server = Box::new(start(config).with_context(|| format!("cannot serve on {addr}"))?);
    announce(&*server)?;
    if let Some(signal) = signals.forever().next() {
        tracing::info!(signal, "shutting down");
    }
    let summary = server.shutdown().context("shutdown failed")?;
    eprintln!("{summary}");
    Ok(())
}

/// The one line tools wait for; flushed at once since stdout is a pipe for them.
fn announce(server: &dyn Server) -> anyhow::Result<()> {
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {}", server.local_addr())
        .and_then(|()| stdout.flush())
        .context("cannot write to stdout")
}

/// Warnings by default, per-connection `info` with `-v`; `RUST_LOG` overrides both. Logs go
/// to stderr, leaving stdout to the `listening on` line.
fn init_logging(verbose: bool) {
    let default = if verbose { "info" } else { "warn" };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    // A second init (tests calling twice) is harmless: keep the first subscriber.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr)
        .with_ansi(io::stderr().is_terminal())
        .try_init();
}
