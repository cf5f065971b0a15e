//! What to start and how it shows it is ready: the program, its arguments and environment,
//! and the limits the harness puts on the child before it runs (descriptors, CPUs).

use std::io;
use std::net::SocketAddr;
use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Command;

/// How a started server says it is ready.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Ready {
    /// It prints `listening on <ip>:<port>` as its first stdout line (every server of this
    /// project does), which also tells the port it bound when given port 0.
    #[default]
    ListeningLine,
    /// It prints nothing useful (a server from elsewhere): ready once a TCP connect to this
    /// address succeeds.
    Connect(SocketAddr),
}

/// Everything needed to start one server process. Fields are public so a caller can write
/// a literal with `..Launch::default()`; the builder methods say the same thing in a chain.
#[derive(Debug, Clone, Default)]
pub struct Launch {
    /// Name used in every message (the variant's name); empty means the program's file name.
    pub name: String,
    /// The executable.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Extra environment variables.
    pub envs: Vec<(String, String)>,
    /// Environment variables it must not inherit (e.g. `RUST_LOG`, which changes what a
    /// server logs).
    pub env_remove: Vec<String>,
    /// How it says it is ready.
    pub ready: Ready,
    /// Lowers its open-file limit, soft and hard, to this many descriptors.
    pub nofile: Option<u64>,
    /// Pins it to these CPUs (empty: wherever the scheduler likes), so that a server and its
    /// load client on one small machine do not take turns on one core.
    pub cpus: Vec<usize>,
}

impl Launch {
    /// Starts `program` with no arguments, waiting for its listening line.
    pub fn new(program: impl Into<PathBuf>) -> Launch {
        Launch {
            program: program.into(),
            ..Launch::default()
        }
    }

    /// Names it in messages.
    #[must_use]
    pub fn name(mut self, name: impl Into<String>) -> Launch {
        self.name = name.into();
        self
    }

    /// Appends arguments.
    #[must_use]
    pub fn args<I, S>(mut self, args: I) -> Launch
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets an environment variable.
    #[must_use]
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Launch {
        self.envs.push((key.into(), value.into()));
        self
    }

    /// Keeps an environment variable from the child.
    #[must_use]
    pub fn env_remove(mut self, key: impl Into<String>) -> Launch {
        self.env_remove.push(key.into());
        self
    }

    /// Says how it shows it is ready.
    #[must_use]
    pub fn ready(mut self, ready: Ready) -> Launch {
        self.ready = ready;
        self
    }

    /// Lowers its open-file limit (soft and hard) to `limit`, or leaves it with `None`.
    #[must_use]
    pub fn nofile(mut self, limit: Option<u64>) -> Launch {
        self.nofile = limit;
        self
    }

    /// Pins it to `cpus`.
    #[must_use]
    pub fn cpus(mut self, cpus: &[usize]) -> Launch {
        self.cpus = cpus.to_vec();
        self
    }

    /// The name for messages: [`Launch::name`], else the program's file name.
    pub fn display_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |name| name.to_string_lossy().into_owned(),
        )
    }

    /// The command line, for records and messages (arguments are not quoted).
    pub fn command_line(&self) -> String {
        let mut line = self.program.display().to_string();
        for arg in &self.args {
            line.push(' ');
            line.push_str(arg);
        }
        line
    }

    /// The [`Command`] this describes, with its limits applied; stdio is left to the caller.
    ///
    /// # Errors
    /// When a CPU number is beyond what `sched_setaffinity` can name.
    pub fn command(&self) -> io::Result<Command> {
        let mut command = Command::new(&self.program);
        command
            .args(&self.args)
            .envs(self.envs.iter().map(|(k, v)| (k, v)));
        for key in &self.env_remove {
            command.env_remove(key);
        }
        if let Some(limit) = self.nofile {
            limit_descriptors(&mut command, limit);
        }
        if !self.cpus.is_empty() {
            pin_to_cpus(&mut command, &self.cpus)?;
        }
        Ok(command)
    }
}

/// A port that was free a moment ago on 127.0.0.1, for a server from elsewhere that cannot
/// bind port 0 and report what it got (then started with [`Ready::Connect`]). Another
/// process may take it meanwhile; the start then fails naming the address.
///
/// # Errors
/// When no socket can be bound at all.
pub fn free_port() -> io::Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
    Ok(listener.local_addr()?.port())
}

/// Lowers the child's soft and hard open-file limits to `limit`. Both, because a server
/// raises its soft limit to the hard one at start.
pub fn limit_descriptors(command: &mut Command, limit: u64) {
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

/// Pins the child (every thread it will start) to `cpus`, as `taskset -c` would, without
/// depending on taskset being installed.
///
/// # Errors
/// When a CPU number is at or beyond `CPU_SETSIZE`; a CPU the machine lacks makes the
/// child fail to start instead.
pub fn pin_to_cpus(command: &mut Command, cpus: &[usize]) -> io::Result<()> {
    let set = cpu_set(cpus)?;
    // SAFETY: the closure runs in the forked child before exec and only makes the
    // sched_setaffinity system call on a set built (and copied in) before the fork.
    unsafe {
        command.pre_exec(move || {
            if libc::sched_setaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &set) != 0 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    Ok(())
}

/// Runs the child under the real-time `SCHED_FIFO` policy at `priority` (1–99), as
/// `chrt -f` would, so that no process of the default policy preempts it on its CPUs: it
/// gives its CPU up only when it blocks (or to the kernel's real-time throttling, 5 % of
/// each second by default).
///
/// Why a client needs it here: the machine's own tool backend, a process outside the
/// project, takes a CPU for about 20 ms every second or so (`perf sched record -C 1`), and a
/// client of the default policy on that CPU stops for that long. Against python-uvloop at
/// 30000 req/s over 6600 connections, loadgen's schedule lag reached 11.2 ms and 0.82 % of
/// its requests started late; under `chrt -f 5`, in the runs just before and after, 1.6 ms
/// and 0.05 %.
pub fn run_fifo(command: &mut Command, priority: i32) {
    // SAFETY: pre_exec runs in the forked child before exec; `set_fifo` only makes the
    // async-signal-safe sched_setscheduler system call and allocates nothing.
    unsafe {
        command.pre_exec(move || set_fifo(priority));
    }
}

/// Puts the calling thread (or, in a child before exec, the process) under `SCHED_FIFO`
/// at `priority`: the one call behind [`run_fifo`] and the real-time speed probe. It
/// allocates nothing, so that it may run between fork and exec; the error is the system's.
pub(crate) fn set_fifo(priority: i32) -> io::Result<()> {
    let param = libc::sched_param {
        sched_priority: priority,
    };
    // SAFETY: pid 0 is the caller; `param` is a valid sched_param for the whole call.
    if unsafe { libc::sched_setscheduler(0, libc::SCHED_FIFO, &param) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// `priority` where the machine lets a child run under `SCHED_FIFO` at it, else `None`
/// with a line on stderr saying why `who` keeps the default policy: what a study does with
/// real-time clients by default.
pub fn fifo_where_allowed(priority: i32, who: &str) -> Option<i32> {
    match fifo_allowed(priority) {
        Ok(()) => Some(priority),
        Err(e) => {
            eprintln!("{who}: under the default policy: {e}");
            None
        }
    }
}

/// Whether a child may run under `SCHED_FIFO` at `priority` here: a child that only exits
/// is started that way once. The error says why not (`EPERM` without the privilege).
///
/// # Errors
/// When the policy cannot be set, naming the priority and the system's reason.
pub fn fifo_allowed(priority: i32) -> io::Result<()> {
    let mut command = Command::new("true");
    run_fifo(&mut command, priority);
    let status = command.status().map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot run a process under SCHED_FIFO priority {priority}: {e}"),
        )
    })?;
    if status.success() {
        Ok(())
    } else {
        Err(io::Error::other(format!(
            "a process under SCHED_FIFO priority {priority} exited with {status}"
        )))
    }
}

/// `cpus` as the set `sched_setaffinity` takes.
///
/// # Errors
/// When a CPU number is at or beyond `CPU_SETSIZE`.
pub(crate) fn cpu_set(cpus: &[usize]) -> io::Result<libc::cpu_set_t> {
    let size = usize::try_from(libc::CPU_SETSIZE).unwrap_or(0);
    if let Some(cpu) = cpus.iter().find(|&&cpu| cpu >= size) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("cpu {cpu} is beyond the {size} that sched_setaffinity can name"),
        ));
    }
    // SAFETY: an all-zero cpu_set_t is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    for &cpu in cpus {
        // SAFETY: cpu < CPU_SETSIZE was checked above.
        unsafe { libc::CPU_SET(cpu, &mut set) };
    }
    Ok(set)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_name_defaults_to_the_programs_file_name_and_the_command_line_lists_arguments() {
        let launch = Launch::new("target/release/server-mio").args(["--loops", "1"]);
        assert_eq!(launch.display_name(), "server-mio");
        assert_eq!(launch.command_line(), "target/release/server-mio --loops 1");
        assert_eq!(launch.name("mio").display_name(), "mio");
    }

    #[test]
    fn a_free_port_is_a_real_port() -> io::Result<()> {
        assert_ne!(free_port()?, 0);
        Ok(())
    }

    #[test]
    fn a_cpu_beyond_the_set_size_is_refused_naming_it() {
        let mut command = Command::new("true");
        let error = pin_to_cpus(&mut command, &[0, 1 << 20]).expect_err("too large");
        assert!(
            error.to_string().starts_with("cpu 1048576 is beyond"),
            "{error}"
        );
    }

    #[test]
    fn limits_and_pinning_reach_the_child() -> io::Result<()> {
        let launch = Launch::new("sh")
            .args(["-c", "ulimit -n; grep Cpus_allowed_list /proc/self/status"])
            .nofile(Some(64))
            .cpus(&[0]);
        let output = launch.command()?.output()?;
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{text}");
        let mut lines = text.lines();
        assert_eq!(lines.next(), Some("64"));
        assert!(
            lines.next().is_some_and(|l| l.ends_with("\t0")),
            "not pinned to cpu 0: {text}"
        );
        Ok(())
    }
    #[test]
    fn a_child_run_fifo_is_under_sched_fifo_at_that_priority_or_the_refusal_says_why() {
        let mut command = Command::new("sh");
        command.args(["-c", "cat /proc/self/sched"]);
        run_fifo(&mut command, 7);
        match command.output() {
            Ok(out) if out.status.success() => {
                let sched = String::from_utf8_lossy(&out.stdout);
                let field = |name: &str| {
                    sched
                        .lines()
                        .find(|l| l.starts_with(name))
                        .and_then(|l| l.split(':').nth(1))
                        .map(|v| v.trim().to_owned())
                };
                // SCHED_FIFO is policy 1; the kernel's prio is 99 - the real-time priority.
                assert_eq!(field("policy").as_deref(), Some("1"), "{sched}");
                assert_eq!(field("prio").as_deref(), Some("92"), "{sched}");
                fifo_allowed(7).expect("a child was just started so");
            }
            other => {
                let err = fifo_allowed(7).expect_err("the policy was refused above");
                assert!(err.to_string().contains("priority 7"), "{err}; {other:?}");
            }
        }
    }
}
