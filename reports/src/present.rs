//! Presentation decisions shared by several renderers: which counters to
//! show, how an assertion's pass-rates read, which metric rows fail the gate
//! in JUnit terms, the gate's headline, the level named by interval headers.
//!
//! Nothing here is statistics: it selects, orders and labels numbers the
//! harness already computed.

use crate::model::{
    AbReport, AssertionRow, CounterRow, GateStatus, GateSummary, MetricRow, TOTAL_METRIC, Verdict,
};

/// How many counters per section the reports show.
pub(crate) const TOP_COUNTERS: usize = 5;

/// One section's most expensive counters, in report order.
pub(crate) struct SectionCounters<'a> {
    /// The section's name.
    pub(crate) section: &'a str,
    /// At most [`TOP_COUNTERS`] rows, by max(baseline, treatment) total time, descending.
    pub(crate) rows: Vec<&'a CounterRow>,
}

/// The top `limit` counters of each section by the larger of the two
/// branches' total time; sections keep the order of their first appearance.
pub(crate) fn top_counters(report: &AbReport, limit: usize) -> Vec<SectionCounters<'_>> {
    let mut sections: Vec<SectionCounters<'_>> = Vec::new();
    for row in &report.counters {
        match sections.iter_mut().find(|s| s.section == row.section) {
            Some(entry) => entry.rows.push(row),
            None => sections.push(SectionCounters {
                section: &row.section,
                rows: vec![row],
            }),
        }
    }
    for entry in &mut sections {
        // Stable sort: equal totals keep the input order. NaN sorts last.
        entry
            .rows
            .sort_by(|a, b| counter_weight(b).total_cmp(&counter_weight(a)));
        entry.rows.truncate(limit);
    }
    sections
}

fn counter_weight(row: &CounterRow) -> f64 {
    let weight = row.baseline_total_ms.max(row.treatment_total_ms);
    if weight.is_nan() {
        f64::NEG_INFINITY
    } else {
        weight
    }
}

/// The section rows (and the total) that carry a "why", in report order.
pub(crate) fn why_rows(report: &AbReport) -> impl Iterator<Item = (&MetricRow, &str)> {
    report
        .sections
        .iter()
        .filter_map(|row| Some((row, row.why.as_deref()?)))
}

/// A counter's share of its section's wall time on each branch,
/// "13% → 41%"; empty when unknown.
pub(crate) fn share_pair(row: &CounterRow) -> String {
    let share = |s: Option<f64>| s.map_or_else(|| "–".to_owned(), |s| format!("{:.0}%", s * 100.0));
    if row.baseline_share.is_none() && row.treatment_share.is_none() {
        return String::new();
    }
    format!(
        "{} → {}",
        share(row.baseline_share),
        share(row.treatment_share)
    )
}

/// Seconds on each branch, "8.0 → 9.0" (one decimal under 100 s, none above).
pub(crate) fn seconds_pair(baseline: f64, treatment: f64) -> String {
    let one = |s: f64| {
        if s.abs() >= 100.0 {
            format!("{s:.0}")
        } else if s.abs() >= 1.0 {
            format!("{s:.1}")
        } else {
            format!("{s:.2}")
        }
    };
    format!("{} → {}", one(baseline), one(treatment))
}

/// Treatment total time over baseline total time, when the baseline spent any.
pub(crate) fn counter_ratio(row: &CounterRow) -> Option<f64> {
    (row.baseline_total_ms > 0.0 && row.treatment_total_ms.is_finite())
        .then(|| row.treatment_total_ms / row.baseline_total_ms)
}

/// How an assertion reads across both branches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AssertionStatus {
    /// Passed in every iteration of both branches.
    Pass,
    /// Regressed, or failed in some treatment iteration.
    Fail,
    /// The treatment passed everywhere, the baseline did not.
    BaselineFailed,
}

impl AssertionStatus {
    /// The assertion's status.
    pub(crate) fn of(row: &AssertionRow) -> Self {
        if row.regressed || row.treatment_passed < row.treatment_total {
            AssertionStatus::Fail
        } else if row.baseline_passed < row.baseline_total {
            AssertionStatus::BaselineFailed
        } else {
            AssertionStatus::Pass
        }
    }

    /// A four-letter tag: PASS, FAIL, WARN.
    pub(crate) fn tag(self) -> &'static str {
        match self {
            AssertionStatus::Pass => "PASS",
            AssertionStatus::Fail => "FAIL",
            AssertionStatus::BaselineFailed => "WARN",
        }
    }
}

/// Whether a gated metric counts as a failed check: a regression; in
/// must-improve mode a `total` that is decided and not an improvement; and a
/// metric the evidence cannot decide when the gate is configured to fail on
/// that (status `CannotTell`, not passed).
pub(crate) fn metric_fails_gate(row: &MetricRow, gate: &GateSummary) -> bool {
    match row.verdict {
        Verdict::Regression => true,
        Verdict::CannotTell => gate.status == GateStatus::CannotTell && !gate.passed,
        Verdict::NoRegression => gate.is_must_improve() && row.metric == TOTAL_METRIC,
        Verdict::Improvement => false,
    }
}

/// Whether a gated metric deserves a warning without failing: undecided,
/// while the gate either passes with a warning or failed for other reasons.
pub(crate) fn metric_warns(row: &MetricRow, gate: &GateSummary) -> bool {
    row.verdict == Verdict::CannotTell && !metric_fails_gate(row, gate)
}

/// Whether an assertion counts as a failed check: it regressed or failed on
/// the treatment; in must-improve mode any failure on either branch counts.
pub(crate) fn assertion_fails_gate(row: &AssertionRow, gate: &GateSummary) -> bool {
    match AssertionStatus::of(row) {
        AssertionStatus::Fail => true,
        AssertionStatus::BaselineFailed => gate.is_must_improve(),
        AssertionStatus::Pass => false,
    }
}

/// Every label a headline may open with, longest first so "GATE PASS WITH
/// WARNING" is not mistaken for "GATE PASS".
const HEADLINE_LABELS: [&str; 5] = [
    "GATE PASS WITH WARNING",
    "INFRASTRUCTURE FAILURE",
    "INTERRUPTED",
    "GATE PASS",
    "GATE FAIL",
];

/// The words that open the headline for the gate's outcome. The renderer
/// decides them from `status` rather than trusting the harness's text, so
/// an undecided gate that passes can never read as a plain "PASS", and a
/// run without a verdict never reads as PASS or FAIL.
pub(crate) fn status_label(gate: &GateSummary) -> &'static str {
    match gate.status {
        GateStatus::Pass => "GATE PASS",
        GateStatus::Fail => "GATE FAIL",
        GateStatus::CannotTell if gate.passed => "GATE PASS WITH WARNING",
        GateStatus::CannotTell => "GATE FAIL",
        GateStatus::Interrupted => "INTERRUPTED",
        GateStatus::Infrastructure => "INFRASTRUCTURE FAILURE",
    }
}

/// The gate's one-line headline: the harness's text under the label its
/// status calls for, e.g. "GATE PASS WITH WARNING: cannot tell (...)" or
/// "INTERRUPTED: partial evidence (...); no verdict".
pub(crate) fn headline(gate: &GateSummary) -> String {
    let body = strip_label(gate.headline.trim());
    let body = if body.is_empty() {
        default_body(gate).to_owned()
    } else {
        body.to_owned()
    };
    format!(
        "{}: {}",
        status_label(gate),
        with_opening(gate.status, body)
    )
}

/// `headline` without a leading "GATE PASS:"-style label, if it has one.
fn strip_label(headline: &str) -> &str {
    HEADLINE_LABELS
        .iter()
        .find_map(|label| headline.strip_prefix(label)?.strip_prefix(':'))
        .map_or(headline, str::trim)
}

/// What a headline says when the harness gave none.
fn default_body(gate: &GateSummary) -> &'static str {
    match gate.status {
        GateStatus::Pass => "no regression",
        GateStatus::Fail => "see the gate's reasons",
        GateStatus::CannotTell => "cannot tell",
        GateStatus::Interrupted => "partial evidence; no verdict",
        GateStatus::Infrastructure => "no verdict on either branch",
    }
}

/// `body`, made to open with the words its status must never lose: an
/// undecided gate says "cannot tell", an interrupted one "partial evidence".
fn with_opening(status: GateStatus, body: String) -> String {
    let opening = match status {
        GateStatus::CannotTell => "cannot tell",
        GateStatus::Interrupted => "partial evidence",
        GateStatus::Pass | GateStatus::Fail | GateStatus::Infrastructure => return body,
    };
    if body.to_lowercase().starts_with(opening) {
        body
    } else {
        format!("{opening} ({body})")
    }
}

/// What the run rules out and what it could have caught, labelled, for the
/// lines right under the headline.
pub(crate) fn gate_details(gate: &GateSummary) -> Vec<(&'static str, &str)> {
    [
        ("rules out", gate.rules_out.as_deref()),
        ("could catch", gate.could_catch.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, text)| Some((label, text?)))
    .collect()
}

/// `label` with its first letter in upper case, for a label that starts a
/// line ("Rules out:") rather than following an indent ("rules out:").
pub(crate) fn capitalized(label: &str) -> String {
    let mut chars = label.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// The gate's first reason, with a count of the others, or a fallback.
pub(crate) fn gate_reason(gate: &GateSummary) -> String {
    match gate.reasons.split_first() {
        Some((first, [])) => first.clone(),
        Some((first, rest)) => format!("{first} (and {} more)", rest.len()),
        None => match gate.status {
            GateStatus::Pass => "every gated metric and assertion is within bounds",
            GateStatus::Fail => "no reason given",
            GateStatus::CannotTell => "some gated metric is undecided",
            GateStatus::Interrupted => "the run was interrupted",
            GateStatus::Infrastructure => "an iteration failed outside both branches",
        }
        .to_owned(),
    }
}

/// A verdict with the ratio when the verdict is decided against 1.
pub(crate) fn verdict_with_ratio(row: &MetricRow) -> String {
    match row.verdict {
        Verdict::Regression | Verdict::Improvement => {
            format!("{} ({})", row.verdict, crate::format::ratio(row.ratio))
        }
        Verdict::NoRegression | Verdict::CannotTell => row.verdict.to_string(),
    }
}

/// The interval level a table or chart names once for all its rows: the
/// first gated row's (the harness uses one level per report), else the
/// first row's.
pub(crate) fn shared_level(rows: &[MetricRow]) -> Option<f64> {
    rows.iter()
        .find(|row| row.gated)
        .or_else(|| rows.first())
        .map(|row| row.ci_level)
}

/// A row's ratio with its interval under a header naming `shared`; a row
/// at another level says its own, so no interval is read at the wrong one.
pub(crate) fn ratio_cell(row: &MetricRow, shared: Option<f64>) -> String {
    let same = shared.is_some_and(|level| (level - row.ci_level).abs() < 1e-9);
    if same {
        crate::format::ratio_with_interval(row)
    } else {
        crate::format::ratio_with_level(row)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counter(section: &str, counter: &str, base: f64, treat: f64) -> CounterRow {
        CounterRow {
            section: section.into(),
            counter: counter.into(),
            baseline_total_ms: base,
            baseline_count: 1.0,
            treatment_total_ms: treat,
            treatment_count: 1.0,
            baseline_share: None,
            treatment_share: None,
        }
    }

    #[test]
    fn top_counters_rank_by_the_larger_branch() {
        let rows = vec![
            counter("a", "small", 1.0, 2.0),
            counter("b", "only", 5.0, 5.0),
            counter("a", "treatment-heavy", 1.0, 90.0),
            counter("a", "baseline-heavy", 50.0, 3.0),
            counter("a", "nan", f64::NAN, f64::NAN),
        ];
        let report = AbReport {
            counters: rows,
            ..crate::testing::empty_report()
        };
        let top = top_counters(&report, 2);
        assert_eq!(top.len(), 2);
        assert_eq!(top[0].section, "a");
        let names: Vec<_> = top[0].rows.iter().map(|r| r.counter.as_str()).collect();
        assert_eq!(names, ["treatment-heavy", "baseline-heavy"]);
        assert_eq!(top[1].rows.len(), 1);
    }

    #[test]
    fn assertion_status_reads_both_branches() {
        let mut row = AssertionRow {
            name: "x".into(),
            baseline_passed: 5,
            baseline_total: 5,
            treatment_passed: 5,
            treatment_total: 5,
            regressed: false,
            diff: None,
        };
        assert_eq!(AssertionStatus::of(&row), AssertionStatus::Pass);
        row.baseline_passed = 4;
        assert_eq!(AssertionStatus::of(&row), AssertionStatus::BaselineFailed);
        row.treatment_passed = 0;
        assert_eq!(AssertionStatus::of(&row), AssertionStatus::Fail);
    }

    fn gate(status: GateStatus, passed: bool, headline: &str) -> GateSummary {
        GateSummary {
            status,
            passed,
            headline: headline.into(),
            ..crate::testing::empty_report().gate
        }
    }

    #[test]
    fn headlines_keep_the_harness_text_under_the_status_label() {
        let fail = gate(GateStatus::Fail, false, "GATE FAIL: regression in `total`");
        assert_eq!(headline(&fail), "GATE FAIL: regression in `total`");
        let warn = gate(
            GateStatus::CannotTell,
            true,
            "GATE PASS WITH WARNING: cannot tell (2 of 13 undecided)",
        );
        assert_eq!(
            headline(&warn),
            "GATE PASS WITH WARNING: cannot tell (2 of 13 undecided)"
        );
        let broken = gate(GateStatus::Infrastructure, false, "");
        assert_eq!(
            headline(&broken),
            "INFRASTRUCTURE FAILURE: no verdict on either branch"
        );
    }

    #[test]
    fn a_headline_cannot_contradict_its_status() {
        let warn = gate(GateStatus::CannotTell, true, "GATE PASS: all fine");
        assert_eq!(
            headline(&warn),
            "GATE PASS WITH WARNING: cannot tell (all fine)"
        );
        let strict = gate(GateStatus::CannotTell, false, "cannot tell (1 of 3)");
        assert_eq!(headline(&strict), "GATE FAIL: cannot tell (1 of 3)");
        let cut = gate(
            GateStatus::Interrupted,
            false,
            "GATE FAIL: regression in `x`",
        );
        assert_eq!(
            headline(&cut),
            "INTERRUPTED: partial evidence (regression in `x`)"
        );
    }

    #[test]
    fn undecided_metrics_fail_only_a_gate_configured_to_fail() {
        let row = MetricRow {
            verdict: Verdict::CannotTell,
            ..metric_row()
        };
        let strict = gate(GateStatus::CannotTell, false, "");
        assert!(metric_fails_gate(&row, &strict) && !metric_warns(&row, &strict));
        let lenient = gate(GateStatus::CannotTell, true, "");
        assert!(!metric_fails_gate(&row, &lenient) && metric_warns(&row, &lenient));
        let failed = gate(GateStatus::Fail, false, "");
        assert!(!metric_fails_gate(&row, &failed) && metric_warns(&row, &failed));
    }

    #[test]
    fn a_shared_level_is_the_first_gated_rows() {
        let advisory = MetricRow {
            gated: false,
            ci_level: 0.8,
            ..metric_row()
        };
        let gated = MetricRow {
            ci_level: 0.95,
            ..metric_row()
        };
        let rows = [advisory.clone(), gated];
        assert_eq!(shared_level(&rows), Some(0.95));
        assert_eq!(shared_level(&rows[..1]), Some(0.8));
        assert_eq!(shared_level(&[]), None);
        assert_eq!(ratio_cell(&advisory, Some(0.8)), "1.00x [0.90, 1.10]");
        assert_eq!(
            ratio_cell(&advisory, Some(0.95)),
            "1.00x [0.90, 1.10] (80% CI)"
        );
    }

    fn metric_row() -> MetricRow {
        MetricRow {
            metric: "m".into(),
            unit: crate::model::Unit::Seconds,
            gated: true,
            baseline_median: 1.0,
            treatment_median: 1.0,
            delta: 0.0,
            ratio: 1.0,
            ci_low: Some(0.9),
            ci_high: Some(1.1),
            ci_level: 0.9,
            p_value: 0.5,
            cliffs_delta: 0.0,
            slower_pairs: 12,
            pairs: 25,
            verdict: Verdict::NoRegression,
            reason: "r".into(),
            noise_band: Some(0.05),
            detectable: Some(1.08),
            why: None,
        }
    }
}
