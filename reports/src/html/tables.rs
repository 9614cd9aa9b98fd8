//! The page's tables and text blocks: metric tables, counters side by side,
//! assertions with coloured diffs, notes and the manifest. Every string from
//! the report is escaped here.

use std::fmt::Write as _;

use crate::escape::html as esc;
use crate::format;
use crate::model::{AbReport, AssertionRow, MetricRow, TOTAL_METRIC};
use crate::present::{
    AssertionStatus, TOP_COUNTERS, counter_ratio, ratio_cell, share_pair, shared_level,
    top_counters,
};

/// What the `p` column holds, for its tooltip.
const P_TITLE: &str =
    "one-sided p-value of &quot;the treatment is slower&quot;, Holm-adjusted across gated metrics";
/// What the `detectable` column holds, for its tooltip (the harness plans for
/// 90 % power; this is not the interval's level).
const DETECTABLE_TITLE: &str =
    "the smallest slowdown this run would catch in 90 % of runs at its noise and iteration count";

/// A metric table with the full evidence per row; the ratio column names
/// the interval's level, and a row at another level says its own.
pub(super) fn metric_table(first: &str, rows: &[MetricRow]) -> String {
    let level = shared_level(rows);
    let mut out = format!(
        "<table><thead><tr><th>{}</th><th class=\"num\">baseline</th><th class=\"num\">treatment</th>\
         <th class=\"num\">delta</th><th class=\"num\">{}</th><th class=\"num\" title=\"{P_TITLE}\">p (slower)</th>\
         <th class=\"num\">Cliff's δ</th><th class=\"num\">slower pairs</th>\
         <th class=\"num\" title=\"{DETECTABLE_TITLE}\">detectable</th><th>verdict</th><th>reason</th>\
         </tr></thead><tbody>",
        esc(first),
        esc(&format::ratio_header(level)),
    );
    for row in rows {
        let class = if row.metric == TOTAL_METRIC {
            " class=\"total\""
        } else {
            ""
        };
        let advisory = if row.gated {
            ""
        } else {
            " <span class=\"advisory\">advisory</span>"
        };
        let (baseline, treatment) =
            format::pair(row.baseline_median, row.treatment_median, row.unit);
        let _ = write!(
            out,
            "<tr{class}><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>\
             <td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{:+.2}</td>\
             <td class=\"num\">{}/{}</td><td class=\"num\">{}</td><td class=\"verdict {}\">{}{advisory}</td><td class=\"reason\">{}</td></tr>",
            esc(&row.metric),
            esc(&baseline),
            esc(&treatment),
            esc(&format::signed(row.delta, row.unit)),
            esc(&ratio_cell(row, level)),
            esc(&format::p_value(row.p_value)),
            row.cliffs_delta,
            row.slower_pairs,
            row.pairs,
            esc(&format::detectable(row.detectable)),
            row.verdict.as_str().replace(' ', "-"),
            row.verdict,
            esc(&row.reason),
        );
    }
    out.push_str("</tbody></table>");
    out
}

/// The top counters of each section in one table, a heading row per
/// section, both branches side by side with paired bars scaled to the
/// section's largest total.
pub(super) fn counters(report: &AbReport) -> String {
    let mut out = String::from(
        "<table class=\"counters\"><thead><tr><th>counter</th><th class=\"num\">baseline ms (count)</th>\
         <th class=\"num\">treatment ms (count)</th><th class=\"num\">ratio</th><th class=\"num\">share of wall</th><th>total time</th></tr></thead><tbody>",
    );
    for section in top_counters(report, TOP_COUNTERS) {
        let largest = section
            .rows
            .iter()
            .map(|r| r.baseline_total_ms.max(r.treatment_total_ms))
            .filter(|v| v.is_finite())
            .fold(0.0, f64::max);
        let width = |v: f64| {
            if largest > 0.0 && v.is_finite() {
                (v / largest * 100.0).clamp(0.0, 100.0)
            } else {
                0.0
            }
        };
        let _ = write!(
            out,
            "<tr class=\"group\"><th colspan=\"6\">{}</th></tr>",
            esc(section.section)
        );
        for row in section.rows {
            let ratio = counter_ratio(row).map_or_else(String::new, format::ratio);
            let _ = write!(
                out,
                "<tr><td>{}</td><td class=\"num\">{:.1} ({:.0})</td><td class=\"num\">{:.1} ({:.0})</td>\
                 <td class=\"num\">{}</td><td class=\"num\">{}</td><td><div class=\"pair\"><div class=\"bar base\" style=\"width:{:.1}%\"></div>\
                 <div class=\"bar treat\" style=\"width:{:.1}%\"></div></div></td></tr>",
                esc(&row.counter),
                row.baseline_total_ms,
                row.baseline_count,
                row.treatment_total_ms,
                row.treatment_count,
                esc(&ratio),
                esc(&share_pair(row)),
                width(row.baseline_total_ms),
                width(row.treatment_total_ms),
            );
        }
    }
    out.push_str("</tbody></table>");
    out
}

/// The assertion table, then each failing assertion's diff.
pub(super) fn assertions(rows: &[AssertionRow]) -> String {
    let mut out = String::from(
        "<table><thead><tr><th>status</th><th>assertion</th><th class=\"num\">baseline passed</th>\
         <th class=\"num\">treatment passed</th><th>note</th></tr></thead><tbody>",
    );
    for row in rows {
        let status = AssertionStatus::of(row);
        let note = match status {
            AssertionStatus::Pass => "",
            AssertionStatus::Fail if row.regressed => "passes on baseline, fails on treatment",
            AssertionStatus::Fail => "fails on treatment",
            AssertionStatus::BaselineFailed => "fails on baseline",
        };
        let _ = write!(
            out,
            "<tr><td class=\"status {}\">{}</td><td>{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td><td>{note}</td></tr>",
            status.tag().to_lowercase(),
            status.tag(),
            esc(&row.name),
            format::fraction(row.baseline_passed, row.baseline_total),
            format::fraction(row.treatment_passed, row.treatment_total),
        );
    }
    out.push_str("</tbody></table>");
    for row in rows {
        if AssertionStatus::of(row) == AssertionStatus::Pass {
            continue;
        }
        if let Some(diff) = row.diff.as_deref() {
            let _ = write!(out, "<h3>{}</h3>{}", esc(&row.name), diff_block(diff));
        }
    }
    out
}

/// A unified diff in `<pre>`, one span per line classed by its first character.
pub(super) fn diff_block(diff: &str) -> String {
    let mut out = String::from("<pre class=\"diff\">");
    for line in diff.lines() {
        let class = if line.starts_with("+++") || line.starts_with("---") {
            "ctx"
        } else if line.starts_with('+') {
            "add"
        } else if line.starts_with('-') {
            "del"
        } else if line.starts_with("@@") {
            "hunk"
        } else {
            "ctx"
        };
        let _ = write!(out, "<span class=\"{class}\">{}</span>", esc(line));
    }
    out.push_str("</pre>");
    out
}

/// A bulleted list of escaped items.
pub(super) fn list(items: &[String]) -> String {
    let mut out = String::from("<ul>");
    for item in items {
        let _ = write!(out, "<li>{}</li>", esc(item));
    }
    out.push_str("</ul>");
    out
}

/// The manifest as pretty JSON in a `<pre>`.
pub(super) fn manifest(manifest: &serde_json::Value) -> String {
    let json = serde_json::to_string_pretty(manifest)
        .unwrap_or_else(|e| format!("manifest cannot be shown: {e}"));
    format!(
        "<details open><summary>manifest.json</summary><pre>{}</pre></details>",
        esc(&json)
    )
}
