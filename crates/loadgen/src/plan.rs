//! The work of one phase, shared by every worker on every client thread: which connections
//! are left to make, when the phase ends, and (open loop) when each request is due.
//!
//! Open loop, the schedule's origin is set only once every client thread has opened its
//! connections ([`Plan::begin_schedule`]): ten thousand connects cost the client about half
//! a second of CPU, and made inside the schedule they delayed the first requests by up to
//! 300 ms, which was most of the p99 the issue-15 runs blamed on the server.
//!
//! A timed phase may begin with a warm-up ([`Plan::with_warmup`]): the schedule runs through
//! it on the same connections, and only the requests due (closed loop: sent) after it are
//! measured. The warm-up was a phase of its own, with connections of its own, closed before
//! the measured phase opened new ones: a second connect storm and the drain of the
//! warm-up's last replies (a capacity step at 12800 connections took 5.8 s for its 3 s of
//! load, 4.3 s since), and a window that began with no request in flight. A continuous
//! schedule reaches the window in its steady state, as olc's does. Against server-mio at
//! 50,000 requests/s over 10000 connections (1 s warm-up, 2 s window, a fresh server each
//! run), three pairs alternating with the binary before: p99 121.8, 136.7 and 141.4 ms
//! against 160.0, 178.1 and 347.9, and the server's CPU 2.67–2.70 s against 3.06–3.38 s.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// What one phase (the warmup or the measured one) must do.
#[derive(Debug)]
pub struct Plan {
    /// When the phase was made: the origin of `all_connected`.
    pub created: Instant,
    /// When the measured time starts: `created` in closed loop, the schedule's origin in open
    /// loop (set by [`Plan::begin_schedule`]).
    origin: OnceLock<Instant>,
    /// Connections to make, or `None` when the phase is bounded by `duration` only.
    n_connections: Option<u64>,
    /// No connection or request starts later than this after the origin (the warm-up
    /// included).
    duration: Option<Duration>,
    /// The unmeasured start of a timed phase: what is due (closed loop: sent) before
    /// `origin + warmup` is not recorded.
    warmup: Duration,
    /// Open-loop schedule, if any.
    schedule: Option<Schedule>,
    connections_claimed: AtomicU64,
    /// Requests finished (ok or failed), for the progress bar.
    pub finished: AtomicU64,
}

/// Open-loop schedule: request `i` is due at `origin + i / rate`.
#[derive(Debug)]
struct Schedule {
    interval_ns: f64,
    n_slots: Option<u64>,
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
        let created = Instant::now();
        let bounded_by_count = duration.is_none();
        let schedule = rate.map(|rate| Schedule {
            interval_ns: 1e9 / rate,
            n_slots: bounded_by_count.then(|| n_connections.saturating_mul(requests_per_conn)),
        });
        let origin = OnceLock::new();
        if schedule.is_none() {
            let _ = origin.set(created);
        }
        Plan {
            created,
            origin,
            n_connections: bounded_by_count.then_some(n_connections),
            duration,
            warmup: Duration::ZERO,
            schedule,
            connections_claimed: AtomicU64::new(0),
            finished: AtomicU64::new(0),
        }
    }

    /// The same timed phase, run for `warmup` longer, that long at its start unmeasured.
    /// A phase bounded by a count has no time to warm up in: it is returned as it is.
    #[must_use]
    pub fn with_warmup(self, warmup: Duration) -> Plan {
        let Some(duration) = self.duration else {
            return self;
        };
        Plan {
            duration: Some(duration.saturating_add(warmup)),
            warmup,
            ..self
        }
    }

    /// Starts the open-loop schedule now, unless another thread already has; returns its
    /// origin. Every client thread calls it once its connections are open.
    pub fn begin_schedule(&self) -> Instant {
        *self.origin.get_or_init(Instant::now)
    }

    /// Where measured time starts (the schedule's origin in open loop); `created` until the
    /// schedule has begun.
    pub fn start(&self) -> Instant {
        self.origin.get().copied().unwrap_or(self.created)
    }

    /// Where the measured part of the phase starts: the warm-up's end.
    pub fn measured_from(&self) -> Instant {
        self.start() + self.warmup
    }

    /// Whether a request due (closed loop: sent) at `at` is measured, not part of the
    /// warm-up.
    pub fn measures(&self, at: Instant) -> bool {
        at >= self.measured_from()
    }

    /// Whether the phase's time is up.
    pub fn expired(&self, now: Instant) -> bool {
        self.duration
            .is_some_and(|duration| now >= self.start() + duration)
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

    /// When open-loop request `index` is due; `None` past the count or the deadline, and
    /// always in closed loop. Each client thread dispatches its own share of the indices
    /// (every `n_threads`-th), so the threads never contend for the schedule.
    pub fn due(&self, index: u64) -> Option<Instant> {
        let schedule = self.schedule.as_ref()?;
        if schedule.n_slots.is_some_and(|n_slots| index >= n_slots) {
            return None;
        }
        let offset = Duration::from_nanos((index as f64 * schedule.interval_ns).round() as u64);
        let due = self.start().checked_add(offset)?;
        (!self.expired(due)).then_some(due)
    }

    /// The due times of requests `first`, `first + stride`, ... in order, until the schedule
    /// ends: one client thread's share. Read lazily, so it can be made before the schedule
    /// begins.
    pub fn dues(self: Arc<Plan>, first: u64, stride: u64) -> impl Iterator<Item = Instant> {
        (0..).map_while(move |k: u64| self.nth_due(first, stride, k))
    }

    /// When the `k`-th request of the share `first`, `first + stride`, ... is due (see
    /// [`Plan::dues`]); `None` past the schedule's end.
    pub fn nth_due(&self, first: u64, stride: u64, k: u64) -> Option<Instant> {
        self.due(first.checked_add(k.checked_mul(stride)?)?)
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
    fn an_open_loop_plan_spaces_its_requests_by_the_rate_and_stops_at_the_count() {
        let plan = Plan::new(2, 2, None, Some(100.0));
        let origin = plan.begin_schedule();
        let dues: Vec<_> = (0..6)
            .filter_map(|index| plan.due(index))
            .map(|due| due - origin)
            .collect();
        let expected: Vec<_> = (0..4).map(|i| Duration::from_millis(10 * i)).collect();
        assert_eq!(dues, expected);
    }

    #[test]
    fn each_thread_gets_every_n_th_due_time_of_the_schedule() {
        let plan = Arc::new(Plan::new(3, 2, None, Some(1000.0)));
        let origin = plan.begin_schedule();
        let odd: Vec<_> = Arc::clone(&plan)
            .dues(1, 2)
            .map(|due| due - origin)
            .collect();
        let expected: Vec<_> = [1, 3, 5].map(Duration::from_millis).to_vec();
        assert_eq!(odd, expected);
    }

    #[test]
    fn an_open_loop_plan_has_no_request_due_past_its_duration() {
        let plan = Plan::new(1, 1, Some(Duration::from_millis(25)), Some(100.0));
        plan.begin_schedule();
        let n_due = (0..100).filter_map(|index| plan.due(index)).count();
        assert_eq!(n_due, 3, "due at 0, 10 and 20 ms");
    }

    #[test]
    fn a_warmed_up_plan_schedules_through_its_warmup_and_measures_only_after_it() {
        let warmup = Duration::from_millis(20);
        let plan =
            Plan::new(1, 1, Some(Duration::from_millis(30)), Some(100.0)).with_warmup(warmup);
        let origin = plan.begin_schedule();
        let dues: Vec<_> = (0..100).filter_map(|index| plan.due(index)).collect();
        assert_eq!(dues.len(), 5, "due at 0, 10, 20, 30 and 40 ms");
        let measured: Vec<_> = dues
            .iter()
            .filter(|&&due| plan.measures(due))
            .map(|&due| due - origin)
            .collect();
        assert_eq!(measured, [20, 30, 40].map(Duration::from_millis));
        assert_eq!(plan.measured_from(), origin + warmup);
    }

    #[test]
    fn a_plan_bounded_by_count_has_no_warmup() {
        let plan = Plan::new(2, 1, None, Some(100.0)).with_warmup(Duration::from_secs(1));
        let origin = plan.begin_schedule();
        assert_eq!(plan.measured_from(), origin);
        assert_eq!((0..10).filter_map(|index| plan.due(index)).count(), 2);
    }

    #[test]
    fn the_schedule_begins_once_and_every_thread_sees_the_same_origin() {
        let plan = Plan::new(1, 2, None, Some(10.0));
        assert_eq!(plan.start(), plan.created);
        let first = plan.begin_schedule();
        assert_eq!(plan.begin_schedule(), first);
        assert_eq!(plan.start(), first);
    }

    #[test]
    fn a_closed_loop_plan_has_no_schedule_and_starts_when_made() {
        let plan = Plan::new(1, 2, None, None);
        assert_eq!(plan.due(0), None);
        assert_eq!(plan.start(), plan.created);
    }
}
