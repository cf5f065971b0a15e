//! Proves the crate's central claim: the completion loop is hand-written on io-uring, with no
//! async runtime underneath (conformance's `deps` asks cargo for the normal dependency tree).

#[test]
fn the_server_depends_on_io_uring_and_on_no_async_runtime() {
    conformance::deps::assert_no_async_runtime("server-uring", "io-uring");
}
