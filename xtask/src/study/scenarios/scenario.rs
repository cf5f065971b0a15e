//! The scenarios of `cargo xtask scenarios`, as data: a name, the delay spec every server is
//! given (`--delay SPEC`), and what it models; the issue's four are the defaults, and
//! `--scenarios` chooses among them or defines others (`NAME=SPEC`).
//!
//! A spec is an [`echo_core::Recipe`]: phases joined by `+`, each `KIND:DURATION` (issue 12
//! part 1's grammar), read once when the scenario is chosen and given to every server as it
//! is, `--delay SPEC`. A phase that names no kind is a wait, the study's `--delay-kind`.

use std::fmt;
use std::time::Duration;

use anyhow::{Context, bail};
use echo_core::Recipe;
use serde::{Deserialize, Serialize};

/// One scenario: how every request spends its time on every server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scenario {
    /// Its name, a column title of every table (`honest`, `blocking`, ...).
    pub name: String,
    /// The recipe every server is given, `KIND:DURATION` phases joined by `+`; written in
    /// `summary.json` as its spec.
    pub spec: Recipe,
    /// What it models, in one line of the report.
    pub models: String,
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
            spec: spec
                .parse()
                .expect("the default scenarios' specs are recipes"),
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
    let recipe: Recipe = spec
        .parse()
        .with_context(|| format!("--scenarios `{name}={spec}`"))?;
    Ok(Scenario {
        name: name.to_owned(),
        models: defaults()
            .into_iter()
            .find(|s| s.name == name && s.spec == recipe)
            .map_or_else(
                || format!("given on the command line as `{recipe}`"),
                |s| s.models,
            ),
        spec: recipe,
    })
}

impl Scenario {
    /// The mean time a request spends in all its phases: the delay of Little's law.
    pub fn mean_delay(&self) -> Duration {
        self.spec.mean()
    }
}

impl fmt::Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (`{}`)", self.name, self.spec)
    }
}

#[cfg(test)]
mod tests {
    use echo_core::{DelayKind, DelayModel, Phase};

    use super::*;

    fn ms(n: u64) -> DelayModel {
        DelayModel::Fixed(Duration::from_millis(n))
    }

    #[test]
    fn the_defaults_are_the_issues_four_in_order() {
        let specs: Vec<String> = defaults().into_iter().map(|s| s.spec.to_string()).collect();
        assert_eq!(
            specs,
            [
                "wait:100ms",
                "block:100ms",
                "spin:2ms+wait:100ms",
                "spin:20ms"
            ]
        );
    }

    #[test]
    fn a_recipe_is_read_phase_by_phase_and_its_mean_is_the_sum() {
        let mixed = select(&["mixed".to_owned()]).expect("a default")[0].clone();
        assert_eq!(
            mixed.spec.phases(),
            [
                Phase {
                    kind: Some(DelayKind::Spin),
                    duration: ms(2)
                },
                Phase {
                    kind: Some(DelayKind::Wait),
                    duration: ms(100)
                }
            ]
        );
        assert_eq!(mixed.mean_delay(), Duration::from_millis(102));
    }

    #[test]
    fn a_scenario_is_written_in_json_as_its_spec_and_read_back() {
        let mixed = select(&["mixed".to_owned()]).expect("a default")[0].clone();
        let json = serde_json::to_value(&mixed).expect("serializes");
        assert_eq!(json["spec"], "spin:2ms+wait:100ms");
        let back: Scenario = serde_json::from_value(json).expect("deserializes");
        assert_eq!(back, mixed);
    }

    #[test]
    fn scenarios_of_ones_own_are_named_and_a_bad_phase_is_refused_naming_it() {
        let chosen = select(&["honest".to_owned(), "quick=wait:10ms".to_owned()]).expect("valid");
        assert_eq!(chosen[1].spec.to_string(), "wait:10ms");
        assert_eq!(chosen[1].models, "given on the command line as `wait:10ms`");
        let error = format!(
            "{:#}",
            select(&["bad=spin:2ms+nap:1ms".to_owned()]).expect_err("no such kind")
        );
        assert!(
            error.starts_with(
                "--scenarios `bad=spin:2ms+nap:1ms`: invalid delay spec \"spin:2ms+nap:1ms\": \
                 phase 2 \"nap:1ms\""
            ),
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
