//! Resource sampling of each role's own process tree.
//!
//! A role (`peer1`, `peer2`, `testnet`, ...) is a root process started by the
//! harness. Its tree is the root and every descendant found by following
//! parent links; the sampler sums RSS and CPU% over that tree and nothing
//! else. It never reports system-wide figures as if they were ours: a
//! parallel build once doubled a "max RSS" because a sampler looked at the
//! whole machine. The whole machine is sampled only for the contamination
//! guard ([`ContaminationCheck`]), which compares it with our trees.
//!
//! Main types: [`Sampler`] (one reused `sysinfo::System`), the per-tick
//! [`ProcessTreeSample`]s and [`MachineSample`], [`spawn_sampling`] (the
//! async task the runner consumes), and the reductions [`ResourceSummary`]
//! and [`ContaminationCheck`].
//!
//! CPU% is CPU time over wall time between two samples, so the first
//! sample of a [`Sampler`] reports 0 CPU (flagged by
//! [`MachineSample::cpu_valid`]); the runner samples every interval
//! (default 1 s), so later samples are right. The sampler computes a
//! process's CPU% itself from its accumulated CPU time rather than taking
//! `sysinfo`'s `cpu_usage()`: sysinfo reports 0 for a process whose CPU
//! time was still 0 at the previous refresh, so a peer that had just
//! started would read 0 % for its whole first busy second. Here a process
//! born since the previous sample has all its CPU time counted in the
//! interval it appeared in.
//!
//! Limits: a process that starts and exits between two samples is never
//! seen, and the CPU time of one that exits is lost for its last interval;
//! a descendant that detaches (double-forks and is re-parented to init or a
//! subreaper) leaves the tree and is no longer counted. The peers and the
//! testnet do none of that.
//!
//! ```no_run
//! use std::time::{Duration, Instant};
//! use soakgate::sampler::Sampler;
//!
//! let started = Instant::now();
//! let mut sampler = Sampler::new()?;
//! let roots = vec![("peer1".to_string(), 4242_u32)];
//! let (_first, _) = sampler.sample(&roots, started.elapsed()); // CPU 0 here
//! std::thread::sleep(Duration::from_secs(1));
//! let (trees, machine) = sampler.sample(&roots, started.elapsed());
//! println!("{} pids, {} bytes, {:.0}% of a core", trees[0].pid_count, trees[0].rss_bytes, trees[0].cpu_pct);
//! println!("machine {:.0}%, ours {:.0}%", machine.cpu_pct_total, machine.cpu_pct_ours);
//! # Ok::<(), soakgate::sampler::SamplerError>(())
//! ```

pub mod cpu_clock;
mod summary;
mod task;

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sysinfo::{ProcessRefreshKind, ProcessesToUpdate, System};

pub use summary::{Contamination, ContaminationCheck, DEFAULT_THRESHOLD_SHARE, ResourceSummary};
pub use sysinfo::MINIMUM_CPU_UPDATE_INTERVAL;
pub use task::{SampleEvent, spawn_sampling};

/// A role's root process: its name (`peer1`, `testnet`, ...) and its pid.
pub type RoleRoot = (String, u32);

/// Errors of the sampler.
#[derive(Debug, thiserror::Error)]
pub enum SamplerError {
    /// `sysinfo` could not be set up on this machine (or does not support
    /// this platform).
    #[error("cannot read process information: {0}")]
    Init(#[source] sysinfo::Error),
}

/// One role's process tree at one instant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessTreeSample {
    /// Time since the run started.
    pub elapsed: Duration,
    /// The role's name.
    pub role: String,
    /// Processes in the tree, root included (threads are not counted). 0
    /// when the root no longer exists.
    pub pid_count: usize,
    /// Resident set size summed over the tree, in bytes.
    pub rss_bytes: u64,
    /// CPU summed over the tree, in percent of one core (so it can exceed
    /// 100), over the time since the previous sample.
    pub cpu_pct: f64,
}

/// The whole machine's CPU next to ours, for the contamination guard.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MachineSample {
    /// Time since the run started.
    pub elapsed: Duration,
    /// Machine CPU in percent of one core, from 0 to `100 * cores`, so it is
    /// comparable with [`ProcessTreeSample::cpu_pct`].
    pub cpu_pct_total: f64,
    /// CPU of all our roles' trees together (a process in two roles' trees
    /// is counted once), in percent of one core.
    pub cpu_pct_ours: f64,
    /// Logical CPUs of the machine: the capacity is `100 * cores`.
    pub cores: usize,
    /// `false` for the first sample of a [`Sampler`], whose CPU figures are
    /// 0 because CPU% is a difference between two refreshes.
    pub cpu_valid: bool,
}

/// Samples process trees and the machine, reusing one `sysinfo::System`.
pub struct Sampler {
    system: System,
    /// When the last refresh happened, to keep refreshes far enough apart
    /// for CPU% and to know the first sample.
    last_refresh: Option<Instant>,
    /// parent pid -> child pids, rebuilt on every sample; kept to reuse its
    /// allocation.
    children: HashMap<u32, Vec<u32>>,
    /// pid -> its CPU time at this refresh and the previous one.
    cpu_times: CpuTimes,
}

/// Accumulated CPU time of every process at the last two refreshes, keyed
/// by pid and checked against the start time so a reused pid is a new
/// process.
#[derive(Default)]
struct CpuTimes {
    /// pid -> (start time in s since the epoch, CPU ms) at this refresh.
    current: HashMap<u32, (u64, u64)>,
    /// The same at the previous refresh.
    previous: HashMap<u32, (u64, u64)>,
    /// Wall time between the two refreshes; `None` after the first.
    wall: Option<Duration>,
}

impl CpuTimes {
    /// CPU of `pid` between the two refreshes, in percent of one core; 0
    /// after the first refresh. A process not alive at the previous refresh
    /// was born since, so all its CPU time falls in this interval.
    fn pct(&self, pid: u32) -> f64 {
        let Some(wall) = self.wall.filter(|wall| !wall.is_zero()) else {
            return 0.0;
        };
        let Some(&(start, now_ms)) = self.current.get(&pid) else {
            return 0.0;
        };
        let before_ms = match self.previous.get(&pid) {
            Some(&(prev_start, ms)) if prev_start == start => ms,
            _ => 0,
        };
        now_ms.saturating_sub(before_ms) as f64 / (wall.as_secs_f64() * 1000.0) * 100.0
    }
}

impl std::fmt::Debug for Sampler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sampler")
            .field("processes", &self.system.processes().len())
            .field("last_refresh", &self.last_refresh)
            .finish()
    }
}

impl Sampler {
    /// Creates a sampler; nothing is read until the first [`Sampler::sample`].
    pub fn new() -> Result<Self, SamplerError> {
        let system = System::new().map_err(SamplerError::Init)?;
        Ok(Self {
            system,
            last_refresh: None,
            children: HashMap::new(),
            cpu_times: CpuTimes::default(),
        })
    }

    /// Samples every role's process tree and the machine.
    ///
    /// Returns one [`ProcessTreeSample`] per root, in the order given (a
    /// root that no longer exists gives a sample with `pid_count` 0), and
    /// the [`MachineSample`].
    ///
    /// CPU% is measured since the previous call. The first call of a
    /// sampler therefore reports 0 CPU everywhere, and a call less than
    /// [`MINIMUM_CPU_UPDATE_INTERVAL`] (200 ms on Linux) after the previous
    /// one first sleeps for the rest of it, because `sysinfo` would not
    /// refresh the machine's CPU times (and CPU time has a 10 ms grain).
    /// This is a blocking call (it reads `/proc` for every process, a few
    /// ms): from async code use [`spawn_sampling`] or `spawn_blocking`.
    pub fn sample(
        &mut self,
        roots: &[RoleRoot],
        elapsed: Duration,
    ) -> (Vec<ProcessTreeSample>, MachineSample) {
        if let Some(last) = self.last_refresh {
            let since = last.elapsed();
            if since < MINIMUM_CPU_UPDATE_INTERVAL {
                std::thread::sleep(MINIMUM_CPU_UPDATE_INTERVAL - since);
            }
        }
        let first = self.last_refresh.is_none();
        self.refresh();

        self.index_processes();
        let mut ours: HashSet<u32> = HashSet::new();
        let trees = roots
            .iter()
            .map(|(role, root)| {
                let members = tree_members(&self.children, *root, |pid| self.is_process(pid));
                let (mut rss_bytes, mut cpu_pct) = (0_u64, 0.0_f64);
                for pid in &members {
                    if let Some(process) = self.system.process(sysinfo::Pid::from_u32(*pid)) {
                        rss_bytes = rss_bytes.saturating_add(process.memory());
                        cpu_pct += self.cpu_times.pct(*pid);
                    }
                }
                ours.extend(members.iter().copied());
                ProcessTreeSample {
                    elapsed,
                    role: role.clone(),
                    pid_count: members.len(),
                    rss_bytes,
                    cpu_pct,
                }
            })
            .collect();

        let cores = self.cores();
        let cpu_pct_ours: f64 = ours.iter().map(|pid| self.cpu_times.pct(*pid)).sum();
        // `global_cpu_usage` is a share of the whole machine (0..100); scale
        // it to percent of one core like the per-process figures.
        let cpu_pct_total = f64::from(self.system.global_cpu_usage()) * cores as f64;
        let machine = MachineSample {
            elapsed,
            cpu_pct_total: if first { 0.0 } else { cpu_pct_total },
            cpu_pct_ours: if first { 0.0 } else { cpu_pct_ours },
            cores,
            cpu_valid: !first,
        };
        (trees, machine)
    }

    /// Refreshes processes (memory and CPU only) and the machine's CPU.
    fn refresh(&mut self) {
        // `without_tasks`: listing every thread of every process means one
        // more directory read per process, and threads are not counted
        // anyway (a process's CPU time already includes its threads').
        let kind = ProcessRefreshKind::nothing()
            .with_memory()
            .with_cpu()
            .without_tasks();
        self.system
            .refresh_processes_specifics(ProcessesToUpdate::All, true, kind);
        // On Linux the process refresh above already refreshed the global
        // CPU times for the same period, and this call is then a no-op
        // (sysinfo skips refreshes closer than MINIMUM_CPU_UPDATE_INTERVAL);
        // elsewhere it is what updates `global_cpu_usage`.
        self.system.refresh_cpu_usage();
        let now = Instant::now();
        self.cpu_times.wall = self.last_refresh.map(|last| now - last);
        self.last_refresh = Some(now);
    }

    /// Rebuilds the parent -> children map and the CPU times in one pass
    /// over the process list, so walking several roots costs no more.
    fn index_processes(&mut self) {
        self.children.values_mut().for_each(Vec::clear);
        let times = &mut self.cpu_times;
        std::mem::swap(&mut times.previous, &mut times.current);
        times.current.clear();
        for (pid, process) in self.system.processes() {
            if process.thread_kind().is_some() {
                continue;
            }
            times.current.insert(
                pid.as_u32(),
                (process.start_time(), process.accumulated_cpu_time()),
            );
            if let Some(parent) = process.parent() {
                self.children
                    .entry(parent.as_u32())
                    .or_default()
                    .push(pid.as_u32());
            }
        }
        // Drop parents that had no children this time so the map does not
        // grow with every pid the machine ever had.
        self.children.retain(|_, kids| !kids.is_empty());
    }

    /// Whether `pid` is a live process (not a thread) in the last refresh.
    fn is_process(&self, pid: u32) -> bool {
        self.system
            .process(sysinfo::Pid::from_u32(pid))
            .is_some_and(|process| process.thread_kind().is_none())
    }

    /// Logical CPUs, as counted in the machine's CPU times.
    fn cores(&self) -> usize {
        match self.system.cpus().len() {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        }
    }
}

/// The pids of `root`'s tree (root first), following `children` links.
///
/// Empty when `root` is not a live process. A visited set guards against
/// loops (pid reuse between reading two processes could make one).
fn tree_members(
    children: &HashMap<u32, Vec<u32>>,
    root: u32,
    exists: impl Fn(u32) -> bool,
) -> Vec<u32> {
    if !exists(root) {
        return Vec::new();
    }
    let mut members = vec![root];
    let mut seen: HashSet<u32> = HashSet::from([root]);
    let mut next = 0;
    while let Some(&pid) = members.get(next) {
        next += 1;
        for &child in children.get(&pid).map(Vec::as_slice).unwrap_or_default() {
            if seen.insert(child) && exists(child) {
                members.push(child);
            }
        }
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(edges: &[(u32, u32)]) -> HashMap<u32, Vec<u32>> {
        let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
        for &(parent, child) in edges {
            children.entry(parent).or_default().push(child);
        }
        children
    }

    #[test]
    fn tree_walk_takes_descendants_only() {
        // 1 -> 10 -> 11, 10 -> 12 -> 13; 1 -> 20 (another tree)
        let children = map(&[(1, 10), (10, 11), (10, 12), (12, 13), (1, 20)]);
        let mut members = tree_members(&children, 10, |_| true);
        members.sort_unstable();
        assert_eq!(members, vec![10, 11, 12, 13]);
        assert_eq!(tree_members(&children, 20, |_| true), vec![20]);
    }

    #[test]
    fn tree_walk_of_missing_root_is_empty() {
        let children = map(&[(10, 11)]);
        assert!(tree_members(&children, 10, |pid| pid != 10).is_empty());
    }

    #[test]
    fn tree_walk_survives_loops() {
        let children = map(&[(10, 11), (11, 12), (12, 10)]);
        let mut members = tree_members(&children, 10, |_| true);
        members.sort_unstable();
        assert_eq!(members, vec![10, 11, 12]);
    }

    #[test]
    fn cpu_times_count_births_and_reused_pids() {
        let mut times = CpuTimes::default();
        times.current.insert(1, (100, 5_000));
        assert_eq!(times.pct(1), 0.0, "nothing to compare after one refresh");

        times.previous = std::mem::take(&mut times.current);
        times.wall = Some(Duration::from_secs(2));
        times.current.insert(1, (100, 6_000)); // 1 s of CPU in 2 s
        times.current.insert(2, (101, 500)); // born since: all of it
        times.previous.insert(3, (90, 9_000));
        times.current.insert(3, (102, 200)); // pid reused: a new process
        assert_eq!(times.pct(1), 50.0);
        assert_eq!(times.pct(2), 25.0);
        assert_eq!(times.pct(3), 10.0);
        assert_eq!(times.pct(4), 0.0, "unknown pid");
    }

    #[test]
    fn sampler_sees_its_own_process() {
        let mut sampler = Sampler::new().expect("sampler");
        let me = std::process::id();
        let (trees, machine) = sampler.sample(&[("me".into(), me)], Duration::ZERO);
        assert_eq!(trees.len(), 1);
        assert!(trees[0].pid_count >= 1);
        assert!(trees[0].rss_bytes > 0);
        assert!(!machine.cpu_valid);
        assert_eq!(machine.cpu_pct_total, 0.0);
        assert!(machine.cores >= 1);
    }

    #[test]
    fn gone_root_gives_empty_sample() {
        let mut sampler = Sampler::new().expect("sampler");
        // Pid numbers this high are above Linux's pid_max limit (4194304).
        let (trees, _) = sampler.sample(&[("ghost".into(), 999_999_999)], Duration::ZERO);
        assert_eq!(trees[0].pid_count, 0);
        assert_eq!(trees[0].rss_bytes, 0);
    }
}
