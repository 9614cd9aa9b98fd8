//! Why a section stayed undecided: the stray iterations that widened its
//! interval, and whether the machine or the waits made them slow.
//!
//! At 3 to 5 iterations a side one value 10-15 % off its side's median
//! doubles a metric's standard error; on the development machine that was
//! the whole difference between a 10 % slowdown caught in 90 % of gates and
//! in 45 % (docs/statistics.md). The exact CPU clock tells the two usual
//! causes apart: a peer that spent more CPU-seconds on the same section's
//! work ran on a slower machine at that moment; one whose CPU did not grow
//! waited longer. The rule is `stats::strays`, the same one by which a
//! regression call sets a machine stray aside; this module only words it,
//! so the reader of a "cannot tell" knows whether more iterations or a
//! quieter runner is the remedy.

use super::metrics::{MetricId, MetricKind, SectionRef};
use crate::{
    record::{IterationRecord, IterationStatus},
    stats::{CPU_GREW, Stray, TimedSide, strays},
};

/// One iteration's value of a time metric and its peers' CPU-seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    iteration: usize,
    seconds: f64,
    cpu: Option<f64>,
}

/// The section or total time of each complete iteration, with the summed
/// CPU-seconds of every role in it.
fn points(id: &MetricId, records: &[IterationRecord]) -> Vec<Point> {
    let complete = records
        .iter()
        .filter(|r| matches!(r.status, IterationStatus::Passed | IterationStatus::Failed));
    match (&id.kind, &id.section) {
        (MetricKind::SectionTime, Some(SectionRef::Scenario { id: section, .. })) => complete
            .filter_map(|r| {
                let s = r.sections.iter().find(|s| s.id == *section)?;
                Some(Point {
                    iteration: r.iteration,
                    seconds: s.seconds?,
                    cpu: (!s.cpu_seconds.is_empty()).then(|| s.cpu_seconds.values().sum()),
                })
            })
            .collect(),
        (MetricKind::TotalTime, _) => complete
            .map(|r| Point {
                iteration: r.iteration,
                seconds: r.total_seconds,
                cpu: r
                    .sections
                    .iter()
                    .all(|s| !s.cpu_seconds.is_empty())
                    .then(|| r.sections.iter().flat_map(|s| s.cpu_seconds.values()).sum()),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn percent(change: f64) -> String {
    format!("{:+.0} %", 100.0 * change)
}

/// "baseline run-6 0.80 s (+11 % on its median 0.72 s, peer CPU +17 %) ...;
/// more CPU for the same work: the machine ran them slower". `None` when
/// neither side has a stray, or for metrics other than section and total
/// times.
pub fn describe(
    id: &MetricId,
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
) -> Option<String> {
    let (b, t) = (points(id, baseline), points(id, treatment));
    let timed = |points: &[Point]| {
        let seconds: Vec<f64> = points.iter().map(|p| p.seconds).collect();
        // CPU only when every iteration has it; the rule ignores it otherwise.
        let cpu: Vec<f64> = points
            .iter()
            .map(|p| p.cpu)
            .collect::<Option<_>>()
            .unwrap_or_default();
        (seconds, cpu)
    };
    let (b_timed, t_timed) = (timed(&b), timed(&t));
    let found = strays([
        TimedSide {
            seconds: &b_timed.0,
            cpu: &b_timed.1,
        },
        TimedSide {
            seconds: &t_timed.0,
            cpu: &t_timed.1,
        },
    ]);
    let strays: Vec<(&str, &Point, &Stray)> =
        [("baseline", &b, &found[0]), ("treatment", &t, &found[1])]
            .into_iter()
            .flat_map(|(side, points, found)| {
                found.iter().map(move |s| (side, &points[s.index], s))
            })
            .collect();
    if strays.is_empty() {
        return None;
    }
    let listed: Vec<String> = strays
        .iter()
        .map(|(side, point, s)| {
            let cpu = s
                .cpu_change
                .map(|c| format!(", peer CPU {}", percent(c)))
                .unwrap_or_default();
            format!(
                "{side} run-{} {:.2} s ({} on its side's median {:.2} s{cpu})",
                point.iteration,
                point.seconds,
                percent(point.seconds / s.median - 1.0),
                s.median
            )
        })
        .collect();
    let machine = strays.iter().all(|(_, _, s)| s.is_machine());
    let waits = strays
        .iter()
        .all(|(_, _, s)| s.cpu_change.is_some_and(|c| c.abs() < CPU_GREW));
    let cause = if machine {
        "; more CPU for the same work: the machine ran them slower, not the branch"
    } else if waits {
        "; their CPU did not grow: the time went to waiting"
    } else {
        ""
    };
    let noun = if strays.len() == 1 {
        "a stray iteration widens its interval"
    } else {
        "stray iterations widen its interval"
    };
    Some(format!("{noun}: {}{cause}", listed.join(", ")))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Iterations of one section, `§C.2`, with the given seconds and the
    /// peers' CPU-seconds in it (shared with the report's tests).
    pub(crate) fn records(side: &str, values: &[(f64, f64)]) -> Vec<IterationRecord> {
        values
            .iter()
            .enumerate()
            .map(|(i, &(seconds, cpu))| {
                let mut record = crate::ab::metrics::tests::record_with_counters();
                record.branch = side.into();
                record.iteration = i + 1;
                record.sections[0].seconds = Some(seconds);
                record.sections[0].cpu_seconds =
                    [("peer1".into(), cpu * 0.75), ("peer2".into(), cpu * 0.25)].into();
                record.total_seconds = seconds;
                record
            })
            .collect()
    }

    fn section_id() -> MetricId {
        MetricId {
            kind: MetricKind::SectionTime,
            order: 0,
            section: Some(SectionRef::Scenario {
                id: crate::scenario::SectionId("C.2".into()),
                title: "Bob pays".into(),
            }),
            role: None,
            counter: None,
        }
    }

    /// The §C.2 line for two sides of (seconds, peer CPU).
    fn line_for(baseline: &[(f64, f64)], treatment: &[(f64, f64)]) -> Option<String> {
        describe(
            &section_id(),
            &records("baseline", baseline),
            &records("treatment", treatment),
        )
    }

    const CLEAN: [(f64, f64); 5] = [
        (0.72, 0.41),
        (0.71, 0.41),
        (0.73, 0.42),
        (0.72, 0.41),
        (0.72, 0.40),
    ];

    #[test]
    fn a_slow_iteration_that_used_more_cpu_is_blamed_on_the_machine() {
        // The pool-C case of docs/statistics.md: 0.83 s and 0.51 s of CPU
        // where the others took 0.72 s and 0.41 s.
        let mut slow = CLEAN;
        slow[3] = (0.83, 0.51);
        let line = line_for(&slow, &CLEAN).unwrap();
        assert_eq!(
            line,
            "a stray iteration widens its interval: baseline run-4 0.83 s (+15 % on its side's \
             median 0.72 s, peer CPU +24 %); more CPU for the same work: the machine ran them \
             slower, not the branch"
        );
    }

    /// Two strays among one side's five (pool C's §C.4, both sides as
    /// recorded) are both found: the pooled deviation is not inflated by
    /// them as that side's own would be.
    #[test]
    fn two_strays_on_one_side_are_both_found() {
        let baseline = [
            (0.723, 0.41),
            (0.709, 0.41),
            (0.723, 0.41),
            (0.709, 0.41),
            (0.709, 0.41),
        ];
        let treatment = [
            (0.709, 0.38),
            (0.709, 0.40),
            (0.803, 0.48),
            (0.736, 0.41),
            (0.834, 0.51),
        ];
        let line = line_for(&baseline, &treatment).unwrap();
        assert!(
            line.starts_with(
                "stray iterations widen its interval: treatment run-3 0.80 s (+9 % on its side's median 0.74 s, peer CPU +17 %), treatment run-5 0.83 s (+13 %"
            ),
            "{line}"
        );
        assert!(
            line.ends_with("the machine ran them slower, not the branch"),
            "{line}"
        );
    }

    #[test]
    fn a_slow_iteration_with_the_same_cpu_waited() {
        let mut slow = CLEAN;
        slow[0] = (0.80, 0.41);
        let line = line_for(&CLEAN, &slow).unwrap();
        assert!(line.contains("treatment run-1 0.80 s (+11 %"), "{line}");
        assert!(
            line.ends_with("their CPU did not grow: the time went to waiting"),
            "{line}"
        );
    }

    #[test]
    fn clean_sides_and_plain_spread_have_no_strays() {
        let clean = records("baseline", &CLEAN);
        assert_eq!(describe(&section_id(), &clean, &clean), None);
        // Four of ten far from their medians is spread, not strays.
        let wide = [
            (0.72, 0.41),
            (0.85, 0.41),
            (0.72, 0.41),
            (0.86, 0.41),
            (0.72, 0.41),
        ];
        let wide = records("baseline", &wide);
        assert_eq!(describe(&section_id(), &wide, &wide), None);
        // A 3 % wobble on a side with no spread at all is not a stray.
        let mut wobble = [(0.72, 0.41); 5];
        wobble[2] = (0.74, 0.41);
        assert_eq!(
            describe(&section_id(), &records("baseline", &wobble), &clean),
            None
        );
    }

    #[test]
    fn the_total_sums_every_section_and_other_metrics_have_no_line() {
        let mut slow = CLEAN;
        slow[1] = (0.90, 0.55);
        let (b, t) = (records("baseline", &slow), records("treatment", &CLEAN));
        let line = describe(&MetricId::total(), &b, &t).unwrap();
        assert!(line.contains("baseline run-2 0.90 s"), "{line}");
        let rss = MetricId {
            kind: MetricKind::MeanRss,
            order: usize::MAX,
            section: None,
            role: Some("peer1".into()),
            counter: None,
        };
        assert_eq!(describe(&rss, &b, &t), None);
    }
}
