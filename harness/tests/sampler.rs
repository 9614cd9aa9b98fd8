//! The sampler against real process trees: what a tree contains, that its
//! RSS is its members' and its CPU its own, that a process outside the tree
//! is not counted but shows up as "other" in the contamination guard.
//!
//! Every child runs in its own process group and is killed with its group
//! by a guard, even when an assertion fails. Tests that burn CPU take a
//! lock so they do not compete with each other for cores.

#![cfg(target_os = "linux")]

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use soakgate::sampler::{
    ContaminationCheck, MachineSample, ProcessTreeSample, ResourceSummary, Sampler, spawn_sampling,
};
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

/// Serialises the tests that spawn processes, so a burner of one test does
/// not show up as load in another.
static PROCESSES: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    PROCESSES.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A `sh -c SCRIPT` child in its own process group; dropping it kills the
/// whole group and reaps the shell.
struct Group {
    child: Child,
}

impl Group {
    fn spawn(script: &str) -> Self {
        let child = Command::new("sh")
            .arg("-c")
            .arg(script)
            .process_group(0)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn sh");
        Self { child }
    }

    fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Group {
    fn drop(&mut self) {
        let pgid = Pid::from_raw(i32::try_from(self.child.id()).expect("pid fits i32"));
        let _ = killpg(pgid, Signal::SIGKILL);
        let _ = self.child.wait();
    }
}

/// Reads `/proc` directly: pid -> (parent pid, RSS bytes), processes only.
/// An oracle independent of sysinfo.
fn proc_table() -> HashMap<u32, (u32, u64)> {
    let mut table = HashMap::new();
    for entry in std::fs::read_dir("/proc").expect("read /proc").flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        // "pid (comm) state ppid ...": comm may hold spaces, so split after
        // the last parenthesis.
        let Some(rest) = stat.rsplit_once(')').map(|(_, rest)| rest) else {
            continue;
        };
        let Some(ppid) = rest.split_whitespace().nth(1).and_then(|s| s.parse().ok()) else {
            continue;
        };
        table.insert(pid, (ppid, vm_rss(pid).unwrap_or(0)));
    }
    table
}

/// `VmRSS` of `/proc/PID/status`, in bytes (absent for zombies).
fn vm_rss(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// The pids of `root`'s tree according to [`proc_table`], sorted.
fn oracle_tree(table: &HashMap<u32, (u32, u64)>, root: u32) -> Vec<u32> {
    let mut members = vec![root];
    let mut next = 0;
    while let Some(&pid) = members.get(next) {
        next += 1;
        members.extend(
            table
                .iter()
                .filter(|(_, (ppid, _))| *ppid == pid)
                .map(|(child, _)| *child),
        );
    }
    members.sort_unstable();
    members
}

/// Waits until `root`'s tree has `count` processes (a shell forks its
/// background jobs after it starts).
fn wait_for_tree(root: u32, count: usize) -> Vec<u32> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let members = oracle_tree(&proc_table(), root);
        if members.len() == count || Instant::now() > deadline {
            return members;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn mem_total_bytes() -> u64 {
    let meminfo = std::fs::read_to_string("/proc/meminfo").expect("read /proc/meminfo");
    let line = meminfo
        .lines()
        .find(|l| l.starts_with("MemTotal:"))
        .expect("MemTotal");
    let kib: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("MemTotal in kB");
    kib * 1024
}

fn tree<'a>(trees: &'a [ProcessTreeSample], role: &str) -> &'a ProcessTreeSample {
    trees.iter().find(|t| t.role == role).expect("role sampled")
}

#[test]
fn tree_is_the_shell_and_its_two_sleeps() {
    let _serial = serial();
    let group = Group::spawn("sleep 30 & sleep 30 & wait");
    // sh itself plus one process per background job: `sleep 30 &` forks
    // a child that execs sleep, and `wait` is a builtin. Three in all.
    let members = wait_for_tree(group.pid(), 3);
    assert_eq!(members.len(), 3, "tree of sh: {members:?}");

    let mut sampler = Sampler::new().expect("sampler");
    let roots = vec![("peer1".to_string(), group.pid())];
    let (trees, machine) = sampler.sample(&roots, Duration::from_millis(5));
    let expected_rss: u64 = members.iter().filter_map(|pid| vm_rss(*pid)).sum();

    let peer1 = tree(&trees, "peer1");
    assert_eq!(peer1.pid_count, 3);
    assert_eq!(peer1.elapsed, Duration::from_millis(5));
    // Idle processes do not change their RSS between the two reads.
    assert_eq!(peer1.rss_bytes, expected_rss, "members {members:?}");
    assert!(peer1.rss_bytes > 0);
    // A few MB of shell and sleeps against the whole machine's memory.
    let total = mem_total_bytes();
    assert!(
        peer1.rss_bytes * 50 < total,
        "{} of {total}",
        peer1.rss_bytes
    );
    assert!(!machine.cpu_valid, "a sampler's first sample has no CPU");
    assert_eq!(peer1.cpu_pct, 0.0);
}

#[test]
fn a_separate_tree_is_not_counted_and_a_dead_root_is_empty() {
    let _serial = serial();
    let first = Group::spawn("sleep 30 & sleep 30 & wait");
    let second = Group::spawn("sleep 30 & wait");
    assert_eq!(wait_for_tree(first.pid(), 3).len(), 3);
    assert_eq!(wait_for_tree(second.pid(), 2).len(), 2);

    let mut sampler = Sampler::new().expect("sampler");
    let me = std::process::id();
    let roots = vec![
        ("peer1".to_string(), first.pid()),
        ("peer2".to_string(), second.pid()),
        ("harness".to_string(), me),
    ];
    let (trees, _) = sampler.sample(&roots, Duration::ZERO);
    assert_eq!(tree(&trees, "peer1").pid_count, 3);
    assert_eq!(tree(&trees, "peer2").pid_count, 2);
    // The test process is the parent of both shells, so its tree holds
    // both (1 + 3 + 2): a root's tree is everything below it.
    assert_eq!(tree(&trees, "harness").pid_count, 6);

    let gone = second.pid();
    drop(second);
    let (trees, _) = sampler.sample(&[("peer2".to_string(), gone)], Duration::ZERO);
    assert_eq!(trees[0].pid_count, 0);
    assert_eq!(trees[0].rss_bytes, 0);
    assert_eq!(trees[0].cpu_pct, 0.0);
}

#[test]
fn burning_descendant_counts_idle_tree_does_not() {
    let _serial = serial();
    // The loop runs in a forked subshell, a child of the root: the CPU is
    // found only by walking down the tree.
    let burner = Group::spawn("(while :; do :; done) & wait");
    let idle = Group::spawn("sleep 30 & wait");
    assert_eq!(wait_for_tree(burner.pid(), 2).len(), 2);
    assert_eq!(wait_for_tree(idle.pid(), 2).len(), 2);

    let mut sampler = Sampler::new().expect("sampler");
    let roots = vec![
        ("burner".to_string(), burner.pid()),
        ("idle".to_string(), idle.pid()),
    ];
    let _ = sampler.sample(&roots, Duration::ZERO);
    std::thread::sleep(Duration::from_secs(1));
    let (trees, machine) = sampler.sample(&roots, Duration::from_secs(1));

    let hot = tree(&trees, "burner");
    let cold = tree(&trees, "idle");
    assert_eq!(hot.pid_count, 2);
    assert!(hot.cpu_pct > 50.0, "burner at {:.1}%", hot.cpu_pct);
    // One busy loop cannot take more than one core (plus the 10 ms grain
    // of CPU time over the ~1 s interval).
    assert!(hot.cpu_pct < 110.0, "burner at {:.1}%", hot.cpu_pct);
    assert!(cold.cpu_pct < 20.0, "idle at {:.1}%", cold.cpu_pct);
    assert!(machine.cpu_valid);
    assert!(
        (machine.cpu_pct_ours - (hot.cpu_pct + cold.cpu_pct)).abs() < 1e-6,
        "ours is the sum of the trees"
    );
    // The machine saw at least our burner.
    assert!(
        machine.cpu_pct_total + 10.0 >= hot.cpu_pct,
        "{machine:?} vs {hot:?}"
    );
    assert!(machine.cpu_pct_total <= 100.0 * machine.cores as f64 + 1e-6);
}

#[test]
fn a_burner_outside_the_tree_is_other_load() {
    let _serial = serial();
    let ours = Group::spawn("sleep 30 & wait");
    let other = Group::spawn("while :; do :; done");
    assert_eq!(wait_for_tree(ours.pid(), 2).len(), 2);

    let mut sampler = Sampler::new().expect("sampler");
    let roots = vec![("peer1".to_string(), ours.pid())];
    let mut machine: Vec<MachineSample> = Vec::new();
    let mut trees: Vec<ProcessTreeSample> = Vec::new();
    let started = Instant::now();
    for _ in 0..3 {
        let (t, m) = sampler.sample(&roots, started.elapsed());
        trees.extend(t);
        machine.push(m);
        std::thread::sleep(Duration::from_millis(500));
    }
    for sample in &trees {
        assert_eq!(sample.pid_count, 2);
        assert!(
            sample.cpu_pct < 20.0,
            "the burner leaked into the tree: {sample:?}"
        );
    }
    for sample in machine.iter().filter(|m| m.cpu_valid) {
        assert!(sample.cpu_pct_ours < 20.0, "{sample:?}");
    }

    // The burner takes about one core; flag anything above half a core.
    let cores = machine[0].cores as f64;
    let result = ContaminationCheck::evaluate(&machine, 0.5 / cores);
    assert_eq!(result.samples, 2, "the first sample has no CPU");
    assert!(result.flagged, "{result:?}");
    assert!(result.other_cpu_share_mean > 0.5 / cores, "{result:?}");
    assert!(result.other_cpu_share_max <= 1.0);
    // The same run against a threshold of the whole machine is clean.
    assert!(!ContaminationCheck::evaluate(&machine, 1.0).flagged);
    drop(other);
}

#[test]
fn resource_summary_trims_the_warm_up() {
    let sample = |secs: u64, rss: u64, cpu: f64| ProcessTreeSample {
        elapsed: Duration::from_secs(secs),
        role: "peer1".to_string(),
        pid_count: 3,
        rss_bytes: rss,
        cpu_pct: cpu,
    };
    let samples = vec![
        sample(0, 50_000_000, 0.0),
        sample(15, 400_000_000, 180.0),
        sample(30, 100_000_000, 40.0),
        sample(45, 200_000_000, 60.0),
    ];
    let skip = Duration::from_secs(30);
    let summary = ResourceSummary::from_samples(&samples, "peer1", skip);
    assert_eq!(summary.samples, 4);
    assert_eq!(summary.averaged_samples, 2);
    assert_eq!(summary.trimmed_mean_rss_bytes, Some(150_000_000));
    assert_eq!(summary.mean_cpu_pct, Some(50.0));
    // Maxima include the warm-up.
    assert_eq!(summary.max_rss_bytes, 400_000_000);
    assert_eq!(summary.max_cpu_pct, 180.0);

    let short = ResourceSummary::from_samples(&samples[..2], "peer1", skip);
    assert_eq!(short.trimmed_mean_rss_bytes, None);
    assert_eq!(short.mean_cpu_pct, None);
    assert_eq!(short.max_rss_bytes, 400_000_000);
}

#[test]
fn sampling_task_follows_roots_until_cancelled() {
    // A runtime of its own inside a plain test, so the serial lock is not
    // held across awaits of an async test.
    let _serial = serial();
    let first = Group::spawn("sleep 30 & wait");
    let second = Group::spawn("sleep 30 & sleep 30 & wait");
    assert_eq!(wait_for_tree(first.pid(), 2).len(), 2);
    assert_eq!(wait_for_tree(second.pid(), 3).len(), 3);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(sampling_task(first.pid(), second.pid()));
}

async fn sampling_task(first: u32, second: u32) {
    let (roots_tx, roots_rx) = watch::channel(vec![("peer1".to_string(), first)]);
    let cancel = CancellationToken::new();
    let started = Instant::now();
    // 50 ms is raised to the 200 ms CPU minimum.
    let (handle, mut events) =
        spawn_sampling(roots_rx, Duration::from_millis(50), started, cancel.clone())
            .expect("spawn sampling");

    let event = events.recv().await.expect("first event");
    assert!(!event.machine.cpu_valid);
    assert_eq!(event.trees.len(), 1);
    assert_eq!(event.trees[0].pid_count, 2);
    let previous = event.machine.elapsed;

    roots_tx.send_modify(|roots| roots.push(("peer2".to_string(), second)));
    let event = events.recv().await.expect("second event");
    assert!(event.machine.cpu_valid);
    assert!(event.machine.elapsed >= previous + Duration::from_millis(150));
    let event = if event.trees.len() == 2 {
        event
    } else {
        events.recv().await.expect("third event")
    };
    assert_eq!(event.trees.len(), 2);
    assert_eq!(tree(&event.trees, "peer2").pid_count, 3);

    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), handle)
        .await
        .expect("task ends when cancelled")
        .expect("task did not panic");
    // Whatever was queued drains, then the channel closes.
    while events.recv().await.is_some() {}
}
