//! A profile-sync wallet SDK: the system the soak harness measures.
//!
//! A wallet is derived from a BIP-39 mnemonic. Its tokens are state
//! transitions committed to an aggregator and carried with inclusion proofs;
//! its profile is an encrypted op-log (a key-value store over a Merkle-CRDT
//! log) kept in an embedded store; its token set is exported as CAR bundles
//! pinned to an IPFS gateway; a profile pointer on the aggregator lets a new
//! device find the latest snapshot; payments and invoices travel over Nostr.
//!
//! Switchable variants ([`config::Variants`]) are real code paths, so a soak
//! can compare a known-good and a known-bad build of the same SDK.

pub mod amount;
pub mod bundle;
pub mod config;
pub mod identity;
pub mod peer;
pub mod perf;
pub mod pointer;
pub mod profile;
pub mod snapshot;
pub mod store;
pub mod token;
pub mod transport;
pub mod wallet;
