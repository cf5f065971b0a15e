//! A small blocking test client that frames replies itself, with generous timeouts so that a
//! broken server fails a test instead of hanging it.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::time::Duration;

/// How long any single read may wait before the test gives up on the server.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A connection to the server under test.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    /// Bytes read but not yet returned as a line.
    buffered: Vec<u8>,
}

impl Client {
    /// Connects to `addr` with TCP_NODELAY, so that each `send` leaves as its own segment.
    ///
    /// # Errors
    /// When the connection cannot be made.
    pub fn connect(addr: SocketAddr) -> io::Result<Client> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(PATIENCE))?;
        Ok(Client {
            stream,
            buffered: Vec::new(),
        })
    }

    /// The socket, for options and raw access.
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// Changes how long reads wait (a read that times out fails with `WouldBlock`).
    ///
    /// # Errors
    /// When the socket refuses the option.
    pub fn set_patience(&self, patience: Duration) -> io::Result<()> {
        self.stream.set_read_timeout(Some(patience))
    }

    /// Writes all of `bytes`.
    ///
    /// # Errors
    /// When the connection fails.
    pub fn send(&mut self, bytes: impl AsRef<[u8]>) -> io::Result<()> {
        self.stream.write_all(bytes.as_ref())
    }

    /// Half-closes: the server sees end of stream, and can still answer.
    ///
    /// # Errors
    /// When the connection is already gone.
    pub fn finish_sending(&self) -> io::Result<()> {
        self.stream.shutdown(Shutdown::Write)
    }

    /// Reads up to and including the next `\n`, and returns the line without it.
    ///
    /// # Errors
    /// `UnexpectedEof` when the server closes first (the partial line in the message), a
    /// timeout, or a connection error.
    pub fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(end) = self.buffered.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.buffered.drain(..=end).collect();
                return Ok(String::from_utf8_lossy(&line[..end]).into_owned());
            }
            if self.fill()? == 0 {
                let partial = String::from_utf8_lossy(&self.buffered).into_owned();
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    format!("server closed before a full line (got {partial:?})"),
                ));
            }
        }
    }

    /// Reads everything until the server closes.
    ///
    /// # Errors
    /// A timeout or a connection error (a reset included).
    pub fn read_to_close(&mut self) -> io::Result<Vec<u8>> {
        while self.fill()? > 0 {}
        Ok(std::mem::take(&mut self.buffered))
    }

    /// Whether the server closed the connection with nothing more to say. A reset counts as
    /// closed too: a server closing with unread input from the client sends one.
    ///
    /// # Errors
    /// A timeout, or bytes arriving instead of the close (named in the message).
    pub fn expect_closed(&mut self) -> io::Result<()> {
        match self.read_to_close() {
            Ok(rest) if rest.is_empty() => Ok(()),
            Ok(rest) => Err(io::Error::other(format!(
                "expected a close, got {:?}",
                String::from_utf8_lossy(&rest)
            ))),
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(()),
            Err(err) => Err(err),
        }
    }

    fn fill(&mut self) -> io::Result<usize> {
        let mut chunk = [0u8; 4096];
        loop {
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buffered.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
    }
}
