//! Proves the crate's central claim: the event loop is hand-written on mio, with no async
//! runtime underneath (conformance's `deps` asks cargo for the normal dependency tree).

#[test]
fn the_server_depends_on_mio_and_on_no_async_runtime() {
    conformance::deps::assert_no_async_runtime("server-mio", "mio");
}
