//! One connection on one thread: blocking sockets driving an [`EchoProtocol`] by its
//! contract (see `echo_core::protocol`).
//!
//! A thread can block in one call at a time, so the protocol's single timer becomes the
//! timeout of whatever call the thread makes next: a `read` (or `write`) that times out at the
//! protocol's deadline is how the thread "waits for the timer while reading". The delay kinds
//! map to threads directly: `wait` is a read with a timeout (or a sleep when the protocol does
//! not want input), `block` a plain sleep, `spin` a busy loop.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use echo_core::{DelayKind, EchoProtocol, Protocol, Timeout};
use server_common::{ConnectionGuard, spend_on_thread};

use crate::{Accepted, Shared};

/// Bytes read per `read` call. On the thread's stack, so small threads stay small; the
/// protocol frames any chunking the same way.
const READ_CHUNK_BYTES: usize = 4096;

/// Serves `accepted` until it closes, then records its end in the server's stats.
pub(crate) fn serve(accepted: Accepted, shared: &Shared) {
    let Accepted {
        registration,
        mut stream,
        mut guard,
        id,
        peer,
    } = accepted;
    tracing::info!(%peer, id, "connection made");
    let mut protocol = EchoProtocol::new(&shared.config.protocol, id);
    let outcome = drive(&mut stream, &mut protocol, &mut guard, shared);
    protocol.connection_lost();
    guard.record(protocol.stats());
    match outcome {
        Ok(()) => {
            tracing::info!(%peer, id, requests = protocol.stats().requests, "connection closed")
        }
        Err(err) => {
            guard.failed();
            tracing::info!(%peer, id, "connection lost: {err}");
        }
    }
    // Unregister before the descriptor is closed: see `registry`.
    drop(registration);
    drop(stream);
}

/// The connection's loop: one blocking step at a time, chosen from what the protocol wants.
fn drive(
    stream: &mut TcpStream,
    protocol: &mut EchoProtocol,
    guard: &mut ConnectionGuard,
    shared: &Shared,
) -> io::Result<()> {
    protocol.connection_made(Instant::now());
    let mut eof = false;
    let mut told_to_stop = false;
    loop {
        guard.record(protocol.stats());
        if !told_to_stop && shared.is_stopping() {
            told_to_stop = true;
            protocol.shutdown(Instant::now());
        }
        if protocol.is_closed() {
            return Ok(());
        }
        let timeout = protocol.next_timeout();
        let now = Instant::now();
        if timeout.is_some_and(|t| t.at <= now) {
            protocol.timeout(now);
        } else if !protocol.output().is_empty() {
            write_output(stream, protocol, timeout)?;
        } else if let Some(t) = timeout.filter(|t| t.kind != DelayKind::Wait) {
            spend_on_thread(t);
            protocol.timeout(Instant::now());
        } else if protocol.wants_read() && !eof {
            eof = read_input(stream, protocol, timeout)?;
        } else if let Some(t) = timeout {
            std::thread::sleep(t.at.saturating_duration_since(now));
            protocol.timeout(Instant::now());
        } else {
            return Err(io::Error::other(
                "protocol is stuck: nothing to read, write or wait for",
            ));
        }
    }
}

/// Writes what it can of the output, giving up at the protocol's deadline so that a client
/// that does not read cannot hold the thread past it.
fn write_output(
    stream: &mut TcpStream,
    protocol: &mut EchoProtocol,
    timeout: Option<Timeout>,
) -> io::Result<()> {
    stream.set_write_timeout(time_left(timeout))?;
    match stream.write(protocol.output()) {
        Ok(n) => protocol.output_written(n, Instant::now()),
        Err(err) if is_timeout(&err) => protocol.timeout(Instant::now()),
        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
        Err(err) => return Err(err),
    }
    Ok(())
}

/// Reads one chunk, or times out at the protocol's deadline. Returns whether the client
/// half-closed.
fn read_input(
    stream: &mut TcpStream,
    protocol: &mut EchoProtocol,
    timeout: Option<Timeout>,
) -> io::Result<bool> {
    stream.set_read_timeout(time_left(timeout))?;
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    match stream.read(&mut chunk) {
        Ok(0) => {
            protocol.eof_received(Instant::now());
            return Ok(true);
        }
        Ok(n) => protocol.data_received(&chunk[..n], Instant::now()),
        Err(err) if is_timeout(&err) => protocol.timeout(Instant::now()),
        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
        Err(err) => return Err(err),
    }
    Ok(false)
}

/// A socket timeout reaching the deadline; at least 1 ms, since a zero timeout means "none"
/// to the OS.
fn time_left(timeout: Option<Timeout>) -> Option<Duration> {
    timeout.map(|t| {
        t.at.saturating_duration_since(Instant::now())
            .max(Duration::from_millis(1))
    })
}

/// A socket timeout shows up as `WouldBlock` on Unix and `TimedOut` elsewhere.
fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
