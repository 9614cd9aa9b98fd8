//! Lean profile snapshots: the winning op-log entry of every key, in one CAR.
//!
//! A snapshot is what a new device needs to rebuild the profile without the
//! whole log. Its entries still link their predecessors (`next`), which the
//! snapshot deliberately leaves out; so each entry is carried as a *raw*
//! block (same bytes, same digest, raw codec) that a gateway does not walk,
//! and turned back into its dag-cbor identity when read. The encrypted
//! values stay encrypted: the gateway sees keys and clocks, never values.

use serde::{Deserialize, Serialize};
use sphere_protocol::ipld::{
    Block, BlockError, CarContents, Cid, Codec, DagCborError, decode_dag_cbor,
};

use crate::identity::Address;

/// The `kind` of a snapshot envelope.
pub const SNAPSHOT_KIND: &str = "sphere-snapshot";

/// Why a snapshot could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// dag-cbor encoding or decoding failed.
    #[error("snapshot block: {0}")]
    Codec(#[from] DagCborError),
    /// An entry block is missing or corrupt.
    #[error("snapshot `{root}`: entry `{entry}`: {reason}")]
    Entry {
        /// The snapshot root.
        root: String,
        /// The entry.
        entry: String,
        /// What is wrong.
        reason: String,
    },
    /// The root is not a snapshot envelope, or belongs to another wallet.
    #[error("`{root}` is not a snapshot of this wallet: {reason}")]
    NotASnapshot {
        /// The root.
        root: String,
        /// What is wrong.
        reason: String,
    },
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    kind: String,
    wallet: Address,
    created_at_ms: u64,
    /// Raw-codec CIDs of the entries.
    entries: Vec<Cid>,
}

/// A built snapshot, ready to pin.
#[derive(Debug, Clone)]
pub struct EncodedSnapshot {
    /// The envelope's CID (dag-cbor).
    pub root: Cid,
    /// The envelope first, then one raw block per entry.
    pub blocks: Vec<Block>,
}

/// Builds a snapshot of `entries` (dag-cbor op-log entry blocks).
pub fn encode(
    wallet: &Address,
    entries: &[Block],
    created_at_ms: u64,
) -> Result<EncodedSnapshot, SnapshotError> {
    let raw: Vec<Block> = entries
        .iter()
        .map(|entry| Block::new(Codec::Raw, entry.data.clone()))
        .collect();
    let envelope = Block::encode_dag_cbor(&Envelope {
        v: 1,
        kind: SNAPSHOT_KIND.to_owned(),
        wallet: wallet.clone(),
        created_at_ms,
        entries: raw.iter().map(|b| b.cid).collect(),
    })?;
    let root = envelope.cid;
    let mut blocks = Vec::with_capacity(raw.len() + 1);
    blocks.push(envelope);
    blocks.extend(raw);
    Ok(EncodedSnapshot { root, blocks })
}

/// Reads the entry blocks (back under their dag-cbor CIDs) of `wallet`'s
/// snapshot from its CAR.
pub fn decode(contents: &CarContents, wallet: &Address) -> Result<Vec<Block>, SnapshotError> {
    let root = contents.roots.first().copied().unwrap_or_default();
    let not_a_snapshot = |reason: &str| SnapshotError::NotASnapshot {
        root: root.to_string(),
        reason: reason.to_owned(),
    };
    let envelope_block = contents
        .blocks
        .iter()
        .find(|b| b.cid == root)
        .ok_or_else(|| not_a_snapshot("root block missing"))?;
    let envelope: Envelope =
        decode_dag_cbor(&envelope_block.data).map_err(|_| not_a_snapshot("not an envelope"))?;
    if envelope.kind != SNAPSHOT_KIND {
        return Err(not_a_snapshot("wrong kind"));
    }
    if &envelope.wallet != wallet {
        return Err(not_a_snapshot("written by another wallet"));
    }
    envelope
        .entries
        .iter()
        .map(|raw_cid| {
            let entry_error = |reason: String| SnapshotError::Entry {
                root: root.to_string(),
                entry: raw_cid.to_string(),
                reason,
            };
            let block = contents
                .blocks
                .iter()
                .find(|b| &b.cid == raw_cid)
                .ok_or_else(|| entry_error("missing from the CAR".into()))?;
            let cid = Cid::new_v1(Codec::DagCbor.code(), *raw_cid.hash());
            Block::verified(cid, block.data.clone())
                .map_err(|e: BlockError| entry_error(e.to_string()))
        })
        .collect()
}
