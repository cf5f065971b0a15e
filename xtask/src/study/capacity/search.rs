//! The rate search of `cargo xtask capacity`: which rate to measure next, and when the
//! answer is known, as a pure, deterministic state machine.
//!
//! It does no IO and reads no clock (as `echo-core` does not): it is handed each step's
//! [`Verdict`] and answers with the next rate or the result, so every path through it is
//! tested without a server. The search:
//! 1. steps the rate up geometrically from the start rate (× the step factor, capped at the
//!    ceiling) while steps are sustained;
//! 2. if the start rate already breaks the SLO, steps down by the same factor (to a floor)
//!    until one is sustained;
//! 3. bisects between the last sustained and the first broken rate until they are within
//!    the precision of each other; the result is the last sustained rate.
//!
//! A client-bound step (loadgen, not the server, fell behind) says nothing about the server,
//! so it is never taken as the first broken rate; the same rate may be measured again while
//! the retry budget lasts (none by default). After that it is the client's ceiling: the
//! search goes on below it exactly as below a broken rate (stepping down, or bisecting
//! between the last sustained rate and the lower of the first broken and the client's
//! ceiling), so the result is still the highest rate measured as sustained. When what
//! stopped the bisection was the client's ceiling rather than a broken rate, the search ends
//! [`End::ClientBound`]: the server held everything measured, and loadgen could not go
//! higher. Reaching the ceiling or the floor also ends it, marked so;
//! [`SearchSettings::max_steps`] bounds the number of steps on every path.
//!
//! A broken step may be measured once more the same way ([`SearchSettings::broken_retries`],
//! none by default here, one in the study, and there only a break one slowdown could explain:
//! [`SearchSettings::broken_retry_p99_within`]): a single slowdown of the machine breaks a short
//! step far below a server's limit, and a rate taken as broken caps the search for good
//! (nothing above it is tried again, and confirmations only step down), while a rate found
//! too high is caught by the confirmations. Only the second verdict moves the search.
//!
//! 4. A short step can pass by luck, or before a server near saturation falls behind, so
//!    the rate found is then **confirmed**: measured again over the longer confirmation
//!    window ([`Next::Measure`] says which). A broken confirmation is a broken rate like
//!    any other (a client-bound one is the client's ceiling, never the server's limit); the
//!    search then steps down and confirms again, at most [`SearchSettings::confirmations`]
//!    times in all. Each step down is twice as deep as the last, starting from twice the
//!    precision or deeper ([`SearchSettings::confirmation_step`]): a server that breaks a confirmation
//!    just above its limit loses little, and one whose long windows hold far less than its
//!    short ones is still confirmed somewhere. The result is the highest *confirmed*
//!    rate; when every confirmation broke it is none: [`End::Unconfirmed`]. When the lowest
//!    of them was client-bound it is [`End::ClientBound`], with the rate the search found,
//!    unconfirmed, when the server broke none of them (else none): loadgen's lag says
//!    nothing of the server, and publishing none would hide what the search measured (in
//!    the first run with confirmations every Rust event loop over 50,000 req/s ended so,
//!    loadgen falling behind in 10 s windows).

use anyhow::bail;
use serde::{Deserialize, Serialize};

use super::slo::{Breach, Verdict};

/// How the search walks; every field is a flag of `cargo xtask capacity`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchSettings {
    /// The first rate measured.
    pub start_requests_per_second: f64,
    /// Each step up multiplies the rate by this (and each step down divides by it).
    pub step_factor: f64,
    /// Bisection stops when the first broken rate is within this fraction above the last
    /// sustained one (0.05: the answer is within 5 %).
    pub precision: f64,
    /// The lowest rate tried when the start rate breaks the SLO.
    pub floor_requests_per_second: f64,
    /// The highest rate tried: what the connections (or the client) can carry.
    pub ceiling_requests_per_second: f64,
    /// How many client-bound steps are measured again before the search takes the rate as
    /// the client's ceiling and searches below it.
    pub client_bound_retries: u32,
    /// How many broken steps (confirmations aside) are measured again before the search
    /// takes their rate as broken: the first this many of each search that
    /// [`SearchSettings::broken_retry_p99_within`] lets be measured again (a break it does
    /// not is taken at once and leaves the retry for a later one). A retry that holds
    /// counts as sustained, so one slowdown that broke a short step does not cap the search
    /// below the server's limit. 0 (studies made before it) takes every break at its word.
    #[serde(default)]
    pub broken_retries: u32,
    /// Which broken steps are measured again: `Some(x)`, only those whose every breach is a
    /// p99 within x times the limit ([`RETRY_P99_WITHIN`] in the study), the breaks one
    /// slowdown could explain; `None`, any (the first studies with retries).
    #[serde(default)]
    pub broken_retry_p99_within: Option<f64>,
    /// How many confirmation steps (over the longer confirmation window) the search may
    /// measure: the rate found, then [`SearchSettings::confirmation_step`] lower after each
    /// broken one. 0 publishes the rate found unconfirmed, as studies made before
    /// confirmations did.
    #[serde(default)]
    pub confirmations: u32,
    /// How many doublings deep the first step down after a broken confirmation already is
    /// ([`SearchSettings::confirmation_step`]): 0 steps down by twice the precision first
    /// (10 % at 5 %, as studies made before this field did), 1 by twice that in log terms
    /// (21 %), as the study does.
    #[serde(default)]
    pub first_step_down_doublings: u32,
}

impl SearchSettings {
    /// After the `broken`-th broken confirmation (from 1) the next is this many times lower:
    /// twice the precision after the first, and twice as deep in log terms after each
    /// further one (× 1.1, then × 1.21, × 1.46 at 5 %), each
    /// [`SearchSettings::first_step_down_doublings`] doublings deeper still (× 1.21, then
    /// × 1.46 with one: three confirmations reach 57 % of the rate found rather than 75 %).
    ///
    /// One doubling deeper in the study, because a search whose first broken step is
    /// measured again finds a higher rate, and on this machine the 5 s windows of most
    /// servers then hold far less than their 2 s steps: over two runs at 10 % first, 19
    /// searches broke their first confirmation; 4 held at 91 % of the rate found, 3 at
    /// 75 %, and 12 published nothing (mio among them, after 64000, 58182 and 48084).
    ///
    /// Twice the precision first, since a 2 s step overstates a fast server by more than the
    /// precision (in the first runs mio's 2 s steps held 70k req/s and its 5 s confirmations
    /// broke at 70k, 67k and 64k, one precision apart each). Deeper after that, since a
    /// server whose 5 s windows hold far less than its 2 s steps breaks confirmation after
    /// confirmation at a fixed step: threaded's broke at 23000, 20909 and 19008, 10 % apart
    /// each, in a run where an earlier one had confirmed 15500, and python-asyncio-timer's at
    /// 37000, 33636 and 30579 after its 2 s step at 32000 had p99 105 ms; both published
    /// nothing.
    pub fn confirmation_step(&self, broken: u32) -> f64 {
        let doublings = broken.saturating_sub(1) + self.first_step_down_doublings;
        let depth = 2f64.powi(doublings.min(30) as i32);
        (1.0 + 2.0 * self.precision).powf(depth)
    }
}

impl Default for SearchSettings {
    /// From 1000 req/s doubling: Python's asyncio server breaks within 3 steps at 100 ms, a
    /// Rust event loop within 7, and 5 bisections reach 5 % from a doubling. No retry of a
    /// client-bound step: the search bisects below it instead, which answers more for the
    /// same step and keeps the default study within its time limit.
    fn default() -> SearchSettings {
        SearchSettings {
            start_requests_per_second: 1000.0,
            step_factor: 2.0,
            precision: 0.05,
            floor_requests_per_second: 10.0,
            ceiling_requests_per_second: 1_000_000.0,
            client_bound_retries: 0,
            broken_retries: 0,
            broken_retry_p99_within: None,
            confirmations: 0,
            first_step_down_doublings: 0,
        }
    }
}

impl SearchSettings {
    /// Checks that the search can run and end.
    ///
    /// # Errors
    /// Naming the setting and its value: rates must be positive and finite with floor ≤
    /// start ≤ ceiling, the factor above 1, the precision between 0 and 1.
    pub fn validate(&self) -> anyhow::Result<()> {
        let rates = [
            ("start rate", self.start_requests_per_second),
            ("floor rate", self.floor_requests_per_second),
            ("ceiling rate", self.ceiling_requests_per_second),
        ];
        for (name, rate) in rates {
            if !(rate.is_finite() && rate > 0.0) {
                bail!("{name} {rate} req/s: want a positive, finite rate");
            }
        }
        let (floor, start, ceiling) = (
            self.floor_requests_per_second,
            self.start_requests_per_second,
            self.ceiling_requests_per_second,
        );
        if !(floor <= start && start <= ceiling) {
            bail!(
                "start rate {start} req/s: want it between the floor {floor} and the ceiling \
                 {ceiling} req/s"
            );
        }
        if !(self.step_factor.is_finite() && self.step_factor > 1.0) {
            bail!("step factor {}: want a number above 1", self.step_factor);
        }
        if !(self.precision > 0.0 && self.precision < 1.0) {
            bail!(
                "precision {}: want a fraction between 0 and 1",
                self.precision
            );
        }
        Ok(())
    }

    /// The most steps a search with these settings measures, whatever the verdicts,
    /// confirmations included: the longest path of the search itself, walked over every
    /// sequence of sustained and broken verdicts (broken retries included; a client-bound
    /// verdict moves the search as a broken one does, so it adds no path of its own), plus
    /// the client-bound retries.
    ///
    /// Exact rather than a sum of the walk's and the bisection's worst cases: a walk up to
    /// the ceiling ends without bisecting, and the last interval of a walk is a full factor
    /// wide only when the walk did not stop at the ceiling, so the sum counts steps no
    /// search can take. Settings that [`validate`](SearchSettings::validate) end on every
    /// path; invalid ones answer 0.
    pub fn max_steps(&self) -> u32 {
        let Ok((search, _)) = Search::new(*self) else {
            return 0;
        };
        let mut longest = 0;
        let mut open = vec![search];
        while let Some(search) = open.pop() {
            if search.done.is_some() {
                longest = longest.max(search.steps);
                continue;
            }
            for verdict in [Verdict::Sustained, Verdict::Broken { breaches: vec![] }] {
                let mut next = search.clone();
                next.observe(&verdict);
                open.push(next);
            }
        }
        longest + self.client_bound_retries
    }
}

/// A broken step is measured again only when its p99 was within this many times the
/// limit. Over three default studies that measured every first break again, 10 of the 20
/// breaks within 2× the limit (150–284 ms against 150) held the second time, 1 of the 9
/// further over it (python-threaded's 785 ms), and none of the 7 with failed requests.
pub const RETRY_P99_WITHIN: f64 = 2.0;

/// Whether one slowdown of the machine could have broken a step so: every breach a p99
/// within `within` times the limit. Failed requests (replies over the timeout, seconds
/// long) or a rate not achieved are not a slowdown's doing, and a step far over the limit
/// is past the knee.
fn a_slowdown_could_explain(breaches: &[Breach], within: f64) -> bool {
    breaches.iter().all(|breach| match breach {
        Breach::Latency { p99_ms, p99_max_ms } => *p99_ms <= within * p99_max_ms,
        Breach::Failures { .. } | Breach::Shortfall { .. } => false,
    })
}

/// What the search wants next.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Next {
    /// Measure one step at this rate, then hand its verdict to [`Search::observe`].
    Measure {
        /// The target rate of the step.
        requests_per_second: f64,
        /// Whether it confirms the rate found, over the confirmation window rather than
        /// the step's.
        #[serde(default)]
        confirmation: bool,
        /// Whether it measures the rate of the step before once more, that step having
        /// broken or been client-bound with a retry left.
        #[serde(default)]
        again: bool,
    },
    /// The search is over.
    Done(SearchResult),
}

/// Why the search ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum End {
    /// The last sustained and first broken rates are within the precision: a true limit.
    Converged,
    /// The ceiling was sustained: the server's limit is higher than could be tried.
    Ceiling,
    /// Even the floor broke the SLO: nothing was sustained.
    Floor,
    /// loadgen fell behind at a rate the server might have carried, and the search
    /// converged below it: the result is the highest rate measured as sustained, a lower
    /// bound of the server's limit, and the client-bound step is not the server's limit.
    ClientBound,
    /// Every confirmation broke: no rate held over the confirmation window, so none is
    /// published.
    Unconfirmed,
}

/// The answer of a search.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SearchResult {
    /// The highest rate measured as sustained; 0 when none was.
    pub max_sustainable_requests_per_second: f64,
    /// The lowest rate measured as broken by the server (never a client-bound step); `None`
    /// when none was.
    pub first_broken_requests_per_second: Option<f64>,
    /// The lowest rate at which loadgen fell behind (its retries spent); `None` when it
    /// never did.
    pub client_bound_requests_per_second: Option<f64>,
    /// Why it ended.
    pub end: End,
    /// Steps measured, retries and confirmations included.
    pub steps: u32,
    /// Whether the max was confirmed over the confirmation window (false when the search
    /// confirms nothing, or nothing held).
    pub confirmed: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Up,
    Down,
    Bisect,
    /// Confirming the rate found; the end the search reached before it.
    Confirm(End),
}

/// The state of one server's search. Start with [`Search::new`], measure the rate it names,
/// and hand each verdict to [`Search::observe`] until it answers [`Next::Done`].
#[derive(Debug, Clone)]
pub struct Search {
    settings: SearchSettings,
    phase: Phase,
    current: f64,
    sustained: Option<f64>,
    broken: Option<f64>,
    client_bound: Option<f64>,
    retries_left: u32,
    broken_retries_left: u32,
    /// The next step repeats the last one's rate, a retry.
    again: bool,
    confirmations_left: u32,
    steps: u32,
    done: Option<SearchResult>,
}

impl Search {
    /// A search with these settings, and the first rate to measure.
    ///
    /// # Errors
    /// When the settings do not [`validate`](SearchSettings::validate).
    pub fn new(settings: SearchSettings) -> anyhow::Result<(Search, Next)> {
        settings.validate()?;
        let search = Search {
            settings,
            phase: Phase::Up,
            current: settings.start_requests_per_second,
            sustained: None,
            broken: None,
            client_bound: None,
            retries_left: settings.client_bound_retries,
            broken_retries_left: settings.broken_retries,
            again: false,
            confirmations_left: settings.confirmations,
            steps: 0,
            done: None,
        };
        let first = search.next();
        Ok((search, first))
    }

    /// What to do now: the rate to measure, or the result.
    pub fn next(&self) -> Next {
        match self.done {
            Some(result) => Next::Done(result),
            None => Next::Measure {
                requests_per_second: self.current,
                confirmation: matches!(self.phase, Phase::Confirm(_)),
                again: self.again,
            },
        }
    }

    /// Takes the verdict of the step just measured at the rate [`Search::next`] named, and
    /// answers what to do next. After the search is done it only repeats its result.
    pub fn observe(&mut self, verdict: &Verdict) -> Next {
        if self.done.is_some() {
            return self.next();
        }
        self.steps += 1;
        self.again = false;
        let rate = self.current;
        if let Phase::Confirm(end) = self.phase {
            return self.on_confirmation(rate, end, verdict);
        }
        match verdict {
            Verdict::Sustained => self.on_sustained(rate),
            Verdict::Broken { breaches }
                if self.broken_retries_left > 0
                    && self
                        .settings
                        .broken_retry_p99_within
                        .is_none_or(|within| a_slowdown_could_explain(breaches, within)) =>
            {
                self.broken_retries_left -= 1;
                self.again = true;
            }
            Verdict::Broken { .. } => self.on_broken(rate),
            Verdict::ClientBound { .. } if self.retries_left > 0 => {
                self.retries_left -= 1;
                self.again = true;
            }
            Verdict::ClientBound { .. } => self.on_client_bound(rate),
        }
        self.next()
    }

    fn on_sustained(&mut self, rate: f64) {
        self.sustained = Some(self.sustained.map_or(rate, |s| s.max(rate)));
        match self.phase {
            Phase::Up if rate >= self.settings.ceiling_requests_per_second => {
                self.finish(End::Ceiling);
            }
            Phase::Up => {
                self.current = (rate * self.settings.step_factor)
                    .min(self.settings.ceiling_requests_per_second);
            }
            Phase::Down | Phase::Bisect | Phase::Confirm(_) => self.bisect(),
        }
    }

    fn on_broken(&mut self, rate: f64) {
        self.broken = Some(self.broken.map_or(rate, |b| b.min(rate)));
        self.below(rate, End::Floor);
    }

    fn on_client_bound(&mut self, rate: f64) {
        self.client_bound = Some(self.client_bound.map_or(rate, |c| c.min(rate)));
        self.below(rate, End::ClientBound);
    }

    /// After a rate that could not be sustained: bisect below it, or step down while nothing
    /// was sustained yet, ending `at_floor` when the floor itself was that rate.
    fn below(&mut self, rate: f64, at_floor: End) {
        if self.sustained.is_some() {
            return self.bisect();
        }
        if rate <= self.settings.floor_requests_per_second {
            return self.finish(at_floor);
        }
        self.phase = Phase::Down;
        self.current =
            (rate / self.settings.step_factor).max(self.settings.floor_requests_per_second);
    }

    /// The lowest rate known not to be sustainable, by the server or by the client, and
    /// whose it is: `End::ClientBound` when the client's ceiling is the lower.
    fn upper(&self) -> Option<(f64, End)> {
        match (self.broken, self.client_bound) {
            (Some(broken), Some(client)) if client < broken => Some((client, End::ClientBound)),
            (Some(broken), _) => Some((broken, End::Converged)),
            (None, Some(client)) => Some((client, End::ClientBound)),
            (None, None) => None,
        }
    }

    /// Halves the interval between the last sustained rate and the lowest unsustainable
    /// one, or ends the search when it is within the precision.
    fn bisect(&mut self) {
        self.phase = Phase::Bisect;
        let (Some(good), Some((bad, end))) = (self.sustained, self.upper()) else {
            return self.finish(End::Ceiling);
        };
        if bad - good <= self.settings.precision * good {
            return self.finish(end);
        }
        self.current = good + (bad - good) / 2.0;
    }

    /// Ends the search at `end`, or first confirms the rate found when it has one and
    /// confirmations are asked for.
    fn finish(&mut self, end: End) {
        match (self.sustained, end) {
            (Some(rate), End::Converged | End::Ceiling | End::ClientBound)
                if self.confirmations_left > 0 =>
            {
                self.phase = Phase::Confirm(end);
                self.current = rate;
            }
            _ => self.conclude(end, self.sustained.unwrap_or(0.0), false),
        }
    }

    fn on_confirmation(&mut self, rate: f64, end: End, verdict: &Verdict) -> Next {
        self.confirmations_left -= 1;
        match verdict {
            Verdict::Sustained => {
                // What stopped the search is the lowest rate that did not hold, a broken
                // or client-bound confirmation included.
                let end = self.upper().map_or(end, |(_, end)| end);
                self.conclude(end, rate, true);
            }
            Verdict::Broken { .. } => self.broken = Some(self.broken.map_or(rate, |b| b.min(rate))),
            Verdict::ClientBound { .. } => {
                self.client_bound = Some(self.client_bound.map_or(rate, |c| c.min(rate)));
            }
        }
        if self.done.is_none() {
            let broken = self.settings.confirmations - self.confirmations_left;
            let lower = rate / self.settings.confirmation_step(broken);
            if self.confirmations_left == 0 || lower < self.settings.floor_requests_per_second {
                // Whose the lowest failed confirmation was: the client's leaves the server's
                // limit unknown, as a client-bound search does, and the rate found stands,
                // unconfirmed; the server's own breaks leave nothing to publish.
                // That rate stands only when no confirmation broke by the server's fault
                // (a broken confirmation is at or below the rate found).
                let found = self.sustained.unwrap_or(0.0);
                let server_broke = self.broken.is_some_and(|broken| broken <= found);
                match self.upper() {
                    Some((_, End::ClientBound)) if !server_broke => {
                        self.conclude(End::ClientBound, found, false);
                    }
                    Some((_, End::ClientBound)) => self.conclude(End::ClientBound, 0.0, false),
                    _ => self.conclude(End::Unconfirmed, 0.0, false),
                }
            } else {
                self.current = lower;
            }
        }
        self.next()
    }

    fn conclude(&mut self, end: End, max: f64, confirmed: bool) {
        self.done = Some(SearchResult {
            max_sustainable_requests_per_second: max,
            first_broken_requests_per_second: self.broken,
            client_bound_requests_per_second: self.client_bound,
            end,
            steps: self.steps,
            confirmed,
        });
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::study::capacity::slo::ClientLimit;

    fn broken() -> Verdict {
        Verdict::Broken {
            breaches: vec![Breach::Failures {
                failed: 1,
                max_failed: 0,
            }],
        }
    }

    /// Broken by a p99 over the limit that one slowdown could explain (200 against 150 ms).
    fn slow() -> Verdict {
        Verdict::Broken {
            breaches: vec![Breach::Latency {
                p99_ms: 200.0,
                p99_max_ms: 150.0,
            }],
        }
    }

    fn client_bound() -> Verdict {
        Verdict::ClientBound {
            limits: vec![ClientLimit::Cpu {
                cpu_ratio: 1.0,
                max_cpu_ratio: 0.9,
            }],
            breaches: vec![],
        }
    }

    /// Runs a search to its end against `answer`, returning the result and every rate asked.
    fn run(
        settings: SearchSettings,
        mut answer: impl FnMut(f64) -> Verdict,
    ) -> (SearchResult, Vec<(f64, Verdict)>) {
        run_confirming(settings, |rate, _| answer(rate))
    }

    /// As [`run`], with `answer` told whether the step is a confirmation.
    fn run_confirming(
        settings: SearchSettings,
        mut answer: impl FnMut(f64, bool) -> Verdict,
    ) -> (SearchResult, Vec<(f64, Verdict)>) {
        let (mut search, mut next) = Search::new(settings).expect("valid settings");
        let mut asked = Vec::new();
        let bound = settings.max_steps() as usize;
        loop {
            match next {
                Next::Done(result) => return (result, asked),
                Next::Measure {
                    requests_per_second,
                    confirmation,
                    ..
                } => {
                    assert!(asked.len() < bound, "more than {bound} steps: {asked:?}");
                    let verdict = answer(requests_per_second, confirmation);
                    asked.push((requests_per_second, verdict.clone()));
                    next = search.observe(&verdict);
                }
            }
        }
    }

    fn threshold(limit: f64) -> impl FnMut(f64) -> Verdict {
        move |rate| {
            if rate <= limit {
                Verdict::Sustained
            } else {
                broken()
            }
        }
    }

    #[test]
    fn a_server_that_holds_up_to_5000_is_found_within_5_percent() {
        let (result, asked) = run(SearchSettings::default(), threshold(5000.0));
        let rates: Vec<f64> = asked.iter().map(|(r, _)| *r).collect();
        assert_eq!(&rates[..4], &[1000.0, 2000.0, 4000.0, 8000.0]);
        assert_eq!(result.end, End::Converged);
        let max = result.max_sustainable_requests_per_second;
        let first_broken = result.first_broken_requests_per_second.expect("one broke");
        assert!(max <= 5000.0 && 5000.0 < first_broken, "{result:?}");
        assert!(first_broken - max <= 0.05 * max, "{result:?}");
    }

    #[test]
    fn a_start_rate_that_breaks_makes_the_search_step_down() {
        let (result, asked) = run(SearchSettings::default(), threshold(300.0));
        assert_eq!(asked[1].0, 500.0);
        assert_eq!(asked[2].0, 250.0);
        assert_eq!(result.end, End::Converged);
        assert!(result.max_sustainable_requests_per_second <= 300.0);
    }

    #[test]
    fn a_server_that_holds_the_ceiling_ends_at_the_ceiling() {
        let settings = SearchSettings {
            ceiling_requests_per_second: 6000.0,
            ..SearchSettings::default()
        };
        let (result, asked) = run(settings, |_| Verdict::Sustained);
        assert_eq!(asked.last().map(|(r, _)| *r), Some(6000.0));
        assert_eq!(result.end, End::Ceiling);
        assert_eq!(result.max_sustainable_requests_per_second, 6000.0);
        assert_eq!(result.first_broken_requests_per_second, None);
    }

    #[test]
    fn a_server_that_breaks_even_at_the_floor_sustains_nothing() {
        let (result, _) = run(SearchSettings::default(), |_| broken());
        assert_eq!(result.end, End::Floor);
        assert_eq!(result.max_sustainable_requests_per_second, 0.0);
    }

    fn with_one_retry() -> SearchSettings {
        SearchSettings {
            client_bound_retries: 1,
            ..SearchSettings::default()
        }
    }

    /// Hands the search `script` in order (one verdict per step) and returns the rates it
    /// asked for and its result; the script must last until the search is done.
    fn scripted(settings: SearchSettings, script: &[Verdict]) -> (Vec<f64>, SearchResult) {
        let mut given = script.iter().cloned();
        let (result, asked) = run(settings, |rate| {
            given
                .next()
                .unwrap_or_else(|| panic!("the script ran out at {rate} req/s"))
        });
        assert!(
            given.next().is_none(),
            "the search stopped before the script"
        );
        (asked.into_iter().map(|(r, _)| r).collect(), result)
    }

    #[test]
    fn a_client_bound_step_is_bisected_below_and_the_highest_good_step_is_the_result() {
        let (s, c) = (Verdict::Sustained, client_bound());
        let script = [s.clone(), s.clone(), c, s.clone(), s.clone(), s.clone(), s];
        let (rates, result) = scripted(SearchSettings::default(), &script);
        assert_eq!(
            rates,
            [1000.0, 2000.0, 4000.0, 3000.0, 3500.0, 3750.0, 3875.0]
        );
        assert_eq!(result.end, End::ClientBound);
        assert_eq!(result.max_sustainable_requests_per_second, 3875.0);
        assert_eq!(result.client_bound_requests_per_second, Some(4000.0));
        assert_eq!(
            result.first_broken_requests_per_second, None,
            "a client-bound step is not the server's limit"
        );
    }

    #[test]
    fn a_server_that_breaks_below_the_clients_ceiling_converged_on_its_own_limit() {
        let (s, b, c) = (Verdict::Sustained, broken(), client_bound());
        let script = [s.clone(), s.clone(), c, b.clone(), s.clone(), b, s];
        let (rates, result) = scripted(SearchSettings::default(), &script);
        assert_eq!(
            rates,
            [1000.0, 2000.0, 4000.0, 3000.0, 2500.0, 2750.0, 2625.0]
        );
        assert_eq!(result.end, End::Converged, "the server's limit stopped it");
        assert_eq!(result.max_sustainable_requests_per_second, 2625.0);
        assert_eq!(result.first_broken_requests_per_second, Some(2750.0));
        assert_eq!(result.client_bound_requests_per_second, Some(4000.0));
    }

    #[test]
    fn a_client_bound_start_rate_makes_the_search_step_down_and_then_bisect() {
        let (s, c) = (Verdict::Sustained, client_bound());
        let script = [c, s.clone(), s.clone(), s.clone(), s.clone(), s];
        let (rates, result) = scripted(SearchSettings::default(), &script);
        assert_eq!(rates, [1000.0, 500.0, 750.0, 875.0, 937.5, 968.75]);
        assert_eq!(result.end, End::ClientBound);
        assert_eq!(result.max_sustainable_requests_per_second, 968.75);
    }

    #[test]
    fn a_client_bound_step_is_retried_while_the_retry_budget_lasts() {
        let (s, c) = (Verdict::Sustained, client_bound());
        let script = [
            s.clone(),
            s.clone(),
            c.clone(),
            c,
            s.clone(),
            s.clone(),
            s.clone(),
            s,
        ];
        let (rates, result) = scripted(with_one_retry(), &script);
        assert_eq!(
            rates,
            [
                1000.0, 2000.0, 4000.0, 4000.0, 3000.0, 3500.0, 3750.0, 3875.0
            ]
        );
        assert_eq!(result.end, End::ClientBound);
        assert_eq!(result.steps, 8);
    }

    #[test]
    fn a_client_bound_step_that_holds_when_retried_lets_the_search_go_on() {
        let mut first_try = true;
        let (result, _) = run(with_one_retry(), |rate| {
            if rate == 4000.0 && std::mem::take(&mut first_try) {
                client_bound()
            } else {
                threshold(5000.0)(rate)
            }
        });
        assert_eq!(result.end, End::Converged);
        assert!(result.max_sustainable_requests_per_second > 4000.0);
        assert_eq!(result.client_bound_requests_per_second, None);
    }

    fn with_one_broken_retry() -> SearchSettings {
        SearchSettings {
            broken_retries: 1,
            broken_retry_p99_within: Some(RETRY_P99_WITHIN),
            ..SearchSettings::default()
        }
    }

    /// A server that holds up to `limit`, but breaks its first step at `unlucky` (as one
    /// slowdown of the machine breaks a short step far below a server's limit).
    fn unlucky_once(unlucky: f64, limit: f64) -> impl FnMut(f64) -> Verdict {
        let mut first_try = true;
        move |rate| {
            if rate == unlucky && std::mem::take(&mut first_try) {
                slow()
            } else {
                threshold(limit)(rate)
            }
        }
    }

    #[test]
    fn a_broken_step_that_holds_when_measured_again_does_not_cap_the_search() {
        let (result, asked) = run(with_one_broken_retry(), unlucky_once(2000.0, 5000.0));
        assert_eq!(asked[1].0, 2000.0);
        assert_eq!(asked[2].0, 2000.0, "measured again: {asked:?}");
        assert_eq!(result.end, End::Converged);
        let max = result.max_sustainable_requests_per_second;
        assert!((4750.0..=5000.0).contains(&max), "{result:?}");

        // Without the retry the one unlucky step is the server's limit.
        let (taken, _) = run(SearchSettings::default(), unlucky_once(2000.0, 5000.0));
        assert!(
            taken.max_sustainable_requests_per_second < 2000.0,
            "{taken:?}"
        );
    }

    #[test]
    fn only_the_first_broken_steps_are_measured_again_and_a_second_break_is_taken() {
        let (s, b) = (Verdict::Sustained, slow());
        let script = [
            s.clone(),
            s.clone(),
            b.clone(),
            b.clone(),
            s.clone(),
            b,
            s.clone(),
            s,
        ];
        let (rates, result) = scripted(with_one_broken_retry(), &script);
        assert_eq!(
            rates,
            [
                1000.0, 2000.0, 4000.0, 4000.0, 3000.0, 3500.0, 3250.0, 3375.0
            ]
        );
        assert_eq!(result.end, End::Converged);
        assert_eq!(result.max_sustainable_requests_per_second, 3375.0);
        assert_eq!(result.first_broken_requests_per_second, Some(3500.0));
        assert_eq!(result.steps, 8);
    }

    #[test]
    fn a_break_no_slowdown_explains_is_taken_at_its_word() {
        let far_over = Verdict::Broken {
            breaches: vec![Breach::Latency {
                p99_ms: 301.0,
                p99_max_ms: 150.0,
            }],
        };
        for verdict in [far_over, broken()] {
            let (mut search, _) = Search::new(with_one_broken_retry()).expect("valid");
            let next = search.observe(&verdict);
            assert!(
                matches!(next, Next::Measure { requests_per_second, again: false, .. }
                    if requests_per_second == 500.0),
                "stepped down, not again: {next:?}"
            );
        }
        let (mut search, _) = Search::new(with_one_broken_retry()).expect("valid");
        let twice = Verdict::Broken {
            breaches: vec![Breach::Latency {
                p99_ms: 300.0,
                p99_max_ms: 150.0,
            }],
        };
        assert!(matches!(
            search.observe(&twice),
            Next::Measure { again: true, .. }
        ));
        // Without the condition (the first studies with retries) any break is measured again.
        let any = SearchSettings {
            broken_retry_p99_within: None,
            ..with_one_broken_retry()
        };
        let (mut search, _) = Search::new(any).expect("valid");
        assert!(matches!(
            search.observe(&broken()),
            Next::Measure { again: true, .. }
        ));
    }

    #[test]
    fn a_retry_is_marked_as_measuring_the_same_rate_again() {
        let (mut search, first) = Search::new(with_one_broken_retry()).expect("valid");
        let again = |next: &Next| matches!(next, Next::Measure { again: true, .. });
        assert!(!again(&first));
        let next = search.observe(&slow());
        assert!(again(&next), "{next:?}");
        assert!(
            matches!(next, Next::Measure { requests_per_second, .. } if requests_per_second == 1000.0)
        );
        let next = search.observe(&Verdict::Sustained);
        assert!(!again(&next), "{next:?}");
        let next = search.observe(&slow());
        assert!(!again(&next), "the one retry is spent: {next:?}");

        let (mut search, _) = Search::new(with_one_retry()).expect("valid");
        assert!(again(&search.observe(&client_bound())));
    }

    #[test]
    fn a_client_that_cannot_even_carry_the_floor_ends_the_search_with_nothing_sustained() {
        let (result, _) = run(SearchSettings::default(), |_| client_bound());
        assert_eq!(result.end, End::ClientBound);
        assert_eq!(result.max_sustainable_requests_per_second, 0.0);
    }

    fn confirming(confirmations: u32) -> SearchSettings {
        SearchSettings {
            confirmations,
            ..SearchSettings::default()
        }
    }

    /// A server that holds `short` req/s over a step's window but only `long` over the
    /// confirmation's: one that falls behind slowly, or passes a short window by luck.
    fn falls_behind(short: f64, long: f64) -> impl FnMut(f64, bool) -> Verdict {
        move |rate, confirmation| threshold(if confirmation { long } else { short })(rate)
    }

    #[test]
    fn the_rate_found_is_confirmed_over_the_longer_window_before_it_is_published() {
        let (result, asked) = run_confirming(confirming(2), falls_behind(5000.0, 5000.0));
        let (found, _) = run(SearchSettings::default(), threshold(5000.0));
        assert_eq!(asked.len() as u32, found.steps + 1, "one confirmation");
        assert_eq!(
            asked.last().map(|(r, _)| *r),
            Some(found.max_sustainable_requests_per_second)
        );
        assert!(result.confirmed);
        assert_eq!(result.end, End::Converged);
        assert_eq!(
            result.max_sustainable_requests_per_second,
            found.max_sustainable_requests_per_second
        );
    }

    #[test]
    fn a_rate_that_breaks_its_confirmation_is_not_published_and_one_precision_lower_is() {
        let (found, _) = run(SearchSettings::default(), threshold(5000.0));
        let short_max = found.max_sustainable_requests_per_second;
        let long_limit = short_max * 0.97;
        let (result, asked) = run_confirming(confirming(2), falls_behind(5000.0, long_limit));
        let confirmations: Vec<f64> = asked[found.steps as usize..]
            .iter()
            .map(|(r, _)| *r)
            .collect();
        assert_eq!(confirmations, [short_max, short_max / 1.1]);
        assert!(result.confirmed);
        assert_eq!(result.max_sustainable_requests_per_second, short_max / 1.1);
        assert_eq!(result.first_broken_requests_per_second, Some(short_max));
        assert_eq!(result.end, End::Converged);
    }

    #[test]
    fn each_broken_confirmation_steps_down_twice_as_deep_as_the_last() {
        let (found, _) = run(SearchSettings::default(), threshold(5000.0));
        let short_max = found.max_sustainable_requests_per_second;
        // Holds about a quarter less over the long window: steps of 10 % each would need
        // four confirmations to get there.
        let long_limit = short_max * 0.76;
        let (result, asked) = run_confirming(confirming(3), falls_behind(5000.0, long_limit));
        let confirmations: Vec<f64> = asked[found.steps as usize..]
            .iter()
            .map(|(r, _)| *r)
            .collect();
        let second = short_max / 1.1;
        let third = second / 1.1f64.powi(2);
        assert_eq!(confirmations, [short_max, second, third]);
        assert!(
            third <= long_limit && long_limit < second / 1.1,
            "{confirmations:?}"
        );
        assert!(result.confirmed);
        assert_eq!(result.max_sustainable_requests_per_second, third);
        assert_eq!(result.end, End::Converged);
    }

    #[test]
    fn the_step_down_after_a_broken_confirmation_doubles_in_depth() {
        let settings = SearchSettings::default();
        let steps: Vec<f64> = (1..=4).map(|k| settings.confirmation_step(k)).collect();
        let want = [1.1, 1.21, 1.4641, 1.4641f64.powi(2)];
        for (got, want) in steps.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{steps:?}");
        }
        let deeper = SearchSettings {
            first_step_down_doublings: 1,
            ..settings
        };
        let steps: Vec<f64> = (1..=3).map(|k| deeper.confirmation_step(k)).collect();
        let want = [1.21, 1.4641, 1.4641f64.powi(2)];
        for (got, want) in steps.iter().zip(want) {
            assert!((got - want).abs() < 1e-12, "{steps:?}");
        }
    }

    #[test]
    fn when_every_confirmation_breaks_no_rate_is_published() {
        let (result, asked) = run_confirming(confirming(2), falls_behind(5000.0, 1000.0));
        let (found, _) = run(SearchSettings::default(), threshold(5000.0));
        assert_eq!(
            asked.len() as u32,
            found.steps + 2,
            "two confirmations, no more"
        );
        assert_eq!(result.end, End::Unconfirmed);
        assert_eq!(result.max_sustainable_requests_per_second, 0.0);
        assert!(!result.confirmed);
    }

    #[test]
    fn a_client_bound_confirmation_is_the_clients_ceiling_not_the_servers_limit() {
        let mut confirmations = 0;
        let (result, _) = run_confirming(confirming(2), |rate, confirmation| {
            if confirmation && std::mem::replace(&mut confirmations, 1) == 0 {
                client_bound()
            } else {
                threshold(5000.0)(rate)
            }
        });
        assert!(result.confirmed);
        assert_eq!(result.end, End::ClientBound);
        let client = result
            .client_bound_requests_per_second
            .expect("the client's ceiling");
        assert_eq!(result.max_sustainable_requests_per_second, client / 1.1);
        assert!(
            result
                .first_broken_requests_per_second
                .is_some_and(|b| b > client)
        );
    }

    #[test]
    fn when_the_client_falls_behind_in_every_confirmation_the_search_is_client_bound() {
        let (result, _) = run_confirming(confirming(2), |rate, confirmation| {
            if confirmation {
                client_bound()
            } else {
                threshold(5000.0)(rate)
            }
        });
        assert_eq!(result.end, End::ClientBound, "not the server's limit");
        let found = result.max_sustainable_requests_per_second;
        assert!(
            (5000.0 / 1.1..=5000.0).contains(&found),
            "the rate found stands, unconfirmed: {found}"
        );
        assert!(!result.confirmed);
    }

    #[test]
    fn the_most_steps_is_the_longest_path_a_search_can_take() {
        // The default study: from 2000 doubling to the connections' ceiling, to 5 %. A
        // walk that breaks at 64000 or at the ceiling takes 11 steps; the sum of the
        // walk's 7 and a full factor's bisection (6) counts paths no search takes.
        let study = SearchSettings {
            start_requests_per_second: 2000.0,
            floor_requests_per_second: 200.0,
            ceiling_requests_per_second: 98_720.0,
            ..SearchSettings::default()
        };
        assert_eq!(study.max_steps(), 11);
        let confirmed = SearchSettings {
            confirmations: 2,
            ..study
        };
        assert_eq!(confirmed.max_steps(), 13);
        // A broken step measured again is one step more on the longest path.
        let retried = SearchSettings {
            broken_retries: 1,
            ..study
        };
        assert_eq!(retried.max_steps(), 12);
        let (_, asked) = run(study, threshold(32_500.0));
        assert_eq!(asked.len(), 11, "{asked:?}");
    }

    #[test]
    fn settings_that_cannot_end_are_refused_naming_the_value() {
        let bad = [
            (
                SearchSettings {
                    step_factor: 1.0,
                    ..SearchSettings::default()
                },
                "step factor 1",
            ),
            (
                SearchSettings {
                    precision: 0.0,
                    ..SearchSettings::default()
                },
                "precision 0",
            ),
            (
                SearchSettings {
                    start_requests_per_second: 0.0,
                    ..SearchSettings::default()
                },
                "start rate 0",
            ),
            (
                SearchSettings {
                    ceiling_requests_per_second: 500.0,
                    ..SearchSettings::default()
                },
                "ceiling 500",
            ),
        ];
        for (settings, expected) in bad {
            let message = Search::new(settings).expect_err("invalid").to_string();
            assert!(message.contains(expected), "{message:?} lacks {expected:?}");
        }
    }

    fn settings() -> impl Strategy<Value = SearchSettings> {
        (
            1.0..5000.0f64,
            1.1..4.0f64,
            0.01..0.5f64,
            0.0..1.0f64,
            1.0..1e4f64,
            (0..3u32, 0..3u32, 0..4u32, 0..2u32),
        )
            .prop_map(
                |(start, factor, precision, floor_share, ceiling_ratio, counts)| {
                    let (retries, broken_retries, confirmations, doublings) = counts;
                    SearchSettings {
                        start_requests_per_second: start,
                        step_factor: factor,
                        precision,
                        floor_requests_per_second: (start * floor_share).max(1e-3),
                        ceiling_requests_per_second: start * ceiling_ratio,
                        client_bound_retries: retries,
                        broken_retries,
                        broken_retry_p99_within: (doublings == 1).then_some(RETRY_P99_WITHIN),
                        confirmations,
                        first_step_down_doublings: doublings,
                    }
                },
            )
    }

    fn verdict() -> impl Strategy<Value = Verdict> {
        prop_oneof![
            3 => Just(Verdict::Sustained),
            2 => Just(broken()),
            1 => Just(slow()),
            1 => Just(client_bound()),
        ]
    }

    proptest! {
        #[test]
        fn against_a_threshold_the_result_brackets_it_within_the_precision(
            settings in settings(),
            limit_share in 0.0..1.2f64,
        ) {
            let floor = settings.floor_requests_per_second;
            let ceiling = settings.ceiling_requests_per_second;
            let limit = floor + (ceiling - floor) * limit_share;
            let (result, _) = run(settings, threshold(limit));
            let max = result.max_sustainable_requests_per_second;
            match result.end {
                End::Converged => {
                    let bad = result.first_broken_requests_per_second.expect("a broken rate");
                    prop_assert!(max <= limit && limit < bad, "{result:?} against {limit}");
                    prop_assert!(bad - max <= settings.precision * max, "{result:?}");
                }
                End::Ceiling => prop_assert!(max == ceiling && limit >= ceiling),
                End::Floor => prop_assert!(max == 0.0 && limit < floor),
                End::ClientBound => prop_assert!(false, "no client-bound step was given"),
                End::Unconfirmed => prop_assert!(false, "a threshold holds what it held once"),
            }
            prop_assert_eq!(result.confirmed, settings.confirmations > 0 && max > 0.0);
        }

        #[test]
        fn whatever_the_verdicts_the_search_ends_within_its_bound_and_reports_only_what_it_saw(
            settings in settings(),
            verdicts in proptest::collection::vec(verdict(), 200),
        ) {
            let mut given = verdicts.into_iter();
            let (result, asked) = run(settings, |_| given.next().unwrap_or(Verdict::Sustained));
            prop_assert_eq!(result.steps as usize, asked.len());
            let saw = |rate: f64, sustained: bool| {
                asked.iter().any(|(r, v)| *r == rate && matches!(v, Verdict::Sustained) == sustained
                    && !matches!(v, Verdict::ClientBound { .. }))
            };
            let max = result.max_sustainable_requests_per_second;
            prop_assert!(max == 0.0 || saw(max, true), "{result:?} from {asked:?}");
            if let Some(bad) = result.first_broken_requests_per_second {
                prop_assert!(saw(bad, false), "{result:?} from {asked:?}");
            }
            // Stepping down by the precision is a division, which may round by an ulp.
            // A broken confirmation steps down by at most its deepest step.
            let deepest = settings.confirmation_step(settings.confirmations.saturating_sub(1));
            let precision = if settings.confirmations > 0 {
                deepest - 1.0
            } else {
                settings.precision
            };
            let within = |high: f64| high - max <= precision * max * (1.0 + 1e-9);
            if result.end == End::Converged {
                let bad = result.first_broken_requests_per_second.expect("a broken rate");
                prop_assert!(max < bad && within(bad), "{result:?}");
            }
            if settings.confirmations > 0 && max > 0.0 {
                // Confirmed, as the last step; or left unconfirmed by a client that fell
                // behind in the confirmations, never by the server.
                let last = asked.last().expect("a step");
                prop_assert!(
                    (result.confirmed && last.0 == max)
                        || (!result.confirmed && result.end == End::ClientBound),
                    "confirmed last: {result:?}"
                );
            }
            if let Some(client) = result.client_bound_requests_per_second {
                let saw_it = asked.iter()
                    .any(|(r, v)| *r == client && matches!(v, Verdict::ClientBound { .. }));
                prop_assert!(saw_it, "{result:?} from {asked:?}");
            }
            if result.end == End::ClientBound {
                let client = result.client_bound_requests_per_second.expect("a client ceiling");
                prop_assert!(
                    result.first_broken_requests_per_second.is_none_or(|bad| client < bad),
                    "the client's ceiling was the lower bound: {result:?}"
                );
                if result.confirmed || max == 0.0 || settings.confirmations == 0 {
                    prop_assert!(
                        max == 0.0 || (max < client && within(client)),
                        "bisected below the client's ceiling: {result:?}"
                    );
                } else {
                    // The rate found, left unconfirmed: loadgen fell behind in confirming it
                    // (at it or below), and the server broke none of the confirmations.
                    prop_assert!(client <= max, "{result:?}");
                    prop_assert!(
                        result.first_broken_requests_per_second.is_none_or(|bad| bad > max),
                        "{result:?}"
                    );
                }
            }
            for (rate, _) in &asked {
                prop_assert!(
                    settings.floor_requests_per_second <= *rate
                        && *rate <= settings.ceiling_requests_per_second,
                    "{rate} outside the floor and ceiling"
                );
            }
        }

        #[test]
        fn the_same_verdicts_give_the_same_search(
            settings in settings(),
            verdicts in proptest::collection::vec(verdict(), 200),
        ) {
            let replay = |verdicts: &[Verdict]| {
                let mut given = verdicts.iter().cloned();
                run(settings, |_| given.next().unwrap_or(Verdict::Sustained))
            };
            prop_assert_eq!(replay(&verdicts), replay(&verdicts));
        }
    }
}
