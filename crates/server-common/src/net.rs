//! Socket plumbing every server needs: a listener with an explicit backlog, TCP_NODELAY and
//! the open-file limit. What to do when `accept` fails is [`crate::accept`]'s job.

use std::io;
use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsFd;

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
}
