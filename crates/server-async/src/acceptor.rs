//! The accept task: accepts connections and spawns a task for each, by the shared accept
//! policy ([`server_common::AcceptBackoff`]: pauses are tokio sleeps, the wait at
//! `max_connections` ends when a connection task signals its end), and at shutdown waits for
//! the connection tasks (bounded by the shutdown timeout).
//!
//! Connection tasks are not kept in a `JoinSet`: that would cost every connection another
//! allocation. Open connections are counted in the stats instead, and each task signals
//! `Shared::closed` as it ends. Tasks still running after the shutdown timeout are dropped
//! with the runtime, which closes their sockets.

use std::sync::Arc;
use std::time::Instant;

use server_common::{AcceptBackoff, Driver, set_nodelay};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{Shared, connection};

/// Accepts until `stop` turns true (or its sender goes away), then drains.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = AcceptBackoff::new(Arc::clone(&shared.stats), shared.config.max_connections);
    let mut next_id = 0u64;
    loop {
        let room = backoff.has_room();
        tokio::select! {
            _ = stop.changed() => break,
            // When full, the wait for a connection to close.
            () = shared.closed.notified(), if !room => {}
            accepted = listener.accept(), if room => match accepted {
                Ok((stream, peer)) => {
                    backoff.accepted();
                    if let Err(err) = set_nodelay(&stream) {
                        tracing::debug!(%peer, "cannot set TCP_NODELAY: {err}");
                    }
                    let guard = shared.stats.open();
                    let driver = Driver::new(&shared.config, guard, next_id, peer, Instant::now());
                    let task = connection::serve(stream, driver, Arc::clone(&shared), stop.clone());
                    tokio::spawn(task);
                    next_id += 1;
                }
                Err(err) => {
                    if let Some(pause) = backoff.failed(&err) {
                        tokio::time::sleep(pause).await;
                    }
                }
            },
        }
    }
    drop(listener);
    drain(&shared).await;
}

/// Waits for the connection tasks to answer what they have and close, at most the shutdown
/// timeout.
async fn drain(shared: &Shared) {
    let all_closed = async {
        // `notify_one` keeps a permit when nobody waits, so a close between the check and
        // the wait is not missed.
        while shared.stats.open_connections() > 0 {
            shared.closed.notified().await;
        }
    };
    if tokio::time::timeout(shared.config.shutdown_timeout, all_closed)
        .await
        .is_err()
    {
        tracing::warn!(
            open = shared.stats.open_connections(),
            "shutdown timeout passed: closing connections still busy"
        );
    }
}
