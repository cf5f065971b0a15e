//! One connection on one thread: blocking sockets doing what the shared
//! [`server_common::Driver`] says, step by step.
//!
//! A thread can block in one call at a time, so the protocol's single timer becomes the
//! timeout of whatever call the thread makes next: a `read` (or `write`) that times out at the
//! protocol's deadline is how the thread "waits for the timer while reading". The delay kinds
//! map to threads directly: `wait` is a read with a timeout (or a sleep when the protocol does
//! not want input), `block` a plain sleep, `spin` a busy loop.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use server_common::{Driver, Step, Wait};

use crate::{Accepted, Shared};

/// Bytes read per `read` call. On the thread's stack, so small threads stay small; the
/// protocol frames any chunking the same way.
const READ_CHUNK_BYTES: usize = 4096;

/// Serves `accepted` until it closes, then records its end in the server's stats.
pub(crate) fn serve(accepted: Accepted, shared: &Shared) {
    let Accepted {
        registration,
        mut stream,
        guard,
        id,
        peer,
    } = accepted;
    let mut driver = Driver::new(&shared.config, guard, id, peer, Instant::now());
    let outcome = drive(&mut stream, &mut driver, shared);
    driver.finish(outcome.as_ref().err());
    // Unregister before the descriptor is closed: see `registry`.
    drop(registration);
    drop(stream);
}

/// The connection's loop: one blocking call at a time, the one the driver asks for.
fn drive(stream: &mut TcpStream, driver: &mut Driver, shared: &Shared) -> io::Result<()> {
    loop {
        let now = Instant::now();
        // At a stop every socket has been shut for reading (see `drain`), so a read returns
        // what the client had already sent and then end of stream, without blocking. Telling
        // the protocol to stop only once it reads no more means a request that was still in
        // the socket (a connection taken from the pool's queue after the stop) is answered,
        // not dropped unread with a reset.
        if let Some(stopped_at) = shared.stopped_at().filter(|_| !driver.wants_read()) {
            driver.shutdown_since(now, stopped_at);
        }
        match driver.next_step(now)? {
            Step::Close => return Ok(()),
            Step::FireTimeout => driver.timeout(now),
            Step::Write { until } => write_output(stream, driver, until)?,
            Step::Spend(timeout) => driver.spend(timeout),
            Step::Wait(Wait {
                read: true, until, ..
            }) => read_input(stream, driver, until)?,
            // A blocking write never reports the socket full, so this waits for the deadline.
            Step::Wait(Wait { until, .. }) => {
                let left = until.map_or(Duration::ZERO, |at| at.saturating_duration_since(now));
                std::thread::sleep(left);
            }
        }
    }
}

/// Writes what it can of the output, giving up at the protocol's deadline so that a client
/// that does not read cannot hold the thread past it (the next step then fires the timeout).
fn write_output(
    stream: &mut TcpStream,
    driver: &mut Driver,
    until: Option<Instant>,
) -> io::Result<()> {
    stream.set_write_timeout(time_left(until))?;
    match stream.write(driver.output()) {
        Ok(n) => driver.written(n, Instant::now()),
        Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => {}
        Err(err) => return Err(err),
    }
    Ok(())
}

/// Reads one chunk, or times out at the protocol's deadline.
fn read_input(
    stream: &mut TcpStream,
    driver: &mut Driver,
    until: Option<Instant>,
) -> io::Result<()> {
    stream.set_read_timeout(time_left(until))?;
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    match stream.read(&mut chunk) {
        Ok(0) => driver.eof_received(Instant::now()),
        Ok(n) => driver.data_received(&chunk[..n], Instant::now()),
        Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => {}
        Err(err) => return Err(err),
    }
    Ok(())
}

/// A socket timeout reaching the deadline; at least 1 ms, since a zero timeout means "none"
/// to the OS.
fn time_left(until: Option<Instant>) -> Option<Duration> {
    until.map(|at| {
        at.saturating_duration_since(Instant::now())
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
