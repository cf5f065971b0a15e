//! [`start`]: N event loops on N threads sharing one port, behind server-common's
//! `Server` handle.
//!
//! One loop is asyncio's model exactly: one thread does everything. With `loops > 1`, each
//! loop binds its own listener on the same address with SO_REUSEPORT, and the kernel spreads
//! incoming connections across them by a hash of the connection's addresses; the loops share
//! nothing but the `Stats` counters. It is how one runs one asyncio process per core behind
//! a shared port, minus the processes. A connection stays on the loop that accepted it, so a
//! loop that blocks (the `block` and `spin` delay kinds) stalls only its own share. The threads,
//! the shared port and the handle are server-common's `LoopServer`, as server-uring's.
//!
//! `--offload N` gives the server one pool of N worker threads (server-common's
//! `OffloadPool`) shared by its loops: `block` and `spin` delays run there and the loops keep
//! serving.

use std::io;

use mio::net::TcpListener;
use server_common::{LoopArgs, LoopServer, OffloadPool, ServerConfig};

use crate::event_loop::{EventLoop, StopHandle};

/// A running mio server: its loops' threads and the way to stop them.
pub type MioServer = LoopServer<StopHandle>;

/// Binds `config.addr` and starts `loops` event loops (at least one) on their own threads.
/// Returns once every loop is listening, so a client may connect at once.
///
/// # Errors
/// Binding failed (address in use or not local), or a poll or a thread could not be
/// created; loops already started are stopped again before returning.
pub fn start(config: ServerConfig, loops: usize) -> io::Result<MioServer> {
    start_offloading(config, loops, None)
}

/// As [`start`], with `block` and `spin` delays run on a pool of `offload` threads shared by
/// the loops (`None`: on the loops themselves).
///
/// # Errors
/// As [`start`]; `InvalidInput` when `offload` is out of the pool's range.
pub fn start_offloading(
    config: ServerConfig,
    loops: usize,
    offload: Option<usize>,
) -> io::Result<MioServer> {
    let pool = offload.map(OffloadPool::start).transpose()?;
    LoopServer::start("mio-loop", config, loops, |listener, settings, stats| {
        listener.set_nonblocking(true)?;
        let pool = pool.clone();
        EventLoop::new(TcpListener::from_std(listener), settings, stats, pool)
    })
}

/// The binary's variant flags (`--loops`, `--offload`: server-common's [`LoopArgs`], which
/// server-uring takes too), flattened into its parser beside the common ones, and read in-process
/// by [`server_common::start_from_flags`].
#[derive(Debug, Clone, clap::Args)]
pub struct VariantArgs {
    #[command(flatten)]
    /// `--loops` and `--offload`.
    pub flags: LoopArgs,
}

impl server_common::Variant for VariantArgs {
    type Server = MioServer;

    fn start(&self, config: ServerConfig) -> io::Result<MioServer> {
        start_offloading(config, self.flags.loops(), self.flags.offload.threads())
    }
}
