//! How long a capacity study may take, worked out before anything runs: servers × (the
//! search's most steps × (warm-up + window + what starting and stopping a step costs) + its
//! most confirmations × the same with the confirmation window), plus one independent check
//! per server (when it is on, over its own window), and the two runs of loadgen alone (its
//! ceiling and its headroom).
//!
//! The estimate is the worst case of the path (every search takes its longest one), at a
//! typical cost per step, not a bound on the clock: a step whose server answers late costs
//! more than [`STEP_OVERHEAD`] (mio drowning at 98720 req/s on 19744 connections: 6.5 s for
//! a 2 s window after a 1 s warm-up; python-threaded at 16000 req/s: 9.7 s), so a study
//! whose searches go deep can outrun it by a little. Searches usually stop sooner. A worst
//! case over the time limit is refused before the first server starts, naming the flags
//! that shorten it.

use std::time::Duration;

use anyhow::bail;
use echo_core::format_duration;

use super::independent;

/// What each step costs besides its warm-up and window: starting the server and perf,
/// opening and priming the connections, the last replies, stopping both. Measured here
/// (server-mio, timed around `Rig::measure` in a throwaway build) at 0.3–0.5 s for a step
/// on 400 to 3200 connections and 1.3 s on 12800 (3.3–3.5 s and 4.3 s in all for a 2 s
/// window after a 1 s warm-up). It was 0.6–0.9 s and 2.8 s while loadgen warmed up on
/// connections of its own, and default studies then took 14.8–15.1 min against an
/// estimate of 14.9.
pub const STEP_OVERHEAD: Duration = Duration::from_secs(1);

/// The time a study may take at most.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// Servers to search.
    pub servers: u32,
    /// The most steps one search measures.
    pub max_steps_per_server: u32,
    /// The warm-up before every step, confirmation and check.
    pub warmup: Duration,
    /// One step: warm-up, window and [`STEP_OVERHEAD`].
    pub per_step: Duration,
    /// The most confirmations one search measures, besides its steps.
    pub max_confirmations_per_server: u32,
    /// One confirmation: warm-up, confirmation window and [`STEP_OVERHEAD`].
    pub per_confirmation: Duration,
    /// The independent checks, one per server when they are on.
    pub independent_checks: u32,
    /// One check: warm-up, the check's window and [`STEP_OVERHEAD`].
    pub per_check: Duration,
    /// loadgen's own runs: its closed-loop ceiling and its headroom at 1.25 × the best max.
    pub client_runs: Duration,
}

impl Budget {
    /// The budget of `servers` searches of at most `max_steps_per_server` steps each.
    pub fn new(
        servers: u32,
        max_steps_per_server: u32,
        warmup: Duration,
        window: Duration,
    ) -> Budget {
        let per_step = warmup + window + STEP_OVERHEAD;
        Budget {
            servers,
            max_steps_per_server,
            warmup,
            per_step,
            max_confirmations_per_server: 0,
            per_confirmation: Duration::ZERO,
            independent_checks: 0,
            per_check: warmup + independent::WINDOW + STEP_OVERHEAD,
            client_runs: 2 * per_step,
        }
    }

    /// The same budget with at most `confirmations` confirmations per search, each over
    /// `window` after the same warm-up as a step.
    pub fn with_confirmations(self, confirmations: u32, window: Duration) -> Budget {
        Budget {
            max_confirmations_per_server: confirmations,
            per_confirmation: self.warmup + window + STEP_OVERHEAD,
            ..self
        }
    }

    /// The same budget with (or without) an independent check of each server.
    pub fn with_independent_checks(self, on: bool) -> Budget {
        Budget {
            independent_checks: if on { self.servers } else { 0 },
            ..self
        }
    }

    /// The longest the study can take.
    pub fn worst_case(&self) -> Duration {
        self.per_step * (self.servers * self.max_steps_per_server)
            + self.per_confirmation * (self.servers * self.max_confirmations_per_server)
            + self.per_check * self.independent_checks
            + self.client_runs
    }

    /// The line printed before the study starts.
    pub fn describe(&self) -> String {
        format!(
            "estimate: at most {} servers × ({} steps × {} + {} confirmations × {}) + {} \
             independent checks × {} + {} for loadgen's ceiling and headroom = {} (worst \
             case; a search usually stops sooner)",
            self.servers,
            self.max_steps_per_server,
            format_duration(self.per_step),
            self.max_confirmations_per_server,
            format_duration(self.per_confirmation),
            self.independent_checks,
            format_duration(self.per_check),
            format_duration(self.client_runs),
            minutes(self.worst_case())
        )
    }

    /// Refuses a worst case over `limit`.
    ///
    /// # Errors
    /// When the worst case exceeds `limit`, naming both and the flags that shorten it.
    pub fn check(&self, limit: Duration) -> anyhow::Result<()> {
        if self.worst_case() > limit {
            bail!(
                "the study could take {} (worst case), over --time-limit {}: choose fewer \
                 --servers, a shorter --window, --confirm-window or --warmup, fewer \
                 --confirmations, a coarser --precision or a lower --max-rate, or raise \
                 --time-limit",
                minutes(self.worst_case()),
                minutes(limit)
            );
        }
        Ok(())
    }
}

/// `14.2 min`: durations of a study as a reader thinks of them.
fn minutes(duration: Duration) -> String {
    format!("{:.1} min", duration.as_secs_f64() / 60.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn the_worst_case_is_servers_times_steps_and_confirmations_and_a_check_each_plus_loadgens_two_runs()
     {
        let budget = Budget::new(8, 14, SECOND, 5 * SECOND)
            .with_confirmations(2, 10 * SECOND)
            .with_independent_checks(true);
        assert_eq!(budget.per_step, 7 * SECOND);
        assert_eq!(budget.per_confirmation, 12 * SECOND);
        assert_eq!(budget.per_check, 5 * SECOND);
        assert_eq!(
            budget.worst_case(),
            (8 * 14 * 7 + 8 * 2 * 12 + 8 * 5 + 14) * SECOND
        );
        assert_eq!(
            budget.describe(),
            "estimate: at most 8 servers × (14 steps × 7s + 2 confirmations × 12s) + 8 \
             independent checks × 5s + 14s for loadgen's ceiling and headroom = 17.2 min \
             (worst case; a search usually stops sooner)"
        );
        let unchecked = Budget::new(8, 14, SECOND, 5 * SECOND).with_independent_checks(false);
        assert_eq!(unchecked.worst_case(), (8 * 14 * 7 + 14) * SECOND);
    }

    #[test]
    fn a_worst_case_within_the_limit_is_accepted_and_one_over_it_refused_with_the_flags() {
        let budget = Budget::new(8, 15, SECOND, 5 * SECOND);
        assert!(budget.check(15 * 60 * SECOND).is_ok());
        let message = Budget::new(8, 15, SECOND, 10 * SECOND)
            .check(15 * 60 * SECOND)
            .expect_err("over the limit")
            .to_string();
        assert!(
            message.starts_with(
                "the study could take 24.4 min (worst case), over --time-limit 15.0 min"
            ),
            "{message}"
        );
        assert!(message.contains("--window"), "{message}");
    }
}
