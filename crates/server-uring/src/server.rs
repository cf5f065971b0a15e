//! [`start`]: N completion loops on N threads, each with its own ring, sharing one port,
//! behind server-common's [`Server`] handle.
//!
//! The same shape as server-mio's `server.rs`: one loop is asyncio's model (one thread does
//! everything); with `loops > 1` each loop binds its own listener on the same address with
//! SO_REUSEPORT, the kernel spreads incoming connections across them, and the loops share
//! nothing but the [`Stats`] counters. Each loop owns its ring and its buffer ring; rings are
//! not shared between threads, so no submission ever needs a lock.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use server_common::{
    Server, ServerConfig, Stats, Summary, bind_listener, bind_listener_reuse_port,
};

use crate::event_loop::{EventLoop, LoopSettings, StopHandle};

/// A running io_uring server: its loops' threads and the way to stop them.
#[derive(Debug)]
pub struct UringServer {
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    loops: Vec<Running>,
}

/// One loop's thread and stop handle.
#[derive(Debug)]
struct Running {
    stop: StopHandle,
    thread: JoinHandle<io::Result<()>>,
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
    let listeners = bind_all(config.addr, config.backlog, n_loops)?;
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
    let loops = spawn_all(ready)?;
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

/// One blocking listener per loop (the ring does the waiting): a plain one for a single loop,
/// SO_REUSEPORT ones on the port the first one got otherwise.
fn bind_all(addr: SocketAddr, backlog: u32, n_loops: usize) -> io::Result<Vec<TcpListener>> {
    let first = if n_loops == 1 {
        bind_listener(addr, backlog)?
    } else {
        bind_listener_reuse_port(addr, backlog)?
    };
    let shared_addr = first.local_addr()?;
    let mut listeners = vec![first];
    for _ in 1..n_loops {
        listeners.push(bind_listener_reuse_port(shared_addr, backlog)?);
    }
    Ok(listeners)
}

fn spawn_all(ready: Vec<(EventLoop, StopHandle)>) -> io::Result<Vec<Running>> {
    let mut running: Vec<Running> = Vec::with_capacity(ready.len());
    for (index, (event_loop, stop)) in ready.into_iter().enumerate() {
        let spawned = thread::Builder::new()
            .name(format!("uring-loop-{index}"))
            .spawn(move || event_loop.run());
        match spawned {
            Ok(thread) => running.push(Running { stop, thread }),
            Err(e) => {
                let _ = stop_and_join(running);
                return Err(e);
            }
        }
    }
    Ok(running)
}

/// Stops every loop first (so they drain in parallel), then waits for each.
fn stop_and_join(loops: Vec<Running>) -> io::Result<()> {
    let mut first_error = None;
    for running in &loops {
        if let Err(e) = running.stop.stop() {
            first_error.get_or_insert(e);
        }
    }
    for (index, running) in loops.into_iter().enumerate() {
        let outcome = running.thread.join().unwrap_or_else(|_| {
            Err(io::Error::other(format!(
                "completion loop {index} panicked"
            )))
        });
        if let Err(e) = outcome {
            first_error.get_or_insert(e);
        }
    }
    first_error.map_or(Ok(()), Err)
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
        stop_and_join(self.loops)?;
        Ok(self.stats.summary())
    }
}
