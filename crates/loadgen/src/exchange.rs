//! One request and its reply, checked byte for byte: the judge of a reply ([`Expectation::judge`],
//! no IO, shared by both modes) and the closed loop's exchange on a tokio stream.
//!
//! TCP is a stream: a reply may arrive in several reads, and with line framing bytes past
//! the `\n` belong to the next reply, so they stay in the connection's buffer. The judge is
//! handed what has arrived and whether the peer has closed, and says whether the reply is
//! complete, still incomplete or wrong; the open loop's event loop
//! ([`crate::open_loop`]) calls it after each read, the closed loop after each `read_buf`.

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

impl Expectation {
    /// Judges `received` (everything read since the previous reply), `closed` once the peer
    /// has closed its side: `Ok(Some(n))` when the first `n` bytes are the whole, right
    /// reply, `Ok(None)` while more must be read.
    ///
    /// # Errors
    /// [`FailureKind::WrongReply`] as soon as the bytes cannot be the reply (a different
    /// line, or more bytes than the reply has), [`FailureKind::EarlyEof`] when the peer
    /// closed before the whole reply.
    pub fn judge(&self, received: &[u8], closed: bool) -> Result<Option<usize>, FailureKind> {
        let expected = self.reply.as_slice();
        match self.framing {
            Framing::Line => {
                if let Some(end) = received.iter().position(|&byte| byte == b'\n') {
                    return if received[..=end] == *expected {
                        Ok(Some(end + 1))
                    } else {
                        Err(FailureKind::WrongReply)
                    };
                }
                // No newline yet: once as many bytes as the expected line have arrived, it
                // cannot match.
                if received.len() >= expected.len() {
                    Err(FailureKind::WrongReply)
                } else if closed {
                    Err(FailureKind::EarlyEof)
                } else {
                    Ok(None)
                }
            }
            Framing::Raw => {
                if received.len() > expected.len() || (closed && !expected.starts_with(received)) {
                    Err(FailureKind::WrongReply)
                } else if !closed {
                    Ok(None)
                } else if received == expected {
                    Ok(Some(received.len()))
                } else {
                    Err(FailureKind::EarlyEof)
                }
            }
        }
    }
}

/// Closed loop: sends one request and reads its reply, within the timeout.
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
        if expect.framing == Framing::Raw {
            buffer.clear();
        }
        let mut closed = false;
        loop {
            if let Some(n) = expect.judge(buffer, closed)? {
                buffer.drain(..n);
                return Ok(());
            }
            buffer.reserve(expect.reply.len() + 1);
            match stream.read_buf(buffer).await {
                Ok(0) => closed = true,
                Ok(_) => {}
                Err(error) => return Err(classify(&error, Phase::Exchange)),
            }
        }
    };
    match tokio::time::timeout(expect.timeout, work).await {
        Ok(outcome) => outcome,
        Err(_elapsed) => Err(FailureKind::ReplyTimeout),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn expect(framing: Framing, reply: &[u8]) -> Expectation {
        Expectation {
            request: Vec::new(),
            reply: reply.to_vec(),
            framing,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn a_line_reply_is_complete_at_its_newline_and_leaves_what_follows() {
        let line = expect(Framing::Line, b"AB\n");
        assert_eq!(line.judge(b"A", false), Ok(None));
        assert_eq!(line.judge(b"AB\nA", false), Ok(Some(3)));
        assert_eq!(line.judge(b"Ab\n", false), Err(FailureKind::WrongReply));
        assert_eq!(line.judge(b"ABC", false), Err(FailureKind::WrongReply));
        assert_eq!(line.judge(b"A", true), Err(FailureKind::EarlyEof));
    }

    #[test]
    fn a_raw_reply_is_complete_only_when_the_peer_closes_after_exactly_it() {
        let raw = expect(Framing::Raw, b"AB");
        assert_eq!(raw.judge(b"AB", false), Ok(None));
        assert_eq!(raw.judge(b"AB", true), Ok(Some(2)));
        assert_eq!(raw.judge(b"A", true), Err(FailureKind::EarlyEof));
        assert_eq!(raw.judge(b"Ab", true), Err(FailureKind::WrongReply));
        assert_eq!(raw.judge(b"ABC", false), Err(FailureKind::WrongReply));
    }
}
