//! The accept loop: one thread accepting connections and handing each to a new thread or to
//! the pool, by the shared accept policy ([`server_common::AcceptBackoff`]): pauses are sleeps.

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
    let mut backoff = AcceptBackoff::new(Arc::clone(&shared.stats), shared.config.max_connections);
    let mut next_id = 0u64;
    while !shared.is_stopping() {
        if !backoff.has_room() {
            // Connection threads do not report their end to this one: look again soon.
            std::thread::sleep(AcceptBackoff::FULL_RECHECK);
            continue;
        }
        match listener.accept() {
            Ok((stream, peer)) => {
                backoff.accepted();
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
            Err(err) => {
                if let Some(pause) = backoff.failed(&err) {
                    std::thread::sleep(pause);
                }
            }
        }
    }
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
        std::thread::sleep(backoff.pause());
    }
}
