//! The scenarios of `cargo xtask scenarios`, as data: a name, the delay spec every server is
//! given (`--delay SPEC`), and what it models; the issue's four are the defaults, and
//! `--scenarios` chooses among them or defines others (`NAME=SPEC`).
//!
//! A spec is a recipe of phases joined by `+`, each `KIND:DURATION` (issue 12 part 1's
//! grammar), read here with echo-core's own parsers for the kind and the duration. Until
//! request recipes are merged the servers take one phase only, as `--delay D --delay-kind K`:
//! [`Scenario::server_delay`] is the one place that translates, and goes when they land.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use echo_core::{DelayKind, DelayModel};
use serde::{Deserialize, Serialize};

/// One scenario: how every request spends its time on every server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// Its name, a column title of every table (`honest`, `blocking`, ...).
    pub name: String,
    /// The delay spec every server is given, `KIND:DURATION` phases joined by `+`.
    pub spec: String,
    /// What it models, in one line of the report.
    pub models: String,
}

/// One phase of a spec: how long, and how the server spends it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Phase {
    /// Wait (a timer), block (the thread sleeps) or spin (the CPU burns).
    pub kind: DelayKind,
    /// How long.
    pub delay: DelayModel,
}

/// The name of the honest-wait scenario, the one the others are compared with.
pub const HONEST: &str = "honest";
/// The name of the blocking-driver scenario.
pub const BLOCKING: &str = "blocking";
/// The name of the mixed scenario: CPU work, then a wait.
pub const MIXED: &str = "mixed";
/// The name of the CPU-bound scenario.
pub const CPU: &str = "cpu";

/// The issue's four scenarios, in column order.
const DEFAULTS: [(&str, &str, &str); 4] = [
    (
        HONEST,
        "wait:100ms",
        "an honest IO wait: a 100 ms database call the server waits for without holding a thread",
    ),
    (
        BLOCKING,
        "block:100ms",
        "the mistake: a blocking 100 ms driver call, which holds whatever thread runs the request, \
         an event loop's included",
    ),
    (
        MIXED,
        "spin:2ms+wait:100ms",
        "a real request: 2 ms of CPU work (parsing, encoding), then a 100 ms database wait",
    ),
    (
        CPU,
        "spin:20ms",
        "CPU-bound work: 20 ms of computation per request and no IO",
    ),
];

/// The default scenarios, in column order.
pub fn defaults() -> Vec<Scenario> {
    DEFAULTS
        .iter()
        .map(|(name, spec, models)| Scenario {
            name: (*name).to_owned(),
            spec: (*spec).to_owned(),
            models: (*models).to_owned(),
        })
        .collect()
}

/// The scenarios `--scenarios` asks for: each item a default's name, or `NAME=SPEC` for a
/// scenario of one's own (or another spec under a default's name, which keeps the targets
/// that name it); every default when empty.
///
/// # Errors
/// When a name is unknown, given twice, or a spec does not parse; the message names it.
pub fn select(items: &[String]) -> anyhow::Result<Vec<Scenario>> {
    if items.is_empty() {
        return Ok(defaults());
    }
    let mut chosen: Vec<Scenario> = Vec::new();
    for item in items {
        let scenario = match item.split_once('=') {
            Some((name, spec)) => custom(name.trim(), spec.trim())?,
            None => defaults()
                .into_iter()
                .find(|s| s.name == item.trim())
                .with_context(|| {
                    let known: Vec<String> = defaults().into_iter().map(|s| s.name).collect();
                    format!(
                        "--scenarios: unknown scenario `{item}`; known: {}, or NAME=SPEC",
                        known.join(", ")
                    )
                })?,
        };
        if chosen.iter().any(|s| s.name == scenario.name) {
            bail!("--scenarios: `{}` is given twice", scenario.name);
        }
        chosen.push(scenario);
    }
    Ok(chosen)
}

fn custom(name: &str, spec: &str) -> anyhow::Result<Scenario> {
    if name.is_empty() || name.contains(|c: char| c.is_whitespace() || c == '|') {
        bail!("--scenarios `{name}={spec}`: want a name without spaces or `|`");
    }
    let scenario = Scenario {
        name: name.to_owned(),
        spec: spec.to_owned(),
        models: defaults()
            .into_iter()
            .find(|s| s.name == name && s.spec == spec)
            .map_or_else(
                || format!("given on the command line as `{spec}`"),
                |s| s.models,
            ),
    };
    scenario.phases()?;
    Ok(scenario)
}

impl Scenario {
    /// Its phases, in order.
    ///
    /// # Errors
    /// When a phase is not `KIND:DURATION`; the message names the scenario and the phase.
    pub fn phases(&self) -> anyhow::Result<Vec<Phase>> {
        self.spec
            .split('+')
            .enumerate()
            .map(|(i, text)| {
                let at_fault = || {
                    format!(
                        "scenario `{}`: phase {} `{}` of `{}`",
                        self.name,
                        i + 1,
                        text.trim(),
                        self.spec
                    )
                };
                let (kind, delay) = text
                    .trim()
                    .split_once(':')
                    .with_context(|| format!("{}: want KIND:DURATION", at_fault()))?;
                let kind: DelayKind = kind.parse().with_context(at_fault)?;
                let delay: DelayModel = delay.parse().with_context(at_fault)?;
                Ok(Phase { kind, delay })
            })
            .collect()
    }

    /// The mean time a request spends in all its phases: the delay of Little's law.
    ///
    /// # Errors
    /// As [`Scenario::phases`].
    pub fn mean_delay(&self) -> anyhow::Result<Duration> {
        Ok(self.phases()?.iter().map(|p| p.delay.mean()).sum())
    }

    /// How today's servers are given this scenario: `--delay D --delay-kind K`, which only
    /// a single phase can be. The one place that translates; once request recipes (issue 12
    /// part 1) are merged, every server takes `--delay SPEC` itself and this goes.
    ///
    /// # Errors
    /// A spec of several phases, with the reason, which the study records as the
    /// scenario's; or a spec that does not parse.
    pub fn server_delay(&self) -> anyhow::Result<Result<(DelayModel, DelayKind), String>> {
        let phases = self.phases()?;
        Ok(match phases.as_slice() {
            [one] => Ok((one.delay, one.kind)),
            _ => Err(format!(
                "`{}` has {} phases, and the servers take one until request recipes (issue 12 \
                 part 1) are merged",
                self.spec,
                phases.len()
            )),
        })
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (`{}`)", self.name, self.spec)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> DelayModel {
        DelayModel::Fixed(Duration::from_millis(n))
    }

    #[test]
    fn the_defaults_are_the_issues_four_in_order() {
        let specs: Vec<String> = defaults().into_iter().map(|s| s.spec).collect();
        assert_eq!(
            specs,
            [
                "wait:100ms",
                "block:100ms",
                "spin:2ms+wait:100ms",
                "spin:20ms"
            ]
        );
        for scenario in defaults() {
            assert!(scenario.phases().is_ok(), "{scenario}");
        }
    }

    #[test]
    fn a_recipe_is_read_phase_by_phase_and_its_mean_is_the_sum() {
        let mixed = select(&["mixed".to_owned()]).expect("a default")[0].clone();
        assert_eq!(
            mixed.phases().expect("parses"),
            [
                Phase {
                    kind: DelayKind::Spin,
                    delay: ms(2)
                },
                Phase {
                    kind: DelayKind::Wait,
                    delay: ms(100)
                }
            ]
        );
        assert_eq!(
            mixed.mean_delay().expect("parses"),
            Duration::from_millis(102)
        );
    }

    #[test]
    fn a_single_phase_is_given_to_todays_servers_as_delay_and_kind() {
        let blocking = &select(&["blocking".to_owned()]).expect("a default")[0];
        assert_eq!(
            blocking.server_delay().expect("parses"),
            Ok((ms(100), DelayKind::Block))
        );
        let mixed = &select(&["mixed".to_owned()]).expect("a default")[0];
        let reason = mixed.server_delay().expect("parses").expect_err("2 phases");
        assert!(
            reason.starts_with("`spin:2ms+wait:100ms` has 2 phases"),
            "{reason}"
        );
    }

    #[test]
    fn scenarios_of_ones_own_are_named_and_a_bad_phase_is_refused_naming_it() {
        let chosen = select(&["honest".to_owned(), "quick=wait:10ms".to_owned()]).expect("valid");
        assert_eq!(chosen[1].spec, "wait:10ms");
        assert_eq!(chosen[1].models, "given on the command line as `wait:10ms`");
        let error = select(&["bad=spin:2ms+nap:1ms".to_owned()])
            .expect_err("no such kind")
            .to_string();
        assert!(
            error.starts_with("scenario `bad`: phase 2 `nap:1ms` of `spin:2ms+nap:1ms`"),
            "{error}"
        );
        let error = select(&["lunch".to_owned()])
            .expect_err("unknown")
            .to_string();
        assert!(
            error.contains("unknown scenario `lunch`; known: honest"),
            "{error}"
        );
        assert!(select(&["cpu".to_owned(), "cpu=spin:1ms".to_owned()]).is_err());
    }
}
