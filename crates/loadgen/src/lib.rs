//! loadgen: a load client for the uppercase echo protocol whose numbers can be trusted.
//!
//! The article drives its servers with one client that opens N connections, sends one
//! message on each and reports a single total time. loadgen does that job for any server
//! that speaks the protocol, and measures it properly: every failure is classified and
//! counted, latencies go into HdrHistograms, and the result is a versioned, mergeable
//! [`Report`] that serializes to JSON.
//!
//! How a run works: [`run()`] splits the connections over `n_threads` client threads, each
//! with one set of histograms. Closed loop (the article's burst of one-shot connections),
//! each thread runs one worker per concurrent connection on a single-threaded tokio runtime,
//! and workers take connections from a shared [`plan::Plan`] until it is done (a count, or a
//! deadline). Open loop (`rate`), each thread runs a hand-written event loop on `mio`
//! ([`open_loop`]) that owns its connections: it opens and primes them, then writes each due
//! request to the connection idle longest between chunks of at most 64 events, woken for the
//! next due time by a timerfd. It is hand-written because in tokio's run queue a due request
//! waited behind the replies of a whole batch of events (schedule lag p99 3.9 ms at 30,000
//! requests/s and 10000 connections; see [`open_loop`] for what the loop changed, measured).
//! Latency is measured from the due time, so a slow server cannot hide its slowness by
//! slowing the client down (coordinated omission), and also from the actual send, so the
//! client's own lag is measured too, never hidden, apart from the wait for an idle
//! connection, which is the server's.
//!
//! - [`config`]: what a run does, and its validation.
//! - [`run`](mod@run): the phases and threads of a run.
//! - [`worker`]: the closed loop's connections, one after another.
//! - [`open_loop`], [`timer`], [`arrival`]: the open loop's event loop, its precise wake-up
//!   and the kernel's receive timestamps that time its replies.
//! - [`exchange`], [`net`]: a reply's judge, sockets and failure kinds.
//! - [`plan`]: the shared work and open-loop schedule.
//! - [`limits`]: the open-file limit.
//! - [`report`]: the [`Report`] schema, histogram encoding and [`Report::merge`].
//! - [`request_log`]: the open loop's per-request log (`--request-log`).
//! - [`summary`]: the human summary.
#![deny(missing_docs)]

pub mod arrival;
pub mod config;
pub mod error;
pub mod exchange;
pub mod limits;
pub mod net;
pub mod open_loop;
pub mod plan;
mod progress;
pub mod report;
pub mod request_log;
pub mod run;
pub mod summary;
pub mod timer;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
pub use report::{FailureKind, Failures, Measurements, Percentiles, Report, ReportError};
pub use run::run;
