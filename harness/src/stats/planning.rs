//! How many iterations would likely decide an inconclusive metric.
//!
//! The heuristic, chosen to reuse the exact machinery rather than a normal
//! formula that is wrong at these sizes: assume the observed effect and
//! spread hold, i.e. per-iteration values are log-normal with the observed
//! Hodges-Lehmann log-ratio as the shift and each branch's observed standard
//! deviation of log values as its spread. For each candidate size `n'` per
//! side, build the "typical" samples of that size (the normal quantiles at
//! plotting positions `(i - 0.5) / n'`, no sampling noise), compute the exact
//! Hodges-Lehmann interval on them, and apply the verdict rule. The first
//! `n'` that decides is reported.
//!
//! Because the typical sample has no sampling noise, the interval it gives is
//! roughly the median interval one would see at `n'`: "likely" means about
//! even odds, not a guarantee. The search runs from one more than the larger
//! side up to [`MAX_PLANNED_PER_SIDE`].

use statrs::function::erf::erf_inv;

use super::hodges_lehmann::hodges_lehmann;
use super::verdict::classify;
use super::{Alpha, NoiseBand, Sample};

/// Largest per-side count the planner will suggest.
pub const MAX_PLANNED_PER_SIDE: usize = 30;

/// The observed effect and spread on the log scale, kept with a comparison
/// so that later steps (Holm demotion) can re-plan at another alpha.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct EffectModel {
    log_ratio: f64,
    sd_log_baseline: f64,
    sd_log_treatment: f64,
}

impl EffectModel {
    /// Fits the model: `ratio` is the Hodges-Lehmann estimate.
    pub(crate) fn fit(baseline: &Sample, treatment: &Sample, ratio: f64) -> Self {
        Self {
            log_ratio: ratio.ln(),
            sd_log_baseline: sd(&baseline.logs()),
            sd_log_treatment: sd(&treatment.logs()),
        }
    }

    /// The smallest per-side count above `current` (and at most
    /// [`MAX_PLANNED_PER_SIDE`]) at which the typical samples would reach a
    /// verdict at `alpha`, or `None` if none would.
    pub(crate) fn iterations_needed(
        &self,
        current: usize,
        band: NoiseBand,
        alpha: Alpha,
    ) -> Option<usize> {
        ((current + 1).max(2)..=MAX_PLANNED_PER_SIDE).find(|&size| {
            self.typical_samples(size)
                .and_then(|(b, t)| hodges_lehmann(&b, &t, alpha).ok())
                .and_then(|estimate| classify(&estimate.interval, band))
                .is_some()
        })
    }

    /// Baseline centred on 1, treatment shifted by the effect; `None` only if
    /// an absurd spread overflowed `exp`.
    fn typical_samples(&self, size: usize) -> Option<(Sample, Sample)> {
        let z: Vec<f64> = (1..=size)
            .map(|i| normal_quantile((i as f64 - 0.5) / size as f64))
            .collect();
        let baseline = z.iter().map(|z| (self.sd_log_baseline * z).exp());
        let treatment = z
            .iter()
            .map(|z| (self.log_ratio + self.sd_log_treatment * z).exp());
        let b = Sample::new(baseline.collect()).ok()?;
        let t = Sample::new(treatment.collect()).ok()?;
        Some((b, t))
    }
}

/// Sample standard deviation (n - 1); 0 for fewer than two values.
fn sd(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (ss / (n - 1) as f64).sqrt()
}

/// Standard normal quantile, `sqrt(2) * erf_inv(2p - 1)`.
fn normal_quantile(p: f64) -> f64 {
    std::f64::consts::SQRT_2 * erf_inv(2.0 * p - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model(log_ratio: f64, sd_log: f64) -> EffectModel {
        EffectModel {
            log_ratio,
            sd_log_baseline: sd_log,
            sd_log_treatment: sd_log,
        }
    }

    #[test]
    fn quantiles() {
        assert!(normal_quantile(0.5).abs() < 1e-12);
        assert!((normal_quantile(0.975) - 1.959_963_984_540_054).abs() < 1e-9);
    }

    #[test]
    fn clear_effects_decide_sooner_than_faint_ones() {
        let band = NoiseBand::TIME;
        let strong = model(0.3_f64, 0.1).iterations_needed(3, band, Alpha::DEFAULT);
        let faint = model(0.12_f64, 0.1).iterations_needed(3, band, Alpha::DEFAULT);
        let (Some(strong), Some(faint)) = (strong, faint) else {
            panic!("both should be decidable: {strong:?} {faint:?}");
        };
        assert!(strong < faint, "{strong} vs {faint}");
    }

    #[test]
    fn effect_on_the_edge_never_decides() {
        let edge = model(1.05_f64.ln(), 0.05);
        assert_eq!(
            edge.iterations_needed(3, NoiseBand::TIME, Alpha::DEFAULT),
            None
        );
    }

    #[test]
    fn noiseless_equal_branches_decide_at_once() {
        assert_eq!(
            model(0.0, 0.0).iterations_needed(2, NoiseBand::TIME, Alpha::DEFAULT),
            Some(3)
        );
    }
}
