//! The four-way verdict for one metric (DESIGN §8) and the [`Comparison`]
//! that carries it with all the evidence, ready for `verdict.json`.
//!
//! With noise band `delta` and one-sided error rate `alpha` (0.05 unless an
//! adaptive look or Holm says otherwise):
//!
//! - `Regression`: the one-sided `1 - alpha` lower bound of the ratio is above
//!   `1 + delta`;
//! - `Improvement`: the one-sided `1 - alpha` upper bound is below `1 - delta`;
//! - `NoChange`: the two-sided `1 - 2 alpha` interval lies inside
//!   `[1 - delta, 1 + delta]`;
//! - `Inconclusive`: anything else, with the iterations per side that would
//!   likely decide (see [`super::planning`]).
//!
//! The two one-sided bounds are the two ends of the two-sided interval (same
//! order-statistic rank), so the three decided outcomes exclude each other.
//! At 3 iterations per side the rank is 1: a regression needs all 9 pairwise
//! ratios above `1 + delta`, and the reason says so.

use std::fmt;

use serde::Serialize;

use super::hodges_lehmann::{Interval, hodges_lehmann};
use super::mann_whitney::mann_whitney;
use super::planning::EffectModel;
use super::reason;
use super::{Alpha, NoiseBand, Sample, StatsError};

/// What the evidence says about one metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Verdict {
    /// The treatment is worse (larger) by more than the band, with confidence.
    Regression,
    /// The treatment is better (smaller) by more than the band, with confidence.
    Improvement,
    /// Any change is within the band, with confidence.
    NoChange,
    /// The evidence does not decide.
    Inconclusive {
        /// Iterations per side that would likely decide, if any up to
        /// [`MAX_PLANNED_PER_SIDE`](super::MAX_PLANNED_PER_SIDE).
        iterations_needed: Option<usize>,
    },
}

impl Verdict {
    /// Whether this is anything but `Inconclusive`.
    pub fn is_decided(&self) -> bool {
        !matches!(self, Verdict::Inconclusive { .. })
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::NoChange => "no change",
            Verdict::Inconclusive { .. } => "inconclusive",
        })
    }
}

/// One metric's baseline-versus-treatment comparison: the numbers for the
/// tables and the verdict with its reason in words.
///
/// Field names follow the default levels (`ci90`, `lower95_one_sided`); with
/// another alpha the actual level is `ci90.level()` and `1 - alpha`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Comparison {
    /// The metric's name, e.g. `section.sync` or `total`.
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
    /// Hodges-Lehmann treatment/baseline ratio.
    pub ratio: f64,
    /// Two-sided `1 - 2 alpha` interval of the ratio (90 % by default).
    pub ci90: Interval,
    /// One-sided `1 - alpha` lower bound (95 % by default); `None` when the
    /// sample is too small for one (the bound is then 0).
    pub lower95_one_sided: Option<f64>,
    /// One-sided `1 - alpha` upper bound; `None` means unbounded.
    pub upper95_one_sided: Option<f64>,
    /// Exact two-sided Mann-Whitney p-value.
    pub p_two_sided: f64,
    /// Exact one-sided p-value for "treatment larger".
    pub p_treatment_greater: f64,
    /// Exact one-sided p-value for "treatment smaller".
    pub p_treatment_less: f64,
    /// Holm-adjusted p-value across the gated metrics, once
    /// [`apply_holm`](super::apply_holm) has run.
    pub p_holm: Option<f64>,
    /// Cliff's delta, in `[-1, 1]`; positive when the treatment is larger.
    pub cliffs_delta: f64,
    /// Pairs in which the treatment value is larger ("treatment slower in k
    /// of m*n pairs").
    pub slower_pairs: usize,
    /// All pairs, `m * n`.
    pub pairs: usize,
    /// The noise band used.
    pub band: NoiseBand,
    /// The one-sided alpha used.
    pub alpha: Alpha,
    /// The verdict.
    pub verdict: Verdict,
    /// The verdict in words, e.g. "all 9 pairwise ratios are above 1.05 ...".
    pub reason: String,
    /// Observed effect and spread, for re-planning after Holm.
    #[serde(skip)]
    pub(crate) model: EffectModel,
}

impl Comparison {
    /// The larger of the two sides' iteration counts.
    pub fn iterations_per_side(&self) -> usize {
        self.baseline_iterations.max(self.treatment_iterations)
    }

    /// The one-sided p-value in the direction of the observed effect: the
    /// "treatment larger" one for a ratio above 1, else the other. Holm uses
    /// it, because a regression or improvement is a one-sided claim.
    pub fn p_directional(&self) -> f64 {
        if self.ratio > 1.0 {
            self.p_treatment_greater
        } else if self.ratio < 1.0 {
            self.p_treatment_less
        } else {
            self.p_treatment_greater.min(self.p_treatment_less)
        }
    }
}

/// Compares `treatment` with `baseline` for `metric`, with noise band `band`
/// and one-sided error rate `alpha` (pass [`Alpha::DEFAULT`] outside
/// adaptive runs). Fails only above
/// [`MAX_EXACT_PER_SIDE`](super::MAX_EXACT_PER_SIDE) iterations per side.
pub fn compare(
    metric: &str,
    baseline: &Sample,
    treatment: &Sample,
    band: NoiseBand,
    alpha: Alpha,
) -> Result<Comparison, StatsError> {
    let estimate = hodges_lehmann(baseline, treatment, alpha)?;
    let test = mann_whitney(baseline, treatment)?;
    let model = EffectModel::fit(baseline, treatment, estimate.ratio);
    let (n, m) = (baseline.len(), treatment.len());
    let verdict = classify(&estimate.interval, band).unwrap_or_else(|| Verdict::Inconclusive {
        iterations_needed: model.iterations_needed(n.max(m), band, alpha),
    });
    let reason = reason::explain(&reason::Evidence {
        verdict,
        estimate: &estimate,
        band,
        alpha,
        baseline_iterations: n,
        treatment_iterations: m,
    });
    let (baseline_median, treatment_median) = (baseline.median(), treatment.median());
    Ok(Comparison {
        metric: metric.to_string(),
        baseline_iterations: n,
        treatment_iterations: m,
        baseline_median,
        treatment_median,
        delta_abs: treatment_median - baseline_median,
        ratio: estimate.ratio,
        ci90: estimate.interval,
        lower95_one_sided: estimate.interval.low(),
        upper95_one_sided: estimate.interval.high(),
        p_two_sided: test.p_two_sided,
        p_treatment_greater: test.p_treatment_greater,
        p_treatment_less: test.p_treatment_less,
        p_holm: None,
        cliffs_delta: estimate.cliffs_delta,
        slower_pairs: estimate.slower_pairs,
        pairs: estimate.pairs,
        band,
        alpha,
        verdict,
        reason,
        model,
    })
}

/// The verdict rule on an interval whose ends are the one-sided bounds;
/// `None` means inconclusive (the caller adds the plan).
pub(crate) fn classify(interval: &Interval, band: NoiseBand) -> Option<Verdict> {
    let (low, high) = interval.bounds()?;
    if low > band.upper() {
        Some(Verdict::Regression)
    } else if high < band.lower() {
        Some(Verdict::Improvement)
    } else if band.lower() <= low && high <= band.upper() {
        Some(Verdict::NoChange)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.to_vec()).unwrap()
    }

    #[test]
    fn rule_on_intervals() {
        let band = NoiseBand::TIME;
        let iv = |low, high| Interval::Bounded {
            low,
            high,
            level: 0.9,
        };
        assert_eq!(classify(&iv(1.06, 1.2), band), Some(Verdict::Regression));
        assert_eq!(classify(&iv(0.8, 0.94), band), Some(Verdict::Improvement));
        assert_eq!(classify(&iv(0.96, 1.04), band), Some(Verdict::NoChange));
        assert_eq!(classify(&iv(0.97, 1.12), band), None);
        assert_eq!(classify(&Interval::Unbounded { level: 0.9 }, band), None);
    }

    #[test]
    fn three_a_side_clean_sweep_is_a_regression() {
        let c = compare(
            "total",
            &s(&[100.0, 101.0, 102.0]),
            &s(&[110.0, 111.0, 112.0]),
            NoiseBand::TIME,
            Alpha::DEFAULT,
        )
        .unwrap();
        assert_eq!(c.verdict, Verdict::Regression);
        assert!(
            c.reason.starts_with("all 9 pairwise ratios are above 1.05"),
            "{}",
            c.reason
        );
    }
}
