//! server-threaded: the uppercase echo server on std threads, the article's threaded server
//! done carefully.
//!
//! Two models, chosen by [`Mode`]:
//! - [`Mode::PerConnection`] (the default): every accepted connection gets its own OS thread,
//!   as in Python's `ThreadingTCPServer`. Threads get small stacks (64 KiB) so that 10000 of
//!   them fit easily; a waiting request is a sleeping thread.
//! - [`Mode::Pool`]: a fixed number of worker threads and a queue of accepted connections, the
//!   "no server would allow an infinite number of threads" variant. A worker serves one
//!   connection to its end, so connections beyond the pool's size wait in the queue; the
//!   stats show how many and for how long. A queued client is never left in silence: past
//!   the queue timeout it is told `ERR server busy`, and at shutdown it is served within the
//!   shutdown timeout or told `ERR server shutting down` (see `pool`).
//!
//! One acceptor thread accepts by the shared accept policy ([`server_common::AcceptBackoff`]);
//! `connection` maps each [`server_common::Step`] of a connection's
//! [`server_common::Driver`] to a blocking call. The crate meets the contract in
//! [`server_common::server`].

mod acceptor;
mod connection;
mod pool;
mod registry;

use std::io;
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::num::NonZeroUsize;

use server_common::args::{OptionalDuration, parse_optional_duration};
use server_common::{ConnectionGuard, Server, ServerConfig, Stats, Summary, bind_listener};
use socket2::SockRef;

use crate::pool::Pool;
use crate::registry::{Direction, Registration, Registry};

/// Stack size of connection and worker threads: the connection loop needs a few KiB, and
/// small stacks keep 10000 threads cheap in address space and page tables.
pub const THREAD_STACK_BYTES: usize = 64 * 1024;

/// How connections get threads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mode {
    /// One new thread per accepted connection.
    #[default]
    PerConnection,
    /// `workers` threads serve queued connections one at a time each.
    Pool {
        /// Number of worker threads (at least one is started).
        workers: usize,
        /// A connection queued longer than this is sent `ERR server busy` and closed; `None`
        /// lets it wait for a worker however long that takes.
        queue_timeout: Option<Duration>,
    },
}

/// The binary's variant flags, flattened into its parser beside the common ones, and read
/// in-process by [`server_common::start_from_flags`].
#[derive(Debug, Clone, clap::Args)]
pub struct VariantArgs {
    /// Serve with a pool of N worker threads and a queue of accepted connections, instead
    /// of one thread per connection. A worker serves one connection to its end, so more
    /// than N simultaneous clients wait in the queue (shown in the exit summary).
    #[arg(long, value_name = "N")]
    pub pool: Option<NonZeroUsize>,

    /// With `--pool`: a connection waiting in the queue longer than this is sent
    /// `ERR server busy` and closed (load shedding), so that a client learns instead of
    /// hanging while others hold every worker; `0` or `off` lets it wait.
    #[arg(
        long,
        value_name = "DURATION",
        default_value = "5s",
        value_parser = parse_optional_duration,
        requires = "pool"
    )]
    pub queue_timeout: OptionalDuration,
}

impl Default for VariantArgs {
    fn default() -> Self {
        VariantArgs {
            pool: None,
            queue_timeout: OptionalDuration(Some(DEFAULT_QUEUE_TIMEOUT)),
        }
    }
}

/// How long a pool's queued connection waits before it is told `ERR server busy`, unless
/// `--queue-timeout` says otherwise: far above the queue waits of a healthy pool (the committed
/// 10000-connection run peaks near 4 s at a 100 ms delay), short enough that a client
/// stuck behind holders hears of it long before the 30 s idle limit frees a worker.
pub const DEFAULT_QUEUE_TIMEOUT: Duration = Duration::from_secs(5);

impl VariantArgs {
    /// The mode these flags select.
    pub fn mode(&self) -> Mode {
        match self.pool {
            Some(workers) => Mode::Pool {
                workers: workers.get(),
                queue_timeout: self.queue_timeout.0,
            },
            None => Mode::PerConnection,
        }
    }
}

/// What the acceptor, the workers and the connection threads share.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: ServerConfig,
    pub(crate) stats: Arc<Stats>,
    pub(crate) registry: Arc<Registry>,
    /// When the stop began; unset while serving.
    stopped_at: OnceLock<Instant>,
}

impl Shared {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopped_at.get().is_some()
    }

    /// When the stop began, once it has.
    pub(crate) fn stopped_at(&self) -> Option<Instant> {
        self.stopped_at.get().copied()
    }

    /// Whether a stop is so far along that a request started now would be given up (see
    /// [`server_common::Driver::shutdown_since`]): a pool then leaves its queue to be refused.
    pub(crate) fn is_giving_up(&self, now: Instant) -> bool {
        let timeout = self.config.shutdown_timeout;
        self.stopped_at()
            .is_some_and(|at| now >= at + timeout - server_common::shutdown_goodbye(timeout))
    }
}

/// An accepted connection on its way to a thread. Field order matters: the registration is
/// dropped before the stream is closed (see `registry`).
#[derive(Debug)]
pub(crate) struct Accepted {
    pub(crate) registration: Registration,
    pub(crate) stream: TcpStream,
    pub(crate) guard: ConnectionGuard,
    pub(crate) id: u64,
    pub(crate) peer: SocketAddr,
}

/// A running threaded server; see [`Server`].
#[derive(Debug)]
pub struct ThreadedServer {
    addr: SocketAddr,
    shared: Arc<Shared>,
    listener: Arc<TcpListener>,
    acceptor: JoinHandle<()>,
    pool: Option<Pool>,
}

/// Binds `config.addr` and starts serving in background threads.
///
/// # Errors
/// When the address cannot be bound, or a thread cannot be started.
pub fn start(config: ServerConfig, mode: Mode) -> io::Result<ThreadedServer> {
    let listener = Arc::new(bind_listener(config.addr, config.backlog)?);
    let addr = listener.local_addr()?;
    let shared = Arc::new(Shared {
        config,
        stats: Stats::new(),
        registry: Arc::new(Registry::default()),
        stopped_at: OnceLock::new(),
    });
    let pool = match mode {
        Mode::PerConnection => None,
        Mode::Pool {
            workers,
            queue_timeout,
        } => Some(Pool::start(workers.max(1), queue_timeout, &shared)?),
    };
    let acceptor = acceptor::spawn(Arc::clone(&listener), Arc::clone(&shared), pool.clone())?;
    Ok(ThreadedServer {
        addr,
        shared,
        listener,
        acceptor,
        pool,
    })
}

impl server_common::Variant for VariantArgs {
    type Server = ThreadedServer;

    fn start(&self, config: ServerConfig) -> io::Result<ThreadedServer> {
        start(config, self.mode())
    }
}

impl Server for ThreadedServer {
    fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    fn stats(&self) -> Summary {
        self.shared.stats.summary()
    }

    fn shutdown(self: Box<Self>) -> io::Result<Summary> {
        let ThreadedServer {
            shared,
            listener,
            acceptor,
            pool,
            ..
        } = *self;
        let _ = shared.stopped_at.set(Instant::now());
        // On Linux, shutting a listening socket wakes the thread blocked in `accept`.
        let _ = SockRef::from(&*listener).shutdown(Shutdown::Read);
        acceptor
            .join()
            .map_err(|_| io::Error::other("the accept thread panicked"))?;
        drop(listener);
        if let Some(pool) = &pool {
            pool.stop();
        }
        let drained = drain(&shared, pool.as_ref());
        if let (Some(pool), true) = (pool, drained) {
            pool.join()?;
        }
        Ok(shared.stats.summary())
    }
}

/// Wakes every connection so it answers what it has (a pool's workers go on taking queued
/// connections meanwhile), waits for them (bounded by the shutdown timeout), then tells the
/// clients still queued that the server is shutting down and forces the stragglers closed.
/// Returns whether all closed.
fn drain(shared: &Shared, pool: Option<&Pool>) -> bool {
    shared.registry.shutdown_all(Direction::Read);
    if shared.registry.wait_empty(
        shared.stopped_at().unwrap_or_else(Instant::now) + shared.config.shutdown_timeout,
    ) {
        return true;
    }
    // Before the sockets are shut for writing, or the refusal could not be sent.
    let refused = pool.map_or(0, Pool::refuse_queued);
    tracing::warn!(
        open = shared.stats.open_connections(),
        refused,
        "shutdown timeout passed: queued connections refused, closing connections still busy"
    );
    shared.registry.shutdown_all(Direction::Both);
    // Threads sleeping through a `block` delay notice only when it ends.
    shared
        .registry
        .wait_empty(Instant::now() + Duration::from_secs(1))
}

#[cfg(test)]
mod tests {
    use server_common::parse_variant_flags;

    use super::*;

    fn mode(flags: &[&str]) -> io::Result<Mode> {
        Ok(parse_variant_flags::<VariantArgs>(flags)?.mode())
    }

    #[test]
    fn a_pool_sheds_after_five_seconds_unless_told_otherwise() -> io::Result<()> {
        let pool = |queue_timeout| Mode::Pool {
            workers: 4,
            queue_timeout,
        };
        assert_eq!(mode(&["--pool", "4"])?, pool(Some(DEFAULT_QUEUE_TIMEOUT)));
        assert_eq!(
            mode(&["--pool", "4", "--queue-timeout", "250ms"])?,
            pool(Some(Duration::from_millis(250)))
        );
        assert_eq!(
            mode(&["--pool", "4", "--queue-timeout", "off"])?,
            pool(None)
        );
        assert_eq!(mode(&[])?, Mode::PerConnection);
        Ok(())
    }

    #[test]
    fn a_queue_timeout_without_a_pool_is_refused_naming_both_flags() {
        let err = mode(&["--queue-timeout", "1s"]).expect_err("no queue to time out");
        let message = err.to_string();
        assert!(
            message.contains("--queue-timeout") && message.contains("--pool"),
            "{message}"
        );
    }
}
