//! Who a wallet is: its mnemonic, the keys derived from it, its address and
//! its nametag.
//!
//! A [`Mnemonic`] (BIP-39, 12 or 24 English words) is the only secret a user
//! keeps; [`WalletKeys::from_mnemonic`] derives every key from it, so a
//! second device or a recovery after `clear` ends up with the same wallet.
//!
//! Derivation, part of the wallet format: `seed` is the BIP-39 seed with an
//! empty passphrase, and each key is
//! `Hash32::tagged(b"sphere/wallet/<purpose>/v1", &[&seed])` for the purposes
//! `signing`, `pointer`, `profile` and `nostr`. A digest that is not a valid
//! secp256k1 scalar (odds about 2^-128) is re-hashed with a counter byte
//! appended: `Hash32::tagged(tag, &[&seed, &[n]])` for n = 1, 2, ...
//!
//! Secrets never print: `Mnemonic` and `WalletKeys` redact their `Debug`
//! output and implement neither `Display` nor `Serialize`; the words come
//! out only through [`Mnemonic::phrase`].
//!
//! ```
//! use sphere_sdk::identity::{Mnemonic, WalletKeys, WordCount};
//! let mnemonic = Mnemonic::generate(WordCount::Twelve);
//! let keys = WalletKeys::from_mnemonic(&mnemonic);
//! let again = WalletKeys::from_mnemonic(&Mnemonic::parse(&mnemonic.phrase())?);
//! assert_eq!(keys.address(), again.address());
//! assert!(keys.address().to_string().starts_with("sphere:"));
//! # Ok::<(), sphere_sdk::identity::IdentityError>(())
//! ```

use std::fmt;
use std::str::FromStr;

use rand::Rng;
use serde::{Deserialize, Deserializer, Serialize};
use sphere_protocol::hash::Hash32;
use sphere_protocol::signing::{PublicKey, SecretKey};

/// Why a mnemonic, address or nametag was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// The words are not a valid mnemonic. The message never repeats them.
    #[error("mnemonic is not valid BIP-39 (12 or 24 English words with a correct checksum): {0}")]
    InvalidMnemonic(MnemonicProblem),
    /// The text is not a `sphere:` address.
    #[error(
        "address `{value}` is invalid: {reason}; expected `sphere:` followed by the 66 \
         lowercase hex characters of a compressed secp256k1 public key"
    )]
    InvalidAddress {
        /// The input.
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
    /// The text breaks the nametag rules.
    #[error(
        "nametag `{value}` is invalid: {reason}; a nametag is 1-32 characters of a-z, 0-9, \
         `_` and `-`, starting with a letter"
    )]
    InvalidNametag {
        /// The input.
        value: String,
        /// Which rule it breaks.
        reason: String,
    },
}

/// What is wrong with a mnemonic, described without quoting any word.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum MnemonicProblem {
    /// Not 12 or 24 words.
    #[error("bad word count {0}")]
    WordCount(usize),
    /// A word outside the English list, by 1-based position.
    #[error("word {position} is not in the English word list")]
    UnknownWord {
        /// 1-based index of the word.
        position: usize,
    },
    /// Every word is known but the checksum bits do not match.
    #[error("the checksum does not match (a word is wrong or out of order)")]
    Checksum,
}

/// How many words a new mnemonic has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum WordCount {
    /// 12 words, 128 bits of entropy.
    #[default]
    Twelve,
    /// 24 words, 256 bits of entropy.
    TwentyFour,
}

impl WordCount {
    /// The number of words.
    pub fn words(self) -> usize {
        match self {
            WordCount::Twelve => 12,
            WordCount::TwentyFour => 24,
        }
    }

    fn entropy_bytes(self) -> usize {
        match self {
            WordCount::Twelve => 16,
            WordCount::TwentyFour => 32,
        }
    }
}

/// A BIP-39 mnemonic in English. `Debug` shows `Mnemonic(<redacted>)`.
#[derive(Clone, PartialEq, Eq)]
pub struct Mnemonic(bip39::Mnemonic);

impl Mnemonic {
    /// A fresh mnemonic from the operating system's random source.
    pub fn generate(words: WordCount) -> Mnemonic {
        let mut entropy = [0u8; 32];
        rand::rng().fill(&mut entropy[..]);
        match bip39::Mnemonic::from_entropy(&entropy[..words.entropy_bytes()]) {
            Ok(mnemonic) => Mnemonic(mnemonic),
            // 16 and 32 bytes are both lengths BIP-39 defines; no input
            // reaches this arm.
            Err(error) => unreachable!("bip39 refused {} bytes: {error}", words.entropy_bytes()),
        }
    }

    /// Parses 12 or 24 English words. Runs of whitespace, leading and
    /// trailing space and upper case are tolerated because people paste
    /// phrases from anywhere; the error never echoes the words.
    pub fn parse(text: &str) -> Result<Mnemonic, IdentityError> {
        let words: Vec<String> = text.split_whitespace().map(str::to_lowercase).collect();
        let refuse = |problem| Err(IdentityError::InvalidMnemonic(problem));
        if !matches!(words.len(), 12 | 24) {
            return refuse(MnemonicProblem::WordCount(words.len()));
        }
        match bip39::Mnemonic::parse_in(bip39::Language::English, words.join(" ")) {
            Ok(mnemonic) => Ok(Mnemonic(mnemonic)),
            Err(bip39::Error::UnknownWord(index)) => refuse(MnemonicProblem::UnknownWord {
                position: index + 1,
            }),
            Err(bip39::Error::InvalidChecksum) => refuse(MnemonicProblem::Checksum),
            // The count was checked above and the language is fixed, so the
            // remaining errors cannot occur; report the count if they do.
            Err(_) => refuse(MnemonicProblem::WordCount(words.len())),
        }
    }

    /// The words separated by single spaces: the only way to see them.
    pub fn phrase(&self) -> String {
        self.0.to_string()
    }

    /// How many words the mnemonic has.
    pub fn word_count(&self) -> WordCount {
        if self.0.word_count() == 24 {
            WordCount::TwentyFour
        } else {
            WordCount::Twelve
        }
    }
}

impl fmt::Debug for Mnemonic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Mnemonic(<redacted>)")
    }
}

const SIGNING_TAG: &[u8] = b"sphere/wallet/signing/v1";
const POINTER_TAG: &[u8] = b"sphere/wallet/pointer/v1";
const PROFILE_TAG: &[u8] = b"sphere/wallet/profile/v1";
const NOSTR_TAG: &[u8] = b"sphere/wallet/nostr/v1";

/// Every key of one wallet, derived from its mnemonic (see the module docs).
/// `Debug` shows only the address.
#[derive(Clone)]
pub struct WalletKeys {
    signing: SecretKey,
    pointer: SecretKey,
    profile: [u8; 32],
    nostr: nostr_sdk::Keys,
    address: Address,
}

impl WalletKeys {
    /// Derives the wallet's keys; the same mnemonic always gives the same
    /// keys.
    pub fn from_mnemonic(mnemonic: &Mnemonic) -> WalletKeys {
        let seed = mnemonic.0.to_seed_normalized("");
        let signing = derive_key(&seed, SIGNING_TAG, |bytes| {
            SecretKey::from_bytes(bytes).ok()
        });
        let pointer = derive_key(&seed, POINTER_TAG, |bytes| {
            SecretKey::from_bytes(bytes).ok()
        });
        // A symmetric key: any 32 bytes will do.
        let profile = derive_key(&seed, PROFILE_TAG, |bytes| Some(*bytes));
        let nostr = derive_key(&seed, NOSTR_TAG, |bytes| {
            nostr_sdk::SecretKey::from_slice(bytes).ok()
        });
        WalletKeys {
            address: Address::from_public_key(&signing.public_key()),
            signing,
            pointer,
            profile,
            nostr: nostr_sdk::Keys::new(nostr),
        }
    }

    /// Owns the wallet's tokens and signs their state-transition
    /// commitments.
    pub fn signing_key(&self) -> &SecretKey {
        &self.signing
    }

    /// Signs the commitments that publish the profile pointer.
    pub fn pointer_key(&self) -> &SecretKey {
        &self.pointer
    }

    /// Symmetric key that encrypts profile entries.
    pub fn profile_key(&self) -> &[u8; 32] {
        &self.profile
    }

    /// The wallet's Nostr identity, for token transfers and invoice DMs.
    pub fn nostr_keys(&self) -> nostr_sdk::Keys {
        self.nostr.clone()
    }

    /// The wallet's address, from the signing key's public key.
    pub fn address(&self) -> Address {
        self.address.clone()
    }
}

impl fmt::Debug for WalletKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redacted = format_args!("<redacted>");
        f.debug_struct("WalletKeys")
            .field("address", &self.address.as_str())
            .field("signing_key", &redacted)
            .field("pointer_key", &redacted)
            .field("profile_key", &redacted)
            .field("nostr_keys", &redacted)
            .finish()
    }
}

/// Hashes `seed` under `tag` until `accept` takes the digest; the first try
/// has no counter byte, retry n appends the byte n.
fn derive_key<T>(seed: &[u8], tag: &[u8], accept: impl Fn(&[u8; 32]) -> Option<T>) -> T {
    let mut candidate = Hash32::tagged(tag, &[seed]);
    let mut counter = 0u8;
    loop {
        if let Some(key) = accept(candidate.as_bytes()) {
            return key;
        }
        // Each retry fails with probability ~2^-128, so the counter never
        // gets far; wrapping keeps the loop free of a panic path.
        counter = counter.wrapping_add(1);
        candidate = Hash32::tagged(tag, &[seed, &[counter]]);
    }
}

/// A wallet address: `sphere:` and the lowercase hex of the 33-byte
/// compressed public key of its signing key.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Address(String);

impl Address {
    /// The text every address starts with.
    pub const PREFIX: &'static str = "sphere:";

    /// The address of `public_key`.
    pub fn from_public_key(public_key: &PublicKey) -> Address {
        Address(format!("{}{public_key}", Address::PREFIX))
    }

    /// The public key the address names. Addresses are validated when
    /// built, so this fails only if that invariant is broken.
    pub fn public_key(&self) -> Result<PublicKey, IdentityError> {
        parse_address_key(&self.0)
    }

    /// The address text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_address_key(text: &str) -> Result<PublicKey, IdentityError> {
    let refuse = |reason: String| IdentityError::InvalidAddress {
        value: text.to_owned(),
        reason,
    };
    let hex = text
        .strip_prefix(Address::PREFIX)
        .ok_or_else(|| refuse(format!("it does not start with `{}`", Address::PREFIX)))?;
    hex.parse::<PublicKey>()
        .map_err(|error| refuse(error.to_string()))
}

impl fmt::Display for Address {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for Address {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        parse_address_key(s).map(|_| Address(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Address {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A human-readable name for a wallet, such as `alice`: 1-32 characters of
/// `a-z`, `0-9`, `_` and `-`, starting with a letter.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct Nametag(String);

impl Nametag {
    /// The longest accepted nametag.
    pub const MAX_LEN: usize = 32;

    /// The nametag text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Nametag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(&self.0)
    }
}

impl FromStr for Nametag {
    type Err = IdentityError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let refuse = |reason: String| {
            Err(IdentityError::InvalidNametag {
                value: s.to_owned(),
                reason,
            })
        };
        let Some(first) = s.chars().next() else {
            return refuse("it is empty".to_owned());
        };
        if s.chars().count() > Nametag::MAX_LEN {
            return refuse(format!("it is longer than {} characters", Nametag::MAX_LEN));
        }
        if let Some(bad) = s
            .chars()
            .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-')))
        {
            return refuse(format!("it contains `{bad}`"));
        }
        if !first.is_ascii_lowercase() {
            return refuse(format!("it starts with `{first}`, not a letter"));
        }
        Ok(Nametag(s.to_owned()))
    }
}

impl<'de> Deserialize<'de> for Nametag {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ABANDON: &str = "abandon abandon abandon abandon abandon abandon abandon abandon \
                           abandon abandon abandon about";
    /// The BIP-39 seed of [`ABANDON`] with an empty passphrase.
    const ABANDON_SEED: &str = "5eb00bbddcf069084889a8ab9155568165f5c453ccb85e70811aaed6f6da5fc1\
                                9a5ac40b389cd370d086206dec8aa6c43daea6690f20ad3d8d48b2d2ce9e38e4";
    /// Pinned so a change to the derivation shows up as a failing test.
    const ABANDON_ADDRESS: &str =
        "sphere:03f04a68342efb68d4ee82da8fd7b38b414334197c945efe3d97dcb3bcdf98006c";
    const ZOO_24: &str = "zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo zoo \
                          zoo zoo zoo zoo zoo vote";

    fn keys(phrase: &str) -> WalletKeys {
        WalletKeys::from_mnemonic(&Mnemonic::parse(phrase).expect("valid mnemonic"))
    }

    fn secret_hexes(keys: &WalletKeys) -> [String; 4] {
        [
            hex::encode(keys.signing_key().to_bytes()),
            hex::encode(keys.pointer_key().to_bytes()),
            hex::encode(keys.profile_key()),
            keys.nostr_keys().secret_key().to_secret_hex(),
        ]
    }

    #[test]
    fn known_mnemonic_derives_stable_distinct_keys() {
        let first = keys(ABANDON);
        let second = keys(ABANDON);
        assert_eq!(secret_hexes(&first), secret_hexes(&second));
        assert_eq!(first.address(), second.address());
        assert_eq!(first.address().as_str(), ABANDON_ADDRESS);

        // The derivation rule in the module docs, computed from the seed
        // alone.
        let seed = hex::decode(ABANDON_SEED).expect("seed hex");
        let signing = Hash32::tagged(b"sphere/wallet/signing/v1", &[&seed]);
        assert_eq!(first.signing_key().to_bytes(), signing.0);
        let profile = Hash32::tagged(b"sphere/wallet/profile/v1", &[&seed]);
        assert_eq!(first.profile_key(), profile.as_bytes());

        let hexes = secret_hexes(&first);
        for (i, a) in hexes.iter().enumerate() {
            for b in &hexes[i + 1..] {
                assert_ne!(a, b);
            }
        }
        assert_eq!(
            first.address().public_key(),
            Ok(first.signing_key().public_key())
        );
    }

    #[test]
    fn different_and_24_word_mnemonics_give_different_addresses() {
        let zoo = keys(ZOO_24);
        assert_eq!(
            Mnemonic::parse(ZOO_24).map(|m| m.word_count()),
            Ok(WordCount::TwentyFour)
        );
        assert_ne!(zoo.address(), keys(ABANDON).address());
        let generated = WalletKeys::from_mnemonic(&Mnemonic::generate(WordCount::Twelve));
        assert_ne!(generated.address(), keys(ABANDON).address());
    }

    #[test]
    fn generated_mnemonics_round_trip_through_their_phrase() {
        for count in [WordCount::Twelve, WordCount::TwentyFour] {
            let mnemonic = Mnemonic::generate(count);
            let phrase = mnemonic.phrase();
            assert_eq!(phrase.split(' ').count(), count.words());
            let parsed = Mnemonic::parse(&phrase).expect("own phrase parses");
            assert_eq!(parsed, mnemonic);
            assert_eq!(parsed.word_count(), count);
            assert_ne!(Mnemonic::generate(count), mnemonic);
        }
    }

    #[test]
    fn parse_normalizes_whitespace_and_case() {
        let messy = format!("  {}\n", ABANDON.replace(' ', " \t ").to_uppercase());
        assert_eq!(
            Mnemonic::parse(&messy).map(|m| m.phrase()),
            Ok(ABANDON.to_owned())
        );
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        for phrase in [ABANDON, ZOO_24] {
            let mnemonic = Mnemonic::parse(phrase).expect("valid");
            let keys = WalletKeys::from_mnemonic(&mnemonic);
            let shown = format!("{mnemonic:?} {keys:?} {keys:#?}");
            assert!(shown.starts_with("Mnemonic(<redacted>) WalletKeys { address: \"sphere:"));
            for word in phrase.split_whitespace() {
                assert!(!shown.contains(word), "{word} leaked: {shown}");
            }
            for secret in secret_hexes(&keys) {
                assert!(!shown.contains(&secret));
            }
        }
    }

    #[test]
    fn invalid_mnemonics_are_refused_without_echoing_words() {
        let eleven = ABANDON.replacen("abandon ", "", 1);
        let bad_word =
            ABANDON
                .replacen("abandon", "satoshiword", 3)
                .replacen("satoshiword", "abandon", 2);
        let bad_checksum = "abandon ".repeat(11) + "abandon";
        let fifteen = format!("{ABANDON} abandon abandon abandon");
        let cases = [
            (eleven.as_str(), "bad word count 11"),
            ("", "bad word count 0"),
            (fifteen.as_str(), "bad word count 15"),
            (bad_word.as_str(), "word 3 is not in the English word list"),
            (
                bad_checksum.as_str(),
                "the checksum does not match (a word is wrong or out of order)",
            ),
        ];
        for (phrase, problem) in cases {
            let message = Mnemonic::parse(phrase).expect_err("invalid").to_string();
            assert_eq!(
                message,
                format!(
                    "mnemonic is not valid BIP-39 (12 or 24 English words with a correct \
                     checksum): {problem}"
                )
            );
            assert!(!message.contains("abandon") && !message.contains("satoshiword"));
        }
    }

    #[test]
    fn derivation_retries_with_a_counter_byte() {
        let seed = [7u8; 64];
        let tag = b"sphere/wallet/test/v1";
        let tries = std::cell::Cell::new(0);
        let third = derive_key(&seed, tag, |bytes| {
            tries.set(tries.get() + 1);
            (tries.get() == 3).then_some(*bytes)
        });
        assert_eq!(third, Hash32::tagged(tag, &[&seed, &[2]]).0);
        let first = derive_key(&seed, tag, |bytes| Some(*bytes));
        assert_eq!(first, Hash32::tagged(tag, &[&seed]).0);
    }

    #[test]
    fn addresses_round_trip_and_refuse_bad_text() {
        let address = keys(ABANDON).address();
        let parsed: Address = address.as_str().parse().expect("own address parses");
        assert_eq!(parsed, address);
        assert_eq!(parsed.to_string(), address.as_str());
        let json = serde_json::to_string(&address).expect("serialize");
        assert_eq!(json, format!("\"{address}\""));
        assert_eq!(
            serde_json::from_str::<Address>(&json).expect("deserialize"),
            address
        );

        let hex = &address.as_str()[Address::PREFIX.len()..];
        let message = |text: &str| text.parse::<Address>().expect_err("refused").to_string();
        assert_eq!(
            message(hex),
            format!(
                "address `{hex}` is invalid: it does not start with `sphere:`; expected \
                 `sphere:` followed by the 66 lowercase hex characters of a compressed \
                 secp256k1 public key"
            )
        );
        assert!(message("sphere:02ab").contains("expected 66 hex characters, got 4"));
        let upper = format!("sphere:{}", hex.to_uppercase());
        assert!(message(&upper).contains("invalid character"));
        let off_curve = format!("sphere:04{}", "00".repeat(32));
        assert!(message(&off_curve).contains("not a valid 33-byte compressed secp256k1 point"));
        let err = serde_json::from_str::<Address>("\"sphere:\"").expect_err("empty key");
        assert!(
            err.to_string().contains("address `sphere:` is invalid"),
            "{err}"
        );
    }

    #[test]
    fn nametags_follow_their_rules() {
        for good in ["a", "alice", "bob-2", "c_d", &"x".repeat(32)] {
            let tag: Nametag = good.parse().expect("valid nametag");
            assert_eq!(tag.as_str(), good);
        }
        let reason = |text: &str| match text.parse::<Nametag>() {
            Err(IdentityError::InvalidNametag { value, reason }) => {
                assert_eq!(value, text);
                reason
            }
            other => panic!("{text:?} gave {other:?}"),
        };
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason(&"x".repeat(33)), "it is longer than 32 characters");
        assert_eq!(reason("Alice"), "it contains `A`");
        assert_eq!(reason("al ice"), "it contains ` `");
        assert_eq!(reason("@alice"), "it contains `@`");
        assert_eq!(reason("2pac"), "it starts with `2`, not a letter");
        assert_eq!(reason("_x"), "it starts with `_`, not a letter");
        assert_eq!(
            "-x".parse::<Nametag>().expect_err("refused").to_string(),
            "nametag `-x` is invalid: it starts with `-`, not a letter; a nametag is 1-32 \
             characters of a-z, 0-9, `_` and `-`, starting with a letter"
        );
        let json = serde_json::to_string(&Nametag::from_str("alice").expect("valid")).expect("ser");
        assert_eq!(json, "\"alice\"");
        assert!(serde_json::from_str::<Nametag>("\"Alice\"").is_err());
    }
}
