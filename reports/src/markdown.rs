//! The GitHub-flavoured summary posted on a pull request (`summary.md`).
//!
//! Order: the gate's headline as a heading with a mark (✅ pass, ❌ fail,
//! ⚠️ cannot tell, ⏹ interrupted, 🛠 infrastructure failure), what the run
//! rules out and could catch, the title, branches and the gate's reasons;
//! the section table (`| section | baseline | treatment | delta | ratio [90% CI] | verdict |`,
//! the header naming the level the intervals were computed at),
//! the resources table, the assertions table with failing diffs in ```` ```diff ````
//! blocks, warnings as a `> [!WARNING]` alert, notes, and collapsed
//! `<details>` with the top counters and the manifest. All report text is
//! escaped, so a section name cannot break a table or inject HTML.

use std::fmt::Write as _;

use crate::escape::{code_fence, markdown as md};
use crate::format;
use crate::model::{
    AbReport, AssertionRow, GateStatus, GateSummary, MetricRow, TOTAL_METRIC, Verdict,
};
use crate::present::{
    AssertionStatus, TOP_COUNTERS, capitalized, counter_ratio, gate_details, headline, ratio_cell,
    seconds_pair, share_pair, shared_level, top_counters, why_rows,
};

/// Renders the pull-request summary.
pub fn render(report: &AbReport) -> String {
    let mut out = String::new();
    head(&mut out, report);
    if !report.warnings.is_empty() {
        out.push_str("> [!WARNING]\n");
        for warning in &report.warnings {
            let _ = writeln!(out, "> - {}", md(warning));
        }
        out.push('\n');
    }
    if !report.sections.is_empty() {
        out.push_str("### Wall time per section\n\n");
        metric_table(&mut out, "section", &report.sections);
        why(&mut out, report);
    }
    if !report.resources.is_empty() {
        out.push_str("### Resources\n\n");
        metric_table(&mut out, "resource", &report.resources);
    }
    if !report.assertions.is_empty() {
        out.push_str("### Assertions\n\n");
        assertions(&mut out, &report.assertions);
    }
    if !report.notes.is_empty() {
        out.push_str("### Notes\n\n");
        for note in &report.notes {
            let _ = writeln!(out, "- {}", md(note));
        }
        out.push('\n');
    }
    attribution(&mut out, report);
    counters(&mut out, report);
    manifest(&mut out, report);
    out
}

fn head(out: &mut String, report: &AbReport) {
    let _ = writeln!(
        out,
        "## {} {}\n",
        mark(&report.gate),
        md(&headline(&report.gate))
    );
    let details = gate_details(&report.gate);
    for (label, text) in &details {
        let _ = writeln!(out, "- **{}:** {}", capitalized(label), md(text));
    }
    if !details.is_empty() {
        out.push('\n');
    }
    let _ = writeln!(out, "**{}**\n", md(&report.title));
    let _ = writeln!(
        out,
        "- baseline: {} (n = {})\n- treatment: {} (n = {})\n- generated: {}\n",
        md(&report.baseline.label),
        report.baseline.iterations,
        md(&report.treatment.label),
        report.treatment.iterations,
        md(&report.generated_at)
    );
    if !report.gate.reasons.is_empty() {
        out.push_str("**Gate reasons**\n\n");
        for reason in &report.gate.reasons {
            let _ = writeln!(out, "- {}", md(reason));
        }
        out.push('\n');
    }
}

/// The heading's mark, by outcome: an undecided gate is a warning even
/// when it fails the job, since the evidence, not the code, is what failed.
fn mark(gate: &GateSummary) -> &'static str {
    match gate.status {
        GateStatus::Pass => "✅",
        GateStatus::Fail => "❌",
        GateStatus::CannotTell => "⚠️",
        GateStatus::Interrupted => "⏹",
        GateStatus::Infrastructure => "🛠",
    }
}

fn metric_table(out: &mut String, first: &str, rows: &[MetricRow]) {
    let level = shared_level(rows);
    let _ = writeln!(
        out,
        "| {first} | baseline | treatment | delta | {} | verdict |\n|---|---:|---:|---:|---|---|",
        format::ratio_header(level)
    );
    for row in rows {
        let strong = |text: String| {
            if row.metric == TOTAL_METRIC {
                format!("**{text}**")
            } else {
                text
            }
        };
        let mut verdict = match row.verdict {
            Verdict::Regression | Verdict::Improvement => format!("**{}**", row.verdict),
            Verdict::NoRegression | Verdict::CannotTell => row.verdict.to_string(),
        };
        if !row.gated {
            verdict.push_str(" (advisory)");
        }
        let (baseline, treatment) =
            format::pair(row.baseline_median, row.treatment_median, row.unit);
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {verdict} |",
            strong(md(&row.metric)),
            baseline,
            treatment,
            strong(format::signed(row.delta, row.unit)),
            ratio_cell(row, level),
        );
    }
    out.push('\n');
}

fn assertions(out: &mut String, rows: &[AssertionRow]) {
    out.push_str("| assertion | baseline | treatment | status |\n|---|---:|---:|---|\n");
    for row in rows {
        let status = match AssertionStatus::of(row) {
            AssertionStatus::Pass => "✅ pass",
            AssertionStatus::Fail if row.regressed => "❌ **regressed**",
            AssertionStatus::Fail => "❌ **fails on treatment**",
            AssertionStatus::BaselineFailed => "⚠️ fails on baseline",
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {status} |",
            md(&row.name),
            format::fraction(row.baseline_passed, row.baseline_total),
            format::fraction(row.treatment_passed, row.treatment_total),
        );
    }
    out.push('\n');
    for row in rows {
        let Some(diff) = row.diff.as_deref() else {
            continue;
        };
        if AssertionStatus::of(row) == AssertionStatus::Pass {
            continue;
        }
        let fence = code_fence(diff);
        let _ = writeln!(
            out,
            "**{}**\n\n{fence}diff\n{}\n{fence}\n",
            md(&row.name),
            diff.trim_end_matches('\n')
        );
    }
}

/// One line per section that got slower or faster: which kind of time
/// moved, and which counter with it.
fn why(out: &mut String, report: &AbReport) {
    let mut any = false;
    for (row, why) in why_rows(report) {
        if !any {
            out.push_str("**Why**\n\n");
            any = true;
        }
        let _ = writeln!(
            out,
            "- {} ({}, {}): {}",
            md(&row.metric),
            row.verdict,
            format::signed(row.delta, row.unit),
            md(why)
        );
    }
    if any {
        out.push('\n');
    }
}

/// Where each peer's wall time went, per section: seconds, baseline →
/// treatment.
fn attribution(out: &mut String, report: &AbReport) {
    let Some(first) = report.attribution.first() else {
        return;
    };
    out.push_str("<details>\n<summary>Where the time went (seconds, medians, baseline → treatment)</summary>\n\n| section | peer | wall |");
    for part in &first.parts {
        let _ = write!(out, " {} |", md(&part.category));
    }
    out.push_str("\n|---|---|---:|");
    for _ in &first.parts {
        out.push_str("---:|");
    }
    out.push('\n');
    for row in &report.attribution {
        let _ = write!(
            out,
            "| {} | {} | {} |",
            md(&row.section),
            md(&row.role),
            seconds_pair(row.baseline_wall_s, row.treatment_wall_s)
        );
        for part in &row.parts {
            let _ = write!(
                out,
                " {} |",
                seconds_pair(part.baseline_s, part.treatment_s)
            );
        }
        out.push('\n');
    }
    out.push_str("\nEach peer's wall time is split into CPU (its process tree's clock), backoff after 429s and 5xx, waits on the aggregator, gateway and relay, polling and local storage (the SDK's wall-clock unions), in that order of precedence where they overlap; \"other\" is the rest: idle, or waiting on the other peer.\n\n</details>\n\n");
}

fn counters(out: &mut String, report: &AbReport) {
    let sections = top_counters(report, TOP_COUNTERS);
    if sections.is_empty() {
        return;
    }
    out.push_str("<details>\n<summary>Top counters per section (total ms, medians)</summary>\n\n");
    out.push_str("| section | counter | baseline ms | count | treatment ms | count | ratio | share of wall |\n");
    out.push_str("|---|---|---:|---:|---:|---:|---:|---:|\n");
    for section in sections {
        for row in section.rows {
            let ratio = counter_ratio(row).map_or_else(String::new, format::ratio);
            let _ = writeln!(
                out,
                "| {} | {} | {:.1} | {:.0} | {:.1} | {:.0} | {ratio} | {} |",
                md(section.section),
                md(&row.counter),
                row.baseline_total_ms,
                row.baseline_count,
                row.treatment_total_ms,
                row.treatment_count,
                share_pair(row),
            );
        }
    }
    out.push_str("\n</details>\n\n");
}

fn manifest(out: &mut String, report: &AbReport) {
    if report.manifest.is_null() {
        return;
    }
    let json = serde_json::to_string_pretty(&report.manifest)
        .unwrap_or_else(|e| format!("manifest cannot be shown: {e}"));
    let fence = code_fence(&json);
    let _ = writeln!(
        out,
        "<details>\n<summary>Manifest</summary>\n\n{fence}json\n{json}\n{fence}\n\n</details>"
    );
}
