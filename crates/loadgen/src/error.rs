//! Errors that stop a run before or outside the measurement.
//!
//! Failures of individual requests are never errors: they are counted by kind in the
//! [`crate::Report`]. An [`Error`] means the run could not be made at all.

use std::io;
use std::path::PathBuf;

use crate::report::ReportError;

/// Why a run could not be made.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A count or duration that must be positive was zero.
    #[error("{name} must be positive, got {value}")]
    NotPositive {
        /// The parameter.
        name: &'static str,
        /// Its value, as given.
        value: String,
    },
    /// A line-framed message cannot contain the line terminator.
    #[error("message {message:?} contains a newline, which line framing cannot carry")]
    NewlineInMessage {
        /// The offending message.
        message: String,
    },
    /// Raw framing has one request per connection: the server closes after its reply.
    #[error("raw framing allows one request per connection, not {requests_per_conn}")]
    RawManyRequests {
        /// The requested count.
        requests_per_conn: u64,
    },
    /// The requested concurrency needs more file descriptors than the process may open.
    #[error(
        "concurrency {requested} needs about {needed} open files but the limit is {limit} \
         (raised to the hard limit already): at most {fit} connections fit"
    )]
    TooManyConnections {
        /// Connections that would be open at once.
        requested: u64,
        /// Descriptors that would need.
        needed: u64,
        /// The soft open-file limit after raising it.
        limit: u64,
        /// How many connections do fit.
        fit: u64,
    },
    /// The open-file limit could not be read or raised.
    #[error("cannot read or raise the open-file limit: {0}")]
    FileLimit(#[source] io::Error),
    /// The client's runtime or threads could not be started.
    #[error("cannot start the client runtime: {0}")]
    Runtime(#[source] io::Error),
    /// The report could not be built.
    #[error(transparent)]
    Report(#[from] ReportError),
    /// `--request-log` was asked of a closed-loop run, whose requests have no schedule.
    #[error("--request-log {}: only an open-loop run (--rate) logs its requests", path.display())]
    RequestLogNeedsRate {
        /// The log asked for.
        path: PathBuf,
    },
    /// The request log could not be written.
    #[error("cannot write the request log {}: {source}", path.display())]
    RequestLog {
        /// The log.
        path: PathBuf,
        /// Why.
        #[source]
        source: io::Error,
    },
}

/// Result of the library's fallible functions.
pub type Result<T, E = Error> = std::result::Result<T, E>;
