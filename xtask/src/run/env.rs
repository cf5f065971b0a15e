//! The environment a comparison ran in (machine, kernel, toolchain, commit, date), and the
//! kernel's listen-queue counters read around each run.
//!
//! A number without its machine is not a result: every report starts with this header. The
//! listen counters matter as much: when a server's accept queue overflows, the kernel drops
//! the SYN and the client retries 1 s later, so a slow row may be measuring the listen backlog,
//! not the concurrency model. `ListenOverflows`/`ListenDrops` from /proc/net/netstat say so.
//! They count for the whole network namespace: anything else on the machine that overflows a
//! listen queue at the same time is counted too.

use std::fs;
use std::io;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use crate::results::Environment;

/// Reads everything about the machine and the code; fields that cannot be read say `unknown`
/// rather than failing the comparison.
pub fn capture(root: &Path) -> Environment {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let meminfo = fs::read_to_string("/proc/meminfo").unwrap_or_default();
    Environment {
        cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".to_owned()),
        cores: std::thread::available_parallelism().map_or(1, |n| n.get() as u32),
        memory_bytes: mem_total_bytes(&meminfo).unwrap_or(0),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        rustc: command_output("rustc", &["--version"], root).unwrap_or_else(unknown),
        python: command_output("python3", &["--version"], root),
        git_commit: git_commit(root),
        date_utc: humantime::format_rfc3339_seconds(SystemTime::now()).to_string(),
        open_files_limit: open_files_limit(),
        somaxconn: read_trimmed("/proc/sys/net/core/somaxconn").parse().ok(),
    }
}

fn unknown() -> String {
    "unknown".to_owned()
}

fn read_trimmed(path: &str) -> String {
    fs::read_to_string(path).map_or_else(|_| unknown(), |t| t.trim().to_owned())
}

/// The first `model name` of /proc/cpuinfo.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo.lines().find_map(|line| {
        let (key, value) = line.split_once(':')?;
        (key.trim() == "model name").then(|| value.trim().to_owned())
    })
}

/// `MemTotal` of /proc/meminfo, in bytes.
pub fn mem_total_bytes(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The first line a command prints (stdout, or stderr for old pythons), or `None` when it
/// cannot run or fails.
fn command_output(program: &str, args: &[&str], dir: &Path) -> Option<String> {
    let out = Command::new(program)
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    let line = String::from_utf8_lossy(&text)
        .lines()
        .next()?
        .trim()
        .to_owned();
    (!line.is_empty()).then_some(line)
}

fn git_commit(root: &Path) -> String {
    let Some(commit) = command_output("git", &["rev-parse", "HEAD"], root) else {
        return unknown();
    };
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .current_dir(root)
        .output()
        .is_ok_and(|o| !o.stdout.is_empty());
    if dirty {
        format!("{commit}-dirty")
    } else {
        commit
    }
}

fn open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc == 0 { limit.rlim_cur } else { 0 }
}

/// The kernel's listen-queue counters at one instant.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenCounters {
    /// `TcpExt: ListenOverflows`: SYNs or ACKs dropped because an accept queue was full.
    pub overflows: u64,
    /// `TcpExt: ListenDrops`: every drop at a listening socket (overflows included).
    pub drops: u64,
}

impl ListenCounters {
    /// Reads /proc/net/netstat now.
    ///
    /// # Errors
    /// When the file cannot be read or has no `TcpExt` listen counters (not Linux, or a
    /// kernel that renamed them).
    pub fn read() -> io::Result<ListenCounters> {
        let text = fs::read_to_string("/proc/net/netstat")?;
        parse_netstat(&text).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "/proc/net/netstat has no TcpExt ListenOverflows/ListenDrops",
            )
        })
    }

    /// How much each counter grew since `earlier` (never negative).
    pub fn since(self, earlier: ListenCounters) -> ListenCounters {
        ListenCounters {
            overflows: self.overflows.saturating_sub(earlier.overflows),
            drops: self.drops.saturating_sub(earlier.drops),
        }
    }
}

/// Finds the `TcpExt:` header line and the value line after it, and picks the two counters.
pub fn parse_netstat(text: &str) -> Option<ListenCounters> {
    let mut lines = text.lines();
    while let Some(header) = lines.next() {
        let Some(names) = header.strip_prefix("TcpExt:") else {
            continue;
        };
        let values = lines.next()?.strip_prefix("TcpExt:")?;
        let pairs: Vec<(&str, &str)> = names
            .split_whitespace()
            .zip(values.split_whitespace())
            .collect();
        let get = |name: &str| pairs.iter().find(|(n, _)| *n == name)?.1.parse().ok();
        return Some(ListenCounters {
            overflows: get("ListenOverflows")?,
            drops: get("ListenDrops")?,
        });
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn netstat_counters_are_read_from_the_tcpext_lines() {
        let text = "TcpExt: SyncookiesSent ListenOverflows ListenDrops TCPHPHits\n\
                    TcpExt: 0 17 19 3\n\
                    IpExt: InNoRoutes\nIpExt: 0\n";
        let counters = parse_netstat(text).expect("TcpExt present");
        assert_eq!(counters.overflows, 17);
        assert_eq!(counters.drops, 19);
    }

    #[test]
    fn netstat_without_tcpext_is_none() {
        assert_eq!(parse_netstat("IpExt: InNoRoutes\nIpExt: 0\n"), None);
    }

    #[test]
    fn counter_deltas_never_go_negative() {
        let before = ListenCounters {
            overflows: 10,
            drops: 12,
        };
        let after = ListenCounters {
            overflows: 15,
            drops: 11,
        };
        assert_eq!(after.since(before).overflows, 5);
        assert_eq!(after.since(before).drops, 0);
    }

    #[test]
    fn cpu_model_and_memory_come_from_proc_text() {
        let cpuinfo = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t: fpu\n";
        assert_eq!(cpu_model(cpuinfo).as_deref(), Some("AMD EPYC 7B13"));
        assert_eq!(
            mem_total_bytes("MemTotal:       1024 kB\n"),
            Some(1024 * 1024)
        );
    }

    #[test]
    fn this_machine_has_listen_counters() {
        let read = ListenCounters::read();
        assert!(read.is_ok(), "linux has /proc/net/netstat: {read:?}");
    }
}
