//! echo-core: the uppercase echo protocol and the IO-delay simulator, with no IO at all.
//!
//! Every server in this project (std threads, tokio, a hand-written mio loop) embeds this
//! crate and differs only in *how* it moves bytes and spends waits. That is the experiment:
//! the same protocol code under three concurrency models.
//!
//! **echo-core is sans-IO.** It never opens a socket, never sleeps and never reads the
//! clock. A server hands it bytes and the current instant through the [`Protocol`] callbacks
//! (shaped like Python's `asyncio.Protocol`) and reads back what to do: bytes to write,
//! whether to read, when to wake it up and how to spend the wait, whether to close. Because
//! time comes in from outside, tests walk through delays and idle limits deterministically.
//!
//! - [`protocol`]: the callback trait and the contract every server honours.
//! - [`echo`]: [`EchoProtocol`], the uppercase echo with framing, limits and backpressure.
//! - [`delay`]: the delay models, their seeded sampler and the delay kinds.
//! - [`recipe`]: request recipes, a request's delay as phases of several kinds
//!   (`spin:2ms+wait:100ms`), and the sampler that hands them out one at a time.
//! - [`config`]: the serializable configuration shared by servers and reports.
//!
//! The wire protocol itself is specified in `docs/PROTOCOL.md`; `examples/minimal_server.rs`
//! shows a complete (if one-client-at-a-time) server built on this crate.
#![deny(missing_docs)]

pub mod config;
pub mod delay;
pub mod echo;
pub mod error;
pub mod protocol;
pub mod recipe;

pub use config::{Config, Framing};
pub use delay::{DelayKind, DelayModel, DelaySampler, format_duration, parse_duration};
pub use echo::{EchoProtocol, Refusal};
pub use error::{Error, Result};
pub use protocol::{ConnectionStats, Protocol, Timeout};
pub use recipe::{Phase, Recipe, RecipeSampler};
