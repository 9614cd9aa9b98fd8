//! The comparison charts: per-section bars for both branches with every
//! iteration as a dot, and a ratio chart with the interval of each metric's
//! treatment/baseline ratio (at the level the rows carry) against the ±
//! tolerance band.
//!
//! Charts are drawn with plotters into an SVG string; [`embed`] makes that
//! string fit for inline use in the page. A chart that fails to draw comes
//! back as an error, which the page shows in place of the chart.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use super::palette::{BAND, BASELINE, CHART_WIDTH, INK, RULE, TREATMENT, verdict_colour};
use crate::escape;
use crate::format;
use crate::model::{MetricPoints, MetricRow, TOTAL_METRIC, Unit};
use crate::present::{ratio_cell, shared_level};

/// A drawn chart as inline SVG, or why it could not be drawn.
pub(super) type ChartResult = Result<String, Box<dyn std::error::Error>>;

/// Height of one metric's row in the bar chart, px.
const BAR_ROW: u32 = 46;
/// Height of one metric's row in the ratio chart, px.
const RATIO_ROW: u32 = 30;
/// Room for axis labels, the caption-less top margin and the x axis, px.
const AXIS_ROOM: u32 = 48;
/// Font for labels and annotations.
const FONT: &str = "sans-serif";

/// Makes plotters' SVG document fit to inline in HTML: drops the namespace
/// declaration (HTML5 does not need it, and the page must not name any
/// URL) and labels the image for screen readers.
pub(super) fn embed(svg: &str, label: &str) -> String {
    let svg = svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1);
    svg.replacen(
        "<svg ",
        &format!("<svg role=\"img\" aria-label=\"{}\" ", escape::html(label)),
        1,
    )
}

/// Grouped horizontal bars: per metric, the baseline median above the
/// treatment median, each iteration's value as a dot on its bar, and the
/// ratio with the verdict to the right.
pub(super) fn metric_bars(rows: &[&MetricRow], points: &[MetricPoints]) -> ChartResult {
    let n = rows.len();
    let unit = rows.first().map_or(Unit::Seconds, |row| row.unit);
    let values = |row: &MetricRow| -> (Vec<f64>, Vec<f64>) {
        points
            .iter()
            .find(|p| p.metric == row.metric)
            .map(|p| (finite(&p.baseline), finite(&p.treatment)))
            .unwrap_or_default()
    };
    let row_end = |row: &MetricRow| {
        let (b, t) = values(row);
        finite(&[row.baseline_median, row.treatment_median])
            .into_iter()
            .chain(b)
            .chain(t)
            .fold(0.0, f64::max)
    };
    let x_max = rows.iter().map(|row| row_end(row)).fold(0.0, f64::max);
    let x_max = if x_max > 0.0 { x_max * 1.3 } else { 1.0 };
    let label_w = label_width(rows.iter().map(|row| row.metric.as_str()));

    let mut svg = String::new();
    {
        let height = AXIS_ROOM.saturating_add(BAR_ROW.saturating_mul(count_u32(n)));
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .x_label_area_size(30)
            .y_label_area_size(label_w)
            .build_cartesian_2d(0f64..x_max, 0f64..n as f64)?;
        let tick = |v: &f64| format::value(*v, unit);
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(10)
            .x_label_formatter(&tick)
            .label_style((FONT, 12).into_font().color(&INK))
            .light_line_style(WHITE)
            .bold_line_style(BAND)
            .draw()?;

        for (i, row) in rows.iter().enumerate() {
            let top = (n - i) as f64;
            let bottom = top - 1.0;
            let (base_values, treat_values) = values(row);
            let sides = [
                (
                    row.baseline_median,
                    (bottom + 0.52, top - 0.1),
                    BASELINE,
                    base_values,
                ),
                (
                    row.treatment_median,
                    (bottom + 0.1, bottom + 0.48),
                    TREATMENT,
                    treat_values,
                ),
            ];
            for (median, (low, high), colour, dots) in sides {
                if median.is_finite() {
                    let bar =
                        Rectangle::new([(0.0, low), (median, high)], colour.mix(0.45).filled());
                    chart.draw_series(std::iter::once(bar))?;
                    let cap = PathElement::new(
                        vec![(median, low), (median, high)],
                        colour.stroke_width(2),
                    );
                    chart.draw_series(std::iter::once(cap))?;
                }
                let mid = (low + high) / 2.0;
                chart.draw_series(
                    dots.iter()
                        .map(|v| Circle::new((*v, mid), 4, colour.filled())),
                )?;
                chart.draw_series(
                    dots.iter()
                        .map(|v| Circle::new((*v, mid), 4, WHITE.stroke_width(1))),
                )?;
            }
            let centre = bottom + 0.5;
            row_label(&root, chart.backend_coord(&(0.0, centre)), &row.metric)?;
            let (x, y) = chart.backend_coord(&(row_end(row), centre));
            let note = format!("{}  {}", format::ratio(row.ratio), row.verdict);
            let style = (FONT, 13).into_font().color(&verdict_colour(row.verdict));
            root.draw(&Text::new(
                note,
                (x + 10, y),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        root.present()?;
    }
    Ok(embed(
        &svg,
        "median per branch with each iteration as a dot",
    ))
}

/// One row per metric: a dot at the ratio of geometric means, a line across
/// its interval (to the chart's edge when unbounded), the ± tolerance band
/// shaded when the row carries one, and a rule at 1 (no change). The level
/// is named once in the image's label; a row at another level says its own.
pub(super) fn ratio_chart(rows: &[MetricRow]) -> ChartResult {
    let n = rows.len();
    let level = shared_level(rows);
    let mut extent: Vec<f64> = vec![1.0];
    for row in rows {
        extent.push(row.ratio);
        extent.extend(row.ci_low);
        extent.extend(row.ci_high);
        if let Some(band) = row.noise_band {
            extent.extend([1.0 - band, 1.0 + band]);
        }
    }
    let extent = finite(&extent);
    let low = extent.iter().copied().fold(f64::INFINITY, f64::min);
    let high = extent.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let pad = ((high - low) * 0.08).max(0.02);
    let (x_min, x_max) = ((low - pad).max(0.0), high + pad);
    let clamp = |v: f64| v.clamp(x_min, x_max);
    let label_w = label_width(rows.iter().map(|row| row.metric.as_str()));

    let mut svg = String::new();
    {
        let height = AXIS_ROOM.saturating_add(RATIO_ROW.saturating_mul(count_u32(n)));
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, height)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(10)
            .set_label_area_size(LabelAreaPosition::Left, label_w)
            .set_label_area_size(LabelAreaPosition::Bottom, 30)
            .set_label_area_size(LabelAreaPosition::Right, 250)
            .build_cartesian_2d(x_min..x_max, 0f64..n as f64)?;
        let tick = |v: &f64| format!("{v:.2}x");
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(0)
            .x_labels(12)
            .x_label_formatter(&tick)
            .label_style((FONT, 12).into_font().color(&INK))
            .light_line_style(WHITE)
            .bold_line_style(BAND.mix(0.6))
            .draw()?;

        let centre = |i: usize| (n - i) as f64 - 0.5;
        for (i, row) in rows.iter().enumerate() {
            if let Some(band) = row.noise_band.filter(|b| b.is_finite()) {
                let y = centre(i);
                let area = [(clamp(1.0 - band), y - 0.42), (clamp(1.0 + band), y + 0.42)];
                chart.draw_series(std::iter::once(Rectangle::new(area, BAND.filled())))?;
            }
        }
        let one = PathElement::new(
            vec![(clamp(1.0), 0.0), (clamp(1.0), n as f64)],
            RULE.stroke_width(1),
        );
        chart.draw_series(std::iter::once(one))?;

        for (i, row) in rows.iter().enumerate() {
            let y = centre(i);
            let colour = verdict_colour(row.verdict);
            let lo = row.ci_low.filter(|v| v.is_finite()).map_or(x_min, clamp);
            let hi = row.ci_high.filter(|v| v.is_finite()).map_or(x_max, clamp);
            let whisker = PathElement::new(vec![(lo, y), (hi, y)], colour.stroke_width(2));
            chart.draw_series(std::iter::once(whisker))?;
            for (end, bounded) in [(lo, row.ci_low.is_some()), (hi, row.ci_high.is_some())] {
                if bounded {
                    let cap = PathElement::new(
                        vec![(end, y - 0.22), (end, y + 0.22)],
                        colour.stroke_width(2),
                    );
                    chart.draw_series(std::iter::once(cap))?;
                }
            }
            if row.ratio.is_finite() {
                chart.draw_series(std::iter::once(Circle::new(
                    (clamp(row.ratio), y),
                    5,
                    colour.filled(),
                )))?;
            }
            row_label(&root, chart.backend_coord(&(x_min, y)), &row.metric)?;
            let (x, py) = chart.backend_coord(&(x_max, y));
            let note = format!("{}  {}", ratio_cell(row, level), row.verdict);
            let style = (FONT, 12).into_font().color(&colour);
            root.draw(&Text::new(
                note,
                (x + 12, py),
                style.pos(Pos::new(HPos::Left, VPos::Center)),
            ))?;
        }
        root.present()?;
    }
    let label = format!(
        "treatment/baseline ratio with its {} interval",
        format::optional_level(level)
    );
    Ok(embed(&svg, &label))
}

/// Writes a metric's name right-aligned just left of the plotting area.
fn row_label(
    root: &DrawingArea<SVGBackend<'_>, Shift>,
    (x, y): (i32, i32),
    name: &str,
) -> Result<(), Box<dyn std::error::Error>> {
    let font = if name == TOTAL_METRIC {
        (FONT, 13, FontStyle::Bold).into_font()
    } else {
        (FONT, 13).into_font()
    };
    let style = font.color(&INK).pos(Pos::new(HPos::Right, VPos::Center));
    root.draw(&Text::new(name.to_owned(), (x - 8, y), style))?;
    Ok(())
}

/// Width of the label area for these names, px (about 7 px per character).
pub(super) fn label_width<'a>(names: impl Iterator<Item = &'a str>) -> u32 {
    let longest = names.map(|name| name.chars().count()).max().unwrap_or(0);
    count_u32(longest)
        .saturating_mul(7)
        .saturating_add(24)
        .clamp(60, 320)
}

/// The finite values of `values`.
pub(super) fn finite(values: &[f64]) -> Vec<f64> {
    values.iter().copied().filter(|v| v.is_finite()).collect()
}

/// `n` as pixels, saturating (no report has 4 billion rows).
pub(super) fn count_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}
