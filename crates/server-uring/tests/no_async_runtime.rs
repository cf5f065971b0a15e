//! Proves the crate's central claim: the completion loop is hand-written, with no async runtime
//! underneath. Asks cargo for the crate's normal (non-dev) dependency tree and looks for any
//! runtime or futures crate in it. Dev-dependencies (the conformance suite) may bring what
//! they like; they never reach the binary.

use std::process::Command;

/// Crates that would mean an async runtime (or its building blocks) slipped in.
const RUNTIMES: &[&str] = &[
    "tokio",
    "async-std",
    "async-io",
    "async-executor",
    "smol",
    "futures",
    "futures-util",
    "futures-executor",
    "glommio",
    "monoio",
];

fn normal_dependencies() -> Vec<String> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml");
    let output = Command::new(cargo)
        .args([
            "tree",
            "--offline",
            "-e",
            "normal",
            "--prefix",
            "none",
            "--format",
            "{p}",
        ])
        .args(["--manifest-path", manifest, "-p", "server-uring"])
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "cargo tree failed: {stderr}");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn the_server_depends_on_io_uring_and_on_no_async_runtime() {
    let crates = normal_dependencies();
    assert!(
        crates.iter().any(|c| c == "io-uring"),
        "io-uring is the ring: {crates:?}"
    );
    let runtimes: Vec<&String> = crates
        .iter()
        .filter(|c| RUNTIMES.contains(&c.as_str()))
        .collect();
    assert!(
        runtimes.is_empty(),
        "async runtime crates in the tree: {runtimes:?}"
    );
}
