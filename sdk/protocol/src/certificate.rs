//! Certified roots: the testnet's signed statement of its tree root.
//!
//! A Merkle proof only says "this leaf is (or is not) under that root"; a
//! [`CertifiedRoot`] says which root the aggregator stood behind at a block
//! height, and a [`TrustBase`] holds the key that clients accept such
//! statements from. The signed digest is
//! `tagged(CERTIFIED_ROOT, root[32] || block_height as u64 big-endian[8])`.

use serde::{Deserialize, Serialize};

use crate::hash::{Hash32, domain};
use crate::signing::{PublicKey, SecretKey, Signature, SignatureError};

/// A tree root signed by the testnet at a block height.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CertifiedRoot {
    /// The sparse Merkle tree root.
    pub root: Hash32,
    /// The block at which the tree had this root.
    pub block_height: u64,
    /// The testnet key's signature over root and height.
    pub signature: Signature,
}

/// The key whose certified roots a client accepts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TrustBase {
    /// The testnet's root-signing key.
    pub public_key: PublicKey,
}

/// Why a certified root was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The signature is not the trust base key's over this root and height.
    #[error("root `{root}` at block height {block_height} is not signed by the trust base key")]
    UntrustedSignature {
        /// The certified root.
        root: Hash32,
        /// The certified height.
        block_height: u64,
        /// The signature failure.
        #[source]
        source: SignatureError,
    },
}

impl CertifiedRoot {
    /// Certifies `root` at `block_height` with the testnet's key.
    pub fn sign(secret: &SecretKey, root: Hash32, block_height: u64) -> CertifiedRoot {
        CertifiedRoot {
            root,
            block_height,
            signature: secret.sign(&signed_message(&root, block_height)),
        }
    }
}

impl TrustBase {
    /// Trusts roots certified by `public_key`.
    pub fn new(public_key: PublicKey) -> TrustBase {
        TrustBase { public_key }
    }

    /// Checks that `certified` is signed by this trust base's key.
    pub fn verify(&self, certified: &CertifiedRoot) -> Result<(), CertificateError> {
        let message = signed_message(&certified.root, certified.block_height);
        self.public_key
            .verify(&message, &certified.signature)
            .map_err(|source| CertificateError::UntrustedSignature {
                root: certified.root,
                block_height: certified.block_height,
                source,
            })
    }
}

/// The digest the testnet signs.
fn signed_message(root: &Hash32, block_height: u64) -> Hash32 {
    Hash32::tagged(
        domain::CERTIFIED_ROOT,
        &[root.as_bytes(), &block_height.to_be_bytes()],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn testnet_key() -> SecretKey {
        SecretKey::from_bytes(&[0x42; 32]).expect("valid scalar")
    }

    fn sample() -> CertifiedRoot {
        CertifiedRoot::sign(&testnet_key(), Hash32::sha256_of(&[b"root"]), 7)
    }

    #[test]
    fn certified_root_verifies_against_its_trust_base() {
        let trust = TrustBase::new(testnet_key().public_key());
        assert_eq!(trust.verify(&sample()), Ok(()));
    }

    #[test]
    fn wrong_key_fails() {
        let other = SecretKey::from_bytes(&[0x43; 32]).expect("valid scalar");
        let trust = TrustBase::new(other.public_key());
        let err = trust.verify(&sample()).expect_err("other key");
        assert!(err.to_string().contains("block height 7"), "{err}");
    }

    #[test]
    fn changed_root_or_height_fails() {
        let trust = TrustBase::new(testnet_key().public_key());
        let mut moved = sample();
        moved.block_height = 8;
        assert!(trust.verify(&moved).is_err());
        let mut swapped = sample();
        swapped.root = Hash32::ZERO;
        assert!(trust.verify(&swapped).is_err());
    }

    #[test]
    fn serde_uses_camel_case_and_round_trips() {
        let certified = sample();
        let value = serde_json::to_value(&certified).expect("serialize");
        assert_eq!(value["blockHeight"], 7);
        assert_eq!(value["root"], certified.root.to_string());
        let back: CertifiedRoot = serde_json::from_value(value).expect("deserialize");
        assert_eq!(back, certified);

        let trust = TrustBase::new(testnet_key().public_key());
        let value = serde_json::to_value(&trust).expect("serialize");
        assert_eq!(value["publicKey"], trust.public_key.to_string());
        let back: TrustBase = serde_json::from_value(value).expect("deserialize");
        assert_eq!(back, trust);
    }
}
