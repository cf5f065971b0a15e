//! The one error type of echo-core: everything that can be wrong with a configuration.
//!
//! The protocol itself never fails: bad input from a client is answered on the wire with an
//! `ERR` line (see `docs/PROTOCOL.md`), not returned as a Rust error. What can fail is turning
//! user-supplied text (a delay spec, a delay kind, a framing name) into a [`crate::Config`].

/// What can be wrong with a configuration value. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A duration such as `100ms` could not be read.
    #[error("invalid duration {value:?}: {reason}")]
    InvalidDuration {
        /// The text that was given.
        value: String,
        /// Why it was refused.
        reason: String,
    },
    /// A delay spec such as `uniform:50ms..150ms` or a recipe such as `spin:2ms+wait:100ms`
    /// could not be read; in a recipe of several phases the reason names the faulty one.
    #[error(
        "invalid delay spec {spec:?}: {reason} (expected e.g. `100ms`, `uniform:50ms..150ms`, `exp:100ms` or `spin:2ms+wait:100ms`)"
    )]
    InvalidDelaySpec {
        /// The spec that was given.
        spec: String,
        /// Why it was refused.
        reason: String,
    },
    /// A delay kind other than `wait`, `block` or `spin`.
    #[error("invalid delay kind {0:?} (expected `wait`, `block` or `spin`)")]
    InvalidDelayKind(String),
    /// A framing other than `line` or `raw`.
    #[error("invalid framing {0:?} (expected `line` or `raw`)")]
    InvalidFraming(String),
    /// A limit that must be positive was zero.
    #[error("{name} must be greater than zero, got {value}")]
    ZeroLimit {
        /// The configuration field, e.g. `max_line_bytes`.
        name: &'static str,
        /// The value given.
        value: u64,
    },
}

/// `Result` with echo-core's [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
