//! The plan for `--iterations auto`: the per-side sizes at which results are
//! examined, and the alpha each examination may spend.
//!
//! Looking after 3, 5, 8 and 10 iterations and stopping at the first verdict
//! gives four chances of a false call, so the family alpha is split across
//! the looks (Bonferroni, valid however correlated the looks are). One
//! refinement: a look whose size cannot reach the per-look alpha at all
//! (the smallest attainable one-sided p at `n` a side is `1 / C(2n, n)`)
//! can never decide anything and so spends nothing; the alpha goes to the
//! looks that can. Exactly: the largest `c` such that the `c` largest looks
//! each attain `alpha / c` share the alpha; every look is run at `alpha / c`.
//!
//! Default: sizes 3, 5, 8, 10 and family alpha 0.05. 3 a side attains no less
//! than 1/20 = 0.05, so the share goes to 5, 8 and 10: 0.05 / 3 ~ 0.0167 each
//! (one-sided bounds at 98.3 %, two-sided intervals at 96.7 %). The look at 3
//! still reports progress and plans, but cannot decide.

use serde::Serialize;

use super::exact::{NullDistribution, TAIL_TOLERANCE};
use super::{Alpha, StatsError};

/// One planned look: after `per_side` iterations on each branch, compare at
/// `alpha`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Look {
    /// Iterations per side at this look.
    pub per_side: usize,
    /// One-sided alpha for verdicts (and Holm) at this look.
    pub alpha: Alpha,
    /// Whether any verdict is attainable at this size and alpha; a look
    /// that cannot decide spends no alpha.
    pub can_decide: bool,
}

/// The looks of an adaptive run, in increasing size.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LookSchedule {
    family_alpha: Alpha,
    looks: Vec<Look>,
}

impl LookSchedule {
    /// The design's sizes: 3, then 5, 8, 10 per side.
    pub const DEFAULT_SIZES: [usize; 4] = [3, 5, 8, 10];

    /// Splits `family_alpha` across looks at `sizes` (strictly increasing,
    /// starting at 2 or more, each at most
    /// [`MAX_EXACT_PER_SIDE`](super::MAX_EXACT_PER_SIDE)).
    pub fn bonferroni(sizes: &[usize], family_alpha: Alpha) -> Result<Self, StatsError> {
        let increasing = sizes.windows(2).all(|w| w[0] < w[1]);
        let valid = increasing
            && sizes.first().is_some_and(|&s| s >= 2)
            && sizes
                .last()
                .is_some_and(|&s| s <= super::MAX_EXACT_PER_SIDE);
        if !valid {
            return Err(StatsError::InvalidLookSchedule {
                sizes: sizes.to_vec(),
            });
        }
        let min_p: Vec<f64> = sizes
            .iter()
            .map(|&n| NullDistribution::new(n, n).map(|d| d.cdf(0)))
            .collect::<Result<_, _>>()?;
        let attains = |p: f64, share: Alpha| p <= share.get() * (1.0 + TAIL_TOLERANCE);
        // Sizes increase, so the c largest looks are the last c; the c-th
        // largest is the hardest of them to satisfy.
        let sharing = (1..=sizes.len())
            .rev()
            .find(|&c| attains(min_p[sizes.len() - c], family_alpha.divided_by(c)))
            .unwrap_or(sizes.len());
        let alpha = family_alpha.divided_by(sharing);
        let looks = sizes
            .iter()
            .zip(min_p)
            .map(|(&per_side, p)| Look {
                per_side,
                alpha,
                can_decide: attains(p, alpha),
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

    /// The first look, where the run starts.
    pub fn first(&self) -> Option<&Look> {
        self.looks.first()
    }

    /// The look after `per_side` iterations, or `None` at the cap.
    pub fn next_after(&self, per_side: usize) -> Option<&Look> {
        self.looks.iter().find(|l| l.per_side > per_side)
    }

    /// The largest planned size: the adaptive run's cap.
    pub fn cap(&self) -> usize {
        self.looks.last().map_or(0, |l| l.per_side)
    }
}

impl Default for LookSchedule {
    /// Looks at 3, 5, 8, 10 per side with family alpha 0.05.
    fn default() -> Self {
        let alpha = Alpha::DEFAULT.divided_by(3);
        let looks = Self::DEFAULT_SIZES
            .iter()
            .map(|&per_side| Look {
                per_side,
                alpha,
                can_decide: per_side >= 5,
            })
            .collect();
        Self {
            family_alpha: Alpha::DEFAULT,
            looks,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_matches_the_computed_split() {
        let computed =
            LookSchedule::bonferroni(&LookSchedule::DEFAULT_SIZES, Alpha::DEFAULT).unwrap();
        assert_eq!(computed, LookSchedule::default());
        let sizes: Vec<usize> = computed.looks().iter().map(|l| l.per_side).collect();
        assert_eq!(sizes, vec![3, 5, 8, 10]);
        assert!((computed.looks()[1].alpha.get() - 0.05 / 3.0).abs() < 1e-15);
        assert!(!computed.looks()[0].can_decide);
        assert_eq!(computed.cap(), 10);
        assert_eq!(computed.next_after(3).map(|l| l.per_side), Some(5));
        assert_eq!(computed.next_after(10), None);
    }

    #[test]
    fn refuses_bad_sizes() {
        for bad in [&[][..], &[3, 3], &[5, 3], &[1, 3], &[3, 60]] {
            assert!(
                LookSchedule::bonferroni(bad, Alpha::DEFAULT).is_err(),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn single_look_keeps_all_alpha() {
        let s = LookSchedule::bonferroni(&[3], Alpha::DEFAULT).unwrap();
        assert_eq!(s.looks()[0].alpha, Alpha::DEFAULT);
        assert!(s.looks()[0].can_decide);
    }
}
