//! The smallest complete server built on echo-core: std blocking sockets, one client at a
//! time, every callback of the `Protocol` contract in ~60 lines. It shows how a server
//! *embeds* the protocol; the real servers (threads, tokio, mio) do the same under load.
//!
//! Run: `cargo run -p echo-core --example minimal_server -- 127.0.0.1:9090`, then
//! `printf 'hello\n' | nc 127.0.0.1 9090` (nc waits for the reply after its EOF).

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::time::Instant;

use echo_core::{Config, DelayKind, EchoProtocol, Protocol};

fn main() -> io::Result<()> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9090".into());
    let listener = TcpListener::bind(&addr)?;
    println!("listening on {}", listener.local_addr()?);
    let config = Config::default();
    for (id, stream) in (0u64..).zip(listener.incoming()) {
        if let Err(e) = serve(stream?, EchoProtocol::new(&config, id)) {
            eprintln!("connection {id}: {e}");
        }
    }
    Ok(())
}

/// Drives one connection to its end, following the contract in `echo_core::protocol`.
fn serve(mut stream: TcpStream, mut conn: EchoProtocol) -> io::Result<()> {
    conn.connection_made(Instant::now());
    let mut buf = [0u8; 4096];
    while !conn.is_closed() {
        // 4. Write whatever is pending.
        let n = conn.output().len();
        if n > 0 {
            stream.write_all(conn.output())?;
            conn.output_written(n, Instant::now());
            continue;
        }
        // 5. Wait for the next deadline; with blocking reads a delay is simply slept.
        let timeout = conn.next_timeout();
        if let Some(t) = timeout.filter(|t| !conn.wants_read() || t.kind != DelayKind::Wait) {
            std::thread::sleep(t.at.saturating_duration_since(Instant::now()));
            conn.timeout(Instant::now());
            continue;
        }
        // 2./3. Read, bounded by the idle deadline if there is one.
        let wait = timeout.map(|t| t.at.saturating_duration_since(Instant::now()));
        stream.set_read_timeout(wait.filter(|d| !d.is_zero()))?;
        match stream.read(&mut buf) {
            Ok(0) => conn.eof_received(Instant::now()),
            Ok(n) => conn.data_received(&buf[..n], Instant::now()),
            Err(e)
                if matches!(
                    e.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                ) =>
            {
                conn.timeout(Instant::now());
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                conn.connection_lost();
                return Err(e);
            }
        }
    }
    // 6./8. Closed: drop the socket and tell the protocol.
    conn.connection_lost();
    Ok(())
}
