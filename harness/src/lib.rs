//! soakgate: run a multi-peer scenario against a fresh local testnet, time
//! every section, sample each peer's own process tree, collect the peers'
//! perf counters, check the scenario's assertions, and keep everything in a
//! run folder; then compare two branches with statistics that separate a
//! change from noise, and gate on the verdict.
//!
//! The harness knows nothing of wallets: it drives any peer that speaks the
//! peer protocol (`docs/peer-protocol.md`).

pub mod ab;
pub mod attribution;
pub mod commands;
pub mod counters;
pub mod launch;
pub mod manifest;
pub mod peer;
pub mod power;
pub mod process;
pub mod record;
pub mod reporter;
pub mod runner;
pub mod sampler;
pub mod scenario;
pub mod script_log;
pub mod settings;
pub mod stats;
