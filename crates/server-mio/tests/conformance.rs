//! The conformance suite every server passes, run against the mio server with one event loop
//! (asyncio's model) and with two loops sharing the port: one variant a line, named by its
//! flags.

conformance::suite!(
    one_loop,
    start = server_mio::start_from_flags,
    binary = env!("CARGO_BIN_EXE_server-mio"),
    args = &[],
);

conformance::suite!(
    two_loops,
    start = server_mio::start_from_flags,
    binary = env!("CARGO_BIN_EXE_server-mio"),
    args = &["--loops", "2"],
);
