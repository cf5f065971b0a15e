//! `cargo xtask report DIR`: re-renders a comparison's, a capacity study's, a scenarios
//! study's or a soak's `README.md` (and charts) from its `summary.json`, and the `LATEST.md`
//! index; also the readers and writers studies use.
//!
//! Rendering is the only way reports are made, so editing a number means editing the JSON
//! and re-rendering; `tests/reports_match_json.rs` fails when a committed report differs from
//! what its JSON renders to.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::export::{self, README_FILE, SUMMARY_FILE, markdown};
use crate::results::{Kind, OLDEST_READABLE_SCHEMA, SCHEMA_VERSION, Summary};
use crate::study::capacity::results::{CapacitySummary, SCHEMA_VERSION as CAPACITY_SCHEMA};
use crate::study::scenarios::results::{SCHEMA_VERSION as SCENARIOS_SCHEMA, ScenariosSummary};
use crate::study::soak::results::{self as soak, SoakSummary};

/// Name of the index beside the comparison directories.
pub const LATEST_FILE: &str = "LATEST.md";

/// Re-renders `dir` from its summary (a comparison's, a capacity study's, a scenarios study's
/// or a soak's, by its [`kind_of`]), then the index of its parent directory (a soak's is not
/// listed there).
///
/// # Errors
/// When the summary cannot be read or parsed, or a file cannot be written.
pub fn run(dir: &Path) -> anyhow::Result<()> {
    match kind_of(dir) {
        Some(Kind::Soak) => {
            // LATEST.md lists comparisons, capacity and scenarios studies only.
            let summary = read_soak(dir)?;
            export::soak::write(dir, &summary, false)?;
            eprintln!("rendered {}", dir.join(README_FILE).display());
            return Ok(());
        }
        Some(Kind::Scenarios) => {
            let summary = read_scenarios(dir)?;
            export::write(dir, &summary, &export::SCENARIOS_RENDERED)?;
        }
        Some(Kind::Capacity) => {
            let summary = read_capacity(dir)?;
            export::write(dir, &summary, &export::CAPACITY_RENDERED)?;
        }
        // No readable summary: reading it as a comparison says why.
        Some(Kind::Compare) | None => {
            let summary = read_summary(dir)?;
            export::write(dir, &summary, &export::RENDERED)?;
        }
    }
    write_latest(&parent_of(dir))?;
    eprintln!("rendered {}", dir.join(README_FILE).display());
    Ok(())
}

/// Which study wrote `dir`'s summary: its `kind` field, or for a summary written before
/// studies wrote one, what its keys say (a scenarios study lists `scenarios`, a capacity
/// study `servers` where a comparison lists `rows`). `None` when there is no readable
/// summary, or its `kind` is one this xtask does not know.
pub fn kind_of(dir: &Path) -> Option<Kind> {
    let text = fs::read_to_string(dir.join(SUMMARY_FILE)).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    let summary = value.as_object()?;
    if let Some(kind) = summary.get("kind") {
        return serde_json::from_value(kind.clone()).ok();
    }
    let has = |key: &str| summary.contains_key(key);
    Some(if has("scenarios") {
        Kind::Scenarios
    } else if has("servers") && !has("rows") {
        Kind::Capacity
    } else {
        Kind::Compare
    })
}

/// Writes a new comparison: its summary, report, chart, and the refreshed index.
///
/// # Errors
/// When a file cannot be written.
pub fn write_all(dir: &Path, summary: &Summary) -> anyhow::Result<()> {
    export::write(dir, summary, &export::ALL)?;
    write_latest(&parent_of(dir))
}

/// Writes a new capacity study: its summary, report, chart, and the refreshed index.
///
/// # Errors
/// When a file cannot be written.
pub fn write_capacity(dir: &Path, summary: &CapacitySummary) -> anyhow::Result<()> {
    export::write(dir, summary, &export::CAPACITY_ALL)?;
    write_latest(&parent_of(dir))
}

/// Writes a new scenarios study: its summary, report, and the refreshed index.
///
/// # Errors
/// When a file cannot be written.
pub fn write_scenarios(dir: &Path, summary: &ScenariosSummary) -> anyhow::Result<()> {
    export::write(dir, summary, &export::SCENARIOS_ALL)?;
    write_latest(&parent_of(dir))
}

/// Whether `dir`'s summary is a scenarios study's.
pub fn is_scenarios(dir: &Path) -> bool {
    kind_of(dir) == Some(Kind::Scenarios)
}

/// Reads `<dir>/summary.json` of a scenarios study.
///
/// # Errors
/// When it is missing, is not a scenarios summary, or has a schema version this xtask does
/// not read.
pub fn read_scenarios(dir: &Path) -> anyhow::Result<ScenariosSummary> {
    read_study(
        dir,
        "scenarios",
        SCENARIOS_SCHEMA,
        |s: &ScenariosSummary| s.schema_version,
    )
}

/// Reads `<dir>/summary.json` as a `kind` study of schema `schema` (`version` reads it).
fn read_study<S: DeserializeOwned>(
    dir: &Path,
    kind: &str,
    schema: u32,
    version: fn(&S) -> u32,
) -> anyhow::Result<S> {
    let path = dir.join(SUMMARY_FILE);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let summary: S =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if version(&summary) != schema {
        bail!(
            "{} has schema_version {}, this xtask reads {kind} schema {schema}",
            path.display(),
            version(&summary)
        );
    }
    Ok(summary)
}

/// Writes a new soak: its summary, report and charts (LATEST.md lists comparisons,
/// capacity and scenarios studies only, so it is left alone).
///
/// # Errors
/// When a file cannot be written.
pub fn write_soak(dir: &Path, summary: &SoakSummary) -> anyhow::Result<()> {
    export::soak::write(dir, summary, true)
}

/// Whether `dir`'s summary is a soak's.
pub fn is_soak(dir: &Path) -> bool {
    kind_of(dir) == Some(Kind::Soak)
}

/// Reads `<dir>/summary.json` of a soak.
///
/// # Errors
/// When it is missing, is not a soak's summary, or has a schema version this xtask does not
/// read.
pub fn read_soak(dir: &Path) -> anyhow::Result<SoakSummary> {
    read_study(dir, "soak", soak::SCHEMA_VERSION, |s: &SoakSummary| {
        s.schema_version
    })
}

/// Every scenarios study under `results_dir`, newest first.
///
/// # Errors
/// When the directory cannot be listed or a summary there cannot be read.
pub fn scenario_studies(results_dir: &Path) -> anyhow::Result<Vec<(String, ScenariosSummary)>> {
    studies(results_dir, is_scenarios, read_scenarios, |s| {
        &s.env.date_utc
    })
}

/// Every study under `results_dir` of the kind `is` tells, read with `read`, newest first
/// by `date` (then by directory name).
fn studies<S>(
    results_dir: &Path,
    is: fn(&Path) -> bool,
    read: fn(&Path) -> anyhow::Result<S>,
    date: fn(&S) -> &str,
) -> anyhow::Result<Vec<(String, S)>> {
    let mut entries = Vec::new();
    for (name, path) in study_dirs(results_dir)? {
        if is(&path) {
            entries.push((name, read(&path)?));
        }
    }
    entries.sort_by(|(a_dir, a), (b_dir, b)| (date(b), b_dir).cmp(&(date(a), a_dir)));
    Ok(entries)
}

/// Whether `dir`'s summary is a capacity study's.
pub fn is_capacity(dir: &Path) -> bool {
    kind_of(dir) == Some(Kind::Capacity)
}

/// Every soak under `results_dir`, by directory name.
///
/// # Errors
/// When the directory cannot be listed or a summary there cannot be read.
pub fn soaks(results_dir: &Path) -> anyhow::Result<Vec<(String, SoakSummary)>> {
    let mut entries = Vec::new();
    for (name, path) in study_dirs(results_dir)? {
        if is_soak(&path) {
            entries.push((name, read_soak(&path)?));
        }
    }
    entries.sort_by(|(a, _), (b, _)| a.cmp(b));
    Ok(entries)
}

/// Reads `<dir>/summary.json` of a capacity study.
///
/// # Errors
/// When it is missing, is not a capacity summary, or has a schema version this xtask does
/// not read.
pub fn read_capacity(dir: &Path) -> anyhow::Result<CapacitySummary> {
    read_study(dir, "capacity", CAPACITY_SCHEMA, |s: &CapacitySummary| {
        s.schema_version
    })
}

/// Every capacity study under `results_dir`, newest first.
///
/// # Errors
/// When the directory cannot be listed or a summary there cannot be read.
pub fn capacity_studies(results_dir: &Path) -> anyhow::Result<Vec<(String, CapacitySummary)>> {
    studies(results_dir, is_capacity, read_capacity, |s| &s.env.date_utc)
}

/// Every directory under `results_dir` that holds a summary, by name.
fn study_dirs(results_dir: &Path) -> anyhow::Result<Vec<(String, PathBuf)>> {
    let mut dirs = Vec::new();
    let listing =
        fs::read_dir(results_dir).with_context(|| format!("listing {}", results_dir.display()))?;
    for entry in listing {
        let path = entry?.path();
        if path.join(SUMMARY_FILE).is_file() {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            dirs.push((name, path));
        }
    }
    Ok(dirs)
}

fn parent_of(dir: &Path) -> PathBuf {
    dir.parent()
        .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
}

/// Reads `<dir>/summary.json`, upgrading an older schema's models to the catalogue's.
///
/// # Errors
/// When it is missing, is not a summary, or has a schema version this xtask does not read.
pub fn read_summary(dir: &Path) -> anyhow::Result<Summary> {
    let path = dir.join(SUMMARY_FILE);
    let text = fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let mut summary: Summary =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    if !(OLDEST_READABLE_SCHEMA..=SCHEMA_VERSION).contains(&summary.schema_version) {
        bail!(
            "{} has schema_version {}, this xtask reads {OLDEST_READABLE_SCHEMA} to {SCHEMA_VERSION}",
            path.display(),
            summary.schema_version
        );
    }
    crate::catalogue::upgrade_legacy_models(&mut summary);
    Ok(summary)
}

/// Every comparison under `results_dir` (directories with a comparison's summary), newest
/// first.
///
/// # Errors
/// When the directory cannot be listed or a summary there cannot be read.
pub fn comparisons(results_dir: &Path) -> anyhow::Result<Vec<(String, Summary)>> {
    // A summary that cannot be read is taken as a comparison, so that reading it says why.
    let is_comparison = |dir: &Path| {
        !matches!(
            kind_of(dir),
            Some(Kind::Capacity | Kind::Scenarios | Kind::Soak)
        )
    };
    studies(results_dir, is_comparison, read_summary, |s| {
        &s.env.date_utc
    })
}

/// Rewrites `<results_dir>/LATEST.md` from every summary there.
///
/// # Errors
/// As [`comparisons`], or when the file cannot be written.
pub fn write_latest(results_dir: &Path) -> anyhow::Result<()> {
    export::write_text(&results_dir.join(LATEST_FILE), &latest_text(results_dir)?)
}

/// What `<results_dir>/LATEST.md` says: every comparison, then every capacity study and
/// every scenarios study (when there is one).
///
/// # Errors
/// As [`comparisons`].
pub fn latest_text(results_dir: &Path) -> anyhow::Result<String> {
    let mut text = markdown::latest(&comparisons(results_dir)?);
    let capacity = capacity_studies(results_dir)?;
    if !capacity.is_empty() {
        text.push_str(&export::capacity::latest(&capacity));
    }
    let scenarios = scenario_studies(results_dir)?;
    if !scenarios.is_empty() {
        text.push_str(&export::scenarios::latest(&scenarios));
    }
    Ok(text)
}

/// Writes `value` as pretty JSON with a final newline.
///
/// # Errors
/// When it cannot be serialized or written; the message names the file.
pub fn write_json(path: &Path, value: &impl Serialize) -> anyhow::Result<()> {
    let text = export::to_json(value).with_context(|| format!("serializing {}", path.display()))?;
    export::write_text(path, &text)
}
