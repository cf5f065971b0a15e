//! One server process's life as `compare` sees it (start on port 0, read the listening line,
//! SIGTERM, reap with resource usage), exercised on the article's Python baselines, which
//! must speak the project's line protocol. They need python3 and fail where it is missing:
//! a baseline nobody checked is not a baseline.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use xtask::run::server::{self, Launch, Ready};

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
    Launch {
        name: script.to_owned(),
        program: PathBuf::from("python3"),
        args: vec![
            path.display().to_string(),
            "--port".to_owned(),
            "0".to_owned(),
            "--delay".to_owned(),
            delay_ms.to_string(),
            "--backlog".to_owned(),
            "64".to_owned(),
        ],
        envs: vec![("PYTHONDONTWRITEBYTECODE".to_owned(), "1".to_owned())],
        ready: Ready::ListeningLine,
    }
}

fn shell(script: &str) -> Launch {
    Launch {
        name: "shell".to_owned(),
        program: PathBuf::from("sh"),
        args: vec!["-c".to_owned(), script.to_owned()],
        envs: vec![],
        ready: Ready::ListeningLine,
    }
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
    let server = server::start(&baseline(script, 20), GENEROUS).expect("baseline starts");
    let sent = Instant::now();
    let replies = exchange(server.addr());
    assert!(
        sent.elapsed() >= Duration::from_millis(20),
        "not before the delay"
    );
    assert_eq!(replies, "HELLO\nSTRASSE WÖRLD\nLAST\n");
    let (exit, usage) = server.stop(GENEROUS).expect("baseline is reaped");
    assert!(exit.clean, "{script} exits 0 on SIGTERM: {exit:?}");
    let summary = exit.last_stderr_line.unwrap_or_default();
    assert!(
        summary.contains("connections=1 requests=3 errors=0"),
        "{summary}"
    );
    assert!(usage.expect("wait4 usage").user_cpu_seconds > 0.0);
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
fn a_server_that_dies_before_listening_is_named_with_its_stderr_tail() {
    let error = server::start(&shell("echo 'bind: address in use' >&2; exit 3"), GENEROUS)
        .expect_err("it never listens");
    let text = format!("{error:#}");
    assert!(text.contains("server shell did not become ready"), "{text}");
    assert!(text.contains("bind: address in use"), "{text}");
}

#[test]
fn a_first_stdout_line_that_is_not_the_listening_line_is_an_error() {
    let error = server::start(&shell("echo 'starting up'; exec sleep 30"), GENEROUS)
        .expect_err("wrong first line");
    assert!(
        format!("{error:#}").contains("`starting up`, not `listening on"),
        "{error:#}"
    );
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_and_recorded_as_unclean() {
    let script = "trap '' TERM; echo 'listening on 127.0.0.1:9'; exec sleep 30";
    let server = server::start(&shell(script), GENEROUS).expect("it says it listens");
    assert_eq!(server.addr().port(), 9);
    let (exit, _) = server
        .stop(Duration::from_millis(300))
        .expect("reaped after SIGKILL");
    assert!(!exit.clean);
    assert_eq!(exit.signal, Some(libc::SIGKILL));
}
