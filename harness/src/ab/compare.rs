//! Baseline against treatment: every metric compared, the gated ones
//! Holm-corrected, assertions' pass rates, and the gate's decision.
//!
//! Everything here is a function of the iteration records and the gate
//! configuration, so `soak gate RUN_DIR` re-judging a folder reaches the
//! same verdict as the run that wrote it.

use std::collections::BTreeMap;

use serde::Serialize;

use super::{
    gate_config::GateConfig,
    metrics::{MetricId, MetricValues, TOTAL, extract},
};
use crate::{
    record::{IterationRecord, IterationStatus},
    runner::exit_codes,
    stats::{
        Alpha, AssertionPassRates, Comparison, GateMode, GateOutcome, NoiseBand, PassRate, Sample,
        apply_holm, compare, decide,
    },
};

/// One metric's comparison, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    /// The metric.
    pub metric: String,
    /// Whether it decides the gate.
    pub gated: bool,
    /// The statistics, when both sides have at least two positive values.
    pub comparison: Option<Comparison>,
    /// Why it could not be compared.
    pub not_compared: Option<String>,
    /// Baseline values, iteration order.
    pub baseline: Vec<f64>,
    /// Treatment values, iteration order.
    pub treatment: Vec<f64>,
    #[serde(skip)]
    pub(crate) id: MetricId,
}

/// The whole judgement of an A/B run.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// The gate mode applied.
    pub mode: GateMode,
    /// The gate's decision and its reasons.
    pub gate: GateOutcome,
    /// 0 pass, 1 gate failed, 3 infrastructure failure.
    pub exit_code: u8,
    /// Every metric.
    pub metrics: Vec<MetricComparison>,
    /// Every assertion's pass rate per branch.
    pub assertions: Vec<AssertionPassRates>,
    /// Infrastructure failures seen, one line each.
    pub infrastructure: Vec<String>,
    /// Iterations per side that completed.
    pub iterations: (usize, usize),
}

impl Judgement {
    /// Whether more iterations could still change the outcome (for
    /// adaptive runs): not once every gated metric is decided, and not once
    /// the gate has failed on evidence more data cannot take back (a gated
    /// regression at this look's alpha, or a broken assertion). Tiny
    /// sections that never decide would otherwise always run to the cap.
    pub fn settled(&self) -> bool {
        let gated: Vec<&Comparison> = self
            .metrics
            .iter()
            .filter(|m| m.gated)
            .filter_map(|m| m.comparison.as_ref())
            .collect();
        let all_decided = self.metrics.iter().filter(|m| m.gated).all(|m| {
            m.comparison
                .as_ref()
                .is_some_and(|c| c.verdict.is_decided())
        });
        let regressed = gated
            .iter()
            .any(|c| matches!(c.verdict, crate::stats::Verdict::Regression));
        let broken = self
            .assertions
            .iter()
            .any(|a| crate::stats::assertion_regressed(a.baseline, a.treatment));
        all_decided || regressed || broken
    }
}

/// Compares every metric both sides measured.
pub fn compare_metrics(
    baseline: &MetricValues,
    treatment: &MetricValues,
    config: &GateConfig,
    alpha: Alpha,
) -> Vec<MetricComparison> {
    let mut out: Vec<MetricComparison> = baseline
        .iter()
        .filter_map(|(id, b)| treatment.get(id).map(|t| (id, b, t)))
        .map(|(id, b, t)| {
            let gated = config.is_gated(id.kind);
            let (comparison, not_compared) =
                match compare_one(&id.name, b, t, config.band(id.kind), alpha) {
                    Ok(c) => (Some(c), None),
                    Err(why) => (None, Some(why)),
                };
            MetricComparison {
                metric: id.name.clone(),
                gated,
                comparison,
                not_compared,
                baseline: b.clone(),
                treatment: t.clone(),
                id: id.clone(),
            }
        })
        .collect();
    // Holm across the gated set only: advisory metrics must not dilute it.
    let mut gated: Vec<Comparison> = out
        .iter()
        .filter(|m| m.gated)
        .filter_map(|m| m.comparison.clone())
        .collect();
    apply_holm(&mut gated, alpha);
    let mut corrected = gated.into_iter();
    for metric in out.iter_mut().filter(|m| m.gated && m.comparison.is_some()) {
        metric.comparison = corrected.next();
    }
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn compare_one(
    name: &str,
    b: &[f64],
    t: &[f64],
    band: f64,
    alpha: Alpha,
) -> Result<Comparison, String> {
    // Zero-length sections (assertion-only ones) have no duration to
    // compare; ratios of zeros mean nothing.
    if b.iter().chain(t).any(|v| *v <= 0.0) {
        return Err("a value is zero (nothing was timed)".into());
    }
    let b = Sample::new(b.to_vec()).map_err(|e| e.to_string())?;
    let t = Sample::new(t.to_vec()).map_err(|e| e.to_string())?;
    let band = NoiseBand::new(band).map_err(|e| e.to_string())?;
    compare(name, &b, &t, band, alpha).map_err(|e| e.to_string())
}

/// Pass rates of every assertion, by name, on both sides.
pub fn assertion_rates(
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
) -> Vec<AssertionPassRates> {
    let tally = |records: &[IterationRecord]| {
        let mut map: BTreeMap<String, (usize, usize)> = BTreeMap::new();
        for record in records {
            for outcome in record
                .assertions
                .iter()
                .filter(|a| a.fails_run() || a.passed)
            {
                let entry = map.entry(outcome.name.clone()).or_default();
                entry.1 += 1;
                if outcome.passed {
                    entry.0 += 1;
                }
            }
        }
        map
    };
    let (b, t) = (tally(baseline), tally(treatment));
    let mut names: Vec<&String> = b.keys().chain(t.keys()).collect();
    names.sort();
    names.dedup();
    names
        .into_iter()
        .filter_map(|name| {
            let (bp, bt) = b.get(name).copied().unwrap_or((0, 0));
            let (tp, tt) = t.get(name).copied().unwrap_or((0, 0));
            Some(AssertionPassRates {
                name: name.clone(),
                baseline: PassRate::new(bp, bt).ok()?,
                treatment: PassRate::new(tp, tt).ok()?,
            })
        })
        .collect()
}

/// Judges an A/B run.
pub fn judge(
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
    config: &GateConfig,
    alpha: Alpha,
) -> Judgement {
    let metrics = compare_metrics(&extract(baseline), &extract(treatment), config, alpha);
    let assertions = assertion_rates(baseline, treatment);
    let gated: Vec<Comparison> = metrics
        .iter()
        .filter(|m| m.gated)
        .filter_map(|m| m.comparison.clone())
        .collect();
    let mut gate = decide(
        config.mode,
        &gated,
        &assertions,
        config.min_iterations,
        TOTAL,
    );
    let infrastructure: Vec<String> = baseline
        .iter()
        .chain(treatment)
        .filter_map(|r| match &r.status {
            IterationStatus::Infrastructure { message } => {
                Some(format!("{} run-{}: {message}", r.branch, r.iteration))
            }
            _ => None,
        })
        .collect();
    let completed = |records: &[IterationRecord]| {
        records
            .iter()
            .filter(|r| matches!(r.status, IterationStatus::Passed | IterationStatus::Failed))
            .count()
    };
    let exit_code = if !infrastructure.is_empty() {
        gate.passed = false;
        gate.reasons
            .insert(0, format!("infrastructure failure: {}", infrastructure[0]));
        exit_codes::INFRASTRUCTURE
    } else if gate.passed {
        exit_codes::PASS
    } else {
        exit_codes::FAILED
    };
    Judgement {
        mode: config.mode,
        gate,
        exit_code,
        metrics,
        assertions,
        infrastructure,
        iterations: (completed(baseline), completed(treatment)),
    }
}
