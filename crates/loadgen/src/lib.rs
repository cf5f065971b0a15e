//! loadgen: a load client for the uppercase echo protocol whose numbers can be trusted.
//!
//! The article drives its servers with one client that opens N connections, sends one
//! message on each and reports a single total time. loadgen does that job for any server
//! that speaks the protocol, and measures it properly: every failure is classified and
//! counted, latencies go into HdrHistograms, and the result is a versioned, mergeable
//! [`Report`] that serializes to JSON.
//!
//! - [`report`]: the [`Report`] schema, histogram encoding and [`Report::merge`].
#![deny(missing_docs)]

pub mod report;

pub use report::{FailureKind, Failures, Measurements, Percentiles, Report, ReportError};
