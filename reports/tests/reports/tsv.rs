//! TSV headers, row counts, and cells that parse back to the fixture.

use soakgate_reports::tsv;

use crate::fixture;

fn rows(text: &str) -> Vec<Vec<&str>> {
    assert!(text.ends_with('\n'));
    text.lines()
        .map(|line| line.split('\t').collect())
        .collect()
}

fn parse(cell: &str) -> f64 {
    cell.parse()
        .unwrap_or_else(|e| panic!("`{cell}` is not a number: {e}"))
}

#[test]
fn compare_has_one_row_per_section_and_parses_back() {
    let report = fixture::report();
    let text = tsv::compare(&report);
    let table = rows(&text);
    assert_eq!(
        table[0],
        [
            "section",
            "baseline_median",
            "treatment_median",
            "delta",
            "ratio",
            "ci_low",
            "ci_high",
            "ci_level",
            "detectable",
            "verdict"
        ]
    );
    assert_eq!(table.len(), 1 + report.sections.len());
    assert!(table.iter().all(|row| row.len() == 10));
    assert_eq!(table.last().unwrap()[0], "total");

    for (cells, row) in table[1..].iter().zip(&report.sections) {
        assert_eq!(cells[0], row.metric);
        assert_eq!(parse(cells[1]), row.baseline_median);
        assert_eq!(parse(cells[2]), row.treatment_median);
        assert_eq!(parse(cells[3]), row.delta);
        assert!((parse(cells[4]) - row.ratio).abs() < 5e-5);
        assert_eq!(parse(cells[7]), row.ci_level);
        assert_eq!(cells[9], row.verdict.to_string());
    }
    let bob = table.iter().find(|row| row[0] == "§C.2 Bob pays").unwrap();
    assert_eq!(
        bob[1..],
        [
            "62.000",
            "148.000",
            "86.000",
            "2.3800",
            "2.1700",
            "2.6100",
            "0.9000",
            "1.2710",
            "regression"
        ]
    );
}

#[test]
fn the_level_follows_the_rows() {
    let mut report = fixture::report();
    for row in &mut report.sections {
        row.ci_level = 0.95;
    }
    let text = tsv::compare(&report);
    let table = rows(&text);
    assert_eq!(table[0].join("\t"), tsv::COMPARE_HEADER);
    assert!(table[1..].iter().all(|row| row[7] == "0.9500"));
}

#[test]
fn an_unbounded_interval_is_an_empty_cell() {
    let text = tsv::compare(&fixture::report());
    let table = rows(&text);
    let recovery = table
        .iter()
        .find(|row| row[0] == "§D.4 IPFS-only recovery")
        .unwrap();
    assert_eq!(recovery[5], "1.0100");
    assert_eq!(recovery[6], "");
    assert_eq!(
        recovery[8], "",
        "nothing is detectable through an unbounded interval"
    );
    assert_eq!(recovery[9], "cannot tell");
}

#[test]
fn resources_carry_metric_and_unit_first() {
    let report = fixture::report();
    let text = tsv::resources(&report);
    let table = rows(&text);
    assert_eq!(
        table[0],
        [
            "metric",
            "unit",
            "baseline_median",
            "treatment_median",
            "delta",
            "ratio",
            "ci_low",
            "ci_high",
            "ci_level",
            "detectable",
            "verdict"
        ]
    );
    assert_eq!(table.len(), 1 + report.resources.len());
    assert!(table.iter().all(|row| row.len() == 11));
    assert_eq!(table[0].join("\t"), tsv::RESOURCES_HEADER);
    let rss = &table[1];
    assert_eq!(rss[..2], ["peer1 mean RSS", "bytes"]);
    assert!((parse(rss[2]) - report.resources[0].baseline_median).abs() < 1e-3);
    let cpu = table.iter().find(|row| row[0] == "peer1 mean CPU").unwrap();
    assert_eq!(cpu[1], "%");
    assert_eq!(parse(cpu[3]), 163.0);
    assert_eq!(cpu[8], "0.9000");
    assert_eq!(cpu.last().copied(), Some("regression"));
}

#[test]
fn counters_keep_the_top_five_per_section() {
    let report = fixture::report();
    let text = tsv::counters(&report);
    let table = rows(&text);
    assert_eq!(
        table[0],
        [
            "section",
            "counter",
            "baseline_total_ms",
            "baseline_count",
            "treatment_total_ms",
            "treatment_count",
            "ratio",
            "baseline_share",
            "treatment_share"
        ]
    );
    // §1: 2 counters, §C.2: 7 cut to 5, §D.4: 3.
    assert_eq!(table.len(), 1 + 2 + 5 + 3);
    for cut in fixture::CUT_COUNTERS {
        assert!(table.iter().all(|row| row[1] != cut), "{cut} should be cut");
    }
    let bob: Vec<&str> = table
        .iter()
        .filter(|row| row[0] == "§C.2 Bob pays")
        .map(|row| row[1])
        .collect();
    assert_eq!(
        bob,
        [
            "verify_proofs",
            "flush",
            "fetch_car",
            "pin_car",
            "list_active_bundles"
        ]
    );
    let verify = table
        .iter()
        .find(|row| row[0] == "§C.2 Bob pays" && row[1] == "verify_proofs")
        .unwrap();
    assert_eq!(parse(verify[2]), 8200.0);
    assert_eq!(parse(verify[5]), 4900.0);
    assert!((parse(verify[6]) - 61200.0 / 8200.0).abs() < 1e-4);
}

#[test]
fn attribution_lists_every_category_of_every_busy_peer_and_adds_up() {
    let report = fixture::report();
    let text = tsv::attribution(&report);
    let table = rows(&text);
    assert_eq!(table[0].join("\t"), tsv::ATTRIBUTION_HEADER);
    // Two peers in §C.2, eight categories each.
    assert_eq!(table.len(), 1 + 2 * 8);
    let backoff = table
        .iter()
        .find(|row| row[1] == "peer1" && row[2] == "backoff")
        .unwrap();
    assert_eq!(
        (parse(backoff[3]), parse(backoff[4]), parse(backoff[5])),
        (0.0, 12.0, 12.0)
    );
    let treatment: f64 = table[1..]
        .iter()
        .filter(|row| row[1] == "peer1")
        .map(|row| parse(row[4]))
        .sum();
    assert_eq!(treatment, parse(backoff[7]));
}
