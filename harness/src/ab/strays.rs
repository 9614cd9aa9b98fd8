//! Why a section stayed undecided: the stray iterations that widened its
//! interval, and whether the machine or the waits made them slow.
//!
//! At 3 to 5 iterations a side one value 10-15 % off its side's median
//! doubles a metric's standard error; on the development machine that was
//! the whole difference between a 10 % slowdown caught in 90 % of gates and
//! in 45 % (docs/statistics.md). The exact CPU clock tells the two usual
//! causes apart: a peer that spent more CPU-seconds on the same section's
//! work ran on a slower machine at that moment; one whose CPU did not grow
//! waited longer. Nothing here decides anything; it explains a "cannot
//! tell" so its reader knows whether more iterations or a quieter runner
//! is the remedy.

use super::metrics::{MetricId, MetricKind, SectionRef};
use crate::{
    record::{IterationRecord, IterationStatus},
    stats::median,
};

/// A value is a stray when it is this many robust standard deviations from
/// its side's median... The deviation is pooled over both sides' distances
/// from their own medians (1.4826 x their median): at 5 a side, two
/// strays among one side's five would inflate that side's own median
/// deviation until neither counted.
const ROBUST_Z: f64 = 3.0;
/// ...and at least this far in relative terms, so that a side with almost
/// no spread does not call a 1 % wobble a stray.
const MIN_RELATIVE: f64 = 0.05;
/// CPU that grew by at least this share for the same work is a slower
/// machine; below it the time went to waiting.
const CPU_GREW: f64 = 0.10;

/// One iteration's value of a time metric and its peers' CPU-seconds.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Point {
    iteration: usize,
    seconds: f64,
    cpu: Option<f64>,
}

/// A stray iteration, described.
#[derive(Debug, Clone, PartialEq)]
struct Stray {
    side: &'static str,
    iteration: usize,
    seconds: f64,
    median: f64,
    /// CPU-seconds relative to the side's median CPU, when both are known
    /// and the median is large enough to compare (50 ms).
    cpu_change: Option<f64>,
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

/// Each side's median and the pooled robust standard deviation of the
/// values about their own side's median.
fn spread(sides: [&[Point]; 2]) -> ([f64; 2], f64) {
    let centers = sides.map(|points| {
        let seconds: Vec<f64> = points.iter().map(|p| p.seconds).collect();
        median(&seconds)
    });
    let deviations: Vec<f64> = sides
        .iter()
        .zip(centers)
        .flat_map(|(points, center)| points.iter().map(move |p| (p.seconds - center).abs()))
        .collect();
    (centers, 1.4826 * median(&deviations))
}

/// The strays of one side about its median `center`.
fn side_strays(side: &'static str, points: &[Point], center: f64, robust_sd: f64) -> Vec<Stray> {
    let cpus: Vec<f64> = points.iter().filter_map(|p| p.cpu).collect();
    let cpu_center = (cpus.len() == points.len()).then(|| median(&cpus));
    points
        .iter()
        .filter(|p| {
            let off = (p.seconds - center).abs();
            off >= MIN_RELATIVE * center && off > ROBUST_Z * robust_sd
        })
        .map(|p| Stray {
            side,
            iteration: p.iteration,
            seconds: p.seconds,
            median: center,
            cpu_change: match (p.cpu, cpu_center) {
                (Some(cpu), Some(center)) if center >= 0.05 => Some(cpu / center - 1.0),
                _ => None,
            },
        })
        .collect()
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
    if b.len() < 3 || t.len() < 3 {
        return None;
    }
    let ([b_center, t_center], robust_sd) = spread([&b, &t]);
    let mut strays = side_strays("baseline", &b, b_center, robust_sd);
    strays.extend(side_strays("treatment", &t, t_center, robust_sd));
    // More than a third of the values far out is spread, not strays.
    if strays.is_empty() || 3 * strays.len() > b.len() + t.len() {
        return None;
    }
    let listed: Vec<String> = strays
        .iter()
        .map(|s| {
            let cpu = s
                .cpu_change
                .map(|c| format!(", peer CPU {}", percent(c)))
                .unwrap_or_default();
            format!(
                "{} run-{} {:.2} s ({} on its side's median {:.2} s{cpu})",
                s.side,
                s.iteration,
                s.seconds,
                percent(s.seconds / s.median - 1.0),
                s.median
            )
        })
        .collect();
    let machine = strays
        .iter()
        .all(|s| s.cpu_change.is_some_and(|c| c >= CPU_GREW));
    let waits = strays
        .iter()
        .all(|s| s.cpu_change.is_some_and(|c| c.abs() < CPU_GREW));
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
        let line = describe(
            &section_id(),
            &records("baseline", &slow),
            &records("treatment", &CLEAN),
        )
        .unwrap();
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
        let line = describe(
            &section_id(),
            &records("baseline", &baseline),
            &records("treatment", &treatment),
        )
        .unwrap();
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
        let line = describe(
            &section_id(),
            &records("baseline", &CLEAN),
            &records("treatment", &slow),
        )
        .unwrap();
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
