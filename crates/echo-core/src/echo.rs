//! The uppercase echo protocol: the one [`Protocol`] every server in this project runs.
//!
//! A connection is a small pipeline: bytes are cut into requests ([`Framing`]), requests wait
//! in a queue, one at a time a request is *started* (the first phase of its recipe begins),
//! each phase's end begins the next, and when the last has passed the reply is appended to the
//! output. Requests on one connection are served strictly in order, like statements on one
//! database session: the next request starts only once the previous reply is out of the way.
//!
//! Every buffer is bounded, which is what lets one server hold 10000 hostile clients:
//! - the unterminated line is at most `max_line_bytes` (then `ERR line too long` and close);
//! - complete lines waiting to start are at most `max_line_bytes` plus one read before the
//!   protocol stops asking for reads;
//! - replies waiting to be written are at most `max_output_bytes` plus one reply before the
//!   protocol stops reading *and* stops starting requests.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use crate::config::{Config, Framing};
use crate::delay::{DelayKind, format_duration};
use crate::protocol::{ConnectionStats, Protocol, Timeout};
use crate::recipe::RecipeSampler;

/// A drained buffer at most this large is kept for the connection's next requests (no
/// allocation per request); a larger one, grown by a burst, goes back at once.
const KEPT_BUFFER_BYTES: usize = 4096;

/// An `ERR` line as the wire carries it in `framing`: `ERR {text}`, ended by `\n` in line
/// framing and by nothing in raw framing (where the close ends the message).
fn err_line(framing: Framing, text: &str) -> Vec<u8> {
    let mut line = format!("ERR {text}").into_bytes();
    if framing == Framing::Line {
        line.push(b'\n');
    }
    line
}

/// Why a server turns away a connection it accepted but never served (one waiting in a
/// worker pool's queue): the client is told in an `ERR` line instead of being left in silence.
/// The protocol never ran for such a connection, so the text lives here, beside the protocol's
/// own `ERR` lines, and `docs/PROTOCOL.md` lists it with them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// It waited in the queue longer than the server's queue timeout (load shedding).
    Busy,
    /// The server is shutting down and its shutdown timeout passed before a worker was free.
    ShuttingDown,
}

impl Refusal {
    /// The error text, without `ERR `.
    pub fn text(self) -> &'static str {
        match self {
            Refusal::Busy => "server busy",
            Refusal::ShuttingDown => "server shutting down",
        }
    }

    /// The bytes the refused client reads before the close, in the server's framing.
    pub fn message(self, framing: Framing) -> Vec<u8> {
        err_line(framing, self.text())
    }
}

/// A request cut out of the stream, waiting for its turn.
#[derive(Debug)]
enum Request {
    /// The request's length, without the `\n`; its bytes are the next ones in
    /// [`EchoProtocol`]'s `queued`.
    Message(usize),
    /// A line that overflowed `max_line_bytes`; answering it closes the connection.
    TooLong,
}

/// The request whose recipe is under way, in one of its phases.
#[derive(Debug)]
struct InFlight {
    reply: Vec<u8>,
    /// The phase under way (its index in the recipe), its kind and its end.
    phase: usize,
    kind: DelayKind,
    ready_at: Instant,
}

/// One connection's uppercase echo state machine. Build one per accepted connection with
/// [`EchoProtocol::new`] and drive it through the [`Protocol`] trait.
///
/// ```
/// use std::time::{Duration, Instant};
/// use echo_core::{Config, DelayModel, EchoProtocol, Protocol};
///
/// let config = Config { delay: DelayModel::Fixed(Duration::from_millis(100)).into(), ..Config::default() };
/// let mut conn = EchoProtocol::new(&config, 0);
/// let t0 = Instant::now(); // the caller owns the clock; echo-core never reads it
/// conn.connection_made(t0);
/// conn.data_received("stra".as_bytes(), t0);
/// conn.data_received("ße\n".as_bytes(), t0);
/// assert!(conn.output().is_empty(), "nothing before the delay");
/// let wake = conn.next_timeout().expect("a request is waiting on its delay");
/// assert_eq!(wake.at, t0 + Duration::from_millis(100));
/// conn.timeout(wake.at);
/// assert_eq!(conn.output(), b"STRASSE\n");
/// ```
#[derive(Debug)]
pub struct EchoProtocol {
    framing: Framing,
    max_line_bytes: usize,
    max_output_bytes: usize,
    idle_timeout: Option<Duration>,
    sampler: RecipeSampler,

    /// Bytes of the current, not yet terminated line.
    partial: Vec<u8>,
    /// Requests received and not yet started.
    queue: VecDeque<Request>,
    /// The bytes of the queued messages, one after another in one buffer. One buffer, not one
    /// allocation per line: a client that never reads has up to 64 KiB of short lines queued,
    /// and as ~5400 small allocations they raised the heap's high-water mark for good (the
    /// thread pool's soak grew 6.3 % in steps of 120–180 KiB, each a wave that met more such
    /// clients at once than any before), where one buffer that large is mapped on its own
    /// and goes back to the system when freed (server-common sets the mmap threshold).
    queued: VecDeque<u8>,
    in_flight: Option<InFlight>,
    /// Output; `out[out_pos..]` is what is still to be written.
    out: Vec<u8>,
    out_pos: usize,

    /// Last time a request arrived, a reply was finished or output was written; `None` until
    /// `connection_made`, so no idle limit runs before the connection exists.
    last_progress: Option<Instant>,
    /// The client half-closed: read no more, answer what we have, then close.
    eof: bool,
    /// The server is shutting down: answer what we have, then close.
    draining: bool,
    /// When a shutting-down server stops waiting: a request still unanswered then is
    /// answered `ERR server shutting down` instead (see [`Protocol::shutdown`]).
    give_up_at: Option<Instant>,
    /// Input is being thrown away (raw framing after its one message, or after a line that
    /// was too long).
    discarding: bool,
    /// No new work: close as soon as the output is written.
    closing: bool,
    /// Close now, whatever is left.
    closed: bool,
    stats: ConnectionStats,
}

impl EchoProtocol {
    /// A protocol for the connection numbered `connection_id` (the delay stream of a seeded
    /// run is chosen by it, see [`RecipeSampler`]).
    pub fn new(config: &Config, connection_id: u64) -> Self {
        EchoProtocol {
            framing: config.framing,
            max_line_bytes: config.max_line_bytes,
            max_output_bytes: config.max_output_bytes,
            idle_timeout: config.idle_timeout,
            sampler: RecipeSampler::new(
                &config.delay,
                config.delay_kind,
                config.seed,
                connection_id,
            ),
            partial: Vec::new(),
            queue: VecDeque::new(),
            queued: VecDeque::new(),
            in_flight: None,
            out: Vec::new(),
            out_pos: 0,
            last_progress: None,
            eof: false,
            draining: false,
            give_up_at: None,
            discarding: false,
            closing: false,
            closed: false,
            stats: ConnectionStats::default(),
        }
    }

    fn pending_output(&self) -> usize {
        self.out.len() - self.out_pos
    }

    /// Appends a reply or an `ERR` line; line framing ends it with `\n`, raw adds nothing.
    fn push_output(&mut self, bytes: &[u8]) {
        self.out.extend_from_slice(bytes);
        if self.framing == Framing::Line {
            self.out.push(b'\n');
        }
    }

    fn push_error(&mut self, text: &str) {
        self.stats.errors += 1;
        self.out.extend_from_slice(&err_line(self.framing, text));
    }

    /// Queues a message made of `parts`, one after another.
    fn enqueue_message(&mut self, parts: [&[u8]; 2]) {
        let len = parts.iter().map(|part| part.len()).sum();
        for part in parts {
            self.queued.extend(part);
        }
        self.queue.push_back(Request::Message(len));
    }

    /// What the queue holds, counting one per request so that empty lines count too.
    fn queued_bytes(&self) -> usize {
        self.queued.len() + self.queue.len()
    }

    /// Empties the queue and frees its buffer.
    fn clear_queue(&mut self) {
        self.queue.clear();
        self.queued = VecDeque::new();
    }

    fn enqueue_too_long(&mut self) {
        self.partial = Vec::new();
        self.discarding = true;
        self.queue.push_back(Request::TooLong);
    }

    /// Cuts complete lines out of `data`, keeping the unterminated rest in `partial`.
    fn frame_lines(&mut self, mut data: &[u8]) {
        while !data.is_empty() {
            let Some(end) = data.iter().position(|&b| b == b'\n') else {
                if self.partial.len() + data.len() > self.max_line_bytes {
                    self.enqueue_too_long();
                } else {
                    self.partial.extend_from_slice(data);
                }
                return;
            };
            if self.partial.len() + end > self.max_line_bytes {
                self.enqueue_too_long();
                return;
            }
            let mut partial = std::mem::take(&mut self.partial);
            self.enqueue_message([&partial, &data[..end]]);
            if partial.capacity() <= KEPT_BUFFER_BYTES {
                partial.clear();
                self.partial = partial;
            }
            data = &data[end + 1..];
        }
    }

    /// Starts queued requests while nothing is in flight and the output has room; then decides
    /// whether the connection is finished.
    fn advance(&mut self, now: Instant) {
        while self.in_flight.is_none() && !self.closing && !self.closed {
            if self.pending_output() >= self.max_output_bytes {
                return;
            }
            let Some(request) = self.queue.pop_front() else {
                break;
            };
            match request {
                Request::TooLong => {
                    let limit = self.max_line_bytes;
                    self.push_error(&format!("line too long (limit {limit} bytes)"));
                    self.closing = true;
                }
                Request::Message(len) => {
                    let bytes: Vec<u8> = self.queued.drain(..len).collect();
                    if self.queued.is_empty() && self.queued.capacity() > KEPT_BUFFER_BYTES {
                        self.queued = VecDeque::new();
                    }
                    self.start(bytes, now);
                }
            }
        }
        let finished = self.in_flight.is_none() && self.queue.is_empty();
        let raw_done = self.framing == Framing::Raw && self.discarding;
        if finished && (self.eof || self.draining || raw_done) {
            self.closing = true;
        }
    }

    /// Starts one request: invalid UTF-8 is answered at once (it never reaches the
    /// "database"); a valid one begins its recipe's first phase.
    fn start(&mut self, bytes: Vec<u8>, now: Instant) {
        let Ok(text) = String::from_utf8(bytes) else {
            self.push_error("invalid utf-8");
            return;
        };
        let reply = text.to_uppercase().into_bytes();
        self.begin_phase(reply, 0, now);
    }

    /// Begins phase `index` of the request whose reply is `reply`, drawn now: the phase
    /// starts when the previous one was seen to end, as work that follows other work does.
    /// A phase drawn as zero is skipped, and a request past its last phase is answered, at
    /// once when every phase was zero, so that zero-delay runs measure the servers, not
    /// timers.
    fn begin_phase(&mut self, reply: Vec<u8>, mut index: usize, now: Instant) {
        while let Some((kind, length)) = self.sampler.phase(index) {
            if !length.is_zero() {
                self.in_flight = Some(InFlight {
                    reply,
                    phase: index,
                    kind,
                    ready_at: now + length,
                });
                return;
            }
            index += 1;
        }
        self.finish(&reply, now);
    }

    fn finish(&mut self, reply: &[u8], now: Instant) {
        self.push_output(reply);
        self.stats.requests += 1;
        self.last_progress = Some(now);
    }

    fn idle_deadline(&self) -> Option<Instant> {
        Some(self.last_progress? + self.idle_timeout?)
    }

    /// Whether a request the connection received is still without its reply.
    fn has_unanswered(&self) -> bool {
        self.in_flight.is_some() || self.queue.iter().any(|r| matches!(r, Request::Message(_)))
    }

    /// The give-up instant a stop set ([`Protocol::shutdown`]), while there is something it
    /// would cut short: a server whose own timer stands in for the protocol's (an offloaded
    /// spend) keeps this one deadline for it.
    pub fn give_up_deadline(&self) -> Option<Instant> {
        self.give_up_at
            .filter(|_| !self.closing && self.has_unanswered())
    }

    /// The shutdown's give-up instant has come with requests unanswered: they are dropped and
    /// the client is told why in one `ERR` line (never silence), then the connection closes.
    fn give_up(&mut self) {
        self.in_flight = None;
        self.clear_queue();
        self.partial = Vec::new();
        self.discarding = true;
        self.push_error(Refusal::ShuttingDown.text());
        self.closing = true;
    }
}

impl Protocol for EchoProtocol {
    fn connection_made(&mut self, now: Instant) {
        self.last_progress = Some(now);
    }

    fn data_received(&mut self, data: &[u8], now: Instant) {
        if self.discarding || self.closing || self.closed || self.eof {
            return;
        }
        match self.framing {
            Framing::Line => {
                let before = self.queue.len();
                self.frame_lines(data);
                if self.queue.len() > before {
                    self.last_progress = Some(now);
                }
            }
            Framing::Raw => {
                // The article's server: the first chunk is the whole message.
                self.discarding = true;
                self.last_progress = Some(now);
                if data.len() > self.max_line_bytes {
                    self.queue.push_back(Request::TooLong);
                } else {
                    self.enqueue_message([data, &[]]);
                }
            }
        }
        self.advance(now);
    }

    fn eof_received(&mut self, now: Instant) {
        if self.eof {
            return;
        }
        self.eof = true;
        if !self.partial.is_empty() && !self.discarding {
            let last = std::mem::take(&mut self.partial);
            self.enqueue_message([&last, &[]]);
        }
        self.advance(now);
    }

    fn timeout(&mut self, now: Instant) {
        if self.give_up_deadline().is_some_and(|at| now >= at) {
            self.give_up();
            return;
        }
        if let Some(in_flight) = &self.in_flight {
            if now >= in_flight.ready_at {
                if let Some(done) = self.in_flight.take() {
                    self.begin_phase(done.reply, done.phase + 1, now);
                }
                self.advance(now);
            }
            return;
        }
        let Some(deadline) = self.idle_deadline() else {
            return;
        };
        if now < deadline || self.closed {
            return;
        }
        if self.pending_output() == 0 && !self.closing {
            // Tell a waiting client why it is being dropped, then give the goodbye one more
            // idle period to be written.
            let limit = self.idle_timeout.map(format_duration).unwrap_or_default();
            self.push_error(&format!("idle timeout (limit {limit})"));
            self.closing = true;
            self.last_progress = Some(now);
        } else {
            // Output that has not moved for a whole idle period: the client does not read.
            self.closed = true;
        }
    }

    fn output_written(&mut self, n: usize, now: Instant) {
        debug_assert!(n <= self.pending_output(), "wrote more than was pending");
        self.out_pos = (self.out_pos + n).min(self.out.len());
        if self.out_pos == self.out.len() {
            self.out.clear();
            self.out_pos = 0;
        } else if self.out_pos >= 4096 && self.out_pos * 2 >= self.out.len() {
            self.out.drain(..self.out_pos);
            self.out_pos = 0;
        }
        if n > 0 {
            self.last_progress = Some(now);
        }
        self.advance(now);
    }

    fn shutdown(&mut self, now: Instant, give_up_at: Instant) {
        self.draining = true;
        self.give_up_at = Some(give_up_at);
        self.advance(now);
    }

    fn connection_lost(&mut self) {
        self.closed = true;
        self.partial = Vec::new();
        self.clear_queue();
        self.in_flight = None;
        self.out = Vec::new();
        self.out_pos = 0;
    }

    fn output(&self) -> &[u8] {
        &self.out[self.out_pos..]
    }

    fn wants_read(&self) -> bool {
        !(self.eof || self.discarding || self.closing || self.closed)
            && self.queued_bytes() < self.max_line_bytes
            && self.pending_output() < self.max_output_bytes
    }

    fn next_timeout(&self) -> Option<Timeout> {
        if self.closed {
            return None;
        }
        if let Some(in_flight) = &self.in_flight {
            let give_up = self.give_up_deadline().unwrap_or(in_flight.ready_at);
            return Some(Timeout {
                at: in_flight.ready_at.min(give_up),
                kind: in_flight.kind,
            });
        }
        if let Some(at) = self.give_up_deadline() {
            let idle = self.idle_deadline().unwrap_or(at);
            return Some(Timeout {
                at: at.min(idle),
                kind: DelayKind::Wait,
            });
        }
        self.idle_deadline().map(|at| Timeout {
            at,
            kind: DelayKind::Wait,
        })
    }

    fn is_closed(&self) -> bool {
        self.closed || (self.closing && self.pending_output() == 0)
    }

    fn stats(&self) -> ConnectionStats {
        self.stats
    }
}
