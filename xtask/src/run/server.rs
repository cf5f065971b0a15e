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

/// The connections a server shed (`ERR server busy`), from its summary line (`connections
/// N, requests N, errors N (... accept back-offs N[, ..., shed N][, ...])`, server-common's
/// format): 0 when the line has no `shed`, `None` when the line is not a summary at all.
pub fn shed_connections(last_stderr_line: &str) -> Option<u64> {
    let summary =
        last_stderr_line.contains("connections ") && last_stderr_line.contains("accept back-offs ");
    if !summary {
        return None;
    }
    let Some((_, after)) = last_stderr_line.split_once(", shed ") else {
        return Some(0);
    };
    let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shed_connections_come_from_the_summary_line_and_are_unknown_without_one() {
        let quiet = "connections 10, requests 10, errors 0 (peak open 10, connection errors 0, \
                     accept errors 0, accept back-offs 0)";
        assert_eq!(shed_connections(quiet), Some(0));
        let shedding = "connections 300, requests 64, errors 0 (peak open 300, connection \
                        errors 0, accept errors 0, accept back-offs 1, peak queued 236, mean \
                        queue wait 5001.2 ms, shed 236, refused at shutdown 1)";
        assert_eq!(shed_connections(shedding), Some(236));
        assert_eq!(shed_connections("serving forever"), None);
    }
}
