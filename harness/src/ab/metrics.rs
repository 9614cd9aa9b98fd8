//! One number per metric per iteration: what the statistics compare.
//!
//! The unit of evidence is an iteration, so each metric takes exactly one
//! value from each iteration that measured it: a section's wall time, the
//! run's total, a role's trimmed-mean RSS, a counter's total time. A metric
//! missing from an iteration (a section not reached, a counter never
//! recorded) simply has fewer values there.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::{
    record::{IterationRecord, IterationStatus, SectionStatus},
    scenario::SectionId,
};

/// What kind of quantity a metric is; decides its noise band and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// Wall time of a section, in seconds.
    SectionTime,
    /// Wall time of the whole scenario, in seconds.
    TotalTime,
    /// Trimmed mean RSS of a role's process tree, in bytes.
    MeanRss,
    /// Largest RSS of a role's process tree, in bytes.
    MaxRss,
    /// Mean CPU of a role's process tree, in percent of one core.
    MeanCpu,
    /// CPU-seconds a role's process tree spent in a section (exact, from
    /// the kernel's clocks at the section's ends).
    SectionCpu,
    /// CPU-seconds a role's process tree spent in all the sections.
    TotalCpu,
    /// Total time of a perf counter in a section, in milliseconds.
    CounterTime,
    /// Count of a perf counter in a section.
    CounterCount,
}

/// Which section a metric belongs to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SectionRef {
    /// A section of the scenario: its id as the scenario writes it (`C.2`)
    /// and its title.
    Scenario {
        /// The scenario's id.
        id: SectionId,
        /// The section's title.
        title: String,
    },
    /// A span the counters report outside the scenario's sections, such as
    /// the run total or the time between sections, by its own label.
    Span(String),
}

impl SectionRef {
    /// `§C.2`, or the span's label (`(run total)`).
    pub fn label(&self) -> String {
        match self {
            SectionRef::Scenario { id, .. } => id.to_string(),
            SectionRef::Span(label) => label.clone(),
        }
    }

    /// The title, empty for spans.
    pub fn title(&self) -> &str {
        match self {
            SectionRef::Scenario { title, .. } => title,
            SectionRef::Span(_) => "",
        }
    }
}

/// A metric's typed identity: what it measures, where and for whom. The
/// display name is derived from it ([`MetricId::name`]) and never parsed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct MetricId {
    /// Kind first, so tables group by kind in a stable order.
    pub kind: MetricKind,
    /// Position of the section in the scenario (sections keep scenario
    /// order); `usize::MAX` for the run as a whole.
    pub order: usize,
    /// The section, for section times and counters.
    pub section: Option<SectionRef>,
    /// The process tree, for resources.
    pub role: Option<String>,
    /// The perf counter, for counter metrics.
    pub counter: Option<String>,
}

impl MetricId {
    /// The run's total wall time.
    pub fn total() -> Self {
        Self {
            kind: MetricKind::TotalTime,
            order: usize::MAX,
            section: None,
            role: None,
            counter: None,
        }
    }

    /// The shown name: `§C.2 Bob pays`, `total`, `peer1 mean RSS`,
    /// `§D.4 verify_proofs ms`.
    pub fn name(&self) -> String {
        let section = self.section.as_ref();
        let role = self.role.as_deref().unwrap_or("?");
        let counter = self.counter.as_deref().unwrap_or("?");
        let label = section.map(SectionRef::label).unwrap_or_default();
        match self.kind {
            MetricKind::SectionTime => format!(
                "{label} {}",
                section.map(SectionRef::title).unwrap_or_default()
            ),
            MetricKind::TotalTime => TOTAL.to_owned(),
            MetricKind::MeanRss => format!("{role} mean RSS"),
            MetricKind::MaxRss => format!("{role} max RSS"),
            MetricKind::MeanCpu => format!("{role} mean CPU"),
            MetricKind::SectionCpu => format!("{label} {role} CPU s"),
            MetricKind::TotalCpu => format!("{role} CPU s"),
            MetricKind::CounterTime => format!("{label} {counter} ms"),
            MetricKind::CounterCount => format!("{label} {counter} count"),
        }
    }
}

/// The name of the whole-scenario metric.
pub const TOTAL: &str = "total";

/// Values per metric, for one branch, in iteration order.
pub type MetricValues = BTreeMap<MetricId, Vec<f64>>;

/// One metric's values for one branch with the block (shard) each came
/// from: 0 for an unsharded run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockedValues {
    /// The values, in iteration order.
    pub values: Vec<f64>,
    /// `blocks[i]` is the block of `values[i]`.
    pub blocks: Vec<u32>,
    /// For section and total times, the CPU-seconds every measured role
    /// spent in the same span (`None` where nothing was sampled; always
    /// `None` for other metrics).
    pub cpu: Vec<Option<f64>>,
}

impl BlockedValues {
    /// The CPU-seconds of every value, if every value has them.
    pub fn cpu_of_every_value(&self) -> Option<Vec<f64>> {
        self.cpu.iter().copied().collect()
    }
}

/// Extracts every metric of `records`; see [`extract_blocked`].
pub fn extract(records: &[IterationRecord]) -> MetricValues {
    extract_blocked(records)
        .into_iter()
        .map(|(id, v)| (id, v.values))
        .collect()
}

/// Extracts every metric of `records`, each value with its iteration's
/// shard. Only iterations that ran to the end (passed or failed an
/// assertion) count for times; a crashed or interrupted iteration's
/// partial timings would bias the comparison.
pub fn extract_blocked(records: &[IterationRecord]) -> BTreeMap<MetricId, BlockedValues> {
    let mut values: BTreeMap<MetricId, BlockedValues> = BTreeMap::new();
    for record in records {
        let complete = matches!(
            record.status,
            IterationStatus::Passed | IterationStatus::Failed
        );
        if !complete {
            continue;
        }
        let block = record.shard.unwrap_or(0);
        let mut push = |id: MetricId, value: f64, cpu: Option<f64>| {
            let entry = values.entry(id).or_default();
            entry.values.push(value);
            entry.blocks.push(block);
            entry.cpu.push(cpu);
        };
        let resource = |kind, role: &str| MetricId {
            kind,
            order: 0,
            section: None,
            role: Some(role.to_owned()),
            counter: None,
        };
        for (order, section) in record.sections.iter().enumerate() {
            if let (Some(seconds), SectionStatus::Pass | SectionStatus::Fail) =
                (section.seconds, section.status)
            {
                let section_ref = SectionRef::Scenario {
                    id: section.id.clone(),
                    title: section.title.clone(),
                };
                let id = MetricId {
                    kind: MetricKind::SectionTime,
                    order,
                    section: Some(section_ref.clone()),
                    role: None,
                    counter: None,
                };
                let cpu =
                    (!section.cpu_seconds.is_empty()).then(|| section.cpu_seconds.values().sum());
                push(id, seconds, cpu);
                for (role, cpu) in &section.cpu_seconds {
                    let id = MetricId {
                        kind: MetricKind::SectionCpu,
                        order,
                        section: Some(section_ref.clone()),
                        role: Some(role.clone()),
                        counter: None,
                    };
                    push(id, *cpu, None);
                }
            }
        }
        if record
            .sections
            .iter()
            .all(|s| s.status != SectionStatus::NotRun)
        {
            let per_role = total_cpu(record);
            let cpu = (!per_role.is_empty()).then(|| per_role.values().sum());
            push(MetricId::total(), record.total_seconds, cpu);
            for (role, cpu) in per_role {
                push(resource(MetricKind::TotalCpu, &role), cpu, None);
            }
        }
        for r in &record.resources {
            if let Some(rss) = r.trimmed_mean_rss_bytes {
                push(resource(MetricKind::MeanRss, &r.role), rss as f64, None);
            }
            push(
                resource(MetricKind::MaxRss, &r.role),
                r.max_rss_bytes as f64,
                None,
            );
            if let Some(cpu) = r.mean_cpu_pct {
                push(resource(MetricKind::MeanCpu, &r.role), cpu, None);
            }
        }
        for row in &record.counters {
            if row.role != crate::counters::ALL_ROLES {
                continue;
            }
            // Counter rows name their section as `§C.2`, or the run total.
            let found = record
                .sections
                .iter()
                .enumerate()
                .find(|(_, s)| row.section == s.id.to_string());
            let (order, section) = match found {
                Some((order, s)) => (
                    order,
                    SectionRef::Scenario {
                        id: s.id.clone(),
                        title: s.title.clone(),
                    },
                ),
                None => (usize::MAX, SectionRef::Span(row.section.clone())),
            };
            let counter = |kind| MetricId {
                kind,
                order,
                section: Some(section.clone()),
                role: None,
                counter: Some(row.counter.clone()),
            };
            push(counter(MetricKind::CounterTime), row.total_ms, None);
            push(counter(MetricKind::CounterCount), row.count as f64, None);
        }
    }
    values
}

/// Each role's CPU-seconds over all the sections, for the roles every
/// section measured (a role missing from one would be undercounted).
fn total_cpu(record: &IterationRecord) -> BTreeMap<String, f64> {
    let Some(first) = record.sections.first() else {
        return BTreeMap::new();
    };
    first
        .cpu_seconds
        .keys()
        .filter_map(|role| {
            let per_section: Option<Vec<f64>> = record
                .sections
                .iter()
                .map(|s| s.cpu_seconds.get(role).copied())
                .collect();
            Some((role.clone(), per_section?.iter().sum()))
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A completed iteration with one section (`§C.2`, 2 s) and counters in
    /// that section (`pin_car`) and over the whole run (`flush total`).
    pub(crate) fn record_with_counters() -> IterationRecord {
        let counter = |section: &str, counter: &str, count: u64, total_ms: f64| {
            serde_json::json!({"section": section, "role": crate::counters::ALL_ROLES,
                "counter": counter, "count": count, "total_ms": total_ms, "max_ms": 1.0})
        };
        serde_json::from_value(serde_json::json!({
            "schema_version": 1, "branch": "baseline", "iteration": 1,
            "status": {"kind": "passed"}, "started_at": "2026-11-30T00:00:00Z",
            "total_seconds": 2.0,
            "sections": [{"id": "C.2", "title": "Bob pays", "seconds": 2.0, "status": "PASS",
                "failure": null, "started_at": null, "ended_at": null}],
            "assertions": [], "resources": [], "contamination": null,
            "counters": [
                counter("§C.2", "pin_car", 3, 30.0),
                counter(crate::counters::RUN_TOTAL, "flush total", 5, 50.0)
            ],
            "peers": {}, "testnet_metrics": null
        }))
        .unwrap()
    }

    #[test]
    fn cpu_seconds_are_per_section_per_role_and_summed_only_when_complete() {
        let mut record = record_with_counters();
        let mut second = record.sections[0].clone();
        second.id = "D.4".into();
        record.sections.push(second);
        record.sections[0].cpu_seconds = [("peer1".into(), 0.25), ("testnet".into(), 0.5)].into();
        // The testnet's tree was gone at the end of §D.4: no total for it.
        record.sections[1].cpu_seconds = [("peer1".into(), 1.0)].into();
        let values = extract(&[record]);
        let find = |kind, section: Option<&str>, role: &str| {
            values
                .iter()
                .find(|(id, _)| {
                    id.kind == kind
                        && id.role.as_deref() == Some(role)
                        && id.section.as_ref().map(SectionRef::label).as_deref() == section
                })
                .map(|(id, v)| (id.name(), v.clone()))
        };
        assert_eq!(
            find(MetricKind::SectionCpu, Some("§D.4"), "peer1"),
            Some(("§D.4 peer1 CPU s".into(), vec![1.0]))
        );
        assert_eq!(
            find(MetricKind::TotalCpu, None, "peer1"),
            Some(("peer1 CPU s".into(), vec![1.25]))
        );
        assert_eq!(find(MetricKind::TotalCpu, None, "testnet"), None);
        assert!(find(MetricKind::SectionCpu, Some("§C.2"), "testnet").is_some());
    }

    #[test]
    fn counters_keep_their_section_and_name_whole() {
        let values = extract(&[record_with_counters()]);
        let ids: Vec<&MetricId> = values.keys().collect();
        let run_total = ids
            .iter()
            .find(|id| id.kind == MetricKind::CounterTime && id.order == usize::MAX)
            .unwrap();
        assert_eq!(
            run_total.section,
            Some(SectionRef::Span(crate::counters::RUN_TOTAL.into()))
        );
        // A counter name with a space stays one name; nothing is split.
        assert_eq!(run_total.counter.as_deref(), Some("flush total"));
        assert_eq!(run_total.name(), "(run total) flush total ms");
        let in_section = ids
            .iter()
            .find(|id| id.kind == MetricKind::CounterCount && id.order == 0)
            .unwrap();
        assert_eq!(in_section.section.as_ref().unwrap().label(), "§C.2");
        assert_eq!(in_section.name(), "§C.2 pin_car count");
        assert_eq!(values[*in_section], vec![3.0]);
    }
}
