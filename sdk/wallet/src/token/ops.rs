//! Minting, transferring and splitting tokens through the aggregator.
//!
//! Every operation is a *plan* (all random choices made up front, so it can
//! be persisted) and an idempotent execution: re-running a plan after a crash
//! re-signs the same commitments (ECDSA signing here is deterministic),
//! which the aggregator answers with `ALREADY_COMMITTED`, and then fetches the
//! same proofs. A token is never half-spent in a way a restart cannot finish.

use serde::{Deserialize, Serialize};
use sphere_protocol::{commitment::Commitment, hash::Hash32, signing::SecretKey};

use super::{
    Genesis, MintOrigin, SplitOutput, Token, TokenId, Transition, TransitionKind, genesis_tx_hash,
    mint_state, minter_key, origin_digest, transition_tx_hash,
};
use crate::{
    amount::{Amount, CoinId},
    config::Timers,
    identity::Address,
    transport::aggregator::{AggregatorClient, AggregatorError},
};

/// Why a token operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TokenOpError {
    /// The aggregator refused or could not be reached.
    #[error(transparent)]
    Aggregator(Box<AggregatorError>),
    /// The plan does not fit the token (wrong owner, bad amounts).
    #[error("cannot {operation} token `{token}`: {reason}")]
    Invalid {
        /// What was attempted.
        operation: &'static str,
        /// The token.
        token: TokenId,
        /// Why not.
        reason: String,
    },
}

impl From<AggregatorError> for TokenOpError {
    fn from(error: AggregatorError) -> Self {
        TokenOpError::Aggregator(Box::new(error))
    }
}

/// A mint with every random choice made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MintPlan {
    /// The new token's id.
    pub token_id: TokenId,
    /// Its coin.
    pub coin: CoinId,
    /// Its value.
    pub amount: Amount,
    /// Its first owner.
    pub recipient: Address,
    /// Salt of state 0.
    pub salt: Hash32,
}

impl MintPlan {
    /// A faucet mint of `amount` to `recipient`.
    pub fn faucet(coin: CoinId, amount: Amount, recipient: Address) -> MintPlan {
        MintPlan {
            token_id: TokenId::random(),
            coin,
            amount,
            recipient,
            salt: Hash32(rand::random()),
        }
    }
}

/// A spend of a token's current state, with every random choice made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpendPlan {
    /// The token as it was when planned.
    pub token: Token,
    /// What the spend does.
    pub kind: TransitionKind,
    /// For a burn: the salts of the outputs' state 0, in output order.
    pub output_salts: Vec<Hash32>,
}

impl SpendPlan {
    /// Transfer the whole token to `recipient`.
    pub fn transfer(token: Token, recipient: Address) -> SpendPlan {
        SpendPlan {
            token,
            kind: TransitionKind::Transfer {
                recipient,
                salt: Hash32(rand::random()),
            },
            output_salts: Vec::new(),
        }
    }

    /// Burn the token into outputs of the given amounts and recipients,
    /// which must add up to the token's amount.
    pub fn split(token: Token, outputs: Vec<(Amount, Address)>) -> Result<SpendPlan, TokenOpError> {
        let invalid = |reason: &str| TokenOpError::Invalid {
            operation: "split",
            token: token.id(),
            reason: reason.to_owned(),
        };
        let total = Amount::sum(outputs.iter().map(|(a, _)| *a))
            .ok_or_else(|| invalid("outputs overflow"))?;
        if total != token.amount() {
            return Err(invalid("outputs do not add up to the token's amount"));
        }
        if outputs.iter().any(|(a, _)| *a == Amount::ZERO) {
            return Err(invalid("an output is zero"));
        }
        let outputs: Vec<SplitOutput> = outputs
            .into_iter()
            .map(|(amount, recipient)| SplitOutput {
                token_id: TokenId::random(),
                amount,
                recipient,
            })
            .collect();
        let output_salts = outputs.iter().map(|_| Hash32(rand::random())).collect();
        Ok(SpendPlan {
            token,
            kind: TransitionKind::Burn { outputs },
            output_salts,
        })
    }
}

/// Executes a mint: commit, wait for inclusion, assemble the token.
pub async fn mint(
    aggregator: &AggregatorClient,
    timers: &Timers,
    plan: &MintPlan,
    origin: MintOrigin,
) -> Result<Token, TokenOpError> {
    let id = plan.token_id;
    let tx = genesis_tx_hash(
        id,
        &plan.coin,
        plan.amount,
        &plan.recipient,
        &plan.salt,
        &origin_digest(&origin),
    );
    let commitment = Commitment::sign(&minter_key(id), mint_state(id), tx);
    aggregator.submit(&commitment).await?;
    let (_, proof) = aggregator
        .wait_for_inclusion(
            &commitment.request_id,
            timers.proof_deadline(),
            timers.proof_poll(),
        )
        .await?;
    Ok(Token {
        genesis: Genesis {
            token_id: id,
            coin: plan.coin.clone(),
            amount: plan.amount,
            recipient: plan.recipient.clone(),
            salt: plan.salt,
            origin,
            proof,
        },
        transitions: Vec::new(),
    })
}

/// What a spend produced.
#[derive(Debug, Clone, PartialEq)]
pub struct SpendOutcome {
    /// The spent token with its new transition.
    pub spent: Token,
    /// For a burn, the minted outputs in output order; empty for a transfer.
    pub minted: Vec<Token>,
}

/// Executes a spend signed by `owner`: commit the transition, wait for its
/// proof, and for a burn mint every output.
pub async fn spend(
    aggregator: &AggregatorClient,
    timers: &Timers,
    plan: &SpendPlan,
    owner: &SecretKey,
) -> Result<SpendOutcome, TokenOpError> {
    let token = &plan.token;
    let owner_address = Address::from_public_key(&owner.public_key());
    if !token.is_spendable_by(&owner_address) {
        return Err(TokenOpError::Invalid {
            operation: "spend",
            token: token.id(),
            reason: format!("it is not held by `{owner_address}`"),
        });
    }
    let state = token.current_state();
    let tx = transition_tx_hash(token.id(), &state, &plan.kind);
    let commitment = Commitment::sign(owner, state, tx);
    aggregator.submit(&commitment).await?;
    let (_, proof) = aggregator
        .wait_for_inclusion(
            &commitment.request_id,
            timers.proof_deadline(),
            timers.proof_poll(),
        )
        .await?;
    let mut spent = token.clone();
    spent.transitions.push(Transition {
        kind: plan.kind.clone(),
        proof,
    });
    let mut minted = Vec::new();
    if let TransitionKind::Burn { outputs } = &plan.kind {
        for (output, salt) in outputs.iter().zip(&plan.output_salts) {
            let mint_plan = MintPlan {
                token_id: output.token_id,
                coin: token.coin().clone(),
                amount: output.amount,
                recipient: output.recipient.clone(),
                salt: *salt,
            };
            let origin = MintOrigin::Split {
                parent: Box::new(spent.clone()),
            };
            minted.push(mint(aggregator, timers, &mint_plan, origin).await?);
        }
    }
    Ok(SpendOutcome { spent, minted })
}
