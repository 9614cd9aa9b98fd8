//! The token backup on the relay: how a device that joins with Nostr takes
//! the token set without fetching every bundle.
//!
//! Each publishing flush also stores, on the relay, the wallet's token set
//! as of the pointer version it published (encrypted to the wallet's own
//! key, as NIP-60 wallets keep their tokens). A device importing the wallet
//! with Nostr resolves the pointer, applies the snapshot, and takes the
//! tokens from the backup of that exact version, checking each token's own
//! proofs, instead of fetching and cross-checking all B active bundles. Any
//! doubt (no backup, another version or snapshot, a relay that does not
//! answer, a token that does not verify) falls back to the full load, so
//! the backup can make an import faster but never less correct. Recovery
//! without Nostr (`nostr = false`) is the full load, always.

use serde::{Deserialize, Serialize};
use sphere_protocol::ipld::Cid;

use super::{State, Wallet, WalletError};
use crate::{
    perf,
    token::{Token, verify::verify_token},
};

/// What one backup event holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct TokenBackup {
    /// The pointer version this backup completes.
    version: u64,
    /// The snapshot that version names.
    snapshot: String,
    /// The wallet's token set at that version.
    tokens: Vec<Token>,
}

impl Wallet {
    /// Stores the token set as of pointer `version` on the relay. A failure
    /// is logged, not returned: the flush is already durable on IPFS, and
    /// the only cost of a missing backup is a slower import.
    pub(super) async fn publish_token_backup(&self, state: &State, version: u64, snapshot: Cid) {
        let Some(nostr) = &self.inner.nostr else {
            return;
        };
        let backup = TokenBackup {
            version,
            snapshot: snapshot.to_string(),
            tokens: state.tokens.values().cloned().collect(),
        };
        let result = match serde_json::to_string(&backup) {
            Ok(payload) => nostr
                .publish_token_backup(version, &payload)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            Err(error) => Err(error.to_string()),
        };
        if let Err(error) = result {
            tracing::warn!(wallet = %self.name(), version, %error, "token backup not stored; an import will fetch every bundle");
        }
    }

    /// The tokens of the backup for pointer `version` naming `snapshot`, each
    /// verified; `None` when there is no such backup or any of it is in
    /// doubt (the caller then loads from the bundles).
    pub(super) async fn verified_token_backup(
        &self,
        version: u64,
        snapshot: Cid,
    ) -> Result<Option<Vec<Token>>, WalletError> {
        let Some(nostr) = &self.inner.nostr else {
            return Ok(None);
        };
        let _timer = perf::time(perf::names::LOAD_BACKUP);
        let payloads = match nostr.fetch_token_backups(version).await {
            Ok(payloads) => payloads,
            Err(error) => {
                tracing::warn!(wallet = %self.name(), %error, "token backup unreadable; loading from the bundles");
                return Ok(None);
            }
        };
        let snapshot = snapshot.to_string();
        let Some(backup) = payloads
            .iter()
            .filter_map(|p| serde_json::from_str::<TokenBackup>(p).ok())
            .find(|b| b.version == version && b.snapshot == snapshot)
        else {
            tracing::debug!(wallet = %self.name(), version, "no token backup for this version; loading from the bundles");
            return Ok(None);
        };
        let trust = self.services().aggregator.trust_base().await?;
        for token in &backup.tokens {
            if let Err(error) = verify_token(token, &trust) {
                tracing::warn!(wallet = %self.name(), token = %token.id(), %error, "token backup holds a token that does not verify; loading from the bundles");
                return Ok(None);
            }
        }
        Ok(Some(backup.tokens))
    }
}
