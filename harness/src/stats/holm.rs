//! Holm's step-down correction across the gated metrics.
//!
//! A gate that checks a dozen metrics at 5 % each would call a regression on
//! some metric in roughly every other clean run. Holm keeps the chance of any
//! false call across the gated family at alpha, with no assumption about how
//! the metrics depend on each other (section times share a run, so they do),
//! and is never less powerful than Bonferroni.
//!
//! The gate adjusts the one-sided p-values of "slower" (and, separately, of
//! "faster") across the gated family; see [`decide_family`](super::decide_family).
//! Rejection is `adjusted p <= alpha`, Holm's own rule.

use serde::Serialize;

use super::exact::TAIL_TOLERANCE;
use super::{Alpha, StatsError};

/// One p-value after Holm's adjustment.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HolmAdjusted {
    /// The p-value given.
    pub p: f64,
    /// Holm-adjusted p-value, `max_{i <= rank} (g - i + 1) p_(i)`, at most 1.
    pub adjusted_p: f64,
    /// Whether the hypothesis is rejected at the family alpha.
    pub rejected: bool,
}

/// Adjusts `p_values` (one per gated metric, any order; the result keeps it)
/// at family error rate `alpha`. Refuses NaN or values outside [0, 1].
pub fn holm(p_values: &[f64], alpha: Alpha) -> Result<Vec<HolmAdjusted>, StatsError> {
    for (index, &value) in p_values.iter().enumerate() {
        if !(0.0..=1.0).contains(&value) {
            return Err(StatsError::InvalidPValue { index, value });
        }
    }
    Ok(adjust(p_values, alpha))
}

/// Holm-adjusted p-values of `p_values` (each in [0, 1]), in their order.
pub(crate) fn holm_adjust(p_values: &[f64]) -> Vec<f64> {
    adjust(p_values, Alpha::DEFAULT)
        .into_iter()
        .map(|h| h.adjusted_p)
        .collect()
}

/// The adjustment itself, on p-values already known to be in [0, 1].
fn adjust(p_values: &[f64], alpha: Alpha) -> Vec<HolmAdjusted> {
    let g = p_values.len();
    let mut order: Vec<usize> = (0..g).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    let mut adjusted = vec![0.0; g];
    let mut running_max: f64 = 0.0;
    for (rank, &index) in order.iter().enumerate() {
        // Monotone by construction: a metric is rejected only if every metric
        // with a smaller p was.
        running_max = running_max.max(((g - rank) as f64 * p_values[index]).min(1.0));
        adjusted[index] = running_max;
    }
    let limit = alpha.get() * (1.0 + TAIL_TOLERANCE);
    p_values
        .iter()
        .zip(adjusted)
        .map(|(&p, adjusted_p)| HolmAdjusted {
            p,
            adjusted_p,
            rejected: adjusted_p <= limit,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn textbook_example() {
        // p = 0.01, 0.04, 0.03, 0.005 with alpha 0.05: sorted 0.005 (x4 =
        // 0.02), 0.01 (x3 = 0.03), 0.03 (x2 = 0.06), 0.04 (x1 -> max 0.06).
        let r = holm(&[0.01, 0.04, 0.03, 0.005], Alpha::DEFAULT).unwrap();
        let adj: Vec<f64> = r.iter().map(|h| h.adjusted_p).collect();
        let expected = [0.03, 0.06, 0.06, 0.02];
        for (a, e) in adj.iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{adj:?}");
        }
        let rejected: Vec<bool> = r.iter().map(|h| h.rejected).collect();
        assert_eq!(rejected, vec![true, false, false, true]);
    }

    #[test]
    fn refuses_bad_p() {
        assert!(holm(&[0.5, f64::NAN], Alpha::DEFAULT).is_err());
        assert!(holm(&[1.5], Alpha::DEFAULT).is_err());
        assert!(holm(&[], Alpha::DEFAULT).unwrap().is_empty());
    }
}
