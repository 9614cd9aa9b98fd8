//! `NostrLink` against an in-process testnet relay: transfers, private
//! messages and nametags, and the retries that carry them through rate
//! limits and forced disconnects.

use std::time::Duration;

use nostr_sdk::{Client, Filter, Keys, Timestamp, nips::nip44};
use sphere_sdk::{
    config::Timers,
    transport::nostr::{NostrLink, TOKEN_BACKUP_KIND, TRANSFER_KIND},
};
use sphere_testnet::{NetworkProfile, RunningTestnet, ServicePorts, TestnetConfig};

async fn testnet(overrides: &[&str]) -> RunningTestnet {
    let overrides: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
    RunningTestnet::start(TestnetConfig {
        profile: NetworkProfile::load("ideal", &overrides).expect("profile"),
        data_dir: None,
        ports: ServicePorts::default(),
    })
    .await
    .expect("testnet starts")
}

async fn link(net: &RunningTestnet, keys: &Keys) -> NostrLink {
    NostrLink::connect(&net.endpoints().relay, keys.clone(), Timers::default())
        .await
        .expect("link connects")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transfer_reaches_its_recipient_only() {
    let net = testnet(&[]).await;
    let (alice_keys, bob_keys, carol_keys) = (Keys::generate(), Keys::generate(), Keys::generate());
    let alice = link(&net, &alice_keys).await;
    let bob = link(&net, &bob_keys).await;
    let carol = link(&net, &carol_keys).await;

    let id = alice
        .send_transfer(&bob.public_key(), "token-for-bob")
        .await
        .unwrap();

    let received = bob.fetch_transfers(None).await.unwrap();
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(received[0].event_id, id.to_hex());
    assert_eq!(received[0].from, alice.public_key());
    assert_eq!(received[0].payload, "token-for-bob");
    assert!(carol.fetch_transfers(None).await.unwrap().is_empty());
    assert!(
        alice.fetch_transfers(None).await.unwrap().is_empty(),
        "the sender is not a recipient"
    );

    let later = Timestamp::from(received[0].created_at + 3600);
    assert!(
        bob.fetch_transfers(Some(later)).await.unwrap().is_empty(),
        "`since` filters"
    );

    for l in [alice, bob, carol] {
        l.disconnect().await;
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfer_content_on_the_relay_is_ciphertext() {
    let net = testnet(&[]).await;
    let (alice_keys, bob_keys, carol_keys) = (Keys::generate(), Keys::generate(), Keys::generate());
    let alice = link(&net, &alice_keys).await;
    let plaintext = "tok_PLAINTEXT_0123456789";
    let id = alice
        .send_transfer(&bob_keys.public_key(), plaintext)
        .await
        .unwrap();

    // A bystander with no keys of its own reads the raw event.
    let raw = Client::default();
    raw.add_relay(net.endpoints().relay.as_str()).await.unwrap();
    raw.connect().await;
    raw.wait_for_connection(Duration::from_secs(10)).await;
    let events = raw
        .fetch_events(Filter::new().id(id), Duration::from_secs(10))
        .await
        .unwrap();
    let event = events.first().expect("the event is stored").clone();
    assert_eq!(event.kind, TRANSFER_KIND);
    assert!(!event.kind.is_ephemeral());
    assert!(
        event
            .tags
            .public_keys()
            .any(|p| *p == bob_keys.public_key())
    );
    assert!(
        !event.content.contains(plaintext),
        "content leaks the payload"
    );
    assert!(!event.content.contains("PLAINTEXT"));
    assert_eq!(
        nip44::decrypt(
            bob_keys.secret_key(),
            &alice_keys.public_key(),
            &event.content
        )
        .unwrap(),
        plaintext
    );
    assert!(
        nip44::decrypt(
            carol_keys.secret_key(),
            &alice_keys.public_key(),
            &event.content
        )
        .is_err()
    );

    raw.disconnect().await;
    alice.disconnect().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_backup_is_found_by_its_version_and_only_its_owner_reads_it() {
    let net = testnet(&[]).await;
    let (alice_keys, mallory_keys) = (Keys::generate(), Keys::generate());
    let alice = link(&net, &alice_keys).await;
    let mallory = link(&net, &mallory_keys).await;
    alice
        .publish_token_backup(7, "tokens at SEVEN")
        .await
        .unwrap();
    alice
        .publish_token_backup(8, "tokens at EIGHT")
        .await
        .unwrap();
    // Another key's backup under the same version is not Alice's.
    mallory.publish_token_backup(8, "forged").await.unwrap();

    assert_eq!(
        alice.fetch_token_backups(8).await.unwrap(),
        ["tokens at EIGHT"]
    );
    assert_eq!(
        alice.fetch_token_backups(7).await.unwrap(),
        ["tokens at SEVEN"]
    );
    assert!(alice.fetch_token_backups(9).await.unwrap().is_empty());

    // On the relay the backup is ciphertext, stored (not ephemeral).
    let raw = Client::default();
    raw.add_relay(net.endpoints().relay.as_str()).await.unwrap();
    raw.connect().await;
    raw.wait_for_connection(Duration::from_secs(10)).await;
    let events = raw
        .fetch_events(
            Filter::new()
                .kind(TOKEN_BACKUP_KIND)
                .author(alice_keys.public_key()),
            Duration::from_secs(10),
        )
        .await
        .unwrap();
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| !e.content.contains("tokens at")));
    assert!(events.iter().all(|e| !e.kind.is_ephemeral()));

    raw.disconnect().await;
    for l in [alice, mallory] {
        l.disconnect().await;
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_messages_round_trip() {
    let net = testnet(&[]).await;
    let (alice_keys, bob_keys, carol_keys) = (Keys::generate(), Keys::generate(), Keys::generate());
    let alice = link(&net, &alice_keys).await;
    let bob = link(&net, &bob_keys).await;
    let carol = link(&net, &carol_keys).await;

    alice
        .send_private_message(&bob.public_key(), "invoice #1")
        .await
        .unwrap();
    alice
        .send_private_message(&bob.public_key(), "invoice #2")
        .await
        .unwrap();

    let received = bob.fetch_private_messages().await.unwrap();
    let mut payloads: Vec<&str> = received.iter().map(|m| m.payload.as_str()).collect();
    payloads.sort_unstable();
    assert_eq!(payloads, ["invoice #1", "invoice #2"]);
    assert!(received.iter().all(|m| m.from == alice.public_key()));
    assert!(received.iter().all(|m| m.event_id.len() == 64));
    assert!(carol.fetch_private_messages().await.unwrap().is_empty());
    // Gift wraps are not transfers.
    assert!(bob.fetch_transfers(None).await.unwrap().is_empty());

    for l in [alice, bob, carol] {
        l.disconnect().await;
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nametag_belongs_to_its_first_claimant() {
    let net = testnet(&[]).await;
    let alice = link(&net, &Keys::generate()).await;
    let bob = link(&net, &Keys::generate()).await;
    let mallory = link(&net, &Keys::generate()).await;

    assert_eq!(bob.resolve_nametag("alice").await.unwrap(), None);
    let claimed_at = Timestamp::now();
    alice
        .publish_nametag("alice", "alice-address")
        .await
        .unwrap();
    let record = bob
        .resolve_nametag("alice")
        .await
        .unwrap()
        .expect("resolved");
    assert_eq!(record.nametag, "alice");
    assert_eq!(record.address, "alice-address");
    assert_eq!(record.nostr_pubkey, alice.public_key());

    // created_at has one-second resolution: make Mallory's claim later.
    while Timestamp::now() <= claimed_at {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    mallory
        .publish_nametag("alice", "mallory-address")
        .await
        .unwrap();
    let record = bob
        .resolve_nametag("alice")
        .await
        .unwrap()
        .expect("resolved");
    assert_eq!(record.address, "alice-address");
    assert_eq!(record.nostr_pubkey, alice.public_key());
    // Mallory's claim is stored, it just does not win.
    let mallorys = mallory.resolve_nametag("alice").await.unwrap().unwrap();
    assert_eq!(mallorys.nostr_pubkey, alice.public_key());

    for l in [alice, bob, mallory] {
        l.disconnect().await;
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limited_sends_are_retried_until_accepted() {
    let net = testnet(&["relay.rate_limit={ per_second = 5.0, burst = 2 }"]).await;
    let alice = link(&net, &Keys::generate()).await;
    let bob = link(&net, &Keys::generate()).await;

    for i in 0..8 {
        alice
            .send_transfer(&bob.public_key(), &format!("payment {i}"))
            .await
            .unwrap_or_else(|e| panic!("transfer {i}: {e}"));
    }

    let received = bob.fetch_transfers(None).await.unwrap();
    let mut payloads: Vec<String> = received.into_iter().map(|m| m.payload).collect();
    payloads.sort();
    let expected: Vec<String> = (0..8).map(|i| format!("payment {i}")).collect();
    assert_eq!(payloads, expected);
    let metrics = net.metrics();
    assert!(metrics.relay.rate_limited > 0, "{:?}", metrics.relay);

    alice.disconnect().await;
    bob.disconnect().await;
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transfers_survive_forced_disconnects() {
    let net = testnet(&["relay.disconnect_mean_ms=300", "seed=7"]).await;
    let alice = link(&net, &Keys::generate()).await;
    let bob = link(&net, &Keys::generate()).await;

    for i in 0..10 {
        alice
            .send_transfer(&bob.public_key(), &format!("payment {i}"))
            .await
            .unwrap_or_else(|e| panic!("transfer {i}: {e}"));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let received = bob.fetch_transfers(None).await.unwrap();
    let mut payloads: Vec<String> = received.into_iter().map(|m| m.payload).collect();
    payloads.sort();
    let expected: Vec<String> = (0..10).map(|i| format!("payment {i}")).collect();
    assert_eq!(payloads, expected);
    let metrics = net.metrics();
    assert!(metrics.relay.disconnects > 0, "{:?}", metrics.relay);

    alice.disconnect().await;
    bob.disconnect().await;
    net.stop().await;
}
