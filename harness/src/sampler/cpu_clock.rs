//! Exact CPU time of each role's process tree at one instant, read
//! straight from `/proc`.
//!
//! The sampler's CPU% is a rate over one-second ticks: a one-second burst
//! inside a short section is one or two samples, smeared into its
//! neighbours. CPU time is a clock, so reading it at both ends of a section
//! gives the section's CPU-seconds with no sampling error, only the
//! kernel's accounting grain (one clock tick, 10 ms on Linux).
//!
//! A tree's CPU time is the sum, over its live members, of each process's
//! own user and system time plus that of the children it has reaped
//! (`cutime`, `cstime`): a child that ran and exited inside the section is
//! counted once, in its parent, and a live one once, as itself. A
//! descendant that exits without being reaped (a zombie) is still listed
//! and still counted as itself.
//!
//! `sysinfo` is not used here: it offers a process's own accumulated time
//! but not its reaped children's, and it refreshes every process of the
//! machine to find them, where one pass over `/proc/*/stat` does both.

use std::{
    collections::{BTreeMap, HashMap},
    time::Duration,
};

use super::RoleRoot;

/// What one `/proc/<pid>/stat` line says about CPU and parentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatLine {
    /// The process.
    pub pid: u32,
    /// Its parent.
    pub ppid: u32,
    /// `utime + stime + cutime + cstime`, in clock ticks.
    pub cpu_ticks: u64,
}

/// Parses one `/proc/<pid>/stat` line; `None` when it is not one.
///
/// The command name (field 2) is in parentheses and may itself hold spaces
/// and parentheses, so fields are counted from the *last* `)`.
pub fn parse_stat(line: &str) -> Option<StatLine> {
    let (head, rest) = line.rsplit_once(')')?;
    let pid = head.split_once('(')?.0.trim().parse().ok()?;
    // After the name: state (3), ppid (4), ... utime (14), stime (15),
    // cutime (16), cstime (17). `rest` starts at field 3.
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
    let ppid = u32::try_from(field(4)?).ok()?;
    // cutime and cstime are signed in the kernel's format; never negative
    // in practice, and a negative one would be a corrupt line.
    let cpu_ticks = field(14)?
        .checked_add(field(15)?)?
        .checked_add(field(16)?)?
        .checked_add(field(17)?)?;
    Some(StatLine {
        pid,
        ppid,
        cpu_ticks,
    })
}

/// Sums each root's tree over `lines` (every process of the machine):
/// role -> CPU ticks. A root absent from `lines` gives no entry.
pub fn tree_ticks(lines: &[StatLine], roots: &[RoleRoot]) -> BTreeMap<String, u64> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    let mut ticks: HashMap<u32, u64> = HashMap::new();
    for line in lines {
        children.entry(line.ppid).or_default().push(line.pid);
        ticks.insert(line.pid, line.cpu_ticks);
    }
    roots
        .iter()
        .filter(|(_, root)| ticks.contains_key(root))
        .map(|(role, root)| {
            let members = super::tree_members(&children, *root, |pid| ticks.contains_key(&pid));
            let sum = members.iter().filter_map(|pid| ticks.get(pid)).sum();
            (role.clone(), sum)
        })
        .collect()
}

/// Each role's tree CPU time now. Roles whose root is gone are left out,
/// and on a system without `/proc` the map is empty: the record then has no
/// CPU-seconds rather than wrong ones.
pub fn read_tree_cpu(roots: &[RoleRoot]) -> BTreeMap<String, Duration> {
    let Some(tick) = clock_tick() else {
        return BTreeMap::new();
    };
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return BTreeMap::new();
    };
    let lines: Vec<StatLine> = entries
        .flatten()
        .filter(|e| e.file_name().to_str().is_some_and(is_pid))
        // A process that exits between listing and reading is skipped:
        // it is not part of any tree any more.
        .filter_map(|e| std::fs::read_to_string(e.path().join("stat")).ok())
        .filter_map(|text| parse_stat(&text))
        .collect();
    tree_ticks(&lines, roots)
        .into_iter()
        .map(|(role, ticks)| (role, tick * u32::try_from(ticks).unwrap_or(u32::MAX)))
        .collect()
}

fn is_pid(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(|b| b.is_ascii_digit())
}

/// The length of one clock tick (`sysconf(_SC_CLK_TCK)`).
fn clock_tick() -> Option<Duration> {
    let per_second = nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK).ok()??;
    let per_second = u32::try_from(per_second).ok().filter(|&t| t > 0)?;
    Some(Duration::from_secs(1) / per_second)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stat(pid: u32, name: &str, ppid: u32, utime: u64, stime: u64, cutime: u64) -> String {
        format!(
            "{pid} ({name}) S {ppid} 1 1 0 -1 4194560 100 0 0 0 {utime} {stime} {cutime} 2 20 0 1 0 100 1000 10"
        )
    }

    #[test]
    fn parses_the_cpu_fields_after_the_last_parenthesis() {
        let line = stat(42, "a (weird) name) x", 7, 11, 5, 3);
        assert_eq!(
            parse_stat(&line),
            Some(StatLine {
                pid: 42,
                ppid: 7,
                cpu_ticks: 11 + 5 + 3 + 2
            })
        );
    }

    #[test]
    fn refuses_what_is_not_a_stat_line() {
        for bad in [
            "",
            "42 (name S 7",
            "x (name) S 7 1 1 0 -1 0 0 0 0 0 1 1 1 1",
            "42 (name) S 7 1 1",
            "42 (name) S 7 1 1 0 -1 0 0 0 0 0 1 1 -1 1",
        ] {
            assert_eq!(parse_stat(bad), None, "{bad}");
        }
    }

    #[test]
    fn a_tree_sums_its_members_and_nothing_else() {
        let lines: Vec<StatLine> = [
            stat(10, "peer", 1, 100, 10, 0),
            stat(11, "child", 10, 5, 5, 0),
            stat(12, "grandchild", 11, 1, 0, 0),
            stat(20, "other", 1, 1000, 0, 0),
            stat(30, "testnet", 1, 7, 0, 40),
        ]
        .iter()
        .filter_map(|l| parse_stat(l))
        .collect();
        let roots = vec![
            ("peer1".to_owned(), 10),
            ("testnet".to_owned(), 30),
            ("gone".to_owned(), 99),
        ];
        let ticks = tree_ticks(&lines, &roots);
        // Each test line has cstime 2.
        assert_eq!(ticks["peer1"], (110 + 2) + (10 + 2) + (1 + 2));
        assert_eq!(ticks["testnet"], 7 + 40 + 2);
        assert!(!ticks.contains_key("gone"));
    }

    #[test]
    fn agrees_with_the_kernels_process_clock() {
        use nix::time::{ClockId, clock_gettime};
        let clock = || {
            let t = clock_gettime(ClockId::CLOCK_PROCESS_CPUTIME_ID).unwrap();
            Duration::new(t.tv_sec() as u64, t.tv_nsec() as u32)
        };
        let roots = vec![("me".to_owned(), std::process::id())];
        let (proc_before, clock_before) = (read_tree_cpu(&roots)["me"], clock());
        // Burn 300 ms of CPU, counted on CPU time so a busy machine only
        // makes it take longer.
        let mut x = 0_u64;
        while clock() < clock_before + Duration::from_millis(300) {
            for i in 0..10_000 {
                x = std::hint::black_box(x.wrapping_mul(31).wrapping_add(i));
            }
        }
        let (clock_after, proc_after) = (clock(), read_tree_cpu(&roots)["me"]);
        let by_proc = (proc_after - proc_before).as_secs_f64();
        let by_clock = (clock_after - clock_before).as_secs_f64();
        // Two 10 ms ticks of grain, and whatever the test's other threads
        // burn while /proc is being read (a few ms).
        assert!(
            (by_proc - by_clock).abs() <= 0.05,
            "/proc says {by_proc:.3} s, the process clock {by_clock:.3} s"
        );
    }
}
