//! Cases for the offload variants (`--offload N` on server-async, server-mio, server-uring),
//! beyond the suite every server passes: a `block` delay on the pool does not hold up another
//! connection's reply, a connection reset while its delay runs on the pool leaves its slot clean for
//! the next, SIGTERM answers the offloaded work in flight, and past the shutdown timeout a
//! delay still on the pool does not keep the server from stopping. Written once, instantiated per
//! variant with [`offload_suite!`](crate::offload_suite). The first fails on the same server
//! without `--offload`; the others check what a pool must not break (a completion reaching a
//! reused slot, work in flight lost at shutdown).

use std::io;
use std::time::{Duration, Instant};

use echo_core::{DelayKind, DelayModel};
use server_common::ServerConfig;
use socket2::SockRef;

use crate::Target;
use crate::client::Client;
use crate::process::{ServerProcess, exited_cleanly};

/// A `block` delay of `delay`, everything else default.
fn block(delay: Duration) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.protocol.delay = DelayModel::Fixed(delay).into();
    config.protocol.delay_kind = DelayKind::Block;
    config
}

/// Bytes the client could read now without waiting.
fn available(client: &Client) -> io::Result<usize> {
    let stream = client.stream();
    stream.set_nonblocking(true)?;
    let mut buf = vec![0u8; 64 * 1024];
    let peeked = match stream.peek(&mut buf) {
        Ok(n) => Ok(n),
        Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(0),
        Err(e) => Err(e),
    };
    stream.set_nonblocking(false)?;
    peeked
}

/// While one connection's request is blocked (on the pool), another connection's request that
/// needs no delay (invalid UTF-8, answered at once) is answered: its reply comes before the
/// blocked one. A loop that spends `block` itself reads the second connection only once the
/// delay is over and the first reply written, so this is an order on the wire, not a speed.
///
/// # Errors
/// A connection failed, or the server did not start or stop.
pub fn a_blocked_request_does_not_hold_up_another_connections_immediate_reply(
    target: &Target,
) -> io::Result<()> {
    let delay = Duration::from_millis(200);
    let server = (target.start)(block(delay), target.args)?;
    let mut first = Client::connect(server.local_addr())?;
    first.send(b"one\ntwo\n")?;
    // ONE written: the delay of TWO has begun, and holds whatever thread spends it.
    assert_eq!(first.read_line()?, "ONE");
    let mut second = Client::connect(server.local_addr())?;
    second.send(b"\xff\n")?;
    assert_eq!(second.read_line()?, "ERR invalid utf-8");
    assert_eq!(
        available(&first)?,
        0,
        "the blocked request was answered before another connection's immediate reply: the \
         delay held the loop"
    );
    assert_eq!(first.read_line()?, "TWO");
    drop((first, second));
    let summary = server.shutdown()?;
    assert_eq!(summary.requests, 2);
    Ok(())
}

/// A client resets its connection while its request's delay runs on the pool; the next
/// connection (in a loop, likely in the same slot) is answered its own reply, once, never
/// before its own delay, and the server ends with nothing open.
///
/// # Errors
/// A connection failed, or the server did not start or stop.
pub fn a_connection_reset_while_its_delay_is_offloaded_leaves_the_next_one_its_own_reply(
    target: &Target,
) -> io::Result<()> {
    let delay = Duration::from_millis(100);
    let server = (target.start)(block(delay), target.args)?;
    let mut gone = Client::connect(server.local_addr())?;
    gone.send(b"gone\n")?;
    SockRef::from(gone.stream()).set_linger(Some(Duration::ZERO))?;
    drop(gone);
    let mut next = Client::connect(server.local_addr())?;
    let sent = Instant::now();
    next.send(b"next\n")?;
    assert_eq!(next.read_line()?, "NEXT");
    assert!(sent.elapsed() >= delay, "answered before its own delay");
    next.finish_sending()?;
    next.expect_closed()?;
    let summary = server.shutdown()?;
    assert_eq!(summary.connections_accepted, 2);
    assert_eq!(summary.connections_open, 0);
    Ok(())
}

/// SIGTERM while a request's `block` delay runs on the pool and more are queued behind it on
/// the same connection: every one is answered, then the connection closes and the binary exits
/// cleanly.
///
/// # Errors
/// The binary could not be run, or a connection failed.
pub fn sigterm_answers_the_offloaded_requests_in_flight_and_exits_cleanly(
    target: &Target,
) -> io::Result<()> {
    let mut args = vec!["--delay", "100ms", "--delay-kind", "block"];
    args.extend(target.args);
    let server = ServerProcess::spawn(target.binary, &args, None)?;
    let mut client = Client::connect(server.addr())?;
    client.send(b"one\ntwo\nthree\n")?;
    // Once the first is answered the second's delay runs on the pool.
    assert_eq!(client.read_line()?, "ONE");
    server.signal(libc::SIGTERM)?;
    assert_eq!(client.read_line()?, "TWO");
    assert_eq!(client.read_line()?, "THREE");
    client.expect_closed()?;
    let (status, stderr) = server.wait(Duration::from_secs(30))?;
    assert!(exited_cleanly(status), "{status}: {stderr}");
    Ok(())
}

/// A request whose `block` delay on the pool outlasts the shutdown timeout: just before the
/// deadline it is told `ERR server shutting down`, as any request still unanswered then (never
/// silence), its connection is closed and the server stops; the worker still holding the
/// delay does not keep it running.
///
/// # Errors
/// A connection failed, or the server did not start or stop.
pub fn past_the_shutdown_timeout_an_offloaded_request_is_told_the_server_is_shutting_down(
    target: &Target,
) -> io::Result<()> {
    let mut config = block(Duration::from_secs(3));
    config.shutdown_timeout = Duration::from_millis(100);
    let server = (target.start)(config, target.args)?;
    let mut client = Client::connect(server.local_addr())?;
    // The immediate answer to the first line shows the server took the connection and read
    // the second (a stop before the accept would refuse the connection, not test this).
    client.send(b"\xff\ntoo slow\n")?;
    assert_eq!(client.read_line()?, "ERR invalid utf-8");
    let summary = server.shutdown()?;
    assert_eq!(summary.connections_open, 0, "{summary}");
    assert_eq!(
        String::from_utf8_lossy(&client.read_to_close()?),
        "ERR server shutting down\n",
        "told why, not answered before its delay was over nor left in silence"
    );
    Ok(())
}

/// Expands to a module `$name` holding one `#[test]` per case of [`offload`](crate::offload),
/// each run against the offload variant that `args` selects (they must include `--offload`),
/// in-process through `variant` and as a process through `binary`.
#[macro_export]
macro_rules! offload_suite {
    ($name:ident, variant = $variant:ty, binary = $binary:expr, args = $args:expr $(,)?) => {
        mod $name {
            fn target() -> $crate::Target {
                let args: &'static [&'static str] = $args;
                assert!(args.contains(&"--offload"), "an offload case without --offload");
                $crate::Target {
                    start: $crate::start::<$variant>,
                    binary: $binary,
                    args,
                    queue: ::std::option::Option::None,
                }
            }
            $crate::offload_suite!(@cases
                a_blocked_request_does_not_hold_up_another_connections_immediate_reply,
                a_connection_reset_while_its_delay_is_offloaded_leaves_the_next_one_its_own_reply,
                sigterm_answers_the_offloaded_requests_in_flight_and_exits_cleanly,
                past_the_shutdown_timeout_an_offloaded_request_is_told_the_server_is_shutting_down,
            );
        }
    };
    (@cases $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() -> ::std::io::Result<()> {
                $crate::offload::$case(&target())
            }
        )*
    };
}
