//! The gate's headline across renderers: first and most prominent, never a
//! plain PASS for an undecided gate, never PASS or FAIL without a verdict,
//! and intervals named at the level the rows carry.

use soakgate_reports::model::AbReport;
use soakgate_reports::{html, junit, markdown, terminal};

use crate::fixture;

/// Every text rendering of `report` that shows the gate, by name.
fn renderings(report: &AbReport) -> [(&'static str, String); 4] {
    [
        ("terminal", terminal::render(report, 100)),
        ("markdown", markdown::render(report)),
        ("html", html::render(report)),
        ("junit", junit::render(report).unwrap()),
    ]
}

fn first_line(text: &str) -> &str {
    text.lines().next().unwrap_or_default()
}

#[test]
fn the_headline_comes_first_in_terminal_and_markdown() {
    let reports = [
        fixture::report(),
        fixture::passing(fixture::report()),
        fixture::undecided(fixture::report(), true),
        fixture::undecided(fixture::report(), false),
        fixture::interrupted(fixture::report()),
    ];
    for report in reports {
        let headline = report.gate.headline.as_str();
        assert_eq!(first_line(&terminal::render(&report, 100)), headline);
        let md = markdown::render(&report);
        let heading = first_line(&md);
        assert!(heading.starts_with("## "), "{heading}");
        let unescaped = heading.replace('\\', "");
        assert!(unescaped.ends_with(headline), "{heading}");
    }
}

#[test]
fn markdown_marks_and_html_banners_follow_the_status() {
    let cases = [
        (fixture::report(), "## ❌ GATE FAIL: ", "gate fail"),
        (
            fixture::passing(fixture::report()),
            "## ✅ GATE PASS: ",
            "gate pass",
        ),
        (
            fixture::undecided(fixture::report(), true),
            "## ⚠️ GATE PASS WITH WARNING: cannot tell (",
            "gate cannot-tell",
        ),
        (
            fixture::undecided(fixture::report(), false),
            "## ⚠️ GATE FAIL: cannot tell (",
            "gate cannot-tell",
        ),
        (
            fixture::interrupted(fixture::report()),
            "## ⏹ INTERRUPTED: partial evidence (",
            "gate interrupted",
        ),
    ];
    for (report, heading, banner) in cases {
        let md = markdown::render(&report);
        assert!(md.starts_with(heading), "{}", first_line(&md));
        let page = html::render(&report);
        let header =
            format!("<header class=\"{banner}\"><div class=\"gate-result\" role=\"status\">");
        assert!(page.contains(&header), "no `{header}`");
    }
}

#[test]
fn cannot_tell_that_passes_never_reads_as_a_plain_pass() {
    let mut report = fixture::undecided(fixture::report(), true);
    for headline in [
        report.gate.headline.clone(),
        // A harness that forgot the warning must not turn it into a pass.
        "GATE PASS: 2 of 12 gated metrics undecided".to_owned(),
    ] {
        report.gate.headline = headline;
        for (name, text) in renderings(&report) {
            assert!(
                text.contains("PASS WITH WARNING: cannot tell"),
                "{name}: no warning"
            );
            for (at, _) in text.match_indices("GATE PASS") {
                assert!(
                    text[at..].starts_with("GATE PASS WITH WARNING"),
                    "{name}: a plain pass at `{}`",
                    &text[at..(at + 40).min(text.len())]
                );
            }
        }
    }
}

#[test]
fn an_interrupted_run_reads_partial_evidence_never_pass_or_fail() {
    let mut report = fixture::interrupted(fixture::report());
    for headline in [
        report.gate.headline.clone(),
        "GATE FAIL: regression in `total`".to_owned(),
    ] {
        report.gate.headline = headline;
        for (name, text) in renderings(&report) {
            assert!(
                text.to_lowercase()
                    .contains("interrupted: partial evidence"),
                "{name}: no `interrupted: partial evidence`"
            );
            assert!(
                !text.contains("GATE PASS") && !text.contains("GATE FAIL"),
                "{name}: an interrupted run has no verdict"
            );
        }
        let text = terminal::render(&report, 100);
        assert!(
            first_line(&text)
                .to_lowercase()
                .starts_with("interrupted: partial evidence"),
            "{text}"
        );
    }
}

#[test]
fn rules_out_and_could_catch_sit_under_the_html_headline() {
    let report = fixture::passing(fixture::report());
    let page = html::render(&report);
    let headline = page.find("class=\"gate-result\"").unwrap();
    let rules_out = page
        .find("<strong>Rules out:</strong> a slowdown above 3.2%")
        .unwrap();
    let could_catch = page
        .find("<strong>Could catch:</strong> at 5 iterations per side")
        .unwrap();
    let title = page.find("<h1>").unwrap();
    assert!(headline < rules_out && rules_out < could_catch && could_catch < title);
}

#[test]
fn a_95_percent_level_prints_95_not_90() {
    let mut report = fixture::report();
    for row in report.sections.iter_mut().chain(&mut report.resources) {
        row.ci_level = 0.95;
    }
    let md = markdown::render(&report);
    assert!(md.contains("| ratio [95% CI] |"), "{md}");
    let page = html::render(&report);
    assert!(page.contains("ratio [95% CI]"));
    assert!(page.contains("Treatment / baseline ratio with 95% interval"));
    assert!(page.contains("Resource ratios with 95% interval"));
    assert!(page.contains("line: 95% interval"));
    let xml = junit::render(&report).unwrap();
    assert!(xml.contains("[2.17, 2.61] (95% CI)"), "{xml}");
    for (name, text) in [("markdown", md), ("html", page), ("junit", xml)] {
        assert!(!text.contains("90%"), "{name} still names a 90% interval");
    }
}

#[test]
fn a_row_at_another_level_names_its_own() {
    let mut report = fixture::report();
    report.sections[0].ci_level = 0.95;
    let md = markdown::render(&report);
    assert!(md.contains("| section | baseline | treatment | delta | ratio [95% CI] |"));
    assert!(
        md.contains(
            "| §A.1 Peer2-alice | 31.0 s | 31.0 s | +0.0 s | 1.00x [0.97, 1.03] (90% CI) |"
        )
    );
    assert!(md.contains("| §1 Peer1 setup | 55.0 s | 58.0 s | +3.0 s | 1.03x [0.99, 1.04] |"));
}
