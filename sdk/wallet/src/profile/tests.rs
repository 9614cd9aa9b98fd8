//! Local profile operations: writes, reads, encryption, persistence.

use ipld_core::ipld::Ipld;
use sphere_protocol::ipld::decode_dag_cbor;
use tempfile::TempDir;

use super::*;

pub(super) const KEY: [u8; 32] = [42; 32];

/// A profile over a fresh store in `dir/<device>`.
pub(super) fn replica(dir: &TempDir, device: &str, merge: TombstoneMerge) -> Profile {
    let store = WalletStore::open(&dir.path().join(device)).unwrap();
    Profile::open(store, KEY, WriterId::new("wallet", device), merge).unwrap()
}

pub(super) fn state_of(profile: &Profile) -> Vec<(String, Vec<u8>)> {
    profile.scan_prefix("").unwrap()
}

#[test]
fn put_get_delete_round_trip() {
    let dir = TempDir::new().unwrap();
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    assert!(p.is_empty());
    p.put("alice.sent.2", b"two").unwrap();
    p.put("alice.sent.1", b"one").unwrap();
    p.put_json("alice.meta", &vec![1, 2, 3]).unwrap();
    p.put("bob.sent.1", b"other").unwrap();
    assert_eq!(p.get("alice.sent.1").unwrap().as_deref(), Some(&b"one"[..]));
    assert_eq!(
        p.get_json::<Vec<u8>>("alice.meta").unwrap(),
        Some(vec![1, 2, 3])
    );
    assert_eq!(p.get("missing").unwrap(), None);
    assert_eq!(
        p.keys_with_prefix("alice.sent."),
        ["alice.sent.1", "alice.sent.2"]
    );

    p.delete("alice.sent.1").unwrap();
    assert_eq!(p.get("alice.sent.1").unwrap(), None);
    assert_eq!(p.keys_with_prefix("alice.sent."), ["alice.sent.2"]);
    assert_eq!(
        p.scan_prefix("alice.").unwrap(),
        [
            ("alice.meta".to_owned(), b"[1,2,3]".to_vec()),
            ("alice.sent.2".to_owned(), b"two".to_vec())
        ]
    );
    assert_eq!((p.len(), p.clock()), (5, 5));
    assert_eq!(
        p.latest_entries().len(),
        4,
        "the delete entry is a winner too"
    );
    assert_eq!(p.all_entries().unwrap().len(), 5);
}

#[test]
fn every_entry_links_to_the_previous_heads() {
    let dir = TempDir::new().unwrap();
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    let first = p.put("k", b"1").unwrap();
    assert_eq!(p.heads(), [first]);
    let second = p.put("other", b"2").unwrap();
    assert_eq!(p.heads(), [second]);
    let block = p
        .latest_entries()
        .into_iter()
        .find(|b| b.cid == second)
        .unwrap();
    let entry = Entry::from_block(&block).unwrap();
    assert_eq!(entry.next, [first]);
    assert_eq!(
        entry.clock,
        Clock {
            time: 2,
            writer: WriterId::new("wallet", "a")
        }
    );
}

#[test]
fn equal_values_get_fresh_nonces_and_different_ciphertexts() {
    let dir = TempDir::new().unwrap();
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    p.put("k", b"same").unwrap();
    let first = Entry::from_block(&p.latest_entries()[0]).unwrap();
    p.put("k", b"same").unwrap();
    let second = Entry::from_block(&p.latest_entries()[0]).unwrap();
    let (a, b) = (first.value.unwrap(), second.value.unwrap());
    assert_ne!(a.nonce, b.nonce);
    assert_ne!(a.ciphertext, b.ciphertext);
}

#[test]
fn no_plaintext_reaches_the_stored_bytes() {
    let dir = TempDir::new().unwrap();
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    let secret = b"mnemonic-grade-secret-value-0123456789";
    p.put("k", secret).unwrap();
    p.put_json("alice.tombstones", &["spent-token-id-abcdef"])
        .unwrap();
    let blocks = p.all_entries().unwrap();
    assert_eq!(blocks.len(), 2);
    for block in &blocks {
        for needle in [&secret[..], b"spent-token-id-abcdef"] {
            assert!(!block.data.windows(needle.len()).any(|w| w == needle));
        }
    }
    // Nor anywhere in the store file.
    drop(p);
    let file = std::fs::read(dir.path().join("a").join(crate::store::STORE_FILE)).unwrap();
    assert!(!file.windows(secret.len()).any(|w| w == secret));
}

#[test]
fn entries_are_dag_cbor_with_byte_strings_and_links() {
    let dir = TempDir::new().unwrap();
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    let first = p.put("k", b"v").unwrap();
    p.delete("k").unwrap();
    let blocks = p.all_entries().unwrap();
    let put = blocks.iter().find(|b| b.cid == first).unwrap();
    let del = blocks.iter().find(|b| b.cid != first).unwrap();
    assert_eq!(put.cid.codec(), 0x71);

    let node: Ipld = decode_dag_cbor(&put.data).unwrap();
    let value = node.get("value").unwrap().unwrap();
    assert!(matches!(value.get("nonce").unwrap(), Some(Ipld::Bytes(n)) if n.len() == 12));
    assert!(matches!(value.get("ciphertext").unwrap(), Some(Ipld::Bytes(c)) if c.len() == 17));
    assert_eq!(node.get("v").unwrap(), Some(&Ipld::Integer(1)));
    assert_eq!(node.get("key").unwrap(), Some(&Ipld::String("k".into())));
    let writer = node
        .get("clock")
        .unwrap()
        .unwrap()
        .get("writer")
        .unwrap()
        .unwrap();
    assert_eq!(
        writer.get("device").unwrap(),
        Some(&Ipld::String("a".into()))
    );

    let node: Ipld = decode_dag_cbor(&del.data).unwrap();
    assert_eq!(node.get("value").unwrap(), Some(&Ipld::Null));
    assert_eq!(
        node.get("next").unwrap(),
        Some(&Ipld::List(vec![Ipld::Link(first)]))
    );
    assert_eq!(del.links().unwrap(), [first]);
}

#[test]
fn reopen_rebuilds_state_clock_and_heads() {
    let dir = TempDir::new().unwrap();
    let (state, clock, heads, len) = {
        let mut p = replica(&dir, "a", TombstoneMerge::Union);
        for i in 0..10 {
            p.put(&format!("k{}", i % 4), format!("v{i}").as_bytes())
                .unwrap();
        }
        p.delete("k1").unwrap();
        (state_of(&p), p.clock(), p.heads(), p.len())
    };
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    assert_eq!(state_of(&p), state);
    assert_eq!((p.clock(), p.heads(), p.len()), (clock, heads, len));
    assert_eq!(p.get("k1").unwrap(), None);
    // The clock keeps counting from where it was.
    p.put("k0", b"after").unwrap();
    assert_eq!(p.clock(), clock + 1);
}

#[test]
fn another_profile_key_cannot_read_the_values() {
    let dir = TempDir::new().unwrap();
    {
        let mut p = replica(&dir, "a", TombstoneMerge::Union);
        p.put("alice.sent.1", b"v").unwrap();
    }
    let store = WalletStore::open(&dir.path().join("a")).unwrap();
    let writer = WriterId::new("wallet", "a");
    let p = Profile::open(store, [1; 32], writer, TombstoneMerge::Union).unwrap();
    let err = p.get("alice.sent.1").unwrap_err();
    assert!(matches!(err, ProfileError::Decrypt { .. }));
    assert!(err.to_string().contains("`alice.sent.1`"), "{err}");
}

#[test]
fn prepared_entries_commit_with_the_callers_transaction() {
    let dir = TempDir::new().unwrap();
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    let events = p.subscribe();
    // The caller's handle on the same store (clones share one database).
    let own = p.store.clone();

    // A failed transaction: nothing on disk, nothing in memory.
    let prepared = p.prepare_put("alice.outbox.1", b"pending").unwrap();
    let failed = own.write(|batch| {
        prepared.write(batch)?;
        batch.put(Table::Meta, "side-1", b"x")?;
        Err::<(), _>(batch.abort("simulated failure"))
    });
    assert!(failed.is_err());
    drop(prepared);
    assert_eq!(p.get("alice.outbox.1").unwrap(), None);
    assert_eq!(p.all_entries().unwrap().len(), 0);

    // A committed one: visible only after commit_prepared.
    let a = p.prepare_put("alice.outbox.1", b"pending").unwrap();
    let b = p.prepare_delete("alice.inbox.9").unwrap();
    own.write(|batch| {
        a.write(batch)?;
        b.write(batch)?;
        batch.put(Table::Meta, "side-1", b"x")
    })
    .unwrap();
    assert_eq!(p.get("alice.outbox.1").unwrap(), None, "not committed yet");
    let (cid_a, cid_b) = (p.commit_prepared(a), p.commit_prepared(b));
    assert_eq!(
        p.get("alice.outbox.1").unwrap().as_deref(),
        Some(&b"pending"[..])
    );
    assert_eq!(own.get(Table::Meta, "side-1").unwrap(), Some(b"x".to_vec()));
    assert_eq!(p.heads(), {
        let mut both = vec![cid_a, cid_b];
        both.sort();
        both
    });
    let mut events = events;
    assert_eq!(events.try_recv().unwrap().entry, cid_a);
    assert_eq!(events.try_recv().unwrap().entry, cid_b);
    assert!(events.try_recv().is_err());
    assert!(
        p.clock() > 1,
        "the failed prepare's reserved time is skipped"
    );
}

#[test]
fn local_writes_fire_local_events() {
    let dir = TempDir::new().unwrap();
    let mut p = replica(&dir, "a", TombstoneMerge::Union);
    let mut events = p.subscribe();
    let put = p.put("k", b"v").unwrap();
    let del = p.delete("k").unwrap();
    let first = events.try_recv().unwrap();
    assert_eq!(
        first,
        UpdateEvent {
            key: "k".into(),
            writer: WriterId::new("wallet", "a"),
            origin: Origin::Local,
            entry: put,
            deleted: false,
        }
    );
    let second = events.try_recv().unwrap();
    assert!(second.deleted && second.entry == del);
    assert!(events.try_recv().is_err());
}
