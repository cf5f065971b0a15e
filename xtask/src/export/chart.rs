//! The sweep chart: wall time and peak memory against iterations, one line per server, as an
//! SVG rendered from a [`Summary`] (like the markdown, from the JSON only).
//!
//! Two panels side by side share the x axis (connections per run, logarithmic, since sweeps
//! go 1000, 10000, 50000). Failed points are simply missing from their line.

use plotters::prelude::*;

use crate::results::Summary;

const WIDTH: u32 = 1100;
const HEIGHT: u32 = 460;

/// The chart as SVG text, or `None` when the summary is not a sweep (one iteration count).
///
/// # Errors
/// Only if plotters fails to draw, which it does not for in-memory SVG unless the data are
/// degenerate; the message says which panel.
pub fn svg(summary: &Summary) -> anyhow::Result<Option<String>> {
    let counts = &summary.params.iterations;
    if counts.len() < 2 {
        return Ok(None);
    }
    let series = series(summary);
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("chart background: {e}"))?;
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let x_range = x_range(counts);
        panel(&left, "wall time (s, median)", &x_range, &series, |p| {
            p.wall_seconds
        })?;
        panel(&right, "peak RSS (MiB, median)", &x_range, &series, |p| {
            p.peak_rss_mib
        })?;
        root.present()
            .map_err(|e| anyhow::anyhow!("chart output: {e}"))?;
    }
    Ok(Some(text))
}

/// One server's points.
struct Series {
    server: String,
    points: Vec<Point>,
}

#[derive(Clone, Copy)]
struct Point {
    iterations: f64,
    wall_seconds: f64,
    peak_rss_mib: f64,
}

fn series(summary: &Summary) -> Vec<Series> {
    let mut all: Vec<Series> = Vec::new();
    for row in &summary.rows {
        let Some(m) = &row.measured else { continue };
        let point = Point {
            iterations: row.iterations as f64,
            wall_seconds: m.wall_seconds.median,
            peak_rss_mib: m.peak_rss_bytes / (1024.0 * 1024.0),
        };
        match all.iter_mut().find(|s| s.server == row.server) {
            Some(s) => s.points.push(point),
            None => all.push(Series {
                server: row.server.clone(),
                points: vec![point],
            }),
        }
    }
    all
}

fn x_range(counts: &[u64]) -> std::ops::Range<f64> {
    let min = counts.iter().copied().min().unwrap_or(1) as f64;
    let max = counts.iter().copied().max().unwrap_or(10) as f64;
    (min / 1.5)..(max * 1.5)
}

fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_range: &std::ops::Range<f64>,
    series: &[Series],
    value: fn(&Point) -> f64,
) -> anyhow::Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("chart panel {title}: {e}");
    let y_max = series
        .iter()
        .flat_map(|s| s.points.iter().map(value))
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE)
        * 1.1;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(56)
        .build_cartesian_2d(x_range.clone().log_scale(), 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("connections per run (log scale)")
        .x_label_formatter(&|x| format!("{x:.0}"))
        .draw()
        .map_err(err)?;
    for (i, s) in series.iter().enumerate() {
        let color = Palette99::pick(i).to_rgba();
        let points: Vec<(f64, f64)> = s.points.iter().map(|p| (p.iterations, value(p))).collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(s.server.clone())
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], color.stroke_width(2)));
        chart
            .draw_series(
                points
                    .into_iter()
                    .map(|p| Circle::new(p, 3, color.filled())),
            )
            .map_err(err)?;
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    Ok(())
}
