//! How many iterations would likely decide a metric that cannot tell yet.
//!
//! Assume the observed log-ratio and spread hold: at `n'` per side the
//! standard error shrinks by `sqrt(n / n')` and the t distribution gains
//! degrees of freedom. The first `n'` at which that typical outcome reaches
//! a verdict (a regression or improvement beyond the band at the family's
//! per-metric level, or an upper bound inside the pass bound) is reported. "Likely" means about
//! even odds: the typical outcome has no sampling noise.

use super::Alpha;
use super::decision::Evidence;
use super::log_t::t_quantile;

/// Largest per-side count the planner will suggest.
pub const MAX_PLANNED_PER_SIDE: usize = 30;

/// The smallest per-side count above the current one (at most
/// [`MAX_PLANNED_PER_SIDE`]) at which the observed effect would likely be
/// decided; `per_metric` is the level a lone directional call must meet.
pub(crate) fn iterations_needed(e: &Evidence, alpha: Alpha, per_metric: Alpha) -> Option<usize> {
    let current = e.per_side.max(2) as f64;
    let d = e.shift.log_ratio;
    // Directional calls start at the band, a pass needs the pass bound.
    let regression_at = e.regression_limit().ln();
    let improvement_at = e.improvement_limit();
    let slower = e.slower_limit().ln();
    ((e.per_side + 1).max(3)..=MAX_PLANNED_PER_SIDE).find(|&size| {
        let n = size as f64;
        let se = e.shift.standard_error * (current / n).sqrt();
        let df = 2.0 * n - 2.0;
        let directional = t_quantile(1.0 - per_metric.get(), df) * se;
        let bound = t_quantile(1.0 - alpha.get(), df) * se;
        let regression = d > regression_at && d >= directional;
        let improvement = improvement_at > 0.0 && d < improvement_at.ln() && -d >= directional;
        let inside = d + bound < slower;
        regression || improvement || inside
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::LogShift;

    fn evidence(log_ratio: f64, standard_error: f64) -> Evidence {
        let shift = LogShift {
            log_ratio,
            standard_error,
            df: 4.0,
        };
        Evidence::new(shift, 0.05, 3)
    }

    #[test]
    fn clear_effects_decide_sooner_than_faint_ones() {
        let a = Alpha::DEFAULT;
        let strong = iterations_needed(&evidence(0.3, 0.08), a, a);
        let faint = iterations_needed(&evidence(0.08, 0.08), a, a);
        let (Some(strong), Some(faint)) = (strong, faint) else {
            panic!("both should be decidable: {strong:?} {faint:?}");
        };
        assert!(strong < faint, "{strong} vs {faint}");
    }

    #[test]
    fn effect_on_the_edge_never_decides() {
        let a = Alpha::DEFAULT;
        assert_eq!(
            iterations_needed(&evidence(1.05_f64.ln(), 0.05), a, a),
            None
        );
    }
}
