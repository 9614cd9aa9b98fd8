//! Why a profile operation failed; every variant names the key or CID.

use sphere_protocol::ipld::{BlockError, Cid, DagCborError};

use crate::store::StoreError;

/// Why a profile operation failed.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// The wallet store failed (the error names the file and operation).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A value could not be sealed.
    #[error("cannot encrypt the value of `{key}`")]
    Encrypt {
        /// The profile key being written.
        key: String,
    },
    /// A value could not be opened: another profile key, altered bytes, or
    /// a value sealed for a different key.
    #[error(
        "cannot decrypt the value of `{key}` (wrong profile key, or the value was altered or moved from another key)"
    )]
    Decrypt {
        /// The profile key being read.
        key: String,
    },
    /// An entry could not be encoded as dag-cbor.
    #[error("cannot encode the entry for `{key}`: {source}")]
    Encode {
        /// The profile key being written.
        key: String,
        /// What the encoder said.
        source: DagCborError,
    },
    /// A block does not match its CID (or uses an unsupported codec/hash).
    #[error("refused profile entry: {0}")]
    InvalidBlock(#[from] BlockError),
    /// A block that matches its CID but is not a profile entry this code reads.
    #[error("block `{cid}` is not a profile entry: {reason}")]
    NotAnEntry {
        /// The block's CID.
        cid: Cid,
        /// What is wrong with it.
        reason: String,
    },
    /// The entries table holds a key that is not a CID.
    #[error("the profile's entries table holds `{key}`, which is not a cid: {source}")]
    StoredKey {
        /// The stored key.
        key: String,
        /// What the CID parser said.
        source: cid::Error,
    },
    /// A JSON value could not be encoded or decoded.
    #[error("bad json value at `{key}`: {source}")]
    Json {
        /// The profile key.
        key: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
    /// A tombstone blob is not a JSON array of strings.
    #[error("the tombstone blob at `{key}` is not a json array of strings: {source}")]
    TombstoneBlob {
        /// The profile key.
        key: String,
        /// What serde_json said.
        source: serde_json::Error,
    },
}
