//! The conformance cases' view of a server binary run as a child: the
//! [`server_process`] harness with the cases' conventions (port 0, the servers' own log
//! levels, a generous start limit) and `io::Result` throughout, as the cases return.

use std::io;
use std::net::SocketAddr;
use std::process::ExitStatus;
use std::time::Duration;

use server_process::Launch;
pub use server_process::exited_cleanly;

/// How long a binary may take to print its `listening on` line: far beyond a normal start,
/// so a loaded machine only makes a case slower.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// A server binary running as a child; killed (by its PID) and reaped when dropped.
#[derive(Debug)]
pub struct ServerProcess {
    inner: server_process::ServerProcess,
}

impl ServerProcess {
    /// Starts `binary` with `--port 0` plus `args`, optionally with its open-file limit (soft
    /// and hard) lowered to `nofile`, and waits for its `listening on` line.
    ///
    /// # Errors
    /// When it cannot be started or exits (or says something else) before listening; the
    /// message names the binary and ends with its stderr.
    pub fn spawn(binary: &str, args: &[&str], nofile: Option<u64>) -> io::Result<ServerProcess> {
        let launch = Launch::new(binary)
            .args(["--port", "0"])
            .args(args.iter().copied())
            // The cases expect the servers' own log levels.
            .env_remove("RUST_LOG")
            // ... and the allocator settings the server chooses itself.
            .env_remove("GLIBC_TUNABLES")
            .nofile(nofile);
        let inner = server_process::ServerProcess::start(&launch, START_PATIENCE)?;
        Ok(ServerProcess { inner })
    }

    /// The address from the `listening on` line.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr()
    }

    /// The child's PID.
    pub fn pid(&self) -> u32 {
        self.inner.pid()
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) to the child.
    ///
    /// # Errors
    /// When the signal cannot be delivered.
    pub fn signal(&self, signal: i32) -> io::Result<()> {
        Ok(self.inner.signal(signal)?)
    }

    /// User plus system CPU time the child has used so far (from `/proc/<pid>/stat`).
    ///
    /// # Errors
    /// When the file cannot be read or parsed.
    pub fn cpu_time(&self) -> io::Result<Duration> {
        Ok(self.inner.sample()?.cpu_time())
    }

    /// Resident memory of the child now (`VmRSS` in `/proc/<pid>/status`).
    ///
    /// # Errors
    /// When the file cannot be read or has no such field.
    pub fn resident_bytes(&self) -> io::Result<u64> {
        Ok(server_process::procfs::read_status(self.pid())?.rss_bytes)
    }

    /// Threads of the child now (`Threads` in `/proc/<pid>/status`).
    ///
    /// # Errors
    /// When the file cannot be read or has no such field.
    pub fn threads(&self) -> io::Result<u64> {
        Ok(server_process::procfs::read_status(self.pid())?.threads)
    }

    /// Waits (up to `patience`) for the child to exit; returns its status and all it wrote
    /// to stderr.
    ///
    /// # Errors
    /// When it is still running after `patience` (it is then killed).
    pub fn wait(self, patience: Duration) -> io::Result<(ExitStatus, String)> {
        let exit = self.inner.wait(patience)?;
        Ok((exit.status, exit.stderr))
    }
}
