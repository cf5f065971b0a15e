//! Benchmark for issue 3's threaded target: the server survives N concurrent connections
//! (10000) at a 100 ms delay without a failed request.
//!
//! For each server variant: start the binary (`--delay 100ms`), open N connections (each
//! sends its first request as soon as it is connected, like the article's client), then for
//! each round read every reply and, except after the last round, send the next request on
//! every connection. Every reply is checked. Records failures, how long connecting and each
//! round took, and the server's threads and RSS at peak.
//!
//! ```text
//! cargo build --release -p server-threaded
//! cargo run --release -p conformance --example many_connections -- 10000 3 \
//!     benches-results/issue3-threaded-10k "target/release/server-threaded"
//! cargo run --release -p conformance --example many_connections -- \
//!     --render benches-results/issue3-threaded-10k.json
//! ```
//! The first writes `<stem>.json` (the source of truth) and `<stem>.md` (rendered from it,
//! by `report.rs`); the second renders the markdown again from the JSON.

use std::error::Error;
use std::time::Instant;

use common::{Example, Variant};
use conformance::client::Client;
use report::ManyConnections;

#[path = "../common/mod.rs"]
mod common;
mod report;

fn run(
    variant: &Variant,
    connections: usize,
    rounds: usize,
) -> Result<ManyConnections, Box<dyn Error>> {
    let (server, command) = variant.start(&["--delay", "100ms"])?;
    let started = Instant::now();
    let mut clients = Vec::with_capacity(connections);
    let mut failures = 0;
    for i in 0..connections {
        match Client::connect(server.addr())
            .and_then(|mut c| c.send(format!("c{i} r0\n")).map(|()| c))
        {
            Ok(client) => clients.push((i, client)),
            Err(_) => failures += 1,
        }
    }
    let connect_seconds = started.elapsed().as_secs_f64();
    let mut row = ManyConnections {
        server: command,
        connections,
        rounds,
        ok_requests: 0,
        failures,
        connect_seconds,
        round_seconds: Vec::new(),
        server_threads: 0,
        server_rss_bytes: 0,
    };
    for round in 0..rounds {
        play_round(&mut clients, round, &mut row);
        if round == 0 {
            // Every connection has been served once: all threads exist by now.
            let status = server.sample()?.status;
            (row.server_threads, row.server_rss_bytes) = (status.threads, status.rss_bytes);
        }
    }
    Ok(row)
}

/// Reads every connection's reply to `round` and sends its next request (unless last).
fn play_round(clients: &mut [(usize, Client)], round: usize, row: &mut ManyConnections) {
    let started = Instant::now();
    for (i, client) in clients {
        let expected = format!("C{i} R{round}");
        if client.read_line().is_ok_and(|reply| reply == expected) {
            row.ok_requests += 1;
        } else {
            row.failures += 1;
        }
        if round + 1 < row.rounds && client.send(format!("c{i} r{}\n", round + 1)).is_err() {
            row.failures += 1;
        }
    }
    row.round_seconds.push(started.elapsed().as_secs_f64());
}

fn main() -> Result<(), Box<dyn Error>> {
    let example = Example {
        name: "many_connections",
        parameters: &["connections", "rounds"],
        render: report::render,
    };
    common::run_main(&example, |variant, parameters| {
        let row = run(variant, parameters[0], parameters[1].max(1))?;
        println!(
            "{}: {} ok, {} failures",
            row.server, row.ok_requests, row.failures
        );
        Ok(row)
    })
}
