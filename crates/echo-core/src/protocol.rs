//! The callback protocol trait: what a server calls, and what it must then do.
//!
//! Modelled on Python's `asyncio.Protocol` (`connection_made`, `data_received`,
//! `eof_received`, `connection_lost`), with one difference that makes it sans-IO: asyncio
//! hands the protocol a *transport* to write to and a loop to schedule timers on; here the
//! protocol instead *exposes* what it wants (bytes to write, whether to read, when to be woken,
//! whether to close) and the server does it. The protocol is handed `now` and never reads a
//! clock, so a test can drive it through hours of simulated time in microseconds.
//!
//! # The contract every server honours
//!
//! For each accepted connection the server creates one protocol value and then:
//!
//! 1. Calls [`Protocol::connection_made`] exactly once, before any other callback.
//! 2. Whenever it has read bytes, calls [`Protocol::data_received`] with them, in stream
//!    order, in chunks of any size (a chunk is never empty). It reads only while
//!    [`Protocol::wants_read`] is true; when it turns false the server stops reading from
//!    that socket (backpressure) until it turns true again.
//! 3. On end of stream from the client (a read of 0 bytes), calls
//!    [`Protocol::eof_received`] once and never reads again.
//! 4. Writes [`Protocol::output`] to the socket whenever it is non-empty, and reports every
//!    successful write with [`Protocol::output_written`] (partial writes included).
//! 5. Keeps exactly one timer per connection at [`Protocol::next_timeout`]. That value may
//!    change after *any* callback, so the server re-reads it after each one. When the
//!    deadline has passed, the server calls [`Protocol::timeout`]; an early or spurious call is
//!    harmless. The [`Timeout::kind`] says how to spend the wait: [`DelayKind::Wait`] is a
//!    timer (or a read with a timeout) while everything else goes on; [`DelayKind::Block`]
//!    blocks the calling thread until the deadline; [`DelayKind::Spin`] burns what is left
//!    until it as CPU time of the calling thread (CPU work, which a preempted thread takes
//!    longer to do).
//!    A request whose recipe has several phases (`spin:2ms+wait:100ms`) is handed out one
//!    phase at a time: the timeout that ends a phase begins the next, whose deadline and kind
//!    `next_timeout` names from then on; the reply follows the last phase.
//! 6. Once [`Protocol::is_closed`] is true, closes the socket at once, without writing more.
//!    A protocol that wants to say goodbye first (an `ERR` line, the last reply after a
//!    half-close) keeps `is_closed` false until its output has been written.
//! 7. On server shutdown, calls [`Protocol::shutdown`]: the protocol answers every request
//!    already received and then closes; the server bounds that with its own deadline, and
//!    hands the protocol an instant just before it, when what is still unanswered is told
//!    `ERR server shutting down` (the protocol's timer fires then). A request in the middle
//!    of its recipe runs its remaining phases and is answered, unless that instant comes
//!    first.
//! 8. Calls [`Protocol::connection_lost`] exactly once when the socket goes away for any
//!    reason (closed by either side, reset, error), and no callback after it.
//!
//! The invariant that keeps servers from hanging: **whenever `wants_read` is false and the
//! connection is not closed, either `output` is non-empty or `next_timeout` is `Some`.** There
//! is always something a server can wait for.

use std::time::Instant;

use crate::delay::DelayKind;

/// When the protocol wants to be woken, and how the server should spend the wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// Call [`Protocol::timeout`] at or after this instant.
    pub at: Instant,
    /// How to spend the time until then. Idle limits are always [`DelayKind::Wait`]; a
    /// request's phase uses its own kind, or the configured one when its spec names none.
    pub kind: DelayKind,
}

/// Counts a protocol keeps about its connection, for a server's summary.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ConnectionStats {
    /// Requests answered with their upper-cased reply.
    pub requests: u64,
    /// `ERR` replies sent (invalid UTF-8, line too long, idle timeout).
    pub errors: u64,
}

impl std::ops::AddAssign for ConnectionStats {
    fn add_assign(&mut self, other: Self) {
        self.requests += other.requests;
        self.errors += other.errors;
    }
}

/// One connection's protocol state machine, driven by a server. See the module docs for the
/// contract.
pub trait Protocol {
    /// The connection is established (asyncio: `connection_made`). Starts the idle clock.
    fn connection_made(&mut self, now: Instant);

    /// Bytes arrived (asyncio: `data_received`). Any split of the stream into chunks gives
    /// the same replies.
    fn data_received(&mut self, data: &[u8], now: Instant);

    /// The client half-closed its side (asyncio: `eof_received`). Requests already received
    /// are still answered.
    fn eof_received(&mut self, now: Instant);

    /// The deadline of [`Protocol::next_timeout`] has passed (asyncio: a `call_at` callback
    /// firing).
    fn timeout(&mut self, now: Instant);

    /// `n` bytes from the front of [`Protocol::output`] were written to the socket.
    fn output_written(&mut self, n: usize, now: Instant);

    /// The server is shutting down: answer what was received, then close. A request still
    /// unanswered at `give_up_at` (the server's shutdown timeout, less a moment to write the
    /// goodbye) is not answered: the client is told `ERR server shutting down` instead, so a
    /// client whose request the server took is never left in silence.
    fn shutdown(&mut self, now: Instant, give_up_at: Instant);

    /// The socket is gone (asyncio: `connection_lost`). No callback follows.
    fn connection_lost(&mut self);

    /// Bytes the server should write next; empty when there is nothing to write.
    fn output(&self) -> &[u8];

    /// Whether the server should read from the socket now.
    fn wants_read(&self) -> bool;

    /// When the protocol next needs [`Protocol::timeout`], if ever.
    fn next_timeout(&self) -> Option<Timeout>;

    /// Whether the server must close the socket now.
    fn is_closed(&self) -> bool;

    /// What this connection has done so far.
    fn stats(&self) -> ConnectionStats;
}
