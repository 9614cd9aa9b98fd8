//! Replication: handing entries to other replicas and applying theirs.
//!
//! [`Profile::latest_entries`] is what a lean snapshot carries (the winning
//! entry per key, deletes included); [`Profile::apply_remote`] merges any
//! set of received entries. A batch is all or nothing: every block is
//! verified against its CID, decoded, and its value authenticated with the
//! profile key before anything is written, and the accepted entries (plus
//! any tombstone-union rewrite) are persisted in one store transaction.

use std::collections::{BTreeMap, BTreeSet, HashSet, btree_map};

use sphere_protocol::ipld::{Block, Cid, verify_block};

use super::{
    Origin, PreparedEntry, Profile, ProfileError,
    entry::Entry,
    merge::{self, Precedence},
};
use crate::{config::TombstoneMerge, perf, store::Table};

/// What [`Profile::apply_remote`] did with a batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyReport {
    /// New entries persisted and merged (whether or not they won their key).
    pub applied: usize,
    /// Entries already known (or repeated in the batch), plus, under
    /// [`TombstoneMerge::Overwrite`], remote tombstone blobs dropped
    /// because a local one exists.
    pub ignored: usize,
}

/// A received entry that passed verification.
struct Incoming {
    precedence: Precedence,
    entry: Entry,
    block: Block,
    plaintext: Option<Vec<u8>>,
}

impl Profile {
    /// The winning entry of every key, deletes included, sorted by key: what
    /// a lean snapshot holds.
    pub fn latest_entries(&self) -> Vec<Block> {
        self.state.values().map(|c| c.block.clone()).collect()
    }

    /// Every entry of the op-log, read back from the store.
    pub fn all_entries(&self) -> Result<Vec<Block>, ProfileError> {
        self.store
            .scan_prefix(Table::Entries, "")?
            .into_iter()
            .map(|(key, data)| {
                let cid = Cid::try_from(key.as_str())
                    .map_err(|source| ProfileError::StoredKey { key, source })?;
                Ok(Block::verified(cid, data)?)
            })
            .collect()
    }

    /// Merges received entries (see the module docs); fires one update
    /// event per entry that changed the state.
    ///
    /// Keys ending in `.tombstones` follow the profile's [`TombstoneMerge`]:
    /// under `Union`, if the union of the local and received id sets differs
    /// from the winning entry's set, a new local entry holding the union is
    /// written (Lamport time above everything seen, origin
    /// [`Origin::Local`]), so every replica converges to the union (a
    /// received delete of a non-empty blob is undone the same way: a spent
    /// token stays spent); under
    /// `Overwrite` (the deliberate bug) a received blob is dropped whenever
    /// a local value exists.
    pub fn apply_remote(&mut self, blocks: Vec<Block>) -> Result<ApplyReport, ProfileError> {
        let _timer = perf::time(perf::names::ON_REPLICATION);
        let mut ignored = 0;
        let mut incoming = Vec::with_capacity(blocks.len());
        let mut in_batch = HashSet::new();
        for block in blocks {
            verify_block(&block.cid, &block.data)?;
            if self.log.contains(&block.cid) || !in_batch.insert(block.cid) {
                ignored += 1;
                continue;
            }
            let entry = Entry::from_block(&block)?;
            // Opening every value authenticates it: an entry not sealed with
            // this wallet's key is refused here rather than failing later reads.
            let plaintext = match &entry.value {
                Some(sealed) => Some(self.cipher.open(&entry.key, sealed)?),
                None => None,
            };
            incoming.push(Incoming {
                precedence: Precedence::of(&entry, block.cid),
                entry,
                block,
                plaintext,
            });
        }
        // Ascending precedence per key makes the events (one per entry that
        // takes over its key) independent of the order the batch came in.
        incoming.sort_by(|a, b| (&a.entry.key, &a.precedence).cmp(&(&b.entry.key, &b.precedence)));

        let mut clock = self.clock;
        let mut accepted = Vec::with_capacity(incoming.len());
        let mut unions: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
        for item in incoming {
            clock = clock.max(item.entry.clock.time);
            let key = &item.entry.key;
            if merge::is_tombstone_key(key) {
                match self.tombstone_merge {
                    TombstoneMerge::Overwrite => {
                        if self.state.get(key).is_some_and(|c| !c.entry.is_delete()) {
                            ignored += 1;
                            continue;
                        }
                    }
                    TombstoneMerge::Union => {
                        let union = match unions.entry(key.clone()) {
                            btree_map::Entry::Occupied(o) => o.into_mut(),
                            btree_map::Entry::Vacant(v) => v.insert(self.local_tombstones(key)?),
                        };
                        if let Some(plaintext) = &item.plaintext {
                            union.extend(parse_tombstones(key, plaintext)?);
                        }
                    }
                }
            }
            accepted.push(item);
        }
        let applied = accepted.len();

        let rewrites = self.union_rewrites(unions, &accepted, &mut clock)?;
        if !accepted.is_empty() {
            self.store.write(|batch| {
                for item in &accepted {
                    let block = &item.block;
                    batch.put(Table::Entries, &block.cid.to_string(), &block.data)?;
                }
                for rewrite in &rewrites {
                    rewrite.write(batch)?;
                }
                Ok(())
            })?;
        }

        // Seen is seen: even a dropped entry's time advances the clock.
        self.clock = self.clock.max(clock);
        for item in accepted {
            self.integrate_and_notify(item.entry, item.block, Origin::Remote);
        }
        for rewrite in rewrites {
            let _ = self.commit_prepared(rewrite);
        }
        Ok(ApplyReport { applied, ignored })
    }

    /// The local entries that make each touched tombstone key hold the
    /// union of what both sides had, where the winner alone does not.
    fn union_rewrites(
        &self,
        unions: BTreeMap<String, BTreeSet<String>>,
        accepted: &[Incoming],
        clock: &mut u64,
    ) -> Result<Vec<PreparedEntry>, ProfileError> {
        let mut rewrites = Vec::new();
        if unions.is_empty() {
            return Ok(rewrites);
        }
        let links: Vec<(Cid, &[Cid])> = accepted
            .iter()
            .map(|item| (item.block.cid, item.entry.next.as_slice()))
            .collect();
        let heads = self.log.heads_after(&links);
        for (key, union) in unions {
            let local = self.state.get(&key).map(|c| (&c.precedence, &c.entry));
            let remote = accepted
                .iter()
                .filter(|item| item.entry.key == key)
                .map(|item| (&item.precedence, &item.entry));
            let winner = local.into_iter().chain(remote).max_by(|a, b| a.0.cmp(b.0));
            let winner_set = match winner.and_then(|(_, entry)| entry.value.as_ref()) {
                Some(sealed) => Some(parse_tombstones(&key, &self.cipher.open(&key, sealed)?)?),
                None => None,
            };
            let converged = match &winner_set {
                Some(set) => *set == union,
                None => union.is_empty(),
            };
            if !converged {
                *clock += 1;
                let bytes = merge::encode_tombstones(&union).map_err(|source| {
                    ProfileError::TombstoneBlob {
                        key: key.clone(),
                        source,
                    }
                })?;
                rewrites.push(self.prepare_at(&key, Some(&bytes), *clock, heads.clone())?);
            }
        }
        Ok(rewrites)
    }

    /// The ids in the local tombstone blob at `key` (empty if none).
    fn local_tombstones(&self, key: &str) -> Result<BTreeSet<String>, ProfileError> {
        match self.get(key)? {
            Some(bytes) => parse_tombstones(key, &bytes),
            None => Ok(BTreeSet::new()),
        }
    }
}

fn parse_tombstones(key: &str, bytes: &[u8]) -> Result<BTreeSet<String>, ProfileError> {
    merge::parse_tombstones(bytes).map_err(|source| ProfileError::TombstoneBlob {
        key: key.to_owned(),
        source,
    })
}

#[cfg(test)]
mod tests;
