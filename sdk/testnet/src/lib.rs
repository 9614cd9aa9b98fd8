//! A local testnet for the sphere SDK.
//!
//! One process runs the three services a profile-sync wallet talks to, each
//! on its own 127.0.0.1 port chosen by the OS:
//!
//! - an **aggregator** ([`aggregator`]): JSON-RPC commitments and inclusion
//!   proofs over a sparse Merkle tree, with a root certified by the testnet's
//!   own key;
//! - an **IPFS gateway** ([`gateway`]): a Kubo-compatible HTTP subset for
//!   blocks and CAR files, with a propagation delay before reads succeed;
//! - a **Nostr relay** ([`relay`]): a real NIP-01 relay behind a delaying
//!   proxy.
//!
//! Every request passes through the [`netmodel`] first: latency and jitter
//! from a seeded RNG, a per-client token bucket, and injected faults, all
//! configured by a [`profile::NetworkProfile`] and scaled by its `time_scale`.
pub mod aggregator;
pub mod gateway;
pub mod http;
pub mod metrics;
pub mod netmodel;
pub mod profile;
pub mod relay;
pub mod testnet;

pub use profile::NetworkProfile;
pub use testnet::{Endpoints, RunningTestnet, ServicePorts, TestnetConfig, TestnetError};
