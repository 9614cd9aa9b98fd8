//! secp256k1 keys and ECDSA signatures over 32-byte digests.
//!
//! [`SecretKey`] signs a [`Hash32`] directly as the ECDSA message, so the
//! caller decides what is hashed (and under which domain tag). On the wire a
//! [`PublicKey`] is 33 bytes (compressed point) and a [`Signature`] 64 bytes
//! (compact `r || s`), both as lowercase hex.
//!
//! Signing always yields low-S signatures and verification refuses high-S
//! ones, so a valid signature cannot be rewritten into a second valid one.
//!
//! ```
//! use sphere_protocol::{hash::Hash32, signing::SecretKey};
//! let key = SecretKey::random();
//! let digest = Hash32::sha256_of(&[b"hello"]);
//! let signature = key.sign(&digest);
//! assert!(key.public_key().verify(&digest, &signature).is_ok());
//! ```

use std::fmt;
use std::str::FromStr;

use secp256k1::{Message, SECP256K1};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::hash::{Hash32, HexError, decode_hex_array, deserialize_from_str};

/// Why a key or signature was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The 32 bytes are zero or not below the curve order.
    #[error("secret key is not a valid secp256k1 scalar")]
    InvalidSecretKey,
    /// The bytes are not a compressed point on the curve.
    #[error("public key is not a valid 33-byte compressed secp256k1 point")]
    InvalidPublicKey,
    /// The bytes are not a compact ECDSA signature.
    #[error("signature is not a valid 64-byte compact ecdsa signature")]
    MalformedSignature,
    /// The hex text of a key or signature is malformed.
    #[error("invalid {what} hex: {source}")]
    InvalidHex {
        /// Which kind of value was being parsed.
        what: &'static str,
        /// What was wrong with the text.
        source: HexError,
    },
    /// The signature is well-formed but was not made by this key over this
    /// digest.
    #[error("signature does not match the public key and digest")]
    Mismatch,
}

/// A secp256k1 secret key. Its `Debug` output never shows the key.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretKey(secp256k1::SecretKey);

impl SecretKey {
    /// Parses 32 big-endian bytes; fails if they are zero or not below the
    /// curve order.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<SecretKey, SignatureError> {
        secp256k1::SecretKey::from_slice(bytes)
            .map(SecretKey)
            .map_err(|_| SignatureError::InvalidSecretKey)
    }

    /// A fresh key from the operating system's random source.
    pub fn random() -> SecretKey {
        SecretKey(secp256k1::SecretKey::new(&mut secp256k1::rand::thread_rng()))
    }

    /// The 32 secret bytes, for storing the key. Handle with care.
    pub fn to_bytes(&self) -> [u8; 32] {
        self.0.secret_bytes()
    }

    /// The matching public key.
    pub fn public_key(&self) -> PublicKey {
        PublicKey(secp256k1::PublicKey::from_secret_key_global(&self.0))
    }

    /// Signs `digest` as the ECDSA message (RFC 6979 nonce, low-S).
    pub fn sign(&self, digest: &Hash32) -> Signature {
        let message = Message::from_digest(digest.0);
        Signature(SECP256K1.sign_ecdsa(&message, &self.0))
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A secp256k1 public key, 33 bytes compressed on the wire.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PublicKey(secp256k1::PublicKey);

impl PublicKey {
    /// Parses a 33-byte compressed point.
    pub fn from_bytes(bytes: &[u8; 33]) -> Result<PublicKey, SignatureError> {
        secp256k1::PublicKey::from_slice(bytes)
            .map(PublicKey)
            .map_err(|_| SignatureError::InvalidPublicKey)
    }

    /// The 33-byte compressed encoding.
    pub fn to_bytes(&self) -> [u8; 33] {
        self.0.serialize()
    }

    /// Checks that `signature` was made by this key over `digest`.
    pub fn verify(&self, digest: &Hash32, signature: &Signature) -> Result<(), SignatureError> {
        let message = Message::from_digest(digest.0);
        SECP256K1
            .verify_ecdsa(&message, &signature.0, &self.0)
            .map_err(|_| SignatureError::Mismatch)
    }
}

impl fmt::Display for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PublicKey({self})")
    }
}

impl FromStr for PublicKey {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_hex_array(s).map_err(|source| SignatureError::InvalidHex {
            what: "public key",
            source,
        })?;
        PublicKey::from_bytes(&bytes)
    }
}

/// A compact (64-byte `r || s`) ECDSA signature.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Signature(secp256k1::ecdsa::Signature);

impl Signature {
    /// Parses 64 compact bytes. High-S values parse but never verify.
    pub fn from_bytes(bytes: &[u8; 64]) -> Result<Signature, SignatureError> {
        secp256k1::ecdsa::Signature::from_compact(bytes)
            .map(Signature)
            .map_err(|_| SignatureError::MalformedSignature)
    }

    /// The 64-byte compact encoding.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.serialize_compact()
    }
}

impl fmt::Display for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.to_bytes()))
    }
}

impl fmt::Debug for Signature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Signature({self})")
    }
}

impl FromStr for Signature {
    type Err = SignatureError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bytes = decode_hex_array(s).map_err(|source| SignatureError::InvalidHex {
            what: "signature",
            source,
        })?;
        Signature::from_bytes(&bytes)
    }
}

/// Serde as the `Display` hex text, parsed back with `FromStr`.
macro_rules! serde_as_hex_text {
    ($($name:ident),*) => {$(
        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_from_str(deserializer)
            }
        }
    )*};
}

serde_as_hex_text!(PublicKey, Signature);

#[cfg(test)]
mod tests {
    use super::*;

    fn key(byte: u8) -> SecretKey {
        SecretKey::from_bytes(&[byte; 32]).expect("valid scalar")
    }

    #[test]
    fn signature_verifies_only_for_its_key_and_digest() {
        let digest = Hash32::sha256_of(&[b"message"]);
        let signature = key(1).sign(&digest);
        assert_eq!(key(1).public_key().verify(&digest, &signature), Ok(()));

        let wrong_key = key(2).public_key().verify(&digest, &signature);
        assert_eq!(wrong_key, Err(SignatureError::Mismatch));

        let other = Hash32::sha256_of(&[b"other"]);
        let wrong_digest = key(1).public_key().verify(&other, &signature);
        assert_eq!(wrong_digest, Err(SignatureError::Mismatch));
    }

    #[test]
    fn signing_is_deterministic() {
        let digest = Hash32::sha256_of(&[b"message"]);
        assert_eq!(key(3).sign(&digest), key(3).sign(&digest));
    }

    #[test]
    fn secret_key_bytes_are_validated_and_round_trip() {
        assert_eq!(
            SecretKey::from_bytes(&[0; 32]),
            Err(SignatureError::InvalidSecretKey)
        );
        assert_eq!(
            SecretKey::from_bytes(&[0xff; 32]),
            Err(SignatureError::InvalidSecretKey)
        );
        let random = SecretKey::random();
        assert_eq!(
            SecretKey::from_bytes(&random.to_bytes()),
            Ok(random.clone())
        );
        assert_ne!(random, SecretKey::random());
    }

    #[test]
    fn debug_redacts_the_secret() {
        let secret = key(7);
        let shown = format!("{secret:?}");
        assert_eq!(shown, "SecretKey(<redacted>)");
        assert!(!shown.contains(&hex::encode(secret.to_bytes())));
    }

    #[test]
    fn public_key_and_signature_serde_round_trip_as_hex() {
        let secret = key(9);
        let public_key = secret.public_key();
        let json = serde_json::to_string(&public_key).expect("serialize");
        assert_eq!(json.len(), 2 + 66);
        assert_eq!(json, format!("\"{}\"", hex::encode(public_key.to_bytes())));
        let back: PublicKey = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, public_key);

        let signature = secret.sign(&Hash32::ZERO);
        let json = serde_json::to_string(&signature).expect("serialize");
        assert_eq!(json.len(), 2 + 128);
        let back: Signature = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, signature);
    }

    #[test]
    fn malformed_text_is_refused() {
        let not_a_point = format!("04{}", "00".repeat(32));
        assert_eq!(
            not_a_point.parse::<PublicKey>(),
            Err(SignatureError::InvalidPublicKey)
        );
        let err = "02abc".parse::<PublicKey>().expect_err("short");
        assert!(
            err.to_string().starts_with("invalid public key hex"),
            "{err}"
        );
        let err = serde_json::from_str::<Signature>("\"00\"").expect_err("short");
        assert!(
            err.to_string().contains("expected 128 hex characters"),
            "{err}"
        );
        let zero_r = "00".repeat(64).parse::<Signature>();
        // libsecp256k1 parses r = 0 but such a signature can never verify.
        if let Ok(signature) = zero_r {
            assert!(
                key(1)
                    .public_key()
                    .verify(&Hash32::ZERO, &signature)
                    .is_err()
            );
        }
    }

    #[test]
    fn high_s_twin_of_a_valid_signature_does_not_verify() {
        // n - s for the secp256k1 group order n, computed bytewise.
        const ORDER: [u8; 32] = [
            0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
            0xff, 0xfe, 0xba, 0xae, 0xdc, 0xe6, 0xaf, 0x48, 0xa0, 0x3b, 0xbf, 0xd2, 0x5e, 0x8c,
            0xd0, 0x36, 0x41, 0x41,
        ];
        let digest = Hash32::sha256_of(&[b"malleable?"]);
        let signature = key(5).sign(&digest);
        let mut bytes = signature.to_bytes();
        let mut borrow = 0i16;
        for i in (0..32).rev() {
            let diff = i16::from(ORDER[i]) - i16::from(bytes[32 + i]) - borrow;
            borrow = i16::from(diff < 0);
            bytes[32 + i] = (diff + 256 * borrow) as u8;
        }
        let twin = Signature::from_bytes(&bytes).expect("still parses");
        assert_ne!(twin, signature);
        assert!(key(5).public_key().verify(&digest, &twin).is_err());
    }
}
