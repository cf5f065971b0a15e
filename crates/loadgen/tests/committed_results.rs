//! The committed benchmark pages of the client (`benches-results/loadgen-*.md`) are exactly
//! what their committed JSON renders to, so the markdown never drifts from the measurements
//! and is never edited by hand; and their commands replay from the repository root.

#[path = "../examples/fidelity/render.rs"]
mod fidelity;
#[path = "../examples/throughput/render.rs"]
mod throughput;

use std::path::PathBuf;

/// The text of a committed results file, failing the test (naming it) when it is missing.
fn committed(name: &str) -> String {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../benches-results")
        .join(name);
    std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("cannot read {}: {error}", path.display()))
}

/// The header line of a rendered fidelity page.
fn fidelity_header(page: &str) -> &str {
    page.lines()
        .find(|l| l.starts_with("| connections"))
        .expect("a header line")
}

/// The cells of a table line.
fn columns(line: &str) -> usize {
    line.matches('|').count()
}

/// loadgen's line of the rendered page at `connections` and `rate`.
fn loadgen_line(results: &fidelity::FidelityResults, connections: u64, rate: f64) -> String {
    let page = fidelity::render(results);
    let prefix = format!("| {connections} | {rate:.0} | loadgen |");
    page.lines()
        .find(|line| line.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no loadgen row {prefix}: {page}"))
        .to_owned()
}

fn assert_replayable(command: &str) {
    assert!(command.starts_with("cargo run "), "{command}");
    assert!(!command.contains(" /"), "an absolute path: {command}");
}

#[test]
fn the_committed_throughput_markdown_is_what_its_json_renders_to() {
    let json = committed("loadgen-throughput.json");
    let results: throughput::ThroughputResults = serde_json::from_str(&json).expect("results");
    assert_eq!(results.schema_version, throughput::SCHEMA_VERSION);
    assert!(
        !results.rows.is_empty(),
        "the committed results have no rows"
    );
    assert_replayable(&results.command);
    assert_eq!(
        committed("loadgen-throughput.md"),
        throughput::render(&results)
    );
}

#[test]
fn the_committed_fidelity_markdown_is_what_its_json_renders_to() {
    let json = committed("loadgen-fidelity.json");
    let results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    assert_eq!(results.schema_version, fidelity::SCHEMA_VERSION);
    let clients = |name: &str| results.rows.iter().filter(|row| row.client == name).count();
    assert!(clients("loadgen") > 0, "no run of loadgen");
    assert_eq!(
        clients("olc"),
        clients("loadgen"),
        "a rate without the other client"
    );
    assert_replayable(&results.command);
    assert_eq!(committed("loadgen-fidelity.md"), fidelity::render(&results));
}

#[test]
fn fidelity_rows_with_a_client_lag_show_it_and_are_judged_client_bound_on_it() {
    let json = committed("loadgen-fidelity.json");
    let mut results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    let row = results.rows.first_mut().expect("a row");
    // A schedule lag far over the bound, all of it spent waiting for busy connections.
    row.schedule_lag_p99_us = Some(50_000.0);
    row.client_lag_p50_us = Some(12.0);
    row.client_lag_p99_us = Some(345.0);
    row.client_lag_max_us = Some(6789.0);
    row.requests_waited_for_connection = Some(4242);
    let page = fidelity::render(&results);
    assert!(
        page.contains("client lag p50 / p99 / max µs | waited |"),
        "{page}"
    );
    let line = page
        .lines()
        .find(|line| line.contains("| 12 / 345 / 6789 | 4242 |"))
        .unwrap_or_else(|| panic!("no row with the client lag: {page}"));
    assert!(
        !line.contains("**yes**"),
        "judged on the client lag: {line}"
    );
    let header = fidelity_header(&page);
    assert_eq!(columns(line), columns(header), "{line}");
}

#[test]
fn loadgen_is_held_to_olc_s_p99_only_where_olc_kept_its_schedule() {
    let json = committed("loadgen-fidelity.json");
    let mut results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    let first = results.rows.first().expect("a row");
    let (connections, rate) = (first.n_connections, first.rate_requests_per_second);
    let same_cell = |row: &fidelity::FidelityRow| {
        row.n_connections == connections && row.rate_requests_per_second == rate
    };
    // olc on schedule, 50 ms apart: loadgen missed the p99 target.
    for row in results.rows.iter_mut().filter(|row| same_cell(row)) {
        row.away_from_slowdowns = None;
        row.schedule_cpu = None;
        row.requests_started_late = 0;
        row.client_lag_p99_us = Some(100.0);
        row.schedule_lag_p99_us = Some(100.0);
        row.latency_p99_us = if row.client == "olc" {
            100_000.0
        } else {
            150_000.0
        };
    }
    let line = loadgen_line(&results, connections, rate);
    assert!(line.ends_with("| missed: p99 |"), "{line}");
    // olc behind its own schedule: the comparison shows nothing either way.
    for row in results
        .rows
        .iter_mut()
        .filter(|row| same_cell(row) && row.client == "olc")
    {
        row.client_lag_p99_us = Some(20_000.0);
    }
    let line = loadgen_line(&results, connections, rate);
    assert!(
        line.ends_with("| p99 vs olc inconclusive (olc fell behind) |"),
        "{line}"
    );
}

#[test]
fn with_two_rounds_a_p99_gap_is_a_miss_only_when_every_run_shows_it_on_the_same_side() {
    let json = committed("loadgen-fidelity.json");
    let mut results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    let first = results.rows.first().expect("a row").clone();
    let (connections, rate) = (first.n_connections, first.rate_requests_per_second);
    results.rows.retain(|row| {
        row.n_connections == connections
            && row.rate_requests_per_second == rate
            && row.client != "loadgen-before"
            && row.round == 1
    });
    for row in &mut results.rows {
        row.away_from_slowdowns = None;
        row.requests_started_late = 0;
        row.client_lag_p99_us = Some(100.0);
        row.schedule_lag_p99_us = Some(100.0);
    }
    let second: Vec<fidelity::FidelityRow> = results
        .rows
        .iter()
        .map(|row| fidelity::FidelityRow {
            round: 2,
            ..row.clone()
        })
        .collect();
    results.rows.extend(second);
    let set_p99 = |results: &mut fidelity::FidelityResults, client: &str, round: u32, ms: f64| {
        for row in &mut results.rows {
            if row.client == client && row.round == round {
                row.latency_p99_us = ms * 1000.0;
            }
        }
    };
    // Each client steady to 1 ms between its runs, loadgen 10 ms above olc in both: missed.
    set_p99(&mut results, "olc", 1, 110.0);
    set_p99(&mut results, "olc", 2, 111.0);
    set_p99(&mut results, "loadgen", 1, 120.0);
    set_p99(&mut results, "loadgen", 2, 121.0);
    let page = fidelity::render(&results);
    assert!(
        page.contains("Each client ran 2 times on each server"),
        "{page}"
    );
    let prefix = format!("| {connections} | {rate:.0} | loadgen, run 2 |");
    let second_line = |page: &str| {
        page.lines()
            .find(|line| line.starts_with(&prefix))
            .unwrap_or_else(|| panic!("no second loadgen run {prefix}: {page}"))
            .to_owned()
    };
    assert!(second_line(&page).contains("| +10.0 |"), "{page}");
    assert!(second_line(&page).ends_with("| missed: p99 |"), "{page}");
    assert!(
        loadgen_line(&results, connections, rate).ends_with("| missed: p99 |"),
        "{page}"
    );
    // The gap changes sides (+10 in run 1, -1 in run 2): the server's spread, not loadgen's.
    set_p99(&mut results, "olc", 2, 122.0);
    let page = fidelity::render(&results);
    let expected = "| p99 vs olc inconclusive (the gap moved between runs: +10.0, -1.0 ms) |";
    assert!(second_line(&page).ends_with(expected), "{page}");
    assert!(
        loadgen_line(&results, connections, rate).ends_with(expected),
        "{page}"
    );
    // Run 2 of loadgen is compared with run 2 of olc (121 against 122), not run 1.
    assert!(second_line(&page).contains("| -1.0 |"), "{page}");
    // The page says which client met the server first in each run, from the rows' order.
    assert!(
        page.contains("on each server (*run 2* and on), loadgen first in each,"),
        "{page}"
    );
    let olc_second = results
        .rows
        .iter()
        .position(|row| row.client == "olc" && row.round == 2)
        .expect("olc's second run");
    let loadgen_second = results
        .rows
        .iter()
        .position(|row| row.client == "loadgen" && row.round == 2)
        .expect("loadgen's second run");
    results.rows.swap(olc_second, loadgen_second);
    let page = fidelity::render(&results);
    assert!(
        page.contains("olc first in run 2 and loadgen first in the others,"),
        "{page}"
    );
    // Within 2 ms in both runs, though olc's own p99 moved 12 ms: met.
    set_p99(&mut results, "loadgen", 1, 111.5);
    let page = fidelity::render(&results);
    assert!(second_line(&page).ends_with("| met |"), "{page}");
    assert!(
        loadgen_line(&results, connections, rate).ends_with("| met |"),
        "{page}"
    );
}

#[test]
fn fidelity_results_with_the_speed_probe_say_how_much_of_each_run_ran_slowed() {
    let json = committed("loadgen-fidelity.json");
    let mut results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    results.cpus_slowed_percent = None;
    for row in &mut results.rows {
        row.cpus_slowed_percent = None;
        row.away_from_slowdowns = None;
    }
    let without = fidelity::render(&results);
    assert!(!without.contains("CPUs slowed"), "{without}");

    results.cpus_slowed_percent = Some(6.25);
    for (i, row) in results.rows.iter_mut().enumerate() {
        row.cpus_slowed_percent = (i == 0).then_some(12.5);
    }
    let page = fidelity::render(&results);
    assert!(
        page.contains("Over the whole benchmark 6.2 % of the probe's samples ran below half"),
        "{page}"
    );
    let header = fidelity_header(&page);
    assert!(
        header.contains("| server CPU s | CPUs slowed | p99 − olc p99 ms |"),
        "{header}"
    );
    let rows: Vec<&str> = page
        .lines()
        .filter(|l| l.starts_with("| ") && !l.starts_with("| connections"))
        .collect();
    assert!(rows[0].contains("| 12.5 % |"), "{}", rows[0]);
    assert!(
        rows[1].contains("| – |"),
        "a run without probe samples: {}",
        rows[1]
    );
    assert!(rows.iter().all(|row| columns(row) == columns(header)));
}

#[test]
fn loadgen_rows_are_judged_again_away_from_the_machines_slowdowns() {
    let json = committed("loadgen-fidelity.json");
    let mut results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    for row in &mut results.rows {
        row.away_from_slowdowns = None;
    }
    let index = results
        .rows
        .iter()
        .position(|row| row.client == "loadgen")
        .expect("a loadgen row");
    let row = &mut results.rows[index];
    row.requests_started_late = row.requests_ok / 20; // 5 %: the late target missed
    row.away_from_slowdowns = Some(fidelity::AwayFromSlowdowns {
        requests: 900,
        requests_logged: 1000,
        requests_started_late: 1,
        schedule_lag_p99_us: Some(180.0),
        client_lag_p99_ms: None,
        latency_p99_ms: None,
        latency_from_send_p99_ms: None,
        late_near_slowdowns: 99,
        before_due_ms: 30.0,
        after_due_ms: 10.0,
    });
    let (connections, rate) = (row.n_connections, row.rate_requests_per_second);
    let page = fidelity::render(&results);
    assert!(
        page.contains(
            "Over every loadgen row, 99 of its 100 late starts (99.0 %) were due near a \
             slowdown, where 10.0 % of its requests were."
        ),
        "{page}"
    );
    let line = loadgen_line(&results, connections, rate);
    assert!(line.contains("| 90.0 % / 0.111 % / 180 |"), "{line}");
    // 0.111 % away is over the 0.1 % target: still missed there.
    assert!(
        line.contains("away from slowdowns late or lag missed too"),
        "{line}"
    );
    results.rows[index]
        .away_from_slowdowns
        .as_mut()
        .expect("set above")
        .requests_started_late = 0;
    let line = loadgen_line(&results, connections, rate);
    assert!(
        line.contains("away from slowdowns late and lag met"),
        "{line}"
    );
    let header = fidelity_header(&page);
    assert_eq!(columns(&line), columns(header), "{line}");
}

#[test]
fn loadgen_is_held_to_the_cpu_of_before_issue_15_over_the_schedule_alone() {
    let json = committed("loadgen-fidelity.json");
    let mut results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    let first = results.rows.first().expect("a row");
    let (connections, rate) = (first.n_connections, first.rate_requests_per_second);
    let cpu_of = |client: &str, seconds: f64| {
        (client != "olc").then_some(fidelity::ScheduleCpu {
            cpu_seconds: match client {
                "loadgen" => seconds,
                _ => 1.0,
            },
            seconds: 5.0,
        })
    };
    // Every other target met, so that the CPU alone decides.
    let settle =
        |results: &mut fidelity::FidelityResults, ours: f64| {
            for row in results.rows.iter_mut().filter(|row| {
                row.n_connections == connections && row.rate_requests_per_second == rate
            }) {
                row.away_from_slowdowns = None;
                row.requests_started_late = 0;
                row.client_lag_p99_us = Some(100.0);
                row.schedule_lag_p99_us = Some(100.0);
                row.latency_p99_us = 100_000.0;
                row.schedule_cpu = cpu_of(&row.client, ours);
            }
        };
    settle(&mut results, 1.2);
    let line = loadgen_line(&results, connections, rate);
    assert!(line.ends_with("| missed: cpu |"), "{line}");
    settle(&mut results, 0.9);
    let line = loadgen_line(&results, connections, rate);
    assert!(line.ends_with("| met |"), "{line}");
    // No schedule-alone CPU for loadgen-before: nothing to hold it to.
    settle(&mut results, 1.2);
    for row in results
        .rows
        .iter_mut()
        .filter(|row| row.client == "loadgen-before")
    {
        row.schedule_cpu = None;
    }
    let line = loadgen_line(&results, connections, rate);
    assert!(line.ends_with("| met |"), "{line}");
}

#[test]
fn the_fidelity_page_says_under_which_policy_the_server_ran() {
    let json = committed("loadgen-fidelity.json");
    let mut results: fidelity::FidelityResults = serde_json::from_str(&json).expect("results");
    results.clients_fifo_priority = Some(5);
    results.server_fifo_priority = None;
    let page = fidelity::render(&results);
    assert!(
        page.contains("The server and loadgen-before ran under the default policy"),
        "{page}"
    );
    results.server_fifo_priority = Some(4);
    let page = fidelity::render(&results);
    assert!(
        page.contains("The server ran under `SCHED_FIFO` too, at priority 4,"),
        "{page}"
    );
    assert!(
        page.contains("loadgen-before ran under the default policy"),
        "{page}"
    );
    assert!(
        !page.contains("The server and loadgen-before ran under the default policy"),
        "{page}"
    );
    // Written to the JSON only where the server ran real-time, read back as it was.
    let text = serde_json::to_string(&results).expect("json");
    assert!(text.contains("\"server_fifo_priority\":4"), "{text}");
    let back: fidelity::FidelityResults = serde_json::from_str(&text).expect("results");
    assert_eq!(back.server_fifo_priority, Some(4));
    results.server_fifo_priority = None;
    let text = serde_json::to_string(&results).expect("json");
    assert!(!text.contains("server_fifo_priority"), "{text}");
}
