//! Commitments: a signed claim that one state is spent by one transaction.
//!
//! The owner of a state submits a [`Commitment`] to the aggregator, which
//! stores [`Commitment::leaf_hash`] in its sparse Merkle tree under the
//! commitment's [`RequestId`]. Because the request id is derived from the
//! owner's key and the state, a second, different commitment for the same
//! state lands on the same key: that is how double spends are caught.
//!
//! Wire layout of the hashes (see [`crate::hash::domain`] for the tags):
//! - request id: `tagged(REQUEST_ID, public_key[33] || state_hash[32])`;
//! - signed message: `tagged(COMMITMENT_SIGNATURE, request_id[32] || transaction_hash[32])`;
//! - tree leaf: `tagged(COMMITMENT_LEAF, transaction_hash[32] || public_key[33] || signature[64] || state_hash[32])`.
//!
//! The signature covers the request id as well as the transaction hash, so a
//! signature made for one state cannot be replayed onto another state of the
//! same key.

use serde::{Deserialize, Serialize};

use crate::hash::{Hash32, RequestId, StateHash, TransactionHash, domain};
use crate::signing::{PublicKey, SecretKey, Signature, SignatureError};

/// Who spends the state, and their signature over the spend.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Authenticator {
    /// The owner's key; with `state_hash` it determines the request id.
    pub public_key: PublicKey,
    /// Signature over the commitment's signed message (module docs).
    pub signature: Signature,
    /// The state being spent.
    pub state_hash: StateHash,
}

/// A request to record that `authenticator.state_hash` is spent by
/// `transaction_hash`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Commitment {
    /// Must equal `RequestId::derive(public_key, state_hash)`.
    pub request_id: RequestId,
    /// The transaction that spends the state.
    pub transaction_hash: TransactionHash,
    /// The owner's key, signature and spent state.
    pub authenticator: Authenticator,
}

/// Why a commitment was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommitmentError {
    /// The request id does not match the authenticator's key and state.
    #[error("request id `{actual}` does not match the authenticator (expected `{expected}`)")]
    RequestIdMismatch {
        /// The id derived from the authenticator.
        expected: RequestId,
        /// The id the commitment carries.
        actual: RequestId,
    },
    /// The signature does not verify.
    #[error("commitment `{request_id}` has an invalid signature")]
    InvalidSignature {
        /// The commitment's request id.
        request_id: RequestId,
        /// The signature failure.
        #[source]
        source: SignatureError,
    },
}

impl RequestId {
    /// The request id for spending `state_hash` with `public_key`.
    pub fn derive(public_key: &PublicKey, state_hash: &StateHash) -> RequestId {
        RequestId::from(Hash32::tagged(
            domain::REQUEST_ID,
            &[&public_key.to_bytes(), state_hash.as_bytes()],
        ))
    }
}

impl Commitment {
    /// Builds and signs the commitment spending `state_hash` with
    /// `transaction_hash`, owned by `secret`.
    pub fn sign(
        secret: &SecretKey,
        state_hash: StateHash,
        transaction_hash: TransactionHash,
    ) -> Commitment {
        let public_key = secret.public_key();
        let request_id = RequestId::derive(&public_key, &state_hash);
        let signature = secret.sign(&signed_message(&request_id, &transaction_hash));
        Commitment {
            request_id,
            transaction_hash,
            authenticator: Authenticator {
                public_key,
                signature,
                state_hash,
            },
        }
    }

    /// Checks that the request id is derived from the authenticator and that
    /// the signature is the authenticator key's over this commitment.
    pub fn verify(&self) -> Result<(), CommitmentError> {
        let auth = &self.authenticator;
        let expected = RequestId::derive(&auth.public_key, &auth.state_hash);
        if expected != self.request_id {
            return Err(CommitmentError::RequestIdMismatch {
                expected,
                actual: self.request_id,
            });
        }
        auth.public_key
            .verify(
                &signed_message(&self.request_id, &self.transaction_hash),
                &auth.signature,
            )
            .map_err(|source| CommitmentError::InvalidSignature {
                request_id: self.request_id,
                source,
            })
    }

    /// The value the aggregator stores under `request_id`; it covers every
    /// field, so an inclusion proof vouches for the whole commitment.
    ///
    /// This does not check the commitment; call [`Commitment::verify`] too.
    pub fn leaf_hash(&self) -> Hash32 {
        let auth = &self.authenticator;
        Hash32::tagged(
            domain::COMMITMENT_LEAF,
            &[
                self.transaction_hash.as_bytes(),
                &auth.public_key.to_bytes(),
                &auth.signature.to_bytes(),
                auth.state_hash.as_bytes(),
            ],
        )
    }
}

/// The digest the authenticator signs.
fn signed_message(request_id: &RequestId, transaction_hash: &TransactionHash) -> Hash32 {
    Hash32::tagged(
        domain::COMMITMENT_SIGNATURE,
        &[request_id.as_bytes(), transaction_hash.as_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).expect("valid scalar")
    }

    fn sample() -> Commitment {
        Commitment::sign(
            &secret(1),
            StateHash::from(Hash32::sha256_of(&[b"state"])),
            TransactionHash::from(Hash32::sha256_of(&[b"tx"])),
        )
    }

    #[test]
    fn signed_commitment_verifies() {
        let commitment = sample();
        assert_eq!(commitment.verify(), Ok(()));
        assert_eq!(
            commitment.request_id,
            RequestId::derive(
                &secret(1).public_key(),
                &commitment.authenticator.state_hash
            )
        );
    }

    #[test]
    fn forged_request_id_fails() {
        let mut commitment = sample();
        commitment.request_id = RequestId::from(Hash32::sha256_of(&[b"forged"]));
        let err = commitment.verify().expect_err("forged id");
        assert!(matches!(err, CommitmentError::RequestIdMismatch { .. }));
        assert!(err.to_string().contains("does not match"), "{err}");
    }

    #[test]
    fn changed_transaction_or_foreign_signature_fails() {
        let mut commitment = sample();
        commitment.transaction_hash = TransactionHash::from(Hash32::sha256_of(&[b"tx2"]));
        assert!(matches!(
            commitment.verify(),
            Err(CommitmentError::InvalidSignature { .. })
        ));

        // A thief signs a spend of someone else's state with their own key
        // but keeps the victim's key in the authenticator.
        let mut stolen = sample();
        let thief = Commitment::sign(
            &secret(2),
            stolen.authenticator.state_hash,
            stolen.transaction_hash,
        );
        stolen.authenticator.signature = thief.authenticator.signature;
        assert!(matches!(
            stolen.verify(),
            Err(CommitmentError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn signature_does_not_transfer_to_another_state() {
        let original = sample();
        let other_state = StateHash::from(Hash32::sha256_of(&[b"other state"]));
        let replayed = Commitment {
            request_id: RequestId::derive(&original.authenticator.public_key, &other_state),
            transaction_hash: original.transaction_hash,
            authenticator: Authenticator {
                state_hash: other_state,
                ..original.authenticator.clone()
            },
        };
        assert!(matches!(
            replayed.verify(),
            Err(CommitmentError::InvalidSignature { .. })
        ));
    }

    #[test]
    fn leaf_hash_binds_every_field() {
        let base = sample();
        let mut variants = Vec::new();
        let mut changed = base.clone();
        changed.transaction_hash = TransactionHash::from(Hash32::ZERO);
        variants.push(changed);
        let mut changed = base.clone();
        changed.authenticator.public_key = secret(2).public_key();
        variants.push(changed);
        let mut changed = base.clone();
        changed.authenticator.signature = secret(1).sign(&Hash32::ZERO);
        variants.push(changed);
        let mut changed = base.clone();
        changed.authenticator.state_hash = StateHash::from(Hash32::ZERO);
        variants.push(changed);
        for variant in variants {
            assert_ne!(variant.leaf_hash(), base.leaf_hash(), "{variant:?}");
        }
        assert!(!base.leaf_hash().is_zero());
    }

    #[test]
    fn serde_uses_camel_case_and_round_trips() {
        let commitment = sample();
        let value = serde_json::to_value(&commitment).expect("serialize");
        let object = value.as_object().expect("object");
        let mut keys: Vec<&str> = object.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["authenticator", "requestId", "transactionHash"]);
        let auth = value["authenticator"].as_object().expect("object");
        let mut keys: Vec<&str> = auth.keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["publicKey", "signature", "stateHash"]);
        let back: Commitment = serde_json::from_value(value).expect("deserialize");
        assert_eq!(back, commitment);
    }
}
