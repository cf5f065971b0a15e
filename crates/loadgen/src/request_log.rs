//! The open loop's per-request log (`--request-log FILE`): the instants of every request
//! answered in the measured phase, one line each, for what the histograms cannot say, such
//! as *when* in a run the late starts fell.
//!
//! The fidelity benchmark reads it beside its CPU speed probe: late starts at 30,000
//! requests/s came almost all within 30 ms of a moment when the machine's CPUs ran slowed,
//! which only per-request times can show. Times are microseconds from the measured part's
//! start (the schedule's, after any warm-up), whose `CLOCK_MONOTONIC` reading heads the
//! file, so another process can place them on its own clock (Rust's [`Instant`] reads
//! `CLOCK_MONOTONIC` on Linux).
//!
//! ```text
//! # loadgen request log 1: answered requests of the measured phase, µs from the origin
//! origin_monotonic_seconds 51686.307775123
//! due ready sent done read
//! 392880 392880 392885 493063 493233
//! ```
//!
//! `done` is the reply's arrival as the kernel stamped it when `read` is given, else its
//! read; `read` is `-` when the reply carried no stamp.

use std::fmt::Write as _;
use std::io::{self, BufRead, BufWriter, Write};
use std::path::Path;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::config::LATE_START_TOLERANCE;
use crate::report::RequestTimes;

/// A slowed moment up to this long before a request's due time puts the request near a
/// slowdown: a client slowed to a fifth for 50 ms at half its core catches up within about
/// 30 ms after (at 30,000 requests/s over 10000 connections, 99.1 % of loadgen's late starts
/// were due within it, where 13.6 % of its requests were).
pub const NEAR_BEFORE_DUE: Duration = Duration::from_millis(30);

/// A slowed moment up to this long after the due time puts it near one too: one period of
/// the speed probe that finds the moments (10 ms), since a slowdown may begin up to a period
/// before the sample that sees it.
pub const NEAR_AFTER_DUE: Duration = Duration::from_millis(10);

/// How near a slowed moment must come to a request's due time to put the request near a
/// slowdown, and so out of the figures judged away from slowdowns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Near {
    /// A slowed moment up to this long before the due time.
    pub before_due: Duration,
    /// A slowed moment up to this long after it.
    pub after_due: Duration,
}

impl Near {
    /// For the client's own figures (its schedule lag and late starts): [`NEAR_BEFORE_DUE`]
    /// before, [`NEAR_AFTER_DUE`] after.
    pub const CLIENT: Near = Near {
        before_due: NEAR_BEFORE_DUE,
        after_due: NEAR_AFTER_DUE,
    };

    /// For the latency too: a slowdown up to `limit` after the due time can still put a
    /// reply over a latency limit of `limit`, so the window reaches that far (and never
    /// less far than [`Near::CLIENT`]'s). A reply later than `limit` with no slowed moment
    /// in that window was late while the machine ran at full speed.
    pub fn through_latency(limit: Duration) -> Near {
        Near {
            after_due: limit.max(NEAR_AFTER_DUE),
            ..Near::CLIENT
        }
    }
}

/// The first line of every request log, with its format version.
pub const HEADER: &str =
    "# loadgen request log 1: answered requests of the measured phase, µs from the origin";

/// One logged request, in microseconds from the log's origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoggedRequest {
    /// Its due time.
    pub due_us: u64,
    /// When a connection was idle for it (the later of that and `due_us`).
    pub ready_us: u64,
    /// When it was written.
    pub sent_us: u64,
    /// When its reply was in (arrival when `read_us` is given, else the read).
    pub done_us: u64,
    /// When its reply was read, when `done_us` is the kernel's arrival stamp.
    pub read_us: Option<u64>,
}

impl LoggedRequest {
    /// Its schedule lag, send minus due, in microseconds.
    pub fn lag_us(&self) -> u64 {
        self.sent_us.saturating_sub(self.due_us)
    }

    /// Its latency from the due time (coordinated omission corrected, as loadgen's
    /// histograms take it), in microseconds.
    pub fn latency_us(&self) -> u64 {
        self.done_us.saturating_sub(self.due_us)
    }
}

/// A request log as read back: the origin on `CLOCK_MONOTONIC` and the requests.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestLog {
    /// The origin's `CLOCK_MONOTONIC` reading, in seconds.
    pub origin_monotonic_seconds: f64,
    /// The requests, in the order they were answered.
    pub requests: Vec<LoggedRequest>,
}

impl RequestLog {
    /// Reads a log written by [`write()`].
    ///
    /// # Errors
    /// When the file cannot be read or is not a request log, naming the line at fault.
    pub fn read(path: &Path) -> io::Result<RequestLog> {
        let file = std::fs::File::open(path)?;
        let bad = |line: usize, what: &str| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("{} line {line}: {what}", path.display()),
            )
        };
        let mut lines = io::BufReader::new(file).lines();
        let mut next = |n: usize| lines.next().transpose()?.ok_or_else(|| bad(n, "missing"));
        if next(1)? != HEADER {
            return Err(bad(1, "not a loadgen request log of this version"));
        }
        let origin = next(2)?;
        let origin_monotonic_seconds = origin
            .strip_prefix("origin_monotonic_seconds ")
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| bad(2, "no origin_monotonic_seconds"))?;
        next(3)?;
        let mut requests = Vec::new();
        for (i, line) in lines.enumerate() {
            let line = line?;
            let fields: Vec<&str> = line.split(' ').collect();
            let us = |k: usize| fields.get(k).and_then(|f| f.parse::<u64>().ok());
            let (Some(due_us), Some(ready_us), Some(sent_us), Some(done_us), Some(read)) =
                (us(0), us(1), us(2), us(3), fields.get(4))
            else {
                return Err(bad(i + 4, "not five fields of microseconds"));
            };
            requests.push(LoggedRequest {
                due_us,
                ready_us,
                sent_us,
                done_us,
                read_us: read.parse().ok(),
            });
        }
        Ok(RequestLog {
            origin_monotonic_seconds,
            requests,
        })
    }

    /// Judges the logged requests away from the moments in `slowed` (in order, on this
    /// process's clock) when the machine ran slowed: those with no slowed moment `near` their
    /// due time.
    pub fn away_from_slowdowns(&self, slowed: &[Instant], near: Near) -> AwayFromSlowdowns {
        let origin = self.origin();
        let is_near = |due: Instant| {
            let from = due.checked_sub(near.before_due).unwrap_or(due);
            let i = slowed.partition_point(|&at| at < from);
            slowed.get(i).is_some_and(|&at| at <= due + near.after_due)
        };
        let late = |lag_us: u64| Duration::from_micros(lag_us) > LATE_START_TOLERANCE;
        let mut away_lags = Vec::new();
        let mut client_lags = Vec::new();
        let mut latencies = Vec::new();
        let mut from_send = Vec::new();
        let mut late_near = 0;
        for request in &self.requests {
            if is_near(origin + Duration::from_micros(request.due_us)) {
                late_near += u64::from(late(request.lag_us()));
            } else {
                away_lags.push(request.lag_us());
                client_lags.push(request.sent_us.saturating_sub(request.ready_us));
                latencies.push(request.latency_us());
                from_send.push(request.done_us.saturating_sub(request.sent_us));
            }
        }
        let ms = |us: u64| us as f64 / 1e3;
        AwayFromSlowdowns {
            requests: away_lags.len() as u64,
            requests_logged: self.requests.len() as u64,
            requests_started_late: away_lags.iter().filter(|&&lag| late(lag)).count() as u64,
            schedule_lag_p99_us: p99(&mut away_lags).map(|us| us as f64),
            client_lag_p99_ms: p99(&mut client_lags).map(ms),
            latency_p99_ms: p99(&mut latencies).map(ms),
            latency_from_send_p99_ms: p99(&mut from_send).map(ms),
            late_near_slowdowns: late_near,
            before_due_ms: near.before_due.as_secs_f64() * 1e3,
            after_due_ms: near.after_due.as_secs_f64() * 1e3,
        }
    }

    /// The origin as an instant on this process's clock (both read `CLOCK_MONOTONIC`).
    pub fn origin(&self) -> Instant {
        let now = Instant::now();
        let ahead = self.origin_monotonic_seconds - monotonic_seconds();
        if ahead >= 0.0 {
            now + Duration::from_secs_f64(ahead)
        } else {
            now.checked_sub(Duration::from_secs_f64(-ahead))
                .unwrap_or(now)
        }
    }

    /// The instant, on this process's clock, of a time `us` microseconds after the origin.
    pub fn instant_of(&self, us: u64) -> Instant {
        self.origin() + Duration::from_micros(us)
    }
}

/// A run judged on the requests due away from the machine's slowdowns: those with no slowed
/// moment from `before_due_ms` before their due time to `after_due_ms` after it. The rest
/// were due in a slowdown or in the catch-up after one, when the client ran on a slower
/// machine; they are left out of these figures, and of no other.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AwayFromSlowdowns {
    /// Requests due away from slowdowns.
    pub requests: u64,
    /// Requests in the log: every one answered in the measured schedule.
    pub requests_logged: u64,
    /// Of those away, the ones started more than 1 ms late.
    pub requests_started_late: u64,
    /// Their schedule lag's 99th percentile, µs (`None` when no request was away).
    pub schedule_lag_p99_us: Option<f64>,
    /// Their client lag's 99th percentile, ms: the send less the later of the due time and
    /// the moment a connection was idle for it (the client's own delay, without the wait
    /// for a busy connection). This and the two latencies below are `None` when no request
    /// was away, or in a judgement written before they were kept.
    #[serde(default)]
    pub client_lag_p99_ms: Option<f64>,
    /// Their latency's 99th percentile from the due time (coordinated omission corrected),
    /// ms.
    #[serde(default)]
    pub latency_p99_ms: Option<f64>,
    /// Their latency's 99th percentile from the send, ms.
    #[serde(default)]
    pub latency_from_send_p99_ms: Option<f64>,
    /// Late starts due near a slowdown.
    pub late_near_slowdowns: u64,
    /// How long before a due time a slowed moment puts the request near a slowdown, ms.
    pub before_due_ms: f64,
    /// How long after it, ms.
    pub after_due_ms: f64,
}

impl AwayFromSlowdowns {
    /// Late starts away from slowdowns, percent of the requests away.
    pub fn late_percent(&self) -> f64 {
        100.0 * self.requests_started_late as f64 / self.requests.max(1) as f64
    }

    /// The share of the logged requests that were away, percent.
    pub fn away_percent(&self) -> f64 {
        100.0 * self.requests as f64 / self.requests_logged.max(1) as f64
    }

    /// The share of all late starts that were due near a slowdown, percent.
    pub fn late_near_percent(&self) -> f64 {
        let late = self.requests_started_late + self.late_near_slowdowns;
        100.0 * self.late_near_slowdowns as f64 / late.max(1) as f64
    }
}

/// Writes `requests` to `path`, their times from `origin`.
///
/// # Errors
/// When the file cannot be written.
pub fn write(path: &Path, origin: Instant, requests: &[RequestTimes]) -> io::Result<()> {
    let origin_monotonic =
        monotonic_seconds() - Instant::now().duration_since(origin).as_secs_f64();
    let mut out = BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "{HEADER}")?;
    writeln!(out, "origin_monotonic_seconds {origin_monotonic:.9}")?;
    writeln!(out, "due ready sent done read")?;
    let us = |t: Instant| t.saturating_duration_since(origin).as_micros();
    let mut line = String::new();
    for times in requests {
        line.clear();
        let _ = write!(
            line,
            "{} {} {} {} ",
            us(times.due),
            us(times.ready),
            us(times.sent),
            us(times.done)
        );
        match times.read {
            Some(read) => {
                let _ = write!(line, "{}", us(read));
            }
            None => line.push('-'),
        }
        writeln!(out, "{line}")?;
    }
    out.flush()
}

/// The exact 99th percentile of `values` (sorted in place), `None` when there are none.
fn p99(values: &mut [u64]) -> Option<u64> {
    values.sort_unstable();
    let rank = (values.len() * 99 / 100).min(values.len().saturating_sub(1));
    values.get(rank).copied()
}

/// `CLOCK_MONOTONIC` now, in seconds.
fn monotonic_seconds() -> f64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as f64 + ts.tv_nsec as f64 * 1e-9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_reads_back_what_was_written_on_the_same_clock() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("requests.log");
        let origin = Instant::now();
        let at = |us: u64| origin + Duration::from_micros(us);
        let requests = [
            RequestTimes {
                due: at(100),
                ready: at(100),
                sent: at(130),
                done: at(100_200),
                read: Some(at(100_450)),
            },
            RequestTimes {
                due: at(200),
                ready: at(2_300),
                sent: at(2_310),
                done: at(102_400),
                read: None,
            },
        ];
        write(&path, origin, &requests).expect("written");
        let log = RequestLog::read(&path).expect("read back");
        assert_eq!(
            log.requests,
            [
                LoggedRequest {
                    due_us: 100,
                    ready_us: 100,
                    sent_us: 130,
                    done_us: 100_200,
                    read_us: Some(100_450),
                },
                LoggedRequest {
                    due_us: 200,
                    ready_us: 2_300,
                    sent_us: 2_310,
                    done_us: 102_400,
                    read_us: None,
                },
            ]
        );
        assert_eq!(log.requests[1].lag_us(), 2_110);
        // The origin maps back onto this process's clock (to within two clock readings).
        let back = log.instant_of(100);
        let off = back.max(at(100)) - back.min(at(100));
        assert!(off < Duration::from_millis(50), "{off:?}");
    }

    #[test]
    fn requests_due_near_a_slowed_moment_are_left_out_and_counted_when_late() {
        let request = |due_us: u64, lag_us: u64| LoggedRequest {
            due_us,
            ready_us: due_us,
            sent_us: due_us + lag_us,
            done_us: due_us + lag_us + 100_000,
            read_us: None,
        };
        let log = RequestLog {
            origin_monotonic_seconds: monotonic_seconds(),
            requests: vec![
                request(0, 50),          // away: on time
                request(100_000, 5_000), // 20 ms after the slowdown: near, late
                request(109_000, 300),   // 29 ms after: near, on time
                request(150_000, 2_000), // 70 ms after: away, late
                request(200_000, 100),   // away
            ],
        };
        let slowed = [log.instant_of(80_000)];
        let away = log.away_from_slowdowns(&slowed, Near::CLIENT);
        assert_eq!(away.requests_logged, 5);
        assert_eq!(away.requests, 3, "{away:?}");
        assert_eq!(away.requests_started_late, 1, "{away:?}");
        assert_eq!(away.late_near_slowdowns, 1, "{away:?}");
        assert_eq!(away.schedule_lag_p99_us, Some(2_000.0));
        assert!((away.late_near_percent() - 50.0).abs() < 1e-9);
        assert!((away.away_percent() - 60.0).abs() < 1e-9);
        // A moment up to 10 ms after the due time counts too; none at all leaves every one.
        let before = log.away_from_slowdowns(&[log.instant_of(205_000)], Near::CLIENT);
        assert_eq!(before.requests, 4, "{before:?}");
        assert_eq!(log.away_from_slowdowns(&[], Near::CLIENT).requests, 5);
    }

    #[test]
    fn judged_through_a_latency_limit_a_slowdown_during_the_wait_leaves_the_request_out() {
        let request = |due_us: u64, latency_us: u64| LoggedRequest {
            due_us,
            ready_us: due_us,
            sent_us: due_us + 20,
            done_us: due_us + latency_us,
            read_us: None,
        };
        let log = RequestLog {
            origin_monotonic_seconds: monotonic_seconds(),
            requests: vec![
                request(0, 180_000),       // slowed 100 ms after its due time: near
                request(300_000, 170_000), // nothing slowed near it: over the limit at full speed
                request(500_000, 101_000),
                request(600_000, 102_000),
            ],
        };
        let slowed = [log.instant_of(100_000)];
        let client = log.away_from_slowdowns(&slowed, Near::CLIENT);
        assert_eq!(
            client.requests, 4,
            "100 ms after is not near the client's lag"
        );
        assert_eq!(client.latency_p99_ms, Some(180.0));
        assert_eq!(client.latency_from_send_p99_ms, Some(179.98));
        assert_eq!(client.client_lag_p99_ms, Some(0.02));
        let near = Near::through_latency(Duration::from_millis(150));
        assert_eq!(near.before_due, NEAR_BEFORE_DUE);
        let away = log.away_from_slowdowns(&slowed, near);
        assert_eq!(away.requests, 3, "{away:?}");
        assert_eq!(
            away.latency_p99_ms,
            Some(170.0),
            "the full-speed breach stays"
        );
        assert_eq!(away.after_due_ms, 150.0);
        // A limit shorter than the client's window does not shrink it.
        assert_eq!(Near::through_latency(Duration::ZERO), Near::CLIENT);
    }

    #[test]
    fn a_file_that_is_not_a_request_log_is_refused_naming_the_line() {
        let dir = tempfile::tempdir().expect("a temporary directory");
        let path = dir.path().join("other.log");
        std::fs::write(&path, "hello\n").expect("written");
        let err = RequestLog::read(&path).expect_err("not a log");
        assert!(err.to_string().contains("line 1"), "{err}");
        std::fs::write(
            &path,
            format!(
                "{HEADER}\norigin_monotonic_seconds 1.5\ndue ready sent done read\n1 2 x 4 -\n"
            ),
        )
        .expect("written");
        let err = RequestLog::read(&path).expect_err("a bad field");
        assert!(err.to_string().contains("line 4"), "{err}");
    }
}
