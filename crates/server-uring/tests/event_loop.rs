//! What is particular to the io_uring server, beyond the conformance suite every server
//! passes: several loops (each with its ring) sharing one port, what a `block` delay does to a
//! single loop, a shutdown that finds bytes in the kernel, and 10000 persistent connections
//! each holding a receive in the ring while the buffer ring has far fewer buffers.
//!
//! These tests need io_uring; where it is unavailable they fail with the reason
//! (`io_uring unavailable: ...`), never pass without running.

use std::io::{self, BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use echo_core::{DelayKind, DelayModel};
use server_common::{Server, ServerConfig};

const GENEROUS: Duration = Duration::from_secs(20);

fn config(delay: Duration, kind: DelayKind) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.protocol.delay = DelayModel::Fixed(delay);
    config.protocol.delay_kind = kind;
    config
}

fn connect(server: &dyn Server) -> io::Result<TcpStream> {
    let stream = TcpStream::connect(server.local_addr())?;
    stream.set_read_timeout(Some(GENEROUS))?;
    Ok(stream)
}

fn read_line(stream: &TcpStream) -> io::Result<String> {
    let mut line = String::new();
    BufReader::new(stream).read_line(&mut line)?;
    Ok(line)
}

#[test]
fn two_loops_share_one_port_and_answer_every_client() -> io::Result<()> {
    let server = Box::new(server_uring::start(
        config(Duration::ZERO, DelayKind::Wait),
        2,
    )?);
    assert_eq!(server.n_loops(), 2);
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut stream = connect(&*server)?;
        stream.write_all(format!("client {i}\n").as_bytes())?;
        clients.push(stream);
    }
    for (i, stream) in clients.iter().enumerate() {
        assert_eq!(read_line(stream)?, format!("CLIENT {i}\n"));
    }
    drop(clients);
    let summary = server.shutdown()?;
    assert_eq!((summary.connections_accepted, summary.requests), (40, 40));
    Ok(())
}

#[test]
fn a_block_delay_makes_one_loop_serve_its_clients_one_after_the_other() -> io::Result<()> {
    let delay = Duration::from_millis(60);
    let server = Box::new(server_uring::start(config(delay, DelayKind::Block), 1)?);
    let (mut first, mut second) = (connect(&*server)?, connect(&*server)?);
    let sent = Instant::now();
    first.write_all(b"one\n")?;
    second.write_all(b"two\n")?;
    assert_eq!(read_line(&first)?, "ONE\n");
    assert_eq!(read_line(&second)?, "TWO\n");
    // With `wait` both replies would come after one delay; a blocked loop serves the second
    // request only after the first one's delay is over, whichever it took first.
    assert!(
        sent.elapsed() >= delay * 2,
        "a blocked loop served two requests at once"
    );
    server.shutdown()?;
    Ok(())
}

#[test]
fn shutdown_answers_a_request_the_kernel_already_holds_accepted_or_not() -> io::Result<()> {
    let delay = Duration::from_millis(200);
    let server = Box::new(server_uring::start(config(delay, DelayKind::Wait), 1)?);
    let mut client = connect(&*server)?;
    // Once `connect` and `write_all` return, the connection sits in the listener's backlog
    // (or is already accepted) and the request in its socket buffer: both count as received.
    client.write_all(b"pending\n")?;
    let reader = std::thread::spawn(move || read_line(&client));
    let summary = server.shutdown()?;
    let reply = reader
        .join()
        .map_err(|_| io::Error::other("reader panicked"))??;
    assert_eq!(reply, "PENDING\n");
    assert_eq!((summary.connections_accepted, summary.requests), (1, 1));
    Ok(())
}

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
        clients.push(connect(&*server)?);
    }
    for round in 0..2 {
        for (i, stream) in clients.iter_mut().enumerate() {
            stream.write_all(format!("c{i} r{round}\n").as_bytes())?;
        }
        for (i, stream) in clients.iter().enumerate() {
            assert_eq!(read_line(stream)?, format!("C{i} R{round}\n"));
        }
    }
    drop(clients);
    let summary = server.shutdown()?;
    assert_eq!(summary.requests, 2 * n as u64);
    Ok(())
}
