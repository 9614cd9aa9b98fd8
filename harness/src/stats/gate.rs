//! The gate: from gated comparisons and assertion pass rates to one of
//! four outcomes, with every reason in words.
//!
//! - **fail**: a gated metric regressed, an assertion that passes on the
//!   baseline fails on the treatment (whatever the timings), or in
//!   `must-improve` the total is decided and is not an improvement, or an
//!   assertion failed anywhere.
//! - **cannot tell**: nothing failed, but some gated metric is undecided.
//!   Never a silent pass: [`OnCannotTell`] says whether it fails the job or
//!   passes it with a warning, and every report shows it.
//! - **pass**: every gated metric shows no regression beyond its tolerance;
//!   the outcome says what that rules out and what it could have caught.
//! - **interrupted**: the run was stopped; partial evidence decides nothing.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::params::{change_percent, percent};
use super::{Comparison, StatsError, Verdict};

/// How often an assertion held on one branch: "5/5".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct PassRate {
    passed: usize,
    total: usize,
}

impl PassRate {
    /// `passed` of `total` iterations; refuses `passed > total`.
    pub fn new(passed: usize, total: usize) -> Result<Self, StatsError> {
        if passed > total {
            return Err(StatsError::InvalidPassRate { passed, total });
        }
        Ok(Self { passed, total })
    }

    /// Iterations in which the assertion held.
    pub fn passed(self) -> usize {
        self.passed
    }

    /// Iterations in which the assertion was due.
    pub fn total(self) -> usize {
        self.total
    }

    /// Iterations in which it did not hold.
    pub fn failed(self) -> usize {
        self.total - self.passed
    }

    /// Held in every iteration, and there was at least one.
    pub fn all_passed(self) -> bool {
        self.total > 0 && self.passed == self.total
    }
}

impl fmt::Display for PassRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.passed, self.total)
    }
}

/// Whether an assertion broke: it passes on baseline (at least once) and
/// fails on treatment at least once. A treatment that never reached the
/// assertion (`0/0`) also counts: nothing shows it still holds.
pub fn assertion_regressed(baseline: PassRate, treatment: PassRate) -> bool {
    baseline.passed > 0 && (treatment.failed() > 0 || treatment.total == 0)
}

/// One assertion's pass rates on both branches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AssertionPassRates {
    /// The assertion's name in the scenario.
    pub name: String,
    /// Pass rate on the baseline.
    pub baseline: PassRate,
    /// Pass rate on the treatment.
    pub treatment: PassRate,
}

/// Which question the gate answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum GateMode {
    /// Did anything get worse? The default, for every pull request.
    #[default]
    NoRegression,
    /// Did the total get better, with everything correct? For a perf claim.
    MustImprove,
}

impl fmt::Display for GateMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateMode::NoRegression => "no-regression",
            GateMode::MustImprove => "must-improve",
        })
    }
}

/// What a gate that cannot tell does to the job.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum OnCannotTell {
    /// Fail the job (exit 1): nothing vouches for the change.
    #[default]
    Fail,
    /// Pass the job (exit 0) with a prominent warning.
    Warn,
}

impl fmt::Display for OnCannotTell {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            OnCannotTell::Fail => "fail",
            OnCannotTell::Warn => "warn",
        })
    }
}

/// The gate's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// Every gated metric shows no regression beyond tolerance, no assertion broke.
    Pass,
    /// A regression or a broken assertion (or an unmet must-improve claim).
    Fail,
    /// Nothing failed, but not every gated metric is decided.
    CannotTell,
    /// The run was interrupted: partial evidence, no verdict.
    Interrupted,
    /// An iteration failed for reasons outside both branches.
    Infrastructure,
}

impl fmt::Display for GateStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            GateStatus::Pass => "pass",
            GateStatus::Fail => "fail",
            GateStatus::CannotTell => "cannot tell",
            GateStatus::Interrupted => "interrupted",
            GateStatus::Infrastructure => "infrastructure failure",
        })
    }
}

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateOutcome {
    /// Which of the outcomes.
    pub status: GateStatus,
    /// What a cannot-tell outcome does to the job.
    pub on_cannot_tell: OnCannotTell,
    /// Whether the job should pass: `Pass`, or `CannotTell` with `warn`.
    pub passed: bool,
    /// One line for the top of every report, e.g. "GATE FAIL: regression in `total`".
    pub headline: String,
    /// On failure every reason; otherwise what was checked and what is open.
    pub reasons: Vec<String>,
    /// What a pass rules out, e.g. "a slowdown above 3.2 % in any gated metric".
    pub rules_out: Option<String>,
    /// The smallest regression the run could have caught in 90 % of runs.
    pub could_catch: Option<String>,
}

impl GateOutcome {
    /// An interrupted run: partial evidence decides nothing.
    pub fn interrupted(on_cannot_tell: OnCannotTell, done: (usize, usize)) -> Self {
        Self {
            status: GateStatus::Interrupted,
            on_cannot_tell,
            passed: false,
            headline: format!(
                "INTERRUPTED: partial evidence ({} baseline and {} treatment iterations); no verdict",
                done.0, done.1
            ),
            reasons: vec!["the run was interrupted before the gate could judge it".into()],
            rules_out: None,
            could_catch: None,
        }
    }

    /// Marks the outcome as spoiled by infrastructure failures.
    pub fn infrastructure(mut self, first: &str) -> Self {
        self.status = GateStatus::Infrastructure;
        self.passed = false;
        self.headline = format!("INFRASTRUCTURE FAILURE: {first}; no verdict on either branch");
        self
    }
}

/// What the gate judges.
#[derive(Debug, Clone, Copy)]
pub struct GateInput<'a> {
    /// Which question.
    pub mode: GateMode,
    /// The gated metrics' comparisons (judged as one family).
    pub comparisons: &'a [Comparison],
    /// Every assertion's pass rates.
    pub assertions: &'a [AssertionPassRates],
    /// The metric `must-improve` requires to improve.
    pub total_metric: &'a str,
    /// What an undecided gate does.
    pub on_cannot_tell: OnCannotTell,
}

/// Decides the gate.
pub fn decide(input: GateInput<'_>) -> GateOutcome {
    let GateInput {
        mode,
        comparisons,
        assertions,
        total_metric,
        on_cannot_tell,
    } = input;
    let mut failures = Vec::new();
    for c in comparisons
        .iter()
        .filter(|c| c.verdict == Verdict::Regression)
    {
        failures.push(format!("`{}` regressed: {}", c.metric, c.reason));
    }
    for a in assertions {
        if assertion_regressed(a.baseline, a.treatment) {
            failures.push(format!(
                "assertion `{}` passes on baseline ({}) but fails on treatment ({})",
                a.name, a.baseline, a.treatment
            ));
        }
    }
    let mut open: Vec<String> = comparisons
        .iter()
        .filter(|c| !c.verdict.is_decided())
        .map(|c| format!("`{}`: {}", c.metric, c.reason))
        .collect();
    if mode == GateMode::MustImprove {
        must_improve(
            comparisons,
            assertions,
            total_metric,
            &mut failures,
            &mut open,
        );
    }
    let could_catch = could_catch(comparisons);
    if !failures.is_empty() {
        let regressed: Vec<String> = comparisons
            .iter()
            .filter(|c| c.verdict == Verdict::Regression)
            .map(|c| format!("`{}`", c.metric))
            .collect();
        let headline = if regressed.is_empty() {
            format!("GATE FAIL: {}", failures[0])
        } else {
            format!("GATE FAIL: regression in {}", regressed.join(", "))
        };
        return GateOutcome {
            status: GateStatus::Fail,
            on_cannot_tell,
            passed: false,
            headline,
            reasons: failures,
            rules_out: None,
            could_catch,
        };
    }
    if !open.is_empty() {
        let (passed, word) = match on_cannot_tell {
            OnCannotTell::Fail => (false, "GATE FAIL"),
            OnCannotTell::Warn => (true, "GATE PASS WITH WARNING"),
        };
        let per_side = comparisons
            .iter()
            .map(Comparison::iterations_per_side)
            .max()
            .unwrap_or(0);
        return GateOutcome {
            status: GateStatus::CannotTell,
            on_cannot_tell,
            passed,
            headline: format!(
                "{word}: cannot tell ({} of {} gated metrics undecided after {per_side} iterations per side; on_inconclusive = \"{on_cannot_tell}\")",
                open.len(),
                comparisons.len()
            ),
            reasons: open,
            rules_out: None,
            could_catch,
        };
    }
    let rules_out = rules_out(comparisons);
    let mut reasons = vec![
        format!(
            "{mode}: none of {} gated metrics regressed beyond its noise band, each ruled out beyond its pass bound",
            comparisons.len()
        ),
        format!("no assertion of {} broke on treatment", assertions.len()),
    ];
    if mode == GateMode::MustImprove
        && let Some(c) = comparisons.iter().find(|c| c.metric == total_metric)
    {
        reasons.push(format!("`{total_metric}` improved: {}", c.reason));
    }
    GateOutcome {
        status: GateStatus::Pass,
        on_cannot_tell,
        passed: true,
        headline: format!(
            "GATE PASS: no regression beyond tolerance in {} gated metrics, no assertion broke",
            comparisons.len()
        ),
        reasons,
        rules_out,
        could_catch,
    }
}

/// The extra demands of `must-improve`.
fn must_improve(
    comparisons: &[Comparison],
    assertions: &[AssertionPassRates],
    total_metric: &str,
    failures: &mut Vec<String>,
    open: &mut Vec<String>,
) {
    match comparisons.iter().find(|c| c.metric == total_metric) {
        None => failures.push(format!(
            "must-improve needs `{total_metric}` among the gated metrics, and it is not"
        )),
        Some(c) if c.verdict == Verdict::Improvement => {}
        Some(c) if !c.verdict.is_decided() => open.push(format!(
            "must-improve needs `{total_metric}` to be an improvement, and it cannot tell yet: {}",
            c.reason
        )),
        Some(c) => failures.push(format!(
            "must-improve needs `{total_metric}` to be an improvement; it is {}: {}",
            c.verdict, c.reason
        )),
    }
    for a in assertions {
        if !(a.baseline.all_passed() && a.treatment.all_passed()) {
            failures.push(format!(
                "must-improve needs assertion `{}` to pass in every iteration; baseline {}, treatment {}",
                a.name, a.baseline, a.treatment
            ));
        }
    }
}

/// Whether a metric's tolerance is its relative band (the floor is smaller
/// at its size); the other metrics are small enough that the floor governs.
fn band_governed(c: &Comparison) -> bool {
    c.tolerated_share <= c.tolerance.pass_bound().get() * (1.0 + 1e-9)
}

/// "a slowdown above 3.1% in any gated metric governed by its band
/// (loosest: `§C.2`), and above its floor in 4 small ones".
fn rules_out(comparisons: &[Comparison]) -> Option<String> {
    let (banded, floored): (Vec<&Comparison>, Vec<&Comparison>) =
        comparisons.iter().partition(|c| band_governed(c));
    let level = percent(comparisons.first()?.alpha.one_sided_level());
    let floors = match floored.len() {
        0 => String::new(),
        1 => format!(", and above its absolute floor in `{}`", floored[0].metric),
        n => format!(", and above their absolute floors in {n} small ones"),
    };
    let Some(worst) = banded
        .iter()
        .max_by(|a, b| a.interval_high().total_cmp(&b.interval_high()))
    else {
        return Some(format!(
            "a slowdown above the absolute floor in every gated metric ({level} one-sided bounds)"
        ));
    };
    // Every upper bound a speed-up: no slowdown at all is left, and "above
    // -2.1 %" would read as nonsense.
    if worst.interval_high() <= 1.0 {
        return Some(format!(
            "any slowdown in the gated metrics its band governs: every {level} one-sided upper bound is a speed-up (loosest: `{}` at {}){floors}",
            worst.metric,
            change_percent(worst.interval_high())
        ));
    }
    Some(format!(
        "a slowdown above {} in any gated metric ({level} one-sided bounds; loosest: `{}`){floors}",
        change_percent(worst.interval_high()),
        worst.metric
    ))
}

/// "at 5 iterations per side this gate catches, in 90 % of runs, a slowdown
/// of 4.1% in `total` and of 9.8% in every gated metric governed by its
/// band (least precise: `§C.2`)".
fn could_catch(comparisons: &[Comparison]) -> Option<String> {
    let banded: Vec<&Comparison> = comparisons.iter().filter(|c| band_governed(c)).collect();
    let pool = if banded.is_empty() {
        comparisons.iter().collect()
    } else {
        banded
    };
    let worst = pool
        .iter()
        .max_by(|a, b| a.detectable_ratio.total_cmp(&b.detectable_ratio))?;
    let best = pool
        .iter()
        .min_by(|a, b| a.detectable_ratio.total_cmp(&b.detectable_ratio))?;
    Some(format!(
        "at {} iterations per side this gate catches, in 90 % of runs, a slowdown of {} in `{}` and of {} in every gated metric above its floor (least precise: `{}`)",
        worst.iterations_per_side(),
        change_percent(best.detectable_ratio),
        best.metric,
        change_percent(worst.detectable_ratio),
        worst.metric
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(p: usize, t: usize) -> PassRate {
        PassRate::new(p, t).unwrap()
    }

    #[test]
    fn pass_rates() {
        assert_eq!(rate(5, 5).to_string(), "5/5");
        assert!(PassRate::new(6, 5).is_err());
        assert!(rate(5, 5).all_passed());
        assert!(!rate(0, 0).all_passed());
    }

    #[test]
    fn regressed_assertions() {
        assert!(assertion_regressed(rate(5, 5), rate(4, 5)));
        assert!(assertion_regressed(rate(1, 5), rate(4, 5)));
        assert!(assertion_regressed(rate(5, 5), rate(0, 0)));
        assert!(!assertion_regressed(rate(0, 5), rate(0, 5)));
        assert!(!assertion_regressed(rate(5, 5), rate(5, 5)));
        assert!(!assertion_regressed(rate(3, 5), rate(5, 5)));
    }

    #[test]
    fn broken_assertion_fails_no_regression() {
        let a = AssertionPassRates {
            name: "token survives".into(),
            baseline: rate(3, 3),
            treatment: rate(2, 3),
        };
        let out = decide(GateInput {
            mode: GateMode::NoRegression,
            comparisons: &[],
            assertions: &[a],
            total_metric: "total",
            on_cannot_tell: OnCannotTell::Fail,
        });
        assert!(!out.passed);
        assert_eq!(out.status, GateStatus::Fail);
        assert_eq!(
            out.reasons,
            vec![
                "assertion `token survives` passes on baseline (3/3) but fails on treatment (2/3)"
            ]
        );
    }

    #[test]
    fn gate_mode_serde_names() {
        assert_eq!(
            serde_json::to_string(&GateMode::MustImprove).unwrap(),
            "\"must-improve\""
        );
    }
}
