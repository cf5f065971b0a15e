//! The delay simulator: spec parsing, display round-trips and the samplers' distributions.

use std::time::Duration;

use echo_core::{Config, DelayKind, DelayModel, DelaySampler, Error, Framing};

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

#[test]
fn delay_specs_are_read_in_their_compact_forms() {
    let cases = [
        ("100ms", DelayModel::Fixed(ms(100))),
        ("0", DelayModel::Fixed(Duration::ZERO)),
        ("fixed:1s", DelayModel::Fixed(ms(1000))),
        (
            "uniform:50ms..150ms",
            DelayModel::Uniform {
                min: ms(50),
                max: ms(150),
            },
        ),
        ("exp:100ms", DelayModel::Exponential { mean: ms(100) }),
    ];
    for (spec, want) in cases {
        assert_eq!(spec.parse::<DelayModel>(), Ok(want), "{spec}");
    }
}

#[test]
fn a_delay_spec_survives_display_and_parse() {
    for spec in ["100ms", "0s", "uniform:50ms..150ms", "exp:1s500ms", "250us"] {
        let model: DelayModel = spec.parse().expect("valid spec");
        assert_eq!(model.to_string().parse::<DelayModel>(), Ok(model), "{spec}");
    }
}

#[test]
fn bad_delay_specs_are_refused_with_a_message_naming_them() {
    for spec in [
        "",
        "fast",
        "uniform:150ms..50ms",
        "uniform:50ms",
        "gauss:1ms",
        "exp:-3ms",
    ] {
        let err = spec.parse::<DelayModel>().expect_err(spec).to_string();
        assert!(
            err.contains(&format!("{spec:?}")),
            "{err:?} should name {spec:?}"
        );
    }
}

#[test]
fn delay_kinds_and_framings_parse_and_refuse_unknown_names() {
    assert_eq!("block".parse(), Ok(DelayKind::Block));
    assert_eq!("raw".parse(), Ok(Framing::Raw));
    assert_eq!(
        "sleep".parse::<DelayKind>(),
        Err(Error::InvalidDelayKind("sleep".into()))
    );
    assert_eq!(
        "http".parse::<Framing>(),
        Err(Error::InvalidFraming("http".into()))
    );
}

#[test]
fn the_same_seed_and_stream_give_the_same_sequence_and_others_differ() {
    let model = DelayModel::Exponential { mean: ms(100) };
    let draw = |seed, stream| {
        let mut s = DelaySampler::new(model, seed, stream);
        (0..50).map(|_| s.sample()).collect::<Vec<_>>()
    };
    assert_eq!(draw(1, 1), draw(1, 1));
    assert_ne!(draw(1, 1), draw(2, 1));
    assert_ne!(draw(1, 1), draw(1, 2));
}

fn mean_of(model: DelayModel, n: u32) -> f64 {
    let mut s = DelaySampler::new(model, 42, 0);
    (0..n).map(|_| s.sample().as_secs_f64()).sum::<f64>() / f64::from(n)
}

#[test]
fn exponential_delays_have_the_configured_mean_and_a_long_tail() {
    let mean = mean_of(DelayModel::Exponential { mean: ms(100) }, 100_000);
    assert!((mean - 0.1).abs() < 0.003, "mean {mean}");
    let mut s = DelaySampler::new(DelayModel::Exponential { mean: ms(100) }, 42, 0);
    let over_3x = (0..100_000).filter(|_| s.sample() > ms(300)).count();
    // P(X > 3 mean) = e^-3 ≈ 4.98 %.
    assert!(
        (4_500..5_500).contains(&over_3x),
        "{over_3x} of 100000 above 3x the mean"
    );
}

#[test]
fn uniform_delays_have_the_midpoint_as_mean() {
    let mean = mean_of(
        DelayModel::Uniform {
            min: ms(50),
            max: ms(150),
        },
        100_000,
    );
    assert!((mean - 0.1).abs() < 0.002, "mean {mean}");
}

#[test]
fn the_configuration_round_trips_through_json_with_units_in_names() {
    let config = Config {
        delay: "uniform:1ms..2ms".parse().expect("valid"),
        idle_timeout: Some(ms(1500)),
        ..Config::default()
    };
    let json = serde_json::to_value(&config).expect("serializes");
    assert_eq!(json["delay"], "uniform:1ms..2ms");
    assert_eq!(json["idle_timeout_ms"], 1500);
    assert_eq!(json["delay_kind"], "wait");
    let back: Config = serde_json::from_value(json).expect("deserializes");
    assert_eq!(back, config);
}

#[test]
fn zero_limits_are_refused_by_name() {
    let config = Config {
        max_line_bytes: 0,
        ..Config::default()
    };
    let err = config.validate().expect_err("zero line limit").to_string();
    assert_eq!(err, "max_line_bytes must be greater than zero, got 0");
    assert!(Config::default().validate().is_ok());
}

/// Found by the `delay_spec` fuzz target: an exponential mean of millions of months made the
/// sampler panic converting its draw to a `Duration`. Delays are now bounded at parse time.
#[test]
fn a_delay_longer_than_a_day_is_refused_naming_the_spec() {
    for spec in [
        "exp:3889388643885M",
        "25h",
        "uniform:1s..2days",
        "fixed:100years",
    ] {
        let err = spec.parse::<DelayModel>().expect_err("beyond a day");
        let message = err.to_string();
        assert!(message.contains(spec), "{message}");
        assert!(
            message.contains("above the longest delay, 1day"),
            "{message}"
        );
    }
    assert_eq!(
        "24h".parse::<DelayModel>(),
        Ok(DelayModel::Fixed(DelayModel::MAX))
    );
}

#[test]
fn the_mean_of_the_widest_uniform_model_does_not_overflow() {
    let model = DelayModel::Uniform {
        min: Duration::MAX,
        max: Duration::MAX,
    };
    assert_eq!(model.mean(), Duration::MAX);
}
