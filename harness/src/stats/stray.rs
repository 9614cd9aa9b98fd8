//! Stray iterations: values far from their side's median, and the ones the
//! machine made slow, which a regression call sets aside.
//!
//! On a shared runner one iteration in a dozen or so has one section 10-15 %
//! slower than its siblings, and its peers spent 15-25 % more CPU-seconds on
//! exactly the same work: the machine ran slower for a moment (measured,
//! docs/statistics.md). At 5 a side one such value doubles a metric's
//! standard error and drags the estimate, so a real 10 % slowdown stays
//! undecided in about half of the gates. The exact CPU clock tells the two
//! usual causes of a stray apart: more CPU for the same work is the machine;
//! the same CPU and more time is waiting, which may be the branch.
//!
//! [`machine_strays`] finds, per side, the slowest value that is a stray
//! *and* used at least [`CPU_GREW`] more CPU than its side's median. Only
//! the regression call sets it aside (see `decision.rs`): a pass or an
//! improvement is always judged on every iteration, so an occasional stall
//! is never vouched for, it can only stop hiding a slowdown.

use super::sample::median;

/// A value is a stray when it is this many robust standard deviations from
/// its side's median...
const ROBUST_Z: f64 = 3.0;
/// ...and at least this far in relative terms, so that a side with almost
/// no spread does not call a 1 % wobble a stray.
const MIN_RELATIVE: f64 = 0.05;
/// CPU-seconds that grew by at least this share over the side's median for
/// the same work mean a slower machine; below it the time went to waiting.
pub const CPU_GREW: f64 = 0.10;
/// CPU medians below this (seconds) are too coarse to compare: the kernel's
/// clock ticks are 10 ms.
const MIN_CPU_SECONDS: f64 = 0.05;
/// A side keeps at least this many values after setting strays aside, so
/// the call still has a spread to go on.
const MIN_KEPT: usize = 3;
/// At most this many values are set aside per side: two of five in one
/// side was the worst a pool showed (§C.4, docs/statistics.md); more would
/// be spread, which the one-third rule of [`strays`] already refuses.
pub const MAX_SET_ASIDE: usize = 2;

/// The positions a regression call sets aside on one side, slowest first.
pub type SideSetAside = [Option<usize>; MAX_SET_ASIDE];

/// One side's values (seconds) with the CPU-seconds spent in each.
#[derive(Debug, Clone, Copy)]
pub struct TimedSide<'a> {
    /// Wall-clock seconds, one per iteration.
    pub seconds: &'a [f64],
    /// CPU-seconds of every role in the same span, aligned with `seconds`.
    pub cpu: &'a [f64],
}

/// A value far from its side's median.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Stray {
    /// Position in its side's values.
    pub index: usize,
    /// Its side's median.
    pub median: f64,
    /// CPU-seconds relative to the side's median CPU (`0.19` = 19 % more),
    /// when the median is large enough to compare.
    pub cpu_change: Option<f64>,
}

impl Stray {
    /// Whether its CPU grew with its time: the machine made it slow.
    pub fn is_machine(&self) -> bool {
        self.cpu_change.is_some_and(|c| c >= CPU_GREW)
    }
}

/// The strays of both sides, `[baseline, treatment]`. The deviation is
/// pooled over both sides' distances from their own medians (1.4826 x
/// their median): at 5 a side two strays among one side's five would
/// inflate that side's own deviation until neither counted. Empty when
/// more than a third of all values are far out (that is spread, not
/// strays) or when either side has fewer than 3 values.
pub fn strays(sides: [TimedSide<'_>; 2]) -> [Vec<Stray>; 2] {
    if sides.iter().any(|s| s.seconds.len() < 3) {
        return [Vec::new(), Vec::new()];
    }
    let centers = sides.map(|s| median(s.seconds));
    let deviations: Vec<f64> = sides
        .iter()
        .zip(centers)
        .flat_map(|(side, center)| side.seconds.iter().map(move |v| (v - center).abs()))
        .collect();
    let robust_sd = 1.4826 * median(&deviations);
    let found = [0, 1].map(|k| side_strays(sides[k], centers[k], robust_sd));
    let total: usize = sides.iter().map(|s| s.seconds.len()).sum();
    if 3 * (found[0].len() + found[1].len()) > total {
        return [Vec::new(), Vec::new()];
    }
    found
}

fn side_strays(side: TimedSide<'_>, center: f64, robust_sd: f64) -> Vec<Stray> {
    let cpu_center = (side.cpu.len() == side.seconds.len()).then(|| median(side.cpu));
    side.seconds
        .iter()
        .enumerate()
        .filter(|(_, v)| {
            let off = (*v - center).abs();
            off >= MIN_RELATIVE * center && off > ROBUST_Z * robust_sd
        })
        .map(|(index, _)| Stray {
            index,
            median: center,
            cpu_change: match cpu_center {
                Some(c) if c >= MIN_CPU_SECONDS => Some(side.cpu[index] / c - 1.0),
                _ => None,
            },
        })
        .collect()
}

/// Per side, the positions of the values a regression call sets aside:
/// the slowest strays above their median that the machine made slow, at
/// most [`MAX_SET_ASIDE`], and only as many as leave three values.
pub fn machine_strays(sides: [TimedSide<'_>; 2]) -> [SideSetAside; 2] {
    let found = strays(sides);
    [0, 1].map(|k| {
        let side = sides[k];
        let mut slow: Vec<&Stray> = found[k]
            .iter()
            .filter(|s| side.seconds[s.index] > s.median && s.is_machine())
            .collect();
        slow.sort_by(|a, b| side.seconds[b.index].total_cmp(&side.seconds[a.index]));
        let room = side
            .seconds
            .len()
            .saturating_sub(MIN_KEPT)
            .min(MAX_SET_ASIDE);
        let mut out: SideSetAside = [None; MAX_SET_ASIDE];
        for (slot, stray) in out.iter_mut().zip(slow.into_iter().take(room)) {
            *slot = Some(stray.index);
        }
        out
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn side<'a>(seconds: &'a [f64], cpu: &'a [f64]) -> TimedSide<'a> {
        TimedSide { seconds, cpu }
    }

    const NOTHING: [SideSetAside; 2] = [[None, None], [None, None]];
    const QUIET: [f64; 5] = [0.72, 0.73, 0.72, 0.74, 0.73];
    const QUIET_CPU: [f64; 5] = [0.41, 0.41, 0.42, 0.41, 0.41];

    #[test]
    fn a_slow_value_with_more_cpu_is_set_aside() {
        // Pool C's §C.4 (docs/statistics.md): run-8 0.83 s, peer CPU +26 %.
        let t = [0.74, 0.73, 0.83, 0.74, 0.75];
        let t_cpu = [0.41, 0.41, 0.52, 0.42, 0.41];
        let found = strays([side(&QUIET, &QUIET_CPU), side(&t, &t_cpu)]);
        assert!(found[0].is_empty());
        assert_eq!(found[1].len(), 1);
        let cpu = found[1][0].cpu_change.unwrap();
        assert!((cpu - (0.52 / 0.41 - 1.0)).abs() < 1e-12);
        assert_eq!(
            machine_strays([side(&QUIET, &QUIET_CPU), side(&t, &t_cpu)]),
            [[None, None], [Some(2), None]]
        );
    }

    #[test]
    fn a_slow_value_that_only_waited_is_kept() {
        let t = [0.74, 0.73, 0.83, 0.74, 0.75];
        let t_cpu = [0.41, 0.41, 0.42, 0.42, 0.41];
        let sides = [side(&QUIET, &QUIET_CPU), side(&t, &t_cpu)];
        assert_eq!(strays(sides)[1].len(), 1, "still a stray");
        assert_eq!(machine_strays(sides), NOTHING);
    }

    #[test]
    fn a_fast_value_is_never_set_aside() {
        let t = [0.74, 0.73, 0.63, 0.74, 0.75];
        let t_cpu = [0.41, 0.41, 0.52, 0.42, 0.41];
        let sides = [side(&QUIET, &QUIET_CPU), side(&t, &t_cpu)];
        assert_eq!(strays(sides)[1].len(), 1);
        assert_eq!(machine_strays(sides), NOTHING);
    }

    #[test]
    fn two_machine_strays_go_slowest_first_and_three_values_must_stay() {
        let b = [0.72, 0.84, 0.72, 0.86, 0.73, 0.72, 0.73, 0.72];
        let b_cpu = [0.41, 0.50, 0.41, 0.51, 0.41, 0.41, 0.41, 0.41];
        let t = [0.73; 8];
        let t_cpu = [0.41; 8];
        assert_eq!(
            machine_strays([side(&b, &b_cpu), side(&t, &t_cpu)]),
            [[Some(3), Some(1)], [None, None]]
        );
        // Four a side: only one may go.
        let b4 = [0.72, 0.86, 0.72, 0.73];
        let b4_cpu = [0.41, 0.51, 0.41, 0.41];
        assert_eq!(
            machine_strays([side(&b4, &b4_cpu), side(&t[..4], &t_cpu[..4])]),
            [[Some(1), None], [None, None]]
        );
        // Three a side: none.
        let b3 = [0.72, 0.86, 0.72];
        let b3_cpu = [0.41, 0.51, 0.41];
        assert_eq!(
            machine_strays([side(&b3, &b3_cpu), side(&t[..3], &t_cpu[..3])]),
            NOTHING
        );
    }

    #[test]
    fn spread_is_not_strays_and_small_cpu_is_not_evidence() {
        // Half the values far out: the metric is just noisy.
        let b = [0.70, 0.80, 0.70, 0.80, 0.70, 0.80];
        let cpu = [0.4, 0.5, 0.4, 0.5, 0.4, 0.5];
        let found = strays([side(&b, &cpu), side(&b, &cpu)]);
        assert!(found.iter().all(Vec::is_empty));
        // A 20 ms CPU median cannot tell 10 % apart from a clock tick.
        let t = [0.74, 0.73, 0.83, 0.74, 0.75];
        let tiny = [0.02, 0.02, 0.03, 0.02, 0.02];
        let found = strays([side(&QUIET, &QUIET_CPU), side(&t, &tiny)]);
        assert_eq!(found[1][0].cpu_change, None);
        assert_eq!(
            machine_strays([side(&QUIET, &QUIET_CPU), side(&t, &tiny)]),
            NOTHING
        );
    }

    proptest! {
        /// Multiplying every time of both sides by the same factor, or every
        /// CPU value, changes nothing: strays are relative.
        #[test]
        fn scale_free(
            b in prop::collection::vec(0.5f64..2.0, 4..9),
            t in prop::collection::vec(0.5f64..2.0, 4..9),
            bump in 0usize..8,
            factor in 0.1f64..10.0,
        ) {
            let mut b = b;
            let i = bump % b.len();
            b[i] *= 1.5;
            let b_cpu: Vec<f64> = b.iter().map(|v| v * 0.6).collect();
            let t_cpu: Vec<f64> = t.iter().map(|v| v * 0.6).collect();
            let found = machine_strays([side(&b, &b_cpu), side(&t, &t_cpu)]);
            let bs: Vec<f64> = b.iter().map(|v| v * factor).collect();
            let ts: Vec<f64> = t.iter().map(|v| v * factor).collect();
            let bc: Vec<f64> = b_cpu.iter().map(|v| v * factor).collect();
            let tc: Vec<f64> = t_cpu.iter().map(|v| v * factor).collect();
            let scaled = machine_strays([side(&bs, &bc), side(&ts, &tc)]);
            // The CPU median floor is absolute, so compare only where both
            // CPU medians clear it at either scale.
            let cpu_ok = |c: &[f64]| median(c) >= MIN_CPU_SECONDS;
            if cpu_ok(&b_cpu) && cpu_ok(&bc) && cpu_ok(&t_cpu) && cpu_ok(&tc) {
                prop_assert_eq!(found, scaled);
            }
        }

        /// Swapping the sides swaps what is set aside.
        #[test]
        fn swapping_sides_swaps_the_result(
            b in prop::collection::vec(0.5f64..2.0, 4..9),
            t in prop::collection::vec(0.5f64..2.0, 4..9),
            cpu_factor in 0.5f64..1.5,
        ) {
            let b_cpu: Vec<f64> = b.iter().map(|v| v * cpu_factor).collect();
            let t_cpu: Vec<f64> = t.iter().map(|v| v * 0.7).collect();
            let [x, y] = machine_strays([side(&b, &b_cpu), side(&t, &t_cpu)]);
            let swapped = machine_strays([side(&t, &t_cpu), side(&b, &b_cpu)]);
            prop_assert_eq!(swapped, [y, x]);
        }
    }
}
