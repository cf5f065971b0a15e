//! One request and its reply on an open connection, checked byte for byte.
//!
//! TCP is a stream: a reply may arrive in several reads, and with line framing bytes past
//! the `\n` belong to the next reply, so they stay in the connection's buffer.

use std::time::Duration;

use echo_core::Framing;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::net::{Phase, classify};
use crate::report::FailureKind;

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

/// Sends one request and reads its reply within the timeout.
///
/// `buffer` carries bytes received past the previous reply; keep one per connection.
///
/// # Errors
/// The [`FailureKind`]: reply timeout, reset, early EOF or wrong reply.
pub async fn exchange(
    stream: &mut TcpStream,
    buffer: &mut Vec<u8>,
    expect: &Expectation,
) -> Result<(), FailureKind> {
    let work = async {
        stream
            .write_all(&expect.request)
            .await
            .map_err(|e| classify(&e, Phase::Exchange))?;
        match expect.framing {
            Framing::Line => read_line_reply(stream, buffer, &expect.reply).await,
            Framing::Raw => read_raw_reply(stream, buffer, &expect.reply).await,
        }
    };
    match tokio::time::timeout(expect.timeout, work).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(FailureKind::ReplyTimeout),
    }
}

/// Reads until a `\n` and compares that line with `expected` (which ends in `\n`).
async fn read_line_reply(
    stream: &mut TcpStream,
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
async fn read_raw_reply(
    stream: &mut TcpStream,
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
async fn read_more(
    stream: &mut TcpStream,
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
