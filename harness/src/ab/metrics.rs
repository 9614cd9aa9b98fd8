//! One number per metric per iteration: what the statistics compare.
//!
//! The unit of evidence is an iteration, so each metric takes exactly one
//! value from each iteration that measured it: a section's wall time, the
//! run's total, a role's trimmed-mean RSS, a counter's total time. A metric
//! missing from an iteration (a section not reached, a counter never
//! recorded) simply has fewer values there.

use std::collections::BTreeMap;

use crate::record::{IterationRecord, IterationStatus, SectionStatus};

/// What kind of quantity a metric is; decides its noise band and unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
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
    /// Total time of a perf counter in a section, in milliseconds.
    CounterTime,
    /// Count of a perf counter in a section.
    CounterCount,
}

/// A metric's name and kind.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct MetricId {
    /// Kind first, so tables group by kind in a stable order.
    pub kind: MetricKind,
    /// Position of the section in the scenario (sections keep scenario order).
    pub order: usize,
    /// Shown name: `§C.2 Bob pays`, `total`, `peer1 mean RSS`, `§D.4 verify_proofs ms`.
    pub name: String,
}

/// The name of the whole-scenario metric.
pub const TOTAL: &str = "total";

/// Values per metric, for one branch, in iteration order.
pub type MetricValues = BTreeMap<MetricId, Vec<f64>>;

/// Extracts every metric of `records`. Only iterations that ran to the end
/// (passed or failed an assertion) count for times; a crashed or
/// interrupted iteration's partial timings would bias the comparison.
pub fn extract(records: &[IterationRecord]) -> MetricValues {
    let mut values = MetricValues::new();
    for record in records {
        let complete = matches!(
            record.status,
            IterationStatus::Passed | IterationStatus::Failed
        );
        if !complete {
            continue;
        }
        let mut push = |kind, order, name: String, value: f64| {
            values
                .entry(MetricId { kind, order, name })
                .or_default()
                .push(value);
        };
        for (order, section) in record.sections.iter().enumerate() {
            if let (Some(seconds), SectionStatus::Pass | SectionStatus::Fail) =
                (section.seconds, section.status)
            {
                push(
                    MetricKind::SectionTime,
                    order,
                    format!("§{} {}", section.id, section.title),
                    seconds,
                );
            }
        }
        if record
            .sections
            .iter()
            .all(|s| s.status != SectionStatus::NotRun)
        {
            push(
                MetricKind::TotalTime,
                usize::MAX,
                TOTAL.to_owned(),
                record.total_seconds,
            );
        }
        for resource in &record.resources {
            if let Some(rss) = resource.trimmed_mean_rss_bytes {
                push(
                    MetricKind::MeanRss,
                    0,
                    format!("{} mean RSS", resource.role),
                    rss as f64,
                );
            }
            push(
                MetricKind::MaxRss,
                0,
                format!("{} max RSS", resource.role),
                resource.max_rss_bytes as f64,
            );
            if let Some(cpu) = resource.mean_cpu_pct {
                push(
                    MetricKind::MeanCpu,
                    0,
                    format!("{} mean CPU", resource.role),
                    cpu,
                );
            }
        }
        for row in &record.counters {
            if row.role != crate::counters::ALL_ROLES {
                continue;
            }
            let order = record
                .sections
                .iter()
                .position(|s| format!("§{}", s.id) == row.section)
                .unwrap_or(usize::MAX);
            push(
                MetricKind::CounterTime,
                order,
                format!("{} {} ms", row.section, row.counter),
                row.total_ms,
            );
            push(
                MetricKind::CounterCount,
                order,
                format!("{} {} count", row.section, row.counter),
                row.count as f64,
            );
        }
    }
    values
}
