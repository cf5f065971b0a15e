//! Client sockets: creation, source addresses, connect with a timeout, and the
//! classification of socket errors into [`FailureKind`]s.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::os::fd::AsRawFd;
use std::time::Duration;

use socket2::{Domain, Socket, Type};
use tokio::net::{TcpSocket, TcpStream};

use crate::report::FailureKind;

/// Where in a connection's life an error happened; a timeout means something different
/// while connecting than while waiting for a reply.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Creating the socket or connecting it.
    Connect,
    /// Writing a request or reading its reply.
    Exchange,
}

/// Maps a socket error to the failure kind the report counts it under.
pub fn classify(error: &io::Error, phase: Phase) -> FailureKind {
    use io::ErrorKind as K;
    match error.kind() {
        K::ConnectionRefused => return FailureKind::ConnectionRefused,
        K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => return FailureKind::Reset,
        K::AddrNotAvailable => return FailureKind::AddressNotAvailable,
        K::UnexpectedEof => return FailureKind::EarlyEof,
        K::TimedOut if phase == Phase::Connect => return FailureKind::ConnectTimeout,
        K::TimedOut => return FailureKind::ReplyTimeout,
        _ => {}
    }
    match error.raw_os_error() {
        Some(libc::EMFILE | libc::ENFILE) => FailureKind::TooManyOpenFiles,
        Some(libc::EADDRNOTAVAIL) => FailureKind::AddressNotAvailable,
        Some(libc::ECONNRESET | libc::EPIPE) => FailureKind::Reset,
        _ => FailureKind::Other,
    }
}

/// The `index`-th of `count` loopback source addresses: 127.0.0.1, 127.0.0.2, ...
///
/// Each source address has its own ~28,000 ephemeral ports towards the target, so spreading
/// over several keeps runs with many short connections clear of TIME_WAIT exhaustion.
pub fn source_address(index: u64, count: u32) -> Option<IpAddr> {
    if count == 0 {
        return None;
    }
    let last_octet = 1 + (index % u64::from(count)) as u8;
    Some(IpAddr::V4(Ipv4Addr::new(127, 0, 0, last_octet)))
}

/// Opens a TCP connection to `target` (from `source` if given) with TCP_NODELAY set, within
/// `timeout`, on the current tokio runtime (the closed loop's connect).
///
/// # Errors
/// The [`FailureKind`] of whatever went wrong: no descriptor, no free port, refused, timed out.
pub async fn connect(
    target: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<TcpStream, FailureKind> {
    let socket = new_socket(target, source).map_err(|e| classify(&e, Phase::Connect))?;
    let socket = TcpSocket::from_std_stream(socket.into());
    match tokio::time::timeout(timeout, socket.connect(target)).await {
        Ok(Ok(stream)) => Ok(stream),
        Ok(Err(error)) => Err(classify(&error, Phase::Connect)),
        Err(_elapsed) => Err(FailureKind::ConnectTimeout),
    }
}

/// Starts a non-blocking connect to `target` (from `source` if given) with TCP_NODELAY and
/// the kernel's receive timestamps ([`crate::arrival`]) set, for the open loop's event loop:
/// the connection is established (or has failed: read `take_error`) once the stream is
/// reported writable.
///
/// # Errors
/// The socket's error: no descriptor, no free port, or an immediate refusal.
pub fn start_connect(
    target: SocketAddr,
    source: Option<IpAddr>,
) -> io::Result<mio::net::TcpStream> {
    let socket = new_socket(target, source)?;
    // Without the option, replies are timed by their read, and the report counts them so
    // (`replies_timed_by_kernel`); nothing else depends on it.
    let _ = crate::arrival::enable(socket.as_raw_fd());
    match socket.connect(&target.into()) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(libc::EINPROGRESS) => {}
        Err(e) => return Err(e),
    }
    Ok(mio::net::TcpStream::from_std(socket.into()))
}

/// A non-blocking, close-on-exec TCP socket with TCP_NODELAY, bound to `source` if given.
fn new_socket(target: SocketAddr, source: Option<IpAddr>) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(target),
        Type::STREAM.nonblocking(),
        None,
    )?;
    socket.set_nodelay(true)?;
    if let Some(ip) = source {
        bind_address_no_port(&socket)?;
        socket.bind(&SocketAddr::new(ip, 0).into())?;
    }
    Ok(socket)
}

/// Sets IP_BIND_ADDRESS_NO_PORT, so that binding a source address leaves the choice of the
/// port to `connect`, which can then reuse a port towards another destination. Without it,
/// `bind(ip:0)` reserves a port for all destinations and runs out after ~28,000 sockets.
fn bind_address_no_port(socket: &Socket) -> io::Result<()> {
    let enable: libc::c_int = 1;
    // SAFETY: the descriptor is a valid, open socket owned by `socket` for the whole call;
    // the option value points to a live c_int and its exact size is passed.
    let status = unsafe {
        libc::setsockopt(
            socket.as_raw_fd(),
            libc::IPPROTO_IP,
            libc::IP_BIND_ADDRESS_NO_PORT,
            (&raw const enable).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    os_status(status)
}

/// A libc call's status as a result: 0 is success, anything else the thread's `errno`.
pub(crate) fn os_status(status: libc::c_int) -> io::Result<()> {
    if status == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn os_error(code: i32) -> io::Error {
        io::Error::from_raw_os_error(code)
    }

    #[test]
    fn descriptor_exhaustion_is_too_many_open_files() {
        for code in [libc::EMFILE, libc::ENFILE] {
            let kind = classify(&os_error(code), Phase::Connect);
            assert_eq!(kind, FailureKind::TooManyOpenFiles);
        }
    }

    #[test]
    fn port_exhaustion_is_address_not_available() {
        let kind = classify(&os_error(libc::EADDRNOTAVAIL), Phase::Connect);
        assert_eq!(kind, FailureKind::AddressNotAvailable);
    }

    #[test]
    fn a_kernel_timeout_is_a_connect_timeout_while_connecting_and_a_reply_timeout_after() {
        let error = os_error(libc::ETIMEDOUT);
        assert_eq!(
            classify(&error, Phase::Connect),
            FailureKind::ConnectTimeout
        );
        assert_eq!(classify(&error, Phase::Exchange), FailureKind::ReplyTimeout);
    }

    #[test]
    fn resets_and_broken_pipes_are_resets_and_refusals_are_refusals() {
        for code in [libc::ECONNRESET, libc::EPIPE, libc::ECONNABORTED] {
            assert_eq!(
                classify(&os_error(code), Phase::Exchange),
                FailureKind::Reset
            );
        }
        let refused = classify(&os_error(libc::ECONNREFUSED), Phase::Connect);
        assert_eq!(refused, FailureKind::ConnectionRefused);
    }

    #[test]
    fn unknown_errors_are_other() {
        assert_eq!(
            classify(&os_error(libc::EPERM), Phase::Connect),
            FailureKind::Other
        );
    }

    #[test]
    fn source_addresses_cycle_through_loopback() {
        let ips: Vec<_> = (0..5).filter_map(|i| source_address(i, 3)).collect();
        let last: Vec<_> = ips
            .iter()
            .map(|ip| match ip {
                IpAddr::V4(v4) => v4.octets()[3],
                IpAddr::V6(_) => 0,
            })
            .collect();
        assert_eq!(last, [1, 2, 3, 1, 2]);
        assert_eq!(source_address(7, 0), None);
    }
}
