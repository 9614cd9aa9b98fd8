//! Joining a wallet from its mnemonic: with Nostr, the tokens come from the
//! relay's backup of the latest pointer version and no bundle is fetched;
//! without Nostr, or when that version has no backup, every active bundle
//! is fetched and checked. Both end with the balance the writing device has.
//! A joined device acknowledges a transfer its other device already took in
//! once it has seen it, rather than taking it up again at every receive.

mod support;

use serde_json::{Value, json};
use support::{
    PeerProcess,
    scenario::{Devices, pay_and_sync},
    testnet,
};

/// Active bundles the writing device leaves before publishing.
const BUNDLES: usize = 6;

/// Keeps every bundle active, as the soak scenario does.
const NO_CONSOLIDATION: [(&str, &str); 1] = [("SPHERE_CONSOLIDATE", "off")];

fn count(counters: &Value, name: &str) -> u64 {
    counters[name]["count"].as_u64().unwrap_or(0)
}

/// The full load: every active bundle fetched, and checked together once.
fn assert_every_bundle_read(counters: &Value) {
    assert!(count(counters, "fetch_car") > BUNDLES as u64, "{counters}");
    assert_eq!(count(counters, "verify_proofs"), 1, "{counters}");
}

/// Alice on `writer` with a faucet token and [`BUNDLES`] + 1 active bundles,
/// all published; returns her mnemonic and balance text.
async fn alice_with_bundles(writer: &mut PeerProcess) -> (String, Value) {
    let alice = writer
        .ok(
            "create_wallet",
            json!({"wallet": "alice", "nametag": "alice"}),
        )
        .await;
    writer
        .ok(
            "faucet",
            json!({"wallet": "alice", "coin": "UCT", "amount": "100"}),
        )
        .await;
    writer.ok("flush", json!({"wallet": "alice"})).await;
    for _ in 0..BUNDLES {
        writer
            .ok(
                "flush",
                json!({"wallet": "alice", "force": true, "publish": false}),
            )
            .await;
    }
    writer.ok("flush", json!({"wallet": "alice"})).await;
    let balance = writer.ok("balance", json!({"wallet": "alice"})).await;
    (
        alice["mnemonic"].as_str().expect("mnemonic").to_owned(),
        balance["text"].clone(),
    )
}

/// Imports Alice in a fresh peer process and returns its balance text and
/// counters (the process's own, so only this import's).
async fn import_alice(
    testnet: &sphere_testnet::RunningTestnet,
    dir: &std::path::Path,
    mnemonic: &str,
    nostr: bool,
) -> (Value, Value) {
    let mut peer = PeerProcess::start(testnet, dir, &NO_CONSOLIDATION).await;
    peer.ok(
        "import_wallet",
        json!({"wallet": "alice", "mnemonic": mnemonic, "nostr": nostr}),
    )
    .await;
    let balance = peer.ok("balance", json!({"wallet": "alice"})).await["text"].clone();
    let counters = peer.ok("counters", json!({})).await["counters"].clone();
    assert!(peer.shutdown().await.success());
    (balance, counters)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_joining_with_nostr_takes_the_tokens_from_the_relay_backup() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut writer =
        PeerProcess::start(&testnet, &dir.path().join("writer"), &NO_CONSOLIDATION).await;
    let (mnemonic, written) = alice_with_bundles(&mut writer).await;
    assert!(writer.shutdown().await.success());

    let (balance, counters) =
        import_alice(&testnet, &dir.path().join("joiner"), &mnemonic, true).await;
    assert_eq!(balance, written);
    assert_eq!(count(&counters, "load.token_backup"), 1, "{counters}");
    // The snapshot only: no bundle is fetched and no cross-check is run.
    assert_eq!(count(&counters, "fetch_car"), 1, "{counters}");
    assert_eq!(count(&counters, "verify_proofs"), 0, "{counters}");

    // Recovery without Nostr never asks the relay and checks every bundle.
    let (balance, counters) =
        import_alice(&testnet, &dir.path().join("recovered"), &mnemonic, false).await;
    assert_eq!(balance, written);
    assert_eq!(count(&counters, "load.token_backup"), 0, "{counters}");
    assert_every_bundle_read(&counters);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pointer_version_without_a_backup_makes_the_join_fetch_every_bundle() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut writer =
        PeerProcess::start(&testnet, &dir.path().join("writer"), &NO_CONSOLIDATION).await;
    let (mnemonic, _) = alice_with_bundles(&mut writer).await;
    assert!(writer.shutdown().await.success());

    // A device without Nostr publishes the next version, and so no backup
    // of it: the relay's newest backup is one version behind.
    let mut offline =
        PeerProcess::start(&testnet, &dir.path().join("offline"), &NO_CONSOLIDATION).await;
    offline
        .ok(
            "import_wallet",
            json!({"wallet": "alice", "mnemonic": mnemonic, "nostr": false}),
        )
        .await;
    offline
        .ok(
            "faucet",
            json!({"wallet": "alice", "coin": "UCT", "amount": "1"}),
        )
        .await;
    offline.ok("flush", json!({"wallet": "alice"})).await;
    let written = offline.ok("balance", json!({"wallet": "alice"})).await["text"].clone();
    assert!(offline.shutdown().await.success());

    let (balance, counters) =
        import_alice(&testnet, &dir.path().join("joiner"), &mnemonic, true).await;
    assert_eq!(balance, written, "the stale backup's tokens were taken");
    assert_eq!(count(&counters, "load.token_backup"), 1, "{counters}");
    assert_every_bundle_read(&counters);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_already_synced_is_acknowledged_without_a_flush() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut devices = Devices {
        peer1: PeerProcess::start(&testnet, &dir.path().join("peer1"), &NO_CONSOLIDATION).await,
        peer2: PeerProcess::start(&testnet, &dir.path().join("peer2"), &NO_CONSOLIDATION).await,
    };
    // Through §C.4: peer1's Alice took Bob's transfer in and flushed; peer2's
    // Alice synced it, then met the same transfer on the relay.
    pay_and_sync(&mut devices, 0).await;
    let peer2 = &mut devices.peer2;
    let before = peer2.ok("counters", json!({})).await["counters"].clone();
    let again = peer2
        .ok("receive", json!({"wallet": "alice", "finalize": false}))
        .await;
    assert_eq!(again["received"], json!(0), "{again}");
    let after = peer2.ok("counters", json!({})).await["counters"].clone();
    // Acknowledged: the transfer's tokens are not checked again, and no
    // flush was needed to say so.
    assert_eq!(
        count(&after, "verify_proofs.verify"),
        count(&before, "verify_proofs.verify"),
        "{after}"
    );
    assert_eq!(count(&after, "flush"), count(&before, "flush"), "{after}");
    for peer in [devices.peer1, devices.peer2] {
        assert!(peer.shutdown().await.success());
    }
}
