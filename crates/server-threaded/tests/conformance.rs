//! The conformance suite, run against both threaded models: one variant a line, named by its
//! flags.

conformance::suite!(
    threaded,
    variant = server_threaded::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-threaded"),
    args = &[],
);

// 64 workers: more than most cases hold open at once (the descriptor case stops at about 20),
// so there the pool changes scheduling, not what passes; the cases about queued clients fill
// the 64 workers and check what happens to the clients queued behind them.
conformance::suite!(
    threaded_pool,
    variant = server_threaded::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-threaded"),
    args = &["--pool", "64"],
    queue = conformance::Queue {
        workers: 64,
        timeout_flag: "--queue-timeout",
    },
);
