//! The `sphere-testnet` process, driven the way a client that knows nothing
//! of our code would drive it: plain JSON-RPC and HTTP with reqwest, CAR
//! files built with iroh-car, and a stock NIP-01 client for the relay.

use std::{
    io::{BufRead, BufReader},
    process::{Child, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use nix::{
    sys::signal::{Signal, kill},
    unistd::Pid,
};
use serde_json::{Value, json};
use sphere_protocol::{
    certificate::TrustBase,
    commitment::Commitment,
    hash::{Hash32, StateHash, TransactionHash},
    rpc::{InclusionProofResponse, ProofOutcome},
    signing::SecretKey,
};

/// Set to `1`, the testnet stops when its stdin reaches end of input.
const STOP_ON_STDIN_EOF: &str = "SPHERE_STOP_ON_STDIN_EOF";

/// A testnet child process, stopped with SIGTERM when dropped.
struct Testnet {
    child: Child,
    ready: Value,
}

impl Testnet {
    fn start(args: &[&str]) -> Testnet {
        Testnet::start_with(args, |command| {
            // Stdin is null here: inherited, the variable would stop it at once.
            command.stdin(Stdio::null()).env_remove(STOP_ON_STDIN_EOF);
        })
    }

    /// Starts the testnet with `configure` applied to its command last.
    fn start_with(args: &[&str], configure: impl FnOnce(&mut Command)) -> Testnet {
        let mut command = Command::new(env!("CARGO_BIN_EXE_sphere-testnet"));
        command
            .args(args)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        configure(&mut command);
        let mut child = command.spawn().expect("spawn sphere-testnet");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("ready line within 30 s");
        let ready: Value = serde_json::from_str(&line).expect("ready line is JSON");
        Testnet { child, ready }
    }

    fn url(&self, service: &str) -> String {
        self.ready[service].as_str().expect("endpoint").to_owned()
    }

    fn terminate(&mut self) -> std::process::ExitStatus {
        kill(Pid::from_raw(self.child.id() as i32), Signal::SIGTERM).expect("SIGTERM");
        self.wait_exit(Duration::from_secs(20))
            .expect("testnet did not stop on SIGTERM")
    }

    /// The exit status, if the testnet exits within `within`.
    fn wait_exit(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Testnet {
    fn drop(&mut self) {
        if self.child.try_wait().ok().flatten().is_none() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(20))
        .build()
        .unwrap()
}

async fn rpc(url: &str, method: &str, params: Value) -> Value {
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
    http()
        .post(url)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The testnet's `/metrics` document.
async fn metrics(testnet: &Testnet) -> Value {
    http()
        .get(format!("{}/metrics", testnet.url("gateway")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

fn signed_commitment(owner: &SecretKey, state: &[u8], tx: &[u8]) -> Commitment {
    Commitment::sign(
        owner,
        StateHash::from(Hash32::sha256_of(&[state])),
        TransactionHash::from(Hash32::sha256_of(&[tx])),
    )
}

#[test]
fn ready_line_names_three_loopback_endpoints() {
    let mut testnet = Testnet::start(&["--profile", "ideal"]);
    assert_eq!(testnet.ready["ready"], json!(true));
    assert!(testnet.url("aggregator").starts_with("http://127.0.0.1:"));
    assert!(testnet.url("gateway").starts_with("http://127.0.0.1:"));
    assert!(testnet.url("relay").starts_with("ws://127.0.0.1:"));
    let status = testnet.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn with_the_variable_end_of_stdin_stops_the_testnet_cleanly() {
    let mut testnet = Testnet::start_with(&["--profile", "ideal"], |command| {
        command.stdin(Stdio::piped()).env(STOP_ON_STDIN_EOF, "1");
    });
    // What a parent killed by SIGKILL leaves behind: its end of the pipe closed.
    drop(testnet.child.stdin.take());
    let status = testnet
        .wait_exit(Duration::from_secs(10))
        .expect("the testnet stops within 10 s of its stdin closing");
    assert!(status.success(), "{status:?}");
}

#[test]
fn without_the_variable_end_of_stdin_changes_nothing() {
    let mut testnet = Testnet::start_with(&["--profile", "ideal"], |command| {
        command.stdin(Stdio::piped()).env_remove(STOP_ON_STDIN_EOF);
    });
    drop(testnet.child.stdin.take());
    assert_eq!(
        testnet.wait_exit(Duration::from_secs(1)),
        None,
        "still running"
    );
    let status = testnet.terminate();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_bad_stop_on_stdin_eof_value_is_a_usage_error() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_sphere-testnet"))
        .args(["--profile", "ideal"])
        .env(STOP_ON_STDIN_EOF, "maybe")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn sphere-testnet");
    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("a bad {STOP_ON_STDIN_EOF} did not stop the testnet at start-up");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().expect("stderr"), &mut stderr)
        .expect("read stderr");
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr.trim(),
        "sphere-testnet: SPHERE_STOP_ON_STDIN_EOF=`maybe`: expected 1 or 0"
    );
}

#[tokio::test]
async fn aggregator_proves_inclusion_and_exclusion_and_refuses_double_spends() {
    let testnet = Testnet::start(&["--profile", "ideal"]);
    let url = testnet.url("aggregator");

    let trust: TrustBase =
        serde_json::from_value(rpc(&url, "get_trust_base", json!({})).await["result"].clone())
            .unwrap();
    let owner = SecretKey::random();
    let spend = signed_commitment(&owner, b"token-1-state-0", b"pay bob");
    let answer = rpc(
        &url,
        "submit_commitment",
        serde_json::to_value(&spend).unwrap(),
    )
    .await;
    assert_eq!(answer["result"]["status"], json!("SUCCESS"), "{answer}");

    // The same state spent to another transaction is a double spend.
    let other = signed_commitment(&owner, b"token-1-state-0", b"pay carol");
    let answer = rpc(
        &url,
        "submit_commitment",
        serde_json::to_value(&other).unwrap(),
    )
    .await;
    assert_eq!(answer["error"]["code"], json!(-32003), "{answer}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .unwrap()
            .contains("double spend"),
        "{answer}"
    );

    let params = json!({"requestId": spend.request_id});
    let proof_json = rpc(&url, "get_inclusion_proof", params).await["result"].clone();
    let proof: InclusionProofResponse = serde_json::from_value(proof_json.clone()).unwrap();
    match proof.verify(&trust).unwrap() {
        ProofOutcome::Included(commitment) => assert_eq!(commitment, spend),
        ProofOutcome::Excluded => panic!("sealed commitment must be included"),
    }

    let unknown = signed_commitment(&SecretKey::random(), b"never", b"sent");
    let params = json!({"requestId": unknown.request_id});
    let absent: InclusionProofResponse =
        serde_json::from_value(rpc(&url, "get_inclusion_proof", params).await["result"].clone())
            .unwrap();
    assert!(matches!(
        absent.verify(&trust).unwrap(),
        ProofOutcome::Excluded
    ));

    // Claiming the other transaction went in, with the real proof, fails.
    let mut forged = proof.clone();
    forged.commitment = Some(other);
    assert!(forged.verify(&trust).is_err());
    // A tampered Merkle path fails too, whichever byte is changed.
    let hex_proof = proof_json["merkleProof"].as_str().unwrap().to_owned();
    for position in [0, hex_proof.len() / 2, hex_proof.len() - 1] {
        let mut tampered_json = proof_json.clone();
        let mut chars: Vec<char> = hex_proof.chars().collect();
        chars[position] = if chars[position] == '0' { '1' } else { '0' };
        tampered_json["merkleProof"] = json!(chars.into_iter().collect::<String>());
        let verdict = serde_json::from_value::<InclusionProofResponse>(tampered_json)
            .map_err(|e| e.to_string())
            .and_then(|p| p.verify(&trust).map_err(|e| e.to_string()));
        assert!(verdict.is_err(), "tampered at {position}: {verdict:?}");
    }
    // So does a proof checked against another testnet's key.
    let stranger = TrustBase {
        public_key: SecretKey::random().public_key(),
    };
    assert!(proof.verify(&stranger).is_err());

    let height = rpc(&url, "get_block_height", json!({})).await;
    assert!(
        height["result"]["blockHeight"].as_u64().unwrap() >= 1,
        "{height}"
    );
}

#[tokio::test]
async fn aggregator_answers_json_rpc_errors() {
    let testnet = Testnet::start(&["--profile", "ideal"]);
    let url = testnet.url("aggregator");
    let answer = rpc(&url, "no_such_method", json!({})).await;
    assert_eq!(answer["error"]["code"], json!(-32601), "{answer}");
    let answer = rpc(&url, "get_inclusion_proof", json!({"requestId": "zz"})).await;
    assert_eq!(answer["error"]["code"], json!(-32602), "{answer}");
    let raw: Value = http()
        .post(&url)
        .body("{not json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(raw["error"]["code"], json!(-32700), "{raw}");
}

#[tokio::test]
async fn pending_commitment_is_excluded_until_the_next_block() {
    // Blocks every 60 s: the commitment stays pending for the whole test.
    let testnet = Testnet::start(&[
        "--profile",
        "ideal",
        "--set",
        "aggregator.block_interval_ms=60000",
    ]);
    let url = testnet.url("aggregator");
    let spend = signed_commitment(&SecretKey::random(), b"s", b"t");
    rpc(
        &url,
        "submit_commitment",
        serde_json::to_value(&spend).unwrap(),
    )
    .await;
    let proof = rpc(
        &url,
        "get_inclusion_proof",
        json!({"requestId": spend.request_id}),
    )
    .await;
    assert_eq!(proof["result"]["commitment"], Value::Null, "{proof}");
}

#[tokio::test]
async fn rate_limit_answers_429_with_retry_after_and_is_counted() {
    let testnet = Testnet::start(&[
        "--profile",
        "ideal",
        "--set",
        "gateway.rate_limit={ per_second = 0.01, burst = 2 }",
    ]);
    let gateway = testnet.url("gateway");
    let probe =
        format!("{gateway}/ipfs/bafkreibm6jg3ux5qumhcn2b3flc3tyu6dmlb4xa7u5bf44yegnrjhc4yeq");
    let client = http();
    let mut statuses = Vec::new();
    let mut retry_after = None;
    for _ in 0..3 {
        let response = client.head(&probe).send().await.unwrap();
        statuses.push(response.status().as_u16());
        if let Some(v) = response.headers().get("retry-after") {
            retry_after = Some(v.to_str().unwrap().parse::<u64>().unwrap());
        }
    }
    assert_eq!(statuses, vec![404, 404, 429]);
    assert!(retry_after.unwrap() >= 50, "{retry_after:?}");
    // Another client (by header) has its own bucket.
    let other = client
        .head(&probe)
        .header("x-sphere-client", "peer-2")
        .send()
        .await
        .unwrap();
    assert_eq!(other.status().as_u16(), 404);
    let metrics: Value = metrics(&testnet).await;
    assert_eq!(metrics["gateway"]["rate_limited"], json!(1), "{metrics}");
    assert_eq!(metrics["gateway"]["requests"], json!(4), "{metrics}");
    assert_eq!(metrics["profile"], json!("ideal"));
}

#[tokio::test]
async fn faults_drop_connections_and_answer_503() {
    let dropping = Testnet::start(&[
        "--profile",
        "ideal",
        "--set",
        "aggregator.faults={ drop = 1.0 }",
    ]);
    let result = http()
        .post(dropping.url("aggregator"))
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "get_block_height"}))
        .send()
        .await;
    assert!(
        result.is_err(),
        "a dropped request gets no answer: {result:?}"
    );

    let failing = Testnet::start(&[
        "--profile",
        "ideal",
        "--set",
        "gateway.faults={ error_5xx = 1.0 }",
    ]);
    let response = http()
        .get(format!("{}/ipfs/bafkqaaa", failing.url("gateway")))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 503);
    let metrics: Value = metrics(&failing).await;
    assert_eq!(metrics["gateway"]["errors_5xx"], json!(1), "{metrics}");
}

async fn build_car() -> (String, Vec<u8>) {
    use cid::Cid;
    use iroh_car::{CarHeader, CarWriter};
    use sha2::{Digest, Sha256};
    let leaf = b"a token".to_vec();
    let digest = Sha256::digest(&leaf);
    let mh = cid::multihash::Multihash::<64>::wrap(0x12, &digest).unwrap();
    let cid = Cid::new_v1(0x55, mh);
    let mut out = Vec::new();
    let mut writer = CarWriter::new(CarHeader::new_v1(vec![cid]), &mut out);
    writer.write(cid, &leaf).await.unwrap();
    writer.finish().await.unwrap();
    (cid.to_string(), out)
}

#[tokio::test]
async fn gateway_hides_a_pinned_block_until_it_has_propagated() {
    let testnet = Testnet::start(&["--profile", "ideal", "--set", "gateway.propagation_ms=1500"]);
    let gateway = testnet.url("gateway");
    let (root, car) = build_car().await;
    let client = http();
    let imported = client
        .post(format!("{gateway}/api/v0/dag/import"))
        .body(car)
        .send()
        .await
        .unwrap();
    assert!(imported.status().is_success());
    assert!(imported.text().await.unwrap().contains(&root));
    let url = format!("{gateway}/ipfs/{root}");
    assert_eq!(
        client.head(&url).send().await.unwrap().status().as_u16(),
        404
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let status = client.head(&url).send().await.unwrap().status().as_u16();
        if status == 200 {
            break;
        }
        assert_eq!(status, 404);
        assert!(Instant::now() < deadline, "block never became visible");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn aggregator_state_survives_a_restart_with_a_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let data_dir = dir.path().to_str().unwrap();
    let spend = signed_commitment(&SecretKey::random(), b"kept", b"across restarts");
    let first_trust = {
        let mut testnet = Testnet::start(&["--profile", "ideal", "--data-dir", data_dir]);
        let url = testnet.url("aggregator");
        rpc(
            &url,
            "submit_commitment",
            serde_json::to_value(&spend).unwrap(),
        )
        .await;
        let trust = rpc(&url, "get_trust_base", json!({})).await["result"].clone();
        assert!(testnet.terminate().success());
        trust
    };
    let testnet = Testnet::start(&["--profile", "ideal", "--data-dir", data_dir]);
    let url = testnet.url("aggregator");
    let trust_json = rpc(&url, "get_trust_base", json!({})).await["result"].clone();
    assert_eq!(trust_json, first_trust);
    let trust: TrustBase = serde_json::from_value(trust_json).unwrap();
    let proof: InclusionProofResponse = serde_json::from_value(
        rpc(
            &url,
            "get_inclusion_proof",
            json!({"requestId": spend.request_id}),
        )
        .await["result"]
            .clone(),
    )
    .unwrap();
    assert!(matches!(
        proof.verify(&trust).unwrap(),
        ProofOutcome::Included(_)
    ));
}

mod relay {
    use nostr_sdk::prelude::*;

    use super::*;

    async fn connected_client(url: &str) -> (Client, Keys) {
        let keys = Keys::generate();
        let client = Client::new(keys.clone());
        client.add_relay(url).await.unwrap();
        client.try_connect(Duration::from_secs(10)).await;
        (client, keys)
    }

    #[tokio::test]
    async fn relay_stores_and_serves_events_to_a_stock_client() {
        let testnet = Testnet::start(&["--profile", "ideal"]);
        let url = testnet.url("relay");
        let (alice, alice_keys) = connected_client(&url).await;
        let sent = alice
            .send_event_builder(EventBuilder::text_note("hello from alice"))
            .await
            .unwrap();
        assert!(!sent.success.is_empty(), "{:?}", sent.failed);
        let (bob, _) = connected_client(&url).await;
        let filter = Filter::new()
            .author(alice_keys.public_key())
            .kind(Kind::TextNote);
        let events = bob
            .fetch_events(filter, Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(events.len(), 1);
        assert_eq!(events.first().unwrap().content, "hello from alice");
    }

    #[tokio::test]
    async fn relay_refuses_events_over_the_budget_and_counts_them() {
        let testnet = Testnet::start(&[
            "--profile",
            "ideal",
            "--set",
            "relay.rate_limit={ per_second = 0.01, burst = 1 }",
        ]);
        let (client, _) = connected_client(&testnet.url("relay")).await;
        let first = client
            .send_event_builder(EventBuilder::text_note("1"))
            .await
            .unwrap();
        assert!(!first.success.is_empty(), "{:?}", first.failed);
        let second = client
            .send_event_builder(EventBuilder::text_note("2"))
            .await;
        let reason = match second {
            Ok(output) => output.failed.values().next().cloned().unwrap_or_default(),
            Err(error) => error.to_string(),
        };
        assert!(reason.contains("rate-limited"), "{reason}");
        let metrics: Value = metrics(&testnet).await;
        assert_eq!(metrics["relay"]["rate_limited"], json!(1), "{metrics}");
    }

    #[tokio::test]
    async fn relay_disconnects_clients_at_random() {
        let testnet = Testnet::start(&[
            "--profile",
            "ideal",
            "--set",
            "relay.disconnect_mean_ms=100",
        ]);
        let (_client, _) = connected_client(&testnet.url("relay")).await;
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let metrics: Value = metrics(&testnet).await;
            if metrics["relay"]["disconnects"].as_u64().unwrap() >= 1 {
                break;
            }
            assert!(Instant::now() < deadline, "no disconnect seen: {metrics}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Runs the binary expecting it to exit on its own; returns code and stderr.
fn run_to_exit(args: &[&str]) -> (i32, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_sphere-testnet"))
        .args(args)
        .stdin(Stdio::null())
        .env_remove(STOP_ON_STDIN_EOF)
        .output()
        .expect("run sphere-testnet");
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn a_paced_client_is_never_limited() {
    // 20 per second with a burst of 2: one request every 150 ms stays well
    // inside the budget however the machine schedules us.
    let testnet = Testnet::start(&[
        "--profile",
        "ideal",
        "--set",
        "gateway.rate_limit={ per_second = 20.0, burst = 2 }",
    ]);
    let url = format!("{}/ipfs/bafkqaaa", testnet.url("gateway"));
    let client = http();
    for _ in 0..10 {
        let status = client.head(&url).send().await.unwrap().status().as_u16();
        assert_ne!(status, 429);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

#[tokio::test]
async fn a_retrying_client_gets_through_seeded_drops_and_the_drops_are_counted() {
    let testnet = Testnet::start(&[
        "--profile",
        "ideal",
        "--seed",
        "7",
        "--set",
        "aggregator.faults={ drop = 0.1 }",
    ]);
    let url = testnet.url("aggregator");
    let client = http();
    let mut failures = 0_u64;
    for i in 0..200 {
        let body = json!({"jsonrpc": "2.0", "id": i, "method": "get_block_height"});
        let mut attempts = 0;
        loop {
            attempts += 1;
            match client.post(&url).json(&body).send().await {
                Ok(response) => {
                    let answer: Value = response.json().await.unwrap();
                    assert_eq!(answer["id"], json!(i));
                    break;
                }
                Err(_) => failures += 1,
            }
            assert!(attempts < 20, "request {i} never got through");
        }
    }
    let metrics: Value = metrics(&testnet).await;
    let dropped = metrics["aggregator"]["dropped"].as_u64().unwrap();
    assert_eq!(dropped, failures, "{metrics}");
    // 10 % of about 222 attempts: far from both 0 and 200.
    assert!((5..60).contains(&dropped), "{dropped}");
}

#[tokio::test]
async fn an_oversized_rpc_body_is_refused_and_the_service_stays_up() {
    let testnet = Testnet::start(&["--profile", "ideal"]);
    let url = testnet.url("aggregator");
    // Announce a huge body and send none of it: the answer must come from
    // the length alone (sending it would race the server's early close).
    let address = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_owned();
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut stream = std::net::TcpStream::connect(&address).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let head = format!(
            "POST / HTTP/1.1\r\nHost: {address}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n",
            64 * 1024 * 1024
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut answer = String::new();
        let _ = stream.read_to_string(&mut answer);
        answer
    })
    .await
    .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    let height = rpc(&url, "get_block_height", json!({})).await;
    assert_eq!(height["result"]["blockHeight"], json!(0), "{height}");
}

#[test]
fn a_bad_profile_file_names_the_field_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.toml");
    std::fs::write(&path, "seed = 1\n[gateway]\nrtt_ms = \"fast\"\n").unwrap();
    let (code, stderr) = run_to_exit(&["--profile", path.to_str().unwrap()]);
    assert_eq!(code, 2, "{stderr}");
    assert!(stderr.contains("bad.toml"), "{stderr}");
    assert!(
        stderr.contains("rtt_ms") && stderr.contains("line 3"),
        "{stderr}"
    );
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let (code, stderr) = run_to_exit(&["--profile", "no-such-profile"]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("no-such-profile") && stderr.contains("realistic"),
        "{stderr}"
    );
}

#[test]
fn a_taken_port_is_a_clear_error() {
    let holder = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = holder.local_addr().unwrap().port().to_string();
    let (code, stderr) = run_to_exit(&["--profile", "ideal", "--gateway-port", &port]);
    assert_eq!(code, 3, "{stderr}");
    assert!(stderr.contains(&format!("127.0.0.1:{port}")), "{stderr}");
    assert!(
        stderr.contains("gateway") && stderr.contains("--gateway-port"),
        "{stderr}"
    );
}
