//! Where a section's wall time went, per peer: CPU, backoff after 429s and
//! 5xx, waiting on each service, polling, local storage, and the rest.
//!
//! The inputs are exact: the peer's CPU-seconds in the section (its
//! process-tree clock, [`crate::sampler::cpu_clock`]) and its `wait.*`
//! counters read at the section's ends, each the wall-clock *union* of its
//! operations (eight concurrent gateway requests of 100 ms are 100 ms). The
//! categories may still overlap one another: a proof check on one thread
//! while another waits on the gateway. So that the parts add up to the wall
//! time, neither more nor less, each category takes what it measured but at
//! most what the categories before it left, in the order of [`Category`]:
//! CPU first (the one clock that says the process itself was working), then
//! backoff (time lost to rate limits is the first thing to know about), the
//! three services, polling, storage; [`Category::Other`] is what no
//! category claimed: the peer idle, waiting on the other peer or on the
//! harness between requests.

use serde::{Deserialize, Serialize};

use crate::counters::{ALL_ROLES, SectionCounters};
use crate::record::SectionRecord;
use crate::scenario::SectionId;

/// What a stretch of a peer's wall time was spent on, in allocation order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// The peer's process tree on a CPU.
    Cpu,
    /// Sleeping before a retry after a 429, a 5xx or a lost request.
    Backoff,
    /// A request to the aggregator in flight.
    Aggregator,
    /// A request to the IPFS gateway in flight.
    Gateway,
    /// A relay operation in flight.
    Relay,
    /// Sleeping before asking again for something not there yet.
    Poll,
    /// A local store transaction running.
    Store,
    /// None of the above.
    Other,
}

impl Category {
    /// Every category, in allocation order.
    pub const ALL: [Category; 8] = [
        Category::Cpu,
        Category::Backoff,
        Category::Aggregator,
        Category::Gateway,
        Category::Relay,
        Category::Poll,
        Category::Store,
        Category::Other,
    ];

    /// The category's name in tables: `cpu`, `backoff`, `aggregator`, ...
    pub fn as_str(self) -> &'static str {
        match self {
            Category::Cpu => "cpu",
            Category::Backoff => "backoff",
            Category::Aggregator => "aggregator",
            Category::Gateway => "gateway",
            Category::Relay => "relay",
            Category::Poll => "poll",
            Category::Store => "store",
            Category::Other => "other",
        }
    }

    /// The `wait.*` counter that measures it, for the waiting categories.
    pub fn counter(self) -> Option<&'static str> {
        match self {
            Category::Backoff => Some("wait.backoff"),
            Category::Aggregator => Some("wait.aggregator"),
            Category::Gateway => Some("wait.gateway"),
            Category::Relay => Some("wait.relay"),
            Category::Poll => Some("wait.poll"),
            Category::Store => Some("wait.store"),
            Category::Cpu | Category::Other => None,
        }
    }
}

/// One peer's wall time in one section, split by [`Category`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionAttribution {
    /// The section.
    pub section: SectionId,
    /// The peer's role.
    pub role: String,
    /// The section's wall time, seconds.
    pub wall_s: f64,
    /// Seconds per category, in [`Category::ALL`] order; they add up to
    /// `wall_s`.
    pub parts: Vec<(Category, f64)>,
}

impl SectionAttribution {
    /// The seconds given to `category`.
    pub fn seconds(&self, category: Category) -> f64 {
        self.parts
            .iter()
            .find(|(c, _)| *c == category)
            .map_or(0.0, |(_, s)| *s)
    }
}

/// Splits `wall_s` by category: each measured amount (seconds) capped by
/// what the categories before it left; [`Category::Other`] takes the rest.
/// Negative or non-finite amounts count as 0.
pub fn split(wall_s: f64, measured: impl Fn(Category) -> f64) -> Vec<(Category, f64)> {
    let wall_s = if wall_s.is_finite() {
        wall_s.max(0.0)
    } else {
        0.0
    };
    let mut left = wall_s;
    Category::ALL
        .iter()
        .map(|&category| {
            let want = match category {
                Category::Other => left,
                _ => {
                    let m = measured(category);
                    if m.is_finite() { m.max(0.0) } else { 0.0 }
                }
            };
            let given = want.min(left);
            left -= given;
            (category, given)
        })
        .collect()
}

/// The attribution of every measured section for every peer that has
/// counter rows (peers without the `wait.*` counters would be all
/// "other"). `counters` are the iteration's rows; a section without CPU
/// for a peer is still split, with no CPU part.
pub fn attribute_sections(
    sections: &[SectionRecord],
    counters: &[SectionCounters],
) -> Vec<SectionAttribution> {
    let mut peers: Vec<&str> = counters
        .iter()
        .filter(|row| row.role != ALL_ROLES && row.counter.starts_with("wait."))
        .map(|row| row.role.as_str())
        .collect();
    peers.sort_unstable();
    peers.dedup();
    let mut out = Vec::new();
    for section in sections {
        let Some(wall_s) = section.seconds else {
            continue;
        };
        let label = section.id.to_string();
        for role in &peers {
            let waited = |counter: &str| {
                counters
                    .iter()
                    .find(|r| r.section == label && r.role == *role && r.counter == counter)
                    .map_or(0.0, |r| r.total_ms / 1000.0)
            };
            let parts = split(wall_s, |category| match category {
                Category::Cpu => section.cpu_seconds.get(*role).copied().unwrap_or(0.0),
                other => other.counter().map_or(0.0, waited),
            });
            out.push(SectionAttribution {
                section: section.id.clone(),
                role: (*role).to_owned(),
                wall_s,
                parts,
            });
        }
    }
    out
}

/// `attribution.tsv`: section, role, wall seconds, then seconds per
/// category.
pub fn attribution_tsv(rows: &[SectionAttribution]) -> Vec<u8> {
    use std::fmt::Write;
    let mut out = String::from("section\trole\twall_s");
    for category in Category::ALL {
        let _ = write!(out, "\t{}_s", category.as_str());
    }
    out.push('\n');
    for row in rows {
        let _ = write!(out, "{}\t{}\t{:.3}", row.section, row.role, row.wall_s);
        for category in Category::ALL {
            let _ = write!(out, "\t{:.3}", row.seconds(category));
        }
        out.push('\n');
    }
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn counter(section: &str, role: &str, counter: &str, total_ms: f64) -> SectionCounters {
        SectionCounters {
            section: section.into(),
            role: role.into(),
            counter: counter.into(),
            count: 1,
            total_ms,
            max_ms: total_ms,
        }
    }

    fn section(id: &str, seconds: f64, cpu: &[(&str, f64)]) -> SectionRecord {
        SectionRecord {
            id: id.into(),
            title: String::new(),
            seconds: Some(seconds),
            status: crate::record::SectionStatus::Pass,
            failure: None,
            started_at: None,
            ended_at: None,
            cpu_seconds: cpu.iter().map(|(r, s)| ((*r).to_owned(), *s)).collect(),
            peak_rss_bytes: BTreeMap::new(),
        }
    }

    #[test]
    fn a_known_section_splits_as_measured_and_the_rest_is_other() {
        let sections = [section("C.2", 10.0, &[("peer1", 1.5)])];
        let counters = [
            counter("§C.2", "peer1", "wait.gateway", 6000.0),
            counter("§C.2", "peer1", "wait.backoff", 1000.0),
            counter("§C.2", "peer1", "pin_car", 9000.0),
            counter("§C.2", ALL_ROLES, "wait.gateway", 6000.0),
        ];
        let rows = attribute_sections(&sections, &counters);
        assert_eq!(rows.len(), 1);
        let row = &rows[0];
        assert_eq!(row.seconds(Category::Cpu), 1.5);
        assert_eq!(row.seconds(Category::Backoff), 1.0);
        assert_eq!(row.seconds(Category::Gateway), 6.0);
        assert_eq!(row.seconds(Category::Aggregator), 0.0);
        assert!((row.seconds(Category::Other) - 1.5).abs() < 1e-9);
    }

    #[test]
    fn overlapping_categories_never_add_up_to_more_than_the_wall_time() {
        // Gateway and aggregator waits overlapped and CPU ran beside them:
        // measured 2 + 3 + 4 = 9 s in a 5 s section.
        let parts = split(5.0, |c| match c {
            Category::Cpu => 2.0,
            Category::Aggregator => 3.0,
            Category::Gateway => 4.0,
            _ => 0.0,
        });
        let get = |c| parts.iter().find(|(x, _)| *x == c).unwrap().1;
        assert_eq!(get(Category::Cpu), 2.0);
        assert_eq!(get(Category::Aggregator), 3.0);
        assert_eq!(get(Category::Gateway), 0.0);
        assert_eq!(get(Category::Other), 0.0);
    }

    #[test]
    fn a_section_without_wait_counters_has_no_rows() {
        let sections = [section("1", 2.0, &[("peer1", 0.5)])];
        assert!(attribute_sections(&sections, &[counter("§1", "peer1", "flush", 5.0)]).is_empty());
    }

    proptest! {
        #[test]
        fn parts_always_sum_to_the_wall_time(
            wall in 0.0_f64..1000.0,
            measured in proptest::collection::vec(-10.0_f64..2000.0, 8),
        ) {
            let parts = split(wall, |c| measured[c as usize]);
            let sum: f64 = parts.iter().map(|(_, s)| s).sum();
            prop_assert!((sum - wall).abs() <= 1e-9 * wall.max(1.0));
            prop_assert!(parts.iter().all(|(_, s)| *s >= 0.0));
            prop_assert_eq!(parts.len(), Category::ALL.len());
        }
    }
}
