//! The HTML page is self-contained, escaped, and has its charts.

use std::path::PathBuf;

use soakgate_reports::html;
use soakgate_reports::model::AbReport;

use crate::fixture;

/// Every string in the report, found through its JSON form.
fn strings(report: &AbReport) -> Vec<String> {
    fn walk(value: &serde_json::Value, out: &mut Vec<String>) {
        match value {
            serde_json::Value::String(s) => out.push(s.clone()),
            serde_json::Value::Array(items) => items.iter().for_each(|v| walk(v, out)),
            serde_json::Value::Object(map) => map.values().for_each(|v| walk(v, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(&serde_json::to_value(report).unwrap(), &mut out);
    out
}

fn escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[test]
fn page_is_self_contained() {
    let page = html::render(&fixture::report());
    assert!(page.starts_with("<!DOCTYPE html>"));
    assert!(page.trim_end().ends_with("</html>"));
    let charts = page.matches("<svg role=\"img\"").count();
    assert!(charts >= 3, "{charts} charts");
    // Section bars, section ratios, resource ratios, RSS and CPU over time.
    assert_eq!(charts, 5);
    assert!(!page.contains("<script"));
    assert!(!page.contains("<link"));
    assert!(!page.contains("<img"));
    assert!(!page.contains("@import") && !page.contains("url("));
    let report = fixture::report();
    assert!(
        strings(&report).iter().all(|s| !s.contains("http")),
        "the fixture names no URL"
    );
    assert!(!page.contains("http://") && !page.contains("https://"));
}

#[test]
fn every_string_with_markup_is_escaped() {
    let report = fixture::report();
    let page = html::render(&report);
    let risky: Vec<String> = strings(&report)
        .into_iter()
        .filter(|s| s.contains('<'))
        .collect();
    assert!(
        risky.len() >= 2,
        "the fixture has strings with `<`: {risky:?}"
    );
    for text in &risky {
        assert!(!page.contains(text.as_str()), "raw `{text}` in the page");
        assert!(page.contains(&escaped(text)), "escaped `{text}` missing");
    }

    let mut hostile = report;
    hostile.sections[0].metric = "<script>alert(1)</script>".into();
    hostile.assertions[5].name = "<img src=x onerror=alert(1)>".into();
    hostile.counters[0].counter = "</table><b>".into();
    let page = html::render(&hostile);
    assert!(!page.contains("<script") && !page.contains("<img") && !page.contains("</table><b>"));
    assert!(page.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
}

#[test]
fn warning_banner_iff_warnings() {
    let report = fixture::report();
    let banner = "class=\"banner warning\"";
    let page = html::render(&report);
    assert_eq!(page.matches(banner).count(), 1);
    for warning in &report.warnings {
        assert!(page.contains(&escaped(warning)));
    }
    let mut quiet = report;
    quiet.warnings.clear();
    assert!(!html::render(&quiet).contains(banner));
}

#[test]
fn shows_diffs_counters_notes_and_manifest() {
    let page = html::render(&fixture::report());
    assert!(page.contains("<header class=\"gate fail\"><div class=\"gate-result\" role=\"status\">GATE FAIL: regression in "));
    assert!(page.contains("<strong>Could catch:</strong> at 5 iterations per side"));
    assert!(
        !page.contains("Rules out:"),
        "a failed gate rules nothing out"
    );
    assert!(page.contains("<td class=\"verdict cannot-tell\">cannot tell</td>"));
    assert!(page.contains("<td class=\"verdict no-regression\">no regression</td>"));
    assert!(page.contains("<th class=\"num\">ratio [90% CI]</th>"));
    assert!(page.contains("<span class=\"del\">-UCT: 99.999999999989 (1 token)</span>"));
    assert!(page.contains("<span class=\"add\">+UCT: 199.999999999989 (2 tokens)</span>"));
    assert!(page.contains("verify_proofs") && !page.contains(">put_entry<"));
    assert!(page.contains("p &lt; 0.05 alone decides nothing"));
    assert!(page.contains("&quot;SPHERE_PROOF_CHECK&quot;: &quot;pairwise&quot;"));
    assert!(page.contains("§C.2 Bob pays"));
    assert!(page.contains("baseline peer1") && page.contains("treatment testnet"));
}

#[test]
fn degenerate_reports_still_render() {
    let mut report = fixture::report();
    report.series.clear();
    report.points.clear();
    report.counters.clear();
    report.assertions.clear();
    report.manifest = serde_json::Value::Null;
    for row in &mut report.sections {
        row.ratio = f64::NAN;
        row.ci_low = None;
        row.ci_high = None;
        row.treatment_median = f64::INFINITY;
    }
    let page = html::render(&report);
    assert!(page.contains("<svg role=\"img\""));
    assert!(
        !page.contains("chart unavailable"),
        "charts should cope with missing numbers"
    );

    report.sections.clear();
    report.resources.clear();
    let page = html::render(&report);
    assert!(page.contains("GATE FAIL"));
}

/// Writes the fixture's page under target/ for a look in a browser, and
/// screenshots it when headless chromium is installed.
#[test]
fn writes_the_page_for_inspection() {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("soakgate-reports");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("report.html");
    std::fs::write(&path, html::render(&fixture::report())).unwrap();
    assert!(path.metadata().unwrap().len() > 10_000);
}

#[test]
fn the_page_shows_why_and_where_the_time_went() {
    let report = fixture::report();
    let page = html::render(&report);
    assert!(
        page.contains("<section id=\"attribution\">"),
        "no attribution"
    );
    // Every non-empty segment is a tooltip with its seconds; an empty one
    // (peer1's baseline backoff) is not drawn.
    assert!(page.contains("title=\"treatment backoff: 12.00 s\""));
    assert!(!page.contains("title=\"baseline backoff: 0.00 s\""));
    assert!(page.contains(
        "<ul class=\"why\"><li><strong>§C.2 Bob pays</strong> (regression): gateway +71.00 s"
    ));
    let mut without = report;
    without.attribution.clear();
    for row in &mut without.sections {
        row.why = None;
    }
    let page = html::render(&without);
    assert!(!page.contains("id=\"attribution\"") && !page.contains("class=\"why\""));
}
