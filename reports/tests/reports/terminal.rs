//! The terminal output opens with the gate's headline, has the seed's
//! table shape and ends with one verdict line.

use soakgate_reports::terminal;

use crate::fixture;

/// A line's cells, split on runs of two or more spaces.
fn cells(line: &str) -> Vec<&str> {
    line.split("  ")
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .collect()
}

fn line_starting<'a>(text: &'a str, prefix: &str) -> &'a str {
    text.lines()
        .find(|line| line.starts_with(prefix))
        .unwrap_or_else(|| panic!("no line starts with `{prefix}` in\n{text}"))
}

#[test]
fn section_table_has_the_seed_shape() {
    let text = terminal::render(&fixture::report(), 100);
    assert_eq!(
        cells(line_starting(&text, "section ")),
        ["section", "baseline", "treatment", "delta", "verdict"]
    );
    assert_eq!(
        cells(line_starting(&text, "§1 Peer1 setup")),
        [
            "§1 Peer1 setup",
            "55.0 s",
            "58.0 s",
            "+3.0 s",
            "no regression"
        ]
    );
    assert_eq!(
        cells(line_starting(&text, "total ")),
        [
            "total",
            "631.0 s",
            "805.0 s",
            "+174.0 s",
            "regression (1.28x)"
        ]
    );
    // Numbers are right-aligned in their columns.
    let header = line_starting(&text, "section ");
    let total = line_starting(&text, "total ");
    let end_of = |line: &str, cell: &str| line.find(cell).unwrap() + cell.len();
    assert_eq!(end_of(header, "delta"), end_of(total, "+174.0 s"));
}

#[test]
fn resources_use_binary_units_and_percent() {
    let text = terminal::render(&fixture::report(), 100);
    assert_eq!(
        cells(line_starting(&text, "peer1 mean RSS")),
        [
            "peer1 mean RSS",
            "1.21 GiB",
            "1.40 GiB",
            "+194.6 MiB",
            "regression (1.16x)"
        ]
    );
    assert_eq!(
        cells(line_starting(&text, "peer1 mean CPU")),
        [
            "peer1 mean CPU",
            "147.0 %",
            "163.0 %",
            "+16.0 %",
            "regression (1.11x), advisory"
        ]
    );
}

#[test]
fn assertions_show_pass_rates_and_the_failing_diff() {
    let text = terminal::render(&fixture::report(), 100);
    assert_eq!(
        cells(line_starting(&text, "PASS  alice-peer1-tokens")),
        ["PASS", "alice-peer1-tokens", "5/5 | 5/5"]
    );
    let fail = line_starting(&text, "FAIL  bob-peer1-vs-peer2-after");
    assert_eq!(
        cells(fail),
        ["FAIL", "bob-peer1-vs-peer2-after", "5/5 | 0/5"]
    );
    let after: Vec<&str> = text
        .lines()
        .skip_while(|l| *l != fail)
        .skip(1)
        .take(5)
        .collect();
    assert_eq!(after[3], "      -UCT: 99.999999999989 (1 token)");
    assert_eq!(after[4], "      +UCT: 199.999999999989 (2 tokens)");
}

#[test]
fn opens_with_the_headline_and_ends_with_one_verdict_line() {
    let report = fixture::report();
    let text = terminal::render(&report, 100);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], report.gate.headline);
    assert_eq!(
        lines[1],
        format!(
            "  could catch: {}",
            report.gate.could_catch.as_deref().unwrap()
        )
    );
    assert_eq!(lines[2], "");
    assert_eq!(lines[3], report.title);
    assert_eq!(
        lines.last().copied(),
        Some(
            "GATE FAIL (no-regression): total wall time regressed: 1.28x [1.22, 1.33], lower bound above 1 + δ = 1.05 (and 3 more)"
        )
    );
    let gate_lines = lines.iter().filter(|l| l.starts_with("GATE ")).count();
    assert_eq!(gate_lines, 2, "the headline and the closing line");
    assert!(text.contains("WARNING: baseline run-2: other processes used 38% of the machine"));
    assert!(!text.contains('\u{1b}'), "no ANSI escapes");

    let text = terminal::render(&fixture::passing(report), 100);
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("GATE PASS: no regression; rules out"));
    assert!(lines[1].starts_with("  rules out: a slowdown above 3.2% in any gated metric"));
    assert!(lines[2].starts_with("  could catch: at 5 iterations per side"));
    assert_eq!(
        lines.last().copied(),
        Some(
            "GATE PASS (no-regression): no-regression: none of 12 gated metrics regressed beyond its tolerance"
        )
    );
}

#[test]
fn narrow_terminals_shorten_names_not_numbers() {
    let text = terminal::render(&fixture::report(), 60);
    let line = line_starting(&text, "§D.1 pre-c");
    assert!(line.contains('…'), "{line}");
    assert!(line.contains("85.0 s") && line.contains("+42.0 s"));
}

#[test]
fn terminal_snapshot() {
    insta::assert_snapshot!(terminal::render(&fixture::report(), 100));
}
