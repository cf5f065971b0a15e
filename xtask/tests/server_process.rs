//! One server process's life as `compare` sees it (start on port 0, read the listening line,
//! SIGTERM, reap with resource usage), exercised on the article's Python baselines, which
//! must speak the project's line protocol. They need python3 and fail where it is missing:
//! a baseline nobody checked is not a baseline.
//!
//! How the harness itself fails (a server that dies before listening, a wrong first line) is
//! tested once, in `crates/server-process/tests/process.rs`; here only what xtask adds: the
//! run's `ExitRecord`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use xtask::run::server::{self, Launch, ServerProcess};

const GENEROUS: Duration = Duration::from_secs(30);

/// Fails the test, naming what to install, when python3 cannot run.
fn require_python() {
    let found = std::process::Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found,
        "python3 is not on PATH: the article's baselines cannot be checked \
         (install it, e.g. `apt-get install -y python3`)"
    );
}

fn baseline(script: &str, delay_ms: u64) -> Launch {
    let path = xtask::workspace_root().join("baselines").join(script);
    Launch::new("python3")
        .name(script)
        .args([path.display().to_string()])
        .args([
            "--port",
            "0",
            "--delay",
            &delay_ms.to_string(),
            "--backlog",
            "64",
        ])
        .env("PYTHONDONTWRITEBYTECODE", "1")
}

fn shell(script: &str) -> Launch {
    Launch::new("sh").name("shell").args(["-c", script])
}

/// Sends lines (one of them split across writes and cut in a UTF-8 character), then EOF,
/// and reads every reply until the server closes.
fn exchange(addr: std::net::SocketAddr) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect to the baseline");
    stream
        .set_read_timeout(Some(GENEROUS))
        .expect("set timeout");
    let bytes = "hello\nstraße w".as_bytes();
    stream.write_all(&bytes[..11]).expect("first write");
    stream.write_all(&bytes[11..]).expect("second write");
    stream
        .write_all("örld\nlast".as_bytes())
        .expect("third write");
    stream
        .shutdown(std::net::Shutdown::Write)
        .expect("half-close");
    let mut replies = String::new();
    let mut reader = BufReader::new(stream);
    while reader.read_line(&mut replies).expect("read a reply") > 0 {}
    replies
}

fn check_baseline(script: &str) {
    require_python();
    let server = ServerProcess::start(&baseline(script, 20), GENEROUS).expect("baseline starts");
    let sent = Instant::now();
    let replies = exchange(server.addr());
    assert!(
        sent.elapsed() >= Duration::from_millis(20),
        "not before the delay"
    );
    assert_eq!(replies, "HELLO\nSTRASSE WÖRLD\nLAST\n");
    let exit = server.stop(GENEROUS).expect("baseline is reaped");
    assert!(exit.usage.user_cpu_seconds > 0.0, "wait4 usage: {exit:?}");
    let record = server::exit_record(&exit);
    assert!(record.clean, "{script} exits 0 on SIGTERM: {record:?}");
    let summary = record.last_stderr_line.unwrap_or_default();
    assert!(
        summary.contains("connections=1 requests=3 errors=0"),
        "{summary}"
    );
}

#[test]
fn the_threaded_baseline_speaks_the_line_protocol_and_exits_cleanly_on_sigterm() {
    check_baseline("threaded_server.py");
}

#[test]
fn the_asyncio_baseline_speaks_the_line_protocol_and_exits_cleanly_on_sigterm() {
    check_baseline("asyncio_server.py");
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_and_recorded_as_unclean() {
    let script = "trap '' TERM; echo 'listening on 127.0.0.1:9'; exec sleep 30";
    let server = ServerProcess::start(&shell(script), GENEROUS).expect("it says it listens");
    assert_eq!(server.addr().port(), 9);
    let exit = server
        .stop(Duration::from_millis(300))
        .expect("reaped after SIGKILL");
    let record = server::exit_record(&exit);
    assert!(!record.clean);
    assert_eq!(record.signal, Some(libc::SIGKILL));
    assert_eq!(record.code, None);
}
