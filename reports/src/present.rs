//! Presentation decisions shared by several renderers: which counters to
//! show, how an assertion's pass-rates read, which metric rows fail the gate
//! in JUnit terms, the gate's headline.
//!
//! Nothing here is statistics: it selects, orders and labels numbers the
//! harness already computed.

use crate::model::{
    AbReport, AssertionRow, CounterRow, GateSummary, MetricRow, TOTAL_METRIC, Verdict,
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

/// Whether a gated metric counts as a failed check: a regression, or in
/// must-improve mode a total that is not an improvement.
pub(crate) fn metric_fails_gate(row: &MetricRow, gate: &GateSummary) -> bool {
    row.verdict == Verdict::Regression
        || (gate.is_must_improve()
            && row.metric == TOTAL_METRIC
            && row.verdict != Verdict::Improvement)
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

/// "GATE PASS (no-regression)" or "GATE FAIL (must-improve)".
pub(crate) fn gate_headline(gate: &GateSummary) -> String {
    let result = if gate.passed { "PASS" } else { "FAIL" };
    format!("GATE {result} ({})", gate.mode)
}

/// The gate's first reason, with a count of the others, or a fallback.
pub(crate) fn gate_reason(gate: &GateSummary) -> String {
    match gate.reasons.split_first() {
        Some((first, [])) => first.clone(),
        Some((first, rest)) => format!("{first} (and {} more)", rest.len()),
        None if gate.passed => "every gated metric and assertion is within bounds".to_owned(),
        None => "no reason given".to_owned(),
    }
}

/// A verdict with the ratio when the verdict is decided against 1.
pub(crate) fn verdict_with_ratio(row: &MetricRow) -> String {
    match row.verdict {
        Verdict::Regression | Verdict::Improvement => {
            format!("{} ({})", row.verdict, crate::format::ratio(row.ratio))
        }
        Verdict::NoChange | Verdict::Inconclusive => row.verdict.to_string(),
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
}
