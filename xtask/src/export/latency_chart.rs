//! The latency-against-throughput chart: p99 latency against achieved rate, one line per
//! server, with the SLO's latency limit drawn across, as an SVG for a code host.
//!
//! Both axes are logarithmic: rates of a search step geometrically (Python's servers break
//! at a tenth of the Rust ones' rates), and a server past its limit has a p99 a hundred
//! times its delay; on linear axes every line would be a corner. A filled marker is a step
//! that met the SLO, a hollow one a step that broke it, so the knee of each line, and where
//! it crosses the SLO, is what the eye finds first. The input is plain data ([`LatencyChart`]),
//! so the chart knows nothing of the study that made it.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{AsRangedCoord, ValueFormatter};
use plotters::element::DashedPathElement;
use plotters::prelude::*;

const WIDTH: u32 = 960;
const HEIGHT: u32 = 600;

/// Line colours: Tableau's ten, distinct for most colour-blind readers and legible on white.
/// A chart of more servers (the default capacity study has twelve) draws the eleventh on
/// dashed in the first colours again, so no two lines look the same.
const COLOURS: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

/// The SLO line's colour: black, so that no server's colour is mistaken for it.
const SLO_COLOUR: RGBColor = RGBColor(0, 0, 0);

/// What the chart shows.
#[derive(Debug, Clone, PartialEq)]
pub struct LatencyChart {
    /// The title: what was measured, with the delay and CPUs, e.g. `p99 latency against
    /// achieved throughput (100 ms delay, servers on CPU 0)`.
    pub caption: String,
    /// One line per server, in legend order.
    pub series: Vec<Series>,
    /// The SLO's p99 limit, drawn as a horizontal line.
    pub slo_p99_ms: f64,
}

/// One server's line.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// The server's name, as in the tables.
    pub name: String,
    /// Its steps, in any order (they are drawn by rate).
    pub points: Vec<Point>,
}

/// One step of a server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// What the server achieved in the step.
    pub achieved_requests_per_second: f64,
    /// The step's p99 latency.
    pub p99_ms: f64,
    /// Whether the step met the SLO (a filled marker) or broke it (a hollow one).
    pub sustained: bool,
}

/// The chart as SVG text.
///
/// # Errors
/// When there is no point to draw (an empty chart would say nothing), or plotters fails to
/// draw, which it does not for in-memory SVG; the message says what failed.
pub fn svg(chart: &LatencyChart) -> anyhow::Result<String> {
    let points: Vec<&Point> = chart
        .series
        .iter()
        .flat_map(|s| &s.points)
        .filter(|p| drawable(p))
        .collect();
    if points.is_empty() {
        anyhow::bail!("latency chart: no step with a positive rate and p99 to draw");
    }
    let (x_min, x_max) = span(points.iter().map(|p| p.achieved_requests_per_second));
    let (y_min, y_max) = span(
        points
            .iter()
            .map(|p| p.p99_ms)
            .chain(std::iter::once(chart.slo_p99_ms)),
    );
    let x_range = (x_min / 1.4..x_max * 1.4).log_scale();
    let y_range = (y_min / 1.3..y_max * 1.6).log_scale();
    let mut text = String::new();
    {
        let root = SVGBackend::with_string(&mut text, (WIDTH, HEIGHT)).into_drawing_area();
        draw(&root, chart, x_range, y_range, (x_min / 1.4, x_max * 1.4))?;
        root.present()
            .map_err(|e| anyhow::anyhow!("latency chart output: {e}"))?;
    }
    Ok(text)
}

fn drawable(p: &Point) -> bool {
    p.achieved_requests_per_second > 0.0 && p.p99_ms > 0.0 && p.p99_ms.is_finite()
}

fn span(values: impl Iterator<Item = f64>) -> (f64, f64) {
    values
        .filter(|v| *v > 0.0 && v.is_finite())
        .fold((f64::MAX, f64::MIN_POSITIVE), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        })
}

fn draw<DB: DrawingBackend, X, Y>(
    root: &DrawingArea<DB, Shift>,
    chart: &LatencyChart,
    x_range: X,
    y_range: Y,
    (x_start, x_end): (f64, f64),
) -> anyhow::Result<()>
where
    X: AsRangedCoord<Value = f64>,
    Y: AsRangedCoord<Value = f64>,
    X::CoordDescType: ValueFormatter<f64>,
    Y::CoordDescType: ValueFormatter<f64>,
{
    let err = |e: DrawingAreaErrorKind<DB::ErrorType>| anyhow::anyhow!("latency chart: {e}");
    root.fill(&WHITE).map_err(err)?;
    let mut plot = ChartBuilder::on(root)
        .caption(&chart.caption, ("sans-serif", 22))
        .margin(16)
        .x_label_area_size(52)
        .y_label_area_size(72)
        .build_cartesian_2d(x_range, y_range)
        .map_err(err)?;
    plot.configure_mesh()
        .x_desc("achieved rate (requests per second, log scale)")
        .y_desc("p99 latency (ms, log scale)")
        .x_labels(30)
        .y_labels(30)
        .x_label_formatter(&|x| one_two_five(*x).map_or_else(String::new, rate_label))
        .y_label_formatter(&|y| one_two_five(*y).map_or_else(String::new, latency_label))
        .axis_desc_style(("sans-serif", 16))
        .label_style(("sans-serif", 14))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBColor(225, 225, 225))
        .draw()
        .map_err(err)?;
    let slo = chart.slo_p99_ms;
    plot.draw_series(DashedLineSeries::new(
        [(x_start, slo), (x_end, slo)],
        8,
        6,
        SLO_COLOUR.stroke_width(2),
    ))
    .map_err(err)?
    .label(format!("SLO: p99 ≤ {} ms", latency_label(slo)))
    .legend(|(x, y)| {
        DashedPathElement::new([(x, y), (x + 20, y)], 5, 3, SLO_COLOUR.stroke_width(2))
    });
    for (i, series) in chart.series.iter().enumerate() {
        let colour = COLOURS[i % COLOURS.len()];
        let mut points: Vec<Point> = series.points.iter().copied().filter(drawable).collect();
        points.sort_by(|a, b| {
            a.achieved_requests_per_second
                .total_cmp(&b.achieved_requests_per_second)
        });
        let line = points
            .iter()
            .map(|p| (p.achieved_requests_per_second, p.p99_ms));
        let dashed = i >= COLOURS.len();
        let drawn = if dashed {
            plot.draw_series(DashedLineSeries::new(line, 7, 4, colour.stroke_width(2)))
        } else {
            plot.draw_series(LineSeries::new(line, colour.stroke_width(2)))
        };
        drawn
            .map_err(err)?
            .label(series.name.clone())
            .legend(move |(x, y)| {
                let ends = [(x, y), (x + 20, y)];
                if dashed {
                    DashedPathElement::new(ends, 5, 3, colour.stroke_width(3)).into_dyn()
                } else {
                    PathElement::new(ends, colour.stroke_width(3)).into_dyn()
                }
            });
        plot.draw_series(points.iter().map(|p| {
            let style = if p.sustained {
                colour.filled()
            } else {
                WHITE.filled()
            };
            Circle::new((p.achieved_requests_per_second, p.p99_ms), 4, style)
        }))
        .map_err(err)?;
        // The hollow markers' rims, drawn over their white fill.
        plot.draw_series(points.iter().filter(|p| !p.sustained).map(|p| {
            Circle::new(
                (p.achieved_requests_per_second, p.p99_ms),
                4,
                colour.stroke_width(2),
            )
        }))
        .map_err(err)?;
    }
    marker_legend(&mut plot).map_err(err)?;
    plot.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font(("sans-serif", 14))
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(160, 160, 160))
        .draw()
        .map_err(err)?;
    Ok(())
}

/// Two legend rows that explain the markers, drawn as empty series.
fn marker_legend<DB: DrawingBackend, CT: CoordTranslate<From = (f64, f64)>>(
    plot: &mut ChartContext<'_, DB, CT>,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    let grey = RGBColor(90, 90, 90);
    plot.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label("step met the SLO")
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, grey.filled()));
    plot.draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
        .label("step broke it")
        .legend(move |(x, y)| Circle::new((x + 10, y), 4, grey.stroke_width(2)));
    Ok(())
}

/// `value` when it is 1, 2 or 5 times a power of ten: the only values labelled, so that a
/// log axis reads 100, 200, 500, 1000 rather than every hundred.
fn one_two_five(value: f64) -> Option<f64> {
    let mantissa = value / 10f64.powf(value.log10().floor());
    [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6 * m)
        .then_some(value)
}

/// `500`, `2k`, `15k`, `1.5M`: rates as a reader says them.
fn rate_label(rate: f64) -> String {
    let (value, suffix) = if rate >= 1e6 {
        (rate / 1e6, "M")
    } else if rate >= 1e3 {
        (rate / 1e3, "k")
    } else {
        (rate, "")
    };
    format!("{}{suffix}", trim(value))
}

/// `150`, `1.5`, `12000`: milliseconds without trailing zeros.
fn latency_label(ms: f64) -> String {
    trim(ms)
}

fn trim(value: f64) -> String {
    let digits = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    let text = format!("{value:.digits$}");
    if text.contains('.') {
        text.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Shaped like the orientation figures at 100 ms: the event loops hold 150 ms
    /// far beyond the threads and Python.
    pub(crate) fn sample() -> LatencyChart {
        let line = |name: &str, knee: f64| Series {
            name: name.to_owned(),
            points: [1000.0, 2000.0, 4000.0, 8000.0, 16000.0, 32000.0, 64000.0]
                .into_iter()
                .filter(|rate| *rate <= knee * 2.0)
                .map(|rate| {
                    let over = (rate / knee).max(0.0);
                    let p99_ms = 101.0 + 40.0 * over.powi(3);
                    Point {
                        achieved_requests_per_second: rate * if over > 1.0 { 0.9 } else { 1.0 },
                        p99_ms: if over > 1.0 { p99_ms * 10.0 } else { p99_ms },
                        sustained: p99_ms <= 150.0 && over <= 1.0,
                    }
                })
                .collect(),
        };
        LatencyChart {
            caption: "p99 latency against achieved throughput (100 ms delay, servers on CPU 0)"
                .to_owned(),
            series: vec![
                line("mio", 40000.0),
                line("tokio-current", 32000.0),
                line("threaded", 9000.0),
                line("python-asyncio", 3000.0),
            ],
            slo_p99_ms: 150.0,
        }
    }

    #[test]
    fn the_svg_names_every_server_the_slo_and_both_axes_with_units() {
        let text = svg(&sample()).expect("draws");
        for name in ["mio", "tokio-current", "threaded", "python-asyncio"] {
            // plotters writes each text element's content on a line of its own.
            let entry = text.lines().any(|line| line.trim() == name);
            assert!(entry, "no legend entry for {name}");
        }
        assert!(text.contains("SLO: p99 ≤ 150 ms"));
        assert!(text.contains("achieved rate (requests per second, log scale)"));
        assert!(text.contains("p99 latency (ms, log scale)"));
    }

    #[test]
    fn a_series_past_the_tenth_colour_is_dashed_so_it_differs_from_the_first() {
        let mut chart = sample();
        let mio = chart.series[0].clone();
        while chart.series.len() < COLOURS.len() {
            chart.series.push(Series {
                name: format!("server-{}", chart.series.len()),
                points: vec![],
            });
        }
        // plotters draws a solid line as one polyline and a dashed one as one per dash.
        let first_colour = format!("stroke=\"#{:02X}{:02X}{:02X}\"", 31, 119, 180);
        let lines_in = |text: &str| {
            text.lines()
                .filter(|l| l.contains("<polyline") && l.contains(&first_colour))
                .count()
        };
        let ten = lines_in(&svg(&chart).expect("draws"));
        chart.series.push(Series {
            name: "eleventh".to_owned(),
            points: mio.points,
        });
        let eleven = lines_in(&svg(&chart).expect("draws"));
        assert!(eleven > ten + 3, "solid {ten}, with the eleventh {eleven}");
    }

    #[test]
    fn the_same_data_draw_the_same_bytes() {
        assert_eq!(
            svg(&sample()).expect("draws"),
            svg(&sample()).expect("draws")
        );
    }

    #[test]
    fn a_chart_without_any_point_is_refused() {
        let empty = LatencyChart {
            caption: "empty".to_owned(),
            series: vec![Series {
                name: "mio".to_owned(),
                points: vec![Point {
                    achieved_requests_per_second: 0.0,
                    p99_ms: 0.0,
                    sustained: false,
                }],
            }],
            slo_p99_ms: 150.0,
        };
        let message = svg(&empty).expect_err("nothing to draw").to_string();
        assert!(message.contains("no step"), "{message}");
    }

    #[test]
    fn rates_and_latencies_are_labelled_as_a_reader_says_them() {
        assert_eq!(rate_label(500.0), "500");
        assert_eq!(rate_label(2000.0), "2k");
        assert_eq!(rate_label(15500.0), "15.5k");
        assert_eq!(rate_label(1_500_000.0), "1.5M");
        assert_eq!(latency_label(150.0), "150");
        assert_eq!(latency_label(1.5), "1.5");
        assert_eq!(one_two_five(200.0), Some(200.0));
        assert_eq!(one_two_five(5000.0), Some(5000.0));
        assert_eq!(one_two_five(300.0), None);
    }
}
