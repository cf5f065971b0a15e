//! Running one server process for one run: start it on a free port, learn its address, stop
//! it with SIGTERM, and record how it ended (with its resource usage, via `wait4`).
//!
//! Every server binary of the project prints exactly one line, `listening on <ip>:<port>`,
//! when it is ready, so it can bind port 0 and tell us what it got; a server given with
//! `--external` may not, and is then polled with connects on a port we picked. Whatever goes
//! wrong, the error names the server and ends with the tail of its stderr, because "did not
//! start" alone sends the reader hunting.
//!
//! A [`Server`] that is dropped without [`Server::stop`] is killed and reaped, so an error
//! half-way through a comparison leaves no process behind.

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Read};
use std::net::{SocketAddr, TcpStream};
use std::path::PathBuf;
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::results::ExitRecord;
use crate::run::procstat::Usage;

/// How many stderr lines an error message or a record keeps.
const TAIL_LINES: usize = 20;

/// How a started server says it is ready.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ready {
    /// It prints `listening on <ip>:<port>` on stdout (every server of this project does).
    ListeningLine,
    /// It prints nothing useful: ready once a TCP connect to this address succeeds.
    Connect(SocketAddr),
}

/// Everything needed to start one server process.
#[derive(Debug, Clone)]
pub struct Launch {
    /// Variant name, used in every message.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
    /// How it says it is ready.
    pub ready: Ready,
}

impl Launch {
    /// The command line, for records and messages (arguments are not quoted).
    pub fn command_line(&self) -> String {
        let mut line = self.program.display().to_string();
        for arg in &self.args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }

    /// The same server behind `taskset -c cpus`, pinned to those CPUs with every thread it
    /// starts. taskset execs the server, so the process id is the server's own.
    pub fn pinned(self, cpus: &str) -> Launch {
        let mut args = vec!["-c".to_owned(), cpus.to_owned()];
        args.push(self.program.display().to_string());
        args.extend(self.args);
        Launch {
            program: PathBuf::from("taskset"),
            args,
            ..self
        }
    }
}

/// The last lines a process wrote to stderr.
type Tail = Arc<Mutex<VecDeque<String>>>;

/// A running server process.
#[derive(Debug)]
pub struct Server {
    name: String,
    child: Child,
    addr: SocketAddr,
    stderr: Tail,
    stderr_done: Receiver<()>,
    reaped: bool,
}

/// Starts `launch` and waits at most `timeout` for it to be ready.
///
/// # Errors
/// When the program cannot be started, exits, closes its stdout, prints something other than
/// the listening line, or is not ready in time. The message names the server and ends with
/// its stderr tail; the process has been killed and reaped by then.
pub fn start(launch: &Launch, timeout: Duration) -> anyhow::Result<Server> {
    let mut child = Command::new(&launch.program)
        .args(&launch.args)
        .envs(launch.envs.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .with_context(|| {
            format!(
                "cannot start server {}: `{}`",
                launch.name,
                launch.command_line()
            )
        })?;
    let stdout = child.stdout.take().context("child stdout was not piped")?;
    let stderr_pipe = child.stderr.take().context("child stderr was not piped")?;
    let (stderr, stderr_done) = collect_tail(stderr_pipe);
    let first_line = forward_first_line(stdout);
    let mut server = Server {
        name: launch.name.clone(),
        child,
        addr: SocketAddr::from(([127, 0, 0, 1], 0)),
        stderr,
        stderr_done,
        reaped: false,
    };
    let ready = match &launch.ready {
        Ready::ListeningLine => wait_for_listening_line(&first_line, timeout),
        Ready::Connect(addr) => wait_for_connect(&mut server.child, *addr, timeout),
    };
    match ready {
        Ok(addr) => {
            server.addr = addr;
            Ok(server)
        }
        Err(reason) => {
            server.kill_and_reap();
            bail!(
                "server {} did not become ready within {}: {reason}\n`{}`\n{}",
                launch.name,
                humantime::format_duration(timeout),
                launch.command_line(),
                server.stderr_tail_text()
            )
        }
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

/// Keeps the last [`TAIL_LINES`] lines of stderr; the receiver is signalled at end of file.
fn collect_tail(stderr: ChildStderr) -> (Tail, Receiver<()>) {
    let tail: Tail = Arc::new(Mutex::new(VecDeque::new()));
    let (done_tx, done_rx) = mpsc::channel();
    let writer = Arc::clone(&tail);
    thread::spawn(move || {
        let mut reader = BufReader::new(stderr);
        let mut raw = Vec::new();
        while reader.read_until(b'\n', &mut raw).is_ok_and(|n| n > 0) {
            let line = String::from_utf8_lossy(&raw).trim_end().to_owned();
            raw.clear();
            if let Ok(mut tail) = writer.lock() {
                if tail.len() == TAIL_LINES {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
        let _ = done_tx.send(());
    });
    (tail, done_rx)
}

/// Parses `listening on <ip>:<port>`.
pub fn parse_listening_line(line: &str) -> Result<SocketAddr, String> {
    let text = line.trim();
    let addr = text.strip_prefix("listening on ").ok_or_else(|| {
        format!("its first stdout line was `{text}`, not `listening on <ip>:<port>`")
    })?;
    addr.trim()
        .parse()
        .map_err(|e| format!("`{addr}` in its listening line is not an address: {e}"))
}

fn wait_for_listening_line(
    first: &Receiver<String>,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    match first.recv_timeout(timeout) {
        Ok(line) => parse_listening_line(&line),
        Err(RecvTimeoutError::Timeout) => Err("no `listening on` line on stdout".to_owned()),
        Err(RecvTimeoutError::Disconnected) => {
            Err("it exited or closed stdout before printing `listening on`".to_owned())
        }
    }
}

/// Polls with connects until one succeeds: for external servers that print nothing.
fn wait_for_connect(
    child: &mut Child,
    addr: SocketAddr,
    timeout: Duration,
) -> Result<SocketAddr, String> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(addr);
        }
        if let Ok(Some(status)) = child.try_wait() {
            return Err(format!(
                "it exited with {status} before accepting on {addr}"
            ));
        }
        thread::sleep(Duration::from_millis(20));
    }
    Err(format!("nothing accepted connections on {addr}"))
}

impl Server {
    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Its process id, for /proc sampling.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Its last stderr lines, formatted for an error message.
    pub fn stderr_tail_text(&self) -> String {
        let lines = self
            .stderr
            .lock()
            .map(|t| t.iter().cloned().collect::<Vec<_>>())
            .unwrap_or_default();
        if lines.is_empty() {
            return "its stderr was empty".to_owned();
        }
        format!("its stderr ended with:\n  {}", lines.join("\n  "))
    }

    /// Sends SIGTERM, waits at most `timeout` for it to exit (then SIGKILL), and reaps it.
    ///
    /// # Errors
    /// Only when it cannot be reaped at all (which means it was not our child any more).
    pub fn stop(mut self, timeout: Duration) -> anyhow::Result<(ExitRecord, Option<Usage>)> {
        let pid = self.child.id() as libc::pid_t;
        let sent = Instant::now();
        // SAFETY: kill has no memory preconditions; pid is our unreaped child.
        unsafe { libc::kill(pid, libc::SIGTERM) };
        let mut reaped = reap_within(pid, timeout)?;
        let timed_out = reaped.is_none();
        if timed_out {
            // SAFETY: as above.
            unsafe { libc::kill(pid, libc::SIGKILL) };
            reaped = reap_within(pid, Duration::from_secs(10))?;
        }
        self.reaped = reaped.is_some();
        let stop_seconds = sent.elapsed().as_secs_f64();
        // Its stderr reaches end of file once it is gone; wait briefly for the last line.
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
        let (status, usage) =
            reaped.with_context(|| format!("server {} survived SIGKILL", self.name))?;
        let code = libc::WIFEXITED(status).then(|| libc::WEXITSTATUS(status));
        let signal = libc::WIFSIGNALED(status).then(|| libc::WTERMSIG(status));
        let last = self.stderr.lock().ok().and_then(|t| t.back().cloned());
        let exit = ExitRecord {
            code,
            signal,
            clean: !timed_out && code == Some(0),
            stop_seconds,
            last_stderr_line: last,
        };
        Ok((exit, Some(usage)))
    }

    fn kill_and_reap(&mut self) {
        if self.reaped {
            return;
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        self.reaped = true;
        let _ = self.stderr_done.recv_timeout(Duration::from_secs(1));
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill_and_reap();
    }
}

/// Reaps `pid` with `wait4` if it exits within `timeout`, returning its wait status and
/// resource usage; `Ok(None)` when it is still running.
pub fn reap_within(pid: libc::pid_t, timeout: Duration) -> anyhow::Result<Option<(i32, Usage)>> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut status = 0;
        // SAFETY: an all-zero rusage is a valid value for wait4 to overwrite.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        // SAFETY: both pointers are to live locals; pid is our child.
        let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
        if rc == pid {
            return Ok(Some((status, Usage::from_rusage(&usage))));
        }
        if rc < 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() != std::io::ErrorKind::Interrupted {
                bail!("cannot wait for process {pid}: {err}");
            }
        }
        if Instant::now() >= deadline {
            return Ok(None);
        }
        // A child exit has no portable wake-up short of SIGCHLD handling; 5 ms polling over
        // a shutdown that lasts milliseconds to seconds costs nothing measurable.
        thread::sleep(Duration::from_millis(5));
    }
}

/// A port that was free a moment ago on 127.0.0.1, for servers that cannot bind port 0.
///
/// # Errors
/// When no socket can be bound at all.
pub fn free_port() -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Reads a pipe to its end and keeps its last [`TAIL_LINES`] lines, joined with `; `.
pub fn read_tail(reader: impl Read) -> String {
    let mut tail = VecDeque::new();
    for line in BufReader::new(reader).lines().map_while(Result::ok) {
        if tail.len() == TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(line);
    }
    Vec::from(tail).join("; ")
}
