//! Cases for loop-based servers (server-mio, server-uring), beyond the suite every server
//! passes: several loops sharing one port, what a `block` delay does to a single loop, and a
//! shutdown that finds a request still in the kernel. Written once, instantiated per crate
//! with [`loop_suite!`](crate::loop_suite).

use std::io;
use std::time::{Duration, Instant};

use echo_core::{DelayKind, DelayModel};
use server_common::{Server, ServerConfig};

use crate::client::Client;

/// Starts a loop-based server with this many loops, boxed (the wrapper [`loop_suite!`](crate::loop_suite)
/// writes also checks that it runs as many loops as asked).
pub type StartLoops = fn(ServerConfig, usize) -> io::Result<Box<dyn Server>>;

/// A default configuration with a fixed `delay` spent the `kind` way.
pub fn config(delay: Duration, kind: DelayKind) -> ServerConfig {
    let mut config = ServerConfig::default();
    config.protocol.delay = DelayModel::Fixed(delay).into();
    config.protocol.delay_kind = kind;
    config
}

/// Two loops on one port: 40 clients connected before any reads, each answered, each counted.
///
/// # Errors
/// A connection failed, or the server did not start or stop.
pub fn two_loops_share_one_port_and_answer_every_client(start: StartLoops) -> io::Result<()> {
    let server = start(config(Duration::ZERO, DelayKind::Wait), 2)?;
    let mut clients = Vec::new();
    for i in 0..40 {
        let mut client = Client::connect(server.local_addr())?;
        client.send(format!("client {i}\n"))?;
        clients.push(client);
    }
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(client.read_line()?, format!("CLIENT {i}"));
    }
    drop(clients);
    let summary = server.shutdown()?;
    assert_eq!((summary.connections_accepted, summary.requests), (40, 40));
    Ok(())
}

/// One loop with a `block` delay holds its thread: the second request waits for the first.
///
/// # Errors
/// A connection failed, or the server did not start or stop.
pub fn a_block_delay_makes_one_loop_serve_its_clients_one_after_the_other(
    start: StartLoops,
) -> io::Result<()> {
    let delay = Duration::from_millis(60);
    let server = start(config(delay, DelayKind::Block), 1)?;
    let mut first = Client::connect(server.local_addr())?;
    let mut second = Client::connect(server.local_addr())?;
    let sent = Instant::now();
    first.send(b"one\n")?;
    second.send(b"two\n")?;
    assert_eq!(first.read_line()?, "ONE");
    assert_eq!(second.read_line()?, "TWO");
    // With `wait` both replies would come after one delay; a blocked loop serves the second
    // request only after the first one's delay is over, whichever it took first.
    assert!(
        sent.elapsed() >= delay * 2,
        "a blocked loop served two requests at once"
    );
    server.shutdown()?;
    Ok(())
}

/// A request sent before shutdown is answered, whether its connection was accepted yet or
/// still sat in the backlog.
///
/// # Errors
/// A connection failed, or the server did not start or stop.
pub fn shutdown_answers_a_request_the_kernel_already_holds_accepted_or_not(
    start: StartLoops,
) -> io::Result<()> {
    let server = start(config(Duration::from_millis(200), DelayKind::Wait), 1)?;
    let mut client = Client::connect(server.local_addr())?;
    // Once `connect` and `send` return, the connection sits in the listener's backlog (or is
    // already accepted) and the request in its socket buffer: both count as received.
    client.send(b"pending\n")?;
    let reader = std::thread::spawn(move || client.read_line());
    let summary = server.shutdown()?;
    let reply = reader
        .join()
        .map_err(|_| io::Error::other("reader panicked"))??;
    assert_eq!(reply, "PENDING");
    assert_eq!((summary.connections_accepted, summary.requests), (1, 1));
    Ok(())
}

/// Expands to a module `loops` holding one `#[test]` per case of [`loops`](crate::loops), each
/// starting the server with `$start(config, n_loops)`, whose server must have an inherent
/// `n_loops()`: every start checks that the server runs as many loops as asked.
#[macro_export]
macro_rules! loop_suite {
    (start = $start:path $(,)?) => {
        mod loops {
            fn start(
                config: ::server_common::ServerConfig,
                n_loops: usize,
            ) -> ::std::io::Result<::std::boxed::Box<dyn ::server_common::Server>> {
                let server = $start(config, n_loops)?;
                assert_eq!(server.n_loops(), n_loops, "loops running");
                Ok(::std::boxed::Box::new(server))
            }
            $crate::loop_suite!(@cases
                two_loops_share_one_port_and_answer_every_client,
                a_block_delay_makes_one_loop_serve_its_clients_one_after_the_other,
                shutdown_answers_a_request_the_kernel_already_holds_accepted_or_not,
            );
        }
    };
    (@cases $($case:ident),* $(,)?) => {
        $(
            #[test]
            fn $case() -> ::std::io::Result<()> {
                $crate::loops::$case(start)
            }
        )*
    };
}
