//! Bundles: a wallet's whole token set as one content-addressed DAG, pinned
//! as one CAR file.
//!
//! Shape: a root *envelope* links a *manifest*, which links one block per
//! token; a token block links its genesis and transition blocks, and each of
//! those links its inclusion-proof block. A split token's genesis links its
//! parent's token block, so shared history is stored once (blocks are
//! addressed by content). All links are real dag-cbor links (CID tag 42), so
//! a gateway can export the whole bundle from its root.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use sphere_protocol::{
    hash::Hash32,
    ipld::{Block, CarContents, Cid, DagCborError, decode_dag_cbor},
    rpc::InclusionProofResponse,
};

use crate::{
    amount::{Amount, CoinId},
    identity::Address,
    token::{Genesis, MintOrigin, Token, TokenId, Transition, TransitionKind},
};

/// The `kind` of a bundle envelope.
pub const BUNDLE_KIND: &str = "sphere-bundle";

/// Why a bundle could not be built or read.
#[derive(Debug, thiserror::Error)]
pub enum BundleError {
    /// dag-cbor encoding or decoding failed.
    #[error("bundle block: {0}")]
    Codec(#[from] DagCborError),
    /// A linked block is not in the CAR.
    #[error("bundle `{root}` is incomplete: block `{missing}` is missing")]
    Missing {
        /// The bundle root.
        root: String,
        /// The missing block.
        missing: String,
    },
    /// The root is not a bundle envelope.
    #[error("`{0}` is not a sphere bundle")]
    NotABundle(String),
}

#[derive(Debug, Serialize, Deserialize)]
struct Envelope {
    v: u32,
    kind: String,
    wallet: Address,
    created_at_ms: u64,
    manifest: Cid,
}

#[derive(Debug, Serialize, Deserialize)]
struct Manifest {
    tokens: Vec<Cid>,
}

#[derive(Debug, Serialize, Deserialize)]
struct TokenBlock {
    id: TokenId,
    genesis: Cid,
    transitions: Vec<Cid>,
}

#[derive(Debug, Serialize, Deserialize)]
struct GenesisBlock {
    token_id: TokenId,
    coin: CoinId,
    amount: Amount,
    recipient: Address,
    salt: Hash32,
    /// The parent token block of a split output; absent for a faucet mint.
    parent: Option<Cid>,
    proof: Cid,
}

#[derive(Debug, Serialize, Deserialize)]
struct TransitionBlock {
    kind: TransitionKind,
    proof: Cid,
}

/// A built bundle, ready to pin.
#[derive(Debug, Clone)]
pub struct EncodedBundle {
    /// The envelope's CID: the bundle's identity.
    pub root: Cid,
    /// Every block, root first, no duplicates.
    pub blocks: Vec<Block>,
    /// How many tokens it holds.
    pub token_count: usize,
}

/// A bundle read back from a CAR.
#[derive(Debug, Clone)]
pub struct DecodedBundle {
    /// The envelope's CID.
    pub root: Cid,
    /// Whose token set it is.
    pub wallet: Address,
    /// When it was built (milliseconds since the Unix epoch).
    pub created_at_ms: u64,
    /// The tokens, with full histories.
    pub tokens: Vec<Token>,
}

#[derive(Default)]
struct Encoder {
    blocks: Vec<Block>,
    seen: HashMap<Cid, ()>,
}

impl Encoder {
    fn add<T: Serialize>(&mut self, value: &T) -> Result<Cid, BundleError> {
        let block = Block::encode_dag_cbor(value)?;
        let cid = block.cid;
        if self.seen.insert(cid, ()).is_none() {
            self.blocks.push(block);
        }
        Ok(cid)
    }

    fn token(&mut self, token: &Token) -> Result<Cid, BundleError> {
        let genesis = &token.genesis;
        let parent = match &genesis.origin {
            MintOrigin::Faucet => None,
            MintOrigin::Split { parent } => Some(self.token(parent)?),
        };
        let genesis_proof = self.add(&genesis.proof)?;
        let genesis_cid = self.add(&GenesisBlock {
            token_id: genesis.token_id,
            coin: genesis.coin.clone(),
            amount: genesis.amount,
            recipient: genesis.recipient.clone(),
            salt: genesis.salt,
            parent,
            proof: genesis_proof,
        })?;
        let mut transitions = Vec::with_capacity(token.transitions.len());
        for transition in &token.transitions {
            let proof = self.add(&transition.proof)?;
            transitions.push(self.add(&TransitionBlock {
                kind: transition.kind.clone(),
                proof,
            })?);
        }
        self.add(&TokenBlock {
            id: token.id(),
            genesis: genesis_cid,
            transitions,
        })
    }
}

/// Builds the bundle of `tokens` held by `wallet`.
pub fn encode(
    wallet: &Address,
    tokens: &[Token],
    created_at_ms: u64,
) -> Result<EncodedBundle, BundleError> {
    let mut encoder = Encoder::default();
    let mut token_cids = Vec::with_capacity(tokens.len());
    for token in tokens {
        token_cids.push(encoder.token(token)?);
    }
    let manifest = encoder.add(&Manifest { tokens: token_cids })?;
    let root = encoder.add(&Envelope {
        v: 1,
        kind: BUNDLE_KIND.to_owned(),
        wallet: wallet.clone(),
        created_at_ms,
        manifest,
    })?;
    let mut blocks = encoder.blocks;
    // Root first: readers and exporters expect it at the front.
    if let Some(position) = blocks.iter().position(|b| b.cid == root) {
        let envelope = blocks.remove(position);
        blocks.insert(0, envelope);
    }
    Ok(EncodedBundle {
        root,
        blocks,
        token_count: tokens.len(),
    })
}

struct Decoder<'a> {
    root: Cid,
    blocks: HashMap<Cid, &'a [u8]>,
}

impl Decoder<'_> {
    fn get<T: serde::de::DeserializeOwned>(&self, cid: &Cid) -> Result<T, BundleError> {
        let bytes = self.blocks.get(cid).ok_or_else(|| BundleError::Missing {
            root: self.root.to_string(),
            missing: cid.to_string(),
        })?;
        Ok(decode_dag_cbor(bytes)?)
    }

    fn token(&self, cid: &Cid) -> Result<Token, BundleError> {
        let block: TokenBlock = self.get(cid)?;
        let genesis: GenesisBlock = self.get(&block.genesis)?;
        let origin = match genesis.parent {
            None => MintOrigin::Faucet,
            Some(parent) => MintOrigin::Split {
                parent: Box::new(self.token(&parent)?),
            },
        };
        let proof: InclusionProofResponse = self.get(&genesis.proof)?;
        let mut transitions = Vec::with_capacity(block.transitions.len());
        for transition_cid in &block.transitions {
            let transition: TransitionBlock = self.get(transition_cid)?;
            transitions.push(Transition {
                kind: transition.kind,
                proof: self.get(&transition.proof)?,
            });
        }
        Ok(Token {
            genesis: Genesis {
                token_id: genesis.token_id,
                coin: genesis.coin,
                amount: genesis.amount,
                recipient: genesis.recipient,
                salt: genesis.salt,
                origin,
                proof,
            },
            transitions,
        })
    }
}

/// Reads a bundle from the blocks of its CAR (already checked against
/// their CIDs by the CAR reader).
pub fn decode(contents: &CarContents) -> Result<DecodedBundle, BundleError> {
    let root = *contents
        .roots
        .first()
        .ok_or_else(|| BundleError::NotABundle("a CAR with no root".into()))?;
    let decoder = Decoder {
        root,
        blocks: contents
            .blocks
            .iter()
            .map(|b| (b.cid, b.data.as_ref()))
            .collect(),
    };
    let envelope: Envelope = decoder
        .get(&root)
        .map_err(|_| BundleError::NotABundle(root.to_string()))?;
    if envelope.kind != BUNDLE_KIND {
        return Err(BundleError::NotABundle(root.to_string()));
    }
    let manifest: Manifest = decoder.get(&envelope.manifest)?;
    let tokens = manifest
        .tokens
        .iter()
        .map(|cid| decoder.token(cid))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(DecodedBundle {
        root,
        wallet: envelope.wallet,
        created_at_ms: envelope.created_at_ms,
        tokens,
    })
}
