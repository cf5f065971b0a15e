//! [`start`]: N event loops on N threads sharing one port, behind server-common's
//! [`Server`] handle.
//!
//! One loop is asyncio's model exactly: one thread does everything. With `loops > 1`, each
//! loop binds its own listener on the same address with SO_REUSEPORT, and the kernel spreads
//! incoming connections across them by a hash of the connection's addresses; the loops share
//! nothing but the [`Stats`] counters. It is how one runs one asyncio process per core behind
//! a shared port, minus the processes. A connection stays on the loop that accepted it, so a
//! loop that blocks (the `block` and `spin` delay kinds) stalls only its own share. The threads
//! and the shared port are server-common's [`Loops`] and [`bind_listeners`], as server-uring's.

use std::io;
use std::net::SocketAddr;
use std::sync::Arc;

use mio::net::TcpListener;
use server_common::{Loops, Server, ServerConfig, Stats, Summary, bind_listeners};

use crate::event_loop::{EventLoop, LoopSettings, StopHandle};

/// A running mio server: its loops' threads and the way to stop them.
#[derive(Debug)]
pub struct MioServer {
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    loops: Loops<StopHandle>,
}

/// Binds `config.addr` and starts `loops` event loops (at least one) on their own threads.
/// Returns once every loop is listening, so a client may connect at once.
///
/// # Errors
/// Binding failed (address in use or not local), or a poll or a thread could not be
/// created; loops already started are stopped again before returning.
pub fn start(config: ServerConfig, loops: usize) -> io::Result<MioServer> {
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
        listener.set_nonblocking(true)?;
        let listener = TcpListener::from_std(listener);
        ready.push(EventLoop::new(listener, settings, Arc::clone(&stats))?);
    }
    let loops = Loops::spawn("mio-loop", ready)?;
    Ok(MioServer {
        local_addr,
        stats,
        loops,
    })
}

/// The binary's variant flags, flattened into its parser beside the common ones, and read
/// in-process by [`server_common::start_from_flags`].
#[derive(Debug, Clone, clap::Args)]
pub struct VariantArgs {
    /// Event loops, each on its own thread, sharing the port through SO_REUSEPORT. 1 is
    /// asyncio's model: one thread for everything.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub loops: u16,
}

impl server_common::Variant for VariantArgs {
    type Server = MioServer;

    fn start(&self, config: ServerConfig) -> io::Result<MioServer> {
        start(config, usize::from(self.loops))
    }
}

impl MioServer {
    /// How many event loops serve the port.
    pub fn n_loops(&self) -> usize {
        self.loops.len()
    }
}

impl Server for MioServer {
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
