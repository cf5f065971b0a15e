//! The conformance suite every server passes, run against the mio server with one event loop
//! (asyncio's model) and with two loops sharing the port.

conformance::suite!(
    one_loop,
    start = |config| server_mio::start(config, 1),
    binary = env!("CARGO_BIN_EXE_server-mio"),
    args = &[],
);

conformance::suite!(
    two_loops,
    start = |config| server_mio::start(config, 2),
    binary = env!("CARGO_BIN_EXE_server-mio"),
    args = &["--loops", "2"],
);
