//! A tiny in-process test server that speaks the protocol, or misbehaves on request.
//!
//! Thread per connection on std sockets: simple enough to be obviously right, which is what
//! a test of the client needs. It never depends on the project's real servers.
// Each test binary compiles this module and uses only part of it.
#![allow(dead_code)]

use std::collections::HashSet;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use socket2::{Domain, SockRef, Socket, Type};

/// How the server answers each request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Behaviour {
    /// Line framing, correct upper-cased replies.
    Echo,
    /// Line framing, correct replies after waiting this long.
    DelayedEcho(Duration),
    /// Replies with the request unchanged (not upper-cased).
    WrongReply,
    /// Reads the request, then resets the connection (SO_LINGER 0).
    Reset,
    /// Reads the request, then closes the connection without a reply.
    EarlyClose,
    /// Reads requests and never replies.
    NeverReply,
    /// Answers the first request of a connection (an open loop's priming), then reads the
    /// others and never replies.
    AnswerFirstOnly,
    /// Answers the first request of a connection, and the others only once this long has
    /// passed since the server started (until then it reads them and never replies): a
    /// server that fails a client's first stretch of load.
    SilentAtFirst(Duration),
    /// The article's protocol: one read is the message, reply upper-cased, then close.
    RawEcho,
    /// The article's protocol, but the reply is the message unchanged.
    RawUnchanged,
    /// The article's protocol, but the server closes without replying.
    RawClose,
}

/// A running test server; stops accepting when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    peers: Arc<Mutex<HashSet<IpAddr>>>,
    accepted: Arc<AtomicU64>,
    stopping: Arc<AtomicBool>,
}

impl TestServer {
    /// Starts a server on 127.0.0.1 with an ephemeral port.
    pub fn start(behaviour: Behaviour) -> TestServer {
        let listener = listen().expect("test server can listen on 127.0.0.1:0");
        let addr = listener.local_addr().expect("listener has an address");
        let peers = Arc::new(Mutex::new(HashSet::new()));
        let accepted = Arc::new(AtomicU64::new(0));
        let stopping = Arc::new(AtomicBool::new(false));
        let (accept_peers, accept_stopping) = (Arc::clone(&peers), Arc::clone(&stopping));
        let accept_count = Arc::clone(&accepted);
        let started = Instant::now();
        thread::spawn(move || {
            for stream in listener.incoming() {
                if accept_stopping.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                accept_count.fetch_add(1, Ordering::SeqCst);
                if let Ok(peer) = stream.peer_addr() {
                    accept_peers.lock().expect("peers lock").insert(peer.ip());
                }
                thread::spawn(move || {
                    let _ = serve(stream, behaviour, started);
                });
            }
        });
        TestServer {
            addr,
            peers,
            accepted,
            stopping,
        }
    }

    /// The connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// The source addresses clients connected from.
    pub fn peer_ips(&self) -> HashSet<IpAddr> {
        self.peers.lock().expect("peers lock").clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stopping.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(self.addr);
    }
}

/// A listener with a backlog large enough for a burst of test connections.
fn listen() -> io::Result<TcpListener> {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None)?;
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())?;
    socket.listen(4096)?;
    Ok(socket.into())
}

fn serve(stream: TcpStream, behaviour: Behaviour, started: Instant) -> io::Result<()> {
    stream.set_nodelay(true)?;
    if matches!(
        behaviour,
        Behaviour::RawEcho | Behaviour::RawUnchanged | Behaviour::RawClose
    ) {
        return serve_raw(stream, behaviour);
    }
    let mut writer = stream.try_clone()?;
    let mut reader = BufReader::new(stream);
    let mut line = Vec::new();
    let mut answered = 0_u64;
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            return Ok(());
        }
        let upper = String::from_utf8_lossy(&line).to_uppercase();
        let first = answered == 0;
        answered += 1;
        match behaviour {
            Behaviour::Echo => writer.write_all(upper.as_bytes())?,
            Behaviour::DelayedEcho(delay) => {
                thread::sleep(delay);
                writer.write_all(upper.as_bytes())?;
            }
            Behaviour::WrongReply => writer.write_all(&line)?,
            Behaviour::Reset => {
                SockRef::from(&writer).set_linger(Some(Duration::ZERO))?;
                return Ok(());
            }
            Behaviour::EarlyClose => return Ok(()),
            Behaviour::NeverReply => {}
            Behaviour::AnswerFirstOnly if first => writer.write_all(upper.as_bytes())?,
            Behaviour::AnswerFirstOnly => {}
            Behaviour::SilentAtFirst(silence) if first || started.elapsed() >= silence => {
                writer.write_all(upper.as_bytes())?;
            }
            Behaviour::SilentAtFirst(_) => {}
            Behaviour::RawEcho | Behaviour::RawUnchanged | Behaviour::RawClose => {
                unreachable!("raw behaviours are served by serve_raw")
            }
        }
    }
}

fn serve_raw(mut stream: TcpStream, behaviour: Behaviour) -> io::Result<()> {
    let mut chunk = [0u8; 1024];
    let n = stream.read(&mut chunk)?;
    let upper = String::from_utf8_lossy(&chunk[..n]).to_uppercase();
    match behaviour {
        Behaviour::RawUnchanged => stream.write_all(&chunk[..n]),
        Behaviour::RawClose => Ok(()),
        _ => stream.write_all(upper.as_bytes()),
    }
}

/// A listener that never accepts, with a backlog of 1: once its accept queue is full
/// (two connections), the kernel drops further SYNs and those connects hang. Keep it alive
/// for as long as the test needs the address.
pub fn full_backlog_listener() -> TcpListener {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).expect("socket");
    socket
        .bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into())
        .expect("bind 127.0.0.1:0");
    socket.listen(1).expect("listen");
    socket.into()
}

/// An address where nothing listens: bind, note the port, close.
pub fn refusing_addr() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.local_addr().expect("listener has an address")
}
