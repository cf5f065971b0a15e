//! The one accept policy every server follows: which `accept` errors are worth a pause, how
//! long the pause is, what is counted, and what happens at `max_connections`.
//!
//! A server owns its accept loop (a blocking thread, a tokio task, a readiness or completion
//! loop), but not these decisions: it asks an [`AcceptBackoff`] before accepting
//! ([`AcceptBackoff::has_room`]) and after every outcome ([`AcceptBackoff::accepted`],
//! [`AcceptBackoff::failed`]), and spends the pause it is told in its own way (a sleep, a tokio
//! timer, a timer-queue entry). So `accept_errors` and `accept_backoffs` mean the same in every
//! server, and every server logs an episode of failures alike.
//!
//! # The policy
//!
//! - **Every failed `accept` counts one `accept_errors`** (`WouldBlock` is not a failure: the
//!   caller handles it before asking, since it means "nothing to accept").
//! - **Transient errors** (`Interrupted`, `ConnectionAborted`, `ConnectionReset`) concern one
//!   connection that went away before it was accepted, not the listener: accept again at once.
//! - **Out of descriptors** (EMFILE, ENFILE), **out of memory** (ENOBUFS, ENOMEM) and any other
//!   (**fatal**) error: stop accepting for a pause (10 ms, doubling up to 100 ms while failures
//!   go on, back to 10 ms after a success), never spin, never exit, keep serving the open
//!   connections. A failing `accept` fails again at once if retried (the pending connection
//!   stays in the kernel's queue), so only a pause keeps a saturated server from burning a
//!   core; pending connections wait in the backlog meanwhile.
//! - **At `max_connections`** the server stops accepting until a connection closes; seen from
//!   outside, new connections wait in the backlog and the oldest is taken as soon as a client
//!   leaves. A server that cannot be told of a close re-checks every
//!   [`AcceptBackoff::FULL_RECHECK`].
//! - **`accept_backoffs` counts pauses**: one per pause after a failure, and one per stretch
//!   spent at `max_connections` (however many times the server re-checks during it). A server
//!   with several accept loops (mio's `--loops`) counts each loop's stretch.
//! - An episode of failures is logged twice, whatever its length: a warning at its first
//!   failure, and `accepting again` at the next success.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use crate::stats::Stats;

/// What a failed `accept` says about the listener.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AcceptErrorKind {
    /// One connection failed before it was accepted (aborted, reset) or a signal interrupted
    /// the call: accept again at once.
    Transient,
    /// The process or the system has no descriptor left (EMFILE, ENFILE): passes when
    /// connections close.
    OutOfDescriptors,
    /// The kernel has no socket buffers left (ENOBUFS, ENOMEM): passes when memory frees up.
    OutOfMemory,
    /// Anything else: pause like the others, since retrying at once would fail again.
    Fatal,
}

impl AcceptErrorKind {
    /// Classifies `err`. `WouldBlock` is the caller's business (nothing to accept) and comes
    /// out as [`AcceptErrorKind::Fatal`] here, so that a caller that forgets it pauses instead
    /// of spinning.
    pub fn of(err: &io::Error) -> AcceptErrorKind {
        match err.raw_os_error() {
            Some(libc::EMFILE | libc::ENFILE) => return AcceptErrorKind::OutOfDescriptors,
            Some(libc::ENOBUFS | libc::ENOMEM) => return AcceptErrorKind::OutOfMemory,
            _ => {}
        }
        match err.kind() {
            io::ErrorKind::Interrupted
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset => AcceptErrorKind::Transient,
            _ => AcceptErrorKind::Fatal,
        }
    }

    /// How the warning names it.
    fn cause(self) -> &'static str {
        match self {
            AcceptErrorKind::Transient => "transient",
            AcceptErrorKind::OutOfDescriptors => "out of descriptors",
            AcceptErrorKind::OutOfMemory => "out of memory",
            AcceptErrorKind::Fatal => "error",
        }
    }
}

/// One server loop's accept policy (see the module docs): the connection limit, the pause
/// after a failure, the counters and the log of an episode of failures.
#[derive(Debug)]
pub struct AcceptBackoff {
    stats: Arc<Stats>,
    max_connections: u64,
    next: Duration,
    /// An accept has failed since the last success.
    failing: bool,
    /// The last [`AcceptBackoff::has_room`] found the server full.
    full: bool,
}

impl AcceptBackoff {
    /// The first pause after a failure.
    pub const MIN: Duration = Duration::from_millis(10);
    /// The longest pause: short enough to resume promptly once descriptors free up.
    pub const MAX: Duration = Duration::from_millis(100);
    /// How often a full server that is not told of closes checks for room again.
    pub const FULL_RECHECK: Duration = Self::MIN;

    /// The policy of a server counting into `stats` and holding at most `max_connections`
    /// open (counted over the whole server, all its loops).
    pub fn new(stats: Arc<Stats>, max_connections: usize) -> Self {
        AcceptBackoff {
            stats,
            max_connections: u64::try_from(max_connections).unwrap_or(u64::MAX),
            next: Self::MIN,
            failing: false,
            full: false,
        }
    }

    /// Whether the server may accept now, i.e. has fewer than `max_connections` open. The
    /// first `false` of a stretch counts one back-off.
    pub fn has_room(&mut self) -> bool {
        let full = self.stats.open_connections() >= self.max_connections;
        if full && !self.full {
            self.stats.accept_backoff();
            tracing::debug!(
                max_connections = self.max_connections,
                "connection limit reached; pausing accept"
            );
        }
        self.full = full;
        !full
    }

    /// An accept succeeded: the next failure starts again at [`Self::MIN`], and an episode of
    /// failures, if one was going on, is reported over.
    pub fn accepted(&mut self) {
        self.next = Self::MIN;
        if std::mem::take(&mut self.failing) {
            tracing::warn!("accepting again");
        }
    }

    /// An accept failed with `err` (not `WouldBlock`): counts it and returns the pause to
    /// take before accepting again, or `None` to accept again at once (a transient error).
    pub fn failed(&mut self, err: &io::Error) -> Option<Duration> {
        self.stats.accept_error();
        let kind = AcceptErrorKind::of(err);
        if kind == AcceptErrorKind::Transient {
            tracing::debug!("transient accept error: {err}");
            return None;
        }
        if !std::mem::replace(&mut self.failing, true) {
            let cause = kind.cause();
            tracing::warn!("accept failed ({cause}): {err}; backing off until it succeeds");
        }
        Some(self.pause())
    }

    /// Counts a pause and returns its length; the next one will be twice as long (up to
    /// [`Self::MAX`]). [`AcceptBackoff::failed`] calls it; a server calls it itself only for a
    /// failure after `accept` (a connection it could not hand to a thread).
    pub fn pause(&mut self) -> Duration {
        self.stats.accept_backoff();
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn accept_errors_fall_into_four_classes() {
        use AcceptErrorKind::*;
        let cases = [
            (libc::EMFILE, OutOfDescriptors),
            (libc::ENFILE, OutOfDescriptors),
            (libc::ENOBUFS, OutOfMemory),
            (libc::ENOMEM, OutOfMemory),
            (libc::EINTR, Transient),
            (libc::ECONNABORTED, Transient),
            (libc::ECONNRESET, Transient),
            (libc::EINVAL, Fatal),
            (libc::EAGAIN, Fatal),
        ];
        for (code, kind) in cases {
            assert_eq!(AcceptErrorKind::of(&os(code)), kind, "errno {code}");
        }
    }

    #[test]
    fn a_transient_error_counts_an_error_and_no_pause() {
        let stats = Stats::new();
        let mut backoff = AcceptBackoff::new(Arc::clone(&stats), 10);
        assert_eq!(backoff.failed(&os(libc::ECONNABORTED)), None);
        let summary = stats.summary();
        assert_eq!((summary.accept_errors, summary.accept_backoffs), (1, 0));
    }

    #[test]
    fn pauses_after_failures_double_up_to_their_ceiling_and_reset_after_a_success() {
        let stats = Stats::new();
        let mut backoff = AcceptBackoff::new(Arc::clone(&stats), 10);
        let pauses: Vec<_> = (0..6).map(|_| backoff.failed(&os(libc::EMFILE))).collect();
        assert_eq!(pauses[0], Some(AcceptBackoff::MIN));
        assert_eq!(pauses[1], Some(AcceptBackoff::MIN * 2));
        assert_eq!(pauses[5], Some(AcceptBackoff::MAX));
        backoff.accepted();
        assert_eq!(backoff.failed(&os(libc::ENFILE)), Some(AcceptBackoff::MIN));
        let summary = stats.summary();
        assert_eq!((summary.accept_errors, summary.accept_backoffs), (7, 7));
    }

    #[test]
    fn a_stretch_at_max_connections_counts_one_back_off_however_often_it_is_checked() {
        let stats = Stats::new();
        let mut backoff = AcceptBackoff::new(Arc::clone(&stats), 1);
        assert!(backoff.has_room());
        let guard = stats.open();
        assert!(!backoff.has_room());
        assert!(!backoff.has_room());
        assert_eq!(stats.summary().accept_backoffs, 1);
        drop(guard);
        assert!(backoff.has_room());
        let _again = stats.open();
        assert!(!backoff.has_room());
        assert_eq!(stats.summary().accept_backoffs, 2, "a second stretch");
    }
}
