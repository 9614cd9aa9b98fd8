//! The plan for `--iterations auto`: the per-side sizes at which results are
//! examined, and the alpha each examination may spend.
//!
//! Looking after 3, 5, 8 and 10 iterations and stopping at the first
//! decision gives four chances of a false call (a false regression, or a
//! false "no regression"), so the family alpha is split across the looks by
//! weighted Bonferroni: look `k` spends `w_k * alpha` with the weights
//! summing to 1, which holds however correlated the looks are. The default
//! puts half the alpha on 5 a side, where the gate is meant to decide, a
//! tenth on 3 (where only large effects can be called anyway) and a fifth
//! each on 8 and 10: per-look alphas 0.005, 0.025, 0.01, 0.01 at family 0.05.
//! `docs/statistics.md` has the measured error rates and power of this plan.

use serde::Serialize;

use super::{Alpha, StatsError};

/// One planned look: after `per_side` iterations on each branch, judge at
/// `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Look {
    /// Iterations per side at this look.
    pub per_side: usize,
    /// One-sided alpha of every verdict at this look.
    pub alpha: Alpha,
}

/// The looks of an adaptive run, in increasing size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LookSchedule {
    family_alpha: Alpha,
    looks: Vec<Look>,
}

impl LookSchedule {
    /// The default sizes: 3, then 5, 8, 10 per side.
    pub const DEFAULT_SIZES: [usize; 4] = [3, 5, 8, 10];
    /// The default share of the family alpha each look spends.
    pub const DEFAULT_WEIGHTS: [f64; 4] = [0.1, 0.5, 0.2, 0.2];

    /// The default plan at `family_alpha`.
    pub fn standard(family_alpha: Alpha) -> Self {
        // The constants are valid by construction (tested below).
        Self::weighted(&Self::DEFAULT_SIZES, &Self::DEFAULT_WEIGHTS, family_alpha).unwrap_or(Self {
            family_alpha,
            looks: vec![Look {
                per_side: 10,
                alpha: family_alpha,
            }],
        })
    }

    /// Splits `family_alpha` across looks at `sizes` (strictly increasing,
    /// from 2) in proportion to `weights` (positive, one per size; they are
    /// normalised to sum to 1).
    pub fn weighted(
        sizes: &[usize],
        weights: &[f64],
        family_alpha: Alpha,
    ) -> Result<Self, StatsError> {
        let increasing = sizes.windows(2).all(|w| w[0] < w[1]);
        if !(increasing && sizes.first().is_some_and(|&s| s >= 2)) {
            return Err(StatsError::InvalidLookSchedule {
                sizes: sizes.to_vec(),
            });
        }
        let sum: f64 = weights.iter().sum();
        let valid_weights = weights.len() == sizes.len()
            && weights.iter().all(|w| w.is_finite() && *w > 0.0)
            && sum.is_finite();
        if !valid_weights {
            return Err(StatsError::InvalidLookWeights {
                weights: weights.to_vec(),
            });
        }
        let looks = sizes
            .iter()
            .zip(weights)
            .map(|(&per_side, w)| Look {
                per_side,
                alpha: family_alpha.scaled(w / sum),
            })
            .collect();
        Ok(Self {
            family_alpha,
            looks,
        })
    }

    /// The looks, smallest first.
    pub fn looks(&self) -> &[Look] {
        &self.looks
    }

    /// The alpha the whole adaptive run keeps.
    pub fn family_alpha(&self) -> Alpha {
        self.family_alpha
    }

    /// The look after `per_side` iterations, or `None` at the cap.
    pub fn next_after(&self, per_side: usize) -> Option<&Look> {
        self.looks.iter().find(|l| l.per_side > per_side)
    }

    /// The look at exactly `per_side`, if one is planned there.
    pub fn at(&self, per_side: usize) -> Option<&Look> {
        self.looks.iter().find(|l| l.per_side == per_side)
    }

    /// The largest planned size: the adaptive run's cap.
    pub fn cap(&self) -> usize {
        self.looks.last().map_or(0, |l| l.per_side)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn standard_plan_spends_the_family_alpha() {
        let plan = LookSchedule::standard(Alpha::DEFAULT);
        let sizes: Vec<usize> = plan.looks().iter().map(|l| l.per_side).collect();
        assert_eq!(sizes, vec![3, 5, 8, 10]);
        let alphas: Vec<f64> = plan.looks().iter().map(|l| l.alpha.get()).collect();
        for (a, e) in alphas.iter().zip([0.005, 0.025, 0.01, 0.01]) {
            assert!((a - e).abs() < 1e-15, "{alphas:?}");
        }
        let spent: f64 = alphas.iter().sum();
        assert!((spent - 0.05).abs() < 1e-15);
        assert_eq!(plan.cap(), 10);
        assert_eq!(plan.next_after(3).map(|l| l.per_side), Some(5));
        assert_eq!(plan.next_after(10), None);
        assert_eq!(plan.at(8).map(|l| l.alpha.get()), Some(alphas[2]));
    }

    #[test]
    fn refuses_bad_plans() {
        for bad in [&[][..], &[3, 3], &[5, 3], &[1, 3]] {
            let weights = vec![1.0; bad.len()];
            assert!(
                LookSchedule::weighted(bad, &weights, Alpha::DEFAULT).is_err(),
                "{bad:?}"
            );
        }
        assert!(LookSchedule::weighted(&[3, 5], &[1.0], Alpha::DEFAULT).is_err());
        assert!(LookSchedule::weighted(&[3, 5], &[1.0, -1.0], Alpha::DEFAULT).is_err());
        assert!(LookSchedule::weighted(&[3, 5], &[1.0, f64::NAN], Alpha::DEFAULT).is_err());
    }

    #[test]
    fn single_look_keeps_all_alpha() {
        let s = LookSchedule::weighted(&[3], &[2.0], Alpha::DEFAULT).unwrap();
        assert_eq!(s.looks()[0].alpha, Alpha::DEFAULT);
    }
}
