//! The conformance suite, run against both threaded models: one variant a line, named by its
//! flags.

conformance::suite!(
    threaded,
    variant = server_threaded::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-threaded"),
    args = &[],
);

// 64 workers: more than the suite ever holds open at once (the descriptor case stops at
// about 20), so the pool changes scheduling, not what passes.
conformance::suite!(
    threaded_pool,
    variant = server_threaded::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-threaded"),
    args = &["--pool", "64"],
);
