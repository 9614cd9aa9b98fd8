//! Statistics that decide verdicts: pure functions, no files, no clock, no
//! I/O (DESIGN §8). Measurement and rendering live elsewhere.
//!
//! The unit of evidence is one iteration: each metric has one positive number
//! per iteration per branch, a [`Sample`]. For each metric:
//!
//! 1. [`hodges_lehmann`]: the treatment/baseline ratio (median of all pairwise
//!    ratios on the log scale) with a distribution-free interval from the
//!    exact Mann-Whitney null ([`NullDistribution`]);
//! 2. [`mann_whitney`]: the exact U test (ties: exact permutation
//!    distribution given the ties);
//! 3. [`compare`]: both, plus Cliff's delta and the four-way [`Verdict`] with
//!    a reason in words, as a [`Comparison`];
//! 4. across the gated metrics, [`apply_holm`] demotes calls that do not
//!    survive Holm's correction;
//! 5. [`decide`] turns comparisons and assertion [`PassRate`]s into a
//!    [`GateOutcome`] for a [`GateMode`].
//!
//! Adaptive runs take their per-look alpha from a [`LookSchedule`].
//!
//! ```
//! use soakgate::stats::{Alpha, NoiseBand, Sample, Verdict, compare};
//!
//! let baseline = Sample::new(vec![100.0, 102.0, 101.0])?;
//! let treatment = Sample::new(vec![128.0, 131.0, 127.0])?;
//! let c = compare("total", &baseline, &treatment, NoiseBand::TIME, Alpha::DEFAULT)?;
//! assert_eq!(c.verdict, Verdict::Regression);
//! assert_eq!((c.slower_pairs, c.pairs), (9, 9));
//! # Ok::<(), soakgate::stats::StatsError>(())
//! ```

mod error;
mod exact;
mod gate;
mod hodges_lehmann;
mod holm;
mod looks;
mod mann_whitney;
mod params;
mod planning;
mod reason;
mod sample;
mod verdict;

pub use error::StatsError;
pub use exact::{MAX_EXACT_PER_SIDE, NullDistribution};
pub use gate::{AssertionPassRates, GateMode, GateOutcome, PassRate, assertion_regressed, decide};
pub use hodges_lehmann::{Interval, RatioEstimate, hodges_lehmann};
pub use holm::{HolmAdjusted, apply_holm, holm};
pub use looks::{Look, LookSchedule};
pub use mann_whitney::{MannWhitney, mann_whitney};
pub use params::{Alpha, NoiseBand};
pub use planning::MAX_PLANNED_PER_SIDE;
pub use sample::Sample;
pub use verdict::{Comparison, Verdict, compare};
