//! Each variant is a real code path: shown by what the SDK did (its perf
//! counters and end states), never by how long it took.

mod support;

use serde_json::{Value, json};
use support::{
    PeerProcess,
    scenario::{BOB_AFTER, Devices, pay_and_sync},
    testnet,
};

fn count(counters: &Value, name: &str) -> u64 {
    counters[name]["count"].as_u64().unwrap_or(0)
}

async fn counters(peer: &mut PeerProcess) -> Value {
    peer.ok("counters", json!({})).await["counters"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tombstone_overwrite_makes_bobs_second_device_resurrect_the_spent_token() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let overwrite = [("SPHERE_TOMBSTONE_MERGE", "overwrite")];
    let mut devices = Devices {
        peer1: PeerProcess::start(&testnet, &dir.path().join("p1"), &overwrite).await,
        peer2: PeerProcess::start(&testnet, &dir.path().join("p2"), &overwrite).await,
    };
    pay_and_sync(&mut devices, 0).await;
    let on_peer1 = devices.peer1.ok("balance", json!({"wallet": "bob"})).await;
    assert_eq!(on_peer1["text"], json!(BOB_AFTER));
    devices.peer2.ok("sync", json!({"wallet": "bob"})).await;
    let on_peer2 = devices.peer2.ok("balance", json!({"wallet": "bob"})).await;
    assert_eq!(on_peer2["text"], json!("UCT: 199.999999999989 (2 tokens)"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn union_merge_keeps_bobs_devices_in_agreement() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut devices = Devices {
        peer1: PeerProcess::start(&testnet, &dir.path().join("p1"), &[]).await,
        peer2: PeerProcess::start(&testnet, &dir.path().join("p2"), &[]).await,
    };
    pay_and_sync(&mut devices, 0).await;
    devices.peer2.ok("sync", json!({"wallet": "bob"})).await;
    let on_peer2 = devices.peer2.ok("balance", json!({"wallet": "bob"})).await;
    assert_eq!(on_peer2["text"], json!(BOB_AFTER));
}

/// HEAD-verify calls made by Bob's device for one payment, up to and
/// including the flush that publishes it.
async fn head_verifies_per_payment(write_path: &str) -> u64 {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let env = [("SPHERE_WRITE_PATH", write_path)];
    let mut devices = Devices {
        peer1: PeerProcess::start(&testnet, &dir.path().join("p1"), &env).await,
        peer2: PeerProcess::start(&testnet, &dir.path().join("p2"), &env).await,
    };
    // Everything up to the payment, then a second payment measured alone.
    pay_and_sync(&mut devices, 0).await;
    let peer1 = &mut devices.peer1;
    peer1.ok("flush", json!({"wallet": "bob"})).await;
    let invoice = peer1
        .ok(
            "invoice_create",
            json!({"wallet": "alice", "amount": "1", "coin": "UCT"}),
        )
        .await["invoice_id"]
        .clone();
    peer1
        .ok(
            "invoice_deliver",
            json!({"wallet": "alice", "invoice_id": invoice, "to": "bob"}),
        )
        .await;
    peer1
        .ok(
            "invoice_await",
            json!({"wallet": "bob", "invoice_id": invoice, "timeout_ms": 30000}),
        )
        .await;
    peer1.ok("flush", json!({"wallet": "bob"})).await;
    let before = count(&counters(peer1).await, "head_verify");
    peer1
        .ok(
            "invoice_pay",
            json!({"wallet": "bob", "invoice_id": invoice}),
        )
        .await;
    peer1.ok("flush", json!({"wallet": "bob"})).await;
    count(&counters(peer1).await, "head_verify") - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn per_write_verifies_every_write_where_flush_verifies_once() {
    let per_write = head_verifies_per_payment("per-write").await;
    let flush = head_verifies_per_payment("flush").await;
    assert!(per_write >= 10, "per-write made {per_write} HEAD-verifies");
    assert!(flush <= 2, "flush made {flush} HEAD-verifies");
}

/// Proof verifications made by a fresh device loading a wallet with about
/// `bundles` active bundles, under `proof_check`.
async fn verifications_on_load(bundles: usize, proof_check: &str) -> (u64, u64) {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut writer = PeerProcess::start(
        &testnet,
        &dir.path().join("w"),
        &[("SPHERE_CONSOLIDATE", "off")],
    )
    .await;
    let created = writer.ok("create_wallet", json!({"wallet": "carol"})).await;
    writer
        .ok("faucet", json!({"wallet": "carol", "amount": "5"}))
        .await;
    let mut active = 0;
    for _ in 0..bundles {
        active = writer
            .ok("flush", json!({"wallet": "carol", "force": true}))
            .await["active_bundles"]
            .as_u64()
            .unwrap();
    }
    let mut reader = PeerProcess::start(
        &testnet,
        &dir.path().join("r"),
        &[("SPHERE_PROOF_CHECK", proof_check)],
    )
    .await;
    reader
        .ok(
            "import_wallet",
            json!({"wallet": "carol", "mnemonic": created["mnemonic"], "nostr": false}),
        )
        .await;
    let balance = reader.ok("balance", json!({"wallet": "carol"})).await;
    assert_eq!(balance["text"], json!("UCT: 5 (1 token)"));
    (
        active,
        count(&counters(&mut reader).await, "verify_proofs.verify"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pairwise_checks_every_pair_of_bundles_where_across_checks_each_proof_once() {
    let (b, pairwise) = verifications_on_load(10, "pairwise").await;
    let (_, across) = verifications_on_load(10, "across").await;
    // One token with one proof per bundle: each pair re-verifies both sides.
    assert_eq!(b, 10);
    assert_eq!(pairwise, b * (b - 1) / 2 * 2);
    assert_eq!(across, 1);
}

/// 429s met by a device pinning through a tight gateway bucket.
async fn gateway_429s(fanout: &str) -> u64 {
    // A bucket of 6 refilled at one per second of unscaled time (20 per
    // second at this time scale): a flush's ten block puts in flight at once
    // overflow it; the same flush's four or five requests one at a time,
    // spread over its pointer round trips, never do. No propagation delay,
    // so HEAD-verify adds one request per CID and no polling.
    let testnet = testnet(&[
        "gateway.rate_limit={ per_second = 1.0, burst = 6 }",
        "gateway.propagation_ms=0",
    ])
    .await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(
        &testnet,
        &dir.path().join("p"),
        &[("SPHERE_FANOUT", fanout)],
    )
    .await;
    peer.ok("create_wallet", json!({"wallet": "dave"})).await;
    peer.ok("faucet", json!({"wallet": "dave", "amount": "1"}))
        .await;
    for _ in 0..3 {
        peer.ok("flush", json!({"wallet": "dave", "force": true}))
            .await;
    }
    count(&counters(&mut peer).await, "gateway.429")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fanout_eight_meets_rate_limits_that_fanout_one_never_meets() {
    assert!(gateway_429s("8").await > 0);
    assert_eq!(gateway_429s("1").await, 0);
}
