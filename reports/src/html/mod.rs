//! `report.html`: one self-contained page with the whole comparison.
//!
//! No scripts, fonts, stylesheets or images are fetched: the CSS is inline
//! and every chart is inline SVG drawn by plotters. The page shows, top to
//! bottom: the gate's headline in a banner coloured by outcome (green pass,
//! red fail, amber cannot tell, grey interrupted or infrastructure failure)
//! with what the run rules out and could catch, and the gate's reasons; a
//! red banner when the report carries warnings; wall time per section as
//! bars (medians, every iteration as a dot) and as ratios with their
//! intervals (named at the level the rows carry, e.g. 90 %); resources as
//! ratios, RSS and CPU over time per role for both branches, and a table;
//! the top counters per section side by side; assertions with coloured
//! diffs; notes; and the manifest as pretty JSON. Every string from the
//! report is HTML-escaped.
//!
//! ```
//! # fn demo(report: &soakgate_reports::AbReport) {
//! let page = soakgate_reports::html::render(report);
//! assert!(page.starts_with("<!DOCTYPE html>"));
//! # }
//! ```

mod attribution;
mod charts;
mod palette;
mod style;
mod tables;
mod timeline;

use std::fmt::Write as _;

use crate::escape::html as esc;
use crate::format;
use crate::model::{AbReport, GateStatus, GateSummary, MetricRow, TOTAL_METRIC};
use crate::present::{capitalized, gate_details, headline, shared_level, why_rows};
use charts::ChartResult;

/// Renders the self-contained HTML page.
pub fn render(report: &AbReport) -> String {
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{} | {}</title>\n<style>{}</style>\n</head>\n<body>\n<main>\n",
        esc(&headline(&report.gate)),
        esc(&report.title),
        style::CSS
    );
    header(&mut out, report);
    if !report.warnings.is_empty() {
        let _ = writeln!(
            out,
            "<div class=\"banner warning\" role=\"alert\"><strong>Warning: these results may not be trustworthy.</strong>{}</div>",
            tables::list(&report.warnings)
        );
    }
    sections(&mut out, report);
    resources(&mut out, report);
    if !report.counters.is_empty() {
        let _ = writeln!(
            out,
            "<section id=\"counters\"><h2>Top counters per section</h2>{}\
             <p class=\"meta\">Medians over iterations of each counter's total time and count; the top {} per section by the larger branch.</p>{}</section>",
            branch_legend(report),
            crate::present::TOP_COUNTERS,
            tables::counters(report)
        );
    }
    if !report.assertions.is_empty() {
        let _ = writeln!(
            out,
            "<section id=\"assertions\"><h2>Assertions</h2>{}</section>",
            tables::assertions(&report.assertions)
        );
    }
    if !report.notes.is_empty() {
        let _ = writeln!(
            out,
            "<section id=\"notes\"><h2>Notes</h2>{}</section>",
            tables::list(&report.notes)
        );
    }
    if !report.manifest.is_null() {
        let _ = writeln!(
            out,
            "<section id=\"manifest\"><h2>Manifest</h2>{}</section>",
            tables::manifest(&report.manifest)
        );
    }
    let _ = write!(
        out,
        "<footer>soakgate-reports {} · generated {}</footer>\n</main>\n</body>\n</html>\n",
        env!("CARGO_PKG_VERSION"),
        esc(&report.generated_at)
    );
    out
}

fn header(out: &mut String, report: &AbReport) {
    let gate = &report.gate;
    let _ = write!(
        out,
        "<header class=\"gate {}\"><div class=\"gate-result\" role=\"status\">{}</div>",
        status_class(gate),
        esc(&headline(gate)),
    );
    for (label, text) in gate_details(gate) {
        let _ = write!(
            out,
            "<p class=\"gate-detail\"><strong>{}:</strong> {}</p>",
            capitalized(label),
            esc(text)
        );
    }
    let _ = write!(
        out,
        "<p class=\"mode\">{}</p>\
         <h1>{}</h1>\
         <p class=\"meta\"><span class=\"swatch base\"></span> baseline: {} (n = {}) &nbsp; \
         <span class=\"swatch treat\"></span> treatment: {} (n = {}) &nbsp; · generated {}</p>",
        esc(&gate.mode),
        esc(&report.title),
        esc(&report.baseline.label),
        report.baseline.iterations,
        esc(&report.treatment.label),
        report.treatment.iterations,
        esc(&report.generated_at),
    );
    if !gate.reasons.is_empty() {
        out.push_str("<div class=\"reasons\">");
        out.push_str(&tables::list(&gate.reasons));
        out.push_str("</div>");
    }
    out.push_str("</header>\n");
}

/// The banner's CSS class, by outcome rather than by `passed`: a gate that
/// cannot tell is amber even when configured to pass, so it never looks
/// like a clean pass.
fn status_class(gate: &GateSummary) -> &'static str {
    match gate.status {
        GateStatus::Pass => "pass",
        GateStatus::Fail => "fail",
        GateStatus::CannotTell => "cannot-tell",
        GateStatus::Interrupted => "interrupted",
        GateStatus::Infrastructure => "infrastructure",
    }
}

fn sections(out: &mut String, report: &AbReport) {
    if report.sections.is_empty() {
        return;
    }
    out.push_str("<section id=\"sections\"><h2>Wall time per section</h2>");
    let bars: Vec<&MetricRow> = report
        .sections
        .iter()
        .filter(|row| row.metric != TOTAL_METRIC)
        .collect();
    if !bars.is_empty() {
        let legend = format!(
            "{}<p class=\"meta\">Bars are medians; dots are single iterations.</p>",
            branch_legend(report)
        );
        figure(
            out,
            "Median wall time per section",
            &legend,
            charts::metric_bars(&bars, &report.points),
        );
    }
    let level = format::optional_level(shared_level(&report.sections));
    figure(
        out,
        &format!("Treatment / baseline ratio with {level} interval"),
        &format!(
            "<p class=\"meta\">Dot: ratio of geometric means; line: {level} interval \
             (reaching the edge when unbounded); grey: the ± tolerance band.</p>"
        ),
        charts::ratio_chart(&report.sections),
    );
    out.push_str(&tables::metric_table("section", &report.sections));
    let whys: Vec<String> = why_rows(report)
        .map(|(row, why)| {
            format!(
                "<li><strong>{}</strong> ({}): {}</li>",
                esc(&row.metric),
                row.verdict,
                esc(why)
            )
        })
        .collect();
    if !whys.is_empty() {
        let _ = write!(out, "<h3>Why</h3><ul class=\"why\">{}</ul>", whys.concat());
    }
    out.push_str("</section>\n");
    if !report.attribution.is_empty() {
        let _ = writeln!(
            out,
            "<section id=\"attribution\"><h2>Where the time went</h2>\
             <p class=\"meta\">Each peer's wall time per section, medians: the upper bar is the baseline, the lower the treatment, scaled to the longer. CPU comes from the process tree's clock, the waits from the SDK's wall-clock unions; where they overlap the earlier category in the legend takes the time, and \"other\" is the rest (idle, or waiting on the other peer).</p>{}</section>",
            attribution::attribution(report)
        );
    }
}

fn resources(out: &mut String, report: &AbReport) {
    if report.resources.is_empty() && report.series.is_empty() {
        return;
    }
    out.push_str("<section id=\"resources\"><h2>Resources</h2>");
    if !report.resources.is_empty() {
        let level = format::optional_level(shared_level(&report.resources));
        figure(
            out,
            &format!("Resource ratios with {level} interval"),
            "",
            charts::ratio_chart(&report.resources),
        );
    }
    for timeline in timeline::timelines(&report.series) {
        figure(out, &timeline.title, &timeline.legend, timeline.chart);
    }
    if !report.resources.is_empty() {
        out.push_str(&tables::metric_table("resource", &report.resources));
    }
    out.push_str("</section>\n");
}

/// A captioned chart, or the reason it is missing.
fn figure(out: &mut String, caption: &str, legend: &str, chart: ChartResult) {
    let body = chart.unwrap_or_else(|e| {
        format!(
            "<p class=\"chart-error\">chart unavailable: {}</p>",
            esc(&e.to_string())
        )
    });
    let _ = write!(
        out,
        "<figure><figcaption>{}</figcaption>{legend}{body}</figure>",
        esc(caption)
    );
}

fn branch_legend(report: &AbReport) -> String {
    format!(
        "<div class=\"legend\"><span class=\"key\"><span class=\"swatch base\"></span>baseline: {}</span>\
         <span class=\"key\"><span class=\"swatch treat\"></span>treatment: {}</span></div>",
        esc(&report.baseline.label),
        esc(&report.treatment.label)
    )
}
