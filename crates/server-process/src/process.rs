//! One server process's life: start it, wait until it is ready, signal it by PID, and reap
//! it (with patience, then SIGKILL) with its exit status, resource usage and stderr.
//!
//! A [`ServerProcess`] that is dropped before it is reaped is killed and reaped, so an error
//! half-way through a test or a study leaves no process behind. The child is only ever
//! reaped through [`crate::reap_within`] (never `Child::wait`), and once reaped its PID is
//! never signalled again: the kernel may have given it to another process by then.

use std::io::{self, BufRead, BufReader};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, ChildStdout, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use crate::capture::Capture;
use crate::launch::{Launch, Ready};
use crate::listening::parse_listening_line;
use crate::procfs::{self, Sample};
use crate::reap::{Usage, reap_within};

/// How many stderr lines an error message quotes.
const TAIL_LINES: usize = 20;

/// Exit status of a server that cannot run on this machine and says why on stderr in a line
/// `skipped: <reason>` (server-uring without io_uring, the uvloop baseline without uvloop):
/// the project's convention, so that a study shows the row as skipped instead of failed.
pub const EXIT_SKIPPED: i32 = 3;

/// The start of the stderr line that gives a skipping server's reason.
const SKIPPED_PREFIX: &str = "skipped: ";

/// How long a SIGKILLed process, and then its stderr pipe, may take to be gone.
const KILL_PATIENCE: Duration = Duration::from_secs(10);

/// What can go wrong with a server process; every message names the server.
///
/// A message already ends with its cause (the `io::Error`), so none is also returned as
/// [`std::error::Error::source`]: a chain printer such as anyhow's `{:#}` would say it twice.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The program could not be started at all.
    #[error("cannot start server {name}: `{command}`: {cause}")]
    Spawn {
        /// The server's name.
        name: String,
        /// Its command line.
        command: String,
        /// Why.
        cause: io::Error,
    },
    /// It exited, printed something else, or said nothing in time; it has been killed and
    /// reaped.
    #[error(
        "server {name} did not become ready within {timeout:?}: {reason}\n`{command}`\n{stderr_tail}"
    )]
    NotReady {
        /// The server's name.
        name: String,
        /// Its command line.
        command: String,
        /// How long it was given.
        timeout: Duration,
        /// What happened instead.
        reason: String,
        /// The end of its stderr, formatted for reading.
        stderr_tail: String,
    },
    /// It exited at start with [`EXIT_SKIPPED`] and said why in a `skipped: <reason>` line:
    /// not a failure of the server but a fact of this machine; it has been reaped.
    #[error("server {name} cannot run here: {reason}")]
    Skipped {
        /// The server's name.
        name: String,
        /// Its reason, after `skipped: `.
        reason: String,
    },
    /// A signal could not be delivered.
    #[error("cannot send signal {signal} to server {name} (pid {pid}): {cause}")]
    Signal {
        /// The server's name.
        name: String,
        /// Its PID.
        pid: u32,
        /// The signal.
        signal: i32,
        /// Why.
        cause: io::Error,
    },
    /// Waiting for it failed (it was not our child any more).
    #[error("cannot reap server {name} (pid {pid}): {cause}")]
    Reap {
        /// The server's name.
        name: String,
        /// Its PID.
        pid: u32,
        /// Why.
        cause: io::Error,
    },
    /// It was still running when its patience ran out; it has been killed and reaped.
    #[error(
        "server {name} (pid {pid}) was still running {patience:?} after being asked to stop\n{stderr_tail}"
    )]
    StillRunning {
        /// The server's name.
        name: String,
        /// Its PID.
        pid: u32,
        /// How long it was given.
        patience: Duration,
        /// The end of its stderr, formatted for reading.
        stderr_tail: String,
    },
    /// It could not be reaped even after SIGKILL.
    #[error("server {name} (pid {pid}) survived SIGKILL")]
    Unkillable {
        /// The server's name.
        name: String,
        /// Its PID.
        pid: u32,
    },
}

impl Error {
    /// Why the server cannot run on this machine ([`Error::Skipped`]); `None` for every
    /// other error.
    pub fn skipped(&self) -> Option<&str> {
        match self {
            Error::Skipped { reason, .. } => Some(reason),
            _ => None,
        }
    }
}

impl From<Error> for io::Error {
    fn from(error: Error) -> io::Error {
        let kind = match &error {
            Error::Spawn { cause, .. }
            | Error::Signal { cause, .. }
            | Error::Reap { cause, .. } => cause.kind(),
            Error::NotReady { .. }
            | Error::Skipped { .. }
            | Error::StillRunning { .. }
            | Error::Unkillable { .. } => io::ErrorKind::Other,
        };
        io::Error::new(kind, error)
    }
}

/// How a reaped server ended.
#[derive(Debug, Clone)]
pub struct Exit {
    /// Its exit status.
    pub status: ExitStatus,
    /// Whether the harness had to SIGKILL it because it outlived its patience.
    pub killed: bool,
    /// From the stop request (the signal, or the call to [`ServerProcess::wait`]) until it
    /// was reaped.
    pub stop_seconds: f64,
    /// Resource usage of every thread it ever had.
    pub usage: Usage,
    /// All it wrote to stderr (the newest [`crate::KEEP_BYTES`] of it).
    pub stderr: String,
}

impl Exit {
    /// A clean `exit(0)` within its patience.
    pub fn clean(&self) -> bool {
        !self.killed && exited_cleanly(self.status)
    }

    /// Its exit code, if it exited rather than being killed by a signal.
    pub fn code(&self) -> Option<i32> {
        self.status.code()
    }

    /// The signal that killed it, if one did.
    pub fn signal(&self) -> Option<i32> {
        self.status.signal()
    }

    /// The last line of its stderr (a server's summary line), if any.
    pub fn last_stderr_line(&self) -> Option<&str> {
        self.stderr.lines().next_back()
    }
}

/// Whether the exit status is a clean `exit(0)`, as opposed to a signal or an error code.
pub fn exited_cleanly(status: ExitStatus) -> bool {
    status.code() == Some(0) && status.signal().is_none()
}

/// A running server process.
#[derive(Debug)]
pub struct ServerProcess {
    name: String,
    child: Child,
    addr: SocketAddr,
    stderr: Capture,
    reaped: bool,
    status: Option<ExitStatus>,
}

impl ServerProcess {
    /// Starts `launch` (stdin empty, stdout and stderr piped) and waits at most `timeout`
    /// for it to be ready.
    ///
    /// # Errors
    /// When the program cannot be started, exits, closes its stdout, prints something other
    /// than the listening line, or is not ready in time. The message names the server and
    /// ends with its stderr tail; the process has been killed and reaped by then.
    pub fn start(launch: &Launch, timeout: Duration) -> Result<ServerProcess, Error> {
        let name = launch.display_name();
        let spawn_error = |cause| Error::Spawn {
            name: name.clone(),
            command: launch.command_line(),
            cause,
        };
        let mut child = launch
            .command()
            .and_then(|mut command| {
                command
                    .stdin(Stdio::null())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
            })
            .map_err(spawn_error)?;
        let (Some(stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            unreachable!("both pipes were asked for");
        };
        let first_line = forward_first_line(stdout);
        let mut server = ServerProcess {
            name,
            child,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            stderr: Capture::start(stderr),
            reaped: false,
            status: None,
        };
        let ready = match &launch.ready {
            Ready::ListeningLine => wait_for_listening_line(&first_line, timeout),
            Ready::Connect(addr) => server.wait_for_connect(*addr, timeout),
        };
        match ready {
            Ok(addr) => {
                server.addr = addr;
                Ok(server)
            }
            Err(reason) => {
                server.kill_and_reap();
                if let Some(skipped) = server.skipped_reason() {
                    return Err(Error::Skipped {
                        name: server.name.clone(),
                        reason: skipped,
                    });
                }
                Err(Error::NotReady {
                    name: server.name.clone(),
                    command: launch.command_line(),
                    timeout,
                    reason,
                    stderr_tail: server.stderr_tail_text(),
                })
            }
        }
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its name in messages.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its stderr so far.
    pub fn stderr(&self) -> &Capture {
        &self.stderr
    }

    /// Its last stderr lines, formatted for an error message.
    pub fn stderr_tail_text(&self) -> String {
        let lines = self.stderr.tail(TAIL_LINES);
        if lines.is_empty() {
            return "its stderr was empty".to_owned();
        }
        format!("its stderr ended with:\n  {}", lines.join("\n  "))
    }

    /// Reads its `/proc` entry once (memory, threads, CPU time).
    ///
    /// # Errors
    /// When `/proc/<pid>` cannot be read (the error names the file).
    pub fn sample(&self) -> io::Result<Sample> {
        procfs::sample(self.pid())
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`).
    ///
    /// # Errors
    /// When it cannot be delivered, or the process was already reaped.
    pub fn signal(&self, signal: i32) -> Result<(), Error> {
        let error = |cause| Error::Signal {
            name: self.name.clone(),
            pid: self.pid(),
            signal,
            cause,
        };
        if self.reaped {
            return Err(error(io::Error::from(io::ErrorKind::NotFound)));
        }
        let pid = libc::pid_t::try_from(self.pid()).map_err(|e| error(io::Error::other(e)))?;
        // SAFETY: kill(2) on our own unreaped child's PID; it touches no memory.
        if unsafe { libc::kill(pid, signal) } != 0 {
            return Err(error(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Sends SIGTERM and reaps it, waiting at most `patience` before SIGKILL; a killed
    /// server is an [`Exit`] with `killed` set, not an error.
    ///
    /// # Errors
    /// When the signal cannot be sent or it cannot be reaped even after SIGKILL.
    pub fn stop(mut self, patience: Duration) -> Result<Exit, Error> {
        let asked = Instant::now();
        self.signal(libc::SIGTERM)?;
        match self.reap(patience)? {
            Some(reaped) => Ok(self.exit(reaped, false, asked)),
            None => {
                let reaped = self.kill_and_reap_now()?;
                Ok(self.exit(reaped, true, asked))
            }
        }
    }

    /// Waits at most `patience` for it to exit by itself (after a signal sent with
    /// [`ServerProcess::signal`], or a close of its input) and reaps it.
    ///
    /// # Errors
    /// When it is still running after `patience` (it is then killed and reaped), or cannot
    /// be reaped.
    pub fn wait(mut self, patience: Duration) -> Result<Exit, Error> {
        let asked = Instant::now();
        match self.reap(patience)? {
            Some(reaped) => Ok(self.exit(reaped, false, asked)),
            None => {
                self.kill_and_reap_now()?;
                Err(Error::StillRunning {
                    name: self.name.clone(),
                    pid: self.pid(),
                    patience,
                    stderr_tail: self.stderr_tail_text(),
                })
            }
        }
    }

    fn reap(&mut self, patience: Duration) -> Result<Option<(ExitStatus, Usage)>, Error> {
        let reaped = reap_within(self.pid(), patience).map_err(|cause| Error::Reap {
            name: self.name.clone(),
            pid: self.pid(),
            cause,
        })?;
        self.reaped = reaped.is_some();
        self.status = reaped.map(|(status, _)| status).or(self.status);
        Ok(reaped)
    }

    /// The reason of a reaped server that exited with [`EXIT_SKIPPED`]: its last stderr line
    /// that starts `skipped: `.
    fn skipped_reason(&self) -> Option<String> {
        let status = self.status?;
        if status.code() != Some(EXIT_SKIPPED) {
            return None;
        }
        let lines = self.stderr.tail(TAIL_LINES);
        let line = lines.iter().rev().find(|l| l.starts_with(SKIPPED_PREFIX))?;
        Some(line[SKIPPED_PREFIX.len()..].trim().to_owned())
    }

    fn kill_and_reap_now(&mut self) -> Result<(ExitStatus, Usage), Error> {
        // A failure means it exited meanwhile; the reap below tells.
        let _ = self.signal(libc::SIGKILL);
        self.reap(KILL_PATIENCE)?.ok_or_else(|| Error::Unkillable {
            name: self.name.clone(),
            pid: self.pid(),
        })
    }

    /// The record of a reaped process; its stderr is complete once the pipe has ended,
    /// which follows the exit at once unless it left a child holding the pipe.
    fn exit(&self, (status, usage): (ExitStatus, Usage), killed: bool, asked: Instant) -> Exit {
        let stop_seconds = asked.elapsed().as_secs_f64();
        self.stderr.wait_for_end(KILL_PATIENCE);
        Exit {
            status,
            killed,
            stop_seconds,
            usage,
            stderr: self.stderr.text(),
        }
    }

    fn kill_and_reap(&mut self) {
        if !self.reaped {
            let _ = self.kill_and_reap_now();
        }
        self.stderr.wait_for_end(Duration::from_secs(1));
    }

    /// Polls with connects until one succeeds: for external servers that print nothing.
    fn wait_for_connect(
        &mut self,
        addr: SocketAddr,
        timeout: Duration,
    ) -> Result<SocketAddr, String> {
        let deadline = Instant::now() + timeout;
        while Instant::now() < deadline {
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(addr);
            }
            match self.reap(Duration::from_millis(20)) {
                Ok(Some((status, _))) => {
                    return Err(format!(
                        "it exited with {status} before accepting on {addr}"
                    ));
                }
                Ok(None) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        Err(format!("nothing accepted connections on {addr}"))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Reads stdout on a thread: sends the first line, then drains the rest so that a chatty
/// server never blocks on a full pipe.
fn forward_first_line(stdout: ChildStdout) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        if let Some(Ok(line)) = lines.next() {
            let _ = tx.send(line);
        }
        drop(tx);
        for _ in lines.map_while(Result::ok) {}
    });
    rx
}

fn wait_for_listening_line(
    first: &Receiver<String>,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    match first.recv_timeout(timeout) {
        Ok(line) => parse_listening_line(&line).map_err(|e| e.to_string()),
        Err(RecvTimeoutError::Timeout) => Err("no `listening on` line on stdout".to_owned()),
        Err(RecvTimeoutError::Disconnected) => {
            Err("it exited or closed stdout before printing `listening on`".to_owned())
        }
    }
}
