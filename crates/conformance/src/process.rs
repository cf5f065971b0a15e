//! Running a server binary as a child process: reading its `listening on` line, limiting its
//! descriptors, measuring its CPU time, signalling it, and collecting its stderr.

use std::io::{self, BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStdout, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// A server binary running as a child; killed (by its PID) when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    child: Child,
    addr: SocketAddr,
    stderr: Option<JoinHandle<String>>,
}

impl ServerProcess {
    /// Starts `binary` with `args` plus `--port 0`, optionally with its open-file limit (soft
    /// and hard) lowered to `nofile`, and waits for its `listening on` line.
    ///
    /// # Errors
    /// When it cannot be started or exits (or says something else) before listening.
    pub fn spawn(binary: &str, args: &[&str], nofile: Option<u64>) -> io::Result<ServerProcess> {
        let mut command = Command::new(binary);
        command
            .args(["--port", "0"])
            .args(args)
            // The cases expect the servers' own log levels.
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(limit) = nofile {
            limit_descriptors(&mut command, limit);
        }
        let mut child = command.spawn()?;
        let stderr = child.stderr.take().map(|mut pipe| {
            std::thread::spawn(move || {
                let mut text = String::new();
                let _ = pipe.read_to_string(&mut text);
                text
            })
        });
        let stdout = child
            .stdout
            .take()
            .ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let mut process = ServerProcess {
            child,
            addr: SocketAddr::from(([0, 0, 0, 0], 0)),
            stderr,
        };
        process.addr = read_listening_line(stdout)?;
        Ok(process)
    }

    /// The address from the `listening on` line.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the child.
    ///
    /// # Errors
    /// When the signal cannot be delivered.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        let pid = libc::pid_t::try_from(self.pid()).map_err(io::Error::other)?;
        // SAFETY: kill(2) on our own child's PID; it touches no memory.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }

    /// User plus system CPU time the child has used so far (from `/proc/<pid>/stat`).
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()))?;
        let after_name = stat
            .rsplit_once(')')
            .map(|(_, rest)| rest)
            .unwrap_or_default();
        let fields: Vec<&str> = after_name.split_whitespace().collect();
        let ticks = |index: usize| -> io::Result<u64> {
            fields
                .get(index)
                .and_then(|field| field.parse().ok())
                .ok_or_else(|| io::Error::other(format!("cannot parse /proc stat {stat:?}")))
        };
        // Fields 14 and 15 of stat(5), counted from the state (field 3) at index 0.
        let total = ticks(11)? + ticks(12)?;
        // SAFETY: sysconf has no memory-safety preconditions.
        let per_second = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
        Ok(Duration::from_millis(total * 1000 / per_second.max(1)))
    }

    /// Resident memory of the child now (`VmRSS` in `/proc/<pid>/status`).
    ///
    /// # Errors
    /// When the file cannot be read or has no such field.
    pub fn resident_bytes(&self) -> io::Result<u64> {
        Ok(self.status_field("VmRSS")? * 1024)
    }

    /// Threads of the child now (`Threads` in `/proc/<pid>/status`).
    ///
    /// # Errors
    /// When the file cannot be read or has no such field.
    pub fn threads(&self) -> io::Result<u64> {
        self.status_field("Threads")
    }

    /// The number at the start of a `/proc/<pid>/status` field (kB for sizes).
    fn status_field(&self, name: &str) -> io::Result<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()))?;
        status
            .lines()
            .find_map(|line| line.strip_prefix(name)?.strip_prefix(':'))
            .and_then(|value| value.split_whitespace().next()?.parse().ok())
            .ok_or_else(|| io::Error::other(format!("no {name} in /proc/{}/status", self.pid())))
    }

    /// Waits (up to `patience`) for the child to exit; returns its status and all it wrote
    /// to stderr.
    ///
    /// # Errors
    /// When it is still running after `patience` (it is then killed).
    pub fn wait(mut self, patience: Duration) -> io::Result<(ExitStatus, String)> {
        let deadline = Instant::now() + patience;
        let status = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if Instant::now() > deadline {
                return Err(io::Error::other(format!(
                    "server still running {patience:?} after being asked to stop"
                )));
            }
            // Polling the exit is the portable way; there is no event to wait on here.
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = self
            .stderr
            .take()
            .and_then(|reader| reader.join().ok())
            .unwrap_or_default();
        Ok((status, stderr))
    }
}

/// Whether the exit status is a clean `exit(0)`, as opposed to a signal or an error code.
pub fn exited_cleanly(status: ExitStatus) -> bool {
    status.code() == Some(0) && status.signal().is_none()
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Lowers the child's soft and hard open-file limits (a server raises soft to hard at start,
/// so both must be low).
fn limit_descriptors(command: &mut Command, limit: u64) {
    let rlimit = libc::rlimit {
        rlim_cur: limit,
        rlim_max: limit,
    };
    // SAFETY: the closure runs in the forked child before exec and only calls setrlimit,
    // which is async-signal-safe, on a value copied into the closure.
    unsafe {
        command.pre_exec(move || {
            if libc::setrlimit(libc::RLIMIT_NOFILE, &rlimit) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

fn read_listening_line(stdout: ChildStdout) -> io::Result<SocketAddr> {
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let addr = line
        .trim_end()
        .strip_prefix("listening on ")
        .ok_or_else(|| io::Error::other(format!("expected `listening on <addr>`, got {line:?}")))?;
    addr.parse()
        .map_err(|e| io::Error::other(format!("bad address in {line:?}: {e}")))
}
