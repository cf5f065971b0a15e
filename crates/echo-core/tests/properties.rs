//! Property tests: what must hold for every input, not just the examples.

mod sim;

use echo_core::{Config, DelayKind, DelayModel, DelaySampler, Phase, Protocol, Recipe};
use proptest::prelude::*;
use sim::{Sim, ms};

/// Feeds `stream` cut at `cuts` (positions, any order) and returns everything written.
fn replies(stream: &[u8], cuts: &[usize], delay_ms: u64) -> String {
    let cfg = Config {
        delay: DelayModel::Fixed(ms(delay_ms)).into(),
        idle_timeout: None,
        max_line_bytes: 64,
        max_output_bytes: 1 << 20,
        ..Config::default()
    };
    let mut sim = Sim::new(&cfg);
    let mut points: Vec<usize> = cuts.iter().map(|c| c % (stream.len() + 1)).collect();
    points.push(0);
    points.push(stream.len());
    points.sort_unstable();
    for pair in points.windows(2) {
        let chunk = &stream[pair[0]..pair[1]];
        if chunk.is_empty() {
            continue;
        }
        // Backpressure: a server waits for the protocol to want input again (it never drops
        // what it read). Skipping the chunk here instead once lost replies at random.
        while !sim.conn.wants_read() && !sim.conn.is_closed() {
            let next = sim
                .conn
                .next_timeout()
                .expect("refusing reads, so a deadline is set");
            sim.run_until(next.at - sim.start);
        }
        if sim.conn.is_closed() {
            break;
        }
        sim.conn.data_received(chunk, sim.now);
        sim.run_until(sim.elapsed() + ms(1));
    }
    sim.conn.eof_received(sim.now);
    sim.run_until(ms(1_000_000));
    assert!(
        sim.conn.is_closed(),
        "EOF with everything answered must close"
    );
    String::from_utf8_lossy(&sim.written).into_owned()
}

/// A phase and one of the ways a user may write it (`fixed:` or not, spaces around it).
fn phase_strategy() -> impl Strategy<Value = (Phase, String)> {
    let kind = prop_oneof![
        Just(None),
        Just(Some(DelayKind::Wait)),
        Just(Some(DelayKind::Block)),
        Just(Some(DelayKind::Spin)),
    ];
    // Microseconds up to an hour: any number of phases up to 24 stays within the day.
    let us = 0u64..3_600_000_000;
    let model = prop_oneof![
        (us.clone(), any::<bool>()).prop_map(|(n, fixed)| {
            let d = std::time::Duration::from_micros(n);
            let prefix = if fixed { "fixed:" } else { "" };
            (DelayModel::Fixed(d), format!("{prefix}{}us", n))
        }),
        (us.clone(), us.clone()).prop_map(|(a, b)| {
            let (lo, hi) = (a.min(b), a.max(b));
            let model = DelayModel::Uniform {
                min: std::time::Duration::from_micros(lo),
                max: std::time::Duration::from_micros(hi),
            };
            (model, format!("uniform:{lo}us..{hi}us"))
        }),
        us.prop_map(|n| {
            let mean = std::time::Duration::from_micros(n);
            (DelayModel::Exponential { mean }, format!("exp:{n}us"))
        }),
    ];
    (kind, model, any::<bool>()).prop_map(|(kind, (duration, text), spaced)| {
        let text = match kind {
            Some(kind) => format!("{kind}:{text}"),
            None => text,
        };
        let text = if spaced { format!(" {text} ") } else { text };
        (Phase { kind, duration }, text)
    })
}

fn stream_strategy() -> impl Strategy<Value = Vec<u8>> {
    let piece = prop_oneof![
        "[a-zß€ǆ ]{0,12}\n".prop_map(String::into_bytes),
        Just(b"\xff\xfe\n".to_vec()),
        Just(b"\n".to_vec()),
    ];
    prop::collection::vec(piece, 0..12).prop_map(|v| v.concat())
}

proptest! {
    #[test]
    fn any_split_of_the_stream_gives_the_same_replies(
        stream in stream_strategy(),
        cuts in prop::collection::vec(any::<usize>(), 0..16),
        delay_ms in 0u64..3,
    ) {
        prop_assert_eq!(replies(&stream, &cuts, delay_ms), replies(&stream, &[], delay_ms));
    }

    #[test]
    fn every_valid_line_is_answered_with_its_upper_case(lines in prop::collection::vec("[^\n]{0,20}", 0..10)) {
        let stream: String = lines.iter().map(|l| format!("{l}\n")).collect();
        let expected: String = lines.iter().map(|l| format!("{}\n", l.to_uppercase())).collect();
        let got = replies(stream.as_bytes(), &[], 1);
        // Lines whose upper case is longer than the 64-byte limit are refused instead.
        prop_assume!(lines.iter().all(|l| l.len() <= 64));
        prop_assert_eq!(got, expected);
    }

    #[test]
    fn a_recipe_reads_as_its_phases_and_prints_as_a_spec_that_reads_back_to_it(
        written in prop::collection::vec(phase_strategy(), 1..24),
    ) {
        let spec: Vec<&str> = written.iter().map(|(_, text)| text.as_str()).collect();
        let spec = spec.join("+");
        let phases: Vec<Phase> = written.iter().map(|(phase, _)| *phase).collect();
        let read: Recipe = spec.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(read.phases(), phases.as_slice());
        let printed = read.to_string();
        let again: Recipe = printed.parse().map_err(|e| TestCaseError::fail(format!("{e}")))?;
        prop_assert_eq!(&again, &read);
        prop_assert_eq!(again.to_string(), printed, "printing is not stable");
    }

    #[test]
    fn uniform_delays_stay_within_their_bounds(seed in any::<u64>(), lo in 0u64..100, span in 0u64..100) {
        let model = DelayModel::Uniform { min: ms(lo), max: ms(lo + span) };
        let mut sampler = DelaySampler::new(model, seed, 7);
        for _ in 0..200 {
            let d = sampler.sample();
            prop_assert!(d >= ms(lo) && d <= ms(lo + span), "{d:?} outside {lo}..{}", lo + span);
        }
    }
}
