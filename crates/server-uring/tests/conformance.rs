//! The conformance suite every server passes, run against the io_uring server with one event loop
//! (asyncio's model) and with two loops sharing the port: one variant a line, named by its
//! flags.

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
