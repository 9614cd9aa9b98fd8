//! Tests for the sparse Merkle tree: unit cases, an adversarial proof, and
//! property tests against a `BTreeMap` model.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::Index;

use super::*;

fn id(bytes: [u8; 32]) -> RequestId {
    RequestId::from(Hash32(bytes))
}

fn leaf(seed: &[u8]) -> Hash32 {
    Hash32::sha256_of(&[b"leaf", seed])
}

#[test]
fn empty_tree_proves_everything_absent() {
    let tree = SparseMerkleTree::new();
    assert_eq!(tree.root(), Hash32::ZERO);
    assert!(tree.is_empty());
    for key in [id([0; 32]), id([0xff; 32]), id([0x42; 32])] {
        assert_eq!(tree.get(&key), None);
        let proof = tree.proof(&key).expect("proof");
        assert_eq!(proof.verify_exclusion(&Hash32::ZERO, &key), Ok(()));
        assert!(
            proof
                .verify_inclusion(&Hash32::ZERO, &key, &leaf(b"x"))
                .is_err()
        );
    }
}

#[test]
fn zero_leaf_and_overwrites_are_refused() {
    let mut tree = SparseMerkleTree::new();
    let key = id([1; 32]);
    assert_eq!(
        tree.insert(key, Hash32::ZERO),
        Err(SmtError::ZeroLeaf { key })
    );
    tree.insert(key, leaf(b"a")).expect("insert");
    let root = tree.root();
    assert_eq!(tree.insert(key, leaf(b"a")), Ok(()), "same leaf is a no-op");
    assert_eq!(
        tree.insert(key, leaf(b"b")),
        Err(SmtError::KeyExists {
            key,
            existing: leaf(b"a")
        })
    );
    assert_eq!(tree.root(), root);
    assert_eq!(tree.len(), 1);
}

#[test]
fn proof_fails_for_other_root_key_or_leaf() {
    let mut tree = SparseMerkleTree::new();
    let (a, b, absent) = (id([1; 32]), id([2; 32]), id([3; 32]));
    tree.insert(a, leaf(b"a")).expect("insert");
    tree.insert(b, leaf(b"b")).expect("insert");
    let root = tree.root();
    let proof = tree.proof(&a).expect("proof");
    assert_eq!(proof.verify_inclusion(&root, &a, &leaf(b"a")), Ok(()));
    assert!(matches!(
        proof.verify_inclusion(&root, &a, &leaf(b"b")),
        Err(ProofError::RootMismatch { .. })
    ));
    assert!(proof.verify_inclusion(&root, &absent, &leaf(b"a")).is_err());
    assert!(
        proof
            .verify_inclusion(&leaf(b"root"), &a, &leaf(b"a"))
            .is_err()
    );
    assert!(proof.verify_exclusion(&root, &a).is_err());
    assert_eq!(
        proof.verify_inclusion(&root, &a, &Hash32::ZERO),
        Err(ProofError::ZeroLeaf)
    );
    let exclusion = tree.proof(&absent).expect("proof");
    assert_eq!(exclusion.verify_exclusion(&root, &absent), Ok(()));
    assert!(exclusion.verify_exclusion(&root, &a).is_err());
}

#[test]
fn proof_serde_round_trips_as_hex() {
    let mut tree = SparseMerkleTree::new();
    tree.insert(id([7; 32]), leaf(b"7")).expect("insert");
    let proof = tree.proof(&id([7; 32])).expect("proof");
    let json = serde_json::to_string(&proof).expect("serialize");
    assert_eq!(json, format!("\"{}\"", hex::encode(proof.as_bytes())));
    let back: MerkleProof = serde_json::from_str(&json).expect("deserialize");
    assert_eq!(back, proof);
    assert!(serde_json::from_str::<MerkleProof>("\"4c4\"").is_err());
    assert!(serde_json::from_str::<MerkleProof>("\"4C4F00\"").is_err());
    let huge = format!("\"{}\"", "00".repeat(MAX_PROOF_BYTES + 1));
    let err = serde_json::from_str::<MerkleProof>(&huge).expect_err("too long");
    assert!(err.to_string().contains("more than the"), "{err}");
}

/// The node the library builds when `value` at `key` has no sibling at
/// height 0, needed to forge a compressed sibling.
fn base_node(key: H256, value: H256) -> [u8; 32] {
    let mut hasher = NodeHasher::default();
    hasher.write_byte(0);
    hasher.write_h256(&key.parent_path(0));
    hasher.write_h256(&value);
    hasher.finish().into()
}

#[test]
fn library_alone_accepts_forged_exclusion() {
    // Bits 0 and 8 of this key are set, which the forgeries need.
    let key = id([0x11; 32]);
    let value = leaf(b"spent");
    let mut tree = SparseMerkleTree::new();
    tree.insert(key, value).expect("insert");
    let root = tree.root();
    let base = base_node(to_h256(key.hash()), to_h256(value));

    // A compressed sibling claiming the whole path above the leaf, placed
    // at height 0 (zero_count wraps to 0) or at height 8 (zero_count 8).
    let mut at_height_0 = vec![OP_LEAF, OP_COMPRESSED_SIBLING, 0];
    at_height_0.extend_from_slice(&base);
    at_height_0.extend_from_slice(key.as_bytes());
    at_height_0.extend_from_slice(&[OP_ZEROS, 255]);
    let mut at_height_8 = vec![OP_LEAF, OP_ZEROS, 8, OP_COMPRESSED_SIBLING, 8];
    at_height_8.extend_from_slice(&base);
    at_height_8.extend_from_slice(key.as_bytes());
    at_height_8.extend_from_slice(&[OP_ZEROS, 247]);

    for forged in [at_height_0, at_height_8] {
        let library = CompiledMerkleProof(forged.clone())
            .verify::<NodeHasher>(&to_h256(root), vec![(to_h256(key.hash()), H256::zero())]);
        assert_eq!(library, Ok(true), "the library is fooled");
        let proof = MerkleProof::from_bytes(forged).expect("size ok");
        assert!(matches!(
            proof.verify_exclusion(&root, &key),
            Err(ProofError::Malformed { .. })
        ));
    }
}

#[test]
fn non_canonical_encodings_are_refused() {
    let key = id([9; 32]);
    let check = |bytes: Vec<u8>| {
        MerkleProof::from_bytes(bytes)
            .expect("size ok")
            .verify_exclusion(&Hash32::ZERO, &key)
    };
    assert_eq!(check(vec![OP_LEAF, OP_ZEROS, 0]), Ok(()));
    // The same 256 zero levels split into two runs.
    assert!(check(vec![OP_LEAF, OP_ZEROS, 128, OP_ZEROS, 128]).is_err());
    assert!(check(vec![OP_LEAF, OP_ZEROS, 0, OP_LEAF]).is_err());
    assert!(check(vec![OP_LEAF, OP_ZEROS, 255]).is_err());
    assert!(check(vec![]).is_err());
    let mut zero_sibling = vec![OP_LEAF, OP_SIBLING];
    zero_sibling.extend_from_slice(&[0; 32]);
    zero_sibling.extend_from_slice(&[OP_ZEROS, 255]);
    assert!(check(zero_sibling).is_err());
}

fn key_with_low_byte(low: u8) -> RequestId {
    let mut bytes = [0x33; 32];
    bytes[0] = low;
    id(bytes)
}

#[test]
fn every_byte_of_a_proof_is_load_bearing() {
    // Neighbouring keys give plain and compressed siblings and zero runs.
    let mut crowded = SparseMerkleTree::new();
    for low in [0x00, 0x01, 0x10, 0x80] {
        crowded
            .insert(key_with_low_byte(low), leaf(&[low]))
            .expect("insert");
    }
    // With one leaf, an exclusion path meets a compressed sibling and then
    // only zeros: the case where the library alone lets bits be flipped.
    let mut lonely = SparseMerkleTree::new();
    lonely
        .insert(key_with_low_byte(0x80), leaf(&[0x80]))
        .expect("insert");
    let cases = [
        (&crowded, key_with_low_byte(0x00), leaf(&[0x00])),
        (&crowded, key_with_low_byte(0xc0), Hash32::ZERO),
        (&lonely, key_with_low_byte(0xc0), Hash32::ZERO),
    ];
    for (tree, key, value) in cases {
        let root = tree.root();
        let proof = tree.proof(&key).expect("proof");
        let holds = |p: &MerkleProof| {
            if value.is_zero() {
                p.verify_exclusion(&root, &key)
            } else {
                p.verify_inclusion(&root, &key, &value)
            }
        };
        assert_eq!(holds(&proof), Ok(()));
        assert!(proof.as_bytes().contains(&OP_COMPRESSED_SIBLING));
        for at in 0..proof.as_bytes().len() {
            for mask in [0x01, 0x02, 0x10, 0x80, 0xff] {
                let mut bytes = proof.as_bytes().to_vec();
                bytes[at] ^= mask;
                let tampered = MerkleProof::from_bytes(bytes).expect("same size");
                assert!(holds(&tampered).is_err(), "byte {at} ^ {mask:#04x}");
            }
        }
    }
}

fn key_strategy() -> impl Strategy<Value = RequestId> {
    prop_oneof![
        any::<[u8; 32]>(),
        // Keys sharing all but a few bits, so paths run deep together and
        // proofs carry compressed siblings.
        (any::<u8>(), 0u8..4).prop_map(|(low, high)| {
            let mut bytes = [0x5a; 32];
            bytes[0] = low;
            bytes[31] = high;
            bytes
        }),
    ]
    .prop_map(id)
}

fn leaf_strategy() -> impl Strategy<Value = Hash32> {
    any::<[u8; 32]>()
        .prop_filter("zero means absent", |bytes| *bytes != [0; 32])
        .prop_map(Hash32)
}

fn model_strategy() -> impl Strategy<Value = BTreeMap<RequestId, Hash32>> {
    prop::collection::btree_map(key_strategy(), leaf_strategy(), 0..20)
}

fn build(entries: &[(RequestId, Hash32)]) -> SparseMerkleTree {
    let mut tree = SparseMerkleTree::new();
    for (key, leaf) in entries {
        assert_eq!(tree.insert(*key, *leaf), Ok(()));
    }
    tree
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn root_is_independent_of_insertion_order(
        (first, second) in model_strategy().prop_flat_map(|model| {
            let entries: Vec<_> = model.into_iter().collect();
            (Just(entries.clone()).prop_shuffle(), Just(entries).prop_shuffle())
        }),
        probe in key_strategy(),
    ) {
        let a = build(&first);
        let b = build(&second);
        prop_assert_eq!(a.root(), b.root());

        // The library's batch update is a separate code path to the same root.
        let mut batch = Inner::default();
        let leaves = first.iter().map(|(k, v)| (to_h256(k.hash()), to_h256(*v))).collect();
        batch.update_all(leaves).expect("batch update");
        prop_assert_eq!(from_h256(*batch.root()), a.root());

        let model: BTreeMap<_, _> = first.iter().copied().collect();
        prop_assert_eq!(a.len(), model.len());
        prop_assert_eq!(a.root().is_zero(), model.is_empty());
        for (key, leaf) in &model {
            prop_assert_eq!(a.get(key), Some(*leaf));
        }
        prop_assert_eq!(a.get(&probe), model.get(&probe).copied());
    }

    #[test]
    fn proofs_match_the_model(
        model in model_strategy(),
        absent in prop::collection::vec(key_strategy(), 1..4),
        other_leaf in leaf_strategy(),
    ) {
        let entries: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
        let tree = build(&entries);
        let root = tree.root();
        let absent: Vec<_> = absent.into_iter().filter(|k| !model.contains_key(k)).collect();
        for (key, leaf) in &model {
            let proof = tree.proof(key).expect("proof");
            prop_assert_eq!(proof.verify_inclusion(&root, key, leaf), Ok(()));
            if other_leaf != *leaf {
                prop_assert!(proof.verify_inclusion(&root, key, &other_leaf).is_err());
            }
            prop_assert!(proof.verify_exclusion(&root, key).is_err());
            for stranger in &absent {
                prop_assert!(proof.verify_inclusion(&root, stranger, leaf).is_err());
            }
        }
        for key in &absent {
            let proof = tree.proof(key).expect("proof");
            prop_assert_eq!(proof.verify_exclusion(&root, key), Ok(()));
            prop_assert!(proof.verify_inclusion(&root, key, &other_leaf).is_err());
            for present in model.keys() {
                prop_assert!(proof.verify_exclusion(&root, present).is_err());
            }
        }
    }

    #[test]
    fn tampered_proof_never_verifies(
        model in model_strategy(),
        probe in key_strategy(),
        pick in any::<Index>(),
        use_present in any::<bool>(),
        position in any::<Index>(),
        mask in 1u8..=255,
    ) {
        let entries: Vec<_> = model.iter().map(|(k, v)| (*k, *v)).collect();
        let tree = build(&entries);
        let root = tree.root();
        let (key, leaf) = if use_present && !entries.is_empty() {
            *pick.get(&entries)
        } else {
            (probe, model.get(&probe).copied().unwrap_or(Hash32::ZERO))
        };
        let proof = tree.proof(&key).expect("proof");
        let statement = |proof: &MerkleProof| {
            if leaf.is_zero() {
                proof.verify_exclusion(&root, &key)
            } else {
                proof.verify_inclusion(&root, &key, &leaf)
            }
        };
        prop_assert_eq!(statement(&proof), Ok(()));

        let mut bytes = proof.as_bytes().to_vec();
        let at = position.index(bytes.len());
        bytes[at] ^= mask;
        let tampered = MerkleProof::from_bytes(bytes).expect("same size");
        prop_assert!(statement(&tampered).is_err(), "byte {} ^ {:#04x} still verifies", at, mask);
    }
}

#[test]
fn tree_and_proof_can_be_shared_across_threads() {
    fn shareable<T: Send + Sync>() {}
    shareable::<SparseMerkleTree>();
    shareable::<MerkleProof>();
}
