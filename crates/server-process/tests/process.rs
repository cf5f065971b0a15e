//! A server process's life through the harness, on tiny shell scripts standing in for
//! servers: readiness, the errors that name what went wrong, signals, reaping, `/proc`.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use socket2::{Domain, Socket, Type};

use server_process::{Error, Launch, Ready, ServerProcess, procfs};

/// Far longer than any of these scripts needs; a slow machine only makes a test slower.
const GENEROUS: Duration = Duration::from_secs(30);

fn shell(script: &str) -> Launch {
    Launch::new("sh").name("shell").args(["-c", script])
}

#[test]
fn the_listening_line_gives_the_address_and_sigterm_a_clean_exit_with_stderr() {
    let script = "trap 'echo bye >&2; exit 0' TERM; echo ready >&2; \
                  echo 'listening on 127.0.0.1:1'; while :; do sleep 1; done";
    let server = ServerProcess::start(&shell(script), GENEROUS).expect("it listens");
    assert_eq!(server.addr(), "127.0.0.1:1".parse().expect("an address"));
    assert_eq!(server.name(), "shell");
    let exit = server.stop(GENEROUS).expect("reaped");
    assert!(exit.clean(), "{exit:?}");
    assert!(exit.stderr.starts_with("ready\n"), "{}", exit.stderr);
    assert_eq!(exit.last_stderr_line(), Some("bye"));
    assert!(exit.usage.max_rss_bytes > 0);
}

#[test]
fn a_server_that_dies_before_listening_is_named_with_its_stderr_tail() {
    let error = ServerProcess::start(&shell("echo 'bind: address in use' >&2; exit 3"), GENEROUS)
        .expect_err("it never listens");
    let text = error.to_string();
    assert!(
        text.starts_with("server shell did not become ready within 30s"),
        "{text}"
    );
    assert!(text.contains("before printing `listening on`"), "{text}");
    assert!(text.contains("bind: address in use"), "{text}");
}

#[test]
fn a_server_that_exits_3_saying_skipped_gives_its_reason_and_other_exits_give_none() {
    let script = "echo 'probing' >&2; echo 'skipped: io_uring unavailable: ENOSYS' >&2; exit 3";
    let error = ServerProcess::start(&shell(script), GENEROUS).expect_err("it skips");
    assert_eq!(
        error.skipped(),
        Some("io_uring unavailable: ENOSYS"),
        "{error}"
    );
    let other_status = shell("echo 'skipped: not really' >&2; exit 4");
    let error = ServerProcess::start(&other_status, GENEROUS).expect_err("it fails");
    assert_eq!(error.skipped(), None, "only status 3 skips: {error}");
    let no_line = ServerProcess::start(&shell("echo 'bind failed' >&2; exit 3"), GENEROUS)
        .expect_err("it fails");
    assert_eq!(no_line.skipped(), None, "status 3 alone is not a reason");
}

#[test]
fn a_first_stdout_line_that_is_not_the_listening_line_is_an_error_quoting_it() {
    let error = ServerProcess::start(&shell("echo 'starting up'; exec sleep 30"), GENEROUS)
        .expect_err("wrong first line");
    assert!(
        error
            .to_string()
            .contains("`starting up`, not `listening on"),
        "{error}"
    );
}

#[test]
fn a_server_silent_past_its_time_limit_is_killed_and_named() {
    let error = ServerProcess::start(&shell("exec sleep 30"), Duration::from_millis(100))
        .expect_err("it says nothing");
    assert!(matches!(error, Error::NotReady { .. }), "{error:?}");
    assert!(
        error.to_string().contains("no `listening on` line"),
        "{error}"
    );
}

#[test]
fn a_program_that_does_not_exist_is_named_with_its_cause_said_once() {
    let error = ServerProcess::start(&Launch::new("./no-such-server"), GENEROUS)
        .expect_err("nothing to start");
    let text = error.to_string();
    assert!(
        text.starts_with("cannot start server no-such-server: `./no-such-server`"),
        "{text}"
    );
    assert!(
        text.contains("(os error 2)"),
        "the cause is in the message: {text}"
    );
    assert_eq!(
        std::io::Error::from(error).kind(),
        std::io::ErrorKind::NotFound
    );
}

#[test]
fn an_error_whose_message_holds_its_cause_does_not_also_chain_it() {
    // A chain printer (anyhow's `{:#}`, as xtask formats errors) would repeat the cause.
    let error = ServerProcess::start(&Launch::new("./no-such-server"), GENEROUS)
        .expect_err("nothing to start");
    assert!(std::error::Error::source(&error).is_none(), "{error:?}");
}

#[test]
fn a_server_that_ignores_sigterm_is_killed_and_recorded_as_unclean() {
    let script = "trap '' TERM; echo 'listening on 127.0.0.1:9'; exec sleep 30";
    let server = ServerProcess::start(&shell(script), GENEROUS).expect("it says it listens");
    let exit = server
        .stop(Duration::from_millis(300))
        .expect("reaped after SIGKILL");
    assert!(exit.killed && !exit.clean());
    assert_eq!(exit.signal(), Some(libc::SIGKILL));
}

#[test]
fn waiting_returns_the_exit_after_a_signal_and_fails_naming_a_server_that_stays() {
    let script = "echo 'listening on 127.0.0.1:9'; exec sleep 30";
    let server = ServerProcess::start(&shell(script), GENEROUS).expect("it listens");
    server.signal(libc::SIGINT).expect("delivered");
    let exit = server.wait(GENEROUS).expect("it exits on SIGINT");
    // The signal can reach the shell before it has exec'd `sleep` (it printed the line
    // first); a shell that catches SIGINT then exits with 128 + 2 instead of dying of it.
    // Both are the exit after the signal (a CI run under load saw the second).
    assert!(
        exit.signal() == Some(libc::SIGINT) || exit.code() == Some(128 + libc::SIGINT),
        "{exit:?}"
    );
    assert!(!exit.clean());

    let server = ServerProcess::start(&shell(script), GENEROUS).expect("it listens");
    let pid = server.pid();
    let error = server
        .wait(Duration::from_millis(50))
        .expect_err("it does not exit");
    assert!(
        error
            .to_string()
            .starts_with(&format!("server shell (pid {pid}) was still running")),
        "{error}"
    );
    assert!(procfs::read_status(pid).is_err(), "killed and reaped");
}

#[test]
fn a_dropped_server_is_killed_and_reaped() {
    let script = "echo 'listening on 127.0.0.1:9'; exec sleep 30";
    let server = ServerProcess::start(&shell(script), GENEROUS).expect("it listens");
    let pid = server.pid();
    drop(server);
    assert!(
        procfs::read_status(pid).is_err(),
        "pid {pid} is still there"
    );
}

#[test]
fn a_running_server_is_sampled_and_its_descriptors_counted() -> std::io::Result<()> {
    // Whatever the test runner hands on to every child, plus 7, 8 and 9, which `exec`
    // hands on to sleep.
    let plain = "echo 'listening on 127.0.0.1:9'; exec sleep 30";
    let more = format!("exec 7</dev/null 8</dev/null 9</dev/null; {plain}");
    let base = ServerProcess::start(&shell(plain), GENEROUS).expect("it listens");
    let server = ServerProcess::start(&shell(&more), GENEROUS).expect("it listens");
    let sample = server.sample()?;
    assert!(sample.status.rss_bytes > 0);
    assert_eq!(sample.status.threads, 1);
    // Other tests of this binary spawn children at the same time, and a descriptor of theirs
    // can be open in either child for the instant between its fork and exec: so the counts
    // are compared as "three more" give or take one, and the three are checked by number.
    let with_three = procfs::open_descriptors(server.pid())?;
    let without = procfs::open_descriptors(base.pid())?;
    assert!(
        (without + 2..=without + 4).contains(&with_three) && with_three >= 6,
        "{with_three} against {without}"
    );
    for fd in [7, 8, 9] {
        let path = format!("/proc/{}/fd/{fd}", server.pid());
        assert!(std::fs::symlink_metadata(&path).is_ok(), "{path} is open");
    }
    Ok(())
}

#[test]
fn limits_reach_the_server() {
    let script = "echo \"listening on 127.0.0.1:$(ulimit -n)\"; exec sleep 30";
    let server =
        ServerProcess::start(&shell(script).nofile(Some(77)), GENEROUS).expect("it listens");
    assert_eq!(server.addr().port(), 77);
}

#[test]
fn a_server_that_prints_nothing_is_ready_once_it_accepts() -> std::io::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")?;
    let addr = listener.local_addr()?;
    let launch = shell("exec sleep 30").ready(Ready::Connect(addr));
    let server = ServerProcess::start(&launch, GENEROUS).expect("the address accepts");
    assert_eq!(server.addr(), addr);
    Ok(())
}

#[test]
fn a_server_that_prints_nothing_and_exits_is_named_with_its_status() -> std::io::Result<()> {
    // Bound but not listening: connects are refused, and no other socket can take the port.
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    let addr = socket
        .local_addr()?
        .as_socket()
        .ok_or_else(|| std::io::Error::other("not an inet address"))?;
    let error = ServerProcess::start(&shell("exit 4").ready(Ready::Connect(addr)), GENEROUS)
        .expect_err("nothing accepts");
    assert!(
        error.to_string().contains("exited with exit status: 4"),
        "{error}"
    );
    Ok(())
}
