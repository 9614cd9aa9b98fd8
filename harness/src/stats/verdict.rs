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
    /// The share tolerated at this metric's size (band or floor).
    pub tolerated_share: f64,
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
    /// The verdict in words.
    pub reason: String,
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
                detectable_ratio: d.detectable_ratio,
                rank_check: rank,
                alpha,
                family_size: family.len(),
                verdict: d.verdict,
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
    Evidence {
        shift: blocked.unwrap_or_else(|| LogShift::welch(m.baseline, m.treatment)),
        tolerated: m.tolerance.share(m.baseline.median()),
        per_side: m.baseline.len().max(m.treatment.len()),
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
}
