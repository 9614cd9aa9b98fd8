//! The verdict in words, for the terminal table and the Markdown summary:
//! what the interval did relative to the band, and what to do next.

use super::hodges_lehmann::RatioEstimate;
use super::params::trim_float;
use super::{Alpha, NoiseBand, Verdict};

/// What [`explain`] needs to know.
pub(crate) struct Evidence<'a> {
    pub(crate) verdict: Verdict,
    pub(crate) estimate: &'a RatioEstimate,
    pub(crate) band: NoiseBand,
    pub(crate) alpha: Alpha,
    pub(crate) baseline_iterations: usize,
    pub(crate) treatment_iterations: usize,
}

/// One sentence ending in the verdict, e.g. "90% interval [0.970, 1.120]
/// crosses the edge of the band 1 ± 5%: inconclusive; about 8 iterations per
/// side would likely decide".
pub(crate) fn explain(e: &Evidence<'_>) -> String {
    let est = e.estimate;
    let one_sided = percent(e.alpha.one_sided_level());
    let two_sided = percent(e.alpha.two_sided_level());
    let upper = trim_float(e.band.upper());
    let lower = trim_float(e.band.lower());
    // Rank 1 means the bound is the most extreme pairwise ratio, so the call
    // needed every pair on the same side of the band: worth saying, since it
    // surprises readers that 3 a side can never call a "mostly slower" run.
    let sweep = est.rank == Some(1);
    let sizes = sizes(e.baseline_iterations, e.treatment_iterations);
    match e.verdict {
        Verdict::Regression if sweep => format!(
            "all {} pairwise ratios are above {upper} (with {sizes} a regression needs every one): regression",
            est.pairs
        ),
        Verdict::Regression => format!(
            "one-sided {one_sided} lower bound {} is above {upper}; treatment slower in {} of {} pairs: regression",
            ratio(est.interval.low()),
            est.slower_pairs,
            est.pairs
        ),
        Verdict::Improvement if sweep => format!(
            "all {} pairwise ratios are below {lower} (with {sizes} an improvement needs every one): improvement",
            est.pairs
        ),
        Verdict::Improvement => format!(
            "one-sided {one_sided} upper bound {} is below {lower}; treatment faster in {} of {} pairs: improvement",
            ratio(est.interval.high()),
            est.faster_pairs,
            est.pairs
        ),
        Verdict::NoChange => format!(
            "{two_sided} interval {} lies inside 1 ± {}: no change",
            interval(est),
            e.band
        ),
        Verdict::Inconclusive { iterations_needed } => {
            let what = match est.interval.bounds() {
                None => format!("with {sizes} no {two_sided} interval exists"),
                Some((low, high)) if low < e.band.lower() && high > e.band.upper() => format!(
                    "{two_sided} interval {} spans the whole band 1 ± {}",
                    interval(est),
                    e.band
                ),
                Some(_) => format!(
                    "{two_sided} interval {} crosses the edge of the band 1 ± {}",
                    interval(est),
                    e.band
                ),
            };
            format!("{what}: inconclusive; {}", plan(iterations_needed))
        }
    }
}

/// The "what next" clause of an inconclusive reason.
pub(crate) fn plan(iterations_needed: Option<usize>) -> String {
    match iterations_needed {
        Some(n) => format!("about {n} iterations per side would likely decide"),
        None => format!(
            "no count up to {} per side would likely decide",
            super::MAX_PLANNED_PER_SIDE
        ),
    }
}

fn sizes(n: usize, m: usize) -> String {
    if n == m {
        format!("{n} iterations per side")
    } else {
        format!("{n} baseline and {m} treatment iterations")
    }
}

fn ratio(x: Option<f64>) -> String {
    x.map_or_else(|| "unbounded".to_string(), |x| format!("{x:.3}"))
}

fn interval(est: &RatioEstimate) -> String {
    format!(
        "[{}, {}]",
        ratio(est.interval.low()),
        ratio(est.interval.high())
    )
}

/// "90%", "96.7%".
fn percent(level: f64) -> String {
    let s = format!("{:.1}", level * 100.0);
    format!("{}%", s.trim_end_matches('0').trim_end_matches('.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percents() {
        assert_eq!(percent(0.9), "90%");
        assert_eq!(percent(0.95), "95%");
        assert_eq!(percent(1.0 - 2.0 * 0.05 / 3.0), "96.7%");
    }
}
