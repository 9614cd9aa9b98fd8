//! The peer: several wallets in one process, driven by the peer protocol.
//!
//! [`Peer::handle`] turns one [`protocol::Request`] into one
//! [`protocol::Response`]; it never panics on input and never fails the
//! process for a bad request. [`Peer::queue`] does the same in the request's
//! wallet lane, which is how the protocol's promise that "operations on one
//! wallet run one at a time" is kept. The `sphere-peer` binary owns the I/O:
//! it reads lines, queues each request as it arrives, runs the queued
//! requests concurrently (responses carry their ids) and writes answers.

mod lanes;
pub mod protocol;

use std::{collections::BTreeMap, future::Future, path::PathBuf, sync::Arc, time::Duration};

use serde::{Deserialize, de::DeserializeOwned};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    amount::{Amount, CoinId, Unit},
    identity::{Mnemonic, Nametag},
    perf,
    wallet::{Services, Wallet, WalletError, records::InvoiceState},
};
use protocol::{Request, Response};

/// Every op this peer answers, in the order `hello` lists them.
pub const OPS: &[&str] = &[
    "hello",
    "create_wallet",
    "import_wallet",
    "faucet",
    "sync",
    "receive",
    "balance",
    "tokens",
    "invoice_create",
    "invoice_deliver",
    "invoice_await",
    "invoice_pay",
    "invoice_status",
    "invoice_list",
    "history",
    "flush",
    "clear",
    "counters",
    "shutdown",
];

/// Result fields the harness must keep out of logs and reports.
pub const SECRET_FIELDS: &[&str] = &["mnemonic"];

/// A failed op: a kind and a message.
struct OpError {
    kind: &'static str,
    message: String,
}

impl From<WalletError> for OpError {
    fn from(error: WalletError) -> Self {
        OpError {
            kind: error.kind(),
            message: error.to_string(),
        }
    }
}

fn invalid(message: impl Into<String>) -> OpError {
    OpError {
        kind: "invalid_argument",
        message: message.into(),
    }
}

type OpResult = Result<Value, OpError>;

/// Whether the process should end after answering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AfterResponse {
    /// Keep serving.
    Continue,
    /// Exit 0 (the `shutdown` op).
    Exit,
}

/// The wallets of one peer process.
pub struct Peer {
    services: Services,
    data_dir: PathBuf,
    wallets: Mutex<BTreeMap<String, Wallet>>,
    lanes: lanes::Lanes,
}

impl Peer {
    /// A peer keeping wallets under `data_dir`.
    pub fn new(services: Services, data_dir: PathBuf) -> Peer {
        Peer {
            services,
            data_dir,
            wallets: Mutex::new(BTreeMap::new()),
            lanes: lanes::Lanes::default(),
        }
    }

    /// Queues `request` behind every request queued before it on the same
    /// wallet (its `wallet` argument) and returns the future that answers
    /// it. Call this in arrival order, then drive the future to the end
    /// (spawn it): requests on one wallet run one at a time in the order
    /// they were queued, so a pipelined `create_wallet` then `faucet` finds
    /// the wallet; requests on different wallets, or on none, run
    /// alongside.
    pub fn queue(
        self: &Arc<Self>,
        request: Request,
    ) -> impl Future<Output = (Response, AfterResponse)> + Send + 'static {
        // Taken now, synchronously: the place in the lane is the arrival
        // order, whatever order the spawned tasks happen to start in.
        let place = request
            .args
            .get("wallet")
            .and_then(Value::as_str)
            .map(|wallet| self.lanes.queue(wallet));
        let peer = Arc::clone(self);
        async move {
            let mut place = place;
            if let Some(place) = &mut place {
                place.turn().await;
            }
            let answer = peer.handle(request).await;
            drop(place);
            answer
        }
    }

    /// Answers one request at once, outside the wallet lanes: concurrent
    /// calls on one wallet are not ordered (use [`Peer::queue`] for that).
    pub async fn handle(&self, request: Request) -> (Response, AfterResponse) {
        let id = request.id.clone();
        let after = if request.op == "shutdown" {
            AfterResponse::Exit
        } else {
            AfterResponse::Continue
        };
        let response = match self.dispatch(&request.op, request.args).await {
            Ok(result) => Response::success(id, result),
            Err(error) => Response::failure(id, error.kind, error.message),
        };
        (response, after)
    }

    async fn dispatch(&self, op: &str, args: Value) -> OpResult {
        match op {
            "hello" => Ok(self.hello()),
            "create_wallet" => self.create_wallet(parse(op, args)?).await,
            "import_wallet" => self.import_wallet(parse(op, args)?).await,
            "faucet" => {
                let a: FaucetArgs = parse(op, args)?;
                let wallet = self.wallet(&a.wallet).await?;
                let ids = wallet
                    .faucet(coin(a.coin)?, amount(&a.amount, a.unit)?)
                    .await?;
                Ok(json!({ "token_ids": ids }))
            }
            "sync" => {
                let a: WalletArgs = parse(op, args)?;
                Ok(json!({ "changed": self.wallet(&a.wallet).await?.sync().await? }))
            }
            "receive" => {
                let a: ReceiveArgs = parse(op, args)?;
                let report = self.wallet(&a.wallet).await?.receive(a.finalize).await?;
                to_json(report)
            }
            "balance" => {
                let a: WalletArgs = parse(op, args)?;
                to_json(self.wallet(&a.wallet).await?.balance().await?)
            }
            "tokens" => {
                let a: WalletArgs = parse(op, args)?;
                Ok(json!({ "tokens": self.wallet(&a.wallet).await?.tokens().await? }))
            }
            "invoice_create" => {
                let a: InvoiceCreateArgs = parse(op, args)?;
                let wallet = self.wallet(&a.wallet).await?;
                let id = wallet
                    .invoice_create(amount(&a.amount, a.unit)?, coin(a.coin)?, a.memo)
                    .await?;
                Ok(json!({ "invoice_id": id }))
            }
            "invoice_deliver" => {
                let a: InvoiceDeliverArgs = parse(op, args)?;
                let to: Nametag =
                    a.to.parse()
                        .map_err(|e| invalid(format!("argument `to`: {e}")))?;
                let delivered = self
                    .wallet(&a.wallet)
                    .await?
                    .invoice_deliver(&a.invoice_id, &to)
                    .await?;
                Ok(json!({ "delivered": delivered }))
            }
            "invoice_await" => {
                let a: InvoiceAwaitArgs = parse(op, args)?;
                let visible = self
                    .wallet(&a.wallet)
                    .await?
                    .invoice_await(&a.invoice_id, Duration::from_millis(a.timeout_ms), a.state)
                    .await?;
                Ok(json!({ "visible": visible }))
            }
            "invoice_pay" => {
                let a: InvoiceArgs = parse(op, args)?;
                let transfer_id = self
                    .wallet(&a.wallet)
                    .await?
                    .invoice_pay(&a.invoice_id)
                    .await?;
                Ok(json!({ "transfer_id": transfer_id }))
            }
            "invoice_status" => {
                let a: InvoiceArgs = parse(op, args)?;
                let state = self
                    .wallet(&a.wallet)
                    .await?
                    .invoice_status(&a.invoice_id)
                    .await?;
                Ok(json!({ "state": state }))
            }
            "invoice_list" => {
                let a: InvoiceListArgs = parse(op, args)?;
                let list = self.wallet(&a.wallet).await?.invoice_list(a.state).await?;
                Ok(json!({ "invoices": list }))
            }
            "history" => {
                let a: WalletArgs = parse(op, args)?;
                to_json(self.wallet(&a.wallet).await?.history().await?)
            }
            "flush" => {
                let a: FlushArgs = parse(op, args)?;
                let wallet = self.wallet(&a.wallet).await?;
                match (a.force, a.publish) {
                    (_, true) => to_json(wallet.flush(a.force).await?),
                    (true, false) => to_json(wallet.leave_bundle().await?),
                    (false, false) => Err(invalid(
                        "argument `publish`: `false` only with `force = true` (leave a bundle unpublished)".to_owned(),
                    )),
                }
            }
            "clear" => {
                let a: WalletArgs = parse(op, args)?;
                self.clear(&a.wallet).await?;
                Ok(json!({}))
            }
            "counters" => Ok(json!({ "counters": perf::totals() })),
            "shutdown" => {
                self.close_all().await;
                Ok(json!({}))
            }
            other => Err(OpError {
                kind: "unknown_op",
                message: format!("unknown op `{other}` (known: {})", OPS.join(", ")),
            }),
        }
    }

    fn hello(&self) -> Value {
        json!({
            "name": "sphere-peer",
            "version": env!("CARGO_PKG_VERSION"),
            "variant": self.services.variants.to_map(),
            "time_scale": self.services.timers.time_scale(),
            "device": self.services.device,
            "ops": OPS,
            "secrets": SECRET_FIELDS,
        })
    }

    async fn wallet(&self, name: &str) -> Result<Wallet, OpError> {
        self.wallets
            .lock()
            .await
            .get(name)
            .cloned()
            .ok_or_else(|| OpError {
                kind: "unknown_wallet",
                message: format!(
                    "no wallet `{name}` in this peer (create_wallet or import_wallet first)"
                ),
            })
    }

    fn wallet_dir(&self, name: &str) -> Result<PathBuf, OpError> {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !valid {
            return Err(invalid(format!(
                "wallet name `{name}` must be 1-64 characters of letters, digits, `-` and `_`"
            )));
        }
        Ok(self.data_dir.join("wallets").join(name))
    }

    async fn claim_name(&self, name: &str) -> Result<PathBuf, OpError> {
        let dir = self.wallet_dir(name)?;
        if self.wallets.lock().await.contains_key(name) {
            return Err(OpError {
                kind: "wallet_exists",
                message: format!("wallet `{name}` already exists in this peer (clear it first)"),
            });
        }
        Ok(dir)
    }

    async fn create_wallet(&self, args: CreateWalletArgs) -> OpResult {
        let dir = self.claim_name(&args.wallet).await?;
        let nametag = args
            .nametag
            .map(|n| n.parse::<Nametag>())
            .transpose()
            .map_err(|e| invalid(format!("argument `nametag`: {e}")))?;
        let (wallet, mnemonic) =
            Wallet::create(self.services.clone(), &args.wallet, &dir, nametag).await?;
        let result = json!({
            "address": wallet.address().to_string(),
            "nametag": wallet.nametag().await?,
            "mnemonic": mnemonic.phrase(),
        });
        self.wallets.lock().await.insert(args.wallet, wallet);
        Ok(result)
    }

    async fn import_wallet(&self, args: ImportWalletArgs) -> OpResult {
        let dir = self.claim_name(&args.wallet).await?;
        let mnemonic = Mnemonic::parse(&args.mnemonic)
            .map_err(|e| invalid(format!("argument `mnemonic`: {e}")))?;
        let wallet = Wallet::import(
            self.services.clone(),
            &args.wallet,
            &dir,
            &mnemonic,
            args.nostr,
        )
        .await?;
        let result = json!({ "address": wallet.address().to_string() });
        self.wallets.lock().await.insert(args.wallet, wallet);
        Ok(result)
    }

    async fn clear(&self, name: &str) -> Result<(), OpError> {
        let wallet = self.wallet(name).await?;
        // Finish a pending flush first: `clear` wipes this device, not the
        // wallet, and must not silently drop writes made before it. Then
        // check that what recovery will need is really there before the
        // only local copy goes.
        wallet.close().await?;
        wallet.verify_recoverable().await?;
        self.wallets.lock().await.remove(name);
        let dir = wallet.dir().to_owned();
        drop(wallet);
        if dir.exists() {
            std::fs::remove_dir_all(&dir).map_err(|e| OpError {
                kind: "storage",
                message: format!("cannot wipe `{}`: {e}", dir.display()),
            })?;
        }
        Ok(())
    }

    /// Flushes and closes every wallet (shutdown, SIGTERM, end of input).
    pub async fn close_all(&self) {
        let wallets: Vec<Wallet> = self.wallets.lock().await.values().cloned().collect();
        for wallet in wallets {
            if let Err(error) = wallet.close().await {
                tracing::error!(wallet = %wallet.name(), %error, "flush on shutdown failed");
            }
        }
    }
}

fn parse<T: DeserializeOwned>(op: &str, args: Value) -> Result<T, OpError> {
    let args = if args.is_null() { json!({}) } else { args };
    serde_json::from_value(args).map_err(|e| invalid(format!("op `{op}`: {e}")))
}

fn to_json<T: serde::Serialize>(value: T) -> OpResult {
    serde_json::to_value(value).map_err(|e| OpError {
        kind: "internal",
        message: e.to_string(),
    })
}

fn amount(text: &str, unit: Option<Unit>) -> Result<Amount, OpError> {
    Amount::parse(text, unit.unwrap_or(Unit::Coin))
        .map_err(|e| invalid(format!("argument `amount`: {e}")))
}

fn coin(coin: Option<String>) -> Result<CoinId, OpError> {
    match coin {
        None => Ok(CoinId::uct()),
        Some(text) => text
            .parse()
            .map_err(|e| invalid(format!("argument `coin`: {e}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WalletArgs {
    wallet: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CreateWalletArgs {
    wallet: String,
    nametag: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImportWalletArgs {
    wallet: String,
    mnemonic: String,
    #[serde(default = "yes")]
    nostr: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FaucetArgs {
    wallet: String,
    coin: Option<String>,
    amount: String,
    unit: Option<Unit>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ReceiveArgs {
    wallet: String,
    #[serde(default)]
    finalize: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceCreateArgs {
    wallet: String,
    amount: String,
    unit: Option<Unit>,
    coin: Option<String>,
    memo: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceDeliverArgs {
    wallet: String,
    invoice_id: String,
    to: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceAwaitArgs {
    wallet: String,
    invoice_id: String,
    timeout_ms: u64,
    state: Option<InvoiceState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceArgs {
    wallet: String,
    invoice_id: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct InvoiceListArgs {
    wallet: String,
    state: Option<InvoiceState>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FlushArgs {
    wallet: String,
    #[serde(default)]
    force: bool,
    #[serde(default = "yes")]
    publish: bool,
}
