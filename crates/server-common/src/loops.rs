//! N loops on N threads sharing one port: what a loop-based server (mio's readiness loop,
//! io_uring's completion loop) does around its loop, written once.
//!
//! One loop is asyncio's model (one thread does everything). With more, each loop binds its
//! own listener on the same address with SO_REUSEPORT ([`bind_listeners`]), the kernel spreads
//! incoming connections across them by a hash of their addresses, and the loops share nothing
//! but the server's `Stats`. A connection stays on the loop that accepted it, so a loop that
//! blocks (the `block` and `spin` delay kinds) stalls only its own share. [`Loops`] runs them
//! and stops them: every loop is told first, so they drain in parallel, then each is joined.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::thread::{self, JoinHandle};

use crate::net::{bind_listener, bind_listener_reuse_port};

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
