//! A wallet: keys, profile, tokens, and the services it talks to.
//!
//! [`Wallet`] is a cheap handle; every operation takes the wallet's state
//! lock for its duration, so operations on one wallet run one at a time (as
//! a single-device SDK would) while wallets of one peer run side by side.
//! A background task runs the debounced flush.
//!
//! Submodules, one job each: [`records`] (what the profile holds),
//! `flush` (bundle, snapshot, pointer, HEAD-verify), `sync` (pointer
//! discovery, snapshot apply, bundle ingestion, full load), `backup` (the
//! token set on the relay, which spares a joining device the bundles),
//! `payments` (faucet, invoices, transfers in and out), `view` (balance,
//! tokens, history).

mod backup;
mod flush;
mod payments;
pub mod records;
mod sync;
mod view;

use std::{
    collections::{BTreeMap, BTreeSet},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::{Deserialize, Serialize};
use sphere_protocol::ipld::{Block, Cid};
use tokio::sync::{Mutex, MutexGuard, watch};

pub use flush::FlushReport;
pub use payments::ReceiveReport;
pub use view::{Balance, CoinBalance, HistoryView, InvoiceView, TokenView};

use crate::{
    config::{Timers, Variants, WritePath},
    identity::{Address, Mnemonic, Nametag, WalletKeys},
    pointer::Pointer,
    profile::{Profile, WriterId},
    store::{Table, WalletStore},
    token::{Token, TokenId},
    transport::{aggregator::AggregatorClient, gateway::GatewayClient, nostr::NostrLink},
};

/// Why a wallet operation failed. `kind()` is what the peer protocol reports.
#[derive(Debug, thiserror::Error)]
pub enum WalletError {
    /// Bad input from the caller.
    #[error("{0}")]
    Invalid(String),
    /// Not enough funds.
    #[error("insufficient funds: {0}")]
    InsufficientFunds(String),
    /// Something named does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The wallet was imported without Nostr and the operation needs it.
    #[error("wallet `{0}` has no Nostr connection (imported with nostr = false)")]
    NoNostr(String),
    /// A service failed or refused.
    #[error("{0}")]
    Network(String),
    /// Local storage failed.
    #[error("{0}")]
    Storage(String),
    /// A token or proof does not verify.
    #[error("{0}")]
    Verification(String),
}

impl WalletError {
    /// A short machine-readable kind.
    pub fn kind(&self) -> &'static str {
        match self {
            WalletError::Invalid(_) => "invalid_argument",
            WalletError::InsufficientFunds(_) => "insufficient_funds",
            WalletError::NotFound(_) => "not_found",
            WalletError::NoNostr(_) => "no_nostr",
            WalletError::Network(_) => "network",
            WalletError::Storage(_) => "storage",
            WalletError::Verification(_) => "verification",
        }
    }
}

macro_rules! wallet_error_from {
    ($variant:ident: $($source:ty),+) => {
        $(impl From<$source> for WalletError {
            fn from(error: $source) -> Self {
                WalletError::$variant(error.to_string())
            }
        })+
    };
}

wallet_error_from!(Storage: crate::store::StoreError, crate::profile::ProfileError, serde_json::Error);
wallet_error_from!(Network:
    crate::transport::aggregator::AggregatorError,
    crate::transport::gateway::GatewayError,
    crate::transport::nostr::NostrError,
    crate::pointer::PointerError,
    crate::token::ops::TokenOpError
);
wallet_error_from!(Verification:
    crate::token::verify::TokenError,
    crate::bundle::BundleError,
    crate::snapshot::SnapshotError
);

/// The services and settings every wallet of a peer shares.
#[derive(Clone)]
pub struct Services {
    /// The aggregator client.
    pub aggregator: AggregatorClient,
    /// The gateway client.
    pub gateway: GatewayClient,
    /// The relay's URL.
    pub relay_url: String,
    /// Scaled timers.
    pub timers: Timers,
    /// The variants in force.
    pub variants: Variants,
    /// This peer process's device id (distinguishes a wallet's devices).
    pub device: String,
}

/// Local facts about the wallet that are not part of its profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
struct LocalMeta {
    /// The last pointer version published or applied.
    pointer_version: u64,
    /// Bundles whose tokens were ingested.
    ingested_bundles: BTreeSet<String>,
    /// Local changes not yet flushed.
    dirty: bool,
    /// Digest of the token set the newest bundle holds, so a flush that
    /// finds it unchanged publishes without pinning the same tokens again.
    #[serde(default)]
    bundled_token_set: Option<String>,
}

const META_KEY: &str = "local";

pub(crate) struct State {
    store: WalletStore,
    profile: Profile,
    tokens: BTreeMap<TokenId, Token>,
    meta: LocalMeta,
    /// Nostr events to acknowledge once a flush has made them durable.
    pending_acks: Vec<String>,
}

struct Inner {
    name: String,
    keys: WalletKeys,
    address: Address,
    services: Services,
    pointer: Pointer,
    nostr: Option<NostrLink>,
    dir: PathBuf,
    state: Mutex<State>,
    flush_due: watch::Sender<Option<tokio::time::Instant>>,
}

/// A handle on one wallet.
#[derive(Clone)]
pub struct Wallet {
    inner: Arc<Inner>,
}

impl Wallet {
    /// A new wallet with a fresh 12-word mnemonic, optionally registering
    /// `nametag`. Returns the mnemonic, which the caller must keep secret.
    pub async fn create(
        services: Services,
        name: &str,
        dir: &Path,
        nametag: Option<Nametag>,
    ) -> Result<(Wallet, Mnemonic), WalletError> {
        let mnemonic = Mnemonic::generate(crate::identity::WordCount::Twelve);
        let wallet = Wallet::open(services, name, dir, &mnemonic, true).await?;
        if let Some(nametag) = nametag {
            wallet.register_nametag(&nametag).await?;
        }
        Ok((wallet, mnemonic))
    }

    /// A wallet restored from `mnemonic`: local state if `dir` has it, then
    /// whatever the pointer and gateway hold. With `nostr` the tokens come
    /// from the relay's backup of the latest pointer version when there is
    /// one (`backup`); with `nostr` false the wallet never touches the relay
    /// (state comes from the aggregator and IPFS only).
    pub async fn import(
        services: Services,
        name: &str,
        dir: &Path,
        mnemonic: &Mnemonic,
        nostr: bool,
    ) -> Result<Wallet, WalletError> {
        let wallet = Wallet::open(services, name, dir, mnemonic, nostr).await?;
        wallet.load().await?;
        Ok(wallet)
    }

    async fn open(
        services: Services,
        name: &str,
        dir: &Path,
        mnemonic: &Mnemonic,
        nostr: bool,
    ) -> Result<Wallet, WalletError> {
        let keys = WalletKeys::from_mnemonic(mnemonic);
        let address = keys.address();
        let store = WalletStore::open(dir)?;
        let writer = WriterId::new(address.to_string(), services.device.clone());
        let profile = Profile::open(
            store.clone(),
            *keys.profile_key(),
            writer,
            services.variants.tombstone_merge,
        )?;
        let mut tokens = BTreeMap::new();
        for (_, bytes) in store.scan_prefix(Table::Tokens, "")? {
            let token: Token = serde_json::from_slice(&bytes)?;
            tokens.insert(token.id(), token);
        }
        let meta = store
            .get_json::<LocalMeta>(Table::Meta, META_KEY)?
            .unwrap_or_default();
        let nostr = if nostr {
            Some(NostrLink::connect(&services.relay_url, keys.nostr_keys(), services.timers).await?)
        } else {
            None
        };
        let pointer = Pointer::new(
            services.aggregator.clone(),
            keys.pointer_key().clone(),
            address.clone(),
            services.timers,
        );
        let (flush_due, _) = watch::channel(None);
        let wallet = Wallet {
            inner: Arc::new(Inner {
                name: name.to_owned(),
                keys,
                address,
                services,
                pointer,
                nostr,
                dir: dir.to_owned(),
                state: Mutex::new(State {
                    store,
                    profile,
                    tokens,
                    meta,
                    pending_acks: Vec::new(),
                }),
                flush_due,
            }),
        };
        wallet.spawn_debounced_flush();
        wallet.resume_outbox().await?;
        Ok(wallet)
    }

    /// The wallet's name in this peer.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// The wallet's address.
    pub fn address(&self) -> &Address {
        &self.inner.address
    }

    /// Where the wallet keeps its local state.
    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    fn services(&self) -> &Services {
        &self.inner.services
    }

    fn nostr(&self) -> Result<&NostrLink, WalletError> {
        self.inner
            .nostr
            .as_ref()
            .ok_or_else(|| WalletError::NoNostr(self.inner.name.clone()))
    }

    pub(crate) async fn lock(&self) -> MutexGuard<'_, State> {
        self.inner.state.lock().await
    }

    /// Asks for a flush after the debounce interval (restarted by each call).
    fn schedule_flush(&self) {
        let due = tokio::time::Instant::now() + self.services().timers.flush_debounce();
        self.inner.flush_due.send_replace(Some(due));
    }

    fn spawn_debounced_flush(&self) {
        let weak = Arc::downgrade(&self.inner);
        let mut due_rx = self.inner.flush_due.subscribe();
        tokio::spawn(async move {
            loop {
                if due_rx.changed().await.is_err() {
                    return;
                }
                // Wait until the latest deadline holds still.
                loop {
                    let Some(due) = *due_rx.borrow_and_update() else {
                        break;
                    };
                    tokio::select! {
                        () = tokio::time::sleep_until(due) => {
                            let Some(inner) = weak.upgrade() else { return };
                            inner.flush_due.send_replace(None);
                            let wallet = Wallet { inner };
                            if let Err(error) = wallet.flush(false).await {
                                tracing::warn!(wallet = %wallet.name(), %error, "background flush failed; will retry on the next write");
                            }
                            break;
                        }
                        changed = due_rx.changed() => if changed.is_err() { return },
                    }
                }
            }
        });
    }

    /// Flushes if anything is unflushed, then disconnects from the relay.
    pub async fn close(&self) -> Result<(), WalletError> {
        self.inner.flush_due.send_replace(None);
        let dirty = self.lock().await.meta.dirty;
        let result = if dirty {
            self.flush(false).await.map(|_| ())
        } else {
            Ok(())
        };
        if let Some(nostr) = &self.inner.nostr {
            nostr.disconnect().await;
        }
        result
    }
}

impl State {
    /// Writes one profile entry; on the per-write path, also pins it and
    /// waits until the gateway serves it (one round trip per write).
    async fn put_entry(
        &mut self,
        services: &Services,
        key: &str,
        value: &[u8],
    ) -> Result<(), WalletError> {
        let cid = self.profile.put(key, value)?;
        self.meta.dirty = true;
        if services.variants.write_path == WritePath::PerWrite {
            self.pin_entry(services, cid).await?;
        }
        Ok(())
    }

    async fn put_json<T: Serialize>(
        &mut self,
        services: &Services,
        key: &str,
        value: &T,
    ) -> Result<(), WalletError> {
        let bytes = serde_json::to_vec(value)?;
        self.put_entry(services, key, &bytes).await
    }

    fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        key: &str,
    ) -> Result<Option<T>, WalletError> {
        match self.profile.get(key)? {
            Some(bytes) => Ok(Some(serde_json::from_slice(&bytes)?)),
            None => Ok(None),
        }
    }

    fn scan_json<T: serde::de::DeserializeOwned>(
        &self,
        prefix: &str,
    ) -> Result<Vec<(String, T)>, WalletError> {
        self.profile
            .scan_prefix(prefix)?
            .into_iter()
            .map(|(key, bytes)| Ok((key, serde_json::from_slice(&bytes)?)))
            .collect()
    }

    async fn pin_entry(&self, services: &Services, cid: Cid) -> Result<(), WalletError> {
        let bytes = self
            .store
            .get(Table::Entries, &cid.to_string())?
            .ok_or_else(|| WalletError::Storage(format!("entry `{cid}` vanished after writing")))?;
        let block = Block::verified(cid, bytes).map_err(|e| WalletError::Storage(e.to_string()))?;
        services.gateway.pin(cid, &[block], 1).await?;
        services.gateway.head_verify(&[cid]).await?;
        Ok(())
    }

    fn save_token(&mut self, token: Token) -> Result<(), WalletError> {
        let key = token.id().to_string();
        self.store
            .write(|batch| batch.put_json(Table::Tokens, &key, &token))?;
        self.tokens.insert(token.id(), token);
        Ok(())
    }

    fn drop_token(&mut self, id: TokenId) -> Result<(), WalletError> {
        let key = id.to_string();
        self.store
            .write(|batch| batch.delete(Table::Tokens, &key).map(|_| ()))?;
        self.tokens.remove(&id);
        Ok(())
    }

    /// Records the pending incoming transfers as acknowledged, so a relay
    /// replay of them is skipped. Only once what they brought is durable
    /// off-device: after a flush, or at once when nothing is unflushed.
    fn ack_pending(&mut self) -> Result<(), WalletError> {
        let acks = std::mem::take(&mut self.pending_acks);
        self.store.write(|batch| {
            for event in &acks {
                batch.put(Table::Inbox, event, b"acked")?;
            }
            Ok(())
        })?;
        Ok(())
    }

    fn save_meta(&self) -> Result<(), WalletError> {
        self.store
            .write(|batch| batch.put_json(Table::Meta, META_KEY, &self.meta))?;
        Ok(())
    }
}

/// Milliseconds since the Unix epoch, for records.
fn now_ms() -> u64 {
    chrono::Utc::now().timestamp_millis().max(0) as u64
}

/// A random lowercase hex id of 16 bytes.
fn random_id() -> String {
    hex::encode(rand::random::<[u8; 16]>())
}

/// How long `invoice_await` sleeps between looks.
fn poll_interval(timers: &Timers) -> Duration {
    timers.scaled(500)
}
