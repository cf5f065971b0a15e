//! `cargo xtask capacity`: how many requests per second each server sustains at an SLO when
//! every request waits on IO, and what each request costs it (issue 10).
//!
//! Per server, a [`search`] steps an open-loop rate up geometrically and bisects to the
//! highest rate whose step meets the [`slo`]; each step opens the persistent
//! [`connections`] Little's law asks for (checked against both processes' open-file limits
//! before anything runs), and its figures and verdict go into the [`results`]. A step where
//! loadgen, not the server, fell behind is client-bound and never taken as the server's limit.

pub mod connections;
pub mod results;
pub mod search;
pub mod slo;
