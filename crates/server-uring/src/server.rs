//! [`start`]: N completion loops on N threads, each with its own ring, sharing one port,
//! behind server-common's [`Server`] handle.
//!
//! The threads and the shared port are server-common's [`Loops`] (the same as server-mio's
//! `--loops`). Each loop owns its ring and its buffer ring; rings are not shared between
//! threads, so no submission ever needs a lock.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use server_common::{Loops, Server, ServerConfig, Stats, Summary, bind_listeners};

use crate::event_loop::{EventLoop, LoopSettings, StopHandle};

/// A running io_uring server: its loops' threads and the way to stop them.
#[derive(Debug)]
pub struct UringServer {
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    loops: Loops<StopHandle>,
}

/// Binds `config.addr` and starts `loops` completion loops (at least one) on their own
/// threads. Returns once every loop has its ring and its listener, so a client may connect at
/// once (the kernel queues connections until the loop's first accept).
///
/// # Errors
/// `Unsupported` naming the cause where io_uring cannot be used; binding failed (address in
/// use or not local); a thread could not be created (loops already started are stopped again).
pub fn start(config: ServerConfig, loops: usize) -> io::Result<UringServer> {
    let n_loops = loops.max(1);
    let listeners = bind_listeners(config.addr, config.backlog, n_loops)?;
    let local_addr = listeners[0].local_addr()?;
    let stats = Stats::new();
    let mut ready = Vec::with_capacity(n_loops);
    for (index, listener) in listeners.into_iter().enumerate() {
        let settings = LoopSettings {
            config: config.clone(),
            index,
            n_loops,
        };
        ready.push(EventLoop::new(listener, settings, Arc::clone(&stats))?);
    }
    let loops = Loops::spawn("uring-loop", ready)?;
    Ok(UringServer {
        local_addr,
        stats,
        loops,
    })
}

/// The binary's variant flags, flattened into its parser beside the common ones, and read
/// in-process by [`server_common::start_from_flags`].
#[derive(Debug, Clone, clap::Args)]
pub struct VariantArgs {
    /// Completion loops, each on its own thread with its own ring, sharing the port through
    /// SO_REUSEPORT. 1 is asyncio's model: one thread for everything.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub loops: u16,
}

impl server_common::Variant for VariantArgs {
    type Server = UringServer;

    fn start(&self, config: ServerConfig) -> io::Result<UringServer> {
        start(config, usize::from(self.loops))
    }
}

impl UringServer {
    /// How many completion loops serve the port.
    pub fn n_loops(&self) -> usize {
        self.loops.len()
    }
}

impl Server for UringServer {
    fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    fn stats(&self) -> Summary {
        self.stats.summary()
    }

    fn shutdown(self: Box<Self>) -> io::Result<Summary> {
        self.loops.stop_and_join()?;
        Ok(self.stats.summary())
    }
}
