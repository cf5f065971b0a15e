//! The timer queue of a loop-based server: readiness (mio) and completion (io_uring) loops have
//! no timers of their own, so the loop keeps them here.
//!
//! Shaped like async-io's reactor: an ordered map keyed by `(deadline, id)`. The id breaks ties
//! between timers due at the same instant (10000 connections accepted in one burst with a
//! 100 ms delay produce many equal deadlines) and makes every key unique, so cancelling is one
//! `remove` of a key the owner kept. The poll timeout is the distance to the first key.
//!
//! asyncio keeps the same thing as a heap of `TimerHandle`s (`loop._scheduled`), with
//! cancellation marking a handle dead instead of removing it; an ordered map removes at once,
//! so a queue of 10000 connections never holds stale entries.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// Names one armed timer; hand it back to [`Timers::cancel`]. Keys are never reused, so a key
/// kept past its timer's firing cancels nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimerKey {
    at: Instant,
    id: u64,
}

impl TimerKey {
    /// When the timer is due.
    pub fn at(&self) -> Instant {
        self.at
    }
}

/// An ordered queue of timers, each carrying a value `T` (for the loop: what to wake).
#[derive(Debug)]
pub struct Timers<T> {
    queue: BTreeMap<TimerKey, T>,
    next_id: u64,
}

impl<T> Default for Timers<T> {
    fn default() -> Self {
        Timers {
            queue: BTreeMap::new(),
            next_id: 0,
        }
    }
}

impl<T> Timers<T> {
    /// An empty queue.
    pub fn new() -> Self {
        Self::default()
    }

    /// Arms a timer due at `at`. Among timers due at the same instant, the one inserted first
    /// fires first.
    pub fn insert(&mut self, at: Instant, value: T) -> TimerKey {
        let key = TimerKey {
            at,
            id: self.next_id,
        };
        self.next_id += 1;
        self.queue.insert(key, value);
        key
    }

    /// Disarms a timer, returning its value, or `None` when it already fired or was cancelled.
    pub fn cancel(&mut self, key: TimerKey) -> Option<T> {
        self.queue.remove(&key)
    }

    /// The earliest deadline, if any timer is armed.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.queue.first_key_value().map(|(key, _)| key.at)
    }

    /// How long `poll` may sleep before the first timer is due: `None` (sleep until IO) when
    /// no timer is armed, zero when one is already due.
    pub fn next_timeout(&self, now: Instant) -> Option<Duration> {
        self.next_deadline()
            .map(|at| at.saturating_duration_since(now))
    }

    /// Removes and returns the earliest timer due at or before `now`. Call it in a loop; a
    /// timer armed while the loop runs fires in the same round only if it is already due.
    pub fn pop_expired(&mut self, now: Instant) -> Option<(TimerKey, T)> {
        let (key, _) = self.queue.first_key_value()?;
        if key.at > now {
            return None;
        }
        self.queue.pop_first()
    }

    /// Keeps `current`, one owner's armed timer, no later than `wanted`: replaces it when
    /// `wanted` is earlier (or gone), and otherwise leaves it armed.
    ///
    /// A timer *earlier* than the deadline is kept: when it fires, the owner shrugs off the
    /// early call and rearms. That makes the common case cheap: an idle deadline moves forward
    /// with every request, and moving it in the queue each time would cost a remove and an
    /// insert per request.
    pub fn rearm(
        &mut self,
        current: &mut Option<TimerKey>,
        wanted: Option<Instant>,
        value: impl FnOnce() -> T,
    ) {
        match (*current, wanted) {
            (Some(key), Some(at)) if key.at() <= at => {}
            (armed, wanted) => {
                if let Some(key) = armed {
                    self.cancel(key);
                }
                *current = wanted.map(|at| self.insert(at, value()));
            }
        }
    }

    /// Number of armed timers.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no timer is armed.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

/// What a loop-based server's timer wakes: the same three kinds in every such loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoopTimer {
    /// The connection with this slab key: a request's delay or its idle limit.
    Connection(usize),
    /// Try accepting again after a back-off.
    ResumeAccept,
    /// Shutdown has waited long enough for connections to finish.
    ShutdownDeadline,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn drain(timers: &mut Timers<&'static str>, now: Instant) -> Vec<&'static str> {
        std::iter::from_fn(|| timers.pop_expired(now).map(|(_, v)| v)).collect()
    }

    #[test]
    fn timers_fire_in_deadline_order_whatever_the_insertion_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.insert(t0 + ms(30), "third");
        timers.insert(t0 + ms(10), "first");
        timers.insert(t0 + ms(20), "second");
        assert_eq!(
            drain(&mut timers, t0 + ms(30)),
            ["first", "second", "third"]
        );
        assert!(timers.is_empty());
    }

    #[test]
    fn timers_due_at_the_same_instant_fire_in_insertion_order() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let keys: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|v| timers.insert(t0 + ms(5), v))
            .collect();
        assert_eq!(
            timers.len(),
            3,
            "equal deadlines must not overwrite each other"
        );
        assert_ne!(keys[0], keys[1]);
        assert_eq!(drain(&mut timers, t0 + ms(5)), ["a", "b", "c"]);
    }

    #[test]
    fn a_timer_not_yet_due_does_not_fire() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        timers.insert(t0 + ms(10), "later");
        assert_eq!(drain(&mut timers, t0 + ms(9)), Vec::<&str>::new());
        assert_eq!(
            drain(&mut timers, t0 + ms(10)),
            ["later"],
            "due exactly at its deadline"
        );
    }

    #[test]
    fn a_cancelled_timer_never_fires_and_cancelling_twice_is_harmless() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let gone = timers.insert(t0 + ms(1), "gone");
        timers.insert(t0 + ms(2), "kept");
        assert_eq!(timers.cancel(gone), Some("gone"));
        assert_eq!(timers.cancel(gone), None);
        assert_eq!(drain(&mut timers, t0 + ms(5)), ["kept"]);
    }

    #[test]
    fn a_key_kept_after_its_timer_fired_cancels_nothing_else() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let fired = timers.insert(t0, "fired");
        assert_eq!(drain(&mut timers, t0), ["fired"]);
        timers.insert(t0, "new");
        assert_eq!(timers.cancel(fired), None);
        assert_eq!(timers.len(), 1);
    }

    /// One step of a random workload for the model check below.
    #[derive(Debug, Clone)]
    enum Op {
        Insert(u64),
        Cancel(usize),
        Pop(u64),
    }

    fn op() -> impl proptest::strategy::Strategy<Value = Op> {
        use proptest::prelude::*;
        prop_oneof![
            (0..50u64).prop_map(Op::Insert),
            any::<usize>().prop_map(Op::Cancel),
            (0..50u64).prop_map(Op::Pop),
        ]
    }

    proptest::proptest! {
        /// Against a plain list sorted by (deadline, insertion order), any mix of inserts,
        /// cancellations and pops yields the same timers in the same order.
        #[test]
        fn the_queue_behaves_like_a_sorted_list(ops in proptest::collection::vec(op(), 0..200)) {
            let t0 = Instant::now();
            let mut timers = Timers::new();
            let mut model: Vec<(u64, usize, TimerKey)> = Vec::new();
            for (n, op) in ops.into_iter().enumerate() {
                match op {
                    Op::Insert(at) => {
                        let key = timers.insert(t0 + ms(at), n);
                        model.push((at, n, key));
                        model.sort_by_key(|&(at, n, _)| (at, n));
                    }
                    Op::Cancel(i) if !model.is_empty() => {
                        let (_, n, key) = model.remove(i % model.len());
                        proptest::prop_assert_eq!(timers.cancel(key), Some(n));
                    }
                    Op::Cancel(_) => {}
                    Op::Pop(now) => {
                        let expected = model.first().filter(|&&(at, _, _)| at <= now).map(|e| e.1);
                        if expected.is_some() {
                            model.remove(0);
                        }
                        let popped = timers.pop_expired(t0 + ms(now)).map(|(_, n)| n);
                        proptest::prop_assert_eq!(popped, expected);
                    }
                }
                proptest::prop_assert_eq!(timers.len(), model.len());
                let first = model.first().map(|&(at, _, _)| t0 + ms(at));
                proptest::prop_assert_eq!(timers.next_deadline(), first);
            }
        }
    }

    #[test]
    fn rearm_keeps_an_earlier_timer_replaces_a_later_one_and_cancels_when_none_is_wanted() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        let mut current = None;
        timers.rearm(&mut current, Some(t0 + ms(30)), || "a");
        timers.rearm(&mut current, Some(t0 + ms(50)), || "b");
        assert_eq!(timers.next_deadline(), Some(t0 + ms(30)), "earlier kept");
        timers.rearm(&mut current, Some(t0 + ms(10)), || "c");
        assert_eq!(
            (timers.len(), timers.next_deadline()),
            (1, Some(t0 + ms(10)))
        );
        timers.rearm(&mut current, None, || "d");
        assert!(timers.is_empty() && current.is_none());
    }

    #[test]
    fn next_timeout_is_none_when_empty_and_the_distance_to_the_first_deadline_otherwise() {
        let t0 = Instant::now();
        let mut timers = Timers::new();
        assert_eq!(timers.next_timeout(t0), None);
        let first = timers.insert(t0 + ms(40), "b");
        timers.insert(t0 + ms(70), "c");
        assert_eq!(timers.next_timeout(t0), Some(ms(40)));
        assert_eq!(timers.next_timeout(t0 + ms(15)), Some(ms(25)));
        assert_eq!(
            timers.next_timeout(t0 + ms(90)),
            Some(Duration::ZERO),
            "overdue is zero"
        );
        timers.cancel(first);
        assert_eq!(
            timers.next_timeout(t0),
            Some(ms(70)),
            "follows cancellation"
        );
        assert_eq!(timers.next_deadline(), Some(t0 + ms(70)));
    }
}
