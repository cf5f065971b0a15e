//! One connection as one tokio task, driving an [`EchoProtocol`] by its contract (see
//! `echo_core::protocol`).
//!
//! Each turn of the loop does what can be done at once (a timeout already due, a write that
//! does not block), then waits in one `select!` for whichever comes first: the socket
//! readable (when the protocol wants input), writable (when output is pending), the
//! protocol's deadline as a tokio timer, or the server's stop signal. `block` and `spin`
//! delays are spent right on the runtime thread, on purpose.

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_core::{DelayKind, EchoProtocol, Protocol, Timeout};
use server_common::{ConnectionGuard, spend_on_thread};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::watch;

use crate::Shared;

/// Bytes read per `try_read`. The buffer lives on the runtime thread's stack during the read
/// only, never in the task, so an idle connection costs no buffer at all.
const READ_CHUNK_BYTES: usize = 4096;

/// The connection task: serves `stream` until it closes, then records its end and tells the
/// accept task a slot is free.
///
/// Everything this future holds lives as long as the connection, so it holds little: no
/// peer address (logged once at the start), no buffer, one readiness future at a time.
pub(crate) async fn serve(
    stream: TcpStream,
    id: u64,
    mut guard: ConnectionGuard,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut protocol = EchoProtocol::new(&shared.config.protocol, id);
    let outcome = drive(&stream, &mut protocol, &mut guard, &mut stop).await;
    protocol.connection_lost();
    guard.record(protocol.stats());
    match outcome {
        Ok(()) => tracing::info!(
            id,
            requests = protocol.stats().requests,
            "connection closed"
        ),
        Err(err) => {
            guard.failed();
            tracing::info!(id, "connection lost: {err}");
        }
    }
    drop(stream);
    drop(guard);
    shared.closed.notify_one();
}

/// Where the connection stands besides the protocol's own state.
#[derive(Debug, Default)]
struct Progress {
    /// The client half-closed: never read again.
    eof: bool,
    /// `Protocol::shutdown` has been called.
    stopping: bool,
}

async fn drive(
    stream: &TcpStream,
    protocol: &mut EchoProtocol,
    guard: &mut ConnectionGuard,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    protocol.connection_made(Instant::now());
    let mut progress = Progress::default();
    loop {
        guard.record(protocol.stats());
        if !progress.stopping && *stop.borrow() {
            progress.stopping = true;
            protocol.shutdown(Instant::now());
        }
        if protocol.is_closed() {
            return Ok(());
        }
        let timeout = protocol.next_timeout();
        let now = Instant::now();
        if timeout.is_some_and(|t| t.at <= now) {
            protocol.timeout(now);
        } else if !protocol.output().is_empty() && try_write(stream, protocol)? {
            // Wrote something; look again.
        } else if let Some(t) = timeout.filter(|t| t.kind != DelayKind::Wait) {
            spend_on_thread(t);
            protocol.timeout(Instant::now());
        } else {
            wait(stream, protocol, timeout, stop, &mut progress).await?;
        }
    }
}

/// Writes what the socket takes without waiting; returns whether it took anything.
fn try_write(stream: &TcpStream, protocol: &mut EchoProtocol) -> io::Result<bool> {
    match stream.try_write(protocol.output()) {
        Ok(n) => {
            protocol.output_written(n, Instant::now());
            Ok(true)
        }
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => Ok(false),
        Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(true),
        Err(err) => Err(err),
    }
}

/// Waits for the first of: input (if wanted), room to write (if output is pending), the
/// protocol's deadline, the stop signal; and hands it to the protocol.
async fn wait(
    stream: &TcpStream,
    protocol: &mut EchoProtocol,
    timeout: Option<Timeout>,
    stop: &mut watch::Receiver<bool>,
    progress: &mut Progress,
) -> io::Result<()> {
    let wants_read = protocol.wants_read() && !progress.eof;
    let wants_write = !protocol.output().is_empty();
    if !wants_read && !wants_write && timeout.is_none() && progress.stopping {
        return Err(io::Error::other(
            "protocol is stuck: nothing to read, write or wait for",
        ));
    }
    let deadline = timeout.map_or_else(far_future, |t| t.at);
    // One readiness future for both directions: it is part of every idle connection's task.
    let interest = match (wants_read, wants_write) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    };
    tokio::select! {
        ready = stream.ready(interest.unwrap_or(Interest::READABLE)), if interest.is_some() => {
            // Writing is retried by the caller's loop; reading happens here.
            if wants_read && ready?.is_readable() {
                progress.eof = read_some(stream, protocol)?;
            }
        }
        () = tokio::time::sleep_until(deadline.into()), if timeout.is_some() => {
            protocol.timeout(Instant::now());
        }
        // Also fires if the server's handle is gone: stop then too.
        _ = stop.changed(), if !progress.stopping => {
            progress.stopping = true;
            protocol.shutdown(Instant::now());
        }
    }
    Ok(())
}

/// Reads one chunk (readiness can be spurious: then nothing happens). Returns whether the
/// client half-closed.
fn read_some(stream: &TcpStream, protocol: &mut EchoProtocol) -> io::Result<bool> {
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    match stream.try_read(&mut chunk) {
        Ok(0) => {
            protocol.eof_received(Instant::now());
            Ok(true)
        }
        Ok(n) => {
            protocol.data_received(&chunk[..n], Instant::now());
            Ok(false)
        }
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) =>
        {
            Ok(false)
        }
        Err(err) => Err(err),
    }
}

/// A deadline for a disabled timer branch (never polled).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
