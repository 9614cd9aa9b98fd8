//! Shards as a CI matrix runs them: `soak ab --shard I/N` on each machine
//! (here one after another), then `soak merge` judges them together.
//! The fake peer and testnet keep it fast; the statistics of shards as
//! blocks are unit-tested in `ab::compare` and `stats::stratified`.

mod support;

use std::{
    path::{Path, PathBuf},
    process::Output,
};

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

/// Shards 1/2 and 2/2 of one run into `dir/s1` and `dir/s2`, each of
/// which must measure (exit 0).
fn two_shards(dir: &Path, treatment_env: &str) -> (PathBuf, PathBuf) {
    let (s1, s2) = (dir.join("s1"), dir.join("s2"));
    for (out, index) in [(&s1, "1/2"), (&s2, "2/2")] {
        let run = shard(out, index, treatment_env, "3");
        // A shard measures; judging is the merge's.
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
        assert!(text(&run).contains(&format!("shard {index} measured")));
    }
    (s1, s2)
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
    let (s1, s2) = two_shards(dir.path(), "FAKE_PEER_DELAY_S=0.1");
    let merged = dir.path().join("m");
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
    let (s1, s2) = two_shards(dir.path(), "FAKE_PEER_DELAY_S=0.3");
    let merged = dir.path().join("m");
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

/// The `run: |` script of the workflow step named `step`, unindented.
fn run_block(workflow: &str, step: &str) -> String {
    let lines: Vec<&str> = workflow.lines().collect();
    let named = format!("- name: {step}");
    let start = lines
        .iter()
        .position(|l| l.trim() == named)
        .unwrap_or_else(|| panic!("no step `{step}` in the workflow"));
    let run = (start..lines.len())
        .find(|&i| lines[i].trim_start().starts_with("run: |"))
        .unwrap_or_else(|| panic!("step `{step}` has no run block"));
    let indent = |l: &str| l.len() - l.trim_start().len();
    let key = indent(lines[run]);
    lines[run + 1..]
        .iter()
        .take_while(|l| l.trim().is_empty() || indent(l) > key)
        .map(|l| l.get(key + 2..).unwrap_or_default())
        .collect::<Vec<_>>()
        .join("\n")
}

/// A top-level `env:` value of the workflow, e.g. `SHARDS`.
fn workflow_env(workflow: &str, name: &str) -> String {
    let prefix = format!("  {name}:");
    let line = workflow
        .lines()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no env {name}"));
    line[prefix.len()..]
        .split('#')
        .next()
        .unwrap()
        .trim()
        .to_owned()
}

fn bash(script: &str, dir: &Path, env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new("bash");
    command
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir);
    command.stdin(std::process::Stdio::null());
    for (k, v) in env {
        command.env(k, v);
    }
    command.output().unwrap()
}

/// The workflow's own scripts, run the way the matrix runs them: the plan,
/// each shard on its own "runner" (a folder with its own RUNNER_NAME), the
/// artifacts moved as upload/download would, then the merge.
#[test]
fn the_ci_workflow_measures_each_shard_then_merges_and_judges_them() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let workflow = std::fs::read_to_string(root.join("ci/github-workflow.yml")).unwrap();
    let shards = workflow_env(&workflow, "SHARDS");
    let iterations = workflow_env(&workflow, "ITERATIONS_PER_SHARD");
    let count: u32 = shards.parse().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let soak = assert_cmd::cargo::cargo_bin("soak");

    let output_file = dir.path().join("github-output");
    let plan = bash(
        &run_block(&workflow, "Plan the shards"),
        dir.path(),
        &[
            ("SHARDS", &shards),
            ("GITHUB_OUTPUT", output_file.to_str().unwrap()),
        ],
    );
    assert!(plan.status.success(), "{}", text(&plan));
    let planned = std::fs::read_to_string(&output_file).unwrap();
    let expected: Vec<String> = (1..=count).map(|i| i.to_string()).collect();
    assert_eq!(planned.trim(), format!("shards=[{}]", expected.join(",")));

    // A runner's checkout: the soak binary in bin/, the fakes behind
    // scripts without spaces (SOAK_BRANCHES is split on spaces).
    let runner = |name: &str| {
        let at = dir.path().join(name);
        std::fs::create_dir_all(at.join("bin")).unwrap();
        std::fs::copy(&soak, at.join("bin/soak")).unwrap();
        at
    };
    let wrapper = |name: &str, target: &str| {
        let path = dir.path().join(name);
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nexec python3 {} \"$@\"\n",
                fixture(target).display()
            ),
        )
        .unwrap();
        std::process::Command::new("chmod")
            .arg("+x")
            .arg(&path)
            .status()
            .unwrap();
        path.display().to_string()
    };
    let branches = format!(
        "--scenario {} --peer-cmd {} --testnet-cmd {} --baseline-env FAKE_PEER_DELAY_S=0.05 --treatment-env FAKE_PEER_DELAY_S=0.05",
        scenario("smoke.toml").display(),
        wrapper("peer.sh", "fake_peer.py"),
        wrapper("testnet.sh", "fake_testnet.py"),
    );
    let merge_job = runner("merge-job");
    std::fs::create_dir_all(merge_job.join("ci")).unwrap();
    std::fs::copy(root.join("ci/gate.toml"), merge_job.join("ci/gate.toml")).unwrap();
    for index in 1..=count {
        let job = runner(&format!("shard-job-{index}"));
        let shard_script = run_block(&workflow, "Measure this shard");
        let index = index.to_string();
        let measured = bash(
            &shard_script,
            &job,
            &[
                ("SOAK", "bin/soak"),
                ("SHARD_INDEX", &index),
                ("SHARDS", &shards),
                ("ITERATIONS_PER_SHARD", &iterations),
                ("SOAK_BRANCHES", &branches),
                ("RUNNER_NAME", &format!("runner-{index}")),
            ],
        );
        assert!(
            measured.status.success(),
            "shard {index}: {}",
            text(&measured)
        );
        // upload-artifact of shard-I, download-artifact into shards/shard-I.
        std::fs::create_dir_all(merge_job.join("shards")).unwrap();
        std::fs::rename(
            job.join(format!("shard-{index}")),
            merge_job.join(format!("shards/shard-{index}")),
        )
        .unwrap();
    }
    let merged = bash(
        &run_block(&workflow, "Merge and judge"),
        &merge_job,
        &[("SOAK", "bin/soak")],
    );
    assert_eq!(merged.status.code(), Some(0), "{}", text(&merged));
    let manifest = json(&merge_job.join("soak-run/manifest.json"));
    let fingerprints: std::collections::BTreeSet<&str> = manifest["shards"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["machine"]["hostname_hash"].as_str().unwrap())
        .collect();
    assert_eq!(
        fingerprints.len(),
        count as usize,
        "each runner its own fingerprint"
    );
    let per_side: usize = iterations.parse().unwrap();
    assert!(
        merge_job
            .join(format!(
                "soak-run/treatment/run-{}",
                per_side * count as usize
            ))
            .exists()
    );
    assert!(merge_job.join("soak-run/summary.md").exists());
}
