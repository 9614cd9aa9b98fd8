//! Baseline against treatment: every metric compared (the gated ones judged
//! together as one family), assertions' pass rates, and the gate's decision.
//!
//! Everything here is a function of the iteration records, the gate
//! configuration and the [`JudgeSettings`] the run recorded (alpha of the
//! last look, whether it was interrupted), so `soak gate RUN_DIR` re-judging
//! a folder reaches the same verdict, byte for byte, as the run that wrote it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    gate_config::GateConfig,
    metrics::{BlockedValues, MetricId, TOTAL, extract_blocked},
};
use crate::{
    record::{IterationRecord, IterationStatus},
    stats::{
        Alpha, AssertionPassRates, Comparison, GateInput, GateMode, GateOutcome, MetricSamples,
        PassRate, Sample, Verdict, assertion_regressed, compare_family, decide,
    },
};

/// One metric's comparison, or why there is none.
#[derive(Debug, Clone, Serialize)]
pub struct MetricComparison {
    /// The metric's typed identity.
    pub id: MetricId,
    /// Its shown name (derived from `id`).
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
}

/// How a run is judged beyond the gate file: recorded in the manifest so a
/// re-judge uses exactly the same.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JudgeSettings {
    /// One-sided alpha of the verdicts (the last look's, in an adaptive run).
    pub alpha: f64,
    /// Whether the run was interrupted.
    pub interrupted: bool,
    /// Iterations re-run after an infrastructure failure, and warm-up
    /// iterations that failed, one line each (reported, never counted
    /// against a branch).
    #[serde(default)]
    pub retried: Vec<String>,
}

/// The whole judgement of an A/B run.
#[derive(Debug, Clone, Serialize)]
pub struct Judgement {
    /// The gate mode applied.
    pub mode: GateMode,
    /// The alpha the verdicts used.
    pub alpha: f64,
    /// The gate's decision and its reasons.
    pub gate: GateOutcome,
    /// Every metric.
    pub metrics: Vec<MetricComparison>,
    /// Every assertion's pass rate per branch.
    pub assertions: Vec<AssertionPassRates>,
    /// Infrastructure failures that stopped the run, one line each.
    pub infrastructure: Vec<String>,
    /// Iterations re-run after an infrastructure failure, and failed
    /// warm-ups, one line each.
    pub retried: Vec<String>,
    /// Iterations per side that completed.
    pub iterations: (usize, usize),
}

impl Judgement {
    /// Whether more iterations could still change the outcome (for
    /// adaptive runs): not once every gated metric is decided, and not once
    /// the gate has failed on evidence more data cannot take back (a gated
    /// regression at this look's alpha, or a broken assertion).
    pub fn settled(&self) -> bool {
        let all_decided = self.gated().all(|c| c.verdict.is_decided());
        let regressed = self.gated().any(|c| c.verdict == Verdict::Regression);
        let broken = self
            .assertions
            .iter()
            .any(|a| assertion_regressed(a.baseline, a.treatment));
        all_decided || regressed || broken
    }

    /// The gated metrics' comparisons.
    pub fn gated(&self) -> impl Iterator<Item = &Comparison> {
        self.metrics
            .iter()
            .filter(|m| m.gated)
            .filter_map(|m| m.comparison.as_ref())
    }
}

/// Compares every metric both sides measured: the gated ones as one family
/// (Holm across them), each advisory one on its own.
pub fn compare_metrics(
    baseline: &BTreeMap<MetricId, BlockedValues>,
    treatment: &BTreeMap<MetricId, BlockedValues>,
    config: &GateConfig,
    alpha: Alpha,
) -> Vec<MetricComparison> {
    struct Prepared<'a> {
        id: &'a MetricId,
        name: String,
        gated: bool,
        samples: Result<(Sample, Sample), String>,
        cpu: Option<(Vec<f64>, Vec<f64>)>,
        baseline: &'a BlockedValues,
        treatment: &'a BlockedValues,
    }
    let prepared: Vec<Prepared<'_>> = baseline
        .iter()
        .filter_map(|(id, b)| treatment.get(id).map(|t| (id, b, t)))
        .map(|(id, b, t)| Prepared {
            id,
            name: id.name(),
            gated: config.is_gated(id.kind),
            samples: samples(&b.values, &t.values),
            cpu: b.cpu_of_every_value().zip(t.cpu_of_every_value()),
            baseline: b,
            treatment: t,
        })
        .collect();
    fn inputs<'p>(p: &'p Prepared<'_>, config: &GateConfig) -> Option<MetricSamples<'p>> {
        let (b, t) = p.samples.as_ref().ok()?;
        Some(MetricSamples {
            name: &p.name,
            baseline: b,
            treatment: t,
            tolerance: config.tolerance(p.id.kind),
            blocks: Some((&p.baseline.blocks, &p.treatment.blocks)),
            cpu: p.cpu.as_ref().map(|(b, t)| (b.as_slice(), t.as_slice())),
        })
    }
    let family: Vec<MetricSamples<'_>> = prepared
        .iter()
        .filter(|p| p.gated)
        .filter_map(|p| inputs(p, config))
        .collect();
    let mut gated = match compare_family(&family, alpha) {
        Ok(list) => list.into_iter().map(Ok).collect::<Vec<_>>(),
        Err(e) => family.iter().map(|_| Err(e.to_string())).collect(),
    }
    .into_iter();
    let mut out: Vec<MetricComparison> = prepared
        .iter()
        .map(|p| {
            let result = match (&p.samples, p.gated) {
                (Err(why), _) => Err(why.clone()),
                (Ok(_), true) => gated
                    .next()
                    .unwrap_or_else(|| Err("missing from the gated family".into())),
                // An advisory metric is a family of one: no Holm.
                (Ok(_), false) => inputs(p, config)
                    .map(|one| compare_family(std::slice::from_ref(&one), alpha))
                    .and_then(|result| result.ok()?.pop().map(Ok))
                    .unwrap_or_else(|| Err("cannot be compared".into())),
            };
            let (comparison, not_compared) = match result {
                Ok(c) => (Some(c), None),
                Err(why) => (None, Some(why)),
            };
            MetricComparison {
                id: p.id.clone(),
                metric: p.name.clone(),
                gated: p.gated,
                comparison,
                not_compared,
                baseline: p.baseline.values.clone(),
                treatment: p.treatment.values.clone(),
            }
        })
        .collect();
    out.sort_by(|a, b| a.id.cmp(&b.id));
    out
}

fn samples(b: &[f64], t: &[f64]) -> Result<(Sample, Sample), String> {
    // Zero-length sections (assertion-only ones) have no duration to
    // compare; ratios of zeros mean nothing.
    if b.iter().chain(t).any(|v| *v <= 0.0) {
        return Err("a value is zero (nothing was timed)".into());
    }
    let b = Sample::new(b.to_vec()).map_err(|e| e.to_string())?;
    let t = Sample::new(t.to_vec()).map_err(|e| e.to_string())?;
    Ok((b, t))
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

/// Iterations that ran to the end (passed, or failed an assertion).
pub fn completed(records: &[IterationRecord]) -> usize {
    records
        .iter()
        .filter(|r| matches!(r.status, IterationStatus::Passed | IterationStatus::Failed))
        .count()
}

/// Judges an A/B run.
pub fn judge(
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
    config: &GateConfig,
    settings: JudgeSettings,
) -> Judgement {
    let alpha = Alpha::new(settings.alpha).unwrap_or(Alpha::DEFAULT);
    let metrics = compare_metrics(
        &extract_blocked(baseline),
        &extract_blocked(treatment),
        config,
        alpha,
    );
    let assertions = assertion_rates(baseline, treatment);
    let iterations = (completed(baseline), completed(treatment));
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
    let gated: Vec<Comparison> = metrics
        .iter()
        .filter(|m| m.gated)
        .filter_map(|m| m.comparison.clone())
        .collect();
    let gate = if settings.interrupted {
        GateOutcome::interrupted(config.on_inconclusive, iterations)
    } else {
        let outcome = decide(GateInput {
            mode: config.mode,
            comparisons: &gated,
            assertions: &assertions,
            total_metric: TOTAL,
            on_cannot_tell: config.on_inconclusive,
        });
        match infrastructure.first() {
            Some(first) => outcome.infrastructure(first),
            None => outcome,
        }
    };
    Judgement {
        mode: config.mode,
        alpha: alpha.get(),
        gate,
        metrics,
        assertions,
        infrastructure,
        retried: settings.retried,
        iterations,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    use super::*;
    use crate::ab::gate_config::DEFAULT_GATE_TOML;
    use crate::stats::GateStatus;

    /// A finished, uninterrupted run judged at the default alpha.
    pub(crate) fn settings() -> JudgeSettings {
        JudgeSettings {
            alpha: 0.05,
            interrupted: false,
            retried: Vec::new(),
        }
    }

    /// `per_shard` iterations a side on each of `shards` runners of one
    /// unchanged scenario (A/A): three sections with 2 % noise; runner 1 is
    /// `fast_runner` times the others' speed on both branches and ran
    /// `first_treatment` treatment iterations.
    fn sharded(
        shards: u32,
        per_shard: usize,
        fast_runner: f64,
        first_treatment: usize,
        seed: u64,
    ) -> [Vec<IterationRecord>; 2] {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let template = crate::ab::metrics::tests::record_with_counters();
        let mut sides = [Vec::new(), Vec::new()];
        for shard in 1..=shards {
            let speed = if shard == 1 { fast_runner } else { 1.0 };
            for (index, side) in sides.iter_mut().enumerate() {
                let count = if shard == 1 && index == 1 {
                    first_treatment
                } else {
                    per_shard
                };
                for _ in 0..count {
                    let mut record = template.clone();
                    record.counters.clear();
                    record.shard = Some(shard);
                    record.iteration = side.len() + 1;
                    record.sections = ["1", "C.2", "D.4"]
                        .iter()
                        .zip([2.0, 5.0, 9.0])
                        .map(|(id, base)| {
                            let mut s = template.sections[0].clone();
                            s.id = (*id).into();
                            // Log-normal-ish noise with a 2 % spread.
                            let noise: f64 = rng.random_range(-0.035..0.035);
                            s.seconds = Some(base * speed * noise.exp());
                            s
                        })
                        .collect();
                    record.total_seconds = record.sections.iter().filter_map(|s| s.seconds).sum();
                    side.push(record);
                }
            }
        }
        sides
    }

    /// The gate's status with a 5 % time band (fixed here, whatever the
    /// shipped band, so the runners' 15 % difference is judged against a
    /// known tolerance).
    fn verdict_of(records: &[Vec<IterationRecord>; 2]) -> GateStatus {
        let mut config = GateConfig::parse("gate.toml", DEFAULT_GATE_TOML).unwrap();
        config.noise_band.time = 0.05;
        config.pass_bound.time = None;
        let settings = settings();
        judge(&records[0], &records[1], &config, settings)
            .gate
            .status
    }

    fn pooled(mut records: [Vec<IterationRecord>; 2]) -> [Vec<IterationRecord>; 2] {
        for record in records.iter_mut().flatten() {
            record.shard = None;
        }
        records
    }

    #[test]
    fn a_faster_runner_cancels_within_its_shard_but_blurs_a_pooled_judge() {
        let (mut stratified, mut pooled_passes) = (0, 0);
        for seed in 0..40 {
            // Four runners, 3 + 3 each; runner 1 is 15 % faster.
            let records = sharded(4, 3, 1.0 / 1.15, 3, seed);
            stratified += usize::from(verdict_of(&records) == GateStatus::Pass);
            pooled_passes += usize::from(verdict_of(&pooled(records)) == GateStatus::Pass);
        }
        assert!(stratified >= 38, "stratified passed {stratified} of 40");
        assert!(pooled_passes <= 20, "pooled passed {pooled_passes} of 40");
    }

    #[test]
    fn a_fast_runner_that_ran_less_of_one_branch_biases_only_a_pooled_judge() {
        for seed in 0..10 {
            // Runner 1, 15 % faster, kept only one treatment iteration:
            // pooled, the treatment has fewer fast values and looks slower
            // (about 2 %), so nothing can be vouched for.
            let records = sharded(4, 3, 1.0 / 1.15, 1, seed);
            assert_eq!(verdict_of(&records), GateStatus::Pass, "seed {seed}");
            assert_ne!(
                verdict_of(&pooled(records)),
                GateStatus::Pass,
                "seed {seed}"
            );
        }
    }

    #[test]
    fn the_judge_reads_each_iterations_cpu_and_sets_a_machine_stray_aside() {
        // §C.2 10 % slower on the treatment; baseline run-5 15 % slow with
        // 20 % more peer CPU (the machine), as recorded in the iterations.
        let baseline = crate::ab::strays::tests::records(
            "baseline",
            &[
                (2.00, 0.80),
                (2.02, 0.81),
                (1.99, 0.80),
                (2.01, 0.80),
                (2.30, 0.96),
            ],
        );
        let treatment = crate::ab::strays::tests::records(
            "treatment",
            &[
                (2.20, 0.80),
                (2.22, 0.81),
                (2.19, 0.80),
                (2.21, 0.80),
                (2.21, 0.81),
            ],
        );
        let config = GateConfig::parse("gate.toml", DEFAULT_GATE_TOML).unwrap();
        let settings = settings();
        let judged = judge(&baseline, &treatment, &config, settings);
        let section = judged
            .metrics
            .iter()
            .find(|m| m.metric.starts_with("§C.2"))
            .and_then(|m| m.comparison.as_ref())
            .unwrap();
        assert_eq!(section.verdict, Verdict::Regression, "{}", section.reason);
        assert_eq!(
            section.set_aside.as_ref().map(|a| a.baseline.clone()),
            Some(vec![4])
        );
        assert_eq!(judged.gate.status, GateStatus::Fail);
    }

    #[test]
    fn without_a_runner_difference_shards_and_pool_agree() {
        let records = sharded(4, 3, 1.0, 3, 7);
        assert_eq!(verdict_of(&records), GateStatus::Pass);
        assert_eq!(verdict_of(&pooled(records)), GateStatus::Pass);
    }
}
