//! The accept task: accepts connections and spawns a task for each into a `JoinSet`, stops
//! accepting at `max_connections` or when descriptors run out, and at shutdown waits for the
//! connection tasks (bounded by the shutdown timeout).

use std::sync::Arc;

use server_common::{AcceptBackoff, is_fd_exhaustion, set_nodelay};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::{Shared, connection};

/// Accepts until `stop` turns true (or its sender goes away), then drains.
pub(crate) async fn run(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut stop: watch::Receiver<bool>,
) {
    let mut tasks = JoinSet::new();
    let mut backoff = AcceptBackoff::new();
    let mut saturated = false;
    let mut next_id = 0u64;
    loop {
        let full = tasks.len() >= shared.config.max_connections;
        if full {
            shared.stats.accept_backoff();
        }
        tokio::select! {
            _ = stop.changed() => break,
            // Reaps finished tasks; when full, this is also the wait for a free slot.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept(), if !full => match accepted {
                Ok((stream, peer)) => {
                    if std::mem::take(&mut saturated) {
                        tracing::warn!("accepting again");
                    }
                    backoff.reset();
                    if let Err(err) = set_nodelay(&stream) {
                        tracing::debug!(%peer, "cannot set TCP_NODELAY: {err}");
                    }
                    let guard = shared.stats.open();
                    let task = connection::serve(stream, peer, next_id, guard, Arc::clone(&shared), stop.clone());
                    tasks.spawn(task);
                    next_id += 1;
                }
                Err(err) => {
                    shared.stats.accept_error();
                    shared.stats.accept_backoff();
                    // One warning per episode: a saturated server fails ten times a second.
                    if !std::mem::replace(&mut saturated, true) {
                        let cause = if is_fd_exhaustion(&err) { "out of descriptors" } else { "error" };
                        tracing::warn!("accept failed ({cause}): {err}; backing off until it succeeds");
                    }
                    tokio::time::sleep(backoff.next_pause()).await;
                }
            },
        }
    }
    drop(listener);
    drain(tasks, &shared).await;
}

/// Waits for the connection tasks to answer what they have and close; after the shutdown
/// timeout, aborts the rest (dropping a task closes its socket).
async fn drain(mut tasks: JoinSet<()>, shared: &Shared) {
    let all_closed = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(shared.config.shutdown_timeout, all_closed)
        .await
        .is_err()
    {
        tracing::warn!(
            open = tasks.len(),
            "shutdown timeout passed: closing connections still busy"
        );
        tasks.shutdown().await;
    }
}
