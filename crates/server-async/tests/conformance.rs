//! The conformance suite, run against both tokio runtimes: one variant a line, named by its
//! flags.

conformance::suite!(
    tokio_multi,
    variant = server_async::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-async"),
    args = &["--flavor", "multi", "--workers", "2"],
);

conformance::suite!(
    tokio_current,
    variant = server_async::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-async"),
    args = &["--flavor", "current"],
);
