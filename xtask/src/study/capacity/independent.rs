//! The check that the published rates are real (issue 10): after a server's search, an
//! independent open-loop client sends at 90 % of the server's max sustainable rate, with the
//! connections of the max step, the same server CPUs and the same client CPUs, and its p99
//! is held against the SLO.
//!
//! The client is `olc`, the small C epoll client of the loadgen fidelity benchmark
//! (`crates/loadgen/examples/fidelity/olc.c`, compiled here with `cc -O2` into the target
//! directory). It shares no code and no design with loadgen: one epoll loop, requests paced
//! per connection as wrk2 does rather than dispatched to an idle connection, exact
//! percentiles, latency from each request's intended start. So a rate loadgen reported
//! that only loadgen could reach would show here as a p99 over the SLO. Without a C compiler
//! the check is not made, and the report says so.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use echo_core::Recipe;
use serde::Deserialize;
use server_process::{limit_descriptors, reap_within};

use super::results::{AwayFromSlowdowns, IndependentCheck, IndependentOutcome, Latency};
use super::step::{Rig, cpu_list};
use crate::catalogue::Variant;
use crate::study::STOP_TIMEOUT;

/// The share of each server's max sustainable rate the independent client sends at.
pub const SHARE_OF_MAX: f64 = 0.9;

/// The check's measured window, after the search's warm-up. The window of the checks made
/// before the search's steps were shortened to 2 s (the confirmation guards the rate now),
/// kept so that checks compare across studies.
pub const WINDOW: Duration = Duration::from_secs(3);

/// The client's source, relative to the repository root.
pub const OLC_SOURCE: &str = "crates/loadgen/examples/fidelity/olc.c";

/// How the report names the client (kept in each run's JSON, so a report rendered again
/// still names the client that ran).
pub const CLIENT: &str = "olc (the C epoll client in crates/loadgen/examples/fidelity/olc.c, \
     built with cc -O2; it sleeps on its timer for at least 500 µs at a time)";

/// How long olc may take beyond its warm-up and window: it waits at most 5 s for replies
/// owed, and connecting thousands of sockets takes a second or so.
const SLACK: Duration = Duration::from_secs(30);

/// Compiles olc into `target_dir` (the workspace's `target/`).
///
/// # Errors
/// The reason the check cannot be made, as the report says it: no C compiler, or the one
/// there could not build the file.
pub fn build(root: &Path, target_dir: &Path) -> Result<PathBuf, String> {
    let source = root.join(OLC_SOURCE);
    let binary = target_dir.join("olc");
    let status = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg(&source)
        .stdout(Stdio::null())
        .status();
    match status {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err("no C compiler (cc is not on PATH)".to_owned())
        }
        Err(e) => Err(format!("cannot run cc: {e}")),
        Ok(status) if !status.success() => {
            Err(format!("cc -O2 could not build {OLC_SOURCE} ({status})"))
        }
        Ok(_) => Ok(binary),
    }
}

/// What olc prints (one JSON object on stdout).
#[derive(Debug, Deserialize)]
struct OlcReport {
    requests_ok: u64,
    requests_sent: u64,
    errors: u64,
    cpu_seconds: f64,
    latency: OlcPercentiles,
    schedule_lag: OlcPercentiles,
    /// Absent from an older olc's report.
    #[serde(default)]
    client_lag: Option<OlcPercentiles>,
}

/// olc's distributions, exact, in microseconds.
#[derive(Debug, Deserialize)]
struct OlcPercentiles {
    p50_us: f64,
    p90_us: f64,
    p99_us: f64,
    p99_9_us: f64,
    max_us: f64,
}

impl OlcPercentiles {
    fn latency(&self) -> Latency {
        Latency::from_micros([
            self.p50_us,
            self.p90_us,
            self.p99_us,
            self.p99_9_us,
            self.max_us,
        ])
    }
}

impl OlcReport {
    fn outcome(&self, away_from_slowdowns: Option<AwayFromSlowdowns>) -> IndependentOutcome {
        IndependentOutcome::Measured {
            requests_ok: self.requests_ok,
            requests_sent: self.requests_sent,
            errors: self.errors,
            latency: self.latency.latency(),
            schedule_lag_p99_ms: self.schedule_lag.p99_us / 1e3,
            client_lag_p99_ms: self.client_lag.as_ref().map(|lag| lag.p99_us / 1e3),
            cpu_seconds: self.cpu_seconds,
            away_from_slowdowns,
        }
    }
}

/// One check of `variant` at `delay`: a fresh server, olc at `requests_per_second` on
/// `connections` pinned to the loadgen CPUs, its report kept as `runs/<name>.olc.json`.
pub fn check(
    rig: &Rig,
    olc: &Path,
    variant: &Variant,
    delay: &Recipe,
    requests_per_second: f64,
    connections: u64,
    name: &str,
) -> IndependentCheck {
    // Logged, as loadgen's steps are, to be judged away from the slowdowns too.
    let request_log = rig.request_log(&format!("{name}.olc"));
    // The command line with the server's port and olc's request log as given: the record
    // names them by their places (`{port}`, `{request-log}`), the log being a temporary
    // file of this machine.
    let args = |port: &str, log: Option<&str>| -> Vec<String> {
        let mut args = vec!["-c".to_owned(), cpu_list(&rig.cpus.loadgen_cpus)];
        args.push(olc.display().to_string());
        args.extend([
            "127.0.0.1".to_owned(),
            port.to_owned(),
            connections.to_string(),
        ]);
        args.push(format!("{requests_per_second:.0}"));
        args.push(format!("{}", rig.window.as_secs_f64()));
        args.push(format!("{}", rig.warmup.as_secs_f64()));
        args.push(loadgen::config::DEFAULT_MESSAGE.to_owned());
        args.extend(log.map(str::to_owned));
        args
    };
    let recorded = args("{port}", request_log.as_ref().map(|_| "{request-log}"));
    let command = rig.settings.for_the_record(&quoted(&recorded));
    let log = request_log.as_ref().map(|path| path.display().to_string());
    let ran = run(
        rig,
        variant,
        delay,
        &|port| args(port, log.as_deref()),
        name,
    );
    let away =
        request_log.and_then(|path| rig.away_from_slowdowns(&path, &format!("{name}: olc's")));
    let outcome = match ran {
        Ok(report) => report.outcome(away),
        Err(reason) => IndependentOutcome::Failed { reason },
    };
    IndependentCheck {
        requests_per_second,
        connections,
        window_seconds: rig.window.as_secs_f64(),
        command,
        outcome,
    }
}

/// `taskset -c 1 target/olc ... 'the quick brown fox ...'`: the message is one argument.
fn quoted(args: &[String]) -> String {
    let words: Vec<String> = args
        .iter()
        .map(|a| {
            if a.contains(' ') {
                format!("'{a}'")
            } else {
                a.clone()
            }
        })
        .collect();
    format!("taskset {}", words.join(" "))
}

fn run(
    rig: &Rig,
    variant: &Variant,
    delay: &Recipe,
    args: &dyn Fn(&str) -> Vec<String>,
    name: &str,
) -> Result<OlcReport, String> {
    let started = rig.start(variant, delay).map_err(|e| e.to_string())?;
    let port = started.server.addr().port().to_string();
    let json = rig.runs_dir.join(format!("{name}.olc.json"));
    let out = File::create(&json).map_err(|e| format!("cannot create {}: {e}", json.display()))?;
    let mut command = Command::new("taskset");
    command
        .args(args(&port))
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(Stdio::null());
    // olc keeps the soft open-file limit it is given, and the plan checked the connections
    // against the hard one: give it that, as loadgen and the servers take it themselves.
    limit_descriptors(&mut command, super::connections::hard_open_files_limit());
    if let Some(priority) = rig.cpus.clients_fifo_priority {
        server_process::run_fifo(&mut command, priority);
    }
    let child = command.spawn();
    let reaped = child
        .map_err(|e| format!("cannot start olc: {e}"))
        .and_then(|mut child| {
            let deadline = rig.warmup + rig.window + SLACK;
            match reap_within(child.id(), deadline) {
                Ok(Some((status, _))) => Ok(status),
                Ok(None) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    Err(format!("olc did not finish within {deadline:?}"))
                }
                Err(e) => Err(format!("cannot reap olc: {e}")),
            }
        });
    let _ = started.server.stop(STOP_TIMEOUT);
    let status = reaped?;
    // olc exits 1 when it counted errors, and reports them.
    if !(status.success() || status.code() == Some(1)) {
        return Err(format!("olc failed ({status})"));
    }
    let text = std::fs::read_to_string(&json)
        .map_err(|e| format!("cannot read {}: {e}", json.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("olc printed {:?}: {e}", text.trim()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn olcs_report_reads_into_the_checks_outcome() {
        let text = r#"{"tool":"olc","requests_ok":2700,"requests_sent":3600,"errors":0,
            "queue_overflows":0,"requests_started_late":0,"cpu_seconds":0.250,
            "latency":{"count":2700,"p50_us":100200.0,"p90_us":100500.0,"p99_us":101000.0,"p99_9_us":102000.0,"max_us":103000.0},
            "latency_from_send":{"count":2700,"p50_us":100100.0,"p90_us":100400.0,"p99_us":100900.0,"p99_9_us":101000.0,"max_us":102000.0},
            "schedule_lag":{"count":2700,"p50_us":10.0,"p90_us":20.0,"p99_us":80.0,"p99_9_us":90.0,"max_us":100.0},
            "client_lag":{"count":2700,"p50_us":10.0,"p90_us":20.0,"p99_us":70.0,"p99_9_us":90.0,"max_us":100.0}}"#;
        let report: OlcReport = serde_json::from_str(text).expect("olc's format");
        let IndependentOutcome::Measured {
            requests_ok,
            latency,
            schedule_lag_p99_ms,
            client_lag_p99_ms,
            ..
        } = report.outcome(None)
        else {
            panic!("measured");
        };
        assert_eq!(requests_ok, 2700);
        assert_eq!(latency.p99_ms, 101.0);
        assert_eq!(schedule_lag_p99_ms, 0.08);
        assert_eq!(client_lag_p99_ms, Some(0.07));
    }

    #[test]
    fn an_older_olcs_report_without_a_client_lag_still_reads() {
        let text = r#"{"requests_ok":1,"requests_sent":1,"errors":0,"cpu_seconds":0.1,
            "latency":{"p50_us":1.0,"p90_us":1.0,"p99_us":1.0,"p99_9_us":1.0,"max_us":1.0},
            "schedule_lag":{"p50_us":1.0,"p90_us":1.0,"p99_us":1.0,"p99_9_us":1.0,"max_us":1.0}}"#;
        let report: OlcReport = serde_json::from_str(text).expect("olc's older format");
        assert!(matches!(
            report.outcome(None),
            IndependentOutcome::Measured {
                client_lag_p99_ms: None,
                ..
            }
        ));
    }

    #[test]
    fn the_recorded_command_quotes_the_message() {
        let args = ["-c", "1", "target/olc", "127.0.0.1", "{port}", "the fox"].map(String::from);
        assert_eq!(
            quoted(&args),
            "taskset -c 1 target/olc 127.0.0.1 {port} 'the fox'"
        );
    }
}
