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
//! ```
//! writes `<stem>.json` (the source of truth) and `<stem>.md` (rendered from it).

use std::error::Error;
use std::fmt::Write as _;
use std::time::Instant;

use conformance::client::Client;
use conformance::process::ServerProcess;
use serde::Serialize;

/// One server variant's run.
#[derive(Debug, Serialize)]
struct ManyConnections {
    /// The binary and the flags it was run with.
    server: String,
    /// Connections held open at once.
    connections: usize,
    /// Requests per connection.
    rounds: usize,
    /// Requests answered correctly.
    ok_requests: usize,
    /// Connections that could not be made, plus requests unanswered or answered wrongly.
    failures: usize,
    /// Time to open every connection (and send the first requests).
    connect_seconds: f64,
    /// Time of each round: reading every reply (and sending the next requests).
    round_seconds: Vec<f64>,
    /// Server threads with every connection open and served once.
    server_threads: u64,
    /// Server RSS with every connection open and served once.
    server_rss_bytes: u64,
}

fn run(
    variant: &str,
    connections: usize,
    rounds: usize,
) -> Result<ManyConnections, Box<dyn Error>> {
    let mut words = variant.split_whitespace();
    let binary = words.next().ok_or("empty server variant")?;
    let args: Vec<&str> = ["--delay", "100ms"].into_iter().chain(words).collect();
    let server = ServerProcess::spawn(binary, &args, None)?;
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
        server: format!("{binary} {}", args.join(" ")),
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
            (row.server_threads, row.server_rss_bytes) =
                (server.threads()?, server.resident_bytes()?);
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

fn render(rows: &[ManyConnections], command: &str) -> String {
    let mut md = String::from(
        "# Concurrent connections at 100 ms (issue 3 target: threaded survives 10000 without a failed request)\n\n",
    );
    let _ = writeln!(
        md,
        "Command (after `cargo build --release -p server-threaded -p server-async`):\n\n```\n{command}\n```\n"
    );
    md.push_str("| server | connections | rounds | ok requests | failures | connect (s) | rounds (s) | server threads | server RSS (MiB) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|---|---:|---:|\n");
    for row in rows {
        let rounds: Vec<String> = row
            .round_seconds
            .iter()
            .map(|s| format!("{s:.2}"))
            .collect();
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {:.2} | {} | {} | {:.1} |",
            row.server,
            row.connections,
            row.rounds,
            row.ok_requests,
            row.failures,
            row.connect_seconds,
            rounds.join(", "),
            row.server_threads,
            row.server_rss_bytes as f64 / (1024.0 * 1024.0)
        );
    }
    md.push_str(
        "\nRendered from the JSON file beside this one by the example; do not edit by hand.\n",
    );
    md
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [connections, rounds, stem, variants @ ..] = args.as_slice() else {
        return Err(
            "usage: many_connections <connections> <rounds> <output stem> <\"binary flags...\">..."
                .into(),
        );
    };
    server_common::raise_nofile_limit()?;
    let (connections, rounds): (usize, usize) = (connections.parse()?, rounds.parse()?);
    let mut rows = Vec::new();
    for variant in variants {
        let row = run(variant, connections, rounds.max(1))?;
        println!(
            "{}: {} ok, {} failures",
            row.server, row.ok_requests, row.failures
        );
        rows.push(row);
    }
    let quoted: Vec<String> = variants.iter().map(|v| format!("{v:?}")).collect();
    let command = format!(
        "cargo run --release -p conformance --example many_connections -- {connections} {rounds} {stem} {}",
        quoted.join(" ")
    );
    std::fs::write(
        format!("{stem}.json"),
        serde_json::to_string_pretty(&rows)? + "\n",
    )?;
    std::fs::write(format!("{stem}.md"), render(&rows, &command))?;
    Ok(())
}
