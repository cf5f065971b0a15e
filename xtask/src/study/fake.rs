//! Stand-ins for servers in the studies' tests: tiny shell scripts run as `--external`
//! variants, so that what a study does with a server that cannot run is tested without one.

use std::path::Path;

use crate::catalogue::{self, Variant};

/// A stand-in for server-uring where io_uring is unavailable: it exits at start with status
/// 3 and a `skipped:` line, as the project's convention says.
pub(crate) fn skipping_server(dir: &Path) -> Variant {
    script_server(
        dir,
        "fake-uring",
        "echo 'probing the ring' >&2\necho 'skipped: io_uring unavailable: test' >&2\nexit 3\n",
    )
}

/// A server that dies at start for a reason of its own: a failure, not a skip.
pub(crate) fn crashing_server(dir: &Path) -> Variant {
    script_server(dir, "fake-crash", "echo 'bind: out of luck' >&2\nexit 1\n")
}

fn script_server(dir: &Path, name: &str, script: &str) -> Variant {
    std::fs::create_dir_all(dir).expect("a scratch directory");
    let path = dir.join(format!("{name}.sh"));
    std::fs::write(&path, script).expect("the script is written");
    catalogue::external(&format!("{name}=sh {} {{port}}", path.display()))
        .expect("a valid external spec")
}
