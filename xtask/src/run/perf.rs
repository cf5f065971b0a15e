//! Counting a running process's system calls and context switches over a window, with
//! `perf stat`, for the capacity study's "what does each request cost the kernel".
//!
//! How: `perf stat -x, -e raw_syscalls:sys_enter,context-switches -p PID -D -1 --control
//! fd:0,1` attaches to every thread of the process (and, through perf's `inherit`, to the
//! threads it starts later, such as thread-per-connection workers) with its counters
//! disabled. perf reads `enable`/`disable` commands on its stdin and answers each with
//! `ack` on its stdout, so [`Counting`] starts and ends the window exactly when the caller
//! says, synchronised on those acks rather than on a guess at perf's start-up time; SIGINT
//! then makes perf print its CSV counts on stderr and exit (perf 6.1 knows no `stop`
//! command, and with `-p` it does not exit when the process does). The `raw_syscalls:sys_enter`
//! tracepoint counts every system call entry with little overhead; `context-switches` is
//! the kernel's software counter, voluntary and involuntary together.
//!
//! What can go wrong is a value, not an error: without perf, without the rights to use the
//! tracepoint (it needs root or a permissive `perf_event_paranoid`), or when the process is
//! gone, the answer is a [`NotMeasured`] that says so in perf's own words where it has any.

use std::io::{BufRead, BufReader, Read, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::thread;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::measured::{Measured, NotMeasured};

/// perf's name for the system call entry tracepoint.
pub const SYSCALLS_EVENT: &str = "raw_syscalls:sys_enter";
/// perf's name for the context-switch software counter.
pub const CONTEXT_SWITCHES_EVENT: &str = "context-switches";

/// How long perf may take to attach and acknowledge a command. It reads sysfs and opens one
/// counter per thread, which takes well under a second even for 10000 threads.
const ACK_TIMEOUT: Duration = Duration::from_secs(10);

/// What perf counted on one process between enable and disable.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct KernelCounts {
    /// System calls entered by the process's threads.
    pub syscalls: u64,
    /// Context switches of the process's threads, voluntary and involuntary.
    pub context_switches: u64,
    /// From perf's acknowledgement of `enable` to its acknowledgement of `disable`.
    pub window_seconds: f64,
}

/// The `perf` program to run: `perf` on PATH unless told otherwise.
#[derive(Debug, Clone)]
pub struct Perf {
    /// The executable, e.g. `perf` or a path to it.
    pub program: PathBuf,
}

impl Default for Perf {
    fn default() -> Perf {
        Perf {
            program: PathBuf::from("perf"),
        }
    }
}

impl Perf {
    /// Attaches to every thread of `pid` with the counters off; [`Counting::enable`] starts
    /// the window.
    ///
    /// Attach before the process starts the threads it will serve with (a thread per
    /// connection): perf opens a descriptor per event for every thread it finds now, which
    /// for 10000 threads would exhaust its own open-file limit, while a thread started later
    /// inherits the counters without one, and is counted as soon as they are enabled.
    ///
    /// # Errors
    /// [`NotMeasured`] when perf is missing, refuses (no such process, no permission, an
    /// event this kernel lacks) or does not answer within 10 s; the reason quotes perf.
    pub fn attach(&self, pid: u32) -> Measured<Counting> {
        let events = format!("{SYSCALLS_EVENT},{CONTEXT_SWITCHES_EVENT}");
        let spawned = Command::new(&self.program)
            .env("LC_ALL", "C")
            .args(["stat", "-x,", "-e", &events, "-p", &pid.to_string()])
            .args(["-D", "-1", "--control", "fd:0,1"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn();
        let mut child = spawned.map_err(|e| self.cannot_start(&e))?;
        let (Some(control), Some(acks), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(NotMeasured::new("perf started without its pipes"));
        };
        let mut counting = Counting {
            pid,
            child,
            control: Some(control),
            acks: forward_lines(acks),
            stderr: Some(read_to_end(stderr)),
            enabled_at: None,
        };
        // perf acknowledges commands only once it has attached: a `ping` is the signal
        // that the attachment worked (or, unanswered, that it did not).
        counting.command("ping")?;
        Ok(counting)
    }

    /// Attaches to `pid` and starts counting at once: [`Perf::attach`] then
    /// [`Counting::enable`].
    ///
    /// # Errors
    /// As [`Perf::attach`].
    pub fn start(&self, pid: u32) -> Measured<Counting> {
        let mut counting = self.attach(pid)?;
        counting.enable()?;
        Ok(counting)
    }

    /// Counts `pid` for `window` from now.
    ///
    /// # Errors
    /// As [`Perf::start`] and [`Counting::stop`].
    pub fn count_for(&self, pid: u32, window: Duration) -> Measured<KernelCounts> {
        let counting = self.start(pid)?;
        // The window itself is what is measured: there is nothing to wait for but time.
        thread::sleep(window);
        counting.stop()
    }

    fn cannot_start(&self, error: &std::io::Error) -> NotMeasured {
        let program = self.program.display();
        if error.kind() == std::io::ErrorKind::NotFound {
            NotMeasured::new(format!("perf is not installed (no {program} on PATH)"))
        } else {
            NotMeasured::new(format!("cannot start {program}: {error}"))
        }
    }
}

/// A perf process attached to one process, from [`Perf::attach`] to [`Counting::stop`]; it
/// counts between [`Counting::enable`] and `stop`.
///
/// Dropping it without `stop` kills perf and counts nothing.
#[derive(Debug)]
pub struct Counting {
    pid: u32,
    child: Child,
    control: Option<ChildStdin>,
    acks: Receiver<String>,
    stderr: Option<Receiver<String>>,
    enabled_at: Option<Instant>,
}

impl Counting {
    /// Starts the window: returns once perf acknowledged that its counters are on, so that
    /// everything the process does after this call is counted.
    ///
    /// # Errors
    /// [`NotMeasured`] when perf ended (the reason quotes it) or did not answer.
    pub fn enable(&mut self) -> Measured<()> {
        if self.enabled_at.is_none() {
            self.command("enable")?;
            self.enabled_at = Some(Instant::now());
        }
        Ok(())
    }

    /// Ends the window now and returns what perf counted in it. A process that exits in the
    /// window is counted until it exited.
    ///
    /// # Errors
    /// [`NotMeasured`] when the window never started, perf ended early or did not answer, or
    /// an event was not counted (the process never ran in the window).
    pub fn stop(mut self) -> Measured<KernelCounts> {
        let Some(enabled_at) = self.enabled_at else {
            return Err(NotMeasured::new(format!(
                "perf was attached to process {} but never enabled",
                self.pid
            )));
        };
        self.command("disable")?;
        let window_seconds = enabled_at.elapsed().as_secs_f64();
        let text = self.finish();
        let (syscalls, context_switches) = counts(&text, self.pid)?;
        Ok(KernelCounts {
            syscalls,
            context_switches,
            window_seconds,
        })
    }

    /// Sends one control command and waits for perf's `ack`.
    fn command(&mut self, command: &str) -> Measured<()> {
        let sent = self
            .control
            .as_mut()
            .map(|control| writeln!(control, "{command}").and_then(|()| control.flush()));
        if let Some(Ok(())) = sent {
            match self.acks.recv_timeout(ACK_TIMEOUT) {
                // perf writes the acknowledgement with its C string's NUL, which starts
                // the next line.
                Ok(line)
                    if line.trim_matches(|c: char| c == '\0' || c.is_whitespace()) == "ack" =>
                {
                    return Ok(());
                }
                Ok(line) => {
                    return Err(self.failed(&format!("answered {command} with {line:?}")));
                }
                Err(RecvTimeoutError::Timeout) => {
                    let waited = humantime::format_duration(ACK_TIMEOUT);
                    return Err(self.failed(&format!("did not acknowledge {command} in {waited}")));
                }
                Err(RecvTimeoutError::Disconnected) => {}
            }
        }
        Err(self.failed(&format!("ended before {command}")))
    }

    /// Why perf failed, with its own last words.
    fn failed(&mut self, what: &str) -> NotMeasured {
        let said = perf_message(&self.finish());
        let said = if said.is_empty() {
            String::new()
        } else {
            format!(": {said}")
        };
        NotMeasured::new(format!("perf stat -p {} {what}{said}", self.pid))
    }

    /// Interrupts perf (SIGINT makes it print its counts and exit, as Ctrl-C does; it does
    /// not exit by itself when the process it counts does), waits for its stderr to end,
    /// killing it if it will not, and returns everything it wrote there.
    fn finish(&mut self) -> String {
        let Some(stderr) = self.stderr.take() else {
            return String::new();
        };
        if let Ok(pid) = libc::pid_t::try_from(self.child.id()) {
            // SAFETY: kill has no memory preconditions; pid is our child, not yet reaped
            // (a zombie at worst), so it names no other process.
            unsafe { libc::kill(pid, libc::SIGINT) };
        }
        let text = stderr.recv_timeout(ACK_TIMEOUT).unwrap_or_else(|_| {
            let _ = self.child.kill();
            "perf did not exit when interrupted".to_owned()
        });
        let _ = self.child.wait();
        self.control = None;
        text
    }
}

impl Drop for Counting {
    fn drop(&mut self) {
        if self.stderr.is_some() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// perf's stderr, whole, sent when it ends: that is, when perf has exited.
fn read_to_end(mut reader: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut text = String::new();
        let _ = reader.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    rx
}

fn forward_lines(reader: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(reader).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    rx
}

/// One counter line of `perf stat -x,` output.
#[derive(Debug, Clone, PartialEq)]
pub struct CsvCount {
    /// The event, as perf names it (`raw_syscalls:sys_enter`).
    pub event: String,
    /// What perf reported for it.
    pub value: CsvValue,
}

/// The first field of a counter line.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CsvValue {
    /// A count (perf may print a fraction when it had to scale a multiplexed counter).
    Count(f64),
    /// `<not counted>`: the counter was never enabled while the process ran.
    NotCounted,
    /// `<not supported>`: this kernel or machine cannot count the event.
    NotSupported,
}

/// Reads the counter lines of `perf stat -x,` output: `value,unit,event,run time,
/// percentage,...`. Every other line (perf's messages, `# started on`, blank lines) is left
/// out, so the text may be perf's whole stderr.
pub fn parse_csv(text: &str) -> Vec<CsvCount> {
    text.lines()
        .filter_map(|line| {
            let mut fields = line.split(',');
            let value = fields.next()?.trim();
            let _unit = fields.next()?;
            let event = fields.next()?.trim();
            let value = match value {
                "<not counted>" => CsvValue::NotCounted,
                "<not supported>" => CsvValue::NotSupported,
                number => CsvValue::Count(number.parse().ok()?),
            };
            (!event.is_empty()).then(|| CsvCount {
                event: event.to_owned(),
                value,
            })
        })
        .collect()
}

/// The system call and context switch counts in perf's output about `pid`.
///
/// # Errors
/// [`NotMeasured`] naming the event that is missing, not counted or not supported, with
/// perf's messages when there is no counter line at all.
pub fn counts(text: &str, pid: u32) -> Measured<(u64, u64)> {
    let records = parse_csv(text);
    let count = |event: &str| -> Measured<u64> {
        // perf appends modifiers (`context-switches:u`) when it had to restrict an event.
        let record = records.iter().find(|r| {
            r.event == event
                || r.event
                    .strip_prefix(event)
                    .is_some_and(|m| m.starts_with(':'))
        });
        match record.map(|r| r.value) {
            Some(CsvValue::Count(n)) if n >= 0.0 => Ok(n.round() as u64),
            Some(CsvValue::Count(n)) => Err(NotMeasured::new(format!(
                "perf reported {n} {event} for process {pid}"
            ))),
            Some(CsvValue::NotCounted) => Err(NotMeasured::new(format!(
                "perf did not count {event}: process {pid} never ran while counting"
            ))),
            Some(CsvValue::NotSupported) => Err(NotMeasured::new(format!(
                "perf cannot count {event} on this machine (not supported)"
            ))),
            None if records.is_empty() => Err(NotMeasured::new(format!(
                "perf stat -p {pid} printed no counts: {}",
                perf_message(text)
            ))),
            None => Err(NotMeasured::new(format!(
                "perf stat -p {pid} printed no {event} count"
            ))),
        }
    };
    Ok((count(SYSCALLS_EVENT)?, count(CONTEXT_SWITCHES_EVENT)?))
}

/// perf's own explanation, from its stderr: the first few lines that say something, before
/// its usage text, joined on one line.
fn perf_message(text: &str) -> String {
    let noise = |line: &str| {
        line.is_empty()
            || line.starts_with('#')
            || line.starts_with("Events ")
            || line.contains(',')
    };
    text.lines()
        .map(str::trim)
        .take_while(|line| !line.starts_with("Usage:"))
        .filter(|line| !noise(line))
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::process::{Command, Stdio};

    use super::*;

    /// perf 6.1's stderr for a server-mio process under load, as captured on this project's
    /// machines (with the control-fd messages it prints around the window).
    const CAPTURED: &str = "Events disabled\nEvents enabled\nEvents disabled\n\
        13309,,raw_syscalls:sys_enter,74201119,100.00,,\n\
        1917,,context-switches,74201119,100.00,,\n";

    /// perf's stderr when the process did not run at all in the window.
    const NOT_COUNTED: &str = "<not counted>,,raw_syscalls:sys_enter,0,100.00,,\n\
        <not counted>,,context-switches,0,100.00,,\n";

    /// perf's stderr when asked for a process that does not exist.
    const NO_PROCESS: &str = "Problems finding threads of monitor\n\n Usage: perf stat \
        [<options>] [<command>]\n\n    -p, --pid <pid>       stat events on existing process id\n";

    #[test]
    fn captured_csv_yields_both_counts() {
        assert_eq!(counts(CAPTURED, 42), Ok((13309, 1917)));
    }

    #[test]
    fn every_counter_line_is_read_and_messages_are_left_out() {
        let records = parse_csv(CAPTURED);
        assert_eq!(records.len(), 2, "{records:?}");
        assert_eq!(records[0].event, SYSCALLS_EVENT);
        assert_eq!(records[0].value, CsvValue::Count(13309.0));
        let fractions = parse_csv("473.54,msec,task-clock,473539578,100.00,0.944,CPUs utilized");
        assert_eq!(fractions[0].value, CsvValue::Count(473.54));
    }

    #[test]
    fn an_event_with_a_modifier_still_counts() {
        let text = "10,,raw_syscalls:sys_enter,5,100.00,,\n7,,context-switches:u,5,100.00,,\n";
        assert_eq!(counts(text, 1), Ok((10, 7)));
    }

    #[test]
    fn a_process_that_never_ran_is_not_measured_rather_than_zero() {
        let reason = counts(NOT_COUNTED, 42).expect_err("not counted").reason;
        assert!(reason.contains("process 42 never ran"), "{reason}");
        assert!(reason.contains(SYSCALLS_EVENT), "{reason}");
    }

    #[test]
    fn an_unsupported_event_says_so() {
        let text =
            "5,,raw_syscalls:sys_enter,1,100.00,,\n<not supported>,,context-switches,0,0,,\n";
        let reason = counts(text, 1).expect_err("not supported").reason;
        assert!(
            reason.contains("context-switches on this machine"),
            "{reason}"
        );
    }

    #[test]
    fn perfs_refusal_is_quoted_without_its_usage_text() {
        let reason = counts(NO_PROCESS, 99).expect_err("no counts").reason;
        assert_eq!(
            reason,
            "perf stat -p 99 printed no counts: Problems finding threads of monitor"
        );
    }

    #[test]
    fn a_missing_perf_program_is_not_measured_and_says_perf_is_not_installed() {
        let perf = Perf {
            program: PathBuf::from("perf-that-is-not-installed"),
        };
        let reason = perf
            .start(std::process::id())
            .expect_err("no such program")
            .reason;
        assert!(reason.starts_with("perf is not installed"), "{reason}");
        assert!(reason.contains("perf-that-is-not-installed"), "{reason}");
    }

    // The two tests below run the real perf. They need it (and root, for the tracepoint),
    // as the study does; where either is missing they fail with perf's reason.

    #[test]
    fn perf_refuses_a_process_that_does_not_exist_and_says_so() {
        // Above any pid_max Linux allows, so it cannot name a live process.
        let reason = Perf::default()
            .start(i32::MAX as u32)
            .expect_err("no such process")
            .reason;
        assert!(
            !reason.starts_with("perf is not installed"),
            "this test needs perf: {reason}"
        );
        assert!(reason.contains(&format!("-p {}", i32::MAX)), "{reason}");
    }

    #[test]
    fn a_thread_started_after_attaching_is_counted_once_enabled() {
        const CALLS: u64 = 5_000;
        let mut counting = Perf::default()
            .attach(std::process::id())
            .unwrap_or_else(|e| panic!("this test needs perf as root: {e}"));
        let (go, told) = std::sync::mpsc::channel::<()>();
        // Started while perf is attached with its counters off, as a server's connection
        // threads are when the study attaches before loadgen connects.
        let worker = thread::spawn(move || {
            told.recv().expect("told to go");
            for _ in 0..CALLS {
                std::hint::black_box(std::os::unix::process::parent_id());
            }
        });
        counting.enable().unwrap_or_else(|e| panic!("{e}"));
        go.send(()).expect("the worker waits");
        worker.join().expect("the worker ends");
        let counted = counting.stop().unwrap_or_else(|e| panic!("{e}"));
        assert!(
            counted.syscalls >= CALLS,
            "each getppid is a system call: {counted:?}"
        );
    }

    #[test]
    fn stopping_before_enabling_counts_nothing_and_says_why() {
        let counting = Perf::default()
            .attach(std::process::id())
            .unwrap_or_else(|e| panic!("this test needs perf as root: {e}"));
        let reason = counting.stop().expect_err("never enabled").reason;
        assert!(reason.contains("never enabled"), "{reason}");
    }

    #[test]
    fn a_child_echoing_lines_in_lockstep_makes_at_least_two_syscalls_a_line() {
        const LINES: u64 = 200;
        let mut cat = Command::new("cat")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("cat starts");
        let mut to_cat = cat.stdin.take().expect("stdin piped");
        let mut from_cat = BufReader::new(cat.stdout.take().expect("stdout piped"));
        let counting = Perf::default()
            .start(cat.id())
            .unwrap_or_else(|e| panic!("this test needs perf as root: {e}"));
        // Each line is read back before the next is written, so cat cannot read two lines
        // at once: every line costs it at least one read and one write.
        let mut echoed = String::new();
        for n in 0..LINES {
            writeln!(to_cat, "line {n}").expect("cat reads");
            echoed.clear();
            from_cat.read_line(&mut echoed).expect("cat writes");
            assert_eq!(echoed, format!("line {n}\n"));
        }
        let counted = counting.stop().unwrap_or_else(|e| panic!("{e}"));
        drop(to_cat);
        let _ = cat.wait();
        // The tracepoint counts system call entries: cat may already have entered its first
        // read, waiting for line 0, before the counters were enabled, so that one read can
        // be missing from the count.
        assert!(counted.syscalls >= 2 * LINES - 1, "{counted:?}");
        assert!(
            counted.context_switches >= 1,
            "cat blocked waiting for input at least once: {counted:?}"
        );
        assert!(counted.window_seconds > 0.0, "{counted:?}");
    }
}
