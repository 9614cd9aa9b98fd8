//! The fault suite: real peers and a real testnet, killed, stopped or
//! interrupted at random moments of the default scenario (and the payer's
//! peer killed at random moments of the payment, §C.2, which random moments
//! of the whole run rarely hit), and after every trial the invariants a user
//! relies on:
//!
//! - the documented exit code (3 for a crash, a hang or a dead testnet, 130
//!   for Ctrl-C), never 1: an infrastructure fault is not the branch's;
//! - one error line naming the process and where it happened;
//! - the run folder and its files;
//! - no process left behind, whoever died (the harness included);
//! - for a killed peer, the SDK's own invariant once its wallets are
//!   reopened: per identity the devices agree, no token is held twice, and
//!   the tokens held sum to the supply the faucet minted (see
//!   `support/reopen.rs` for how the test gets there).
//!
//! The short form (one trial per kind) runs with the workspace's tests; the
//! long form is `FAULT_TRIALS=20 cargo test -p soakgate --test faults --
//! --ignored --nocapture`, which prints the counts.

// The counts are the suite's report: printed on purpose.
#![allow(clippy::print_stdout)]

mod support;
// The fault suite's alone, so not in `support/mod.rs`.
#[path = "support/reopen.rs"]
mod reopen;

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::OnceLock,
    time::{Duration, Instant},
};

use assert_cmd::cargo::CommandCargoExt;
use nix::{sys::signal::Signal, unistd::Pid};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use reopen::{Reopened, SharedTestnet, reopen_and_check};
use support::{fixture, processes, workspace_binaries};

/// The faults a trial can inject.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fault {
    KillPeer,
    /// SIGKILL the payer's peer within §C.2 (it also hosts the payee's
    /// `receive` there): random moments rarely land in so short a section.
    KillPeerPaying,
    StopPeer,
    KillTestnet,
    StopTestnet,
    KillHarness,
    InterruptHarness,
}

const ALL: [Fault; 7] = [
    Fault::KillPeer,
    Fault::KillPeerPaying,
    Fault::StopPeer,
    Fault::KillTestnet,
    Fault::StopTestnet,
    Fault::KillHarness,
    Fault::InterruptHarness,
];

/// Step timeout of the trials: a stopped process is found within this.
const STEP_TIMEOUT_MS: &str = "6000";

/// How long after `invoice_pay` is sent a [`Fault::KillPeerPaying`] may
/// land: §C.2 (pay, flush, receive) takes about 0.3 s on the quick profile.
const PAYING_WINDOW_S: f64 = 0.4;

/// One `soak run` of the default scenario at 3 active bundles on the quick
/// profile, with a testnet seed that marks its processes.
struct Trial {
    out: PathBuf,
    seed: String,
    child: Child,
    /// Set for a trial whose wallets are reopened after the fault.
    reopenable: Option<Reopenable>,
}

/// What a trial needs so its wallets can be reopened after a peer kill:
/// peers behind `tap_peer.py` (which records their mnemonics and faucet
/// calls in `tap_dir`, outside the run folder), a testnet that outlives the
/// harness (fronted by `attached_testnet.py`), and `--keep` so the peers'
/// data dirs stay.
struct Reopenable {
    tap_dir: PathBuf,
    testnet: SharedTestnet,
}

impl Trial {
    fn start(dir: &Path, index: u64, reopenable: bool) -> Trial {
        let (peer, testnet) = workspace_binaries();
        let out = dir.join(format!("trial-{index}"));
        let seed = format!("{}{index:04}", std::process::id());
        let mut peer_cmd = peer.clone();
        let mut testnet_cmd = format!("{testnet} --set seed={seed}");
        let mut extra = Vec::new();
        let reopenable = reopenable.then(|| {
            let tap_dir = dir.join(format!("tap-{index}"));
            let ready = dir.join(format!("ready-{index}.json"));
            let testnet = SharedTestnet::start(&testnet, &seed, ready);
            peer_cmd = format!(
                "python3 {} {} {peer}",
                fixture("tap_peer.py").display(),
                tap_dir.display()
            );
            // The seed marks the stand-in, so a leftover one is found.
            testnet_cmd = format!(
                "python3 {} {} seed={seed}",
                fixture("attached_testnet.py").display(),
                testnet.ready_file.display()
            );
            extra.push("--keep");
            Reopenable { tap_dir, testnet }
        });
        let child = Command::cargo_bin("soak")
            .unwrap()
            .args([
                "run",
                "--peer-cmd",
                &peer_cmd,
                "--testnet-cmd",
                &testnet_cmd,
                "--set",
                "bundles=3",
                "--step-timeout-ms",
                STEP_TIMEOUT_MS,
                "--out",
                out.to_str().unwrap(),
                "--quiet",
            ])
            .args(extra)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        Trial {
            out,
            seed,
            child,
            reopenable,
        }
    }

    /// Pids of this trial's processes whose command line also holds `word`.
    fn pids(&self, word: &str) -> Vec<i32> {
        processes()
            .into_iter()
            .filter(|(_, cmdline)| {
                let ours = cmdline.contains(self.out.to_str().unwrap_or("?"))
                    || cmdline.contains(&format!("seed={}", self.seed));
                // The tapping proxy is not the peer: the fault is for
                // the real one.
                ours && cmdline.contains(word)
                    && !cmdline.contains("soak run")
                    && !cmdline.contains("tap_peer.py")
            })
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Waits until the tap shows peer1's `invoice_pay` sent; false if the
    /// run ended (or a minute went by) first.
    fn paying(&mut self) -> bool {
        let Some(reopenable) = &self.reopenable else {
            return false;
        };
        let tap = reopenable.tap_dir.join("peer1.jsonl");
        let deadline = Instant::now() + Duration::from_secs(60);
        while Instant::now() < deadline {
            if std::fs::read_to_string(&tap).is_ok_and(|t| t.contains("\"pay_sent\"")) {
                return true;
            }
            if self.child.try_wait().ok().flatten().is_some() {
                return false;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        false
    }

    /// Everything this trial started that is still there (zombies aside),
    /// but for the shared testnet while the reopen check needs it.
    fn leftovers(&self) -> Vec<String> {
        let spared = self.reopenable.as_ref().map(|r| r.testnet.pid());
        processes()
            .into_iter()
            .filter(|(pid, cmdline)| {
                *pid != self.child.id() as i32
                    && Some(*pid) != spared
                    && (cmdline.contains(self.out.to_str().unwrap_or("?"))
                        || cmdline.contains(&format!("seed={}", self.seed)))
            })
            .map(|(_, cmdline)| cmdline)
            .collect()
    }
}

fn signal(pid: i32, signal: Signal) -> bool {
    nix::sys::signal::kill(Pid::from_raw(pid), signal).is_ok()
}

/// How long a clean run takes here: faults land inside it.
fn clean_run_seconds() -> f64 {
    static SECONDS: OnceLock<f64> = OnceLock::new();
    *SECONDS.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let started = Instant::now();
        let trial = Trial::start(dir.path(), 0, false);
        let output = trial.child.wait_with_output().unwrap();
        assert_eq!(
            output.status.code(),
            Some(0),
            "the clean run must pass: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        started.elapsed().as_secs_f64()
    })
}

/// What a trial came to.
#[derive(Debug)]
enum Result_ {
    /// The fault landed and every invariant of the harness held; for a
    /// peer kill, what the reopened wallets came to.
    Held(Option<PeerKill>),
    /// The run ended before the fault could land; nothing to check.
    Missed,
}

/// A peer kill's reopen check.
#[derive(Debug)]
struct PeerKill {
    /// Where the kill landed, from the error line: the role and the op
    /// that was pending, as in "peer1 during `invoice_pay`".
    at: String,
    /// The section it landed in (`§C.2`), or `start-up`.
    section: String,
    reopened: Reopened,
}

impl PeerKill {
    /// From the harness's error line: "peer1: exited (killed by SIGKILL)
    /// while `invoice_pay` was pending in §C.2: …", or "… before answering
    /// `hello` …" for a kill at start-up.
    fn from_line(role: &str, line: &str, reopened: Reopened) -> PeerKill {
        let pending = line
            .split_once("while ")
            .and_then(|(_, rest)| rest.split(':').next())
            .and_then(|rest| rest.split_once(" was pending in "));
        let (op, section) = pending.unwrap_or(("`hello`", "start-up"));
        PeerKill {
            at: format!("{role} during {op}"),
            section: section.to_owned(),
            reopened,
        }
    }
}

/// Injects `fault` after `delay` and checks the invariants.
fn trial(dir: &Path, index: u64, fault: Fault, delay: Duration) -> Result_ {
    let reopenable = matches!(fault, Fault::KillPeer | Fault::KillPeerPaying);
    let mut trial = Trial::start(dir, index, reopenable);
    if fault == Fault::KillPeerPaying && !trial.paying() {
        let _ = trial.child.kill();
        let _ = trial.child.wait();
        assert_no_leftovers(&trial);
        return Result_::Missed;
    }
    std::thread::sleep(delay);
    if trial.child.try_wait().ok().flatten().is_some() {
        return Result_::Missed;
    }
    // The payer (and §C.2's payee) is on peer1.
    let role = if index.is_multiple_of(2) || fault == Fault::KillPeerPaying {
        "peer1"
    } else {
        "peer2"
    };
    let landed = match fault {
        Fault::KillPeer | Fault::KillPeerPaying | Fault::StopPeer => {
            let pids = trial.pids(&format!("workspace/{role}"));
            let sig = if fault != Fault::StopPeer {
                Signal::SIGKILL
            } else {
                Signal::SIGSTOP
            };
            pids.first().is_some_and(|&pid| signal(pid, sig))
        }
        Fault::KillTestnet | Fault::StopTestnet => {
            let pids = trial.pids("sphere-testnet");
            let sig = if fault == Fault::KillTestnet {
                Signal::SIGKILL
            } else {
                Signal::SIGSTOP
            };
            pids.first().is_some_and(|&pid| signal(pid, sig))
        }
        Fault::KillHarness => signal(trial.child.id() as i32, Signal::SIGKILL),
        Fault::InterruptHarness => signal(trial.child.id() as i32, Signal::SIGINT),
    };
    if !landed {
        let _ = trial.child.kill();
        let _ = trial.child.wait();
        assert_no_leftovers(&trial);
        return Result_::Missed;
    }
    let output = trial_output(&mut trial);
    let code = output.0;
    let stderr = output.1;
    let script = trial.out.join("run-1/script.log");
    assert!(script.exists(), "{fault:?}: script.log lost");
    match fault {
        Fault::KillHarness => {}
        Fault::InterruptHarness => {
            assert_eq!(code, Some(130), "{fault:?}: {stderr}");
            assert_files(&trial.out, fault);
        }
        _ => {
            // The run may have finished its last step just before the
            // fault; then it passed and there is nothing to blame.
            if code == Some(0) {
                assert_no_leftovers(&trial);
                return Result_::Missed;
            }
            assert_eq!(
                code,
                Some(3),
                "{fault:?} must be an infrastructure failure, never the branch's: {stderr}"
            );
            let line = stderr
                .lines()
                .find(|l| {
                    l.contains("exited")
                        || l.contains("stopped")
                        || l.contains("no answer")
                        || l.contains("before answering `hello`")
                })
                .unwrap_or_default()
                .to_owned();
            let named = match fault {
                // Behind the tapping proxy a peer starts more slowly, so an
                // early kill can land before it answers `hello`: no section
                // then, but still named.
                Fault::KillPeer | Fault::KillPeerPaying => {
                    line.contains(role)
                        && line.contains("killed by SIGKILL")
                        && (line.contains('§') || line.contains("before answering `hello`"))
                }
                Fault::StopPeer => {
                    line.contains(role)
                        && (line.contains("stopped (SIGSTOP)") || line.contains("no answer to"))
                        && line.contains('§')
                }
                Fault::KillTestnet => line.contains("testnet: exited (killed by SIGKILL)"),
                Fault::StopTestnet => line.contains("testnet: stopped answering"),
                _ => true,
            };
            assert!(named, "{fault:?}: the error line must name it: {stderr}");
            assert_files(&trial.out, fault);
            if let Some(tap_dir) = trial.reopenable.as_ref().map(|r| r.tap_dir.clone()) {
                // Everything but the shared testnet is gone before the
                // wallets are reopened; then the testnet goes too, and
                // nothing at all may be left.
                assert_no_leftovers(&trial);
                let (peer, _) = workspace_binaries();
                let reopened = reopen_and_check(&peer, &tap_dir);
                trial.reopenable = None;
                assert_no_leftovers(&trial);
                return Result_::Held(Some(PeerKill::from_line(role, &line, reopened)));
            }
        }
    }
    assert_no_leftovers(&trial);
    Result_::Held(None)
}

/// The reopen checks of a kind's trials, counted.
#[derive(Default)]
struct LedgerCounts {
    /// Trials whose wallets were reopened.
    reopened: u32,
    /// Of those, trials whose supply could be judged (no faucet call in
    /// flight at the kill).
    conserved_checked: u32,
    /// Trials skipped for conservation: a faucet call was in flight.
    faucet_in_flight: u32,
    /// Tokens seen across the reopened trials.
    tokens: usize,
    /// Trials per section the kill landed in.
    sections: std::collections::BTreeMap<String, u32>,
    /// Trials whose tokens did not sum to the supply.
    supply_lost: u32,
    /// Every broken invariant, tagged with its trial.
    violations: Vec<String>,
}

impl LedgerCounts {
    /// Counts trial `index`'s check; returns its line for the output.
    fn add(&mut self, index: u64, kill: &PeerKill) -> String {
        let r = &kill.reopened;
        self.reopened += 1;
        self.tokens += r.tokens;
        *self.sections.entry(kill.section.clone()).or_default() += 1;
        let conservation = match &r.supply {
            Some(supply) => {
                self.conserved_checked += 1;
                let lost: i128 = r.lost.values().sum();
                if lost != 0 {
                    self.supply_lost += 1;
                }
                let minted: u128 = supply.values().sum();
                format!(
                    "supply {} UCT, {} base units missing",
                    minted / 1_000_000_000_000_000_000,
                    lost
                )
            }
            None => {
                self.faucet_in_flight += 1;
                format!(
                    "conservation not judged: faucet in flight ({})",
                    r.uncertain.join(", ")
                )
            }
        };
        self.violations
            .extend(r.violations.iter().map(|v| format!("trial {index}: {v}")));
        format!(
            "  trial {index}: killed {} in {}; reopened {} identities on {}, {} tokens; {conservation}; {} violations",
            kill.at,
            kill.section,
            r.identities,
            r.devices.join(" "),
            r.tokens,
            r.violations.len()
        )
    }

    fn summary(&self, fault: Fault) -> String {
        let sections: Vec<String> = self
            .sections
            .iter()
            .map(|(section, n)| format!("{section} {n}"))
            .collect();
        format!(
            "fault suite: {fault:?} reopen: {} trials reopened (kills by section: {}), {} tokens checked; supply judged in {} ({} skipped: a faucet call was in flight at the kill); {} trials short of supply; {} violations (token lost, held twice, devices disagree, reopen failed)",
            self.reopened,
            sections.join(", "),
            self.tokens,
            self.conserved_checked,
            self.faucet_in_flight,
            self.supply_lost,
            self.violations.len()
        )
    }
}

/// Waits for the harness (bounded) and returns its exit code and stderr.
fn trial_output(trial: &mut Trial) -> (Option<i32>, String) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Some(status)) = trial.child.try_wait() {
            let mut stderr = String::new();
            if let Some(mut pipe) = trial.child.stderr.take() {
                use std::io::Read;
                let _ = pipe.read_to_string(&mut stderr);
            }
            return (status.code(), stderr);
        }
        assert!(
            Instant::now() < deadline,
            "soak did not end after the fault"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn assert_files(out: &Path, fault: Fault) {
    for file in [
        "script.log",
        "summary-metrics.json",
        "totals.tsv",
        "samples.tsv",
    ] {
        assert!(
            out.join("run-1").join(file).exists(),
            "{fault:?}: run-1/{file} lost"
        );
    }
    assert!(
        out.join("manifest.json").exists(),
        "{fault:?}: manifest.json lost"
    );
}

fn assert_no_leftovers(trial: &Trial) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let left = trial.leftovers();
        if left.is_empty() {
            return;
        }
        assert!(Instant::now() < deadline, "processes left behind: {left:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `trials` trials of each fault at seeded random moments of a clean run.
fn suite(trials: u64, seed: u64) {
    let seconds = clean_run_seconds();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut index = 1;
    for fault in ALL {
        let (mut held, mut missed) = (0, 0);
        let mut ledgers = LedgerCounts::default();
        while held < trials {
            let at = if fault == Fault::KillPeerPaying {
                rng.random_range(0.0..PAYING_WINDOW_S)
            } else {
                // Within the first 80 % of a clean run, after start-up.
                rng.random_range(0.15..0.8) * seconds
            };
            match trial(dir.path(), index, fault, Duration::from_secs_f64(at)) {
                Result_::Held(kill) => {
                    held += 1;
                    if let Some(kill) = kill {
                        println!("{}", ledgers.add(index, &kill));
                    }
                }
                Result_::Missed => missed += 1,
            }
            index += 1;
            assert!(
                missed < 3 * trials + 3,
                "{fault:?}: the fault keeps missing"
            );
        }
        println!(
            "fault suite: {fault:?}: {held} trials held every invariant ({missed} missed the run)"
        );
        if ledgers.reopened > 0 {
            println!("{}", ledgers.summary(fault));
            if !ledgers.violations.is_empty() {
                // The kept data dirs and taps are the evidence.
                let kept = dir.keep();
                panic!(
                    "{fault:?}: the reopened wallets broke the SDK's invariant (trials kept in {}):\n{}",
                    kept.display(),
                    ledgers.violations.join("\n")
                );
            }
        }
    }
}

#[test]
fn every_fault_is_named_contained_and_never_charged_to_the_branch() {
    suite(1, 7);
}

#[test]
#[ignore = "long form: FAULT_TRIALS (default 20) trials of each fault"]
fn fault_suite_long_form() {
    let trials = std::env::var("FAULT_TRIALS")
        .ok()
        .and_then(|t| t.parse().ok())
        .unwrap_or(20);
    suite(trials, 1234);
}
