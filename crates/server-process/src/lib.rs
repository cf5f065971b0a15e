//! server-process: the one harness that runs a server binary as a child process, for the
//! conformance suite, `cargo xtask` and the benchmark examples alike.
//!
//! Every server binary of the project prints exactly one line, `listening on <ip>:<port>`,
//! on stdout once it is ready, so it can bind port 0 and say what it got. Starting one,
//! reading that line within a time limit, keeping its stderr, sampling what it costs from
//! `/proc`, signalling it by PID and reaping it with its resource usage used to be written
//! three times (conformance, xtask, the mio benchmark), each with its own parser of that line
//! and its own `/proc` reader; a fourth server model would have met three slightly different
//! harnesses. Now there is one:
//!
//! - [`Launch`] says what to start: program, arguments, environment, an optional descriptor
//!   limit and CPU pinning, and how readiness shows ([`Ready`]).
//! - [`ServerProcess::start`] starts it and waits for readiness; the result is killed and
//!   reaped if dropped, so an error half-way through a run leaves no process behind.
//! - [`ServerProcess::stop`] (SIGTERM, patience, SIGKILL) and [`ServerProcess::wait`] reap it
//!   with `wait4` and return an [`Exit`]: status, resource usage of every thread it ever had,
//!   and its stderr.
//! - [`procfs`] reads `/proc/<pid>/stat`, `status` and `fd` once; [`Sampler`] does so
//!   periodically and keeps the peaks.
//! - [`parse_listening_line`] is the only parser of the `listening on` line.
//! - A server that cannot run on this machine exits at start with [`EXIT_SKIPPED`] and a
//!   `skipped: <reason>` line; [`Error::skipped`] gives the reason, so that every tool shows
//!   such a row as skipped rather than failed.
//! - [`steadiness`] probes how fast the machine's CPUs ran during a run ([`SpeedProbe`]):
//!   on these virtual machines they slow down now and then, unseen by the kernel.
//! - [`bench`](mod@bench) holds what the benchmark examples share around their runs (the recorded
//!   command, the JSON and the markdown rendered from it).
//!
//! Errors name the server, its PID or the file at fault, and a start that fails ends with the
//! tail of the server's stderr, because "did not start" alone sends the reader hunting.

pub mod bench;
mod capture;
mod launch;
mod listening;
mod process;
pub mod procfs;
mod reap;
mod sampler;
pub mod steadiness;

pub use capture::{Capture, KEEP_BYTES};
pub use launch::{
    Launch, Ready, fifo_allowed, fifo_where_allowed, free_port, limit_descriptors, pin_to_cpus,
    run_fifo,
};
pub use listening::{ListeningLineError, parse_listening_line};
pub use process::{EXIT_SKIPPED, Error, Exit, ServerProcess, exited_cleanly};
pub use reap::{Usage, reap_within};
pub use sampler::{Peaks, SAMPLE_INTERVAL, Sampler};
pub use steadiness::{SpeedProbe, Steadiness};
