//! `soak run` as a user runs it: the binary, real files, real processes.
//!
//! Most tests use a peer and a testnet written in Python from the protocol
//! document alone (tests/fixtures): fast, hermetic, and proof that the
//! harness knows nothing of our SDK. Two tests run the real workspace
//! binaries through the full scenario.

mod support;

use std::{
    path::{Path, PathBuf},
    process::{Output, Stdio},
    time::{Duration, Instant},
};

use assert_cmd::cargo::CommandCargoExt;
use support::{fixture, processes, scenario, soak_in, workspace_binaries};

/// A unique word to find this test's processes in the process table.
fn marker(test: &str) -> String {
    format!("soaktest-{test}-{}", std::process::id())
}

/// Processes whose command line contains `marker` (zombies excluded).
fn processes_with(marker: &str) -> Vec<String> {
    processes()
        .into_iter()
        .map(|(_, cmdline)| cmdline)
        .filter(|cmdline| cmdline.contains(marker))
        .collect()
}

fn fake_peer_cmd(marker: &str) -> String {
    format!("python3 {} {marker}", fixture("fake_peer.py").display())
}

fn fake_testnet_cmd(marker: &str) -> String {
    format!("python3 {} {marker}", fixture("fake_testnet.py").display())
}

fn soak(args: &[&str], env: &[(&str, &str)]) -> Output {
    soak_in(None, args, env)
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn assert_no_orphans(marker: &str) {
    // Killed processes may take a moment to be reaped by init.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let left = processes_with(marker);
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "orphan processes: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn header(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .lines()
        .next()
        .unwrap_or_default()
        .to_owned()
}

/// Runs `soak run` on smoke.toml with the fake peer and testnet.
fn fake_run(test: &str, out: &Path, extra: &[&str], env: &[(&str, &str)]) -> Output {
    let marker = marker(test);
    let peer = fake_peer_cmd(&marker);
    let testnet = fake_testnet_cmd(&marker);
    let scenario = scenario("smoke.toml");
    let mut args = vec![
        "run",
        "--scenario",
        scenario.to_str().unwrap(),
        "--peer-cmd",
        &peer,
        "--testnet-cmd",
        &testnet,
        "--out",
        out.to_str().unwrap(),
        "--interval-ms",
        "200",
    ];
    args.extend_from_slice(extra);
    let output = soak(&args, env);
    assert_no_orphans(&marker);
    output
}

#[test]
fn cpu_seconds_per_section_match_what_the_peer_burned_there() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    // The fake peer burns 0.6 CPU-seconds, by its own process clock, in
    // the faucet step of §1; §2 only reads a balance.
    let output = fake_run("burn", &out, &[], &[("FAKE_PEER_BURN_CPU_S", "0.6")]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let record: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(out.join("run-1/summary-metrics.json")).unwrap(),
    )
    .unwrap();
    let cpu = |section: usize| {
        record["sections"][section]["cpu_seconds"]["peer1"]
            .as_f64()
            .unwrap()
    };
    // The burn, plus the interpreter's own work on the section's two
    // requests; the kernel counts whole 10 ms ticks, so a read may fall
    // short of the peer's own clock by up to two of them.
    assert!((0.57..0.75).contains(&cpu(0)), "§1 peer1 CPU {}", cpu(0));
    assert!(cpu(1) < 0.1, "§2 peer1 CPU {}", cpu(1));
    let totals = std::fs::read_to_string(out.join("run-1/totals.tsv")).unwrap();
    let first = totals.lines().nth(1).unwrap();
    let shown: f64 = first.split('\t').nth(4).unwrap().parse().unwrap();
    assert!((shown - cpu(0)).abs() < 0.001, "{first}");
}

#[test]
fn a_peer_in_another_language_runs_the_smoke_scenario() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = fake_run("python", &out, &[], &[]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let run = out.join("run-1");
    assert_eq!(
        header(&run.join("totals.tsv")),
        "section\ttitle\tseconds\tstatus\tcpu_s_peer1\tcpu_s_testnet\tpeak_rss_peer1\tpeak_rss_testnet"
    );
    assert_eq!(
        header(&run.join("samples.tsv")),
        "elapsed_s\tsection\trole\tpid_count\trss_bytes\tcpu_pct"
    );
    assert_eq!(
        header(&run.join("counters.tsv")),
        "section\trole\tcounter\tcount\ttotal_ms\tavg_ms\tmax_ms"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(run.join("summary-metrics.json")).unwrap()).unwrap();
    assert_eq!(summary["schema_version"], 1);
    assert_eq!(summary["status"]["kind"], "passed");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["branches"][0]["variant"]["language"], "python");
    assert!(manifest["machine"]["cores"].as_u64().unwrap() >= 1);
    // The fake peer's mnemonic is nowhere in the run folder.
    let log = std::fs::read_to_string(run.join("script.log")).unwrap();
    assert!(
        log.contains("<redacted>"),
        "the mnemonic field is shown redacted"
    );
    for file in walk(&out) {
        let text = String::from_utf8_lossy(&std::fs::read(&file).unwrap()).into_owned();
        assert!(
            !text.contains("fixture alpha bravo"),
            "mnemonic leaked into {}",
            file.display()
        );
    }
    // Each peer's process tree was sampled: python plus its sleep grandchild.
    let samples = std::fs::read_to_string(run.join("samples.tsv")).unwrap();
    assert!(
        samples.lines().any(|l| l.contains("\tpeer1\t2\t")),
        "peer1's tree should hold 2 processes: {samples}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().filter_map(Result::ok) {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

/// The one line soak printed that starts with `soak: `.
fn error_line(output: &Output) -> String {
    let text = stderr(output);
    let lines: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("error: ") || l.starts_with("soak: "))
        .collect();
    lines.first().map(|l| (*l).to_owned()).unwrap_or(text)
}

#[test]
fn a_peer_killed_mid_run_is_an_infrastructure_failure_with_artefacts_kept() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = fake_run("killed", &out, &[], &[("FAKE_PEER_CRASH_ON", "faucet")]);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let line = error_line(&output);
    assert!(
        line.contains("peer1") && line.contains("killed by SIGKILL") && line.contains("faucet"),
        "{line}"
    );
    assert!(out.join("run-1/totals.tsv").exists());
    assert!(out.join("run-1/summary-metrics.json").exists());
    assert!(out.join("run-1/script.log").exists());
}

#[test]
fn a_hanging_peer_times_out_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = fake_run(
        "hang",
        &out,
        &["--step-timeout-ms", "1500"],
        &[("FAKE_PEER_HANG_ON", "faucet")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let line = error_line(&output);
    assert!(
        line.contains("peer1") && line.contains("no answer to `faucet`"),
        "{line}"
    );
    assert!(out.join("run-1/summary-metrics.json").exists());
}

#[test]
fn a_missing_peer_command_names_the_role_and_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let marker = marker("missing");
    let testnet = fake_testnet_cmd(&marker);
    let scenario = scenario("smoke.toml");
    let output = soak(
        &[
            "run",
            "--scenario",
            scenario.to_str().unwrap(),
            "--peer-cmd",
            "/nonexistent/peer-binary",
            "--testnet-cmd",
            &testnet,
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
    );
    assert_no_orphans(&marker);
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let line = error_line(&output);
    assert!(
        line.contains("peer1")
            && line.contains("/nonexistent/peer-binary")
            && line.contains("--peer-cmd"),
        "{line}"
    );
    assert!(out.join("run-1/totals.tsv").exists());
}

#[test]
fn a_testnet_that_never_gets_ready_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = fake_run(
        "silent",
        &out,
        &["--ready-timeout-ms", "1500"],
        &[("FAKE_TESTNET_SILENT", "1")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let line = error_line(&output);
    assert!(
        line.contains("testnet") && line.contains("no ready line"),
        "{line}"
    );
    assert!(out.join("run-1/script.log").exists());
}

#[test]
fn ctrl_c_exits_130_with_partial_files_and_no_orphans() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let marker = marker("sigint");
    let mut child = stuck_run("sigint", &out);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let status = child.wait().unwrap();
    assert_eq!(status.code(), Some(130));
    assert_no_orphans(&marker);
    assert!(out.join("run-1/totals.tsv").exists());
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run-1/summary-metrics.json")).unwrap())
            .unwrap();
    assert_eq!(summary["status"]["kind"], "interrupted");
}

#[test]
fn a_malformed_scenario_is_one_line_with_its_location_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.toml");
    std::fs::write(&path, "name = \"x\"\n[[peers]]\nname = \"p\"\n[[sections]]\nid = \"1\"\ntitle = \"t\"\n[[sections.steps]]\npeer = \"nobody\"\nop = \"hello\"\n").unwrap();
    let output = soak(
        &[
            "run",
            "--scenario",
            path.to_str().unwrap(),
            "--peer-cmd",
            "true",
            "--testnet-cmd",
            "true",
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    assert_eq!(text.trim().lines().count(), 1, "{text}");
    assert!(
        text.contains(&format!("{}:", path.display())) && text.contains("nobody"),
        "{text}"
    );
}

/// `soak run` of the default scenario at 0 active bundles on the
/// workspace's own peer and testnet, with `extra` flags.
fn real_run(out: &Path, extra: &[&str]) -> Output {
    let (peer, testnet) = workspace_binaries();
    let mut args = vec![
        "run",
        "--set",
        "bundles=0",
        "--peer-cmd",
        &peer,
        "--testnet-cmd",
        &testnet,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    soak(&args, &[])
}

#[test]
fn the_tombstone_overwrite_bug_fails_its_assertion_with_the_diff_and_exit_1() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = real_run(
        &out,
        &[
            "--profile",
            "ci",
            "--peer-env",
            "SPHERE_TOMBSTONE_MERGE=overwrite",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stderr(&output);
    assert!(
        text.contains("ASSERT FAIL (bob-peer1-vs-peer2-after)\n-UCT: 99.999999999989 (1 token)\n+UCT: 199.999999999989 (2 tokens)"),
        "{text}"
    );
    for file in [
        "manifest.json",
        "run-1/script.log",
        "run-1/totals.tsv",
        "run-1/samples.tsv",
        "run-1/counters.tsv",
        "run-1/summary-metrics.json",
    ] {
        assert!(out.join(file).exists(), "{file} missing");
    }
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run-1/summary-metrics.json")).unwrap())
            .unwrap();
    let failed: Vec<&str> = summary["assertions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|a| a["passed"] == false)
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(failed, vec!["bob-peer1-vs-peer2-after"]);
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(
        manifest["branches"][0]["variant"]["tombstone_merge"],
        "overwrite"
    );
}

#[test]
fn with_perf_each_peers_section_time_is_split_by_what_it_waited_on() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = real_run(&out, &["--perf"]);
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    let tsv = std::fs::read_to_string(out.join("run-1/attribution.tsv")).unwrap();
    let mut lines = tsv.lines();
    let header: Vec<&str> = lines.next().unwrap().split('\t').collect();
    assert_eq!(
        header,
        [
            "section",
            "role",
            "wall_s",
            "cpu_s",
            "backoff_s",
            "aggregator_s",
            "gateway_s",
            "relay_s",
            "poll_s",
            "store_s",
            "other_s"
        ]
    );
    let rows: Vec<Vec<String>> = lines
        .map(|l| l.split('\t').map(str::to_owned).collect())
        .collect();
    let value = |row: &[String], column: &str| -> f64 {
        row[header.iter().position(|h| *h == column).unwrap()]
            .parse()
            .unwrap()
    };
    let find = |section: &str, role: &str| {
        rows.iter()
            .find(|r| r[0] == section && r[1] == role)
            .unwrap_or_else(|| panic!("no {section} {role} row in\n{tsv}"))
    };
    for row in &rows {
        let parts: f64 = header[3..].iter().map(|c| value(row, c)).sum();
        let wall = value(row, "wall_s");
        // Exact by construction; the file rounds each part to 1 ms.
        assert!((parts - wall).abs() <= 0.05 * wall + 0.01, "{row:?}");
    }
    // Peer1 sets up its wallets in §1 (CPU, the aggregator, the gateway;
    // its store commits overlap those and may be left nothing); peer2 has
    // not started anything yet.
    let setup = find("§1", "peer1");
    for column in ["cpu_s", "aggregator_s", "gateway_s"] {
        assert!(value(setup, column) > 0.0, "§1 peer1 {column}: {tsv}");
    }
    let idle = find("§1", "peer2");
    assert_eq!(value(idle, "other_s"), value(idle, "wall_s"), "{tsv}");
    // Recovery reads bundles through the gateway on both devices.
    assert!(value(find("§D.4", "peer2"), "gateway_s") > 0.0, "{tsv}");
    // The counters themselves are per section, read at its ends.
    let counters = std::fs::read_to_string(out.join("run-1/counters.tsv")).unwrap();
    assert!(
        counters
            .lines()
            .any(|l| l.starts_with("§1\tpeer1\tflush\t")),
        "{counters}"
    );
}

/// Pids of python processes whose command line contains both words (the
/// fakes, not the `soak` that names them in its own arguments).
fn pids_with(marker: &str, word: &str) -> Vec<i32> {
    processes()
        .into_iter()
        .filter(|(_, cmdline)| {
            let program = cmdline.split(' ').next().unwrap_or_default();
            program.contains("python") && cmdline.contains(marker) && cmdline.contains(word)
        })
        .map(|(pid, _)| pid)
        .collect()
}

/// `soak run` in the background with the fake peer hanging on `faucet`;
/// returns once the run is stuck there.
fn stuck_run(test: &str, out: &Path) -> std::process::Child {
    let marker = marker(test);
    let scenario = scenario("smoke.toml");
    let child = std::process::Command::cargo_bin("soak")
        .unwrap()
        .args([
            "run",
            "--scenario",
            scenario.to_str().unwrap(),
            "--peer-cmd",
            &fake_peer_cmd(&marker),
            "--testnet-cmd",
            &fake_testnet_cmd(&marker),
            "--out",
            out.to_str().unwrap(),
        ])
        .env("FAKE_PEER_HANG_ON", "faucet")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let log = out.join("run-1/script.log");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !std::fs::read_to_string(&log)
        .unwrap_or_default()
        .contains("\"op\":\"faucet\"")
    {
        assert!(Instant::now() < deadline, "the run never reached faucet");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

#[test]
fn a_testnet_dying_mid_run_is_its_failure_not_the_branchs() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let child = stuck_run("testnet-dies", &out);
    let testnet = pids_with(&marker("testnet-dies"), "fake_testnet");
    assert_eq!(testnet.len(), 1, "{testnet:?}");
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(testnet[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    // The watchdog ends the section at once (the step's own timeout is
    // minutes away), as an infrastructure failure naming the testnet.
    let output = child.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let line = error_line(&output);
    assert!(
        line.contains("testnet: exited (killed by SIGKILL) during §1"),
        "{line}"
    );
    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("run-1/summary-metrics.json")).unwrap())
            .unwrap();
    assert_eq!(summary["failure"]["kind"], "testnet_died");
    assert_eq!(summary["status"]["kind"], "infrastructure");
    assert_no_orphans(&marker("testnet-dies"));
}

#[test]
fn killing_soak_outright_leaves_no_process_behind() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let mut child = stuck_run("sigkill-soak", &out);
    assert!(!processes_with(&marker("sigkill-soak")).is_empty());
    child.kill().unwrap();
    let _ = child.wait();
    // Peers and testnet see their stdin close and stop; the peer's own
    // child goes with it.
    assert_no_orphans(&marker("sigkill-soak"));
}

#[test]
fn a_hung_peer_gets_no_shutdown_and_its_end_is_logged() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let output = fake_run(
        "hung-teardown",
        &out,
        &["--step-timeout-ms", "1500"],
        &[("FAKE_PEER_HANG_ON", "faucet")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    let log = std::fs::read_to_string(out.join("run-1/script.log")).unwrap();
    let teardown = log.split("teardown").nth(1).unwrap_or_default();
    assert!(
        !teardown.contains("\"op\":\"shutdown\""),
        "a hung peer must not cost a shutdown timeout: {teardown}"
    );
    assert!(teardown.contains("peer1 ended ("), "{teardown}");
    assert!(teardown.contains("testnet ended ("), "{teardown}");
}

#[test]
fn a_peer_that_offers_no_ops_or_not_the_scenarios_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let output = fake_run(
        "no-ops",
        &dir.path().join("a"),
        &[],
        &[("FAKE_PEER_NO_OPS", "1")],
    );
    assert_eq!(output.status.code(), Some(3), "{}", stderr(&output));
    assert!(
        error_line(&output).contains("lists no ops"),
        "{}",
        error_line(&output)
    );

    // An op the peer does not offer is the scenario's mistake: exit 2.
    let path = dir.path().join("teleport.toml");
    std::fs::write(
        &path,
        "name = \"t\"\n[[peers]]\nname = \"peer1\"\n[[sections]]\nid = \"1\"\ntitle = \"t\"\n[[sections.steps]]\npeer = \"peer1\"\nop = \"teleport\"\n",
    )
    .unwrap();
    let marker = marker("teleport");
    let output = soak(
        &[
            "run",
            "--scenario",
            path.to_str().unwrap(),
            "--peer-cmd",
            &fake_peer_cmd(&marker),
            "--testnet-cmd",
            &fake_testnet_cmd(&marker),
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert!(
        error_line(&output).contains("teleport"),
        "{}",
        error_line(&output)
    );
}

#[test]
fn a_variant_setting_the_peer_refuses_is_one_line_in_its_words_and_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let (peer, testnet) = workspace_binaries();
    let output = soak(
        &[
            "run",
            "--peer-cmd",
            &peer,
            "--testnet-cmd",
            &testnet,
            "--peer-env",
            "SPHERE_FANOUT=0",
            "--set",
            "bundles=0",
            "--out",
            dir.path().join("run").to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    let text = stderr(&output);
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("peer1") && lines[0].contains("SPHERE_FANOUT"),
        "the peer's own reason should be the line: {text}"
    );
}
