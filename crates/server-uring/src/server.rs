//! [`start`]: N completion loops on N threads, each with its own ring, sharing one port,
//! behind server-common's [`Server`](server_common::Server) handle.
//!
//! The threads, the shared port and the handle are server-common's `LoopServer` (the same as server-mio's
//! `--loops`). Each loop owns its ring and its buffer ring; rings are not shared between
//! threads, so no submission ever needs a lock.
//!
//! `--offload N` gives the server one pool of N worker threads (server-common's
//! `OffloadPool`) shared by its loops: `block` and `spin` delays run there and the loops keep
//! serving.

use std::io;

use server_common::{LoopArgs, LoopServer, OffloadPool, ServerConfig};

use crate::event_loop::{EventLoop, StopHandle};

/// A running io_uring server: its loops' threads and the way to stop them.
pub type UringServer = LoopServer<StopHandle>;

/// Binds `config.addr` and starts `loops` completion loops (at least one) on their own
/// threads. Returns once every loop has its ring and its listener, so a client may connect at
/// once (the kernel queues connections until the loop's first accept).
///
/// # Errors
/// `Unsupported` naming the cause where io_uring cannot be used; binding failed (address in
/// use or not local); a thread could not be created (loops already started are stopped again).
pub fn start(config: ServerConfig, loops: usize) -> io::Result<UringServer> {
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
) -> io::Result<UringServer> {
    let pool = offload.map(OffloadPool::start).transpose()?;
    LoopServer::start("uring-loop", config, loops, |listener, settings, stats| {
        EventLoop::new(listener, settings, stats, pool.clone())
    })
}

/// The binary's variant flags (`--loops`, `--offload`: server-common's [`LoopArgs`], which
/// server-mio takes too), flattened into its parser beside the common ones, and read in-process
/// by [`server_common::start_from_flags`].
#[derive(Debug, Clone, clap::Args)]
pub struct VariantArgs {
    #[command(flatten)]
    /// `--loops` and `--offload`.
    pub flags: LoopArgs,
}

impl server_common::Variant for VariantArgs {
    type Server = UringServer;

    fn start(&self, config: ServerConfig) -> io::Result<UringServer> {
        start_offloading(config, self.flags.loops(), self.flags.offload.threads())
    }
}
