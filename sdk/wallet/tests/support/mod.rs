//! Shared helpers: an in-process testnet and `sphere-peer` child processes
//! driven through the peer protocol, as the harness drives them.

#![allow(dead_code, unreachable_pub)]

pub mod scenario;

use std::{path::Path, process::Stdio, time::Duration};

use serde_json::{Value, json};
use sphere_testnet::{NetworkProfile, RunningTestnet, ServicePorts, TestnetConfig};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines},
    process::{Child, ChildStdin, ChildStdout, Command},
};

/// The SDK's time scale in these tests; the testnet profile matches it.
pub const TIME_SCALE: &str = "0.05";

/// A fresh testnet with the CI shape, sped up to [`TIME_SCALE`].
pub async fn testnet(overrides: &[&str]) -> RunningTestnet {
    let mut all: Vec<String> = vec![format!("time_scale={TIME_SCALE}")];
    all.extend(overrides.iter().map(|s| (*s).to_owned()));
    let profile = NetworkProfile::load("ci", &all).expect("profile");
    RunningTestnet::start(TestnetConfig {
        profile,
        data_dir: None,
        ports: ServicePorts::default(),
    })
    .await
    .expect("testnet starts")
}

/// A `sphere-peer` child speaking the protocol.
pub struct PeerProcess {
    pub child: Child,
    /// `None` once [`PeerProcess::close_stdin`] has closed it.
    stdin: Option<ChildStdin>,
    stdout: Lines<BufReader<ChildStdout>>,
    next_id: u64,
}

impl PeerProcess {
    pub async fn start(
        testnet: &RunningTestnet,
        data_dir: &Path,
        env: &[(&str, &str)],
    ) -> PeerProcess {
        let endpoints = testnet.endpoints();
        let mut command = Command::new(env!("CARGO_BIN_EXE_sphere-peer"));
        command
            .arg("--data-dir")
            .arg(data_dir)
            .env("SPHERE_AGGREGATOR_URL", &endpoints.aggregator)
            .env("SPHERE_IPFS_GATEWAY", &endpoints.gateway)
            .env("SPHERE_NOSTR_RELAY", &endpoints.relay)
            .env("SPHERE_TIME_SCALE", TIME_SCALE)
            .env("SPHERE_PERF", "1")
            .env("SPHERE_PERF_DUMP_MS", "60000")
            .env("RUST_LOG", "warn")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        let mut child = command.spawn().expect("spawn sphere-peer");
        let stdin = child.stdin.take().expect("stdin");
        let stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        PeerProcess {
            child,
            stdin: Some(stdin),
            stdout,
            next_id: 1,
        }
    }

    /// Sends one request and returns the whole response.
    pub async fn request(&mut self, op: &str, args: Value) -> Value {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"id": id, "op": op, "args": args}).to_string() + "\n";
        self.send_raw(&line).await;
        let response = self.read_response().await;
        assert_eq!(response["id"], json!(id), "{response}");
        response
    }

    pub async fn send_raw(&mut self, line: &str) {
        self.send_bytes(line.as_bytes()).await;
    }

    /// Writes `bytes` to the peer's stdin as they are, in one write.
    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin is open");
        stdin.write_all(bytes).await.expect("write request");
        stdin.flush().await.expect("flush request");
    }

    /// Closes the peer's stdin: end of input.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads `count` responses, whatever their order, by id.
    pub async fn read_responses(&mut self, count: usize) -> std::collections::BTreeMap<u64, Value> {
        let mut by_id = std::collections::BTreeMap::new();
        for _ in 0..count {
            let response = self.read_response().await;
            let id = response["id"].as_u64().expect("numeric id");
            assert!(
                by_id.insert(id, response).is_none(),
                "id {id} answered twice"
            );
        }
        by_id
    }

    pub async fn read_response(&mut self) -> Value {
        let line = tokio::time::timeout(Duration::from_secs(120), self.stdout.next_line())
            .await
            .expect("response within 120 s")
            .expect("read stdout")
            .expect("peer closed stdout");
        serde_json::from_str(&line).expect("response is JSON")
    }

    /// Sends one request that must succeed and returns its result.
    pub async fn ok(&mut self, op: &str, args: Value) -> Value {
        let response = self.request(op, args.clone()).await;
        assert_eq!(response["ok"], json!(true), "{op} {args}: {response}");
        response["result"].clone()
    }

    pub async fn shutdown(mut self) -> std::process::ExitStatus {
        self.ok("shutdown", json!({})).await;
        tokio::time::timeout(Duration::from_secs(60), self.child.wait())
            .await
            .expect("peer exits after shutdown")
            .expect("wait")
    }
}

/// What the scenario captures of a wallet to compare before and after.
pub async fn capture(peer: &mut PeerProcess, wallet: &str) -> Value {
    json!({
        "balance": peer.ok("balance", json!({"wallet": wallet})).await["text"],
        "tokens": peer.ok("tokens", json!({"wallet": wallet})).await["tokens"],
        "invoices": peer.ok("invoice_list", json!({"wallet": wallet})).await["invoices"],
    })
}
