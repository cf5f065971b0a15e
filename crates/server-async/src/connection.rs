//! One connection as one tokio task, doing what the shared [`server_common::Driver`] says.
//!
//! Each step that can be done at once is (a timeout already due, a write that does not
//! block, a `block` or `spin` delay spent right on the runtime thread, on purpose, unless
//! `--offload N` sends it to the blocking pool: see [`spend_offloaded`]); a
//! [`Step::Wait`] becomes one `select!` over whichever comes first: the socket readable or
//! writable (one readiness future for both), the protocol's deadline as a tokio timer, or the
//! server's stop signal.

use std::io::{self, Read};
use std::sync::Arc;
use std::time::{Duration, Instant};

use echo_core::Timeout;
use server_common::{Driver, Step, Wait};
use tokio::io::Interest;
use tokio::net::TcpStream;
use tokio::sync::{Semaphore, watch};

use crate::Shared;

/// Bytes read per `try_read`. The buffer lives on the runtime thread's stack during the read
/// only, never in the task, so an idle connection costs no buffer at all.
const READ_CHUNK_BYTES: usize = 4096;

/// The connection task: serves `stream` until it closes, then records its end and tells the
/// accept task a slot is free.
///
/// Everything this future holds lives as long as the connection, so it holds little: no
/// peer address (the driver, made by the accept task, logged it), no buffer, one readiness
/// future at a time.
pub(crate) async fn serve(
    stream: TcpStream,
    mut driver: Driver,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let outcome = drive(&stream, &mut driver, &shared, &mut stop).await;
    drop(stream);
    driver.finish(outcome.as_ref().err());
    shared.closed.notify_one();
}

async fn drive(
    stream: &TcpStream,
    driver: &mut Driver,
    shared: &Shared,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    loop {
        let now = Instant::now();
        if !driver.is_stopping() && *stop.borrow() {
            stop_after_reading_what_is_held(stream, driver)?;
        }
        match driver.next_step(now)? {
            Step::Close => return Ok(()),
            Step::FireTimeout => driver.timeout(now),
            Step::Write { .. } => try_write(stream, driver)?,
            Step::Spend(timeout) => match &shared.offload {
                None => driver.spend(timeout),
                // Boxed: the permit and join futures would otherwise grow every connection's
                // task, offloading or not, for the whole life of the connection.
                Some(permits) => {
                    Box::pin(spend_offloaded(permits, timeout, stream, driver, stop)).await?;
                }
            },
            Step::Wait(wait) => self::wait(stream, driver, wait, stop).await?,
        }
    }
}

/// Spends a `block` or `spin` delay on tokio's blocking pool, at most `permits` of them at a
/// time, while this task waits and the runtime thread serves every other task.
///
/// `spawn_blocking` alone would start a thread per delay up to tokio's cap of 512; the
/// semaphore makes the pool N threads, as `--offload N` says, and its waiters queue in the
/// order they came (tokio's semaphore is fair): a delay is never dropped, it waits for a
/// permit, holding no thread meanwhile. Bounding the runtime's blocking threads instead
/// (`max_blocking_threads`) would do the same for this server, but hides the queue inside
/// tokio and would bound any other blocking work of the runtime too.
///
/// Meanwhile this task still hears the server's stop, and a stop's give-up deadline
/// ([`Driver::next_timeout`] while the spend is offloaded) ends the wait: the request is told
/// `ERR server shutting down` and the spend is abandoned (its thread finishes on its own).
async fn spend_offloaded(
    permits: &Semaphore,
    timeout: Timeout,
    stream: &TcpStream,
    driver: &mut Driver,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    // Its length is fixed before the wait for a permit, which must not shorten it.
    let work = server_common::Work::left_of(timeout, Instant::now());
    driver.offload();
    let spend = async {
        let _permit = permits.acquire().await.map_err(io::Error::other)?;
        tokio::task::spawn_blocking(move || work.spend())
            .await
            .map_err(io::Error::other)
    };
    tokio::pin!(spend);
    while driver.is_offloaded() {
        let give_up = driver.next_timeout().map(|t| t.at);
        let stopping = driver.is_stopping();
        tokio::select! {
            done = &mut spend => {
                done?;
                driver.offloaded(Instant::now());
            }
            () = tokio::time::sleep_until(give_up.unwrap_or_else(far_future).into()), if give_up.is_some() => {
                driver.timeout(Instant::now());
            }
            _ = stop.changed(), if !stopping => stop_after_reading_what_is_held(stream, driver)?,
        }
    }
    Ok(())
}

/// Writes what the socket takes without waiting; a full socket is reported to the driver.
fn try_write(stream: &TcpStream, driver: &mut Driver) -> io::Result<()> {
    match stream.try_write(driver.output()) {
        Ok(n) => driver.written(n, Instant::now()),
        Err(err) if err.kind() == io::ErrorKind::WouldBlock => driver.write_blocked(),
        Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
        Err(err) => return Err(err),
    }
    Ok(())
}

/// Waits for the first of: input, room to write, the deadline (as `wait` names them), the
/// stop signal; and hands it to the driver.
async fn wait(
    stream: &TcpStream,
    driver: &mut Driver,
    wait: Wait,
    stop: &mut watch::Receiver<bool>,
) -> io::Result<()> {
    let deadline = wait.until.unwrap_or_else(far_future);
    // One readiness future for both directions: it is part of every idle connection's task.
    let interest = match (wait.read, wait.write) {
        (true, true) => Some(Interest::READABLE | Interest::WRITABLE),
        (true, false) => Some(Interest::READABLE),
        (false, true) => Some(Interest::WRITABLE),
        (false, false) => None,
    };
    let stopping = driver.is_stopping();
    tokio::select! {
        ready = stream.ready(interest.unwrap_or(Interest::READABLE)), if interest.is_some() => {
            let ready = ready?;
            if ready.is_writable() {
                driver.writable();
            }
            if wait.read && ready.is_readable() {
                read_some(stream, driver)?;
            }
        }
        () = tokio::time::sleep_until(deadline.into()), if wait.until.is_some() => {
            driver.timeout(Instant::now());
        }
        // Also fires if the server's handle is gone: stop then too.
        _ = stop.changed(), if !stopping => stop_after_reading_what_is_held(stream, driver)?,
    }
    Ok(())
}

/// The server is stopping: reads what the socket already holds, then tells the driver. A
/// request "already received" is one the machine received, not only one this task got round
/// to reading: a task accepted just before the stop may not have run yet (the mio and uring
/// loops read their sockets at shutdown for the same reason).
///
/// The reads go to the socket itself, not through `try_read`: tokio answers that from the
/// readiness it has seen, and a socket its reactor has not polled yet looks empty.
fn stop_after_reading_what_is_held(stream: &TcpStream, driver: &mut Driver) -> io::Result<()> {
    let socket = socket2::SockRef::from(stream);
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    while driver.wants_read() {
        // The socket is non-blocking (tokio's): an empty one answers `WouldBlock`.
        match (&*socket).read(&mut chunk) {
            Ok(0) => driver.eof_received(Instant::now()),
            Ok(n) => driver.data_received(&chunk[..n], Instant::now()),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
            Err(err) => return Err(err),
        }
    }
    driver.shutdown(Instant::now());
    Ok(())
}

/// Reads one chunk (readiness can be spurious: then nothing happens).
fn read_some(stream: &TcpStream, driver: &mut Driver) -> io::Result<()> {
    let mut chunk = [0u8; READ_CHUNK_BYTES];
    match stream.try_read(&mut chunk) {
        Ok(0) => driver.eof_received(Instant::now()),
        Ok(n) => driver.data_received(&chunk[..n], Instant::now()),
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
            ) => {}
        Err(err) => return Err(err),
    }
    Ok(())
}

/// A deadline for a disabled timer branch (never polled).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}
