//! What is particular to the io_uring server, beyond the conformance suite every server
//! passes: several loops (each with its ring) sharing one port, what a `block` delay does to a
//! single loop, a shutdown that finds bytes in the kernel (conformance's `loops` cases, shared
//! with server-mio), and many persistent connections each holding a receive in the ring while
//! the buffer ring has far fewer buffers.
//!
//! These tests need io_uring; where it is unavailable they fail with the reason
//! (`io_uring unavailable: ...`), never pass without running.

use std::io;
use std::time::Duration;

use conformance::client::Client;
use conformance::loops::config;
use echo_core::DelayKind;
use server_common::Server;

conformance::loop_suite!(start = server_uring::start);

#[test]
fn many_waiting_connections_share_the_buffer_ring_and_every_one_is_answered_twice() -> io::Result<()>
{
    // More connections than the ring has buffers: each holds a receive in the ring, and
    // buffers are taken only when bytes arrive.
    let n = usize::from(server_uring::buffers::COUNT) + 500;
    let server = Box::new(server_uring::start(
        config(Duration::ZERO, DelayKind::Wait),
        1,
    )?);
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        clients.push(Client::connect(server.local_addr())?);
    }
    for round in 0..2 {
        for (i, client) in clients.iter_mut().enumerate() {
            client.send(format!("c{i} r{round}\n"))?;
        }
        for (i, client) in clients.iter_mut().enumerate() {
            assert_eq!(client.read_line()?, format!("C{i} R{round}"));
        }
    }
    drop(clients);
    let summary = server.shutdown()?;
    assert_eq!(summary.requests, 2 * n as u64);
    Ok(())
}
