//! The committed benchmark report is exactly what its JSON renders to: the markdown cannot be
//! edited by hand or drift from its data. To change it, rerun the benchmark (see
//! `examples/mio_vs_tokio_current/main.rs`).

use std::fs;
use std::path::PathBuf;

#[allow(
    dead_code,
    reason = "the example uses all of it; this test only renders"
)]
#[path = "../examples/mio_vs_tokio_current/report.rs"]
mod report;

fn results_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../benches-results")
}

#[test]
fn the_committed_mio_vs_tokio_markdown_is_its_json_rendered()
-> Result<(), Box<dyn std::error::Error>> {
    let json = fs::read_to_string(results_dir().join("mio-vs-tokio-current.json"))?;
    let markdown = fs::read_to_string(results_dir().join("mio-vs-tokio-current.md"))?;
    let results: report::Results = serde_json::from_str(&json)?;
    assert_eq!(results.servers.len(), 2, "mio and tokio");
    assert!(
        markdown == report::render_markdown(&results, "benches-results/mio-vs-tokio-current"),
        "benches-results/mio-vs-tokio-current.md differs from its JSON; render it again with \
         the command in the file"
    );
    Ok(())
}
