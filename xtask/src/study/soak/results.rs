//! The typed results of a soak: what `summary.json` holds, the only thing its report and
//! charts are rendered from, and the [`Verdict`] judged from the samples alone.
//!
//! One [`SoakSummary`] per soak: the machine, the settings, and per server its
//! [`ServerSoak`]: a [`Sample`] of the process every second, a [`Window`] per consecutive
//! loadgen run (the normal load and its p99 over time), a [`Wave`] per hostile wave with the
//! descriptors before and after it, and the verdict. Units are in the names.

use std::collections::BTreeMap;

use echo_core::{DelayKind, Recipe as DelaySpec};
use serde::{Deserialize, Serialize};

use crate::results::{Environment, ExitRecord, Kind, Model, Skipped};
pub use crate::run::procstat::Reading as Sample;

/// Bump when a field changes meaning or disappears, so old summaries are not misread.
pub const SCHEMA_VERSION: u32 = 1;

/// One soak of one or more servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SoakSummary {
    /// Always [`Kind::Soak`]: soaks wrote it from the start, so it is never absent.
    pub kind: Kind,
    /// [`SCHEMA_VERSION`] when this file was written.
    pub schema_version: u32,
    /// Short name of the soak, the second half of its directory name.
    pub label: String,
    /// The machine and the code that were soaked.
    pub env: Environment,
    /// Everything the user chose, and what was used by default.
    pub settings: Settings,
    /// Every server soaked, in the order asked for.
    pub servers: Vec<ServerSoak>,
    /// Servers asked for that could not be soaked here, and why.
    pub skipped: Vec<Skipped>,
}

/// The settings of a soak, as used.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Settings {
    /// The command line, as typed from the repository root.
    pub command: String,
    /// How long each server was soaked.
    pub duration_seconds: f64,
    /// Time from the start after which RSS growth is judged.
    pub warmup_seconds: f64,
    /// Length of each loadgen window: one p99 point each.
    pub window_seconds: f64,
    /// The delay every server was given.
    pub delay: DelaySpec,
    /// How servers spend it.
    pub delay_kind: DelayKind,
    /// The normal load: open-loop requests per second.
    pub requests_per_second: f64,
    /// The normal load's persistent connections.
    pub connections: u64,
    /// Servers soaked at once, each with its own loadgen and hostile clients.
    pub parallel: u32,
    /// Seconds into each window when its hostile wave starts.
    pub wave_offset_seconds: f64,
    /// How long descriptors may take to come back after a wave.
    pub settle_limit_seconds: f64,
    /// Clients of each hostile wave, by kind.
    pub wave: BTreeMap<String, u32>,
    /// How long never-readers and idle clients hold their connections.
    pub hostile_hold_seconds: f64,
    /// Between two bytes of a dribbler.
    pub dribble_interval_ms: f64,
    /// Between two samples of each server.
    pub sample_interval_seconds: f64,
    /// The pass criteria.
    pub criteria: Criteria,
}

/// What a soak must show to pass (issue 13).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Criteria {
    /// Largest RSS growth after the warm-up, as a fraction (0.05 is 5 %).
    pub max_rss_growth_fraction: f64,
    /// Samples at each end of the post-warm-up span whose medians are compared: this
    /// fraction of them, at least [`Criteria::MIN_END_SAMPLES`].
    pub end_fraction: f64,
}

impl Criteria {
    /// The fewest samples a median at either end is taken over.
    pub const MIN_END_SAMPLES: usize = 3;
}

impl Default for Criteria {
    fn default() -> Self {
        Criteria {
            max_rss_growth_fraction: 0.05,
            end_fraction: 0.1,
        }
    }
}

/// One server's soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ServerSoak {
    /// Variant name.
    pub name: String,
    /// Its concurrency model.
    pub model: Model,
    /// How it was started, as typed from the repository root.
    pub command: String,
    /// The loadgen command of the first window.
    pub loadgen_command: String,
    /// The process every sample interval.
    pub samples: Vec<Sample>,
    /// The normal load, window by window.
    pub windows: Vec<Window>,
    /// The hostile waves.
    pub waves: Vec<Wave>,
    /// Every hostile client of the soak, by kind.
    pub hostile: BTreeMap<String, HostileTally>,
    /// How it stopped after SIGTERM.
    pub exit: Option<ExitRecord>,
    /// Why the soak of this server could not run to its end, if it could not.
    pub failure: Option<String>,
    /// The judgement.
    pub verdict: Verdict,
}

/// One loadgen window of the normal load.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Window {
    /// When loadgen started, since the server started listening.
    pub start_seconds: f64,
    /// When it exited.
    pub end_seconds: f64,
    /// Requests answered with the right reply (loadgen checks each byte for byte).
    pub requests_ok: u64,
    /// Requests failed (a wrong reply included) or never sent.
    pub requests_failed: u64,
    /// Failed requests by loadgen's failure kind.
    pub failures_by_kind: BTreeMap<String, u64>,
    /// Latency median, from each request's intended start.
    pub latency_p50_ms: f64,
    /// Latency p99.
    pub latency_p99_ms: f64,
    /// Worst latency.
    pub latency_max_ms: f64,
    /// p99 of loadgen's schedule lag (how late it sent requests): a loaded machine, not the
    /// server, when it is large.
    pub schedule_lag_p99_ms: Option<f64>,
    /// Why the window failed, if it did (loadgen's own words).
    pub failure: Option<String>,
}

/// One hostile wave.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Wave {
    /// When its clients started.
    pub start_seconds: f64,
    /// When the last of them ended.
    pub end_seconds: f64,
    /// The server's descriptors just before it.
    pub baseline_fds: u64,
    /// Most descriptors seen while it ran and settled.
    pub peak_fds: u64,
    /// The descriptors at the end of the settling.
    pub settled_fds: u64,
    /// How long after its end the descriptors were back at the baseline; `None` when they
    /// were not within the settle limit.
    pub settled_after_seconds: Option<f64>,
    /// Its clients.
    pub clients: u64,
    /// Those that saw the server keep the protocol.
    pub conforming: u64,
    /// Why the wave did not run, or why its settling does not count, when either is so.
    pub note: Option<String>,
}

impl Wave {
    /// A wave that could not start at `at_seconds` (with `fds` open), and why.
    pub fn not_run(at_seconds: f64, fds: u64, note: String) -> Wave {
        Wave {
            start_seconds: at_seconds,
            end_seconds: at_seconds,
            baseline_fds: fds,
            peak_fds: fds,
            settled_fds: fds,
            settled_after_seconds: None,
            clients: 0,
            conforming: 0,
            note: Some(note),
        }
    }
}

/// What the hostile clients of one kind saw over a whole soak.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HostileTally {
    /// Clients run.
    pub clients: u64,
    /// Clients that saw the server do what `docs/PROTOCOL.md` says.
    pub conforming: u64,
    /// What one conforming client saw (the server's `ERR` line, a reply).
    pub example: Option<String>,
    /// The first few problems, verbatim.
    pub problems: Vec<String>,
}

/// The judgement of one server's soak.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Verdict {
    /// Every criterion met.
    pub passed: bool,
    /// Normal requests answered right, over every window.
    pub requests_ok: u64,
    /// Normal requests failed or wrong, over every window.
    pub requests_failed: u64,
    /// Median RSS of the first samples after the warm-up.
    pub rss_after_warmup_bytes: Option<u64>,
    /// Median RSS of the last samples.
    pub rss_at_end_bytes: Option<u64>,
    /// `rss_at_end / rss_after_warmup - 1`.
    pub rss_growth_fraction: Option<f64>,
    /// Hostile waves run.
    pub waves: u64,
    /// Waves after which the descriptors came back to their baseline.
    pub waves_settled: u64,
    /// Hostile clients run.
    pub hostile_clients: u64,
    /// Hostile clients that saw the server keep the protocol.
    pub hostile_conforming: u64,
    /// Every criterion missed, in a sentence each.
    pub reasons: Vec<String>,
}

impl Verdict {
    /// Judges a soak from what was recorded: no normal request failed, RSS grew at most
    /// `criteria.max_rss_growth_fraction` after `warmup_seconds`, the descriptors came back
    /// after every wave, every hostile client saw the protocol kept, and the soak ran to its
    /// end (`failure`) with a clean exit.
    pub fn judge(
        samples: &[Sample],
        windows: &[Window],
        waves: &[Wave],
        failure: Option<&str>,
        warmup_seconds: f64,
        criteria: &Criteria,
    ) -> Verdict {
        let mut reasons = Vec::new();
        if let Some(failure) = failure {
            reasons.push(format!("the soak did not run to its end: {failure}"));
        }
        let requests_ok = windows.iter().map(|w| w.requests_ok).sum();
        let requests_failed: u64 = windows.iter().map(|w| w.requests_failed).sum();
        if windows.is_empty() {
            reasons.push("no loadgen window ran".to_owned());
        }
        if requests_failed > 0 {
            reasons.push(format!("{requests_failed} normal requests failed"));
        }
        for (i, w) in windows.iter().enumerate() {
            if let Some(why) = &w.failure {
                reasons.push(format!("window {}: {why}", i + 1));
            }
        }
        let (after, end) = rss_ends(samples, warmup_seconds, criteria);
        let growth = after
            .zip(end)
            .map(|(a, e)| e as f64 / a.max(1) as f64 - 1.0);
        match growth {
            None => reasons.push(format!(
                "too few samples after the {warmup_seconds} s warm-up to judge RSS growth (want {} at each end)",
                Criteria::MIN_END_SAMPLES
            )),
            Some(g) if g > criteria.max_rss_growth_fraction => reasons.push(format!(
                "RSS grew {:.1} % after the warm-up (limit {:.1} %)",
                g * 100.0,
                criteria.max_rss_growth_fraction * 100.0
            )),
            Some(_) => {}
        }
        let waves_settled = waves
            .iter()
            .filter(|w| w.settled_after_seconds.is_some())
            .count() as u64;
        for (i, w) in waves.iter().enumerate() {
            if let (None, Some(note)) = (w.settled_after_seconds, &w.note) {
                reasons.push(format!("wave {} {note}", i + 1));
            } else if w.settled_after_seconds.is_none() {
                reasons.push(format!(
                    "wave {} left {} descriptors open, {} above its baseline of {}",
                    i + 1,
                    w.settled_fds,
                    w.settled_fds.saturating_sub(w.baseline_fds),
                    w.baseline_fds
                ));
            }
        }
        let hostile_clients = waves.iter().map(|w| w.clients).sum();
        let hostile_conforming: u64 = waves.iter().map(|w| w.conforming).sum();
        if hostile_conforming < hostile_clients {
            reasons.push(format!(
                "{} hostile clients saw the server break the protocol",
                hostile_clients - hostile_conforming
            ));
        }
        Verdict {
            passed: reasons.is_empty(),
            requests_ok,
            requests_failed,
            rss_after_warmup_bytes: after,
            rss_at_end_bytes: end,
            rss_growth_fraction: growth,
            waves: waves.len() as u64,
            waves_settled,
            hostile_clients,
            hostile_conforming,
            reasons,
        }
    }
}

/// The medians of RSS over the first and the last samples after the warm-up; `None` when
/// there are too few samples for two disjoint ends.
fn rss_ends(
    samples: &[Sample],
    warmup_seconds: f64,
    criteria: &Criteria,
) -> (Option<u64>, Option<u64>) {
    let after: Vec<u64> = samples
        .iter()
        .filter(|s| s.t_seconds >= warmup_seconds)
        .map(|s| s.rss_bytes)
        .collect();
    let n = ((after.len() as f64 * criteria.end_fraction).ceil() as usize)
        .max(Criteria::MIN_END_SAMPLES);
    if after.len() < 2 * n {
        return (None, None);
    }
    (
        Some(median(&after[..n])),
        Some(median(&after[after.len() - n..])),
    )
}

fn median(values: &[u64]) -> u64 {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    sorted[sorted.len() / 2]
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A minute of samples, one a second, at `rss(t)` bytes.
    pub(crate) fn samples(rss: impl Fn(f64) -> u64) -> Vec<Sample> {
        (0..60)
            .map(|t| Sample {
                t_seconds: f64::from(t),
                rss_bytes: rss(f64::from(t)),
                open_fds: 60,
                threads: 2,
                cpu_seconds: f64::from(t) * 0.01,
            })
            .collect()
    }

    pub(crate) fn window(failed: u64) -> Window {
        Window {
            start_seconds: 0.0,
            end_seconds: 6.0,
            requests_ok: 1000,
            requests_failed: failed,
            failures_by_kind: BTreeMap::new(),
            latency_p50_ms: 101.0,
            latency_p99_ms: 104.0,
            latency_max_ms: 110.0,
            schedule_lag_p99_ms: Some(0.1),
            failure: None,
        }
    }

    pub(crate) fn wave(settled: bool) -> Wave {
        Wave {
            start_seconds: 1.0,
            end_seconds: 2.0,
            baseline_fds: 60,
            peak_fds: 80,
            settled_fds: if settled { 60 } else { 63 },
            settled_after_seconds: settled.then_some(0.1),
            clients: 14,
            conforming: 14,
            note: None,
        }
    }

    fn judge(samples: &[Sample], windows: &[Window], waves: &[Wave]) -> Verdict {
        Verdict::judge(samples, windows, waves, None, 10.0, &Criteria::default())
    }

    #[test]
    fn a_flat_soak_with_every_request_answered_and_every_wave_settled_passes() {
        let flat = samples(|_| 10 << 20);
        let verdict = judge(&flat, &[window(0)], &[wave(true), wave(true)]);
        assert!(verdict.passed, "{:?}", verdict.reasons);
        assert_eq!(verdict.rss_growth_fraction, Some(0.0));
        assert_eq!((verdict.waves, verdict.waves_settled), (2, 2));
    }

    #[test]
    fn rss_growing_more_than_five_percent_after_the_warm_up_fails_naming_the_growth() {
        // 10 MiB rising to 11 MiB over the minute: 10 % from the warm-up's end.
        let leaking = samples(|t| (10.0 * (1 << 20) as f64 * (1.0 + t / 550.0)) as u64);
        let verdict = judge(&leaking, &[window(0)], &[wave(true)]);
        assert!(!verdict.passed);
        let growth = verdict.rss_growth_fraction.expect("enough samples");
        assert!(growth > 0.05, "{growth}");
        assert!(
            verdict.reasons.iter().any(|r| r.starts_with("RSS grew")),
            "{:?}",
            verdict.reasons
        );
    }

    #[test]
    fn a_warm_up_spike_does_not_count_as_growth() {
        let warming = samples(|t| if t < 10.0 { 20 << 20 } else { 10 << 20 });
        assert!(judge(&warming, &[window(0)], &[wave(true)]).passed);
    }

    #[test]
    fn descriptors_not_back_after_a_wave_fail_naming_the_wave_and_the_excess() {
        let flat = samples(|_| 10 << 20);
        let verdict = judge(&flat, &[window(0)], &[wave(true), wave(false)]);
        assert!(!verdict.passed);
        assert_eq!(verdict.waves_settled, 1);
        assert_eq!(
            verdict.reasons,
            ["wave 2 left 63 descriptors open, 3 above its baseline of 60"]
        );
    }

    #[test]
    fn a_wave_that_did_not_run_fails_with_its_reason_and_does_not_pass_vacuously() {
        let flat = samples(|_| 10 << 20);
        let skipped = Wave::not_run(
            3.0,
            30,
            "did not run: the normal load had 22 of its 50 connections open".to_owned(),
        );
        let verdict = judge(&flat, &[window(0)], &[wave(true), skipped]);
        assert!(!verdict.passed);
        assert_eq!(
            verdict.reasons,
            ["wave 2 did not run: the normal load had 22 of its 50 connections open"]
        );
    }

    #[test]
    fn a_failed_normal_request_or_a_broken_promise_to_a_hostile_client_fails() {
        let flat = samples(|_| 10 << 20);
        let mut broken = wave(true);
        broken.conforming = 13;
        let verdict = judge(&flat, &[window(2)], &[broken]);
        assert_eq!(
            verdict.reasons,
            [
                "2 normal requests failed",
                "1 hostile clients saw the server break the protocol"
            ]
        );
    }

    #[test]
    fn too_few_samples_to_judge_growth_is_a_failure_not_a_pass() {
        let short: Vec<Sample> = samples(|_| 10 << 20).into_iter().take(12).collect();
        let verdict = judge(&short, &[window(0)], &[wave(true)]);
        assert!(!verdict.passed);
        assert_eq!(verdict.rss_growth_fraction, None);
    }
}
