//! What the benchmark examples (`mio_vs_tokio_current`, `mio_vs_uring`) share around their
//! runs: the machine line of a report, a stop that demands the clean exit, the command line
//! as a user types it at the repository root, and the JSON written first with the markdown
//! rendered from it as written, so that a test can demand that the committed markdown is
//! exactly its JSON rendered.
//!
//! Each example keeps its own results type and renderer; these take the JSON text and a
//! render function, so this crate needs no serialization library.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::ServerProcess;

/// `2 x <cpu model>, Linux <kernel>`: the machine line of a benchmark report.
pub fn environment() -> String {
    let cpuinfo = fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let model = cpuinfo
        .lines()
        .find_map(|line| line.strip_prefix("model name"))
        .map(|rest| rest.trim_start_matches([' ', '\t', ':']).to_owned())
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let kernel = fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!("{cores} x {model}, Linux {}", kernel.trim())
}

/// SIGTERM, then the clean exit the server contract promises.
///
/// # Errors
/// When the server cannot be stopped, or did not exit cleanly; the message names it.
pub fn stop_cleanly(server: ServerProcess, patience: Duration) -> io::Result<()> {
    let name = server.name().to_owned();
    let exit = server.stop(patience).map_err(io::Error::other)?;
    if !exit.clean() {
        return Err(io::Error::other(format!(
            "server {name} did not exit cleanly: {exit:?}"
        )));
    }
    Ok(())
}

/// The repository root (two levels above this crate).
///
/// # Errors
/// When it cannot be resolved.
pub fn repository_root() -> io::Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .canonicalize()
}

/// `path` relative to `root`; an error if it lies outside (the report could not be replayed).
/// The file need not exist yet; its folder must.
///
/// # Errors
/// When the folder does not exist or lies outside `root`.
pub fn inside(root: &Path, path: &Path) -> io::Result<String> {
    let (folder, file) = match (path.parent(), path.file_name()) {
        (Some(folder), Some(file)) if !folder.as_os_str().is_empty() => (folder, Some(file)),
        _ => (path, None),
    };
    let absolute = folder
        .canonicalize()
        .map_err(|e| io::Error::new(e.kind(), format!("cannot find {}: {e}", folder.display())))?;
    let relative = absolute.strip_prefix(root).map_err(|_| {
        io::Error::other(format!(
            "{} lies outside the repository {}",
            path.display(),
            root.display()
        ))
    })?;
    Ok(file
        .map_or(relative.to_path_buf(), |f| relative.join(f))
        .display()
        .to_string())
}

/// This run's command line as a user types it at the repository root: `invocation` (e.g.
/// `cargo run --release -p server-mio --example mio_vs_tokio_current --`), then the
/// arguments, with the folders of `--bin-dir` and `--out` relative to the root, so the
/// committed JSON names no path of the machine it ran on.
///
/// # Errors
/// When a path argument lies outside the repository.
pub fn recorded_command(invocation: &str) -> io::Result<String> {
    let root = repository_root()?;
    let mut words = vec![invocation.to_owned()];
    let mut args = std::env::args().skip(1);
    let mut saw_bin_dir = false;
    while let Some(arg) = args.next() {
        let is_path = arg == "--bin-dir" || arg == "--out";
        saw_bin_dir |= arg == "--bin-dir";
        words.push(arg);
        if is_path {
            if let Some(path) = args.next() {
                words.push(inside(&root, Path::new(&path))?);
            }
        }
    }
    if !saw_bin_dir {
        words.push("--bin-dir target/release".to_owned());
    }
    Ok(words.join(" "))
}

/// Renders `<out>.md` from `<out>.json` with `render(json, out relative to the root)`.
///
/// # Errors
/// When a file cannot be read or written, or `render` fails (a JSON that does not parse).
pub fn render_again<E>(
    out: &Path,
    render: impl FnOnce(&str, &str) -> Result<String, E>,
) -> io::Result<()>
where
    E: std::fmt::Display,
{
    let json_path = out.with_extension("json");
    let json = fs::read_to_string(&json_path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot read {}: {e}", json_path.display()),
        )
    })?;
    let markdown = render(&json, &inside(&repository_root()?, out)?)
        .map_err(|e| io::Error::other(format!("cannot parse {}: {e}", json_path.display())))?;
    let md_path = out.with_extension("md");
    fs::write(&md_path, markdown).map_err(|e| {
        io::Error::new(e.kind(), format!("cannot write {}: {e}", md_path.display()))
    })?;
    eprintln!("wrote {}", md_path.display());
    Ok(())
}

/// Writes `json` to `<out>.json`, then renders the markdown from the JSON as written (not
/// from the values in memory), as [`render_again`].
///
/// # Errors
/// As [`render_again`], or when the JSON cannot be written.
pub fn write_outputs<E>(
    out: &Path,
    json: &str,
    render: impl FnOnce(&str, &str) -> Result<String, E>,
) -> io::Result<()>
where
    E: std::fmt::Display,
{
    let json_path = out.with_extension("json");
    fs::write(&json_path, json).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot write {}: {e}", json_path.display()),
        )
    })?;
    render_again(out, render)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_inside_the_repository_is_written_from_its_root() {
        let root = repository_root().expect("the repository");
        let out = root.join("benches-results/not-yet-written");
        assert_eq!(
            inside(&root, &out).expect("inside"),
            "benches-results/not-yet-written"
        );
        let error = inside(&root, Path::new("/")).expect_err("outside");
        assert!(
            error.to_string().contains("lies outside the repository"),
            "{error}"
        );
    }
}
