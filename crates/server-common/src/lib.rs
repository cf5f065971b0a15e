//! server-common: the shape every echo server shares, so that the servers never depend on
//! each other and a test or a tool can drive any of them the same way.
//!
//! - [`config`]: [`ServerConfig`], what a server is started with.
//! - [`server`]: the [`Server`] handle trait and the contract every server meets on the wire
//!   and at shutdown.
//! - [`stats`]: [`Stats`], shared atomic counters, and their [`Summary`] snapshot.
//! - [`delay`]: [`spend_on_thread`], how `block` and `spin` delays hold a thread.
//! - [`net`]: listener binding with an explicit backlog, descriptor-limit handling and the
//!   accept back-off.
//! - [`args`]: [`ServerArgs`], the command-line flags every server binary accepts.
//! - [`run`]: [`run_binary`], the whole life of a server binary after parsing its flags.

pub mod args;
pub mod config;
pub mod delay;
pub mod net;
pub mod run;
pub mod server;
pub mod stats;

pub use args::ServerArgs;
pub use config::ServerConfig;
pub use delay::spend_on_thread;
pub use net::{
    AcceptBackoff, bind_listener, bind_listener_reuse_port, is_fd_exhaustion, raise_nofile_limit,
    set_nodelay,
};
pub use run::run_binary;
pub use server::{Server, into_boxed};
pub use stats::{ConnectionGuard, QueueTicket, Stats, Summary};
