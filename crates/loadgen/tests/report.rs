//! The report: JSON round trip, schema, exact merge, and the summary agreeing with the JSON.

mod support;

use std::time::{Duration, Instant, SystemTime};

use loadgen::report::{
    Environment, HISTOGRAM_ENCODING, RequestTimes, RunInfo, SCHEMA_VERSION, decode_histogram,
};
use loadgen::{Config, FailureKind, Measurements, Report, ReportError};
use serde_json::Value;
use support::{Behaviour, TestServer};

fn real_report() -> Report {
    report_from(&TestServer::start(Behaviour::Echo))
}

fn report_from(server: &TestServer) -> Report {
    let mut config = Config::new(server.addr);
    config.n_connections = 10;
    config.requests_per_conn = 2;
    loadgen::run(&config).expect("the run can be made")
}

fn info(started_at: SystemTime, wall_time: Duration, runs_merged: u32) -> RunInfo {
    RunInfo {
        target: "127.0.0.1:9".to_owned(),
        parameters: Config::new("127.0.0.1:9".parse().expect("address")).parameters(),
        environment: Environment::current(20_000),
        started_at,
        wall_time,
        runs_merged,
    }
}

/// Records `latencies_us` as successes and `failures` as wrong replies, connecting once per
/// request, into `measurements`.
fn record(measurements: &mut Measurements, latencies_us: &[u64], failures: u64) {
    for &us in latencies_us {
        measurements.record_connect(Duration::from_micros(us / 2));
        measurements.record_latency(Duration::from_micros(us));
    }
    measurements.failures.add(FailureKind::WrongReply, failures);
}

/// Records open-loop requests as `(lag_us, latency_from_send_us)` pairs, each due while a
/// connection was idle.
fn record_scheduled(measurements: &mut Measurements, requests: &[(u64, u64)]) {
    let waits: Vec<_> = requests
        .iter()
        .map(|&(lag, from_send)| (0, lag, from_send))
        .collect();
    record_waiting(measurements, &waits);
}

/// Records open-loop requests as `(wait_for_connection_us, client_lag_us,
/// latency_from_send_us)`.
fn record_waiting(measurements: &mut Measurements, requests: &[(u64, u64, u64)]) {
    let due = Instant::now();
    for &(wait_us, lag_us, from_send_us) in requests {
        let ready = due + Duration::from_micros(wait_us);
        let sent = ready + Duration::from_micros(lag_us);
        let done = sent + Duration::from_micros(from_send_us);
        let times = RequestTimes {
            due,
            ready,
            sent,
            done,
            read: None,
        };
        measurements.record_request(&times, true);
    }
}

#[test]
fn a_report_survives_a_json_round_trip_unchanged() {
    let report = real_report();
    let back = Report::from_json(&report.to_json()).expect("own json reads back");
    assert_eq!(back, report);
}

#[test]
fn the_json_has_the_documented_fields_with_units_in_their_names() {
    let report = real_report();
    let json: Value = serde_json::from_str(&report.to_json()).expect("valid json");
    let mut keys: Vec<_> = json
        .as_object()
        .expect("an object")
        .keys()
        .cloned()
        .collect();
    keys.sort();
    let mut expected = vec![
        "schema_version",
        "tool",
        "tool_version",
        "target",
        "parameters",
        "environment",
        "started_at",
        "wall_time_seconds",
        "runs_merged",
        "requests_ok",
        "requests_failed",
        "requests_not_sent",
        "requests_started_late",
        "failures",
        "connections_established",
        "throughput_requests_per_second",
        "all_connected_seconds",
        "connect_time",
        "latency",
        "latency_from_send",
        "schedule_lag",
        "client_lag",
        "requests_waited_for_connection",
        "read_lag",
        "replies_timed_by_kernel",
        "client_bound",
        "histograms",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    assert_eq!(json["schema_version"], SCHEMA_VERSION);
    assert_eq!(json["histograms"]["encoding"], HISTOGRAM_ENCODING);
    for kind in FailureKind::ALL {
        assert_eq!(json["failures"][kind.name()], 0, "{}", kind.name());
    }
    for field in ["p50_us", "p90_us", "p99_us", "p99_9_us", "max_us"] {
        assert!(
            json["latency"][field].as_f64().is_some_and(|us| us > 0.0),
            "{field}"
        );
    }
    assert!(humantime::parse_rfc3339(json["started_at"].as_str().unwrap_or("")).is_ok());
}

#[test]
fn the_serialized_histogram_holds_every_successful_request() {
    let report = real_report();
    let latency = decode_histogram("latency", &report.histograms.latency_ns).expect("decodes");
    assert_eq!(latency.len(), report.requests_ok);
    assert_eq!(latency.len(), 20);
}

#[test]
fn a_report_of_another_schema_version_is_refused() {
    let mut json: Value = serde_json::from_str(&real_report().to_json()).expect("valid json");
    json["schema_version"] = Value::from(SCHEMA_VERSION + 1);
    let error = Report::from_json(&json.to_string()).expect_err("future schema");
    assert!(
        matches!(error, ReportError::UnsupportedSchema { .. }),
        "{error}"
    );
}

#[test]
fn merging_two_reports_equals_one_report_over_both() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (a_us, b_us) = ([120, 80, 95_000, 40], [300, 7, 1_200_000]);
    let (mut a, mut b, mut both) = Default::default();
    record(&mut a, &a_us, 1);
    record(&mut b, &b_us, 2);
    record(&mut both, &a_us, 1);
    record(&mut both, &b_us, 2);
    // b starts 0.5 s after a; each lasts 1 s; b's connections were all up 0.25 s after it.
    a.all_connected = Some(Duration::from_millis(125));
    b.all_connected = Some(Duration::from_millis(250));
    both.all_connected = Some(Duration::from_millis(750));
    let second = Duration::from_secs(1);
    let report_a = Report::build(info(t0, second, 1), &a).expect("builds");
    let half_later = t0 + Duration::from_millis(500);
    let report_b = Report::build(info(half_later, second, 1), &b).expect("builds");
    let merged = report_a.merge(&report_b).expect("same target merges");
    let direct = Report::build(info(t0, Duration::from_millis(1500), 2), &both).expect("builds");
    assert_eq!(merged, direct);
    assert_eq!(merged.requests_ok, 7);
    assert_eq!(merged.requests_failed, 3);
}

/// Merges the reports of two runs of open-loop requests (as [`record_waiting`] takes them),
/// checking that the merge equals one run that recorded both.
fn merge_scheduled(a_requests: &[(u64, u64, u64)], b_requests: &[(u64, u64, u64)]) -> Report {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
    let (mut a, mut b, mut both) = Default::default();
    record_waiting(&mut a, a_requests);
    record_waiting(&mut b, b_requests);
    record_waiting(&mut both, a_requests);
    record_waiting(&mut both, b_requests);
    let second = Duration::from_secs(1);
    let report_a = Report::build(info(t0, second, 1), &a).expect("builds");
    let report_b = Report::build(info(t0, second, 1), &b).expect("builds");
    let merged = report_a.merge(&report_b).expect("same target merges");
    let direct = Report::build(info(t0, second, 2), &both).expect("builds");
    assert_eq!(merged, direct);
    merged
}

#[test]
fn merging_adds_both_clocks_and_the_schedule_lag_exactly() {
    let a_requests = [(0, 20, 100_000), (0, 3_000, 101_000)];
    let b_requests = [(0, 40, 99_000), (0, 15, 100_500), (0, 900, 100_100)];
    let merged = merge_scheduled(&a_requests, &b_requests);
    assert_eq!(merged.schedule_lag.count, 5);
    assert_eq!(merged.latency_from_send.count, 5);
    assert_eq!(
        merged.requests_started_late, 1,
        "only the 3 ms lag is over 1 ms"
    );
    let lag = decode_histogram("schedule_lag", &merged.histograms.schedule_lag_ns).expect("hex");
    assert_eq!(lag.len(), 5);
}

#[test]
fn merging_adds_the_client_lag_and_the_waits_for_a_connection_exactly() {
    let a_requests = [(0, 20, 100_000), (30_000, 5, 101_000)];
    let b_requests = [(0, 2_000, 99_000), (12_000, 15, 100_500), (0, 40, 100_100)];
    let merged = merge_scheduled(&a_requests, &b_requests);
    assert_eq!(merged.requests_waited_for_connection, 2);
    assert_eq!(merged.client_lag.count, 5);
    let lag = decode_histogram("client_lag", &merged.histograms.client_lag_ns).expect("hex");
    assert_eq!(lag.len(), 5);
    assert_eq!(
        lag.max(),
        lag.highest_equivalent(2_000_000),
        "the 2 ms client lag"
    );
    assert!(
        merged.schedule_lag.max_us >= 30_000.0,
        "{:?}",
        merged.schedule_lag
    );
}

#[test]
fn a_reply_stamped_on_arrival_ends_its_latency_there_and_merges_its_read_lag_exactly() {
    let record = |measurements: &mut Measurements, read_lags_us: &[Option<u64>]| {
        let due = Instant::now();
        for read_lag_us in read_lags_us {
            let done = due + Duration::from_millis(100);
            let times = RequestTimes {
                due,
                ready: due,
                sent: due,
                done,
                read: read_lag_us.map(|us| done + Duration::from_micros(us)),
            };
            measurements.record_request(&times, true);
        }
    };
    let (mut a, mut b) = (Measurements::default(), Measurements::default());
    record(&mut a, &[Some(30), Some(4_000), None]);
    record(&mut b, &[Some(50)]);
    let mut open_loop = info(SystemTime::UNIX_EPOCH, Duration::from_secs(1), 1);
    open_loop.parameters.rate_requests_per_second = Some(4.0);
    let one = Report::build(open_loop.clone(), &a).expect("builds");
    let other = Report::build(open_loop, &b).expect("builds");
    let merged = one.merge(&other).expect("merges");
    assert_eq!(
        merged.replies_timed_by_kernel, 3,
        "the unstamped one is not"
    );
    assert_eq!(merged.read_lag.count, 3);
    let lag = decode_histogram("read_lag", &merged.histograms.read_lag_ns).expect("hex");
    assert_eq!(
        lag.max(),
        lag.highest_equivalent(4_000_000),
        "the 4 ms read lag"
    );
    // The latency ends at the arrival: the read lag is not in it.
    assert!(merged.latency.max_us < 100_100.0, "{:?}", merged.latency);
    let summary = loadgen::summary::render(&merged);
    assert!(
        summary.contains("replies timed    3 by the kernel's arrival stamp, 1 by their read"),
        "{summary}"
    );
}

#[test]
fn a_run_that_waited_for_busy_connections_is_not_client_bound_on_that_wait() {
    let t0 = SystemTime::UNIX_EPOCH;
    let mut measurements = Measurements::default();
    // Every request waited 20 ms for a connection (the server's slowness), then went out
    // within 10 µs of the connection becoming idle.
    record_waiting(&mut measurements, &[(20_000, 10, 100_000); 10]);
    let report = Report::build(info(t0, Duration::from_secs(1), 1), &measurements).expect("builds");
    assert!(
        report.schedule_lag.p99_us >= 20_000.0,
        "{:?}",
        report.schedule_lag
    );
    assert!(report.client_lag.p99_us < 20.0, "{:?}", report.client_lag);
    assert_eq!(report.requests_waited_for_connection, 10);
    assert!(
        !report.client_bound,
        "the wait was the server's: {report:#?}"
    );
    let summary = loadgen::summary::render(&report);
    assert!(!summary.contains("client-bound"), "{summary}");
}

#[test]
fn a_run_whose_lag_p99_is_over_the_threshold_is_client_bound() {
    let t0 = SystemTime::UNIX_EPOCH;
    let mut measurements = Measurements::default();
    record_scheduled(&mut measurements, &[(2_000, 100_000); 10]);
    let mut run = info(t0, Duration::from_secs(1), 1);
    let bound = Report::build(run.clone(), &measurements).expect("builds");
    assert!(bound.client_bound, "2 ms lag against the default 1 ms");
    let summary = loadgen::summary::render(&bound);
    assert!(summary.contains("client-bound"), "{summary}");
    run.parameters.max_schedule_lag_us = 5_000.0;
    let within = Report::build(run, &measurements).expect("builds");
    assert!(!within.client_bound, "2 ms lag against 5 ms");
}

#[test]
fn closed_loop_records_no_schedule_lag_and_is_never_client_bound() {
    let report = real_report();
    assert_eq!(report.schedule_lag.count, 0);
    assert_eq!(report.latency_from_send.count, report.requests_ok);
    assert!(!report.client_bound);
}

#[test]
fn a_schema_version_2_report_is_read_and_still_judged_on_its_schedule_lag() {
    let t0 = SystemTime::UNIX_EPOCH;
    let mut measurements = Measurements::default();
    record_scheduled(&mut measurements, &[(2_000, 100_000); 10]);
    let current =
        Report::build(info(t0, Duration::from_secs(1), 1), &measurements).expect("builds");
    let mut json: Value = serde_json::from_str(&current.to_json()).expect("valid json");
    json["schema_version"] = Value::from(2);
    let object = json.as_object_mut().expect("an object");
    for field in ["client_lag", "requests_waited_for_connection"] {
        object.remove(field);
    }
    json["histograms"]
        .as_object_mut()
        .expect("histograms")
        .remove("client_lag_ns");
    let old = Report::from_json(&json.to_string()).expect("version 2 is read");
    assert_eq!(old.schema_version, SCHEMA_VERSION);
    assert_eq!(old.client_lag.count, 0);
    assert!(old.client_bound, "as written");
    let merged = old.merge(&old).expect("an upgraded report merges");
    assert!(
        merged.client_bound,
        "2 ms schedule lag, no client lag recorded"
    );
    assert_eq!(merged.requests_ok, 20);
}

#[test]
fn a_schema_version_1_report_is_read_and_upgraded_without_the_new_fields() {
    let server = TestServer::start(Behaviour::Echo);
    let current = report_from(&server);
    let mut json: Value = serde_json::from_str(&current.to_json()).expect("valid json");
    json["schema_version"] = Value::from(1);
    let object = json.as_object_mut().expect("an object");
    for field in [
        "latency_from_send",
        "schedule_lag",
        "client_lag",
        "requests_waited_for_connection",
        "client_bound",
    ] {
        object.remove(field);
    }
    for field in ["latency_from_send_ns", "schedule_lag_ns", "client_lag_ns"] {
        json["histograms"]
            .as_object_mut()
            .expect("histograms")
            .remove(field);
    }
    json["parameters"]
        .as_object_mut()
        .expect("parameters")
        .remove("max_schedule_lag_us");
    let old = Report::from_json(&json.to_string()).expect("version 1 is read");
    assert_eq!(old.schema_version, SCHEMA_VERSION);
    assert_eq!(old.schedule_lag.count, 0);
    assert_eq!(old.parameters.max_schedule_lag_us, 1_000.0);
    let merged = old.merge(&current).expect("an upgraded report merges");
    assert_eq!(merged.requests_ok, 40);
}

#[test]
fn merging_is_the_same_in_either_order() {
    let server = TestServer::start(Behaviour::Echo);
    let (first, second) = (report_from(&server), report_from(&server));
    let one_way = first.merge(&second);
    let other_way = second.merge(&first);
    let (one_way, other_way) = (one_way.expect("merges"), other_way.expect("merges"));
    assert_eq!(one_way.histograms, other_way.histograms);
    assert_eq!(one_way.requests_ok, 40);
    assert_eq!(one_way.started_at, other_way.started_at);
}

#[test]
fn reports_of_different_targets_do_not_merge() {
    let report = real_report();
    let mut other = report.clone();
    other.target = "127.0.0.1:1".to_owned();
    let error = report.merge(&other).expect_err("different targets");
    assert!(
        matches!(error, ReportError::TargetMismatch { .. }),
        "{error}"
    );
}

#[test]
fn the_summary_shows_the_same_percentiles_as_the_json() {
    let report = real_report();
    let summary = loadgen::summary::render(&report);
    let latency_line = summary
        .lines()
        .find(|line| line.trim_start().starts_with("latency"))
        .expect("a latency line");
    let stats = &report.latency;
    for (name, us) in [
        ("p50", stats.p50_us),
        ("p99.9", stats.p99_9_us),
        ("max", stats.max_us),
    ] {
        let shown = format!("{name} {}", loadgen::summary::format_us(us));
        assert!(
            latency_line.contains(&shown),
            "{shown} not in {latency_line}"
        );
    }
    assert!(summary.contains("20 ok, 0 failed"), "{summary}");
}
