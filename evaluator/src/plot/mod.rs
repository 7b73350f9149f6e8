//! Figures as in the papers: the AR–AN curve (one line per tIoU and the
//! average, or the average curves of several labelled results on one chart)
//! and mAP per tIoU threshold, and DETAD's diagnosis figures
//! ([`plot_diagnosis`]). SVG or PNG by the file's extension; PNG text uses
//! an embedded DejaVu Sans, so no system font (and no LaTeX) is needed.
//! Figures are drawn in memory and written atomically
//! ([`tcanet_cli::write_atomic`]), so nothing is half-written.

mod diagnosis;

pub use diagnosis::{plot_diagnosis, plot_false_negatives, plot_false_positives, plot_sensitivity};

use std::path::Path;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::{DetectionReport, ProposalReport};

/// Why a figure could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PlotError {
    /// The extension is neither `.svg` nor `.png`.
    #[error("cannot plot to {0}: the file name must end in .svg or .png")]
    Format(String),
    /// Drawing or writing failed.
    #[error("cannot write the plot {path}: {message}")]
    Write {
        /// The target file.
        path: String,
        /// What failed.
        message: String,
    },
}

/// The image format chosen by a file's extension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PlotFormat {
    /// Scalable vector graphics.
    Svg,
    /// A 1200×800 PNG bitmap.
    Png,
}

impl PlotFormat {
    /// The format of `path` (by its extension), or an error naming it.
    pub fn of(path: &Path) -> Result<Self, PlotError> {
        match path
            .extension()
            .and_then(|e| e.to_str())
            .map(|e| e.to_ascii_lowercase())
            .as_deref()
        {
            Some("svg") => Ok(PlotFormat::Svg),
            Some("png") => Ok(PlotFormat::Png),
            _ => Err(PlotError::Format(path.display().to_string())),
        }
    }
}

static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
static REGISTER: Once = Once::new();

fn register_font() {
    REGISTER.call_once(|| {
        // The font is valid: it is the committed DejaVu Sans.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

const SIZE: (u32, u32) = (1200, 800);

/// Colours for several series (dark, distinct).
const SERIES: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(148, 103, 189),
    RGBColor(255, 127, 14),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

/// A colour ramp (blue → yellow, viridis-like) for `i` of `n` thresholds.
fn ramp(i: usize, n: usize) -> RGBColor {
    let stops = [
        (68.0, 1.0, 84.0),
        (59.0, 82.0, 139.0),
        (33.0, 145.0, 140.0),
        (94.0, 201.0, 98.0),
        (253.0, 231.0, 37.0),
    ];
    let x = if n <= 1 {
        0.0
    } else {
        i as f64 / (n - 1) as f64 * 0.92
    } * (stops.len() - 1) as f64;
    let k = (x.floor() as usize).min(stops.len() - 2);
    let f = x - k as f64;
    let (a, b) = (stops[k], stops[k + 1]);
    let mix = |p: f64, q: f64| (p + (q - p) * f).round() as u8;
    RGBColor(mix(a.0, b.0), mix(a.1, b.1), mix(a.2, b.2))
}

/// Draws a figure of `size` pixels with `draw_svg` or `draw_png` (by the
/// extension of `path`) in memory, then writes it atomically.
fn render(
    path: &Path,
    size: (u32, u32),
    empty: bool,
    draw_svg: impl FnOnce(&DrawingArea<SVGBackend, Shift>) -> Result<(), String>,
    draw_png: impl FnOnce(&DrawingArea<BitMapBackend, Shift>) -> Result<(), String>,
) -> Result<(), PlotError> {
    let format = PlotFormat::of(path)?;
    let fail = |message: String| PlotError::Write {
        path: path.display().to_string(),
        message,
    };
    if empty {
        return Err(fail("nothing to plot".into()));
    }
    // Both back ends measure text with the embedded font.
    register_font();
    let bytes = match format {
        PlotFormat::Svg => {
            let mut text = String::new();
            {
                let area = SVGBackend::with_string(&mut text, size).into_drawing_area();
                draw_svg(&area)
                    .and_then(|_| area.present().map_err(|e| e.to_string()))
                    .map_err(fail)?;
            }
            text.into_bytes()
        }
        PlotFormat::Png => {
            let mut rgb = vec![0u8; size.0 as usize * size.1 as usize * 3];
            {
                let area = BitMapBackend::with_buffer(&mut rgb, size).into_drawing_area();
                draw_png(&area)
                    .and_then(|_| area.present().map_err(|e| e.to_string()))
                    .map_err(fail)?;
            }
            encode_png(&rgb, size).map_err(fail)?
        }
    };
    tcanet_cli::write_atomic_bytes(path, &bytes).map_err(|e| fail(e.to_string()))
}

/// An RGB buffer as a PNG file's bytes.
fn encode_png(rgb: &[u8], (w, h): (u32, u32)) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let mut enc = png::Encoder::new(&mut out, w, h);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    enc.write_header()
        .and_then(|mut w| w.write_image_data(rgb))
        .map_err(|e| e.to_string())?;
    Ok(out)
}

fn max_an(curves: &[(&str, &ProposalReport)]) -> f64 {
    curves
        .iter()
        .filter_map(|(_, r)| r.average_nr_proposals.last().copied())
        .fold(1.0, f64::max)
}

fn draw_recall<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    curves: &[(&str, &ProposalReport)],
    per_threshold: bool,
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    area.fill(&WHITE).map_err(e)?;
    let x_max = max_an(curves) * 1.02;
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, 0.0..1.0)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("Average number of proposals per video (AN)")
        .y_desc("Average recall (AR)")
        .x_labels(11)
        .y_labels(11)
        .x_label_formatter(&|x| format!("{x:.0}"))
        .y_label_formatter(&|y| format!("{y:.1}"))
        .axis_desc_style(("sans-serif", 24))
        .label_style(("sans-serif", 20))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    for (ci, (label, r)) in curves.iter().enumerate() {
        draw_curves(&mut chart, ci, label, r, per_threshold)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::LowerRight)
}

/// A chart with `f64` axes.
type Chart<'a, DB> = ChartContext<
    'a,
    DB,
    Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>,
>;

/// The legend of the AR–AN and mAP charts, at `position`.
fn draw_legend<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    position: SeriesLabelPosition,
) -> Result<(), String> {
    chart
        .configure_series_labels()
        .legend_area_size(45)
        .position(position)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 20))
        .draw()
        .map_err(|x| x.to_string())
}

/// One result's curves on the AR–AN chart: per threshold (thin, coloured)
/// when asked, and the average (thick).
fn draw_curves<'a, DB: DrawingBackend + 'a>(
    chart: &mut Chart<'a, DB>,
    ci: usize,
    label: &str,
    r: &ProposalReport,
    per_threshold: bool,
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    let xs = &r.average_nr_proposals;
    if per_threshold {
        let n = r.recall.len();
        for (t, row) in r.recall.iter().enumerate() {
            let color = ramp(t, n);
            chart
                .draw_series(LineSeries::new(
                    xs.iter().copied().zip(row.iter().copied()),
                    color.stroke_width(2),
                ))
                .map_err(e)?
                .label(format!("tIoU {:.2}", r.tiou_thresholds[t]))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(3))
                });
        }
    }
    let color = if per_threshold {
        BLACK
    } else {
        SERIES[ci % SERIES.len()]
    };
    let name = if per_threshold {
        format!("average (AUC {:.2}%)", r.auc)
    } else {
        format!(
            "{label}: AR@100 {:.2}%, AUC {:.2}%",
            100.0 * r.ar_at_100,
            r.auc
        )
    };
    chart
        .draw_series(LineSeries::new(
            xs.iter().copied().zip(r.average_recall.iter().copied()),
            color.stroke_width(4),
        ))
        .map_err(e)?
        .label(name)
        .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(4)));
    Ok(())
}

fn draw_map<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    title: &str,
    reports: &[(&str, &DetectionReport)],
) -> Result<(), String> {
    let e = |x: DrawingAreaErrorKind<DB::ErrorType>| x.to_string();
    area.fill(&WHITE).map_err(e)?;
    let ts = reports
        .iter()
        .flat_map(|(_, r)| r.tiou_thresholds.iter().copied());
    let (lo, hi) = ts.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), t| {
        (a.min(t), b.max(t))
    });
    let pad = ((hi - lo) * 0.05).max(0.02);
    let y_max = reports
        .iter()
        .flat_map(|(_, r)| r.map.iter().copied())
        .fold(0.0, f64::max);
    let y_max = ((y_max * 100.0 / 10.0).ceil() * 10.0).clamp(10.0, 100.0);
    let mut chart = ChartBuilder::on(area)
        .caption(title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d((lo - pad)..(hi + pad), 0.0..y_max)
        .map_err(e)?;
    chart
        .configure_mesh()
        .x_desc("tIoU threshold")
        .y_desc("mAP (%)")
        .axis_desc_style(("sans-serif", 24))
        .label_style(("sans-serif", 20))
        .x_label_formatter(&|x| format!("{x:.2}"))
        .y_label_formatter(&|y| format!("{y:.0}"))
        .light_line_style(RGBColor(235, 235, 235))
        .draw()
        .map_err(e)?;
    for (ci, (label, r)) in reports.iter().enumerate() {
        let color = SERIES[ci % SERIES.len()];
        let points: Vec<(f64, f64)> = r
            .tiou_thresholds
            .iter()
            .copied()
            .zip(r.map.iter().map(|m| 100.0 * m))
            .collect();
        chart
            .draw_series(LineSeries::new(points.clone(), color.stroke_width(3)))
            .map_err(e)?
            .label(format!(
                "{label}: average mAP {:.2}%",
                100.0 * r.average_map
            ))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 30, y)], color.stroke_width(3))
            });
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 5, color.filled())))
            .map_err(e)?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}

/// The AR–AN figure of one result: one line per tIoU threshold and the
/// average (thick, black), as in the papers.
pub fn plot_proposals(path: &Path, title: &str, report: &ProposalReport) -> Result<(), PlotError> {
    let curves = [("average", report)];
    render(
        path,
        SIZE,
        false,
        |a| draw_recall(a, title, &curves, true),
        |a| draw_recall(a, title, &curves, true),
    )
}

/// The average AR–AN curves of several labelled results on one chart
/// (e.g. `[("input", &a), ("refined", &b)]`).
pub fn plot_proposal_comparison(
    path: &Path,
    title: &str,
    curves: &[(&str, &ProposalReport)],
) -> Result<(), PlotError> {
    render(
        path,
        SIZE,
        curves.is_empty(),
        |a| draw_recall(a, title, curves, false),
        |a| draw_recall(a, title, curves, false),
    )
}

/// mAP per tIoU threshold of one or several labelled results.
pub fn plot_detections(
    path: &Path,
    title: &str,
    reports: &[(&str, &DetectionReport)],
) -> Result<(), PlotError> {
    render(
        path,
        SIZE,
        reports.is_empty(),
        |a| draw_map(a, title, reports),
        |a| draw_map(a, title, reports),
    )
}
