//! Reaping a child with `wait4`, which reports the resource usage of every thread the child
//! ever had, within a time limit.
//!
//! `/proc` can only say what a process costs while it runs, and its context-switch counters
//! are the main thread's alone; a thread-per-connection server's thousands of finished
//! threads are only counted by `wait4`'s `rusage`. Waiting uses a pidfd, which becomes
//! readable when the child exits, so nothing polls; on kernels without `pidfd_open` it falls
//! back to checking every few milliseconds.

use std::io;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

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

    /// User plus system CPU time.
    pub fn cpu_seconds(&self) -> f64 {
        self.user_cpu_seconds + self.system_cpu_seconds
    }
}

/// Reaps child `pid` if it exits within `timeout`, returning its exit status and resource
/// usage; `Ok(None)` when it is still running then.
///
/// # Errors
/// When `pid` is not an unreaped child of this process.
pub fn reap_within(pid: u32, timeout: Duration) -> io::Result<Option<(ExitStatus, Usage)>> {
    let raw_pid = libc::pid_t::try_from(pid)
        .map_err(|_| io::Error::other(format!("pid {pid} is out of range")))?;
    let deadline = Instant::now() + timeout;
    let exit_signal = ExitSignal::open(raw_pid);
    loop {
        if let Some(reaped) = try_reap(raw_pid)? {
            return Ok(Some(reaped));
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        exit_signal.wait(left);
    }
}

/// One `wait4(WNOHANG)`.
fn try_reap(pid: libc::pid_t) -> io::Result<Option<(ExitStatus, Usage)>> {
    let mut status = 0;
    // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: both pointers are to live locals.
    let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
    if rc == pid {
        return Ok(Some((
            ExitStatus::from_raw(status),
            Usage::from_rusage(&usage),
        )));
    }
    if rc < 0 {
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(io::Error::new(
                err.kind(),
                format!("cannot wait for process {pid}: {err}"),
            ));
        }
    }
    Ok(None)
}

/// What a waiter blocks on until the child may have exited: its pidfd when the kernel has
/// them, else a short pause.
struct ExitSignal {
    pidfd: Option<libc::c_int>,
}

impl ExitSignal {
    fn open(pid: libc::pid_t) -> ExitSignal {
        // SAFETY: pidfd_open takes a pid and flags and returns a new descriptor or -1.
        let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
        ExitSignal {
            pidfd: libc::c_int::try_from(fd).ok().filter(|&fd| fd >= 0),
        }
    }

    /// Blocks until the child exits or `limit` passes (a spurious early return only costs
    /// the caller one more `wait4`).
    fn wait(&self, limit: Duration) {
        let Some(fd) = self.pidfd else {
            std::thread::sleep(limit.min(Duration::from_millis(5)));
            return;
        };
        let mut poll = libc::pollfd {
            fd,
            events: libc::POLLIN,
            revents: 0,
        };
        let millis = libc::c_int::try_from(limit.as_millis().max(1)).unwrap_or(libc::c_int::MAX);
        // SAFETY: one pollfd on the stack, count 1.
        unsafe { libc::poll(&mut poll, 1, millis) };
    }
}

impl Drop for ExitSignal {
    fn drop(&mut self) {
        if let Some(fd) = self.pidfd {
            // SAFETY: fd is the pidfd this value opened and nobody else closes.
            unsafe { libc::close(fd) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_that_exits_is_reaped_with_its_status_and_usage() -> io::Result<()> {
        let child = std::process::Command::new("sh")
            .args(["-c", "exit 3"])
            .spawn()?;
        let (status, usage) =
            reap_within(child.id(), Duration::from_secs(30))?.expect("it exits at once");
        assert_eq!(status.code(), Some(3));
        assert!(usage.max_rss_bytes > 0);
        Ok(())
    }

    #[test]
    fn a_child_still_running_is_not_reaped_and_a_stranger_is_an_error() -> io::Result<()> {
        let mut child = std::process::Command::new("sleep").arg("30").spawn()?;
        assert_eq!(reap_within(child.id(), Duration::from_millis(50))?, None);
        child.kill()?;
        child.wait()?;
        let error = reap_within(child.id(), Duration::ZERO).expect_err("already reaped");
        assert!(
            error
                .to_string()
                .contains(&format!("process {}", child.id())),
            "{error}"
        );
        Ok(())
    }
}
