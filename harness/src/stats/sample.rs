//! [`Sample`]: one metric's per-iteration values for one branch, validated
//! once so that everything downstream can divide and take logarithms freely.

use serde::Serialize;

use super::StatsError;

/// One number per iteration for one metric on one branch (times, bytes).
///
/// The constructor refuses what would make the statistics meaningless: fewer
/// than two values (no spread to speak of), NaN or infinities, and values at
/// or below zero (the effect is a ratio, computed on a log scale).
///
/// ```
/// use soakgate::stats::Sample;
/// let s = Sample::new(vec![3.0, 1.0, 2.0]).unwrap();
/// assert_eq!(s.median(), 2.0);
/// assert!(Sample::new(vec![1.0]).is_err());
/// assert!(Sample::new(vec![1.0, 0.0]).is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(transparent)]
pub struct Sample(Vec<f64>);

impl Sample {
    /// Validates `values` (in iteration order) into a sample.
    pub fn new(values: Vec<f64>) -> Result<Self, StatsError> {
        if values.len() < 2 {
            return Err(StatsError::TooFewValues { len: values.len() });
        }
        for (index, &value) in values.iter().enumerate() {
            if !value.is_finite() {
                return Err(StatsError::NotFinite { index, value });
            }
            if value <= 0.0 {
                return Err(StatsError::NotPositive { index, value });
            }
        }
        Ok(Self(values))
    }

    /// The values, in the order they were given.
    pub fn values(&self) -> &[f64] {
        &self.0
    }

    /// Number of iterations (at least 2).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Always `false`: a sample holds at least two values. Present because a
    /// `len` without it surprises readers (and clippy).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// The median (mean of the two middle values for an even count).
    pub fn median(&self) -> f64 {
        median_of_sorted(&sorted(&self.0))
    }

    /// Natural logarithms of the values; finite because values are positive.
    pub(crate) fn logs(&self) -> Vec<f64> {
        self.0.iter().map(|v| v.ln()).collect()
    }
}

impl TryFrom<Vec<f64>> for Sample {
    type Error = StatsError;

    fn try_from(values: Vec<f64>) -> Result<Self, Self::Error> {
        Self::new(values)
    }
}

impl TryFrom<&[f64]> for Sample {
    type Error = StatsError;

    fn try_from(values: &[f64]) -> Result<Self, Self::Error> {
        Self::new(values.to_vec())
    }
}

/// A sorted copy; `total_cmp` because the inputs here are always finite and
/// a total order keeps the sort from needing an `unwrap`.
pub(crate) fn sorted(values: &[f64]) -> Vec<f64> {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    v
}

/// Median of an already sorted, non-empty slice; 0 for an empty one (never
/// reached from a [`Sample`], kept total so no caller has to unwrap).
/// The median of any values (0 for none), for tables; the one median of the
/// crate, so every report agrees with the statistics.
pub fn median(values: &[f64]) -> f64 {
    median_of_sorted(&sorted(values))
}

pub(crate) fn median_of_sorted(sorted: &[f64]) -> f64 {
    let n = sorted.len();
    match n {
        0 => 0.0,
        _ if n % 2 == 1 => sorted[n / 2],
        // Halving each term before adding keeps `(x + -x) / 2` exactly 0 and
        // cannot overflow.
        _ => sorted[n / 2 - 1] / 2.0 + sorted[n / 2] / 2.0,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_bad_input() {
        assert_eq!(
            Sample::new(vec![]),
            Err(StatsError::TooFewValues { len: 0 })
        );
        assert_eq!(
            Sample::new(vec![2.0]),
            Err(StatsError::TooFewValues { len: 1 })
        );
        assert!(matches!(
            Sample::new(vec![1.0, f64::NAN]),
            Err(StatsError::NotFinite { index: 1, .. })
        ));
        assert!(matches!(
            Sample::new(vec![f64::INFINITY, 1.0]),
            Err(StatsError::NotFinite { index: 0, .. })
        ));
        assert_eq!(
            Sample::new(vec![1.0, -2.0]),
            Err(StatsError::NotPositive {
                index: 1,
                value: -2.0
            })
        );
        assert!(Sample::new(vec![1.0, 0.0]).is_err());
    }

    #[test]
    fn median_odd_and_even() {
        assert_eq!(Sample::new(vec![5.0, 1.0, 3.0]).unwrap().median(), 3.0);
        assert_eq!(Sample::new(vec![4.0, 1.0, 3.0, 2.0]).unwrap().median(), 2.5);
    }

    #[test]
    fn error_message_shows_value() {
        let err = Sample::new(vec![1.0, -3.5]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "iteration 1 has value `-3.5`; ratios need values above zero"
        );
    }
}
