//! Statistics that decide verdicts: pure functions, no files, no clock, no
//! I/O. Measurement and rendering live elsewhere; `docs/statistics.md` says
//! why this procedure and what it achieves on real iterations.
//!
//! The unit of evidence is one iteration: each metric has one positive number
//! per iteration per branch, a [`Sample`]. For each metric:
//!
//! 1. [`LogShift::welch`]: the treatment/baseline ratio of geometric means
//!    with Welch's t uncertainty on log values;
//! 2. a [`Tolerance`] (noise band, pass bound, absolute floor) says what
//!    change does not count and what a pass must rule out;
//! 3. [`decide_family`] judges the gated metrics together: a regression needs
//!    Holm-adjusted significance and a size beyond the band, both without
//!    the iterations the machine slowed ([`machine_strays`]); "no
//!    regression" needs the one-sided upper bound inside the pass bound;
//!    anything else is "cannot tell";
//! 4. [`compare_family`] wraps that with medians and the exact rank
//!    statistics (Hodges-Lehmann, Mann-Whitney, Cliff's delta) as a
//!    [`Comparison`];
//! 5. [`decide`] turns comparisons and assertion [`PassRate`]s into a
//!    [`GateOutcome`] for a [`GateMode`].
//!
//! Adaptive runs take their per-look alpha from a [`LookSchedule`].
//!
//! ```
//! use soakgate::stats::{Alpha, NoiseBand, Sample, Tolerance, Verdict, compare};
//!
//! let baseline = Sample::new(vec![100.0, 102.0, 101.0])?;
//! let treatment = Sample::new(vec![128.0, 131.0, 127.0])?;
//! let c = compare("total", &baseline, &treatment, Tolerance::relative(NoiseBand::TIME), Alpha::DEFAULT)?;
//! assert_eq!(c.verdict, Verdict::Regression);
//! assert_eq!((c.rank_check.slower_pairs, c.rank_check.pairs), (9, 9));
//! # Ok::<(), soakgate::stats::StatsError>(())
//! ```

mod decision;
mod error;
mod exact;
mod gate;
mod hodges_lehmann;
mod holm;
mod log_t;
mod looks;
mod mann_whitney;
mod params;
mod planning;
mod sample;
mod stratified;
mod stray;
mod verdict;

pub use decision::{
    Call, Decision, Evidence, PLANNING_POWER, Tolerance, call_family, decide_family,
};
pub use error::StatsError;
pub use exact::{MAX_EXACT_PER_SIDE, NullDistribution};
pub use gate::{
    AssertionPassRates, GateInput, GateMode, GateOutcome, GateStatus, OnCannotTell, PassRate,
    assertion_regressed, decide,
};
pub use hodges_lehmann::{Interval, RatioEstimate, hodges_lehmann};
pub use holm::{HolmAdjusted, holm};
pub use log_t::LogShift;
pub use looks::{Look, LookSchedule};
pub use mann_whitney::{MannWhitney, mann_whitney};
pub use params::{Alpha, NoiseBand, percent};
pub use planning::MAX_PLANNED_PER_SIDE;
pub use sample::{Sample, median};
pub use stratified::stratified_shift;
pub use stray::{CPU_GREW, MAX_SET_ASIDE, SideSetAside, Stray, TimedSide, machine_strays, strays};
pub use verdict::{
    Comparison, MetricSamples, RankCheck, SetAside, Verdict, compare, compare_family, evidence_of,
};
