//! The verdict for one metric and the [`Comparison`] that carries it with
//! all the evidence, ready for `verdict.json`.
//!
//! The verdict comes from [`decide_family`](super::decide_family) on the
//! log-scale Welch estimate ([`LogShift`]); the exact rank statistics
//! (Hodges-Lehmann ratio, Mann-Whitney p, Cliff's delta, pairs slower) ride
//! along as a distribution-free robustness check a reader can hold the
//! verdict against.

use std::fmt;

use serde::Serialize;

use super::decision::{Evidence, Tolerance, decide_family};
use super::hodges_lehmann::{Interval, hodges_lehmann};
use super::log_t::LogShift;
use super::mann_whitney::mann_whitney;
use super::stratified::stratified_shift;
use super::stray::{SideSetAside, TimedSide, machine_strays};
use super::{Alpha, Sample, StatsError};

/// What the evidence says about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// Slower beyond the tolerance, with family-wise confidence: fails the gate.
    Regression,
    /// Faster beyond the tolerance, with family-wise confidence.
    Improvement,
    /// Any slowdown is within the tolerance, with confidence: the gate may pass.
    NoRegression,
    /// The evidence decides neither way.
    CannotTell {
        /// Iterations per side that would likely decide, if any up to
        /// [`MAX_PLANNED_PER_SIDE`](super::MAX_PLANNED_PER_SIDE).
        iterations_needed: Option<usize>,
    },
}

impl Verdict {
    /// Whether this is anything but `CannotTell`.
    pub fn is_decided(&self) -> bool {
        !matches!(self, Verdict::CannotTell { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::NoRegression => "no regression",
            Verdict::CannotTell { .. } => "cannot tell",
        })
    }
}

/// The distribution-free statistics, kept beside the verdict.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RankCheck {
    /// Hodges-Lehmann ratio: the median pairwise ratio.
    pub hodges_lehmann_ratio: f64,
    /// Exact two-sided Mann-Whitney p-value (`None` beyond
    /// [`MAX_EXACT_PER_SIDE`](super::MAX_EXACT_PER_SIDE) a side).
    pub p_two_sided: Option<f64>,
    /// Cliff's delta, in `[-1, 1]`; positive when the treatment is larger.
    pub cliffs_delta: f64,
    /// Pairs in which the treatment value is larger.
    pub slower_pairs: usize,
    /// All pairs, `m * n`.
    pub pairs: usize,
}

/// One metric's baseline-versus-treatment comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The metric's name, as the reasons show it.
    pub metric: String,
    /// Iterations on the baseline.
    pub baseline_iterations: usize,
    /// Iterations on the treatment.
    pub treatment_iterations: usize,
    /// Median of the baseline values.
    pub baseline_median: f64,
    /// Median of the treatment values.
    pub treatment_median: f64,
    /// `treatment_median - baseline_median`, in the metric's unit.
    pub delta_abs: f64,
    /// Ratio of geometric means, treatment / baseline.
    pub ratio: f64,
    /// Two-sided `1 - 2 alpha` interval of the ratio; its ends are the
    /// one-sided `1 - alpha` bounds.
    pub interval: Interval,
    /// The log-scale estimate behind ratio and interval.
    pub shift: LogShift,
    /// One-sided p-value of "slower", before and after Holm.
    pub p_slower: f64,
    /// Holm-adjusted p-value of "slower" across the family.
    pub p_slower_adjusted: f64,
    /// Holm-adjusted p-value of "faster" across the family.
    pub p_faster_adjusted: f64,
    /// The tolerance configured.
    pub tolerance: Tolerance,
    /// The share a pass must rule out at this metric's size (pass bound or
    /// floor).
    pub tolerated_share: f64,
    /// The smallest change called a regression or an improvement at this
    /// metric's size (noise band or floor; at most `tolerated_share`).
    pub regression_share: f64,
    /// The smallest slowdown (ratio) caught in 90 % of runs at this noise
    /// and family size.
    pub detectable_ratio: f64,
    /// Rank statistics, for robustness.
    pub rank_check: RankCheck,
    /// The one-sided alpha used.
    pub alpha: Alpha,
    /// How many metrics were judged together (Holm's family).
    pub family_size: usize,
    /// The verdict.
    pub verdict: Verdict,
    /// The values the regression call went without, when it set a machine
    /// stray aside (omitted when it used every value).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub set_aside: Option<SetAside>,
    /// The verdict in words.
    pub reason: String,
}

/// The machine strays a regression call set aside, and what it saw without
/// them.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SetAside {
    /// Positions among the baseline values, slowest first.
    pub baseline: Vec<usize>,
    /// Positions among the treatment values, slowest first.
    pub treatment: Vec<usize>,
    /// The ratio of geometric means without them.
    pub call_ratio: f64,
}

impl Comparison {
    /// The larger of the two sides' iteration counts.
    pub fn iterations_per_side(&self) -> usize {
        self.baseline_iterations.max(self.treatment_iterations)
    }

    /// The one-sided upper bound of the ratio (infinite when unbounded).
    pub fn interval_high(&self) -> f64 {
        self.interval.high().unwrap_or(f64::INFINITY)
    }
}

/// One metric's input to [`compare_family`].
#[derive(Debug, Clone)]
pub struct MetricSamples<'a> {
    /// The metric's name, for reasons.
    pub name: &'a str,
    /// Baseline values.
    pub baseline: &'a Sample,
    /// Treatment values.
    pub treatment: &'a Sample,
    /// What change it tolerates.
    pub tolerance: Tolerance,
    /// The block (shard) of each baseline and treatment value, when the
    /// iterations came from several machines: the shift is then estimated
    /// within blocks ([`stratified_shift`]).
    pub blocks: Option<(&'a [u32], &'a [u32])>,
    /// The CPU-seconds spent in each baseline and treatment value, for time
    /// metrics: how a regression call tells a machine stray
    /// ([`machine_strays`]) from the branch.
    pub cpu: Option<(&'a [f64], &'a [f64])>,
}

/// Compares each metric of a family judged together (Holm across them) at
/// one-sided `alpha`.
pub fn compare_family(
    family: &[MetricSamples<'_>],
    alpha: Alpha,
) -> Result<Vec<Comparison>, StatsError> {
    let evidence: Vec<Evidence> = family.iter().map(evidence_of).collect();
    let decisions = decide_family(&evidence, alpha);
    family
        .iter()
        .zip(evidence)
        .zip(decisions)
        .map(|((m, e), d)| {
            let rank = rank_check(m.baseline, m.treatment)?;
            let (baseline_median, treatment_median) = (m.baseline.median(), m.treatment.median());
            Ok(Comparison {
                metric: m.name.to_owned(),
                baseline_iterations: m.baseline.len(),
                treatment_iterations: m.treatment.len(),
                baseline_median,
                treatment_median,
                delta_abs: treatment_median - baseline_median,
                ratio: e.shift.ratio(),
                interval: Interval::Bounded {
                    low: d.lower,
                    high: d.upper,
                    level: alpha.two_sided_level(),
                },
                shift: e.shift,
                p_slower: e.shift.p_greater(),
                p_slower_adjusted: d.p_slower_adjusted,
                p_faster_adjusted: d.p_faster_adjusted,
                tolerance: m.tolerance,
                tolerated_share: e.tolerated,
                regression_share: e.regression_limit() - 1.0,
                detectable_ratio: d.detectable_ratio,
                rank_check: rank,
                alpha,
                family_size: family.len(),
                verdict: d.verdict,
                set_aside: e.has_set_aside().then(|| SetAside {
                    baseline: e.set_aside[0].iter().flatten().copied().collect(),
                    treatment: e.set_aside[1].iter().flatten().copied().collect(),
                    call_ratio: e.call_shift.ratio(),
                }),
                reason: d.reason,
            })
        })
        .collect()
}

/// Compares one metric on its own (a family of one).
pub fn compare(
    name: &str,
    baseline: &Sample,
    treatment: &Sample,
    tolerance: Tolerance,
    alpha: Alpha,
) -> Result<Comparison, StatsError> {
    let one = MetricSamples {
        name,
        baseline,
        treatment,
        tolerance,
        blocks: None,
        cpu: None,
    };
    let mut out = compare_family(std::slice::from_ref(&one), alpha)?;
    out.pop().ok_or(StatsError::TooFewValues { len: 0 })
}

/// The cheap part of a comparison: what the verdict needs and nothing else
/// (`soak power` judges thousands of resampled runs with it).
pub fn evidence_of(m: &MetricSamples<'_>) -> Evidence {
    let blocked = m
        .blocks
        .and_then(|(b, t)| stratified_shift(m.baseline, b, m.treatment, t));
    let median = m.baseline.median();
    let evidence = Evidence {
        regression_share: m.tolerance.regression_share(median),
        ..Evidence::new(
            blocked.unwrap_or_else(|| LogShift::welch(m.baseline, m.treatment)),
            m.tolerance.share(median),
            m.baseline.len().max(m.treatment.len()),
        )
    };
    // Shards are judged within blocks, where one value set aside would
    // unbalance its block; strays are set aside in single-runner runs only.
    match (blocked, m.cpu) {
        (None, Some((b_cpu, t_cpu))) => with_strays_set_aside(evidence, m, b_cpu, t_cpu),
        _ => evidence,
    }
}

fn with_strays_set_aside(
    evidence: Evidence,
    m: &MetricSamples<'_>,
    b_cpu: &[f64],
    t_cpu: &[f64],
) -> Evidence {
    let set_aside = machine_strays([
        TimedSide {
            seconds: m.baseline.values(),
            cpu: b_cpu,
        },
        TimedSide {
            seconds: m.treatment.values(),
            cpu: t_cpu,
        },
    ]);
    // Most runs have no stray: no copies then (`soak power` calls this
    // thousands of times a second).
    if set_aside.iter().flatten().all(Option::is_none) {
        return evidence;
    }
    let kept = |sample: &Sample, aside: &SideSetAside| {
        Sample::new(
            sample
                .values()
                .iter()
                .enumerate()
                .filter(|(k, _)| !aside.contains(&Some(*k)))
                .map(|(_, v)| *v)
                .collect(),
        )
    };
    // At least three values stay on each side, so neither can be refused.
    match (
        kept(m.baseline, &set_aside[0]),
        kept(m.treatment, &set_aside[1]),
    ) {
        (Ok(b), Ok(t)) => Evidence {
            call_shift: LogShift::welch(&b, &t),
            set_aside,
            ..evidence
        },
        _ => evidence,
    }
}

fn rank_check(baseline: &Sample, treatment: &Sample) -> Result<RankCheck, StatsError> {
    let exact = baseline.len().max(treatment.len()) <= super::MAX_EXACT_PER_SIDE;
    if !exact {
        let (slower, faster, pairs) = pair_counts(baseline, treatment);
        return Ok(RankCheck {
            hodges_lehmann_ratio: f64::NAN,
            p_two_sided: None,
            cliffs_delta: (slower as f64 - faster as f64) / pairs as f64,
            slower_pairs: slower,
            pairs,
        });
    }
    let hl = hodges_lehmann(baseline, treatment, Alpha::DEFAULT)?;
    let mw = mann_whitney(baseline, treatment)?;
    Ok(RankCheck {
        hodges_lehmann_ratio: hl.ratio,
        p_two_sided: Some(mw.p_two_sided),
        cliffs_delta: hl.cliffs_delta,
        slower_pairs: hl.slower_pairs,
        pairs: hl.pairs,
    })
}

fn pair_counts(baseline: &Sample, treatment: &Sample) -> (usize, usize, usize) {
    let mut slower = 0;
    let mut faster = 0;
    for t in treatment.values() {
        for b in baseline.values() {
            if t > b {
                slower += 1;
            } else if t < b {
                faster += 1;
            }
        }
    }
    (slower, faster, baseline.len() * treatment.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::NoiseBand;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.to_vec()).unwrap()
    }

    #[test]
    fn three_a_side_clear_slowdown_is_a_regression() {
        let c = compare(
            "total",
            &s(&[100.0, 101.0, 102.0]),
            &s(&[110.0, 111.0, 112.0]),
            Tolerance::relative(NoiseBand::TIME),
            Alpha::DEFAULT,
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::Regression, "{}", c.reason);
        assert_eq!((c.rank_check.slower_pairs, c.rank_check.pairs), (9, 9));
        assert!(c.reason.ends_with("regression"), "{}", c.reason);
    }

    /// `§C.2` judged alone at an 8 % band, with the CPU-seconds of each
    /// value when given.
    fn judged(b: &Sample, t: &Sample, cpu: Option<(&[f64], &[f64])>) -> Comparison {
        let m = MetricSamples {
            name: "§C.2",
            baseline: b,
            treatment: t,
            tolerance: Tolerance::relative(NoiseBand::new(0.08).unwrap()),
            blocks: None,
            cpu,
        };
        let mut out = compare_family(std::slice::from_ref(&m), Alpha::DEFAULT).unwrap();
        out.pop().unwrap()
    }

    /// A section 10 % slower on the treatment, with one baseline iteration
    /// 15 % slow; `cpu` is the CPU-seconds of each baseline iteration.
    fn slowed_with_a_baseline_stray(cpu: &[f64]) -> Comparison {
        let (b, t) = (
            s(&[2.00, 2.02, 1.99, 2.01, 2.30]),
            s(&[2.20, 2.22, 2.19, 2.21, 2.21]),
        );
        let t_cpu = [0.80, 0.81, 0.80, 0.80, 0.81];
        judged(&b, &t, Some((cpu, &t_cpu)))
    }

    #[test]
    fn a_machine_stray_no_longer_hides_a_slowdown() {
        // The stray spent 20 % more CPU: the machine slowed it.
        let c = slowed_with_a_baseline_stray(&[0.80, 0.81, 0.80, 0.80, 0.96]);
        assert_eq!(c.verdict, Verdict::Regression, "{}", c.reason);
        let aside = c.set_aside.expect("the stray is set aside");
        assert_eq!((aside.baseline, aside.treatment), (vec![4], vec![]));
        // Geometric means: without the stray 2.206 / 2.005, with it / 2.061.
        assert!(
            (aside.call_ratio - 1.1003).abs() < 1e-3,
            "{}",
            aside.call_ratio
        );
        assert!((c.ratio - 1.0705).abs() < 1e-3, "{}", c.ratio);
        assert!(
            c.reason.contains("without the baseline's machine stray"),
            "{}",
            c.reason
        );
    }

    #[test]
    fn a_stray_that_only_waited_still_counts() {
        // Same CPU as its siblings: the time went to waiting, which may be
        // the branch's doing, so nothing is set aside and the call cannot
        // clear the band.
        let c = slowed_with_a_baseline_stray(&[0.80, 0.81, 0.80, 0.80, 0.81]);
        assert_eq!(c.set_aside, None);
        assert!(
            matches!(c.verdict, Verdict::CannotTell { .. }),
            "{}",
            c.reason
        );
    }

    #[test]
    fn a_treatment_stray_set_aside_never_helps_a_pass() {
        // Unchanged branch whose treatment has a machine stray: the call
        // goes without it (no regression is claimed), but "no regression"
        // is judged on every value, exactly as if no CPU were known.
        let (b, t) = (
            s(&[2.00, 2.01, 2.00, 2.02, 1.99]),
            s(&[2.00, 2.02, 1.99, 2.01, 2.30]),
        );
        let (b_cpu, t_cpu) = ([0.80; 5], [0.80, 0.81, 0.80, 0.80, 0.96]);
        let with = judged(&b, &t, Some((&b_cpu, &t_cpu)));
        let without = judged(&b, &t, None);
        assert_eq!(with.set_aside.map(|a| a.treatment), Some(vec![4]));
        assert_eq!(with.verdict, without.verdict);
        assert_ne!(with.verdict, Verdict::Regression);
        assert_eq!(with.interval, without.interval);
    }
}
