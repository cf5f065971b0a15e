//! The committed mio-vs-uring report is exactly what its JSON renders to: the markdown cannot
//! be edited by hand or drift from its data. To change it, rerun the benchmark (see
//! `examples/mio_vs_uring/main.rs`).

use std::fs;
use std::path::PathBuf;

#[allow(
    dead_code,
    reason = "the example uses all of it; this test only renders"
)]
#[path = "../examples/mio_vs_uring/report.rs"]
mod report;

fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches-results")
}

#[test]
fn the_committed_mio_vs_uring_markdown_is_its_json_rendered()
-> Result<(), Box<dyn std::error::Error>> {
    let json = fs::read_to_string(results_dir().join("mio-vs-uring.json"))?;
    let markdown = fs::read_to_string(results_dir().join("mio-vs-uring.md"))?;
    let results: report::Results = serde_json::from_str(&json)?;
    assert!(!results.scenarios.is_empty(), "the run measured nothing");
    for scenario in &results.scenarios {
        let names: Vec<&str> = scenario.servers.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["mio", "uring"], "both servers, mio first");
    }
    assert!(
        markdown == report::render_markdown(&results, "benches-results/mio-vs-uring"),
        "benches-results/mio-vs-uring.md differs from its JSON; render it again with the \
         command in the file"
    );
    Ok(())
}
