//! The §1–§E scenario end to end through the peer protocol: one testnet,
//! two `sphere-peer` processes, each hosting a device of Alice and of Bob.

mod support;

use serde_json::{Value, json};
use support::{
    PeerProcess, capture,
    scenario::{ALICE_AFTER, BOB_AFTER, Devices, pay_and_sync},
    testnet,
};

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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recovery_at_seventy_active_bundles_equals_the_pre_clear_state() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let no_consolidation = [("SPHERE_CONSOLIDATE", "off")];
    let mut devices = Devices {
        peer1: PeerProcess::start(&testnet, &dir.path().join("peer1"), &no_consolidation).await,
        peer2: PeerProcess::start(&testnet, &dir.path().join("peer2"), &no_consolidation).await,
    };
    let (invoice, mnemonics) = pay_and_sync(&mut devices, 70).await;
    let flushed = devices
        .peer1
        .ok("flush", json!({"wallet": "alice", "force": true}))
        .await;
    assert!(
        flushed["active_bundles"].as_u64().unwrap() >= 70,
        "{flushed}"
    );
    let before = clear_and_recover(&mut devices, &mnemonics).await;
    assert_eq!(before["bob"]["balance"], json!(BOB_AFTER));
    assert_eq!(before["alice"]["balance"], json!(ALICE_AFTER));
    check_ledgers(&mut devices, &invoice).await;
}
