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
            "invalid_argument",
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
