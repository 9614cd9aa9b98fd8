//! Sync and load: bring the wallet up to date from the pointer, the snapshot
//! and the bundles it names.
//!
//! `sync` applies a newer snapshot and ingests the bundles its *update
//! events* announce, as an incremental replicator does; that is where
//! `filter_own_updates` bites, because a wallet's other devices write as the
//! same wallet. `load` (a fresh device) reads the merged state directly:
//! the tokens from the relay's backup of that version when the wallet has
//! Nostr (`backup`), otherwise every active bundle fetched and every proof
//! verified with the chosen strategy.

use std::collections::BTreeSet;

use sphere_protocol::ipld::Cid;

use super::{
    State, Wallet, WalletError,
    records::{BUNDLE_PREFIX, BundleRef, BundleStatus, tombstones_key},
};
use crate::{
    bundle, perf, snapshot,
    token::{TokenId, verify::verify_bundles},
};

impl Wallet {
    /// Applies the latest pointer version if it is newer than what this
    /// device has; returns whether anything changed.
    pub async fn sync(&self) -> Result<bool, WalletError> {
        let mut state = self.lock().await;
        self.pull_latest(&mut state).await
    }

    /// Rebuilds the wallet from the pointer and snapshot, with the tokens
    /// of the relay's backup of that version when the wallet has Nostr and
    /// the backup checks out, and otherwise from every active bundle, as a
    /// device with only the mnemonic does.
    pub(super) async fn load(&self) -> Result<(), WalletError> {
        let _timer = perf::time(perf::names::LOAD);
        let mut state = self.lock().await;
        let Some((version, snapshot_cid)) = self.inner.pointer.latest().await? else {
            return Ok(());
        };
        self.apply_snapshot(&mut state, snapshot_cid).await?;
        let active: Vec<Cid> = state
            .active_bundles()?
            .into_iter()
            .filter_map(|b| b.cid.parse().ok())
            .collect();
        match self.verified_token_backup(version, snapshot_cid).await? {
            Some(tokens) => {
                self.merge_tokens(&mut state, tokens)?;
                // The backup is the token set these bundles add up to, so
                // a later sync need not take them in again.
                state
                    .meta
                    .ingested_bundles
                    .extend(active.iter().map(Cid::to_string));
            }
            None => self.ingest_bundles(&mut state, &active, &[]).await?,
        }
        self.prune_tokens(&mut state)?;
        state.meta.pointer_version = version;
        state.save_meta()?;
        Ok(())
    }

    /// The incremental path shared by `sync` and `flush`.
    pub(super) async fn pull_latest(&self, state: &mut State) -> Result<bool, WalletError> {
        let Some((version, snapshot_cid)) = self.inner.pointer.latest().await? else {
            return Ok(false);
        };
        if version <= state.meta.pointer_version {
            return Ok(false);
        }
        let mut events = state.profile.subscribe();
        let applied = self.apply_snapshot(state, snapshot_cid).await?;
        let mut announced = BTreeSet::new();
        let own_wallet = self.address().to_string();
        let filter_own = self.services().variants.filter_own_updates;
        while let Ok(event) = events.try_recv() {
            let Some(cid) = event.key.strip_prefix(BUNDLE_PREFIX) else {
                continue;
            };
            // The bug this variant reproduces: "own" is decided by wallet,
            // so writes from this wallet's other devices are dropped too.
            if filter_own && event.writer.wallet == own_wallet {
                continue;
            }
            announced.insert(cid.to_owned());
        }
        let active: BTreeSet<String> = state.active_bundles()?.into_iter().map(|b| b.cid).collect();
        let wanted: Vec<Cid> = announced
            .iter()
            .filter(|cid| active.contains(*cid) && !state.meta.ingested_bundles.contains(*cid))
            .filter_map(|cid| cid.parse().ok())
            .collect();
        // The device was behind: the new tokens are verified together with
        // every active bundle the applied snapshot names, as the real SDK's
        // sync does (it keeps no local copy of bundle CARs, so each one is
        // fetched again: `fetch_car` per active bundle, then the proof check
        // over the whole set). Only announced bundles add tokens.
        let in_play: Vec<Cid> = active.iter().filter_map(|cid| cid.parse().ok()).collect();
        self.ingest_bundles(state, &wanted, &in_play).await?;
        self.prune_tokens(state)?;
        state.meta.pointer_version = version;
        state.save_meta()?;
        Ok(applied > 0 || !wanted.is_empty())
    }

    async fn apply_snapshot(&self, state: &mut State, root: Cid) -> Result<usize, WalletError> {
        let contents = self.services().gateway.fetch_car(root).await?;
        let entries = snapshot::decode(&contents, self.address())?;
        let report = state.profile.apply_remote(entries)?;
        Ok(report.applied)
    }

    /// Checks that a device with only the mnemonic could rebuild this
    /// wallet: the pointer resolves as recovery finds it, and the gateway
    /// serves the snapshot it names. `clear` runs this before wiping,
    /// because a wipe with an unreadable network copy is the one failure a
    /// user cannot undo. The bundles are not checked again: each was
    /// HEAD-verified when its flush published it, or fetched whole when
    /// this device took it in.
    pub async fn verify_recoverable(&self) -> Result<(), WalletError> {
        let _state = self.lock().await;
        let Some((_, snapshot_cid)) = self.inner.pointer.latest().await? else {
            return Ok(());
        };
        self.services().gateway.head_verify(&[snapshot_cid]).await?;
        Ok(())
    }

    /// Verifies `tokens` (new to this device) together with every active
    /// bundle, fetched from the gateway, with the configured proof check.
    pub(super) async fn verify_with_active_set(
        &self,
        state: &State,
        tokens: Vec<crate::token::Token>,
    ) -> Result<(), WalletError> {
        if tokens.is_empty() {
            return Ok(());
        }
        let services = self.services().clone();
        let active: Vec<Cid> = state
            .active_bundles()?
            .into_iter()
            .filter_map(|b| b.cid.parse().ok())
            .collect();
        let contents = services
            .gateway
            .fetch_many(&active, services.variants.fanout)
            .await?;
        let mut token_sets = vec![tokens];
        for content in &contents {
            token_sets.push(bundle::decode(content)?.tokens);
        }
        let trust = services.aggregator.trust_base().await?;
        verify_bundles(&token_sets, &trust, services.variants.proof_check)?;
        Ok(())
    }

    /// Fetches `cids` and the bundles `in_play`, verifies all of them
    /// together, and merges the tokens of `cids` only.
    async fn ingest_bundles(
        &self,
        state: &mut State,
        cids: &[Cid],
        in_play: &[Cid],
    ) -> Result<(), WalletError> {
        if cids.is_empty() && in_play.is_empty() {
            return Ok(());
        }
        let services = self.services().clone();
        let mut fetch: Vec<Cid> = cids.to_vec();
        let ingest: BTreeSet<Cid> = cids.iter().copied().collect();
        fetch.extend(in_play.iter().filter(|cid| !ingest.contains(*cid)));
        let contents = services
            .gateway
            .fetch_many(&fetch, services.variants.fanout)
            .await?;
        let mut decoded = contents
            .iter()
            .map(bundle::decode)
            .collect::<Result<Vec<_>, _>>()?;
        let trust = services.aggregator.trust_base().await?;
        let token_sets: Vec<_> = decoded.iter().map(|b| b.tokens.clone()).collect();
        let report = verify_bundles(&token_sets, &trust, services.variants.proof_check)?;
        // `fetch` starts with `cids`, in order: the rest were for checking.
        decoded.truncate(cids.len());
        tracing::debug!(
            wallet = %self.name(),
            bundles = cids.len(),
            verifications = report.verifications,
            distinct = report.distinct,
            "bundles verified"
        );
        self.merge_tokens(state, decoded.into_iter().flat_map(|b| b.tokens))?;
        state
            .meta
            .ingested_bundles
            .extend(cids.iter().map(Cid::to_string));
        Ok(())
    }

    /// Keeps each of `tokens` that is ours, not tombstoned, and newer than
    /// the state of it this device holds.
    fn merge_tokens(
        &self,
        state: &mut State,
        tokens: impl IntoIterator<Item = crate::token::Token>,
    ) -> Result<(), WalletError> {
        let tombstones = state.tombstones(self.address())?;
        for token in tokens {
            if !token.is_spendable_by(self.address())
                || tombstones.contains(&token.id().to_string())
            {
                continue;
            }
            let newer = state
                .tokens
                .get(&token.id())
                .is_none_or(|held| held.sequence() < token.sequence());
            if newer {
                state.save_token(token)?;
            }
        }
        Ok(())
    }

    /// Drops tokens that are tombstoned or no longer ours.
    fn prune_tokens(&self, state: &mut State) -> Result<(), WalletError> {
        let tombstones = state.tombstones(self.address())?;
        let gone: Vec<TokenId> = state
            .tokens
            .values()
            .filter(|t| {
                tombstones.contains(&t.id().to_string()) || !t.is_spendable_by(self.address())
            })
            .map(|t| t.id())
            .collect();
        for id in gone {
            state.drop_token(id)?;
        }
        Ok(())
    }
}

impl State {
    /// Every bundle ref with status active.
    pub(super) fn active_bundles(&self) -> Result<Vec<BundleRef>, WalletError> {
        let _timer = perf::time(perf::names::LIST_ACTIVE_BUNDLES);
        Ok(self
            .scan_json::<BundleRef>(BUNDLE_PREFIX)?
            .into_iter()
            .map(|(_, r)| r)
            .filter(|r| r.status == BundleStatus::Active)
            .collect())
    }

    /// The ids of spent tokens, as the profile's tombstone blob has them.
    pub(super) fn tombstones(
        &self,
        address: &crate::identity::Address,
    ) -> Result<BTreeSet<String>, WalletError> {
        Ok(self
            .get_json::<BTreeSet<String>>(&tombstones_key(address))?
            .unwrap_or_default())
    }
}
