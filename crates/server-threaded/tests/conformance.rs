//! The conformance suite, run against both threaded models.

use server_threaded::Mode;

conformance::suite!(
    threaded,
    start = |config| server_threaded::start(config, Mode::PerConnection),
    binary = env!("CARGO_BIN_EXE_server-threaded"),
    args = &[],
);

// 64 workers: more than the suite ever holds open at once (the descriptor case stops at
// about 20), so the pool changes scheduling, not what passes.
conformance::suite!(
    threaded_pool,
    start = |config| server_threaded::start(config, Mode::Pool { workers: 64 }),
    binary = env!("CARGO_BIN_EXE_server-threaded"),
    args = &["--pool", "64"],
);
