//! Templates, lookups, captures and redaction.

use serde_json::json;

use super::*;

fn params() -> BTreeMap<String, Value> {
    BTreeMap::from([
        ("bundles".to_owned(), json!(70)),
        ("amount".to_owned(), json!("11000000")),
    ])
}

fn captures() -> Captures {
    let mut c = Captures::new();
    c.set(
        "alice",
        json!({"mnemonic": "word word", "address": "sphere:02ab"}),
    );
    c.set(
        "x",
        json!({"coins": [{"symbol": "UCT", "confirmed": "100"}]}),
    );
    c
}

#[test]
fn a_lone_reference_keeps_its_type_and_interpolation_makes_text() {
    let b = Builtins {
        iteration: 3,
        repeat_index: 0,
    };
    let c = captures();
    let p = params();
    let got = substitute(
        &json!({"n": "${bundles}", "s": "b=${bundles}, a=${alice.address}", "i": "${iteration}"}),
        &c,
        &p,
        &b,
    )
    .unwrap();
    assert_eq!(got, json!({"n": 70, "s": "b=70, a=sphere:02ab", "i": 3}));
    let obj = substitute_str("${x.coins.0}", &c, &p, &b).unwrap();
    assert_eq!(obj, json!({"symbol": "UCT", "confirmed": "100"}));
    let text = substitute_str("coin ${x.coins.0}", &c, &p, &b).unwrap();
    assert_eq!(text, json!(r#"coin {"confirmed":"100","symbol":"UCT"}"#));
}

#[test]
fn escapes_and_plain_dollars_stay_literal() {
    let got = substitute_str(
        "$${x} costs $5",
        &captures(),
        &params(),
        &Builtins::default(),
    );
    assert_eq!(got.unwrap(), json!("${x} costs $5"));
}

#[test]
fn errors_name_the_reference_and_what_is_there() {
    let (c, p, b) = (captures(), params(), Builtins::default());
    let err = substitute_str("${bob.mnemonic}", &c, &p, &b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "unknown variable `${bob.mnemonic}` (defined: alice, amount, bundles, iteration, repeat_index, x)"
    );
    let err = substitute_str("${alice.mnemonik}", &c, &p, &b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`${alice.mnemonik}`: no field `mnemonik` in `alice` (fields: address, mnemonic)"
    );
    let err = substitute_str("${x.coins.3}", &c, &p, &b).unwrap_err();
    assert!(
        err.to_string().contains("`x.coins` has 1 element(s)"),
        "{err}"
    );
    let err = parse_template("a ${b").unwrap_err();
    assert!(err.to_string().contains("without a closing"), "{err}");
    assert!(parse_template("${a b}").is_err());
}

#[test]
fn dotted_captures_build_nested_objects_and_secrets_redact() {
    let mut c = Captures::new();
    c.set("before.alice.balance", json!({"text": "UCT: 1 (1 token)"}));
    c.set("before.bob", json!(1));
    c.set("alice", json!({"mnemonic": "secret words", "address": "a"}));
    c.mark_secret("alice.mnemonic");
    assert_eq!(
        c.get("before.alice.balance.text"),
        Some(&json!("UCT: 1 (1 token)"))
    );
    assert!(c.is_secret("alice.mnemonic"));
    assert!(!c.is_secret("alice.address"));
    let shown = c.redacted();
    assert_eq!(shown["alice"]["mnemonic"], json!(REDACTED));
    assert_eq!(c.get("alice.mnemonic"), Some(&json!("secret words")));
    let logged = redact(
        &json!({"result": {"mnemonic": "m", "list": [{"mnemonic": "n"}]}}),
        &["mnemonic".to_owned()],
    );
    assert_eq!(
        logged,
        json!({"result": {"mnemonic": REDACTED, "list": [{"mnemonic": REDACTED}]}})
    );
}

#[test]
fn repeat_counts_resolve_from_params_or_fail_clearly() {
    use crate::scenario::model::RepeatCount;
    let (c, mut p, b) = (captures(), params(), Builtins::default());
    let count = resolve_repeat(&RepeatCount::Var("bundles".into()), &c, &p, &b);
    assert_eq!(count, Ok(70));
    p.insert("bundles".into(), json!("x"));
    let err = resolve_repeat(&RepeatCount::Var("bundles".into()), &c, &p, &b).unwrap_err();
    assert_eq!(
        err.to_string(),
        "repeat `${bundles}` is `\"x\"`, not a non-negative integer"
    );
}

#[test]
fn capturing_a_result_marks_its_secret_fields() {
    let mut c = Captures::new();
    let secrets = ["mnemonic".to_owned()];
    c.capture(
        "alice",
        json!({"address": "a", "mnemonic": "m", "keys": [{"mnemonic": "n"}]}),
        &secrets,
    );
    assert!(c.is_secret("alice.mnemonic"));
    assert!(c.is_secret("alice.keys.0.mnemonic"));
    assert_eq!(c.get("alice.mnemonic"), Some(&json!("m")));
    let shown = c.redacted();
    assert_eq!(shown["alice"]["mnemonic"], json!(REDACTED));
    assert_eq!(shown["alice"]["keys"][0]["mnemonic"], json!(REDACTED));
    assert_eq!(shown["alice"]["address"], json!("a"));
}
