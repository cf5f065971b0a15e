//! server-mio: the event loop that asyncio hides, written out on `mio`.
//!
//! No async runtime, no futures: one thread sits in `epoll_wait` (through [`mio::Poll`]),
//! and everything a connection does is a plain method call made when the kernel says a socket
//! is ready or when a deadline passes. The protocol is echo-core's [`echo_core::Protocol`],
//! whose callbacks are asyncio's, so each step below names what asyncio does at that point.
//!
//! # One request's life
//!
//! A client connects and sends `hello\n`; the server runs with a 100 ms `wait` delay.
//!
//! 1. **Accept.** The listener's token comes out of `poll`, readable. The loop accepts until
//!    `WouldBlock` ([`event_loop`]), sets `TCP_NODELAY`, registers the socket for
//!    `READABLE` under its slab key, and builds a [`connection::Connection`], which calls
//!    `connection_made`. *asyncio:* `_accept_connection` then `_SelectorSocketTransport`,
//!    whose constructor schedules `protocol.connection_made(transport)` and `add_reader`.
//! 2. **Read.** The socket's token comes out of `poll`, readable. The connection reads until
//!    `WouldBlock` (while the protocol wants bytes) and hands each chunk to
//!    `data_received`. *asyncio:* `_read_ready` calling `protocol.data_received(data)`.
//! 3. **Wait.** The protocol framed the line and started its simulated IO: it now reports a
//!    deadline 100 ms away. The connection arms one timer in the loop's
//!    [`server_common::Timers`] queue, keyed by `(deadline, id)`; the next `poll` sleeps no
//!    longer than the distance to the first key. *asyncio:* `await asyncio.sleep(0.1)` in a task, i.e. `loop.call_at`
//!    pushing a `TimerHandle` onto `_scheduled`, and `select(timeout)` derived from its head.
//! 4. **Timer fires.** After `poll` returns, the loop pops every due timer and calls the
//!    protocol's `timeout`; the reply `HELLO\n` appears in its output. *asyncio:* the due
//!    handle moves to `_ready` and the task resumes after its `await`.
//! 5. **Reply leaves.** The connection writes the output at once; a partial write keeps the
//!    rest and registers `WRITABLE` interest, and the next writable event continues.
//!    *asyncio:* `transport.write`, which tries `send` at once and otherwise `add_writer`s
//!    `_write_ready`.
//! 6. **Close.** When the client half-closes (`eof_received`) or the protocol decides to end
//!    (an oversized line, the idle limit, shutdown), the loop deregisters the socket, cancels
//!    its timer and calls `connection_lost`. *asyncio:* `_call_connection_lost`.
//!
//! **Shutdown.** The binary's main thread waits for SIGINT or SIGTERM (server-common's
//! `run_binary`) and calls [`server_common::Server::shutdown`], which wakes every loop through
//! a [`mio::Waker`] registered in its `Poll`: the signal reaches the loop as one more event.
//! The loop accepts what the kernel already queued, closes its listener, reads what its
//! sockets hold, calls each protocol's `shutdown` and keeps running until every connection
//! has answered and closed or a shutdown-deadline timer fires. *asyncio:*
//! `loop.add_signal_handler` (a self-pipe the selector watches), then `server.close()`.
//!
//! With the `block` or `spin` delay kinds, step 3 does not arm a timer: the loop thread
//! sleeps or spins until the deadline right there, as a blocking call inside a coroutine
//! would, and every other connection on that loop waits. That is what those kinds are for.
//! With `--offload N` they go to a pool of N worker threads instead (server-common's
//! `offload`), the fix asyncio users apply with `run_in_executor`: the loop submits the delay,
//! serves everyone else, and hears of its end through the same [`mio::Waker`] as a stop.
//!
//! # Map
//! - [`connection`]: one socket, its [`server_common::Driver`], readiness cache and timer;
//!   testable without sockets. The driver decides each step; the connection does its IO.
//! - server-common's `timers` and `accept`: the timer queue and the accept policy, shared
//!   with any other loop-based server.
//! - [`event_loop`]: the `Poll` loop, accept back-off, shutdown drain.
//! - [`server`]: [`start`], N loops on N threads sharing a port, and the handle that stops them.
//!
//! **Invariant: nothing here depends on an async runtime.** `cargo tree -p server-mio -e normal`
//! shows no tokio, async-std, smol or futures; `tests/no_async_runtime.rs` checks it.

pub mod connection;
pub mod event_loop;
pub mod server;

pub use server::{MioServer, VariantArgs, start, start_offloading};
