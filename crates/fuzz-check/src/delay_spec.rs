//! The delay-spec parser (`Recipe: FromStr`, and `DelayModel: FromStr` under it) under
//! arbitrary text.
//!
//! A spec comes from a user's `--delay` flag and from JSON reports, so any text must give a
//! recipe or an error naming the spec, never a panic; an accepted recipe must print as a spec
//! that parses back to the same recipe (reports record the printed form); and a recipe the
//! parser accepted must not panic later, when a server takes its mean or draws its phases.
//!
//! The grammar is checked against a small model built only from the one-distribution parser:
//! a spec is its `+`-separated parts, each `KIND:DURATION` when what precedes its first `:`
//! is a kind and `DURATION` otherwise. A spec is a recipe exactly when every part is a phase
//! by that model and the longest delays the phases name add up to a day at most; the recipe's
//! phases are the model's; and a refused spec of several parts names the first part the
//! model refuses.

use std::time::{Duration, Instant};

use echo_core::{DelayKind, DelayModel, Phase, Recipe, RecipeSampler};

/// Draws from each phase of an accepted recipe: enough to reach the sampler's arithmetic, few
/// enough to stay fast.
const SAMPLES: usize = 4;

/// Parses `data` (when it is UTF-8) as a delay spec and panics where the parser breaks the
/// rules in the module docs.
pub fn check(data: &[u8]) {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    let model = model(spec);
    match (spec.parse::<Recipe>(), model) {
        (Err(e), Err(faulty)) => {
            let message = e.to_string();
            assert!(
                message.contains(&format!("{spec:?}")),
                "error {message:?} does not name the spec {spec:?}"
            );
            if let Some((n, part)) = faulty.filter(|_| spec.contains('+')) {
                let named = format!("phase {n} {part:?}");
                assert!(
                    message.contains(&named),
                    "error {message:?} does not name {named}"
                );
            }
        }
        (Ok(recipe), Ok(phases)) => {
            assert_eq!(recipe.phases(), phases.as_slice(), "{spec:?}");
            round_trip(spec, &recipe);
            sample(spec, &recipe);
        }
        (Ok(recipe), Err(faulty)) => {
            panic!("{spec:?} parsed as {recipe:?}, which the model refuses at {faulty:?}")
        }
        (Err(e), Ok(phases)) => {
            panic!("{spec:?} is refused ({e}) but the model reads it as {phases:?}")
        }
    }
}

/// The model's reading: the phases, or the first part (numbered from 1, with its text) it
/// refuses; `Err(None)` when every part is a phase but together they name more than a day.
fn model(spec: &str) -> Result<Vec<Phase>, Option<(usize, &str)>> {
    let mut phases = Vec::new();
    for (i, part) in spec.split('+').enumerate() {
        let phase = model_phase(part).ok_or(Some((i + 1, part)))?;
        phases.push(phase);
    }
    let named = phases
        .iter()
        .map(|p| match p.duration {
            DelayModel::Fixed(d) => d,
            DelayModel::Uniform { max, .. } => max,
            DelayModel::Exponential { mean } => mean,
        })
        .fold(Duration::ZERO, Duration::saturating_add);
    if named > DelayModel::MAX {
        return Err(None);
    }
    Ok(phases)
}

fn model_phase(part: &str) -> Option<Phase> {
    let trimmed = part.trim();
    if let Some((head, rest)) = trimmed.split_once(':') {
        if let Ok(kind) = head.parse::<DelayKind>() {
            let duration = rest.parse().ok()?;
            return Some(Phase {
                kind: Some(kind),
                duration,
            });
        }
    }
    let duration = trimmed.parse().ok()?;
    Some(Phase {
        kind: None,
        duration,
    })
}

fn round_trip(spec: &str, recipe: &Recipe) {
    let printed = recipe.to_string();
    let again: Recipe = printed.parse().unwrap_or_else(|e| {
        panic!("{spec:?} parsed as {recipe:?}, printed as {printed:?}, which fails: {e}")
    });
    assert_eq!(&again, recipe, "{spec:?} printed as {printed:?}");
    assert_eq!(again.to_string(), printed, "printing is not stable");
}

fn sample(spec: &str, recipe: &Recipe) {
    let _ = recipe.mean();
    let now = Instant::now();
    let mut sampler = RecipeSampler::new(recipe, DelayKind::Wait, 0, 0);
    for _ in 0..SAMPLES {
        for index in 0..recipe.phases().len() {
            let (_, delay) = sampler
                .phase(index)
                .unwrap_or_else(|| panic!("{spec:?} has no phase {index}"));
            assert!(
                now.checked_add(delay).is_some(),
                "{spec:?} drew {delay:?}, past any deadline a server can set"
            );
        }
        assert_eq!(sampler.phase(recipe.phases().len()), None, "{spec:?}");
    }
}
