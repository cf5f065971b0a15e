//! The pool's own scheduling, which the conformance suite does not see: which workers serve.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use echo_core::{Config, DelayModel};
use server_common::{Server, ServerConfig};
use server_threaded::{Mode, start};

/// One client after another on a pool of 16 is served by the one or two workers most
/// recently idle, not by all 16 in turn: a worker's first connection touches stack pages
/// that stay resident, so a pool that woke its workers round-robin (one shared condition
/// variable does) grew its RSS until every worker had served once.
#[test]
fn clients_one_after_another_are_served_by_the_most_recently_idle_worker() -> io::Result<()> {
    const WORKERS: usize = 16;
    const CLIENTS: u64 = 48;
    let config = ServerConfig {
        protocol: Config {
            delay: DelayModel::Fixed(Duration::ZERO).into(),
            ..Config::default()
        },
        ..ServerConfig::default()
    };
    let server = start(
        config,
        Mode::Pool {
            workers: WORKERS,
            queue_timeout: None,
        },
    )?;
    for i in 0..CLIENTS {
        let mut stream = TcpStream::connect(server.local_addr())?;
        stream.set_read_timeout(Some(Duration::from_secs(10)))?;
        stream.write_all(format!("client {i}\n").as_bytes())?;
        let mut reader = BufReader::new(stream.try_clone()?);
        let mut reply = String::new();
        reader.read_line(&mut reply)?;
        assert_eq!(reply, format!("CLIENT {i}\n"));
        stream.shutdown(Shutdown::Write)?;
        let mut rest = Vec::new();
        reader.read_to_end(&mut rest)?;
        assert!(
            rest.is_empty(),
            "client {i}: more after the reply: {rest:?}"
        );
        // The worker is back on the idle stack a moment after the server counts the close.
        let deadline = Instant::now() + Duration::from_secs(10);
        while server.stats().connections_closed < i + 1 {
            assert!(Instant::now() < deadline, "{}", server.stats());
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    let summary = Box::new(server).shutdown()?;
    assert_eq!(summary.requests, CLIENTS, "{summary}");
    assert!(
        (1..=3).contains(&summary.pool_workers_used),
        "{CLIENTS} clients one at a time used {} of {WORKERS} workers: {summary}",
        summary.pool_workers_used
    );
    Ok(())
}
