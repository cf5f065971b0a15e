//! Request recipes: their spec (the issue's examples, today's specs, errors that name the
//! faulty phase, the bounds) and how the protocol hands a request's phases out one at a time.

mod sim;

use std::time::Duration;

use echo_core::{
    Config, DelayKind, DelayModel, DelaySampler, Phase, Protocol, Recipe, RecipeSampler,
};
use sim::{Sim, ms};

fn phase(kind: Option<DelayKind>, duration: DelayModel) -> Phase {
    Phase { kind, duration }
}

fn recipe(spec: &str) -> Recipe {
    spec.parse()
        .unwrap_or_else(|e| panic!("{spec:?} is a recipe: {e}"))
}

#[test]
fn the_issues_examples_read_as_their_phases() {
    let cases = [
        (
            "spin:2ms+wait:100ms",
            vec![
                phase(Some(DelayKind::Spin), DelayModel::Fixed(ms(2))),
                phase(Some(DelayKind::Wait), DelayModel::Fixed(ms(100))),
            ],
        ),
        (
            "block:100ms",
            vec![phase(Some(DelayKind::Block), DelayModel::Fixed(ms(100)))],
        ),
        (
            "wait:uniform:50ms..150ms",
            vec![phase(
                Some(DelayKind::Wait),
                DelayModel::Uniform {
                    min: ms(50),
                    max: ms(150),
                },
            )],
        ),
        (
            "spin:fixed:1ms + exp:20ms",
            vec![
                phase(Some(DelayKind::Spin), DelayModel::Fixed(ms(1))),
                phase(None, DelayModel::Exponential { mean: ms(20) }),
            ],
        ),
    ];
    for (spec, phases) in cases {
        assert_eq!(recipe(spec).phases(), phases.as_slice(), "{spec}");
    }
}

#[test]
fn todays_specs_are_one_phase_without_a_kind_and_print_as_before() {
    for spec in ["100ms", "0s", "uniform:50ms..150ms", "exp:1s500ms", "250us"] {
        let model: DelayModel = spec.parse().expect("a delay model");
        let read = recipe(spec);
        assert_eq!(read, Recipe::from(model), "{spec}");
        assert_eq!(read.to_string(), model.to_string(), "{spec}");
    }
    assert_eq!(Recipe::default().to_string(), "100ms");
}

#[test]
fn a_recipe_prints_as_a_spec_that_reads_back_to_it() {
    for spec in [
        "spin:2ms+wait:100ms",
        "block:fixed:100ms",
        "wait:uniform:50ms..150ms+spin:exp:1ms",
        "2ms+block:3ms+0",
    ] {
        let read = recipe(spec);
        assert_eq!(recipe(&read.to_string()), read, "{spec}");
    }
    assert_eq!(recipe("block:fixed:1s").to_string(), "block:1s");
}

#[test]
fn a_bad_phase_is_refused_naming_the_spec_and_the_phase() {
    let cases = [
        (
            "spin:2ms+wait:2xs",
            "phase 2 \"wait:2xs\": invalid duration \"2xs\"",
        ),
        (
            "spin:2xs+wait:100ms",
            "phase 1 \"spin:2xs\": invalid duration",
        ),
        ("spin:2ms+", "phase 2 \"\": it is empty"),
        (
            "sleep:2ms+1ms",
            "phase 1 \"sleep:2ms\": unknown kind or distribution",
        ),
        (
            "1ms+spin:gauss:1ms",
            "phase 2 \"spin:gauss:1ms\": unknown distribution",
        ),
        ("1ms+wait:uniform:3ms..1ms", "phase 2"),
    ];
    for (spec, expected) in cases {
        let message = spec.parse::<Recipe>().expect_err(spec).to_string();
        assert!(message.contains(&format!("{spec:?}")), "{message}");
        assert!(message.contains(expected), "{message} lacks {expected:?}");
    }
    let message = "spin:"
        .parse::<Recipe>()
        .expect_err("no duration")
        .to_string();
    assert!(message.contains("it is empty"), "{message}");
}

#[test]
fn each_phase_and_the_whole_recipe_stay_within_a_day() {
    let message = "spin:1ms+wait:25h"
        .parse::<Recipe>()
        .expect_err("a phase past a day")
        .to_string();
    assert!(message.contains("phase 2 \"wait:25h\""), "{message}");
    assert!(
        message.contains("above the longest delay, 1day"),
        "{message}"
    );
    let message = "wait:13h+spin:uniform:1h..12h"
        .parse::<Recipe>()
        .expect_err("phases past a day together")
        .to_string();
    assert!(
        message.contains("its phases name 1day1h in all, above the longest delay, 1day"),
        "{message}"
    );
    assert_eq!(recipe("wait:12h+spin:12h").mean(), Recipe::MAX_TOTAL);
}

#[test]
fn a_recipe_built_in_code_needs_a_phase() {
    let message = Recipe::new(Vec::new()).expect_err("no phase").to_string();
    assert!(message.contains("at least one phase"), "{message}");
    let built = Recipe::new(vec![
        phase(Some(DelayKind::Spin), DelayModel::Fixed(ms(2))),
        phase(Some(DelayKind::Wait), DelayModel::Fixed(ms(100))),
    ])
    .expect("two phases");
    assert_eq!(built, recipe("spin:2ms+wait:100ms"));
    assert_eq!(built.mean(), ms(102));
}

#[test]
fn the_configuration_records_a_recipe_as_its_spec() {
    let config = Config {
        delay: recipe("spin:2ms+wait:100ms"),
        ..Config::default()
    };
    let json = serde_json::to_value(&config).expect("serializes");
    assert_eq!(json["delay"], "spin:2ms+wait:100ms");
    let back: Config = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, config);
}

#[test]
fn a_one_phase_recipe_draws_the_delays_a_delay_sampler_draws() {
    let model = DelayModel::Exponential { mean: ms(100) };
    let mut before = DelaySampler::new(model, 42, 3);
    let mut now = RecipeSampler::new(&Recipe::from(model), DelayKind::Block, 42, 3);
    for _ in 0..100 {
        assert_eq!(
            now.phase(0),
            Some((DelayKind::Block, before.sample())),
            "the same stream"
        );
    }
    assert_eq!(now.phase(1), None);
}

fn config(spec: &str) -> Config {
    Config {
        delay: recipe(spec),
        idle_timeout: None,
        ..Config::default()
    }
}

/// The kind and the time from the start of the next deadline.
fn next(sim: &Sim) -> (DelayKind, Duration) {
    let t = sim.conn.next_timeout().expect("a phase under way");
    (t.kind, t.at - sim.start)
}

#[test]
fn a_requests_phases_are_handed_out_one_at_a_time_and_the_reply_follows_the_last() {
    let mut sim = Sim::new(&config("spin:2ms+wait:100ms"));
    sim.send(b"mixed\n");
    assert_eq!(next(&sim), (DelayKind::Spin, ms(2)));
    sim.now = sim.start + ms(2);
    sim.conn.timeout(sim.now);
    assert_eq!(next(&sim), (DelayKind::Wait, ms(102)));
    assert!(
        sim.conn.output().is_empty(),
        "no reply before the last phase"
    );
    sim.run_until(ms(101));
    assert_eq!(sim.text(), "");
    sim.run_until(ms(102));
    assert_eq!(sim.text(), "MIXED\n");
    assert_eq!(sim.conn.stats().requests, 1);
}

#[test]
fn a_phase_begins_when_the_previous_one_was_seen_to_end() {
    let mut sim = Sim::new(&config("block:10ms+wait:50ms"));
    sim.send(b"late\n");
    // The server got to the end of the block phase late (another connection held it).
    sim.now = sim.start + ms(25);
    sim.conn.timeout(sim.now);
    assert_eq!(next(&sim), (DelayKind::Wait, ms(75)));
}

#[test]
fn phases_without_a_kind_take_the_configured_one_and_named_kinds_win() {
    let mut sim = Sim::new(&Config {
        delay_kind: DelayKind::Block,
        ..config("2ms+spin:3ms")
    });
    sim.send(b"x\n");
    assert_eq!(next(&sim), (DelayKind::Block, ms(2)));
    sim.now = sim.start + ms(2);
    sim.conn.timeout(sim.now);
    assert_eq!(next(&sim), (DelayKind::Spin, ms(5)));
}

#[test]
fn zero_phases_are_skipped_and_a_recipe_of_zeros_is_answered_at_once() {
    let mut sim = Sim::new(&config("spin:0+wait:5ms+block:0"));
    sim.send(b"a\n");
    assert_eq!(next(&sim), (DelayKind::Wait, ms(5)));
    sim.run_until(ms(5));
    assert_eq!(sim.text(), "A\n");
    let mut sim = Sim::new(&config("spin:0+0"));
    sim.send(b"b\n");
    assert_eq!(sim.conn.output(), b"B\n");
}

#[test]
fn pipelined_requests_each_run_the_whole_recipe_in_turn() {
    let mut sim = Sim::new(&config("spin:1ms+wait:4ms"));
    sim.send(b"one\ntwo\n");
    sim.run_until(ms(9));
    assert_eq!(sim.text(), "ONE\n");
    sim.run_until(ms(10));
    assert_eq!(sim.text(), "ONE\nTWO\n");
}

#[test]
fn shutdown_mid_recipe_runs_the_remaining_phases_then_answers_and_closes() {
    let mut sim = Sim::new(&config("spin:2ms+wait:10ms"));
    sim.send(b"draining\n");
    sim.now = sim.start + ms(2);
    sim.conn.timeout(sim.now);
    sim.conn.shutdown(sim.now, sim.now + ms(1000));
    assert!(!sim.conn.is_closed(), "the request is still owed");
    assert_eq!(next(&sim), (DelayKind::Wait, ms(12)));
    sim.run_until(ms(12));
    assert_eq!(sim.text(), "DRAINING\n");
    assert!(sim.conn.is_closed());
}
