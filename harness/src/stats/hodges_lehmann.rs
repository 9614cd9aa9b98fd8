//! The effect size: the Hodges-Lehmann estimate of the treatment/baseline
//! ratio and its distribution-free interval.
//!
//! All `n * m` pairwise log-ratios `D = ln t_j - ln b_i` are sorted; the
//! estimate is `exp(median D)`. The interval takes order statistics of the
//! same list at the rank `k` from the exact Mann-Whitney null
//! ([`NullDistribution::interval_rank`]): `[exp D_(k), exp D_(nm+1-k)]`. Each
//! end is a one-sided `1 - alpha` bound and together they are a two-sided
//! `1 - 2 alpha` interval, valid for any continuous shape of the per-iteration
//! distributions with a common spread on the log scale (the shift model), and
//! exact at 3..10 iterations a side where a normal approximation is not.

use serde::Serialize;

use super::exact::NullDistribution;
use super::mann_whitney::PairCounts;
use super::sample::{median_of_sorted, sorted};
use super::{Alpha, Sample, StatsError};

/// A confidence interval for a ratio, or the honest statement that the
/// sample is too small for one at the asked level.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Interval {
    /// `[low, high]` with confidence `level`.
    Bounded {
        /// Lower end (a ratio, positive).
        low: f64,
        /// Upper end, at least `low`.
        high: f64,
        /// Confidence level, e.g. 0.9.
        level: f64,
    },
    /// No bounded interval exists at `level`: even the most extreme
    /// arrangement is too likely under the null (2 iterations a side at 90 %:
    /// its probability is 1/6). The interval is the whole of `(0, inf)`.
    Unbounded {
        /// Confidence level that could not be reached.
        level: f64,
    },
}

impl Interval {
    /// The confidence level.
    pub fn level(&self) -> f64 {
        match *self {
            Interval::Bounded { level, .. } | Interval::Unbounded { level } => level,
        }
    }

    /// `(low, high)` when bounded.
    pub fn bounds(&self) -> Option<(f64, f64)> {
        match *self {
            Interval::Bounded { low, high, .. } => Some((low, high)),
            Interval::Unbounded { .. } => None,
        }
    }

    /// Lower end when bounded.
    pub fn low(&self) -> Option<f64> {
        self.bounds().map(|(low, _)| low)
    }

    /// Upper end when bounded.
    pub fn high(&self) -> Option<f64> {
        self.bounds().map(|(_, high)| high)
    }

    /// Whether `ratio` lies in the interval (always, when unbounded).
    pub fn contains(&self, ratio: f64) -> bool {
        match self.bounds() {
            Some((low, high)) => low <= ratio && ratio <= high,
            None => ratio > 0.0,
        }
    }
}

/// The treatment/baseline ratio with its interval and pair counts.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct RatioEstimate {
    /// Hodges-Lehmann ratio: the median of the pairwise ratios (log scale).
    pub ratio: f64,
    /// Two-sided `1 - 2 alpha` interval; its ends are the one-sided
    /// `1 - alpha` bounds.
    pub interval: Interval,
    /// The order-statistic rank `k` behind the interval (1 = the extreme
    /// ratios), `None` when unbounded.
    pub rank: Option<usize>,
    /// Pairs where the treatment value is larger ("treatment slower").
    pub slower_pairs: usize,
    /// Pairs where the treatment value is smaller.
    pub faster_pairs: usize,
    /// All pairs, `n * m`.
    pub pairs: usize,
    /// Cliff's delta, `(slower - faster) / pairs`, in `[-1, 1]`.
    pub cliffs_delta: f64,
}

/// Estimates the treatment/baseline ratio, with bounds at one-sided level
/// `1 - alpha`.
pub fn hodges_lehmann(
    baseline: &Sample,
    treatment: &Sample,
    alpha: Alpha,
) -> Result<RatioEstimate, StatsError> {
    let null = NullDistribution::new(baseline.len(), treatment.len())?;
    let logs = pairwise_log_ratios(baseline, treatment);
    let counts = PairCounts::of(baseline, treatment);
    let rank = null.interval_rank(alpha.get());
    let level = alpha.two_sided_level();
    let interval = match rank {
        // k <= nm/2 because alpha < 0.5, so both indices are in range and
        // ordered; `get` keeps the code total anyway.
        Some(k) => match (logs.get(k - 1), logs.get(logs.len() - k)) {
            (Some(&lo), Some(&hi)) => Interval::Bounded {
                low: lo.exp(),
                high: hi.exp(),
                level,
            },
            _ => Interval::Unbounded { level },
        },
        None => Interval::Unbounded { level },
    };
    Ok(RatioEstimate {
        ratio: median_of_sorted(&logs).exp(),
        interval,
        rank,
        slower_pairs: counts.treatment_greater,
        faster_pairs: counts.treatment_less,
        pairs: counts.pairs(),
        cliffs_delta: counts.cliffs_delta(),
    })
}

/// Sorted `ln t_j - ln b_i` over all pairs. Logs are taken once per value,
/// and subtraction is exactly antisymmetric, so swapping the branches
/// negates every entry exactly and the estimate inverts.
pub(crate) fn pairwise_log_ratios(baseline: &Sample, treatment: &Sample) -> Vec<f64> {
    let lb = baseline.logs();
    let lt = treatment.logs();
    let all: Vec<f64> = lt
        .iter()
        .flat_map(|t| lb.iter().map(move |b| t - b))
        .collect();
    sorted(&all)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.to_vec()).unwrap()
    }

    #[test]
    fn three_a_side_uses_the_extremes() {
        let b = s(&[10.0, 11.0, 12.0]);
        let t = s(&[13.0, 14.0, 15.0]);
        let r = hodges_lehmann(&b, &t, Alpha::DEFAULT).unwrap();
        assert_eq!(r.rank, Some(1));
        let (low, high) = r.interval.bounds().unwrap();
        assert!((low - 13.0 / 12.0).abs() < 1e-12);
        assert!((high - 15.0 / 10.0).abs() < 1e-12);
        assert!((r.ratio - 14.0 / 11.0).abs() < 1e-12);
        assert_eq!((r.slower_pairs, r.pairs), (9, 9));
        assert_eq!(r.cliffs_delta, 1.0);
    }

    #[test]
    fn two_a_side_is_unbounded() {
        let r = hodges_lehmann(&s(&[1.0, 2.0]), &s(&[3.0, 4.0]), Alpha::DEFAULT).unwrap();
        assert!(matches!(r.interval, Interval::Unbounded { .. }));
        assert!(r.interval.contains(r.ratio));
        assert_eq!(r.rank, None);
    }
}
