//! [`ServerArgs`]: the flags every server binary accepts, flattened into each binary's own
//! parser beside its variant flags (`--pool`, `--flavor`, `--loops`); and [`OffloadArgs`],
//! the one `--offload N` flag of the event-loop servers (tokio, mio, io_uring), flattened into
//! their variant flags. A thread-per-connection server has nothing to offload to, so it does
//! not take the flag. [`LoopArgs`] is the whole variant of the servers made of loops sharing
//! one port (mio and io_uring): `--loops` and `--offload`, one struct so the two cannot drift.

use std::io;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use clap::{Args, FromArgMatches};
use echo_core::{Config, DelayKind, Framing, Recipe};

use crate::config::ServerConfig;
use crate::server::Server;

/// Flags shared by every server binary. `--help` shows them with their defaults.
#[derive(Debug, Clone, Args)]
pub struct ServerArgs {
    /// Address to listen on (use 0.0.0.0 for every interface).
    #[arg(long, default_value_t = IpAddr::V4(Ipv4Addr::LOCALHOST))]
    pub host: IpAddr,

    /// Port to listen on; 0 picks a free one (read it from the `listening on` line).
    #[arg(long, default_value_t = 9090)]
    pub port: u16,

    /// Simulated work before each reply, a recipe of phases run in order: `PHASE(+PHASE)*`,
    /// each `KIND:DURATION` (KIND as for --delay-kind; without `KIND:` the phase takes
    /// --delay-kind). DURATION: `100ms`, `0`, `fixed:1s`, `uniform:50ms..150ms` or
    /// `exp:100ms` (exponential with that mean). E.g. `spin:2ms+wait:100ms` (2 ms of CPU work,
    /// then a 100 ms database wait), `block:100ms` (a blocking driver),
    /// `wait:uniform:50ms..150ms`. Each phase and all together stay within a day.
    #[arg(long, default_value = "100ms")]
    pub delay: Recipe,

    /// How the phases of --delay that name no kind are spent: `wait` (an honest IO wait: a
    /// timer, or a sleeping thread), `block` (block the thread that runs the connection, even
    /// an event loop's) or `spin` (burn CPU). A kind the --delay spec names wins over this.
    #[arg(long, default_value = "wait")]
    pub delay_kind: DelayKind,

    /// Seed of the delay generator; runs with the same seed see the same delays.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,

    /// `line`: one request per `\n`-terminated line, many per connection. `raw`: the
    /// article's protocol, where one read is the message, the reply is it upper-cased with
    /// nothing added, and the server closes after it.
    #[arg(long, default_value = "line")]
    pub framing: Framing,

    /// Longest accepted line; a longer one gets `ERR line too long` and a close.
    #[arg(long, default_value_t = Config::DEFAULT_MAX_LINE_BYTES)]
    pub max_line_bytes: usize,

    /// Close a connection that makes no progress for this long (`30s`); `0` or `off`
    /// disables the limit.
    #[arg(long, default_value = "30s", value_parser = parse_optional_duration)]
    pub idle_timeout: OptionalDuration,

    /// Unwritten replies per connection above which the server stops reading from that
    /// client until it reads its replies (backpressure).
    #[arg(long, default_value_t = Config::DEFAULT_MAX_OUTPUT_BYTES)]
    pub max_output_bytes: usize,

    /// Open connections above which the server stops accepting until one closes.
    #[arg(long, default_value_t = ServerConfig::DEFAULT_MAX_CONNECTIONS)]
    pub max_connections: usize,

    /// Listen backlog. The std/mio default of 128 drops SYNs under a burst of connects, and
    /// each drop costs the client a 1 s (then 3 s) retransmit; the kernel caps it at
    /// net.core.somaxconn.
    #[arg(long, default_value_t = ServerConfig::DEFAULT_BACKLOG)]
    pub backlog: u32,

    /// On SIGINT/SIGTERM, how long to wait for replies already owed before closing anyway.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    pub shutdown_timeout: Duration,

    /// Log every connection, like the article's prints (off by default: printing per
    /// request distorts timings). `RUST_LOG` overrides the log filter.
    #[arg(short, long)]
    pub verbose: bool,
}

/// The variant flags of a [`crate::LoopServer`] (server-mio's and server-uring's): how many
/// loops share the port, and the offload pool they share. Each binary wraps it in its own
/// `VariantArgs` to say which loop it starts.
#[derive(Debug, Clone, Copy, Args)]
pub struct LoopArgs {
    /// Loops, each on its own thread (an io_uring loop with its own ring), sharing the port
    /// through SO_REUSEPORT. 1 is asyncio's model: one thread for everything.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..))]
    pub loops: u16,

    #[command(flatten)]
    pub offload: OffloadArgs,
}

impl LoopArgs {
    /// The number of loops, at least one.
    pub fn loops(&self) -> usize {
        usize::from(self.loops)
    }
}

/// `--offload N`: run `block` and `spin` delays on a bounded pool of N threads, leaving the
/// event loop free for everything else; `wait` delays stay on the loop. Shared by every
/// event-loop server, each with its own pool (tokio's blocking threads, server-common's
/// [`crate::OffloadPool`]).
#[derive(Debug, Clone, Copy, Args)]
pub struct OffloadArgs {
    /// Run `block` and `spin` delays on a pool of N threads instead of on the event loop (the
    /// fix for a blocking driver, as asyncio's `run_in_executor`); `wait` delays stay on the
    /// loop. 0 (the default) is off: a `block` delay holds the loop. At most 1024.
    #[arg(long, value_name = "N", default_value_t = 0, value_parser = parse_offload)]
    pub offload: usize,
}

impl OffloadArgs {
    /// The pool's size, `None` when offloading is off.
    pub fn threads(&self) -> Option<usize> {
        (self.offload > 0).then_some(self.offload)
    }
}

/// Reads `--offload`: a count from 0 to [`crate::offload::MAX_OFFLOAD_THREADS`].
fn parse_offload(text: &str) -> Result<usize, String> {
    let max = crate::offload::MAX_OFFLOAD_THREADS;
    let threads: usize = text
        .trim()
        .parse()
        .map_err(|_| format!("invalid offload pool size {text:?} (expected 0 to {max} threads)"))?;
    if threads > max {
        return Err(format!(
            "offload pool of {threads} threads is over the cap of {max}"
        ));
    }
    Ok(threads)
}

/// A duration where zero means "none" (a disabled limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OptionalDuration(pub Option<Duration>);

fn parse_duration(text: &str) -> Result<Duration, echo_core::Error> {
    echo_core::parse_duration(text)
}

/// Reads a limit that can be disabled: a duration, with `0` or `off` meaning none. Shared by
/// the servers' own flags of that kind (e.g. server-threaded's `--queue-timeout`).
///
/// # Errors
/// [`echo_core::Error::InvalidDuration`] naming the text.
pub fn parse_optional_duration(text: &str) -> Result<OptionalDuration, echo_core::Error> {
    if text.trim() == "off" {
        return Ok(OptionalDuration(None));
    }
    let duration = echo_core::parse_duration(text)?;
    Ok(OptionalDuration((!duration.is_zero()).then_some(duration)))
}

impl ServerArgs {
    /// The configuration these flags describe.
    ///
    /// # Errors
    /// When a protocol limit is zero (the message names the flag's field).
    pub fn to_config(&self) -> Result<ServerConfig, echo_core::Error> {
        let protocol = Config {
            delay: self.delay.clone(),
            delay_kind: self.delay_kind,
            seed: self.seed,
            framing: self.framing,
            max_line_bytes: self.max_line_bytes,
            idle_timeout: self.idle_timeout.0,
            max_output_bytes: self.max_output_bytes,
        };
        protocol.validate()?;
        Ok(ServerConfig {
            addr: SocketAddr::new(self.host, self.port),
            protocol,
            backlog: self.backlog,
            max_connections: self.max_connections.max(1),
            shutdown_timeout: self.shutdown_timeout,
            verbose: self.verbose,
        })
    }
}

/// A server's variant: its own flags, parsed beside [`ServerArgs`] (`--pool`, `--flavor`,
/// `--loops`), and the server they select. Implementing it for its flags is all a server crate
/// does to get its binary ([`crate::run_binary`]) and to be started in-process from the same
/// flags ([`start_from_flags`]).
pub trait Variant: Args + FromArgMatches {
    /// The running server's handle.
    type Server: Server + 'static;

    /// Starts the server these flags select.
    ///
    /// # Errors
    /// When the address cannot be bound or the server's threads cannot be started.
    fn start(&self, config: ServerConfig) -> io::Result<Self::Server>;
}

/// Starts the variant `V` that `flags` select, as its binary would with them.
///
/// # Errors
/// As [`parse_variant_flags`], then as [`Variant::start`].
pub fn start_from_flags<V: Variant>(config: ServerConfig, flags: &[&str]) -> io::Result<V::Server> {
    parse_variant_flags::<V>(flags)?.start(config)
}

/// Reads a server's variant flags (its own [`Args`], e.g. `--pool 64`) from `flags`, as its
/// binary would: this is how a test or a tool starts the variant in-process from the very flags
/// that select it when the binary runs.
///
/// # Errors
/// `InvalidInput` naming the flags when the parser refuses them.
pub fn parse_variant_flags<V: Args + FromArgMatches>(flags: &[&str]) -> io::Result<V> {
    let command = V::augment_args(clap::Command::new("variant").no_binary_name(true));
    let invalid = |err: clap::Error| {
        let err = err.render().to_string();
        let err = err.trim();
        io::Error::new(
            io::ErrorKind::InvalidInput,
            format!("invalid variant flags {flags:?}: {err}"),
        )
    };
    let matches = command.try_get_matches_from(flags).map_err(invalid)?;
    V::from_arg_matches(&matches).map_err(invalid)
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    #[derive(Debug, Parser)]
    struct Cli {
        #[command(flatten)]
        server: ServerArgs,
    }

    fn parse(args: &[&str]) -> Result<ServerConfig, String> {
        let cli = Cli::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map_err(|e| e.to_string())?;
        cli.server.to_config().map_err(|e| e.to_string())
    }

    #[test]
    fn the_defaults_are_the_articles_port_and_delay() -> Result<(), String> {
        let config = parse(&[])?;
        assert_eq!(config.addr, "127.0.0.1:9090".parse().expect("literal"));
        assert_eq!(
            config.protocol.delay,
            echo_core::DelayModel::Fixed(Duration::from_millis(100)).into()
        );
        assert_eq!(config.backlog, 4096);
        assert_eq!(config.protocol.idle_timeout, Some(Duration::from_secs(30)));
        Ok(())
    }

    #[test]
    fn every_flag_reaches_the_config() -> Result<(), String> {
        let config = parse(&[
            "--host",
            "0.0.0.0",
            "--port",
            "0",
            "--delay",
            "exp:20ms",
            "--delay-kind",
            "spin",
            "--seed",
            "7",
            "--framing",
            "raw",
            "--max-line-bytes",
            "10",
            "--idle-timeout",
            "off",
            "--max-output-bytes",
            "20",
            "--max-connections",
            "5",
            "--backlog",
            "16",
            "--shutdown-timeout",
            "1s",
            "-v",
        ])?;
        assert_eq!(config.addr, "0.0.0.0:0".parse().expect("literal"));
        assert_eq!(config.protocol.delay_kind, DelayKind::Spin);
        assert_eq!(config.protocol.framing, Framing::Raw);
        assert_eq!(config.protocol.idle_timeout, None);
        assert_eq!(
            (
                config.protocol.max_line_bytes,
                config.protocol.max_output_bytes
            ),
            (10, 20)
        );
        assert_eq!((config.max_connections, config.backlog), (5, 16));
        assert_eq!(config.shutdown_timeout, Duration::from_secs(1));
        assert!(config.verbose);
        Ok(())
    }

    #[derive(Debug, Args)]
    struct Variant {
        #[arg(long)]
        pool: Option<usize>,
    }

    #[test]
    fn variant_flags_parse_in_process_as_the_binary_parses_them() -> io::Result<()> {
        assert_eq!(
            parse_variant_flags::<Variant>(&["--pool", "64"])?.pool,
            Some(64)
        );
        assert_eq!(parse_variant_flags::<Variant>(&[])?.pool, None);
        let err = parse_variant_flags::<Variant>(&["--pool", "many"]).expect_err("not a number");
        assert!(err.to_string().contains("\"many\""), "{err}");
        Ok(())
    }

    #[derive(Debug, Parser)]
    struct OffloadCli {
        #[command(flatten)]
        offload: OffloadArgs,
    }

    fn offload(args: &[&str]) -> Result<Option<usize>, String> {
        OffloadCli::try_parse_from(std::iter::once("server").chain(args.iter().copied()))
            .map(|cli| cli.offload.threads())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn offload_is_off_unless_asked_for_and_zero_means_off() -> Result<(), String> {
        assert_eq!(offload(&[])?, None);
        assert_eq!(offload(&["--offload", "0"])?, None);
        assert_eq!(offload(&["--offload", "64"])?, Some(64));
        Ok(())
    }

    #[test]
    fn an_offload_pool_over_the_cap_or_not_a_number_is_refused_naming_the_value() {
        let err = offload(&["--offload", "5000"]).expect_err("over the cap");
        assert!(err.contains("5000") && err.contains("1024"), "{err}");
        let err = offload(&["--offload", "lots"]).expect_err("not a number");
        assert!(err.contains("\"lots\""), "{err}");
    }

    #[test]
    fn a_bad_delay_spec_is_refused_naming_it() {
        let err = parse(&["--delay", "soon"]).expect_err("not a delay");
        assert!(err.contains("soon"), "{err}");
    }

    #[test]
    fn a_recipe_reaches_the_config_with_its_kinds_and_the_default_kind_beside_it()
    -> Result<(), String> {
        let config = parse(&["--delay", "spin:2ms+100ms", "--delay-kind", "block"])?;
        assert_eq!(config.protocol.delay.to_string(), "spin:2ms+100ms");
        assert_eq!(config.protocol.delay_kind, DelayKind::Block);
        Ok(())
    }

    #[test]
    fn a_bad_phase_is_refused_naming_it() {
        let err = parse(&["--delay", "spin:2ms+wait:2xs"]).expect_err("not a recipe");
        assert!(err.contains("phase 2 \"wait:2xs\""), "{err}");
    }

    #[test]
    fn a_zero_line_limit_is_refused_naming_the_field() {
        let err = parse(&["--max-line-bytes", "0"]).expect_err("zero limit");
        assert!(err.contains("max_line_bytes"), "{err}");
    }
}
