//! The [`Server`] handle, and the contract every server in this project meets.
//!
//! # The contract
//!
//! Each server crate exposes `start(config: ServerConfig, ...variant options)`, which binds,
//! starts serving in the background and returns a handle implementing [`Server`]. A started
//! server:
//!
//! 1. Listens on `config.addr` with the listen backlog `config.backlog` (see
//!    [`crate::bind_listener`]), and sets TCP_NODELAY on every accepted socket.
//! 2. Drives one `echo_core::EchoProtocol` per connection exactly as
//!    `echo_core::protocol` prescribes (callbacks in order, one timer, backpressure through
//!    `wants_read`, the delay kinds spent as told).
//! 3. When it has `config.max_connections` open or `accept` fails for lack of descriptors
//!    (EMFILE/ENFILE, see [`crate::is_fd_exhaustion`]), stops accepting and backs off
//!    ([`crate::AcceptBackoff`]): it never spins on a failing accept, never exits for it, keeps
//!    serving the connections it has, and accepts again once descriptors free up.
//! 4. Counts what it does in a [`crate::Stats`].
//! 5. On [`Server::shutdown`]: stops accepting, calls `Protocol::shutdown` on every connection
//!    so that each request already received is answered, waits for that at most
//!    `config.shutdown_timeout`, closes whatever is left, stops its threads and returns the
//!    final [`Summary`].
//!
//! The conformance crate checks all of this on the wire, for every server.

use std::io;
use std::net::SocketAddr;

use crate::stats::Summary;

/// A running server. Stop it with [`Server::shutdown`]: a handle dropped without it may leave
/// the server running in the background until the process exits.
pub trait Server: Send {
    /// The address actually bound (the real port when the config asked for port 0).
    fn local_addr(&self) -> SocketAddr;

    /// What the server has done so far.
    fn stats(&self) -> Summary;

    /// Stops accepting, lets connections answer what they have received (bounded by the
    /// config's `shutdown_timeout`), closes them and returns the final counts.
    ///
    /// # Errors
    /// When a server thread panicked or the runtime could not be stopped.
    fn shutdown(self: Box<Self>) -> io::Result<Summary>;
}

impl Server for Box<dyn Server> {
    fn local_addr(&self) -> SocketAddr {
        (**self).local_addr()
    }

    fn stats(&self) -> Summary {
        (**self).stats()
    }

    fn shutdown(self: Box<Self>) -> io::Result<Summary> {
        <dyn Server as Server>::shutdown(*self)
    }
}

/// Boxes the result of a server crate's `start`, whatever its concrete handle type, so that
/// callers (the conformance suite, loadgen) can hold any server as `Box<dyn Server>`.
///
/// # Errors
/// The error `start` returned, unchanged.
pub fn into_boxed<S: Server + 'static>(started: io::Result<S>) -> io::Result<Box<dyn Server>> {
    started.map(|server| Box::new(server) as Box<dyn Server>)
}
