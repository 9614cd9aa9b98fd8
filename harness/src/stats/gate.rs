//! The gate: from gated comparisons and assertion pass rates to pass or fail,
//! with every reason in words.
//!
//! - `no-regression` (every PR): fails on any gated `Regression`, on any
//!   assertion that passes on baseline but fails on treatment (whatever the
//!   timings), and on any gated metric with fewer than `min_iterations` per
//!   side (too little evidence to vouch for "no regression").
//! - `must-improve` (a performance claim): all of the above, plus the total
//!   metric must be an `Improvement` and every assertion must pass in every
//!   iteration of both branches.

use std::fmt;

use serde::{Deserialize, Serialize};

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

/// The gate's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GateOutcome {
    /// Whether the gate passed.
    pub passed: bool,
    /// On failure, every reason it failed; on success, what was checked.
    pub reasons: Vec<String>,
}

/// Decides the gate. `comparisons` are the gated metrics only (after
/// [`apply_holm`](super::apply_holm)); `total_metric` names the one
/// `must-improve` requires to be an improvement.
pub fn decide(
    mode: GateMode,
    comparisons: &[Comparison],
    assertions: &[AssertionPassRates],
    min_iterations: usize,
    total_metric: &str,
) -> GateOutcome {
    let mut failures = Vec::new();
    for c in comparisons {
        let (n, m) = (c.baseline_iterations, c.treatment_iterations);
        if n.min(m) < min_iterations {
            failures.push(format!(
                "`{}` has {n} baseline and {m} treatment iterations; the gate needs at least {min_iterations} per side",
                c.metric
            ));
        }
        if c.verdict == Verdict::Regression {
            failures.push(format!("`{}` regressed: {}", c.metric, c.reason));
        }
    }
    for a in assertions {
        if assertion_regressed(a.baseline, a.treatment) {
            failures.push(format!(
                "assertion `{}` passes on baseline ({}) but fails on treatment ({})",
                a.name, a.baseline, a.treatment
            ));
        }
    }
    if mode == GateMode::MustImprove {
        must_improve(comparisons, assertions, total_metric, &mut failures);
    }
    if !failures.is_empty() {
        return GateOutcome {
            passed: false,
            reasons: failures,
        };
    }
    GateOutcome {
        passed: true,
        reasons: summary(mode, comparisons, assertions, total_metric),
    }
}

/// The extra demands of `must-improve`.
fn must_improve(
    comparisons: &[Comparison],
    assertions: &[AssertionPassRates],
    total_metric: &str,
    failures: &mut Vec<String>,
) {
    match comparisons.iter().find(|c| c.metric == total_metric) {
        None => failures.push(format!(
            "must-improve needs `{total_metric}` among the gated metrics, and it is not"
        )),
        Some(c) if c.verdict != Verdict::Improvement => failures.push(format!(
            "must-improve needs `{total_metric}` to be an improvement; it is {}: {}",
            c.verdict, c.reason
        )),
        Some(_) => {}
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

/// What a passing gate checked.
fn summary(
    mode: GateMode,
    comparisons: &[Comparison],
    assertions: &[AssertionPassRates],
    total_metric: &str,
) -> Vec<String> {
    let mut reasons = vec![
        format!(
            "{mode}: none of {} gated metrics regressed",
            comparisons.len()
        ),
        format!("no assertion of {} broke on treatment", assertions.len()),
    ];
    if mode == GateMode::MustImprove
        && let Some(c) = comparisons.iter().find(|c| c.metric == total_metric)
    {
        reasons.push(format!("`{total_metric}` improved: {}", c.reason));
    }
    reasons
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
        let out = decide(GateMode::NoRegression, &[], &[a], 3, "total");
        assert!(!out.passed);
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
