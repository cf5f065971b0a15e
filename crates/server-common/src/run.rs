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

/// The allocation size from which [`tune_the_allocator`] has glibc map memory of its own:
/// above the requests' own buffers (a line, a 4 KiB read), below the 64 KiB a line may grow
/// to before it is refused as too long.
const MMAP_THRESHOLD_BYTES: libc::c_int = 16 * 1024;

/// The malloc arenas glibc may create: one, the main heap, whatever the number of threads.
const ARENA_MAX: libc::c_int = 1;

/// Three glibc allocator settings, so that a server's memory after a wave of hostile clients
/// comes back to what it was instead of ratcheting up.
///
/// **A fixed mmap threshold** ([`MMAP_THRESHOLD_BYTES`]): every allocation of at least that
/// size is a mapping of its own, given back to the system when it is freed. glibc maps large
/// allocations only until the first such mapping is freed; then it raises its threshold (up
/// to 32 MiB) and serves them from the heap, which it can seldom shrink. A server that meets a
/// wave of oversized lines (a 64 KiB buffer on many connections at once) then keeps that
/// memory for good: in a 10-minute soak with hostile waves server-mio's RSS grew 29.7 %, and
/// 0.0 % with this threshold fixed (README, Soak). Setting it also turns the raising off.
///
/// **One arena** ([`ARENA_MAX`]): glibc gives threads arenas of their own, up to 8 per core
/// (16 here), and each keeps the high-water mark of what was allocated in it, since small
/// chunks freed in the middle of an arena's heap are kept, not returned. The threads of a pool
/// or of tokio's workers serve each wave on different arenas, so the process's RSS is the sum
/// of every arena's worst wave so far, and it keeps climbing as rarer coincidences (several
/// hostile clients served from one arena at once) reach each arena in turn. In
/// `/proc/PID/smaps` over a 3-minute soak only the 64 MiB-aligned arena mappings grew
/// (threaded-pool: 15 arenas, 3.5 → 4.6 MiB, one arena at a time in steps from about 220 to
/// 400 KiB; tokio-multi: 2 arenas, +300 KiB); thread stacks, the main heap and the mapped
/// files stayed flat. That soak grew threaded-pool +12.5 % and tokio-multi +5.5 % by default,
/// +3.3 % and +0.0 % with `GLIBC_TUNABLES=glibc.malloc.arena_max=1`, +3.4 % and +1.9 % with 2
/// arenas, and +9.5 % and +1.5 % with a zero trim threshold instead (the kept memory is not
/// at the top of the heaps, so trimming cannot return it). With one arena every wave reuses
/// the chunks the last one freed. One lock for every thread costs nothing measurable here:
/// two cores run two threads at once at most (and the per-thread cache in front of it, which
/// this setting was first measured with, is off too now: see below). Server CPU per request
/// at zero delay, 16 arenas → 1 (server on CPU 0, `taskset -c 1 loadgen ADDR -n 50 -m
/// 4000`, 4 alternating rounds on the shared
/// machine, median µs (min–max)): threaded 11.1 (10.9–12.4) → 11.5 (10.0–12.5),
/// threaded-pool 11.3 (9.6–13.2) → 10.0 (9.1–11.5), tokio-multi 7.9 (7.1–8.5) → 7.3
/// (6.3–9.0), mio 6.2 (5.4–7.1) → 6.4 (5.7–6.9): every difference within the spread. In
/// the 10-minute soak of every server, threaded-pool +17.9 % → +6.3 % and tokio-multi
/// +6.6 % → +1.0 %. What threaded-pool still grew then was not the queue of a never-reader
/// (echo-core keeps it in one buffer since; the growth stayed) but its workers' stacks (see
/// server-threaded's `pool.rs`) and the per-thread cache below.
///
/// **No per-thread cache** ([`TCACHE_OFF`]): glibc keeps up to 7 freed chunks of each small
/// size class (up to 1 KiB) in a cache of the thread that freed them, for that thread alone.
/// A pool's workers that serve different hostile clients each fill their own cache, and the
/// heap grows until every worker's cache holds every size class it has met. In `smaps` over
/// 6-minute soaks of threaded-pool (256 workers, most recently idle first, so 78 in use) the
/// heap grew 768 → 1296 KiB, step by step after the 2-minute warm-up (RSS +3.6 %, still
/// climbing); with the cache off it stayed at 568 KiB from the first minute on (+0.0 %). The
/// cache is glibc's fast path; turning it off cost at most a few percent here, within the
/// spread (server CPU per request at zero delay, server on CPU 0, `taskset -c 1 loadgen ADDR
/// -n 50 -m 4000`, alternating rounds, median µs (min–max), cache on → off: threaded-pool,
/// 5 rounds, 11.7 (9.6–13.1) → 12.3 (10.8–12.8); tokio-multi, 3 rounds, 9.75 (8.15–9.85) →
/// 9.45 (8.85–10.2); mio, 2 rounds, 7.1 and 7.4 → 7.1 and 7.7). glibc reads the setting
/// only from the environment at start (`GLIBC_TUNABLES`; `mallopt` has no such option), so a
/// server started without it execs itself again with it: same process, same PID, same
/// arguments.
fn tune_the_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        turn_the_thread_cache_off();
        // SAFETY: mallopt only changes allocator settings; it takes no pointers. Called before
        // the server starts its threads, so every thread is served by the one arena.
        unsafe {
            libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES);
            libc::mallopt(libc::M_ARENA_MAX, ARENA_MAX);
        }
    }
}

/// The glibc tunable that turns the per-thread cache off (why: `tune_the_allocator`, above).
pub const TCACHE_OFF: &str = "glibc.malloc.tcache_count=0";

/// Execs this binary again with [`TCACHE_OFF`] added to `GLIBC_TUNABLES`, unless that
/// variable already sets the cache (ours, or the user's choice). Returns only when the exec
/// failed, which leaves the cache on: a warning, not a reason to refuse to serve.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn turn_the_thread_cache_off() {
    use std::os::unix::process::CommandExt;

    const VAR: &str = "GLIBC_TUNABLES";
    let current = std::env::var_os(VAR).unwrap_or_default();
    if current
        .to_string_lossy()
        .contains("glibc.malloc.tcache_count")
    {
        return;
    }
    let mut tunables = current;
    if !tunables.is_empty() {
        tunables.push(":");
    }
    tunables.push(TCACHE_OFF);
    let mut args = std::env::args_os();
    let arg0 = args.next().unwrap_or_default();
    let err = std::process::Command::new("/proc/self/exe")
        .arg0(arg0)
        .args(args)
        .env(VAR, tunables)
        .exec();
    eprintln!(
        "warning: cannot exec again with {VAR}={TCACHE_OFF} ({err}); glibc's per-thread cache stays on"
    );
}

fn run<S, F>(args: &ServerArgs, start: F) -> anyhow::Result<()>
where
    S: Server + 'static,
    F: FnOnce(ServerConfig) -> io::Result<S>,
{
    tune_the_allocator();
    init_logging(args.verbose);
    let config = args.to_config().context("invalid flags")?;
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
