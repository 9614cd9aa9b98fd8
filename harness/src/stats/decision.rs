//! The three-outcome rule for one metric, and Holm across a gated family.
//!
//! For each metric the evidence is a [`LogShift`] (ratio of geometric means
//! with Welch's standard error) and a [`Tolerance`]: a noise band, a pass
//! bound at least as wide, and an absolute floor that replaces either when
//! larger at this metric's size. With one-sided error rate `alpha`:
//!
//! - **regression**: the one-sided p-value of "slower" survives Holm across
//!   the gated family at `alpha` *and* the estimated ratio is beyond the
//!   noise band. Significance against 1 plus a practical size, rather than a
//!   lower bound beyond the band, is what gives power at 5 a side (a 10 %
//!   slowdown with a 5 % band and a lower bound required above 1.05 is caught
//!   in well under half of the gates); the price is a grey zone: a true
//!   change just inside the band can be called when its estimate lands
//!   outside. Holm keeps the family-wise chance of any false call at `alpha`
//!   whatever the metrics' correlation, and the size requirement only
//!   removes calls. This call alone goes without each side's machine stray
//!   (`stray.rs`): one iteration the machine made slow hides a real
//!   slowdown in about half of the gates at 5 a side.
//! - **no regression**: the one-sided `1 - alpha` upper bound is inside the
//!   pass bound. Each gated metric must show this for the gate to pass; an
//!   intersection-union test, so its false-pass rate is at most `alpha`
//!   with no multiplicity correction. The pass bound may be wider than the
//!   band (8 % against 5 % for the shipped times) because at 5-10 a side an
//!   upper bound rarely fits inside 5 %, while a 10 % slowdown's estimate
//!   rarely stays under it; a slowdown between the two is a regression when
//!   shown and "cannot tell" when not, never a pass.
//! - **improvement**: the mirror of regression, with "faster"; it implies no
//!   regression.
//! - **cannot tell**: neither; with the iterations per side that would likely
//!   decide.

use serde::Serialize;

use super::holm::holm_adjust;
use super::log_t::LogShift;
use super::params::{change_percent, percent, trim_float};
use super::planning;
use super::stray::{MAX_SET_ASIDE, SideSetAside};
use super::{Alpha, NoiseBand, StatsError, Verdict};

/// What change a metric tolerates: a relative band (where regressions and
/// improvements start), a pass bound at least as wide (what a pass must
/// rule out), and an absolute floor in the metric's unit that replaces
/// either where it is larger for the metric's size. A 10 ms section whose
/// ratio is noise neither blocks the gate nor stays undecided.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Tolerance {
    band: NoiseBand,
    floor: f64,
    /// How far a pass must rule slowdowns out: its upper bound inside this
    /// share (at least `band`).
    pass: NoiseBand,
}

impl Tolerance {
    /// `band` relative, `floor` absolute (finite, at least 0).
    pub fn new(band: NoiseBand, floor: f64) -> Result<Self, StatsError> {
        if floor.is_finite() && floor >= 0.0 {
            Ok(Self {
                band,
                floor,
                pass: band,
            })
        } else {
            Err(StatsError::InvalidFloor { value: floor })
        }
    }

    /// A band with no floor.
    pub fn relative(band: NoiseBand) -> Self {
        Self {
            band,
            floor: 0.0,
            pass: band,
        }
    }

    /// The same tolerance, with a pass needing its upper bound inside
    /// `pass` rather than inside the band (never less than the band). A
    /// shown slowdown beyond the band is still a regression; one inside the
    /// pass bound that is not shown is a pass; between, "cannot tell".
    pub fn with_pass_bound(self, pass: NoiseBand) -> Self {
        let pass = if pass.get() > self.band.get() {
            pass
        } else {
            self.band
        };
        Self { pass, ..self }
    }

    /// How far a pass must rule slowdowns out, as a share.
    pub fn pass_bound(&self) -> NoiseBand {
        self.pass
    }

    /// The relative band.
    pub fn band(&self) -> NoiseBand {
        self.band
    }

    /// The absolute floor, in the metric's unit.
    pub fn floor(&self) -> f64 {
        self.floor
    }

    /// The share a pass must rule out at a baseline of `baseline_median`:
    /// the pass bound, or the floor as a share, whichever is larger.
    pub fn share(&self, baseline_median: f64) -> f64 {
        self.pass.get().max(self.floor_share(baseline_median))
    }

    /// The smallest slowdown called a regression (or speed-up called an
    /// improvement) at a baseline of `baseline_median`: the band or the
    /// floor as a share, whichever is larger.
    pub fn regression_share(&self, baseline_median: f64) -> f64 {
        self.band.get().max(self.floor_share(baseline_median))
    }

    fn floor_share(&self, baseline_median: f64) -> f64 {
        if baseline_median > 0.0 {
            self.floor / baseline_median
        } else {
            f64::INFINITY
        }
    }
}

/// One metric's evidence, ready to be judged with its family.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evidence {
    /// The log-scale estimate over every iteration: what "no regression",
    /// "improvement" and the planning figures use.
    pub shift: LogShift,
    /// The estimate a regression call uses: `shift` with each side's
    /// machine stray set aside ([`machine_strays`](super::machine_strays)),
    /// or `shift` itself when there is none.
    pub call_shift: LogShift,
    /// Positions of the values set aside on each side, `[baseline,
    /// treatment]`.
    pub set_aside: [SideSetAside; 2],
    /// The tolerated share (see [`Tolerance::share`]).
    pub tolerated: f64,
    /// The smallest change a regression or improvement call needs, as a
    /// share (see [`Tolerance::regression_share`]; at most `tolerated`).
    pub regression_share: f64,
    /// Iterations per side (the larger side), for planning.
    pub per_side: usize,
}

impl Evidence {
    /// Evidence with nothing set aside: every call uses `shift`.
    pub fn new(shift: LogShift, tolerated: f64, per_side: usize) -> Self {
        Self {
            shift,
            call_shift: shift,
            set_aside: [[None; MAX_SET_ASIDE]; 2],
            tolerated,
            regression_share: tolerated,
            per_side,
        }
    }

    /// A call estimate above this is a slowdown big enough to be a
    /// regression.
    pub fn regression_limit(&self) -> f64 {
        1.0 + self.regression_share.min(self.tolerated)
    }

    /// An estimate below this is a speed-up big enough to be an
    /// improvement (0 when the share is 100 % or more).
    pub fn improvement_limit(&self) -> f64 {
        (1.0 - self.regression_share.min(self.tolerated)).max(0.0)
    }

    /// Whether the regression call went without some iteration.
    pub fn has_set_aside(&self) -> bool {
        self.set_aside.iter().flatten().any(Option::is_some)
    }

    /// A ratio above this is a slowdown a pass cannot rule out: the pass
    /// bound (or floor).
    pub fn slower_limit(&self) -> f64 {
        1.0 + self.tolerated
    }
}

/// The verdict on one metric with the numbers behind it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Decision {
    /// The verdict.
    pub verdict: Verdict,
    /// Holm-adjusted p-value of "slower" across the family.
    pub p_slower_adjusted: f64,
    /// Holm-adjusted p-value of "faster" across the family.
    pub p_faster_adjusted: f64,
    /// One-sided `1 - alpha` upper bound of the ratio.
    pub upper: f64,
    /// One-sided `1 - alpha` lower bound of the ratio.
    pub lower: f64,
    /// The smallest slowdown (ratio) this test would catch in 90 % of runs
    /// at this standard error and family size.
    pub detectable_ratio: f64,
    /// The verdict in words.
    pub reason: String,
}

/// Power the "could have caught" figures are quoted at.
pub const PLANNING_POWER: f64 = 0.9;

/// The bare outcome of the rule, without plan or words: what `soak power`
/// needs thousands of times a second, and what [`decide_family`] dresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Call {
    /// See [`Verdict::Regression`].
    Regression,
    /// See [`Verdict::Improvement`].
    Improvement,
    /// See [`Verdict::NoRegression`].
    NoRegression,
    /// See [`Verdict::CannotTell`].
    CannotTell,
}

/// The rule on a family at one-sided `alpha`, with the Holm-adjusted
/// p-values of "slower" and "faster" it used.
pub fn call_family(family: &[Evidence], alpha: Alpha) -> Vec<(Call, f64, f64)> {
    // A stray can only hide a slowdown, so only the "slower" claim goes
    // without it; "faster" and "no regression" keep every iteration.
    let slower: Vec<f64> = family.iter().map(|e| e.call_shift.p_greater()).collect();
    let faster: Vec<f64> = family.iter().map(|e| e.shift.p_less()).collect();
    let slower_adjusted = holm_adjust(&slower);
    let faster_adjusted = holm_adjust(&faster);
    // Holm's own rule is `adjusted p <= alpha`; the tolerance absorbs float
    // noise in the product `k * p`.
    let level = alpha.get() * (1.0 + 1e-9);
    family
        .iter()
        .zip(slower_adjusted.into_iter().zip(faster_adjusted))
        .map(|(e, (p_slow, p_fast))| {
            let ratio = e.shift.ratio();
            let call = if p_slow <= level && e.call_shift.ratio() > e.regression_limit() {
                Call::Regression
            } else if p_fast <= level && ratio < e.improvement_limit() {
                Call::Improvement
            } else if upper_inside(e, alpha) {
                Call::NoRegression
            } else {
                Call::CannotTell
            };
            (call, p_slow, p_fast)
        })
        .collect()
}

/// Whether the one-sided `1 - alpha` upper bound is below the slower limit:
/// `P(T >= (ln limit - d) / se) < alpha`, a tail probability rather than a
/// quantile because it is several times cheaper and exactly equivalent.
fn upper_inside(e: &Evidence, alpha: Alpha) -> bool {
    let margin = e.slower_limit().ln() - e.shift.log_ratio;
    if margin <= 0.0 {
        return false;
    }
    e.shift.tail_beyond(margin) < alpha.get()
}

/// Judges a family of metrics together at one-sided `alpha`: Holm across
/// the family for the directional claims, and the per-metric upper bound for
/// "no regression". A family of one is a metric judged on its own (advisory
/// metrics).
pub fn decide_family(family: &[Evidence], alpha: Alpha) -> Vec<Decision> {
    // Holm's strictest step is Bonferroni: the level a lone effect meets.
    let per_metric = alpha.divided_by(family.len());
    family
        .iter()
        .zip(call_family(family, alpha))
        .map(|(e, (call, p_slow, p_fast))| {
            let verdict = match call {
                Call::Regression => Verdict::Regression,
                Call::Improvement => Verdict::Improvement,
                Call::NoRegression => Verdict::NoRegression,
                Call::CannotTell => Verdict::CannotTell {
                    iterations_needed: planning::iterations_needed(e, alpha, per_metric),
                },
            };
            let upper = e.shift.upper_bound(alpha);
            let lower = e.shift.lower_bound(alpha);
            // What a regression call would catch: its size check is the band.
            let detectable_ratio =
                e.shift
                    .detectable_ratio(per_metric, e.regression_limit(), PLANNING_POWER);
            let reason = explain(e, verdict, p_slow, p_fast, alpha, upper);
            Decision {
                verdict,
                p_slower_adjusted: p_slow,
                p_faster_adjusted: p_fast,
                upper,
                lower,
                detectable_ratio,
                reason,
            }
        })
        .collect()
}

/// One sentence ending in the verdict.
fn explain(
    e: &Evidence,
    verdict: Verdict,
    p_slow: f64,
    p_fast: f64,
    alpha: Alpha,
    upper: f64,
) -> String {
    let ratio = e.shift.ratio();
    let level = percent(alpha.one_sided_level());
    // With a pass bound wider than the band the two limits get their own
    // names; otherwise both are "the tolerance", as they always were.
    let (threshold, tolerance) = if e.regression_limit() < e.slower_limit() {
        (
            format!("{} noise band", percent(e.regression_limit() - 1.0)),
            format!("{} pass bound", percent(e.tolerated)),
        )
    } else {
        let tolerance = format!("{} tolerance", percent(e.tolerated));
        (tolerance.clone(), tolerance)
    };
    let a = trim_float(alpha.get());
    match verdict {
        Verdict::Regression => format!(
            "{} slower (p {} after Holm, <= {a}), beyond the {threshold}; {level} lower bound x{}{}: regression",
            change_percent(e.call_shift.ratio()),
            p_text(p_slow),
            fmt_ratio(e.call_shift.lower_bound(alpha)),
            set_aside_text(e)
        ),
        Verdict::Improvement => format!(
            "{} faster (p {} after Holm, <= {a}), beyond the {threshold}; {level} upper bound x{}: improvement",
            change_percent(1.0 / ratio),
            p_text(p_fast),
            fmt_ratio(upper)
        ),
        Verdict::NoRegression => format!(
            "{level} upper bound x{} is inside the {tolerance} (rules out a slowdown above {}): no regression",
            fmt_ratio(upper),
            change_percent(upper)
        ),
        Verdict::CannotTell { iterations_needed } => {
            let why = if e.call_shift.ratio() > e.regression_limit() {
                format!(
                    "estimate x{} is beyond the {threshold} but not significant (p {} after Holm > {a})",
                    fmt_ratio(e.call_shift.ratio()),
                    p_text(p_slow)
                )
            } else {
                format!(
                    "estimate x{}, but the {level} upper bound x{} reaches past the {tolerance}",
                    fmt_ratio(ratio),
                    fmt_ratio(upper)
                )
            };
            format!("{why}: cannot tell; {}", plan_text(iterations_needed))
        }
    }
}

/// " (without the baseline's machine stray)", or nothing.
fn set_aside_text(e: &Evidence) -> String {
    let count = |side: &SideSetAside| side.iter().flatten().count();
    let strays = |n: usize| {
        if n == 1 {
            "machine stray"
        } else {
            "machine strays"
        }
    };
    match e.set_aside.each_ref().map(count) {
        [0, 0] => String::new(),
        [b, 0] => format!(" (without the baseline's {})", strays(b)),
        [0, t] => format!(" (without the treatment's {})", strays(t)),
        [b, t] => format!(" (without {b} baseline and {t} treatment machine strays)"),
    }
}

/// "about 8 iterations per side would likely decide", or why none would.
pub(crate) fn plan_text(needed: Option<usize>) -> String {
    match needed {
        Some(n) => format!("about {n} iterations per side would likely decide"),
        None => format!(
            "even {} iterations per side would likely not decide (effect at the edge of the tolerance)",
            planning::MAX_PLANNED_PER_SIDE
        ),
    }
}

fn fmt_ratio(r: f64) -> String {
    format!("{r:.3}")
}

fn p_text(p: f64) -> String {
    if p < 1e-4 {
        "< 0.0001".into()
    } else {
        format!("{p:.4}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Sample;

    fn evidence(b: &[f64], t: &[f64], tolerated: f64) -> Evidence {
        let (b, t) = (
            Sample::new(b.to_vec()).unwrap(),
            Sample::new(t.to_vec()).unwrap(),
        );
        Evidence::new(LogShift::welch(&b, &t), tolerated, b.len().max(t.len()))
    }

    #[test]
    fn floor_widens_small_metrics() {
        let tol = Tolerance::new(NoiseBand::TIME, 0.02).unwrap();
        assert_eq!(tol.share(10.0), 0.05);
        assert!((tol.share(0.1) - 0.2).abs() < 1e-12);
        assert_eq!(tol.share(0.0), f64::INFINITY);
        assert!(Tolerance::new(NoiseBand::TIME, -1.0).is_err());
        assert!(Tolerance::new(NoiseBand::TIME, f64::NAN).is_err());
    }

    #[test]
    fn a_shown_slowdown_beyond_the_band_fails_even_inside_the_pass_bound() {
        // 6.5 % slower with 0.2 % spread: shown, and inside an 8 % bound.
        let b = [10.0, 10.02, 9.98, 10.01, 9.99];
        let judged = |tolerance: Tolerance, slower: f64| {
            let t: Vec<f64> = b.iter().map(|v| v * slower).collect();
            let shift =
                LogShift::welch(&Sample::new(b.to_vec()).unwrap(), &Sample::new(t).unwrap());
            let e = Evidence {
                regression_share: tolerance.regression_share(10.0),
                ..Evidence::new(shift, tolerance.share(10.0), 5)
            };
            decide_family(&[e], Alpha::DEFAULT).remove(0)
        };
        let (five, eight) = (NoiseBand::new(0.05).unwrap(), NoiseBand::new(0.08).unwrap());
        // With the band itself at 8 %, that slowdown passes.
        let wide = judged(Tolerance::relative(eight), 1.065);
        assert_eq!(wide.verdict, Verdict::NoRegression, "{}", wide.reason);
        let split = Tolerance::relative(five).with_pass_bound(eight);
        let called = |slower: f64, verdict: Verdict, words: &str| {
            let d = judged(split, slower);
            assert!(
                d.verdict == verdict && d.reason.contains(words),
                "{}",
                d.reason
            );
        };
        called(1.065, Verdict::Regression, "beyond the 5% noise band");
        // 3 % slower is inside the band: a pass, said against the bound.
        called(1.03, Verdict::NoRegression, "inside the 8% pass bound");
        // A pass bound below the band is the band.
        let narrow = Tolerance::relative(eight).with_pass_bound(five);
        assert_eq!(narrow.pass_bound(), eight);
    }

    #[test]
    fn clear_slowdown_is_a_regression_alone_and_in_a_family() {
        let slow = evidence(&[10.0, 10.1, 9.9], &[12.0, 12.1, 11.9], 0.05);
        let calm = evidence(&[5.0, 5.1, 4.9], &[5.0, 5.05, 4.95], 0.05);
        let alone = decide_family(&[slow], Alpha::DEFAULT);
        assert_eq!(alone[0].verdict, Verdict::Regression, "{}", alone[0].reason);
        let family = decide_family(&[slow, calm], Alpha::DEFAULT);
        assert_eq!(family[0].verdict, Verdict::Regression);
        assert_eq!(
            family[1].verdict,
            Verdict::NoRegression,
            "{}",
            family[1].reason
        );
    }

    #[test]
    fn significant_but_inside_the_tolerance_is_not_a_regression() {
        // 2 % slower, very tight: significant, but inside a 5 % band.
        let e = evidence(
            &[10.0, 10.001, 9.999, 10.0],
            &[10.2, 10.201, 10.199, 10.2],
            0.05,
        );
        let d = &decide_family(&[e], Alpha::DEFAULT)[0];
        assert!(d.p_slower_adjusted < 1e-6);
        assert_eq!(d.verdict, Verdict::NoRegression, "{}", d.reason);
    }

    #[test]
    fn noisy_and_unclear_cannot_tell_and_plans() {
        let e = evidence(&[10.0, 11.0, 9.0], &[10.5, 12.0, 9.5], 0.05);
        let d = &decide_family(&[e], Alpha::DEFAULT)[0];
        assert!(
            matches!(d.verdict, Verdict::CannotTell { .. }),
            "{}",
            d.reason
        );
        assert!(d.reason.contains("cannot tell"), "{}", d.reason);
    }
}
