//! The plain-text report `soak` prints when a comparison finishes.
//!
//! ```text
//! GATE FAIL: regression in `total`
//!   could catch: at 5 iterations per side this gate catches, in 90 % of runs, ...
//!
//! pay-sync-clear-recover: main vs HEAD
//! baseline   main @ 1a2b3c4 (n = 5)
//! treatment  HEAD @ 9f8e7d6 (n = 5)
//!
//! section                      baseline   treatment      delta  verdict
//! §1 Peer1 setup                 55.0 s      58.0 s     +3.0 s  no regression
//! total                         631.0 s     805.0 s   +174.0 s  regression (1.28x)
//! ```
//!
//! The gate's headline comes first, with what the run rules out and could
//! catch under it; then the tables, resources (memory in MiB/GiB, CPU in
//! %), assertions with the failing diffs indented under them, notes,
//! warnings, and one last line repeating the outcome with its first reason,
//! e.g. `GATE FAIL (no-regression): <first reason>`, because after a long
//! table the end is what stays on screen. No ANSI colours: the caller may
//! colour the text.

use std::fmt::Write as _;

use crate::format;
use crate::model::{AbReport, AssertionRow, BranchLabel, GateSummary, MetricRow};
use crate::present::{
    AssertionStatus, TOP_COUNTERS, gate_details, gate_reason, headline, share_pair, status_label,
    top_counters, verdict_with_ratio, why_rows,
};

/// The narrowest name column, even when `width` is smaller.
const MIN_NAME_WIDTH: usize = 12;
/// The name column's width when names are short (as in the seed's table).
const DEFAULT_NAME_WIDTH: usize = 28;
/// Room kept for the verdict column when fitting the name column to `width`.
const VERDICT_ROOM: usize = 20;
/// Indentation of a failing assertion's diff.
const DIFF_INDENT: &str = "      ";
/// Indentation of the lines under the headline.
const DETAIL_INDENT: &str = "  ";

/// Renders the report as plain text no wider than `width` columns where
/// possible: long metric names are shortened with `…`; diffs, warnings and
/// the headline and verdict lines are never cut.
pub fn render(report: &AbReport, width: usize) -> String {
    let mut out = String::new();
    gate_head(&mut out, &report.gate);
    let _ = writeln!(out, "{}", report.title);
    branch_line(&mut out, "baseline ", &report.baseline);
    branch_line(&mut out, "treatment", &report.treatment);
    out.push('\n');

    if !report.sections.is_empty() {
        metric_table(&mut out, "section", &report.sections, width);
        out.push('\n');
    }
    let mut whys = why_rows(report).peekable();
    if whys.peek().is_some() {
        for (row, why) in whys {
            let _ = writeln!(out, "why {}: {why}", row.metric);
        }
        out.push('\n');
    }
    top_counters_table(&mut out, report);
    if !report.resources.is_empty() {
        metric_table(&mut out, "resource", &report.resources, width);
        out.push('\n');
    }
    if !report.assertions.is_empty() {
        assertions(&mut out, &report.assertions);
        out.push('\n');
    }
    for note in &report.notes {
        let _ = writeln!(out, "note: {note}");
    }
    for warning in &report.warnings {
        let _ = writeln!(out, "WARNING: {warning}");
    }
    if !report.notes.is_empty() || !report.warnings.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(
        out,
        "{} ({}): {}",
        status_label(&report.gate),
        report.gate.mode,
        gate_reason(&report.gate)
    );
    out
}

/// The seed's table: each section's top counters by total time, both
/// branches side by side (shown when the run had perf counters on).
fn top_counters_table(out: &mut String, report: &AbReport) {
    let sections = top_counters(report, TOP_COUNTERS);
    if sections.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "top {TOP_COUNTERS} counters per section: total ms (calls), baseline → treatment; share of the section's wall time"
    );
    for section in sections {
        let _ = writeln!(out, "{}", section.section);
        for row in section.rows {
            let line = format!(
                "  {:<24} {:>10.1} ({:.0}) → {:>10.1} ({:.0})  {}",
                row.counter,
                row.baseline_total_ms,
                row.baseline_count,
                row.treatment_total_ms,
                row.treatment_count,
                share_pair(row)
            );
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
    out.push('\n');
}

/// The headline, then what the run rules out and could catch, indented.
fn gate_head(out: &mut String, gate: &GateSummary) {
    let _ = writeln!(out, "{}", headline(gate));
    for (label, text) in gate_details(gate) {
        let _ = writeln!(out, "{DETAIL_INDENT}{label}: {text}");
    }
    out.push('\n');
}

fn branch_line(out: &mut String, side: &str, branch: &BranchLabel) {
    let _ = writeln!(out, "{side}  {} (n = {})", branch.label, branch.iterations);
}

/// The text of one row's cells, before padding.
struct Cells {
    name: String,
    baseline: String,
    treatment: String,
    delta: String,
    verdict: String,
}

impl Cells {
    fn of(row: &MetricRow) -> Self {
        let mut verdict = verdict_with_ratio(row);
        if !row.gated {
            verdict.push_str(", advisory");
        }
        let (baseline, treatment) =
            format::pair(row.baseline_median, row.treatment_median, row.unit);
        Cells {
            name: row.metric.clone(),
            baseline,
            treatment,
            delta: format::signed(row.delta, row.unit),
            verdict,
        }
    }
}

fn metric_table(out: &mut String, first: &str, rows: &[MetricRow], width: usize) {
    let header = Cells {
        name: first.to_owned(),
        baseline: "baseline".to_owned(),
        treatment: "treatment".to_owned(),
        delta: "delta".to_owned(),
        verdict: "verdict".to_owned(),
    };
    let cells: Vec<Cells> = rows.iter().map(Cells::of).collect();
    let column = |pick: fn(&Cells) -> &str, minimum: usize| {
        cells
            .iter()
            .map(|c| chars(pick(c)) + 2)
            .chain([minimum, chars(pick(&header)) + 2])
            .max()
            .unwrap_or(minimum)
    };
    let baseline_w = column(|c| &c.baseline, 10);
    let treatment_w = column(|c| &c.treatment, 12);
    let delta_w = column(|c| &c.delta, 11);
    let fixed = baseline_w + treatment_w + delta_w + 2 + VERDICT_ROOM;
    let longest = cells.iter().map(|c| chars(&c.name) + 1).max().unwrap_or(0);
    let name_w = longest
        .max(DEFAULT_NAME_WIDTH)
        .min(width.saturating_sub(fixed))
        .max(MIN_NAME_WIDTH);

    for row in std::iter::once(&header).chain(&cells) {
        let name = shorten(&row.name, name_w - 1);
        let _ = writeln!(
            out,
            "{name:<name_w$}{:>baseline_w$}{:>treatment_w$}{:>delta_w$}  {}",
            row.baseline, row.treatment, row.delta, row.verdict
        );
    }
}

fn assertions(out: &mut String, rows: &[AssertionRow]) {
    let name_w = rows.iter().map(|r| chars(&r.name)).max().unwrap_or(0);
    let _ = writeln!(out, "assertions (baseline | treatment)");
    for row in rows {
        let status = AssertionStatus::of(row);
        let _ = writeln!(
            out,
            "{}  {:<name_w$}  {} | {}",
            status.tag(),
            row.name,
            format::fraction(row.baseline_passed, row.baseline_total),
            format::fraction(row.treatment_passed, row.treatment_total),
        );
        if let Some(diff) = row
            .diff
            .as_deref()
            .filter(|_| status != AssertionStatus::Pass)
        {
            for line in diff.lines() {
                let _ = writeln!(out, "{DIFF_INDENT}{line}");
            }
        }
    }
}

fn chars(text: &str) -> usize {
    text.chars().count()
}

/// `text` cut to `max` characters, the last one an ellipsis when cut.
fn shorten(text: &str, max: usize) -> String {
    if chars(text) <= max {
        return text.to_owned();
    }
    let mut short: String = text.chars().take(max.saturating_sub(1)).collect();
    short.push('…');
    short
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_names_are_shortened() {
        assert_eq!(shorten("abcdef", 4), "abc…");
        assert_eq!(shorten("§abc", 4), "§abc");
    }

    #[test]
    fn an_empty_report_still_starts_and_ends_with_the_gate() {
        let text = render(&crate::testing::empty_report(), 80);
        assert!(text.starts_with("GATE PASS: no regression\n"), "{text}");
        assert!(text.ends_with(
            "GATE PASS (no-regression): every gated metric and assertion is within bounds\n"
        ));
    }
}
