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
//!   stats show how many and for how long.
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
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use std::num::NonZeroUsize;

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
    },
}

/// The binary's variant flags, flattened into its parser beside the common ones, and read
/// in-process by [`server_common::start_from_flags`].
#[derive(Debug, Clone, Default, clap::Args)]
pub struct VariantArgs {
    /// Serve with a pool of N worker threads and a queue of accepted connections, instead
    /// of one thread per connection. A worker serves one connection to its end, so more
    /// than N simultaneous clients wait in the queue (shown in the exit summary).
    #[arg(long, value_name = "N")]
    pub pool: Option<NonZeroUsize>,
}

impl VariantArgs {
    /// The mode these flags select.
    pub fn mode(&self) -> Mode {
        match self.pool {
            Some(workers) => Mode::Pool {
                workers: workers.get(),
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
    stopping: AtomicBool,
}

impl Shared {
    pub(crate) fn is_stopping(&self) -> bool {
        self.stopping.load(Ordering::SeqCst)
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
        stopping: AtomicBool::new(false),
    });
    let pool = match mode {
        Mode::PerConnection => None,
        Mode::Pool { workers } => Some(Pool::start(workers.max(1), &shared)?),
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
        shared.stopping.store(true, Ordering::SeqCst);
        // On Linux, shutting a listening socket wakes the thread blocked in `accept`.
        let _ = SockRef::from(&*listener).shutdown(Shutdown::Read);
        acceptor
            .join()
            .map_err(|_| io::Error::other("the accept thread panicked"))?;
        drop(listener);
        if let Some(pool) = &pool {
            pool.close();
        }
        let drained = drain(&shared);
        if let (Some(pool), true) = (pool, drained) {
            pool.join()?;
        }
        Ok(shared.stats.summary())
    }
}

/// Wakes every connection so it answers what it has, waits for them (bounded by the
/// shutdown timeout), then forces the stragglers closed. Returns whether all closed.
fn drain(shared: &Shared) -> bool {
    shared.registry.shutdown_all(Direction::Read);
    if shared
        .registry
        .wait_empty(Instant::now() + shared.config.shutdown_timeout)
    {
        return true;
    }
    tracing::warn!(
        open = shared.stats.open_connections(),
        "shutdown timeout passed: closing connections still busy"
    );
    shared.registry.shutdown_all(Direction::Both);
    // Threads sleeping through a `block` delay notice only when it ends.
    shared
        .registry
        .wait_empty(Instant::now() + Duration::from_secs(1))
}
