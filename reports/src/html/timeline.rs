//! Resources over time: one line chart per series metric (RSS, then CPU,
//! then anything else), one line per branch and role of each branch's median
//! iteration. Colour tells the branch, the dash pattern the role; the legend
//! is HTML next to the chart.

use std::fmt::Write as _;

use plotters::prelude::*;

use super::charts::{ChartResult, embed, finite};
use super::palette::{BAND, CHART_WIDTH, INK, branch_colour, css};
use crate::escape;
use crate::model::{CPU_SERIES, RSS_SERIES, ResourceSeries};

const HEIGHT: u32 = 320;
const FONT: &str = "sans-serif";
const MIB: f64 = 1024.0 * 1024.0;
const GIB: f64 = MIB * 1024.0;

/// One metric's chart, ready for the page.
pub(super) struct Timeline {
    /// The chart's heading, e.g. "RSS over time".
    pub(super) title: String,
    /// HTML legend (already escaped).
    pub(super) legend: String,
    /// The chart.
    pub(super) chart: ChartResult,
}

/// One chart per metric found in `series`, RSS first, CPU second.
pub(super) fn timelines(series: &[ResourceSeries]) -> Vec<Timeline> {
    let mut metrics: Vec<&str> = Vec::new();
    for s in series {
        if !metrics.contains(&s.metric.as_str()) {
            metrics.push(&s.metric);
        }
    }
    metrics.sort_by_key(|m| match *m {
        RSS_SERIES => 0,
        CPU_SERIES => 1,
        _ => 2,
    });
    let mut roles: Vec<&str> = Vec::new();
    for s in series {
        if !roles.contains(&s.role.as_str()) {
            roles.push(&s.role);
        }
    }
    metrics
        .into_iter()
        .map(|metric| {
            let lines: Vec<&ResourceSeries> =
                series.iter().filter(|s| s.metric == metric).collect();
            let axis = Axis::for_metric(metric, &lines);
            Timeline {
                title: axis.title.clone(),
                legend: legend(&lines, &roles),
                chart: draw(&lines, &roles, &axis),
            }
        })
        .collect()
}

/// How a metric's values are scaled and named.
struct Axis {
    title: String,
    y_desc: String,
    divisor: f64,
}

impl Axis {
    fn for_metric(metric: &str, lines: &[&ResourceSeries]) -> Self {
        let max = lines
            .iter()
            .flat_map(|s| s.points.iter().map(|p| p.1))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        match metric {
            RSS_SERIES => {
                let (divisor, unit) = if max >= GIB {
                    (GIB, "GiB")
                } else {
                    (MIB, "MiB")
                };
                Axis {
                    title: "Resident memory (RSS) over time".into(),
                    y_desc: format!("RSS ({unit})"),
                    divisor,
                }
            }
            CPU_SERIES => Axis {
                title: "CPU over time".into(),
                y_desc: "CPU (% of one core)".into(),
                divisor: 1.0,
            },
            other => Axis {
                title: format!("{other} over time"),
                y_desc: other.to_owned(),
                divisor: 1.0,
            },
        }
    }
}

/// The dash pattern (dash, gap) of the `index`-th role; the first is solid.
fn dash(index: usize) -> Option<(u32, u32)> {
    match index % 4 {
        0 => None,
        1 => Some((9, 5)),
        2 => Some((3, 4)),
        _ => Some((14, 4)),
    }
}

fn role_index(roles: &[&str], role: &str) -> usize {
    roles.iter().position(|r| *r == role).unwrap_or(0)
}

fn draw(lines: &[&ResourceSeries], roles: &[&str], axis: &Axis) -> ChartResult {
    let scaled: Vec<Vec<(f64, f64)>> = lines
        .iter()
        .map(|s| {
            s.points
                .iter()
                .filter(|(t, v)| t.is_finite() && v.is_finite())
                .map(|(t, v)| (*t, v / axis.divisor))
                .collect()
        })
        .collect();
    let all_t: Vec<f64> = scaled.iter().flatten().map(|p| p.0).collect();
    let all_v: Vec<f64> = scaled.iter().flatten().map(|p| p.1).collect();
    let t_max = finite(&all_t).into_iter().fold(0.0, f64::max);
    let v_max = finite(&all_v).into_iter().fold(0.0, f64::max);
    let t_max = if t_max > 0.0 { t_max } else { 1.0 };
    let v_max = if v_max > 0.0 { v_max * 1.1 } else { 1.0 };

    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (CHART_WIDTH, HEIGHT)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..t_max, 0f64..v_max)?;
        let y_tick = |v: &f64| format!("{v:.1}");
        let x_tick = |v: &f64| format!("{v:.0} s");
        chart
            .configure_mesh()
            .x_desc("elapsed time in the median iteration")
            .y_desc(axis.y_desc.as_str())
            .x_label_formatter(&x_tick)
            .y_label_formatter(&y_tick)
            .label_style((FONT, 12).into_font().color(&INK))
            .axis_desc_style((FONT, 13).into_font().color(&INK))
            .light_line_style(WHITE)
            .bold_line_style(BAND)
            .draw()?;
        for (series, points) in lines.iter().zip(scaled) {
            let style = branch_colour(&series.branch).stroke_width(2);
            match dash(role_index(roles, &series.role)) {
                None => {
                    chart.draw_series(LineSeries::new(points, style))?;
                }
                Some((size, gap)) => {
                    chart.draw_series(DashedLineSeries::new(points, size, gap, style))?;
                }
            }
        }
        root.present()?;
    }
    Ok(embed(&svg, &axis.title))
}

/// One key per line: a short stroke in the line's colour and dash, then
/// "branch role".
fn legend(lines: &[&ResourceSeries], roles: &[&str]) -> String {
    let mut out = String::from("<div class=\"legend\">");
    for series in lines {
        let dasharray = dash(role_index(roles, &series.role))
            .map(|(size, gap)| format!(" stroke-dasharray=\"{size} {gap}\""))
            .unwrap_or_default();
        let _ = write!(
            out,
            "<span class=\"key\"><svg width=\"34\" height=\"10\" aria-hidden=\"true\">\
             <line x1=\"0\" y1=\"5\" x2=\"34\" y2=\"5\" stroke=\"{}\" stroke-width=\"2.5\"{dasharray}/></svg>{} {}</span>",
            css(branch_colour(&series.branch)),
            escape::html(&series.branch),
            escape::html(&series.role),
        );
    }
    out.push_str("</div>");
    out
}
