//! Tests of `soakgate::stats` against independent references: hand-counted
//! exact distributions, published scipy values, statrs's brute-force exact
//! test, and a brute-force permutation enumeration written here (not the
//! module's DP). Property tests check the invariants of the ratio, its
//! interval and the verdict.

use proptest::prelude::*;
use soakgate::stats::{
    Alpha, AssertionPassRates, Comparison, GateMode, Interval, LookSchedule, NoiseBand,
    NullDistribution, PassRate, Sample, Verdict, apply_holm, compare, decide, hodges_lehmann, holm,
    mann_whitney,
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
// The verdict
// ---------------------------------------------------------------------------

fn cmp(b: &[f64], t: &[f64]) -> Comparison {
    compare("m", &s(b), &s(t), NoiseBand::TIME, Alpha::DEFAULT).unwrap()
}

#[test]
fn three_a_side_regression_needs_all_nine_ratios() {
    // Smallest ratio 105.5/100 = 1.055 > 1.05: all nine above -> regression.
    let c = cmp(&[98.0, 99.0, 100.0], &[105.5, 110.0, 112.0]);
    assert_eq!(c.verdict, Verdict::Regression);
    assert_eq!((c.slower_pairs, c.pairs), (9, 9));
    assert!(close(c.lower95_one_sided.unwrap(), 1.055, 1e-12));
    assert!(
        c.reason.contains("all 9 pairwise ratios are above 1.05"),
        "{}",
        c.reason
    );
    // One of nine at 104/100 = 1.04: no longer a regression, however large
    // the others.
    let c = cmp(&[98.0, 99.0, 100.0], &[104.0, 150.0, 160.0]);
    assert!(
        matches!(c.verdict, Verdict::Inconclusive { .. }),
        "{:?}",
        c.verdict
    );
}

#[test]
fn improvement_and_no_change() {
    let c = cmp(
        &[100.0, 101.0, 102.0, 103.0, 104.0],
        &[80.0, 81.0, 82.0, 83.0, 84.0],
    );
    assert_eq!(c.verdict, Verdict::Improvement);
    assert!(c.upper95_one_sided.unwrap() < 0.95);
    let c = cmp(
        &[100.0, 101.0, 99.0, 100.5, 99.5, 100.2],
        &[100.1, 100.8, 99.2, 100.4, 99.7, 100.0],
    );
    assert_eq!(c.verdict, Verdict::NoChange);
    assert!(
        c.reason.ends_with("lies inside 1 ± 5%: no change"),
        "{}",
        c.reason
    );
}

#[test]
fn two_a_side_is_inconclusive_with_a_plan() {
    let c = cmp(&[100.0, 101.0], &[100.5, 100.7]);
    assert!(matches!(c.ci90, Interval::Unbounded { .. }));
    assert_eq!(c.lower95_one_sided, None);
    assert_eq!(
        c.verdict,
        Verdict::Inconclusive {
            iterations_needed: Some(3)
        }
    );
    assert!(
        c.reason
            .starts_with("with 2 iterations per side no 90% interval exists"),
        "{}",
        c.reason
    );
}

#[test]
fn straddling_interval_names_a_count() {
    let c = cmp(&[100.0, 110.0, 95.0, 105.0], &[112.0, 125.0, 108.0, 118.0]);
    let Verdict::Inconclusive {
        iterations_needed: Some(n),
    } = c.verdict
    else {
        panic!("expected a plan: {:?} {}", c.verdict, c.reason);
    };
    assert!(n > 4 && n <= 30);
    assert!(c.reason.contains(&format!(
        "about {n} iterations per side would likely decide"
    )));
}

#[test]
fn look_alpha_widens_the_interval() {
    let b = s(&[100.0, 101.0, 102.0, 103.0, 104.0]);
    let t = s(&[110.0, 111.0, 112.0, 113.0, 114.0]);
    let default = compare("m", &b, &t, NoiseBand::TIME, Alpha::DEFAULT).unwrap();
    let look = LookSchedule::default().looks()[1];
    assert_eq!(look.per_side, 5);
    let strict = compare("m", &b, &t, NoiseBand::TIME, look.alpha).unwrap();
    assert!(strict.ci90.low().unwrap() <= default.ci90.low().unwrap());
    assert!(strict.ci90.high().unwrap() >= default.ci90.high().unwrap());
    assert!(close(strict.ci90.level(), 1.0 - 2.0 * 0.05 / 3.0, 1e-12));
    // 3 a side cannot decide at the look alpha, whatever the data.
    let three = compare(
        "m",
        &s(&[1.0, 1.01, 1.02]),
        &s(&[9.0, 9.1, 9.2]),
        NoiseBand::TIME,
        LookSchedule::default().looks()[0].alpha,
    )
    .unwrap();
    assert!(!three.verdict.is_decided());
}

#[test]
fn comparison_serializes_for_verdict_json() {
    let c = cmp(&[100.0, 101.0], &[100.5, 100.7]);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["verdict"]["kind"], "inconclusive");
    assert_eq!(json["verdict"]["iterations_needed"], 3);
    assert_eq!(json["ci90"]["kind"], "unbounded");
    assert_eq!(json["band"], 0.05);
    assert!(json.get("model").is_none());
    let c = cmp(&[98.0, 99.0, 100.0], &[105.5, 110.0, 112.0]);
    let json = serde_json::to_value(&c).unwrap();
    assert_eq!(json["verdict"]["kind"], "regression");
    assert_eq!(json["ci90"]["kind"], "bounded");
    assert!(json["ci90"]["low"].as_f64().unwrap() > 1.05);
}

// ---------------------------------------------------------------------------
// Holm and the gate
// ---------------------------------------------------------------------------

#[test]
fn holm_keeps_a_lone_sweep_and_demotes_two() {
    let sweep = cmp(&[98.0, 99.0, 100.0], &[110.0, 111.0, 112.0]);
    let mut one = vec![sweep.clone()];
    apply_holm(&mut one, Alpha::DEFAULT);
    assert_eq!(one[0].verdict, Verdict::Regression);
    assert!(close(one[0].p_holm.unwrap(), 0.05, 1e-12));

    let mut two = vec![sweep.clone(), sweep];
    apply_holm(&mut two, Alpha::DEFAULT);
    for c in &two {
        let Verdict::Inconclusive { iterations_needed } = c.verdict else {
            panic!("not demoted: {:?}", c.verdict);
        };
        // At alpha/2 = 0.025 one-sided, 4 a side (1/70) is the first that can.
        assert_eq!(iterations_needed, Some(4), "{}", c.reason);
        assert!(
            c.reason.contains("demoted by Holm across 2 gated metrics"),
            "{}",
            c.reason
        );
        assert!(close(c.p_holm.unwrap(), 0.1, 1e-12));
    }
}

#[test]
fn holm_leaves_no_change_alone() {
    let mut v = vec![
        cmp(
            &[100.0, 101.0, 99.0, 100.5, 99.5, 100.2],
            &[100.1, 100.8, 99.2, 100.4, 99.7, 100.0],
        ),
        cmp(&[98.0, 99.0, 100.0], &[110.0, 111.0, 112.0]),
    ];
    apply_holm(&mut v, Alpha::DEFAULT);
    assert_eq!(v[0].verdict, Verdict::NoChange);
    assert!(!v[1].verdict.is_decided());
}

fn rate(p: usize, t: usize) -> PassRate {
    PassRate::new(p, t).unwrap()
}

fn assertion(name: &str, b: PassRate, t: PassRate) -> AssertionPassRates {
    AssertionPassRates {
        name: name.to_string(),
        baseline: b,
        treatment: t,
    }
}

#[test]
fn no_regression_gate() {
    let same = cmp(&[100.0, 101.0, 102.0], &[100.5, 101.5, 101.0]);
    let slower = cmp(&[98.0, 99.0, 100.0], &[110.0, 111.0, 112.0]);
    let ok = [assertion("balance", rate(3, 3), rate(3, 3))];

    let out = decide(
        GateMode::NoRegression,
        std::slice::from_ref(&same),
        &ok,
        3,
        "m",
    );
    assert!(out.passed, "{:?}", out.reasons);

    let out = decide(GateMode::NoRegression, &[same.clone(), slower], &ok, 3, "m");
    assert!(!out.passed);
    assert!(
        out.reasons[0].starts_with("`m` regressed: all 9 pairwise ratios"),
        "{:?}",
        out.reasons
    );

    let out = decide(
        GateMode::NoRegression,
        std::slice::from_ref(&same),
        &ok,
        5,
        "m",
    );
    assert!(!out.passed);
    assert!(out.reasons[0].contains("needs at least 5 per side"));

    // An assertion failing on both branches is not a regression.
    let flaky_both = [assertion("relay", rate(0, 3), rate(0, 3))];
    assert!(decide(GateMode::NoRegression, &[same], &flaky_both, 3, "m").passed);
}

#[test]
fn must_improve_gate() {
    let faster = {
        let mut c = cmp(
            &[100.0, 101.0, 102.0, 103.0, 104.0],
            &[80.0, 81.0, 82.0, 83.0, 84.0],
        );
        c.metric = "total".into();
        c
    };
    let ok = [assertion("balance", rate(5, 5), rate(5, 5))];
    let out = decide(
        GateMode::MustImprove,
        std::slice::from_ref(&faster),
        &ok,
        3,
        "total",
    );
    assert!(out.passed, "{:?}", out.reasons);
    assert!(
        out.reasons
            .iter()
            .any(|r| r.starts_with("`total` improved"))
    );

    // A flaky assertion on baseline alone fails must-improve, not no-regression.
    let flaky = [assertion("balance", rate(4, 5), rate(5, 5))];
    assert!(
        decide(
            GateMode::NoRegression,
            std::slice::from_ref(&faster),
            &flaky,
            3,
            "total"
        )
        .passed
    );
    let out = decide(
        GateMode::MustImprove,
        std::slice::from_ref(&faster),
        &flaky,
        3,
        "total",
    );
    assert!(!out.passed);
    assert!(out.reasons[0].contains("pass in every iteration; baseline 4/5, treatment 5/5"));

    // Total not an improvement, or missing.
    let same = {
        let mut c = cmp(&[100.0, 101.0, 102.0], &[100.5, 101.5, 101.0]);
        c.metric = "total".into();
        c
    };
    let out = decide(GateMode::MustImprove, &[same], &ok, 3, "total");
    assert!(!out.passed);
    assert!(out.reasons[0].starts_with("must-improve needs `total` to be an improvement"));
    let out = decide(GateMode::MustImprove, &[faster], &ok, 3, "wall");
    assert!(!out.passed);
    assert!(out.reasons[0].contains("`wall` among the gated metrics"));
}

#[test]
fn gate_outcome_serializes() {
    let out = decide(GateMode::NoRegression, &[], &[], 3, "total");
    let json = serde_json::to_value(&out).unwrap();
    assert_eq!(json["passed"], true);
    assert_eq!(serde_json::to_value(rate(4, 5)).unwrap()["passed"], 4);
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
    // Each `compare` of an inconclusive metric plans up to 30 per side; 128
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
    fn swapping_branches_inverts_ratio_and_interval(b in spread_values(9), t in spread_values(9)) {
        let ab = compare("m", &s(&b), &s(&t), NoiseBand::TIME, Alpha::DEFAULT).unwrap();
        let ba = compare("m", &s(&t), &s(&b), NoiseBand::TIME, Alpha::DEFAULT).unwrap();
        prop_assert!(close(ab.ratio, 1.0 / ba.ratio, 1e-12));
        match (ab.ci90.bounds(), ba.ci90.bounds()) {
            (Some((lo, hi)), Some((lo2, hi2))) => {
                prop_assert!(close(lo, 1.0 / hi2, 1e-12));
                prop_assert!(close(hi, 1.0 / lo2, 1e-12));
            }
            (None, None) => {}
            other => prop_assert!(false, "bounded on one side only: {:?}", other),
        }
        prop_assert!(close(ab.p_two_sided, ba.p_two_sided, 1e-12));
        prop_assert!(close(ab.p_treatment_greater, ba.p_treatment_less, 1e-12));
        prop_assert!(close(ab.cliffs_delta, -ba.cliffs_delta, 1e-12));
        let mirrored = match ba.verdict {
            Verdict::Regression => Verdict::Improvement,
            Verdict::Improvement => Verdict::Regression,
            v => v,
        };
        // Decided verdicts mirror; the band is not symmetric in log space
        // (1/1.05 != 0.95), so only check when both decided.
        if ab.verdict.is_decided() && mirrored.is_decided() {
            prop_assert_eq!(ab.verdict, mirrored);
        }
    }

    #[test]
    fn scaling_both_changes_nothing(b in spread_values(8), t in spread_values(8), c in 0.01f64..100.0) {
        let scale = |v: &[f64]| v.iter().map(|x| x * c).collect::<Vec<_>>();
        let plain = compare("m", &s(&b), &s(&t), NoiseBand::TIME, Alpha::DEFAULT).unwrap();
        let scaled = compare("m", &s(&scale(&b)), &s(&scale(&t)), NoiseBand::TIME, Alpha::DEFAULT).unwrap();
        prop_assert!(close(plain.ratio, scaled.ratio, 1e-9));
        prop_assert_eq!(plain.p_two_sided, scaled.p_two_sided);
        prop_assert_eq!(plain.p_treatment_greater, scaled.p_treatment_greater);
        match (plain.ci90.bounds(), scaled.ci90.bounds()) {
            (Some((lo, hi)), Some((lo2, hi2))) => {
                prop_assert!(close(lo, lo2, 1e-9) && close(hi, hi2, 1e-9));
            }
            (None, None) => {}
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn scaling_treatment_scales_ratio(b in spread_values(8), t in spread_values(8), c in 0.1f64..10.0) {
        let t_scaled: Vec<f64> = t.iter().map(|x| x * c).collect();
        let plain = hodges_lehmann(&s(&b), &s(&t), Alpha::DEFAULT).unwrap();
        let scaled = hodges_lehmann(&s(&b), &s(&t_scaled), Alpha::DEFAULT).unwrap();
        prop_assert!(close(plain.ratio * c, scaled.ratio, 1e-9));
        match (plain.interval.bounds(), scaled.interval.bounds()) {
            (Some((lo, hi)), Some((lo2, hi2))) => {
                prop_assert!(close(lo * c, lo2, 1e-9) && close(hi * c, hi2, 1e-9));
            }
            (None, None) => {}
            other => prop_assert!(false, "{:?}", other),
        }
    }

    #[test]
    fn interval_contains_estimate_and_verdict_follows_it(
        b in tied_values(10), t in tied_values(10), alpha in 0.005f64..0.2, delta in 0.01f64..0.3,
    ) {
        let alpha = Alpha::new(alpha).unwrap();
        let band = NoiseBand::new(delta).unwrap();
        let c = compare("m", &s(&b), &s(&t), band, alpha).unwrap();
        prop_assert!(c.ci90.contains(c.ratio));
        prop_assert!(c.ratio > 0.0 && c.ratio.is_finite());
        prop_assert!((-1.0..=1.0).contains(&c.cliffs_delta));
        prop_assert!(c.slower_pairs <= c.pairs);
        prop_assert_eq!(c.pairs, b.len() * t.len());
        prop_assert_eq!(c.lower95_one_sided, c.ci90.low());
        prop_assert!(!c.reason.is_empty());
        match c.verdict {
            Verdict::Regression => prop_assert!(c.lower95_one_sided.unwrap() > band.upper()),
            Verdict::Improvement => prop_assert!(c.upper95_one_sided.unwrap() < band.lower()),
            Verdict::NoChange => {
                let (lo, hi) = c.ci90.bounds().unwrap();
                prop_assert!(lo >= band.lower() && hi <= band.upper());
            }
            Verdict::Inconclusive { iterations_needed } => {
                if let Some(n) = iterations_needed {
                    prop_assert!(n > b.len().max(t.len()) && n <= 30);
                }
            }
        }
    }

    #[test]
    fn identical_samples_never_regress(b in spread_values(10)) {
        let c = compare("m", &s(&b), &s(&b), NoiseBand::TIME, Alpha::DEFAULT).unwrap();
        prop_assert_eq!(c.ratio, 1.0);
        let regressed_or_improved = matches!(c.verdict, Verdict::Regression | Verdict::Improvement);
        prop_assert!(!regressed_or_improved, "{:?}", c.verdict);
        prop_assert_eq!(c.cliffs_delta, 0.0);
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
