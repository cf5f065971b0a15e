//! The claim of the hand-written loop servers (server-mio, server-uring) that no async runtime
//! sits underneath, checked once: cargo is asked for a crate's normal (non-dev) dependency
//! tree. Dev-dependencies (this suite) may bring what they like; they never reach a binary.

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

/// The names of `package`'s normal dependencies, itself included, from `cargo tree`.
fn normal_dependencies(package: &str) -> Vec<String> {
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
        .args(["--manifest-path", manifest, "-p", package])
        .output()
        .expect("cargo runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "cargo tree -p {package} failed: {stderr}"
    );
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

/// Panics unless `package`'s normal dependency tree holds `engine` (its poller or ring, so
/// that a tree cargo got wrong cannot pass vacuously) and no async runtime crate.
pub fn assert_no_async_runtime(package: &str, engine: &str) {
    let crates = normal_dependencies(package);
    assert!(
        crates.iter().any(|c| c == engine),
        "{engine} missing from the tree of {package}: {crates:?}"
    );
    let runtimes: Vec<&String> = crates
        .iter()
        .filter(|c| RUNTIMES.contains(&c.as_str()))
        .collect();
    assert!(
        runtimes.is_empty(),
        "async runtime crates in the tree of {package}: {runtimes:?}"
    );
}
