//! Spending a `block` or `spin` delay (or such a phase of a request recipe) on the calling
//! thread, the same way in every server.
//!
//! A `wait` delay is each server's own business (a socket timeout, a tokio timer, a timer
//! queue entry). `block` and `spin` are the same everywhere: they hold the thread that runs
//! the connection, an event loop's thread included, which is the point of them.

use std::time::Instant;

use echo_core::{DelayKind, Timeout};

/// Holds the calling thread until `timeout.at`: busy-looping for [`DelayKind::Spin`],
/// sleeping otherwise. Returns at once when the deadline has passed.
pub fn spend_on_thread(timeout: Timeout) {
    match timeout.kind {
        DelayKind::Spin => {
            while Instant::now() < timeout.at {
                std::hint::spin_loop();
            }
        }
        DelayKind::Wait | DelayKind::Block => {
            std::thread::sleep(timeout.at.saturating_duration_since(Instant::now()));
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn spinning_and_blocking_both_last_until_the_deadline() {
        for kind in [DelayKind::Spin, DelayKind::Block] {
            let at = Instant::now() + Duration::from_millis(5);
            spend_on_thread(Timeout { at, kind });
            assert!(Instant::now() >= at, "{kind} returned before its deadline");
        }
    }
}
