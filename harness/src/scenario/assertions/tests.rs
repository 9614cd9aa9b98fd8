//! Each assertion kind, passing and failing, and `expect` matching.

use serde_json::json;

use super::*;

fn step(name: &str, check: Check) -> AssertStep {
    AssertStep {
        name: name.to_owned(),
        severity: Severity::Error,
        check,
    }
}

fn captures() -> Captures {
    let mut c = Captures::new();
    c.set(
        "before.bob.balance",
        json!({"text": "UCT: 99.999999999989 (1 token)", "coins": [{"confirmed": "99999999999989000000"}]}),
    );
    c.set(
        "peer2.bob.balance",
        json!({"text": "UCT: 199.999999999989 (2 tokens)", "coins": [{"confirmed": "199999999999989000000"}]}),
    );
    c.set(
        "after.alice.balance",
        json!({"text": "UCT: 100.000000000011 (2 tokens)", "coins": [{"confirmed": "100000000000011000000"}]}),
    );
    c
}

fn run(check: Check) -> AssertionOutcome {
    evaluate(&step("t", check), &captures(), &BTreeMap::new())
}

#[test]
fn equal_passes_on_equal_values_with_no_diff() {
    let out = run(Check::Equal {
        left: json!("${before.bob.balance.text}"),
        right: json!("UCT: 99.999999999989 (1 token)"),
    });
    assert!(out.passed, "{out:?}");
    assert_eq!(out.diff, None);
    assert!(!out.fails_run());
    assert_eq!(out.report(), "ASSERT PASS (t)\n");
}

#[test]
fn equal_fails_with_the_balance_diff_of_design_section_4() {
    let out = evaluate(
        &step(
            "bob-peer1-vs-peer2-after",
            Check::Equal {
                left: json!("${before.bob.balance.text}"),
                right: json!("${peer2.bob.balance.text}"),
            },
        ),
        &captures(),
        &BTreeMap::new(),
    );
    assert!(!out.passed);
    assert!(out.fails_run());
    assert_eq!(out.kind, AssertKind::Equal);
    assert_eq!(out.left, json!("UCT: 99.999999999989 (1 token)"));
    assert_eq!(
        out.diff.as_deref(),
        Some("-UCT: 99.999999999989 (1 token)\n+UCT: 199.999999999989 (2 tokens)\n")
    );
    assert_eq!(
        out.report(),
        "ASSERT FAIL (bob-peer1-vs-peer2-after)\n\
         -UCT: 99.999999999989 (1 token)\n\
         +UCT: 199.999999999989 (2 tokens)\n"
    );
}

#[test]
fn a_failed_warning_is_reported_but_does_not_fail_the_run() {
    let mut s = step(
        "w",
        Check::Equal {
            left: json!(1),
            right: json!(2),
        },
    );
    s.severity = Severity::Warning;
    let out = evaluate(&s, &captures(), &BTreeMap::new());
    assert!(!out.passed && !out.fails_run());
    assert_eq!(out.report(), "ASSERT WARN (w)\n-1\n+2\n");
}

#[test]
fn approx_compares_decimals_within_the_tolerance() {
    let pass = run(Check::Approx {
        left: json!("99.999999999989"),
        right: json!("99.99999999999"),
        tolerance: json!("0.000000000001"),
    });
    assert!(pass.passed, "{}", pass.message);
    assert_eq!(
        pass.message,
        "|left - right| = 0.000000000001 <= tolerance 0.000000000001"
    );
    let fail = run(Check::Approx {
        left: json!("99.999999999989"),
        right: json!("100"),
        tolerance: json!("0.000000000001"),
    });
    assert!(!fail.passed);
    assert_eq!(
        fail.message,
        "|left - right| = 0.000000000011 > tolerance 0.000000000001"
    );
    assert_eq!(fail.diff.as_deref(), Some("-99.999999999989\n+100\n"));
    let bad = run(Check::Approx {
        left: json!("abc"),
        right: json!("1"),
        tolerance: json!("0"),
    });
    assert!(!bad.passed);
    assert_eq!(bad.message, "left `abc` is not a decimal amount");
}

#[test]
fn conservation_sums_base_units_exactly() {
    let pass = run(Check::Conservation {
        values: vec![
            json!("${before.bob.balance.coins.0.confirmed}"),
            json!("${after.alice.balance.coins.0.confirmed}"),
        ],
        total: json!("200000000000000000000"),
    });
    assert!(pass.passed, "{}", pass.message);
    assert_eq!(pass.left, json!("200000000000000000000"));
    let fail = run(Check::Conservation {
        values: vec![
            json!("${peer2.bob.balance.coins.0.confirmed}"),
            json!("${after.alice.balance.coins.0.confirmed}"),
        ],
        total: json!("200000000000000000000"),
    });
    assert!(!fail.passed);
    assert_eq!(fail.message, "the sum of 2 values differs from the total");
    assert_eq!(
        fail.diff.as_deref(),
        Some("-300000000000000000000\n+200000000000000000000\n")
    );
}

#[test]
fn contains_handles_substrings_elements_and_sub_objects() {
    let cases = [
        (json!("UCT: 1 (1 token)"), json!("1 token"), true),
        (json!("UCT: 1 (1 token)"), json!("2 tokens"), false),
        (
            json!([{"id": "a", "state": "OPEN"}, {"id": "b", "state": "COVERED"}]),
            json!({"id": "b"}),
            true,
        ),
        (json!([1, 2, 3]), json!(4), false),
        (
            json!({"a": 1, "b": {"c": 2, "d": 3}}),
            json!({"b": {"c": 2}}),
            true,
        ),
        (json!({"a": 1}), json!({"a": 2}), false),
        (json!(5), json!(5), false),
    ];
    for (left, right, expected) in cases {
        let out = run(Check::Contains {
            left: left.clone(),
            right: right.clone(),
        });
        assert_eq!(
            out.passed, expected,
            "{left} contains {right}: {}",
            out.message
        );
        assert_eq!(out.kind, AssertKind::Contains);
    }
}

#[test]
fn an_unresolved_variable_fails_with_a_message_and_no_diff() {
    let out = run(Check::Equal {
        left: json!("${after.bob.balance.text}"),
        right: json!("x"),
    });
    assert!(!out.passed);
    assert_eq!(out.diff, None);
    assert_eq!(
        out.message,
        "cannot evaluate: `${after.bob.balance.text}`: no field `bob` in `after` (fields: alice)"
    );
    assert!(out.report().ends_with(&format!("{}\n", out.message)));
}

#[test]
fn expect_is_a_subset_match_naming_the_first_mismatch() {
    let result = json!({"visible": true, "extra": 1, "coins": [{"symbol": "UCT", "tokens": 1}]});
    assert_eq!(expect_mismatch(&result, &json!({"visible": true})), None);
    assert_eq!(
        expect_mismatch(&result, &json!({"visible": false})),
        Some("`visible`: expected `false`, got `true`".to_owned())
    );
    assert_eq!(
        expect_mismatch(&result, &json!({"coins": [{"tokens": 2}]})),
        Some("`coins.0.tokens`: expected `2`, got `1`".to_owned())
    );
    assert_eq!(
        expect_mismatch(&result, &json!({"state": "COVERED"})),
        Some("`state`: missing (expected `\"COVERED\"`)".to_owned())
    );
    assert!(subset_matches(&json!([1, 2]), &json!([1, 2])));
    assert!(!subset_matches(&json!([1, 2]), &json!([1])));
}
