//! server-uring: a completion loop on io_uring, the fourth concurrency model.
//!
//! server-mio asks the kernel "which sockets are ready?" and then reads and writes each one
//! itself: at least one `epoll_wait`, one `read` and one `write` system call per request. Here
//! the loop hands the kernel the reads and writes themselves, as entries in a submission
//! queue, and later takes their results from a completion queue; one `io_uring_enter` per turn
//! of the loop submits everything queued and waits for what completed. No async runtime, no
//! futures: plain method calls on completions, on echo-core's [`echo_core::Protocol`] whose
//! callbacks are asyncio's, through server-common's shared `Driver`, accept policy and timers.
//!
//! # One request's life
//!
//! A client connects and sends `hello\n`; the server runs with a 100 ms `wait` delay.
//!
//! 1. **Accept.** A multishot accept is armed on the listener; its completion carries the new
//!    socket. The loop sets `TCP_NODELAY`, builds a [`connection::Connection`] (which calls
//!    `connection_made`) and queues a receive. *asyncio:* `_accept_connection`, the transport.
//! 2. **Read.** The receive names the loop's provided-buffer ring ([`buffers`]); when bytes
//!    arrive the kernel picks a buffer, fills it and completes. The loop copies the bytes into
//!    `data_received` and gives the buffer back. *asyncio:* `_read_ready`.
//! 3. **Wait.** The protocol started its simulated IO: one timer in the loop's
//!    [`server_common::Timers`], and the next enter waits no longer than the first key.
//!    *asyncio:* `loop.call_at` and `select(timeout)`.
//! 4. **Timer fires.** `HELLO\n` appears in the protocol's output.
//! 5. **Reply leaves.** The output is copied into the connection's send buffer and a send is
//!    queued; the driver counts the socket as busy until the send completes.
//!    *asyncio:* `transport.write`.
//! 6. **Close.** On end of stream, an error or the protocol's own close, the loop cancels
//!    what the connection has in flight (`AsyncCancel`), waits for every completion, and only
//!    then closes the socket and frees the slot. *asyncio:* `_call_connection_lost`.
//!
//! **Shutdown.** [`server_common::Server::shutdown`] sets a flag and writes an eventfd on which
//! the ring has a poll: the signal reaches the loop as one more completion. The loop cancels
//! its accept, takes what the kernel already completed and queued, reads what every socket
//! already holds, calls each protocol's `shutdown` and runs until every connection has
//! answered and closed, or the shutdown deadline passes.
//!
//! With the `block` or `spin` delay kinds the loop thread sleeps or spins right there, and
//! every other connection of the loop waits, as in server-mio. With `--offload N` they run on
//! server-common's pool of N threads instead, and a worker's completion writes the same
//! eventfd as a stop: one more completion of the ring.
//!
//! # Invariants (memory the kernel may touch)
//!
//! - **A buffer handed to the kernel stays alive and unmoved until its completion arrives.**
//!   Receives use the buffer ring, which the loop owns and drops only after the ring itself
//!   (and after unregistering it); a send uses its connection's send buffer, which the
//!   connection does not touch while the send is in flight.
//! - **A connection's slot is freed only when none of its operations is in flight.** The
//!   connection counts its receive, its send and its cancellations; closing cancels the first
//!   two and waits for all three kinds of completion. So a completion's `user_data` (slab key
//!   and operation) never reaches a successor in the same slot. An offloaded delay is not a
//!   ring operation and holds no connection memory; its completion carries the connection's
//!   id beside its key, and one for a connection no longer in the slot is dropped.
//! - **The loop's own operations reference no memory** (an accept without an address, a poll,
//!   cancellations), and the loop returns only once they have completed too.
//! - **One `io_uring_enter` per turn** submits everything queued; the only other enters happen
//!   when a turn queues more than the submission queue holds.
//!
//! # Where io_uring is unavailable
//!
//! [`ring::Ring::new`] sets up the ring when the server starts, and a failure names the cause
//! (`kernel.io_uring_disabled`, a seccomp filter, a kernel too old): [`start`] returns it as an
//! `Unsupported` error, and the binary checks first ([`ring::probe`]) and exits with status 3
//! and `skipped: io_uring unavailable: <cause>` instead of serving nothing.
//!
//! # Map
//! - [`ring`]: ring setup and the reasons it can fail.
//! - [`buffers`]: the provided-buffer ring, and why it rather than a buffer per connection.
//! - [`connection`]: one socket, its driver, its operations in flight, its send buffer; tested
//!   without a ring.
//! - [`event_loop`]: the ring's loop, accept (multishot, single-shot fallback), back-off,
//!   timers, shutdown drain.
//! - [`server`]: [`start`], N loops on N threads sharing a port, and the handle that stops them.
//!
//! **Invariant: nothing here depends on an async runtime.** `tests/no_async_runtime.rs` checks
//! `cargo tree -p server-uring -e normal`.

pub mod buffers;
pub mod connection;
pub mod event_loop;
pub mod ring;
pub mod server;

pub use server::{UringServer, VariantArgs, start, start_offloading};
