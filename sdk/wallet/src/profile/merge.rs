//! The merge rule: which entry holds a key, and how tombstone blobs combine.
//!
//! Pure functions, no I/O. For one key, the entry with the greatest
//! [`Precedence`] wins: Lamport time first, then a delete over a put at the
//! same time (a concurrent delete is never undone by a put it did not see),
//! then the writer id, then the CID. The CID only matters when one writer
//! issued two entries for a key at the same time (never done by
//! [`super::Profile`], but possible from a buggy or forked peer); it keeps
//! the order total, which is what makes merging commutative, associative and
//! idempotent: the winner is the maximum of a set, whatever order it arrives in.
//!
//! Keys ending in [`TOMBSTONES_SUFFIX`] hold a JSON array of spent token ids
//! that merges as a set union (see [`super::Profile::apply_remote`]).

use std::collections::{BTreeMap, BTreeSet};

use sphere_protocol::ipld::Cid;

use super::entry::{Entry, WriterId};

/// The suffix of keys whose value is a tombstone blob (spent token ids).
pub const TOMBSTONES_SUFFIX: &str = ".tombstones";

/// What orders two entries for the same key; the greater one wins.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Precedence {
    /// Lamport time.
    pub time: u64,
    /// A delete beats a put at the same time.
    pub deleted: bool,
    /// Breaks ties between writers at the same time.
    pub writer: WriterId,
    /// Breaks the remaining ties, so the order is total.
    pub cid: Cid,
}

impl Precedence {
    /// The precedence of `entry`, whose block has `cid`.
    pub fn of(entry: &Entry, cid: Cid) -> Precedence {
        Precedence {
            time: entry.clock.time,
            deleted: entry.is_delete(),
            writer: entry.clock.writer.clone(),
            cid,
        }
    }
}

/// Whether `candidate` replaces `current` as its key's winner.
pub fn supersedes(candidate: &Precedence, current: Option<&Precedence>) -> bool {
    current.is_none_or(|current| candidate > current)
}

/// Merges one entry's precedence into a key -> winner map; returns whether
/// the map changed.
pub fn merge_into(
    state: &mut BTreeMap<String, Precedence>,
    key: &str,
    candidate: Precedence,
) -> bool {
    if supersedes(&candidate, state.get(key)) {
        state.insert(key.to_owned(), candidate);
        true
    } else {
        false
    }
}

/// Whether `key` holds a tombstone blob.
pub fn is_tombstone_key(key: &str) -> bool {
    key.ends_with(TOMBSTONES_SUFFIX)
}

/// Reads a tombstone blob (a JSON array of strings) as a set.
pub fn parse_tombstones(bytes: &[u8]) -> Result<BTreeSet<String>, serde_json::Error> {
    serde_json::from_slice(bytes)
}

/// Writes a tombstone set as a JSON array, sorted.
pub fn encode_tombstones(ids: &BTreeSet<String>) -> Result<Vec<u8>, serde_json::Error> {
    serde_json::to_vec(ids)
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use sphere_protocol::ipld::{Block, Codec};

    use super::*;

    fn prec(time: u64, deleted: bool, device: &str, n: u32) -> Precedence {
        Precedence {
            time,
            deleted,
            writer: WriterId::new("w", device),
            cid: Block::new(Codec::Raw, n.to_be_bytes().to_vec()).cid,
        }
    }

    #[test]
    fn later_time_wins_then_delete_then_writer() {
        let put_1 = prec(1, false, "z", 0);
        let put_2 = prec(2, false, "a", 1);
        assert!(supersedes(&put_2, Some(&put_1)));
        assert!(!supersedes(&put_1, Some(&put_2)));
        let del_2 = prec(2, true, "a", 2);
        assert!(supersedes(&del_2, Some(&put_2)));
        let put_2_b = prec(2, false, "b", 3);
        assert!(supersedes(&put_2_b, Some(&put_2)));
        assert!(
            supersedes(&del_2, Some(&put_2_b)),
            "delete beats any writer"
        );
        assert!(supersedes(&put_1, None));
        assert!(
            !supersedes(&put_1, Some(&put_1)),
            "re-applying changes nothing"
        );
    }

    #[test]
    fn tombstone_keys_and_blobs() {
        assert!(is_tombstone_key("alice.tombstones"));
        assert!(!is_tombstone_key("alice.tombstones.x"));
        let set = parse_tombstones(br#"["b","a","b"]"#).unwrap();
        assert_eq!(encode_tombstones(&set).unwrap(), br#"["a","b"]"#);
        assert!(parse_tombstones(b"{}").is_err());
    }

    fn entries() -> impl Strategy<Value = Vec<(String, Precedence)>> {
        prop::collection::vec((0..3u8, 0..4u64, any::<bool>(), 0..3u8), 0..16).prop_map(|v| {
            v.into_iter()
                .enumerate()
                .map(|(n, (key, time, deleted, device))| {
                    let p = prec(time, deleted, &format!("d{device}"), n as u32);
                    (format!("k{key}"), p)
                })
                .collect()
        })
    }

    fn merged(items: &[(String, Precedence)]) -> BTreeMap<String, Precedence> {
        let mut state = BTreeMap::new();
        for (key, p) in items {
            merge_into(&mut state, key, p.clone());
        }
        state
    }

    proptest! {
        #[test]
        fn any_order_gives_the_same_state(
            (items, shuffled) in entries().prop_flat_map(|v| (Just(v.clone()), Just(v).prop_shuffle()))
        ) {
            prop_assert_eq!(merged(&items), merged(&shuffled));
        }

        #[test]
        fn merging_is_idempotent_and_associative(items in entries(), split in 0..16usize) {
            let all = merged(&items);
            let twice: Vec<_> = items.iter().chain(items.iter()).cloned().collect();
            prop_assert_eq!(&merged(&twice), &all);
            // Two replicas that each saw part of the log, merged state-wise.
            let split = split.min(items.len());
            let mut left = merged(&items[..split]);
            for (key, p) in merged(&items[split..]) {
                merge_into(&mut left, &key, p);
            }
            prop_assert_eq!(left, all);
        }
    }
}
