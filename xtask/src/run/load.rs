//! Running loadgen against one server as a separate process, and reading its JSON report.
//!
//! loadgen runs in its own process, as the article's client did, so that its CPU time and
//! memory are never counted as the server's. Its report is read back through the loadgen
//! crate's own [`Report`] type, so a schema change breaks this build instead of the tables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use loadgen::{FailureKind, Report};
use server_process::{Capture, Usage, reap_within};

use crate::measured::{Measured, NotMeasured};
use crate::results::{LoadFigures, ScheduleLag};

/// How many of loadgen's last stderr lines a failed run quotes.
const TAIL_LINES: usize = 20;

/// How long loadgen's stderr may stay open after it was reaped (only a grandchild holding
/// the pipe would keep it open).
const STDERR_PATIENCE: Duration = Duration::from_secs(1);

/// What one loadgen run is asked to do.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// The loadgen executable.
    pub program: PathBuf,
    /// Connections to open.
    pub iterations: u64,
    /// Connections open at once; `None` for all.
    pub concurrency: Option<u64>,
    /// Sequential requests per connection.
    pub requests_per_conn: u64,
    /// loadgen's connect and reply timeout.
    pub timeout: Duration,
    /// A run for a fixed time on persistent connections instead of a count of connections.
    pub timed: Option<Timed>,
    /// CPUs to pin loadgen to (`taskset -c`), e.g. `1` or `2,3`; `None` leaves it free.
    pub cpus: Option<String>,
    /// Open loop: where loadgen logs every answered request (`--request-log`).
    pub request_log: Option<PathBuf>,
    /// Run loadgen under `SCHED_FIFO` at this priority
    /// ([`server_process::run_fifo`]); `None` leaves the default policy.
    pub fifo_priority: Option<i32>,
}

/// A load for a fixed time on persistent connections (each carries requests for the whole
/// run), after a warm-up: open loop at a rate, or closed loop as fast as replies come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timed {
    /// Open loop: requests started per second, each measured from its intended start;
    /// `None` for closed loop.
    pub requests_per_second: Option<f64>,
    /// Length of the measured phase.
    pub duration: Duration,
    /// Unmeasured time at the same rate before it.
    pub warmup: Duration,
    /// Open loop: give up on a request no connection could send within this of its due
    /// time (loadgen's `--give-up-after`); `None` leaves loadgen's default, its timeout.
    pub give_up_after: Option<Duration>,
}

impl LoadSpec {
    /// loadgen's arguments against `addr`, writing its report to `json`.
    pub fn args(&self, addr: SocketAddr, json: &Path) -> Vec<String> {
        let mut args = vec![
            addr.to_string(),
            "--connections".to_owned(),
            self.iterations.to_string(),
            "--requests-per-conn".to_owned(),
            self.requests_per_conn.to_string(),
            "--timeout".to_owned(),
            format!("{}ms", self.timeout.as_millis()),
            "--json".to_owned(),
            json.display().to_string(),
            "--quiet".to_owned(),
        ];
        if let Some(c) = self.concurrency {
            args.extend(["--concurrency".to_owned(), c.to_string()]);
        }
        if let Some(timed) = &self.timed {
            args.extend([
                "--duration".to_owned(),
                format!("{}ms", timed.duration.as_millis()),
                "--warmup".to_owned(),
                format!("{}ms", timed.warmup.as_millis()),
            ]);
            if let Some(rate) = timed.requests_per_second {
                args.extend(["--rate".to_owned(), format!("{}", rate.round())]);
            }
            if let Some(limit) = timed.give_up_after {
                args.extend([
                    "--give-up-after".to_owned(),
                    format!("{}ms", limit.as_millis()),
                ]);
            }
        }
        if let Some(log) = &self.request_log {
            args.extend(["--request-log".to_owned(), log.display().to_string()]);
        }
        args
    }

    /// The program and arguments that run loadgen against `addr`: behind `taskset -c` when
    /// it is pinned, so the command in the record is the one that ran.
    pub fn command(&self, addr: SocketAddr, json: &Path) -> (PathBuf, Vec<String>) {
        let args = self.args(addr, json);
        match &self.cpus {
            None => (self.program.clone(), args),
            Some(cpus) => {
                let mut pinned = vec!["-c".to_owned(), cpus.clone()];
                pinned.push(self.program.display().to_string());
                pinned.extend(args);
                (PathBuf::from("taskset"), pinned)
            }
        }
    }

    /// The longest a run may take before it is killed: every connection wave timing out
    /// once, plus slack. loadgen bounds itself; this only guards against a hung client.
    fn deadline(&self) -> Duration {
        if let Some(timed) = &self.timed {
            return timed.warmup + timed.duration + 2 * self.timeout + Duration::from_secs(60);
        }
        let waves = self
            .concurrency
            .map_or(1, |c| self.iterations.div_ceil(c.max(1)));
        let per_wave = self.timeout * u32::try_from(self.requests_per_conn + 1).unwrap_or(u32::MAX);
        per_wave * u32::try_from(waves).unwrap_or(u32::MAX) + Duration::from_secs(60)
    }
}

/// What came out of one loadgen run.
#[derive(Debug, Clone)]
pub struct LoadOutcome {
    /// The command line as run.
    pub command: String,
    /// Its report, when it wrote a readable one.
    pub report: Option<Report>,
    /// Why the run counts as failed, if it does.
    pub failure: Option<String>,
    /// loadgen's own CPU time (user plus system, every thread), when it was reaped.
    pub client_cpu_seconds: Option<f64>,
}

/// Runs loadgen against `addr`; its report goes to `json` and is read back.
///
/// Never returns an error: a client that cannot start, hangs or writes no report makes a
/// failed run, described in [`LoadOutcome::failure`].
pub fn run(spec: &LoadSpec, addr: SocketAddr, json: &Path) -> LoadOutcome {
    let (program, args) = spec.command(addr, json);
    let command = format!("{} {}", program.display(), args.join(" "));
    let _ = std::fs::remove_file(json);
    let (failure, usage) = match run_to_end(spec, &program, &args) {
        Ok((failure, usage)) => (failure, Some(usage)),
        Err(reason) => (Some(reason), None),
    };
    let report = std::fs::read_to_string(json)
        .map_err(|e| format!("loadgen wrote no report to {}: {e}", json.display()))
        .and_then(|text| Report::from_json(&text).map_err(|e| format!("loadgen's report: {e}")));
    let (report, failure) = match report {
        Ok(report) => {
            let failed = request_failure(&report);
            (Some(report), failed.or(failure))
        }
        Err(reason) => (
            None,
            Some(failure.map_or(reason.clone(), |f| format!("{reason}; {f}"))),
        ),
    };
    LoadOutcome {
        command,
        report,
        failure,
        client_cpu_seconds: usage.map(|u| u.cpu_seconds()),
    }
}

/// Runs loadgen until it exits or its deadline passes, and reaps it with `wait4` so that
/// the client's own CPU time is known. The text is its stderr tail when it exited non-zero
/// (which it does when any request failed).
fn run_to_end(
    spec: &LoadSpec,
    program: &Path,
    args: &[String],
) -> Result<(Option<String>, Usage), String> {
    let mut command = Command::new(program);
    if let Some(priority) = spec.fifo_priority {
        server_process::run_fifo(&mut command, priority);
    }
    let mut child = command
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot start loadgen {}: {e}", program.display()))?;
    let stderr = child.stderr.take().map(Capture::start);
    let reaped = reap_within(child.id(), spec.deadline()).map_err(|e| e.to_string())?;
    let Some((status, usage)) = reaped else {
        let _ = child.kill();
        let _ = child.wait();
        let limit = humantime::format_duration(spec.deadline());
        return Err(format!("loadgen did not finish within {limit}"));
    };
    let tail = stderr.map_or_else(String::new, |capture| {
        capture.wait_for_end(STDERR_PATIENCE);
        capture.tail(TAIL_LINES).join("; ")
    });
    let failure = (!status.success()).then(|| format!("loadgen failed ({status}): {tail}"));
    Ok((failure, usage))
}

/// A run with any failed or unsent request is a failed run.
fn request_failure(report: &Report) -> Option<String> {
    if report.requests_failed == 0 && report.requests_not_sent == 0 {
        return None;
    }
    let kinds: Vec<String> = FailureKind::ALL
        .iter()
        .filter(|&&k| report.failures.get(k) > 0)
        .map(|&k| format!("{} {}", k.name(), report.failures.get(k)))
        .collect();
    let total = report.requests_ok + report.requests_failed + report.requests_not_sent;
    Some(format!(
        "{} of {total} requests failed ({}), {} not sent",
        report.requests_failed,
        kinds.join(", "),
        report.requests_not_sent
    ))
}

/// The part of a loadgen report the tables use, with latencies in milliseconds.
pub fn figures(report: &Report) -> LoadFigures {
    let failures_by_kind = FailureKind::ALL
        .iter()
        .filter(|&&k| report.failures.get(k) > 0)
        .map(|&k| (k.name().to_owned(), report.failures.get(k)))
        .collect();
    LoadFigures {
        wall_seconds: report.wall_time_seconds,
        requests_ok: report.requests_ok,
        requests_failed: report.requests_failed + report.requests_not_sent,
        failures_by_kind,
        throughput_rps: report.throughput_requests_per_second,
        latency_p50_ms: report.latency.p50_us / 1000.0,
        latency_p99_ms: report.latency.p99_us / 1000.0,
        latency_max_ms: report.latency.max_us / 1000.0,
        all_connected_seconds: report.all_connected_seconds,
        schedule_lag: schedule_lag(report).ok(),
    }
}

/// The one place that reads loadgen's schedule lag from its report, for every study (the
/// capacity study's client-bound judgement, compare's lag line, issue 15).
///
/// It is the client's own lag (`client_lag`, schema 3): a request that waited because every
/// connection was busy waited for the server, which is not the client's lag. Reports written
/// before it have only `schedule_lag`, read as before. Closed-loop runs keep no schedule
/// (loadgen reports a lag `count` of 0): not measured.
pub fn schedule_lag(report: &Report) -> Measured<ScheduleLag> {
    let lag = if report.client_lag.count > 0 {
        &report.client_lag
    } else {
        &report.schedule_lag
    };
    if lag.count == 0 {
        return Err(NotMeasured::new("closed loop: loadgen keeps no schedule"));
    }
    Ok(ScheduleLag {
        p50_ms: lag.p50_us / 1e3,
        p99_ms: lag.p99_us / 1e3,
        max_ms: lag.max_us / 1e3,
    })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use loadgen::Measurements;
    use loadgen::report::{Environment, RequestTimes, RunInfo};
    use std::time::{Instant, SystemTime};

    /// A report of one open-loop request that waited `wait` for a connection and then went
    /// out `client_lag` later; its reply arrived 100 ms after that and was read 2 ms later.
    pub(crate) fn report_of_one_request(wait: Duration, client_lag: Duration) -> Report {
        let due = Instant::now();
        let sent = due + wait + client_lag;
        let done = sent + Duration::from_millis(100);
        let times = RequestTimes {
            due,
            ready: due + wait,
            sent,
            done,
            read: Some(done + Duration::from_millis(2)),
        };
        let mut measurements = Measurements::default();
        measurements.record_request(&times, true);
        let target = "127.0.0.1:9".parse().expect("address");
        let info = RunInfo {
            target: "127.0.0.1:9".to_owned(),
            parameters: loadgen::Config::new(target).parameters(),
            environment: Environment::current(20_000),
            started_at: SystemTime::UNIX_EPOCH,
            wall_time: Duration::from_secs(1),
            runs_merged: 1,
        };
        Report::build(info, &measurements).expect("builds")
    }

    #[test]
    fn the_lag_read_is_the_clients_own_not_the_wait_for_a_busy_connection() {
        let report = report_of_one_request(Duration::from_millis(30), Duration::from_micros(50));
        let lag = schedule_lag(&report).expect("open loop");
        assert!(lag.p99_ms < 0.1, "{lag:?}");
        assert!(report.schedule_lag.p99_us >= 30_000.0);
    }

    #[test]
    fn a_report_without_a_client_lag_is_read_by_its_schedule_lag() {
        let mut report = report_of_one_request(Duration::ZERO, Duration::from_millis(3));
        report.client_lag = loadgen::Percentiles::default();
        let lag = schedule_lag(&report).expect("open loop");
        assert!(lag.p99_ms >= 3.0, "{lag:?}");
    }
}
