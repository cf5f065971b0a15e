//! conformance: one suite of wire-level tests that every echo server must pass, written
//! once and instantiated for each server and variant with [`suite!`].
//!
//! A server crate adds `tests/conformance.rs`, one line a variant:
//!
//! ```text
//! conformance::suite!(
//!     threaded_pool,
//!     variant = server_threaded::VariantArgs,
//!     binary = env!("CARGO_BIN_EXE_server-threaded"),
//!     args = &["--pool", "64"],
//! );
//! ```
//!
//! A variant that queues accepted connections for a fixed set of workers says so with a
//! `queue = conformance::Queue { .. }` line after `args`: the cases about queued clients (load
//! shedding, refusals at shutdown) then check those behaviours on it, and check elsewhere that
//! a variant without a queue serves the same clients instead (see [`Queue`]).
//!
//! Either way the crate gets one `#[test]` per case (`threaded_pool::a_line_is_answered_upper_cased_and_never_before_the_delay`,
//! ...). The variant is its flags, `args`, and nothing else: most cases start the server
//! in-process from them, parsed by the crate's [`server_common::Variant`] as its binary parses
//! them (fast, and able to look at its [`server_common::Stats`]); the cases about descriptor
//! limits, signals and flags run the binary with them. The list of cases is one macro in [`cases`]; a case written there but not
//! listed does not build (this crate denies dead code).
//!
//! The cases use short delays (tens of milliseconds) and generous timeouts, and assert no
//! timing except "not before the configured delay". Waits are for events on the wire (a reply,
//! an end of stream), never sleeps standing in for them.
//!
//! The loop-based servers (server-mio, server-uring) share two more checks: the cases of
//! [`loops`] (several loops on one port, a `block` delay, a shutdown finding a request in the
//! kernel), instantiated with [`loop_suite!`], and [`deps::assert_no_async_runtime`].
//!
//! The offload variants (`--offload N` on the event-loop servers) run the whole suite with
//! their flags like any variant, plus the cases of [`offload`] (a blocked request does not
//! hold up another connection, a reset during an offloaded delay, SIGTERM with offloaded work
//! in flight), one [`offload_suite!`] line each.
#![deny(dead_code)]

pub mod cases;
pub mod client;
pub mod deps;
pub mod loops;
pub mod offload;
pub mod process;

use std::io;

use server_common::{Server, ServerConfig, Variant};

/// Starts a server in-process from a variant's flags.
pub type Start = fn(ServerConfig, &[&str]) -> io::Result<Box<dyn Server>>;

/// One server variant under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Starts the server in-process with the variant's flags ([`start`] for its
    /// [`Variant`]).
    pub start: Start,
    /// Path of the server's binary (`env!("CARGO_BIN_EXE_<name>")`).
    pub binary: &'static str,
    /// Flags selecting the variant, in-process and when the binary is run (e.g.
    /// `["--pool", "64"]`).
    pub args: &'static [&'static str],
    /// How the variant queues accepted connections; `None` when every accepted connection is
    /// served at once (a thread, a task or a slot in a loop each).
    pub queue: Option<Queue>,
}

/// What a variant that queues accepted connections (a worker pool) declares, so that the
/// cases about queued clients can fill its workers and set its queue timeout.
#[derive(Debug, Clone, Copy)]
pub struct Queue {
    /// Connections served at once; one more waits in the queue.
    pub workers: usize,
    /// The variant's flag for the queue timeout, taking a duration or `off` (e.g.
    /// `"--queue-timeout"`).
    pub timeout_flag: &'static str,
}

/// Starts the server of variant `V` that `flags` select, boxed: a [`Target`]'s `start`.
///
/// # Errors
/// As [`server_common::start_from_flags`].
pub fn start<V: Variant>(config: ServerConfig, flags: &[&str]) -> io::Result<Box<dyn Server>> {
    Ok(Box::new(server_common::start_from_flags::<V>(
        config, flags,
    )?))
}

/// Expands to a module named `$name` holding one `#[test]` per conformance case, each run
/// against the variant that `args` selects: in-process through the server crate's
/// [`Variant`] implementation `variant`, as a process through `binary`.
#[macro_export]
macro_rules! suite {
    ($name:ident, variant = $variant:ty, binary = $binary:expr, args = $args:expr $(,)?) => {
        $crate::__suite!($name, $variant, $binary, $args, ::std::option::Option::None);
    };
    (
        $name:ident,
        variant = $variant:ty,
        binary = $binary:expr,
        args = $args:expr,
        queue = $queue:expr $(,)?
    ) => {
        $crate::__suite!(
            $name,
            $variant,
            $binary,
            $args,
            ::std::option::Option::Some($queue)
        );
    };
}

/// Implementation detail of [`suite!`]: the module of one variant.
#[doc(hidden)]
#[macro_export]
macro_rules! __suite {
    ($name:ident, $variant:ty, $binary:expr, $args:expr, $queue:expr) => {
        mod $name {
            fn target() -> $crate::Target {
                $crate::Target {
                    start: $crate::start::<$variant>,
                    binary: $binary,
                    args: $args,
                    queue: $queue,
                }
            }
            $crate::__each_case!($crate::__cases);
        }
    };
}

/// Implementation detail of [`suite!`]: one `#[test]` per case name.
#[doc(hidden)]
#[macro_export]
macro_rules! __cases {
    ($($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() -> ::std::io::Result<()> {
                $crate::cases::run(stringify!($case), &target())
            }
        )*
    };
}
