//! `soak bisect` on a repository made for the test: a chain of commits of
//! a tiny peer, one of which makes `faucet` (in §1) slower.

mod support;

use std::path::Path;

use serde_json::Value;
use support::{fixture, git_in, scenario, soak_in, text};

/// Makes `dir` a repository of `commits` commits, each a peer whose
/// faucet takes 0.1 s, from commit `slow_from` on 0.3 s.
fn chain(dir: &Path, commits: usize, slow_from: usize) {
    let git = |args: &[&str]| git_in(dir, args);
    git(&["init", "-q"]);
    for k in 1..=commits {
        let delay = if k >= slow_from { "0.3" } else { "0.1" };
        let peer = format!(
            "import os\nos.environ['FAKE_PEER_DELAY_S'] = '{delay}'\nexec(open({:?}).read())\n",
            fixture("fake_peer.py").display().to_string()
        );
        std::fs::write(dir.join("peer.py"), peer).unwrap();
        // A file that changes in every commit, so none is empty.
        std::fs::write(dir.join("version"), k.to_string()).unwrap();
        git(&["add", "peer.py", "version"]);
        git(&["commit", "-q", "-m", &format!("commit {k}")]);
        git(&["tag", &format!("c{k}")]);
    }
}

fn bisect(repo: &Path, good: &str, bad: &str, target: &[&str], out: &str) -> std::process::Output {
    let testnet = format!("python3 {}", fixture("fake_testnet.py").display());
    let smoke = scenario("smoke.toml");
    let mut args = vec![
        "bisect",
        "--good",
        good,
        "--bad",
        bad,
        "--build-cmd",
        "true",
        "--peer-cmd",
        "python3 peer.py",
        "--testnet-cmd",
        &testnet,
        "--scenario",
        smoke.to_str().unwrap(),
        "--interval-ms",
        "200",
        "--quiet",
        "--out",
        out,
    ];
    args.extend_from_slice(target);
    soak_in(Some(repo), &args, &[])
}

#[test]
fn bisect_names_the_commit_that_made_a_section_slower_in_few_probes() {
    let repo = tempfile::tempdir().unwrap();
    // Nine commits after c1; c6 is the first slow one.
    chain(repo.path(), 10, 6);
    let out = repo.path().join("bisect-out");
    let output = bisect(
        repo.path(),
        "c1",
        "c10",
        &["--metric", "1"],
        out.to_str().unwrap(),
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let found: Value =
        serde_json::from_slice(&std::fs::read(out.join("bisect.json")).unwrap()).unwrap();
    assert_eq!(found["culprit"]["subject"], "commit 6", "{found:#}");
    assert_eq!(found["commits"], 9);
    let probes = found["path"].as_array().unwrap();
    // log2(9) + 2, rounded down: at most 5 probes; and the bad end first.
    assert!(probes.len() <= 5, "{} probes: {found:#}", probes.len());
    assert_eq!(probes[0]["subject"], "commit 10");
    assert_eq!(probes[0]["call"], "bad");
    assert!(
        text(&output).contains("first bad commit:"),
        "{}",
        text(&output)
    );
    // Every probe kept its own run folder.
    for probe in probes {
        let dir = Path::new(probe["dir"].as_str().unwrap());
        assert!(dir.join("verdict.json").exists(), "{}", dir.display());
    }
}

#[test]
fn bisect_stops_with_a_reason_when_the_bad_end_is_not_bad() {
    let repo = tempfile::tempdir().unwrap();
    chain(repo.path(), 3, 99);
    let output = bisect(repo.path(), "c1", "c3", &["--metric", "total"], "out");
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("the gate does not fail on metric `total` at --bad"),
        "{}",
        text(&output)
    );
}

#[test]
fn bisect_refuses_what_it_cannot_search_in_one_line() {
    let repo = tempfile::tempdir().unwrap();
    chain(repo.path(), 3, 2);
    for (good, bad, target, needle) in [
        ("c3", "c1", "total", "is not an ancestor of --bad"),
        (
            "c2",
            "c2",
            "total",
            "are the same commit: nothing to bisect",
        ),
        ("nope", "c3", "total", "--good `nope` names no commit"),
        (
            "c1",
            "c3",
            "§Z.9",
            "--metric `§Z.9` is not a metric of this scenario",
        ),
    ] {
        let output = bisect(repo.path(), good, bad, &["--metric", target], "out-refused");
        assert_eq!(
            output.status.code(),
            Some(2),
            "{good}..{bad}: {}",
            text(&output)
        );
        assert!(text(&output).contains(needle), "{}", text(&output));
        let _ = std::fs::remove_dir_all(repo.path().join("out-refused"));
    }
}
