//! Socket plumbing every server needs: a listener with an explicit backlog, TCP_NODELAY,
//! the open-file limit, and what to do when `accept` runs out of descriptors.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;
use std::time::Duration;

use socket2::{Domain, Protocol, SockRef, Socket, Type};

/// Binds a blocking listener on `addr` with listen backlog `backlog` and SO_REUSEADDR (so a
/// restarted server does not wait for TIME_WAIT sockets of its predecessor).
///
/// The std and mio listeners always use a backlog of 128, which overflows under a burst of
/// thousands of connects: every dropped SYN then costs the client a 1 s retransmit.
///
/// # Errors
/// When the socket cannot be created, bound (address in use, not local) or put listening.
pub fn bind_listener(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    bind(addr, backlog, false)
}

/// Like [`bind_listener`], with SO_REUSEPORT as well, so that several listeners (one per
/// event loop) can share `addr` and the kernel spreads connections between them. Bind the
/// first with port 0, then the others on the port it got.
///
/// # Errors
/// As [`bind_listener`].
pub fn bind_listener_reuse_port(addr: SocketAddr, backlog: u32) -> io::Result<TcpListener> {
    bind(addr, backlog, true)
}

fn bind(addr: SocketAddr, backlog: u32, reuse_port: bool) -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if reuse_port {
        socket.set_reuse_port(true)?;
    }
    socket.bind(&addr.into())?;
    let backlog = i32::try_from(backlog).unwrap_or(i32::MAX);
    socket.listen(backlog)?;
    Ok(socket.into())
}

/// Turns Nagle's algorithm off: with it, a small reply waits for the ACK of the previous
/// one, and delayed ACKs make that ~40 ms.
///
/// # Errors
/// When the socket refuses the option (it is already closed).
pub fn set_nodelay(socket: &impl AsFd) -> io::Result<()> {
    SockRef::from(socket).set_nodelay(true)
}

/// Raises the soft open-file limit to the hard limit and returns the new soft limit. One
/// process needs a descriptor per connection; the usual soft default of 1024 would cap a
/// server far below the 10000 connections it is tested with.
///
/// # Errors
/// When the limits cannot be read or set.
pub fn raise_nofile_limit() -> io::Result<u64> {
    rlimit::increase_nofile_limit(u64::MAX)
}

/// Whether `err` means the process or the system ran out of file descriptors (EMFILE,
/// ENFILE) or of socket buffers (ENOBUFS, ENOMEM): conditions that pass when connections
/// close, so the server must wait and retry, not exit.
pub fn is_fd_exhaustion(err: &io::Error) -> bool {
    matches!(
        err.raw_os_error(),
        Some(libc::EMFILE | libc::ENFILE | libc::ENOBUFS | libc::ENOMEM)
    )
}

/// How long to stop accepting after a failure (10 ms, doubling up to 100 ms while failures
/// go on, back to 10 ms after a success), and the one place that tells the operator about it.
///
/// A failing `accept` fails again at once if retried (the pending connection stays in the
/// kernel's queue), so retrying without a pause would burn a core while saturated. Pausing
/// leaves pending connections waiting in the backlog, where the kernel keeps them.
///
/// A saturated server fails ten times a second, so it warns once per *episode*: at the first
/// failure after a success, and again when accepting succeeds. Every server logs this the same
/// way because it is the back-off, not each server, that knows where an episode begins and ends.
#[derive(Debug, Clone)]
pub struct AcceptBackoff {
    next: Duration,
    /// An accept has failed since the last success.
    failing: bool,
}

impl AcceptBackoff {
    /// The first pause.
    pub const MIN: Duration = Duration::from_millis(10);
    /// The longest pause: short enough to resume promptly once descriptors free up.
    pub const MAX: Duration = Duration::from_millis(100);

    /// A back-off at its shortest pause.
    pub fn new() -> Self {
        AcceptBackoff {
            next: Self::MIN,
            failing: false,
        }
    }

    /// The pause to take now; the next one will be twice as long (up to [`Self::MAX`]).
    pub fn next_pause(&mut self) -> Duration {
        let pause = self.next;
        self.next = (self.next * 2).min(Self::MAX);
        pause
    }

    /// An accept failed with `err`: warns if this starts an episode of failures.
    pub fn failed(&mut self, err: &io::Error) {
        if !std::mem::replace(&mut self.failing, true) {
            let cause = if is_fd_exhaustion(err) {
                "out of descriptors"
            } else {
                "error"
            };
            tracing::warn!("accept failed ({cause}): {err}; backing off until it succeeds");
        }
    }

    /// An accept succeeded: the next failure starts again at [`Self::MIN`], and an episode of
    /// failures, if one was going on, is reported over.
    pub fn succeeded(&mut self) {
        self.next = Self::MIN;
        if std::mem::take(&mut self.failing) {
            tracing::warn!("accepting again");
        }
    }
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listener_binds_port_zero_to_a_real_port() -> io::Result<()> {
        let listener = bind_listener("127.0.0.1:0".parse().expect("literal"), 64)?;
        assert_ne!(listener.local_addr()?.port(), 0);
        Ok(())
    }

    #[test]
    fn two_reuse_port_listeners_share_one_port() -> io::Result<()> {
        let first = bind_listener_reuse_port("127.0.0.1:0".parse().expect("literal"), 64)?;
        let second = bind_listener_reuse_port(first.local_addr()?, 64)?;
        assert_eq!(first.local_addr()?, second.local_addr()?);
        Ok(())
    }

    #[test]
    fn emfile_counts_as_descriptor_exhaustion_and_a_reset_does_not() {
        assert!(is_fd_exhaustion(&io::Error::from_raw_os_error(
            libc::EMFILE
        )));
        assert!(is_fd_exhaustion(&io::Error::from_raw_os_error(
            libc::ENFILE
        )));
        assert!(!is_fd_exhaustion(&io::Error::from_raw_os_error(
            libc::ECONNABORTED
        )));
    }

    #[test]
    fn the_backoff_doubles_up_to_its_ceiling_and_resets() {
        let mut backoff = AcceptBackoff::new();
        let pauses: Vec<_> = (0..6).map(|_| backoff.next_pause()).collect();
        assert_eq!(pauses[0], AcceptBackoff::MIN);
        assert_eq!(pauses[1], AcceptBackoff::MIN * 2);
        assert_eq!(pauses[5], AcceptBackoff::MAX);
        backoff.succeeded();
        assert_eq!(backoff.next_pause(), AcceptBackoff::MIN);
    }
}
