//! The accept task: accepts connections and spawns a task for each, stops accepting at
//! `max_connections` or when descriptors run out, and at shutdown waits for the connection
//! tasks (bounded by the shutdown timeout).
//!
//! Connection tasks are not kept in a `JoinSet`: that would cost every connection another
//! allocation. Open connections are counted in the stats instead, and each task signals
//! `Shared::closed` as it ends. Tasks still running after the shutdown timeout are dropped
//! with the runtime, which closes their sockets.

use std::sync::Arc;

use server_common::{AcceptBackoff, set_nodelay};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::{Shared, connection};

/// Accepts until `stop` turns true (or its sender goes away), then drains.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut backoff = AcceptBackoff::new();
    let mut next_id = 0u64;
    let max = u64::try_from(shared.config.max_connections).unwrap_or(u64::MAX);
    loop {
        let full = shared.stats.open_connections() >= max;
        if full {
            shared.stats.accept_backoff();
        }
        tokio::select! {
            _ = stop.changed() => break,
            // When full, the wait for a free slot.
            () = shared.closed.notified(), if full => {}
            accepted = listener.accept(), if !full => match accepted {
                Ok((stream, peer)) => {
                    backoff.succeeded();
                    if let Err(err) = set_nodelay(&stream) {
                        tracing::debug!(%peer, "cannot set TCP_NODELAY: {err}");
                    }
                    tracing::info!(%peer, id = next_id, "connection made");
                    let guard = shared.stats.open();
                    let task = connection::serve(stream, next_id, guard, Arc::clone(&shared), stop.clone());
                    tokio::spawn(task);
                    next_id += 1;
                }
                Err(err) => {
                    shared.stats.accept_error();
                    shared.stats.accept_backoff();
                    backoff.failed(&err);
                    tokio::time::sleep(backoff.next_pause()).await;
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
