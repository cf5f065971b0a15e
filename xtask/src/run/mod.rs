//! Running things for a study: one server process ([`server`]), one loadgen process
//! ([`load`]), what the server cost ([`procstat`]) and the machine it ran on ([`env`]).
//!
//! Nothing here knows which study called it: a study decides what to run and in which order,
//! these modules only run it and report what happened.

pub mod env;
pub mod load;
pub mod perf;
pub mod procstat;
pub mod server;
