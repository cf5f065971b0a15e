//! The conformance suite, run against both tokio runtimes and the current-thread one with
//! `--offload` (which also runs the offload cases): one variant a line, named by its flags.

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

// The current-thread runtime with `block` and `spin` delays on the blocking pool, 4 at a time
// (the `tokio-offload` row uses more): its single thread is what the pool frees, so the
// offload cases run on it.
conformance::suite!(
    tokio_current_offload,
    variant = server_async::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-async"),
    args = &["--flavor", "current", "--offload", "4"],
);

conformance::offload_suite!(
    tokio_current_offload_cases,
    variant = server_async::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-async"),
    args = &["--flavor", "current", "--offload", "4"],
);
