//! Replication between profile instances: convergence, refusal of bad
//! blocks, events, and the two tombstone-merge variants.

use proptest::prelude::*;
use sphere_protocol::ipld::{Block, Codec};
use tempfile::TempDir;

use super::super::tests::{replica, state_of};
use super::super::*;

fn tombstones(p: &Profile) -> Vec<String> {
    p.get_json("alice.tombstones").unwrap().unwrap_or_default()
}

#[test]
fn replicas_exchanging_latest_entries_converge() {
    let dir = TempDir::new().unwrap();
    let mut a = replica(&dir, "a", TombstoneMerge::Union);
    let mut b = replica(&dir, "b", TombstoneMerge::Union);
    a.put("shared", b"from a").unwrap();
    a.put("only-a", b"1").unwrap();
    a.put("gone", b"x").unwrap();
    b.put("shared", b"from b").unwrap();
    b.put("only-b", b"2").unwrap();
    a.delete("gone").unwrap();

    let (from_a, from_b) = (a.latest_entries(), b.latest_entries());
    let report = b.apply_remote(from_a).unwrap();
    assert_eq!(
        report,
        ApplyReport {
            applied: 3,
            ignored: 0
        }
    );
    a.apply_remote(from_b).unwrap();
    assert_eq!(state_of(&a), state_of(&b));
    assert_eq!(a.latest_entries(), b.latest_entries());
    // a's put of `shared` came at time 1, b's at time 1: writer `b` wins.
    assert_eq!(a.get("shared").unwrap().as_deref(), Some(&b"from b"[..]));
    assert_eq!(a.get("gone").unwrap(), None);
    assert_eq!(a.clock(), b.clock());

    // Re-applying is a no-op, and later writes outrank everything seen.
    let again = a.apply_remote(b.latest_entries()).unwrap();
    assert_eq!(
        again,
        ApplyReport {
            applied: 0,
            ignored: 4
        }
    );
    let clock = b.clock();
    b.put("shared", b"newest").unwrap();
    a.apply_remote(b.latest_entries()).unwrap();
    assert_eq!(a.get("shared").unwrap().as_deref(), Some(&b"newest"[..]));
    assert_eq!(a.clock(), clock + 1);
}

#[test]
fn applied_entries_survive_reopen() {
    let dir = TempDir::new().unwrap();
    let mut a = replica(&dir, "a", TombstoneMerge::Union);
    let mut b = replica(&dir, "b", TombstoneMerge::Union);
    a.put("k", b"v").unwrap();
    b.apply_remote(a.all_entries().unwrap()).unwrap();
    let (state, clock, heads) = (state_of(&b), b.clock(), b.heads());
    drop(b);
    let b = replica(&dir, "b", TombstoneMerge::Union);
    assert_eq!((state_of(&b), b.clock(), b.heads()), (state, clock, heads));
}

#[test]
fn a_delete_beats_a_concurrent_put_at_the_same_time() {
    let dir = TempDir::new().unwrap();
    // The putting writer sorts after the deleting one, so the tie is not
    // decided by writer id.
    let mut put = replica(&dir, "z-put", TombstoneMerge::Union);
    let mut del = replica(&dir, "a-del", TombstoneMerge::Union);
    put.put("k", b"v").unwrap();
    del.delete("k").unwrap();
    assert_eq!(put.clock(), del.clock());
    put.apply_remote(del.latest_entries()).unwrap();
    del.apply_remote(put.latest_entries()).unwrap();
    assert_eq!(put.get("k").unwrap(), None);
    assert_eq!(del.get("k").unwrap(), None);
    assert_eq!(put.keys_with_prefix(""), Vec::<String>::new());
}

#[test]
fn a_tampered_block_is_refused_and_nothing_is_applied() {
    let dir = TempDir::new().unwrap();
    let mut a = replica(&dir, "a", TombstoneMerge::Union);
    let mut b = replica(&dir, "b", TombstoneMerge::Union);
    a.put("k1", b"v1").unwrap();
    a.put("k2", b"v2").unwrap();
    let mut blocks = a.latest_entries();
    let mut data = blocks[1].data.to_vec();
    let last = data.len() - 1;
    data[last] ^= 1;
    let bad_cid = blocks[1].cid;
    blocks[1] = Block {
        cid: bad_cid,
        data: data.into(),
    };
    let err = b.apply_remote(blocks).unwrap_err();
    assert!(matches!(err, ProfileError::InvalidBlock(_)));
    assert!(err.to_string().contains(&bad_cid.to_string()), "{err}");
    assert!(b.is_empty() && b.all_entries().unwrap().is_empty());
}

#[test]
fn blocks_that_are_not_entries_are_refused_naming_them() {
    let dir = TempDir::new().unwrap();
    let mut b = replica(&dir, "b", TombstoneMerge::Union);
    let raw = Block::new(Codec::Raw, b"hello".to_vec());
    let err = b.apply_remote(vec![raw.clone()]).unwrap_err();
    assert!(err.to_string().contains(&raw.cid.to_string()), "{err}");
    let map = Block::encode_dag_cbor(&std::collections::BTreeMap::from([("a", 1u8)])).unwrap();
    let err = b.apply_remote(vec![map.clone()]).unwrap_err();
    assert!(matches!(err, ProfileError::NotAnEntry { cid, .. } if cid == map.cid));
}

#[test]
fn entries_sealed_with_another_key_or_for_another_key_are_refused() {
    let dir = TempDir::new().unwrap();
    let mut a = replica(&dir, "a", TombstoneMerge::Union);
    a.put("alice.sent.1", b"v").unwrap();
    let store = WalletStore::open(&dir.path().join("other")).unwrap();
    let writer = WriterId::new("other", "x");
    let mut other = Profile::open(store, [1; 32], writer, TombstoneMerge::Union).unwrap();
    let err = other.apply_remote(a.latest_entries()).unwrap_err();
    assert!(err.to_string().contains("`alice.sent.1`"), "{err}");
    assert!(other.is_empty());

    // A valid entry that moves a's sealed value under another key.
    let mut moved = Entry::from_block(&a.latest_entries()[0]).unwrap();
    moved.key = "alice.sent.2".into();
    let mut b = replica(&dir, "b", TombstoneMerge::Union);
    let err = b.apply_remote(vec![moved.to_block().unwrap()]).unwrap_err();
    assert!(matches!(&err, ProfileError::Decrypt { key } if key == "alice.sent.2"));
}

#[test]
fn remote_entries_fire_one_event_per_state_change() {
    let dir = TempDir::new().unwrap();
    let mut a = replica(&dir, "a", TombstoneMerge::Union);
    let mut b = replica(&dir, "b", TombstoneMerge::Union);
    a.put("k", b"old").unwrap();
    a.put("k", b"new").unwrap();
    a.delete("d").unwrap();
    b.put("mine", b"x").unwrap();
    let mut events = b.subscribe();

    // Both entries of `k` beat b's (absent) value in ascending order.
    let report = b.apply_remote(a.all_entries().unwrap()).unwrap();
    assert_eq!(report.applied, 3);
    let got: Vec<UpdateEvent> = std::iter::from_fn(|| events.try_recv().ok()).collect();
    assert_eq!(got.len(), 3);
    assert!(
        got.iter()
            .all(|e| e.origin == Origin::Remote && e.writer == *a.writer())
    );
    assert_eq!(got.iter().filter(|e| e.deleted).count(), 1);
    assert_eq!(b.get("k").unwrap().as_deref(), Some(&b"new"[..]));

    // Known entries change nothing and fire nothing.
    b.apply_remote(a.all_entries().unwrap()).unwrap();
    assert!(events.try_recv().is_err());

    // An entry that loses its key is applied but fires nothing.
    b.put("k", b"b wins").unwrap();
    let _local = events.try_recv().unwrap();
    let mut c = replica(&dir, "c", TombstoneMerge::Union);
    c.put("k", b"stale").unwrap();
    assert_eq!(b.apply_remote(c.latest_entries()).unwrap().applied, 1);
    assert!(events.try_recv().is_err());
}

#[test]
fn union_merge_converges_every_replica_to_the_union() {
    let dir = TempDir::new().unwrap();
    let mut a = replica(&dir, "a", TombstoneMerge::Union);
    let mut b = replica(&dir, "b", TombstoneMerge::Union);
    a.put_json("alice.tombstones", &["t1", "t3"]).unwrap();
    b.put_json("alice.tombstones", &["t2"]).unwrap();
    let mut events = a.subscribe();

    // Both apply the other's original blob before seeing any rewrite.
    let (from_a, from_b) = (a.latest_entries(), b.latest_entries());
    a.apply_remote(from_b).unwrap();
    b.apply_remote(from_a).unwrap();
    assert_eq!(tombstones(&a), ["t1", "t2", "t3"]);
    assert_eq!(tombstones(&b), ["t1", "t2", "t3"]);
    let origins: Vec<Origin> = std::iter::from_fn(|| events.try_recv().ok())
        .map(|e| e.origin)
        .collect();
    // b's blob wins the time-1 tie on writer id, then a writes the union.
    assert_eq!(origins, [Origin::Remote, Origin::Local]);

    // One more exchange settles both on the same winning entry, with no
    // further rewrites.
    let (from_a, from_b) = (a.latest_entries(), b.latest_entries());
    a.apply_remote(from_b).unwrap();
    b.apply_remote(from_a).unwrap();
    assert_eq!(a.latest_entries(), b.latest_entries());
    let (len_a, len_b) = (a.len(), b.len());
    a.apply_remote(b.all_entries().unwrap()).unwrap();
    b.apply_remote(a.all_entries().unwrap()).unwrap();
    assert_eq!((a.len(), b.len()), (len_a, len_b));
    assert_eq!(tombstones(&a), ["t1", "t2", "t3"]);
}

#[test]
fn overwrite_merge_keeps_the_local_blob_and_loses_remote_spends() {
    let dir = TempDir::new().unwrap();
    let mut a = replica(&dir, "a", TombstoneMerge::Overwrite);
    let mut b = replica(&dir, "b", TombstoneMerge::Overwrite);
    a.put_json("alice.tombstones", &["t1"]).unwrap();
    b.put_json("alice.tombstones", &["t2"]).unwrap();
    let (from_a, from_b) = (a.latest_entries(), b.latest_entries());
    let report = a.apply_remote(from_b).unwrap();
    assert_eq!(
        report,
        ApplyReport {
            applied: 0,
            ignored: 1
        }
    );
    b.apply_remote(from_a.clone()).unwrap();
    assert_eq!(tombstones(&a), ["t1"]);
    assert_eq!(tombstones(&b), ["t2"], "the spend of t1 is lost on b");

    // With no local blob the remote one is taken as is.
    let mut c = replica(&dir, "c", TombstoneMerge::Overwrite);
    c.apply_remote(from_a).unwrap();
    assert_eq!(tombstones(&c), ["t1"]);
}

/// One operation of the convergence property: on replica `at`, put or
/// delete key `key`, or merge everything replica `key % 3` has.
#[derive(Debug, Clone)]
enum Op {
    Put { at: usize, key: u8, value: u8 },
    Delete { at: usize, key: u8 },
    Spend { at: usize, id: u8 },
    Sync { at: usize, from: usize },
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..3usize, 0..3u8, any::<u8>()).prop_map(|(at, key, value)| Op::Put { at, key, value }),
        (0..3usize, 0..3u8).prop_map(|(at, key)| Op::Delete { at, key }),
        (0..3usize, 0..6u8).prop_map(|(at, id)| Op::Spend { at, id }),
        (0..3usize, 0..3usize).prop_map(|(at, from)| Op::Sync { at, from }),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    /// Whatever the writes and partial syncs, replicas that end up with the
    /// same entries hold the same state, and every spend survives.
    #[test]
    fn replicas_converge_whatever_the_order(ops in prop::collection::vec(op(), 0..14), order in Just(vec![0usize, 1, 2]).prop_shuffle()) {
        let dir = TempDir::new().unwrap();
        let mut rs: Vec<Profile> = ["r0", "r1", "r2"].iter().map(|d| replica(&dir, d, TombstoneMerge::Union)).collect();
        let mut spent = std::collections::BTreeSet::new();
        for op in ops {
            match op {
                Op::Put { at, key, value } => { rs[at].put(&format!("k{key}"), &[value]).unwrap(); }
                Op::Delete { at, key } => { rs[at].delete(&format!("k{key}")).unwrap(); }
                Op::Spend { at, id } => {
                    let mut ids = tombstones(&rs[at]);
                    ids.push(format!("t{id}"));
                    spent.insert(format!("t{id}"));
                    rs[at].put_json("alice.tombstones", &ids).unwrap();
                }
                Op::Sync { at, from } => {
                    let blocks = rs[from].latest_entries();
                    rs[at].apply_remote(blocks).unwrap();
                }
            }
        }
        // Gossip full logs in a random order; rounds enough for union rewrites
        // to settle.
        for _round in 0..4 {
            for &from in &order {
                let blocks = rs[from].all_entries().unwrap();
                for r in rs.iter_mut() {
                    r.apply_remote(blocks.clone()).unwrap();
                }
            }
        }
        let expected = state_of(&rs[0]);
        for r in &rs[1..] {
            prop_assert_eq!(&state_of(r), &expected);
            prop_assert_eq!(r.latest_entries(), rs[0].latest_entries());
        }
        let have: std::collections::BTreeSet<String> = tombstones(&rs[0]).into_iter().collect();
        prop_assert_eq!(have, spent);
    }
}
