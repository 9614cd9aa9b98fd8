//! 32-byte hashes and the ids built on them.
//!
//! [`Hash32`] is the one digest type on the wire: SHA-256 output, shown and
//! serialized as 64 lowercase hex characters. [`RequestId`], [`StateHash`] and
//! [`TransactionHash`] wrap it so an id cannot be passed where a different one
//! is expected, while keeping the same text form.
//!
//! Every hash this crate computes is domain-separated with [`Hash32::tagged`]:
//! `sha256(len(tag) as u8 || tag || part_0 || part_1 || ...)`, with the tags
//! listed in [`domain`]. The length byte keeps one tag from being a prefix
//! of another's input, so a digest made for one purpose can never be
//! replayed as a digest for another.
//!
//! ```
//! use sphere_protocol::hash::Hash32;
//! let h = Hash32::sha256_of(&[b"abc"]);
//! assert_eq!(h.to_string(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
//! assert_eq!(h.to_string().parse::<Hash32>().ok(), Some(h));
//! ```

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

/// Domain tags, one per kind of hash this crate computes.
///
/// They are part of the wire format: changing one changes every id, leaf,
/// tree root or signed message of that kind, so a new version gets a new tag.
pub mod domain {
    /// Request ids: `RequestId::derive(public_key, state_hash)`.
    pub const REQUEST_ID: &[u8] = b"sphere/request-id/v1";
    /// The message a commitment's authenticator signs.
    pub const COMMITMENT_SIGNATURE: &[u8] = b"sphere/commitment-signature/v1";
    /// The sparse Merkle tree leaf that stands for a whole commitment.
    pub const COMMITMENT_LEAF: &[u8] = b"sphere/commitment-leaf/v1";
    /// Inner nodes of the sparse Merkle tree.
    pub const SMT_NODE: &[u8] = b"sphere/smt-node/v1";
    /// The message the testnet signs to certify a tree root.
    pub const CERTIFIED_ROOT: &[u8] = b"sphere/certified-root/v1";

    /// Every tag above, so tests can check that they stay distinct.
    pub const ALL: &[&[u8]] = &[
        REQUEST_ID,
        COMMITMENT_SIGNATURE,
        COMMITMENT_LEAF,
        SMT_NODE,
        CERTIFIED_ROOT,
    ];
}

/// A 32-byte digest, written as 64 lowercase hex characters.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Hash32(pub [u8; 32]);

impl Hash32 {
    /// All zero bytes. The sparse Merkle tree uses it for "no value" and as
    /// the root of the empty tree.
    pub const ZERO: Hash32 = Hash32([0; 32]);

    /// SHA-256 of the concatenation of `parts`, with no domain tag.
    pub fn sha256_of(parts: &[&[u8]]) -> Hash32 {
        let mut hasher = Sha256::new();
        for part in parts {
            hasher.update(part);
        }
        Hash32(hasher.finalize().into())
    }

    /// SHA-256 of `parts` behind the domain `tag` (layout in the module docs).
    ///
    /// Callers outside this crate should pick their own tag rather than reuse
    /// one of [`domain`], so their digests cannot collide with ours.
    pub fn tagged(tag: &[u8], parts: &[&[u8]]) -> Hash32 {
        let mut hasher = tagged_hasher(tag);
        for part in parts {
            hasher.update(part);
        }
        Hash32(hasher.finalize().into())
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Whether this is [`Hash32::ZERO`].
    pub fn is_zero(&self) -> bool {
        *self == Hash32::ZERO
    }
}

/// A SHA-256 state already fed with the domain prefix for `tag`, for callers
/// that stream their input (the Merkle tree's node hasher).
pub(crate) fn tagged_hasher(tag: &[u8]) -> Sha256 {
    // Tags are short ASCII constants; a longer one would make the length
    // byte ambiguous, which is a programming error, not an input error.
    debug_assert!(tag.len() <= usize::from(u8::MAX));
    let len = u8::try_from(tag.len()).unwrap_or(u8::MAX);
    let mut hasher = Sha256::new();
    hasher.update([len]);
    hasher.update(tag);
    hasher
}

impl From<[u8; 32]> for Hash32 {
    fn from(bytes: [u8; 32]) -> Self {
        Hash32(bytes)
    }
}

impl From<Hash32> for [u8; 32] {
    fn from(hash: Hash32) -> Self {
        hash.0
    }
}

impl fmt::Display for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Hash32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl FromStr for Hash32 {
    type Err = HexError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        decode_hex_array(s).map(Hash32)
    }
}

impl Serialize for Hash32 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Hash32 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserialize_from_str(deserializer)
    }
}

/// Why a hex string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HexError {
    /// The string has the wrong number of characters.
    #[error("expected {expected} hex characters, got {actual}")]
    WrongLength {
        /// Characters required (twice the byte length).
        expected: usize,
        /// Characters given.
        actual: usize,
    },
    /// A character is not one of `0-9a-f`.
    #[error(
        "invalid character `{found}` at position {position}: expected lowercase hex (0-9, a-f)"
    )]
    InvalidCharacter {
        /// The offending character.
        found: char,
        /// Its character index in the string.
        position: usize,
    },
}

/// Decodes exactly `N` bytes from lowercase hex.
///
/// Uppercase is refused so that every value has one text form; ids are used
/// as map keys and compared as strings by other tools.
pub(crate) fn decode_hex_array<const N: usize>(s: &str) -> Result<[u8; N], HexError> {
    let mut out = [0u8; N];
    decode_lowercase_hex(s, Some(N * 2)).map(|bytes| {
        out.copy_from_slice(&bytes);
        out
    })
}

/// Decodes lowercase hex of any even length, or of exactly `expected_chars`.
pub(crate) fn decode_lowercase_hex(
    s: &str,
    expected_chars: Option<usize>,
) -> Result<Vec<u8>, HexError> {
    let actual = s.chars().count();
    match expected_chars {
        Some(expected) if actual != expected => {
            return Err(HexError::WrongLength { expected, actual });
        }
        None if !actual.is_multiple_of(2) => {
            return Err(HexError::WrongLength {
                expected: actual + 1,
                actual,
            });
        }
        _ => {}
    }
    let mut bytes = Vec::with_capacity(actual / 2);
    let mut high = None;
    for (position, found) in s.chars().enumerate() {
        let value = match found {
            '0'..='9' => found as u8 - b'0',
            'a'..='f' => found as u8 - b'a' + 10,
            _ => return Err(HexError::InvalidCharacter { found, position }),
        };
        match high.take() {
            None => high = Some(value),
            Some(h) => bytes.push((h << 4) | value),
        }
    }
    Ok(bytes)
}

/// Deserializes any `FromStr` type from a JSON string, keeping its parse
/// error as the serde message.
pub(crate) fn deserialize_from_str<'de, D, T>(deserializer: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: FromStr,
    T::Err: fmt::Display,
{
    let text = String::deserialize(deserializer)?;
    text.parse().map_err(serde::de::Error::custom)
}

/// Declares a newtype over [`Hash32`] with the same text and serde form.
macro_rules! hash_newtype {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        #[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(Hash32);

        impl $name {
            /// The underlying digest.
            pub fn hash(&self) -> Hash32 {
                self.0
            }

            /// The raw bytes.
            pub fn as_bytes(&self) -> &[u8; 32] {
                self.0.as_bytes()
            }
        }

        impl From<Hash32> for $name {
            fn from(hash: Hash32) -> Self {
                $name(hash)
            }
        }

        impl From<$name> for Hash32 {
            fn from(id: $name) -> Self {
                id.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                fmt::Display::fmt(&self.0, f)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), self.0)
            }
        }

        impl FromStr for $name {
            type Err = HexError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                s.parse().map($name)
            }
        }
    };
}

hash_newtype!(
    /// The aggregator's key for a commitment: a tagged hash of the owner's
    /// public key and the state being spent (see `RequestId::derive`).
    RequestId
);
hash_newtype!(
    /// The hash of a token state; spending a state is committing to it once.
    StateHash
);
hash_newtype!(
    /// The hash of the transaction that spends a state.
    TransactionHash
);

#[cfg(test)]
mod tests {
    use super::*;

    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";

    #[test]
    fn sha256_of_concatenates_parts() {
        assert_eq!(Hash32::sha256_of(&[b"abc"]).to_string(), ABC);
        assert_eq!(Hash32::sha256_of(&[b"a", b"", b"bc"]).to_string(), ABC);
    }

    #[test]
    fn tags_separate_domains() {
        let plain = Hash32::sha256_of(&[b"x"]);
        let digests: Vec<Hash32> = domain::ALL
            .iter()
            .map(|tag| Hash32::tagged(tag, &[b"x"]))
            .collect();
        for (i, a) in digests.iter().enumerate() {
            assert_ne!(*a, plain);
            for b in &digests[i + 1..] {
                assert_ne!(a, b);
            }
        }
        // The tag is length-prefixed, so moving bytes between tag and input
        // changes the digest.
        assert_ne!(
            Hash32::tagged(b"ab", &[b"c"]),
            Hash32::tagged(b"a", &[b"bc"])
        );
    }

    #[test]
    fn display_debug_and_serde_are_lowercase_hex() {
        let h: Hash32 = ABC.parse().expect("valid hex");
        assert_eq!(format!("{h}"), ABC);
        assert_eq!(format!("{h:?}"), ABC);
        let json = serde_json::to_string(&h).expect("serialize");
        assert_eq!(json, format!("\"{ABC}\""));
        let back: Hash32 = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, h);
    }

    #[test]
    fn parse_rejects_bad_input_with_a_clear_error() {
        let short = &ABC[..62];
        assert_eq!(
            short.parse::<Hash32>(),
            Err(HexError::WrongLength {
                expected: 64,
                actual: 62
            })
        );
        let upper = ABC.to_uppercase();
        assert!(matches!(
            upper.parse::<Hash32>(),
            Err(HexError::InvalidCharacter {
                found: 'B',
                position: 0
            })
        ));
        let junk = format!("zz{}", &ABC[2..]);
        let err = serde_json::from_str::<Hash32>(&format!("\"{junk}\"")).expect_err("non-hex");
        assert!(err.to_string().contains("invalid character `z`"), "{err}");
        let err = serde_json::from_str::<Hash32>("\"abcd\"").expect_err("too short");
        assert!(
            err.to_string()
                .contains("expected 64 hex characters, got 4"),
            "{err}"
        );
        assert!(serde_json::from_str::<Hash32>("42").is_err());
    }

    #[test]
    fn newtypes_share_the_text_form() {
        let h = Hash32::sha256_of(&[b"abc"]);
        let id = RequestId::from(h);
        assert_eq!(id.hash(), h);
        assert_eq!(id.to_string(), ABC);
        assert_eq!(format!("{id:?}"), format!("RequestId({ABC})"));
        let json = serde_json::to_string(&id).expect("serialize");
        assert_eq!(json, format!("\"{ABC}\""));
        let back: TransactionHash = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back.hash(), h);
        let state: StateHash = ABC.parse().expect("parse");
        assert_eq!(Hash32::from(state), h);
    }

    #[test]
    fn zero_is_default_and_detected() {
        assert!(Hash32::ZERO.is_zero());
        assert_eq!(Hash32::default(), Hash32::ZERO);
        assert!(!Hash32::sha256_of(&[]).is_zero());
    }
}
