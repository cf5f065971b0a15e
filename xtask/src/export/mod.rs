//! Turning a [`Summary`] into files, in hyperfine's manner: one [`Exporter`] per format
//! (JSON, markdown, SVG), each a pure function of the summary, and [`write()`] to put the chosen
//! ones into a comparison directory.
//!
//! The parts: [`markdown`] (a comparison's report and its tables), [`capacity`] (a capacity
//! study's report), [`scenarios`] (a scenarios study's report), [`latency_chart`] (its SVG), [`targets`] (the checks, their
//! thresholds and the article's published figures, as data), [`verdict`] (the generated
//! prose), [`figures`] (derived numbers), [`format`](mod@format) (number formatting), [`chart`] (the SVG),
//! [`soak`] (a soak's report and files) and [`soak_chart`] (one server's soak over time).
//! Nothing here knows which study made the summary.

use std::fs;
use std::path::Path;

use anyhow::Context;

use crate::results::Summary;
use crate::study::capacity::results::CapacitySummary;
use crate::study::scenarios::results::ScenariosSummary;

pub mod capacity;
pub mod chart;
pub mod figures;
pub mod format;
pub mod latency_chart;
pub mod markdown;
pub mod scenarios;
pub mod soak;
pub mod soak_chart;
pub mod targets;
pub mod verdict;

/// Name of the summary file in a comparison directory.
pub const SUMMARY_FILE: &str = "summary.json";
/// Name of the rendered report in a comparison directory.
pub const README_FILE: &str = "README.md";
/// Name of the chart written beside the report for sweeps.
pub const CHART_FILE: &str = "chart.svg";
/// Name of a capacity study's latency-against-throughput chart.
pub const LATENCY_CHART_FILE: &str = "latency.svg";

/// One output format of a study's summary `S` (a comparison's by default).
pub trait Exporter<S = Summary> {
    /// The file it writes in a comparison directory.
    fn file_name(&self) -> &'static str;

    /// The file's text, or `None` when this summary has nothing to show in this format (a
    /// chart of a single iteration count).
    ///
    /// # Errors
    /// When the summary cannot be put into this format.
    fn serialize(&self, summary: &S) -> anyhow::Result<Option<String>>;
}

/// `summary.json`: the source of truth, pretty-printed with a final newline.
#[derive(Debug, Clone, Copy, Default)]
pub struct JsonExporter;

/// `README.md`: the report.
#[derive(Debug, Clone, Copy, Default)]
pub struct MarkdownExporter;

/// `chart.svg`: wall time and memory against iterations, for sweeps.
#[derive(Debug, Clone, Copy, Default)]
pub struct SvgExporter;

impl<S: serde::Serialize> Exporter<S> for JsonExporter {
    fn file_name(&self) -> &'static str {
        SUMMARY_FILE
    }

    fn serialize(&self, summary: &S) -> anyhow::Result<Option<String>> {
        Ok(Some(to_json(summary)?))
    }
}

impl Exporter for MarkdownExporter {
    fn file_name(&self) -> &'static str {
        README_FILE
    }

    fn serialize(&self, summary: &Summary) -> anyhow::Result<Option<String>> {
        Ok(Some(markdown::readme(summary)))
    }
}

impl Exporter for SvgExporter {
    fn file_name(&self) -> &'static str {
        CHART_FILE
    }

    fn serialize(&self, summary: &Summary) -> anyhow::Result<Option<String>> {
        chart::svg(summary)
    }
}

/// A capacity study's `README.md`.
#[derive(Debug, Clone, Copy, Default)]
pub struct CapacityMarkdownExporter;

/// A capacity study's `latency.svg`: p99 against achieved rate, one line per server.
#[derive(Debug, Clone, Copy, Default)]
pub struct LatencySvgExporter;

impl Exporter<CapacitySummary> for CapacityMarkdownExporter {
    fn file_name(&self) -> &'static str {
        README_FILE
    }

    fn serialize(&self, summary: &CapacitySummary) -> anyhow::Result<Option<String>> {
        Ok(Some(capacity::readme(summary)))
    }
}

impl Exporter<CapacitySummary> for LatencySvgExporter {
    fn file_name(&self) -> &'static str {
        LATENCY_CHART_FILE
    }

    fn serialize(&self, summary: &CapacitySummary) -> anyhow::Result<Option<String>> {
        let chart = summary.latency_chart();
        if chart.series.iter().all(|s| s.points.is_empty()) {
            return Ok(None);
        }
        latency_chart::svg(&chart).map(Some)
    }
}

/// What is rendered from a capacity summary.
pub const CAPACITY_RENDERED: [&dyn Exporter<CapacitySummary>; 2] =
    [&CapacityMarkdownExporter, &LatencySvgExporter];

/// Every format of a capacity study, the summary first.
pub const CAPACITY_ALL: [&dyn Exporter<CapacitySummary>; 3] = [
    &JsonExporter,
    &CapacityMarkdownExporter,
    &LatencySvgExporter,
];

/// A scenarios study's `README.md`.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScenariosMarkdownExporter;

impl Exporter<ScenariosSummary> for ScenariosMarkdownExporter {
    fn file_name(&self) -> &'static str {
        README_FILE
    }

    fn serialize(&self, summary: &ScenariosSummary) -> anyhow::Result<Option<String>> {
        Ok(Some(scenarios::readme(summary)))
    }
}

/// What is rendered from a scenarios summary.
pub const SCENARIOS_RENDERED: [&dyn Exporter<ScenariosSummary>; 1] = [&ScenariosMarkdownExporter];

/// Every format of a scenarios study, the summary first.
pub const SCENARIOS_ALL: [&dyn Exporter<ScenariosSummary>; 2] =
    [&JsonExporter, &ScenariosMarkdownExporter];

/// What is rendered from a summary: every format but the summary itself.
pub const RENDERED: [&dyn Exporter; 2] = [&MarkdownExporter, &SvgExporter];

/// Every format, the summary first.
pub const ALL: [&dyn Exporter; 3] = [&JsonExporter, &MarkdownExporter, &SvgExporter];

/// Writes `summary` into `dir` in each of `exporters`' formats.
///
/// # Errors
/// When a format fails or a file cannot be written; the message names the file.
pub fn write<S>(dir: &Path, summary: &S, exporters: &[&dyn Exporter<S>]) -> anyhow::Result<()> {
    for exporter in exporters {
        let path = dir.join(exporter.file_name());
        let text = exporter
            .serialize(summary)
            .with_context(|| format!("rendering {}", path.display()))?;
        if let Some(text) = text {
            write_text(&path, &text)?;
        }
    }
    Ok(())
}

/// `value` as pretty JSON with a final newline.
///
/// # Errors
/// When it cannot be serialized.
pub fn to_json(value: &impl serde::Serialize) -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(value).context("serializing to json")?;
    text.push('\n');
    Ok(text)
}

/// Writes `text` to `path`.
///
/// # Errors
/// When it cannot be written; the message names the file.
pub fn write_text(path: &Path, text: &str) -> anyhow::Result<()> {
    fs::write(path, text).with_context(|| format!("writing {}", path.display()))
}
