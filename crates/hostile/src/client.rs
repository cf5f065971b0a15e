//! One hostile client of each [`Kind`], run to its end on the calling thread, every step
//! bounded by [`Settings::patience`] or [`Settings::hold`].

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::SockRef;

use crate::{Kind, Outcome, Settings, check_loopback};

/// The line a dribbler sends a byte at a time, and its reply.
const DRIBBLE: (&[u8], &str) = (b"dribble\n", "DRIBBLE");
/// The request a never-reader sends over and over.
const NEVER_READ_LINE: &[u8] = b"never reads\n";
/// What an invalid-UTF-8 client sends after its bad line, and the reply that proves the
/// connection lived on.
const AFTER_INVALID: (&[u8], &str) = (b"still here\n", "STILL HERE");

/// Runs one client of `kind` against `addr` and says what it saw.
pub fn run(kind: Kind, addr: SocketAddr, settings: &Settings) -> Outcome {
    let result = check_loopback(addr)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))
        .and_then(|()| connect(addr, settings))
        .and_then(|stream| match kind {
            Kind::NeverReader => never_reader(stream, settings),
            Kind::Dribbler => dribbler(stream, settings),
            Kind::ResetMidRequest => reset_mid_request(stream),
            Kind::OversizedLine => oversized_line(stream, settings),
            Kind::InvalidUtf8 => invalid_utf8(stream),
            Kind::Idle => idle(stream, settings),
            Kind::ConnectAndClose => Ok(Judged::fine("connected and closed")),
        });
    match result {
        Ok(judged) => Outcome {
            kind,
            saw: judged.saw,
            problem: judged.problem,
        },
        Err(err) => Outcome {
            kind,
            saw: format!("error: {err}"),
            problem: Some(format!("{kind}: {err}")),
        },
    }
}

/// What a client saw and, if the server broke its word, how.
struct Judged {
    saw: String,
    problem: Option<String>,
}

impl Judged {
    fn fine(saw: impl Into<String>) -> Judged {
        Judged {
            saw: saw.into(),
            problem: None,
        }
    }

    /// `got` must be `want`.
    fn expect(got: &str, want: &str, what: &str) -> Judged {
        Judged {
            saw: got.to_owned(),
            problem: (got != want).then(|| format!("{what}: got {got:?}, want {want:?}")),
        }
    }
}

fn connect(addr: SocketAddr, settings: &Settings) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, settings.patience)?;
    stream.set_read_timeout(Some(settings.patience))?;
    stream.set_write_timeout(Some(settings.patience))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// Reads up to and without the next `\n` (a close before it is an error naming what came).
fn read_line(stream: &mut TcpStream) -> io::Result<String> {
    let mut line = Vec::new();
    let mut byte = [0u8; 1];
    loop {
        match stream.read(&mut byte) {
            Ok(0) => {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!(
                        "closed after {:?} without a newline",
                        String::from_utf8_lossy(&line)
                    ),
                ));
            }
            Ok(_) if byte[0] == b'\n' => return Ok(String::from_utf8_lossy(&line).into_owned()),
            Ok(_) => line.push(byte[0]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}

/// Reads until the server closes; what came before the close.
fn read_to_close(stream: &mut TcpStream) -> io::Result<Vec<u8>> {
    let mut all = Vec::new();
    stream.read_to_end(&mut all)?;
    Ok(all)
}

/// Writes what the socket takes of `never_reader_bytes` of requests within the hold, never
/// reads, keeps the connection until the hold is over, then leaves (a reset, since replies
/// are unread). The server must neither reset nor close it meanwhile: a slow reader is
/// throttled, not dropped, until an idle period passes without progress.
fn never_reader(mut stream: TcpStream, settings: &Settings) -> io::Result<Judged> {
    let until = Instant::now() + settings.hold;
    let lines = settings.never_reader_bytes / NEVER_READ_LINE.len();
    let burst: Vec<u8> = NEVER_READ_LINE.repeat(lines.max(1));
    let mut sent = 0;
    while sent < burst.len() {
        let left = until.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        stream.set_write_timeout(Some(left.max(Duration::from_millis(1))))?;
        match stream.write(&burst[sent..]) {
            Ok(n) => sent += n,
            Err(err) if is_timeout(&err) => break,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => {
                return Ok(Judged {
                    saw: format!("sent {sent} bytes, then {err}"),
                    problem: Some(format!("never-reader: the server broke it off: {err}")),
                });
            }
        }
    }
    std::thread::sleep(until.saturating_duration_since(Instant::now()));
    let alive = SockRef::from(&stream).take_error()?.is_none();
    let saw = format!("sent {sent} of {} bytes, read nothing", burst.len());
    Ok(Judged {
        problem: (!alive).then(|| format!("never-reader: connection broken after {saw}")),
        saw,
    })
}

/// One line, one byte per interval; the reply must be the line upper-cased.
fn dribbler(mut stream: TcpStream, settings: &Settings) -> io::Result<Judged> {
    let (line, reply) = DRIBBLE;
    for (i, byte) in line.iter().enumerate() {
        if i > 0 {
            // The pause is the abuse itself, not a wait for anything.
            std::thread::sleep(settings.dribble_interval);
        }
        stream.write_all(std::slice::from_ref(byte))?;
    }
    Ok(Judged::expect(&read_line(&mut stream)?, reply, "dribbler"))
}

/// A request, then a reset before its reply can come: the server must take only this
/// connection down with it, which the caller sees in everyone else's replies.
fn reset_mid_request(mut stream: TcpStream) -> io::Result<Judged> {
    stream.write_all(b"reset me\n")?;
    SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    drop(stream);
    Ok(Judged::fine("reset after its request"))
}

/// A line one byte over the limit: `ERR line too long (limit N bytes)` and the close, nothing
/// else.
fn oversized_line(mut stream: TcpStream, settings: &Settings) -> io::Result<Judged> {
    let mut line = vec![b'a'; settings.max_line_bytes + 1];
    line.push(b'\n');
    stream.write_all(&line)?;
    let got = read_to_close(&mut stream)?;
    let want = format!(
        "ERR line too long (limit {} bytes)\n",
        settings.max_line_bytes
    );
    Ok(Judged::expect(
        &String::from_utf8_lossy(&got),
        &want,
        "oversized line",
    ))
}

/// Invalid UTF-8 is told `ERR invalid utf-8` and the connection lives on: the next request
/// is answered.
fn invalid_utf8(mut stream: TcpStream) -> io::Result<Judged> {
    stream.write_all(b"\xff\xfe\n")?;
    let err = read_line(&mut stream)?;
    if err != "ERR invalid utf-8" {
        return Ok(Judged::expect(&err, "ERR invalid utf-8", "invalid utf-8"));
    }
    let (next, reply) = AFTER_INVALID;
    stream.write_all(next)?;
    let after = read_line(&mut stream)?;
    let mut judged = Judged::expect(&after, reply, "invalid utf-8, then a valid line");
    judged.saw = format!("{err}, then {after}");
    Ok(judged)
}

/// Sends nothing for the hold: the server must say nothing and keep the connection.
fn idle(mut stream: TcpStream, settings: &Settings) -> io::Result<Judged> {
    stream.set_read_timeout(Some(settings.hold.max(Duration::from_millis(1))))?;
    let mut byte = [0u8; 1];
    match stream.read(&mut byte) {
        Err(err) if is_timeout(&err) => Ok(Judged::fine("silence for the hold")),
        Ok(0) => Ok(Judged {
            saw: "closed".to_owned(),
            problem: Some("idle: the server closed a client within its hold".to_owned()),
        }),
        Ok(_) => Ok(Judged {
            saw: format!("byte {:?}", byte[0] as char),
            problem: Some("idle: the server spoke to a client that sent nothing".to_owned()),
        }),
        Err(err) => Err(err),
    }
}

fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
