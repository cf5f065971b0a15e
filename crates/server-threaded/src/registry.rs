//! The registry of open connection sockets, which lets a shutdown reach threads blocked in
//! `read` or `write` on them.
//!
//! A thread blocked in `read` only wakes for data, a timeout or a socket event. At shutdown
//! the server calls `shutdown(SHUT_RD)` on every registered socket: a blocked `read` returns
//! the data already queued and then end of stream, so the connection answers what it has and
//! closes. When the shutdown timeout passes, `shutdown(SHUT_RDWR)` also fails blocked writes.
//!
//! The registry holds raw descriptors, not duplicates (a `try_clone` per connection would
//! double the descriptors a server needs). That is sound because a [`Registration`] is dropped
//! before its socket is closed (see `Accepted` in `lib.rs`), and both the drop and the
//! shutdown calls hold the registry's lock: the registry never touches a descriptor number
//! after it has been closed and possibly reused.

use std::os::fd::RawFd;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use slab::Slab;

/// Raw descriptors of the sockets currently open, with a condition to wait until none is.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    fds: Mutex<Slab<RawFd>>,
    emptied: Condvar,
}

/// Which directions [`Registry::shutdown_all`] shuts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Direction {
    /// Wake readers: they see end of stream after the data already queued.
    Read,
    /// Also fail blocked writers.
    Both,
}

impl Registry {
    fn lock(&self) -> MutexGuard<'_, Slab<RawFd>> {
        // A panicking connection thread cannot leave the slab half-updated.
        self.fds.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers `fd` until the returned value is dropped; drop it before closing `fd`.
    pub(crate) fn register(self: &Arc<Self>, fd: RawFd) -> Registration {
        let key = self.lock().insert(fd);
        Registration {
            registry: Arc::clone(self),
            key,
        }
    }

    /// Shuts `direction` of every registered socket. Errors (a socket already reset) are
    /// ignored: the point is only to wake its thread.
    pub(crate) fn shutdown_all(&self, direction: Direction) {
        let how = match direction {
            Direction::Read => libc::SHUT_RD,
            Direction::Both => libc::SHUT_RDWR,
        };
        for (_, &fd) in self.lock().iter() {
            // SAFETY: `fd` is open: registrations are removed under this lock before their
            // socket is closed. `shutdown` touches no memory of ours.
            unsafe {
                libc::shutdown(fd, how);
            }
        }
    }

    /// Waits until no socket is registered or `deadline` passes; returns whether none is.
    pub(crate) fn wait_empty(&self, deadline: Instant) -> bool {
        let mut fds = self.lock();
        while !fds.is_empty() {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                return false;
            };
            fds = self
                .emptied
                .wait_timeout(fds, left)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
        true
    }
}

/// A socket's place in the [`Registry`]; dropping it unregisters the socket.
#[derive(Debug)]
pub(crate) struct Registration {
    registry: Arc<Registry>,
    key: usize,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut fds = self.registry.lock();
        fds.remove(self.key);
        if fds.is_empty() {
            self.registry.emptied.notify_all();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn waiting_for_an_empty_registry_returns_once_the_last_socket_leaves() {
        let registry = Arc::new(Registry::default());
        let registration = registry.register(-1);
        assert!(!registry.wait_empty(Instant::now() + Duration::from_millis(1)));
        let leaver = std::thread::spawn(move || drop(registration));
        assert!(registry.wait_empty(Instant::now() + Duration::from_secs(30)));
        leaver
            .join()
            .expect("thread that drops a registration does not panic");
    }
}
