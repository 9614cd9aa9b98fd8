//! Exact per-section counters: each peer's cumulative `counters` (its
//! totals since start, `docs/peer-protocol.md`) read at both ends of every
//! section and subtracted.
//!
//! Windows ([`super::attribute`]) go whole to the section they overlap
//! most, so with 5 s windows a 1 s section gets its neighbours' events or
//! none of its own. Two reads per section have no such error: every event
//! and every millisecond of a `wait.*` union falls between exactly one pair
//! of reads. What a difference cannot give is a section's longest single
//! event; see [`BoundaryRead`] for how `max_ms` is filled.

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::Value;

use super::{CounterStats, RawStats, RowKey, SectionCounters, Sum, into_rows};

/// One peer's counters since it started, by name.
pub type Cumulative = BTreeMap<String, CounterStats>;

/// One role's counters read just before and just after one section.
#[derive(Debug, Clone, PartialEq)]
pub struct BoundaryRead {
    /// The section's label as the spans name it (`§C.2`).
    pub section: String,
    /// The peer's role.
    pub role: String,
    /// Read before the section's first request.
    pub before: Cumulative,
    /// Read after its last response.
    pub after: Cumulative,
}

impl BoundaryRead {
    /// What happened between the two reads, per counter; counters that did
    /// not move are left out.
    ///
    /// `max_ms` is exact when the section set a new high for the counter
    /// (the cumulative maximum grew, so the section holds that event);
    /// otherwise the section's longest event is unknown but at least its
    /// mean, which is what is given.
    pub fn spent(&self) -> BTreeMap<&str, CounterStats> {
        self.after
            .iter()
            .filter_map(|(name, after)| {
                let before = self.before.get(name).copied().unwrap_or_default();
                let count = after.count.saturating_sub(before.count);
                let total_ms = (after.total_ms - before.total_ms).max(0.0);
                if count == 0 && total_ms == 0.0 {
                    return None;
                }
                let avg_ms = if count == 0 {
                    0.0
                } else {
                    total_ms / count as f64
                };
                let max_ms = if after.max_ms > before.max_ms {
                    after.max_ms
                } else {
                    avg_ms
                };
                Some((
                    name.as_str(),
                    CounterStats {
                        count,
                        total_ms,
                        avg_ms,
                        max_ms,
                    },
                ))
            })
            .collect()
    }
}

#[derive(Deserialize)]
struct CountersReply {
    counters: BTreeMap<String, RawStats>,
}

/// The `counters` op's result (`{"counters": {name: stats}}`); `None` when
/// it is not one, or a time in it is negative or not finite.
pub fn parse_counters_reply(result: &Value) -> Option<Cumulative> {
    let reply = CountersReply::deserialize(result).ok()?;
    reply
        .counters
        .into_iter()
        .map(|(name, stats)| Some((name, stats.checked()?)))
        .collect()
}

/// Rows like [`super::attribute`]'s, from boundary reads: per section (in
/// the order of `reads`), per role and over all roles; then
/// [`super::BETWEEN_SECTIONS`] (what each role's last read holds beyond
/// its sections: set-up before the first section, the pauses between
/// sections), then [`super::RUN_TOTAL`] (each role's last read).
pub fn rows_from_reads(reads: &[BoundaryRead]) -> Vec<SectionCounters> {
    let mut names: Vec<&str> = Vec::new();
    for read in reads {
        if !names.contains(&read.section.as_str()) {
            names.push(&read.section);
        }
    }
    let between = names.len();
    let total = between + 1;
    let mut sums: BTreeMap<RowKey, Sum> = BTreeMap::new();
    let mut add = |section: usize, role: &str, counter: &str, stats: &CounterStats| {
        for role in [(false, role.to_owned()), (true, String::new())] {
            let sum = sums.entry((section, role, counter.to_owned())).or_default();
            sum.count = sum.count.saturating_add(stats.count);
            sum.total_ms += stats.total_ms;
            sum.max_ms = sum.max_ms.max(stats.max_ms);
        }
    };
    // Per role: its last read (the run so far) and what its sections took.
    let mut last: BTreeMap<&str, &Cumulative> = BTreeMap::new();
    let mut in_sections: BTreeMap<&str, Cumulative> = BTreeMap::new();
    for read in reads {
        let section = names
            .iter()
            .position(|name| *name == read.section)
            .unwrap_or(between);
        for (counter, stats) in read.spent() {
            add(section, &read.role, counter, &stats);
            let sum = in_sections
                .entry(&read.role)
                .or_default()
                .entry(counter.to_owned())
                .or_default();
            sum.count = sum.count.saturating_add(stats.count);
            sum.total_ms += stats.total_ms;
        }
        last.insert(&read.role, &read.after);
    }
    for (role, run) in last {
        let outside = BoundaryRead {
            section: String::new(),
            role: role.to_owned(),
            before: in_sections.remove(role).unwrap_or_default(),
            after: run.clone(),
        };
        for (counter, stats) in outside.spent() {
            add(between, role, counter, &stats);
        }
        for (counter, stats) in run {
            if stats.count > 0 || stats.total_ms > 0.0 {
                add(total, role, counter, stats);
            }
        }
    }
    into_rows(sums, &names)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::counters::{ALL_ROLES, BETWEEN_SECTIONS, RUN_TOTAL};

    fn stats(count: u64, total_ms: f64, max_ms: f64) -> CounterStats {
        CounterStats {
            count,
            total_ms,
            avg_ms: if count == 0 {
                0.0
            } else {
                total_ms / count as f64
            },
            max_ms,
        }
    }

    fn cumulative(entries: &[(&str, u64, f64, f64)]) -> Cumulative {
        entries
            .iter()
            .map(|&(name, count, total, max)| (name.to_owned(), stats(count, total, max)))
            .collect()
    }

    fn read(section: &str, role: &str, before: Cumulative, after: Cumulative) -> BoundaryRead {
        BoundaryRead {
            section: section.into(),
            role: role.into(),
            before,
            after,
        }
    }

    fn row<'a>(
        rows: &'a [SectionCounters],
        section: &str,
        role: &str,
        counter: &str,
    ) -> Option<&'a SectionCounters> {
        rows.iter()
            .find(|r| r.section == section && r.role == role && r.counter == counter)
    }

    #[test]
    fn a_section_gets_exactly_what_happened_between_its_reads() {
        let start = cumulative(&[("pin_car", 2, 20.0, 12.0), ("wait.gateway", 2, 18.0, 11.0)]);
        let mid = cumulative(&[("pin_car", 5, 80.0, 30.0), ("wait.gateway", 5, 60.0, 11.0)]);
        let end = cumulative(&[("pin_car", 6, 84.0, 30.0), ("wait.gateway", 5, 60.0, 11.0)]);
        let reads = [
            read("§C.2", "peer1", start.clone(), mid.clone()),
            read("§D.4", "peer1", mid, end),
        ];
        let rows = rows_from_reads(&reads);
        let c2 = row(&rows, "§C.2", "peer1", "pin_car").unwrap();
        assert_eq!((c2.count, c2.total_ms, c2.max_ms), (3, 60.0, 30.0));
        // No new high in §D.4: its longest event is at least its mean.
        let d4 = row(&rows, "§D.4", "peer1", "pin_car").unwrap();
        assert_eq!((d4.count, d4.total_ms, d4.max_ms), (1, 4.0, 4.0));
        // A counter that did not move in a section has no row there.
        assert!(row(&rows, "§D.4", "peer1", "wait.gateway").is_none());
        // Before the first section: the two pins of set-up.
        let setup = row(&rows, BETWEEN_SECTIONS, "peer1", "pin_car").unwrap();
        assert_eq!((setup.count, setup.total_ms), (2, 20.0));
        let run = row(&rows, RUN_TOTAL, "peer1", "pin_car").unwrap();
        assert_eq!((run.count, run.total_ms), (6, 84.0));
    }

    #[test]
    fn all_roles_rows_sum_the_peers_and_sections_keep_their_order() {
        let zero = Cumulative::new();
        let one = cumulative(&[("flush", 1, 100.0, 100.0)]);
        let two = cumulative(&[("flush", 2, 150.0, 100.0)]);
        let reads = [
            read("§D.4", "peer1", zero.clone(), one.clone()),
            read("§D.4", "peer2", zero.clone(), two.clone()),
            read("§A.1", "peer1", one.clone(), two.clone()),
            read("§A.1", "peer2", two.clone(), two.clone()),
        ];
        let rows = rows_from_reads(&reads);
        let all = row(&rows, "§D.4", ALL_ROLES, "flush").unwrap();
        assert_eq!((all.count, all.total_ms), (3, 250.0));
        let sections: Vec<&str> = rows.iter().map(|r| r.section.as_str()).collect();
        let first_a1 = sections.iter().position(|s| *s == "§A.1").unwrap();
        let last_d4 = sections.iter().rposition(|s| *s == "§D.4").unwrap();
        assert!(last_d4 < first_a1, "{sections:?}");
        assert!(row(&rows, BETWEEN_SECTIONS, ALL_ROLES, "flush").is_none());
        assert_eq!(row(&rows, RUN_TOTAL, ALL_ROLES, "flush").unwrap().count, 4);
    }

    #[test]
    fn a_reply_parses_or_is_refused_whole() {
        let good = serde_json::json!({"counters": {
            "flush": {"count": 2, "total_ms": 10.0, "avg_ms": 5.0, "max_ms": 6.0},
            "verify_proofs.verify": {"count": 7, "total_ms": 0}
        }});
        let parsed = parse_counters_reply(&good).unwrap();
        assert_eq!(parsed["flush"].max_ms, 6.0);
        assert_eq!(parsed["verify_proofs.verify"].count, 7);
        assert_eq!(
            parse_counters_reply(&serde_json::json!({"counters": {}})),
            Some(Cumulative::new())
        );
        for bad in [
            serde_json::json!({}),
            serde_json::json!({"counters": [1]}),
            serde_json::json!({"counters": {"x": {"count": -1, "total_ms": 1}}}),
            serde_json::json!({"counters": {"x": {"count": 1, "total_ms": -1}}}),
        ] {
            assert_eq!(parse_counters_reply(&bad), None, "{bad}");
        }
    }
}
