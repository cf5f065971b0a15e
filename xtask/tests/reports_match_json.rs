//! Every committed report is exactly what rendering its JSON gives, so reports cannot drift
//! from their data (or be edited by hand). A test that finds no report to check fails.

use std::fs;
use std::path::PathBuf;

use xtask::export::{README_FILE, capacity, markdown};
use xtask::report::{self, LATEST_FILE};

fn results_dir() -> PathBuf {
    xtask::workspace_root().join("benches-results")
}

fn committed_comparisons() -> Vec<(String, xtask::results::Summary)> {
    let comparisons = report::comparisons(&results_dir()).expect("benches-results is readable");
    assert!(
        !comparisons.is_empty(),
        "no comparison with a summary.json under {}: nothing would be checked",
        results_dir().display()
    );
    comparisons
}

#[test]
fn every_committed_comparison_readme_equals_its_rendered_summary() {
    for (dir, summary) in &committed_comparisons() {
        let path = results_dir().join(dir).join(README_FILE);
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == markdown::readme(summary),
            "{} differs from its summary.json; run `cargo xtask report benches-results/{dir}`",
            path.display()
        );
    }
}

#[test]
fn every_committed_capacity_readme_equals_its_rendered_summary() {
    let studies = report::capacity_studies(&results_dir()).expect("benches-results is readable");
    for (dir, summary) in &studies {
        let path = results_dir().join(dir).join(README_FILE);
        let committed = fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == capacity::readme(summary),
            "{} differs from its summary.json; run `cargo xtask report benches-results/{dir}`",
            path.display()
        );
    }
}

#[test]
fn latest_md_equals_the_rendered_index_of_every_study() {
    committed_comparisons();
    let path = results_dir().join(LATEST_FILE);
    let committed = fs::read_to_string(&path).unwrap_or_default();
    let rendered = report::latest_text(&results_dir()).expect("every summary is readable");
    assert!(
        committed == rendered,
        "{} is stale; run `cargo xtask report` on any comparison directory",
        path.display()
    );
}

/// Reads the `kind` a study wrote into `dir`'s summary.
fn written_kind(dir: &std::path::Path) -> Option<serde_json::Value> {
    let text = fs::read_to_string(dir.join(xtask::export::SUMMARY_FILE)).ok()?;
    serde_json::from_str::<serde_json::Value>(&text)
        .ok()?
        .get("kind")
        .cloned()
}

#[test]
fn every_committed_summary_is_told_apart_by_its_kind_or_by_its_keys_when_it_has_none() {
    use xtask::results::Kind;
    let mut checked = 0;
    for entry in fs::read_dir(results_dir()).expect("benches-results is readable") {
        let dir = entry.expect("an entry").path();
        if !dir.join(xtask::export::SUMMARY_FILE).is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .expect("a name")
            .to_string_lossy()
            .into_owned();
        let expected = [
            ("capacity", Kind::Capacity),
            ("scenarios", Kind::Scenarios),
            ("soak", Kind::Soak),
        ]
        .into_iter()
        .find_map(|(word, kind)| name.contains(word).then_some(kind))
        .unwrap_or(Kind::Compare);
        assert_eq!(report::kind_of(&dir), Some(expected), "{name}");
        let by_keys = written_kind(&dir).is_none();
        checked += usize::from(by_keys);
    }
    assert!(
        checked > 0,
        "no committed summary without a kind: the fallback would go untested"
    );
}

#[test]
fn a_summary_is_rendered_by_the_kind_it_says_not_by_its_keys() {
    // The study sits in a results directory of its own, where `report` writes LATEST.md.
    let results = std::env::temp_dir().join(format!("xtask-kind-{}", std::process::id()));
    let scratch = results.join("study");
    let _ = fs::remove_dir_all(&results);
    fs::create_dir_all(&scratch).expect("a scratch directory");
    // A summary with a capacity study's keys that says it is a scenarios study.
    let capacity = fs::read_to_string(
        results_dir()
            .join("2026-12-01-capacity")
            .join(xtask::export::SUMMARY_FILE),
    )
    .expect("the committed capacity summary");
    let mut value: serde_json::Value = serde_json::from_str(&capacity).expect("json");
    let summary = scratch.join(xtask::export::SUMMARY_FILE);
    value["kind"] = "scenarios".into();
    fs::write(&summary, value.to_string()).expect("written");
    assert_eq!(
        report::kind_of(&scratch),
        Some(xtask::results::Kind::Scenarios)
    );
    let refused = report::run(&scratch).expect_err("not a scenarios summary");
    assert!(
        format!("{refused:#}").contains("parsing"),
        "read as the scenarios study it says it is: {refused:#}"
    );
    value["kind"] = "capacity".into();
    fs::write(&summary, value.to_string()).expect("written");
    report::run(&scratch).expect("rendered as a capacity study");
    let readme = fs::read_to_string(scratch.join(README_FILE)).expect("a report");
    assert!(readme.starts_with("# Capacity `capacity`"), "{readme}");
    value["kind"] = "horoscope".into();
    fs::write(&summary, value.to_string()).expect("written");
    assert_eq!(
        report::kind_of(&scratch),
        None,
        "an unknown kind is no kind"
    );
    fs::remove_dir_all(&results).expect("cleaned up");
}
