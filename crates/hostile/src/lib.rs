//! Hostile clients of the protocol (`docs/PROTOCOL.md`), for soaks and any tool that wants to
//! see a server keep its word under abuse.
//!
//! Each [`Kind`] is one way a real client misbehaves: it never reads, sends a byte at a time,
//! resets mid-request, sends a line over the limit or invalid UTF-8, sits idle, or connects
//! and leaves. A client runs to its end on the calling thread ([`run`]) and says what it saw
//! in an [`Outcome`], judged against what the protocol promises for that abuse (the `ERR`
//! line of an oversized or invalid line, the reply a dribbler earns, silence for an idle
//! client); a [`wave`] runs many at once and tallies them.
//!
//! **Bounded by construction**: every connect, read and write has a timeout
//! ([`Settings::patience`]), every hold is [`Settings::hold`], a dribble is a fixed line, and
//! a wave refuses more than [`wave::MAX_CLIENTS`] clients. Addresses are the caller's;
//! [`run`] refuses anything but loopback.

pub mod client;
pub mod wave;

use std::net::SocketAddr;
use std::time::Duration;

pub use client::run;
pub use wave::{Tally, WaveReport, run_wave};

/// One way of misbehaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Kind {
    /// Sends many requests, never reads a reply, holds the connection, then leaves.
    NeverReader,
    /// Sends one line a byte at a time, [`Settings::dribble_interval`] apart; earns its reply.
    Dribbler,
    /// Sends a request and resets the connection (SO_LINGER 0) before the reply.
    ResetMidRequest,
    /// Sends a line one byte over [`Settings::max_line_bytes`]: told `ERR line too long`.
    OversizedLine,
    /// Sends a line that is not UTF-8: told `ERR invalid utf-8`, then served again.
    InvalidUtf8,
    /// Connects and sends nothing for [`Settings::hold`]: the server must stay silent.
    Idle,
    /// Connects and closes at once.
    ConnectAndClose,
}

impl Kind {
    /// Every kind, in a fixed order.
    pub const ALL: [Kind; 7] = [
        Kind::NeverReader,
        Kind::Dribbler,
        Kind::ResetMidRequest,
        Kind::OversizedLine,
        Kind::InvalidUtf8,
        Kind::Idle,
        Kind::ConnectAndClose,
    ];

    /// Its name in reports (kebab-case).
    pub fn name(self) -> &'static str {
        match self {
            Kind::NeverReader => "never-reader",
            Kind::Dribbler => "dribbler",
            Kind::ResetMidRequest => "reset-mid-request",
            Kind::OversizedLine => "oversized-line",
            Kind::InvalidUtf8 => "invalid-utf8",
            Kind::Idle => "idle",
            Kind::ConnectAndClose => "connect-and-close",
        }
    }
}

impl std::fmt::Display for Kind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// How the clients misbehave, and what they know of the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Settings {
    /// The server's `--max-line-bytes`: an oversized line is one byte more.
    pub max_line_bytes: usize,
    /// Between two bytes of a dribbler.
    pub dribble_interval: Duration,
    /// How long never-readers and idle clients keep their connection; keep it under the
    /// server's idle timeout, or an idle client is (rightly) told `ERR idle timeout`.
    pub hold: Duration,
    /// Bytes of requests a never-reader tries to send (it stops when the socket stops taking
    /// them, the server's backpressure).
    pub never_reader_bytes: usize,
    /// The bound of every connect, read and write.
    pub patience: Duration,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            max_line_bytes: 65536,
            dribble_interval: Duration::from_millis(50),
            hold: Duration::from_secs(1),
            never_reader_bytes: 1024 * 1024,
            patience: Duration::from_secs(10),
        }
    }
}

/// What one hostile client saw, and whether that is what the protocol promises.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    /// What it did.
    pub kind: Kind,
    /// What it saw, in a few words (the server's `ERR` line, its reply, a count of bytes).
    pub saw: String,
    /// How the server broke its word, if it did (or why the client could not test it).
    pub problem: Option<String>,
}

impl Outcome {
    /// Whether the server did what `docs/PROTOCOL.md` says for this abuse.
    pub fn conforms(&self) -> bool {
        self.problem.is_none()
    }
}

/// Refuses anything but a loopback address: hostile load never leaves the machine.
///
/// # Errors
/// Naming the address when it is not loopback.
pub fn check_loopback(addr: SocketAddr) -> Result<(), String> {
    if addr.ip().is_loopback() {
        Ok(())
    } else {
        Err(format!("hostile clients target loopback only, not {addr}"))
    }
}
