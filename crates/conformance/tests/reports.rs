//! The committed issue-3 reports are exactly what their JSON renders to: the markdown cannot
//! be edited by hand or drift from its data. To change one, rerun its example (the command
//! is in the file), or after a change to the rendering, run it with `--render FILE.json`.

use std::fs;
use std::path::PathBuf;

#[allow(
    dead_code,
    reason = "the examples use all of it; this test only renders"
)]
#[path = "../examples/common/mod.rs"]
mod common;
#[path = "../examples/idle_memory/report.rs"]
mod idle_memory;
#[path = "../examples/many_connections/report.rs"]
mod many_connections;

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Re-renders `json_path` (repository-relative) with `render` and compares byte for byte
/// with the markdown beside it; both files must exist.
fn assert_rendered<R: serde::de::DeserializeOwned>(
    json_path: &str,
    render: fn(&common::Results<R>, &str) -> String,
) -> Result<common::Results<R>, Box<dyn std::error::Error>> {
    let json = fs::read_to_string(repo_root().join(json_path))
        .map_err(|e| format!("cannot read the committed {json_path}: {e}"))?;
    let md_path = json_path.replace(".json", ".md");
    let markdown = fs::read_to_string(repo_root().join(&md_path))
        .map_err(|e| format!("cannot read the committed {md_path}: {e}"))?;
    let results: common::Results<R> = serde_json::from_str(&json)?;
    assert!(
        markdown == render(&results, json_path),
        "{md_path} differs from what {json_path} renders to; rerun its example with --render"
    );
    Ok(results)
}

#[test]
fn the_committed_idle_memory_report_is_its_json_rendered() -> Result<(), Box<dyn std::error::Error>>
{
    let json_path = "benches-results/issue3-tokio-idle-memory.json";
    let results = assert_rendered(json_path, idle_memory::render)?;
    assert!(
        !results.servers.is_empty(),
        "{json_path} measured no server"
    );
    Ok(())
}

#[test]
fn the_committed_many_connections_report_is_its_json_rendered()
-> Result<(), Box<dyn std::error::Error>> {
    let json_path = "benches-results/issue3-threaded-10k.json";
    let results = assert_rendered(json_path, many_connections::render)?;
    assert!(
        !results.servers.is_empty(),
        "{json_path} measured no server"
    );
    Ok(())
}

/// No path of the machine a benchmark ran on, in any report a benchmark example writes
/// (these two and server-mio's `mio-vs-tokio-current`): their commands replay from a clean
/// clone.
#[test]
fn no_benchmark_example_report_names_an_absolute_path() -> Result<(), Box<dyn std::error::Error>> {
    for stem in [
        "issue3-tokio-idle-memory",
        "issue3-threaded-10k",
        "mio-vs-tokio-current",
    ] {
        for extension in ["json", "md"] {
            let path = format!("benches-results/{stem}.{extension}");
            let text = fs::read_to_string(repo_root().join(&path))
                .map_err(|e| format!("cannot read the committed {path}: {e}"))?;
            let absolute = text
                .split(|c: char| c.is_whitespace() || "`\"(".contains(c))
                .find(|word| {
                    word.strip_prefix('/')
                        .is_some_and(|rest| rest.starts_with(char::is_alphanumeric))
                });
            assert_eq!(absolute, None, "{path} names an absolute path");
        }
    }
    Ok(())
}
