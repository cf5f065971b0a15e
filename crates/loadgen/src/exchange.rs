//! One request and its reply on an open connection, checked byte for byte.
//!
//! TCP is a stream: a reply may arrive in several reads, and with line framing bytes past
//! the `\n` belong to the next reply, so they stay in the connection's buffer.
//!
//! A connection is used as its two halves: the reading half by the connection's worker, the
//! writing half by reference ([`Writer`]), because in open loop the request may be written
//! by the dispatcher ([`crate::dispatch`]) while the worker waits to read the reply. Reading goes
//! through tokio's `AsyncRead` of the reading half, which marks the socket not readable after
//! a short read: read by `readable` and `try_read` instead, every reply cost one more `recv`
//! that failed with `EAGAIN` (measured with `perf trace -s`: 0.96 per request at 30,000
//! requests/s).

use std::future::Future;
use std::io;
use std::time::Duration;

use echo_core::Framing;
use tokio::io::{AsyncRead, AsyncReadExt};
use tokio::net::tcp::{OwnedWriteHalf, WriteHalf};

use crate::net::{Phase, classify};
use crate::report::FailureKind;

/// The writing half of a connection, written by shared reference.
pub trait Writer {
    /// Writes what the socket takes now; `WouldBlock` when it takes nothing.
    ///
    /// # Errors
    /// The socket's error.
    fn try_send(&self, bytes: &[u8]) -> io::Result<usize>;

    /// Waits until the socket may take more.
    ///
    /// # Errors
    /// The reactor's error.
    fn writable(&self) -> impl Future<Output = io::Result<()>>;
}

impl Writer for OwnedWriteHalf {
    fn try_send(&self, bytes: &[u8]) -> io::Result<usize> {
        self.try_write(bytes)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        OwnedWriteHalf::writable(self)
    }
}

impl Writer for WriteHalf<'_> {
    fn try_send(&self, bytes: &[u8]) -> io::Result<usize> {
        self.try_write(bytes)
    }

    fn writable(&self) -> impl Future<Output = io::Result<()>> {
        WriteHalf::writable(self)
    }
}

/// What a connection needs to check its replies.
#[derive(Debug, Clone)]
pub struct Expectation {
    /// Bytes written for each request.
    pub request: Vec<u8>,
    /// The exact reply, including its `\n` with line framing.
    pub reply: Vec<u8>,
    /// How replies are delimited.
    pub framing: Framing,
    /// Limit on one exchange (write and whole reply).
    pub timeout: Duration,
}

/// Sends one request (the part of it past `already_written`: the dispatch may have written
/// some or all of it) and reads its reply, within the timeout.
///
/// `buffer` carries bytes received past the previous reply; keep one per connection.
///
/// # Errors
/// The [`FailureKind`]: reply timeout, reset, early EOF or wrong reply.
pub async fn exchange<R: AsyncRead + Unpin>(
    reader: &mut R,
    writer: &impl Writer,
    buffer: &mut Vec<u8>,
    expect: &Expectation,
    already_written: usize,
) -> Result<(), FailureKind> {
    let work = async {
        let rest = expect.request.get(already_written..).unwrap_or_default();
        write_all(writer, rest)
            .await
            .map_err(|e| classify(&e, Phase::Exchange))?;
        match expect.framing {
            Framing::Line => read_line_reply(reader, buffer, &expect.reply).await,
            Framing::Raw => read_raw_reply(reader, buffer, &expect.reply).await,
        }
    };
    match tokio::time::timeout(expect.timeout, work).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(FailureKind::ReplyTimeout),
    }
}

/// Writes all of `bytes`, waiting for room when the socket takes no more.
async fn write_all(writer: &impl Writer, mut bytes: &[u8]) -> io::Result<()> {
    while !bytes.is_empty() {
        writer.writable().await?;
        match writer.try_send(bytes) {
            Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
            Ok(n) => bytes = &bytes[n..],
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// Reads until a `\n` and compares that line with `expected` (which ends in `\n`).
async fn read_line_reply<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
    expected: &[u8],
) -> Result<(), FailureKind> {
    loop {
        if let Some(end) = buffer.iter().position(|&byte| byte == b'\n') {
            let matches = buffer[..=end] == *expected;
            buffer.drain(..=end);
            return if matches {
                Ok(())
            } else {
                Err(FailureKind::WrongReply)
            };
        }
        // No newline yet: once more bytes than the expected line have arrived, it cannot match.
        if buffer.len() >= expected.len() {
            return Err(FailureKind::WrongReply);
        }
        read_more(stream, buffer, expected.len()).await?;
    }
}

/// Reads until the server closes and compares everything received with `expected`.
async fn read_raw_reply<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
    expected: &[u8],
) -> Result<(), FailureKind> {
    buffer.clear();
    loop {
        if buffer.len() > expected.len() {
            return Err(FailureKind::WrongReply);
        }
        match read_more(stream, buffer, expected.len() + 1).await {
            Ok(()) => {}
            Err(FailureKind::EarlyEof) if buffer.as_slice() == expected => return Ok(()),
            Err(FailureKind::EarlyEof) if !expected.starts_with(buffer) => {
                return Err(FailureKind::WrongReply);
            }
            Err(kind) => return Err(kind),
        }
    }
}

/// Appends at least one byte to `buffer`, reserving room for `want` more.
async fn read_more<R: AsyncRead + Unpin>(
    stream: &mut R,
    buffer: &mut Vec<u8>,
    want: usize,
) -> Result<(), FailureKind> {
    buffer.reserve(want);
    match stream.read_buf(buffer).await {
        Ok(0) => Err(FailureKind::EarlyEof),
        Ok(_) => Ok(()),
        Err(error) => Err(classify(&error, Phase::Exchange)),
    }
}
