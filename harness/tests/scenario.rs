//! Scenario files: the shipped ones load, variables substitute, malformed
//! ones fail with one line naming `file:line:col`, and assertions diff.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};

use serde_json::{Value, json};
use soakgate::scenario::{
    AssertKind, Builtins, Captures, Check, RepeatCount, Scenario, ScenarioError, Severity,
    StepKind, evaluate, substitute,
};

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/scenarios")
        .join(name)
}

fn load_shipped(name: &str) -> Scenario {
    Scenario::load(&repo_root().join("scenarios").join(name), &[])
        .unwrap_or_else(|e| panic!("{name} must load: {e}"))
}

fn overrides(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// Every op the reference peer lists in `hello` (docs/peer-protocol.md).
fn sphere_peer_ops() -> Vec<String> {
    [
        "hello",
        "create_wallet",
        "import_wallet",
        "faucet",
        "sync",
        "receive",
        "balance",
        "tokens",
        "invoice_create",
        "invoice_deliver",
        "invoice_await",
        "invoice_pay",
        "invoice_status",
        "invoice_list",
        "history",
        "flush",
        "clear",
        "counters",
        "shutdown",
    ]
    .map(String::from)
    .to_vec()
}

// ---------------------------------------------------------------- shipped

#[test]
fn the_default_scenario_loads_with_the_ten_sections_of_design_4() {
    let s = load_shipped("pay-sync-clear-recover.toml");
    assert_eq!(s.name, "pay-sync-clear-recover");
    let ids: Vec<String> = s.sections.iter().map(|x| x.id.to_string()).collect();
    assert_eq!(
        ids,
        [
            "§1", "§A.1", "§C.1b", "§C.2", "§C.4", "§D.1", "§D.3", "§D.4", "§D.5", "§E"
        ]
    );
    assert_eq!(s.params["bundles"], json!(70));
    assert_eq!(s.params["invoice_amount"], json!("11000000"));
    assert_eq!(s.peer_env["SPHERE_CONSOLIDATE"], "${consolidate}");
    let env = s.resolved_peer_env(&Builtins::default()).unwrap();
    assert_eq!(env["SPHERE_CONSOLIDATE"], "off");
    let peers: Vec<&str> = s.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(peers, ["peer1", "peer2"]);
    for peer in ["peer1", "peer2"] {
        s.check_ops(peer, &sphere_peer_ops()).unwrap();
    }
    let d5 = s.sections.iter().find(|x| x.id.as_str() == "D.5").unwrap();
    let names: Vec<&str> = d5
        .steps
        .iter()
        .filter_map(|step| match &step.kind {
            StepKind::Assert(a) => Some(a.name.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        names,
        [
            "alice-peer1-before-vs-after",
            "alice-peer1-tokens",
            "bob-peer1-before-vs-after",
            "bob-peer1-tokens",
            "alice-peer1-vs-peer2-after",
            "bob-peer1-vs-peer2-after",
        ]
    );
    let all = assertion_names(&s);
    assert!(all.contains(&"supply-conserved"), "{all:?}");
}

/// The scenario's op sequence is e2e.rs's (support/scenario.rs
/// pay_and_sync, then clear_and_recover and check_ledgers), with the
/// documented differences: per-wallet order of the forced flushes and the
/// balance reads of §C.4.
#[test]
fn the_default_scenario_sends_the_ops_of_the_e2e_test_in_order() {
    let s = load_shipped("pay-sync-clear-recover.toml");
    let mut sent: Vec<String> = Vec::new();
    for (_, step) in s.steps() {
        match &step.kind {
            StepKind::Op(op) => {
                let wallet = op.args["wallet"].as_str().unwrap_or("-");
                let times = match &op.repeat {
                    Some(RepeatCount::Var(v)) => format!(" x${{{v}}}"),
                    Some(RepeatCount::Fixed(n)) => format!(" x{n}"),
                    None => String::new(),
                };
                sent.push(format!("{} {} {wallet}{times}", op.peer, op.op));
            }
            StepKind::Snapshot(snap) => sent.push(format!(
                "{} snapshot {} {}",
                snap.peer,
                snap.wallet,
                snap.ops.join("+")
            )),
            StepKind::Assert(_) => {}
        }
    }
    let expected = [
        "peer1 create_wallet alice",
        "peer1 create_wallet bob",
        "peer1 faucet alice",
        "peer1 flush alice",
        "peer1 faucet bob",
        "peer1 flush bob",
        "peer1 flush alice x${bundles}",
        "peer1 flush alice",
        "peer1 flush bob x${bundles}",
        "peer1 flush bob",
        "peer2 import_wallet alice",
        "peer2 sync alice",
        "peer2 receive alice",
        "peer1 balance alice",
        "peer2 balance alice",
        "peer2 import_wallet bob",
        "peer2 sync bob",
        "peer2 receive bob",
        "peer1 balance bob",
        "peer2 balance bob",
        "peer1 invoice_create alice",
        "peer1 invoice_deliver alice",
        "peer1 invoice_await bob",
        "peer1 flush alice",
        "peer1 flush bob",
        "peer1 sync bob",
        "peer1 invoice_pay bob",
        "peer1 flush bob",
        "peer1 receive alice",
        "peer2 invoice_await alice",
        "peer2 balance alice",
        "peer2 balance bob",
        "peer1 sync alice",
        "peer1 snapshot alice balance+tokens+invoice_list",
        "peer2 sync alice",
        "peer2 snapshot alice balance+tokens+invoice_list",
        "peer1 sync bob",
        "peer1 snapshot bob balance+tokens+invoice_list",
        "peer2 sync bob",
        "peer2 snapshot bob balance+tokens+invoice_list",
        "peer1 clear alice",
        "peer1 balance alice",
        "peer1 clear bob",
        "peer1 balance bob",
        "peer2 clear alice",
        "peer2 balance alice",
        "peer2 clear bob",
        "peer2 balance bob",
        "peer1 import_wallet alice",
        "peer1 snapshot alice balance+tokens+invoice_list",
        "peer1 import_wallet bob",
        "peer1 snapshot bob balance+tokens+invoice_list",
        "peer2 import_wallet alice",
        "peer2 snapshot alice balance+tokens+invoice_list",
        "peer2 import_wallet bob",
        "peer2 snapshot bob balance+tokens+invoice_list",
        "peer1 invoice_status alice",
        "peer1 invoice_status bob",
        "peer1 invoice_list alice",
        "peer1 invoice_list bob",
        "peer1 history bob",
        "peer1 history alice",
    ];
    assert_eq!(sent, expected);
}

#[test]
fn the_smoke_scenario_loads_and_uses_only_simple_ops() {
    let s = load_shipped("smoke.toml");
    // Exactly these ops: each one is needed, and nothing else is.
    let used = ["create_wallet", "faucet", "balance"].map(String::from);
    s.check_ops("peer1", &used).unwrap();
    for missing in &used {
        let fewer: Vec<String> = used.iter().filter(|op| *op != missing).cloned().collect();
        assert!(s.check_ops("peer1", &fewer).is_err(), "{missing} is used");
    }
    assert_eq!(assertion_names(&s), ["balance-is-the-minted-amount"]);
    assert_eq!(s.defaults.timeout.as_millis(), 10_000);
}

#[test]
fn overrides_keep_the_declared_type() {
    let path = repo_root().join("scenarios/pay-sync-clear-recover.toml");
    let s = Scenario::load(
        &path,
        &overrides(&[("bundles", "5"), ("invoice_amount", "22000000")]),
    )
    .unwrap();
    assert_eq!(s.params["bundles"], json!(5));
    assert_eq!(s.params["invoice_amount"], json!("22000000"));
    let s = Scenario::load(&path, &overrides(&[("bundles", "0")])).unwrap();
    assert_eq!(s.params["bundles"], json!(0), "0 repeats is allowed");
}

// ---------------------------------------------------------------- variables

#[test]
fn substitution_keeps_whole_values_typed_and_interpolates_text() {
    let mut captures = Captures::new();
    captures.set(
        "alice",
        json!({"mnemonic": "abandon ability", "address": "sphere:02ab"}),
    );
    captures.set(
        "before.alice.balance",
        json!({"coins": [{"symbol": "UCT", "confirmed": "100000000000000000000"}], "text": "UCT: 100 (1 token)"}),
    );
    let params = BTreeMap::from([("bundles".to_owned(), json!(70))]);
    let builtins = Builtins {
        iteration: 2,
        repeat_index: 4,
    };
    let template = json!({
        "mnemonic": "${alice.mnemonic}",
        "count": "${bundles}",
        "coin": "${before.alice.balance.coins.0}",
        "confirmed": "${before.alice.balance.coins.0.confirmed}",
        "label": "run ${iteration}/${repeat_index}: ${bundles} bundles for ${alice.address}",
        "list": ["${bundles}", {"nested": "${before.alice}"}],
        "plain": 3,
    });
    let got = substitute(&template, &captures, &params, &builtins).unwrap();
    assert_eq!(got["mnemonic"], json!("abandon ability"));
    assert_eq!(got["count"], json!(70), "a lone reference keeps its type");
    assert_eq!(
        got["coin"],
        json!({"symbol": "UCT", "confirmed": "100000000000000000000"})
    );
    assert_eq!(got["confirmed"], json!("100000000000000000000"));
    assert_eq!(got["label"], json!("run 2/4: 70 bundles for sphere:02ab"));
    assert_eq!(got["list"][0], json!(70));
    assert_eq!(
        got["list"][1]["nested"]["balance"]["text"],
        json!("UCT: 100 (1 token)")
    );
    assert_eq!(got["plain"], json!(3));
    let err = substitute(
        &json!("${before.alice.balance.coins.1}"),
        &captures,
        &params,
        &builtins,
    )
    .unwrap_err();
    assert!(err.to_string().contains("has 1 element(s)"), "{err}");
}

// ---------------------------------------------------------------- errors

/// Loads a fixture and checks the error: one line, `path:line:col:` with
/// the expected line, and the message naming the offending thing.
fn expect_error(name: &str, set: &[(&str, &str)], line: usize, needle: &str) -> ScenarioError {
    let path = fixture(name);
    let err = match Scenario::load(&path, &overrides(set)) {
        Ok(_) => panic!("{name} loaded but must fail with {needle:?}"),
        Err(err) => err,
    };
    let text = err.to_string();
    assert!(!text.contains('\n'), "{name}: not one line: {text}");
    let prefix = format!("{}:{line}:", path.display());
    assert!(
        text.starts_with(&prefix),
        "{name}: expected line {line}: {text}"
    );
    assert_eq!(err.location().map(|l| l.line), Some(line), "{name}: {text}");
    assert!(
        text.contains(needle),
        "{name}: expected {needle:?} in: {text}"
    );
    err
}

#[test]
fn malformed_scenarios_name_file_line_and_column() {
    #[rustfmt::skip]
    let cases: &[(&str, usize, &str)] = &[
        ("syntax-error.toml", 2, "TOML syntax: unclosed table, expected `]`"),
        ("duplicate-key.toml", 3, "TOML syntax: duplicate key"),
        ("missing-field.toml", 15, "missing field `peer` in an op step"),
        ("missing-name.toml", 1, "missing field `name` in the scenario"),
        ("bad-type.toml", 13, "`timeout_ms` in an op step must be a positive integer of milliseconds, not a string"),
        ("args-not-table.toml", 13, "`args` in an op step must be a table, not an array"),
        ("unknown-variable.toml", 18, "unknown variable `${bob.mnemonik}` (defined so far: alice, bundles, iteration, repeat_index, word)"),
        ("used-before-capture.toml", 13, "variable `${alice.mnemonic}` is used before it is captured (`alice` at line 18)"),
        ("unterminated-variable.toml", 13, "bad variable in `${word`: `${` without a closing `}`"),
        ("duplicate-section.toml", 16, "duplicate section id `1` (first at line 8)"),
        ("section-without-steps.toml", 15, "section §2 has no steps"),
        ("duplicate-assertion.toml", 21, "duplicate assertion name `same` (first at line 16)"),
        ("bad-assertion-kind.toml", 17, "unknown assertion kind `equals` (kinds: equal, approx, conservation, contains)"),
        ("conservation-without-total.toml", 15, "`conservation` assertion `supply` is missing `total`"),
        ("conservation-with-left.toml", 15, "`left` does not apply to a `conservation` assertion"),
        ("approx-bad-tolerance.toml", 15, "`tolerance` `a bit` is not a decimal amount"),
        ("unknown-peer.toml", 16, "unknown peer `peer3` (peers: peer1)"),
        ("repeat-not-integer.toml", 14, "`repeat` must be a non-negative integer or a single `${variable}`, not a float"),
        ("repeat-param-not-integer.toml", 14, "repeat `${word}` is `\"x\"`, not a non-negative integer"),
        ("unknown-step-field.toml", 13, "unknown field `tiemout_ms` in an op step (allowed: peer, op, args"),
        ("unknown-top-field.toml", 2, "unknown field `author` in the scenario"),
        ("two-step-kinds.toml", 13, "step has both `op` and `assert`"),
        ("no-step-kind.toml", 15, "step has none of `op`, `snapshot`, `assert`"),
        ("empty-sections.toml", 2, "the scenario has no sections"),
        ("bad-severity.toml", 18, "unknown severity `fatal` (severities: error, warning)"),
        ("duplicate-peer.toml", 5, "duplicate peer `peer1` (first at line 3)"),
        ("capture-hides-param.toml", 14, "capture `bundles.alice` would hide the param `${bundles}`"),
        ("peer-env-uses-capture.toml", 3, "unknown variable `${alice.fanout}` (defined so far: iteration, repeat_index)"),
        ("empty-snapshot-ops.toml", 19, "`ops` of a snapshot is empty"),
        ("expect-and-expect-error.toml", 15, "not both"),
    ];
    for (name, line, needle) in cases {
        expect_error(name, &[], *line, needle);
    }
    assert!(cases.len() >= 20);
}

#[test]
fn columns_point_at_the_offending_text() {
    let err = expect_error("syntax-error.toml", &[], 2, "unclosed table");
    assert_eq!(err.location().map(|l| l.column), Some(8));
    // At the `${` inside the inline table, not at the line's start.
    let err = expect_error("unknown-variable.toml", &[], 18, "bob.mnemonik");
    let line = "  args = { wallet = \"bob\", mnemonic = \"${bob.mnemonik}\" }";
    let column = line.find("${").map(|at| at + 1);
    assert_eq!(err.location().map(|l| l.column), column);
    let err = expect_error("unknown-step-field.toml", &[], 13, "tiemout_ms");
    assert_eq!(err.location().map(|l| l.column), Some(3));
}

#[test]
fn an_override_of_an_undeclared_param_lists_the_declared_ones() {
    expect_error(
        "valid.toml",
        &[("bundel", "5")],
        2,
        "cannot set `bundel=5`: the scenario declares no param `bundel` (declared params: bundles, word)",
    );
    expect_error(
        "valid.toml",
        &[("bundles", "many")],
        2,
        "cannot set `bundles=many`: param `bundles` is an integer (declared `3`)",
    );
}

#[test]
fn check_ops_names_the_first_step_using_an_op_the_peer_lacks() {
    let path = fixture("valid.toml");
    let s = Scenario::load(&path, &[]).unwrap();
    let known = ["hello", "create_wallet", "balance"].map(String::from);
    let err = s.check_ops("peer1", &known).unwrap_err();
    let text = err.to_string();
    assert_eq!(
        text,
        format!(
            "{}:22:8: op `faucet` is not offered by peer `peer1` (its ops: hello, create_wallet, balance)",
            path.display()
        )
    );
    s.check_ops("peer2", &known).unwrap();
}

#[test]
fn an_unreadable_file_says_so_in_one_line() {
    let err = Scenario::load(Path::new("no/such/scenario.toml"), &[]).unwrap_err();
    let text = err.to_string();
    assert!(
        text.starts_with("no/such/scenario.toml: cannot read the scenario file:"),
        "{text}"
    );
    assert!(!text.contains('\n'));
    assert_eq!(err.location(), None);
}

// ---------------------------------------------------------------- assertions

#[test]
fn the_shipped_peer_comparison_fails_with_the_design_diff_under_the_overwrite_bug() {
    let s = load_shipped("pay-sync-clear-recover.toml");
    let step = s
        .steps()
        .find_map(|(_, step)| match &step.kind {
            StepKind::Assert(a) if a.name == "bob-peer1-vs-peer2-after" => Some(a.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(step.kind(), AssertKind::Equal);
    assert_eq!(step.severity, Severity::Error);
    let mut captures = Captures::new();
    let balance = |text: &str| json!({"coins": [], "text": text});
    captures.set(
        "after.bob.balance",
        balance("UCT: 99.999999999989 (1 token)"),
    );
    captures.set(
        "peer2.bob.balance",
        balance("UCT: 199.999999999989 (2 tokens)"),
    );
    let out = evaluate(&step, &captures, &s.params);
    assert!(!out.passed && out.fails_run());
    assert_eq!(
        out.diff.as_deref(),
        Some("-UCT: 99.999999999989 (1 token)\n+UCT: 199.999999999989 (2 tokens)\n")
    );
    assert_eq!(
        out.report(),
        "ASSERT FAIL (bob-peer1-vs-peer2-after)\n-UCT: 99.999999999989 (1 token)\n+UCT: 199.999999999989 (2 tokens)\n"
    );
    captures.set(
        "peer2.bob.balance",
        balance("UCT: 99.999999999989 (1 token)"),
    );
    assert!(evaluate(&step, &captures, &s.params).passed);
}

#[test]
fn the_shipped_ledger_assertions_pass_on_the_expected_end_state() {
    let s = load_shipped("pay-sync-clear-recover.toml");
    let mut c = Captures::new();
    let wallet = |text: &str, confirmed: &str, tokens: Value, invoices: Value| {
        json!({
            "balance": {"coins": [{"symbol": "UCT", "confirmed": confirmed, "unconfirmed": "0", "tokens": 1}], "text": text},
            "tokens": {"tokens": tokens},
            "invoice_list": {"invoices": invoices},
        })
    };
    let invoice = |role: &str| json!([{"id": "inv1", "amount": "0.000000000011", "coin": "UCT", "state": "COVERED", "role": role, "paid": "0.000000000011"}]);
    let alice = wallet(
        "UCT: 100.000000000011 (2 tokens)",
        "100000000000011000000",
        json!(["t1", "t3"]),
        invoice("payee"),
    );
    let bob = wallet(
        "UCT: 99.999999999989 (1 token)",
        "99999999999989000000",
        json!(["t2"]),
        invoice("payer"),
    );
    for prefix in ["before", "peer2", "after", "after2"] {
        c.set(&format!("{prefix}.alice"), alice.clone());
        c.set(&format!("{prefix}.bob"), bob.clone());
    }
    c.set("ledger.alice", json!({"invoices": invoice("payee")}));
    c.set("ledger.bob", json!({"invoices": invoice("payer")}));
    let entry = json!({"transfer_id": "tx1", "amount": "11000000", "token_ids": ["t3"], "invoice_id": "inv1"});
    c.set(
        "history.bob",
        json!({"sent": [entry.clone()], "received": []}),
    );
    c.set("history.alice", json!({"sent": [], "received": [entry]}));
    let mut checked = 0;
    for (section, step) in s.steps() {
        let StepKind::Assert(a) = &step.kind else {
            continue;
        };
        if !matches!(section.id.as_str(), "D.5" | "E") {
            continue;
        }
        let out = evaluate(a, &c, &s.params);
        assert!(out.passed, "{}: {}\n{}", a.name, out.message, out.report());
        checked += 1;
    }
    assert_eq!(checked, 16);
    // A second SENT entry breaks `bob-sent-one-entry`; a lost token breaks
    // conservation.
    let two = json!({"sent": [{"transfer_id": "a"}, {"transfer_id": "b"}]});
    c.set("history.bob", two);
    c.set("after.bob.balance.coins.0", json!({"confirmed": "0"}));
    let failed: Vec<String> = s
        .steps()
        .filter_map(|(_, step)| match &step.kind {
            StepKind::Assert(a) if !evaluate(a, &c, &s.params).passed => Some(a.name.clone()),
            _ => None,
        })
        .collect();
    assert!(
        failed.contains(&"bob-sent-one-entry".to_owned()),
        "{failed:?}"
    );
    assert!(
        failed.contains(&"supply-conserved".to_owned()),
        "{failed:?}"
    );
}

#[test]
fn a_conservation_check_is_built_from_the_file() {
    let s = load_shipped("pay-sync-clear-recover.toml");
    let supply = s
        .steps()
        .find_map(|(_, step)| match &step.kind {
            StepKind::Assert(a) if a.name == "supply-conserved" => Some(a.check.clone()),
            _ => None,
        })
        .unwrap();
    let Check::Conservation { values, total } = supply else {
        panic!("supply-conserved is a conservation check");
    };
    assert_eq!(values.len(), 2);
    assert_eq!(total, json!("200000000000000000000"));
}

/// The names of a scenario's assertion steps, in document order.
fn assertion_names(s: &soakgate::scenario::model::Scenario) -> Vec<&str> {
    s.steps()
        .filter_map(|(_, step)| match &step.kind {
            soakgate::scenario::model::StepKind::Assert(assert) => Some(assert.name.as_str()),
            _ => None,
        })
        .collect()
}
