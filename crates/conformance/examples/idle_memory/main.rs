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
//! cargo run --release -p conformance --example idle_memory -- \
//!     --render benches-results/issue3-tokio-idle-memory.json
//! ```
//! The first writes `<stem>.json` (the source of truth) and `<stem>.md` (rendered from it,
//! by `report.rs`); the second renders the markdown again from the JSON.

use std::error::Error;
use std::time::Duration;

use common::{Example, Variant};
use conformance::client::Client;
use report::IdleMemory;

#[path = "../common/mod.rs"]
mod common;
mod report;

fn measure(variant: &Variant, connections: usize) -> Result<IdleMemory, Box<dyn Error>> {
    let (server, command) = variant.start(&["--delay", "0", "--idle-timeout", "off"])?;
    let rss_before_bytes = server.sample()?.status.rss_bytes;
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
    let rss_after_bytes = server.sample()?.status.rss_bytes;
    Ok(IdleMemory {
        server: command,
        connections,
        failed_connections,
        rss_before_bytes,
        rss_after_bytes,
        rss_per_connection_bytes: rss_after_bytes.saturating_sub(rss_before_bytes) as f64
            / connections.max(1) as f64,
    })
}

fn main() -> Result<(), Box<dyn Error>> {
    let example = Example {
        name: "idle_memory",
        parameters: &["connections"],
        render: report::render,
    };
    common::run_main(&example, |variant, parameters| {
        let row = measure(variant, parameters[0])?;
        println!(
            "{}: {:.0} bytes per connection",
            row.server, row.rss_per_connection_bytes
        );
        Ok(row)
    })
}
