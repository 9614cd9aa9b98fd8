//! The treatment effect when iterations come in blocks that differ in
//! speed: shards run on different CI runners, each running its own
//! complete ABBA blocks of both branches.
//!
//! Runners differ by far more than one runner's noise (published CI data:
//! ~15 % between jobs against ~3 % within one), so pooling shards naively
//! inflates the spread, and a shard that happened to get a faster machine
//! and ran more of one branch would fake a difference. Here the comparison
//! is made within each block and combined across blocks, so any speed
//! factor a block applies to both branches cancels exactly.
//!
//! On log values, with block `s` holding `n_bs` baseline and `n_ts`
//! treatment iterations:
//! - within-block shift `d_s = mean(log t_s) - mean(log b_s)`;
//! - combined `d = Σ w_s d_s / Σ w_s` with `w_s = 1 / (1/n_bs + 1/n_ts)`:
//!   the least-squares estimate of a common shift in a model with one level
//!   per block (so it equals the plain difference of means when every block
//!   is balanced);
//! - the noise `σ²` pooled within the block × branch cells (`N - 2S`
//!   degrees of freedom), which stays honest even if the effect itself
//!   differs a little between runners; the standard error is
//!   `σ / sqrt(Σ w_s)`.
//!
//! The result is a [`LogShift`], so the verdict, the bounds, Holm and the
//! planning figures apply to it unchanged.

use std::collections::BTreeMap;

use super::{LogShift, Sample};

/// Per block: the logs of its baseline and treatment values.
type Cells = BTreeMap<u32, (Vec<f64>, Vec<f64>)>;

/// The blocked estimate of `ln(treatment) - ln(baseline)`.
///
/// `baseline_blocks[i]` is the block of `baseline.values()[i]`, likewise for
/// the treatment. Values in a block that has only one branch carry no
/// within-block contrast and are left out. `None` when the labels do not
/// match the values, when fewer than two blocks hold both branches (then
/// there is nothing to stratify: use [`LogShift::welch`]), or when no degree
/// of freedom is left for the noise.
pub fn stratified_shift(
    baseline: &Sample,
    baseline_blocks: &[u32],
    treatment: &Sample,
    treatment_blocks: &[u32],
) -> Option<LogShift> {
    if baseline_blocks.len() != baseline.len() || treatment_blocks.len() != treatment.len() {
        return None;
    }
    let mut cells: Cells = BTreeMap::new();
    for (log, block) in baseline.logs().into_iter().zip(baseline_blocks) {
        cells.entry(*block).or_default().0.push(log);
    }
    for (log, block) in treatment.logs().into_iter().zip(treatment_blocks) {
        cells.entry(*block).or_default().1.push(log);
    }
    cells.retain(|_, (b, t)| !b.is_empty() && !t.is_empty());
    if cells.len() < 2 {
        return None;
    }
    let (mut weighted, mut weights, mut squares, mut values) = (0.0, 0.0, 0.0, 0_usize);
    for (b, t) in cells.values() {
        let (mean_b, ss_b) = mean_and_squares(b);
        let (mean_t, ss_t) = mean_and_squares(t);
        let weight = 1.0 / (1.0 / b.len() as f64 + 1.0 / t.len() as f64);
        weighted += weight * (mean_t - mean_b);
        weights += weight;
        squares += ss_b + ss_t;
        values += b.len() + t.len();
    }
    let df = values.checked_sub(2 * cells.len()).filter(|&df| df > 0)? as f64;
    Some(LogShift {
        log_ratio: weighted / weights,
        standard_error: (squares / df / weights).sqrt(),
        df,
    })
}

/// Mean and sum of squared deviations.
fn mean_and_squares(values: &[f64]) -> (f64, f64) {
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    (mean, values.iter().map(|v| (v - mean).powi(2)).sum())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.to_vec()).unwrap()
    }

    // Reference computed independently with numpy: a least-squares fit of
    // log y on one dummy per block and a treatment indicator gives the
    // shift; the residual variance of the block x branch cell means gives
    // sigma^2 on N - 2S = 6 df.
    //   b: block 1 [10, 10.4, 9.8], block 2 [8.5, 8.7]
    //   t: block 1 [11, 11.5],      block 2 [9.4, 9.1, 9.6]
    //   -> shift 0.0982089, se 0.0177490
    #[test]
    fn matches_a_least_squares_fit() {
        let shift = stratified_shift(
            &s(&[10.0, 10.4, 9.8, 8.5, 8.7]),
            &[1, 1, 1, 2, 2],
            &s(&[11.0, 11.5, 9.4, 9.1, 9.6]),
            &[1, 1, 2, 2, 2],
        )
        .unwrap();
        assert!((shift.log_ratio - 0.098_208_9).abs() < 1e-6, "{shift:?}");
        assert!(
            (shift.standard_error - 0.017_749_0).abs() < 1e-6,
            "{shift:?}"
        );
        assert_eq!(shift.df, 6.0);
    }

    #[test]
    fn nothing_to_stratify_is_none() {
        let b = s(&[10.0, 10.4, 9.8]);
        let t = s(&[11.0, 11.5, 10.9]);
        assert_eq!(stratified_shift(&b, &[1, 1, 1], &t, &[1, 1, 1]), None);
        // Block 2 has no treatment: no contrast, one block left.
        assert_eq!(stratified_shift(&b, &[1, 1, 2], &t, &[1, 1, 1]), None);
        assert_eq!(stratified_shift(&b, &[1, 1], &t, &[1, 1, 1]), None);
        // Two blocks of one value per branch: no df left for the noise.
        let (b2, t2) = (s(&[10.0, 9.0]), s(&[11.0, 9.9]));
        assert_eq!(stratified_shift(&b2, &[1, 2], &t2, &[1, 2]), None);
    }

    proptest! {
        /// A block that runs faster or slower on both branches alike (a
        /// different runner) changes nothing.
        #[test]
        fn a_blocks_speed_factor_cancels(
            b in proptest::collection::vec(1.0_f64..2.0, 6),
            t in proptest::collection::vec(1.0_f64..2.0, 6),
            factor in 0.5_f64..2.0,
        ) {
            let blocks = [1, 1, 1, 2, 2, 2];
            let plain = stratified_shift(&s(&b), &blocks, &s(&t), &blocks).unwrap();
            let scale = |v: &[f64]| -> Vec<f64> {
                v.iter().enumerate().map(|(i, x)| if i >= 3 { x * factor } else { *x }).collect()
            };
            let scaled = stratified_shift(&s(&scale(&b)), &blocks, &s(&scale(&t)), &blocks).unwrap();
            prop_assert!((plain.log_ratio - scaled.log_ratio).abs() < 1e-9);
            prop_assert!((plain.standard_error - scaled.standard_error).abs() < 1e-9);
        }

        /// Balanced blocks: the estimate is the plain difference of means.
        #[test]
        fn balanced_blocks_estimate_the_difference_of_means(
            b in proptest::collection::vec(1.0_f64..2.0, 6),
            t in proptest::collection::vec(1.0_f64..2.0, 6),
        ) {
            let blocks = [1, 2, 3, 1, 2, 3];
            let shift = stratified_shift(&s(&b), &blocks, &s(&t), &blocks).unwrap();
            let mean = |v: &[f64]| v.iter().map(|x| x.ln()).sum::<f64>() / v.len() as f64;
            prop_assert!((shift.log_ratio - (mean(&t) - mean(&b))).abs() < 1e-9);
            prop_assert_eq!(shift.df, 6.0);
        }
    }
}
