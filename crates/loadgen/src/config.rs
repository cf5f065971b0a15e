//! What a run does: [`Config`], its defaults and its validation.

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::Duration;

use echo_core::Framing;

use crate::error::{Error, Result};
use crate::report::Parameters;

/// The article's message.
pub const DEFAULT_MESSAGE: &str = "the quick brown fox jumps over the lazy dog";

/// Loopback source addresses used by default when the target is IPv4 loopback: 16 × ~28,000
/// ephemeral ports keeps back-to-back 10000-connection runs clear of TIME_WAIT exhaustion.
pub const DEFAULT_SOURCE_ADDRESSES: u32 = 16;

/// How late past its due time an open-loop request may be sent before it counts as late.
pub const LATE_START_TOLERANCE: Duration = Duration::from_millis(1);

/// Default `--max-lag`: a client-lag p99 above this marks the run client-bound. One
/// millisecond is 1 % of the project's 100 ms delay, and well above what the event loop's
/// timer needs (tens of microseconds).
pub const DEFAULT_MAX_SCHEDULE_LAG: Duration = Duration::from_millis(1);

/// Everything a run needs. Build one with [`Config::new`] and adjust the public fields.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    /// The server to load.
    pub target: SocketAddr,
    /// Connections to make in count mode (also the default concurrency).
    pub n_connections: u64,
    /// Most connections open at once; `None` means all `n_connections`, as in the article.
    pub concurrency: Option<u64>,
    /// Sequential requests per connection.
    pub requests_per_conn: u64,
    /// Open-loop rate in requests per second; `None` runs closed loop.
    pub rate: Option<f64>,
    /// Run for this long instead of for `n_connections`.
    pub duration: Option<Duration>,
    /// Unmeasured phase before the measured one.
    pub warmup: Duration,
    /// Limit on each connect and on each request/reply exchange.
    pub timeout: Duration,
    /// Open loop: how late a request may start; one that no connection could send within
    /// this of its due time is not sent. `None`: the timeout.
    pub give_up_after: Option<Duration>,
    /// Line (the project's protocol) or raw (the article's).
    pub framing: Framing,
    /// The request text, without a line terminator.
    pub message: String,
    /// Client threads, each with its own event loop (open loop) or single-threaded tokio
    /// runtime (closed loop).
    pub n_threads: usize,
    /// Loopback source addresses to spread sockets over; `None` picks
    /// [`DEFAULT_SOURCE_ADDRESSES`] for an IPv4 loopback target and 0 otherwise.
    pub source_addresses: Option<u32>,
    /// Draw a progress bar on stderr.
    pub progress: bool,
    /// Open loop: a client-lag p99 above this marks the report client-bound.
    pub max_schedule_lag: Duration,
    /// Open loop: where to write every answered request's instants
    /// ([`crate::request_log`]); `None` keeps none.
    pub request_log: Option<PathBuf>,
}

impl Config {
    /// The article's run against `target`: 1000 connections at once, one line each.
    pub fn new(target: SocketAddr) -> Config {
        Config {
            target,
            n_connections: 1000,
            concurrency: None,
            requests_per_conn: 1,
            rate: None,
            duration: None,
            warmup: Duration::ZERO,
            timeout: Duration::from_secs(10),
            give_up_after: None,
            framing: Framing::Line,
            message: DEFAULT_MESSAGE.to_owned(),
            n_threads: 1,
            source_addresses: None,
            progress: false,
            max_schedule_lag: DEFAULT_MAX_SCHEDULE_LAG,
            request_log: None,
        }
    }

    /// Connections open at once: the worker count.
    pub fn effective_concurrency(&self) -> u64 {
        let wanted = self.concurrency.unwrap_or(self.n_connections);
        if self.duration.is_some() {
            wanted
        } else {
            wanted.min(self.n_connections)
        }
    }

    /// Client threads actually used: no more than there are workers.
    pub fn effective_threads(&self) -> u64 {
        (self.n_threads as u64).clamp(1, self.effective_concurrency().max(1))
    }

    /// Source addresses actually used: 0 unless the target is IPv4 loopback.
    pub fn effective_source_addresses(&self) -> u32 {
        match self.target.ip() {
            IpAddr::V4(ip) if ip.is_loopback() => self
                .source_addresses
                .unwrap_or(DEFAULT_SOURCE_ADDRESSES)
                .min(254),
            _ => 0,
        }
    }

    /// The bytes sent for each request.
    pub fn request_bytes(&self) -> Vec<u8> {
        let mut bytes = self.message.as_bytes().to_vec();
        if self.framing == Framing::Line {
            bytes.push(b'\n');
        }
        bytes
    }

    /// The exact reply the server must send: the message upper-cased (full Unicode), plus
    /// `\n` with line framing.
    pub fn expected_reply(&self) -> Vec<u8> {
        let mut bytes = self.message.to_uppercase().into_bytes();
        if self.framing == Framing::Line {
            bytes.push(b'\n');
        }
        bytes
    }

    /// Checks that the run makes sense.
    ///
    /// # Errors
    /// [`Error::NotPositive`] naming the parameter, [`Error::NewlineInMessage`],
    /// [`Error::RawManyRequests`].
    pub fn validate(&self) -> Result<()> {
        let counts = [
            ("connections", self.n_connections),
            ("concurrency", self.concurrency.unwrap_or(1)),
            ("requests per connection", self.requests_per_conn),
            ("threads", self.n_threads as u64),
        ];
        for (name, value) in counts {
            if value == 0 {
                return Err(not_positive(name, value));
            }
        }
        if let Some(rate) = self.rate.filter(|rate| !(rate.is_finite() && *rate > 0.0)) {
            return Err(not_positive("rate", rate));
        }
        let durations = [
            ("timeout", Some(self.timeout)),
            ("duration", self.duration),
            ("give-up-after", self.give_up_after),
        ];
        for (name, value) in durations {
            if value == Some(Duration::ZERO) {
                return Err(not_positive(name, "0s"));
            }
        }
        if self.message.is_empty() {
            return Err(not_positive("message length", 0));
        }
        if self.framing == Framing::Line && self.message.contains('\n') {
            return Err(Error::NewlineInMessage {
                message: self.message.clone(),
            });
        }
        if let Some(path) = self.request_log.as_ref().filter(|_| self.rate.is_none()) {
            return Err(Error::RequestLogNeedsRate { path: path.clone() });
        }
        if self.framing == Framing::Raw && self.requests_per_conn != 1 {
            return Err(Error::RawManyRequests {
                requests_per_conn: self.requests_per_conn,
            });
        }
        Ok(())
    }

    /// How late an open-loop request may start before it is given up.
    pub fn effective_give_up_after(&self) -> Duration {
        self.give_up_after.unwrap_or(self.timeout)
    }

    /// The parameters as recorded in the report.
    pub fn parameters(&self) -> Parameters {
        Parameters {
            n_connections: self.n_connections,
            concurrency: self.effective_concurrency(),
            requests_per_conn: self.requests_per_conn,
            rate_requests_per_second: self.rate,
            duration_seconds: self.duration.map(|d| d.as_secs_f64()),
            warmup_seconds: self.warmup.as_secs_f64(),
            timeout_seconds: self.timeout.as_secs_f64(),
            framing: self.framing,
            message: self.message.clone(),
            n_threads: self.effective_threads(),
            n_source_addresses: u64::from(self.effective_source_addresses()),
            late_start_tolerance_us: LATE_START_TOLERANCE.as_secs_f64() * 1e6,
            max_schedule_lag_us: self.max_schedule_lag.as_secs_f64() * 1e6,
        }
    }
}

fn not_positive(name: &'static str, value: impl ToString) -> Error {
    Error::NotPositive {
        name,
        value: value.to_string(),
    }
}
