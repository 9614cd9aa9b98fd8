//! JUnit XML: one suite, one case per gated metric and per assertion, and a
//! `gate` case when the run reached no verdict.

use quick_junit::{NonSuccessKind, Report, TestCase, TestCaseStatus};
use soakgate_reports::junit;
use soakgate_reports::model::Verdict;

use crate::fixture;

fn parse(xml: &str) -> Report {
    Report::deserialize_from_str(xml).unwrap_or_else(|e| panic!("invalid junit: {e}\n{xml}"))
}

fn case<'a>(report: &'a Report, name: &str) -> &'a TestCase {
    report.test_suites[0]
        .test_cases
        .iter()
        .find(|case| case.name.as_str() == name)
        .unwrap_or_else(|| panic!("no test case `{name}`"))
}

fn system_out<'a>(report: &'a Report, name: &str) -> &'a str {
    case(report, name)
        .system_out
        .as_ref()
        .map_or("", |out| out.as_str())
}

fn failure_message<'a>(report: &'a Report, name: &str) -> Option<&'a str> {
    match &case(report, name).status {
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
        "cannot tell is not a failure when the gate failed for other reasons"
    );
    assert!(
        system_out(&parsed, "metric: §D.3 sphere clear").starts_with("WARNING: cannot tell: "),
        "{}",
        system_out(&parsed, "metric: §D.3 sphere clear")
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
        row.verdict = Verdict::NoRegression;
    }
    for row in &mut report.resources {
        row.verdict = Verdict::NoRegression;
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

#[test]
fn cannot_tell_fails_only_when_configured_to_fail() {
    let strict = fixture::undecided(fixture::report(), false);
    let parsed = parse(&junit::render(&strict).unwrap());
    assert_eq!(
        failure_message(&parsed, "metric: §D.3 sphere clear"),
        Some(strict.sections[6].reason.as_str())
    );
    assert!(failure_message(&parsed, "metric: §D.4 IPFS-only recovery").is_some());
    assert_eq!(parsed.test_suites[0].failures, 2);

    let lenient = fixture::undecided(fixture::report(), true);
    let parsed = parse(&junit::render(&lenient).unwrap());
    assert_eq!(parsed.test_suites[0].failures, 0);
    assert_eq!(parsed.test_suites[0].errors, 0);
    let out = system_out(&parsed, "metric: §D.4 IPFS-only recovery");
    assert!(
        out.starts_with("WARNING: cannot tell: upper end unbounded"),
        "{out}"
    );
    assert!(
        system_out(&parsed, "metric: §1 Peer1 setup").starts_with("no regression: "),
        "decided metrics carry no warning"
    );
}

#[test]
fn a_run_without_a_verdict_is_an_error_on_the_gate_case() {
    for (report, kind) in [
        (fixture::interrupted(fixture::report()), "interrupted"),
        (infrastructure(), "infrastructure"),
    ] {
        let parsed = parse(&junit::render(&report).unwrap());
        assert_eq!(parsed.test_suites[0].errors, 1, "{kind}");
        let gate = case(&parsed, junit::GATE_CASE);
        let TestCaseStatus::NonSuccess {
            kind: NonSuccessKind::Error,
            message,
            ty,
            ..
        } = &gate.status
        else {
            panic!("{kind}: the gate case is not an error: {:?}", gate.status);
        };
        assert_eq!(ty.as_ref().map(|t| t.as_str()), Some(kind));
        let message = message.as_ref().map_or("", |m| m.as_str());
        assert!(
            !message.contains("GATE PASS") && !message.contains("GATE FAIL"),
            "{message}"
        );
    }
    let parsed = parse(&junit::render(&fixture::report()).unwrap());
    assert!(
        parsed.test_suites[0]
            .test_cases
            .iter()
            .all(|case| case.name.as_str() != junit::GATE_CASE),
        "a decided gate has no gate case"
    );
}

fn infrastructure() -> soakgate_reports::AbReport {
    let mut report = fixture::interrupted(fixture::report());
    report.gate.status = soakgate_reports::model::GateStatus::Infrastructure;
    report.gate.headline =
        "INFRASTRUCTURE FAILURE: testnet did not start; no verdict on either branch".into();
    report
}
