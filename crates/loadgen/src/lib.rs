//! loadgen: a load client for the uppercase echo protocol whose numbers can be trusted.
//!
//! The article drives its servers with one client that opens N connections, sends one
//! message on each and reports a single total time. loadgen does that job for any server
//! that speaks the protocol, and measures it properly: every failure is classified and
//! counted, latencies go into HdrHistograms, and the result is a versioned, mergeable
//! [`Report`] that serializes to JSON.
//!
//! How a run works: [`run()`] splits the workers (one per concurrent connection) over
//! `n_threads` client threads, each with a single-threaded tokio runtime and one shared set
//! of histograms. Workers take connections from a shared [`plan::Plan`] until it is done
//! (a count, or a deadline). In open-loop mode (`rate`) the connections are opened first;
//! then each due request goes to an idle connection as soon as any task of the thread
//! notices that it is due (a worker that has read a reply, or the thread's dispatcher woken
//! by a precise timer). Latency is measured from the due time, so a slow server
//! cannot hide its slowness by slowing the client down (coordinated omission), and also
//! from the actual send, so the client's own lag is measured too, never hidden, apart from
//! the wait for an idle connection, which is the server's.
//!
//! - [`config`]: what a run does, and its validation.
//! - [`run`](mod@run): the phases and threads of a run.
//! - [`worker`], [`exchange`], [`net`]: connections, requests, sockets and failure kinds.
//! - [`plan`]: the shared work and open-loop schedule.
//! - [`dispatch`], [`timer`]: handing due requests to idle connections, on time.
//! - [`limits`]: the open-file limit.
//! - [`report`]: the [`Report`] schema, histogram encoding and [`Report::merge`].
//! - [`summary`]: the human summary.
#![deny(missing_docs)]

pub mod config;
pub mod dispatch;
pub mod error;
pub mod exchange;
pub mod limits;
pub mod net;
pub mod plan;
mod progress;
pub mod report;
pub mod run;
pub mod summary;
pub mod timer;
pub mod worker;

pub use config::Config;
pub use error::{Error, Result};
pub use report::{FailureKind, Failures, Measurements, Percentiles, Report, ReportError};
pub use run::run;
