//! What a server process costs: its memory and threads sampled from /proc while it runs, and
//! its CPU time and context switches from `wait4` when it is reaped.
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

use std::fs;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use crate::results::ProcessFigures;

/// How often the sampler reads /proc. Short enough to see a peak of threads that lives for
/// one 100 ms delay, long enough to cost the measured server nothing noticeable.
pub const SAMPLE_INTERVAL: Duration = Duration::from_millis(50);

/// One reading of `/proc/<pid>/status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatusSample {
    /// `VmRSS`.
    pub rss_bytes: u64,
    /// `VmHWM`: the kernel's own peak resident set.
    pub hwm_bytes: u64,
    /// `Threads`.
    pub threads: u64,
}

/// Reads the fields we need from the text of `/proc/<pid>/status`; `None` if none is there
/// (e.g. a zombie, whose memory lines are gone).
pub fn parse_status(text: &str) -> Option<StatusSample> {
    let mut sample = StatusSample::default();
    let mut found = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || value.split_whitespace().next()?.parse::<u64>().ok();
        match key {
            "VmRSS" => sample.rss_bytes = number()? * 1024,
            "VmHWM" => sample.hwm_bytes = number()? * 1024,
            "Threads" => sample.threads = number()?,
            _ => continue,
        }
        found = true;
    }
    found.then_some(sample)
}

/// Reads `utime` and `stime` (clock ticks) from the text of `/proc/<pid>/stat`.
///
/// The command name in field 2 may contain spaces and parentheses, so fields are counted
/// from the last `)`.
pub fn parse_stat_cpu_ticks(text: &str) -> Option<(u64, u64)> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace();
    // After ")": state is field 3; utime and stime are fields 14 and 15.
    let utime = fields.nth(11)?.parse().ok()?;
    let stime = fields.next()?.parse().ok()?;
    Some((utime, stime))
}

/// What the sampler saw over a process's life.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Peaks {
    /// Largest `VmRSS` or `VmHWM` seen.
    pub peak_rss_bytes: u64,
    /// `VmRSS` at the first sample.
    pub idle_rss_bytes: u64,
    /// Most threads seen.
    pub peak_threads: u64,
    /// Last `utime` seen, in clock ticks.
    pub utime_ticks: u64,
    /// Last `stime` seen, in clock ticks.
    pub stime_ticks: u64,
    /// Samples taken.
    pub samples: u64,
}

impl Peaks {
    fn record(&mut self, status: Option<StatusSample>, cpu: Option<(u64, u64)>) {
        if let Some(s) = status {
            if self.samples == 0 {
                self.idle_rss_bytes = s.rss_bytes;
            }
            self.peak_rss_bytes = self.peak_rss_bytes.max(s.rss_bytes).max(s.hwm_bytes);
            self.peak_threads = self.peak_threads.max(s.threads);
            self.samples += 1;
        }
        if let Some((utime, stime)) = cpu {
            self.utime_ticks = utime;
            self.stime_ticks = stime;
        }
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
        let (stop, stopped) = mpsc::channel::<()>();
        let handle = thread::spawn(move || {
            let mut peaks = Peaks::default();
            loop {
                sample_once(pid, &mut peaks);
                match stopped.recv_timeout(SAMPLE_INTERVAL) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    Ok(()) | Err(RecvTimeoutError::Disconnected) => {
                        sample_once(pid, &mut peaks);
                        return peaks;
                    }
                }
            }
        });
        Sampler { stop, handle }
    }

    /// Takes one last sample and returns the peaks. Call it before the process is reaped:
    /// afterwards /proc has nothing left to read.
    pub fn stop(self) -> Peaks {
        // A send error means the thread already ended, which join reports below.
        let _ = self.stop.send(());
        self.handle.join().unwrap_or_default()
    }
}

fn sample_once(pid: u32, peaks: &mut Peaks) {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|t| parse_status(&t));
    let cpu = fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|t| parse_stat_cpu_ticks(&t));
    peaks.record(status, cpu);
}

/// Resource usage of a reaped process, every thread included.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Usage {
    /// `ru_utime`.
    pub user_cpu_seconds: f64,
    /// `ru_stime`.
    pub system_cpu_seconds: f64,
    /// `ru_maxrss`, which Linux reports in KiB.
    pub max_rss_bytes: u64,
    /// `ru_nvcsw`.
    pub voluntary_ctx_switches: u64,
    /// `ru_nivcsw`.
    pub involuntary_ctx_switches: u64,
}

impl Usage {
    /// Converts the `rusage` filled in by `wait4`.
    pub fn from_rusage(usage: &libc::rusage) -> Usage {
        let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
        let count = |c: libc::c_long| u64::try_from(c).unwrap_or(0);
        Usage {
            user_cpu_seconds: seconds(usage.ru_utime),
            system_cpu_seconds: seconds(usage.ru_stime),
            max_rss_bytes: count(usage.ru_maxrss) * 1024,
            voluntary_ctx_switches: count(usage.ru_nvcsw),
            involuntary_ctx_switches: count(usage.ru_nivcsw),
        }
    }
}

/// Joins the two sources: memory and threads from the samples (and `ru_maxrss`), CPU and
/// context switches from `wait4` when the process was reaped, else the sampled CPU ticks.
pub fn figures(peaks: Peaks, usage: Option<Usage>) -> ProcessFigures {
    let ticks_per_second = clock_ticks_per_second();
    let u = usage.unwrap_or(Usage {
        user_cpu_seconds: peaks.utime_ticks as f64 / ticks_per_second,
        system_cpu_seconds: peaks.stime_ticks as f64 / ticks_per_second,
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

fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as f64 } else { 100.0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tserver-mio\nState:\tS (sleeping)\nVmHWM:\t    5120 kB\n\
                          VmRSS:\t    4096 kB\nThreads:\t3\nvoluntary_ctxt_switches:\t7\n";

    #[test]
    fn status_text_yields_rss_high_water_mark_and_threads() {
        let sample = parse_status(STATUS).expect("fields present");
        assert_eq!(sample.rss_bytes, 4096 * 1024);
        assert_eq!(sample.hwm_bytes, 5120 * 1024);
        assert_eq!(sample.threads, 3);
    }

    #[test]
    fn status_of_a_zombie_without_memory_lines_still_counts_threads() {
        let sample = parse_status("Name:\tx\nThreads:\t1\n").expect("threads present");
        assert_eq!(sample.threads, 1);
        assert_eq!(sample.rss_bytes, 0);
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn stat_cpu_ticks_survive_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (weird) name)) S 1 42 42 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some((17, 5)));
    }

    #[test]
    fn peaks_keep_the_first_rss_as_idle_and_the_largest_as_peak() {
        let mut peaks = Peaks::default();
        let at = |rss, hwm, threads| {
            Some(StatusSample {
                rss_bytes: rss,
                hwm_bytes: hwm,
                threads,
            })
        };
        peaks.record(at(100, 100, 1), Some((1, 1)));
        peaks.record(at(900, 1000, 50), Some((5, 2)));
        peaks.record(at(200, 1000, 2), None);
        assert_eq!(peaks.idle_rss_bytes, 100);
        assert_eq!(peaks.peak_rss_bytes, 1000);
        assert_eq!(peaks.peak_threads, 50);
        assert_eq!((peaks.utime_ticks, peaks.stime_ticks), (5, 2));
    }

    #[test]
    fn sampler_sees_this_very_process() {
        let sampler = Sampler::start(std::process::id());
        let peaks = sampler.stop();
        assert!(peaks.samples >= 2, "at least the first and last samples");
        assert!(peaks.peak_rss_bytes > 0);
        assert!(peaks.peak_threads >= 2, "the test thread and the sampler");
    }
}
