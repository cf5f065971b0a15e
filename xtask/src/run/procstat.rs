//! What a server process costs, as a run records it: its memory and threads sampled from
//! /proc while it runs, and its CPU time and context switches from `wait4` when it is reaped.
//!
//! The article's explanation is about exactly these: threads cost memory and scheduler time.
//! Two sources, because each is right about different things:
//! - `/proc/<pid>/status` gives the live resident set, its high-water mark (`VmHWM`, kept by
//!   the kernel, so a short peak between samples is not missed) and the thread count. Its
//!   context-switch counters, though, belong to the main thread only.
//! - `wait4`'s `rusage` covers every thread the process ever had, including the thousands of
//!   per-connection threads that already exited; so CPU time and context switches come from
//!   there.
//!
//! `/proc/<pid>/stat` CPU times are sampled too, as a fallback when the process could not be
//! reaped (then `wait4` has nothing to say).
//!
//! Reading /proc and reaping are the [`server_process`] harness's ([`Sampler`], [`Usage`]),
//! re-exported here; joining the two sources into the record's [`ProcessFigures`] is
//! xtask's own. A long run that needs the process over time rather than its peaks (a soak)
//! keeps a [`Timeline`] of [`Reading`]s instead.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use server_process::procfs;
pub use server_process::{Peaks, SAMPLE_INTERVAL, Sampler, Usage};

use crate::results::ProcessFigures;

/// The process at one moment: what a leak or a descriptor left open shows up in.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Reading {
    /// Since the timeline's start.
    pub t_seconds: f64,
    /// `VmRSS`.
    pub rss_bytes: u64,
    /// Entries of `/proc/<pid>/fd`.
    pub open_fds: u64,
    /// Threads.
    pub threads: u64,
    /// User plus system CPU time so far, every thread.
    pub cpu_seconds: f64,
}

impl Reading {
    /// Reads `pid` now; `None` once it is gone.
    pub fn take(pid: u32, since: Instant) -> Option<Reading> {
        let sample = procfs::sample(pid).ok()?;
        let open_fds = procfs::open_descriptors(pid).ok()?;
        Some(Reading {
            t_seconds: since.elapsed().as_secs_f64(),
            rss_bytes: sample.status.rss_bytes,
            open_fds,
            threads: sample.status.threads,
            cpu_seconds: sample.user_cpu_seconds + sample.system_cpu_seconds,
        })
    }
}

/// A thread reading one process every interval until stopped, keeping every [`Reading`].
#[derive(Debug)]
pub struct Timeline {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<Vec<Reading>>,
}

impl Timeline {
    /// Reads `pid` now and every `interval` after, times counted from `since`. The readings
    /// are due at fixed multiples of the interval, so a slow read does not shift the rest.
    pub fn start(pid: u32, interval: Duration, since: Instant) -> Timeline {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::spawn(move || {
            let mut readings = Vec::new();
            let mut due = Instant::now();
            loop {
                readings.extend(Reading::take(pid, since));
                due += interval;
                match stopped.recv_timeout(due.saturating_duration_since(Instant::now())) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => return readings,
                }
            }
        });
        Timeline { stop, handle }
    }

    /// Stops and returns every reading; call it before the process is reaped.
    pub fn stop(self) -> Vec<Reading> {
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_default()
    }
}

/// Joins the two sources: memory and threads from the samples (and `ru_maxrss`), CPU and
/// context switches from `wait4` when the process was reaped, else the sampled CPU times
/// (and no context switches, which /proc counts for the main thread only).
pub fn figures(peaks: Peaks, usage: Option<Usage>) -> ProcessFigures {
    let u = usage.unwrap_or(Usage {
        user_cpu_seconds: peaks.user_cpu_seconds,
        system_cpu_seconds: peaks.system_cpu_seconds,
        ..Usage::default()
    });
    ProcessFigures {
        peak_rss_bytes: peaks.peak_rss_bytes.max(u.max_rss_bytes),
        idle_rss_bytes: peaks.idle_rss_bytes,
        peak_threads: peaks.peak_threads,
        user_cpu_seconds: u.user_cpu_seconds,
        system_cpu_seconds: u.system_cpu_seconds,
        voluntary_ctx_switches: u.voluntary_ctx_switches,
        involuntary_ctx_switches: u.involuntary_ctx_switches,
        samples: peaks.samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peaks() -> Peaks {
        Peaks {
            peak_rss_bytes: 8 << 20,
            idle_rss_bytes: 2 << 20,
            peak_threads: 9,
            user_cpu_seconds: 0.5,
            system_cpu_seconds: 0.25,
            samples: 4,
        }
    }

    #[test]
    fn a_reaped_process_takes_cpu_and_switches_from_wait4_and_the_larger_peak() {
        let usage = Usage {
            user_cpu_seconds: 1.5,
            system_cpu_seconds: 0.75,
            max_rss_bytes: 16 << 20,
            voluntary_ctx_switches: 100,
            involuntary_ctx_switches: 7,
        };
        let figures = figures(peaks(), Some(usage));
        assert_eq!(figures.peak_rss_bytes, 16 << 20);
        assert_eq!(figures.idle_rss_bytes, 2 << 20);
        assert_eq!(figures.peak_threads, 9);
        assert_eq!(
            (figures.user_cpu_seconds, figures.system_cpu_seconds),
            (1.5, 0.75)
        );
        assert_eq!(
            (
                figures.voluntary_ctx_switches,
                figures.involuntary_ctx_switches
            ),
            (100, 7)
        );
        assert_eq!(figures.samples, 4);
    }

    #[test]
    fn a_timeline_of_this_very_process_reads_memory_descriptors_and_threads() {
        let timeline = Timeline::start(std::process::id(), Duration::from_secs(60), Instant::now());
        let readings = timeline.stop();
        let first = readings.first().expect("the reading taken at the start");
        assert!(first.rss_bytes > 0, "{first:?}");
        assert!(
            first.open_fds >= 3,
            "stdin, stdout, stderr at least: {first:?}"
        );
        assert!(
            first.threads >= 2,
            "the test thread and the timeline's: {first:?}"
        );
    }

    #[test]
    fn a_process_that_was_not_reaped_falls_back_to_the_sampled_cpu_times() {
        let figures = figures(peaks(), None);
        assert_eq!(figures.peak_rss_bytes, 8 << 20);
        assert_eq!(
            (figures.user_cpu_seconds, figures.system_cpu_seconds),
            (0.5, 0.25)
        );
        assert_eq!(figures.voluntary_ctx_switches, 0);
    }
}
