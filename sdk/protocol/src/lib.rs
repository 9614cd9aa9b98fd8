//! Wire formats shared by the sphere SDK and its local testnet.
//!
//! Everything two parties must agree on byte for byte lives here, so the
//! testnet and the SDK cannot drift apart: 32-byte ids and hashes, secp256k1
//! signatures, the aggregator's commitments, sparse Merkle proofs and the
//! certified root they verify against, the JSON-RPC envelope, and content
//! addressing (CIDs, blocks, CAR files).

pub mod certificate;
pub mod commitment;
pub mod hash;
pub mod ipld;
pub mod rpc;
pub mod signing;
pub mod smt;
