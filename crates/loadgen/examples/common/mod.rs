//! What the benchmark examples (`throughput`, `fidelity`) share: reading and writing their
//! results (JSON the source of truth, markdown rendered from it), the load average they
//! record, and another process's CPU time.

use std::path::Path;

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

/// The flags every benchmark example takes for its results: `--json FILE` (write the
/// measurements), `--out FILE` (write the markdown, else stdout) and `--render FILE`
/// (re-render a JSON file instead of measuring).
#[derive(Debug, Default)]
pub struct Output {
    json: Option<String>,
    out: Option<String>,
    render: Option<String>,
}

impl Output {
    /// Takes `flag` if it is one of the output flags; `false` for any other flag.
    pub fn take(&mut self, flag: &str, value: &str) -> bool {
        let slot = match flag {
            "--json" => &mut self.json,
            "--out" => &mut self.out,
            "--render" => &mut self.render,
            _ => return false,
        };
        *slot = Some(value.to_owned());
        true
    }

    /// Re-renders `--render FILE` (refusing another `schema_version`), or calls `measure`
    /// and writes its JSON; then writes the markdown of either.
    ///
    /// # Errors
    /// What `measure` returns, or a file that cannot be read or written.
    pub fn run<T: Serialize + DeserializeOwned>(
        &self,
        schema_version: u32,
        version_of: impl Fn(&T) -> u32,
        measure: impl FnOnce() -> anyhow::Result<T>,
        render: impl Fn(&T) -> String,
    ) -> anyhow::Result<()> {
        let (results, json) = match &self.render {
            Some(path) => {
                let results: T = read_json(path)?;
                if version_of(&results) != schema_version {
                    bail!(
                        "{path} has schema_version {}, this example reads {schema_version}",
                        version_of(&results)
                    );
                }
                (results, None)
            }
            None => (measure()?, self.json.as_deref()),
        };
        emit(&results, json, self.out.as_deref(), &render(&results))
    }
}

/// The arguments as `(flag, value)` pairs: every flag of the examples takes a value. With
/// `--help` (or `-h`) anywhere, prints `usage` and exits.
///
/// # Errors
/// A flag without a value, naming it.
pub fn flag_pairs<'a>(args: &'a [String], usage: &str) -> anyhow::Result<Vec<(&'a str, &'a str)>> {
    if args.iter().any(|arg| arg == "--help" || arg == "-h") {
        println!("{usage}");
        std::process::exit(0);
    }
    args.chunks(2)
        .map(|pair| match pair {
            [flag, value] => Ok((flag.as_str(), value.as_str())),
            [flag] => bail!("{flag} needs a value"),
            _ => unreachable!("chunks of two"),
        })
        .collect()
}

/// A comma-separated list of counts (`1,32,256`).
///
/// # Errors
/// An entry that is not a count, naming the flag and its value.
pub fn counts(flag: &str, value: &str) -> anyhow::Result<Vec<u64>> {
    value
        .split(',')
        .map(|n| {
            n.parse()
                .with_context(|| format!("{flag} {value}: {n:?} is not a count"))
        })
        .collect()
}

/// Reads results written by [`emit`].
///
/// # Errors
/// The file cannot be read or is not JSON of `T`, naming the file.
fn read_json<T: DeserializeOwned>(path: &str) -> anyhow::Result<T> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {path}"))?;
    serde_json::from_str(&text).with_context(|| format!("invalid results json {path}"))
}

/// Writes `results` as JSON to `json` (when measured, not when re-rendered) and `markdown`
/// to `out`, or to stdout without `--out`.
///
/// # Errors
/// A file that cannot be written, naming it.
fn emit<T: Serialize>(
    results: &T,
    json: Option<&str>,
    out: Option<&str>,
    markdown: &str,
) -> anyhow::Result<()> {
    if let Some(path) = json {
        let text = serde_json::to_string_pretty(results)? + "\n";
        std::fs::write(path, text).with_context(|| format!("cannot write {path}"))?;
    }
    match out {
        Some(path) => std::fs::write(Path::new(path), markdown)
            .with_context(|| format!("cannot write {path}")),
        None => {
            print!("{markdown}");
            Ok(())
        }
    }
}

/// The 1, 5 and 15 minute load averages, as `/proc/loadavg` shows them.
pub fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

/// User plus system CPU time of another process, from `/proc/<pid>/stat`.
///
/// # Errors
/// The process's stat file cannot be read.
pub fn process_cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    // Fields after the command name, which is in parentheses and may contain spaces.
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime and stime are fields 14 and 15 of the file, 11 and 12 after the name.
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) } as f64;
    Ok((ticks(11) + ticks(12)) / hz)
}

/// User and system CPU seconds of `who` (`libc::RUSAGE_SELF`, or `libc::RUSAGE_CHILDREN`:
/// the children waited for so far).
pub fn rusage_seconds(who: libc::c_int) -> (f64, f64) {
    // SAFETY: getrusage only writes the zero-initialised struct it is handed.
    let usage = unsafe {
        let mut usage = std::mem::zeroed::<libc::rusage>();
        libc::getrusage(who, &mut usage);
        usage
    };
    let seconds = |t: libc::timeval| t.tv_sec as f64 + t.tv_usec as f64 / 1e6;
    (seconds(usage.ru_utime), seconds(usage.ru_stime))
}
