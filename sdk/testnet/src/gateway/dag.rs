//! Walking a DAG in the block store, for CAR exports.
//!
//! [`collect_dag`] gathers every block reachable from a root in depth-first
//! pre-order, each once, which is the order Kubo's `dag export` and the
//! trustless gateway's default (`order=dfs`, `dups=n`) use. dag-cbor blocks
//! are decoded for their links; raw blocks are leaves.

use std::collections::HashSet;
use std::time::Duration;

use cid::Cid;
use sphere_protocol::ipld::{Block, BlockError};

use super::store::{BlockStore, Visibility};

/// Which blocks a walk may see.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Reach {
    /// Everything stored: the node the client pinned to.
    Local,
    /// Only blocks that have propagated: the public gateway.
    Propagated(Duration),
}

/// Why a DAG could not be gathered whole.
#[derive(Debug, thiserror::Error)]
pub(crate) enum WalkError {
    /// A block in the DAG is not stored.
    #[error("block `{0}` is not stored on this node")]
    Missing(Cid),
    /// A block in the DAG is stored but has not propagated yet.
    #[error("block `{0}` has not propagated to this gateway yet")]
    Pending(Cid),
    /// A stored dag-cbor block could not be decoded for its links.
    #[error(transparent)]
    Undecodable(#[from] BlockError),
}

impl WalkError {
    /// The CID the walk stopped at, when it stopped at a missing block.
    pub(crate) fn absent_cid(&self) -> Option<Cid> {
        match self {
            WalkError::Missing(cid) | WalkError::Pending(cid) => Some(*cid),
            WalkError::Undecodable(_) => None,
        }
    }
}

/// Fetches one block as `reach` allows.
pub(crate) fn fetch(store: &BlockStore, cid: &Cid, reach: Reach) -> Result<Block, WalkError> {
    let data = match reach {
        Reach::Local => store.get(cid).ok_or(WalkError::Missing(*cid))?,
        Reach::Propagated(delay) => match store.visibility(cid, delay) {
            Visibility::Visible(data) => data,
            Visibility::Pending => return Err(WalkError::Pending(*cid)),
            Visibility::Missing => return Err(WalkError::Missing(*cid)),
        },
    };
    Ok(Block { cid: *cid, data })
}

/// Every block reachable from `root`, depth-first pre-order, without
/// duplicates. Fails at the first block `reach` cannot see.
pub(crate) fn collect_dag(
    store: &BlockStore,
    root: &Cid,
    reach: Reach,
) -> Result<Vec<Block>, WalkError> {
    let mut seen = HashSet::new();
    let mut stack = vec![*root];
    let mut out = Vec::new();
    while let Some(cid) = stack.pop() {
        if !seen.insert(cid) {
            continue;
        }
        let block = fetch(store, &cid, reach)?;
        // Reversed so the first link is visited first.
        stack.extend(block.links()?.into_iter().rev());
        out.push(block);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use ipld_core::ipld::Ipld;
    use sphere_protocol::ipld::Codec;

    use super::*;

    fn node(links: &[Cid]) -> Block {
        Block::encode_dag_cbor(&Ipld::List(links.iter().copied().map(Ipld::Link).collect()))
            .unwrap()
    }

    #[tokio::test]
    async fn walks_depth_first_without_duplicates() {
        let a = Block::new(Codec::Raw, b"a".to_vec());
        let b = Block::new(Codec::Raw, b"b".to_vec());
        let left = node(&[a.cid, b.cid]);
        let root = node(&[left.cid, a.cid, b.cid]);
        let store = BlockStore::in_memory();
        let blocks = vec![root.clone(), left.clone(), a.clone(), b.clone()];
        store.put_all(blocks).await.unwrap();
        let got = collect_dag(&store, &root.cid, Reach::Local).unwrap();
        let order: Vec<Cid> = got.iter().map(|b| b.cid).collect();
        assert_eq!(order, vec![root.cid, left.cid, a.cid, b.cid]);
    }

    #[tokio::test]
    async fn stops_at_a_missing_or_unpropagated_block() {
        let a = Block::new(Codec::Raw, b"a".to_vec());
        let root = node(&[a.cid]);
        let store = BlockStore::in_memory();
        store.put(root.clone()).await.unwrap();
        let err = collect_dag(&store, &root.cid, Reach::Local).unwrap_err();
        assert_eq!(err.absent_cid(), Some(a.cid));
        store.put(a).await.unwrap();
        let hour = Reach::Propagated(Duration::from_secs(3600));
        assert!(matches!(
            collect_dag(&store, &root.cid, hour),
            Err(WalkError::Pending(cid)) if cid == root.cid
        ));
    }
}
