//! conformance: one suite of wire-level tests that every echo server must pass, written
//! once and instantiated for each server and variant with [`suite!`].
//!
//! A server crate adds `tests/conformance.rs`:
//!
//! ```text
//! conformance::suite!(
//!     threaded,
//!     start = |config| server_threaded::start(config, server_threaded::Mode::PerConnection),
//!     binary = env!("CARGO_BIN_EXE_server-threaded"),
//!     args = &[],
//! );
//! ```
//!
//! and gets one `#[test]` per case (`threaded::a_line_is_answered_upper_cased_and_never_before_the_delay`,
//! ...). Most cases start the server in-process through the `start` closure (fast, and able to
//! look at its [`server_common::Stats`]); the cases about descriptor limits, signals and
//! flags run the binary, with `args` selecting the variant.
//!
//! The cases use short delays (tens of milliseconds) and generous timeouts, and assert no
//! timing except "not before the configured delay". Waits are for events on the wire (a reply,
//! an end of stream), never sleeps standing in for them.

pub mod cases;
pub mod client;
pub mod process;

use std::io;

use server_common::{Server, ServerConfig};

/// One server variant under test.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    /// Starts the server in-process.
    pub start: fn(ServerConfig) -> io::Result<Box<dyn Server>>,
    /// Path of the server's binary (`env!("CARGO_BIN_EXE_<name>")`).
    pub binary: &'static str,
    /// Flags selecting the variant when the binary is run (e.g. `["--pool", "64"]`).
    pub args: &'static [&'static str],
}

/// Expands to a module named `$name` holding one `#[test]` per conformance case, each run
/// against the server that `start` (in-process) and `binary` with `args` (as a process)
/// describe. `start` is a closure from `ServerConfig` to `io::Result<S>` for any `S:
/// Server`.
#[macro_export]
macro_rules! suite {
    ($name:ident, start = $start:expr, binary = $binary:expr, args = $args:expr $(,)?) => {
        mod $name {
            // The `start` expression is written in the caller's scope.
            #[allow(unused_imports)]
            use super::*;

            fn target() -> $crate::Target {
                $crate::Target {
                    start: |config| $crate::__into_boxed(($start)(config)),
                    binary: $binary,
                    args: $args,
                }
            }
            $crate::__cases!(
                a_line_is_answered_upper_cased_and_never_before_the_delay,
                block_and_spin_delays_are_also_answered_never_before_the_delay,
                many_lines_in_one_write_are_answered_in_order,
                a_line_sent_in_many_writes_is_answered_once,
                a_character_split_across_writes_is_upper_cased_whole,
                upper_casing_covers_all_of_unicode,
                invalid_utf8_gets_an_err_line_and_the_connection_lives_on,
                an_oversized_line_gets_an_err_line_and_a_close_while_others_are_unaffected,
                a_half_closed_client_gets_every_reply_including_an_unterminated_last_line,
                raw_framing_answers_one_chunk_upper_cased_and_closes_like_the_articles_server,
                an_idle_client_is_closed_after_the_idle_limit,
                a_client_that_never_reads_is_throttled_and_others_are_still_served,
                abrupt_resets_mid_request_do_not_disturb_other_clients,
                two_thousand_concurrent_clients_all_get_correct_replies,
                at_max_connections_the_server_waits_and_accepts_again_when_a_client_leaves,
                the_summary_counts_connections_requests_and_errors,
                shutdown_answers_every_request_already_received,
                the_binary_announces_its_address_and_explains_every_flag,
                the_binary_refuses_an_address_in_use_naming_it,
                verbose_mode_logs_each_connection_and_quiet_mode_does_not,
                out_of_descriptors_the_binary_keeps_serving_without_burning_cpu_and_accepts_again,
                sigterm_during_load_answers_every_request_received_and_exits_cleanly,
            );
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
                $crate::cases::$case(&target())
            }
        )*
    };
}

/// Implementation detail of [`suite!`]: boxes any server handle.
#[doc(hidden)]
pub fn __into_boxed<S: Server + 'static>(started: io::Result<S>) -> io::Result<Box<dyn Server>> {
    server_common::into_boxed(started)
}
