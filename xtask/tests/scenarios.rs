//! `cargo xtask scenarios` end to end: a tiny real run (three scenarios, an honest wait, a
//! blocking one and a two-phase recipe, × mio and threaded, a one-second window) in a
//! temporary directory, its JSON
//! shape, paragraphs that name the winner the data gives, and the report rendering from the
//! JSON byte for byte: every committed scenarios study's, or, until one is committed, the
//! tiny run's.

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use clap::Parser;
use serde_json::Value;
use xtask::export::{README_FILE, SUMMARY_FILE, scenarios};
use xtask::report;
use xtask::study::scenarios::ScenariosArgs;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: ScenariosArgs,
}

fn args(line: &[&str]) -> ScenariosArgs {
    let argv = std::iter::once("scenarios").chain(line.iter().copied());
    Cli::try_parse_from(argv).expect("valid flags").args
}

/// The tiny run's directory, made once for every test of this file. At 50 req/s a 50 ms
/// block holds mio's one loop for every request it takes, so it can answer about 20 a
/// second, while threaded blocks only the thread of each connection. The mixed scenario is
/// a recipe of two phases, which every server is given as it is.
fn tiny_run() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let results = Path::new(env!("CARGO_TARGET_TMPDIR")).join("scenarios-tiny-run");
        let dir = results.join("2026-12-01-scenarios");
        let _ = fs::remove_dir_all(&results);
        let out = dir.display().to_string();
        let line = [
            "--scenarios",
            "honest=wait:50ms,blocking=block:50ms,mixed=spin:1ms+wait:50ms",
            "--servers",
            "mio,threaded",
            "--rate",
            "50",
            "--warmup",
            "0s",
            "--window",
            "1s",
            "--timeout",
            "10s",
            "--give-up-after",
            "500ms",
            "--out",
            &out,
        ];
        xtask::study::scenarios::run(args(&line)).expect("the tiny study runs");
        dir
    })
}

fn summary_json() -> Value {
    let text = fs::read_to_string(tiny_run().join(SUMMARY_FILE)).expect("summary.json written");
    serde_json::from_str(&text).expect("summary.json is json")
}

fn answered(cell: &Value) -> f64 {
    let figures = &cell["figures"];
    figures["requests_ok"].as_f64().expect("a count")
        / figures["measured_seconds"].as_f64().expect("seconds")
}

#[test]
fn the_tiny_run_writes_a_cell_per_scenario_and_server_with_its_figures() {
    let json = summary_json();
    assert_eq!(json["schema_version"], 1);
    assert_eq!(json["settings"]["requests_per_second"], 50.0);
    let scenarios = json["scenarios"].as_array().expect("a list");
    let specs: Vec<&str> = scenarios
        .iter()
        .map(|s| s["spec"].as_str().expect("text"))
        .collect();
    assert_eq!(specs, ["wait:50ms", "block:50ms", "spin:1ms+wait:50ms"]);
    for scenario in scenarios {
        assert_eq!(scenario["connections"], 50, "at least 50: {scenario}");
        assert!(scenario["skipped"].is_null());
        let cells = scenario["cells"].as_array().expect("a list");
        let servers: Vec<&str> = cells
            .iter()
            .map(|c| c["server"].as_str().expect("text"))
            .collect();
        assert_eq!(servers, ["mio", "threaded"]);
        for cell in cells {
            assert!(cell["failure"].is_null(), "{cell}");
            let figures = &cell["figures"];
            assert!(
                figures["requests_ok"].as_u64().expect("a count") > 0,
                "{cell}"
            );
            for field in ["p50_ms", "p99_ms"] {
                assert!(
                    figures["latency"][field].as_f64().expect("ms") > 0.0,
                    "{field}: {cell}"
                );
            }
            for field in [
                "user_cpu_us_per_request",
                "system_cpu_us_per_request",
                "cpu_ratio",
            ] {
                assert!(figures["server"][field].is_f64(), "{field}: {cell}");
            }
            assert!(figures["loadgen"]["cpu_seconds"].is_f64(), "{cell}");
            assert!(
                figures["server_cpu_seconds"].as_f64().expect("seconds") >= 0.0,
                "{cell}"
            );
            assert!(figures["failures_by_kind"].is_object(), "{cell}");
            let command = cell["command"].as_str().expect("text");
            assert!(command.starts_with("target/release/server-"), "{command}");
            assert!(
                command.contains(&format!(
                    " --delay {} ",
                    scenario["spec"].as_str().expect("text")
                )),
                "every server is given the scenario's spec as it is: {command}"
            );
        }
        assert_eq!(cells[0]["executor"], "one_loop");
        assert_eq!(cells[1]["executor"], "threads");
    }
    assert!(
        tiny_run().join("runs/blocking-mio.json").is_file(),
        "loadgen's raw report is kept"
    );
}

#[test]
fn the_two_phase_scenario_runs_and_its_requests_take_both_phases() {
    let json = summary_json();
    let mixed = &json["scenarios"][2];
    assert_eq!(mixed["name"], "mixed");
    assert!(mixed["skipped"].is_null(), "{mixed}");
    for cell in mixed["cells"].as_array().expect("a list") {
        assert!(cell["failure"].is_null(), "{cell}");
        let figures = &cell["figures"];
        assert!(
            figures["requests_ok"].as_u64().expect("a count") > 0,
            "{cell}"
        );
        // Not before the delay: a reply comes after the spin and the wait both.
        assert!(
            figures["latency"]["p50_ms"].as_f64().expect("ms") >= 51.0,
            "{cell}"
        );
    }
    let text = fs::read_to_string(tiny_run().join(README_FILE)).expect("README.md written");
    assert!(text.contains("### mixed (`spin:1ms+wait:50ms`)"), "{text}");
    assert!(
        text.contains("mio (mio) under `spin:1ms+wait:50ms` states its CPU per answered request"),
        "{text}"
    );
}

#[test]
fn each_paragraph_names_the_winner_the_data_gives() {
    let json = summary_json();
    let summary = report::read_scenarios(tiny_run()).expect("a scenarios summary");
    for (scenario, run) in json["scenarios"]
        .as_array()
        .expect("a list")
        .iter()
        .zip(&summary.scenarios)
    {
        // The rule, from the numbers alone: the most answered wins, and rows within 2 % of
        // the most count as equal, the lowest p99 among them winning.
        let cells = scenario["cells"].as_array().expect("a list");
        let most = cells.iter().map(answered).fold(0.0, f64::max);
        let winner = cells
            .iter()
            .filter(|c| answered(c) >= 0.98 * most)
            .min_by(|a, b| {
                let p99 = |c: &Value| c["figures"]["latency"]["p99_ms"].as_f64().expect("ms");
                p99(a).total_cmp(&p99(b))
            })
            .expect("a cell");
        let name = winner["server"].as_str().expect("text");
        let paragraph = scenarios::paragraph(&summary, run);
        assert!(
            paragraph.starts_with(&format!("**{name}** (")),
            "{paragraph}"
        );
        let loser = cells
            .iter()
            .find(|c| c["server"] != name)
            .expect("two cells");
        let loser = loser["server"].as_str().expect("text");
        assert!(
            paragraph.contains(&format!("{name} answered")),
            "{paragraph}"
        );
        assert!(paragraph.contains(loser), "{paragraph}");
    }
    let blocking = json["scenarios"][1]["cells"].as_array().expect("a list");
    assert!(
        answered(&blocking[1]) > answered(&blocking[0]),
        "a 50 ms block stops mio's one loop, not threaded's threads: {blocking:?}"
    );
}

#[test]
fn the_report_says_the_blocking_collapse_and_the_missing_targets_plainly() {
    let text = fs::read_to_string(tiny_run().join(README_FILE)).expect("README.md written");
    for title in [
        "## Requests answered per second",
        "## p99 latency, ms",
        "## Failed requests, by kind",
        "## Server CPU per answered request, µs (user + system)",
        "## What each scenario shows",
        "### blocking (`block:50ms`)",
        "## Targets",
    ] {
        assert!(text.contains(title), "no {title:?} in:\n{text}");
    }
    assert!(
        text.contains("| server | model | honest | blocking | mixed |"),
        "{text}"
    );
    assert!(
        text.contains(
            "mio under `block:50ms`: a single event loop collapses to about 1/delay = 20.0 req/s"
        ),
        "{text}"
    );
    assert!(text.contains(
        "- **MISSED**: the `cpu` scenario's targets: not checked, this study did not run it"
    ));
    assert!(
        text.contains("- **MISSED**: an offload variant under `block:50ms`"),
        "{text}"
    );
}

#[test]
fn every_committed_scenarios_report_renders_byte_for_byte_or_else_the_tiny_runs_does() {
    let results = xtask::workspace_root().join("benches-results");
    let mut studies: Vec<PathBuf> = report::scenario_studies(&results)
        .expect("benches-results is readable")
        .into_iter()
        .map(|(dir, _)| results.join(dir))
        .collect();
    if studies.is_empty() {
        // No study committed yet: check the same on the tiny run, so this test never passes
        // by finding nothing.
        studies.push(tiny_run().to_path_buf());
    }
    for dir in studies {
        let summary = report::read_scenarios(&dir).expect("a scenarios summary");
        let committed = fs::read_to_string(dir.join(README_FILE)).unwrap_or_default();
        assert!(
            committed == scenarios::readme(&summary),
            "{} differs from its summary.json; run `cargo xtask scenarios --render {}`",
            dir.join(README_FILE).display(),
            dir.display()
        );
    }
}

#[test]
fn render_re_renders_a_scenarios_directory_and_keeps_it_out_of_the_comparisons() {
    let copy = std::env::temp_dir().join(format!("xtask-scenarios-copy-{}", std::process::id()));
    let dir = copy.join("2026-12-01-scenarios");
    fs::create_dir_all(&dir).expect("temp dir");
    fs::copy(tiny_run().join(SUMMARY_FILE), dir.join(SUMMARY_FILE)).expect("copied");
    assert!(report::is_scenarios(&dir));
    assert!(!report::is_capacity(&dir));
    let rendered = dir.display().to_string();
    xtask::study::scenarios::run(args(&["--render", &rendered])).expect("renders");
    let readme = fs::read_to_string(dir.join(README_FILE)).expect("written");
    assert_eq!(
        readme,
        fs::read_to_string(tiny_run().join(README_FILE)).expect("written")
    );
    assert!(report::comparisons(&copy).expect("listed").is_empty());
    let latest = fs::read_to_string(copy.join("LATEST.md")).expect("written");
    assert!(
        latest.contains("| [2026-12-01-scenarios](2026-12-01-scenarios/README.md) |"),
        "{latest}"
    );
    fs::remove_dir_all(&copy).expect("cleaned up");
}
