//! The [`Server`] handle, and the contract every server in this project meets.
//!
//! # The contract
//!
//! Each server crate exposes `start(config: ServerConfig, ...variant options)`, which binds,
//! starts serving in the background and returns a handle implementing [`Server`], and
//! implements [`crate::Variant`] for its binary's own flags (e.g. `--pool 64`), so that one
//! list of flags names a variant in-process ([`crate::start_from_flags`]) and as a process
//! ([`crate::run_binary`]). A started server:
//!
//! 1. Listens on `config.addr` with the listen backlog `config.backlog` (see
//!    [`crate::bind_listener`]), and sets TCP_NODELAY on every accepted socket.
//! 2. Drives one `echo_core::EchoProtocol` per connection exactly as
//!    `echo_core::protocol` prescribes, through a [`crate::Driver`]: it does what
//!    [`crate::Driver::next_step`] says, in the one order of operations written there (a due
//!    timeout, then pending output, then a `block`/`spin` delay, then waiting), and ends every
//!    connection with [`crate::Driver::finish`].
//! 3. Accepts by the one policy of [`crate::accept`], through an [`crate::AcceptBackoff`]:
//!    transient errors (a connection aborted or reset before it was accepted, a signal) are
//!    retried at once; out of descriptors (EMFILE/ENFILE), out of memory (ENOBUFS/ENOMEM) or
//!    any other error pause accepting (10 ms doubling to 100 ms) — never spinning on a failing
//!    accept, never exiting for it, serving the connections it has meanwhile. At
//!    `config.max_connections` open it stops accepting (new connections wait in the backlog)
//!    and accepts again once a connection closes. Every failed accept counts one
//!    `accept_errors`; every pause, and every stretch at the limit, one `accept_backoffs`.
//! 4. Counts what it does in a [`crate::Stats`].
//! 5. On [`Server::shutdown`]: stops accepting, calls `Protocol::shutdown` on every connection
//!    (through [`crate::Driver::shutdown`]) so that each request already received is
//!    answered, waits for that at most `config.shutdown_timeout`, closes whatever is left,
//!    stops its threads and returns the final [`Summary`].
//! 6. With `config.verbose` (`-v`), logs each connection's start (naming the client's address)
//!    and end at `info`, through the driver; without it, nothing per connection.
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
