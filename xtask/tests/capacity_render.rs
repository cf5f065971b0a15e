//! Rendering a capacity study from a fixture `summary.json` (a small real run: mio, threaded
//! and python-asyncio at a tight SLO): the tables, the paragraph, the targets and the chart
//! say what the numbers say, rendering is repeatable, and `cargo xtask report` tells a
//! capacity directory from a comparison's.

use std::fs;
use std::path::{Path, PathBuf};

use xtask::export::{capacity, latency_chart};
use xtask::report;
use xtask::results::Faults;
use xtask::study::capacity::results::{
    AwayFromSlowdowns, Bound, CapacitySummary, IndependentCheck, IndependentClient,
    IndependentOutcome, Latency, LoadgenHeadroom, MachineSpeed, StallChecks, Step, StudyMachine,
};
use xtask::study::capacity::slo::{JudgedOn, Verdict};

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/capacity")
}

fn fixture() -> CapacitySummary {
    report::read_capacity(&fixture_dir()).expect("the fixture is a capacity summary")
}

fn line_of<'a>(text: &'a str, start: &str) -> &'a str {
    text.lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting with {start:?} in:\n{text}"))
}

#[test]
fn rendering_the_same_capacity_summary_twice_gives_the_same_bytes() {
    assert_eq!(capacity::readme(&fixture()), capacity::readme(&fixture()));
}

#[test]
fn the_capacity_table_shows_each_servers_rate_its_ratios_and_what_bound_it() {
    let text = capacity::readme(&fixture());
    assert!(text.contains(
        "| server | model | max sustainable req/s | × fastest | × python-asyncio | bound |"
    ));
    assert_eq!(
        line_of(&text, "| mio | mio |"),
        "| mio | mio | 1750 | 1.00× | – | SLO: latency degraded | 2000 | 4 |"
    );
    assert!(
        line_of(&text, "| threaded | threads |")
            .starts_with("| threaded | threads | 100 | 0.06× |")
    );
    assert!(
        line_of(&text, "| python-asyncio | asyncio |").contains("| none | – | – |"),
        "a server with no rate shows none, not 0 at 0.00×"
    );
}

#[test]
fn the_cost_table_compares_each_server_at_the_rate_every_row_sustained() {
    let text = capacity::readme(&fixture());
    assert!(
        text.contains("## Cost per request at 100 req/s, the highest rate every row sustained")
    );
    let costs = &text[text.find("## Cost per request").expect("a cost table")..];
    // mio's search never went down to 100 req/s: its lowest sustained step stands in.
    assert!(
        line_of(costs, "| mio |").starts_with("| mio | 1000 | 1000 |"),
        "{costs}"
    );
    assert!(
        line_of(costs, "| threaded |").starts_with("| threaded | 100 | 100 |"),
        "{costs}"
    );
    assert!(
        !costs[..costs.find("## Targets").unwrap_or(costs.len())].contains("| python-asyncio |")
    );
}

#[test]
fn the_paragraph_names_the_winner_the_margin_and_the_costs() {
    let text = capacity::paragraph(&fixture());
    assert!(
        text.starts_with("At a 100ms delay and p99 ≤ 110 ms, **mio** (mio) sustained the most: 1750 req/s on CPU 0."),
        "{text}"
    );
    assert!(
        text.contains("threaded 100 req/s (mio sustained 17.5× that)"),
        "{text}"
    );
    assert!(
        text.contains("per request in the cost table (at 100 req/s, the rate every row sustained"),
        "{text}"
    );
    assert!(
        text.contains("A thread per connection (threaded) peaked at"),
        "{text}"
    );
}

#[test]
fn the_targets_are_marked_met_or_missed_plainly() {
    let text = capacity::readme(&fixture());
    assert!(
        text.contains(
            "- **MISSED**: mio's rate at least 6× the reference row's: python-asyncio published \
             no rate (SLO: latency degraded)"
        ),
        "{text}"
    );
    assert!(text.contains(
        "- met: mio's max sustainable rate at least 2× threaded's (got 17.5×: 1750 against 100 req/s)"
    ), "{text}");
    assert!(text.contains("- met: no server's limit is a step where loadgen was the bottleneck"));
    assert!(text.contains("- **MISSED**: an independent open-loop client at 90 %"));
}

/// The fixture with python-asyncio publishing 500 req/s (its step there held), so that mio's
/// 1750 misses the 6× of 3000.
fn with_reference_at_500() -> CapacitySummary {
    let mut summary = fixture();
    let python = &mut summary.servers[2];
    let step = python
        .steps
        .iter_mut()
        .find(|j| j.step.target_requests_per_second == 500.0)
        .expect("the fixture's python-asyncio tried 500 req/s");
    step.verdict = Verdict::Sustained;
    python.max_sustainable_requests_per_second = 500.0;
    summary
}

#[test]
fn a_missed_ratio_against_the_reference_says_whether_the_kernels_share_alone_rules_it_out() {
    // As measured, mio spent 29.3 µs of system CPU per request at 1750 req/s, the least of
    // any row at its published rate: 10⁶ / 29.3 is far above the 3000 needed.
    let text = capacity::readme(&with_reference_at_500());
    let line = line_of(
        &text,
        "- **MISSED**: mio's max sustainable rate at least 6×",
    );
    assert!(
        line.contains(
            "(got 3.50×: 1750 against 500 req/s); the kernel's share alone does not rule it out: 6× is \
             3000 req/s, and a server spending no user-space time at all would sustain at most \
             about 34156 req/s on CPU 0 (68.3× python-asyncio's): 10⁶ µs per CPU over 29.3 µs, \
             the least system CPU per request of any row at its published rate (mio at 1750 \
             req/s)"
        ),
        "{line}"
    );

    // Every row's system time at 400 µs per request: no server fits 3000 req/s on one CPU.
    let mut summary = with_reference_at_500();
    for server in &mut summary.servers {
        for judged in &mut server.steps {
            judged.step.server.system_cpu_us_per_request = 400.0;
        }
    }
    let text = capacity::readme(&summary);
    let line = line_of(
        &text,
        "- **MISSED**: mio's max sustainable rate at least 6×",
    );
    assert!(
        line.contains(
            "no server could reach that here: 6× is 3000 req/s, and a server spending no \
             user-space time at all would sustain at most about 2500 req/s on CPU 0 (5.00× \
             python-asyncio's): 10⁶ µs per CPU over 400 µs"
        ),
        "{line}"
    );
}

#[test]
fn the_threads_ratio_is_against_the_strongest_threads_row_even_when_it_published_nothing() {
    let mut summary = fixture();
    // A weaker threads row that published a rate, and the strongest one (its search held
    // 1000 req/s in a step) whose every confirmation broke.
    let mut weak = summary.servers[1].clone();
    weak.name = "threaded-pool".to_owned();
    weak.max_sustainable_requests_per_second = 50.0;
    weak.steps.retain(|j| j.verdict != Verdict::Sustained);
    summary.servers.push(weak);
    let threaded = &mut summary.servers[1];
    threaded.steps[0].verdict = Verdict::Sustained;
    threaded.max_sustainable_requests_per_second = 0.0;
    threaded.bound = Bound::Unconfirmed;
    let text = capacity::readme(&summary);
    assert!(
        text.contains(
            "- **MISSED**: mio's rate at least 2× the strongest threads row's: threaded \
             published no rate (unconfirmed: every confirmation broke)"
        ),
        "{text}"
    );
    assert!(!text.contains("2× threaded-pool's"), "{text}");
}

#[test]
fn every_step_is_listed_with_its_verdict_and_missing_figures_say_why() {
    let text = capacity::readme(&fixture());
    assert!(text.contains("### python-asyncio"));
    let broken = line_of(&text, "| 2 | 2000 |");
    assert!(
        broken.ends_with("| broken: p99 138.0 ms over 110.0 ms |"),
        "{broken}"
    );
    assert!(text.contains("Not measured: loadgen's report (schema 1) has no schedule lag."));
}

#[test]
fn the_latency_chart_draws_a_line_per_server_with_the_slo() {
    let svg = latency_chart::svg(&fixture().latency_chart()).expect("draws");
    for name in ["mio", "threaded", "python-asyncio"] {
        assert!(
            svg.lines().any(|l| l.trim() == name),
            "no legend entry for {name}"
        );
    }
    assert!(svg.contains("SLO: p99 ≤ 110 ms"));
}

#[test]
fn report_re_renders_a_capacity_directory_and_keeps_it_out_of_the_comparisons() {
    let results =
        std::env::temp_dir().join(format!("xtask-capacity-render-{}", std::process::id()));
    let dir = results.join("2026-12-01-capacity");
    fs::create_dir_all(&dir).expect("temp dir");
    fs::copy(fixture_dir().join("summary.json"), dir.join("summary.json")).expect("copied");
    assert!(report::is_capacity(&dir));
    report::run(&dir).expect("renders");
    let readme = fs::read_to_string(dir.join("README.md")).expect("written");
    assert_eq!(readme, capacity::readme(&fixture()));
    assert!(
        fs::read_to_string(dir.join("latency.svg"))
            .expect("written")
            .starts_with("<svg")
    );
    assert!(report::comparisons(&results).expect("listed").is_empty());
    let latest = fs::read_to_string(results.join("LATEST.md")).expect("written");
    assert!(
        latest.contains("| [2026-12-01-capacity](2026-12-01-capacity/README.md) |"),
        "{latest}"
    );
    fs::remove_dir_all(&results).expect("cleaned up");
}

#[test]
fn a_search_stopped_by_the_client_reports_its_best_step_as_client_bound_above_it() {
    let mut summary = fixture();
    summary.servers[0].bound = Bound::Client;
    summary.servers[0].client_bound_from_requests_per_second = Some(2000.0);
    let text = capacity::readme(&summary);
    assert_eq!(
        line_of(&text, "| mio | mio |"),
        "| mio | mio | 1750 | 1.00× | – | client-bound above 1750 (loadgen fell behind at 2000 \
         req/s) | 2000 | 4 |"
    );
    summary.servers[2].bound = Bound::Client;
    summary.servers[2].client_bound_from_requests_per_second = Some(100.0);
    let text = capacity::readme(&summary);
    assert!(
        line_of(&text, "| python-asyncio | asyncio |")
            .contains("| client: loadgen fell behind at every rate, down to 100 req/s |"),
        "{text}"
    );
}

#[test]
fn faults_are_shown_for_the_servers_that_had_any_and_not_at_all_when_none_did() {
    let mut summary = fixture();
    assert!(!capacity::readme(&summary).contains("## Faults"));
    summary.servers[0].faults = Some(Faults::default());
    summary.servers[1].faults = Some(Faults {
        timed_out: 4,
        shed: Some(9),
        listen_overflows: 2,
        ..Faults::default()
    });
    let text = capacity::readme(&summary);
    let faults = &text[text.find("## Faults").expect("a faults table")..];
    assert!(
        faults.contains("| threaded | 0 | 0 | 4 | 9 | 2 |"),
        "{faults}"
    );
    assert!(!faults.contains("| mio |"), "{faults}");
}

fn olc_saw(requests_per_second: f64, p99_ms: f64, requests_ok: u64) -> IndependentCheck {
    IndependentCheck {
        requests_per_second,
        connections: 350,
        window_seconds: 1.0,
        command: "taskset -c 1 target/olc 127.0.0.1 {port} 350 900 1 1 'the fox'".to_owned(),
        outcome: IndependentOutcome::Measured {
            requests_ok,
            requests_sent: 1800,
            errors: 0,
            latency: Latency {
                p50_ms: 100.2,
                p90_ms: 100.5,
                p99_ms,
                p99_9_ms: p99_ms + 1.0,
                max_ms: p99_ms + 2.0,
            },
            schedule_lag_p99_ms: 0.05,
            client_lag_p99_ms: Some(0.05),
            cpu_seconds: 0.1,
            away_from_slowdowns: None,
        },
    }
}

#[test]
fn the_independent_check_says_per_server_whether_the_published_rate_held() {
    let mut summary = fixture();
    summary.independent_client = Some(IndependentClient {
        client: "olc".to_owned(),
        share_of_max: 0.9,
        not_checked: None,
    });
    summary.servers[0].independent_check = Some(olc_saw(1575.0, 104.0, 1575));
    summary.servers[1].independent_check = Some(olc_saw(90.0, 104.0, 40));
    let text = capacity::readme(&summary);
    let section = &text[text.find("## Independent check").expect("a section")..];
    assert!(
        line_of(section, "| mio |").ends_with("| 1575 | 100 | 104 | 106 | 0 | 0.050 | yes |"),
        "{section}"
    );
    assert!(
        line_of(section, "| threaded |").ends_with("| **no** |"),
        "40 of the 90 requests due: {section}"
    );
    assert!(
        text.contains(
            "- **MISSED**: an independent open-loop client at 90 % of each reported max rate sees \
             p99 within the SLO (p99 ≤ 110 ms, no error, the rate achieved): missed by threaded \
             104 ms; held by mio 104 ms"
        ),
        "{text}"
    );
    summary.servers[1].independent_check = Some(olc_saw(90.0, 104.0, 90));
    let text = capacity::readme(&summary);
    assert!(text.contains(
        "- met: an independent open-loop client at 90 % of each reported max rate sees p99 \
         within the SLO (p99 ≤ 110 ms): mio 104 ms, threaded 104 ms"
    ));
}

#[test]
fn an_independent_check_that_could_not_run_says_why() {
    let mut summary = fixture();
    summary.independent_client = Some(IndependentClient {
        client: "olc".to_owned(),
        share_of_max: 0.9,
        not_checked: Some("no C compiler (cc is not on PATH)".to_owned()),
    });
    let text = capacity::readme(&summary);
    assert!(text.contains("Not checked: no C compiler (cc is not on PATH)."));
    assert!(text.contains(
        "- **MISSED**: an independent open-loop client at 90 % of each reported max rate sees \
         p99 within the SLO: not checked: no C compiler (cc is not on PATH)"
    ));
}

#[test]
fn loadgens_headroom_at_one_and_a_quarter_times_the_best_rate_is_checked_as_data() {
    let mut summary = fixture();
    let mut step = headroom_step(&summary);
    step.loadgen.lag_p99_ms = Ok(0.4);
    summary.loadgen_headroom = Some(headroom(step.clone()));
    let text = capacity::readme(&summary);
    let line = line_of(&text, "- met: loadgen carries at least 1.25×");
    assert!(
        line.contains("achieved 2187 of 2188 req/s, 0 failed"),
        "{line}"
    );
    step.loadgen.lag_p99_ms = Ok(3.0);
    summary.loadgen_headroom = Some(headroom(step));
    let text = capacity::readme(&summary);
    let missed = line_of(&text, "- **MISSED**: loadgen carries");
    assert!(missed.contains("its lag p99 3.00 ms"), "{missed}");
    assert!(!missed.contains("away from"), "not logged: {missed}");
}

#[test]
fn a_logged_headroom_run_is_judged_again_away_from_the_machines_slowdowns() {
    let mut summary = fixture();
    let mut step = headroom_step(&summary);
    step.loadgen.lag_p99_ms = Ok(13.7);
    step.away_from_slowdowns = Some(AwayFromSlowdowns {
        requests: 8_700,
        requests_logged: 10_000,
        requests_started_late: 5,
        schedule_lag_p99_us: Some(210.0),
        client_lag_p99_ms: None,
        latency_p99_ms: None,
        latency_from_send_p99_ms: None,
        late_near_slowdowns: 995,
        before_due_ms: 30.0,
        after_due_ms: 10.0,
    });
    summary.loadgen_headroom = Some(headroom(step));
    let text = capacity::readme(&summary);
    let line = line_of(&text, "- **MISSED**: loadgen carries");
    assert!(
        line.contains(
            "its lag p99 13.7 ms (limit 1.00 ms), its CPU 6 %; away from the machine's \
             slowdowns (the 87.0 % of its requests due with no slowed probe sample in the \
             30.0 ms before or the 10.0 ms after) its lag p99 0.210 ms and 0.057 % late, and \
             99.5 % of its late starts were due near a slowdown"
        ),
        "{line}"
    );
}

#[test]
fn the_settings_say_only_loadgens_own_lag_blames_it_where_loadgen_reported_one() {
    let mut summary = fixture();
    let old = capacity::readme(&summary);
    assert!(
        old.contains("when loadgen's schedule lag p99 was over"),
        "{old}"
    );
    summary.servers[0].steps[0].step.loadgen.lag_is_clients_own = true;
    let text = capacity::readme(&summary);
    assert!(
        text.contains("when loadgen's own lag p99 was over 1.00 ms (its client lag"),
        "{text}"
    );
}

#[test]
fn an_independent_check_whose_client_fell_behind_is_inconclusive_and_the_target_says_so() {
    let mut summary = fixture();
    summary.independent_client = Some(IndependentClient {
        client: "olc".to_owned(),
        share_of_max: 0.9,
        not_checked: None,
    });
    let mut lagging = olc_saw(1575.0, 201.0, 1575);
    if let IndependentOutcome::Measured {
        client_lag_p99_ms, ..
    } = &mut lagging.outcome
    {
        *client_lag_p99_ms = Some(8.69);
    }
    summary.servers[0].independent_check = Some(lagging);
    summary.servers[1].independent_check = Some(olc_saw(90.0, 104.0, 90));
    let text = capacity::readme(&summary);
    let section = &text[text.find("## Independent check").expect("a section")..];
    assert!(
        line_of(section, "| mio |").ends_with(
            "| 8.69 | inconclusive: the independent client fell behind (lag p99 8.69 ms) |"
        ),
        "{section}"
    );
    assert!(
        text.contains(
            "- **MISSED**: an independent open-loop client at 90 % of each reported max rate sees \
             p99 within the SLO (p99 ≤ 110 ms, no error, the rate achieved): inconclusive, the \
             independent client fell behind, for mio (lag p99 8.69 ms) (not shown to hold); \
             held by threaded 104 ms"
        ),
        "{text}"
    );
}

#[test]
fn a_confirmed_study_says_which_rates_held_over_which_window_and_marks_its_confirmations() {
    let mut summary = fixture();
    summary.settings.confirm_window_seconds = Some(10.0);
    summary.settings.search.confirmations = 2;
    let last = summary.servers[0].steps.len() - 1;
    summary.servers[0].steps[last].confirmation = true;
    summary.servers[0].steps[last].step.window_seconds = 10.0;
    summary.servers[0].confirmed_over_seconds = Some(10.0);
    summary.servers[2].bound = Bound::Unconfirmed;
    summary.servers[1].bound = Bound::Client;
    summary.servers[1].max_sustainable_requests_per_second = 0.0;
    summary.servers[1].client_bound_from_requests_per_second = Some(95.0);
    summary.servers[1].steps[0].confirmation = true;
    let text = capacity::readme(&summary);
    assert!(
        line_of(&text, "| threaded | threads |")
            .contains("| client: loadgen fell behind in every confirmation, down to 95 req/s |"),
        "{text}"
    );
    assert!(
        text.contains("held for a 10.0 s window (after the same warm-up)"),
        "{text}"
    );
    assert!(
        text.contains(
            "Max sustainable rates confirmed over a 10.0 s window: mio; not confirmed (no rate \
             published, or the search stopped first): threaded, python-asyncio."
        ),
        "{text}"
    );
    assert!(
        line_of(&text, "| python-asyncio | asyncio |")
            .contains("| unconfirmed: every confirmation broke |"),
        "{text}"
    );
    let steps = &text[text.find("### mio").expect("mio's steps")..];
    assert!(
        line_of(steps, &format!("| {} (confirmation, 10.0 s) |", last + 1)).contains("| 10"),
        "{steps}"
    );
    assert!(text.contains("- A **confirmation** (marked so under Every step)"));
}

#[test]
fn a_study_made_before_confirmations_renders_without_a_word_of_them() {
    let text = capacity::readme(&fixture());
    assert!(!text.contains("confirm"), "{text}");
}

/// The user-space share is judged where the CPU time is large enough to split it: the best
/// row's published rate, with the cost table's low rate beside it.
#[test]
fn the_user_space_share_is_judged_at_the_best_rows_published_rate() {
    let mut summary = fixture();
    let mio = &mut summary.servers[0];
    assert_eq!(mio.name, "mio");
    let max = mio.max_sustainable_requests_per_second;
    for step in &mut mio.steps {
        let (user, system) = if step.step.target_requests_per_second == max {
            (1.0, 9.0)
        } else {
            (5.0, 5.0)
        };
        step.step.server.user_cpu_us_per_request = user;
        step.step.server.system_cpu_us_per_request = system;
    }
    let text = capacity::readme(&summary);
    let line = line_of(&text, "- met: mio's user-space CPU at most 25 %");
    assert!(
        line.contains(&format!(
            "at its published rate (got 10 %: 1.00 of 10.0 µs at {max:.0} req/s"
        )),
        "{line}"
    );
    assert!(
        line.contains("; at the cost table's rate 50 %: 5.00 of 10.0 µs"),
        "{line}"
    );

    for step in &mut summary.servers[0].steps {
        step.step.server.user_cpu_us_per_request = 4.0;
        step.step.server.system_cpu_us_per_request = 6.0;
    }
    let text = capacity::readme(&summary);
    assert!(
        line_of(&text, "- **MISSED**: mio's user-space CPU at most 25 %").contains("got 40 %"),
        "{text}"
    );
}

#[test]
fn a_broken_step_measured_again_is_marked_so_and_the_settings_say_why() {
    let mut summary = fixture();
    let before = capacity::readme(&summary);
    assert!(
        !before.contains("(again)") && !before.contains("measured once more"),
        "{before}"
    );
    summary.settings.search.broken_retries = 1;
    let retried = 1;
    summary.servers[0].steps[retried].again = true;
    let text = capacity::readme(&summary);
    assert!(
        text.contains(
            "The first step of each search that broke the SLO was measured once more (marked \
             *again* under Every step) before the search took its rate as broken"
        ),
        "{text}"
    );
    let steps = &text[text.find("### mio").expect("mio's steps")..];
    let rate = summary.servers[0].steps[retried]
        .step
        .target_requests_per_second;
    assert!(
        line_of(steps, &format!("| {} (again) |", retried + 1)).contains(&format!("| {rate:.0}")),
        "{steps}"
    );
    summary.settings.search.broken_retry_p99_within = Some(2.0);
    assert!(
        capacity::readme(&summary).contains(
            "The first step of each search that broke the SLO, when one slowdown could explain \
             the break (a p99 within 2.00× the limit, no failed request, the rate achieved), was \
             measured once more"
        ),
        "{}",
        capacity::readme(&summary)
    );
    summary.settings.search.broken_retry_p99_within = None;
    summary.settings.search.broken_retries = 2;
    assert!(
        capacity::readme(&summary).contains(
            "The first 2 steps of each search that broke the SLO were measured once more"
        )
    );
}

#[test]
fn the_settings_say_how_deep_each_step_down_after_a_broken_confirmation_went() {
    let mut summary = fixture();
    summary.settings.confirm_window_seconds = Some(5.0);
    summary.settings.search.precision = 0.05;
    summary.settings.search.confirmations = 3;
    let text = capacity::readme(&summary);
    assert!(
        text.contains(
            "held for a 5.00 s window (after the same warm-up) with the SLO met; when a \
             confirmation broke, the search stepped down and confirmed again: 10 % lower after \
             the first broken one, 21 % lower after the second broken one (each step twice as \
             deep as the last), at most 3 confirmations in all."
        ),
        "{text}"
    );
}

#[test]
fn a_study_with_the_speed_probe_says_how_often_the_cpus_ran_slowed_and_in_which_steps() {
    let mut summary = fixture();
    let before = capacity::readme(&summary);
    assert!(!before.contains("How steady the machine was"), "{before}");
    assert!(!before.contains("CPUs slowed"), "{before}");

    let speed = |samples, slowed_fraction, slowest| MachineSpeed {
        samples,
        slowed_fraction,
        slowest,
    };
    summary.machine = Some(StudyMachine {
        server_cpus: speed(60_000, 0.061, 0.16),
        loadgen_cpus: speed(60_000, 0.058, 0.18),
        period_seconds: 0.01,
        slowed_below: 0.5,
        stall_checks: None,
    });
    for (i, judged) in summary.servers[0].steps.iter_mut().enumerate() {
        judged.step.machine = Some(speed(1_000, if i == 1 { 0.125 } else { 0.0 }, 0.3));
    }
    let text = capacity::readme(&summary);
    let section = line_of(&text, "A speed probe ran through the study");
    assert!(
        section.contains(
            "The servers' CPU 0 ran below 50 % of their fastest in 6.1 % of the probe's 60000 \
             samples over the study (the slowest at 16 %), loadgen's CPU 1 in 5.8 % of 60000"
        ),
        "{section}"
    );
    assert!(
        !section.contains("stall"),
        "a default-policy probe: {section}"
    );
    // A real-time probe also looked for stalls, and the page says how.
    let mut checked = summary.clone();
    if let Some(machine) = checked.machine.as_mut() {
        machine.stall_checks = Some(StallChecks {
            every_ms: 2.0,
            late_ms: 1.0,
        });
    }
    let checked_text = capacity::readme(&checked);
    let checked_section = line_of(&checked_text, "A speed probe ran through the study");
    assert!(
        checked_section.contains(
            "also woke every 2.00 ms between its samples: a wake-up more than 1.00 ms late counted \
             its next sample as slowed"
        ),
        "{checked_section}"
    );
    assert!(
        checked_section.contains("ran below 50 % of their fastest or followed a stall in 6.1 %"),
        "{checked_section}"
    );
    let steps = summary.servers[0].steps.len();
    let probed = format!("1 of the {steps} probed steps ran partly slowed");
    assert!(section.contains(&probed), "{section}");
    let second = &summary.servers[0].steps[1];
    assert!(
        section.contains(&format!(
            "the most was mio's step at {:.0} req/s, 12.5 %",
            second.step.target_requests_per_second
        )),
        "{section}"
    );
    let second_sustained = matches!(second.verdict, Verdict::Sustained);
    let (sustained, broken) = if second_sustained {
        (12.5 / (steps - broken_steps(&summary)) as f64, 0.0)
    } else {
        (0.0, 12.5 / broken_steps(&summary) as f64)
    };
    assert!(
        section.contains(&format!(
            "On average a sustained step ran {sustained:.1} % slowed and a broken one \
             {broken:.1} %: "
        )),
        "{section}"
    );
    let header = line_of(&text, "| # | target req/s |");
    assert!(header.ends_with("| CPUs slowed | verdict |"), "{header}");
    let rows: Vec<&str> = text
        .lines()
        .skip_while(|l| !l.starts_with("### mio"))
        .filter(|l| l.starts_with("| 1 ") || l.starts_with("| 2 "))
        .take(2)
        .collect();
    assert!(rows[0].contains("| 0.0 % |"), "{rows:?}");
    assert!(rows[1].contains("| 12.5 % |"), "{rows:?}");
    // Another server's steps were not probed: a dash, not a made-up 0.
    let other = text
        .lines()
        .skip_while(|l| !l.starts_with(&format!("### {}", summary.servers[1].name)))
        .find(|l| l.starts_with("| 1 "))
        .expect("a first step of the second server");
    assert!(other.contains("| – |"), "{other}");
}

/// Steps of the first server that did not meet the SLO.
fn broken_steps(summary: &CapacitySummary) -> usize {
    summary.servers[0]
        .steps
        .iter()
        .filter(|j| !matches!(j.verdict, Verdict::Sustained))
        .count()
}

/// The fixture's first step as loadgen's headroom run at 1.25 × its 1750 req/s.
fn headroom_step(summary: &CapacitySummary) -> Step {
    let mut step = summary.servers[0].steps[0].step.clone();
    step.target_requests_per_second = 2187.5;
    step.achieved_requests_per_second = 2187.0;
    step.requests_failed = 0;
    step
}

/// loadgen's headroom run against mio at 1.25 × the best max.
fn headroom(step: Step) -> LoadgenHeadroom {
    LoadgenHeadroom {
        server: "mio".to_owned(),
        multiple_of_best_max: 1.25,
        step: Some(step),
        failure: None,
    }
}

#[test]
fn steps_measured_away_from_the_slowdowns_show_their_p99_there_and_say_how_they_were_judged() {
    let mut summary = fixture();
    let limit = summary.settings.slo.p99_max_ms();
    summary.machine = Some(StudyMachine {
        server_cpus: MachineSpeed {
            samples: 60_000,
            slowed_fraction: 0.06,
            slowest: 0.2,
        },
        loadgen_cpus: MachineSpeed {
            samples: 60_000,
            slowed_fraction: 0.06,
            slowest: 0.2,
        },
        period_seconds: 0.01,
        slowed_below: 0.5,
        stall_checks: None,
    });
    // mio's steps at 108, 138, 107 and 108 ms over every request (the limit is 110 ms): at
    // 101 ms away from the slowdowns, its one broken step was within the limit there.
    for judged in &mut summary.servers[0].steps {
        judged.step.away_from_slowdowns = Some(AwayFromSlowdowns {
            requests: 750,
            requests_logged: 1_000,
            requests_started_late: 0,
            schedule_lag_p99_us: Some(150.0),
            client_lag_p99_ms: Some(0.15),
            latency_p99_ms: Some(101.0),
            latency_from_send_p99_ms: Some(100.9),
            late_near_slowdowns: 10,
            before_due_ms: 30.0,
            after_due_ms: limit,
        });
    }
    let text = capacity::readme(&summary);
    let header = line_of(&text, "| # | target req/s |");
    assert!(
        header.contains("| p99 ms | p99 away ms (requests away) | p99.9 ms |"),
        "{header}"
    );
    let mio_row = text
        .lines()
        .skip_while(|l| !l.starts_with("### mio"))
        .find(|l| l.starts_with("| 2 "))
        .expect("mio's second step");
    assert!(mio_row.contains("| 138 | 101 (75 %) |"), "{mio_row}");
    let other = text
        .lines()
        .skip_while(|l| !l.starts_with("### threaded"))
        .find(|l| l.starts_with("| 1 "))
        .expect("threaded's first step");
    assert!(other.contains("| 302 | – |"), "not measured away: {other}");
    let section = line_of(&text, "A speed probe ran through the study");
    assert!(
        section.contains(
            "from 30 ms before the request's due time to 110 ms after it, 75 % of a step's \
             requests on average"
        ),
        "{section}"
    );
    assert!(
        section.contains(
            "Of the 1 step whose p99 over every request was over 110 ms, 1 was within it away \
             from the slowdowns; 0 steps within it over every request were over it away"
        ),
        "{section}"
    );
    assert!(
        section.contains("The steps were judged over every request, as the SLO is given"),
        "{section}"
    );
    let settings = line_of(&text, "| 100ms |");
    assert!(settings.contains("| p99 ≤ 110 ms, 0 failed"), "{settings}");
    let chart = summary.latency_chart();
    assert!((chart.series[0].points[1].p99_ms - 138.0).abs() < 0.1);

    summary.settings.slo.judged_on = JudgedOn::AwayFromSlowdowns;
    let text = capacity::readme(&summary);
    let settings = line_of(&text, "| 100ms |");
    assert!(
        settings.contains("| p99 ≤ 110 ms away from the machine's slowdowns, 0 failed"),
        "{settings}"
    );
    assert!(
        text.contains(
            "## Capacity at a 100ms delay (p99 ≤ 110 ms away from the machine's slowdowns)"
        ),
        "{text}"
    );
    assert!(
        text.contains("The steps were judged on them (`--away-from-slowdowns`)"),
        "{text}"
    );
    // The chart draws what was judged: mio's p99 away from the slowdowns.
    let chart = summary.latency_chart();
    assert!(
        chart.series[0].points.iter().all(|p| p.p99_ms == 101.0),
        "{:?}",
        chart.series[0].points
    );
    assert!(
        chart
            .caption
            .starts_with("p99 away from slowdowns against throughput"),
        "{}",
        chart.caption
    );

    // A study judged away whose steps had no request away from the slowdowns says it
    // judged them over every request.
    for judged in &mut summary.servers[0].steps {
        if let Some(away) = judged.step.away_from_slowdowns.as_mut() {
            away.requests = 0;
            away.latency_p99_ms = None;
            away.latency_from_send_p99_ms = None;
        }
    }
    let text = capacity::readme(&summary);
    assert!(
        line_of(&text, "A speed probe ran through the study").contains(
            "No step had a request due away from the slowdowns (or a log to tell), so every \
             step was judged over every request, `--away-from-slowdowns` notwithstanding."
        ),
        "{text}"
    );
}

#[test]
fn an_independent_check_judged_away_from_the_slowdowns_is_held_to_its_p99_there() {
    let mut summary = fixture();
    summary.independent_client = Some(IndependentClient {
        client: "olc".to_owned(),
        share_of_max: 0.9,
        not_checked: None,
    });
    // Over every request olc saw 131 ms, over the limit of 110; away from the slowdowns 103.
    let mut check = olc_saw(1575.0, 131.0, 1575);
    if let IndependentOutcome::Measured {
        away_from_slowdowns,
        ..
    } = &mut check.outcome
    {
        *away_from_slowdowns = Some(AwayFromSlowdowns {
            requests: 1_260,
            requests_logged: 1_575,
            requests_started_late: 0,
            schedule_lag_p99_us: Some(60.0),
            client_lag_p99_ms: Some(0.06),
            latency_p99_ms: Some(103.0),
            latency_from_send_p99_ms: Some(102.9),
            late_near_slowdowns: 2,
            before_due_ms: 30.0,
            after_due_ms: 110.0,
        });
    }
    summary.servers[0].independent_check = Some(check);
    let text = capacity::readme(&summary);
    let section = &text[text.find("## Independent check").expect("a section")..];
    let header = line_of(section, "| server | max sustainable req/s |");
    assert!(
        header.contains("| p99 ms | p99 away ms (requests away) | max ms |"),
        "{header}"
    );
    assert!(
        line_of(section, "| mio |").ends_with("| 131 | 103 (80 %) | 133 | 0 | 0.050 | **no** |"),
        "judged over every request: {section}"
    );

    summary.settings.slo.judged_on = JudgedOn::AwayFromSlowdowns;
    let text = capacity::readme(&summary);
    let section = &text[text.find("## Independent check").expect("a section")..];
    assert!(
        line_of(section, "| mio |").ends_with("| 131 | 103 (80 %) | 133 | 0 | 0.050 | yes |"),
        "judged away from the slowdowns: {section}"
    );
    assert!(
        text.contains(
            "sees p99 within the SLO (p99 ≤ 110 ms away from the machine's slowdowns, no error, \
             the rate achieved): missed by threaded not measured; held by mio 103 ms"
        ),
        "{text}"
    );
}

#[test]
fn a_client_that_kept_its_schedule_away_from_the_slowdowns_is_not_blamed_for_them() {
    let mut summary = fixture();
    summary.independent_client = Some(IndependentClient {
        client: "olc".to_owned(),
        share_of_max: 0.9,
        not_checked: None,
    });
    let away = |client_lag_p99_ms: f64| AwayFromSlowdowns {
        requests: 800,
        requests_logged: 1_000,
        requests_started_late: 0,
        schedule_lag_p99_us: Some(client_lag_p99_ms * 1e3),
        client_lag_p99_ms: Some(client_lag_p99_ms),
        latency_p99_ms: Some(104.0),
        latency_from_send_p99_ms: Some(103.9),
        late_near_slowdowns: 40,
        before_due_ms: 30.0,
        after_due_ms: 110.0,
    };
    // olc 25 ms behind over every request, 0.2 ms away from the slowdowns: its check is
    // conclusive, and its p99 of 131 ms over every request misses the 110 ms limit.
    let mut check = olc_saw(1575.0, 131.0, 1575);
    if let IndependentOutcome::Measured {
        client_lag_p99_ms,
        away_from_slowdowns,
        ..
    } = &mut check.outcome
    {
        *client_lag_p99_ms = Some(25.0);
        *away_from_slowdowns = Some(away(0.2));
    }
    summary.servers[0].independent_check = Some(check);
    // loadgen's headroom run the same: 13.7 ms behind over every request, 0.3 ms away.
    let mut step = headroom_step(&summary);
    step.loadgen.lag_p99_ms = Ok(13.7);
    step.away_from_slowdowns = Some(away(0.3));
    summary.loadgen_headroom = Some(headroom(step));
    let text = capacity::readme(&summary);
    let section = &text[text.find("## Independent check").expect("a section")..];
    assert!(
        section.contains("a check is *inconclusive* only when its own lag p99 over the requests due away from the machine's slowdowns"),
        "{section}"
    );
    assert!(
        line_of(section, "| mio |").ends_with("| 25.0 | **no** |"),
        "{section}"
    );
    let line = line_of(&text, "- met: loadgen carries");
    assert!(
        line.contains("its lag p99 13.7 ms (limit 1.00 ms)")
            && line.ends_with("; judged there, as a client is, on its own lag: p99 0.300 ms"),
        "{line}"
    );
}

#[test]
fn a_study_whose_clients_ran_real_time_says_so_and_one_before_says_nothing() {
    let mut summary = fixture();
    let before = capacity::readme(&summary);
    assert!(
        !before.contains("SCHED_FIFO"),
        "the fixture predates the choice"
    );
    summary.settings.cpus.clients_fifo_priority = Some(5);
    let text = capacity::readme(&summary);
    let line = line_of(&text, "Every server, multi-threaded ones included");
    assert!(
        line.contains(
            "and loadgen to CPU 1, loadgen and the independent client under the real-time \
             policy `SCHED_FIFO` at priority 5 (`chrt -f 5`)"
        ),
        "{line}"
    );
    assert!(
        line.contains("the servers ran under the default policy"),
        "{line}"
    );
}

#[test]
fn the_settings_say_on_which_connections_each_step_warmed_up() {
    // The fixture was made before loadgen warmed up on the window's own connections.
    let mut summary = fixture();
    let before = capacity::readme(&summary);
    assert!(
        before.contains("s of warm-up (on connections of its own, closed before the window"),
        "{before}"
    );
    summary.settings.warmup_on_window_connections = true;
    let now = capacity::readme(&summary);
    assert!(
        now.contains(
            "s of warm-up (the first stretch of the window's schedule, on its connections)"
        ),
        "{now}"
    );
    assert!(!now.contains("connections of its own"), "{now}");
}
