//! Crash safety: a `sphere-peer` killed with SIGKILL in the middle of
//! `invoice_pay` (the payer) or `receive` (the payee), restarted on the same
//! data dir and synced, loses no token and doubles none.
//!
//! Each test runs one uninterrupted calibration round (its duration sets the
//! scale), then [`ROUNDS`] rounds whose kill points are spread evenly over
//! `[0, 1.2 x calibration]`, each on fresh wallets. After every restart:
//! - the payer is either untouched (`UCT: 100 (1 token)`) or has paid
//!   (`UCT: 99.999999999989 (1 token)`), never anything in between, and has
//!   paid for sure if the peer answered before it was killed;
//! - the payee converges to the matching state, the two balances sum to
//!   exactly 200 UCT (supply conserved) and no token id is held twice;
//! - an untouched payer can still pay (so its token was not secretly spent
//!   by a payment the restart failed to resume);
//! - a payee killed mid-`receive` ends with the payment exactly once, even
//!   after the relay replays the transfer.

mod support;

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sphere_testnet::RunningTestnet;
use support::{PeerProcess, testnet};

const START: &str = "UCT: 100 (1 token)";
const BOB_PAID: &str = "UCT: 99.999999999989 (1 token)";
const ALICE_PAID: &str = "UCT: 100.000000000011 (2 tokens)";
/// 200 UCT in base units (18 decimals).
const SUPPLY: u128 = 200 * 1_000_000_000_000_000_000;
/// Kill rounds per test, after the calibration round.
const ROUNDS: u32 = 10;
/// The id of the request the peer is killed during (never reused).
const KILLED_ID: u64 = 1 << 40;

/// One round's wallets: Alice invoices Bob.
struct Round {
    alice: String,
    bob: String,
    alice_mnemonic: Value,
    bob_mnemonic: Value,
    invoice: String,
}

/// Fresh `alice-k` and `bob-k` with 100 UCT each; Alice's invoice for
/// 11000000 base units is delivered to Bob and visible to him.
async fn setup(alice_peer: &mut PeerProcess, bob_peer: &mut PeerProcess, k: u32) -> Round {
    let (alice, bob) = (format!("alice-{k}"), format!("bob-{k}"));
    let a = alice_peer
        .ok(
            "create_wallet",
            json!({"wallet": alice, "nametag": format!("a{k}")}),
        )
        .await;
    let b = bob_peer
        .ok(
            "create_wallet",
            json!({"wallet": bob, "nametag": format!("b{k}")}),
        )
        .await;
    for (peer, wallet) in [(&mut *alice_peer, &alice), (&mut *bob_peer, &bob)] {
        let args = json!({"wallet": wallet, "coin": "UCT", "amount": "100"});
        peer.ok("faucet", args).await;
        peer.ok("flush", json!({"wallet": wallet})).await;
    }
    let invoice = alice_peer
        .ok(
            "invoice_create",
            json!({"wallet": alice, "amount": "11000000", "unit": "base", "coin": "UCT"}),
        )
        .await["invoice_id"]
        .as_str()
        .expect("invoice id")
        .to_owned();
    let to = format!("b{k}");
    let args = json!({"wallet": alice, "invoice_id": invoice, "to": to});
    assert_eq!(
        alice_peer.ok("invoice_deliver", args).await["delivered"],
        json!(true)
    );
    let args = json!({"wallet": bob, "invoice_id": invoice, "timeout_ms": 30000});
    assert_eq!(
        bob_peer.ok("invoice_await", args).await["visible"],
        json!(true)
    );
    Round {
        alice,
        bob,
        alice_mnemonic: a["mnemonic"].clone(),
        bob_mnemonic: b["mnemonic"].clone(),
        invoice,
    }
}

/// Sends `op` without waiting for it, waits for its answer at most `delay`
/// (forever with `None`, not at all with zero), then SIGKILLs the peer.
/// Returns the answer if it came first, and when the kill happened.
async fn kill_during(
    mut peer: PeerProcess,
    op: &str,
    args: Value,
    delay: Option<Duration>,
) -> (Option<Value>, Duration) {
    let line = json!({"id": KILLED_ID, "op": op, "args": args}).to_string() + "\n";
    let started = Instant::now();
    peer.send_raw(&line).await;
    let answer = match delay {
        None => Some(peer.read_response().await),
        Some(Duration::ZERO) => None,
        Some(delay) => tokio::select! {
            answer = peer.read_response() => Some(answer),
            () = tokio::time::sleep(delay) => None,
        },
    };
    let killed_at = started.elapsed();
    if let Some(answer) = &answer {
        assert_eq!(answer["id"], json!(KILLED_ID), "{answer}");
        assert_eq!(answer["ok"], json!(true), "{op} before the kill: {answer}");
    }
    peer.child.start_kill().expect("SIGKILL the peer");
    let status = peer.child.wait().await.expect("reap the peer");
    assert!(
        !status.success(),
        "the peer was killed, not exited: {status}"
    );
    (answer, killed_at)
}

/// A new peer on `dir`, reopening `wallet` from its mnemonic (local state
/// first, which resumes interrupted payments), then synced.
async fn restart(
    testnet: &RunningTestnet,
    dir: &std::path::Path,
    wallet: &str,
    mnemonic: &Value,
) -> PeerProcess {
    let mut peer = PeerProcess::start(testnet, dir, &[]).await;
    let args = json!({"wallet": wallet, "mnemonic": mnemonic});
    peer.ok("import_wallet", args).await;
    peer.ok("sync", json!({"wallet": wallet})).await;
    peer
}

/// The balance text and the confirmed UCT in base units.
async fn balance(peer: &mut PeerProcess, wallet: &str) -> (String, u128) {
    let balance = peer.ok("balance", json!({"wallet": wallet})).await;
    let confirmed = balance["coins"]
        .as_array()
        .expect("coins")
        .iter()
        .filter(|c| c["symbol"] == json!("UCT"))
        .map(|c| {
            let base = c["confirmed"].as_str().expect("base-unit string");
            base.parse::<u128>().expect("base units")
        })
        .sum();
    let text = balance["text"].as_str().expect("text").to_owned();
    (text, confirmed)
}

/// Receives (finalized) and syncs until `wallet` shows `want`, a few times;
/// returns the last balance text.
async fn settle(peer: &mut PeerProcess, wallet: &str, want: &str) -> String {
    let mut text = String::new();
    for _ in 0..20 {
        let args = json!({"wallet": wallet, "finalize": true});
        peer.ok("receive", args).await;
        peer.ok("sync", json!({"wallet": wallet})).await;
        text = balance(peer, wallet).await.0;
        if text == want {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    text
}

/// Supply conserved (200 UCT between the two) and no token held twice.
async fn check_conserved(
    tag: &str,
    alice: (&mut PeerProcess, &str),
    bob: (&mut PeerProcess, &str),
) {
    let mut total = 0;
    let mut ids = Vec::new();
    for (peer, wallet) in [alice, bob] {
        total += balance(peer, wallet).await.1;
        let tokens = peer.ok("tokens", json!({"wallet": wallet})).await["tokens"].clone();
        for token in tokens.as_array().expect("tokens") {
            ids.push(token["id"].as_str().expect("token id").to_owned());
        }
    }
    assert_eq!(total, SUPPLY, "{tag}: supply not conserved");
    let count = ids.len();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), count, "{tag}: a token is held twice");
}

/// Round `k`'s kill delay: none for the calibration round 0, then evenly
/// spread over `[0, 1.2 x calibration]`.
fn kill_delay(k: u32, calibration: Option<Duration>) -> Option<Duration> {
    let scale = 1.2 * f64::from(k.saturating_sub(1)) / f64::from(ROUNDS - 1);
    calibration.map(|t| t.mul_f64(scale))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payer_killed_during_invoice_pay_pays_once_or_not_at_all() {
    let started = Instant::now();
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut alice_peer = PeerProcess::start(&testnet, &dir.path().join("alice"), &[]).await;
    let (mut calibration, mut paid_rounds) = (None, 0);
    for k in 0..=ROUNDS {
        let bob_dir = dir.path().join(format!("bob-{k}"));
        let mut bob_peer = PeerProcess::start(&testnet, &bob_dir, &[]).await;
        let r = setup(&mut alice_peer, &mut bob_peer, k).await;
        bob_peer.ok("sync", json!({"wallet": r.bob})).await;
        let delay = kill_delay(k, calibration);
        let pay = json!({"wallet": r.bob, "invoice_id": r.invoice});
        let (answer, killed_at) = kill_during(bob_peer, "invoice_pay", pay.clone(), delay).await;
        calibration = calibration.or(Some(killed_at));
        let mut bob_peer = restart(&testnet, &bob_dir, &r.bob, &r.bob_mnemonic).await;
        let bob_text = balance(&mut bob_peer, &r.bob).await.0;
        let paid = bob_text == BOB_PAID;
        let tag = format!(
            "pay round {k} (kill at {killed_at:?}, answered: {})",
            answer.is_some()
        );
        eprintln!("{tag}: bob after restart: {bob_text}");
        assert!(paid || bob_text == START, "{tag}: bob is half-paid");
        assert!(
            paid || answer.is_none(),
            "{tag}: an answered payment was lost"
        );
        let alice_want = if paid { ALICE_PAID } else { START };
        let alice_text = settle(&mut alice_peer, &r.alice, alice_want).await;
        assert_eq!(alice_text, alice_want, "{tag}: alice does not match bob");
        check_conserved(&tag, (&mut alice_peer, &r.alice), (&mut bob_peer, &r.bob)).await;
        if paid {
            paid_rounds += 1;
        } else {
            // The token Bob kept must really be his to spend.
            bob_peer.ok("invoice_pay", pay).await;
            assert_eq!(balance(&mut bob_peer, &r.bob).await.0, BOB_PAID, "{tag}");
            let alice_text = settle(&mut alice_peer, &r.alice, ALICE_PAID).await;
            assert_eq!(alice_text, ALICE_PAID, "{tag}: the second payment");
            check_conserved(&tag, (&mut alice_peer, &r.alice), (&mut bob_peer, &r.bob)).await;
        }
        let args = json!({"wallet": r.alice, "invoice_id": r.invoice});
        let state = alice_peer.ok("invoice_status", args).await;
        assert_eq!(state["state"], json!("COVERED"), "{tag}");
        let outcome = if paid {
            "paid"
        } else {
            "not paid, then re-paid"
        };
        eprintln!("{tag}: {outcome}");
        assert!(bob_peer.shutdown().await.success());
    }
    eprintln!(
        "invoice_pay: {paid_rounds} of {} rounds paid across the kill, {:?} in all",
        ROUNDS + 1,
        started.elapsed()
    );
    assert!(alice_peer.shutdown().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_payee_killed_during_receive_gets_the_payment_exactly_once() {
    let started = Instant::now();
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut bob_peer = PeerProcess::start(&testnet, &dir.path().join("bob"), &[]).await;
    let (mut calibration, mut kept_rounds) = (None, 0);
    for k in 0..=ROUNDS {
        let alice_dir = dir.path().join(format!("alice-{k}"));
        let mut alice_peer = PeerProcess::start(&testnet, &alice_dir, &[]).await;
        let r = setup(&mut alice_peer, &mut bob_peer, k).await;
        let pay = json!({"wallet": r.bob, "invoice_id": r.invoice});
        bob_peer.ok("invoice_pay", pay).await;
        assert_eq!(balance(&mut bob_peer, &r.bob).await.0, BOB_PAID);
        let delay = kill_delay(k, calibration);
        let receive = json!({"wallet": r.alice, "finalize": true});
        let (answer, killed_at) = kill_during(alice_peer, "receive", receive, delay).await;
        calibration = calibration.or(Some(killed_at));
        let mut alice_peer = restart(&testnet, &alice_dir, &r.alice, &r.alice_mnemonic).await;
        let tag = format!(
            "receive round {k} (kill at {killed_at:?}, answered: {})",
            answer.is_some()
        );
        let restarted = balance(&mut alice_peer, &r.alice).await.0;
        eprintln!("{tag}: alice after restart: {restarted}");
        let kept = restarted == ALICE_PAID;
        assert!(kept || restarted == START, "{tag}: alice is half-received");
        assert!(
            kept || answer.is_none(),
            "{tag}: a finalized receive was lost"
        );
        kept_rounds += usize::from(kept);
        // Receive again, then once more: the relay replays the transfer.
        for _ in 0..2 {
            let args = json!({"wallet": r.alice, "finalize": true});
            alice_peer.ok("receive", args).await;
            alice_peer.ok("sync", json!({"wallet": r.alice})).await;
            let text = balance(&mut alice_peer, &r.alice).await.0;
            assert_eq!(text, ALICE_PAID, "{tag}: after receiving again");
        }
        let history = alice_peer.ok("history", json!({"wallet": r.alice})).await;
        let received = history["received"].as_array().expect("received").len();
        assert_eq!(received, 1, "{tag}: {history}");
        check_conserved(&tag, (&mut alice_peer, &r.alice), (&mut bob_peer, &r.bob)).await;
        let outcome = if kept {
            "kept across the kill"
        } else {
            "received again"
        };
        eprintln!("{tag}: {outcome}");
        assert!(alice_peer.shutdown().await.success());
    }
    eprintln!(
        "receive: {kept_rounds} of {} rounds kept the payment across the kill, {:?} in all",
        ROUNDS + 1,
        started.elapsed()
    );
    assert!(bob_peer.shutdown().await.success());
}
