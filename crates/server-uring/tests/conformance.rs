//! The conformance suite every server passes, run against the io_uring server with one event loop
//! (asyncio's model), with two loops sharing the port, and with one loop offloading `block` and
//! `spin` delays to a pool (`--offload`, which also runs the offload cases): one variant a
//! line, named by its flags.

conformance::suite!(
    one_loop,
    variant = server_uring::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-uring"),
    args = &[],
);

conformance::suite!(
    two_loops,
    variant = server_uring::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-uring"),
    args = &["--loops", "2"],
);

// One loop with `block` and `spin` delays on a pool of 4 threads (the `uring-offload` row uses
// more): the single loop is what the pool frees, so the offload cases run on it.
conformance::suite!(
    one_loop_offload,
    variant = server_uring::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-uring"),
    args = &["--offload", "4"],
);

conformance::offload_suite!(
    one_loop_offload_cases,
    variant = server_uring::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-uring"),
    args = &["--offload", "4"],
);
