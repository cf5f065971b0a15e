//! server-async: the uppercase echo server on tokio, the analogue of the article's asyncio
//! server.
//!
//! One task per connection maps the steps of a [`server_common::Driver`] to tokio IO (see
//! `connection`); one accept task spawns them by the shared accept policy and at shutdown
//! waits for them (see `acceptor`). The runtime is chosen by [`Flavor`]:
//! - [`Flavor::Multi`]: tokio's work-stealing multi-thread runtime (`workers` threads);
//! - [`Flavor::Current`]: one thread running everything, the closest analogue of asyncio's
//!   single event loop.
//!
//! The delay kinds show what each costs an async runtime: `wait` is a tokio timer (the
//! thread serves others meanwhile), while `block` (`std::thread::sleep`) and `spin` (a busy
//! loop) hold the runtime thread on purpose, stalling every task scheduled on it. With
//! `--offload N` they run on tokio's blocking pool instead (`spawn_blocking`, at most N at a
//! time), the fix for a blocking driver: the `tokio-offload` row is the current-thread runtime
//! with it, so that the single loop is what the pool frees.
//!
//! Memory per idle connection is kept small (the target is at most 2 KiB at 10000
//! connections): the read buffer lives on the stack only while a read runs, and a task holds
//! just its socket, its protocol state and a timer.
//!
//! The crate meets the contract in [`server_common::server`].

mod acceptor;
mod connection;

use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::str::FromStr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use server_common::{OffloadArgs, Server, ServerConfig, Stats, Summary, bind_listener};
use tokio::sync::{Notify, Semaphore, watch};

/// Which tokio runtime runs the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Flavor {
    /// The multi-thread, work-stealing runtime.
    #[default]
    Multi,
    /// The current-thread runtime: one thread for everything, like asyncio.
    Current,
}

/// A flavour other than `multi` or `current`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid flavor {0:?} (expected `multi` or `current`)")]
pub struct InvalidFlavor(String);

impl FromStr for Flavor {
    type Err = InvalidFlavor;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim() {
            "multi" => Ok(Flavor::Multi),
            "current" => Ok(Flavor::Current),
            other => Err(InvalidFlavor(other.to_owned())),
        }
    }
}

impl fmt::Display for Flavor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Flavor::Multi => "multi",
            Flavor::Current => "current",
        })
    }
}

/// The runtime options of [`start`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Options {
    /// Which runtime.
    pub flavor: Flavor,
    /// Worker threads of the multi-thread runtime; `None` is one per core. Ignored by the
    /// current-thread runtime.
    pub workers: Option<usize>,
    /// `block` and `spin` delays run on tokio's blocking pool, this many at a time; `None`:
    /// on the runtime's own threads.
    pub offload: Option<usize>,
}

/// The binary's variant flags, flattened into its parser beside the common ones, and read
/// in-process by [`server_common::start_from_flags`].
#[derive(Debug, Clone, clap::Args)]
pub struct VariantArgs {
    /// Runtime: `multi` (tokio's multi-thread, work-stealing runtime) or `current` (one
    /// thread for everything, the closest analogue of asyncio's single event loop).
    #[arg(long, default_value = "multi")]
    pub flavor: Flavor,

    /// Worker threads of the `multi` runtime (default: one per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<NonZeroUsize>,

    #[command(flatten)]
    pub offload: OffloadArgs,
}

impl VariantArgs {
    /// The runtime options these flags select.
    pub fn options(&self) -> Options {
        Options {
            flavor: self.flavor,
            workers: self.workers.map(NonZeroUsize::get),
            offload: self.offload.threads(),
        }
    }
}

/// What the accept task and the connection tasks share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) stats: Arc<Stats>,
    /// Signalled by each connection task as it ends, after its stats guard is dropped: wakes
    /// the accept task waiting for a free slot or for the last connection at shutdown.
    pub(crate) closed: Notify,
    /// Permits for `block` and `spin` delays on the blocking pool (`--offload N`).
    pub(crate) offload: Option<Semaphore>,
}

/// A running tokio server; see [`Server`].
#[derive(Debug)]
pub struct AsyncServer {
    addr: SocketAddr,
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    thread: JoinHandle<()>,
}

/// Binds `config.addr`, builds the runtime and starts serving on a background thread (which
/// is the runtime's only thread for [`Flavor::Current`]).
///
/// # Errors
/// When the address cannot be bound, or the runtime or its thread cannot be started.
pub fn start(config: ServerConfig, options: Options) -> io::Result<AsyncServer> {
    let std_listener = bind_listener(config.addr, config.backlog)?;
    std_listener.set_nonblocking(true)?;
    let addr = std_listener.local_addr()?;
    let runtime = build_runtime(options)?;
    let listener = {
        let _context = runtime.enter();
        tokio::net::TcpListener::from_std(std_listener)?
    };
    let stats = Stats::new();
    let shared = Arc::new(Shared {
        config,
        stats: Arc::clone(&stats),
        closed: Notify::new(),
        offload: options.offload.map(Semaphore::new),
    });
    let (stop, stopped) = watch::channel(false);
    let thread = std::thread::Builder::new()
        .name("echo-runtime".to_owned())
        .spawn(move || {
            runtime.block_on(acceptor::run(listener, shared, stopped));
            // Tasks still blocked in a `block` or `spin` delay, on the runtime or its blocking
            // pool, are not waited for long.
            runtime.shutdown_timeout(Duration::from_secs(1));
        })?;
    Ok(AsyncServer {
        addr,
        stats,
        stop,
        thread,
    })
}

impl server_common::Variant for VariantArgs {
    type Server = AsyncServer;

    fn start(&self, config: ServerConfig) -> io::Result<AsyncServer> {
        start(config, self.options())
    }
}

fn build_runtime(options: Options) -> io::Result<tokio::runtime::Runtime> {
    let mut builder = match options.flavor {
        Flavor::Multi => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            if let Some(workers) = options.workers {
                builder.worker_threads(workers.max(1));
            }
            builder
        }
        Flavor::Current => tokio::runtime::Builder::new_current_thread(),
    };
    builder.enable_all().thread_name("echo-worker").build()
}

impl Server for AsyncServer {
    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn stats(&self) -> Summary {
        self.stats.summary()
    }

    fn shutdown(self: Box<Self>) -> io::Result<Summary> {
        // An error means the accept task is gone already, which is what we want.
        let _ = self.stop.send(true);
        self.thread
            .join()
            .map_err(|_| io::Error::other("the runtime thread panicked"))?;
        Ok(self.stats.summary())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavors_read_back_what_they_print() {
        for flavor in [Flavor::Multi, Flavor::Current] {
            assert_eq!(flavor.to_string().parse(), Ok(flavor));
        }
    }

    #[test]
    fn an_unknown_flavor_is_refused_naming_it() {
        let err = "threads".parse::<Flavor>().expect_err("not a flavor");
        assert!(err.to_string().contains("\"threads\""), "{err}");
    }
}
