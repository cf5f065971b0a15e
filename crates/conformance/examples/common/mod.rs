//! What the issue-3 benchmark examples share: naming binaries relative to the repository
//! root (a committed report must be replayable on another machine), starting a variant
//! through the one process harness, and writing the JSON and the markdown rendered from it.

use std::error::Error;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use server_process::{Launch, ServerProcess};

/// One run of a benchmark: how it was made, and one row per server variant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Results<R> {
    /// The command that measured these, as typed at the repository root.
    pub command: String,
    /// One entry per server variant.
    pub servers: Vec<R>,
}

/// A benchmark example's fixed parts: its name, its leading numeric parameters (before the
/// output stem and the variants), the flags every variant gets, and its renderer.
pub struct Example<R> {
    /// The example's name (`cargo run --example NAME`).
    pub name: &'static str,
    /// Names of the leading numeric parameters, in order.
    pub parameters: &'static [&'static str],
    /// The markdown of a run read from a (repository-relative) JSON path.
    pub render: fn(&Results<R>, &str) -> String,
}

/// The top of every report: its title and provenance, from the JSON alone.
pub fn header(title: &str, example: &str, json_path: &str, command: &str) -> String {
    format!(
        "# {title}\n\n\
         Rendered from `{json_path}` by `cargo run --release -p conformance --example {example} \
         -- --render {json_path}`; do not edit by hand.\n\n\
         Measured (after `cargo build --release -p server-threaded -p server-async`) \
         with:\n\n```\n{command}\n```\n\n"
    )
}

/// How long a server binary may take to print its `listening on` line.
const START_PATIENCE: Duration = Duration::from_secs(60);

/// The repository root, which every path in a report is relative to.
pub fn repo_root() -> Result<PathBuf, Box<dyn Error>> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    root.canonicalize()
        .map_err(|e| format!("cannot find the repository root {}: {e}", root.display()).into())
}

/// `path` (relative to the current directory, or absolute) as the repository-relative path
/// a user at the root would type.
///
/// # Errors
/// When it does not exist or lies outside the repository: a report naming it could not be
/// replayed elsewhere.
pub fn repo_relative(path: &Path) -> Result<String, Box<dyn Error>> {
    let absolute = path
        .canonicalize()
        .map_err(|e| format!("cannot find {}: {e}", path.display()))?;
    let root = repo_root()?;
    let relative = absolute.strip_prefix(&root).map_err(|_| {
        format!(
            "{} is outside the repository {}; give a path inside it (e.g. target/release/...) \
             so the report can be replayed",
            path.display(),
            root.display()
        )
    })?;
    Ok(relative.display().to_string())
}

/// An output stem (`dir/name`, written as `dir/name.json` and `dir/name.md`) as the
/// repository-relative path to record; its folder must exist.
pub fn repo_relative_stem(stem: &str) -> Result<String, Box<dyn Error>> {
    let path = Path::new(stem);
    let name = path
        .file_name()
        .ok_or_else(|| format!("output stem {stem:?} names no file"))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    Ok(Path::new(&repo_relative(folder)?)
        .join(name)
        .display()
        .to_string())
}

/// One server variant from the command line: `"binary flags..."`.
pub struct Variant {
    /// The binary as given, to run.
    pub binary: PathBuf,
    /// The binary relative to the repository root, to record.
    pub recorded_binary: String,
    /// The variant's flags.
    pub flags: Vec<String>,
}

impl Variant {
    /// Parses `"binary flags..."`.
    pub fn parse(text: &str) -> Result<Variant, Box<dyn Error>> {
        let mut words = text.split_whitespace();
        let binary = PathBuf::from(words.next().ok_or("empty server variant \"\"")?);
        Ok(Variant {
            recorded_binary: repo_relative(&binary)?,
            binary,
            flags: words.map(str::to_owned).collect(),
        })
    }

    /// The variant as given on the command line, with the binary repository-relative.
    pub fn recorded(&self) -> String {
        [self.recorded_binary.clone()]
            .into_iter()
            .chain(self.flags.iter().cloned())
            .collect::<Vec<_>>()
            .join(" ")
    }

    /// Starts it on port 0 with `common` flags before its own; returns the process and the
    /// command line to record (repository-relative, without `--port 0`).
    pub fn start(&self, common: &[&str]) -> Result<(ServerProcess, String), Box<dyn Error>> {
        let args: Vec<String> = common
            .iter()
            .map(|&flag| flag.to_owned())
            .chain(self.flags.iter().cloned())
            .collect();
        let launch = Launch::new(&self.binary)
            .args(["--port", "0"])
            .args(args.iter().cloned());
        let server = ServerProcess::start(&launch, START_PATIENCE)?;
        Ok((
            server,
            format!("{} {}", self.recorded_binary, args.join(" ")),
        ))
    }
}

/// The whole command line of an example: either `--render FILE.json`, or the parameters,
/// the output stem and the variants; `measure` runs one variant with the parameters.
/// Writes `<stem>.json`, then renders `<stem>.md` from the JSON as written (not from the
/// values in memory), so that the test re-rendering the committed JSON can demand an exact
/// match.
pub fn run_main<R: Serialize + DeserializeOwned>(
    example: &Example<R>,
    mut measure: impl FnMut(&Variant, &[usize]) -> Result<R, Box<dyn Error>>,
) -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, json] = args.as_slice() {
        if flag == "--render" {
            return render_file(Path::new(json), example.render);
        }
    }
    let n = example.parameters.len();
    if args.len() < n + 2 {
        let names: Vec<String> = example
            .parameters
            .iter()
            .map(|p| format!("<{p}>"))
            .collect();
        return Err(format!(
            "usage: {0} {1} <output stem> <\"binary flags...\">... | {0} --render <file.json>",
            example.name,
            names.join(" ")
        )
        .into());
    }
    let parameters = example
        .parameters
        .iter()
        .zip(&args)
        .map(|(name, value)| value.parse().map_err(|e| format!("{name} {value:?}: {e}")))
        .collect::<Result<Vec<usize>, _>>()?;
    let stem = repo_relative_stem(&args[n])?;
    let variants = args[n + 1..]
        .iter()
        .map(|text| Variant::parse(text))
        .collect::<Result<Vec<_>, _>>()?;
    let recorded: Vec<String> = args[..n]
        .iter()
        .cloned()
        .chain([stem.clone()])
        .chain(variants.iter().map(|v| format!("{:?}", v.recorded())))
        .collect();
    server_common::raise_nofile_limit()?;
    let results = Results {
        command: format!(
            "cargo run --release -p conformance --example {} -- {}",
            example.name,
            recorded.join(" ")
        ),
        servers: variants
            .iter()
            .map(|variant| measure(variant, &parameters))
            .collect::<Result<Vec<R>, _>>()?,
    };
    let json_path = repo_root()?.join(format!("{stem}.json"));
    std::fs::write(&json_path, serde_json::to_string_pretty(&results)? + "\n")
        .map_err(|e| format!("cannot write {}: {e}", json_path.display()))?;
    render_file(&json_path, example.render)
}

/// Renders `<file>.md` from `file` (a `.json`), as `--render` does.
pub fn render_file<R: DeserializeOwned>(
    json_path: &Path,
    render: fn(&Results<R>, &str) -> String,
) -> Result<(), Box<dyn Error>> {
    let text = std::fs::read_to_string(json_path)
        .map_err(|e| format!("cannot read {}: {e}", json_path.display()))?;
    let results: Results<R> = serde_json::from_str(&text)
        .map_err(|e| format!("cannot parse {}: {e}", json_path.display()))?;
    let md_path = json_path.with_extension("md");
    std::fs::write(&md_path, render(&results, &repo_relative(json_path)?))
        .map_err(|e| format!("cannot write {}: {e}", md_path.display()))?;
    println!("wrote {}", md_path.display());
    Ok(())
}
