//! The per-wallet profile: an encrypted key-value store over a Merkle-CRDT
//! op-log, in the manner of OrbitDB's keyvalue store.
//!
//! Every write appends an [`Entry`] (a dag-cbor block named by its CID) that
//! links to the log's current heads and carries a Lamport clock and a value
//! sealed with the wallet's profile key. The state is the winning entry per
//! key under the rule in [`merge`]; replicas that have seen the same entries
//! hold the same state, whatever order the entries came in. Entries live in
//! the wallet store's [`Table::Entries`] (CID string -> block bytes), so
//! [`Profile::open`] rebuilds the state, the clock and the heads from disk.
//!
//! ```
//! use sphere_sdk::{config::TombstoneMerge, profile::{Profile, WriterId}, store::WalletStore};
//! # let dir = tempfile::tempdir().unwrap();
//! let store = WalletStore::open(dir.path())?;
//! let writer = WriterId::new("wallet-1", "laptop");
//! let mut profile = Profile::open(store, [7; 32], writer, TombstoneMerge::Union)?;
//! profile.put("alice.outbox.1", b"{\"amount\":5}")?;
//! assert_eq!(profile.get("alice.outbox.1")?.as_deref(), Some(&b"{\"amount\":5}"[..]));
//! profile.delete("alice.outbox.1")?;
//! assert_eq!(profile.get("alice.outbox.1")?, None);
//! assert_eq!(profile.clock(), 2);
//! # Ok::<(), sphere_sdk::profile::ProfileError>(())
//! ```
//!
//! To persist profile writes atomically with other tables, use
//! [`Profile::prepare_put`] / [`PreparedEntry::write`] /
//! [`Profile::commit_prepared`] (see [`PreparedEntry`]).

mod crypto;
pub mod entry;
mod error;
mod log;
pub mod merge;
mod replicate;

use std::{collections::BTreeMap, ops::Bound};

use serde::{Serialize, de::DeserializeOwned};
use sphere_protocol::ipld::{Block, Cid};
use tokio::sync::broadcast;

pub use self::entry::{Clock, ENTRY_VERSION, Entry, Sealed, WriterId};
pub use self::error::ProfileError;
pub use self::replicate::ApplyReport;
use self::{crypto::ProfileCipher, log::LogIndex, merge::Precedence};
use crate::{
    config::TombstoneMerge,
    perf,
    store::{StoreError, Table, WalletStore, WriteBatch},
};

/// How many update events a slow subscriber may fall behind before it
/// starts missing them (it then sees `RecvError::Lagged`).
pub const EVENT_CAPACITY: usize = 4096;

/// Where an applied entry came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Origin {
    /// Written by this profile instance (including tombstone-union rewrites).
    Local,
    /// Received through [`Profile::apply_remote`].
    Remote,
}

/// One entry that changed the profile's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateEvent {
    /// The key whose value changed.
    pub key: String,
    /// Who wrote the entry.
    pub writer: WriterId,
    /// Whether it was written here or received.
    pub origin: Origin,
    /// The entry's CID.
    pub entry: Cid,
    /// Whether the entry deletes the key.
    pub deleted: bool,
}

/// The winning entry of one key.
#[derive(Debug, Clone)]
struct Current {
    precedence: Precedence,
    entry: Entry,
    block: Block,
}

/// An entry encrypted and encoded but not yet part of the profile.
///
/// The contract, for writing profile entries in the same store transaction
/// as other tables:
/// 1. [`Profile::prepare_put`] / [`Profile::prepare_delete`] seal and
///    encode the entry (reserving its Lamport time) without touching the
///    store or the state;
/// 2. inside [`WalletStore::write`], [`PreparedEntry::write`] adds it to the
///    transaction;
/// 3. only once that write returned `Ok`, [`Profile::commit_prepared`]
///    makes it visible in memory and fires its update event.
///
/// If the transaction fails, drop the prepared entry: nothing changed. If it
/// committed but `commit_prepared` is never called, the entry is on disk and
/// appears at the next [`Profile::open`], but not before.
#[derive(Debug, Clone)]
#[must_use = "a prepared entry does nothing until written and committed"]
pub struct PreparedEntry {
    entry: Entry,
    block: Block,
}

impl PreparedEntry {
    /// The entry's CID.
    pub fn cid(&self) -> Cid {
        self.block.cid
    }

    /// The profile key it writes.
    pub fn key(&self) -> &str {
        &self.entry.key
    }

    /// The encoded block.
    pub fn block(&self) -> &Block {
        &self.block
    }

    /// Adds the entry to a store transaction.
    pub fn write(&self, batch: &mut WriteBatch<'_>) -> Result<(), StoreError> {
        batch.put(
            Table::Entries,
            &self.block.cid.to_string(),
            &self.block.data,
        )
    }
}

/// A wallet's profile (see the module docs).
pub struct Profile {
    store: WalletStore,
    cipher: ProfileCipher,
    writer: WriterId,
    tombstone_merge: TombstoneMerge,
    state: BTreeMap<String, Current>,
    log: LogIndex,
    clock: u64,
    events: broadcast::Sender<UpdateEvent>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the key or any value.
        f.debug_struct("Profile")
            .field("store", &self.store)
            .field("writer", &self.writer)
            .field("clock", &self.clock)
            .field("keys", &self.state.len())
            .field("entries", &self.log.len())
            .finish_non_exhaustive()
    }
}

impl Profile {
    /// Opens the profile kept in `store`, rebuilding its state, Lamport
    /// clock and heads from every stored entry (each verified against its CID).
    pub fn open(
        store: WalletStore,
        profile_key: [u8; 32],
        writer: WriterId,
        tombstone_merge: TombstoneMerge,
    ) -> Result<Profile, ProfileError> {
        let (events, _) = broadcast::channel(EVENT_CAPACITY);
        let mut profile = Profile {
            cipher: ProfileCipher::new(&profile_key),
            store,
            writer,
            tombstone_merge,
            state: BTreeMap::new(),
            log: LogIndex::default(),
            clock: 0,
            events,
        };
        for (key, data) in profile.store.scan_prefix(Table::Entries, "")? {
            let cid = Cid::try_from(key.as_str())
                .map_err(|source| ProfileError::StoredKey { key, source })?;
            let block = Block::verified(cid, data)?;
            let entry = Entry::from_block(&block)?;
            profile.integrate(entry, block);
        }
        Ok(profile)
    }

    /// This instance's writer id.
    pub fn writer(&self) -> &WriterId {
        &self.writer
    }

    /// The Lamport clock: the highest time of any entry seen.
    pub fn clock(&self) -> u64 {
        self.clock
    }

    /// The log's heads (entries no known entry links to), sorted.
    pub fn heads(&self) -> Vec<Cid> {
        self.log.heads()
    }

    /// How many entries the op-log holds (every write, not live keys).
    pub fn len(&self) -> usize {
        self.log.len()
    }

    /// Whether the op-log holds no entry.
    pub fn is_empty(&self) -> bool {
        self.log.len() == 0
    }

    /// A receiver of every state-changing entry from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<UpdateEvent> {
        self.events.subscribe()
    }

    /// Sets `key` to `value` (the local `put_entry`); returns the entry's CID.
    pub fn put(&mut self, key: &str, value: &[u8]) -> Result<Cid, ProfileError> {
        let _timer = perf::time(perf::names::PUT_ENTRY);
        let prepared = self.prepare(key, Some(value))?;
        self.store.write(|batch| prepared.write(batch))?;
        Ok(self.commit_prepared(prepared))
    }

    /// Sets `key` to `value` encoded as JSON.
    pub fn put_json<T: Serialize + ?Sized>(
        &mut self,
        key: &str,
        value: &T,
    ) -> Result<Cid, ProfileError> {
        let bytes = serde_json::to_vec(value).map_err(|source| ProfileError::Json {
            key: key.to_owned(),
            source,
        })?;
        self.put(key, &bytes)
    }

    /// Deletes `key` by appending a delete entry; returns its CID.
    pub fn delete(&mut self, key: &str) -> Result<Cid, ProfileError> {
        let _timer = perf::time(perf::names::PUT_ENTRY);
        let prepared = self.prepare(key, None)?;
        self.store.write(|batch| prepared.write(batch))?;
        Ok(self.commit_prepared(prepared))
    }

    /// Seals and encodes a put of `key` for a caller's own transaction
    /// (see [`PreparedEntry`] for the contract).
    pub fn prepare_put(&mut self, key: &str, value: &[u8]) -> Result<PreparedEntry, ProfileError> {
        let _timer = perf::time(perf::names::PUT_ENTRY);
        self.prepare(key, Some(value))
    }

    /// Encodes a delete of `key` for a caller's own transaction.
    pub fn prepare_delete(&mut self, key: &str) -> Result<PreparedEntry, ProfileError> {
        let _timer = perf::time(perf::names::PUT_ENTRY);
        self.prepare(key, None)
    }

    /// Makes an entry whose store write has committed part of the state;
    /// fires an update event if it changed the state. Returns its CID.
    pub fn commit_prepared(&mut self, prepared: PreparedEntry) -> Cid {
        let cid = prepared.block.cid;
        self.integrate_and_notify(prepared.entry, prepared.block, Origin::Local);
        cid
    }

    /// The value of `key`, decrypted; `None` if absent or deleted.
    pub fn get(&self, key: &str) -> Result<Option<Vec<u8>>, ProfileError> {
        match self.state.get(key).and_then(|c| c.entry.value.as_ref()) {
            Some(sealed) => self.cipher.open(key, sealed).map(Some),
            None => Ok(None),
        }
    }

    /// The value of `key` decoded from JSON.
    pub fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, ProfileError> {
        let Some(bytes) = self.get(key)? else {
            return Ok(None);
        };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|source| ProfileError::Json {
                key: key.to_owned(),
                source,
            })
    }

    /// The live (not deleted) keys starting with `prefix`, sorted.
    pub fn keys_with_prefix(&self, prefix: &str) -> Vec<String> {
        self.live_with_prefix(prefix)
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// Every live `(key, value)` under `prefix`, decrypted, sorted by key.
    pub fn scan_prefix(&self, prefix: &str) -> Result<Vec<(String, Vec<u8>)>, ProfileError> {
        self.live_with_prefix(prefix)
            .map(|(key, sealed)| Ok((key.clone(), self.cipher.open(key, sealed)?)))
            .collect()
    }

    fn live_with_prefix<'a>(
        &'a self,
        prefix: &'a str,
    ) -> impl Iterator<Item = (&'a String, &'a Sealed)> + 'a {
        self.state
            .range::<str, _>((Bound::Included(prefix), Bound::Unbounded))
            .take_while(move |(key, _)| key.starts_with(prefix))
            .filter_map(|(key, current)| current.entry.value.as_ref().map(|v| (key, v)))
    }

    /// A new local entry for `key` at the next Lamport time, linked to the
    /// current heads.
    fn prepare(&mut self, key: &str, value: Option<&[u8]>) -> Result<PreparedEntry, ProfileError> {
        // Reserving the time now keeps two entries prepared for one
        // transaction in write order; a gap left by a failed write is harmless.
        self.clock += 1;
        self.prepare_at(key, value, self.clock, self.log.heads())
    }

    fn prepare_at(
        &self,
        key: &str,
        value: Option<&[u8]>,
        time: u64,
        next: Vec<Cid>,
    ) -> Result<PreparedEntry, ProfileError> {
        let value = value
            .map(|plaintext| self.cipher.seal(key, plaintext))
            .transpose()?;
        let entry = Entry {
            v: ENTRY_VERSION,
            key: key.to_owned(),
            value,
            clock: Clock {
                time,
                writer: self.writer.clone(),
            },
            next,
        };
        let block = entry.to_block()?;
        Ok(PreparedEntry { entry, block })
    }

    /// Adds a persisted entry to the log, clock and state; true if it
    /// became its key's winner.
    fn integrate(&mut self, entry: Entry, block: Block) -> bool {
        if !self.log.insert(block.cid, &entry.next) {
            return false;
        }
        self.clock = self.clock.max(entry.clock.time);
        let precedence = Precedence::of(&entry, block.cid);
        let current = self.state.get(&entry.key).map(|c| &c.precedence);
        if !merge::supersedes(&precedence, current) {
            return false;
        }
        self.state.insert(
            entry.key.clone(),
            Current {
                precedence,
                entry,
                block,
            },
        );
        true
    }

    fn integrate_and_notify(&mut self, entry: Entry, block: Block, origin: Origin) {
        let event = UpdateEvent {
            key: entry.key.clone(),
            writer: entry.clock.writer.clone(),
            origin,
            entry: block.cid,
            deleted: entry.is_delete(),
        };
        if self.integrate(entry, block) {
            // No subscriber is not an error: events are advisory.
            let _ = self.events.send(event);
        }
    }
}

#[cfg(test)]
mod tests;
