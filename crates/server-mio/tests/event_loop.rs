//! What is particular to the mio server, beyond the conformance suite every server passes:
//! several loops sharing one port, what a `block` delay does to a single event loop, and a
//! shutdown that finds a request in the kernel. The cases are conformance's `loops`, shared
//! with server-uring.

conformance::loop_suite!(start = server_mio::start);
