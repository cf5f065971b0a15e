//! The accept loop: one thread accepting connections and handing each to a new thread or to
//! the pool, backing off (never spinning) when descriptors or `max_connections` run out.

use std::io;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::thread::JoinHandle;

use server_common::{AcceptBackoff, set_nodelay};

use crate::pool::Pool;
use crate::{Accepted, Shared, THREAD_STACK_BYTES, connection};

/// Starts the accept thread. It runs until the stop flag is set and `accept` is woken.
pub(crate) fn spawn(
    listener: Arc<TcpListener>,
    shared: Arc<Shared>,
    pool: Option<Pool>,
) -> io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name("echo-acceptor".to_owned())
        .spawn(move || accept_loop(&listener, &shared, pool.as_ref()))
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>, pool: Option<&Pool>) {
    let mut backoff = AcceptBackoff::new();
    let mut next_id = 0u64;
    while !shared.is_stopping() {
        let open = shared.stats.open_connections();
        if open >= u64::try_from(shared.config.max_connections).unwrap_or(u64::MAX) {
            pause(shared, &mut backoff);
            continue;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff.succeeded();
                if let Err(err) = set_nodelay(&stream) {
                    tracing::debug!(%peer, "cannot set TCP_NODELAY: {err}");
                }
                let accepted = Accepted {
                    registration: shared.registry.register(stream.as_raw_fd()),
                    stream,
                    guard: shared.stats.open(),
                    id: next_id,
                    peer,
                };
                next_id += 1;
                dispatch(accepted, shared, pool, &mut backoff);
            }
            Err(_) if shared.is_stopping() => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                shared.stats.accept_error();
                backoff.failed(&err);
                pause(shared, &mut backoff);
            }
        }
    }
}

/// Stops accepting for a while; pending connections wait in the kernel's backlog.
fn pause(shared: &Shared, backoff: &mut AcceptBackoff) {
    shared.stats.accept_backoff();
    std::thread::sleep(backoff.next_pause());
}

fn dispatch(
    accepted: Accepted,
    shared: &Arc<Shared>,
    pool: Option<&Pool>,
    backoff: &mut AcceptBackoff,
) {
    if let Some(pool) = pool {
        pool.push(accepted);
        return;
    }
    let thread_shared = Arc::clone(shared);
    let spawned = std::thread::Builder::new()
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || connection::serve(accepted, &thread_shared));
    if let Err(err) = spawned {
        // The connection was dropped with the closure, and closed.
        shared.stats.accept_error();
        tracing::warn!("cannot start a connection thread: {err}; backing off");
        pause(shared, backoff);
    }
}
