//! Reading what a running process costs from `/proc`, once: resident memory and its peak,
//! threads and context switches from `/proc/<pid>/status`, CPU time from `/proc/<pid>/stat`,
//! open descriptors from `/proc/<pid>/fd`.
//!
//! Two cautions the numbers need: the context-switch counters of `status` are the main
//! thread's only (a reaped process's [`crate::Usage`] covers every thread), and a zombie has
//! no memory lines left. Counting descriptors lists a directory of one entry per socket, so
//! it is a separate call, not part of every periodic sample.

use std::fs;
use std::io;
use std::time::Duration;

/// The fields of `/proc/<pid>/status` the project reads.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Status {
    /// `VmRSS`: resident memory now.
    pub rss_bytes: u64,
    /// `VmHWM`: the kernel's own peak resident set, so a peak between samples is not missed.
    pub hwm_bytes: u64,
    /// `Threads`.
    pub threads: u64,
    /// `voluntary_ctxt_switches`, of the main thread only.
    pub voluntary_ctx_switches: u64,
    /// `nonvoluntary_ctxt_switches`, of the main thread only.
    pub involuntary_ctx_switches: u64,
}

/// One reading of a process's `status` and `stat`.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// What `status` says.
    pub status: Status,
    /// `utime` of `stat`, every thread included.
    pub user_cpu_seconds: f64,
    /// `stime` of `stat`, every thread included.
    pub system_cpu_seconds: f64,
}

impl Sample {
    /// User plus system CPU time so far.
    pub fn cpu_time(&self) -> Duration {
        Duration::from_secs_f64(self.user_cpu_seconds + self.system_cpu_seconds)
    }
}

/// Reads `status` and `stat` of `pid`.
///
/// # Errors
/// When either file cannot be read or lacks the fields (the error names the file).
pub fn sample(pid: u32) -> io::Result<Sample> {
    let status = read_status(pid)?;
    let (utime, stime) = read_cpu_ticks(pid)?;
    Ok(Sample {
        status,
        user_cpu_seconds: ticks_to_seconds(utime),
        system_cpu_seconds: ticks_to_seconds(stime),
    })
}

/// Reads `/proc/<pid>/status`.
///
/// # Errors
/// When it cannot be read or holds none of the fields.
pub fn read_status(pid: u32) -> io::Result<Status> {
    let path = format!("/proc/{pid}/status");
    let text = read(&path)?;
    parse_status(&text).ok_or_else(|| io::Error::other(format!("no fields to read in {path}")))
}

/// Reads `utime` and `stime`, in clock ticks, from `/proc/<pid>/stat`.
///
/// # Errors
/// When it cannot be read or parsed.
pub fn read_cpu_ticks(pid: u32) -> io::Result<(u64, u64)> {
    let path = format!("/proc/{pid}/stat");
    let text = read(&path)?;
    parse_stat_cpu_ticks(&text)
        .ok_or_else(|| io::Error::other(format!("cannot read cpu times in {path}: {text:?}")))
}

/// Counts the entries of `/proc/<pid>/fd`: the descriptors the process has open now.
///
/// # Errors
/// When the directory cannot be listed (another user's process, or one that has exited).
pub fn open_descriptors(pid: u32) -> io::Result<u64> {
    let path = format!("/proc/{pid}/fd");
    let entries = fs::read_dir(&path).map_err(|e| named(&path, e))?;
    let mut count = 0;
    for entry in entries {
        entry.map_err(|e| named(&path, e))?;
        count += 1;
    }
    Ok(count)
}

/// Reads the fields of [`Status`] from the text of `/proc/<pid>/status`; `None` if none of
/// them is there. A missing one stays 0 (a zombie has no memory lines).
pub fn parse_status(text: &str) -> Option<Status> {
    let mut status = Status::default();
    let mut found = false;
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let number = || value.split_whitespace().next()?.parse::<u64>().ok();
        let field = match key {
            "VmRSS" => number().map(|kib| status.rss_bytes = kib * 1024),
            "VmHWM" => number().map(|kib| status.hwm_bytes = kib * 1024),
            "Threads" => number().map(|n| status.threads = n),
            "voluntary_ctxt_switches" => number().map(|n| status.voluntary_ctx_switches = n),
            "nonvoluntary_ctxt_switches" => number().map(|n| status.involuntary_ctx_switches = n),
            _ => continue,
        };
        found |= field.is_some();
    }
    found.then_some(status)
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

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`), the unit of `stat`'s CPU times.
pub fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf has no preconditions; it returns -1 for an unknown name.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    u64::try_from(ticks).ok().filter(|&t| t > 0).unwrap_or(100)
}

/// Clock ticks as seconds.
pub fn ticks_to_seconds(ticks: u64) -> f64 {
    ticks as f64 / clock_ticks_per_second() as f64
}

fn read(path: &str) -> io::Result<String> {
    fs::read_to_string(path).map_err(|e| named(path, e))
}

fn named(path: &str, error: io::Error) -> io::Error {
    io::Error::new(error.kind(), format!("cannot read {path}: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = "Name:\tserver-mio\nState:\tS (sleeping)\nVmHWM:\t    5120 kB\n\
                          VmRSS:\t    4096 kB\nThreads:\t3\nvoluntary_ctxt_switches:\t7\n\
                          nonvoluntary_ctxt_switches:\t2\n";

    #[test]
    fn status_text_yields_memory_threads_and_context_switches() {
        let status = parse_status(STATUS).expect("fields present");
        assert_eq!(status.rss_bytes, 4096 * 1024);
        assert_eq!(status.hwm_bytes, 5120 * 1024);
        assert_eq!(status.threads, 3);
        assert_eq!(status.voluntary_ctx_switches, 7);
        assert_eq!(status.involuntary_ctx_switches, 2);
    }

    #[test]
    fn status_of_a_zombie_without_memory_lines_still_counts_threads() {
        let status = parse_status("Name:\tx\nThreads:\t1\n").expect("threads present");
        assert_eq!(status.threads, 1);
        assert_eq!(status.rss_bytes, 0);
        assert_eq!(parse_status("Name:\tx\n"), None);
    }

    #[test]
    fn stat_cpu_ticks_survive_a_command_name_with_spaces_and_parentheses() {
        let stat = "42 (weird) name)) S 1 42 42 0 -1 4194560 100 0 0 0 17 5 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu_ticks(stat), Some((17, 5)));
        assert_eq!(parse_stat_cpu_ticks("42 (short) S 1"), None);
    }

    #[test]
    fn this_very_process_can_be_sampled() -> io::Result<()> {
        let pid = std::process::id();
        let sample = sample(pid)?;
        assert!(sample.status.rss_bytes > 0);
        assert!(sample.status.hwm_bytes >= sample.status.rss_bytes);
        assert!(sample.status.threads >= 1);
        assert!(sample.user_cpu_seconds >= 0.0);
        // Other tests open descriptors concurrently; an exact count is checked on a child in
        // tests/process.rs.
        assert!(open_descriptors(pid)? >= 1);
        Ok(())
    }

    #[test]
    fn a_process_that_does_not_exist_is_named_in_the_error() {
        // pid_max is at most 2^22, so this PID never exists.
        let error = sample(1 << 30).expect_err("no such process");
        assert!(
            error.to_string().contains("/proc/1073741824/status"),
            "{error}"
        );
    }
}
