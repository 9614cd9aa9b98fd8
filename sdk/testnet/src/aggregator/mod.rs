//! The aggregator: a JSON-RPC service that records state-transition
//! commitments in a sparse Merkle tree and proves their inclusion.
//!
//! Commitments arrive with `submit_commitment`, are checked (signature,
//! request-id derivation, no double spend) and wait in a pending pool until
//! the next block seals them into the tree, as a real aggregator's rounds do;
//! until then `get_inclusion_proof` answers with an exclusion proof, and a
//! client polls. Each sealed block's root is certified by the testnet's own
//! key, which clients fetch with `get_trust_base`.
//!
//! Methods: `submit_commitment`, `get_inclusion_proof`, `get_block_height`,
//! `get_trust_base`, all JSON-RPC 2.0 over `POST /`.

mod journal;
mod ledger;
mod rpc;

use std::{path::Path, sync::Arc, time::Duration};

use axum::{Router, routing::post};
use sphere_protocol::signing::SecretKey;
use tokio_util::sync::CancellationToken;
use tower_http::limit::RequestBodyLimitLayer;

pub use ledger::{Ledger, SubmitError};

use journal::Journal;

/// The largest JSON-RPC request accepted; a commitment is well under 1 KiB.
pub const MAX_REQUEST_BYTES: usize = 1024 * 1024;

/// Why the aggregator could not start.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// The data directory could not be read or written.
    #[error("aggregator data in `{path}`: {message}")]
    Storage {
        /// The file involved.
        path: String,
        /// What went wrong.
        message: String,
    },
}

/// A running aggregator's shared state. Cheap to clone.
#[derive(Clone)]
pub struct Aggregator {
    ledger: Arc<std::sync::Mutex<Ledger>>,
    journal: Option<Arc<std::sync::Mutex<Journal>>>,
}

impl Aggregator {
    /// An aggregator kept in memory, with a fresh signing key.
    pub fn in_memory() -> Self {
        Aggregator {
            ledger: Arc::new(std::sync::Mutex::new(Ledger::new(SecretKey::random()))),
            journal: None,
        }
    }

    /// An aggregator whose key and blocks live in `dir`, replayed on start so
    /// that proofs and the trust base survive a restart.
    pub fn open_dir(dir: &Path) -> Result<Self, AggregatorError> {
        let (journal, key, blocks) = Journal::open(dir)?;
        let mut ledger = Ledger::new(key);
        for block in blocks {
            ledger.replay(block).map_err(|e| AggregatorError::Storage {
                path: journal.path().display().to_string(),
                message: e.to_string(),
            })?;
        }
        Ok(Aggregator {
            ledger: Arc::new(std::sync::Mutex::new(ledger)),
            journal: Some(Arc::new(std::sync::Mutex::new(journal))),
        })
    }

    /// The JSON-RPC router. Requests over [`MAX_REQUEST_BYTES`] are refused
    /// with 413 from their `Content-Length` alone, before any body is read.
    pub fn router(&self) -> Router {
        Router::new()
            .route("/", post(rpc::handle))
            .layer(RequestBodyLimitLayer::new(MAX_REQUEST_BYTES))
            .with_state(self.clone())
    }

    /// Seals pending commitments every `interval` until `shutdown`; with a
    /// zero interval every commitment is sealed as it arrives instead.
    pub fn spawn_block_production(&self, interval: Duration, shutdown: CancellationToken) {
        if interval.is_zero() {
            self.lock().set_seal_immediately(true);
            return;
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break,
                    _ = ticker.tick() => this.seal(),
                }
            }
        });
    }

    /// Seals the pending pool into a new block, if it holds anything.
    pub fn seal(&self) {
        let sealed = self.lock().seal();
        if let Some(block) = sealed {
            self.record(&block);
        }
    }

    pub(crate) fn lock(&self) -> std::sync::MutexGuard<'_, Ledger> {
        // The ledger is only mutated by short, non-panicking sections; a
        // poisoned lock still holds a consistent tree.
        self.ledger.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn record(&self, block: &ledger::SealedBlock) {
        if let Some(journal) = &self.journal {
            let mut journal = journal.lock().unwrap_or_else(|p| p.into_inner());
            if let Err(error) = journal.append(block) {
                tracing::error!(%error, "cannot append to the aggregator journal");
            }
        }
    }
}
