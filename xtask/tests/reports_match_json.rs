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
