//! One server process for one run, as a study records it.
//!
//! Starting a server binary, reading its `listening on` line, keeping its stderr, SIGTERM and
//! reaping it with `wait4` are the [`server_process`] harness's job, the same one conformance
//! and the benchmark examples use; a study holds a [`ServerProcess`] for each run. This
//! module adds only what is xtask's own: the run's [`ExitRecord`], made from the harness's
//! [`Exit`]. [`Launch`], [`Ready`] and [`free_port`] are re-exported so that the catalogue and
//! the studies name everything about a server process from here.

pub use server_process::{Exit, Launch, Ready, ServerProcess, free_port};

use crate::results::ExitRecord;

/// How a stopped server ended, as the run's record keeps it: its status, whether that was a
/// clean `exit(0)` within its patience, how long it took, and its last stderr line (a
/// server's summary line, which says what it counted).
pub fn exit_record(exit: &Exit) -> ExitRecord {
    ExitRecord {
        code: exit.code(),
        signal: exit.signal(),
        clean: exit.clean(),
        stop_seconds: exit.stop_seconds,
        last_stderr_line: exit.last_stderr_line().map(Into::into),
    }
}
