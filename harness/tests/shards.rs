//! Shards as a CI matrix runs them: `soak ab --shard I/N` on each machine
//! (here one after another), then `soak merge` judges them together.
//! The fake peer and testnet keep it fast; the statistics of shards as
//! blocks are unit-tested in `ab::compare` and `stats::stratified`.

mod support;

use std::{path::Path, process::Output};

use serde_json::Value;
use support::{fixture, scenario, soak_in, text};

/// `soak ab --shard` with the fake peer on the smoke scenario.
fn shard(out: &Path, shard: &str, treatment_env: &str, iterations: &str) -> Output {
    let peer = format!("python3 {}", fixture("fake_peer.py").display());
    let testnet = format!("python3 {}", fixture("fake_testnet.py").display());
    let smoke = scenario("smoke.toml");
    soak_in(
        None,
        &[
            "ab",
            "--scenario",
            smoke.to_str().unwrap(),
            "--peer-cmd",
            &peer,
            "--testnet-cmd",
            &testnet,
            "--baseline-env",
            "FAKE_PEER_DELAY_S=0.1",
            "--treatment-env",
            treatment_env,
            "--interval-ms",
            "200",
            "--iterations",
            iterations,
            "--shard",
            shard,
            "--quiet",
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    )
}

fn merge(dirs: &[&Path], out: &Path) -> Output {
    let mut args = vec!["merge"];
    args.extend(dirs.iter().map(|d| d.to_str().unwrap()));
    args.extend(["--out", out.to_str().unwrap()]);
    soak_in(None, &args, &[])
}

fn json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn shards_merge_into_one_run_judged_per_shard_and_rejudged_identically() {
    let dir = tempfile::tempdir().unwrap();
    let (s1, s2, merged) = (
        dir.path().join("s1"),
        dir.path().join("s2"),
        dir.path().join("m"),
    );
    for (out, index) in [(&s1, "1/2"), (&s2, "2/2")] {
        let run = shard(out, index, "FAKE_PEER_DELAY_S=0.1", "3");
        // A shard measures; judging is the merge's.
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
        assert!(text(&run).contains(&format!("shard {index} measured")));
    }
    let (m1, m2) = (
        json(&s1.join("manifest.json")),
        json(&s2.join("manifest.json")),
    );
    assert_eq!(
        m1["shard"]["run_id"], m2["shard"]["run_id"],
        "one run, one id"
    );
    assert!(
        m1["machine"]["hostname_hash"]
            .as_str()
            .is_some_and(|h| h.len() == 12)
    );

    let output = merge(&[&s2, &s1], &merged);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let manifest = json(&merged.join("manifest.json"));
    let shards = manifest["shards"].as_array().unwrap();
    assert_eq!(shards.len(), 2);
    assert_eq!(
        shards[0]["shard"]["index"], 1,
        "shard order, whatever the argument order"
    );
    assert_eq!(shards[0]["iterations"], serde_json::json!([3, 3]));
    for side in ["baseline", "treatment"] {
        for k in 1..=6 {
            let record = json(&merged.join(format!("{side}/run-{k}/summary-metrics.json")));
            assert_eq!(record["iteration"], k);
            assert_eq!(
                record["shard"],
                if k <= 3 { 1 } else { 2 },
                "{side} run-{k}"
            );
        }
    }
    let verdict = std::fs::read(merged.join("verdict.json")).unwrap();
    let again = soak_in(None, &["gate", merged.to_str().unwrap()], &[]);
    assert_eq!(again.status.code(), Some(0), "{}", text(&again));
    assert_eq!(std::fs::read(merged.join("verdict.json")).unwrap(), verdict);
}

#[test]
fn a_slower_treatment_fails_the_merged_gate() {
    let dir = tempfile::tempdir().unwrap();
    let (s1, s2, merged) = (
        dir.path().join("s1"),
        dir.path().join("s2"),
        dir.path().join("m"),
    );
    for (out, index) in [(&s1, "1/2"), (&s2, "2/2")] {
        let run = shard(out, index, "FAKE_PEER_DELAY_S=0.3", "3");
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    }
    let output = merge(&[&s1, &s2], &merged);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(text(&output).contains("GATE FAIL"), "{}", text(&output));
}

#[test]
fn shards_that_do_not_belong_together_are_refused_in_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    assert_eq!(
        shard(&path("s1"), "1/2", "FAKE_PEER_DELAY_S=0.1", "3")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        shard(&path("other"), "2/2", "FAKE_PEER_DELAY_S=0.2", "3")
            .status
            .code(),
        Some(0)
    );
    assert_eq!(
        shard(&path("more"), "2/2", "FAKE_PEER_DELAY_S=0.1", "4")
            .status
            .code(),
        Some(0)
    );

    let refused = |dirs: &[&Path], out: &str, needle: &str| {
        let output = merge(dirs, &path(out));
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{stderr}");
        assert!(lines[0].contains(needle), "{stderr}");
        assert!(!path(out).exists(), "nothing written for a refused merge");
    };
    refused(
        &[&path("s1"), &path("other")],
        "m1",
        "differ in the treatment peer environment (`FAKE_PEER_DELAY_S=0.1` vs `FAKE_PEER_DELAY_S=0.2`)",
    );
    refused(
        &[&path("s1"), &path("more")],
        "m2",
        "differ in --iterations (3 vs 4)",
    );
    refused(
        &[&path("s1"), &path("s1")],
        "m3",
        "shard 1/2 is given twice",
    );
    refused(&[&path("s1")], "m4", "at least two shard folders");

    // A folder of an unsharded run is not a shard.
    let plain = path("plain");
    std::fs::create_dir_all(&plain).unwrap();
    let mut manifest = json(&path("s1").join("manifest.json"));
    manifest.as_object_mut().unwrap().remove("shard");
    std::fs::write(plain.join("manifest.json"), manifest.to_string()).unwrap();
    refused(
        &[&path("s1"), &plain],
        "m5",
        "is not a shard (it was run without --shard)",
    );
}

#[test]
fn a_shard_needs_a_valid_index_and_a_fixed_count() {
    let dir = tempfile::tempdir().unwrap();
    for (given, iterations, needle) in [
        ("3/2", "3", "--shard `3/2`: I out of range"),
        ("1-2", "3", "--shard `1-2`: no `/`"),
        ("1/2", "auto", "--shard needs a fixed --iterations N"),
    ] {
        let output = shard(
            &dir.path().join("s"),
            given,
            "FAKE_PEER_DELAY_S=0.1",
            iterations,
        );
        assert_eq!(output.status.code(), Some(2), "{}", text(&output));
        assert!(text(&output).contains(needle), "{}", text(&output));
        assert!(!dir.path().join("s").exists());
    }
}
