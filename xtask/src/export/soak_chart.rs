//! One server's soak over time, as an SVG: RSS, open descriptors and each loadgen window's
//! p99, three panels stacked on one time axis, rendered from the summary alone.
//!
//! A leak is a line that climbs; a descriptor left open by a hostile wave is a step that does
//! not come back down after the wave's shaded span; a server that degrades under abuse shows
//! in the p99 line. The y axes start at zero so that a flat line looks flat.

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::export::format::MIB;
use crate::study::soak::results::{ServerSoak, Settings};

const WIDTH: u32 = 960;
const HEIGHT: u32 = 780;

const LINE: RGBColor = RGBColor(31, 119, 180);
const WAVE: RGBColor = RGBColor(255, 127, 14);

/// The chart of `server`'s soak.
///
/// # Errors
/// Only if plotters fails to draw, which it does not for in-memory SVG; the message says
/// which panel.
pub fn svg(server: &ServerSoak, settings: &Settings) -> anyhow::Result<String> {
    let x_max = server
        .samples
        .iter()
        .map(|s| s.t_seconds)
        .chain(server.windows.iter().map(|w| w.end_seconds))
        .fold(settings.duration_seconds, f64::max);
    let rss: Vec<(f64, f64)> = server
        .samples
        .iter()
        .map(|s| (s.t_seconds, s.rss_bytes as f64 / MIB))
        .collect();
    let fds: Vec<(f64, f64)> = server
        .samples
        .iter()
        .map(|s| (s.t_seconds, s.open_fds as f64))
        .collect();
    let p99: Vec<(f64, f64)> = server
        .windows
        .iter()
        .map(|w| (w.end_seconds, w.latency_p99_ms))
        .collect();
    let waves: Vec<(f64, f64)> = server
        .waves
        .iter()
        .map(|w| (w.start_seconds, w.end_seconds))
        .collect();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)
            .map_err(|e| anyhow::anyhow!("chart background: {e}"))?;
        let root = root
            .titled(
                &format!(
                    "{}: soak of {:.0} s at {:.0} req/s, hostile waves shaded",
                    server.name, settings.duration_seconds, settings.requests_per_second
                ),
                ("sans-serif", 20),
            )
            .map_err(|e| anyhow::anyhow!("chart title: {e}"))?;
        let panels = root.split_evenly((3, 1));
        let x = 0.0..x_max;
        panel(&panels[0], "RSS (MiB)", &x, &rss, &[], false)?;
        panel(&panels[1], "open descriptors", &x, &fds, &waves, false)?;
        panel(
            &panels[2],
            "p99 latency per window (ms)",
            &x,
            &p99,
            &[],
            true,
        )?;
        root.present()
            .map_err(|e| anyhow::anyhow!("chart output: {e}"))?;
    }
    Ok(text)
}

/// One panel: `points` as a line (with markers when `markers`), `spans` shaded behind it.
fn panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    x: &std::ops::Range<f64>,
    points: &[(f64, f64)],
    spans: &[(f64, f64)],
    markers: bool,
) -> anyhow::Result<()> {
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("chart panel {title}: {e}");
    let y_max = points.iter().map(|p| p.1).fold(0.0, f64::max).max(1.0) * 1.15;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(30)
        .y_label_area_size(60)
        .build_cartesian_2d(x.clone(), 0.0..y_max)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("seconds since the server started")
        .x_label_formatter(&|v| format!("{v:.0}"))
        .y_label_formatter(&|v| format!("{v:.0}"))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(spans.iter().map(|&(start, end)| {
            Rectangle::new([(start, 0.0), (end, y_max)], WAVE.mix(0.25).filled())
        }))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            points.iter().copied(),
            LINE.stroke_width(2),
        ))
        .map_err(err)?;
    if markers {
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 2, LINE.filled())))
            .map_err(err)?;
    }
    Ok(())
}
