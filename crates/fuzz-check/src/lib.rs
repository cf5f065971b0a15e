//! The checks behind echo-core's fuzz targets, in a plain library so that the coverage-guided
//! fuzzers in `fuzz/` and the replay test in `tests/replay.rs` (what CI runs) call the very same
//! function on the same bytes.
//!
//! Each check takes arbitrary bytes and panics when echo-core misbehaves on them; it never
//! panics for any other reason, so every crash a fuzzer reports is a bug in echo-core or in this
//! crate's model of it.
//! - [`framing::check`]: a connection driven the way the protocol contract says, with input
//!   cut into arbitrary chunks, must write exactly what a small model of the wire protocol
//!   predicts (replies, `ERR` lines), then close.
//! - [`delay_spec::check`]: a delay spec never makes the parser, the sampler or `mean` panic,
//!   and every accepted spec round-trips through `Display`.

pub mod delay_spec;
pub mod framing;
