//! Request recipes: a request's simulated work as a sequence of phases, each spent its own way.
//!
//! Real requests mix CPU work with IO waits: parse and encode (CPU), then ask the database
//! (a wait). A [`Recipe`] writes that down as phases joined by `+`, each `KIND:DURATION`:
//! `spin:2ms+wait:100ms` is 2 ms of CPU work and then a 100 ms database wait, `block:100ms` a
//! blocking driver, `wait:uniform:50ms..150ms` an honest wait of varying length. DURATION is
//! any [`DelayModel`] spec and KIND a [`DelayKind`]; a phase without a kind (`100ms`, the
//! spec of every run before recipes) takes the server's `--delay-kind`, and a kind the spec
//! names wins over it.
//!
//! echo-core stays sans-IO: a request's phases are handed out one at a time, as the
//! protocol's [`crate::Timeout`] (its deadline and kind), each drawn when it begins
//! ([`RecipeSampler`]), and the next begins when the server reports the previous one over.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::delay::{self, DelayKind, DelayModel, format_duration};
use crate::error::{Error, Result};

/// One phase of a recipe: how long, and how a server spends it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Phase {
    /// How the phase is spent; `None` (a spec without `KIND:`) takes the server's
    /// `--delay-kind`.
    pub kind: Option<DelayKind>,
    /// How long it lasts.
    pub duration: DelayModel,
}

impl Phase {
    /// The phase's kind, or `default` when the spec names none.
    pub fn kind_or(&self, default: DelayKind) -> DelayKind {
        self.kind.unwrap_or(default)
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            Some(kind) => write!(f, "{kind}:{}", self.duration),
            None => write!(f, "{}", self.duration),
        }
    }
}

/// A request's simulated work: one or more [`Phase`]s, carried out in order, the reply after
/// the last.
///
/// Written and read as its spec (`spin:2ms+wait:100ms`), which is also its serialized form, so
/// reports show the text a user typed. Cloning shares the phases: every connection holds its
/// server's recipe without an allocation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipe {
    phases: Arc<[Phase]>,
}

impl Recipe {
    /// A recipe of these phases, in this order, as a tool builds one in code.
    ///
    /// # Errors
    /// [`Error::InvalidDelaySpec`], naming the recipe's spec, when there is no phase or the
    /// phases name more than [`Recipe::MAX_TOTAL`] in all.
    pub fn new(phases: Vec<Phase>) -> Result<Recipe> {
        let spec = || {
            let texts: Vec<String> = phases.iter().map(Phase::to_string).collect();
            texts.join("+")
        };
        if phases.is_empty() {
            return Err(Error::InvalidDelaySpec {
                spec: spec(),
                reason: "a recipe needs at least one phase".to_owned(),
            });
        }
        let total = phases
            .iter()
            .map(|p| p.duration.longest_named())
            .fold(Duration::ZERO, Duration::saturating_add);
        if total > Recipe::MAX_TOTAL {
            return Err(Error::InvalidDelaySpec {
                spec: spec(),
                reason: format!(
                    "its phases name {} in all, above the longest delay, {}",
                    format_duration(total),
                    format_duration(Recipe::MAX_TOTAL)
                ),
            });
        }
        Ok(Recipe {
            phases: Arc::from(phases),
        })
    }

    /// The phases, in the order they run. Never empty.
    pub fn phases(&self) -> &[Phase] {
        &self.phases
    }

    /// The expected time of a whole request: the sum of its phases' means.
    pub fn mean(&self) -> Duration {
        self.phases
            .iter()
            .map(|p| p.duration.mean())
            .fold(Duration::ZERO, Duration::saturating_add)
    }

    /// The longest all phases together may name, [`DelayModel::MAX`] (a day), for the reason
    /// the one-phase bound exists: every deadline a server sets stays representable.
    pub const MAX_TOTAL: Duration = DelayModel::MAX;
}

impl From<DelayModel> for Recipe {
    /// One phase without a kind: what `--delay` meant before recipes.
    fn from(duration: DelayModel) -> Self {
        Recipe {
            phases: Arc::from([Phase {
                kind: None,
                duration,
            }]),
        }
    }
}

impl Default for Recipe {
    /// The article's 100 ms, spent as `--delay-kind` says.
    fn default() -> Self {
        Recipe::from(DelayModel::default())
    }
}

/// Reads one phase (`spin:2ms`, `wait:uniform:50ms..150ms`, `100ms`), returning why it is
/// not one.
fn parse_phase(text: &str) -> std::result::Result<Phase, String> {
    let trimmed = text.trim();
    if let Some((head, rest)) = trimmed.split_once(':') {
        if let Ok(kind) = head.parse::<DelayKind>() {
            return Ok(Phase {
                kind: Some(kind),
                duration: DelayModel::parse_reason(rest)?,
            });
        }
        if !matches!(head.trim(), "fixed" | "uniform" | "exp") {
            return Err(format!(
                "unknown kind or distribution {head:?} (kinds: `wait`, `block`, `spin`; \
                 distributions: `fixed`, `uniform`, `exp`)"
            ));
        }
    }
    Ok(Phase {
        kind: None,
        duration: DelayModel::parse_reason(trimmed)?,
    })
}

impl FromStr for Recipe {
    type Err = Error;

    /// `PHASE(+PHASE)*`, each phase `[KIND:]DURATION`. A spec of several phases names the
    /// faulty one in its error (`phase 2 "wait:2xs": ...`).
    fn from_str(spec: &str) -> Result<Self> {
        let bad = |reason: String| Error::InvalidDelaySpec {
            spec: spec.to_owned(),
            reason,
        };
        let texts: Vec<&str> = spec.split('+').collect();
        let mut phases = Vec::with_capacity(texts.len());
        for (i, text) in texts.iter().enumerate() {
            let phase = parse_phase(text).map_err(|reason| match texts.len() {
                1 => bad(reason),
                _ => bad(format!("phase {} {text:?}: {reason}", i + 1)),
            })?;
            phases.push(phase);
        }
        Recipe::new(phases).map_err(|e| match e {
            // The reason, with the text the user typed rather than its printed form.
            Error::InvalidDelaySpec { reason, .. } => bad(reason),
            other => other,
        })
    }
}

impl fmt::Display for Recipe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, phase) in self.phases.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            write!(f, "{phase}")?;
        }
        Ok(())
    }
}

impl Serialize for Recipe {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Recipe {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// Draws the phases of each request of one connection, repeatably.
///
/// Seeded as [`crate::DelaySampler`] is, and drawing from the same generator in the same
/// order: a one-phase recipe gives every connection exactly the delays it had before recipes.
/// A phase is drawn when it begins, so requests on a connection, which run one after another,
/// draw in the same order however the server interleaves connections.
#[derive(Debug, Clone)]
pub struct RecipeSampler {
    recipe: Recipe,
    default_kind: DelayKind,
    rng: Pcg64Mcg,
}

impl RecipeSampler {
    /// A sampler for one stream (one connection) of a seeded run; phases without a kind are
    /// spent as `default_kind`.
    pub fn new(recipe: &Recipe, default_kind: DelayKind, seed: u64, stream: u64) -> Self {
        RecipeSampler {
            recipe: recipe.clone(),
            default_kind,
            rng: delay::seeded(seed, stream),
        }
    }

    /// Phase `index` of the request under way, drawn now: its kind and length, or `None`
    /// past the last phase (the reply is due).
    pub fn phase(&mut self, index: usize) -> Option<(DelayKind, Duration)> {
        let phase = self.recipe.phases().get(index)?;
        let length = delay::draw(phase.duration, &mut self.rng);
        Some((phase.kind_or(self.default_kind), length))
    }
}
