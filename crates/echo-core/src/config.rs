//! The configuration every server shares, serializable so that reports can record it.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::delay::DelayKind;
use crate::error::{Error, Result};
use crate::recipe::Recipe;

/// How requests are cut out of the byte stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Framing {
    /// A request is a line ending in `\n`; the reply is the upper-cased line plus `\n`; many
    /// requests per connection. The project's protocol.
    #[default]
    Line,
    /// The article's protocol: whatever one read delivers is the message, the reply is that
    /// chunk upper-cased with nothing added, and the server closes after the one reply. Lets
    /// the article's own client drive our servers unchanged.
    Raw,
}

impl FromStr for Framing {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.trim() {
            "line" => Ok(Framing::Line),
            "raw" => Ok(Framing::Raw),
            other => Err(Error::InvalidFraming(other.to_owned())),
        }
    }
}

impl fmt::Display for Framing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Framing::Line => "line",
            Framing::Raw => "raw",
        })
    }
}

/// Everything that decides what a server says on the wire and when.
///
/// One value is shared by every connection of a server; each connection's
/// [`crate::EchoProtocol`] reads it. Field names carry their units so that a JSON report is
/// self-explaining.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Config {
    /// Each request's simulated work: its recipe's phases, how long each lasts and, where
    /// the spec says, how it is spent (`spin:2ms+wait:100ms`).
    pub delay: Recipe,
    /// How a server spends the phases of `delay` that name no kind (`100ms`); a kind the
    /// spec names wins.
    pub delay_kind: DelayKind,
    /// Seed of the delay generator; with the same seed, every connection sees the same delays.
    pub seed: u64,
    /// How requests are cut out of the stream.
    pub framing: Framing,
    /// Longest accepted line, not counting its `\n`. A longer one gets `ERR line too long` and
    /// the connection is closed.
    pub max_line_bytes: usize,
    /// Close a connection that makes no progress (no complete request received, no reply
    /// bytes written) for this long. `None` disables the limit.
    #[serde(with = "optional_millis", rename = "idle_timeout_ms")]
    pub idle_timeout: Option<Duration>,
    /// Replies waiting to be written, per connection, above which the server stops reading
    /// from that client (and starts no new request) until its output drains.
    pub max_output_bytes: usize,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            delay: Recipe::default(),
            delay_kind: DelayKind::default(),
            seed: 0,
            framing: Framing::default(),
            max_line_bytes: Config::DEFAULT_MAX_LINE_BYTES,
            idle_timeout: Some(Config::DEFAULT_IDLE_TIMEOUT),
            max_output_bytes: Config::DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

impl Config {
    /// 64 KiB: far above any sane request, small enough that 10000 clients cannot exhaust
    /// memory by sending endless lines.
    pub const DEFAULT_MAX_LINE_BYTES: usize = 64 * 1024;
    /// 30 s of no progress closes a connection.
    pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(30);
    /// 64 KiB of unread replies pauses reading from that client.
    pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;

    /// Checks the limits that must be positive.
    ///
    /// # Errors
    /// [`Error::ZeroLimit`] naming the field.
    pub fn validate(&self) -> Result<()> {
        let positive = [
            ("max_line_bytes", self.max_line_bytes),
            ("max_output_bytes", self.max_output_bytes),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(Error::ZeroLimit { name, value: 0 });
            }
        }
        if self.idle_timeout == Some(Duration::ZERO) {
            return Err(Error::ZeroLimit {
                name: "idle_timeout",
                value: 0,
            });
        }
        Ok(())
    }
}

mod optional_millis {
    //! `Option<Duration>` as whole milliseconds or `null`.
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(d) => s.serialize_u64(u64::try_from(d.as_millis()).unwrap_or(u64::MAX)),
            None => s.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        Ok(Option::<u64>::deserialize(d)?.map(Duration::from_millis))
    }
}
