//! The one error type of the statistics module: every way an input can be
//! refused, each message showing the offending value.

/// Why a statistics input was refused.
///
/// Every variant is something a user can cause (an empty run, a metric that
/// reads zero, a bad flag), so none of them panics.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StatsError {
    /// A sample had fewer than two iterations.
    #[error("a sample needs at least 2 iterations, got {len}")]
    TooFewValues {
        /// How many values were given.
        len: usize,
    },
    /// A value was NaN or infinite.
    #[error("iteration {index} has value `{value}`, which is not a finite number")]
    NotFinite {
        /// Position of the value in the sample (0-based).
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// A value was zero or negative; ratios need positive values.
    #[error("iteration {index} has value `{value}`; ratios need values above zero")]
    NotPositive {
        /// Position of the value in the sample (0-based).
        index: usize,
        /// The value itself.
        value: f64,
    },
    /// The exact distribution was asked for more iterations than it supports.
    #[error(
        "the exact Mann-Whitney distribution supports at most {max} iterations per side, \
         got {baseline} baseline and {treatment} treatment"
    )]
    TooManyForExact {
        /// Baseline iterations.
        baseline: usize,
        /// Treatment iterations.
        treatment: usize,
        /// The supported maximum per side.
        max: usize,
    },
    /// An alpha outside (0, 0.5).
    #[error("alpha `{value}` must lie strictly between 0 and 0.5")]
    InvalidAlpha {
        /// The refused value.
        value: f64,
    },
    /// A noise band outside (0, 1).
    #[error("noise band `{value}` must lie strictly between 0 and 1 (0.05 means 5 %)")]
    InvalidNoiseBand {
        /// The refused value.
        value: f64,
    },
    /// An absolute floor that is negative or not a number.
    #[error("floor `{value}` must be a number of at least 0")]
    InvalidFloor {
        /// The refused value.
        value: f64,
    },
    /// Look weights that do not match the sizes, or are not positive.
    #[error("look weights `{weights:?}` must be positive, one per look")]
    InvalidLookWeights {
        /// The refused weights.
        weights: Vec<f64>,
    },
    /// A p-value outside [0, 1] or NaN.
    #[error("p-value {index} is `{value}`, outside [0, 1]")]
    InvalidPValue {
        /// Position of the p-value in the input (0-based).
        index: usize,
        /// The refused value.
        value: f64,
    },
    /// A pass rate with more passes than iterations.
    #[error("pass rate {passed}/{total} counts more passes than iterations")]
    InvalidPassRate {
        /// Iterations that passed.
        passed: usize,
        /// Iterations in all.
        total: usize,
    },
    /// A look schedule that is empty, not increasing, or starts below 2.
    #[error(
        "look schedule `{sizes:?}` must be non-empty, strictly increasing and start at 2 or more"
    )]
    InvalidLookSchedule {
        /// The refused per-side sizes.
        sizes: Vec<usize>,
    },
}
