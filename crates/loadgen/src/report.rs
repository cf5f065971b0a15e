//! The result of a load run: a typed, versioned, serializable [`Report`].
//!
//! JSON written from this struct is the source of truth for every table and plot of the
//! project (`cargo xtask compare` reads it back through this crate), so the schema is public
//! and stable: fields are only ever added, and any incompatible change bumps
//! [`SCHEMA_VERSION`]. Every field carries its unit in its name (`_seconds`, `_us`, `_ns`).
//!
//! Percentiles are convenience copies: the full distributions travel inside the report as
//! HdrHistogram V2 serializations (hex), which is what makes [`Report::merge`] exact. Merging
//! two reports gives the same counts, histograms and percentiles as one run that had recorded
//! both sets of samples.
//!
//! Open loop, every request has two clocks: its latency from its intended start (its due time
//! in the schedule, [`Report::latency`]) and from its actual send
//! ([`Report::latency_from_send`]). Their difference is the client's own schedule lag
//! ([`Report::schedule_lag`]). Part of that lag can be the server's: a request due while
//! every connection waited for a reply waits for one to become idle
//! ([`Report::requests_waited_for_connection`]). The rest is the client's own lag
//! ([`Report::client_lag`]); a run whose client-lag p99 is above `--max-lag` is
//! [`Report::client_bound`]: its latencies carry the client's limit, not only the server's.
//! On the receiving side, both latencies end when the reply arrived, as the kernel stamped
//! it ([`crate::arrival`]), not when loadgen read it; the wait in between, the client's own,
//! is the read lag ([`Report::read_lag`], counted in [`Report::replies_timed_by_kernel`]).
//!
//! Schema history: version 2 added `latency_from_send`, `schedule_lag`, `client_bound`,
//! `parameters.max_schedule_lag_us` and their histograms; version 3 added `client_lag`,
//! `requests_waited_for_connection` and the client-lag histogram, and judges `client_bound`
//! on the client lag; later version-3 reports added `read_lag`, `replies_timed_by_kernel`
//! and the read-lag histogram (empty and 0 in earlier ones, whose open-loop latencies end at
//! the read). [`Report::from_json`] still reads versions 1 and 2 (without the new fields:
//! empty distributions; a version-2 report stays judged on its schedule lag).

use std::fmt::Write as _;
use std::time::{Duration, Instant, SystemTime};

use echo_core::Framing;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer as _, V2Serializer};
use serde::{Deserialize, Serialize};

use crate::config::LATE_START_TOLERANCE;

/// Version of the JSON schema written by this crate. Readers refuse any other version.
pub const SCHEMA_VERSION: u32 = 3;

/// Older schema versions [`Report::from_json`] reads and upgrades.
pub const OLDER_SCHEMA_VERSIONS: [u32; 2] = [1, 2];

/// The name of the [`Histograms`] encoding: HdrHistogram's V2 format (uncompressed), as
/// lower-case hex digits.
pub const HISTOGRAM_ENCODING: &str = "hdrhistogram-v2-hex";

/// Highest value a latency or connect-time histogram can hold, in nanoseconds (one hour).
/// Longer samples are clamped to it; `--timeout` keeps real samples far below.
pub const HISTOGRAM_MAX_NS: u64 = 3_600 * 1_000_000_000;

/// Significant decimal digits kept by the histograms: values are exact to 0.1 %.
pub const HISTOGRAM_SIGNIFICANT_DIGITS: u8 = 3;

/// What can go wrong reading, writing or merging reports.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The JSON was written by an incompatible version of loadgen.
    #[error("unsupported report schema_version {found} (this loadgen reads {expected})")]
    UnsupportedSchema {
        /// The version found in the report.
        found: u64,
        /// The version this crate reads and writes.
        expected: u32,
    },
    /// The JSON is not a report.
    #[error("invalid report json: {0}")]
    Json(#[from] serde_json::Error),
    /// Reports of different targets cannot be merged into one measurement.
    #[error("cannot merge reports of different targets {left} and {right}")]
    TargetMismatch {
        /// Target of the report merged into.
        left: String,
        /// Target of the other report.
        right: String,
    },
    /// A serialized histogram could not be decoded (or encoded).
    #[error("invalid {name} histogram: {reason}")]
    Histogram {
        /// Which histogram (`latency` or `connect_time`).
        name: &'static str,
        /// What the decoder said.
        reason: String,
    },
    /// `started_at` is not an RFC 3339 timestamp.
    #[error("invalid started_at timestamp {value:?}: {reason}")]
    Timestamp {
        /// The offending text.
        value: String,
        /// What the parser said.
        reason: String,
    },
}

/// The outcome of one loadgen run (or of several, merged). Serialized as the `--json` output.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// Version of this schema ([`SCHEMA_VERSION`]); readers refuse versions they do not know.
    pub schema_version: u32,
    /// Name of the program that wrote the report: always `loadgen`.
    pub tool: String,
    /// Version of the loadgen crate that wrote the report.
    pub tool_version: String,
    /// The server address the load went to, as resolved (`127.0.0.1:9090`).
    pub target: String,
    /// Every parameter of the run, so that the report explains itself.
    pub parameters: Parameters,
    /// The machine the client ran on.
    pub environment: Environment,
    /// When the measured phase started (after any warmup), RFC 3339 in UTC with nanoseconds.
    /// For a merged report: the earliest start.
    pub started_at: String,
    /// Wall time of the measured phase, from its start until the last request finished.
    /// For a merged report: from the earliest start to the latest end.
    pub wall_time_seconds: f64,
    /// How many runs this report covers: 1 for a single run, more after [`Report::merge`].
    pub runs_merged: u32,
    /// Requests that got exactly the expected reply in time.
    pub requests_ok: u64,
    /// Requests that failed; equals the sum of [`Report::failures`]. A failure ends its
    /// connection, so this also counts failed connections.
    pub requests_failed: u64,
    /// Requests never sent because their connection had failed earlier (with `M > 1`
    /// requests per connection), or, open loop, because no connection could send them within
    /// the timeout of their due time. In count mode, `ok + failed + not_sent = connections ×
    /// M`.
    pub requests_not_sent: u64,
    /// Open-loop mode only (`--rate`): requests sent later than `late_start_tolerance_us`
    /// after their due time (a schedule lag above the tolerance), because no connection was
    /// idle or the client was busy. Their latency is still measured from the due time.
    /// Always 0 in closed-loop mode.
    pub requests_started_late: u64,
    /// Failed requests counted by kind.
    pub failures: Failures,
    /// Connections that were established (connect succeeded).
    pub connections_established: u64,
    /// `requests_ok / wall_time_seconds`.
    pub throughput_requests_per_second: f64,
    /// Time from the start until the first connection of every worker was established, that
    /// is until the full concurrency was reached (all N connections at once by default).
    /// Counts only connections that succeeded; `None` when none did.
    pub all_connected_seconds: Option<f64>,
    /// Distribution of TCP connect times as the client saw them: from creating the socket
    /// until the client noticed it established. When thousands of connections open at once
    /// this includes the client's own turn-around and the server's accept backlog (a dropped
    /// SYN costs a 1 s retransmit), which is what the article's client experienced too.
    pub connect_time: Percentiles,
    /// Distribution of request latencies, successful requests only. Closed loop: from
    /// writing the request to reading the whole reply. Open loop (`--rate`): from the
    /// request's scheduled start when it fell due while its connection was busy (no
    /// coordinated omission), else from when it actually started; either way including the
    /// connect when the request opened a new connection.
    pub latency: Percentiles,
    /// Distribution of request latencies from the moment the request was actually written,
    /// successful requests only, connect excluded: the server's part of [`Report::latency`].
    /// Closed loop, the same as `latency` except for requests that opened a connection.
    #[serde(default)]
    pub latency_from_send: Percentiles,
    /// Open loop only: the schedule lag, actual send minus due time, of every successful
    /// request (`count` 0 in closed loop); `latency` minus `latency_from_send`, request by
    /// request. It includes the wait of a request due while no connection was idle, which
    /// is the server's slowness; [`Report::client_lag`] leaves that out.
    #[serde(default)]
    pub schedule_lag: Percentiles,
    /// Open loop only: the client's own lag, actual send minus the later of the due time and
    /// the moment a connection became idle for the request (the previous reply on it had
    /// arrived), of every successful request (`count` 0 in closed loop).
    #[serde(default)]
    pub client_lag: Percentiles,
    /// Open loop only: how long each reply waited in its socket before loadgen read it, its
    /// read minus its arrival as the kernel stamped it ([`crate::arrival`]), of the
    /// successful requests whose reply was so stamped (`count`). `latency` and
    /// `latency_from_send` of those requests end at the arrival, so this delay, the
    /// client's own, is in neither. Empty in closed loop, and in reports before it existed.
    #[serde(default)]
    pub read_lag: Percentiles,
    /// Open loop only: successful requests whose latency ends at the kernel's receive
    /// timestamp of their reply; the others (the kernel gave no timestamp) end at the read.
    #[serde(default)]
    pub replies_timed_by_kernel: u64,
    /// Open loop only: successful requests that were due while every connection waited for
    /// a reply, and so waited for one to become idle (the server's slowness, not the
    /// client's). Always 0 in closed loop.
    #[serde(default)]
    pub requests_waited_for_connection: u64,
    /// Whether `client_lag.p99_us` exceeds `parameters.max_schedule_lag_us`: the client could
    /// not keep its schedule, so the latencies include its own lag and a capacity figure
    /// from this run is the client's limit. Always `false` in closed loop. (A version-2
    /// report, without a client lag, was judged on `schedule_lag`, and still is.)
    #[serde(default)]
    pub client_bound: bool,
    /// The full distributions, serialized so that reports can be merged exactly.
    pub histograms: Histograms,
}

/// The parameters a run was given, with units in their names.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Parameters {
    /// Connections to open in count mode (`--connections`, alias `--iterations`).
    pub n_connections: u64,
    /// Most connections open at once (`--concurrency`; defaults to `n_connections`).
    pub concurrency: u64,
    /// Sequential requests sent on each connection before closing it.
    pub requests_per_conn: u64,
    /// Open-loop rate in requests started per second (`--rate`); `None` for closed loop.
    pub rate_requests_per_second: Option<f64>,
    /// Length of the measured phase (`--duration`); `None` when the run is bounded by count.
    pub duration_seconds: Option<f64>,
    /// Length of the unmeasured warmup phase before it (`--warmup`); 0 for none.
    pub warmup_seconds: f64,
    /// Limit on each connect and on each reply (`--timeout`).
    pub timeout_seconds: f64,
    /// How requests are framed on the wire (`line` or `raw`).
    pub framing: Framing,
    /// The request text (without its `\n`).
    pub message: String,
    /// Client threads, each running its own single-threaded tokio runtime.
    pub n_threads: u64,
    /// Loopback source addresses (127.0.0.1, .2, ...) client sockets are spread over; 0 when
    /// the kernel picks the source address.
    pub n_source_addresses: u64,
    /// How late past its schedule a request may start before it counts as a late start.
    pub late_start_tolerance_us: f64,
    /// Client-lag p99 above which the run is marked [`Report::client_bound`] (`--max-lag`).
    #[serde(default = "default_max_schedule_lag_us")]
    pub max_schedule_lag_us: f64,
}

fn default_max_schedule_lag_us() -> f64 {
    crate::config::DEFAULT_MAX_SCHEDULE_LAG.as_secs_f64() * 1e6
}

/// The machine the client ran on, so that numbers are never read without their context.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Environment {
    /// Operating system (`linux`).
    pub os: String,
    /// Kernel release (`/proc/sys/kernel/osrelease`), when known.
    pub kernel_release: Option<String>,
    /// CPUs available to the client process.
    pub n_cpus: u64,
    /// The soft open-file limit in force during the run (after raising it to the hard one).
    pub open_files_limit: u64,
}

impl Environment {
    /// Describes the current machine; `open_files_limit` is filled in by the caller.
    pub fn current(open_files_limit: u64) -> Environment {
        let kernel_release = std::fs::read_to_string("/proc/sys/kernel/osrelease")
            .ok()
            .map(|text| text.trim().to_owned());
        let n_cpus = std::thread::available_parallelism().map_or(1, |n| n.get() as u64);
        Environment {
            os: std::env::consts::OS.to_owned(),
            kernel_release,
            n_cpus,
            open_files_limit,
        }
    }
}

/// Why a request failed. Each failure ends its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FailureKind {
    /// The server refused the connection (nothing listening, `ECONNREFUSED`).
    ConnectionRefused,
    /// The connection was not established within `--timeout` (e.g. a full listen backlog).
    ConnectTimeout,
    /// The server reset the connection (`ECONNRESET`, `EPIPE`, `ECONNABORTED`).
    Reset,
    /// The server closed the connection before the whole reply arrived.
    EarlyEof,
    /// The reply arrived but was not the upper-cased request.
    WrongReply,
    /// The reply did not arrive within `--timeout`.
    ReplyTimeout,
    /// No local address/port was free (`EADDRNOTAVAIL`): ephemeral-port exhaustion.
    AddressNotAvailable,
    /// The client ran out of file descriptors (`EMFILE`, `ENFILE`).
    TooManyOpenFiles,
    /// Anything else.
    Other,
}

impl FailureKind {
    /// Every kind, in the order of the [`Failures`] fields.
    pub const ALL: [FailureKind; 9] = [
        FailureKind::ConnectionRefused,
        FailureKind::ConnectTimeout,
        FailureKind::Reset,
        FailureKind::EarlyEof,
        FailureKind::WrongReply,
        FailureKind::ReplyTimeout,
        FailureKind::AddressNotAvailable,
        FailureKind::TooManyOpenFiles,
        FailureKind::Other,
    ];

    /// The kind's name as written in the JSON report and the summary.
    pub fn name(self) -> &'static str {
        match self {
            FailureKind::ConnectionRefused => "connection_refused",
            FailureKind::ConnectTimeout => "connect_timeout",
            FailureKind::Reset => "reset",
            FailureKind::EarlyEof => "early_eof",
            FailureKind::WrongReply => "wrong_reply",
            FailureKind::ReplyTimeout => "reply_timeout",
            FailureKind::AddressNotAvailable => "address_not_available",
            FailureKind::TooManyOpenFiles => "too_many_open_files",
            FailureKind::Other => "other",
        }
    }
}

/// Failed requests counted by [`FailureKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failures {
    /// Connections refused by the server.
    pub connection_refused: u64,
    /// Connects that did not complete within the timeout.
    pub connect_timeout: u64,
    /// Connections reset by the server.
    pub reset: u64,
    /// Connections closed by the server before the whole reply arrived.
    pub early_eof: u64,
    /// Replies that were not the upper-cased request.
    pub wrong_reply: u64,
    /// Replies that did not arrive within the timeout.
    pub reply_timeout: u64,
    /// Connects that found no free local address/port.
    pub address_not_available: u64,
    /// Sockets the client could not create for lack of file descriptors.
    pub too_many_open_files: u64,
    /// Failures of any other kind.
    pub other: u64,
}

impl Failures {
    fn slot(&mut self, kind: FailureKind) -> &mut u64 {
        match kind {
            FailureKind::ConnectionRefused => &mut self.connection_refused,
            FailureKind::ConnectTimeout => &mut self.connect_timeout,
            FailureKind::Reset => &mut self.reset,
            FailureKind::EarlyEof => &mut self.early_eof,
            FailureKind::WrongReply => &mut self.wrong_reply,
            FailureKind::ReplyTimeout => &mut self.reply_timeout,
            FailureKind::AddressNotAvailable => &mut self.address_not_available,
            FailureKind::TooManyOpenFiles => &mut self.too_many_open_files,
            FailureKind::Other => &mut self.other,
        }
    }

    /// Counts `n` more failures of `kind`.
    pub fn add(&mut self, kind: FailureKind, n: u64) {
        *self.slot(kind) += n;
    }

    /// How many failures of `kind` were counted.
    pub fn get(&self, kind: FailureKind) -> u64 {
        let mut copy = *self;
        *copy.slot(kind)
    }

    /// All failures, whatever their kind.
    pub fn total(&self) -> u64 {
        FailureKind::ALL.iter().map(|&kind| self.get(kind)).sum()
    }

    /// Adds every count of `other` to `self`.
    pub fn merge(&mut self, other: &Failures) {
        for kind in FailureKind::ALL {
            self.add(kind, other.get(kind));
        }
    }

    /// The kinds with a non-zero count, with their counts.
    pub fn nonzero(&self) -> impl Iterator<Item = (FailureKind, u64)> + '_ {
        FailureKind::ALL
            .into_iter()
            .map(|kind| (kind, self.get(kind)))
            .filter(|&(_, count)| count > 0)
    }
}

/// A distribution summary in microseconds, read from one histogram (so the text summary and
/// the JSON always agree).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Percentiles {
    /// Number of samples.
    pub count: u64,
    /// Smallest sample.
    pub min_us: f64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: f64,
    /// 90th percentile.
    pub p90_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p99_9_us: f64,
    /// Largest sample.
    pub max_us: f64,
}

impl Percentiles {
    /// Summarizes a histogram of nanoseconds; all zeros when it is empty.
    pub fn from_histogram(histogram: &Histogram<u64>) -> Percentiles {
        if histogram.is_empty() {
            return Percentiles::default();
        }
        let us = |ns: u64| ns as f64 / 1_000.0;
        Percentiles {
            count: histogram.len(),
            min_us: us(histogram.min()),
            mean_us: histogram.mean() / 1_000.0,
            p50_us: us(histogram.value_at_quantile(0.50)),
            p90_us: us(histogram.value_at_quantile(0.90)),
            p99_us: us(histogram.value_at_quantile(0.99)),
            p99_9_us: us(histogram.value_at_quantile(0.999)),
            max_us: us(histogram.max()),
        }
    }
}

/// The full distributions, in [`HISTOGRAM_ENCODING`], values in nanoseconds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Histograms {
    /// How the histograms below are encoded: [`HISTOGRAM_ENCODING`].
    pub encoding: String,
    /// Request latencies (successful requests), nanoseconds.
    pub latency_ns: String,
    /// Connect times (established connections), nanoseconds.
    pub connect_time_ns: String,
    /// Request latencies from the actual send (successful requests), nanoseconds.
    #[serde(default = "empty_histogram_hex")]
    pub latency_from_send_ns: String,
    /// Open-loop schedule lag, actual send minus due time (successful requests), nanoseconds.
    #[serde(default = "empty_histogram_hex")]
    pub schedule_lag_ns: String,
    /// Open-loop client lag, actual send minus the later of the due time and the moment a
    /// connection became idle (successful requests), nanoseconds.
    #[serde(default = "empty_histogram_hex")]
    pub client_lag_ns: String,
    /// Open-loop read lag, a reply's read minus its arrival in the kernel (successful
    /// requests whose reply had a timestamp), nanoseconds.
    #[serde(default = "empty_histogram_hex")]
    pub read_lag_ns: String,
}

fn empty_histogram_hex() -> String {
    encode_histogram("empty", &new_histogram()).unwrap_or_default()
}

/// The raw measurements of a run, before they are summarized into a [`Report`].
///
/// Workers record into these; [`Report::merge`] decodes two reports back into them, which is
/// why a merge is exact.
#[derive(Debug, Clone)]
pub struct Measurements {
    /// Latencies of successful requests, nanoseconds.
    pub latency_ns: Histogram<u64>,
    /// Connect times of established connections, nanoseconds.
    pub connect_time_ns: Histogram<u64>,
    /// Latencies of successful requests from their actual send, nanoseconds.
    pub latency_from_send_ns: Histogram<u64>,
    /// Open loop: actual send minus due time of successful requests, nanoseconds.
    pub schedule_lag_ns: Histogram<u64>,
    /// Open loop: actual send minus the later of due time and connection idle, nanoseconds.
    pub client_lag_ns: Histogram<u64>,
    /// Open loop: a reply's read minus its arrival in the kernel, nanoseconds.
    pub read_lag_ns: Histogram<u64>,
    /// Open-loop requests whose latency ends at their reply's kernel timestamp.
    pub replies_timed_by_kernel: u64,
    /// Requests with the right reply.
    pub requests_ok: u64,
    /// Requests skipped because their connection had failed.
    pub requests_not_sent: u64,
    /// Open-loop requests that started late.
    pub requests_started_late: u64,
    /// Open-loop requests that waited for a connection to become idle.
    pub requests_waited_for_connection: u64,
    /// Failures by kind.
    pub failures: Failures,
    /// Successful connects.
    pub connections_established: u64,
    /// Time from the start until every worker's first connection was up (successful ones).
    pub all_connected: Option<Duration>,
    /// Every successful request's instants, kept only for `--request-log` (see
    /// [`crate::request_log`]); `None` otherwise, and in measurements decoded from a report.
    pub request_log: Option<Vec<RequestTimes>>,
}

impl Default for Measurements {
    fn default() -> Self {
        Measurements {
            latency_ns: new_histogram(),
            connect_time_ns: new_histogram(),
            latency_from_send_ns: new_histogram(),
            schedule_lag_ns: new_histogram(),
            client_lag_ns: new_histogram(),
            read_lag_ns: new_histogram(),
            replies_timed_by_kernel: 0,
            requests_ok: 0,
            requests_not_sent: 0,
            requests_started_late: 0,
            requests_waited_for_connection: 0,
            failures: Failures::default(),
            connections_established: 0,
            all_connected: None,
            request_log: None,
        }
    }
}

/// An empty histogram with the bounds every report uses (1 ns to [`HISTOGRAM_MAX_NS`]).
pub fn new_histogram() -> Histogram<u64> {
    match Histogram::new_with_bounds(1, HISTOGRAM_MAX_NS, HISTOGRAM_SIGNIFICANT_DIGITS) {
        Ok(histogram) => histogram,
        // The bounds are constants that hdrhistogram accepts; tested below.
        Err(error) => unreachable!("constant histogram bounds rejected: {error}"),
    }
}

impl Measurements {
    /// Records one successful closed-loop request of `latency`, sent when it was due.
    pub fn record_latency(&mut self, latency: Duration) {
        self.requests_ok += 1;
        self.latency_ns.saturating_record(clamp_ns(latency));
        self.latency_from_send_ns
            .saturating_record(clamp_ns(latency));
    }

    /// Records one successful request on both clocks. A `scheduled` (open-loop) request
    /// also records its schedule lag and client lag, counts as started late beyond
    /// [`LATE_START_TOLERANCE`] of schedule lag, and as having waited for a connection when
    /// it was ready only after its due time; when its reply was timed by its arrival (`read`
    /// given), it also records its read lag and counts as timed by the kernel.
    pub fn record_request(&mut self, times: &RequestTimes, scheduled: bool) {
        self.requests_ok += 1;
        if let Some(log) = &mut self.request_log {
            log.push(*times);
        }
        let ns =
            |later: Instant, earlier: Instant| clamp_ns(later.saturating_duration_since(earlier));
        self.latency_ns.saturating_record(ns(times.done, times.due));
        self.latency_from_send_ns
            .saturating_record(ns(times.done, times.sent));
        if scheduled {
            let lag = times.sent.saturating_duration_since(times.due);
            self.schedule_lag_ns.saturating_record(clamp_ns(lag));
            let client_lag = times.sent.saturating_duration_since(times.ready);
            self.client_lag_ns.saturating_record(clamp_ns(client_lag));
            if lag > LATE_START_TOLERANCE {
                self.requests_started_late += 1;
            }
            if times.ready > times.due {
                self.requests_waited_for_connection += 1;
            }
            if let Some(read) = times.read {
                self.replies_timed_by_kernel += 1;
                let read_lag = read.saturating_duration_since(times.done);
                self.read_lag_ns.saturating_record(clamp_ns(read_lag));
            }
        }
    }

    /// Records one established connection and how long its connect took.
    pub fn record_connect(&mut self, connect_time: Duration) {
        self.connections_established += 1;
        self.connect_time_ns
            .saturating_record(clamp_ns(connect_time));
    }

    /// Adds every sample and count of `other` to `self`; `all_connected` takes the later
    /// time (both must be measured from the same start).
    pub fn merge(&mut self, other: &Measurements) {
        add_histogram(&mut self.latency_ns, &other.latency_ns);
        add_histogram(&mut self.connect_time_ns, &other.connect_time_ns);
        add_histogram(&mut self.latency_from_send_ns, &other.latency_from_send_ns);
        add_histogram(&mut self.schedule_lag_ns, &other.schedule_lag_ns);
        add_histogram(&mut self.client_lag_ns, &other.client_lag_ns);
        add_histogram(&mut self.read_lag_ns, &other.read_lag_ns);
        self.replies_timed_by_kernel += other.replies_timed_by_kernel;
        self.requests_ok += other.requests_ok;
        self.requests_not_sent += other.requests_not_sent;
        self.requests_started_late += other.requests_started_late;
        self.requests_waited_for_connection += other.requests_waited_for_connection;
        self.failures.merge(&other.failures);
        self.connections_established += other.connections_established;
        self.all_connected = self.all_connected.max(other.all_connected);
        if let Some(theirs) = &other.request_log {
            self.request_log
                .get_or_insert_with(Vec::new)
                .extend_from_slice(theirs);
        }
    }
}

/// The instants of one successful request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestTimes {
    /// When it was due: its intended start (closed loop: when it was sent).
    pub due: Instant,
    /// The later of `due` and the moment a connection became idle for it.
    pub ready: Instant,
    /// When it was written.
    pub sent: Instant,
    /// When its whole reply was in: its arrival in the kernel when `read` is given, else
    /// its read.
    pub done: Instant,
    /// When the reply was read, given only when `done` is its arrival in the kernel.
    pub read: Option<Instant>,
}

impl RequestTimes {
    /// A closed-loop request: due, ready and sent at `sent`.
    pub fn unscheduled(sent: Instant, done: Instant) -> RequestTimes {
        RequestTimes {
            due: sent,
            ready: sent,
            sent,
            done,
            read: None,
        }
    }
}

fn clamp_ns(duration: Duration) -> u64 {
    u64::try_from(duration.as_nanos()).map_or(HISTOGRAM_MAX_NS, |ns| ns.clamp(1, HISTOGRAM_MAX_NS))
}

fn add_histogram(into: &mut Histogram<u64>, from: &Histogram<u64>) {
    // Both histograms have the report bounds, so addition cannot run out of range; should a
    // foreign report carry a wider one, fall back to adding value by value, clamped.
    if into.add(from).is_err() {
        for value in from.iter_recorded() {
            let clamped = value.value_iterated_to().clamp(1, HISTOGRAM_MAX_NS);
            into.saturating_record_n(clamped, value.count_at_value());
        }
    }
}

/// Serializes a histogram as HdrHistogram V2, hex-encoded.
///
/// # Errors
/// [`ReportError::Histogram`] if the serializer fails (it should not for these bounds).
pub fn encode_histogram(
    name: &'static str,
    histogram: &Histogram<u64>,
) -> Result<String, ReportError> {
    let mut bytes = Vec::new();
    V2Serializer::new()
        .serialize(histogram, &mut bytes)
        .map_err(|error| ReportError::Histogram {
            name,
            reason: format!("{error:?}"),
        })?;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    Ok(text)
}

/// Decodes a histogram written by [`encode_histogram`].
///
/// # Errors
/// [`ReportError::Histogram`] naming the histogram if the hex or the V2 payload is invalid.
pub fn decode_histogram(name: &'static str, text: &str) -> Result<Histogram<u64>, ReportError> {
    let invalid = |reason: String| ReportError::Histogram { name, reason };
    if text.len() % 2 != 0 {
        return Err(invalid(format!("odd hex length {}", text.len())));
    }
    let bytes = (0..text.len())
        .step_by(2)
        .map(|at| {
            let pair = text.get(at..at + 2).unwrap_or("");
            u8::from_str_radix(pair, 16).map_err(|_| invalid(format!("bad hex {pair:?} at {at}")))
        })
        .collect::<Result<Vec<u8>, _>>()?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|error| invalid(format!("{error:?}")))
}

/// What identifies a run apart from its measurements: everything [`Report::build`] needs.
#[derive(Debug, Clone, PartialEq)]
pub struct RunInfo {
    /// The address the load went to.
    pub target: String,
    /// The parameters of the run.
    pub parameters: Parameters,
    /// The client machine.
    pub environment: Environment,
    /// When the measured phase started.
    pub started_at: SystemTime,
    /// How long the measured phase lasted.
    pub wall_time: Duration,
    /// How many runs this covers.
    pub runs_merged: u32,
}

impl Report {
    /// Summarizes measurements into a report.
    ///
    /// # Errors
    /// [`ReportError::Histogram`] if a histogram cannot be serialized.
    pub fn build(info: RunInfo, measurements: &Measurements) -> Result<Report, ReportError> {
        let wall_time_seconds = info.wall_time.as_secs_f64();
        let throughput_requests_per_second = if wall_time_seconds > 0.0 {
            measurements.requests_ok as f64 / wall_time_seconds
        } else {
            0.0
        };
        let schedule_lag = Percentiles::from_histogram(&measurements.schedule_lag_ns);
        let client_lag = Percentiles::from_histogram(&measurements.client_lag_ns);
        // A version-2 report has no client lag: it is judged on its schedule lag, as it was.
        let judged = if client_lag.count > 0 {
            client_lag
        } else {
            schedule_lag
        };
        let client_bound = judged.count > 0 && judged.p99_us > info.parameters.max_schedule_lag_us;
        Ok(Report {
            schema_version: SCHEMA_VERSION,
            tool: "loadgen".to_owned(),
            tool_version: env!("CARGO_PKG_VERSION").to_owned(),
            target: info.target,
            parameters: info.parameters,
            environment: info.environment,
            started_at: humantime::format_rfc3339_nanos(info.started_at).to_string(),
            wall_time_seconds,
            runs_merged: info.runs_merged,
            requests_ok: measurements.requests_ok,
            requests_failed: measurements.failures.total(),
            requests_not_sent: measurements.requests_not_sent,
            requests_started_late: measurements.requests_started_late,
            requests_waited_for_connection: measurements.requests_waited_for_connection,
            failures: measurements.failures,
            connections_established: measurements.connections_established,
            throughput_requests_per_second,
            all_connected_seconds: measurements.all_connected.map(|d| d.as_secs_f64()),
            connect_time: Percentiles::from_histogram(&measurements.connect_time_ns),
            latency: Percentiles::from_histogram(&measurements.latency_ns),
            latency_from_send: Percentiles::from_histogram(&measurements.latency_from_send_ns),
            schedule_lag,
            client_lag,
            read_lag: Percentiles::from_histogram(&measurements.read_lag_ns),
            replies_timed_by_kernel: measurements.replies_timed_by_kernel,
            client_bound,
            histograms: Histograms {
                encoding: HISTOGRAM_ENCODING.to_owned(),
                latency_ns: encode_histogram("latency", &measurements.latency_ns)?,
                connect_time_ns: encode_histogram("connect_time", &measurements.connect_time_ns)?,
                latency_from_send_ns: encode_histogram(
                    "latency_from_send",
                    &measurements.latency_from_send_ns,
                )?,
                schedule_lag_ns: encode_histogram("schedule_lag", &measurements.schedule_lag_ns)?,
                client_lag_ns: encode_histogram("client_lag", &measurements.client_lag_ns)?,
                read_lag_ns: encode_histogram("read_lag", &measurements.read_lag_ns)?,
            },
        })
    }

    /// Decodes the report's counts and histograms back into [`Measurements`].
    ///
    /// # Errors
    /// [`ReportError::Histogram`] if a histogram is not valid.
    pub fn measurements(&self) -> Result<Measurements, ReportError> {
        Ok(Measurements {
            latency_ns: decode_histogram("latency", &self.histograms.latency_ns)?,
            connect_time_ns: decode_histogram("connect_time", &self.histograms.connect_time_ns)?,
            latency_from_send_ns: decode_histogram(
                "latency_from_send",
                &self.histograms.latency_from_send_ns,
            )?,
            schedule_lag_ns: decode_histogram("schedule_lag", &self.histograms.schedule_lag_ns)?,
            client_lag_ns: decode_histogram("client_lag", &self.histograms.client_lag_ns)?,
            read_lag_ns: decode_histogram("read_lag", &self.histograms.read_lag_ns)?,
            replies_timed_by_kernel: self.replies_timed_by_kernel,
            requests_ok: self.requests_ok,
            requests_not_sent: self.requests_not_sent,
            requests_started_late: self.requests_started_late,
            requests_waited_for_connection: self.requests_waited_for_connection,
            failures: self.failures,
            connections_established: self.connections_established,
            all_connected: self.all_connected_seconds.map(Duration::from_secs_f64),
            request_log: None,
        })
    }

    /// The measured phase's start, parsed back from `started_at`.
    ///
    /// # Errors
    /// [`ReportError::Timestamp`] if `started_at` is not RFC 3339.
    pub fn started_at_time(&self) -> Result<SystemTime, ReportError> {
        humantime::parse_rfc3339(&self.started_at).map_err(|error| ReportError::Timestamp {
            value: self.started_at.clone(),
            reason: error.to_string(),
        })
    }

    /// Combines the reports of runs against the same target (several loadgen processes or
    /// hosts, run at the same time) into one, as if one client had made all the requests.
    ///
    /// Counts and histograms add up exactly; the time span runs from the earliest start to
    /// the latest end, so throughput is the combined rate when the runs overlapped (for runs
    /// made one after another it includes the gaps). `parameters` and `environment` are
    /// those of `self`.
    ///
    /// # Errors
    /// [`ReportError::TargetMismatch`] for different targets, [`ReportError::UnsupportedSchema`]
    /// for a foreign schema version, or a histogram/timestamp decoding error.
    pub fn merge(&self, other: &Report) -> Result<Report, ReportError> {
        for report in [self, other] {
            if report.schema_version != SCHEMA_VERSION {
                return Err(ReportError::UnsupportedSchema {
                    found: u64::from(report.schema_version),
                    expected: SCHEMA_VERSION,
                });
            }
        }
        if self.target != other.target {
            return Err(ReportError::TargetMismatch {
                left: self.target.clone(),
                right: other.target.clone(),
            });
        }
        let (start_a, start_b) = (self.started_at_time()?, other.started_at_time()?);
        let started_at = start_a.min(start_b);
        let offset = |start: SystemTime| start.duration_since(started_at).unwrap_or_default();
        let end = |report: &Report, start| offset(start) + secs(report.wall_time_seconds);
        let mut measurements = self.measurements()?;
        let mut theirs = other.measurements()?;
        measurements.all_connected = measurements.all_connected.map(|d| d + offset(start_a));
        theirs.all_connected = theirs.all_connected.map(|d| d + offset(start_b));
        measurements.merge(&theirs);
        let info = RunInfo {
            target: self.target.clone(),
            parameters: self.parameters.clone(),
            environment: self.environment.clone(),
            started_at,
            wall_time: end(self, start_a).max(end(other, start_b)),
            runs_merged: self.runs_merged + other.runs_merged,
        };
        Report::build(info, &measurements)
    }

    /// Reads a report from JSON, refusing unknown schema versions. A report of an
    /// [older version](OLDER_SCHEMA_VERSIONS) is upgraded: fields it lacks get empty
    /// distributions, so it merges with current reports.
    ///
    /// # Errors
    /// [`ReportError::UnsupportedSchema`] or [`ReportError::Json`].
    pub fn from_json(text: &str) -> Result<Report, ReportError> {
        let value: serde_json::Value = serde_json::from_str(text)?;
        let found = value
            .get("schema_version")
            .and_then(serde_json::Value::as_u64)
            .unwrap_or(0);
        let readable = std::iter::once(SCHEMA_VERSION)
            .chain(OLDER_SCHEMA_VERSIONS)
            .any(|version| u64::from(version) == found);
        if !readable {
            return Err(ReportError::UnsupportedSchema {
                found,
                expected: SCHEMA_VERSION,
            });
        }
        let mut report: Report = serde_json::from_value(value)?;
        report.schema_version = SCHEMA_VERSION;
        Ok(report)
    }

    /// The report as pretty-printed JSON (with a trailing newline).
    pub fn to_json(&self) -> String {
        // Serializing plain structs of strings and numbers cannot fail; non-finite floats
        // become `null`, which `from_json` would reject, so none are ever stored.
        let mut text = serde_json::to_string_pretty(self).unwrap_or_default();
        text.push('\n');
        text
    }

    /// Failed requests as a fraction of all requests that were attempted (0 when none were).
    pub fn error_rate(&self) -> f64 {
        let attempted = self.requests_ok + self.requests_failed;
        if attempted == 0 {
            0.0
        } else {
            self.requests_failed as f64 / attempted as f64
        }
    }
}

fn secs(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_report_histogram_bounds_are_accepted_and_hold_an_hour() {
        let mut histogram = new_histogram();
        histogram.saturating_record(HISTOGRAM_MAX_NS);
        assert_eq!(histogram.len(), 1);
    }

    #[test]
    fn a_histogram_survives_encoding_as_hex() {
        let mut histogram = new_histogram();
        for ns in [1, 999, 45_000, 100_000_000, HISTOGRAM_MAX_NS] {
            histogram.saturating_record(ns);
        }
        let text = encode_histogram("latency", &histogram).expect("encodes");
        assert!(text.bytes().all(|byte| byte.is_ascii_hexdigit()));
        let back = decode_histogram("latency", &text).expect("decodes");
        assert_eq!(back, histogram);
    }

    #[test]
    fn invalid_hex_is_refused_naming_the_histogram() {
        for text in ["abc", "zz00", ""] {
            let error = decode_histogram("connect_time", text).expect_err(text);
            assert!(error.to_string().contains("connect_time"), "{error}");
        }
    }

    #[test]
    fn failures_count_by_kind_and_in_total() {
        let mut failures = Failures::default();
        for (n, kind) in FailureKind::ALL.into_iter().enumerate() {
            failures.add(kind, n as u64 + 1);
        }
        assert_eq!(failures.get(FailureKind::ConnectionRefused), 1);
        assert_eq!(failures.get(FailureKind::Other), 9);
        assert_eq!(failures.total(), 45);
        assert_eq!(failures.nonzero().count(), 9);
    }

    #[test]
    fn durations_are_clamped_into_the_histogram_range() {
        assert_eq!(clamp_ns(Duration::ZERO), 1);
        assert_eq!(clamp_ns(Duration::from_secs(10_000)), HISTOGRAM_MAX_NS);
        assert_eq!(clamp_ns(Duration::from_micros(5)), 5_000);
    }
}
