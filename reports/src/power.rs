//! `soak power`'s outputs: `power.tsv`, the terminal table and the
//! one-file `power.html` with a chart of the smallest slowdown caught
//! against iterations per side.
//!
//! Like the rest of this crate it renders numbers the harness computed and
//! decides nothing.

use std::fmt::Write as _;

use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::escape;

/// A power study, as computed by the harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PowerReport {
    /// Where the iterations came from.
    pub source: String,
    /// Iterations in the pool.
    pub pool_size: usize,
    /// Resampled runs per size.
    pub trials: usize,
    /// Family alpha of the gate.
    pub alpha: f64,
    /// The whole gate per size, on unchanged runs.
    pub gate: Vec<GateRow>,
    /// Each gated metric.
    pub metrics: Vec<MetricPowerRow>,
    /// The adaptive plan on unchanged runs, if the pool was deep enough.
    pub auto: Option<AutoRow>,
    /// The suggested `gate.toml`.
    pub suggestion: String,
}

/// The gate at one size on unchanged runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GateRow {
    /// Iterations per side.
    pub per_side: usize,
    /// Share with any gated regression.
    pub false_alarm: f64,
    /// Share that cannot tell.
    pub cannot_tell: f64,
    /// Share that pass.
    pub pass: f64,
}

/// One gated metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPowerRow {
    /// Its name, e.g. "§C.2 Bob pays".
    pub metric: String,
    /// Median over the pool, in the metric's unit.
    pub median: f64,
    /// Spread: standard deviation of the log values (about the CV).
    pub spread: f64,
    /// Per size.
    pub rates: Vec<RateRow>,
}

/// One metric at one size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RateRow {
    /// Iterations per side.
    pub per_side: usize,
    /// Share of unchanged runs calling this metric a regression.
    pub false_alarm: f64,
    /// Share catching a 10 % slowdown.
    pub caught_10: f64,
    /// Share catching a 20 % slowdown.
    pub caught_20: f64,
    /// Smallest slowdown caught in 80 % of runs (share), `None` above 100 %.
    pub slowdown_80: Option<f64>,
    /// Smallest slowdown caught in 90 % of runs.
    pub slowdown_90: Option<f64>,
}

/// The adaptive plan on unchanged runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AutoRow {
    /// The looks, per side.
    pub looks: Vec<usize>,
    /// Share with any gated regression at any look.
    pub false_alarm: f64,
    /// Share undecided at the cap.
    pub cannot_tell: f64,
    /// Mean iterations per side spent.
    pub mean_per_side: f64,
}

/// Column names of `power.tsv`.
pub const TSV_HEADER: &str = "metric\tper_side\tmedian\tspread\tfalse_alarm\tcaught_10pct\tcaught_20pct\tslowdown_80\tslowdown_90\tgate_false_alarm\tgate_cannot_tell\tgate_pass";

/// `power.tsv`: one row per metric and size, with the gate's rates at that
/// size repeated on each row so the file stands alone.
pub fn tsv(report: &PowerReport) -> String {
    let mut out = String::from(TSV_HEADER);
    out.push('\n');
    for m in &report.metrics {
        for r in &m.rates {
            let gate = report.gate.iter().find(|g| g.per_side == r.per_side);
            let _ = writeln!(
                out,
                "{}\t{}\t{:.6}\t{:.6}\t{:.4}\t{:.4}\t{:.4}\t{}\t{}\t{}\t{}\t{}",
                m.metric.replace('\t', " "),
                r.per_side,
                m.median,
                m.spread,
                r.false_alarm,
                r.caught_10,
                r.caught_20,
                share_or_na(r.slowdown_80),
                share_or_na(r.slowdown_90),
                gate.map_or("NA".into(), |g| format!("{:.4}", g.false_alarm)),
                gate.map_or("NA".into(), |g| format!("{:.4}", g.cannot_tell)),
                gate.map_or("NA".into(), |g| format!("{:.4}", g.pass)),
            );
        }
    }
    out
}

fn share_or_na(v: Option<f64>) -> String {
    v.map_or_else(|| "NA".into(), |v| format!("{v:.4}"))
}

fn pct(v: f64) -> String {
    format!("{:.1}%", v * 100.0)
}

fn pct_or_more(v: Option<f64>) -> String {
    v.map_or_else(|| ">100%".into(), pct)
}

/// The terminal table: the gate per size, then the smallest slowdown caught
/// in 90 % of runs per metric and size.
pub fn terminal(report: &PowerReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "soak power: {} iterations of one variant, {} resampled runs per size, alpha {}",
        report.pool_size, report.trials, report.alpha
    );
    let _ = writeln!(out, "\nunchanged runs (A/A):");
    let _ = writeln!(
        out,
        "  {:>8}  {:>11}  {:>11}  {:>7}",
        "per side", "false alarm", "cannot tell", "pass"
    );
    for g in &report.gate {
        let _ = writeln!(
            out,
            "  {:>8}  {:>11}  {:>11}  {:>7}",
            g.per_side,
            pct(g.false_alarm),
            pct(g.cannot_tell),
            pct(g.pass)
        );
    }
    if let Some(a) = &report.auto {
        let _ = writeln!(
            out,
            "  auto (looks {:?}): false alarm {}, cannot tell at the cap {}, {:.1} iterations per side on average",
            a.looks,
            pct(a.false_alarm),
            pct(a.cannot_tell),
            a.mean_per_side
        );
    }
    let sizes: Vec<usize> = report.gate.iter().map(|g| g.per_side).collect();
    let width = report
        .metrics
        .iter()
        .map(|m| m.metric.chars().count())
        .max()
        .unwrap_or(6)
        .max(6);
    let _ = writeln!(
        out,
        "\nsmallest slowdown caught in 90% of runs (80% in brackets), by iterations per side:"
    );
    let _ = write!(
        out,
        "  {:<width$}  {:>7}  {:>6}",
        "metric", "median", "spread"
    );
    for n in &sizes {
        let _ = write!(out, "  {:>15}", format!("n={n}"));
    }
    out.push('\n');
    for m in &report.metrics {
        let _ = write!(
            out,
            "  {:<width$}  {:>7.3}  {:>6}",
            m.metric,
            m.median,
            pct(m.spread)
        );
        for n in &sizes {
            let cell = m.rates.iter().find(|r| r.per_side == *n).map_or_else(
                || "-".to_owned(),
                |r| {
                    format!(
                        "{} ({})",
                        pct_or_more(r.slowdown_90),
                        pct_or_more(r.slowdown_80)
                    )
                },
            );
            let _ = write!(out, "  {cell:>15}");
        }
        out.push('\n');
    }
    out
}

/// The one-file `power.html`: the gate's rates, a chart of the smallest
/// slowdown caught in 90 % of runs against iterations per side, the table
/// and the suggested configuration.
pub fn html(report: &PowerReport) -> String {
    let chart = chart(report).unwrap_or_else(|e| {
        format!(
            "<p class=\"meta\">chart could not be drawn: {}</p>",
            escape::html(&e.to_string())
        )
    });
    let mut rows = String::new();
    for g in &report.gate {
        let _ = write!(
            rows,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            g.per_side,
            pct(g.false_alarm),
            pct(g.cannot_tell),
            pct(g.pass)
        );
    }
    let mut metric_rows = String::new();
    for m in &report.metrics {
        for r in &m.rates {
            let _ = write!(
                metric_rows,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape::html(&m.metric),
                r.per_side,
                pct(r.false_alarm),
                pct(r.caught_10),
                pct(r.caught_20),
                pct_or_more(r.slowdown_80),
                pct_or_more(r.slowdown_90)
            );
        }
    }
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>soak power</title>\
<style>body{{font:14px/1.45 system-ui,sans-serif;margin:20px;color:#222}}table{{border-collapse:collapse;margin:8px 0 16px}}\
td,th{{border:1px solid #d9dee5;padding:3px 8px;text-align:right}}td:first-child,th:first-child{{text-align:left}}\
pre{{background:#f4f6f8;padding:10px}}.meta{{color:#666}}</style></head><body>\
<h1>soak power</h1><p class=\"meta\">{} iterations of one variant from <code>{}</code>, {} resampled runs per size, family alpha {}.</p>\
<h2>Unchanged runs</h2><table><tr><th>per side</th><th>false alarm</th><th>cannot tell</th><th>pass</th></tr>{rows}</table>\
<h2>Smallest slowdown caught in 90% of runs</h2>{chart}\
<h2>Per metric</h2><table><tr><th>metric</th><th>per side</th><th>false alarm</th><th>10% caught</th><th>20% caught</th><th>80% catch at</th><th>90% catch at</th></tr>{metric_rows}</table>\
<h2>Suggested gate.toml</h2><pre>{}</pre></body></html>\n",
        report.pool_size,
        escape::html(&report.source),
        report.trials,
        report.alpha,
        escape::html(&report.suggestion)
    )
}

/// One line per metric: the smallest slowdown caught in 90 % of runs (in %)
/// against iterations per side.
fn chart(report: &PowerReport) -> Result<String, Box<dyn std::error::Error>> {
    let sizes: Vec<usize> = report.gate.iter().map(|g| g.per_side).collect();
    let (Some(&first), Some(&last)) = (sizes.first(), sizes.last()) else {
        return Ok(String::new());
    };
    let top = report
        .metrics
        .iter()
        .flat_map(|m| m.rates.iter().filter_map(|r| r.slowdown_90))
        .fold(0.05_f64, f64::max)
        .min(1.0)
        * 100.0
        * 1.1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        root.fill(&WHITE)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(36)
            .y_label_area_size(52)
            .build_cartesian_2d(first as f64..last as f64, 0.0..top)?;
        chart
            .configure_mesh()
            .x_desc("iterations per side")
            .y_desc("slowdown caught in 90% (%)")
            .draw()?;
        for (index, m) in report.metrics.iter().enumerate() {
            let colour = Palette99::pick(index).to_rgba();
            let points: Vec<(f64, f64)> = m
                .rates
                .iter()
                .filter_map(|r| Some((r.per_side as f64, r.slowdown_90? * 100.0)))
                .collect();
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))?
                .label(m.metric.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
        root.present()?;
    }
    Ok(svg.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> PowerReport {
        PowerReport {
            source: "runs/aa".into(),
            pool_size: 20,
            trials: 100,
            alpha: 0.05,
            gate: vec![GateRow {
                per_side: 5,
                false_alarm: 0.01,
                cannot_tell: 0.1,
                pass: 0.89,
            }],
            metrics: vec![MetricPowerRow {
                metric: "§C.2 Bob pays".into(),
                median: 0.4,
                spread: 0.02,
                rates: vec![RateRow {
                    per_side: 5,
                    false_alarm: 0.0,
                    caught_10: 0.95,
                    caught_20: 1.0,
                    slowdown_80: Some(0.061),
                    slowdown_90: None,
                }],
            }],
            auto: None,
            suggestion: "[noise_band]\ntime = 0.05\n".into(),
        }
    }

    #[test]
    fn tsv_has_one_row_per_metric_and_size() {
        let text = tsv(&report());
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], TSV_HEADER);
        assert_eq!(
            lines[1],
            "§C.2 Bob pays\t5\t0.400000\t0.020000\t0.0000\t0.9500\t1.0000\t0.0610\tNA\t0.0100\t0.1000\t0.8900"
        );
        assert_eq!(lines.len(), 2);
    }

    #[test]
    fn terminal_and_html_show_the_numbers() {
        let r = report();
        let t = terminal(&r);
        assert!(t.contains(">100% (6.1%)"), "{t}");
        assert!(t.contains("1.0%"), "{t}");
        let h = html(&r);
        assert!(h.contains("<svg"), "chart missing");
        assert!(h.contains("time = 0.05"));
        assert!(!h.contains("http://"), "the page must name no URL");
    }
}
