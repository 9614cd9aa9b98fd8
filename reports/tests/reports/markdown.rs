//! The pull-request summary: gate headline, tables, diff blocks, alerts.

use soakgate_reports::markdown;

use crate::fixture;

#[test]
fn has_the_headline_tables_and_a_diff_block() {
    let md = markdown::render(&fixture::report());
    assert!(
        md.starts_with("## ❌ GATE FAIL: regression in \\`§C.1b deliver invoice\\`, "),
        "{md}"
    );
    assert!(md.contains("| section | baseline | treatment | delta | ratio [90% CI] | verdict |\n|---|---:|---:|---:|---|---|\n"));
    assert!(md.contains(
        "| §C.2 Bob pays | 62.0 s | 148.0 s | +86.0 s | 2.38x [2.17, 2.61] | **regression** |"
    ));
    assert!(md.contains(
        "| **total** | 631.0 s | 805.0 s | **+174.0 s** | 1.28x [1.22, 1.33] | **regression** |"
    ));
    assert!(md.contains(
        "| §D.4 IPFS-only recovery | 219.0 s | 238.0 s | +19.0 s | 1.09x [1.01, ∞] | cannot tell |"
    ));
    assert!(md.contains("| resource | baseline | treatment |"));
    assert!(md.contains("| bob-peer1-vs-peer2-after | 5/5 | 0/5 | ❌ **regressed** |"));
    assert!(md.contains(&format!("```diff\n{}\n```", fixture::BOB_DIFF)));
}

#[test]
fn rules_out_and_could_catch_follow_the_headline() {
    let md = markdown::render(&fixture::passing(fixture::report()));
    let lines: Vec<&str> = md.lines().collect();
    assert!(
        lines[0].starts_with("## ✅ GATE PASS: no regression; rules out a slowdown above 3.2%"),
        "{md}"
    );
    assert_eq!(lines[1], "");
    assert!(
        lines[2].starts_with("- **Rules out:** a slowdown above 3.2% in any gated metric"),
        "{md}"
    );
    assert!(
        lines[3].starts_with("- **Could catch:** at 5 iterations per side this gate catches"),
        "{md}"
    );
}

#[test]
fn warnings_notes_and_manifest() {
    let report = fixture::report();
    let md = markdown::render(&report);
    assert!(md.contains(
        "> [!WARNING]\n> - baseline run-2: other processes used 38% of the machine during the run\n"
    ));
    assert!(md.contains("p &lt; 0.05 alone decides nothing"));
    assert!(md.contains("<details>\n<summary>Manifest</summary>"));
    assert!(md.contains("\"SPHERE_PROOF_CHECK\": \"pairwise\""));
    assert!(
        md.contains("| §C.2 Bob pays | verify\\_proofs | 8200.0 | 140 | 61200.0 | 4900 | 7.46x |")
    );

    let mut quiet = report;
    quiet.warnings.clear();
    assert!(!markdown::render(&quiet).contains("[!WARNING]"));
}

#[test]
fn names_cannot_break_the_table() {
    let mut report = fixture::report();
    report.sections[0].metric = "a | b <script>".into();
    let md = markdown::render(&report);
    assert!(md.contains("| a \\| b &lt;script&gt; | 55.0 s |"));
    assert!(!md.contains("<script>"));
}

#[test]
fn markdown_snapshot() {
    insta::assert_snapshot!(markdown::render(&fixture::report()));
}
