//! Flush: make the wallet's state durable off-device.
//!
//! In order: catch up with the latest pointer (so the snapshot carries other
//! devices' writes), build and pin a bundle of the token set, add its ref,
//! supersede old bundles when consolidating, rewrite the tombstone blob,
//! build and pin a lean snapshot, publish the next pointer version (on a
//! race with another device: catch up and try the next version), HEAD-verify
//! bundle and snapshot, store the token set on the relay for devices that
//! join later (`backup`), and only then acknowledge incoming transfers.

use serde::Serialize;
use sha2::{Digest, Sha256};
use sphere_protocol::ipld::Cid;

use super::{
    State, Wallet, WalletError,
    records::{BundleRef, BundleStatus, bundle_key},
};
use crate::{bundle, config::Variants, perf, pointer::PointerError, snapshot};

/// How many pointer races a flush tolerates before giving up.
const MAX_POINTER_RACES: u32 = 5;

/// What a flush did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlushReport {
    /// Whether anything was flushed (false: nothing had changed).
    pub flushed: bool,
    /// The new bundle's CID.
    pub bundle: Option<String>,
    /// The new snapshot's CID.
    pub snapshot: Option<String>,
    /// The pointer version published.
    pub pointer_version: u64,
    /// Active bundles after the flush.
    pub active_bundles: usize,
}

impl Wallet {
    /// Flushes now if anything changed, or always with `force` (which is how
    /// a scenario grows the number of active bundles).
    pub async fn flush(&self, force: bool) -> Result<FlushReport, WalletError> {
        let mut state = self.lock().await;
        if !state.meta.dirty && !force {
            return Ok(FlushReport::default());
        }
        let _timer = perf::time(perf::names::FLUSH);
        let services = self.services().clone();
        self.pull_latest(&mut state).await?;

        // A flush whose token set is already in the newest bundle (only
        // records changed: invoices, outbox, refs) pins no new bundle, as
        // the real SDK skips an unchanged token set; `force` always does.
        let token_set = token_set_digest(&state)?;
        let mut to_verify: Vec<Cid> = Vec::new();
        let bundle_cid = if force || state.meta.bundled_token_set.as_deref() != Some(&token_set) {
            let (cid, root) = self.pin_token_set(&mut state, token_set).await?;
            to_verify.push(root);
            Some(cid)
        } else {
            None
        };
        let active_bundles = state.active_bundles()?.len();

        // Rewriting the blob on every flush keeps it present on every device,
        // which is also what exposes the overwrite merge bug.
        let tombstones = state.tombstones(self.address())?;
        state
            .put_json(
                &services,
                &super::records::tombstones_key(self.address()),
                &tombstones,
            )
            .await?;

        let (snapshot_cid, version) = self.publish_snapshot(&mut state).await?;
        // What this flush pinned is verified, as flushToIpfs does; bundles
        // left unpublished before it were pinned on their own (and a reader
        // that meets one still propagating waits for it: `fetch_car`).
        to_verify.push(snapshot_cid);
        services.gateway.head_verify(&to_verify).await?;
        self.publish_token_backup(&state, version, snapshot_cid)
            .await;

        state.meta.dirty = false;
        state.save_meta()?;
        state.ack_pending()?;
        Ok(FlushReport {
            flushed: true,
            bundle: bundle_cid,
            snapshot: Some(snapshot_cid.to_string()),
            pointer_version: version,
            active_bundles,
        })
    }

    /// Leaves a new bundle of the current token set, as each write of the
    /// per-write SDK does: pinned and its ref written to the op-log, with
    /// publishing the pointer left to the next flush, which the debounce
    /// schedules. This is how a scenario
    /// grows the active-bundle count without a pointer version per bundle.
    /// The publishing flush HEAD-verifies what it pins itself (snapshot,
    /// and a bundle if the token set changed), not the bundles left here.
    pub async fn leave_bundle(&self) -> Result<FlushReport, WalletError> {
        let mut state = self.lock().await;
        let token_set = token_set_digest(&state)?;
        let (cid, _) = self.pin_token_set(&mut state, token_set).await?;
        state.save_meta()?;
        let report = FlushReport {
            flushed: false,
            bundle: Some(cid),
            snapshot: None,
            pointer_version: state.meta.pointer_version,
            active_bundles: state.active_bundles()?.len(),
        };
        drop(state);
        self.schedule_flush();
        Ok(report)
    }

    /// Builds and pins a bundle of the token set, adds its ref (superseding
    /// old ones when consolidating) and notes the set as bundled.
    async fn pin_token_set(
        &self,
        state: &mut State,
        token_set: String,
    ) -> Result<(String, Cid), WalletError> {
        let services = self.services().clone();
        let variants = services.variants;
        let tokens: Vec<_> = state.tokens.values().cloned().collect();
        let built = bundle::encode(self.address(), &tokens, super::now_ms())?;
        services
            .gateway
            .pin(built.root, &built.blocks, variants.fanout)
            .await?;
        let bundle_cid = built.root.to_string();
        state
            .put_json(
                &services,
                &bundle_key(&bundle_cid),
                &BundleRef {
                    cid: bundle_cid.clone(),
                    status: BundleStatus::Active,
                    created_at_ms: super::now_ms(),
                    token_count: built.token_count,
                },
            )
            .await?;
        state.meta.ingested_bundles.insert(bundle_cid.clone());
        state.meta.bundled_token_set = Some(token_set);
        consolidate(state, &services, &variants, &bundle_cid).await?;
        Ok((bundle_cid, built.root))
    }

    async fn publish_snapshot(
        &self,
        state: &mut State,
    ) -> Result<(sphere_protocol::ipld::Cid, u64), WalletError> {
        let services = self.services().clone();
        for _ in 0..MAX_POINTER_RACES {
            let entries = state.profile.latest_entries();
            let built = snapshot::encode(self.address(), &entries, super::now_ms())?;
            services
                .gateway
                .pin(built.root, &built.blocks, services.variants.fanout)
                .await?;
            let version = state.meta.pointer_version + 1;
            match self.inner.pointer.publish(version, &built.root).await {
                Ok(()) => {
                    state.meta.pointer_version = version;
                    state.save_meta()?;
                    return Ok((built.root, version));
                }
                Err(PointerError::VersionTaken(taken)) => {
                    tracing::debug!(wallet = %self.name(), version = taken, "pointer race; catching up");
                    self.pull_latest(state).await?;
                    state.meta.pointer_version = state.meta.pointer_version.max(taken);
                }
                Err(other) => return Err(other.into()),
            }
        }
        Err(WalletError::Network(format!(
            "pointer of wallet `{}`: lost {MAX_POINTER_RACES} publish races in a row to another device",
            self.name()
        )))
    }
}

/// A digest of the wallet's token set (ids and states), to tell whether
/// the newest bundle already holds it.
fn token_set_digest(state: &State) -> Result<String, WalletError> {
    let bytes = serde_json::to_vec(&state.tokens)?;
    Ok(hex::encode(Sha256::digest(&bytes)))
}

/// Supersedes every other active bundle when more than the limit are active
/// and consolidation is on; returns how many stay active.
async fn consolidate(
    state: &mut State,
    services: &super::Services,
    variants: &Variants,
    newest: &str,
) -> Result<usize, WalletError> {
    let active = state.active_bundles()?;
    if !variants.consolidate || active.len() <= Variants::MAX_ACTIVE_BUNDLES {
        return Ok(active.len());
    }
    // The newest bundle holds the whole token set, so the others add nothing.
    for mut old in active.into_iter().filter(|b| b.cid != newest) {
        old.status = BundleStatus::Superseded;
        state
            .put_json(services, &bundle_key(&old.cid), &old)
            .await?;
    }
    Ok(1)
}
