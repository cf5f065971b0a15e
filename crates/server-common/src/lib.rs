//! server-common: the shape every echo server shares, so that the servers never depend on
//! each other, a test or a tool can drive any of them the same way, and a new server costs its
//! own IO code and nothing else.
//!
//! - [`config`]: [`ServerConfig`], what a server is started with.
//! - [`server`]: the [`Server`] handle trait and the contract every server meets on the wire
//!   and at shutdown.
//! - [`driver`]: [`Driver`] and [`Step`], what a connection does next, decided once for every
//!   server, with its end-of-connection bookkeeping.
//! - [`accept`]: [`AcceptBackoff`], the one accept policy: error classes, pauses, counters,
//!   the connection limit.
//! - [`timers`]: [`Timers`], the `(deadline, id)` timer queue of loop-based servers,
//!   [`LoopTimer`], what their timers wake, and [`fire_due`], how they fire.
//! - [`loops`]: [`Loops`] and [`LoopServer`], N loops on N threads sharing a port
//!   (`--loops N`), started and stopped alike by every loop-based server.
//! - [`stats`]: [`Stats`], shared atomic counters, and their [`Summary`] snapshot.
//! - [`delay`]: [`spend_on_thread`], how `block` and `spin` delays hold a thread.
//! - [`offload`]: [`OffloadPool`] and [`Offload`], the worker pool of the loop-based servers
//!   (`--offload N`), handing spends back through a channel and the loop's waker.
//! - [`net`]: listener binding with an explicit backlog, TCP_NODELAY, the descriptor limit.
//! - [`args`]: [`ServerArgs`], the command-line flags every server binary accepts,
//!   [`OffloadArgs`], the `--offload N` of the event-loop servers, [`LoopArgs`], the
//!   `--loops N --offload N` of the servers made of loops, and
//!   [`Variant`], a server's own flags and how to start what they select (in a binary, or
//!   in-process with [`start_from_flags`]).
//! - [`run`]: [`run_binary`], the whole life of a server binary after parsing its flags.

pub mod accept;
pub mod args;
pub mod config;
pub mod delay;
pub mod driver;
pub mod loops;
pub mod net;
pub mod offload;
pub mod run;
pub mod server;
pub mod stats;
pub mod timers;

pub use accept::{AcceptBackoff, AcceptErrorKind};
pub use args::{LoopArgs, OffloadArgs, ServerArgs, Variant, parse_variant_flags, start_from_flags};
pub use config::ServerConfig;
pub use delay::{Work, spend_on_thread};
pub use driver::{Driver, SocketState, Step, Wait, shutdown_goodbye};
pub use loops::{Loop, LoopServer, LoopSettings, Loops, Stop, bind_listeners};
pub use net::{bind_listener, bind_listener_reuse_port, raise_nofile_limit, set_nodelay};
pub use offload::{MAX_OFFLOAD_THREADS, Offload, OffloadPool, Ticket};
pub use run::run_binary;
pub use server::Server;
pub use stats::{ConnectionGuard, QueueTicket, Stats, Summary};
pub use timers::{
    LoopTimer, ResumeTimer, TimerKey, TimerLoop, Timers, arm_shutdown_deadline, fire_due,
    left_at_deadline,
};
