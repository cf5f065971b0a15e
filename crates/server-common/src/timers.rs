//! The timer queue of a loop-based server: readiness (mio) and completion (io_uring) loops have
//! no timers of their own, so the loop keeps them here, with what those timers wake
//! ([`LoopTimer`]) and how they fire ([`fire_due`], the pause of accepting, the shutdown
//! deadline), the same in every such loop.
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

    /// Whether the timer `key` names is still armed (neither fired nor cancelled).
    pub fn contains(&self, key: TimerKey) -> bool {
        self.queue.contains_key(&key)
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

/// A loop whose timers are [`LoopTimer`]s, as server-mio's readiness loop and server-uring's
/// completion loop are: what each kind does when it fires.
///
/// Which timers are due, in what order, and which wait for the next turn is decided once, by
/// [`fire_due`]. What a timer does stays with each loop, because readiness and completion
/// differ there: a readiness loop closes a connection at once, so its shutdown deadline only
/// ends the loop; a completion loop must first cancel what each connection has in the ring and
/// wait for it to come back, so its deadline starts those closes.
pub trait TimerLoop {
    /// The loop's timer queue.
    fn timers(&mut self) -> &mut Timers<LoopTimer>;

    /// The timer `fired` of the connection at slab key `key` is due (its request's delay or
    /// its idle limit). The connection may be gone, or `fired` may be an earlier timer it kept
    /// (see [`Timers::rearm`]), whose early call its protocol shrugs off.
    fn connection_due(&mut self, key: usize, fired: TimerKey);

    /// The loop's [`ResumeTimer`] fired: the pause of accepting is over.
    fn resume_due(&mut self);

    /// The shutdown deadline armed by [`arm_shutdown_deadline`] passed: what is still open is
    /// closed.
    fn shutdown_deadline_due(&mut self);
}

/// Fires every timer of `event_loop` due at `now`, earliest first (asyncio: moving due
/// `TimerHandle`s to `_ready`). It fires at most as many timers as were armed when it
/// started, so a timer armed while firing (a connection rearming after its timeout) cannot
/// keep the loop here: it waits for the next turn.
pub fn fire_due(event_loop: &mut impl TimerLoop, now: Instant) {
    for _ in 0..event_loop.timers().len() {
        let Some((fired, timer)) = event_loop.timers().pop_expired(now) else {
            return;
        };
        match timer {
            LoopTimer::Connection(key) => event_loop.connection_due(key, fired),
            LoopTimer::ResumeAccept => event_loop.resume_due(),
            LoopTimer::ShutdownDeadline => event_loop.shutdown_deadline_due(),
        }
    }
}

/// The one timer that ends a loop's pause of accepting (a back-off after an accept failure,
/// or a re-check at the connection limit). How a loop stops accepting differs (a readiness
/// loop deregisters its listener, a completion loop cancels its accept); the pause is the same.
///
/// Whether it is armed is read from the queue, not kept beside it: once its timer has fired,
/// it is disarmed without the loop having to say so, and the next pause arms anew.
#[derive(Debug, Default)]
pub struct ResumeTimer {
    key: Option<TimerKey>,
}

impl ResumeTimer {
    /// Pauses accepting until `at`, unless a pause is already armed: failures during a pause
    /// do not push its end further away.
    pub fn arm(&mut self, timers: &mut Timers<LoopTimer>, at: Instant) {
        if !self.is_armed(timers) {
            self.key = Some(timers.insert(at, LoopTimer::ResumeAccept));
        }
    }

    /// Disarms the pause: accepting resumes sooner (a connection closed and freed room), or
    /// never (the loop is shutting down).
    pub fn cancel(&mut self, timers: &mut Timers<LoopTimer>) {
        if let Some(key) = self.key.take() {
            timers.cancel(key);
        }
    }

    /// Whether accepting is paused until the timer fires.
    pub fn is_armed(&self, timers: &Timers<LoopTimer>) -> bool {
        self.key.is_some_and(|key| timers.contains(key))
    }
}

/// The timers' part of a loop's shutdown, the same in every loop: accepting will not resume,
/// and the loop is told [`TimerLoop::shutdown_deadline_due`] at `at`.
pub fn arm_shutdown_deadline(
    timers: &mut Timers<LoopTimer>,
    resume: &mut ResumeTimer,
    at: Instant,
) {
    resume.cancel(timers);
    timers.insert(at, LoopTimer::ShutdownDeadline);
}

/// The connections (slab keys) still open when the shutdown deadline passed, logged once as a
/// warning. Each loop then closes them its own way: a readiness loop at once, a completion
/// loop once their operations have come back from the ring.
pub fn left_at_deadline(keys: impl Iterator<Item = usize>) -> Vec<usize> {
    let keys: Vec<usize> = keys.collect();
    if !keys.is_empty() {
        tracing::warn!(
            n_connections = keys.len(),
            "shutdown deadline passed; closing"
        );
    }
    keys
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

    /// A loop that records what its timers woke, and whose connections, when `rearm_due`,
    /// arm a timer already due each time theirs fires.
    struct Recorder {
        timers: Timers<LoopTimer>,
        woken: Vec<(LoopTimer, Option<TimerKey>)>,
        rearm_due: Option<Instant>,
    }

    impl Recorder {
        fn new() -> Self {
            Recorder {
                timers: Timers::new(),
                woken: Vec::new(),
                rearm_due: None,
            }
        }

        fn woken(&mut self) -> Vec<LoopTimer> {
            self.woken.drain(..).map(|(timer, _)| timer).collect()
        }
    }

    impl TimerLoop for Recorder {
        fn timers(&mut self) -> &mut Timers<LoopTimer> {
            &mut self.timers
        }

        fn connection_due(&mut self, key: usize, fired: TimerKey) {
            self.woken.push((LoopTimer::Connection(key), Some(fired)));
            if let Some(at) = self.rearm_due {
                self.timers.insert(at, LoopTimer::Connection(key));
            }
        }

        fn resume_due(&mut self) {
            self.woken.push((LoopTimer::ResumeAccept, None));
        }

        fn shutdown_deadline_due(&mut self) {
            self.woken.push((LoopTimer::ShutdownDeadline, None));
        }
    }

    #[test]
    fn due_loop_timers_wake_their_kind_in_deadline_order_and_later_ones_wait() {
        let t0 = Instant::now();
        let mut event_loop = Recorder::new();
        let timers = &mut event_loop.timers;
        let second = timers.insert(t0 + ms(20), LoopTimer::Connection(2));
        timers.insert(t0 + ms(30), LoopTimer::ShutdownDeadline);
        timers.insert(t0 + ms(10), LoopTimer::Connection(1));
        timers.insert(t0 + ms(5), LoopTimer::ResumeAccept);
        fire_due(&mut event_loop, t0 + ms(20));
        assert_eq!(
            event_loop.woken.last(),
            Some(&(LoopTimer::Connection(2), Some(second))),
            "a connection is told which of its timers fired"
        );
        assert_eq!(
            event_loop.woken(),
            [
                LoopTimer::ResumeAccept,
                LoopTimer::Connection(1),
                LoopTimer::Connection(2)
            ]
        );
        fire_due(&mut event_loop, t0 + ms(30));
        assert_eq!(event_loop.woken(), [LoopTimer::ShutdownDeadline]);
        assert!(event_loop.timers.is_empty());
    }

    #[test]
    fn a_loop_timer_armed_while_firing_waits_for_the_next_turn_even_when_due() {
        let t0 = Instant::now();
        let mut event_loop = Recorder::new();
        event_loop.rearm_due = Some(t0);
        event_loop.timers.insert(t0, LoopTimer::Connection(7));
        fire_due(&mut event_loop, t0);
        assert_eq!(event_loop.woken(), [LoopTimer::Connection(7)]);
        assert_eq!(event_loop.timers.len(), 1, "the new timer is left armed");
        fire_due(&mut event_loop, t0);
        assert_eq!(event_loop.woken(), [LoopTimer::Connection(7)]);
    }

    /// A queue whose only timer is a pause of accepting until `at`.
    fn paused_until(at: Instant) -> (Timers<LoopTimer>, ResumeTimer) {
        let mut timers = Timers::new();
        let mut resume = ResumeTimer::default();
        resume.arm(&mut timers, at);
        (timers, resume)
    }

    #[test]
    fn the_resume_timer_arms_once_until_it_fires_or_is_cancelled() {
        let t0 = Instant::now();
        let (mut timers, mut resume) = paused_until(t0 + ms(10));
        resume.arm(&mut timers, t0 + ms(50));
        assert_eq!(
            (timers.len(), timers.next_deadline()),
            (1, Some(t0 + ms(10))),
            "a second pause does not push the first one's end"
        );
        let (_, woken) = timers.pop_expired(t0 + ms(10)).expect("due");
        assert_eq!(woken, LoopTimer::ResumeAccept);
        assert!(!resume.is_armed(&timers), "disarmed by firing");
        resume.arm(&mut timers, t0 + ms(50));
        assert!(
            resume.is_armed(&timers) && timers.len() == 1,
            "a new pause arms anew"
        );
        resume.cancel(&mut timers);
        assert!(!resume.is_armed(&timers) && timers.is_empty());
    }

    #[test]
    fn the_shutdown_deadline_disarms_the_resume_of_accepting() {
        let t0 = Instant::now();
        let (mut timers, mut resume) = paused_until(t0 + ms(10));
        arm_shutdown_deadline(&mut timers, &mut resume, t0 + ms(500));
        assert!(!resume.is_armed(&timers));
        let all: Vec<_> = std::iter::from_fn(|| timers.pop_expired(t0 + ms(500))).collect();
        assert_eq!(all.len(), 1);
        assert_eq!(all[0].1, LoopTimer::ShutdownDeadline);
        assert_eq!(all[0].0.at(), t0 + ms(500));
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
