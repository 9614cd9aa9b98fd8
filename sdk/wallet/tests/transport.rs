//! The transport clients against an in-process testnet: retries, rate
//! limits, propagation, and what the aggregator and gateway answer.
//!
//! Assertions are on behaviour and counts, never on wall time; timers are
//! scaled down so waits are short.

use std::collections::BTreeSet;
use std::time::Duration;

use serde::Serialize;
use sphere_protocol::commitment::Commitment;
use sphere_protocol::hash::{Hash32, StateHash, TransactionHash};
use sphere_protocol::ipld::{Block, Cid, Codec};
use sphere_protocol::rpc::{ProofOutcome, SubmitStatus};
use sphere_protocol::signing::SecretKey;
use sphere_sdk::config::Timers;
use sphere_sdk::perf;
use sphere_sdk::transport::{
    AggregatorClient, AggregatorError, GatewayClient, GatewayError, LastAnswer, RetryPolicy,
};
use sphere_testnet::{NetworkProfile, RunningTestnet, ServicePorts, TestnetConfig};

const RATE_LIMIT: &str = "gateway.rate_limit={ per_second = 20.0, burst = 5 }";

async fn testnet(overrides: &[&str]) -> RunningTestnet {
    let overrides: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
    let profile = NetworkProfile::load("ideal", &overrides).unwrap();
    RunningTestnet::start(TestnetConfig {
        profile,
        data_dir: None,
        ports: ServicePorts::default(),
    })
    .await
    .unwrap()
}

fn timers(scale: f64) -> Timers {
    Timers::new(scale).unwrap()
}

fn aggregator(net: &RunningTestnet, scale: f64) -> AggregatorClient {
    AggregatorClient::new(&net.endpoints().aggregator, "test-peer", &timers(scale)).unwrap()
}

fn gateway(net: &RunningTestnet, client_id: &str, scale: f64) -> GatewayClient {
    GatewayClient::new(&net.endpoints().gateway, client_id, &timers(scale)).unwrap()
}

fn hash(text: &str) -> Hash32 {
    Hash32::sha256_of(&[text.as_bytes()])
}

fn commitment(secret: &SecretKey, state: &str, tx: &str) -> Commitment {
    Commitment::sign(
        secret,
        StateHash::from(hash(state)),
        TransactionHash::from(hash(tx)),
    )
}

/// The root node of a test DAG: a dag-cbor list of links.
#[derive(Serialize)]
struct Root {
    name: String,
    leaves: Vec<Cid>,
}

/// A dag-cbor root listing `n` raw leaves; the root block comes first.
fn dag(name: &str, n: usize) -> (Cid, Vec<Block>) {
    let leaves: Vec<Block> = (0..n)
        .map(|i| Block::new(Codec::Raw, format!("{name} leaf {i}").into_bytes()))
        .collect();
    let root = Block::encode_dag_cbor(&Root {
        name: name.to_owned(),
        leaves: leaves.iter().map(|b| b.cid).collect(),
    })
    .unwrap();
    let root_cid = root.cid;
    let mut blocks = vec![root];
    blocks.extend(leaves);
    (root_cid, blocks)
}

fn cid_set(blocks: &[Block]) -> BTreeSet<String> {
    blocks.iter().map(|b| b.cid.to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submit_is_included_resubmit_is_idempotent_and_a_second_spend_is_refused() {
    let net = testnet(&["aggregator.block_interval_ms=200"]).await;
    let client = aggregator(&net, 0.1);
    let secret = SecretKey::random();
    let first = commitment(&secret, "state-1", "tx-1");

    assert_eq!(client.submit(&first).await.unwrap(), SubmitStatus::Success);
    let (included, proof) = {
        let (client, id) = (client.clone(), first.request_id);
        let (deadline, poll) = (Duration::from_secs(10), Duration::from_millis(20));
        tokio::spawn(async move { client.wait_for_inclusion(&id, deadline, poll).await })
    }
    .await
    .unwrap()
    .unwrap();
    assert_eq!(included, first);
    let trust_base = client.trust_base().await.unwrap();
    assert_eq!(
        proof
            .verify_request(&trust_base, &first.request_id)
            .unwrap(),
        ProofOutcome::Included(first.clone())
    );
    assert!(client.block_height().await.unwrap() >= 1);

    assert_eq!(
        client.submit(&first).await.unwrap(),
        SubmitStatus::AlreadyCommitted
    );
    let rival = commitment(&secret, "state-1", "tx-2");
    assert_eq!(rival.request_id, first.request_id);
    let err = client.submit(&rival).await.unwrap_err();
    assert!(
        matches!(err, AggregatorError::DoubleSpend { request_id } if request_id == first.request_id),
        "{err}"
    );
    assert!(
        err.to_string().contains(&first.request_id.to_string()),
        "{err}"
    );
    net.stop().await;
}

#[tokio::test]
async fn an_unsubmitted_request_id_is_not_included_by_the_deadline() {
    let net = testnet(&[]).await;
    let client = aggregator(&net, 0.01);
    let never = commitment(&SecretKey::random(), "state", "tx");
    let err = client
        .wait_for_inclusion(
            &never.request_id,
            Duration::from_millis(50),
            Duration::from_millis(10),
        )
        .await
        .unwrap_err();
    assert!(
        matches!(err, AggregatorError::NotIncluded { request_id, waited }
            if request_id == never.request_id && waited >= Duration::from_millis(50)),
        "{err}"
    );
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn submits_survive_dropped_connections_and_5xx() {
    let net = testnet(&[
        "seed=7",
        "aggregator.faults={ drop = 0.2, error_5xx = 0.2 }",
    ])
    .await;
    let client = aggregator(&net, 0.01);
    let secret = SecretKey::random();
    let mut last = None;
    for i in 0..30 {
        let c = commitment(&secret, &format!("state-{i}"), &format!("tx-{i}"));
        let status = client.submit(&c).await.unwrap();
        // A retry of a submit whose answer was lost may see its own commitment.
        assert!(matches!(
            status,
            SubmitStatus::Success | SubmitStatus::AlreadyCommitted
        ));
        last = Some(c);
    }
    let last = last.unwrap();
    let (included, _) = client
        .wait_for_inclusion(
            &last.request_id,
            Duration::from_secs(5),
            Duration::from_millis(10),
        )
        .await
        .unwrap();
    assert_eq!(included, last);
    let metrics = net.metrics().aggregator;
    assert!(metrics.dropped + metrics.errors_5xx > 0, "{metrics:?}");
    net.stop().await;
}

#[tokio::test]
async fn an_aggregator_that_never_answers_exhausts_the_policy() {
    let net = testnet(&["aggregator.faults={ error_5xx = 1.0 }"]).await;
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(1),
        max: Duration::from_millis(4),
        server_second: Duration::from_millis(1),
    };
    let client =
        AggregatorClient::with_policy(&net.endpoints().aggregator, "test-peer", policy).unwrap();
    let err = client.block_height().await.unwrap_err();
    assert!(
        matches!(&err, AggregatorError::Exhausted { attempts: 3, last: LastAnswer::Status(s), .. } if s.as_u16() == 503),
        "{err}"
    );
    assert!(err.to_string().contains("`get_block_height`"), "{err}");
    assert_eq!(net.metrics().aggregator.requests, 3);
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_car_import_fits_a_rate_limit_that_per_block_puts_exceed() {
    perf::set_enabled(true);
    let net = testnet(&[RATE_LIMIT]).await;

    let (car_root, car_blocks) = dag("import", 60);
    let report = gateway(&net, "pin-car", 0.1)
        .pin(car_root, &car_blocks, 1)
        .await
        .unwrap();
    assert_eq!(
        (report.requests, report.retries, report.rate_limited),
        (1, 0, 0)
    );
    assert_eq!(net.metrics().gateway.rate_limited, 0);

    let (put_root, put_blocks) = dag("puts", 60);
    let putter = gateway(&net, "pin-blocks", 0.1);
    // Spawned, as the wallet's flush task does: the pin future must be Send.
    let report = {
        let (putter, blocks) = (putter.clone(), put_blocks.clone());
        tokio::spawn(async move { putter.pin(put_root, &blocks, 8).await })
    }
    .await
    .unwrap()
    .unwrap();
    assert!(report.rate_limited > 0, "{report:?}");
    assert_eq!(report.requests, 61 + report.retries, "{report:?}");
    assert!(net.metrics().gateway.rate_limited > 0);
    let totals = perf::totals();
    assert!(totals[perf::names::GATEWAY_429].count > 0);
    assert!(totals[perf::names::PIN_RETRY].count > 0);
    assert!(totals[perf::names::PIN_CAR].count >= 2);

    for (root, blocks) in [(car_root, &car_blocks), (put_root, &put_blocks)] {
        let car = putter.fetch_car(root).await.unwrap();
        assert_eq!(car.roots, vec![root]);
        assert_eq!(car.blocks.len(), 61);
        assert_eq!(cid_set(&car.blocks), cid_set(blocks));
    }
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_and_fetches_survive_gateway_faults() {
    let net = testnet(&["seed=3", "gateway.faults={ drop = 0.2, error_5xx = 0.2 }"]).await;
    let client = gateway(&net, "flaky", 0.01);
    let (a, a_blocks) = dag("a", 20);
    let (b, b_blocks) = dag("b", 5);
    let ra = client.pin(a, &a_blocks, 4).await.unwrap();
    let rb = client.pin(b, &b_blocks, 1).await.unwrap();
    assert!(ra.retries + rb.retries > 0, "{ra:?} {rb:?}");

    // In input order, whatever order they finish in.
    let cars = {
        let client = client.clone();
        tokio::spawn(async move { client.fetch_many(&[b, a, b], 2).await })
    }
    .await
    .unwrap()
    .unwrap();
    let roots: Vec<Cid> = cars.iter().map(|c| c.roots[0]).collect();
    assert_eq!(roots, vec![b, a, b]);
    assert_eq!(cid_set(&cars[1].blocks), cid_set(&a_blocks));

    let leaf = &a_blocks[3];
    assert_eq!(&client.block_get(leaf.cid).await.unwrap(), leaf);
    let metrics = net.metrics().gateway;
    assert!(metrics.dropped + metrics.errors_5xx > 0, "{metrics:?}");
    net.stop().await;
}

#[tokio::test]
async fn exhausted_pins_name_the_root_and_the_last_answer() {
    let net = testnet(&["gateway.faults={ error_5xx = 1.0 }"]).await;
    let policy = RetryPolicy {
        max_attempts: 3,
        base: Duration::from_millis(1),
        max: Duration::from_millis(4),
        server_second: Duration::from_millis(1),
    };
    let client =
        GatewayClient::with_policy(&net.endpoints().gateway, "p", &timers(0.01), policy).unwrap();
    let (root, blocks) = dag("doomed", 2);
    let err = client.pin(root, &blocks, 1).await.unwrap_err();
    assert!(
        matches!(err, GatewayError::Exhausted { attempts: 3, .. }),
        "{err}"
    );
    let text = err.to_string();
    assert!(text.starts_with(&format!("pin of `{root}` at `")), "{text}");
    assert!(
        text.ends_with("failed after 3 attempts: last answer 503 Service Unavailable"),
        "{text}"
    );
    net.stop().await;
}

#[tokio::test]
async fn the_nodes_own_errors_are_final() {
    let net = testnet(&[]).await;
    let client = gateway(&net, "p", 0.01);
    let unknown = Block::new(Codec::Raw, b"never stored".to_vec()).cid;
    let before = net.metrics().gateway.requests;
    let err = client.block_get(unknown).await.unwrap_err();
    assert!(
        matches!(&err, GatewayError::Rejected { status, .. } if status.as_u16() == 500),
        "{err}"
    );
    assert!(err.to_string().contains("not found locally"), "{err}");
    assert_eq!(net.metrics().gateway.requests - before, 1, "no retry");
    net.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_verify_waits_for_propagation() {
    let net = testnet(&["gateway.propagation_ms=300"]).await;
    let client = gateway(&net, "p", 0.1);
    let (root, blocks) = dag("fresh", 3);
    client.pin(root, &blocks, 1).await.unwrap();
    assert!(!client.head(root).await.unwrap());

    let report = {
        let client = client.clone();
        tokio::spawn(async move { client.head_verify(&[root, root]).await })
    }
    .await
    .unwrap()
    .unwrap();
    assert!(report.requests > 1, "{report:?}");
    assert!(client.head(root).await.unwrap());
    net.stop().await;
}

#[tokio::test]
async fn head_verify_gives_up_at_the_deadline_naming_the_missing_cid() {
    let net = testnet(&["gateway.propagation_ms=60000"]).await;
    // At 0.01 the 30 s deadline is 0.3 s.
    let client = gateway(&net, "p", 0.01);
    let (root, blocks) = dag("slow", 3);
    client.pin(root, &blocks, 1).await.unwrap();
    let err = client.head_verify(&[root]).await.unwrap_err();
    match &err {
        GatewayError::NotVisible { cids, waited } => {
            assert_eq!(cids, &vec![root]);
            assert!(*waited >= timers(0.01).head_verify_deadline());
        }
        other => panic!("expected NotVisible, got {other}"),
    }
    assert!(err.to_string().contains(&root.to_string()), "{err}");
    net.stop().await;
}

#[tokio::test]
async fn fetching_an_unknown_cid_fails_with_not_found_after_the_deadline() {
    let net = testnet(&[]).await;
    let client = gateway(&net, "p", 0.01);
    let (root, _) = dag("never pinned", 1);
    let err = client.fetch_car(root).await.unwrap_err();
    assert!(
        matches!(err, GatewayError::NotFound { cid, waited }
            if cid == root && waited >= timers(0.01).head_verify_deadline()),
        "{err}"
    );
    // More than one look: a 404 is waited out, not taken at its word.
    assert!(net.metrics().gateway.requests > 1);
    net.stop().await;
}

#[tokio::test]
async fn an_incomplete_dag_is_not_pinned() {
    let net = testnet(&[]).await;
    let client = gateway(&net, "p", 0.01);
    let (root, blocks) = dag("partial", 4);
    let err = client.pin(root, &blocks[..3], 1).await.unwrap_err();
    assert!(
        matches!(err, GatewayError::PinFailed { root: r, .. } if r == root),
        "{err}"
    );
    net.stop().await;
}
