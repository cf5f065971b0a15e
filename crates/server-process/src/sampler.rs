//! Sampling one process's `/proc` entry periodically on a thread, keeping what a study
//! reports: the idle baseline, the peaks of memory and threads, and the last CPU times.

use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::procfs;

/// How often [`Sampler::start`] reads `/proc`. Short enough to see a peak of threads that
/// lives for one 100 ms delay, long enough to cost the measured server nothing noticeable.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// What the sampler saw over a process's life.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Peaks {
    /// Largest `VmRSS` or `VmHWM` seen.
    pub peak_rss_bytes: u64,
    /// `VmRSS` at the first sample: the process before any load.
    pub idle_rss_bytes: u64,
    /// Most threads seen.
    pub peak_threads: u64,
    /// Last user CPU time seen (every thread); a fallback for when the process cannot be
    /// reaped and `wait4` has nothing to say.
    pub user_cpu_seconds: f64,
    /// Last system CPU time seen (every thread); the same fallback.
    pub system_cpu_seconds: f64,
    /// Samples taken.
    pub samples: u64,
}

impl Peaks {
    /// Adds one reading; either half may be missing (a zombie, a file that vanished).
    pub fn record(&mut self, status: Option<procfs::Status>, cpu_ticks: Option<(u64, u64)>) {
        if let Some(s) = status {
            if self.samples == 0 {
                self.idle_rss_bytes = s.rss_bytes;
            }
            self.peak_rss_bytes = self.peak_rss_bytes.max(s.rss_bytes).max(s.hwm_bytes);
            self.peak_threads = self.peak_threads.max(s.threads);
            self.samples += 1;
        }
        if let Some((utime, stime)) = cpu_ticks {
            self.user_cpu_seconds = procfs::ticks_to_seconds(utime);
            self.system_cpu_seconds = procfs::ticks_to_seconds(stime);
        }
    }

    /// Reads `pid` once and records it; a process that is gone records nothing.
    pub fn sample(&mut self, pid: u32) {
        self.record(
            procfs::read_status(pid).ok(),
            procfs::read_cpu_ticks(pid).ok(),
        );
    }
}

/// A thread sampling one process until stopped.
#[derive(Debug)]
pub struct Sampler {
    stop: mpsc::Sender<()>,
    handle: JoinHandle<Peaks>,
}

impl Sampler {
    /// Starts sampling `pid` now (the first sample is the idle baseline) and every
    /// [`SAMPLE_INTERVAL`] after.
    pub fn start(pid: u32) -> Sampler {
        Sampler::every(pid, SAMPLE_INTERVAL)
    }

    /// Starts sampling `pid` now and every `interval` after.
    pub fn every(pid: u32, interval: Duration) -> Sampler {
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::spawn(move || {
            let mut peaks = Peaks::default();
            loop {
                peaks.sample(pid);
                match stopped.recv_timeout(interval) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        peaks.sample(pid);
                        return peaks;
                    }
                }
            }
        });
        Sampler { stop, handle }
    }

    /// Takes one last sample and returns the peaks. Call it before the process is reaped:
    /// afterwards `/proc` has nothing left to read.
    pub fn stop(self) -> Peaks {
        // A send error means the thread already ended, which join reports below.
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peaks_keep_the_first_rss_as_idle_and_the_largest_as_peak() {
        let mut peaks = Peaks::default();
        let at = |rss, hwm, threads| {
            Some(procfs::Status {
                rss_bytes: rss,
                hwm_bytes: hwm,
                threads,
                ..procfs::Status::default()
            })
        };
        let ticks = procfs::clock_ticks_per_second();
        peaks.record(at(100, 100, 1), Some((ticks, ticks)));
        peaks.record(at(900, 1000, 50), Some((5 * ticks, 2 * ticks)));
        peaks.record(at(200, 1000, 2), None);
        assert_eq!(peaks.idle_rss_bytes, 100);
        assert_eq!(peaks.peak_rss_bytes, 1000);
        assert_eq!(peaks.peak_threads, 50);
        assert_eq!(
            (peaks.user_cpu_seconds, peaks.system_cpu_seconds),
            (5.0, 2.0)
        );
        assert_eq!(peaks.samples, 3);
    }

    #[test]
    fn the_sampler_sees_this_very_process() {
        let peaks = Sampler::start(std::process::id()).stop();
        assert!(peaks.samples >= 2, "at least the first and last samples");
        assert!(peaks.peak_rss_bytes > 0);
        assert!(peaks.peak_threads >= 2, "the test thread and the sampler");
    }
}
