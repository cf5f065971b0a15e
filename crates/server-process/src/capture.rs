//! Keeping what a child writes to a pipe (its stderr), read on a thread so that a chatty
//! child never blocks on a full pipe.
//!
//! The conformance cases need all of a short-lived server's stderr (they count warnings and
//! look for the summary line); a study needs the last lines of a long run for its record and
//! its error messages. One capture serves both: it keeps whole lines, the newest
//! [`KEEP_BYTES`] of them, and says how many older lines it let go.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

/// How much of a pipe's text a [`Capture`] keeps, newest lines first: far more than any
/// server writes in a test, little enough that a run with `--verbose` cannot exhaust memory.
pub const KEEP_BYTES: usize = 4 << 20;

/// The lines read so far from one pipe, shared with the thread reading it.
#[derive(Debug, Clone)]
pub struct Capture {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    kept: Mutex<Kept>,
    ended: Condvar,
}

#[derive(Debug, Default)]
struct Kept {
    lines: VecDeque<String>,
    bytes: usize,
    dropped_lines: u64,
    ended: bool,
}

impl Capture {
    /// Starts a thread reading `pipe` to its end, line by line (invalid UTF-8 is replaced,
    /// line ends are dropped).
    pub fn start(pipe: impl Read + Send + 'static) -> Capture {
        let shared = Arc::new(Shared::default());
        let writer = Arc::clone(&shared);
        thread::spawn(move || {
            let mut reader = BufReader::new(pipe);
            let mut raw = Vec::new();
            while reader.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
                let text = String::from_utf8_lossy(&raw);
                let line = text.strip_suffix('\n').unwrap_or(&text);
                writer.lock().push(line.strip_suffix('\r').unwrap_or(line));
                raw.clear();
            }
            writer.lock().ended = true;
            writer.ended.notify_all();
        });
        Capture { shared }
    }

    /// Everything kept so far, each line ended by a newline.
    pub fn text(&self) -> String {
        let kept = self.shared.lock();
        let mut text = String::with_capacity(kept.bytes + kept.lines.len());
        for line in &kept.lines {
            text.push_str(line);
            text.push('\n');
        }
        text
    }

    /// The last `n` lines kept (fewer if there are fewer).
    pub fn tail(&self, n: usize) -> Vec<String> {
        let kept = self.shared.lock();
        let skip = kept.lines.len().saturating_sub(n);
        kept.lines.iter().skip(skip).cloned().collect()
    }

    /// The last line, if any.
    pub fn last_line(&self) -> Option<String> {
        self.shared.lock().lines.back().cloned()
    }

    /// Lines let go because more than [`KEEP_BYTES`] arrived.
    pub fn dropped_lines(&self) -> u64 {
        self.shared.lock().dropped_lines
    }

    /// Waits at most `timeout` for the pipe's end of file (the child and every process that
    /// inherited the pipe have closed it); returns whether it came.
    pub fn wait_for_end(&self, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut kept = self.shared.lock();
        while !kept.ended {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            kept = self
                .shared
                .ended
                .wait_timeout(kept, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

impl Shared {
    /// A panic while holding the lock cannot leave the lines half-written, so a poisoned
    /// lock is still good to read.
    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Kept {
    fn push(&mut self, line: &str) {
        self.bytes += line.len();
        self.lines.push_back(line.to_owned());
        while self.bytes > KEEP_BYTES && self.lines.len() > 1 {
            if let Some(old) = self.lines.pop_front() {
                self.bytes -= old.len();
                self.dropped_lines += 1;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_is_kept_without_its_line_end_and_the_end_is_signalled() {
        let capture = Capture::start(&b"first\r\nsecond\nunterminated"[..]);
        assert!(capture.wait_for_end(Duration::from_secs(10)));
        assert_eq!(capture.text(), "first\nsecond\nunterminated\n");
        assert_eq!(capture.tail(2), ["second", "unterminated"]);
        assert_eq!(capture.tail(9).len(), 3);
        assert_eq!(capture.last_line().as_deref(), Some("unterminated"));
        assert_eq!(capture.dropped_lines(), 0);
    }

    #[test]
    fn beyond_the_byte_limit_the_oldest_lines_go_and_are_counted() {
        let line = "x".repeat(1024);
        let lines = KEEP_BYTES / 1024 + 10;
        let text = format!("{line}\n").repeat(lines) + "last\n";
        let capture = Capture::start(std::io::Cursor::new(text.into_bytes()));
        assert!(capture.wait_for_end(Duration::from_secs(10)));
        assert!(capture.dropped_lines() >= 10, "{}", capture.dropped_lines());
        assert!(capture.text().len() <= KEEP_BYTES + lines);
        assert_eq!(capture.last_line().as_deref(), Some("last"));
    }
}
