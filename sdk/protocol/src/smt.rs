//! The aggregator's sparse Merkle tree and its proofs.
//!
//! [`SparseMerkleTree`] maps 256-bit [`RequestId`]s to non-zero leaf hashes
//! (normally [`crate::commitment::Commitment::leaf_hash`]); an absent key
//! holds zero, and the empty tree's root is [`Hash32::ZERO`]. A
//! [`MerkleProof`] for one key shows either that a given leaf sits under that
//! key ([`MerkleProof::verify_inclusion`]) or that nothing does
//! ([`MerkleProof::verify_exclusion`]).
//!
//! The tree is `sparse-merkle-tree` 0.6 with SHA-256 node hashing behind the
//! [`domain::SMT_NODE`] tag. A proof's bytes are that crate's compiled proof
//! program for a single key. Its verifier does not check that a compressed
//! sibling (opcode `0x51`) really fits below the height where it is used,
//! which lets a forged sibling prove a present key absent (see the
//! `library_alone_accepts_forged_exclusion` test); [`MerkleProof`] therefore
//! checks the program's shape itself before running it, and also refuses
//! non-canonical encodings so a proof cannot be rewritten into another valid
//! one.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};
use sparse_merkle_tree::{CompiledMerkleProof, H256, default_store::DefaultStore, traits::Hasher};

use crate::hash::{
    Hash32, HexError, RequestId, decode_lowercase_hex, deserialize_from_str, domain, tagged_hasher,
};

#[cfg(test)]
mod tests;

/// Upper bound on a single-key proof: the leaf opcode, then for each of the
/// 256 heights at most a compressed sibling (66 bytes) and a zero run (2).
pub const MAX_PROOF_BYTES: usize = 1 + 256 * (66 + 2);

const OP_LEAF: u8 = 0x4C;
const OP_ZEROS: u8 = 0x4F;
const OP_SIBLING: u8 = 0x50;
const OP_COMPRESSED_SIBLING: u8 = 0x51;

/// SHA-256 with the tree's domain tag, as the library's node hasher.
struct NodeHasher(Sha256);

impl Default for NodeHasher {
    fn default() -> Self {
        NodeHasher(tagged_hasher(domain::SMT_NODE))
    }
}

impl Hasher for NodeHasher {
    fn write_h256(&mut self, h: &H256) {
        self.0.update(h.as_slice());
    }

    fn write_byte(&mut self, b: u8) {
        self.0.update([b]);
    }

    fn finish(self) -> H256 {
        let digest: [u8; 32] = self.0.finalize().into();
        H256::from(digest)
    }
}

type Inner = sparse_merkle_tree::SparseMerkleTree<NodeHasher, H256, DefaultStore<H256>>;

fn to_h256(hash: Hash32) -> H256 {
    H256::from(hash.0)
}

fn from_h256(h: H256) -> Hash32 {
    Hash32(h.into())
}

/// Why the tree refused an operation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtError {
    /// Zero is how the tree marks an absent key, so it cannot be stored.
    #[error("cannot insert a zero leaf under `{key}`: zero means absent")]
    ZeroLeaf {
        /// The key of the refused insert.
        key: RequestId,
    },
    /// The key already holds a different leaf; leaves are never replaced.
    #[error("key `{key}` already holds leaf `{existing}`")]
    KeyExists {
        /// The key of the refused insert.
        key: RequestId,
        /// The leaf it already holds.
        existing: Hash32,
    },
    /// The tree library reported a failure (a bug, not an input problem).
    #[error("sparse merkle tree failure: {message}")]
    Internal {
        /// The library's message.
        message: String,
    },
}

/// Why a proof did not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    /// The proof is larger than any single-key proof can be.
    #[error("proof is {len} bytes, more than the {max} a single-key proof can take")]
    TooLong {
        /// Its length.
        len: usize,
        /// [`MAX_PROOF_BYTES`].
        max: usize,
    },
    /// The proof's hex text is malformed.
    #[error("invalid proof hex: {0}")]
    InvalidHex(#[from] HexError),
    /// The proof program is not a canonical single-key proof.
    #[error("malformed proof at byte {offset}: {reason}")]
    Malformed {
        /// Where the problem was found.
        offset: usize,
        /// What is wrong.
        reason: &'static str,
    },
    /// An inclusion proof was asked for the zero leaf.
    #[error("a zero leaf means absent: check exclusion instead of inclusion")]
    ZeroLeaf,
    /// The proof is well-formed but leads to a different root.
    #[error("proof computes root `{computed}`, expected `{expected}`")]
    RootMismatch {
        /// The root the proof was checked against.
        expected: Hash32,
        /// The root the proof computes for the claimed key and leaf.
        computed: Hash32,
    },
}

/// A sparse Merkle tree from request ids to leaf hashes, kept in memory.
#[derive(Default)]
pub struct SparseMerkleTree {
    tree: Inner,
    len: usize,
}

impl SparseMerkleTree {
    /// An empty tree; its root is [`Hash32::ZERO`].
    pub fn new() -> SparseMerkleTree {
        SparseMerkleTree::default()
    }

    /// Stores `leaf` under `key`.
    ///
    /// Inserting the leaf a key already holds does nothing; a different leaf
    /// for a present key is refused, so a committed value never changes.
    pub fn insert(&mut self, key: RequestId, leaf: Hash32) -> Result<(), SmtError> {
        if leaf.is_zero() {
            return Err(SmtError::ZeroLeaf { key });
        }
        match self.get(&key) {
            Some(existing) if existing == leaf => return Ok(()),
            Some(existing) => return Err(SmtError::KeyExists { key, existing }),
            None => {}
        }
        self.tree
            .update(to_h256(key.hash()), to_h256(leaf))
            .map_err(|err| SmtError::Internal {
                message: err.to_string(),
            })?;
        self.len += 1;
        Ok(())
    }

    /// The leaf under `key`, if any.
    pub fn get(&self, key: &RequestId) -> Option<Hash32> {
        self.tree
            .store()
            .leaves_map()
            .get(&to_h256(key.hash()))
            .map(|leaf| from_h256(*leaf))
    }

    /// The current root.
    pub fn root(&self) -> Hash32 {
        from_h256(*self.tree.root())
    }

    /// How many keys hold a leaf.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether no key holds a leaf.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// A proof for `key` against the current root: of inclusion if the key
    /// holds a leaf, of exclusion otherwise.
    pub fn proof(&self, key: &RequestId) -> Result<MerkleProof, SmtError> {
        let key = to_h256(key.hash());
        let internal = |err: sparse_merkle_tree::error::Error| SmtError::Internal {
            message: err.to_string(),
        };
        let compiled = self
            .tree
            .merkle_proof(vec![key])
            .and_then(|proof| proof.compile(vec![key]))
            .map_err(internal)?;
        Ok(MerkleProof(compiled.into()))
    }
}

impl fmt::Debug for SparseMerkleTree {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SparseMerkleTree")
            .field("root", &self.root())
            .field("len", &self.len)
            .finish()
    }
}

/// A compiled single-key proof, serialized as lowercase hex.
#[derive(Clone, PartialEq, Eq)]
pub struct MerkleProof(Vec<u8>);

impl MerkleProof {
    /// Wraps proof bytes; only the size is checked here, the structure when
    /// verifying.
    pub fn from_bytes(bytes: Vec<u8>) -> Result<MerkleProof, ProofError> {
        if bytes.len() > MAX_PROOF_BYTES {
            return Err(ProofError::TooLong {
                len: bytes.len(),
                max: MAX_PROOF_BYTES,
            });
        }
        Ok(MerkleProof(bytes))
    }

    /// The proof bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// Checks that, under `root`, `key` holds `leaf`.
    pub fn verify_inclusion(
        &self,
        root: &Hash32,
        key: &RequestId,
        leaf: &Hash32,
    ) -> Result<(), ProofError> {
        if leaf.is_zero() {
            return Err(ProofError::ZeroLeaf);
        }
        self.verify_leaf(root, key, leaf)
    }

    /// Checks that, under `root`, `key` holds nothing.
    pub fn verify_exclusion(&self, root: &Hash32, key: &RequestId) -> Result<(), ProofError> {
        self.verify_leaf(root, key, &Hash32::ZERO)
    }

    fn verify_leaf(&self, root: &Hash32, key: &RequestId, leaf: &Hash32) -> Result<(), ProofError> {
        check_shape(&self.0)?;
        let computed = CompiledMerkleProof(self.0.clone())
            .compute_root::<NodeHasher>(vec![(to_h256(key.hash()), to_h256(*leaf))])
            .map(from_h256)
            .map_err(|_| ProofError::Malformed {
                offset: 0,
                reason: "rejected by the proof interpreter",
            })?;
        if computed == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch {
                expected: *root,
                computed,
            })
        }
    }
}

/// Checks that `program` is a canonical proof for one key whose siblings
/// all fit where they are used, so the library's interpreter can only
/// compute a root for a real position in the tree.
fn check_shape(program: &[u8]) -> Result<(), ProofError> {
    let malformed = |offset, reason| ProofError::Malformed { offset, reason };
    if program.len() > MAX_PROOF_BYTES {
        return Err(ProofError::TooLong {
            len: program.len(),
            max: MAX_PROOF_BYTES,
        });
    }
    if program.first() != Some(&OP_LEAF) {
        return Err(malformed(0, "a proof starts with the leaf opcode"));
    }
    let mut offset = 1;
    let mut height = 0usize;
    let mut after_zero_run = false;
    while height < 256 {
        let op = program
            .get(offset)
            .ok_or(malformed(offset, "the proof ends below the root"))?;
        match *op {
            OP_ZEROS => {
                // Two runs in a row would be a second encoding of one run.
                if after_zero_run {
                    return Err(malformed(offset, "two zero runs in a row"));
                }
                let count = program
                    .get(offset + 1)
                    .ok_or(malformed(offset, "truncated zero run"))?;
                height += if *count == 0 {
                    256
                } else {
                    usize::from(*count)
                };
                if height > 256 {
                    return Err(malformed(offset, "zero run passes the root"));
                }
                offset += 2;
                after_zero_run = true;
            }
            OP_SIBLING => {
                let sibling = program
                    .get(offset + 1..offset + 33)
                    .ok_or(malformed(offset, "truncated sibling"))?;
                // A zero sibling is a zero run in disguise.
                if sibling.iter().all(|b| *b == 0) {
                    return Err(malformed(offset, "zero sibling"));
                }
                height += 1;
                offset += 33;
                after_zero_run = false;
            }
            OP_COMPRESSED_SIBLING => {
                let body = program
                    .get(offset + 1..offset + 66)
                    .ok_or(malformed(offset, "truncated compressed sibling"))?;
                // A sibling at `height` is a chain of `zero_count` one-sided
                // merges ending just below it, so it spans heights
                // `height - zero_count .. height` and its path bits lie there.
                let zero_count = body.first().map_or(0, |c| usize::from(*c));
                if zero_count == 0 || zero_count > height {
                    return Err(malformed(
                        offset,
                        "compressed sibling taller than its height",
                    ));
                }
                let zero_bits = body.get(33..).unwrap_or_default();
                if !bits_within(zero_bits, height - zero_count, height) {
                    return Err(malformed(
                        offset,
                        "compressed sibling path outside its subtree",
                    ));
                }
                height += 1;
                offset += 66;
                after_zero_run = false;
            }
            _ => return Err(malformed(offset, "unknown or multi-key opcode")),
        }
    }
    if offset != program.len() {
        return Err(malformed(offset, "trailing bytes after the root"));
    }
    Ok(())
}

/// Whether every set bit of `bits` (numbered as in the library's `H256`:
/// bit `i` is bit `i % 8` of byte `i / 8`) lies in `low..high`.
fn bits_within(bits: &[u8], low: usize, high: usize) -> bool {
    bits.iter().enumerate().all(|(byte, value)| {
        (0..8).all(|bit| (value >> bit) & 1 == 0 || (low..high).contains(&(byte * 8 + bit)))
    })
}

impl fmt::Display for MerkleProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(&self.0))
    }
}

impl fmt::Debug for MerkleProof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 16;
        let head = hex::encode(self.0.get(..SHOWN).unwrap_or(&self.0));
        let more = if self.0.len() > SHOWN { "…" } else { "" };
        write!(f, "MerkleProof({} bytes: {head}{more})", self.0.len())
    }
}

impl FromStr for MerkleProof {
    type Err = ProofError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        // Refuse oversized text before decoding it.
        if s.len() > 2 * MAX_PROOF_BYTES {
            return Err(ProofError::TooLong {
                len: s.len() / 2,
                max: MAX_PROOF_BYTES,
            });
        }
        MerkleProof::from_bytes(decode_lowercase_hex(s, None)?)
    }
}

impl Serialize for MerkleProof {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MerkleProof {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer)
    }
}
