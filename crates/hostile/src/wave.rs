//! A wave: many hostile clients at once, one thread each, and the tally of what they saw.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use crate::{Kind, Outcome, Settings, check_loopback, client};

/// The most clients one wave runs: each is a thread and a descriptor of the caller's.
pub const MAX_CLIENTS: usize = 1000;

/// Stack of each client's thread: the clients keep their buffers on the heap.
const CLIENT_STACK_BYTES: usize = 128 * 1024;

/// What one kind of client saw over a wave (or many).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tally {
    /// Clients run.
    pub clients: u64,
    /// Clients whose server did what the protocol says.
    pub conforming: u64,
    /// The first few problems, verbatim.
    pub problems: Vec<String>,
}

/// How many problems of one kind a tally keeps verbatim.
const PROBLEMS_KEPT: usize = 5;

/// Every client's outcome of one wave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WaveReport {
    /// In the order the clients were started.
    pub outcomes: Vec<Outcome>,
}

impl WaveReport {
    /// Outcomes per kind.
    pub fn tally(&self) -> BTreeMap<Kind, Tally> {
        let mut tallies: BTreeMap<Kind, Tally> = BTreeMap::new();
        for outcome in &self.outcomes {
            let tally = tallies.entry(outcome.kind).or_default();
            tally.clients += 1;
            match &outcome.problem {
                None => tally.conforming += 1,
                Some(problem) if tally.problems.len() < PROBLEMS_KEPT => {
                    tally.problems.push(problem.clone());
                }
                Some(_) => {}
            }
        }
        tallies
    }

    /// Whether every client saw the server keep its word.
    pub fn conforms(&self) -> bool {
        self.outcomes.iter().all(Outcome::conforms)
    }
}

/// Runs `clients` (kind, how many) against `addr` all at once and waits for every one.
///
/// # Errors
/// When `addr` is not loopback, the wave has more than [`MAX_CLIENTS`] clients, or a thread
/// cannot be started; each client's own failures are outcomes, not errors.
pub fn run_wave(
    addr: SocketAddr,
    clients: &[(Kind, usize)],
    settings: &Settings,
) -> Result<WaveReport, String> {
    check_loopback(addr)?;
    let total: usize = clients.iter().map(|(_, n)| n).sum();
    if total > MAX_CLIENTS {
        return Err(format!(
            "a wave of {total} hostile clients: at most {MAX_CLIENTS}"
        ));
    }
    let kinds = clients
        .iter()
        .flat_map(|&(kind, n)| std::iter::repeat_n(kind, n));
    std::thread::scope(|scope| {
        let mut handles = Vec::with_capacity(total);
        for kind in kinds {
            let handle = std::thread::Builder::new()
                .name(format!("hostile-{kind}"))
                .stack_size(CLIENT_STACK_BYTES)
                .spawn_scoped(scope, move || client::run(kind, addr, settings))
                .map_err(|e| format!("cannot start a hostile client's thread: {e}"))?;
            handles.push((kind, handle));
        }
        let outcomes = handles
            .into_iter()
            .map(|(kind, handle)| {
                handle.join().unwrap_or_else(|_| Outcome {
                    kind,
                    saw: "panicked".to_owned(),
                    problem: Some(format!("{kind}: the client's thread panicked")),
                })
            })
            .collect();
        Ok(WaveReport { outcomes })
    })
}
