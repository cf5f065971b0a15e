//! Benchmark for issue 3's memory target: a server's resident memory per open idle
//! connection, at 10000 connections.
//!
//! For each server variant: start the binary (`--delay 0 --idle-timeout off`), read its RSS,
//! open N connections and make one request on each (so every connection has been accepted,
//! served once, and is now idle), read its RSS again. Per connection = difference / N. Kernel
//! socket buffers are not in a process's RSS; this is the server's own cost.
//!
//! ```text
//! cargo build --release -p server-async -p server-threaded
//! cargo run --release -p conformance --example idle_memory -- 10000 \
//!     benches-results/issue3-tokio-idle-memory \
//!     "target/release/server-async --flavor multi" "target/release/server-async --flavor current"
//! ```
//! writes `<stem>.json` (the source of truth) and `<stem>.md` (rendered from it).

use std::error::Error;
use std::fmt::Write as _;
use std::time::Duration;

use conformance::client::Client;
use conformance::process::ServerProcess;
use serde::Serialize;

/// One server variant's measurement.
#[derive(Debug, Serialize)]
struct IdleMemory {
    /// The binary and the flags it was run with.
    server: String,
    /// Connections held open.
    connections: usize,
    /// Connections that failed to connect or to get their reply.
    failed_connections: usize,
    /// Server RSS before any connection.
    rss_before_bytes: u64,
    /// Server RSS with every connection open and idle.
    rss_after_bytes: u64,
    /// `(after - before) / connections`.
    rss_per_connection_bytes: f64,
}

fn measure(variant: &str, connections: usize) -> Result<IdleMemory, Box<dyn Error>> {
    let mut words = variant.split_whitespace();
    let binary = words.next().ok_or("empty server variant")?;
    let args: Vec<&str> = ["--delay", "0", "--idle-timeout", "off"]
        .into_iter()
        .chain(words)
        .collect();
    let server = ServerProcess::spawn(binary, &args, None)?;
    let rss_before_bytes = server.resident_bytes()?;
    let mut clients = Vec::with_capacity(connections);
    let mut failed_connections = 0;
    for i in 0..connections {
        match Client::connect(server.addr())
            .and_then(|mut c| c.send(format!("idle {i}\n")).map(|()| c))
        {
            Ok(client) => clients.push(client),
            Err(_) => failed_connections += 1,
        }
    }
    for client in &mut clients {
        if !client
            .read_line()
            .is_ok_and(|reply| reply.starts_with("IDLE "))
        {
            failed_connections += 1;
        }
    }
    // Let the allocator and the runtime settle after the burst.
    std::thread::sleep(Duration::from_secs(1));
    let rss_after_bytes = server.resident_bytes()?;
    Ok(IdleMemory {
        server: format!("{binary} {}", args.join(" ")),
        connections,
        failed_connections,
        rss_before_bytes,
        rss_after_bytes,
        rss_per_connection_bytes: rss_after_bytes.saturating_sub(rss_before_bytes) as f64
            / connections.max(1) as f64,
    })
}

fn render(rows: &[IdleMemory], command: &str) -> String {
    let mut md = String::from(
        "# Resident memory per idle connection (issue 3 target: tokio <= 2 KiB at 10000)\n\n",
    );
    let _ = writeln!(
        md,
        "Command (after `cargo build --release -p server-threaded -p server-async`):\n\n```\n{command}\n```\n"
    );
    md.push_str("| server | connections | failed | RSS before (KiB) | RSS after (KiB) | per connection (bytes) |\n");
    md.push_str("|---|---:|---:|---:|---:|---:|\n");
    for row in rows {
        let _ = writeln!(
            md,
            "| `{}` | {} | {} | {} | {} | {:.0} |",
            row.server,
            row.connections,
            row.failed_connections,
            row.rss_before_bytes / 1024,
            row.rss_after_bytes / 1024,
            row.rss_per_connection_bytes
        );
    }
    md.push_str(
        "\nRendered from the JSON file beside this one by the example; do not edit by hand.\n",
    );
    md
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [connections, stem, variants @ ..] = args.as_slice() else {
        return Err(
            "usage: idle_memory <connections> <output stem> <\"binary flags...\">...".into(),
        );
    };
    server_common::raise_nofile_limit()?;
    let connections: usize = connections.parse()?;
    let mut rows = Vec::new();
    for variant in variants {
        let row = measure(variant, connections)?;
        println!(
            "{}: {:.0} bytes per connection",
            row.server, row.rss_per_connection_bytes
        );
        rows.push(row);
    }
    let quoted: Vec<String> = variants.iter().map(|v| format!("{v:?}")).collect();
    let command = format!(
        "cargo run --release -p conformance --example idle_memory -- {connections} {stem} {}",
        quoted.join(" ")
    );
    std::fs::write(
        format!("{stem}.json"),
        serde_json::to_string_pretty(&rows)? + "\n",
    )?;
    std::fs::write(format!("{stem}.md"), render(&rows, &command))?;
    Ok(())
}
