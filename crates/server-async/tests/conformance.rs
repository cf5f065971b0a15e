//! The conformance suite, run against both tokio runtimes.

use server_async::{Flavor, Options};

conformance::suite!(
    tokio_multi,
    start = |config| server_async::start(
        config,
        Options {
            flavor: Flavor::Multi,
            workers: Some(2)
        }
    ),
    binary = env!("CARGO_BIN_EXE_server-async"),
    args = &["--flavor", "multi", "--workers", "2"],
);

conformance::suite!(
    tokio_current,
    start = |config| server_async::start(
        config,
        Options {
            flavor: Flavor::Current,
            workers: None
        }
    ),
    binary = env!("CARGO_BIN_EXE_server-async"),
    args = &["--flavor", "current"],
);
