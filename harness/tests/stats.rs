//! Tests of `soakgate::stats` against independent references: hand-counted
//! exact distributions, published scipy values, statrs's brute-force exact
//! test, and a brute-force permutation enumeration written here (not the
//! module's DP). Property tests check the invariants of the ratio, its
//! interval and the verdict.

use proptest::prelude::*;
use soakgate::stats::{
    Alpha, AssertionPassRates, Comparison, GateInput, GateMode, GateOutcome, GateStatus, Interval,
    LookSchedule, MetricSamples, NoiseBand, NullDistribution, OnCannotTell, PassRate, Sample,
    Tolerance, Verdict, compare, compare_family, decide, hodges_lehmann, holm, mann_whitney,
};
use statrs::stats_tests::Alternative;
use statrs::stats_tests::mannwhitneyu::{MannWhitneyUMethod, mannwhitneyu};

fn s(v: &[f64]) -> Sample {
    Sample::new(v.to_vec()).unwrap()
}

fn close(a: f64, b: f64, rel: f64) -> bool {
    (a - b).abs() <= rel * a.abs().max(b.abs()).max(1e-300)
}

// ---------------------------------------------------------------------------
// Independent reference: enumerate every labelling of the pooled values.
// ---------------------------------------------------------------------------

/// Doubled U of `treat` against `base` (ties count one half, so doubled).
fn doubled_u(base: &[f64], treat: &[f64]) -> usize {
    let mut u = 0;
    for &t in treat {
        for &b in base {
            if t > b {
                u += 2;
            } else if t == b {
                u += 1;
            }
        }
    }
    u
}

/// Every doubled U over all C(n+m, m) ways to pick the treatment values out
/// of the pooled ones.
fn permutation_null(base: &[f64], treat: &[f64]) -> Vec<usize> {
    let pooled: Vec<f64> = base.iter().chain(treat).copied().collect();
    let total = pooled.len();
    let m = treat.len();
    let mut out = Vec::new();
    for mask in 0u32..(1 << total) {
        if mask.count_ones() as usize != m {
            continue;
        }
        let (mut t, mut b) = (Vec::new(), Vec::new());
        for (i, &v) in pooled.iter().enumerate() {
            if mask & (1 << i) != 0 {
                t.push(v);
            } else {
                b.push(v);
            }
        }
        out.push(doubled_u(&b, &t));
    }
    out
}

/// (p_greater, p_less) by enumeration.
fn brute_p(base: &[f64], treat: &[f64]) -> (f64, f64) {
    let observed = doubled_u(base, treat);
    let null = permutation_null(base, treat);
    let n = null.len() as f64;
    let greater = null.iter().filter(|&&u| u >= observed).count() as f64 / n;
    let less = null.iter().filter(|&&u| u <= observed).count() as f64 / n;
    (greater, less)
}

/// The interval rank by enumeration: largest k with P(U <= k-1) <= tail.
fn brute_rank(n: usize, m: usize, tail: f64) -> Option<usize> {
    let base: Vec<f64> = (0..n).map(|i| i as f64 + 1.0).collect();
    let treat: Vec<f64> = (0..m).map(|i| (n + i) as f64 + 1.0).collect();
    let null = permutation_null(&base, &treat);
    let total = null.len() as f64;
    let mut k = 0;
    while (null.iter().filter(|&&u| u / 2 < k + 1).count() as f64) / total <= tail + 1e-12 {
        k += 1;
    }
    (k >= 1).then_some(k)
}

// ---------------------------------------------------------------------------
// Known values
// ---------------------------------------------------------------------------

#[test]
fn null_counts_match_hand_enumeration() {
    // Partitions of u fitting in an n x m box.
    let cases: [(usize, usize, &[u128]); 4] = [
        (2, 2, &[1, 1, 2, 1, 1]),
        (2, 3, &[1, 1, 2, 2, 2, 1, 1]),
        (3, 3, &[1, 1, 2, 3, 3, 3, 3, 2, 1, 1]),
        (4, 4, &[1, 1, 2, 3, 5, 5, 7, 7, 8, 7, 7, 5, 5, 3, 2, 1, 1]),
    ];
    for (n, m, expected) in cases {
        let d = NullDistribution::new(n, m).unwrap();
        let got: Vec<u128> = (0..=n * m).map(|u| d.count(u)).collect();
        assert_eq!(got, expected, "{n}x{m}");
        assert_eq!(d.total(), expected.iter().sum::<u128>());
    }
}

#[test]
fn complete_separation_p_values() {
    // n = m = 3: 1 arrangement of C(6,3) = 20 is this extreme: one-sided
    // 1/20, two-sided 0.1.
    let r = mann_whitney(&s(&[1.0, 2.0, 3.0]), &s(&[4.0, 5.0, 6.0])).unwrap();
    assert!(close(r.p_two_sided, 0.1, 1e-12));
    assert!(close(r.p_treatment_greater, 0.05, 1e-12));
    // n = m = 5: 2 / C(10,5) = 2/252.
    let r = mann_whitney(
        &s(&[10.0, 11.0, 12.0, 13.0, 14.0]),
        &s(&[20.0, 21.0, 22.0, 23.0, 24.0]),
    )
    .unwrap();
    assert!(close(r.p_two_sided, 2.0 / 252.0, 1e-12));
    assert_eq!(r.u_treatment, 25.0);
    // Reversed direction: treatment all smaller.
    let r = mann_whitney(
        &s(&[20.0, 21.0, 22.0, 23.0, 24.0]),
        &s(&[1.0, 2.0, 3.0, 4.0, 5.0]),
    )
    .unwrap();
    assert!(close(r.p_treatment_less, 1.0 / 252.0, 1e-12));
    assert_eq!(r.u_treatment, 0.0);
    assert_eq!(r.u_baseline, 25.0);
}

#[test]
fn scipy_documented_values() {
    // scipy.stats.mannwhitneyu docs: male [19,22,16,29,24] vs female
    // [20,11,17,12], U = 17, exact two-sided p = 0.1111 (= 14/126).
    let r = mann_whitney(
        &s(&[20.0, 11.0, 17.0, 12.0]),
        &s(&[19.0, 22.0, 16.0, 29.0, 24.0]),
    )
    .unwrap();
    assert_eq!(r.u_treatment, 17.0);
    assert!(close(r.p_two_sided, 0.111_111_111_111_111_1, 1e-12));
    // scipy exact values quoted in statrs's tests: x (U = 21) against y.
    let x = [5.0, 2.0, 7.0, 8.0, 9.0, 3.0, 11.0, 12.0];
    let y = [1.0, 6.0, 10.0, 4.0];
    let r = mann_whitney(&s(&y), &s(&x)).unwrap();
    assert_eq!(r.u_treatment, 21.0);
    assert!(close(
        r.p_treatment_greater,
        0.230_303_030_303_030_31,
        1e-12
    ));
    assert!(close(r.p_treatment_less, 0.816_161_616_161_616_1, 1e-12));
    assert!(close(r.p_two_sided, 0.460_606_060_606_060_63, 1e-12));
}

#[test]
fn hand_enumerated_ties() {
    // Pooled 1, 2, 2, 3; the six labellings give U = 0.5, 0.5, 2, 2, 3.5, 3.5.
    // Treatment {2, 3} against {1, 2}: U = 3.5, P(U >= 3.5) = 2/6.
    let r = mann_whitney(&s(&[1.0, 2.0]), &s(&[2.0, 3.0])).unwrap();
    assert!(r.ties);
    assert_eq!(r.u_treatment, 3.5);
    assert!(close(r.p_treatment_greater, 1.0 / 3.0, 1e-12));
    assert_eq!(r.p_treatment_less, 1.0);
    assert!(close(r.p_two_sided, 2.0 / 3.0, 1e-12));
}

#[test]
fn interval_ranks_match_enumeration() {
    for n in 2..=6 {
        for m in 2..=6 {
            let d = NullDistribution::new(n, m).unwrap();
            for tail in [0.05, 0.025, 0.0125, 0.10] {
                assert_eq!(
                    d.interval_rank(tail),
                    brute_rank(n, m, tail),
                    "{n}x{m} at {tail}"
                );
            }
        }
    }
    // Textbook: 5 a side at 90 %, P(U <= 4) = 12/252 = 0.0476 -> k = 5.
    assert_eq!(
        NullDistribution::new(5, 5).unwrap().interval_rank(0.05),
        Some(5)
    );
    // 3 a side: P(U = 0) = 1/20 exactly 0.05, so k = 1 exists at 95 % one-sided.
    assert_eq!(
        NullDistribution::new(3, 3).unwrap().interval_rank(0.05),
        Some(1)
    );
}

#[test]
fn hodges_lehmann_hand_computed() {
    // Ratios t/b for b = [1, 2, 4], t = [2, 4, 8]: 2 1 .5 / 4 2 1 / 8 4 2;
    // sorted .5 1 1 2 2 2 4 4 8: median 2; at 3 a side k = 1: [0.5, 8].
    let r = hodges_lehmann(&s(&[1.0, 2.0, 4.0]), &s(&[2.0, 4.0, 8.0]), Alpha::DEFAULT).unwrap();
    assert!(close(r.ratio, 2.0, 1e-12));
    let (low, high) = r.interval.bounds().unwrap();
    assert!(close(low, 0.5, 1e-12) && close(high, 8.0, 1e-12));
    assert_eq!((r.slower_pairs, r.faster_pairs, r.pairs), (6, 1, 9));
    assert!(close(r.cliffs_delta, 5.0 / 9.0, 1e-12));
    // Even count: 2 x 2 ratios 1, 2, 2, 4 on b = [1, 2], t = [2, 4]: median is
    // the geometric mean of the middle two, 2.
    let r = hodges_lehmann(&s(&[1.0, 2.0]), &s(&[2.0, 4.0]), Alpha::DEFAULT).unwrap();
    assert!(close(r.ratio, 2.0, 1e-12));
    assert!(matches!(r.interval, Interval::Unbounded { .. }));
}

// ---------------------------------------------------------------------------
// The verdict: Welch on log values, checked against scipy
// ---------------------------------------------------------------------------

fn relative() -> Tolerance {
    Tolerance::relative(NoiseBand::TIME)
}

fn cmp(b: &[f64], t: &[f64]) -> Comparison {
    compare("m", &s(b), &s(t), relative(), Alpha::DEFAULT).unwrap()
}

fn family(metrics: &[(&[f64], &[f64])], alpha: Alpha) -> Vec<Comparison> {
    let samples: Vec<(Sample, Sample)> = metrics.iter().map(|(b, t)| (s(b), s(t))).collect();
    let inputs: Vec<MetricSamples<'_>> = samples
        .iter()
        .map(|(b, t)| MetricSamples {
            name: "m",
            baseline: b,
            treatment: t,
            tolerance: relative(),
            blocks: None,
            cpu: None,
        })
        .collect();
    compare_family(&inputs, alpha).unwrap()
}

// Reference values computed independently with scipy (ttest_ind on the
// natural logs, equal_var=False, alternative='greater'; t.ppf for bounds):
//   b = [12.1, 12.4, 11.9, 12.2, 12.0], t = [13.3, 13.6, 13.1, 13.5, 13.2]
//   ratio 1.100664325, t 9.671998838, df 7.997083408, p 5.45469654e-06,
//   95 % one-sided bounds 1.080552572 and 1.121150408
#[test]
fn welch_on_logs_matches_scipy() {
    let c = cmp(
        &[12.1, 12.4, 11.9, 12.2, 12.0],
        &[13.3, 13.6, 13.1, 13.5, 13.2],
    );
    assert!(close(c.ratio, 1.100_664_325, 1e-9), "{}", c.ratio);
    assert!(close(c.shift.df, 7.997_083_408, 1e-8), "{}", c.shift.df);
    let t = c.shift.log_ratio / c.shift.standard_error;
    assert!(close(t, 9.671_998_838, 1e-8), "{t}");
    assert!(close(c.p_slower, 5.454_696_54e-6, 1e-6), "{}", c.p_slower);
    let (low, high) = c.interval.bounds().unwrap();
    assert!(close(low, 1.080_552_572, 1e-8), "{low}");
    assert!(close(high, 1.121_150_408, 1e-8), "{high}");
    assert!(close(c.interval.level(), 0.9, 1e-12));
    assert_eq!(c.verdict, Verdict::Regression, "{}", c.reason);
    // The rank statistics ride along: every pair slower.
    assert_eq!((c.rank_check.slower_pairs, c.rank_check.pairs), (25, 25));
}

// scipy: b = [10, 10.3, 9.8], t = [10.9, 11.3, 10.6]: ratio 1.089555027,
// p 0.0119899519, df 3.777446585; bounds at alpha 0.0125: 1.001155595,
// 1.185759898. b = [5, 5.1, 4.9], t = [5.02, 5.07, 4.95]: p 0.425217095,
// 95 % upper bound 1.033955763.
#[test]
fn holm_demotes_a_marginal_slowdown_in_a_large_family() {
    let slow: (&[f64], &[f64]) = (&[10.0, 10.3, 9.8], &[10.9, 11.3, 10.6]);
    let calm: (&[f64], &[f64]) = (&[5.0, 5.1, 4.9], &[5.02, 5.07, 4.95]);
    let alone = family(&[slow], Alpha::DEFAULT);
    assert!(close(alone[0].p_slower, 0.011_989_951_9, 1e-7));
    assert_eq!(alone[0].verdict, Verdict::Regression, "{}", alone[0].reason);
    // Four metrics: 4 x 0.01199 = 0.048 <= 0.05 still calls it.
    let four = family(&[slow, calm, calm, calm], Alpha::DEFAULT);
    assert!(close(
        four[0].p_slower_adjusted,
        4.0 * 0.011_989_951_9,
        1e-7
    ));
    assert_eq!(four[0].verdict, Verdict::Regression);
    // Five: 0.060 > 0.05, and the estimate is beyond the band: cannot tell.
    let five = family(&[slow, calm, calm, calm, calm], Alpha::DEFAULT);
    assert!(close(
        five[0].p_slower_adjusted,
        5.0 * 0.011_989_951_9,
        1e-7
    ));
    assert!(
        matches!(five[0].verdict, Verdict::CannotTell { .. }),
        "{}",
        five[0].reason
    );
    assert!(
        five[0].reason.contains("not significant"),
        "{}",
        five[0].reason
    );
    // The calm metric's upper bound 1.034 is inside the 5 % band.
    assert!(close(five[1].interval.high().unwrap(), 1.033_955_763, 1e-8));
    assert_eq!(five[1].verdict, Verdict::NoRegression, "{}", five[1].reason);
    // The interval follows alpha: at 0.0125 the lower bound is 1.0012.
    let strict = family(&[slow], Alpha::new(0.0125).unwrap());
    assert!(close(
        strict[0].interval.low().unwrap(),
        1.001_155_595,
        1e-8
    ));
    assert!(close(strict[0].interval.level(), 0.975, 1e-12));
}

#[test]
fn a_floor_keeps_tiny_sections_from_blocking() {
    // 10 ms to 13 ms, very clearly: 30 % slower, but 3 ms is under a 25 ms
    // floor, so the tolerated share is 250 % and the upper bound is inside it.
    let floor = Tolerance::new(NoiseBand::TIME, 0.025).unwrap();
    let c = compare(
        "§E Ledger",
        &s(&[0.010, 0.0101, 0.0099]),
        &s(&[0.013, 0.0131, 0.0129]),
        floor,
        Alpha::DEFAULT,
    )
    .unwrap();
    assert!(close(c.tolerated_share, 2.5, 1e-9));
    assert_eq!(c.verdict, Verdict::NoRegression, "{}", c.reason);
    // Without the floor it is a regression.
    let bare = cmp(&[0.010, 0.0101, 0.0099], &[0.013, 0.0131, 0.0129]);
    assert_eq!(bare.verdict, Verdict::Regression);
}

#[test]
fn a_noisy_metric_cannot_tell_and_says_how_many_would_decide() {
    let c = cmp(&[10.0, 11.0, 9.0], &[10.5, 12.0, 9.5]);
    let Verdict::CannotTell { iterations_needed } = c.verdict else {
        panic!("{:?}: {}", c.verdict, c.reason);
    };
    assert!(iterations_needed.is_none_or(|n| n > 3 && n <= 30));
    assert!(c.reason.contains("cannot tell"), "{}", c.reason);
}

#[test]
fn comparison_serializes_for_verdict_json() {
    let c = cmp(&[1.0, 1.01, 1.02], &[1.0, 1.01, 1.02]);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["verdict"]["kind"], "no_regression");
    assert!(json["interval"].is_object());
    assert!(json["rank_check"]["p_two_sided"].is_number());
}

// ---------------------------------------------------------------------------
// The gate
// ---------------------------------------------------------------------------

fn rate(p: usize, t: usize) -> PassRate {
    PassRate::new(p, t).unwrap()
}

fn assertion(name: &str, b: PassRate, t: PassRate) -> AssertionPassRates {
    AssertionPassRates {
        name: name.into(),
        baseline: b,
        treatment: t,
    }
}

fn gate(mode: GateMode, comparisons: &[Comparison], on: OnCannotTell) -> GateOutcome {
    decide(GateInput {
        mode,
        comparisons,
        assertions: &[assertion("ok", rate(3, 3), rate(3, 3))],
        total_metric: "m",
        on_cannot_tell: on,
    })
}

#[test]
fn no_regression_gate_has_three_outcomes() {
    let fail = OnCannotTell::Fail;
    let slow = cmp(&[10.0, 10.1, 9.9], &[12.0, 12.1, 11.9]);
    let out = gate(GateMode::NoRegression, &[slow], fail);
    assert_eq!(out.status, GateStatus::Fail);
    assert!(!out.passed);
    assert!(
        out.headline.starts_with("GATE FAIL: regression in `m`"),
        "{}",
        out.headline
    );

    let calm = cmp(&[5.0, 5.1, 4.9], &[5.02, 5.07, 4.95]);
    let out = gate(GateMode::NoRegression, std::slice::from_ref(&calm), fail);
    assert_eq!(out.status, GateStatus::Pass);
    assert!(out.passed);
    let rules_out = out.rules_out.as_deref().unwrap();
    assert!(
        rules_out.starts_with("a slowdown above 3.4%"),
        "{rules_out}"
    );
    assert!(out.could_catch.is_some());
    // A clear speed-up rules out any slowdown, said without a negative
    // "slowdown above".
    let faster = cmp(&[10.0, 10.1, 9.9], &[8.0, 8.1, 7.9]);
    let out = gate(GateMode::NoRegression, std::slice::from_ref(&faster), fail);
    let rules_out = out.rules_out.as_deref().unwrap();
    assert!(
        rules_out.starts_with("any slowdown in the gated metrics its band governs"),
        "{rules_out}"
    );

    let noisy = cmp(&[10.0, 11.0, 9.0], &[10.5, 12.0, 9.5]);
    let out = gate(GateMode::NoRegression, &[calm.clone(), noisy.clone()], fail);
    assert_eq!(out.status, GateStatus::CannotTell);
    assert!(!out.passed, "cannot tell is never a silent pass");
    assert!(
        out.headline.starts_with("GATE FAIL: cannot tell"),
        "{}",
        out.headline
    );
    let out = gate(GateMode::NoRegression, &[calm, noisy], OnCannotTell::Warn);
    assert_eq!(out.status, GateStatus::CannotTell);
    assert!(out.passed);
    assert!(
        out.headline
            .starts_with("GATE PASS WITH WARNING: cannot tell"),
        "{}",
        out.headline
    );
}

#[test]
fn a_broken_assertion_fails_whatever_the_timings() {
    let calm = cmp(&[5.0, 5.1, 4.9], &[5.02, 5.07, 4.95]);
    let out = decide(GateInput {
        mode: GateMode::NoRegression,
        comparisons: &[calm],
        assertions: &[assertion("token survives", rate(3, 3), rate(2, 3))],
        total_metric: "m",
        on_cannot_tell: OnCannotTell::Fail,
    });
    assert_eq!(out.status, GateStatus::Fail);
    assert_eq!(
        out.reasons,
        vec!["assertion `token survives` passes on baseline (3/3) but fails on treatment (2/3)"]
    );
}

#[test]
fn must_improve_needs_a_decided_improvement_of_the_total() {
    let fail = OnCannotTell::Fail;
    let faster = cmp(&[12.0, 12.1, 11.9], &[10.0, 10.1, 9.9]);
    assert_eq!(faster.verdict, Verdict::Improvement, "{}", faster.reason);
    let out = gate(GateMode::MustImprove, &[faster], fail);
    assert_eq!(out.status, GateStatus::Pass, "{:?}", out.reasons);
    let calm = cmp(&[5.0, 5.1, 4.9], &[5.02, 5.07, 4.95]);
    let out = gate(GateMode::MustImprove, &[calm], fail);
    assert_eq!(out.status, GateStatus::Fail);
    assert!(
        out.reasons[0].contains("to be an improvement"),
        "{:?}",
        out.reasons
    );
    let noisy = cmp(&[10.0, 11.0, 9.0], &[9.5, 10.0, 8.5]);
    let out = gate(GateMode::MustImprove, &[noisy], fail);
    assert_eq!(out.status, GateStatus::CannotTell, "{:?}", out.reasons);
}

#[test]
fn an_interrupted_run_has_no_verdict() {
    let out = GateOutcome::interrupted(OnCannotTell::Warn, (2, 1));
    assert_eq!(out.status, GateStatus::Interrupted);
    assert!(!out.passed);
    assert!(out.headline.starts_with("INTERRUPTED: partial evidence"));
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["status"], "interrupted");
}

#[test]
fn the_adaptive_plan_spends_the_family_alpha_once() {
    let plan = LookSchedule::standard(Alpha::DEFAULT);
    let spent: f64 = plan.looks().iter().map(|l| l.alpha.get()).sum();
    assert!(close(spent, 0.05, 1e-12));
    assert_eq!(plan.cap(), 10);
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

/// Values on a coarse grid, so ties happen often.
fn tied_values(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec((1u32..=12).prop_map(|v| f64::from(v) * 0.5), 2..=max_len)
}

/// Values on a fine grid: distinct in practice, and far enough apart that
/// scaling cannot merge two of them.
fn spread_values(max_len: usize) -> impl Strategy<Value = Vec<f64>> {
    prop::collection::vec(
        (100u32..=100_000).prop_map(|v| f64::from(v) * 0.01),
        2..=max_len,
    )
}

fn has_ties(a: &[f64], b: &[f64]) -> bool {
    let mut all: Vec<f64> = a.iter().chain(b).copied().collect();
    all.sort_by(f64::total_cmp);
    all.windows(2).any(|w| w[0] == w[1])
}

proptest! {
    // Each `compare` of an undecided metric plans up to 30 per side; 128
    // cases keep the debug-build suite quick without thinning the checks much.
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn p_values_match_permutation_enumeration(b in tied_values(7), t in tied_values(7)) {
        let r = mann_whitney(&s(&b), &s(&t)).unwrap();
        let (greater, less) = brute_p(&b, &t);
        prop_assert!(close(r.p_treatment_greater, greater, 1e-12), "{} vs {greater}", r.p_treatment_greater);
        prop_assert!(close(r.p_treatment_less, less, 1e-12), "{} vs {less}", r.p_treatment_less);
        prop_assert_eq!(r.u_treatment * 2.0, doubled_u(&b, &t) as f64);
        prop_assert!((0.0..=1.0).contains(&r.p_two_sided));
        prop_assert!(r.p_two_sided >= r.p_treatment_greater.min(r.p_treatment_less));
    }

    #[test]
    fn p_values_match_statrs_without_ties(b in spread_values(8), t in spread_values(8)) {
        // statrs 0.19.1's exact test returns P(U < u) instead of P(U >= u)
        // when its first sample is not the larger one (checked: x = [1.02,
        // 1.03], y = [1.0, 1.01], Greater gives 5/6 instead of 1/6); its
        // other branch agrees with scipy, so only that one is a reference.
        prop_assume!(t.len() > b.len());
        prop_assume!(!has_ties(&b, &t));
        let r = mann_whitney(&s(&b), &s(&t)).unwrap();
        let (u, greater) = mannwhitneyu(&t, &b, MannWhitneyUMethod::Exact, Alternative::Greater).unwrap();
        let (_, less) = mannwhitneyu(&t, &b, MannWhitneyUMethod::Exact, Alternative::Less).unwrap();
        prop_assert_eq!(u, r.u_treatment);
        prop_assert!(close(r.p_treatment_greater, greater, 1e-12));
        prop_assert!(close(r.p_treatment_less, less, 1e-12));
    }

    #[test]
    fn swapping_sides_mirrors_the_verdict(b in spread_values(9), t in spread_values(9)) {
        let ab = compare("m", &s(&b), &s(&t), relative(), Alpha::DEFAULT).unwrap();
        let ba = compare("m", &s(&t), &s(&b), relative(), Alpha::DEFAULT).unwrap();
        prop_assert!(close(ab.ratio, 1.0 / ba.ratio, 1e-9));
        let (lo, hi) = ab.interval.bounds().unwrap();
        let (lo2, hi2) = ba.interval.bounds().unwrap();
        prop_assert!(close(lo, 1.0 / hi2, 1e-9) && close(hi, 1.0 / lo2, 1e-9));
        prop_assert!(close(ab.p_slower_adjusted, ba.p_faster_adjusted, 1e-9));
        prop_assert!(close(ab.rank_check.cliffs_delta, -ba.rank_check.cliffs_delta, 1e-12));
        // The band is not symmetric in log space (1/1.05 != 0.95), so a
        // regression mirrors to an improvement when its ratio clears both.
        if ab.verdict == Verdict::Regression && ab.ratio > 1.0 / 0.95 {
            prop_assert_eq!(ba.verdict, Verdict::Improvement);
        }
        if ba.verdict == Verdict::Improvement && ba.ratio < 1.0 / 1.05 {
            prop_assert_eq!(ab.verdict, Verdict::Regression);
        }
    }

    #[test]
    fn scaling_both_changes_nothing(b in spread_values(8), t in spread_values(8), c in 0.01f64..100.0) {
        let scale = |v: &[f64]| v.iter().map(|x| x * c).collect::<Vec<_>>();
        let plain = compare("m", &s(&b), &s(&t), relative(), Alpha::DEFAULT).unwrap();
        let scaled = compare("m", &s(&scale(&b)), &s(&scale(&t)), relative(), Alpha::DEFAULT).unwrap();
        prop_assert!(close(plain.ratio, scaled.ratio, 1e-9));
        prop_assert!(close(plain.p_slower, scaled.p_slower, 1e-6));
        let (lo, hi) = plain.interval.bounds().unwrap();
        let (lo2, hi2) = scaled.interval.bounds().unwrap();
        prop_assert!(close(lo, lo2, 1e-9) && close(hi, hi2, 1e-9));
        prop_assert_eq!(plain.verdict.is_decided(), scaled.verdict.is_decided());
        if plain.verdict.is_decided() {
            prop_assert_eq!(plain.verdict, scaled.verdict);
        }
    }

    #[test]
    fn scaling_treatment_scales_ratio_and_bounds(b in spread_values(8), t in spread_values(8), c in 0.1f64..10.0) {
        let t_scaled: Vec<f64> = t.iter().map(|x| x * c).collect();
        let plain = cmp(&b, &t);
        let scaled = cmp(&b, &t_scaled);
        prop_assert!(close(plain.ratio * c, scaled.ratio, 1e-9));
        let (lo, hi) = plain.interval.bounds().unwrap();
        let (lo2, hi2) = scaled.interval.bounds().unwrap();
        prop_assert!(close(lo * c, lo2, 1e-9) && close(hi * c, hi2, 1e-9));
        // The rank machinery stays exact: HL scales too.
        let hl = hodges_lehmann(&s(&b), &s(&t), Alpha::DEFAULT).unwrap();
        let hl_scaled = hodges_lehmann(&s(&b), &s(&t_scaled), Alpha::DEFAULT).unwrap();
        prop_assert!(close(hl.ratio * c, hl_scaled.ratio, 1e-9));
    }

    #[test]
    fn the_verdict_follows_its_rule(
        b in tied_values(10), t in tied_values(10), alpha in 0.005f64..0.2, delta in 0.01f64..0.3,
    ) {
        let alpha = Alpha::new(alpha).unwrap();
        let band = NoiseBand::new(delta).unwrap();
        let c = compare("m", &s(&b), &s(&t), Tolerance::relative(band), alpha).unwrap();
        let (lo, hi) = c.interval.bounds().unwrap();
        prop_assert!(lo <= c.ratio && c.ratio <= hi);
        prop_assert!(c.ratio > 0.0 && c.ratio.is_finite());
        prop_assert!((-1.0..=1.0).contains(&c.rank_check.cliffs_delta));
        prop_assert_eq!(c.rank_check.pairs, b.len() * t.len());
        prop_assert!(!c.reason.is_empty());
        prop_assert!(c.detectable_ratio >= 1.0);
        match c.verdict {
            Verdict::Regression => {
                prop_assert!(c.p_slower_adjusted <= alpha.get() * (1.0 + 1e-9));
                prop_assert!(c.ratio > band.upper());
            }
            Verdict::Improvement => {
                prop_assert!(c.p_faster_adjusted <= alpha.get() * (1.0 + 1e-9));
                prop_assert!(c.ratio < band.lower());
                prop_assert!(hi < band.upper());
            }
            Verdict::NoRegression => prop_assert!(hi < band.upper() * (1.0 + 1e-12)),
            Verdict::CannotTell { iterations_needed } => {
                prop_assert!(hi >= band.upper() * (1.0 - 1e-12));
                if let Some(n) = iterations_needed {
                    prop_assert!(n > b.len().max(t.len()) && n <= 30);
                }
            }
        }
    }

    #[test]
    fn identical_samples_never_regress(b in spread_values(10)) {
        let c = cmp(&b, &b);
        prop_assert_eq!(c.ratio, 1.0);
        let regressed_or_improved = matches!(c.verdict, Verdict::Regression | Verdict::Improvement);
        prop_assert!(!regressed_or_improved, "{:?}", c.verdict);
        prop_assert_eq!(c.rank_check.cliffs_delta, 0.0);
    }

    #[test]
    fn null_distribution_is_symmetric_and_complete(n in 1usize..=20, m in 1usize..=20) {
        let d = NullDistribution::new(n, m).unwrap();
        let max = n * m;
        for u in 0..=max {
            prop_assert_eq!(d.count(u), d.count(max - u));
        }
        // Total is C(n+m, n).
        let mut binom: u128 = 1;
        for i in 0..n {
            binom = binom * (m + n - i) as u128 / (i + 1) as u128;
        }
        prop_assert_eq!(d.total(), binom);
        prop_assert_eq!(d.cdf(max), 1.0);
    }

    #[test]
    fn holm_properties(p in prop::collection::vec(0.0f64..=1.0, 0..12), alpha in 0.001f64..0.2) {
        let alpha = Alpha::new(alpha).unwrap();
        let r = holm(&p, alpha).unwrap();
        prop_assert_eq!(r.len(), p.len());
        for h in &r {
            prop_assert!(h.adjusted_p >= h.p && h.adjusted_p <= 1.0);
        }
        // Adjusted p is monotone in p, so rejections are the smallest p's.
        for a in &r {
            for b in &r {
                if a.p < b.p {
                    prop_assert!(a.adjusted_p <= b.adjusted_p);
                    prop_assert!(a.rejected || !b.rejected);
                }
            }
        }
        // Never rejects more than Bonferroni-at-each-step allows, never fewer
        // than Bonferroni.
        let bonferroni = p.iter().filter(|&&x| x * p.len() as f64 <= alpha.get()).count();
        prop_assert!(r.iter().filter(|h| h.rejected).count() >= bonferroni);
    }
}
