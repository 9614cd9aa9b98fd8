//! The profile pointer: how a device with only a mnemonic finds the latest
//! snapshot, using nothing but the aggregator.
//!
//! Version `v` of a wallet's pointer is two commitments signed by the
//! wallet's pointer key: the *version* commitment, whose transaction hash is
//! the snapshot's SHA-256 digest (so the snapshot's CID can be rebuilt from
//! the proof alone), then the *seal*, bound to the version commitment. A
//! version counts only once sealed, so a device that died between the two
//! never sends a reader to a half-published version; and versions are
//! published in order, so the sealed versions are always `1..=V`.
//!
//! Discovery probes versions 1, 2, 4, 8, ... until one is not sealed, then
//! binary-searches the gap: about 2·log2(V) proof requests.

use cid::multihash::Multihash;
use sphere_protocol::{
    commitment::Commitment,
    hash::{Hash32, RequestId, StateHash, TransactionHash},
    ipld::{Cid, Codec},
    rpc::ProofOutcome,
    signing::SecretKey,
};

use crate::{
    config::Timers,
    identity::Address,
    perf,
    transport::aggregator::{AggregatorClient, AggregatorError},
};

const VERSION_TAG: &[u8] = b"sphere/pointer/version/v1";
const SEAL_TAG: &[u8] = b"sphere/pointer/seal/v1";
const SHA2_256: u64 = 0x12;

/// Why the pointer could not be published or read.
#[derive(Debug, thiserror::Error)]
pub enum PointerError {
    /// The aggregator failed.
    #[error(transparent)]
    Aggregator(Box<AggregatorError>),
    /// Another device published this version first.
    #[error("pointer version {0} is already taken by another device")]
    VersionTaken(u64),
    /// A proof did not verify or the snapshot CID is not sha2-256.
    #[error("pointer version {version}: {reason}")]
    Invalid {
        /// The version.
        version: u64,
        /// What is wrong.
        reason: String,
    },
}

impl From<AggregatorError> for PointerError {
    fn from(error: AggregatorError) -> Self {
        PointerError::Aggregator(Box::new(error))
    }
}

/// A wallet's pointer on one aggregator.
#[derive(Clone)]
pub struct Pointer {
    aggregator: AggregatorClient,
    key: SecretKey,
    address: Address,
    timers: Timers,
}

impl Pointer {
    /// The pointer of `address`, signed with `key` (the wallet's pointer key).
    pub fn new(
        aggregator: AggregatorClient,
        key: SecretKey,
        address: Address,
        timers: Timers,
    ) -> Self {
        Pointer {
            aggregator,
            key,
            address,
            timers,
        }
    }

    fn state(&self, tag: &[u8], version: u64) -> StateHash {
        StateHash::from(Hash32::tagged(
            tag,
            &[self.address.to_string().as_bytes(), &version.to_be_bytes()],
        ))
    }

    fn version_request(&self, version: u64) -> RequestId {
        RequestId::derive(&self.key.public_key(), &self.state(VERSION_TAG, version))
    }

    fn seal_request(&self, version: u64) -> RequestId {
        RequestId::derive(&self.key.public_key(), &self.state(SEAL_TAG, version))
    }

    /// Publishes `snapshot` as `version`: both commitments, each waited for.
    /// A version whose version commitment is ours but unsealed (a crash
    /// between the two) is sealed as it stands and reported as taken.
    pub async fn publish(&self, version: u64, snapshot: &Cid) -> Result<(), PointerError> {
        let _timer = perf::time(perf::names::POINTER_PUBLISH);
        let digest = snapshot_digest(version, snapshot)?;
        let commitment = Commitment::sign(
            &self.key,
            self.state(VERSION_TAG, version),
            TransactionHash::from(digest),
        );
        match self.aggregator.submit(&commitment).await {
            Ok(_) => {}
            Err(AggregatorError::DoubleSpend { .. }) => {
                // Someone (maybe our earlier self) holds this version; make
                // sure it is sealed so discovery can pass it, then give way.
                let existing = self.version_commitment(version).await?;
                self.seal(version, &existing).await?;
                return Err(PointerError::VersionTaken(version));
            }
            Err(other) => return Err(other.into()),
        }
        let (included, _) = self
            .aggregator
            .wait_for_inclusion(
                &commitment.request_id,
                self.timers.proof_deadline(),
                self.timers.proof_poll(),
            )
            .await?;
        self.seal(version, &included).await
    }

    async fn seal(
        &self,
        version: u64,
        version_commitment: &Commitment,
    ) -> Result<(), PointerError> {
        let seal = Commitment::sign(
            &self.key,
            self.state(SEAL_TAG, version),
            TransactionHash::from(Hash32::tagged(
                SEAL_TAG,
                &[
                    version_commitment.request_id.as_bytes(),
                    version_commitment.transaction_hash.as_bytes(),
                ],
            )),
        );
        match self.aggregator.submit(&seal).await {
            // The seal's content is fixed by the version commitment, so a
            // double spend here means another device sealed the same thing.
            Ok(_) | Err(AggregatorError::DoubleSpend { .. }) => {}
            Err(other) => return Err(other.into()),
        }
        self.aggregator
            .wait_for_inclusion(
                &seal.request_id,
                self.timers.proof_deadline(),
                self.timers.proof_poll(),
            )
            .await?;
        Ok(())
    }

    async fn is_sealed(&self, version: u64) -> Result<bool, PointerError> {
        let request = self.seal_request(version);
        let proof = self.aggregator.inclusion_proof(&request).await?;
        let trust = self.aggregator.trust_base().await?;
        match proof.verify_request(&trust, &request) {
            Ok(ProofOutcome::Included(_)) => Ok(true),
            Ok(ProofOutcome::Excluded) => Ok(false),
            Err(e) => Err(PointerError::Invalid {
                version,
                reason: e.to_string(),
            }),
        }
    }

    async fn version_commitment(&self, version: u64) -> Result<Commitment, PointerError> {
        let request = self.version_request(version);
        let proof = self.aggregator.inclusion_proof(&request).await?;
        let trust = self.aggregator.trust_base().await?;
        match proof.verify_request(&trust, &request) {
            Ok(ProofOutcome::Included(commitment)) => Ok(commitment),
            Ok(ProofOutcome::Excluded) => Err(PointerError::Invalid {
                version,
                reason: "sealed but its version commitment is absent".into(),
            }),
            Err(e) => Err(PointerError::Invalid {
                version,
                reason: e.to_string(),
            }),
        }
    }

    /// The latest sealed version and its snapshot, or `None` for a wallet
    /// that never published.
    pub async fn latest(&self) -> Result<Option<(u64, Cid)>, PointerError> {
        let _timer = perf::time(perf::names::POINTER_RECOVER);
        if !self.is_sealed(1).await? {
            return Ok(None);
        }
        let (mut known, mut probe) = (1_u64, 2_u64);
        while self.is_sealed(probe).await? {
            known = probe;
            probe = probe.saturating_mul(2);
        }
        // Invariant: `known` is sealed, `probe` is not.
        while probe - known > 1 {
            let middle = known + (probe - known) / 2;
            if self.is_sealed(middle).await? {
                known = middle;
            } else {
                probe = middle;
            }
        }
        let commitment = self.version_commitment(known).await?;
        let digest = commitment.transaction_hash.hash();
        let multihash = Multihash::<64>::wrap(SHA2_256, digest.as_bytes()).map_err(|e| {
            PointerError::Invalid {
                version: known,
                reason: e.to_string(),
            }
        })?;
        Ok(Some((known, Cid::new_v1(Codec::DagCbor.code(), multihash))))
    }
}

fn snapshot_digest(version: u64, snapshot: &Cid) -> Result<Hash32, PointerError> {
    let hash = snapshot.hash();
    let bytes: [u8; 32] = (hash.code() == SHA2_256)
        .then(|| hash.digest().try_into().ok())
        .flatten()
        .ok_or_else(|| PointerError::Invalid {
            version,
            reason: format!("snapshot `{snapshot}` is not a sha2-256 CID"),
        })?;
    Ok(Hash32(bytes))
}
