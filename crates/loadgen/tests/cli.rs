//! The `loadgen` binary: exit status, JSON output, refusal messages.

mod support;

use std::process::{Command, Output};

use loadgen::Report;
use support::{Behaviour, TestServer, refusing_addr};

fn loadgen(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_loadgen"))
        .args(args)
        .output()
        .expect("the loadgen binary runs")
}

#[test]
fn a_clean_run_exits_zero_and_writes_its_json_report_to_a_file() {
    let server = TestServer::start(Behaviour::Echo);
    let dir = tempfile::tempdir().expect("temp dir");
    let json = dir.path().join("report.json");
    let addr = server.addr.to_string();
    let json_arg = json.to_str().expect("utf-8 path");
    let output = loadgen(&[&addr, "--iterations", "30", "-m", "2", "--json", json_arg]);
    assert!(output.status.success(), "{output:?}");
    let text = std::fs::read_to_string(&json).expect("report written");
    let report = Report::from_json(&text).expect("a valid report");
    assert_eq!(report.requests_ok, 60);
    let summary = String::from_utf8_lossy(&output.stdout);
    assert!(summary.contains("60 ok, 0 failed"), "{summary}");
}

#[test]
fn max_lag_is_recorded_in_the_report_and_an_open_loop_summary_shows_the_lag() {
    let server = TestServer::start(Behaviour::Echo);
    let addr = server.addr.to_string();
    let args = [
        &addr,
        "-n",
        "4",
        "-m",
        "2",
        "--rate",
        "400",
        "--max-lag",
        "250us",
    ];
    let output = loadgen(&[&args[..], &["--json", "-"]].concat());
    assert!(output.status.success(), "{output:?}");
    let report = Report::from_json(&String::from_utf8_lossy(&output.stdout)).expect("json");
    assert_eq!(report.parameters.max_schedule_lag_us, 250.0);
    assert_eq!(report.schedule_lag.count, 8);
    assert_eq!(report.client_lag.count, 8);
    let summary = String::from_utf8_lossy(&output.stderr);
    assert!(summary.contains("schedule lag"), "{summary}");
    assert!(summary.contains("client lag"), "{summary}");
    assert!(summary.contains("waited for conn"), "{summary}");
    assert!(summary.contains("from send"), "{summary}");
}

#[test]
fn json_to_stdout_keeps_stdout_pure_json() {
    let server = TestServer::start(Behaviour::Echo);
    let output = loadgen(&[&server.addr.to_string(), "-n", "5", "--json", "-"]);
    assert!(output.status.success(), "{output:?}");
    let report = Report::from_json(&String::from_utf8_lossy(&output.stdout)).expect("json");
    assert_eq!(report.requests_ok, 5);
    assert!(String::from_utf8_lossy(&output.stderr).contains("5 ok"));
}

#[test]
fn any_failed_request_makes_the_exit_status_non_zero() {
    let output = loadgen(&[&refusing_addr().to_string(), "-n", "3", "--quiet"]);
    assert_eq!(output.status.code(), Some(1), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("3 of 3 requests failed"), "{stderr}");
}

#[test]
fn failures_within_the_max_error_rate_exit_zero() {
    let addr = refusing_addr().to_string();
    let output = loadgen(&[&addr, "-n", "3", "--quiet", "--max-error-rate", "1"]);
    assert!(output.status.success(), "{output:?}");
}

#[test]
fn a_concurrency_that_cannot_fit_is_refused_with_how_many_fit() {
    let addr = refusing_addr().to_string();
    let output = loadgen(&[&addr, "--connections", "5000000"]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("connections fit"), "{stderr}");
}

#[test]
fn merge_combines_the_reports_of_two_runs_into_one() {
    let server = TestServer::start(Behaviour::Echo);
    let dir = tempfile::tempdir().expect("temp dir");
    let addr = server.addr.to_string();
    let paths: Vec<String> = ["a.json", "b.json"]
        .iter()
        .map(|name| dir.path().join(name).to_string_lossy().into_owned())
        .collect();
    for (path, connections) in paths.iter().zip(["7", "5"]) {
        let output = loadgen(&[&addr, "-n", connections, "-q", "--json", path]);
        assert!(output.status.success(), "{output:?}");
    }
    let output = loadgen(&["merge", &paths[0], &paths[1], "--quiet"]);
    assert!(output.status.success(), "{output:?}");
    let merged = Report::from_json(&String::from_utf8_lossy(&output.stdout)).expect("json");
    assert_eq!(merged.requests_ok, 12);
    assert_eq!(merged.runs_merged, 2);
}

#[test]
fn merge_refuses_a_file_that_is_not_a_report() {
    let dir = tempfile::tempdir().expect("temp dir");
    let bogus = dir.path().join("bogus.json");
    std::fs::write(&bogus, "{\"hello\": 1}").expect("write");
    let bogus = bogus.to_string_lossy().into_owned();
    let output = loadgen(&["merge", &bogus, &bogus]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bogus.json"), "{stderr}");
}
