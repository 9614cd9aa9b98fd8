//! `junit.xml` for CI systems: one test suite, "soak gate", with one test
//! case per gated metric and one per assertion, and a `gate` case when the
//! run reached no verdict.
//!
//! A metric case fails when its verdict is a regression; in `must-improve`
//! mode, when it is the `total` row, decided and not an improvement; and
//! when the evidence cannot tell and the gate is configured to fail on that
//! (status `cannot_tell`, not passed). Otherwise a metric that cannot tell
//! passes with a warning in its system-out. The failure message is the
//! row's reason. An assertion case fails when it regressed or failed in any
//! treatment iteration (in `must-improve` mode, in any iteration of either
//! branch); the message carries the diff. An interrupted run or an
//! infrastructure failure adds a `gate` case with an error whose message is
//! the headline, so CI shows the run as broken rather than as a failed check.
//! Case names: `metric: §C.2 Bob pays`, `assertion: bob-peer1-vs-peer2-after`, `gate`.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus, TestSuite};

use crate::ReportError;
use crate::format;
use crate::model::{AbReport, AssertionRow, GateStatus, GateSummary, MetricRow};
use crate::present::{assertion_fails_gate, headline, metric_fails_gate, metric_warns};

/// The name of the single test suite.
pub const SUITE_NAME: &str = "soak gate";

/// The classname of every test case.
const CLASSNAME: &str = "soakgate";

/// The name of the case that carries a run without a verdict.
pub const GATE_CASE: &str = "gate";

/// Renders the JUnit XML document.
///
/// # Errors
///
/// [`ReportError::Junit`] if quick-junit cannot serialize the document.
pub fn render(report: &AbReport) -> Result<String, ReportError> {
    let mut suite = TestSuite::new(SUITE_NAME);
    suite.add_property(("title", report.title.as_str()));
    suite.add_property(("generated_at", report.generated_at.as_str()));
    suite.add_property(("gate_mode", report.gate.mode.as_str()));
    suite.add_property(("gate_status", status_name(report.gate.status)));
    suite.add_property(("headline", headline(&report.gate).as_str()));
    suite.add_property(("baseline", report.baseline.label.as_str()));
    suite.add_property(("treatment", report.treatment.label.as_str()));

    let gated = report
        .sections
        .iter()
        .chain(&report.resources)
        .filter(|row| row.gated);
    suite.add_test_cases(gated.map(|row| metric_case(row, &report.gate)));
    suite.add_test_cases(
        report
            .assertions
            .iter()
            .map(|row| assertion_case(row, &report.gate)),
    );

    suite.add_test_cases(no_verdict_case(&report.gate));

    let mut document = Report::new("soakgate");
    document.add_test_suite(suite);
    Ok(document.to_string()?)
}

/// The status as `verdict.json` spells it, for scripts reading the properties.
fn status_name(status: GateStatus) -> &'static str {
    match status {
        GateStatus::Pass => "pass",
        GateStatus::Fail => "fail",
        GateStatus::CannotTell => "cannot_tell",
        GateStatus::Interrupted => "interrupted",
        GateStatus::Infrastructure => "infrastructure",
    }
}

fn metric_case(row: &MetricRow, gate: &GateSummary) -> TestCase {
    let (baseline, treatment) = format::pair(row.baseline_median, row.treatment_median, row.unit);
    let summary = format!(
        "{}: baseline {}, treatment {}, ratio {}, p = {}, treatment slower in {} of {} pairs",
        row.verdict,
        baseline,
        treatment,
        format::ratio_with_level(row),
        format::p_value(row.p_value),
        row.slower_pairs,
        row.pairs,
    );
    let summary = if metric_warns(row, gate) {
        format!("WARNING: {}: {}\n{summary}", row.verdict, row.reason)
    } else {
        summary
    };
    let status = if metric_fails_gate(row, gate) {
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(row.reason.as_str())
            .set_type(row.verdict.as_str())
            .set_description(match &row.why {
                Some(why) => format!("{}\nwhy: {why}\n{summary}", row.reason),
                None => format!("{}\n{summary}", row.reason),
            });
        status
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(format!("metric: {}", row.metric), status);
    case.set_classname(CLASSNAME);
    case.set_system_out(summary);
    case
}

fn assertion_case(row: &AssertionRow, gate: &GateSummary) -> TestCase {
    let counts = format!(
        "passed in {}/{} baseline and {}/{} treatment iterations",
        row.baseline_passed, row.baseline_total, row.treatment_passed, row.treatment_total
    );
    let status = if assertion_fails_gate(row, gate) {
        let what = if row.regressed { "regressed" } else { "failed" };
        let mut message = format!("assertion {} {what}: {counts}", row.name);
        if let Some(diff) = row.diff.as_deref() {
            message.push('\n');
            message.push_str(diff);
        }
        let mut status = TestCaseStatus::non_success(NonSuccessKind::Failure);
        status
            .set_message(message.as_str())
            .set_type(what)
            .set_description(message);
        status
    } else {
        TestCaseStatus::success()
    };
    let mut case = TestCase::new(format!("assertion: {}", row.name), status);
    case.set_classname(CLASSNAME);
    case.set_system_out(counts);
    case
}

/// An errored `gate` case when the run reached no verdict (interrupted, or
/// broken by infrastructure): neither branch is to blame, so it is an error,
/// not a failure.
fn no_verdict_case(gate: &GateSummary) -> Option<TestCase> {
    let kind = match gate.status {
        GateStatus::Interrupted => "interrupted",
        GateStatus::Infrastructure => "infrastructure",
        GateStatus::Pass | GateStatus::Fail | GateStatus::CannotTell => return None,
    };
    let headline = headline(gate);
    let mut status = TestCaseStatus::non_success(NonSuccessKind::Error);
    status
        .set_message(headline.as_str())
        .set_type(kind)
        .set_description(format!("{headline}\n{}", gate.reasons.join("\n")));
    let mut case = TestCase::new(GATE_CASE, status);
    case.set_classname(CLASSNAME);
    Some(case)
}
