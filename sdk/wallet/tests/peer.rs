//! The `sphere-peer` process as a protocol server: bad input is answered
//! and survived, secrets never reach its log stream, and it ends cleanly.

mod support;

use std::process::Stdio;

use serde_json::{Value, json};
use sphere_sdk::identity::{Mnemonic, WalletKeys};
use support::{PeerProcess, TIME_SCALE, testnet};
use tokio::io::AsyncReadExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_clear_errors_and_the_peer_keeps_serving() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&testnet, dir.path(), &[]).await;
    peer.ok("create_wallet", json!({"wallet": "w"})).await;

    peer.send_raw("this is not json\n").await;
    let answer = peer.read_response().await;
    assert_eq!(answer["ok"], json!(false));
    assert_eq!(answer["error"]["kind"], json!("bad_request"), "{answer}");

    let cases: Vec<(&str, Value, &str, &str)> = vec![
        ("teleport", json!({}), "unknown_op", "unknown op `teleport`"),
        (
            "faucet",
            json!({"amount": "1"}),
            "invalid_argument",
            "missing field `wallet`",
        ),
        (
            "faucet",
            json!({"wallet": "w", "amount": 5}),
            "invalid_argument",
            "invalid type",
        ),
        (
            "faucet",
            json!({"wallet": "w", "amount": "1", "colour": "red"}),
            "invalid_argument",
            "unknown field `colour`",
        ),
        (
            "balance",
            json!({"wallet": "nobody"}),
            "unknown_wallet",
            "no wallet `nobody`",
        ),
        (
            "faucet",
            json!({"wallet": "w", "amount": "0.0000000000000000001"}),
            "invalid_argument",
            "19 decimals",
        ),
        (
            "create_wallet",
            json!({"wallet": "../escape"}),
            "invalid_argument",
            "wallet name",
        ),
        (
            "create_wallet",
            json!({"wallet": "w"}),
            "wallet_exists",
            "already exists",
        ),
        (
            "import_wallet",
            json!({"wallet": "x", "mnemonic": "one two three"}),
            "invalid_argument",
            "mnemonic",
        ),
    ];
    for (op, args, kind, needle) in cases {
        let answer = peer.request(op, args.clone()).await;
        assert_eq!(answer["ok"], json!(false), "{op} {args}: {answer}");
        assert_eq!(
            answer["error"]["kind"],
            json!(kind),
            "{op} {args}: {answer}"
        );
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{op} {args}: {message}");
        assert_eq!(message.lines().count(), 1, "one line: {message}");
    }
    // Still serving, state intact.
    let balance = peer.ok("balance", json!({"wallet": "w"})).await;
    assert_eq!(balance["text"], json!("no tokens"));
    assert!(peer.shutdown().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_are_answered_by_id() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&testnet, dir.path(), &[]).await;
    peer.send_raw("{\"id\":\"a\",\"op\":\"hello\"}\n{\"id\":\"b\",\"op\":\"counters\"}\n")
        .await;
    let mut ids = vec![
        peer.read_response().await["id"].clone(),
        peer.read_response().await["id"].clone(),
    ];
    ids.sort_by_key(|v| v.to_string());
    assert_eq!(ids, vec![json!("a"), json!("b")]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_secret_reaches_the_log_stream_even_at_trace_level() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let endpoints = testnet.endpoints();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_sphere-peer"))
        .arg("--data-dir")
        .arg(dir.path())
        .env("SPHERE_AGGREGATOR_URL", &endpoints.aggregator)
        .env("SPHERE_IPFS_GATEWAY", &endpoints.gateway)
        .env("SPHERE_NOSTR_RELAY", &endpoints.relay)
        .env("SPHERE_TIME_SCALE", TIME_SCALE)
        .env("RUST_LOG", "trace")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let log = tokio::spawn(async move {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text).await;
        text
    });
    let requests = [
        json!({"id": 1, "op": "create_wallet", "args": {"wallet": "s", "nametag": "secretive"}}),
        json!({"id": 2, "op": "faucet", "args": {"wallet": "s", "amount": "3"}}),
        json!({"id": 3, "op": "flush", "args": {"wallet": "s"}}),
        json!({"id": 4, "op": "shutdown"}),
    ];
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = tokio::io::BufReader::new(child.stdout.take().unwrap());
    let mut mnemonic = String::new();
    for request in requests {
        use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
        stdin
            .write_all(format!("{request}\n").as_bytes())
            .await
            .unwrap();
        let mut line = String::new();
        stdout.read_line(&mut line).await.unwrap();
        let answer: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(answer["ok"], json!(true), "{answer}");
        if let Some(words) = answer["result"]["mnemonic"].as_str() {
            mnemonic = words.to_owned();
        }
    }
    assert!(child.wait().await.unwrap().success());
    let log = log.await.unwrap();
    assert!(
        log.lines().count() > 20,
        "trace logging produced little: {log}"
    );
    let keys = WalletKeys::from_mnemonic(&Mnemonic::parse(&mnemonic).unwrap());
    let secrets = [
        mnemonic.clone(),
        mnemonic.split(' ').take(3).collect::<Vec<_>>().join(" "),
        hex::encode(keys.signing_key().to_bytes()),
        hex::encode(keys.pointer_key().to_bytes()),
        hex::encode(keys.profile_key()),
        keys.nostr_keys().secret_key().to_secret_hex(),
    ];
    for secret in secrets {
        assert!(!log.contains(&secret), "a secret reached stderr");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_flushes_and_exits_zero() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&testnet, dir.path(), &[]).await;
    let created = peer.ok("create_wallet", json!({"wallet": "t"})).await;
    peer.ok("faucet", json!({"wallet": "t", "amount": "7"}))
        .await;
    // No explicit flush: SIGTERM must flush before exiting.
    let pid = peer.child.id().unwrap() as i32;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), peer.child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut fresh = PeerProcess::start(&testnet, &dir.path().join("other"), &[]).await;
    fresh
        .ok(
            "import_wallet",
            json!({"wallet": "t", "mnemonic": created["mnemonic"], "nostr": false}),
        )
        .await;
    let balance = fresh.ok("balance", json!({"wallet": "t"})).await;
    assert_eq!(balance["text"], json!("UCT: 7 (1 token)"));
}

#[test]
fn a_time_scale_out_of_range_is_refused_at_start_up() {
    let dir = tempfile::tempdir().unwrap();
    for value in ["1e30", "1001", "-1", "0", "NaN", "inf", "fast"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_sphere-peer"))
            .arg("--data-dir")
            .arg(dir.path())
            // Never contacted: the peer must refuse the scale before serving.
            .env("SPHERE_AGGREGATOR_URL", "http://127.0.0.1:9")
            .env("SPHERE_IPFS_GATEWAY", "http://127.0.0.1:9")
            .env("SPHERE_NOSTR_RELAY", "ws://127.0.0.1:9")
            .env("SPHERE_TIME_SCALE", value)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{value}: {stderr}");
        assert_eq!(
            stderr.trim(),
            format!("sphere-peer: SPHERE_TIME_SCALE=`{value}`: expected a number in (0, 1000]")
        );
        assert!(output.stdout.is_empty(), "{value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_line_that_is_not_utf8_is_answered_and_the_peer_keeps_serving() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&testnet, dir.path(), &[]).await;
    peer.send_bytes(b"{\"id\":1,\"op\":\"hel\xfflo\"}\n").await;
    let answer = peer.read_response().await;
    assert_eq!(answer["id"], Value::Null, "{answer}");
    assert_eq!(answer["ok"], json!(false), "{answer}");
    assert_eq!(answer["error"]["kind"], json!("bad_request"), "{answer}");
    let message = answer["error"]["message"].as_str().unwrap();
    assert!(message.contains("utf-8"), "{message}");
    // The lines after it are served as usual.
    assert_eq!(
        peer.ok("hello", json!({})).await["name"],
        json!("sphere-peer")
    );
    assert!(peer.shutdown().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_requests_on_one_wallet_run_in_arrival_order() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&testnet, dir.path(), &[]).await;
    let requests = [
        json!({"id": 1, "op": "create_wallet", "args": {"wallet": "p"}}),
        json!({"id": 2, "op": "faucet", "args": {"wallet": "p", "amount": "5"}}),
        json!({"id": 3, "op": "balance", "args": {"wallet": "p"}}),
        json!({"id": 4, "op": "create_wallet", "args": {"wallet": "p"}}),
    ];
    // One write: every line is in the peer's stdin before the first runs.
    let lines: String = requests.iter().map(|r| format!("{r}\n")).collect();
    peer.send_raw(&lines).await;
    let answers = peer.read_responses(requests.len()).await;
    for id in [1, 2, 3] {
        assert_eq!(answers[&id]["ok"], json!(true), "{}", answers[&id]);
    }
    assert_eq!(
        answers[&3]["result"]["text"],
        json!("UCT: 5 (1 token)"),
        "the faucet ran before the balance"
    );
    let duplicate = &answers[&4];
    assert_eq!(duplicate["ok"], json!(false), "{duplicate}");
    assert_eq!(
        duplicate["error"]["kind"],
        json!("wallet_exists"),
        "{duplicate}"
    );
    let message = duplicate["error"]["message"].as_str().unwrap();
    assert!(message.contains("`p`"), "{message}");
    assert!(peer.shutdown().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_on_different_wallets_still_run_alongside() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&testnet, dir.path(), &[]).await;
    peer.ok("create_wallet", json!({"wallet": "slow"})).await;
    peer.ok("create_wallet", json!({"wallet": "quick"})).await;
    let requests = [
        json!({"id": 10, "op": "invoice_await",
               "args": {"wallet": "slow", "invoice_id": "none", "timeout_ms": 3000}}),
        json!({"id": 11, "op": "balance", "args": {"wallet": "quick"}}),
    ];
    let lines: String = requests.iter().map(|r| format!("{r}\n")).collect();
    peer.send_raw(&lines).await;
    let first = peer.read_response().await;
    assert_eq!(first["id"], json!(11), "`quick` waited for `slow`: {first}");
    let second = peer.read_response().await;
    assert_eq!(second["result"]["visible"], json!(false), "{second}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_of_input_flushes_and_exits_zero() {
    let testnet = testnet(&[]).await;
    let dir = tempfile::tempdir().unwrap();
    let mut peer = PeerProcess::start(&testnet, dir.path(), &[]).await;
    let created = peer.ok("create_wallet", json!({"wallet": "e"})).await;
    peer.ok("faucet", json!({"wallet": "e", "amount": "4"}))
        .await;
    // No explicit flush: closing stdin must flush before exiting.
    peer.close_stdin();
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), peer.child.wait())
        .await
        .expect("the peer exits when stdin closes")
        .unwrap();
    assert!(status.success(), "{status:?}");
    let mut fresh = PeerProcess::start(&testnet, &dir.path().join("other"), &[]).await;
    fresh
        .ok(
            "import_wallet",
            json!({"wallet": "e", "mnemonic": created["mnemonic"], "nostr": false}),
        )
        .await;
    let balance = fresh.ok("balance", json!({"wallet": "e"})).await;
    assert_eq!(balance["text"], json!("UCT: 4 (1 token)"));
}
