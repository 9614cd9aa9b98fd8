//! Why a section changed: each branch's time attribution side by side, and
//! a one-line answer for every section the gate called slower or faster.
//!
//! Both come from what the iterations measured, as medians per branch over
//! complete iterations: the attribution of each peer's wall time
//! ([`crate::attribution`]), the perf counters per section, and the exact
//! CPU-seconds per role. Nothing here is statistics: the verdict says
//! *whether* a section changed; this says which kind of time moved and
//! which counter moved most with it.

use std::collections::BTreeMap;

use super::{
    compare::Judgement,
    metrics::{MetricId, MetricKind, SectionRef},
};
use crate::{
    attribution::Category,
    counters::RUN_TOTAL,
    record::{IterationRecord, IterationStatus},
    scenario::SectionId,
    stats::median,
};

/// One peer's time in one section, split by category, medians per branch.
#[derive(Debug, Clone, PartialEq)]
pub struct AttributionMedians {
    /// The section.
    pub section: SectionId,
    /// The peer.
    pub role: String,
    /// Median wall time, baseline and treatment.
    pub wall: (f64, f64),
    /// Per category in [`Category::ALL`] order: median seconds, baseline
    /// and treatment.
    pub parts: Vec<(Category, f64, f64)>,
}

type Key = (usize, SectionId, String);

/// Per (section order, section id, role): wall times and per-category
/// seconds over one branch's complete iterations.
#[derive(Default)]
struct Collected {
    wall: Vec<f64>,
    parts: BTreeMap<Category, Vec<f64>>,
}

fn collect(records: &[IterationRecord]) -> BTreeMap<Key, Collected> {
    let mut out: BTreeMap<Key, Collected> = BTreeMap::new();
    for record in records
        .iter()
        .filter(|r| matches!(r.status, IterationStatus::Passed | IterationStatus::Failed))
    {
        for row in &record.attribution {
            let Some(order) = record.sections.iter().position(|s| s.id == row.section) else {
                continue;
            };
            let entry = out
                .entry((order, row.section.clone(), row.role.clone()))
                .or_default();
            entry.wall.push(row.wall_s);
            for (category, seconds) in &row.parts {
                entry.parts.entry(*category).or_default().push(*seconds);
            }
        }
    }
    out
}

/// The attribution medians of every (section, peer) both branches
/// measured, in scenario order, leaving out peers that were idle in the
/// section on both branches (all their time "other").
pub fn attribution_medians(
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
) -> Vec<AttributionMedians> {
    let (b, t) = (collect(baseline), collect(treatment));
    let med = |values: Option<&Vec<f64>>| values.map_or(0.0, |v| median(v));
    b.iter()
        .filter_map(|(key, base)| {
            let treat = t.get(key)?;
            let parts: Vec<(Category, f64, f64)> = Category::ALL
                .iter()
                .map(|&c| (c, med(base.parts.get(&c)), med(treat.parts.get(&c))))
                .collect();
            let busy = parts
                .iter()
                .any(|(c, b, t)| *c != Category::Other && (*b > 0.0 || *t > 0.0));
            busy.then(|| AttributionMedians {
                section: key.1.clone(),
                role: key.2.clone(),
                wall: (median(&base.wall), median(&treat.wall)),
                parts,
            })
        })
        .collect()
}

/// Seconds formatted with a sign: `+1.20 s`, `-0.04 s`.
fn signed_seconds(seconds: f64) -> String {
    format!("{seconds:+.2} s")
}

/// The one-line "why" of a section-time or total-time metric: the one or
/// two categories of time that moved most (summed over peers), and the
/// counter whose total time moved most, with its calls. With no perf
/// counters it falls back to the peers' CPU-seconds. `None` when nothing
/// measured moved.
pub fn why(
    id: &MetricId,
    judgement: &Judgement,
    attribution: &[AttributionMedians],
) -> Option<String> {
    let section_id = match (&id.kind, &id.section) {
        (MetricKind::SectionTime, Some(SectionRef::Scenario { id, .. })) => Some(id),
        (MetricKind::TotalTime, _) => None,
        _ => return None,
    };
    let mut parts = Vec::new();
    if let Some(categories) = category_deltas(section_id, attribution) {
        parts.push(categories);
    } else if let Some(cpu) = cpu_delta(section_id, judgement) {
        parts.push(cpu);
    }
    if let Some(counter) = counter_delta(section_id, judgement) {
        parts.push(counter);
    }
    (!parts.is_empty()).then(|| parts.join("; "))
}

/// "gateway +1.20 s, backoff +0.40 s": the measured categories whose summed
/// change is largest, the second only if it is at least a quarter of the
/// first. "Other" is never named: it is the residue (idle, waiting on the
/// other peer, or runnable but without a core on a busy machine), not a
/// cause.
fn category_deltas(
    section: Option<&SectionId>,
    attribution: &[AttributionMedians],
) -> Option<String> {
    let mut deltas: BTreeMap<Category, f64> = BTreeMap::new();
    let mut any = false;
    for row in attribution
        .iter()
        .filter(|r| section.is_none_or(|s| r.section == *s))
    {
        any = true;
        for (category, b, t) in row.parts.iter().filter(|p| p.0 != Category::Other) {
            *deltas.entry(*category).or_default() += t - b;
        }
    }
    if !any {
        return None;
    }
    let mut ranked: Vec<(Category, f64)> = deltas.into_iter().collect();
    ranked.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    let largest = ranked.first()?.1.abs();
    if largest < 0.005 {
        return None;
    }
    let shown: Vec<String> = ranked
        .iter()
        .take(2)
        .filter(|(_, d)| d.abs() >= largest / 4.0)
        .map(|(c, d)| format!("{} {}", c.as_str(), signed_seconds(*d)))
        .collect();
    Some(shown.join(", "))
}

/// "peer2 CPU +1.10 s": the role whose CPU-seconds moved most.
fn cpu_delta(section: Option<&SectionId>, judgement: &Judgement) -> Option<String> {
    let kind = if section.is_some() {
        MetricKind::SectionCpu
    } else {
        MetricKind::TotalCpu
    };
    judgement
        .metrics
        .iter()
        .filter(|m| m.id.kind == kind && in_section(&m.id, section))
        .filter(|m| !m.baseline.is_empty() && !m.treatment.is_empty())
        .map(|m| {
            let delta = median(&m.treatment) - median(&m.baseline);
            (m.id.role.clone().unwrap_or_default(), delta)
        })
        .filter(|(_, delta)| delta.abs() >= 0.005)
        .max_by(|a, b| a.1.abs().total_cmp(&b.1.abs()))
        .map(|(role, delta)| format!("{role} CPU {}", signed_seconds(delta)))
}

fn in_section(id: &MetricId, section: Option<&SectionId>) -> bool {
    match (section, &id.section) {
        (Some(s), Some(SectionRef::Scenario { id, .. })) => id == s,
        (None, None) => true,
        (None, Some(SectionRef::Span(label))) => label == RUN_TOTAL,
        _ => false,
    }
}

/// "verify_proofs -3104 ms (4 → 4 calls), verify_proofs.verify 9660 → 2
/// calls": the counter (other than the `wait.*` unions, already in the
/// categories) whose total time moved most, then the count that changed
/// by the largest factor if that is another counter.
///
/// Counters nest (`load` encloses `verify_proofs`), so a parent always
/// moves at least as much as its child; among the counters that moved at
/// least 80 % as much as the largest, the one with the least baseline time
/// is named, being the most specific.
fn counter_delta(section: Option<&SectionId>, judgement: &Judgement) -> Option<String> {
    let medians = |kind: MetricKind, counter: &str| {
        judgement
            .metrics
            .iter()
            .find(|m| {
                m.id.kind == kind
                    && m.id.counter.as_deref() == Some(counter)
                    && in_section(&m.id, section)
            })
            .filter(|m| !m.baseline.is_empty() && !m.treatment.is_empty())
            .map(|m| (median(&m.baseline), median(&m.treatment)))
    };
    let moved: Vec<(&str, f64, f64)> = judgement
        .metrics
        .iter()
        .filter(|m| m.id.kind == MetricKind::CounterTime && in_section(&m.id, section))
        .filter_map(|m| {
            let counter = m.id.counter.as_deref()?;
            if counter.starts_with("wait.") {
                return None;
            }
            let (b, t) = medians(MetricKind::CounterTime, counter)?;
            Some((counter, b, t - b))
        })
        .filter(|(_, _, delta)| delta.abs() >= 1.0)
        .collect();
    let largest = moved.iter().map(|m| m.2.abs()).fold(0.0, f64::max);
    let timed = moved
        .iter()
        .filter(|m| m.2.abs() >= 0.8 * largest)
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map(|&(counter, _, delta_ms)| {
            let calls = medians(MetricKind::CounterCount, counter)
                .map(|(b, t)| format!(" ({b:.0} → {t:.0} calls)"))
                .unwrap_or_default();
            (counter, format!("{counter} {delta_ms:+.0} ms{calls}"))
        });
    // The count that changed by the largest factor, among counts of at
    // least 10 on one side (a 1 → 3 change says little).
    let counted = judgement
        .metrics
        .iter()
        .filter(|m| m.id.kind == MetricKind::CounterCount && in_section(&m.id, section))
        .filter_map(|m| {
            let counter = m.id.counter.as_deref()?;
            let (b, t) = medians(MetricKind::CounterCount, counter)?;
            let factor = (b.max(t) + 1.0) / (b.min(t) + 1.0);
            (b.max(t) >= 10.0 && factor >= 1.5).then_some((counter, b, t, factor))
        })
        .max_by(|a, b| a.3.total_cmp(&b.3))
        .filter(|(counter, ..)| timed.as_ref().is_none_or(|(named, _)| named != counter))
        .map(|(counter, b, t, _)| format!("{counter} {b:.0} → {t:.0} calls"));
    let parts: Vec<String> = timed
        .map(|(_, text)| text)
        .into_iter()
        .chain(counted)
        .collect();
    (!parts.is_empty()).then(|| parts.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        ab::{
            compare::{JudgeSettings, judge},
            gate_config::{DEFAULT_GATE_TOML, GateConfig},
        },
        attribution::{SectionAttribution, split},
    };

    /// An iteration of one section, `§C.2`, whose peer1 spent `gateway_s`
    /// waiting on the gateway and `backoff_s` backing off, with `pins`
    /// pin_car calls of 10 ms.
    fn record(gateway_s: f64, backoff_s: f64, pins: u64) -> IterationRecord {
        let mut record = crate::ab::metrics::tests::record_with_counters();
        let wall = 0.5 + gateway_s + backoff_s;
        record.sections[0].seconds = Some(wall);
        record.total_seconds = wall;
        record.counters.retain(|row| row.section != "§C.2");
        record.counters.push(crate::counters::SectionCounters {
            section: "§C.2".into(),
            role: crate::counters::ALL_ROLES.into(),
            counter: "pin_car".into(),
            count: pins,
            total_ms: pins as f64 * 10.0,
            max_ms: 10.0,
        });
        record.attribution = vec![SectionAttribution {
            section: SectionId("C.2".into()),
            role: "peer1".into(),
            wall_s: wall,
            parts: split(wall, |c| match c {
                Category::Cpu => 0.3,
                Category::Gateway => gateway_s,
                Category::Backoff => backoff_s,
                _ => 0.0,
            }),
        }];
        record
    }

    #[test]
    fn a_slower_section_names_the_time_and_the_counter_that_moved() {
        let baseline = vec![record(1.0, 0.0, 14), record(1.1, 0.0, 14)];
        let treatment = vec![record(3.0, 1.0, 112), record(3.1, 1.0, 112)];
        let judgement = judged(&baseline, &treatment);
        let attribution = attribution_medians(&baseline, &treatment);
        assert_eq!(attribution.len(), 1);
        let section = judgement
            .metrics
            .iter()
            .find(|m| m.id.kind == MetricKind::SectionTime)
            .unwrap();
        assert_eq!(
            why(&section.id, &judgement, &attribution).as_deref(),
            Some("gateway +2.00 s, backoff +1.00 s; pin_car +980 ms (14 → 112 calls)")
        );
        let total = judgement
            .metrics
            .iter()
            .find(|m| m.id.kind == MetricKind::TotalTime)
            .unwrap();
        assert!(
            why(&total.id, &judgement, &attribution)
                .unwrap()
                .starts_with("gateway +2.00 s, backoff +1.00 s")
        );
    }

    /// The default gate's judgement of two sides at alpha 0.05.
    fn judged(baseline: &[IterationRecord], treatment: &[IterationRecord]) -> Judgement {
        let config = GateConfig::parse("gate.toml", DEFAULT_GATE_TOML).unwrap();
        let settings = JudgeSettings {
            alpha: 0.05,
            interrupted: false,
            retried: Vec::new(),
        };
        judge(baseline, treatment, &config, settings)
    }

    /// `record(1.0, 0.0, 14)` plus a `load` enclosing `verify_proofs`, whose
    /// proofs each count one `verify_proofs.verify`.
    fn with_proofs(proof_ms: f64, proofs: u64) -> IterationRecord {
        let mut record = record(1.0, 0.0, 14);
        let row = |counter: &str, count: u64, total_ms: f64| crate::counters::SectionCounters {
            section: "§C.2".into(),
            role: crate::counters::ALL_ROLES.into(),
            counter: counter.into(),
            count,
            total_ms,
            max_ms: total_ms,
        };
        record.counters.push(row("load", 4, 500.0 + proof_ms));
        record.counters.push(row("verify_proofs", 4, proof_ms));
        record
            .counters
            .push(row("verify_proofs.verify", proofs, 0.0));
        record
    }

    #[test]
    fn the_most_specific_counter_and_the_count_that_changed_are_named() {
        let baseline = vec![with_proofs(3000.0, 9660), with_proofs(3100.0, 9660)];
        let treatment = vec![with_proofs(10.0, 2), with_proofs(12.0, 2)];
        let judgement = judged(&baseline, &treatment);
        let section = judgement
            .metrics
            .iter()
            .find(|m| m.id.kind == MetricKind::SectionTime)
            .unwrap();
        let why = super::counter_delta(Some(&SectionId("C.2".into())), &judgement).unwrap();
        assert_eq!(
            why,
            "verify_proofs -3039 ms (4 → 4 calls), verify_proofs.verify 9660 → 2 calls"
        );
        // No attribution moved: the why is the counters alone.
        let attribution = attribution_medians(&baseline, &treatment);
        assert_eq!(super::why(&section.id, &judgement, &attribution), Some(why));
    }

    #[test]
    fn an_unchanged_section_has_no_why() {
        let runs = vec![record(1.0, 0.0, 14), record(1.0, 0.0, 14)];
        let judgement = judged(&runs, &runs);
        let attribution = attribution_medians(&runs, &runs);
        let section = judgement
            .metrics
            .iter()
            .find(|m| m.id.kind == MetricKind::SectionTime)
            .unwrap();
        assert_eq!(why(&section.id, &judgement, &attribution), None);
    }
}
