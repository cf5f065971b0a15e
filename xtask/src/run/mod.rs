//! Running things for a study: one server process ([`server`]), one loadgen process
//! ([`load`]), what the server cost ([`procstat`]) and the machine it ran on ([`env`](mod@env)).
//!
//! Nothing here knows which study called it: a study decides what to run and in which order,
//! these modules only run it and report what happened. Processes are started, sampled and
//! reaped by the [`server_process`] harness, the one conformance and the benchmark examples
//! use too; [`server`] and [`procstat`] only turn what it reports into a run's record.

pub mod env;
pub mod load;
pub mod perf;
pub mod procstat;
pub mod server;
