//! The delay-spec parser (`DelayModel: FromStr`) under arbitrary text.
//!
//! A spec comes from a user's `--delay` flag and from JSON reports, so any text must give a
//! model or an error naming the spec, never a panic; an accepted model must print as a spec
//! that parses back to the same model (reports record the printed form); and a model the
//! parser accepted must not panic later, when a server takes its mean or draws delays from it.

use std::time::Instant;

use echo_core::{DelayModel, DelaySampler};

/// Draws from an accepted model: enough to reach the sampler's arithmetic, few enough to stay
/// fast.
const SAMPLES: usize = 4;

/// Parses `data` (when it is UTF-8) as a delay spec and panics where the parser breaks the
/// rules in the module docs.
pub fn check(data: &[u8]) {
    let Ok(spec) = std::str::from_utf8(data) else {
        return;
    };
    match spec.parse::<DelayModel>() {
        Err(e) => {
            let message = e.to_string();
            assert!(
                message.contains(&format!("{spec:?}")),
                "error {message:?} does not name the spec {spec:?}"
            );
        }
        Ok(model) => {
            let printed = model.to_string();
            let again: DelayModel = printed.parse().unwrap_or_else(|e| {
                panic!("{spec:?} parsed as {model:?}, printed as {printed:?}, which fails: {e}")
            });
            assert_eq!(again, model, "{spec:?} printed as {printed:?}");
            assert_eq!(again.to_string(), printed, "printing is not stable");
            let _ = model.mean();
            let now = Instant::now();
            let mut sampler = DelaySampler::new(model, 0, 0);
            for _ in 0..SAMPLES {
                let delay = sampler.sample();
                assert!(
                    now.checked_add(delay).is_some(),
                    "{spec:?} drew {delay:?}, past any deadline a server can set"
                );
            }
        }
    }
}
