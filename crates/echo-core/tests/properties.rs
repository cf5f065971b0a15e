//! Property tests: what must hold for every input, not just the examples.

mod sim;

use echo_core::{Config, DelayModel, DelaySampler, Protocol};
use proptest::prelude::*;
use sim::{Sim, ms};

/// Feeds `stream` cut at `cuts` (positions, any order) and returns everything written.
fn replies(stream: &[u8], cuts: &[usize], delay_ms: u64) -> String {
    let cfg = Config {
        delay: DelayModel::Fixed(ms(delay_ms)),
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
    fn uniform_delays_stay_within_their_bounds(seed in any::<u64>(), lo in 0u64..100, span in 0u64..100) {
        let model = DelayModel::Uniform { min: ms(lo), max: ms(lo + span) };
        let mut sampler = DelaySampler::new(model, seed, 7);
        for _ in 0..200 {
            let d = sampler.sample();
            prop_assert!(d >= ms(lo) && d <= ms(lo + span), "{d:?} outside {lo}..{}", lo + span);
        }
    }
}
