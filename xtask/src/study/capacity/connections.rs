//! How many persistent connections a capacity step opens, and the check, made before anything
//! runs, that they fit in the open-file limits of both the server and loadgen.
//!
//! An open-loop client at R requests per second against a server that answers after a delay
//! d has R × d requests in flight on average (Little's law); each needs a connection of its
//! own. Twice that leaves room for the latency to grow to the SLO's 1.5 × d and for bursts,
//! so a request is late only when the server is really behind. So the default is
//! C = max(50, ⌈2 × R × d⌉) per step, and the highest rate the search may try is the one
//! whose C still fits: every socket is a descriptor in both processes, whose limit here is
//! 20000 and cannot be raised. A step that would die of `EMFILE` halfway measures nothing,
//! hence the check up front, with the numbers a user needs to choose other flags.

use std::time::Duration;

use anyhow::bail;
use echo_core::format_duration;
use serde::{Deserialize, Serialize};

/// Descriptors kept aside in each process for what is not a connection: stdio, the
/// listener, epoll and wake-up descriptors, a runtime's or an interpreter's own files.
pub const RESERVED_FILES: u64 = 256;

/// Connections requests may find busy: the multiple of Little's law's average in flight.
pub const IN_FLIGHT_FACTOR: f64 = 2.0;

/// The fewest connections a step opens, so that at tiny delays one slow reply does not
/// hold up the schedule (and the zero-delay measurements of the issue used 50).
pub const MIN_CONNECTIONS: u64 = 50;

/// One process's open-file limit, by the name the error message gives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OpenFiles {
    /// `server` or `loadgen`, or a variant's name.
    pub process: String,
    /// Its soft `RLIMIT_NOFILE` as it will run (after raising it to the hard limit).
    pub limit: u64,
}

/// This process's hard open-file limit, which every process it starts inherits and may
/// raise its soft limit to (1024 when it cannot be read).
pub fn hard_open_files_limit() -> u64 {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes into the struct we pass and nothing else.
    let rc = unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) };
    if rc == 0 { limit.rlim_max } else { 1024 }
}

impl OpenFiles {
    /// The server's and loadgen's limits, both `limit`: what every study checks against.
    pub fn server_and_loadgen(limit: u64) -> Vec<OpenFiles> {
        ["server", "loadgen"]
            .map(|process| OpenFiles {
                process: process.to_owned(),
                limit,
            })
            .to_vec()
    }
}

/// The rule that gives each step its connection count.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConnectionRule {
    /// `--connections`: the same count at every rate; `None` follows Little's law.
    pub fixed: Option<u64>,
    /// The simulated delay each request waits on the server.
    pub delay_ms: f64,
}

impl ConnectionRule {
    /// Connections for a step at `requests_per_second`.
    pub fn for_rate(&self, requests_per_second: f64) -> u64 {
        self.fixed.unwrap_or_else(|| {
            let in_flight = IN_FLIGHT_FACTOR * requests_per_second * self.delay_ms / 1e3;
            (in_flight.ceil() as u64).max(MIN_CONNECTIONS)
        })
    }

    /// The highest rate `connections` carry under the rule; `None` at zero delay, where
    /// the connections do not limit the rate.
    fn carries(&self, connections: u64) -> Option<f64> {
        (self.delay_ms > 0.0)
            .then(|| (connections as f64 * 1e3 / (IN_FLIGHT_FACTOR * self.delay_ms)).floor())
    }
}

/// The connections of a study, checked against the open-file limits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ConnectionPlan {
    /// How each step's count is chosen.
    pub rule: ConnectionRule,
    /// The most connections both processes hold, their reserve kept.
    pub fit: u64,
    /// The highest rate the connections carry; the search's ceiling can be no higher.
    /// `None` at zero delay.
    pub carries_requests_per_second: Option<f64>,
}

/// Chooses the connections for a study at `delay`, given `--connections` (`fixed`) and
/// `--max-rate`, and checks them against every process's open-file limit.
///
/// # Errors
/// When the connections cannot fit or cannot carry the rate, naming the counts, the rate,
/// the delay and the process whose limit is the tightest, and what would fit instead.
pub fn plan(
    delay: Duration,
    fixed: Option<u64>,
    max_rate: Option<f64>,
    limits: &[OpenFiles],
) -> anyhow::Result<ConnectionPlan> {
    let Some(tightest) = limits.iter().min_by_key(|l| l.limit) else {
        bail!("no open-file limit given to check the connections against");
    };
    let fit = tightest.limit.saturating_sub(RESERVED_FILES);
    let rule = ConnectionRule {
        fixed,
        delay_ms: delay.as_secs_f64() * 1e3,
    };
    let within = || {
        format!(
            "the open-file limit of {} ({}, {RESERVED_FILES} kept for its other files) fits \
             at most {fit}",
            tightest.process, tightest.limit
        )
    };
    let delay_text = format_duration(delay);
    match fixed {
        Some(0) => bail!("--connections 0: want at least one connection"),
        Some(connections) if connections > fit => {
            bail!("--connections {connections} does not fit: {}", within())
        }
        Some(connections) => {
            if let Some(rate) = max_rate {
                let needed = (rate * rule.delay_ms / 1e3).ceil() as u64;
                if connections < needed {
                    bail!(
                        "--connections {connections} cannot carry --max-rate {rate} req/s at a \
                         {delay_text} delay: {needed} requests are in flight on average \
                         (Little's law)"
                    );
                }
            }
        }
        None => {
            if fit < MIN_CONNECTIONS {
                bail!(
                    "{} connections, fewer than the {MIN_CONNECTIONS} a step needs",
                    within()
                );
            }
            if let Some(rate) = max_rate {
                let needed = rule.for_rate(rate);
                if needed > fit {
                    let fits = rule.carries(fit).unwrap_or(rate);
                    bail!(
                        "--max-rate {rate} req/s at a {delay_text} delay needs {needed} \
                         connections ({IN_FLIGHT_FACTOR} × rate × delay), but {}: lower \
                         --max-rate to {fits} req/s",
                        within()
                    );
                }
            }
        }
    }
    Ok(ConnectionPlan {
        rule,
        fit,
        carries_requests_per_second: rule.carries(fixed.unwrap_or(fit)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_millis(100);

    fn both(limit: u64) -> Vec<OpenFiles> {
        vec![
            OpenFiles {
                process: "server".to_owned(),
                limit: 20_000,
            },
            OpenFiles {
                process: "loadgen".to_owned(),
                limit,
            },
        ]
    }

    #[test]
    fn each_step_gets_twice_littles_law_and_at_least_fifty() {
        let rule = plan(DELAY, None, None, &both(20_000)).expect("fits").rule;
        assert_eq!(rule.for_rate(20_000.0), 4_000);
        assert_eq!(rule.for_rate(1_234.0), 247);
        assert_eq!(rule.for_rate(10.0), MIN_CONNECTIONS);
    }

    #[test]
    fn the_rate_the_connections_carry_is_what_fits_the_tighter_limit() {
        let plan = plan(DELAY, None, None, &both(10_256)).expect("fits");
        assert_eq!(plan.fit, 10_000);
        assert_eq!(plan.carries_requests_per_second, Some(50_000.0));
    }

    #[test]
    fn a_fixed_count_is_used_at_every_rate() {
        let plan = plan(DELAY, Some(5_000), Some(20_000.0), &both(20_000)).expect("fits");
        assert_eq!(plan.rule.for_rate(1.0), 5_000);
        assert_eq!(plan.rule.for_rate(40_000.0), 5_000);
        assert_eq!(plan.carries_requests_per_second, Some(25_000.0));
    }

    #[test]
    fn a_max_rate_that_needs_more_connections_than_fit_is_refused_naming_the_values() {
        let message = plan(DELAY, None, Some(200_000.0), &both(20_000))
            .expect_err("40000 connections do not fit")
            .to_string();
        assert_eq!(
            message,
            "--max-rate 200000 req/s at a 100ms delay needs 40000 connections (2 × rate × \
             delay), but the open-file limit of server (20000, 256 kept for its other files) \
             fits at most 19744: lower --max-rate to 98720 req/s"
        );
    }

    #[test]
    fn a_fixed_count_over_the_limit_is_refused_naming_the_tighter_process() {
        let message = plan(DELAY, Some(15_000), None, &both(10_000))
            .expect_err("does not fit")
            .to_string();
        assert!(
            message.contains("--connections 15000 does not fit"),
            "{message}"
        );
        assert!(message.contains("loadgen (10000"), "{message}");
        assert!(message.contains("at most 9744"), "{message}");
    }

    #[test]
    fn a_fixed_count_too_small_for_the_rate_is_refused() {
        let message = plan(DELAY, Some(100), Some(5_000.0), &both(20_000))
            .expect_err("500 in flight")
            .to_string();
        assert!(
            message.contains("--connections 100 cannot carry"),
            "{message}"
        );
        assert!(message.contains("500 requests are in flight"), "{message}");
    }

    #[test]
    fn at_zero_delay_the_connections_do_not_limit_the_rate() {
        let plan = plan(Duration::ZERO, None, None, &both(20_000)).expect("fits");
        assert_eq!(plan.rule.for_rate(150_000.0), MIN_CONNECTIONS);
        assert_eq!(plan.carries_requests_per_second, None);
    }

    #[test]
    fn a_limit_too_small_for_any_step_is_refused() {
        let message = plan(DELAY, None, None, &both(300))
            .expect_err("44 fit")
            .to_string();
        assert!(message.contains("fits at most 44"), "{message}");
    }
}
