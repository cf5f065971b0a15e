//! `cargo xtask capacity --away-from-slowdowns` end to end, tiny: mio alone at a 10 ms delay,
//! from 100 req/s up to a ceiling of 200, one-second windows. What it checks is the wiring
//! that only a real run has: the speed probe's verdict on the study and on every step, every
//! step's and the independent client's requests logged and judged again away from the
//! machine's slowdowns, loadgen's headroom run judged so too, and the clients' policy.

use std::fs;
use std::path::Path;

use clap::Parser;
use xtask::report;
use xtask::study::capacity::CapacityArgs;
use xtask::study::capacity::results::IndependentOutcome;
use xtask::study::capacity::slo::JudgedOn;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    args: CapacityArgs,
}

#[test]
fn a_tiny_capacity_study_judged_away_from_slowdowns_logs_every_run_and_judges_it_there() {
    let results = Path::new(env!("CARGO_TARGET_TMPDIR")).join("capacity-tiny-run");
    let _ = fs::remove_dir_all(&results);
    let dir = results.join("2026-12-01-capacity");
    let out = dir.display().to_string();
    let line = [
        "capacity",
        "--servers",
        "mio",
        "--delay",
        "10ms",
        // A loose SLO (p99 ≤ 200 ms): this test is about the wiring, and a shared machine
        // must not make the search publish nothing.
        "--slo-p99",
        "20",
        "--start-rate",
        "100",
        "--max-rate",
        "200",
        "--warmup",
        "0s",
        "--window",
        "1s",
        "--confirm-window",
        "1s",
        "--confirmations",
        "1",
        "--away-from-slowdowns",
        "--out",
        &out,
    ];
    let args = Cli::try_parse_from(line).expect("valid flags").args;
    xtask::study::capacity::run(args).expect("the tiny study runs");
    let summary = report::read_capacity(&dir).expect("a capacity summary");

    let machine = summary.machine.expect("the probe's verdict on the study");
    assert!(machine.server_cpus.samples > 0 && machine.loadgen_cpus.samples > 0);
    assert!((0.0..=1.0).contains(&machine.server_cpus.slowed_fraction));
    let mio = &summary.servers[0];
    assert!(!mio.steps.is_empty());
    for judged in &mio.steps {
        let m = judged.step.machine.expect("every step probed");
        assert!(m.samples > 0, "{m:?}");
        // Every step logs its requests and is judged again away from the slowdowns, up to
        // the p99 limit (200 ms) after each due time.
        let away = judged.step.away_from_slowdowns.expect("judged away");
        assert_eq!(away.requests_logged, judged.step.requests_ok, "{away:?}");
        assert_eq!(away.after_due_ms, 200.0, "{away:?}");
        if away.requests > 0 {
            let p99 = away.latency_p99_ms.expect("a p99 away");
            assert!(p99 >= 10.0, "no reply before its 10 ms delay: {p99}");
        }
    }
    let headroom = summary
        .loadgen_headroom
        .as_ref()
        .and_then(|h| h.step.as_ref())
        .expect("loadgen's headroom run");
    let away = headroom
        .away_from_slowdowns
        .expect("the headroom run judged away from slowdowns");
    assert_eq!(away.requests_logged, headroom.requests_ok, "{away:?}");
    assert!(away.requests <= away.requests_logged, "{away:?}");

    assert_eq!(summary.settings.slo.judged_on, JudgedOn::AwayFromSlowdowns);
    // The clients ran real-time where the machine allows it, and the summary says which.
    let allowed = server_process::fifo_allowed(5).is_ok();
    assert_eq!(
        summary.settings.cpus.clients_fifo_priority,
        allowed.then_some(5),
        "the clients' policy as the study recorded it"
    );
    // olc, the independent client, logged its requests too.
    let check = mio
        .independent_check
        .as_ref()
        .expect("an independent check");
    let IndependentOutcome::Measured {
        requests_ok,
        away_from_slowdowns: Some(olc_away),
        ..
    } = check.outcome
    else {
        panic!("olc's run judged away from slowdowns: {:?}", check.outcome);
    };
    assert_eq!(olc_away.requests_logged, requests_ok, "{olc_away:?}");
    assert!(
        check.command.ends_with(" {request-log}"),
        "the record names no temporary file: {}",
        check.command
    );

    let text = fs::read_to_string(dir.join("README.md")).expect("a report");
    assert!(text.contains("## How steady the machine was"), "{text}");
    assert_eq!(
        text.contains("`SCHED_FIFO` at priority 5"),
        allowed,
        "{text}"
    );
    assert!(text.contains("| CPUs slowed | verdict |"), "{text}");
    assert!(text.contains("away from the machine's slowdowns"), "{text}");
    assert!(text.contains("| p99 away ms (requests away) |"), "{text}");
    // How the steps were judged, as the probe let them be: on the requests away from the
    // slowdowns where a step had some (a 1 s step on a slow moment of the machine may not).
    let judged_away = mio.steps.iter().any(|j| {
        j.step
            .away_from_slowdowns
            .is_some_and(|a| a.latency_p99_ms.is_some())
    });
    let judgement = if judged_away {
        "The steps were judged on them (`--away-from-slowdowns`)"
    } else {
        "so every step was judged over every request, `--away-from-slowdowns` notwithstanding"
    };
    assert!(text.contains(judgement), "{text}");
    // No request log of this process is left behind.
    let ours = format!("-{}.requests", std::process::id());
    let left = fs::read_dir(std::env::temp_dir())
        .expect("the temporary directory")
        .filter_map(Result::ok)
        .filter(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("xtask-") && name.ends_with(&ours)
        })
        .count();
    assert_eq!(left, 0, "a request log left in the temporary directory");
}
