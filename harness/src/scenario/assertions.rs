//! Evaluating assertion steps over captured values, and `expect` matching.
//!
//! [`evaluate`] substitutes the operands, applies the check and returns an
//! [`AssertionOutcome`] holding both sides and, on failure, a unified diff
//! ([`super::diff`]). Amounts are compared as `rust_decimal` decimals, never
//! floats: base-unit amounts have 20+ digits and a float would call
//! `199.999999999989` and `200` close enough.

use std::{collections::BTreeMap, str::FromStr};

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::Value;

use super::{
    diff::unified_diff,
    model::{AssertKind, AssertStep, Check, Severity},
    vars::{Builtins, Captures, VarError, substitute},
};

/// The result of one assertion step.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct AssertionOutcome {
    /// The assertion's name.
    pub name: String,
    /// Its kind.
    pub kind: AssertKind,
    /// Error or warning.
    pub severity: Severity,
    /// Whether the check held.
    pub passed: bool,
    /// The left side after substitution (for `conservation`, the sum).
    pub left: Value,
    /// The right side after substitution (for `conservation`, the total).
    pub right: Value,
    /// On failure, the unified diff of the two sides.
    pub diff: Option<String>,
    /// One line saying what held or failed.
    pub message: String,
}

impl AssertionOutcome {
    /// Whether this outcome fails the run: failed with severity error.
    pub fn fails_run(&self) -> bool {
        !self.passed && self.severity == Severity::Error
    }

    /// The terminal/report block: `ASSERT FAIL (name)` then the diff (or
    /// the message when there is no diff).
    pub fn report(&self) -> String {
        let verdict = match (self.passed, self.severity) {
            (true, _) => "PASS",
            (false, Severity::Error) => "FAIL",
            (false, Severity::Warning) => "WARN",
        };
        let mut out = format!("ASSERT {verdict} ({})\n", self.name);
        if !self.passed {
            match &self.diff {
                Some(diff) if !diff.is_empty() => out.push_str(diff),
                _ => {
                    out.push_str(&self.message);
                    out.push('\n');
                }
            }
        }
        out
    }
}

/// Evaluates an assertion with default built-ins (`${iteration}` = 0).
pub fn evaluate(
    step: &AssertStep,
    captures: &Captures,
    params: &BTreeMap<String, Value>,
) -> AssertionOutcome {
    evaluate_with(step, captures, params, &Builtins::default())
}

/// Evaluates an assertion. A variable that resolves to nothing (say, an
/// earlier step failed and captured nothing) fails the assertion with a
/// message naming it, rather than aborting the run.
pub fn evaluate_with(
    step: &AssertStep,
    captures: &Captures,
    params: &BTreeMap<String, Value>,
    builtins: &Builtins,
) -> AssertionOutcome {
    let sub = |value: &Value| substitute(value, captures, params, builtins);
    let checked = match &step.check {
        Check::Equal { left, right } => sub(left)
            .and_then(|l| Ok((l, sub(right)?)))
            .map(|(l, r)| check_equal(l, r)),
        Check::Approx {
            left,
            right,
            tolerance,
        } => sub(left)
            .and_then(|l| Ok((l, sub(right)?, sub(tolerance)?)))
            .map(|(l, r, t)| check_approx(l, r, &t)),
        Check::Conservation { values, total } => values
            .iter()
            .map(sub)
            .collect::<Result<Vec<_>, VarError>>()
            .and_then(|vs| Ok((vs, sub(total)?)))
            .map(|(vs, t)| check_conservation(&vs, t)),
        Check::Contains { left, right } => sub(left)
            .and_then(|l| Ok((l, sub(right)?)))
            .map(|(l, r)| check_contains(l, r)),
    };
    let Checked {
        passed,
        left,
        right,
        message,
    } = checked.unwrap_or_else(|err| Checked {
        passed: false,
        left: Value::Null,
        right: Value::Null,
        message: format!("cannot evaluate: {err}"),
    });
    // Both sides null means the operands never resolved: nothing to diff.
    let resolved = !(left.is_null() && right.is_null());
    let diff = (!passed && resolved)
        .then(|| unified_diff(&left, &right))
        .filter(|diff| !diff.is_empty());
    AssertionOutcome {
        name: step.name.clone(),
        kind: step.kind(),
        severity: step.severity,
        passed,
        left,
        right,
        diff,
        message,
    }
}

/// What a check found, before the outcome is assembled.
struct Checked {
    passed: bool,
    left: Value,
    right: Value,
    message: String,
}

fn check_equal(left: Value, right: Value) -> Checked {
    let passed = left == right;
    let message = if passed {
        "equal"
    } else {
        "left and right differ"
    };
    Checked {
        passed,
        left,
        right,
        message: message.to_owned(),
    }
}

fn check_approx(left: Value, right: Value, tolerance: &Value) -> Checked {
    let parsed = decimal("left", &left).and_then(|l| {
        let r = decimal("right", &right)?;
        let t = decimal("tolerance", tolerance)?;
        if t.is_sign_negative() {
            return Err(format!("tolerance `{t}` is negative"));
        }
        Ok((l, r, t))
    });
    let (passed, message) = match parsed {
        Ok((l, r, t)) => {
            let gap = (l - r).abs().normalize();
            let passed = gap <= t;
            let relation = if passed { "<=" } else { ">" };
            (
                passed,
                format!(
                    "|left - right| = {gap} {relation} tolerance {}",
                    t.normalize()
                ),
            )
        }
        Err(message) => (false, message),
    };
    Checked {
        passed,
        left,
        right,
        message,
    }
}

fn check_conservation(values: &[Value], total: Value) -> Checked {
    let parsed = values
        .iter()
        .enumerate()
        .map(|(i, v)| decimal(&format!("values[{i}]"), v))
        .try_fold(Decimal::ZERO, |sum, d| {
            sum.checked_add(d?)
                .ok_or_else(|| "the sum overflows a decimal".to_owned())
        })
        .and_then(|sum| Ok((sum, decimal("total", &total)?)));
    match parsed {
        Ok((sum, expected)) => {
            let passed = sum == expected;
            let relation = if passed { "equals" } else { "differs from" };
            Checked {
                passed,
                left: Value::String(sum.normalize().to_string()),
                right: Value::String(expected.normalize().to_string()),
                message: format!("the sum of {} values {relation} the total", values.len()),
            }
        }
        Err(message) => Checked {
            passed: false,
            left: Value::Array(values.to_vec()),
            right: total,
            message,
        },
    }
}

fn check_contains(left: Value, right: Value) -> Checked {
    let (passed, message) = match (&left, &right) {
        (Value::String(haystack), Value::String(needle)) => {
            let passed = haystack.contains(needle.as_str());
            let verb = if passed {
                "contains"
            } else {
                "does not contain"
            };
            (passed, format!("left (a string) {verb} right"))
        }
        (Value::Array(items), needle) => {
            let passed = items.iter().any(|item| subset_matches(item, needle));
            let verb = if passed { "has" } else { "has no" };
            (
                passed,
                format!("left (an array) {verb} element matching right"),
            )
        }
        (Value::Object(_), Value::Object(_)) => match expect_mismatch(&left, &right) {
            None => (
                true,
                "left (an object) holds every field of right".to_owned(),
            ),
            Some(why) => (
                false,
                format!("left (an object) does not hold right: {why}"),
            ),
        },
        (other, needle) => (
            false,
            format!(
                "left `{other}` cannot contain right `{needle}` (contains needs a string with a string, an array, or two objects)"
            ),
        ),
    };
    Checked {
        passed,
        left,
        right,
        message,
    }
}

/// A decimal from a JSON string or number (`"11000000"`, `"0.1"`, `1e-12`).
fn decimal(what: &str, value: &Value) -> Result<Decimal, String> {
    let text = match value {
        Value::String(s) => s.trim().to_owned(),
        Value::Number(n) => n.to_string(),
        other => return Err(format!("{what} is `{other}`, not a decimal amount")),
    };
    Decimal::from_str_exact(&text)
        .or_else(|_| Decimal::from_str(&text))
        .or_else(|_| Decimal::from_scientific(&text))
        .map_err(|_| format!("{what} `{text}` is not a decimal amount"))
}

/// Whether `actual` contains `expected`: objects field by field (extra
/// fields in `actual` allowed), arrays element by element with equal
/// lengths, anything else by equality.
pub fn subset_matches(actual: &Value, expected: &Value) -> bool {
    expect_mismatch(actual, expected).is_none()
}

/// Checks an op result against a step's `expect`; `None` when it matches,
/// else one line naming the first path that does not
/// (`` `visible`: expected `true`, got `false` ``).
pub fn expect_mismatch(actual: &Value, expected: &Value) -> Option<String> {
    mismatch_at("", actual, expected)
}

fn mismatch_at(path: &str, actual: &Value, expected: &Value) -> Option<String> {
    let here = if path.is_empty() { "result" } else { path };
    let join = |key: &str| {
        if path.is_empty() {
            key.to_owned()
        } else {
            format!("{path}.{key}")
        }
    };
    match (actual, expected) {
        (Value::Object(got), Value::Object(want)) => {
            want.iter().find_map(|(key, w)| match got.get(key) {
                Some(g) => mismatch_at(&join(key), g, w),
                None => Some(format!("`{}`: missing (expected `{w}`)", join(key))),
            })
        }
        (Value::Array(got), Value::Array(want)) if got.len() == want.len() => got
            .iter()
            .zip(want)
            .enumerate()
            .find_map(|(i, (g, w))| mismatch_at(&join(&i.to_string()), g, w)),
        _ if actual == expected => None,
        _ => Some(format!("`{here}`: expected `{expected}`, got `{actual}`")),
    }
}

#[cfg(test)]
mod tests;
