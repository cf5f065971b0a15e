//! Runs the baselines' own tests (`baselines/test_baselines.py`: the conformance cases that
//! apply to the article's servers, on every Python row) under `cargo test`. It fails where
//! python3 is missing, as every baseline test does: a skipped baseline must be seen.

use std::process::Command;

#[test]
fn the_python_baselines_pass_their_own_tests() {
    let out = Command::new("python3")
        .args(["-m", "unittest", "discover", "-s", "baselines"])
        .current_dir(xtask::workspace_root())
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs the baselines' tests (install python3)");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("Ran ") && !stderr.contains("Ran 0 tests"),
        "the baselines' tests ran nothing: {stderr}"
    );
}
