//! `soak ab` and `soak gate` as a user runs them.
//!
//! The fast tests use the Python fake peer (tests/fixtures) on the smoke
//! scenario, with a known delay where a slowdown is wanted. The acceptance
//! runs on the real SDK are `#[ignore]`d here (minutes each) and run by
//! `.ci/run` with `--ignored`.

mod support;

use std::{
    path::Path,
    process::{Command, Output},
};

use serde_json::Value;
use support::{fixture, git_in, scenario, soak_in, text, workspace_binaries};

fn smoke() -> String {
    scenario("smoke.toml").display().to_string()
}

fn verdict(out: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(out.join("verdict.json")).unwrap()).unwrap()
}

fn metric<'a>(verdict: &'a Value, name: &str) -> &'a Value {
    verdict["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["metric"] == name)
        .unwrap_or_else(|| panic!("no metric {name} in {verdict}"))
}

fn verdict_kind(verdict: &Value, name: &str) -> String {
    metric(verdict, name)["comparison"]["verdict"]["kind"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// `soak gate` on a folder `soak ab` just wrote must reproduce its
/// `verdict.json` byte for byte, and its exit code: the run records how it
/// was judged (the last look's alpha, the labels), so nothing is recomputed
/// differently. Every A/B test folder goes through this.
/// `extra` are the flags `soak ab` was given; its gate flags are passed on.
fn assert_rejudged_identically(out: &Path, ab: &Output, extra: &[&str]) {
    let Ok(before) = std::fs::read(out.join("verdict.json")) else {
        return;
    };
    const GATE_FLAGS: [&str; 8] = [
        "--mode",
        "--min-iterations",
        "--alpha",
        "--noise-band-time",
        "--noise-band-rss",
        "--floor-time-ms",
        "--on-inconclusive",
        "--gate-config",
    ];
    let mut args = vec!["gate", out.to_str().unwrap()];
    for pair in extra.windows(2) {
        if GATE_FLAGS.contains(&pair[0]) {
            args.extend_from_slice(pair);
        }
    }
    let again = soak_in(None, &args, &[]);
    assert_eq!(again.status.code(), ab.status.code(), "{}", text(&again));
    let after = std::fs::read(out.join("verdict.json")).unwrap();
    assert!(
        before == after,
        "soak gate changed verdict.json:\n{}\n---\n{}",
        String::from_utf8_lossy(&before),
        String::from_utf8_lossy(&after)
    );
}

/// The arguments of `soak ab` with the fake peer and testnet on the smoke
/// scenario, both sides distinguished by env; no `--iterations` (auto).
fn fake_args(out: &Path, baseline_env: &str, treatment_env: &str) -> Vec<String> {
    let peer = format!("python3 {}", fixture("fake_peer.py").display());
    let testnet = format!("python3 {}", fixture("fake_testnet.py").display());
    [
        "ab",
        "--scenario",
        &smoke(),
        "--peer-cmd",
        &peer,
        "--testnet-cmd",
        &testnet,
        "--baseline-env",
        baseline_env,
        "--treatment-env",
        treatment_env,
        "--interval-ms",
        "200",
        "--out",
        out.to_str().unwrap(),
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `soak ab` with the fake peer on both sides, distinguished by env.
fn fake_ab(
    out: &Path,
    iterations: &str,
    baseline_env: &str,
    treatment_env: &str,
    extra: &[&str],
) -> Output {
    let mut args = fake_args(out, baseline_env, treatment_env);
    args.extend(["--iterations", iterations].map(str::to_owned));
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = soak_in(None, &args, &[]);
    assert_rejudged_identically(out, &output, extra);
    output
}

#[test]
fn a_against_a_passes_with_no_regression_and_writes_every_report() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("aa");
    // Every op takes 50 ms on both sides, so the scheduler's millisecond of
    // noise stays far inside the 5% band: a regression here would be the
    // harness's fault, not chance.
    let output = fake_ab(
        &out,
        "5",
        "FAKE_PEER_OP_DELAY_S=0.05",
        "FAKE_PEER_OP_DELAY_S=0.05",
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict["gate"]["passed"], true);
    assert_eq!(verdict["gate"]["status"], "pass");
    let headline = verdict["gate"]["headline"].as_str().unwrap();
    assert!(
        headline.starts_with("GATE PASS: no regression beyond tolerance"),
        "{headline}"
    );
    let rules_out = verdict["gate"]["rules_out"].as_str().unwrap();
    assert!(rules_out.starts_with("a slowdown above"), "{rules_out}");
    assert!(text(&output).starts_with("GATE PASS"), "{}", text(&output));
    for m in verdict["metrics"].as_array().unwrap() {
        assert_ne!(m["comparison"]["verdict"]["kind"], "regression", "{m}");
    }
    for file in [
        "manifest.json",
        "compare.tsv",
        "resources-compare.tsv",
        "counters-compare.tsv",
        "summary.md",
        "junit.xml",
        "report.html",
        "verdict.json",
        "baseline/run-5/summary-metrics.json",
        "treatment/run-5/summary-metrics.json",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let compare = std::fs::read_to_string(out.join("compare.tsv")).unwrap();
    assert!(compare.starts_with(
        "section\tbaseline_median\ttreatment_median\tdelta\tratio\tci_low\tci_high\tci_level\tdetectable\tverdict"
    ));
    // ABBA: iteration folders were written in an interleaved order.
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(html.contains("<svg") && !html.contains("<script src"));
}

/// Warm-up iterations run before the first block, are kept for reading,
/// and are not evidence: the verdict counts only `run-K`, and `soak gate`
/// (which `fake_ab` runs) re-judges the folder to the same verdict.
#[test]
fn warm_up_iterations_are_kept_but_never_judged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("warm");
    let output = fake_ab(
        &out,
        "3",
        "FAKE_PEER_OP_DELAY_S=0.05",
        "FAKE_PEER_OP_DELAY_S=0.05",
        &["--warmup", "2"],
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output)
    );
    for side in ["baseline", "treatment"] {
        for kept in ["warmup-1", "warmup-2", "run-3"] {
            let file = out.join(side).join(kept).join("summary-metrics.json");
            assert!(file.exists(), "{side}/{kept} missing");
        }
        assert!(!out.join(side).join("run-4").exists());
    }
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["warmup"], 2);
    let total = metric(&verdict(&out), "total").clone();
    assert_eq!(total["baseline"].as_array().unwrap().len(), 3, "{total}");
    assert_eq!(total["treatment"].as_array().unwrap().len(), 3, "{total}");

    let none = dir.path().join("none");
    let output = fake_ab(
        &none,
        "3",
        "FAKE_PEER_OP_DELAY_S=0.05",
        "FAKE_PEER_OP_DELAY_S=0.05",
        &["--warmup", "0"],
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output)
    );
    assert!(!none.join("baseline/warmup-1").exists());
}

#[test]
fn must_improve_fails_when_nothing_improved() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("mi");
    let output = fake_ab(
        &out,
        "3",
        "FAKE_PEER_DELAY_S=0.05",
        "FAKE_PEER_DELAY_S=0.05",
        &["--mode", "must-improve"],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let reasons = verdict(&out)["gate"]["reasons"].to_string();
    assert!(reasons.contains("total"), "{reasons}");
}

#[test]
fn a_known_slowdown_is_a_regression_and_soak_gate_rejudges_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("slow");
    let output = fake_ab(
        &out,
        "5",
        "FAKE_PEER_DELAY_S=0.2",
        "FAKE_PEER_DELAY_S=0.3",
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let first = verdict(&out);
    assert_eq!(verdict_kind(&first, "§1 Create and fund"), "regression");
    assert_eq!(verdict_kind(&first, "total"), "regression");
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("§1 Create and fund") && junit.contains("<failure"),
        "{junit}"
    );

    // Re-judged as it stands: the same verdicts and exit code.
    let again = soak_in(None, &["gate", out.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(1), "{}", text(&again));
    let second = verdict(&out);
    assert_eq!(first["gate"], second["gate"]);
    // Bit for bit: the same records give the same statistics.
    assert_eq!(first["metrics"], second["metrics"]);

    // A 50% slowdown inside a 60% noise band is no longer a regression.
    let config = dir.path().join("gate.toml");
    let wide =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../ci/gate.toml"))
            .unwrap()
            .replace("time = 0.05", "time = 0.6");
    std::fs::write(&config, wide).unwrap();
    let relaxed = soak_in(
        None,
        &[
            "gate",
            out.to_str().unwrap(),
            "--gate-config",
            config.to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(relaxed.status.code(), Some(0), "{}", text(&relaxed));
    assert_ne!(verdict_kind(&verdict(&out), "total"), "regression");
}

#[test]
fn auto_iterations_stop_at_the_first_look_that_decides() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto");
    let output = fake_ab(
        &out,
        "auto",
        "FAKE_PEER_DELAY_S=0.1",
        "FAKE_PEER_DELAY_S=0.3",
        &[],
    );
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict_kind(&verdict, "total"), "regression");
    // A threefold slowdown is decided at the first look (3 a side, alpha
    // 0.005), so the run stops there and records the alpha it used.
    let runs = |side: &str| {
        let mut names: Vec<String> = std::fs::read_dir(out.join(side))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    };
    // One unjudged warm-up iteration per branch (the default), then three.
    let expected = ["run-1", "run-2", "run-3", "warmup-1"];
    assert_eq!(runs("baseline"), expected);
    assert_eq!(runs("treatment"), expected);
    let alpha = verdict["alpha"].as_f64().unwrap();
    assert!((alpha - 0.005).abs() < 1e-12, "{alpha}");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["judged"]["alpha"], verdict["alpha"]);
}

#[test]
fn auto_is_the_default_and_an_unchanged_branch_passes_once_decided() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("auto-aa");
    // No --iterations: auto is the default.
    let args = fake_args(
        &out,
        "FAKE_PEER_OP_DELAY_S=0.05",
        "FAKE_PEER_OP_DELAY_S=0.05",
    );
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = soak_in(None, &args, &[]);
    assert_rejudged_identically(&out, &output, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict["gate"]["status"], "pass");
    for m in verdict["metrics"].as_array().unwrap() {
        if m["gated"] == true && m["comparison"].is_object() {
            assert_eq!(m["comparison"]["verdict"]["kind"], "no_regression", "{m}");
        }
    }
    let runs = |side: &str| {
        std::fs::read_dir(out.join(side))
            .unwrap()
            .filter(|e| {
                let name = e.as_ref().unwrap().file_name();
                name.to_string_lossy().starts_with("run-")
            })
            .count()
    };
    let (b, t) = (runs("baseline"), runs("treatment"));
    assert_eq!(b, t);
    assert!(
        [3, 5, 8, 10].contains(&b),
        "stopped at {b}, not a planned look"
    );
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["iterations"], "auto");
}

#[test]
fn cannot_tell_fails_or_warns_as_configured_and_never_passes_silently() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ct");
    let output = fake_ab(
        &out,
        "3",
        "FAKE_PEER_OP_DELAY_S=0.05",
        "FAKE_PEER_OP_DELAY_S=0.05",
        &[],
    );
    // This run only provides a folder; at 3 a side under load its own
    // gate may pass or not yet tell.
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output)
    );
    // A band of 0.01 % with no floor: no 3-a-side interval fits inside it;
    // at alpha 0.001 an unchanged branch is practically never significant,
    // so the gate cannot tell rather than call chance differences.
    let tight = |on: &str| {
        soak_in(
            None,
            &[
                "gate",
                out.to_str().unwrap(),
                "--noise-band-time",
                "0.0001",
                "--floor-time-ms",
                "0",
                "--alpha",
                "0.001",
                "--on-inconclusive",
                on,
            ],
            &[],
        )
    };
    let failed = tight("fail");
    assert_eq!(failed.status.code(), Some(1), "{}", text(&failed));
    let verdict = verdict(&out);
    assert_eq!(verdict["gate"]["status"], "cannot_tell");
    assert!(
        text(&failed).starts_with("GATE FAIL: cannot tell"),
        "{}",
        text(&failed)
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.lines().next().unwrap().contains("cannot tell"),
        "{summary}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(junit.contains("<failure"), "{junit}");

    let warned = tight("warn");
    assert_eq!(warned.status.code(), Some(0), "{}", text(&warned));
    assert!(
        text(&warned).starts_with("GATE PASS WITH WARNING: cannot tell"),
        "{}",
        text(&warned)
    );
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert!(
        html.contains("cannot tell"),
        "warning missing from report.html"
    );
}

#[test]
fn soak_gate_refuses_too_few_iterations_and_survives_odd_manifests() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("few");
    let output = fake_ab(
        &out,
        "2",
        "FAKE_PEER_OP_DELAY_S=0.01",
        "FAKE_PEER_OP_DELAY_S=0.01",
        &["--min-iterations", "2"],
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output)
    );
    // The default gate wants 3 a side: refuse, exit 2, one line naming why.
    let refused = soak_in(None, &["gate", out.to_str().unwrap()], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let message = String::from_utf8_lossy(&refused.stderr).to_string();
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.contains("2 baseline and 2 treatment") && message.contains("min_iterations"),
        "{message}"
    );
    // And `soak ab` refuses to plan a run the gate would refuse.
    let planned = fake_ab(&dir.path().join("p"), "2", "A=1", "A=1", &[]);
    assert_eq!(planned.status.code(), Some(2), "{}", text(&planned));

    // A manifest written by hand with a non-ASCII commit and no labels.
    let path = out.join("manifest.json");
    let mut manifest: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    for branch in manifest["branches"].as_array_mut().unwrap() {
        branch["git_ref"] = "main".into();
        branch["commit"] = "é€😀é€😀é€😀".into();
        branch.as_object_mut().unwrap().remove("label");
    }
    std::fs::write(&path, serde_json::to_vec(&manifest).unwrap()).unwrap();
    let odd = soak_in(
        None,
        &["gate", out.to_str().unwrap(), "--min-iterations", "2"],
        &[],
    );
    assert!(matches!(odd.status.code(), Some(0 | 1)), "{}", text(&odd));
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(summary.contains("main @ é€😀é€😀é "), "{summary}");
}

#[test]
fn git_refs_are_built_in_worktrees_and_the_slower_commit_is_a_regression() {
    let repo = tempfile::tempdir().unwrap();
    let git = |args: &[&str]| git_in(repo.path(), args);
    git(&["init", "-q"]);
    // A tiny peer whose only difference between commits is a known delay.
    let peer = |delay: &str| {
        format!(
            "import os\nos.environ['FAKE_PEER_DELAY_S'] = '{delay}'\nexec(open({:?}).read())\n",
            fixture("fake_peer.py").display().to_string()
        )
    };
    std::fs::write(repo.path().join("peer.py"), peer("0.2")).unwrap();
    git(&["add", "peer.py"]);
    git(&["commit", "-q", "-m", "fast"]);
    git(&["tag", "fast"]);
    std::fs::write(repo.path().join("peer.py"), peer("0.3")).unwrap();
    git(&["commit", "-q", "-am", "slow"]);
    git(&["tag", "slow"]);

    let out = repo.path().join("soak-out");
    let testnet = format!("python3 {}", fixture("fake_testnet.py").display());
    let scenario = smoke();
    let output = soak_in(
        Some(repo.path()),
        &[
            "ab",
            "--baseline",
            "fast",
            "--treatment",
            "slow",
            "--build-cmd",
            "true",
            "--peer-cmd",
            "python3 peer.py",
            "--testnet-cmd",
            &testnet,
            "--scenario",
            &scenario,
            "--iterations",
            "5",
            "--interval-ms",
            "200",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_rejudged_identically(&out, &output, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict_kind(&verdict, "total"), "regression");
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["branches"][0]["git_ref"], "fast");
    assert_eq!(manifest["branches"][1]["git_ref"], "slow");
    assert_eq!(
        manifest["branches"][1]["commit"].as_str().unwrap().len(),
        40
    );
}

#[test]
fn an_unknown_ref_is_a_usage_error_and_a_failing_build_is_exit_3() {
    let dir = tempfile::tempdir().unwrap();
    let output = soak_in(
        Some(Path::new(env!("CARGO_MANIFEST_DIR"))),
        &[
            "ab",
            "--baseline",
            "no-such-ref-xyz",
            "--treatment",
            "HEAD",
            "--out",
            dir.path().join("o").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(
        text(&output).contains("no-such-ref-xyz"),
        "{}",
        text(&output)
    );

    let output = soak_in(
        Some(Path::new(env!("CARGO_MANIFEST_DIR"))),
        &[
            "ab",
            "--baseline",
            "HEAD",
            "--treatment",
            "HEAD",
            "--build-cmd",
            "sh -c 'echo the-build-broke >&2; exit 7'",
            "--out",
            dir.path().join("p").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let message = text(&output);
    assert!(
        message.contains("baseline") && message.contains("the-build-broke"),
        "{message}"
    );
}

/// `soak ab` on the workspace's real peer and testnet, built-in branches
/// told apart by `env`, with `extra` flags.
fn real_ab(out: &Path, profile: &str, bundles: &str, env: [&str; 2], extra: &[&str]) -> Output {
    let (peer, testnet) = workspace_binaries();
    let bundles = format!("bundles={bundles}");
    let mut args = vec![
        "ab",
        "--peer-cmd",
        &peer,
        "--testnet-cmd",
        &testnet,
        "--profile",
        profile,
        "--set",
        &bundles,
        "--baseline-env",
        env[0],
        "--treatment-env",
        env[1],
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let output = soak_in(None, &args, &[]);
    assert_rejudged_identically(out, &output, extra);
    output
}

#[test]
#[ignore = "minutes on the real SDK; .ci/run runs it"]
fn tombstone_overwrite_fails_the_gate_on_its_assertion_whatever_the_timings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("ow");
    let env = [
        "SPHERE_TOMBSTONE_MERGE=union",
        "SPHERE_TOMBSTONE_MERGE=overwrite",
    ];
    let output = real_ab(&out, "ci", "0", env, &["--iterations", "3"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let verdict = verdict(&out);
    assert!(
        verdict["gate"]["reasons"]
            .to_string()
            .contains("bob-peer1-vs-peer2-after"),
        "{verdict}"
    );
    let junit = std::fs::read_to_string(out.join("junit.xml")).unwrap();
    assert!(
        junit.contains("assertion: bob-peer1-vs-peer2-after"),
        "{junit}"
    );
}

#[test]
#[ignore = "minutes on the real SDK; .ci/run runs it"]
fn across_improves_recovery_at_seventy_bundles_and_passes_must_improve() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("across");
    // The ideal network keeps iterations short; the effect is CPU work
    // (B(B-1)/2 proof checks per load), which the network only dilutes.
    let env = ["SPHERE_PROOF_CHECK=pairwise", "SPHERE_PROOF_CHECK=across"];
    let output = real_ab(
        &out,
        "ideal",
        "70",
        env,
        &["--iterations", "6", "--mode", "must-improve", "--perf"],
    );
    let verdict = verdict(&out);
    assert_eq!(
        verdict_kind(&verdict, "§D.4 IPFS-only recovery"),
        "improvement",
        "{verdict}"
    );
    // Why: the peers' CPU-seconds in §D.4 drop, and CPU is the category
    // of time that moved.
    let cpu_dropped = ["peer1", "peer2"]
        .iter()
        .any(|peer| verdict_kind(&verdict, &format!("§D.4 {peer} CPU s")) == "improvement");
    assert!(cpu_dropped, "{verdict}");
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let why = summary
        .lines()
        .find(|l| l.starts_with("- §D.4 IPFS-only recovery (improvement"))
        .unwrap_or_else(|| panic!("no why for §D.4:\n{summary}"));
    assert!(why.contains(": cpu -"), "{why}");
    assert!(summary.contains("Where the time went"), "{summary}");
    let total = verdict_kind(&verdict, "total");
    // must-improve passes only when the total improved too (and it may
    // still fail when another gated metric cannot tell).
    assert!(
        output.status.code() != Some(0) || total == "improvement",
        "{}",
        text(&output)
    );
}

#[test]
#[ignore = "minutes on the real SDK; .ci/run runs it"]
fn the_readme_main_job_decides_and_swapping_its_variants_fails_the_gate() {
    let dir = tempfile::tempdir().unwrap();
    // The README's main job: the built-in variants on the default profile,
    // bundles and iterations (auto).
    let out = dir.path().join("main-job");
    let env = ["SPHERE_PROOF_CHECK=pairwise", "SPHERE_PROOF_CHECK=across"];
    let output = real_ab(&out, "quick", "70", env, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let decided = verdict(&out);
    assert_eq!(decided["gate"]["status"], "pass", "{}", decided["gate"]);
    assert_eq!(
        verdict_kind(&decided, "§D.4 IPFS-only recovery"),
        "improvement"
    );

    let swapped = dir.path().join("swapped");
    let env = ["SPHERE_PROOF_CHECK=across", "SPHERE_PROOF_CHECK=pairwise"];
    let output = real_ab(&swapped, "quick", "70", env, &[]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let failed = verdict(&swapped);
    assert_eq!(failed["gate"]["status"], "fail");
    // An adaptive run stops at the first look where a gated metric has
    // regressed (more iterations cannot take that back), so §D.4, twice as
    // slow, may be called a regression there or still be undecided at the
    // first look's alpha; its estimate says which way it went either way.
    let d4 = metric(&failed, "§D.4 IPFS-only recovery");
    assert!(
        ["regression", "cannot_tell"]
            .contains(&verdict_kind(&failed, "§D.4 IPFS-only recovery").as_str())
            && d4["comparison"]["ratio"].as_f64().unwrap() > 1.5,
        "{d4}"
    );
    let headline = failed["gate"]["headline"].as_str().unwrap();
    assert!(headline.contains("regression in"), "{headline}");
}

#[test]
#[ignore = "minutes on the real SDK; .ci/run runs it"]
fn a_real_slower_treatment_fails_the_gate_at_the_default_settings() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("per-write");
    // One round trip per write against the batched flush: real extra
    // requests through the network model, no padding.
    let env = ["SPHERE_WRITE_PATH=flush", "SPHERE_WRITE_PATH=per-write"];
    let output = real_ab(&out, "quick", "10", env, &["--perf"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict["gate"]["status"], "fail");
    let regressed: Vec<String> = verdict["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["gated"] == true && m["comparison"]["verdict"]["kind"] == "regression")
        .map(|m| m["metric"].as_str().unwrap_or_default().to_owned())
        .collect();
    // The sections whose writes per-write turns into round trips: §C.1b
    // (invoice records) and §C.2 (payment records). Which of them the first
    // look has already decided varies: HEAD checks are public reads, and a
    // read that meets the gateway's lockout makes a section's times lumpy.
    let named = regressed
        .iter()
        .find(|m| m.starts_with("§C.2 ") || m.starts_with("§C.1b "))
        .unwrap_or_else(|| panic!("§C.1b or §C.2 should be named: {regressed:?}"));
    let headline = verdict["gate"]["headline"].as_str().unwrap();
    let id = named.split(' ').next().unwrap_or_default();
    assert!(headline.contains(id), "{headline}");
    // Why: the per-write round trips (op-log writes, their HEAD checks),
    // with their counts.
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    // Markdown escapes the underscores of counter names.
    let why = summary
        .lines()
        .find(|l| l.starts_with(&format!("- {named} (regression")))
        .unwrap_or_else(|| panic!("no why for {named}:\n{summary}"))
        .replace('\\', "");
    assert!(
        ["put_entry", "head_verify", "pin_car", "flush"]
            .iter()
            .any(|c| why.contains(c))
            && why.contains("calls"),
        "{why}"
    );
}

#[test]
#[ignore = "minutes on the real SDK; .ci/run runs it"]
fn fan_out_against_a_rate_limited_gateway_shows_its_backoff_where_it_is_slower() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("fanout");
    let env = ["SPHERE_FANOUT=1", "SPHERE_FANOUT=8"];
    // 70 bundles: eight reads in flight then outrun the gateway's read
    // budget (a burst of 16, refilled at 800 a second on quick) in every
    // load. At 30, once each read also paid its retrieval from the pinning
    // node, a load could finish on the burst and its refill and meet no 429;
    // at 10 a load fits in the burst.
    let output = real_ab(&out, "quick", "70", env, &["--iterations", "3", "--perf"]);
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output)
    );
    let verdict = verdict(&out);
    let regressed: Vec<String> = verdict["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|m| m["comparison"]["verdict"]["kind"] == "regression")
        .filter_map(|m| m["metric"].as_str())
        .filter(|m| m.starts_with('§'))
        .map(|m| m.split(' ').next().unwrap_or_default().to_owned())
        .collect();
    assert!(
        !regressed.is_empty(),
        "fan-out 8 should be slower somewhere: {verdict}"
    );
    // Backoff after 429s is part of where the slower sections' time went.
    let tsv = std::fs::read_to_string(out.join("attribution-compare.tsv")).unwrap();
    let backoff: f64 = tsv
        .lines()
        .map(|l| l.split('\t').collect::<Vec<_>>())
        .filter(|row| row[2] == "backoff" && regressed.iter().any(|s| s == row[0]))
        .map(|row| row[4].parse::<f64>().unwrap() - row[3].parse::<f64>().unwrap())
        .sum();
    assert!(backoff > 0.0, "no added backoff in {regressed:?}:\n{tsv}");
}

#[test]
fn soak_power_measures_the_gate_on_a_pool_and_refuses_two_variants() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("pool");
    // An A/A pool of 12 iterations: every op takes 30 ms on both sides.
    let output = fake_ab(
        &out,
        "6",
        "FAKE_PEER_OP_DELAY_S=0.03",
        "FAKE_PEER_OP_DELAY_S=0.03",
        &[],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let power = soak_in(
        None,
        &["power", out.to_str().unwrap(), "--trials", "200"],
        &[],
    );
    assert_eq!(power.status.code(), Some(0), "{}", text(&power));
    let table = String::from_utf8_lossy(&power.stdout).to_string();
    assert!(table.contains("unchanged runs (A/A)"), "{table}");
    assert!(table.contains("suggested gate configuration"), "{table}");
    for file in [
        "power.tsv",
        "power.html",
        "power.json",
        "gate-suggested.toml",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let tsv = std::fs::read_to_string(out.join("power.tsv")).unwrap();
    let header: Vec<&str> = tsv.lines().next().unwrap().split('\t').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let rows: Vec<Vec<&str>> = tsv
        .lines()
        .skip(1)
        .map(|l| l.split('\t').collect())
        .collect();
    // 12 iterations allow 3 to 6 a side.
    let sizes: std::collections::BTreeSet<&str> = rows.iter().map(|r| r[col("per_side")]).collect();
    assert_eq!(
        sizes.into_iter().collect::<Vec<_>>(),
        vec!["3", "4", "5", "6"]
    );
    for row in &rows {
        let false_alarm: f64 = row[col("gate_false_alarm")].parse().unwrap();
        assert!(false_alarm <= 0.05, "A/A false alarms above alpha: {row:?}");
    }
    // The total is under 0.1 s here, so the 25 ms floor is its tolerance;
    // on this quiet pool, 6 a side catch any slowdown just beyond it.
    let total_at_6 = rows
        .iter()
        .find(|r| r[0] == "total" && r[col("per_side")] == "6")
        .unwrap();
    let median: f64 = total_at_6[col("median")].parse().unwrap();
    let tolerance = (0.025 / median).max(0.05);
    let caught_at: f64 = total_at_6[col("slowdown_90")].parse().unwrap();
    assert!(
        caught_at > tolerance && caught_at < tolerance + 0.05,
        "tolerance {tolerance}: {total_at_6:?}"
    );
    // The suggestion is a gate config soak accepts.
    let suggested = out.join("gate-suggested.toml");
    let config = std::fs::read_to_string(&suggested).unwrap();
    assert!(config.contains("[noise_band]"), "{config}");
    let check = soak_in(
        None,
        &[
            "gate",
            out.to_str().unwrap(),
            "--gate-config",
            suggested.to_str().unwrap(),
        ],
        &[],
    );
    assert!(
        matches!(check.status.code(), Some(0 | 1)),
        "{}",
        text(&check)
    );

    // Iterations of two different variants are not one variant's noise.
    let ab = dir.path().join("ab");
    let output = fake_ab(
        &ab,
        "3",
        "FAKE_PEER_OP_DELAY_S=0.01",
        "FAKE_PEER_OP_DELAY_S=0.02",
        &[],
    );
    assert!(
        matches!(output.status.code(), Some(0 | 1)),
        "{}",
        text(&output)
    );
    let refused = soak_in(None, &["power", ab.to_str().unwrap()], &[]);
    assert_eq!(refused.status.code(), Some(2), "{}", text(&refused));
    let message = String::from_utf8_lossy(&refused.stderr).to_string();
    assert!(message.contains("one variant"), "{message}");
    // Too few trials to mean anything: refused with the flag named.
    let few = soak_in(
        None,
        &["power", out.to_str().unwrap(), "--trials", "3"],
        &[],
    );
    assert_eq!(few.status.code(), Some(2));
    assert!(text(&few).contains("--trials"), "{}", text(&few));
}

#[test]
fn an_interrupted_ab_is_partial_evidence_in_every_report_and_exits_130() {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("int");
    // The treatment hangs on its first faucet: the baseline's first
    // iteration is complete, the treatment's never ends.
    let mut args = fake_args(
        &out,
        "FAKE_PEER_OP_DELAY_S=0.01",
        "FAKE_PEER_HANG_ON=faucet",
    );
    args.extend(["--iterations", "3"].map(str::to_owned));
    let child = Command::new(assert_cmd::cargo::cargo_bin("soak"))
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = out.join("treatment/run-1/script.log");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("\"op\":\"faucet\"")
    {
        assert!(
            Instant::now() < deadline,
            "the treatment never reached faucet"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(130), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict["gate"]["status"], "interrupted");
    assert_eq!(verdict["gate"]["passed"], false);
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        stdout.starts_with("INTERRUPTED: partial evidence"),
        "{stdout}"
    );
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    let first = summary.lines().next().unwrap();
    assert!(first.contains("INTERRUPTED: partial evidence"), "{first}");
    for report in ["summary.md", "report.html", "junit.xml"] {
        let body = std::fs::read_to_string(out.join(report)).unwrap();
        assert!(
            !body.contains("GATE PASS") && !body.contains("GATE FAIL"),
            "{report}: {body}"
        );
        assert!(body.to_lowercase().contains("interrupted"), "{report}");
    }
    // Re-judged, it stays interrupted: same bytes, same exit code.
    assert_rejudged_identically(&out, &output, &[]);
}

#[test]
fn a_crash_outside_the_branch_is_re_run_and_never_counted_against_it() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("retry");
    let flag = dir.path().join("crashed-once");
    let treatment = format!(
        "FAKE_PEER_CRASH_ON=faucet FAKE_PEER_CRASH_ONCE={}",
        flag.display()
    );
    // Two env pairs in one flag value are not split: pass them one by one.
    let mut args = fake_args(
        &out,
        "FAKE_PEER_OP_DELAY_S=0.03",
        "FAKE_PEER_OP_DELAY_S=0.03",
    );
    for pair in treatment.split(' ') {
        args.extend(["--treatment-env".to_owned(), pair.to_owned()]);
    }
    // The crash is meant for a measured iteration: no warm-up to absorb it.
    args.extend(["--iterations", "3", "--warmup", "0"].map(str::to_owned));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let output = soak_in(None, &args, &[]);
    assert_rejudged_identically(&out, &output, &[]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict["gate"]["status"], "pass");
    let retried = verdict["retried"].as_array().unwrap();
    assert_eq!(retried.len(), 1, "{retried:?}");
    let line = retried[0].as_str().unwrap();
    assert!(
        line.starts_with("treatment run-1 re-run after an infrastructure failure")
            && line.contains("peer1: exited (killed by SIGKILL) while `faucet` was pending in §1"),
        "{line}"
    );
    assert!(out.join("treatment/run-1-failed-1/script.log").exists());
    assert!(out.join("treatment/run-3/summary-metrics.json").exists());
    let summary = std::fs::read_to_string(out.join("summary.md")).unwrap();
    assert!(
        summary.contains("re-run after an infrastructure failure"),
        "{summary}"
    );
}

#[test]
fn a_branch_that_keeps_crashing_stops_the_run_with_exit_3_not_a_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("crashing");
    let output = fake_ab(
        &out,
        "3",
        "FAKE_PEER_OP_DELAY_S=0.01",
        "FAKE_PEER_CRASH_ON=faucet",
        &[],
    );
    assert_eq!(output.status.code(), Some(3), "{}", text(&output));
    let verdict = verdict(&out);
    assert_eq!(verdict["gate"]["status"], "infrastructure");
    let headline = verdict["gate"]["headline"].as_str().unwrap();
    assert!(headline.starts_with("INFRASTRUCTURE FAILURE"), "{headline}");
    // The warm-up's crash is reported, not judged; then two re-runs, and the
    // run stopped: no regression, no failed assertion was charged to the
    // treatment.
    let retried = verdict["retried"].as_array().unwrap();
    assert_eq!(retried.len(), 3, "{retried:?}");
    let warm = retried[0].as_str().unwrap();
    assert!(
        warm.starts_with("treatment warmup-1 failed and was not judged: ")
            && warm.contains("`faucet`"),
        "{warm}"
    );
    for m in verdict["metrics"].as_array().unwrap() {
        assert_ne!(m["comparison"]["verdict"]["kind"], "regression", "{m}");
    }
    for a in verdict["assertions"].as_array().unwrap() {
        assert_eq!(a["treatment"]["failed"], serde_json::Value::Null, "{a}");
    }
    assert!(out.join("treatment/run-1-failed-2").exists());
}
