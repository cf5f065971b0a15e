//! The IO-delay simulator: how long each request "waits on the database", and how a server is
//! to spend that time.
//!
//! The study's whole point is a server that spends its time waiting. echo-core only *describes*
//! the wait: a [`DelayModel`] says how long (fixed, uniform, exponential), a [`DelaySampler`]
//! draws the lengths from a seeded generator so a run can be repeated exactly, and a
//! [`DelayKind`] says how a server must spend it. Carrying the wait out (a timer, a sleep, a
//! busy loop) is each server's own business, because that is exactly where the concurrency
//! models differ. A request's whole delay is a [`crate::Recipe`] of one or more such phases
//! (`spin:2ms+wait:100ms`); each phase is one model and one kind.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use rand::{Rng, SeedableRng};
use rand_pcg::Pcg64Mcg;
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// How long each simulated IO wait lasts.
///
/// Written and read as a compact spec (`100ms`, `uniform:50ms..150ms`, `exp:100ms`), which is
/// also its serialized form, so reports show the same text a user typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DelayModel {
    /// Every request waits exactly this long (the article: 100 ms).
    Fixed(Duration),
    /// Uniformly distributed between two bounds, both inclusive.
    Uniform {
        /// Shortest wait.
        min: Duration,
        /// Longest wait.
        max: Duration,
    },
    /// Exponentially distributed with this mean: many short waits and a long tail, which is
    /// what real database latencies look like.
    Exponential {
        /// Mean wait.
        mean: Duration,
    },
}

impl DelayModel {
    /// The longest delay a spec may name: a day is far beyond any database call, and keeping
    /// every delay (and the exponential's tail, under 37 means) this short keeps `now + delay`
    /// a deadline every clock can represent. The fuzzer found `exp:3889388643885M` (months)
    /// crashing the sampler before this bound existed.
    pub const MAX: Duration = Duration::from_secs(24 * 60 * 60);

    /// The expected (mean) delay, used to compute the physical floor of a run.
    pub fn mean(&self) -> Duration {
        match *self {
            DelayModel::Fixed(d) => d,
            DelayModel::Uniform { min, max } => min + max.saturating_sub(min) / 2,
            DelayModel::Exponential { mean } => mean,
        }
    }
}

impl Default for DelayModel {
    /// The article's 100 ms.
    fn default() -> Self {
        DelayModel::Fixed(Duration::from_millis(100))
    }
}

/// Reads a duration such as `100ms`, `1.5s`, `250us` or a bare `0`.
///
/// # Errors
/// [`Error::InvalidDuration`] naming the text when it is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration> {
    let text = text.trim();
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    humantime::parse_duration(text).map_err(|e| Error::InvalidDuration {
        value: text.to_owned(),
        reason: e.to_string(),
    })
}

/// Writes a duration the way [`parse_duration`] reads it (`100ms`, `1s 500ms`, `0s`).
pub fn format_duration(duration: Duration) -> String {
    if duration.is_zero() {
        return "0s".to_owned();
    }
    humantime::format_duration(duration)
        .to_string()
        .replace(' ', "")
}

impl DelayModel {
    /// The longest delay the spec names: the fixed length, the uniform's upper bound, the
    /// exponential's mean. A recipe's phases together may name at most [`DelayModel::MAX`].
    pub(crate) fn longest_named(&self) -> Duration {
        match *self {
            DelayModel::Fixed(d) => d,
            DelayModel::Uniform { max, .. } => max,
            DelayModel::Exponential { mean } => mean,
        }
    }

    /// Reads one distribution (`100ms`, `fixed:1s`, `uniform:50ms..150ms`, `exp:100ms`),
    /// returning why it is not one: the caller names the spec, or the recipe's phase, at fault.
    pub(crate) fn parse_reason(text: &str) -> std::result::Result<DelayModel, String> {
        let duration = |text: &str| {
            let duration = parse_duration(text).map_err(|e| e.to_string())?;
            if duration > DelayModel::MAX {
                return Err(format!(
                    "{} is above the longest delay, {}",
                    format_duration(duration),
                    format_duration(DelayModel::MAX)
                ));
            }
            Ok(duration)
        };
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err("it is empty".to_owned());
        }
        match trimmed.split_once(':') {
            None => Ok(DelayModel::Fixed(duration(trimmed)?)),
            Some(("fixed", rest)) => Ok(DelayModel::Fixed(duration(rest)?)),
            Some(("uniform", rest)) => {
                let (lo, hi) = rest
                    .split_once("..")
                    .ok_or_else(|| "uniform needs two bounds, `MIN..MAX`".to_owned())?;
                let (min, max) = (duration(lo)?, duration(hi)?);
                if min > max {
                    return Err(format!(
                        "lower bound {} is above upper bound {}",
                        format_duration(min),
                        format_duration(max)
                    ));
                }
                Ok(DelayModel::Uniform { min, max })
            }
            Some(("exp", rest)) => Ok(DelayModel::Exponential {
                mean: duration(rest)?,
            }),
            Some((kind, _)) => Err(format!(
                "unknown distribution {kind:?} (use `fixed`, `uniform` or `exp`)"
            )),
        }
    }
}

impl FromStr for DelayModel {
    type Err = Error;

    /// One distribution, no kind and no phases: a [`crate::Recipe`] reads those.
    fn from_str(spec: &str) -> Result<Self> {
        DelayModel::parse_reason(spec).map_err(|reason| Error::InvalidDelaySpec {
            spec: spec.to_owned(),
            reason,
        })
    }
}

impl fmt::Display for DelayModel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            DelayModel::Fixed(d) => write!(f, "{}", format_duration(d)),
            DelayModel::Uniform { min, max } => {
                write!(
                    f,
                    "uniform:{}..{}",
                    format_duration(min),
                    format_duration(max)
                )
            }
            DelayModel::Exponential { mean } => write!(f, "exp:{}", format_duration(mean)),
        }
    }
}

impl Serialize for DelayModel {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for DelayModel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(d)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// How a server spends a request's delay. echo-core never spends it itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DelayKind {
    /// An honest IO wait: a timer in an event loop, a sleep in a thread. Other connections
    /// keep being served meanwhile; this is the case the article studies.
    #[default]
    Wait,
    /// Block whatever thread runs the request, even an event loop's: the classic async
    /// mistake (a blocking call inside a coroutine), made visible on purpose.
    Block,
    /// Burn CPU for the duration: CPU-bound work, where threads on several cores should win.
    Spin,
}

impl FromStr for DelayKind {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim() {
            "wait" => Ok(DelayKind::Wait),
            "block" => Ok(DelayKind::Block),
            "spin" => Ok(DelayKind::Spin),
            other => Err(Error::InvalidDelayKind(other.to_owned())),
        }
    }
}

impl fmt::Display for DelayKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            DelayKind::Wait => "wait",
            DelayKind::Block => "block",
            DelayKind::Spin => "spin",
        })
    }
}

/// Draws delays from a [`DelayModel`], repeatably.
///
/// Each connection gets its own sampler seeded from the run's seed and the connection's id,
/// so the sequence a connection sees does not depend on how the server happened to interleave
/// connections: two runs with the same seed give every connection the same delays.
#[derive(Debug, Clone)]
pub struct DelaySampler {
    model: DelayModel,
    rng: Pcg64Mcg,
}

impl DelaySampler {
    /// A sampler for one stream (e.g. one connection) of a seeded run.
    pub fn new(model: DelayModel, seed: u64, stream: u64) -> Self {
        DelaySampler {
            model,
            rng: seeded(seed, stream),
        }
    }

    /// The next delay. A fixed model never touches the generator.
    pub fn sample(&mut self) -> Duration {
        draw(self.model, &mut self.rng)
    }
}

/// The generator of one stream of a seeded run.
pub(crate) fn seeded(seed: u64, stream: u64) -> Pcg64Mcg {
    // Mix the stream into the seed with a large odd constant so that neighbouring streams
    // start far apart in the generator's sequence.
    let mixed = u128::from(seed) << 64 | u128::from(stream.wrapping_mul(0x9E37_79B9_7F4A_7C15));
    Pcg64Mcg::from_seed(mixed.to_le_bytes())
}

/// One delay drawn from `model`; a fixed model never touches the generator, so a run's
/// draws do not depend on how many fixed phases its recipe has.
pub(crate) fn draw(model: DelayModel, rng: &mut Pcg64Mcg) -> Duration {
    match model {
        DelayModel::Fixed(d) => d,
        DelayModel::Uniform { min, max } => {
            let (lo, hi) = (nanos(min), nanos(max));
            Duration::from_nanos(rng.random_range(lo..=hi))
        }
        DelayModel::Exponential { mean } => {
            // Inverse transform: -mean * ln(U) with U in (0, 1]; `1 - random()` avoids ln(0).
            let u: f64 = 1.0 - rng.random::<f64>();
            // Saturates rather than panics for a model built in code past `MAX`.
            Duration::try_from_secs_f64(-mean.as_secs_f64() * u.ln()).unwrap_or(Duration::MAX)
        }
    }
}

fn nanos(d: Duration) -> u64 {
    u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)
}
