//! The aggregator's state, with no I/O: committed and pending commitments,
//! the sparse Merkle tree, the block height and the certified root.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sphere_protocol::{
    certificate::{CertifiedRoot, TrustBase},
    commitment::{Commitment, CommitmentError},
    hash::RequestId,
    rpc::{InclusionProofResponse, SubmitStatus},
    signing::SecretKey,
    smt::SparseMerkleTree,
};

/// Why a commitment was refused.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// Bad signature or a request id not derived from the key and state.
    #[error(transparent)]
    Invalid(#[from] CommitmentError),
    /// Another commitment already holds this request id.
    #[error("double spend: request `{0}` is already committed to another transaction")]
    DoubleSpend(RequestId),
    /// The tree refused the leaf (cannot happen for a verified commitment).
    #[error("cannot record request `{request_id}`: {reason}")]
    Tree {
        /// The commitment's request id.
        request_id: RequestId,
        /// The tree's error.
        reason: String,
    },
}

/// Commitments sealed together, as written to the journal.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SealedBlock {
    /// Height of this block (the first block is 1).
    pub height: u64,
    /// Its commitments, in the order they were sealed.
    pub commitments: Vec<Commitment>,
}

/// Everything the aggregator knows.
pub struct Ledger {
    key: SecretKey,
    tree: SparseMerkleTree,
    committed: HashMap<RequestId, Commitment>,
    pending: Vec<Commitment>,
    height: u64,
    certified: CertifiedRoot,
    seal_immediately: bool,
}

impl Ledger {
    /// An empty ledger whose roots `key` certifies; height 0 certifies the
    /// empty tree so that exclusion proofs work before the first block.
    pub fn new(key: SecretKey) -> Self {
        let tree = SparseMerkleTree::new();
        let certified = CertifiedRoot::sign(&key, tree.root(), 0);
        Ledger {
            key,
            tree,
            committed: HashMap::new(),
            pending: Vec::new(),
            height: 0,
            certified,
            seal_immediately: false,
        }
    }

    /// Seal each accepted commitment at once instead of on a timer.
    pub fn set_seal_immediately(&mut self, yes: bool) {
        self.seal_immediately = yes;
    }

    /// The key clients verify certified roots with.
    pub fn trust_base(&self) -> TrustBase {
        TrustBase {
            public_key: self.key.public_key(),
        }
    }

    /// Height of the last sealed block.
    pub fn height(&self) -> u64 {
        self.height
    }

    /// Accepts a commitment into the pending pool (or seals it at once).
    /// Returns the status and, when sealing happened, the block to journal.
    pub fn submit(
        &mut self,
        commitment: Commitment,
    ) -> Result<(SubmitStatus, Option<SealedBlock>), SubmitError> {
        let request_id = commitment.request_id;
        commitment.verify()?;
        let existing = self
            .committed
            .get(&request_id)
            .or_else(|| self.pending.iter().find(|c| c.request_id == request_id));
        if let Some(existing) = existing {
            return if *existing == commitment {
                Ok((SubmitStatus::AlreadyCommitted, None))
            } else {
                Err(SubmitError::DoubleSpend(request_id))
            };
        }
        self.pending.push(commitment);
        let sealed = if self.seal_immediately {
            self.seal()
        } else {
            None
        };
        Ok((SubmitStatus::Success, sealed))
    }

    /// Moves every pending commitment into the tree as one new block.
    pub fn seal(&mut self) -> Option<SealedBlock> {
        if self.pending.is_empty() {
            return None;
        }
        let commitments = std::mem::take(&mut self.pending);
        let block = SealedBlock {
            height: self.height + 1,
            commitments,
        };
        match self.apply(&block) {
            Ok(()) => Some(block),
            Err(error) => {
                // Unreachable for verified commitments; keep the ledger
                // consistent by not advancing the height.
                tracing::error!(%error, "sealing a block failed");
                None
            }
        }
    }

    /// Re-applies a journalled block on start-up.
    pub fn replay(&mut self, block: SealedBlock) -> Result<(), SubmitError> {
        self.apply(&block)
    }

    fn apply(&mut self, block: &SealedBlock) -> Result<(), SubmitError> {
        for commitment in &block.commitments {
            let request_id = commitment.request_id;
            self.tree
                .insert(request_id, commitment.leaf_hash())
                .map_err(|e| SubmitError::Tree {
                    request_id,
                    reason: e.to_string(),
                })?;
            self.committed.insert(request_id, commitment.clone());
        }
        self.height = block.height;
        self.certified = CertifiedRoot::sign(&self.key, self.tree.root(), self.height);
        Ok(())
    }

    /// An inclusion proof for `request_id` if it is sealed, an exclusion
    /// proof otherwise, against the current certified root.
    pub fn proof(&self, request_id: RequestId) -> Result<InclusionProofResponse, String> {
        let merkle_proof = self.tree.proof(&request_id).map_err(|e| e.to_string())?;
        Ok(InclusionProofResponse {
            request_id,
            commitment: self.committed.get(&request_id).cloned(),
            merkle_proof,
            certified_root: self.certified.clone(),
        })
    }
}

#[cfg(test)]
mod tests {
    use sphere_protocol::{
        hash::{Hash32, StateHash, TransactionHash},
        rpc::ProofOutcome,
    };

    use super::*;

    fn commitment(owner: &SecretKey, state: u8, tx: u8) -> Commitment {
        Commitment::sign(
            owner,
            StateHash::from(Hash32::sha256_of(&[&[state]])),
            TransactionHash::from(Hash32::sha256_of(&[&[tx]])),
        )
    }

    #[test]
    fn pending_commitment_is_excluded_until_sealed() {
        let mut ledger = Ledger::new(SecretKey::random());
        let trust = ledger.trust_base();
        let c = commitment(&SecretKey::random(), 1, 1);
        ledger.submit(c.clone()).unwrap();
        let before = ledger.proof(c.request_id).unwrap();
        assert!(matches!(
            before.verify(&trust).unwrap(),
            ProofOutcome::Excluded
        ));
        let block = ledger.seal().unwrap();
        assert_eq!(block.height, 1);
        let after = ledger.proof(c.request_id).unwrap();
        assert!(matches!(after.verify(&trust).unwrap(), ProofOutcome::Included(got) if got == c));
    }

    #[test]
    fn second_different_commitment_for_a_request_is_a_double_spend() {
        let mut ledger = Ledger::new(SecretKey::random());
        let owner = SecretKey::random();
        let first = commitment(&owner, 7, 1);
        let second = commitment(&owner, 7, 2);
        assert_eq!(first.request_id, second.request_id);
        ledger.submit(first.clone()).unwrap();
        // Caught while still pending, and after sealing.
        assert!(matches!(
            ledger.submit(second.clone()),
            Err(SubmitError::DoubleSpend(_))
        ));
        ledger.seal();
        assert!(matches!(
            ledger.submit(second),
            Err(SubmitError::DoubleSpend(_))
        ));
        let (status, _) = ledger.submit(first).unwrap();
        assert_eq!(status, SubmitStatus::AlreadyCommitted);
    }

    #[test]
    fn replay_rebuilds_the_same_root() {
        let key_bytes = [7_u8; 32];
        let mut original = Ledger::new(SecretKey::from_bytes(&key_bytes).unwrap());
        let mut blocks = Vec::new();
        for round in 0..3 {
            for i in 0..4 {
                original
                    .submit(commitment(&SecretKey::random(), round * 10 + i, i))
                    .unwrap();
            }
            blocks.push(original.seal().unwrap());
        }
        let mut replayed = Ledger::new(SecretKey::from_bytes(&key_bytes).unwrap());
        for block in blocks {
            replayed.replay(block).unwrap();
        }
        assert_eq!(replayed.height(), 3);
        assert_eq!(replayed.certified, original.certified);
    }
}
