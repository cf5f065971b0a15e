//! The conformance suite every server passes, run against the mio server with one event loop
//! (asyncio's model) and with two loops sharing the port: one variant a line, named by its
//! flags.

conformance::suite!(
    one_loop,
    variant = server_mio::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-mio"),
    args = &[],
);

conformance::suite!(
    two_loops,
    variant = server_mio::VariantArgs,
    binary = env!("CARGO_BIN_EXE_server-mio"),
    args = &["--loops", "2"],
);
