//! N loops on N threads sharing one port: what a loop-based server (mio's readiness loop,
//! io_uring's completion loop) does around its loop, written once.
//!
//! One loop is asyncio's model (one thread does everything). With more, each loop binds its
//! own listener on the same address with SO_REUSEPORT ([`bind_listeners`]), the kernel spreads
//! incoming connections across them by a hash of their addresses, and the loops share nothing
//! but the server's `Stats`. A connection stays on the loop that accepted it, so a loop that
//! blocks (the `block` and `spin` delay kinds) stalls only its own share. [`Loops`] runs them
//! and stops them: every loop is told first, so they drain in parallel, then each is joined.
//! [`LoopServer`] is the whole server around them: bind, build each loop with its
//! [`LoopSettings`], spawn, and stop behind the [`Server`] handle.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::sync::Arc;
use std::thread::{self, JoinHandle};

use crate::config::ServerConfig;
use crate::net::{bind_listener, bind_listener_reuse_port};
use crate::server::Server;
use crate::stats::{Stats, Summary};

/// A loop, ready to run on its own thread.
pub trait Loop: Send + 'static {
    /// Runs until stopped and drained.
    ///
    /// # Errors
    /// The loop's wait itself failed; connection errors never end a loop.
    fn run(self) -> io::Result<()>;
}

/// What stops a running loop from outside.
pub trait Stop {
    /// Asks the loop to stop accepting, finish what it received and return.
    ///
    /// # Errors
    /// The loop could not be woken.
    fn stop(&self) -> io::Result<()>;
}

/// One blocking listener per loop: a plain one for a single loop, SO_REUSEPORT ones on the
/// port the first one got otherwise.
///
/// # Errors
/// As [`bind_listener`].
pub fn bind_listeners(
    addr: SocketAddr,
    backlog: u32,
    n_loops: usize,
) -> io::Result<Vec<TcpListener>> {
    let first = if n_loops <= 1 {
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

/// Running loops: each one's thread and stop handle.
#[derive(Debug)]
pub struct Loops<S> {
    running: Vec<(S, JoinHandle<io::Result<()>>)>,
}

impl<S: Stop> Loops<S> {
    /// Starts each loop on its own thread, named `<name>-<index>`.
    ///
    /// # Errors
    /// A thread could not be created; the loops already started are stopped and joined first.
    pub fn spawn<L: Loop>(name: &str, ready: Vec<(L, S)>) -> io::Result<Loops<S>> {
        let mut loops = Loops {
            running: Vec::with_capacity(ready.len()),
        };
        for (index, (event_loop, stop)) in ready.into_iter().enumerate() {
            let spawned = thread::Builder::new()
                .name(format!("{name}-{index}"))
                .spawn(move || event_loop.run());
            match spawned {
                Ok(thread) => loops.running.push((stop, thread)),
                Err(e) => {
                    let _ = loops.stop_and_join();
                    return Err(e);
                }
            }
        }
        Ok(loops)
    }

    /// How many loops run.
    pub fn len(&self) -> usize {
        self.running.len()
    }

    /// Whether no loop runs.
    pub fn is_empty(&self) -> bool {
        self.running.is_empty()
    }

    /// Stops every loop first (so they drain in parallel), then waits for each.
    ///
    /// # Errors
    /// The first failure: a loop that could not be woken, failed, or panicked.
    pub fn stop_and_join(self) -> io::Result<()> {
        let mut first_error = None;
        for (stop, _) in &self.running {
            if let Err(e) = stop.stop() {
                first_error.get_or_insert(e);
            }
        }
        for (index, (_, thread)) in self.running.into_iter().enumerate() {
            let outcome = thread
                .join()
                .unwrap_or_else(|_| Err(io::Error::other(format!("loop {index} panicked"))));
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }
}

/// What one loop is told by the server.
#[derive(Debug, Clone)]
pub struct LoopSettings {
    /// The server's configuration: the protocol, `max_connections` (counted over every loop
    /// of the server), the shutdown timeout, `verbose`.
    pub config: ServerConfig,
    /// This loop's index, to number connections uniquely.
    pub index: usize,
    /// The number of loops sharing the port.
    pub n_loops: usize,
}

impl LoopSettings {
    /// The id of this loop's connection number `accepted` (from 0): loop `index` takes every
    /// `n_loops`-th id, so ids are unique over the server without any shared counter.
    pub fn connection_id(&self, accepted: u64) -> u64 {
        accepted * self.n_loops as u64 + self.index as u64
    }
}

/// A running loop-based server: its loops, their shared counters, the port they share.
#[derive(Debug)]
pub struct LoopServer<S> {
    local_addr: SocketAddr,
    stats: Arc<Stats>,
    loops: Loops<S>,
}

impl<S: Stop> LoopServer<S> {
    /// Binds `config.addr` for `n_loops` loops (at least one), builds each with `new_loop` on
    /// the caller's thread (so that a loop that cannot be set up fails the start with its
    /// reason) and starts them on threads named `<name>-<index>`. Returns once every loop has
    /// its listener, so a client may connect at once.
    ///
    /// # Errors
    /// Binding failed (address in use or not local), `new_loop` failed, or a thread could not
    /// be created (loops already started are stopped again).
    pub fn start<L: Loop>(
        name: &str,
        config: ServerConfig,
        n_loops: usize,
        mut new_loop: impl FnMut(TcpListener, LoopSettings, Arc<Stats>) -> io::Result<(L, S)>,
    ) -> io::Result<LoopServer<S>> {
        let n_loops = n_loops.max(1);
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
            ready.push(new_loop(listener, settings, Arc::clone(&stats))?);
        }
        let loops = Loops::spawn(name, ready)?;
        Ok(LoopServer {
            local_addr,
            stats,
            loops,
        })
    }

    /// How many loops serve the port.
    pub fn n_loops(&self) -> usize {
        self.loops.len()
    }
}

impl<S: Stop + Send> Server for LoopServer<S> {
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

#[cfg(test)]
mod tests {
    use std::sync::mpsc;

    use super::*;

    /// A loop that runs until its stop handle sends, and then returns `outcome`.
    struct Waiting(mpsc::Receiver<()>, bool);

    impl Loop for Waiting {
        fn run(self) -> io::Result<()> {
            let _ = self.0.recv();
            if self.1 {
                Ok(())
            } else {
                Err(io::Error::other("loop failed"))
            }
        }
    }

    impl Stop for mpsc::Sender<()> {
        fn stop(&self) -> io::Result<()> {
            self.send(()).map_err(io::Error::other)
        }
    }

    fn ready(outcomes: &[bool]) -> Vec<(Waiting, mpsc::Sender<()>)> {
        outcomes
            .iter()
            .map(|&ok| {
                let (stop, stopped) = mpsc::channel();
                (Waiting(stopped, ok), stop)
            })
            .collect()
    }

    #[test]
    fn loops_run_until_stopped_and_the_first_failure_is_reported() -> io::Result<()> {
        let loops = Loops::spawn("test", ready(&[true, true]))?;
        assert_eq!(loops.len(), 2);
        loops.stop_and_join()?;
        let failing = Loops::spawn("test", ready(&[true, false]))?;
        let err = failing.stop_and_join().expect_err("the second loop fails");
        assert_eq!(err.to_string(), "loop failed");
        Ok(())
    }

    #[test]
    fn loops_number_their_connections_apart_without_sharing_a_counter() {
        let mut ids = Vec::new();
        for index in 0..3 {
            let settings = LoopSettings {
                config: ServerConfig::default(),
                index,
                n_loops: 3,
            };
            ids.extend((0..4).map(|accepted| settings.connection_id(accepted)));
        }
        ids.sort_unstable();
        assert_eq!(ids, (0..12).collect::<Vec<u64>>());
    }

    #[test]
    fn several_listeners_share_the_port_the_first_one_got() -> io::Result<()> {
        let addr = SocketAddr::from(([127, 0, 0, 1], 0));
        let listeners = bind_listeners(addr, 16, 3)?;
        let port = listeners[0].local_addr()?.port();
        assert_ne!(port, 0);
        for listener in &listeners {
            assert_eq!(listener.local_addr()?.port(), port);
        }
        Ok(())
    }
}
