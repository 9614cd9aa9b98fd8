//! JUnit XML: one suite, one case per gated metric and per assertion.

use quick_junit::{Report, TestCaseStatus};
use soakgate_reports::junit;
use soakgate_reports::model::Verdict;

use crate::fixture;

fn parse(xml: &str) -> Report {
    Report::deserialize_from_str(xml).unwrap_or_else(|e| panic!("invalid junit: {e}\n{xml}"))
}

fn failure_message<'a>(report: &'a Report, name: &str) -> Option<&'a str> {
    let case = report.test_suites[0]
        .test_cases
        .iter()
        .find(|case| case.name.as_str() == name)
        .unwrap_or_else(|| panic!("no test case `{name}`"));
    match &case.status {
        TestCaseStatus::Success { .. } => None,
        TestCaseStatus::NonSuccess { message, .. } => {
            Some(message.as_ref().map_or("", |m| m.as_str()))
        }
        TestCaseStatus::Skipped { .. } => panic!("`{name}` skipped"),
    }
}

#[test]
fn one_case_per_gated_metric_and_assertion() {
    let report = fixture::report();
    let xml = junit::render(&report).unwrap();
    let gated = report
        .sections
        .iter()
        .chain(&report.resources)
        .filter(|r| r.gated)
        .count();
    let tests = gated + report.assertions.len();
    let failures = fixture::gated_regressions(&report) + 1;
    assert_eq!((tests, failures), (9 + 3 + 6, 5 + 1 + 1));
    let suite_tag = xml
        .lines()
        .find(|line| line.trim_start().starts_with("<testsuite "))
        .unwrap_or_else(|| panic!("no <testsuite in\n{xml}"));
    assert!(suite_tag.contains("name=\"soak gate\""), "{suite_tag}");
    assert!(
        suite_tag.contains(&format!(" tests=\"{tests}\"")),
        "{suite_tag}"
    );
    assert!(
        suite_tag.contains(&format!(" failures=\"{failures}\"")),
        "{suite_tag}"
    );

    let parsed = parse(&xml);
    assert_eq!(parsed.test_suites.len(), 1);
    let suite = &parsed.test_suites[0];
    assert_eq!(suite.name.as_str(), "soak gate");
    assert_eq!(suite.tests, tests);
    assert_eq!(suite.failures, failures);
    assert_eq!(suite.test_cases.len(), tests);
}

#[test]
fn failures_carry_the_reason_or_the_diff() {
    let parsed = parse(&junit::render(&fixture::report()).unwrap());
    assert_eq!(
        failure_message(&parsed, "metric: §C.2 Bob pays"),
        Some("one-sided 95% lower bound 2.17 is above 1 + δ = 1.05")
    );
    assert_eq!(failure_message(&parsed, "metric: §1 Peer1 setup"), None);
    assert_eq!(
        failure_message(&parsed, "metric: §D.3 sphere clear"),
        None,
        "inconclusive is not a failure"
    );
    assert_eq!(
        failure_message(&parsed, "assertion: alice-peer1-tokens"),
        None
    );
    let bob = failure_message(&parsed, "assertion: bob-peer1-vs-peer2-after").unwrap();
    assert!(
        bob.contains("regressed") && bob.contains("+UCT: 199.999999999989 (2 tokens)"),
        "{bob}"
    );
    let names: Vec<&str> = parsed.test_suites[0]
        .test_cases
        .iter()
        .map(|c| c.name.as_str())
        .collect();
    assert!(
        !names.contains(&"metric: peer1 max RSS"),
        "advisory metrics have no case"
    );
}

#[test]
fn must_improve_fails_a_total_that_did_not_improve() {
    let mut report = fixture::report();
    report.gate.mode = "must-improve".into();
    for row in &mut report.sections {
        row.verdict = Verdict::NoChange;
    }
    for row in &mut report.resources {
        row.verdict = Verdict::NoChange;
    }
    report.assertions.truncate(5);
    report.assertions[0].baseline_passed = 4;

    let parsed = parse(&junit::render(&report).unwrap());
    assert!(failure_message(&parsed, "metric: total").is_some());
    assert!(failure_message(&parsed, "metric: §C.2 Bob pays").is_none());
    assert!(
        failure_message(&parsed, "assertion: alice-peer1-before-vs-after").is_some(),
        "must-improve needs every iteration of both branches to pass"
    );
    assert_eq!(parsed.test_suites[0].failures, 2);

    let total = report
        .sections
        .iter_mut()
        .find(|r| r.metric == "total")
        .unwrap();
    total.verdict = Verdict::Improvement;
    report.assertions[0].baseline_passed = 5;
    let parsed = parse(&junit::render(&report).unwrap());
    assert_eq!(parsed.test_suites[0].failures, 0);
}
