//! The one parser of the line every server binary prints when it is ready:
//! `listening on <ip>:<port>`.

use std::net::SocketAddr;

/// The line is not `listening on <ip>:<port>`; holds the line as it was received.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListeningLineError {
    /// The line does not start with `listening on `.
    #[error("the first stdout line was `{line}`, not `listening on <ip>:<port>`")]
    NotAListeningLine {
        /// The line received, trimmed.
        line: String,
    },
    /// It does, but what follows is not a socket address.
    #[error("`{addr}` in the listening line `{line}` is not an address: {reason}")]
    BadAddress {
        /// The line received, trimmed.
        line: String,
        /// The text after `listening on `.
        addr: String,
        /// Why it does not parse.
        reason: String,
    },
}

/// Parses `listening on <ip>:<port>` (surrounding white space, such as the line's own
/// newline, is ignored).
///
/// # Errors
/// When the line is something else or the address does not parse; the error holds the line.
pub fn parse_listening_line(line: &str) -> Result<SocketAddr, ListeningLineError> {
    let line = line.trim();
    let addr = line.strip_prefix("listening on ").ok_or_else(|| {
        ListeningLineError::NotAListeningLine {
            line: line.to_owned(),
        }
    })?;
    addr.trim().parse().map_err(
        |e: std::net::AddrParseError| ListeningLineError::BadAddress {
            line: line.to_owned(),
            addr: addr.trim().to_owned(),
            reason: e.to_string(),
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_listening_line_yields_its_address_with_or_without_its_newline() {
        let expected: SocketAddr = "127.0.0.1:4242".parse().expect("an address");
        assert_eq!(
            parse_listening_line("listening on 127.0.0.1:4242\n"),
            Ok(expected)
        );
        assert_eq!(
            parse_listening_line("listening on 127.0.0.1:4242"),
            Ok(expected)
        );
        let v6: SocketAddr = "[::1]:9".parse().expect("an address");
        assert_eq!(parse_listening_line("listening on [::1]:9\r\n"), Ok(v6));
    }

    #[test]
    fn another_line_is_refused_naming_the_line() {
        let error = parse_listening_line("starting up\n").expect_err("not a listening line");
        assert_eq!(
            error.to_string(),
            "the first stdout line was `starting up`, not `listening on <ip>:<port>`"
        );
    }

    #[test]
    fn a_bad_address_is_refused_naming_the_address_and_the_line() {
        let error = parse_listening_line("listening on localhost").expect_err("no port");
        let text = error.to_string();
        assert!(text.starts_with("`localhost` in the listening line `listening on localhost`"));
        assert!(
            matches!(error, ListeningLineError::BadAddress { .. }),
            "{error:?}"
        );
    }
}
