//! The SDK's own invariant after a peer kill, for the fault suite: reopen
//! every wallet the killed run hosted and check that no token was lost or
//! is held twice.
//!
//! Three pieces make that possible from outside the harness:
//! - [`SharedTestnet`]: a real testnet the test owns, fronted for the
//!   harness by `fixtures/attached_testnet.py`, so it outlives the harness's
//!   teardown (its relay keeps messages in memory only: a new testnet would
//!   have lost the transfers in flight and faked a lost token);
//! - [`Tap`]: what `fixtures/tap_peer.py` recorded of each peer (its
//!   environment, its wallets' mnemonics, the faucet calls and their
//!   answers), since the harness redacts mnemonics everywhere;
//! - [`reopen_and_check`]: a fresh `sphere-peer` on each kept data dir,
//!   every wallet imported from its mnemonic (which finishes interrupted
//!   payments), settled, and the ledger compared with the minted supply.
//!
//! Included from `faults.rs` by path: `support/mod.rs` is shared by every
//! test binary and this is the fault suite's alone.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::{BufRead, BufReader, Write},
    path::{Path, PathBuf},
    process::{Child, ChildStdin, Command, Stdio},
    sync::mpsc,
    time::{Duration, Instant},
};

use serde_json::{Value, json};

/// How long the testnet and a reopened peer may take to get ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// One request to a reopened peer (an IPFS-only import at the quick
/// profile takes well under this).
const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);
/// Receive, flush and sync rounds over every device before the ledger must
/// have settled.
const SETTLE_ROUNDS: usize = 12;
/// Base units per coin (every coin has 18 decimals).
const BASE_PER_COIN: u128 = 1_000_000_000_000_000_000;

/// A real `sphere-testnet` started by the test. It stops when the test
/// drops it, and also when the test process dies (it watches its stdin).
pub(crate) struct SharedTestnet {
    child: Child,
    /// Where its ready line is, for `attached_testnet.py`.
    pub(crate) ready_file: PathBuf,
}

impl SharedTestnet {
    /// Starts `testnet` on the quick profile (the trials' profile) with
    /// `seed`, and writes its ready line to `ready_file` (its log goes
    /// beside it, as evidence should a check fail).
    pub(crate) fn start(testnet: &str, seed: &str, ready_file: PathBuf) -> SharedTestnet {
        let log = ready_file.with_extension("log");
        let stderr = std::fs::File::create(&log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new(testnet)
            .args(["--profile", "quick", "--set", &format!("seed={seed}")])
            .env("SPHERE_STOP_ON_STDIN_EOF", "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{testnet}`: {e}"));
        let lines = line_reader(child.stdout.take().expect("piped stdout"));
        let ready = lines.recv_timeout(READY_TIMEOUT);
        let testnet = SharedTestnet { child, ready_file };
        let ready = ready.expect("the shared testnet printed no ready line");
        std::fs::write(&testnet.ready_file, format!("{ready}\n"))
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", testnet.ready_file.display()));
        testnet
    }

    /// Its pid, which the trial's leftover check spares while it is needed.
    pub(crate) fn pid(&self) -> i32 {
        self.child.id() as i32
    }
}

impl Drop for SharedTestnet {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Every line of `pipe`, from a thread, so reads can be bounded in time.
fn line_reader(pipe: impl std::io::Read + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(pipe).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// One peer as the tap saw it.
#[derive(Debug, Default)]
struct TappedPeer {
    data_dir: PathBuf,
    /// The `SPHERE_*` environment the harness gave it.
    env: BTreeMap<String, String>,
    /// Wallet name → mnemonic, for every wallet it hosted.
    wallets: BTreeMap<String, String>,
}

/// What `tap_peer.py` recorded of a run's peers.
#[derive(Debug, Default)]
pub(crate) struct Tap {
    peers: BTreeMap<String, TappedPeer>,
    /// Base units minted by faucet calls answered ok, per coin.
    minted: BTreeMap<String, u128>,
    /// Faucet calls sent but not answered ok (`wallet amount coin`): the
    /// supply they minted, if any, is unknown.
    uncertain: Vec<String>,
}

impl Tap {
    /// Reads every `<role>.jsonl` in `dir`.
    pub(crate) fn read(dir: &Path) -> Tap {
        let mut tap = Tap::default();
        let entries = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("cannot read the tap {}: {e}", dir.display()));
        let mut faucets = BTreeMap::new();
        let mut answered = BTreeMap::new();
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            let (Some(role), Some("jsonl")) = (
                path.file_stem().and_then(|s| s.to_str()),
                path.extension().and_then(|s| s.to_str()),
            ) else {
                continue;
            };
            let text = std::fs::read_to_string(&path)
                .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
            let peer = tap.peers.entry(role.to_owned()).or_default();
            for line in text.lines() {
                let Ok(record) = serde_json::from_str::<Value>(line) else {
                    continue;
                };
                // Request ids are per connection: key them by role.
                let id = (role.to_owned(), record["id"].to_string());
                match record["event"].as_str() {
                    Some("start") => {
                        peer.data_dir = PathBuf::from(record["data_dir"].as_str().unwrap_or(""));
                        if let Some(env) = record["env"].as_object() {
                            peer.env = env
                                .iter()
                                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                                .collect();
                        }
                    }
                    Some("wallet") => {
                        if let (Some(wallet), Some(mnemonic)) =
                            (record["wallet"].as_str(), record["mnemonic"].as_str())
                        {
                            peer.wallets.insert(wallet.to_owned(), mnemonic.to_owned());
                        }
                    }
                    Some("faucet_sent") => {
                        faucets.insert(id, record);
                    }
                    Some("faucet_ok") => {
                        answered.insert(id, true);
                    }
                    Some("faucet_failed") => {
                        answered.insert(id, false);
                    }
                    _ => {}
                }
            }
        }
        for (id, sent) in faucets {
            let coin = sent["coin"].as_str().unwrap_or("UCT").to_owned();
            let amount = sent["amount"].as_str().unwrap_or("?");
            let base = match sent["unit"].as_str() {
                Some("base") => amount.parse().ok(),
                _ => coin_to_base(amount),
            };
            match (answered.get(&id), base) {
                (Some(true), Some(base)) => *tap.minted.entry(coin).or_default() += base,
                _ => tap.uncertain.push(format!(
                    "{} {amount} {coin}",
                    sent["wallet"].as_str().unwrap_or("?")
                )),
            }
        }
        tap
    }
}

/// `"99.999999999989"` coins in base units (18 decimals).
fn coin_to_base(amount: &str) -> Option<u128> {
    let (whole, fraction) = amount.split_once('.').unwrap_or((amount, ""));
    if fraction.len() > 18 {
        return None;
    }
    let whole: u128 = if whole.is_empty() {
        0
    } else {
        whole.parse().ok()?
    };
    let fraction: u128 = if fraction.is_empty() {
        0
    } else {
        format!("{fraction:0<18}").parse().ok()?
    };
    whole.checked_mul(BASE_PER_COIN)?.checked_add(fraction)
}

/// A `sphere-peer` reopened on a kept data dir.
struct ReopenedPeer {
    role: String,
    child: Child,
    stdin: Option<ChildStdin>,
    lines: mpsc::Receiver<String>,
    next_id: u64,
}

impl ReopenedPeer {
    fn start(peer: &str, role: &str, tapped: &TappedPeer, log: &Path) -> ReopenedPeer {
        let stderr = std::fs::File::create(log)
            .unwrap_or_else(|e| panic!("cannot create {}: {e}", log.display()));
        let mut child = Command::new(peer)
            .arg("--data-dir")
            .arg(&tapped.data_dir)
            .envs(&tapped.env)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start `{peer}`: {e}"));
        let lines = line_reader(child.stdout.take().expect("piped stdout"));
        let stdin = child.stdin.take();
        ReopenedPeer {
            role: role.to_owned(),
            child,
            stdin,
            lines,
            next_id: 1,
        }
    }

    /// The result of `op`, or its error object.
    fn request(&mut self, op: &str, args: Value) -> Result<Value, Value> {
        let id = self.next_id;
        self.next_id += 1;
        let line = json!({"id": id, "op": op, "args": args}).to_string() + "\n";
        let stdin = self.stdin.as_mut().expect("stdin open until shutdown");
        if let Err(e) = stdin
            .write_all(line.as_bytes())
            .and_then(|()| stdin.flush())
        {
            panic!("reopened {}: cannot send `{op}`: {e}", self.role);
        }
        let deadline = Instant::now() + REQUEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = match self.lines.recv_timeout(left) {
                Ok(line) => line,
                Err(_) => panic!(
                    "reopened {}: no answer to `{op}` within {REQUEST_TIMEOUT:?}",
                    self.role
                ),
            };
            let Ok(response) = serde_json::from_str::<Value>(&line) else {
                continue;
            };
            if response["id"] != json!(id) {
                continue;
            }
            return if response["ok"] == json!(true) {
                Ok(response["result"].clone())
            } else {
                Err(response["error"].clone())
            };
        }
    }

    /// Asks `shutdown` (which flushes), then waits for the exit, bounded.
    fn shutdown(mut self) {
        let _ = self.request("shutdown", json!({}));
        drop(self.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ReopenedPeer {
    fn drop(&mut self) {
        // A panic mid-check must not leave the peer behind.
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// One token as a device holds it: id, coin, amount (coins), state hash.
type Token = (String, String, String, String);

/// What the reopened ledger came to.
#[derive(Debug)]
pub(crate) struct Reopened {
    /// Identities (wallet names) reopened.
    pub(crate) identities: usize,
    /// Devices reopened, as `peer1/alice`.
    pub(crate) devices: Vec<String>,
    /// Distinct tokens held across identities.
    pub(crate) tokens: usize,
    /// Base units minted per coin, or `None` when a faucet call was in
    /// flight at the kill (then conservation cannot be judged).
    pub(crate) supply: Option<BTreeMap<String, u128>>,
    /// The faucet calls in flight, when `supply` is `None`.
    pub(crate) uncertain: Vec<String>,
    /// Every broken invariant, with the evidence.
    pub(crate) violations: Vec<String>,
    /// Tokens missing from the supply (base units, per coin): 0 when held.
    pub(crate) lost: BTreeMap<String, i128>,
}

/// Reopens every wallet of the run tapped in `tap_dir` with `peer`, settles
/// the ledger, and checks it: per identity the devices agree, no token is
/// held by two identities, and (when no faucet call was in flight) the
/// tokens held sum to the supply minted.
pub(crate) fn reopen_and_check(peer: &str, tap_dir: &Path) -> Reopened {
    let tap = Tap::read(tap_dir);
    let mut violations = Vec::new();
    let mut peers: Vec<ReopenedPeer> = Vec::new();
    // (peer index, wallet) for every device.
    let mut devices: Vec<(usize, String)> = Vec::new();
    let mut mnemonics: BTreeMap<&str, &str> = BTreeMap::new();
    for (role, tapped) in &tap.peers {
        if tapped.wallets.is_empty() {
            continue;
        }
        let log = tap_dir.join(format!("reopen-{role}.log"));
        let mut reopened = ReopenedPeer::start(peer, role, tapped, &log);
        if let Err(error) = reopened.request("hello", json!({})) {
            panic!("reopened {role}: hello failed: {error}");
        }
        for (wallet, mnemonic) in &tapped.wallets {
            if let Some(other) = mnemonics.insert(wallet, mnemonic)
                && other != mnemonic
            {
                panic!("the tap holds two mnemonics for `{wallet}`");
            }
            // Local state first, which finishes interrupted payments.
            let args = json!({"wallet": wallet, "mnemonic": mnemonic});
            match reopened.request("import_wallet", args) {
                Ok(_) => devices.push((peers.len(), wallet.clone())),
                Err(error) => violations.push(format!("{role}/{wallet}: reopen failed: {error}")),
            }
        }
        peers.push(reopened);
    }
    let supply = tap.uncertain.is_empty().then(|| tap.minted.clone());
    let mut ledger = BTreeMap::new();
    for round in 1..=SETTLE_ROUNDS {
        for (index, wallet) in &devices {
            let peer = &mut peers[*index];
            let role = peer.role.clone();
            for (op, args) in [
                ("receive", json!({"wallet": wallet, "finalize": true})),
                ("flush", json!({"wallet": wallet})),
                ("sync", json!({"wallet": wallet})),
            ] {
                if let Err(error) = peer.request(op, args)
                    && round == SETTLE_ROUNDS
                {
                    violations.push(format!("{role}/{wallet}: `{op}` failed: {error}"));
                }
            }
        }
        ledger = read_ledger(&mut peers, &devices);
        if judge(&ledger, supply.as_ref()).0.is_empty() {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let (found, lost) = judge(&ledger, supply.as_ref());
    violations.extend(found);
    let tokens = ledger
        .values()
        .filter_map(|devices| devices.values().next())
        .map(Vec::len)
        .sum();
    let reopened = Reopened {
        identities: ledger.len(),
        devices: devices
            .iter()
            .map(|(index, wallet)| format!("{}/{wallet}", peers[*index].role))
            .collect(),
        tokens,
        supply,
        uncertain: tap.uncertain,
        violations,
        lost,
    };
    for peer in peers {
        peer.shutdown();
    }
    reopened
}

/// Identity → device (role) → its tokens, sorted.
type Ledger = BTreeMap<String, BTreeMap<String, Vec<Token>>>;

fn read_ledger(peers: &mut [ReopenedPeer], devices: &[(usize, String)]) -> Ledger {
    let mut ledger = Ledger::new();
    for (index, wallet) in devices {
        let peer = &mut peers[*index];
        let Ok(result) = peer.request("tokens", json!({"wallet": wallet})) else {
            continue;
        };
        let mut tokens: Vec<Token> = result["tokens"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .map(|t| {
                let field = |k: &str| t[k].as_str().unwrap_or("?").to_owned();
                (
                    field("id"),
                    field("coin"),
                    field("amount"),
                    field("state_hash"),
                )
            })
            .collect();
        tokens.sort();
        ledger
            .entry(wallet.clone())
            .or_default()
            .insert(peer.role.clone(), tokens);
    }
    ledger
}

/// The invariants' violations, and the base units missing per coin (minted
/// minus held: positive is lost, negative is made up).
fn judge(
    ledger: &Ledger,
    supply: Option<&BTreeMap<String, u128>>,
) -> (Vec<String>, BTreeMap<String, i128>) {
    let mut violations = Vec::new();
    let mut holders: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    let mut held: BTreeMap<String, u128> = BTreeMap::new();
    for (wallet, devices) in ledger {
        let mut views = devices.iter();
        let Some((first_role, first)) = views.next() else {
            continue;
        };
        for (role, tokens) in views {
            if tokens != first {
                violations.push(format!(
                    "`{wallet}`: devices disagree: {first_role} holds {first:?}, {role} holds {tokens:?}"
                ));
            }
        }
        for (id, coin, amount, _) in first {
            holders.entry(id).or_default().push(wallet);
            match coin_to_base(amount) {
                Some(base) => *held.entry(coin.clone()).or_default() += base,
                None => violations.push(format!("`{wallet}`: token {id} has amount `{amount}`")),
            }
        }
    }
    for (id, wallets) in &holders {
        if wallets.len() > 1 {
            violations.push(format!("token {id} is held by {wallets:?}"));
        }
    }
    let mut lost = BTreeMap::new();
    if let Some(supply) = supply {
        let coins: BTreeSet<&String> = supply.keys().chain(held.keys()).collect();
        for coin in coins {
            let minted = supply.get(coin).copied().unwrap_or(0);
            let holding = held.get(coin).copied().unwrap_or(0);
            let missing = minted as i128 - holding as i128;
            if missing != 0 {
                violations.push(format!(
                    "{coin}: supply not conserved: {minted} base units minted, {holding} held"
                ));
            }
            lost.insert(coin.clone(), missing);
        }
    }
    (violations, lost)
}

#[test]
fn coin_amounts_convert_to_base_units() {
    assert_eq!(coin_to_base("100"), Some(100 * BASE_PER_COIN));
    assert_eq!(
        coin_to_base("99.999999999989"),
        Some(99 * BASE_PER_COIN + 999_999_999_989_000_000)
    );
    assert_eq!(coin_to_base("0.000000000000000001"), Some(1));
    assert_eq!(coin_to_base("1.0000000000000000001"), None);
}
