//! SVG plots of the results (plotters, SVG backend: no fonts or native libraries needed):
//! throughput per workload grouped by system, latency CDFs, throughput over time. Each
//! function draws only from rows that carry the data it needs and returns false if there
//! were none (no file written).

use std::path::Path;

use plotters::coord::combinators::IntoLogRange;
use plotters::prelude::*;

use super::markdown::si;
use crate::BenchError;
use crate::results::Row;

const SIZE: (u32, u32) = (960, 520);
const FONT: &str = "sans-serif";

fn plot_err(path: &Path) -> impl Fn(String) -> BenchError + '_ {
    move |message| BenchError::Plot {
        path: path.to_path_buf(),
        message,
    }
}

/// The label of a row's series: `system (mode)`, plus shards when more than one.
fn series_name(r: &Row) -> String {
    match r.shards {
        Some(s) if s > 1 => format!("{} ({}, {s} shards)", r.system, r.mode),
        _ => format!("{} ({})", r.system, r.mode),
    }
}

fn color(i: usize) -> RGBColor {
    const COLORS: [RGBColor; 8] = [
        RGBColor(31, 119, 180),
        RGBColor(255, 127, 14),
        RGBColor(44, 160, 44),
        RGBColor(214, 39, 40),
        RGBColor(148, 103, 189),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(127, 127, 127),
    ];
    COLORS[i % COLORS.len()]
}

fn unique<T: PartialEq>(items: impl IntoIterator<Item = T>) -> Vec<T> {
    let mut out = Vec::new();
    for item in items {
        if !out.contains(&item) {
            out.push(item);
        }
    }
    out
}

/// Bars of events/s per workload, one per series; for several rows of one (workload,
/// series) the one with the most events is drawn.
pub fn throughput(rows: &[Row], path: &Path) -> Result<bool, BenchError> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.events_per_s.is_some()).collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let workloads = unique(rows.iter().map(|r| r.workload.clone()));
    let series = unique(rows.iter().map(|r| series_name(r)));
    let value = |w: &str, s: &str| {
        rows.iter()
            .filter(|r| r.workload == w && series_name(r) == s)
            .max_by_key(|r| r.events)
            .and_then(|r| r.events_per_s)
    };
    let all: Vec<f64> = rows.iter().filter_map(|r| r.events_per_s).collect();
    let lo = all.iter().copied().fold(f64::INFINITY, f64::min).max(1.0) / 2.0;
    let hi = all.iter().copied().fold(0.0, f64::max) * 3.0;

    let err = plot_err(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    // Workload i is centred on x = i, so the integer tick marks fall under the bar groups.
    let n = workloads.len();
    let mut chart = ChartBuilder::on(&root)
        .caption(
            "Throughput per workload (events/s, log scale; largest run of each system)",
            (FONT, 22),
        )
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(-0.5..n as f64 - 0.5, (lo..hi).log_scale())
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n)
        .x_label_formatter(&|x| {
            let i = x.round();
            if (x - i).abs() > 1e-6 || i < 0.0 {
                return String::new();
            }
            workloads.get(i as usize).cloned().unwrap_or_default()
        })
        .y_label_formatter(&|y| log_tick(*y))
        .y_desc("events/s")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let width = 0.8 / series.len() as f64;
    for (j, s) in series.iter().enumerate() {
        let c = color(j);
        let bars: Vec<Rectangle<(f64, f64)>> = workloads
            .iter()
            .enumerate()
            .filter_map(|(i, w)| {
                let v = value(w, s)?;
                let x0 = i as f64 - 0.4 + j as f64 * width;
                Some(Rectangle::new(
                    [(x0, lo), (x0 + width * 0.9, v)],
                    c.filled(),
                ))
            })
            .collect();
        chart
            .draw_series(bars)
            .map_err(|e| err(e.to_string()))?
            .label(s.clone())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 12, y + 5)], c.filled()));
    }
    legend(&mut chart).map_err(&err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(true)
}

/// Labels only the 1-2-5 ticks of a log axis (plotters puts one at every integer multiple).
fn log_tick(y: f64) -> String {
    if y <= 0.0 {
        return String::new();
    }
    let mantissa = y / 10f64.powf(y.log10().floor());
    let nice = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .any(|m| (mantissa - m).abs() < 1e-6 * m);
    if nice { si(y) } else { String::new() }
}

fn legend<'a, DB: DrawingBackend + 'a, X: Ranged, Y: Ranged>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .position(SeriesLabelPosition::UpperRight)
        .label_font((FONT, 14))
        .draw()
        .map_err(|e| e.to_string())
}

/// Percentile → "nines" (−log10(1 − p)), so 90, 99, 99.9 are evenly spaced.
fn nines(percentile: f64) -> f64 {
    let rest = (1.0 - percentile / 100.0).max(1e-6);
    -rest.log10()
}

/// One line per row with a `latency_cdf`: latency (ms, log) against percentile.
pub fn latency_cdf(rows: &[Row], path: &Path) -> Result<bool, BenchError> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.latency_cdf.is_some()).collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let points: Vec<f64> = rows
        .iter()
        .flat_map(|r| r.latency_cdf.iter().flatten().map(|p| p[1]))
        .collect();
    let lo = points
        .iter()
        .copied()
        .fold(f64::INFINITY, f64::min)
        .max(1e-3)
        / 2.0;
    let hi = points.iter().copied().fold(0.0, f64::max).max(lo * 4.0) * 2.0;

    let err = plot_err(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Latency by percentile (ms, log scale)", (FONT, 22))
        .margin(12)
        .margin_right(40)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..5.0, (lo..hi).log_scale())
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .x_labels(6)
        .x_label_formatter(&|x| {
            let p = 100.0 * (1.0 - 10f64.powf(-x));
            format!("{}%", (p * 1000.0).round() / 1000.0)
        })
        .y_label_formatter(&|y| log_tick(*y))
        .x_desc("percentile")
        .y_desc("latency, ms")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let lines = rows
        .iter()
        .map(|r| {
            let line = r.latency_cdf.iter().flatten();
            let line = line.map(|p| (nines(p[0]).min(5.0), p[1].max(lo)));
            (format!("{} {}", r.workload, series_name(r)), line.collect())
        })
        .collect();
    draw_lines(&mut chart, lines).map_err(&err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(true)
}

/// One line per row with a `timeline`: events/s against seconds since the start.
pub fn timeline(rows: &[Row], path: &Path) -> Result<bool, BenchError> {
    let rows: Vec<&Row> = rows.iter().filter(|r| r.timeline.is_some()).collect();
    if rows.is_empty() {
        return Ok(false);
    }
    let points = || rows.iter().flat_map(|r| r.timeline.iter().flatten());
    let t_max = points().map(|p| p[0]).fold(0.0, f64::max).max(1e-3);
    let y_max = points().map(|p| p[1]).fold(0.0, f64::max).max(1.0) * 1.1;

    let err = plot_err(path);
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| err(e.to_string()))?;
    let mut chart = ChartBuilder::on(&root)
        .caption("Throughput over time (events/s)", (FONT, 22))
        .margin(12)
        .x_label_area_size(36)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max, 0.0..y_max)
        .map_err(|e| err(e.to_string()))?;
    chart
        .configure_mesh()
        .y_label_formatter(&|y| si(*y))
        .x_desc("seconds")
        .y_desc("events/s")
        .draw()
        .map_err(|e| err(e.to_string()))?;
    let lines = rows
        .iter()
        .map(|r| {
            let line = r.timeline.iter().flatten().map(|p| (p[0], p[1]));
            (format!("{} {}", r.workload, series_name(r)), line.collect())
        })
        .collect();
    draw_lines(&mut chart, lines).map_err(&err)?;
    root.present().map_err(|e| err(e.to_string()))?;
    Ok(true)
}

/// One labelled line per `(label, points)`, then the legend.
fn draw_lines<'a, DB, X, Y>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<X, Y>>,
    lines: Vec<(String, Vec<(f64, f64)>)>,
) -> Result<(), String>
where
    DB: DrawingBackend + 'a,
    X: Ranged<ValueType = f64>,
    Y: Ranged<ValueType = f64>,
{
    for (j, (label, points)) in lines.into_iter().enumerate() {
        let c = color(j);
        chart
            .draw_series(LineSeries::new(points, c.stroke_width(2)))
            .map_err(|e| e.to_string())?
            .label(label)
            .legend(move |(x, y)| PathElement::new([(x, y), (x + 14, y)], c.stroke_width(2)));
    }
    legend(chart)
}
