//! One op-log entry: what a profile write looks like on disk and on the wire.
//!
//! An [`Entry`] is a dag-cbor block; its identity is its CID. Canonical
//! dag-cbor sorts map keys (length first), so an entry encodes as
//!
//! ```text
//! { "v": 1,
//!   "key": "tokens.bundle.bafy…",
//!   "next": [CID(bafy…), …],                  // tag-42 links: the log's heads
//!   "clock": { "time": 7, "writer": { "device": "d1", "wallet": "w1" } },
//!   "value": { "nonce": h'…12 bytes…', "ciphertext": h'…' } }   // or null: a delete
//! ```
//!
//! `nonce` and `ciphertext` are CBOR byte strings (not arrays of integers).

use serde::{Deserialize, Serialize};
use sphere_protocol::ipld::{Block, Cid, Codec, decode_dag_cbor};

use super::ProfileError;

/// The entry format version this code writes and reads.
pub const ENTRY_VERSION: u8 = 1;

/// Who wrote an entry: a wallet and one of its devices.
///
/// Ordered by wallet then device; the order only breaks merge ties.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct WriterId {
    /// The wallet's id (shared by all its devices).
    pub wallet: String,
    /// The device's id within the wallet.
    pub device: String,
}

impl WriterId {
    /// A writer id from its two parts.
    pub fn new(wallet: impl Into<String>, device: impl Into<String>) -> WriterId {
        WriterId {
            wallet: wallet.into(),
            device: device.into(),
        }
    }
}

impl std::fmt::Display for WriterId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.wallet, self.device)
    }
}

/// A Lamport timestamp and the writer that issued it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Clock {
    /// Lamport time: one more than the highest time the writer had seen.
    pub time: u64,
    /// Who wrote the entry.
    pub writer: WriterId,
}

/// An encrypted value: ChaCha20-Poly1305 under the profile key, with the
/// entry's key string as associated data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Sealed {
    /// The fresh random nonce of this write.
    #[serde(with = "serde_bytes")]
    pub nonce: [u8; 12],
    /// The ciphertext with its 16-byte tag appended.
    #[serde(with = "serde_bytes")]
    pub ciphertext: Vec<u8>,
}

/// One op-log entry (see the module docs for its encoding).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Entry {
    /// Format version, [`ENTRY_VERSION`].
    pub v: u8,
    /// The profile key this entry sets or deletes.
    pub key: String,
    /// The sealed value, or `None` for a delete (a tombstone entry).
    pub value: Option<Sealed>,
    /// When and by whom it was written.
    pub clock: Clock,
    /// The heads of the log when it was written: the Merkle-DAG links.
    pub next: Vec<Cid>,
}

impl Entry {
    /// Whether this entry deletes its key.
    pub fn is_delete(&self) -> bool {
        self.value.is_none()
    }

    /// The entry as a dag-cbor block (its CID is the entry's identity).
    pub fn to_block(&self) -> Result<Block, ProfileError> {
        Block::encode_dag_cbor(self).map_err(|source| ProfileError::Encode {
            key: self.key.clone(),
            source,
        })
    }

    /// Decodes a block already verified against its CID.
    pub fn from_block(block: &Block) -> Result<Entry, ProfileError> {
        if block.cid.codec() != Codec::DagCbor.code() {
            return Err(ProfileError::NotAnEntry {
                cid: block.cid,
                reason: format!("codec 0x{:x} is not dag-cbor", block.cid.codec()),
            });
        }
        let entry: Entry = decode_dag_cbor(&block.data).map_err(|e| ProfileError::NotAnEntry {
            cid: block.cid,
            reason: e.to_string(),
        })?;
        if entry.v != ENTRY_VERSION {
            return Err(ProfileError::NotAnEntry {
                cid: block.cid,
                reason: format!(
                    "entry version {} (this code reads {ENTRY_VERSION})",
                    entry.v
                ),
            });
        }
        Ok(entry)
    }
}
