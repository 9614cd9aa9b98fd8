//! The scenario's steps as functions, shared by the end-to-end tests.

use serde_json::{Value, json};

use super::PeerProcess;

pub const BOB_AFTER: &str = "UCT: 99.999999999989 (1 token)";
pub const ALICE_AFTER: &str = "UCT: 100.000000000011 (2 tokens)";

/// Peer1 and peer2, each hosting one device of Alice and of Bob.
pub struct Devices {
    pub peer1: PeerProcess,
    pub peer2: PeerProcess,
}

/// §1 to §C.4: set up both wallets on both devices, invoice, pay, sync.
/// Returns the invoice id and each wallet's mnemonic.
pub async fn pay_and_sync(devices: &mut Devices, bundles: usize) -> (String, Value) {
    let Devices { peer1, peer2 } = devices;
    // §1 peer1 setup
    let alice = peer1
        .ok(
            "create_wallet",
            json!({"wallet": "alice", "nametag": "alice"}),
        )
        .await;
    let bob = peer1
        .ok("create_wallet", json!({"wallet": "bob", "nametag": "bob"}))
        .await;
    for wallet in ["alice", "bob"] {
        peer1
            .ok(
                "faucet",
                json!({"wallet": wallet, "coin": "UCT", "amount": "100"}),
            )
            .await;
        peer1.ok("flush", json!({"wallet": wallet})).await;
    }
    // Each wallet leaves its bundles unpublished, then one flush publishes
    // and HEAD-verifies them all (the scenario file's §1).
    for _ in 0..bundles {
        for wallet in ["alice", "bob"] {
            peer1
                .ok(
                    "flush",
                    json!({"wallet": wallet, "force": true, "publish": false}),
                )
                .await;
        }
    }
    for wallet in ["alice", "bob"] {
        peer1.ok("flush", json!({"wallet": wallet})).await;
    }
    // §A.1 peer2 imports both from their mnemonics
    for (wallet, created) in [("alice", &alice), ("bob", &bob)] {
        let imported = peer2
            .ok(
                "import_wallet",
                json!({"wallet": wallet, "mnemonic": created["mnemonic"]}),
            )
            .await;
        assert_eq!(imported["address"], created["address"]);
        peer2.ok("sync", json!({"wallet": wallet})).await;
        peer2
            .ok("receive", json!({"wallet": wallet, "finalize": true}))
            .await;
        let on_peer1 = peer1.ok("balance", json!({"wallet": wallet})).await;
        let on_peer2 = peer2.ok("balance", json!({"wallet": wallet})).await;
        assert_eq!(on_peer1["text"], on_peer2["text"]);
        assert_eq!(on_peer2["text"], json!("UCT: 100 (1 token)"));
    }
    // §C.1b deliver invoice
    let invoice = peer1
        .ok(
            "invoice_create",
            json!({"wallet": "alice", "amount": "11000000", "unit": "base", "coin": "UCT"}),
        )
        .await["invoice_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivered = peer1
        .ok(
            "invoice_deliver",
            json!({"wallet": "alice", "invoice_id": invoice, "to": "bob"}),
        )
        .await;
    assert_eq!(delivered["delivered"], json!(true));
    let seen = peer1
        .ok(
            "invoice_await",
            json!({"wallet": "bob", "invoice_id": invoice, "timeout_ms": 30000}),
        )
        .await;
    assert_eq!(seen["visible"], json!(true));
    // The invoice is a write on both sides: make it durable here rather
    // than let a debounced flush land in §C.2 in some runs only.
    peer1.ok("flush", json!({"wallet": "alice"})).await;
    peer1.ok("flush", json!({"wallet": "bob"})).await;
    // §C.2 Bob pays
    peer1.ok("sync", json!({"wallet": "bob"})).await;
    peer1
        .ok(
            "invoice_pay",
            json!({"wallet": "bob", "invoice_id": invoice}),
        )
        .await;
    // Bob's other device sees the payment after his next flush; don't race
    // the debounce.
    peer1.ok("flush", json!({"wallet": "bob"})).await;
    peer1
        .ok("receive", json!({"wallet": "alice", "finalize": true}))
        .await;
    // §C.4 cross-device sync
    let covered = peer2
        .ok(
            "invoice_await",
            json!({"wallet": "alice", "invoice_id": invoice, "timeout_ms": 60000, "state": "COVERED"}),
        )
        .await;
    assert_eq!(covered["visible"], json!(true));
    let mnemonics = json!({"alice": alice["mnemonic"], "bob": bob["mnemonic"]});
    (invoice, mnemonics)
}
