//! The conformance cases. Each is a private function taking the [`Target`] under test, named
//! once in [`crate::__each_case!`] at the end of this file: that one list makes [`ALL`] and
//! the `#[test]`s of [`crate::suite!`], so every case listed runs on every variant, and a case
//! written here but not listed is dead code, which this crate refuses to build. The wire
//! protocol they check is echo-core's (`docs/PROTOCOL.md`); the server behaviour is the
//! contract in `server_common::server`.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use echo_core::{Config, DelayKind, DelayModel, Framing, format_duration};
use server_common::{Server, ServerConfig, Summary};
use socket2::SockRef;

use crate::Target;
use crate::client::{Client, PATIENCE};
use crate::process::{ServerProcess, exited_cleanly};

/// The delay of most cases: short, so the suite is quick, yet long enough to tell a reply
/// that waited from one that did not.
const DELAY: Duration = Duration::from_millis(20);

/// A server started in-process; shut down when dropped.
struct Running {
    server: Option<Box<dyn Server>>,
    addr: SocketAddr,
}

impl Running {
    fn start(target: &Target, config: ServerConfig) -> io::Result<Running> {
        Running::start_with(target, config, &[])
    }

    /// Starts the variant with `extra` flags after its own (e.g. its queue timeout).
    fn start_with(target: &Target, config: ServerConfig, extra: &[&str]) -> io::Result<Running> {
        let flags: Vec<&str> = target.args.iter().chain(extra).copied().collect();
        let server = (target.start)(config, &flags)?;
        let addr = server.local_addr();
        Ok(Running {
            server: Some(server),
            addr,
        })
    }

    fn connect(&self) -> io::Result<Client> {
        Client::connect(self.addr)
    }

    fn stats(&self) -> Summary {
        self.server.as_ref().map(|s| s.stats()).unwrap_or_default()
    }

    fn shutdown(mut self) -> io::Result<Summary> {
        match self.server.take() {
            Some(server) => server.shutdown(),
            None => Ok(Summary::default()),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            let _ = server.shutdown();
        }
    }
}

/// The suite's configuration: `delay`, a short shutdown timeout, everything else default.
fn config(delay: Duration) -> ServerConfig {
    ServerConfig {
        protocol: Config {
            delay: DelayModel::Fixed(delay).into(),
            ..Config::default()
        },
        shutdown_timeout: Duration::from_secs(5),
        ..ServerConfig::default()
    }
}

fn start(target: &Target) -> io::Result<Running> {
    Running::start(target, config(DELAY))
}

/// Sends `request` and returns the reply line.
fn ask(client: &mut Client, request: &str) -> io::Result<String> {
    client.send(format!("{request}\n"))?;
    client.read_line()
}

/// One line, correct reply, never before the configured delay.
fn a_line_is_answered_upper_cased_and_never_before_the_delay(target: &Target) -> io::Result<()> {
    let delay = Duration::from_millis(50);
    let server = Running::start(target, config(delay))?;
    let mut client = server.connect()?;
    let sent_at = Instant::now();
    let reply = ask(&mut client, "hello, world")?;
    let waited = sent_at.elapsed();
    assert_eq!(reply, "HELLO, WORLD");
    assert!(
        waited >= delay,
        "answered after {waited:?}, before the {delay:?} delay"
    );
    Ok(())
}

/// `block` and `spin` hold the thread that runs the connection instead of waiting beside it;
/// either way the reply is correct and not early.
fn block_and_spin_delays_are_also_answered_never_before_the_delay(
    target: &Target,
) -> io::Result<()> {
    let delay = Duration::from_millis(30);
    for kind in [DelayKind::Block, DelayKind::Spin] {
        let mut settings = config(delay);
        settings.protocol.delay_kind = kind;
        let server = Running::start(target, settings)?;
        let mut client = server.connect()?;
        let sent_at = Instant::now();
        assert_eq!(
            ask(&mut client, &format!("{kind} me"))?,
            format!("{} ME", kind.to_string().to_uppercase())
        );
        let waited = sent_at.elapsed();
        assert!(
            waited >= delay,
            "{kind}: answered after {waited:?}, before the {delay:?} delay"
        );
    }
    Ok(())
}

/// A request recipe (`spin:15ms+wait:30ms`): CPU work on the connection's thread, then an
/// honest wait. Each request runs every phase in order and is answered after the last, so a
/// reply comes no sooner than the sum of the phases, and the second of two pipelined
/// requests no sooner than twice that.
fn a_recipe_of_spin_then_wait_is_answered_after_at_least_the_sum_of_its_phases(
    target: &Target,
) -> io::Result<()> {
    let (spin, wait) = (Duration::from_millis(15), Duration::from_millis(30));
    let mut settings = config(DELAY);
    let spec = format!(
        "spin:{}+wait:{}",
        format_duration(spin),
        format_duration(wait)
    );
    settings.protocol.delay = spec
        .parse()
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    let server = Running::start(target, settings)?;
    let mut client = server.connect()?;
    let sent_at = Instant::now();
    client.send("first\nsecond\n")?;
    assert_eq!(client.read_line()?, "FIRST");
    let first = sent_at.elapsed();
    assert_eq!(client.read_line()?, "SECOND");
    let second = sent_at.elapsed();
    let sum = spin + wait;
    assert!(
        first >= sum,
        "{spec}: answered after {first:?}, before the {sum:?} its phases add up to"
    );
    assert!(
        second >= sum * 2,
        "{spec}: the second request answered after {second:?}, before two recipes, {:?}",
        sum * 2
    );
    drop(client);
    let summary = server.shutdown()?;
    assert_eq!((summary.requests, summary.errors), (2, 0), "{summary}");
    Ok(())
}

/// A `block` delay while a reply is still unwritten to a slow reader. The driver writes what
/// the socket takes before it spends the next request's delay, and spends it even though the
/// rest of the reply waits behind a full socket (the order of `server_common::driver`). On the
/// wire that shows as: both replies whole and in order, the second never before its own delay
/// has passed after the first was due, and the connection served to its end.
fn a_block_delay_behind_a_reply_unwritten_to_a_slow_reader_keeps_both_replies_whole_and_in_order(
    target: &Target,
) -> io::Result<()> {
    // More than the server's send buffer (at most 4 MiB) and the unread client's receive
    // window together, so the first reply cannot all be written before the second delay.
    const REPLY_BYTES: usize = 8 * 1024 * 1024;
    let delay = Duration::from_millis(30);
    let mut settings = config(delay);
    settings.protocol.delay_kind = DelayKind::Block;
    settings.protocol.max_line_bytes = 2 * REPLY_BYTES;
    settings.protocol.max_output_bytes = 4 * REPLY_BYTES;
    let server = Running::start(target, settings)?;
    let mut client = server.connect()?;
    let mut request = vec![b'a'; REPLY_BYTES];
    request.extend_from_slice(b"\nsecond\n");
    let sent_at = Instant::now();
    client.send(&request)?;
    // A stimulus, not a synchronisation: the reader is slow, so the second request's delay
    // begins with most of the first reply unwritten.
    std::thread::sleep(delay * 3);
    let mut first = vec![0u8; REPLY_BYTES + 1];
    io::Read::read_exact(&mut client.stream(), &mut first)?;
    let expected_byte = |i: usize| if i == REPLY_BYTES { b'\n' } else { b'A' };
    let wrong = first
        .iter()
        .enumerate()
        .position(|(i, &b)| b != expected_byte(i));
    assert_eq!(wrong, None, "the first reply differs at byte {wrong:?}");
    assert_eq!(client.read_line()?, "SECOND");
    let waited = sent_at.elapsed();
    assert!(
        waited >= delay * 2,
        "both replies after {waited:?}, before two {delay:?} delays"
    );
    drop(client);
    let summary = server.shutdown()?;
    assert_eq!((summary.requests, summary.errors), (2, 0), "{summary}");
    Ok(())
}

/// Pipelined requests: one segment holding three lines gets three replies, in order.
fn many_lines_in_one_write_are_answered_in_order(target: &Target) -> io::Result<()> {
    let server = start(target)?;
    let mut client = server.connect()?;
    client.send("one\ntwo\nthree\n")?;
    for expected in ["ONE", "TWO", "THREE"] {
        assert_eq!(client.read_line()?, expected);
    }
    Ok(())
}

/// Pauses between writes so that they arrive as separate segments. A stimulus, not a
/// synchronisation: the case passes whatever the server's reads happen to see.
fn send_in_pieces(client: &mut Client, pieces: &[&[u8]]) -> io::Result<()> {
    for piece in pieces {
        client.send(piece)?;
        std::thread::sleep(Duration::from_millis(15));
    }
    Ok(())
}

/// TCP is a stream: a line spread over several segments is one request.
fn a_line_sent_in_many_writes_is_answered_once(target: &Target) -> io::Result<()> {
    let server = start(target)?;
    let mut client = server.connect()?;
    send_in_pieces(&mut client, &[b"hel", b"lo wo", b"rld", b"\n"])?;
    assert_eq!(client.read_line()?, "HELLO WORLD");
    assert_eq!(
        ask(&mut client, "next")?,
        "NEXT",
        "one line must give exactly one reply"
    );
    Ok(())
}

/// Decoding happens per line, not per read: a two-byte character cut between segments is
/// upper-cased whole.
fn a_character_split_across_writes_is_upper_cased_whole(target: &Target) -> io::Result<()> {
    let server = start(target)?;
    let mut client = server.connect()?;
    let bytes = "straße\n".as_bytes();
    let inside_sharp_s = 5; // "stra" then the first byte of the two-byte "ß"
    send_in_pieces(
        &mut client,
        &[&bytes[..inside_sharp_s], &bytes[inside_sharp_s..]],
    )?;
    assert_eq!(client.read_line()?, "STRASSE");
    Ok(())
}

/// Full Unicode upper-casing, including characters that grow (`ß` becomes `SS`).
fn upper_casing_covers_all_of_unicode(target: &Target) -> io::Result<()> {
    let server = start(target)?;
    let mut client = server.connect()?;
    assert_eq!(ask(&mut client, "straße")?, "STRASSE");
    assert_eq!(ask(&mut client, "ﬁne ǆ ŉ")?, "FINE Ǆ ʼN");
    for text in ["éàü çœ", "σοφία", "привет", "ﬀ ΐ ſ", "日本語 stays"] {
        assert_eq!(
            ask(&mut client, text)?,
            text.to_uppercase(),
            "upper-casing {text:?}"
        );
    }
    Ok(())
}

/// A line that is not UTF-8 is answered `ERR invalid utf-8`, and the next line is served.
fn invalid_utf8_gets_an_err_line_and_the_connection_lives_on(target: &Target) -> io::Result<()> {
    let server = start(target)?;
    let mut client = server.connect()?;
    client.send(b"ab\xff\xfecd\n")?;
    assert_eq!(client.read_line()?, "ERR invalid utf-8");
    assert_eq!(ask(&mut client, "still here")?, "STILL HERE");
    Ok(())
}

/// A line past `max_line_bytes` is answered `ERR line too long (limit N bytes)` and the
/// connection is closed; a client already connected and a new one are served as usual.
fn an_oversized_line_gets_an_err_line_and_a_close_while_others_are_unaffected(
    target: &Target,
) -> io::Result<()> {
    let mut settings = config(DELAY);
    settings.protocol.max_line_bytes = 1024;
    let server = Running::start(target, settings)?;
    let mut bystander = server.connect()?;
    assert_eq!(ask(&mut bystander, "before")?, "BEFORE");
    let mut offender = server.connect()?;
    offender.send(vec![b'a'; 2000])?;
    assert_eq!(
        offender.read_line()?,
        "ERR line too long (limit 1024 bytes)"
    );
    offender.expect_closed()?;
    assert_eq!(ask(&mut bystander, "after")?, "AFTER");
    let mut newcomer = server.connect()?;
    assert_eq!(ask(&mut newcomer, "new")?, "NEW");
    Ok(())
}

/// A client that sends and then half-closes gets every reply, the last line (with no `\n`)
/// included, before the server closes.
fn a_half_closed_client_gets_every_reply_including_an_unterminated_last_line(
    target: &Target,
) -> io::Result<()> {
    let server = start(target)?;
    let mut client = server.connect()?;
    client.send("one\ntwo\nthree")?;
    client.finish_sending()?;
    assert_eq!(client.read_to_close()?, b"ONE\nTWO\nTHREE\n");
    Ok(())
}

/// The article's server: one read is the message, the reply is it upper-cased with nothing
/// added, then the server closes.
fn raw_framing_answers_one_chunk_upper_cased_and_closes_like_the_articles_server(
    target: &Target,
) -> io::Result<()> {
    let mut settings = config(DELAY);
    settings.protocol.framing = Framing::Raw;
    let server = Running::start(target, settings)?;
    for message in ["hello, world", "straße"] {
        let mut client = server.connect()?;
        client.send(message)?;
        let reply = client.read_to_close()?;
        assert_eq!(String::from_utf8_lossy(&reply), message.to_uppercase());
    }
    Ok(())
}

/// A client that sends nothing is told `ERR idle timeout (limit ...)` and closed, not before
/// the limit; others are served meanwhile.
fn an_idle_client_is_closed_after_the_idle_limit(target: &Target) -> io::Result<()> {
    let limit = Duration::from_millis(300);
    let mut settings = config(DELAY);
    settings.protocol.idle_timeout = Some(limit);
    let server = Running::start(target, settings)?;
    let connected_at = Instant::now();
    let mut idle = server.connect()?;
    assert_eq!(idle.read_line()?, "ERR idle timeout (limit 300ms)");
    idle.expect_closed()?;
    assert!(
        connected_at.elapsed() >= limit,
        "closed before the idle limit"
    );
    let mut busy = server.connect()?;
    assert_eq!(ask(&mut busy, "awake")?, "AWAKE");
    Ok(())
}

/// With no delay the server answers as fast as it reads, so a client that never reads
/// fills the server's output; a bounded server then stops reading from it, and the client's
/// writes stall. An unbounded one would swallow everything sent.
fn a_client_that_never_reads_is_throttled_and_others_are_still_served(
    target: &Target,
) -> io::Result<()> {
    const CEILING_BYTES: usize = 256 * 1024 * 1024;
    let server = Running::start(target, config(Duration::ZERO))?;
    let hog = server.connect()?;
    hog.stream()
        .set_write_timeout(Some(Duration::from_secs(2)))?;
    let chunk = "x".repeat(1023) + "\n";
    let chunk = chunk.repeat(64);
    let mut sent = 0usize;
    let stalled = loop {
        match io::Write::write(&mut hog.stream(), chunk.as_bytes()) {
            Ok(n) => sent += n,
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                break true;
            }
            Err(err) => return Err(err),
        }
        if sent > CEILING_BYTES {
            break false;
        }
    };
    assert!(
        stalled,
        "the server took {sent} bytes from a client that never reads"
    );
    let mut other = server.connect()?;
    assert_eq!(ask(&mut other, "served")?, "SERVED");
    Ok(())
}

/// Closes with SO_LINGER 0, so the server sees a reset instead of an orderly close.
fn reset(client: Client) -> io::Result<()> {
    SockRef::from(client.stream()).set_linger(Some(Duration::ZERO))?;
    drop(client);
    Ok(())
}

/// Resets (SO_LINGER 0) mid-line, during a request's delay, and during a second request's
/// delay after a reply: an observer connection and a newcomer are served throughout.
fn abrupt_resets_mid_request_do_not_disturb_other_clients(target: &Target) -> io::Result<()> {
    let server = start(target)?;
    let mut observer = server.connect()?;
    for round in 0..30 {
        let mut victim = server.connect()?;
        match round % 3 {
            0 => victim.send("half a li")?,
            1 => victim.send("a whole line, reset during its delay\n")?,
            _ => {
                victim.send("answered\nthen reset during the second\n")?;
                assert_eq!(victim.read_line()?, "ANSWERED");
            }
        }
        reset(victim)?;
        if round % 10 == 9 {
            assert_eq!(
                ask(&mut observer, &format!("round {round}"))?,
                format!("ROUND {round}")
            );
        }
    }
    let mut newcomer = server.connect()?;
    assert_eq!(ask(&mut newcomer, "fine")?, "FINE");
    Ok(())
}

/// Every client sends its line and half-closes before any reply is read, so all 2000 are
/// in the server at once (a pool's queue included).
fn two_thousand_concurrent_clients_all_get_correct_replies(target: &Target) -> io::Result<()> {
    const CLIENTS: usize = 2000;
    let server = start(target)?;
    let mut clients = Vec::with_capacity(CLIENTS);
    for i in 0..CLIENTS {
        let mut client = server.connect()?;
        client.send(format!("client {i}\n"))?;
        client.finish_sending()?;
        clients.push(client);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        let reply = client.read_to_close()?;
        assert_eq!(String::from_utf8_lossy(&reply), format!("CLIENT {i}\n"));
    }
    Ok(())
}

/// Waits for a reply that must not come while the server is saturated: a read that times
/// out is the expected outcome.
fn assert_unanswered(client: &mut Client, patience: Duration, why: &str) -> io::Result<()> {
    client.set_patience(patience)?;
    match client.read_line() {
        Err(err)
            if matches!(
                err.kind(),
                io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
            ) => {}
        other => panic!("{why}: expected no reply yet, got {other:?}"),
    }
    client.set_patience(PATIENCE)
}

/// At `max_connections` the server leaves new connections in the backlog (serving the open
/// ones), and takes the next one as soon as a client leaves.
fn at_max_connections_the_server_waits_and_accepts_again_when_a_client_leaves(
    target: &Target,
) -> io::Result<()> {
    let mut settings = config(DELAY);
    settings.max_connections = 3;
    let server = Running::start(target, settings)?;
    let mut admitted = Vec::new();
    for i in 0..3 {
        let mut client = server.connect()?;
        assert_eq!(ask(&mut client, &format!("in {i}"))?, format!("IN {i}"));
        admitted.push(client);
    }
    let mut waiting = server.connect()?;
    waiting.send("let me in\n")?;
    assert_unanswered(
        &mut waiting,
        Duration::from_millis(500),
        "a fourth connection",
    )?;
    assert_eq!(ask(&mut admitted[0], "still served")?, "STILL SERVED");
    drop(admitted.pop());
    assert_eq!(waiting.read_line()?, "LET ME IN");
    assert!(
        server.stats().accept_backoffs > 0,
        "the server never backed off"
    );
    Ok(())
}

/// The final summary counts connections, answered requests and `ERR` replies exactly.
fn the_summary_counts_connections_requests_and_errors(target: &Target) -> io::Result<()> {
    let server = start(target)?;
    for _ in 0..2 {
        let mut client = server.connect()?;
        client.send(b"one\n\xff\ntwo\n")?;
        client.finish_sending()?;
        assert_eq!(client.read_to_close()?, b"ONE\nERR invalid utf-8\nTWO\n");
    }
    let summary = server.shutdown()?;
    assert_eq!(summary.connections_accepted, 2, "{summary}");
    assert_eq!((summary.requests, summary.errors), (4, 2), "{summary}");
    assert_eq!(summary.connections_open, 0, "{summary}");
    Ok(())
}

/// The second request of each client is in flight (its first reply has come back, and both
/// were sent in one write) when shutdown begins; it must still be answered.
fn shutdown_answers_every_request_already_received(target: &Target) -> io::Result<()> {
    let server = Running::start(target, config(Duration::from_millis(200)))?;
    let mut clients = in_flight_clients(server.addr, 5)?;
    let stopping = std::thread::spawn(move || server.shutdown());
    for client in &mut clients {
        assert_eq!(client.read_line()?, "SECOND");
        client.expect_closed()?;
    }
    let summary = stopping
        .join()
        .map_err(|_| io::Error::other("shutdown panicked"))??;
    assert_eq!(summary.requests, 10, "{summary}");
    Ok(())
}

/// `n` clients, each with a second request received by the server and in flight.
fn in_flight_clients(addr: SocketAddr, n: usize) -> io::Result<Vec<Client>> {
    let mut clients = Vec::with_capacity(n);
    for _ in 0..n {
        let mut client = Client::connect(addr)?;
        client.send("first\nsecond\n")?;
        clients.push(client);
    }
    for client in &mut clients {
        assert_eq!(client.read_line()?, "FIRST");
    }
    Ok(clients)
}

/// The server process runs with glibc's per-thread malloc cache off (see server-common's
/// `run.rs`: a pool's workers each keep a cache, and RSS grew with them), though the
/// environment it was started in did not say so.
fn the_binary_runs_with_glibcs_per_thread_malloc_cache_off(target: &Target) -> io::Result<()> {
    let process = ServerProcess::spawn(target.binary, target.args, None)?;
    let environ = std::fs::read(format!("/proc/{}/environ", process.pid()))?;
    let tunables: Vec<String> = environ
        .split(|&b| b == 0)
        .filter_map(|var| var.strip_prefix(b"GLIBC_TUNABLES="))
        .map(|value| String::from_utf8_lossy(value).into_owned())
        .collect();
    assert_eq!(
        tunables,
        [server_common::run::TCACHE_OFF],
        "GLIBC_TUNABLES of the running server"
    );
    let mut client = Client::connect(process.addr())?;
    assert_eq!(ask(&mut client, "cache off")?, "CACHE OFF");
    Ok(())
}

/// The binary prints `listening on <ip>:<port>` (with the real port for `--port 0`), serves
/// on it, and `--help` says what it is and explains every common flag.
fn the_binary_announces_its_address_and_explains_every_flag(target: &Target) -> io::Result<()> {
    let process = ServerProcess::spawn(target.binary, target.args, None)?;
    assert!(
        process.addr().ip().is_loopback(),
        "listening on {}",
        process.addr()
    );
    assert_ne!(process.addr().port(), 0);
    let mut client = Client::connect(process.addr())?;
    assert_eq!(ask(&mut client, "binary")?, "BINARY");
    let help = std::process::Command::new(target.binary)
        .arg("--help")
        .output()?;
    let help = String::from_utf8_lossy(&help.stdout);
    // The first line says what the binary is, in the user's words (not a doc comment of the
    // code, which clap's derive puts there unless told otherwise).
    let first = help.lines().next().unwrap_or_default();
    assert!(
        first.to_lowercase().contains("uppercase echo server") && !first.contains('`'),
        "--help does not start by saying what the server is: {first:?}"
    );
    for flag in [
        "--host",
        "--port",
        "--delay",
        "--delay-kind",
        "--framing",
        "--max-line-bytes",
        "--idle-timeout",
        "--max-connections",
        "--backlog",
        "--shutdown-timeout",
        "--verbose",
    ] {
        assert!(
            help.contains(flag),
            "--help does not mention {flag}:\n{help}"
        );
    }
    // The recipe grammar, with the examples of docs/PROTOCOL.md.
    for example in [
        "PHASE(+PHASE)*",
        "KIND:DURATION",
        "spin:2ms+wait:100ms",
        "block:100ms",
        "wait:uniform:50ms..150ms",
    ] {
        assert!(
            help.contains(example),
            "--help does not give {example}:\n{help}"
        );
    }
    Ok(())
}

/// `-v` logs every connection (naming the client's address, like the article's prints);
/// without it, nothing per connection reaches stderr.
fn verbose_mode_logs_each_connection_and_quiet_mode_does_not(target: &Target) -> io::Result<()> {
    for verbose in [true, false] {
        let flags: &[&str] = if verbose { &["-v"] } else { &[] };
        let args: Vec<&str> = flags.iter().chain(target.args).copied().collect();
        let process = ServerProcess::spawn(target.binary, &args, None)?;
        let mut client = Client::connect(process.addr())?;
        let peer = client.stream().local_addr()?.to_string();
        assert_eq!(ask(&mut client, "log me")?, "LOG ME");
        drop(client);
        process.signal(libc::SIGTERM)?;
        let (status, stderr) = process.wait(PATIENCE)?;
        assert!(
            exited_cleanly(status),
            "exit status {status:?}, stderr:\n{stderr}"
        );
        assert_eq!(
            stderr.contains(&peer),
            verbose,
            "verbose {verbose}, stderr:\n{stderr}"
        );
    }
    Ok(())
}

/// Runs the binary with the variant's flags and `flags`, expecting it to refuse to start:
/// it exits non-zero, having announced nothing on stdout, with a stderr that names every one
/// of `named` (what it refused).
fn refused_at_start(target: &Target, flags: &[&str], named: &[String]) -> io::Result<()> {
    let output = std::process::Command::new(target.binary)
        .args(target.args)
        .args(flags)
        .stdin(std::process::Stdio::null())
        .output()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !output.status.success(),
        "started with {flags:?}; stderr:\n{stderr}"
    );
    for name in named {
        assert!(
            stderr.contains(name.as_str()),
            "the error does not name {name}:\n{stderr}"
        );
    }
    assert!(
        output.stdout.is_empty(),
        "announced a listener it does not have, with {flags:?}"
    );
    Ok(())
}

/// A delay spec with a bad phase: the binary refuses it at start, exits non-zero, names the
/// spec and the faulty phase, and announces nothing.
fn the_binary_refuses_a_bad_delay_spec_naming_the_faulty_phase(target: &Target) -> io::Result<()> {
    let spec = "spin:2ms+wait:2xs";
    let named = [format!("{spec:?}"), "phase 2 \"wait:2xs\"".to_owned()];
    refused_at_start(target, &["--port", "0", "--delay", spec], &named)
}

/// A port already taken: the binary exits non-zero, names the address, announces nothing.
fn the_binary_refuses_an_address_in_use_naming_it(target: &Target) -> io::Result<()> {
    let taken = std::net::TcpListener::bind("127.0.0.1:0")?;
    let port = taken.local_addr()?.port().to_string();
    refused_at_start(target, &["--port", &port], &[format!("127.0.0.1:{port}")])
}

/// Run with only 32 descriptors, the server soon fails to accept (EMFILE). It must keep
/// serving the connections it has, pause instead of retrying in a loop, and accept the
/// waiting connection once others leave.
fn out_of_descriptors_the_binary_keeps_serving_without_burning_cpu_and_accepts_again(
    target: &Target,
) -> io::Result<()> {
    let args: Vec<&str> = ["--delay", "20ms"]
        .iter()
        .chain(target.args)
        .copied()
        .collect();
    let process = ServerProcess::spawn(target.binary, &args, Some(32))?;
    let (mut served, mut waiting) = saturate(process.addr())?;
    assert_eq!(ask(&mut served[0], "still served")?, "STILL SERVED");
    // A server retrying `accept` in a loop burns most of a core; one that backs off uses
    // next to nothing. A quarter of the window separates them even on a busy machine.
    let window = Duration::from_secs(2);
    let before = process.cpu_time()?;
    // The measurement window itself, not a synchronisation.
    std::thread::sleep(window);
    let burnt = process.cpu_time()? - before;
    assert!(
        burnt < window / 4,
        "the saturated server used {burnt:?} of CPU in {window:?}"
    );
    served.clear();
    assert_eq!(waiting.read_line()?, "WAITING");
    drop(waiting);
    process.signal(libc::SIGTERM)?;
    let (_, stderr) = process.wait(PATIENCE)?;
    // The operator hears of the episode once, not once per failed retry (2 s of saturation at
    // pauses of at most 100 ms means dozens of failures), and hears when it is over.
    let failures = stderr.matches("accept failed (out of descriptors)").count();
    assert!(
        (1..=4).contains(&failures),
        "expected one warning per loop's episode, got {failures}:\n{stderr}"
    );
    assert!(
        stderr.contains("accepting again"),
        "no recovery logged:\n{stderr}"
    );
    Ok(())
}

/// Opens connections one by one until one is not answered; returns the answered ones (still
/// open, at least one) and the waiting one.
fn saturate(addr: SocketAddr) -> io::Result<(Vec<Client>, Client)> {
    let mut served = Vec::new();
    for attempt in 0..64 {
        let mut client = Client::connect(addr)?;
        client.send("waiting\n")?;
        // Far longer than a 20 ms reply takes; a slow machine can only make the case stop
        // early, with fewer connections served, not fail it.
        client.set_patience(Duration::from_secs(3))?;
        match client.read_line() {
            Ok(reply) => {
                assert_eq!(reply, "WAITING");
                client.set_patience(PATIENCE)?;
                served.push(client);
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                assert!(attempt > 0, "not even the first connection was served");
                client.set_patience(PATIENCE)?;
                return Ok((served, client));
            }
            Err(err) => return Err(err),
        }
    }
    Err(io::Error::other(
        "64 connections served with 32 descriptors: the limit had no effect",
    ))
}

/// SIGTERM while every client has a request in flight: each is answered, each connection
/// is closed, the process exits 0 and prints the summary line on stderr.
fn sigterm_during_load_answers_every_request_received_and_exits_cleanly(
    target: &Target,
) -> io::Result<()> {
    const CLIENTS: usize = 20;
    let args: Vec<&str> = ["--delay", "300ms"]
        .iter()
        .chain(target.args)
        .copied()
        .collect();
    let process = ServerProcess::spawn(target.binary, &args, None)?;
    let mut clients = in_flight_clients(process.addr(), CLIENTS)?;
    process.signal(libc::SIGTERM)?;
    for client in &mut clients {
        assert_eq!(client.read_line()?, "SECOND");
        client.expect_closed()?;
    }
    let (status, stderr) = process.wait(PATIENCE)?;
    assert!(
        exited_cleanly(status),
        "exit status {status:?}, stderr:\n{stderr}"
    );
    let expected = format!("connections {CLIENTS}, requests {}, errors 0", 2 * CLIENTS);
    assert!(
        stderr.contains(&expected),
        "no `{expected}` summary in stderr:\n{stderr}"
    );
    Ok(())
}

/// SIGTERM with a short `--shutdown-timeout` while every client has a request under a delay
/// far longer: the server cannot answer them in time, so each client reads
/// `ERR server shutting down` and then the close, never a silent EOF. Each client's first line
/// is invalid UTF-8, answered at once in the same read as the slow request: its `ERR` line is
/// the sign that the server holds the slow request before the signal is sent.
fn past_the_shutdown_timeout_a_request_under_way_is_told_the_server_is_shutting_down(
    target: &Target,
) -> io::Result<()> {
    const CLIENTS: usize = 3;
    let args: Vec<&str> = ["--delay", "60s", "--shutdown-timeout", "300ms"]
        .iter()
        .chain(target.args)
        .copied()
        .collect();
    let process = ServerProcess::spawn(target.binary, &args, None)?;
    let mut clients = Vec::with_capacity(CLIENTS);
    for _ in 0..CLIENTS {
        let mut client = Client::connect(process.addr())?;
        client.send(b"\xff\nslow\n")?;
        assert_eq!(client.read_line()?, "ERR invalid utf-8");
        clients.push(client);
    }
    process.signal(libc::SIGTERM)?;
    for (i, client) in clients.iter_mut().enumerate() {
        let rest = client
            .read_to_close()
            .map_err(|e| io::Error::new(e.kind(), format!("client {i}: {e}")))?;
        assert_eq!(
            String::from_utf8_lossy(&rest),
            "ERR server shutting down\n",
            "client {i}"
        );
    }
    let (status, stderr) = process.wait(PATIENCE)?;
    assert!(
        exited_cleanly(status),
        "exit status {status:?}, stderr:\n{stderr}"
    );
    let expected = format!("connections {CLIENTS}, requests 0, errors {}", 2 * CLIENTS);
    assert!(
        stderr.contains(&expected),
        "no `{expected}` summary in stderr:\n{stderr}"
    );
    Ok(())
}

/// Waits until the server's live stats satisfy `ready` (what the test waits for happens in
/// the server, where no signal reaches the client); fails after [`PATIENCE`], naming `what`.
fn wait_for_stats(
    server: &Running,
    what: &str,
    ready: impl Fn(&Summary) -> bool,
) -> io::Result<()> {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let stats = server.stats();
        if ready(&stats) {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(io::Error::other(format!(
                "gave up waiting for {what}: {stats}"
            )));
        }
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// `n` clients that have each sent one line, `request {i}`, and read nothing.
fn clients_with_one_line(addr: SocketAddr, n: usize, request: &str) -> io::Result<Vec<Client>> {
    (0..n)
        .map(|i| {
            let mut client = Client::connect(addr)?;
            client.send(format!("{request} {i}\n"))?;
            Ok(client)
        })
        .collect()
}

/// The issue-13 repro: 200 clients each send one line and the server is told to stop as soon
/// as it has accepted them all. Every client, served or still waiting for a worker, gets its
/// reply and then the close: a server never leaves a client it accepted in silence. Where the
/// variant queues, most of the 200 were queued when the stop came.
fn shutdown_answers_every_accepted_client_including_those_still_queued(
    target: &Target,
) -> io::Result<()> {
    const CLIENTS: usize = 200;
    let server = start(target)?;
    let mut clients = clients_with_one_line(server.addr, CLIENTS, "client")?;
    wait_for_stats(&server, "every client accepted", |s| {
        s.connections_accepted == CLIENTS as u64
    })?;
    let stopping = std::thread::spawn(move || server.shutdown());
    for (i, client) in clients.iter_mut().enumerate() {
        let reply = client
            .read_to_close()
            .map_err(|e| io::Error::new(e.kind(), format!("client {i}: {e}")))?;
        assert_eq!(
            String::from_utf8_lossy(&reply),
            format!("CLIENT {i}\n"),
            "client {i}"
        );
    }
    let summary = stopping
        .join()
        .map_err(|_| io::Error::other("shutdown panicked"))??;
    assert_eq!(summary.requests, CLIENTS as u64, "{summary}");
    match target.queue {
        Some(queue) => {
            assert!(queue.workers < CLIENTS, "{queue:?} leaves nothing queued");
            assert!(
                summary.peak_queued_connections >= (CLIENTS - queue.workers) as u64,
                "clients beyond the workers were not queued: {summary}"
            );
        }
        None => assert_eq!(summary.peak_queued_connections, 0, "{summary}"),
    }
    assert_eq!(summary.shutdown_refused_connections, 0, "{summary}");
    Ok(())
}

/// Holders occupy every worker (each answered once, then idle); a newcomer's line then waits
/// in the queue. Past the queue timeout, and not before, the newcomer is told
/// `ERR server busy` and closed, counted as shed, while the holders are still served. A
/// variant without a queue serves the newcomer beside as many holders, and sheds nothing.
fn a_client_queued_longer_than_the_queue_timeout_is_told_the_server_is_busy(
    target: &Target,
) -> io::Result<()> {
    let queue_timeout = Duration::from_millis(300);
    let timeout_text = format_duration(queue_timeout);
    let extra: Vec<&str> = match &target.queue {
        Some(queue) => vec![queue.timeout_flag, &timeout_text],
        None => Vec::new(),
    };
    let holders = target.queue.map_or(64, |queue| queue.workers);
    let server = Running::start_with(target, config(DELAY), &extra)?;
    let mut held = clients_with_one_line(server.addr, holders, "hold")?;
    for (i, holder) in held.iter_mut().enumerate() {
        assert_eq!(holder.read_line()?, format!("HOLD {i}"));
    }
    // From before the connect: the server may accept (and start the queue timeout) before
    // the connect returns here.
    let connecting_at = Instant::now();
    let mut newcomer = server.connect()?;
    newcomer.send("anyone there?\n")?;
    let reply = newcomer.read_line()?;
    let waited = connecting_at.elapsed();
    if target.queue.is_none() {
        assert_eq!(reply, "ANYONE THERE?");
        assert_eq!(server.stats().shed_connections, 0);
        return Ok(());
    }
    assert_eq!(reply, "ERR server busy");
    newcomer.expect_closed()?;
    assert!(
        waited >= queue_timeout,
        "told busy after {waited:?}, before the {queue_timeout:?} queue timeout"
    );
    assert_eq!(ask(&mut held[0], "still served")?, "STILL SERVED");
    let summary = server.shutdown()?;
    assert_eq!(summary.shed_connections, 1, "{summary}");
    Ok(())
}

/// Holders occupy every worker with a request whose delay outlasts the shutdown timeout, and
/// more clients wait in the queue behind them (no queue timeout). When the shutdown timeout
/// passes, each queued client is told `ERR server shutting down` and closed, counted as
/// refused at shutdown. A variant without a queue has every one of these clients in service
/// at once, so with a delay inside the shutdown timeout every one of them is answered and
/// nothing is refused.
fn past_the_shutdown_timeout_queued_clients_are_told_the_server_is_shutting_down(
    target: &Target,
) -> io::Result<()> {
    const WAITING: usize = 5;
    let Some(queue) = target.queue else {
        let server = start(target)?;
        let mut clients = clients_with_one_line(server.addr, 64 + WAITING, "client")?;
        wait_for_stats(&server, "every client accepted", |s| {
            s.connections_accepted == clients.len() as u64
        })?;
        let stopping = std::thread::spawn(move || server.shutdown());
        for (i, client) in clients.iter_mut().enumerate() {
            assert_eq!(client.read_line()?, format!("CLIENT {i}"));
            client.expect_closed()?;
        }
        let summary = stopping
            .join()
            .map_err(|_| io::Error::other("shutdown panicked"))??;
        assert_eq!(summary.shutdown_refused_connections, 0, "{summary}");
        return Ok(());
    };
    let mut settings = config(Duration::from_secs(2));
    settings.shutdown_timeout = Duration::from_millis(300);
    let server = Running::start_with(target, settings, &[queue.timeout_flag, "off"])?;
    let _held = clients_with_one_line(server.addr, queue.workers, "hold")?;
    wait_for_stats(&server, "every worker holding a client", |s| {
        s.dequeued_connections == queue.workers as u64
    })?;
    let mut waiting = clients_with_one_line(server.addr, WAITING, "wait")?;
    wait_for_stats(&server, "the clients queued", |s| {
        s.queued_connections == WAITING as u64
    })?;
    let stopping = std::thread::spawn(move || server.shutdown());
    for client in &mut waiting {
        assert_eq!(client.read_line()?, "ERR server shutting down");
        client.expect_closed()?;
    }
    let summary = stopping
        .join()
        .map_err(|_| io::Error::other("shutdown panicked"))??;
    assert_eq!(
        summary.shutdown_refused_connections, WAITING as u64,
        "{summary}"
    );
    assert_eq!(summary.shed_connections, 0, "{summary}");
    Ok(())
}

/// A conformance case: what it checks is in its doc comment.
pub type Case = fn(&Target) -> io::Result<()>;

/// Calls back `$then!` with the name of every case, in the order the suite runs them: the
/// one list of cases (see the module docs).
#[doc(hidden)]
#[macro_export]
macro_rules! __each_case {
    ($($then:tt)+) => {
        $($then)+! {
            a_line_is_answered_upper_cased_and_never_before_the_delay,
            block_and_spin_delays_are_also_answered_never_before_the_delay,
            a_recipe_of_spin_then_wait_is_answered_after_at_least_the_sum_of_its_phases,
            a_block_delay_behind_a_reply_unwritten_to_a_slow_reader_keeps_both_replies_whole_and_in_order,
            many_lines_in_one_write_are_answered_in_order,
            a_line_sent_in_many_writes_is_answered_once,
            a_character_split_across_writes_is_upper_cased_whole,
            upper_casing_covers_all_of_unicode,
            invalid_utf8_gets_an_err_line_and_the_connection_lives_on,
            an_oversized_line_gets_an_err_line_and_a_close_while_others_are_unaffected,
            a_half_closed_client_gets_every_reply_including_an_unterminated_last_line,
            raw_framing_answers_one_chunk_upper_cased_and_closes_like_the_articles_server,
            an_idle_client_is_closed_after_the_idle_limit,
            a_client_that_never_reads_is_throttled_and_others_are_still_served,
            abrupt_resets_mid_request_do_not_disturb_other_clients,
            two_thousand_concurrent_clients_all_get_correct_replies,
            at_max_connections_the_server_waits_and_accepts_again_when_a_client_leaves,
            the_summary_counts_connections_requests_and_errors,
            shutdown_answers_every_request_already_received,
            the_binary_announces_its_address_and_explains_every_flag,
            the_binary_runs_with_glibcs_per_thread_malloc_cache_off,
            verbose_mode_logs_each_connection_and_quiet_mode_does_not,
            the_binary_refuses_a_bad_delay_spec_naming_the_faulty_phase,
            the_binary_refuses_an_address_in_use_naming_it,
            out_of_descriptors_the_binary_keeps_serving_without_burning_cpu_and_accepts_again,
            sigterm_during_load_answers_every_request_received_and_exits_cleanly,
            past_the_shutdown_timeout_a_request_under_way_is_told_the_server_is_shutting_down,
            shutdown_answers_every_accepted_client_including_those_still_queued,
            a_client_queued_longer_than_the_queue_timeout_is_told_the_server_is_busy,
            past_the_shutdown_timeout_queued_clients_are_told_the_server_is_shutting_down,
        }
    };
}

macro_rules! all_cases {
    ($($case:ident),* $(,)?) => {
        /// Every case by name, in the order the suite runs them.
        pub const ALL: &[(&str, Case)] = &[$((stringify!($case), $case as Case)),*];
    };
}

crate::__each_case!(all_cases);

/// Runs the case called `name` against `target`.
///
/// # Errors
/// The case's own error, or `NotFound` when no case has that name.
pub fn run(name: &str, target: &Target) -> io::Result<()> {
    let (_, case) = ALL.iter().find(|(n, _)| *n == name).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::NotFound,
            format!("no conformance case {name:?}"),
        )
    })?;
    case(target)
}
