//! Rendering a small, hand-made summary: the tables, the verdict, the targets and the chart
//! say what the numbers say, and rendering is repeatable.

use std::time::Duration;

use echo_core::{DelayKind, DelayModel};
use xtask::export::{chart, markdown as render, verdict};
use xtask::results::{
    Environment, Faults, Measured, Model, Params, Row, SCHEMA_VERSION, Skipped, Spread, Summary,
};

const MIB: f64 = 1024.0 * 1024.0;

fn env() -> Environment {
    Environment {
        cpu_model: "Test CPU".to_owned(),
        cores: 2,
        memory_bytes: 24 << 30,
        kernel: "6.1.0".to_owned(),
        rustc: "rustc 1.95.0".to_owned(),
        python: Some("Python 3.11.7".to_owned()),
        git_commit: "0123456789abcdef0123".to_owned(),
        date_utc: "2026-11-25T03:00:00Z".to_owned(),
        open_files_limit: 20000,
        somaxconn: Some(4096),
    }
}

fn params(iterations: Vec<u64>) -> Params {
    Params {
        iterations,
        delay: DelayModel::Fixed(Duration::from_millis(100)).into(),
        delay_kind: DelayKind::Wait,
        concurrency: None,
        requests_per_conn: 1,
        repeat: 3,
        warmup: true,
        zero_delay: true,
        backlog: 4096,
        pool_size: 256,
        timeout_ms: 60_000,
        command: "cargo xtask compare --iterations 1000".to_owned(),
    }
}

/// A successful row: `wall` seconds median, `rss_mib` peak, `zero` seconds at zero delay.
fn row(server: &str, model: &str, n: u64, wall: f64, rss_mib: f64, zero: f64) -> Row {
    Row {
        server: server.to_owned(),
        model: Model::new(model),
        command: format!("{server} --port 0"),
        iterations: n,
        concurrent_connections: n,
        runs: 3,
        runs_failed: 0,
        failure_reasons: vec![],
        requests_failed: 0,
        measured: Some(Measured {
            wall_seconds: Spread {
                median: wall,
                min: wall * 0.9,
                max: wall * 1.1,
            },
            throughput_rps: n as f64 / wall,
            latency_p50_ms: 100.5,
            latency_p99_ms: 120.0,
            latency_max_ms: 130.0,
            all_connected_seconds: Some(wall / 2.0),
            client_schedule_lag: None,
            peak_rss_bytes: rss_mib * MIB,
            idle_rss_bytes: 2.0 * MIB,
            peak_threads: if model == "threads" { n + 1 } else { 2 },
            cpu_seconds: 0.25,
            client_cpu_seconds: Some(0.5),
            voluntary_ctx_switches: 1000.0,
            involuntary_ctx_switches: 10.0,
            listen_overflows: 0,
            listen_drops: 0,
        }),
        zero_delay_wall_seconds: Some(zero),
        faults: None,
    }
}

fn failed_row(server: &str, n: u64) -> Row {
    Row {
        runs_failed: 3,
        failure_reasons: vec!["12 of 1000 requests failed (reset 12), 0 not sent".to_owned()],
        requests_failed: 36,
        measured: None,
        zero_delay_wall_seconds: None,
        ..row(server, "threads", n, 1.0, 1.0, 0.1)
    }
}

fn summary() -> Summary {
    Summary {
        kind: Some(xtask::results::Kind::Compare),
        schema_version: SCHEMA_VERSION,
        label: "compare-1000".to_owned(),
        env: env(),
        params: params(vec![1000]),
        rows: vec![
            row("threaded", "threads", 1000, 0.5, 30.0, 0.2),
            failed_row("threaded-pool", 1000),
            row("mio", "mio", 1000, 0.125, 3.0, 0.025),
            row("python-asyncio", "asyncio", 1000, 2.5, 20.0, 0.5),
        ],
        skipped: vec![Skipped {
            server: "python-threaded".to_owned(),
            reason: "python3 is not on PATH".to_owned(),
        }],
    }
}

/// The first line of the results table starting with `start`.
fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    let results = text.find("## Results").map_or(text, |at| &text[at..]);
    results
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
}

#[test]
fn rendering_the_same_summary_twice_gives_the_same_bytes() {
    assert_eq!(render::readme(&summary()), render::readme(&summary()));
}

#[test]
fn the_header_shows_the_environment_and_every_parameter() {
    let text = render::readme(&summary());
    assert!(text.contains(
        "| Test CPU | 2 | 24.0 GiB | 6.1.0 | rustc 1.95.0 | Python 3.11.7 | `0123456789ab` |"
    ));
    assert!(
        text.contains("| 1000 | 100ms | wait | all | 1 | 3 | yes | yes | 4096 | 256 | 60000 ms |")
    );
    assert!(text.contains("Command: `cargo xtask compare --iterations 1000`"));
}

#[test]
fn each_row_shows_its_ratio_to_the_fastest_and_to_the_delay_floor() {
    let text = render::readme(&summary());
    let threaded = line_of(&text, "| threaded | threads |");
    assert!(
        threaded.contains("| 0.500 (0.450–0.550) | 4.00× | 5.00× |"),
        "{threaded}"
    );
    let mio = line_of(&text, "| mio | mio |");
    assert!(mio.contains("| 1.00× | 1.25× |"), "{mio}");
}

#[test]
fn memory_per_connection_is_growth_over_the_idle_size_divided_by_connections() {
    let text = render::readme(&summary());
    // mio: (3 MiB - 2 MiB) / 1000 connections = 1.024 KiB.
    assert!(line_of(&text, "| mio | mio |").contains("| 3.00 | 1.02 | 2 |"));
}

#[test]
fn a_row_whose_runs_all_failed_says_so_and_shows_no_figures() {
    let text = render::readme(&summary());
    let pool = line_of(&text, "| threaded-pool |");
    assert!(
        pool.contains("all runs failed: 12 of 1000 requests failed"),
        "{pool}"
    );
    assert!(pool.contains("| 3/3 | 36 |"), "{pool}");
}

#[test]
fn the_servers_section_lists_each_command_once() {
    let text = render::readme(&summary());
    assert!(text.contains("| mio | mio | `mio --port 0` |"));
    assert_eq!(text.matches("`threaded --port 0`").count(), 1);
}

#[test]
fn skipped_baselines_appear_in_the_table_with_their_reason() {
    let text = render::readme(&summary());
    assert!(text.contains("| python-threaded | skipped: python3 is not on PATH |"));
}

#[test]
fn the_verdict_names_the_winner_and_how_much_slower_the_others_were() {
    let verdict = verdict::verdict(&summary(), 1000);
    assert!(verdict.starts_with("At 1000 connections **mio** (mio) was fastest: 0.125 s median, 1.00× its floor of 0.125 s."), "{verdict}");
    assert!(
        verdict.contains("threaded 0.500 s (4.00× slower)"),
        "{verdict}"
    );
    assert!(
        verdict.contains("python-asyncio 2.50 s (20.0× slower)"),
        "{verdict}"
    );
    assert!(verdict.contains("Failed runs, left out of the figures: threaded-pool (3 of 3 runs)."));
}

#[test]
fn targets_are_marked_met_or_missed_plainly() {
    let text = render::readme(&summary());
    assert!(text.contains(
        "- met: mio at 1000: wall time at most 1.5× the floor (got 0.125 s against 0.125 s, 1.00×)"
    ));
    assert!(
        text.contains("- met: mio at 1000: at least 10× faster than python-asyncio (got 20.0×")
    );
    assert!(text.contains(
        "- met: mio at 1000: at most 2 KiB resident per concurrent connection (got 1.02 KiB)"
    ));
    assert!(text.contains(
        "- **MISSED**: threaded-pool at 1000: zero failed requests (got 36 in 3 failed runs of 3)"
    ));
}

#[test]
fn a_single_count_has_no_sweep_section_and_no_chart() {
    let s = summary();
    assert!(!render::readme(&s).contains("## Sweep"));
    assert!(chart::svg(&s).expect("renders").is_none());
}

fn sweep_summary() -> Summary {
    let mut rows = Vec::new();
    for (n, scale) in [(1000, 1.0), (10000, 4.0)] {
        rows.push(row(
            "threaded",
            "threads",
            n,
            0.5 * scale,
            30.0 * scale,
            0.2,
        ));
        rows.push(row("mio", "mio", n, 0.125 * scale, 3.0 * scale, 0.02));
    }
    Summary {
        label: "sweep-1000-10000".to_owned(),
        params: params(vec![1000, 10000]),
        rows,
        skipped: vec![],
        ..summary()
    }
}

#[test]
fn a_sweep_has_a_table_per_metric_with_a_column_per_count_and_a_chart() {
    let s = sweep_summary();
    let text = render::readme(&s);
    assert!(text.contains("![wall time and peak memory against iterations](chart.svg)"));
    assert!(text.contains("### wall time, median s\n\n| server | 1000 | 10000 |\n|---|---|---|\n| threaded | 0.500 | 2.00 |\n| mio | 0.125 | 0.500 |"), "{text}");
    assert!(text.contains(
        "### peak threads\n\n| server | 1000 | 10000 |\n|---|---|---|\n| threaded | 1001 | 10001 |"
    ));
    let svg = chart::svg(&s)
        .expect("renders")
        .expect("a sweep has a chart");
    assert!(svg.starts_with("<svg"), "{}", &svg[..80.min(svg.len())]);
    assert!(
        svg.contains("threaded") && svg.contains("mio"),
        "the legend names both servers"
    );
}

#[test]
fn latest_points_at_the_first_entry_and_lists_every_comparison() {
    let entries = vec![
        ("2026-11-25-sweep".to_owned(), sweep_summary()),
        ("2026-11-24-compare-1000".to_owned(), summary()),
    ];
    let text = render::latest(&entries);
    assert!(text.contains("The newest is [2026-11-25-sweep](2026-11-25-sweep/README.md)"));
    assert!(text.contains("| [2026-11-24-compare-1000](2026-11-24-compare-1000/README.md) |"));
}

#[test]
fn the_reference_row_is_found_by_its_model_whatever_its_name() {
    let mut s = summary();
    s.rows[3].server = "asyncio-under-another-name".to_owned();
    let text = render::readme(&s);
    assert!(
        text.contains("at least 10× faster than asyncio-under-another-name (got 20.0×"),
        "{text}"
    );
    assert!(text.contains("| × faster than asyncio-under-another-name |"));
    s.rows[3].model = Model::new("python-threads");
    let text = render::readme(&s);
    assert!(!text.contains("faster than asyncio-under-another-name (got"));
}

#[test]
fn machine_facts_in_the_prose_come_from_the_recorded_environment() {
    let mut s = summary();
    s.env.cores = 7;
    let text = render::readme(&s);
    assert!(text.contains("loadgen runs in another, on the same 7 cores."));
    assert!(text.contains("near the machine's 7 cores"));
    assert!(!text.contains("2 cores"), "{text}");
}

#[test]
fn the_report_cites_no_file_outside_the_repository() {
    let text = render::readme(&summary());
    let root = xtask::workspace_root();
    for cited in text.split('`').skip(1).step_by(2) {
        let looks_like_a_file = cited.ends_with(".md") || cited.ends_with(".py");
        if looks_like_a_file && !cited.contains(' ') {
            assert!(root.join(cited).is_file(), "the report cites `{cited}`");
        }
    }
}

#[test]
fn a_row_of_a_model_outside_the_catalogue_is_measured_but_never_checked() {
    let mut s = summary();
    s.rows.push(row("nginx", "external", 1000, 0.1, 2.0, 0.02));
    let text = render::readme(&s);
    assert!(text.contains("| nginx | external | 0.100"), "{text}");
    assert!(!text.contains("- met: nginx"));
}

#[test]
fn the_clients_schedule_lag_is_shown_where_it_was_measured_and_only_there() {
    let mut s = summary();
    assert!(!render::readme(&s).contains("schedule lag, p50 / p99 / max"));
    if let Some(m) = s.rows[2].measured.as_mut() {
        m.client_schedule_lag = Some(xtask::results::ScheduleLag {
            p50_ms: 0.05,
            p99_ms: 0.4,
            max_ms: 2.5,
        });
    }
    let text = render::readme(&s);
    assert!(
        text.contains("against its schedule): mio 0.050 / 0.400 / 2.50."),
        "{text}"
    );
}

#[test]
fn faults_are_shown_for_the_rows_that_had_any_and_not_at_all_when_none_did() {
    assert!(!render::readme(&summary()).contains("## Faults"));
    let mut summary = summary();
    summary.rows[0].faults = Some(Faults::default());
    summary.rows[1].faults = Some(Faults {
        connections_reset: 36,
        listen_overflows: 7,
        shed: Some(0),
        ..Faults::default()
    });
    let text = render::readme(&summary);
    assert!(text.contains("## Faults"), "{text}");
    assert!(
        text.contains("| threaded-pool at 1000 | 0 | 36 | 0 | 0 | 7 |"),
        "{text}"
    );
    assert!(!text.contains("| threaded at 1000 | 0 |"), "{text}");
}
