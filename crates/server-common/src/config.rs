//! [`ServerConfig`]: everything a server is started with, whatever its concurrency model.

use std::net::{Ipv4Addr, SocketAddr};
use std::time::Duration;

/// How to start a server. Variant options (a thread pool's size, a tokio flavour, a number
/// of event loops) are passed to each server's `start` beside this.
#[derive(Debug, Clone, PartialEq)]
pub struct ServerConfig {
    /// Where to listen; port 0 picks a free port (read it back from
    /// [`crate::Server::local_addr`]).
    pub addr: SocketAddr,
    /// What the server says on the wire and when.
    pub protocol: echo_core::Config,
    /// Listen backlog. The std and mio default of 128 overflows under a burst of connects and
    /// costs each dropped SYN a 1 s (then 3 s) retransmit; the kernel caps the value at
    /// `net.core.somaxconn`.
    pub backlog: u32,
    /// Open connections above which the server stops accepting until one closes.
    pub max_connections: usize,
    /// How long a shutdown waits for connections to answer what they have received before
    /// closing them anyway.
    pub shutdown_timeout: Duration,
    /// Log every connection (`info` level). Printing per request distorts timings.
    pub verbose: bool,
}

impl ServerConfig {
    /// Listen backlog unless told otherwise: `somaxconn` on the project's machines.
    pub const DEFAULT_BACKLOG: u32 = 4096;
    /// No practical cap: descriptors run out first.
    pub const DEFAULT_MAX_CONNECTIONS: usize = 1_000_000;
    /// Shutdown waits this long for replies still owed.
    pub const DEFAULT_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);
}

impl Default for ServerConfig {
    /// `127.0.0.1:0`, echo-core's default protocol, a backlog of 4096.
    fn default() -> Self {
        ServerConfig {
            addr: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            protocol: echo_core::Config::default(),
            backlog: Self::DEFAULT_BACKLOG,
            max_connections: Self::DEFAULT_MAX_CONNECTIONS,
            shutdown_timeout: Self::DEFAULT_SHUTDOWN_TIMEOUT,
            verbose: false,
        }
    }
}
