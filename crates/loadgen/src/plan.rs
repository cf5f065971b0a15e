//! The work of one phase, shared by every worker on every client thread: which connections
//! are left to make, when the phase ends, and (open loop) when each request is due.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// What one phase (the warmup or the measured one) must do.
#[derive(Debug)]
pub struct Plan {
    /// When the phase started: the origin of the schedule and of `all_connected`.
    pub start: Instant,
    /// Connections to make, or `None` when the phase is bounded by `deadline` only.
    n_connections: Option<u64>,
    /// No connection or request starts after this instant.
    deadline: Option<Instant>,
    /// Open-loop schedule, if any.
    schedule: Option<Schedule>,
    connections_claimed: AtomicU64,
    /// Requests finished (ok or failed), for the progress bar.
    pub finished: AtomicU64,
}

/// Open-loop schedule: request `i` is due at `start + i / rate`.
#[derive(Debug)]
struct Schedule {
    interval_ns: f64,
    n_slots: Option<u64>,
    slots_claimed: AtomicU64,
}

/// A request's start time in open-loop mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    /// When the request is due; its latency is measured from here.
    pub due: Instant,
    /// It was already overdue (beyond the tolerance) when a connection became free for it.
    pub late: bool,
}

impl Plan {
    /// A phase of `n_connections` connections (each with `requests_per_conn` requests), or
    /// of `duration` if given; with `rate`, requests are started on a schedule.
    pub fn new(
        n_connections: u64,
        requests_per_conn: u64,
        duration: Option<Duration>,
        rate: Option<f64>,
    ) -> Plan {
        let start = Instant::now();
        let bounded_by_count = duration.is_none();
        let schedule = rate.map(|rate| Schedule {
            interval_ns: 1e9 / rate,
            n_slots: bounded_by_count.then(|| n_connections.saturating_mul(requests_per_conn)),
            slots_claimed: AtomicU64::new(0),
        });
        Plan {
            start,
            n_connections: bounded_by_count.then_some(n_connections),
            deadline: duration.map(|duration| start + duration),
            schedule,
            connections_claimed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }

    /// Whether the phase's time is up.
    pub fn expired(&self, now: Instant) -> bool {
        self.deadline.is_some_and(|deadline| now >= deadline)
    }

    /// Takes the next connection to make; `false` when there are none left.
    pub fn claim_connection(&self) -> bool {
        if self.expired(Instant::now()) {
            return false;
        }
        let Some(limit) = self.n_connections else {
            return true;
        };
        self.connections_claimed.fetch_add(1, Ordering::Relaxed) < limit
    }

    /// Whether the phase makes a fixed number of connections (rather than run for a time).
    pub fn bounded_by_count(&self) -> bool {
        self.n_connections.is_some()
    }

    /// Whether requests are started on a schedule.
    pub fn open_loop(&self) -> bool {
        self.schedule.is_some()
    }

    /// Takes the next scheduled request, `None` when the schedule is exhausted or past the
    /// deadline. Closed loop always gets `Some` slot due now, never late.
    pub fn claim_slot(&self, now: Instant, tolerance: Duration) -> Option<Slot> {
        let Some(schedule) = &self.schedule else {
            return (!self.expired(now)).then_some(Slot {
                due: now,
                late: false,
            });
        };
        let index = schedule.slots_claimed.fetch_add(1, Ordering::Relaxed);
        if schedule.n_slots.is_some_and(|n_slots| index >= n_slots) {
            return None;
        }
        let offset = Duration::from_nanos((index as f64 * schedule.interval_ns).round() as u64);
        let due = self.start.checked_add(offset)?;
        if self.expired(due) {
            return None;
        }
        let late = now
            .checked_duration_since(due)
            .is_some_and(|lag| lag > tolerance);
        Some(Slot { due, late })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_counted_plan_hands_out_exactly_its_connections() {
        let plan = Plan::new(3, 1, None, None);
        let claimed = (0..10).filter(|_| plan.claim_connection()).count();
        assert_eq!(claimed, 3);
    }

    #[test]
    fn an_open_loop_plan_spaces_its_slots_by_the_rate_and_stops_at_the_count() {
        let plan = Plan::new(2, 2, None, Some(100.0));
        let at = plan.start;
        let dues: Vec<_> = (0..6)
            .filter_map(|_| plan.claim_slot(at, Duration::ZERO))
            .map(|slot| slot.due - plan.start)
            .collect();
        let expected: Vec<_> = (0..4).map(|i| Duration::from_millis(10 * i)).collect();
        assert_eq!(dues, expected);
    }

    #[test]
    fn a_slot_claimed_after_it_was_due_is_late() {
        let plan = Plan::new(1, 2, None, Some(10.0));
        let much_later = plan.start + Duration::from_secs(5);
        let slot = plan.claim_slot(much_later, Duration::from_millis(1));
        assert!(slot.is_some_and(|slot| slot.late));
    }

    #[test]
    fn a_slot_claimed_before_it_is_due_is_not_late() {
        let plan = Plan::new(1, 2, None, Some(10.0));
        let _first = plan.claim_slot(plan.start, Duration::ZERO);
        let second = plan.claim_slot(plan.start, Duration::ZERO);
        assert!(second.is_some_and(|slot| !slot.late));
    }
}
