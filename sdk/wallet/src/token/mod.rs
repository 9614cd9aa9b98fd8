//! Tokens: value that moves by state transitions committed to the aggregator.
//!
//! A [`Token`] carries its whole history: a [`Genesis`] (a faucet mint, or a
//! mint out of a burned parent when a token is split) and the
//! [`Transition`]s since, each with the inclusion proof of its commitment.
//! Anyone holding the token can verify it against the testnet's trust base
//! alone ([`verify`]); the aggregator's refusal of a second commitment for
//! the same state is what makes a double spend impossible.
//!
//! States and ownership: state 0 belongs to the genesis recipient, state `k`
//! to the recipient of transition `k`. Spending state `k` means committing
//! `RequestId::derive(owner_k, state_hash_k)` to the hash of the transition.
//! Mints are committed by a *minter key* derived from the token id, which
//! anyone can compute: minting is open (this is a faucet), but a token id can
//! be minted only once.

pub mod ops;
pub mod verify;

use std::fmt;

use serde::{Deserialize, Serialize};
use sphere_protocol::{
    hash::{Hash32, StateHash, TransactionHash},
    rpc::InclusionProofResponse,
    signing::SecretKey,
};

use crate::{
    amount::{Amount, CoinId},
    identity::Address,
};

/// Domain tags of the hashes that define token states and transitions.
mod tags {
    pub(super) const STATE: &[u8] = b"sphere/token/state/v1";
    pub(super) const MINT_STATE: &[u8] = b"sphere/token/mint-state/v1";
    pub(super) const MINTER_KEY: &[u8] = b"sphere/token/minter-key/v1";
    pub(super) const GENESIS_TX: &[u8] = b"sphere/token/genesis-tx/v1";
    pub(super) const TRANSITION_TX: &[u8] = b"sphere/token/transition-tx/v1";
    pub(super) const SPLIT_ORIGIN: &[u8] = b"sphere/token/split-origin/v1";
}

/// A token's identity, fixed at genesis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct TokenId(pub Hash32);

impl fmt::Display for TokenId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl std::str::FromStr for TokenId {
    type Err = sphere_protocol::hash::HexError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(TokenId)
    }
}

impl TokenId {
    /// A fresh random id.
    pub fn random() -> TokenId {
        TokenId(Hash32(rand::random()))
    }
}

/// Where a token's value came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MintOrigin {
    /// Minted by the faucet: new supply.
    Faucet,
    /// Minted from a parent token whose last transition burned it into
    /// outputs that include this token.
    Split {
        /// The burned parent, with its whole history.
        parent: Box<Token>,
    },
}

/// How a token came to be.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Genesis {
    /// The token's id.
    pub token_id: TokenId,
    /// Its coin.
    pub coin: CoinId,
    /// Its value, fixed for life.
    pub amount: Amount,
    /// Owner of state 0.
    pub recipient: Address,
    /// Makes state 0 unguessable.
    pub salt: Hash32,
    /// Faucet or split.
    pub origin: MintOrigin,
    /// Proof that the mint commitment is in the aggregator's tree.
    pub proof: InclusionProofResponse,
}

/// One spend of a token's current state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransitionKind {
    /// Ownership moves to `recipient`.
    Transfer {
        /// The new owner.
        recipient: Address,
        /// Makes the new state unguessable.
        salt: Hash32,
    },
    /// The token ends; its value is re-minted as `outputs`.
    Burn {
        /// The tokens minted from this one, whose amounts sum to its amount.
        outputs: Vec<SplitOutput>,
    },
}

/// One token minted out of a burn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SplitOutput {
    /// The new token's id.
    pub token_id: TokenId,
    /// Its value.
    pub amount: Amount,
    /// Its first owner.
    pub recipient: Address,
}

/// A committed and proven spend.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// What the spend does.
    pub kind: TransitionKind,
    /// Proof that the spend's commitment is in the aggregator's tree.
    pub proof: InclusionProofResponse,
}

/// A token with its full history.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Token {
    /// How it began.
    pub genesis: Genesis,
    /// Every spend since, oldest first.
    pub transitions: Vec<Transition>,
}

/// Who may spend a token now, or that nobody can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// The owner of the current state.
    Owner(Address),
    /// Burned into split outputs.
    Burned,
}

impl Token {
    /// The token's id.
    pub fn id(&self) -> TokenId {
        self.genesis.token_id
    }

    /// Its coin.
    pub fn coin(&self) -> &CoinId {
        &self.genesis.coin
    }

    /// Its value.
    pub fn amount(&self) -> Amount {
        self.genesis.amount
    }

    /// Who holds it now.
    pub fn holder(&self) -> Holder {
        match self.transitions.last().map(|t| &t.kind) {
            None => Holder::Owner(self.genesis.recipient.clone()),
            Some(TransitionKind::Transfer { recipient, .. }) => Holder::Owner(recipient.clone()),
            Some(TransitionKind::Burn { .. }) => Holder::Burned,
        }
    }

    /// Whether `address` may spend it now.
    pub fn is_spendable_by(&self, address: &Address) -> bool {
        self.holder() == Holder::Owner(address.clone())
    }

    /// The hash of the current state: what the next spend commits to.
    pub fn current_state(&self) -> StateHash {
        state_hash_at(self, self.transitions.len())
    }

    /// How many states the token has been through (genesis is 0).
    pub fn sequence(&self) -> usize {
        self.transitions.len()
    }
}

/// The hash of state `k` of `token` (`k <= transitions.len()`).
pub(crate) fn state_hash_at(token: &Token, k: usize) -> StateHash {
    let (recipient, salt) = if k == 0 {
        (&token.genesis.recipient, &token.genesis.salt)
    } else {
        match &token.transitions[k - 1].kind {
            TransitionKind::Transfer { recipient, salt } => (recipient, salt),
            // A burned state has no owner; its hash is never spent.
            TransitionKind::Burn { .. } => return StateHash::from(Hash32::ZERO),
        }
    };
    state_hash(token.id(), k, recipient, salt)
}

pub(crate) fn state_hash(id: TokenId, k: usize, owner: &Address, salt: &Hash32) -> StateHash {
    StateHash::from(framed(
        tags::STATE,
        &[
            id.0.as_bytes(),
            &(k as u64).to_be_bytes(),
            owner.to_string().as_bytes(),
            salt.as_bytes(),
        ],
    ))
}

/// A tagged hash of `parts`, each prefixed with its length, so that no two
/// different lists of variable-length fields hash the same.
fn framed(tag: &[u8], parts: &[&[u8]]) -> Hash32 {
    let mut buffer = Vec::with_capacity(parts.iter().map(|p| p.len() + 4).sum());
    for part in parts {
        buffer.extend_from_slice(&(part.len() as u32).to_be_bytes());
        buffer.extend_from_slice(part);
    }
    Hash32::tagged(tag, &[&buffer])
}

/// The state a mint commitment spends: unique per token id.
pub(crate) fn mint_state(id: TokenId) -> StateHash {
    StateHash::from(framed(tags::MINT_STATE, &[id.0.as_bytes()]))
}

/// The key that commits a token's mint. Public by construction: anyone can
/// mint a new id, nobody can mint the same id twice.
pub(crate) fn minter_key(id: TokenId) -> SecretKey {
    let mut counter = 0_u8;
    loop {
        let bytes = Hash32::tagged(tags::MINTER_KEY, &[id.0.as_bytes(), &[counter]]);
        if let Ok(key) = SecretKey::from_bytes(bytes.as_bytes()) {
            return key;
        }
        // Not a valid scalar (probability ~2^-128): derive again.
        counter = counter.wrapping_add(1);
    }
}

/// What a mint commits to.
pub(crate) fn genesis_tx_hash(
    id: TokenId,
    coin: &CoinId,
    amount: Amount,
    recipient: &Address,
    salt: &Hash32,
    origin: &Hash32,
) -> TransactionHash {
    TransactionHash::from(framed(
        tags::GENESIS_TX,
        &[
            id.0.as_bytes(),
            coin.to_string().as_bytes(),
            &amount.base().to_be_bytes(),
            recipient.to_string().as_bytes(),
            salt.as_bytes(),
            origin.as_bytes(),
        ],
    ))
}

/// A digest of a mint's origin, bound into the mint commitment so a split
/// output cannot be re-attributed to another parent.
pub(crate) fn origin_digest(origin: &MintOrigin) -> Hash32 {
    match origin {
        MintOrigin::Faucet => Hash32::ZERO,
        MintOrigin::Split { parent } => {
            let burn_state = state_hash_at(parent, parent.transitions.len().saturating_sub(1));
            framed(
                tags::SPLIT_ORIGIN,
                &[parent.id().0.as_bytes(), burn_state.as_bytes()],
            )
        }
    }
}

/// What spending state `k` with `kind` commits to.
pub(crate) fn transition_tx_hash(
    id: TokenId,
    state: &StateHash,
    kind: &TransitionKind,
) -> TransactionHash {
    let mut parts: Vec<Vec<u8>> = vec![id.0.as_bytes().to_vec(), state.as_bytes().to_vec()];
    match kind {
        TransitionKind::Transfer { recipient, salt } => {
            parts.push(b"transfer".to_vec());
            parts.push(recipient.to_string().into_bytes());
            parts.push(salt.as_bytes().to_vec());
        }
        TransitionKind::Burn { outputs } => {
            parts.push(b"burn".to_vec());
            for output in outputs {
                parts.push(output.token_id.0.as_bytes().to_vec());
                parts.push(output.amount.base().to_be_bytes().to_vec());
                parts.push(output.recipient.to_string().into_bytes());
            }
        }
    }
    let slices: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
    TransactionHash::from(framed(tags::TRANSITION_TX, &slices))
}
