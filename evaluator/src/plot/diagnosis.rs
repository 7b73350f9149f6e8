//! DETAD's figures: the false-positive profile with the gain of removing
//! each error, the sensitivity of average-mAP_N to the characteristics,
//! and the false-negative rate per bucket.

use std::path::{Path, PathBuf};

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::{render, PlotError, PlotFormat};
use crate::diagnose::{BucketReport, Diagnosis, ErrorType};

// Palettes only look like `SERIES` in plot/mod.rs: these are DETAD's own colours.
/// DETAD's colours of the six detection types (true positive first).
const TYPE_COLORS: [RGBColor; 6] = [
    RGBColor(0x33, 0xa0, 0x2c),
    RGBColor(0xb2, 0xdf, 0x8a),
    RGBColor(0x1f, 0x78, 0xb4),
    RGBColor(0xfb, 0x9a, 0x99),
    RGBColor(0xe3, 0x1a, 0x1c),
    RGBColor(0xa6, 0xce, 0xe3),
];

/// DETAD's colours of the characteristics.
const CHAR_COLORS: [RGBColor; 6] = [
    RGBColor(0x38, 0x6c, 0xb0),
    RGBColor(0xf0, 0x02, 0x7f),
    RGBColor(0xbf, 0x5b, 0x17),
    RGBColor(0x7f, 0xc9, 0x7f),
    RGBColor(0xbe, 0xae, 0xd4),
    RGBColor(0xfd, 0xc0, 0x86),
];

type Fallible = Result<(), String>;

fn err<E: std::fmt::Display>(e: E) -> String {
    e.to_string()
}

/// Writes the three figures into `dir` as `false_positive_analysis`,
/// `sensitivity_analysis` and `false_negative_analysis` with the
/// extension of `format`; returns their paths.
pub fn plot_diagnosis(
    dir: &Path,
    format: PlotFormat,
    d: &Diagnosis,
) -> Result<Vec<PathBuf>, PlotError> {
    let ext = match format {
        PlotFormat::Svg => "svg",
        PlotFormat::Png => "png",
    };
    let paths = [
        "false_positive_analysis",
        "sensitivity_analysis",
        "false_negative_analysis",
    ]
    .map(|n| dir.join(format!("{n}.{ext}")));
    plot_false_positives(&paths[0], d)?;
    plot_sensitivity(&paths[1], d)?;
    plot_false_negatives(&paths[2], d)?;
    Ok(paths.to_vec())
}

/// The false-positive profile (stacked bars over the top k·G) beside the
/// average-mAP_N gain of removing each error type.
pub fn plot_false_positives(path: &Path, d: &Diagnosis) -> Result<(), PlotError> {
    const SIZE: (u32, u32) = (1500, 650);
    render(
        path,
        SIZE,
        d.false_positive.profile.is_empty(),
        |a| draw_false_positives(a, d),
        |a| draw_false_positives(a, d),
    )
}

fn draw_false_positives<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    d: &Diagnosis,
) -> Fallible {
    area.fill(&WHITE).map_err(err)?;
    let (left, right) = area.split_horizontally(900);
    draw_profile(&left, d)?;
    draw_gains(&right, d)
}

fn draw_profile<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, d: &Diagnosis) -> Fallible {
    let bars = &d.false_positive.profile;
    let n = bars.len();
    let mut chart = ChartBuilder::on(area)
        .caption("False positive profile", ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.6..(n as f64 - 0.4), 0.0..165.0)
        .map_err(err)?;
    let labels: Vec<String> = bars.iter().map(|b| format!("{}G", b.k)).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| category(&labels, *x))
        .y_labels(17)
        .y_label_formatter(&|y| {
            if *y <= 100.0 {
                format!("{y:.0}")
            } else {
                String::new()
            }
        })
        .x_desc("Top predictions (k·G per class)")
        .y_desc("Error breakdown (%)")
        .axis_desc_style(("sans-serif", 22))
        .label_style(("sans-serif", 18))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for (i, bar) in bars.iter().enumerate() {
        let x = i as f64;
        let mut bottom = 0.0;
        for (t, share) in bar.fractions.as_array().iter().enumerate() {
            let top = bottom + 100.0 * share;
            chart
                .draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.4, bottom), (x + 0.4, top)],
                    TYPE_COLORS[t].filled(),
                )))
                .map_err(err)?;
            bottom = top;
        }
    }
    for (t, ty) in ErrorType::ALL.iter().enumerate() {
        let color = TYPE_COLORS[t];
        chart
            .draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(err)?
            .label(ty.title())
            .legend(move |(x, y)| Rectangle::new([(x, y - 8), (x + 18, y + 8)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperMiddle)
        .background_style(WHITE.mix(0.9))
        .border_style(RGBColor(180, 180, 180))
        .label_font(("sans-serif", 18))
        .draw()
        .map_err(err)
}

fn draw_gains<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, d: &Diagnosis) -> Fallible {
    let types = &ErrorType::ALL[1..];
    let gains: Vec<f64> = types
        .iter()
        .map(|&t| 100.0 * d.false_positive.removed_error_gain.get(t))
        .collect();
    let hi = gains.iter().copied().fold(1.0, f64::max) * 1.25;
    let lo = gains.iter().copied().fold(0.0, f64::min) * 1.25;
    let mut chart = ChartBuilder::on(area)
        .caption("Removing error impact", ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.6..(types.len() as f64 - 0.4), lo..hi)
        .map_err(err)?;
    let labels: Vec<String> = types
        .iter()
        .map(|t| t.title().split(' ').next().unwrap_or_default().to_string())
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(types.len() + 1)
        .x_label_formatter(&|x| category(&labels, *x))
        .y_desc("Average-mAP_N improvement (%)")
        .axis_desc_style(("sans-serif", 22))
        .label_style(("sans-serif", 18))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for (i, &g) in gains.iter().enumerate() {
        let x = i as f64;
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.4, 0.0), (x + 0.4, g)],
                TYPE_COLORS[i + 1].filled(),
            )))
            .map_err(err)?;
        let dy = (hi - lo) * 0.01;
        chart
            .draw_series(std::iter::once(value_label(
                x,
                g.max(0.0) + dy,
                format!("{g:.1}"),
            )))
            .map_err(err)?;
    }
    Ok(())
}

/// The label of the category at integer position `x` (none between).
fn category(labels: &[String], x: f64) -> String {
    let i = x.round();
    if (x - i).abs() > 1e-6 || i < 0.0 {
        return String::new();
    }
    labels.get(i as usize).cloned().unwrap_or_default()
}

/// A number printed above a bar.
fn value_label(x: f64, y: f64, text: String) -> Text<'static, (f64, f64), String> {
    let style =
        TextStyle::from(("sans-serif", 16).into_font()).pos(Pos::new(HPos::Center, VPos::Bottom));
    Text::new(text, (x, y), style)
}

/// A characteristic's title and its buckets' (label, value).
type Group = (String, Vec<(String, Option<f64>)>);

/// A group of bars per characteristic (one per bucket), as DETAD draws
/// its sensitivity and false-negative figures; `value` picks a bucket's
/// number (percent), `base` draws a dashed reference line.
struct Groups {
    title: &'static str,
    y_desc: &'static str,
    base: Option<f64>,
    /// (characteristic title, [(bucket label, value)]).
    groups: Vec<Group>,
}

/// Bar positions of [`Groups`]: the x labels, the bars (x, value, colour)
/// and the group titles (x centre, title); groups are one slot apart.
type Layout = (
    Vec<String>,
    Vec<(f64, Option<f64>, RGBColor)>,
    Vec<(f64, String)>,
    usize,
);

fn layout(g: &Groups) -> Layout {
    let mut labels = Vec::new();
    let mut bars = Vec::new();
    let mut heads = Vec::new();
    let mut x = 0usize;
    for (gi, (title, buckets)) in g.groups.iter().enumerate() {
        let start = x;
        for (label, value) in buckets {
            while labels.len() < x {
                labels.push(String::new());
            }
            labels.push(label.clone());
            bars.push((x as f64, *value, CHAR_COLORS[gi % CHAR_COLORS.len()]));
            x += 1;
        }
        heads.push(((start + x.max(start + 1) - 1) as f64 / 2.0, title.clone()));
        x += 1; // a gap between groups
    }
    (labels, bars, heads, x)
}

fn draw_groups<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, g: &Groups) -> Fallible {
    area.fill(&WHITE).map_err(err)?;
    let (labels, bars, heads, x) = layout(g);
    let n = x.saturating_sub(1).max(1);
    let mut chart = ChartBuilder::on(area)
        .caption(g.title, ("sans-serif", 30))
        .margin(20)
        .x_label_area_size(60)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.8..(n as f64 - 0.2), 0.0..122.0)
        .map_err(err)?;
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|v| category(&labels, *v))
        .y_labels(12)
        .y_label_formatter(&|y| {
            if *y <= 100.0 {
                format!("{y:.0}")
            } else {
                String::new()
            }
        })
        .y_desc(g.y_desc)
        .axis_desc_style(("sans-serif", 22))
        .label_style(("sans-serif", 18))
        .light_line_style(WHITE)
        .draw()
        .map_err(err)?;
    for &(x, value, color) in &bars {
        let Some(v) = value else { continue };
        chart
            .draw_series(std::iter::once(Rectangle::new(
                [(x - 0.4, 0.0), (x + 0.4, v)],
                color.filled(),
            )))
            .map_err(err)?;
        chart
            .draw_series(std::iter::once(value_label(x, v + 1.0, format!("{v:.1}"))))
            .map_err(err)?;
    }
    for (xc, title) in heads {
        let style =
            TextStyle::from(("sans-serif", 22).into_font()).pos(Pos::new(HPos::Center, VPos::Top));
        chart
            .draw_series(std::iter::once(Text::new(title, (xc, 120.0), style)))
            .map_err(err)?;
    }
    if let Some(base) = g.base {
        let right = n as f64 - 0.2;
        chart
            .draw_series(DashedLineSeries::new(
                [(-0.8, base), (right, base)],
                10,
                6,
                BLACK.stroke_width(2),
            ))
            .map_err(err)?;
        let style =
            TextStyle::from(("sans-serif", 18).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
        chart
            .draw_series(std::iter::once(Text::new(
                format!("dashed line: all instances, {base:.2}"),
                (-0.7, 104.0),
                style,
            )))
            .map_err(err)?;
    }
    Ok(())
}

fn groups_size(g: &Groups) -> (u32, u32) {
    let bars: usize = g.groups.iter().map(|(_, b)| b.len() + 1).sum();
    ((300 + 70 * bars as u32).clamp(900, 2400), 650)
}

/// Average-mAP_N per bucket of each characteristic, with the average over
/// all instances as a dashed line.
pub fn plot_sensitivity(path: &Path, d: &Diagnosis) -> Result<(), PlotError> {
    let g = per_bucket(
        "Sensitivity of average-mAP_N to instance characteristics",
        "Average-mAP_N (%)",
        Some(100.0 * d.average_map_n),
        d,
        |b| b.average_map_n,
    );
    render_groups(path, &g)
}

/// The false-negative rate per bucket of each characteristic.
pub fn plot_false_negatives(path: &Path, d: &Diagnosis) -> Result<(), PlotError> {
    let g = per_bucket(
        "False negatives per instance characteristic",
        "False negative (%)",
        None,
        d,
        |b| b.false_negative_rate,
    );
    render_groups(path, &g)
}

/// One bar per bucket of each characteristic: `value` of the bucket as a
/// percentage.
fn per_bucket(
    title: &'static str,
    y_desc: &'static str,
    base: Option<f64>,
    d: &Diagnosis,
    value: impl Fn(&BucketReport) -> Option<f64>,
) -> Groups {
    let groups = d
        .characteristics
        .iter()
        .map(|c| {
            let b = c
                .buckets
                .iter()
                .map(|b| (b.label.clone(), value(b).map(|v| 100.0 * v)))
                .collect();
            (c.title.clone(), b)
        })
        .collect();
    Groups {
        title,
        y_desc,
        base,
        groups,
    }
}

/// Draws `g` into `path`, sized to its bars.
fn render_groups(path: &Path, g: &Groups) -> Result<(), PlotError> {
    render(
        path,
        groups_size(g),
        g.groups.is_empty(),
        |a| draw_groups(a, g),
        |a| draw_groups(a, g),
    )
}
