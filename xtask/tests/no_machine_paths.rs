//! Committed results name no directory of the machine they were made on: a user replays
//! every command from the repository root, so `/work/...`, `/root/...`, `/tmp/...` or
//! `/home/...` in any file under benches-results/ is a bug.

use std::fs;
use std::path::{Path, PathBuf};

/// Prefixes of directories that belong to one machine, never to a checkout.
const MACHINE_PREFIXES: [&str; 4] = ["/work/", "/root/", "/tmp/", "/home/"];

fn files_under(dir: &Path, found: &mut Vec<PathBuf>) {
    let listing = fs::read_dir(dir).unwrap_or_else(|e| panic!("listing {}: {e}", dir.display()));
    for entry in listing {
        let path = entry.expect("a directory entry").path();
        if path.is_dir() {
            files_under(&path, found);
        } else {
            found.push(path);
        }
    }
}

#[test]
fn no_committed_result_names_a_directory_of_the_machine_it_ran_on() {
    let root = xtask::workspace_root();
    let mut files = Vec::new();
    files_under(&root.join("benches-results"), &mut files);
    assert!(!files.is_empty(), "benches-results/ has no files to check");
    let mut offending = Vec::new();
    for path in &files {
        let Ok(text) = fs::read_to_string(path) else {
            continue;
        };
        for (number, line) in text.lines().enumerate() {
            if let Some(prefix) = MACHINE_PREFIXES.iter().find(|p| line.contains(**p)) {
                let shown = path.strip_prefix(&root).unwrap_or(path);
                offending.push(format!("{}:{}: {prefix}", shown.display(), number + 1));
                break;
            }
        }
    }
    assert!(
        offending.is_empty(),
        "absolute machine paths (write them relative to the repository root):\n{}",
        offending.join("\n")
    );
}
