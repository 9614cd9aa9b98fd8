//! The §1–§E scenario end to end through the peer protocol: one testnet,
//! two `sphere-peer` processes, each hosting a device of Alice and of Bob.

mod support;

use serde_json::{Value, json};
use support::{PeerProcess, capture, testnet};

const BOB_AFTER: &str = "UCT: 99.999999999989 (1 token)";
const ALICE_AFTER: &str = "UCT: 100.000000000011 (2 tokens)";

struct Devices {
    peer1: PeerProcess,
    peer2: PeerProcess,
}

/// §1 to §C.4: set up both wallets on both devices, invoice, pay, sync.
/// Returns the invoice id and each wallet's mnemonic.
async fn pay_and_sync(devices: &mut Devices, bundles: usize) -> (String, Value) {
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
    for _ in 0..bundles {
        for wallet in ["alice", "bob"] {
            peer1
                .ok("flush", json!({"wallet": wallet, "force": true}))
                .await;
        }
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
    // §C.2 Bob pays
    peer1.ok("sync", json!({"wallet": "bob"})).await;
    peer1
        .ok(
            "invoice_pay",
            json!({"wallet": "bob", "invoice_id": invoice}),
        )
        .await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pay_sync_clear_recover_gives_the_expected_end_state_on_both_devices() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut devices = Devices {
        peer1: PeerProcess::start(&testnet, &dir.path().join("peer1"), &[]).await,
        peer2: PeerProcess::start(&testnet, &dir.path().join("peer2"), &[]).await,
    };
    let hello = devices.peer1.ok("hello", json!({})).await;
    assert_eq!(hello["variant"]["tombstone_merge"], json!("union"));
    assert_eq!(hello["secrets"], json!(["mnemonic"]));

    let (invoice, mnemonics) = pay_and_sync(&mut devices, 0).await;
    let before = clear_and_recover(&mut devices, &mnemonics).await;
    assert_eq!(before["bob"]["balance"], json!(BOB_AFTER));
    assert_eq!(before["alice"]["balance"], json!(ALICE_AFTER));
    check_ledgers(&mut devices, &invoice).await;
    let counters = devices.peer1.ok("counters", json!({})).await["counters"].clone();
    assert!(
        counters["flush"]["count"].as_u64().unwrap() >= 2,
        "{counters}"
    );
    assert!(
        counters["verify_proofs.verify"]["count"].as_u64().unwrap() >= 1,
        "{counters}"
    );
    for peer in [devices.peer1, devices.peer2] {
        assert!(peer.shutdown().await.success());
    }
}

/// §D.1 to §D.5: snapshot on peer1, compare with peer2, clear all four
/// wallets, recover each from its mnemonic with no Nostr, and compare.
/// Returns the pre-clear captures.
async fn clear_and_recover(devices: &mut Devices, mnemonics: &Value) -> Value {
    let Devices { peer1, peer2 } = devices;
    let mut before = serde_json::Map::new();
    for wallet in ["alice", "bob"] {
        peer1.ok("sync", json!({"wallet": wallet})).await;
        before.insert(wallet.to_owned(), capture(peer1, wallet).await);
        peer2.ok("sync", json!({"wallet": wallet})).await;
        let on_peer2 = capture(peer2, wallet).await;
        assert_eq!(
            on_peer2, before[wallet],
            "{wallet}: peer2 differs from peer1 before clear"
        );
    }
    for peer in [&mut *peer1, &mut *peer2] {
        for wallet in ["alice", "bob"] {
            peer.ok("clear", json!({"wallet": wallet})).await;
            let gone = peer.request("balance", json!({"wallet": wallet})).await;
            assert_eq!(gone["error"]["kind"], json!("unknown_wallet"), "{gone}");
        }
    }
    for peer in [&mut *peer1, &mut *peer2] {
        for wallet in ["alice", "bob"] {
            peer.ok(
                "import_wallet",
                json!({"wallet": wallet, "mnemonic": mnemonics[wallet], "nostr": false}),
            )
            .await;
            let after = capture(peer, wallet).await;
            assert_eq!(
                after, before[wallet],
                "{wallet}: recovered state differs from pre-clear"
            );
        }
    }
    Value::Object(before)
}

/// §E: both sides agree on the invoice, and Bob's SENT ledger matches
/// Alice's received history.
async fn check_ledgers(devices: &mut Devices, invoice: &str) {
    let peer1 = &mut devices.peer1;
    for wallet in ["alice", "bob"] {
        let state = peer1
            .ok(
                "invoice_status",
                json!({"wallet": wallet, "invoice_id": invoice}),
            )
            .await;
        assert_eq!(state["state"], json!("COVERED"), "{wallet}");
    }
    let alice_list = peer1.ok("invoice_list", json!({"wallet": "alice"})).await["invoices"].clone();
    let bob_list = peer1.ok("invoice_list", json!({"wallet": "bob"})).await["invoices"].clone();
    for field in ["id", "amount", "coin", "state", "paid"] {
        assert_eq!(alice_list[0][field], bob_list[0][field], "{field}");
    }
    let sent = peer1.ok("history", json!({"wallet": "bob"})).await["sent"].clone();
    let received = peer1.ok("history", json!({"wallet": "alice"})).await["received"].clone();
    assert_eq!(sent.as_array().unwrap().len(), 1, "{sent}");
    for field in ["transfer_id", "amount", "token_ids", "invoice_id"] {
        assert_eq!(sent[0][field], received[0][field], "{field}");
    }
}
