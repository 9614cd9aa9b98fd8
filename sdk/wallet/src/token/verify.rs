//! Verifying tokens: their structure, then their inclusion proofs.
//!
//! Checking a token is split in two so the proof-checking strategy can be
//! chosen: [`claims`] walks a token's history (and its split parents'),
//! checks the arithmetic and links that need no proof, and lists every
//! commitment the history claims the aggregator holds; [`check_claim`] then
//! verifies one such claim against the trust base (the certificate's
//! signature, the Merkle path, and that the proven commitment is the claimed
//! one). [`verify_bundles`] runs the claims of a set of bundles either
//! pairwise, as the shipped SDK did (every pair of bundles re-verifies both
//! bundles, O(B^2)), or across bundles (each distinct proof once).

use std::collections::HashSet;

use sphere_protocol::{
    certificate::TrustBase,
    hash::{Hash32, RequestId, TransactionHash},
    rpc::{InclusionProofResponse, ProofOutcome},
    signing::PublicKey,
};

use super::{
    MintOrigin, Token, TokenId, TransitionKind, genesis_tx_hash, mint_state, minter_key,
    origin_digest, state_hash_at, transition_tx_hash,
};
use crate::{amount::Amount, config::ProofCheck, perf};

/// Why a token is not valid.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    /// The history does not add up (amounts, links, owners).
    #[error("token `{token}` is malformed: {reason}")]
    Malformed {
        /// The token.
        token: TokenId,
        /// What is wrong.
        reason: String,
    },
    /// A proof does not verify or proves something else.
    #[error("token `{token}`: proof of `{request_id}` does not hold: {reason}")]
    BadProof {
        /// The token.
        token: TokenId,
        /// The commitment the proof is for.
        request_id: RequestId,
        /// What failed.
        reason: String,
    },
}

/// One commitment a token's history says the aggregator holds.
#[derive(Debug, Clone)]
pub struct ProofClaim<'a> {
    /// The token whose history makes the claim.
    pub token: TokenId,
    /// The request id the commitment must have.
    pub request_id: RequestId,
    /// What it must commit to.
    pub transaction_hash: TransactionHash,
    /// Who must have signed it.
    pub public_key: PublicKey,
    /// The proof carried for it.
    pub proof: &'a InclusionProofResponse,
}

impl ProofClaim<'_> {
    /// Two claims with the same key are the same check.
    fn dedup_key(&self) -> (Hash32, Hash32, u64) {
        (
            self.request_id.hash(),
            self.proof.certified_root.root,
            self.proof.certified_root.block_height,
        )
    }
}

fn malformed(token: TokenId, reason: impl Into<String>) -> TokenError {
    TokenError::Malformed {
        token,
        reason: reason.into(),
    }
}

/// Checks everything about `token` that needs no proof and lists the
/// claims its proofs must back, split parents included.
pub fn claims(token: &Token) -> Result<Vec<ProofClaim<'_>>, TokenError> {
    let mut out = Vec::new();
    collect_claims(token, &mut out)?;
    Ok(out)
}

fn collect_claims<'a>(token: &'a Token, out: &mut Vec<ProofClaim<'a>>) -> Result<(), TokenError> {
    let id = token.id();
    let genesis = &token.genesis;
    if genesis.amount == Amount::ZERO {
        return Err(malformed(id, "zero amount"));
    }
    if let MintOrigin::Split { parent } = &genesis.origin {
        let Some(TransitionKind::Burn { outputs }) = parent.transitions.last().map(|t| &t.kind)
        else {
            return Err(malformed(id, "split parent was not burned"));
        };
        if parent.coin() != token.coin() {
            return Err(malformed(id, "split output changes the coin"));
        }
        let listed = outputs.iter().any(|o| {
            o.token_id == id && o.amount == genesis.amount && o.recipient == genesis.recipient
        });
        if !listed {
            return Err(malformed(id, "not an output of its parent's burn"));
        }
        collect_claims(parent, out)?;
    }
    let minter = minter_key(id).public_key();
    let origin = origin_digest(&genesis.origin);
    out.push(ProofClaim {
        token: id,
        request_id: RequestId::derive(&minter, &mint_state(id)),
        transaction_hash: genesis_tx_hash(
            id,
            &genesis.coin,
            genesis.amount,
            &genesis.recipient,
            &genesis.salt,
            &origin,
        ),
        public_key: minter,
        proof: &genesis.proof,
    });
    for (index, transition) in token.transitions.iter().enumerate() {
        let owner = match token_owner_at(token, index) {
            Some(owner) => owner,
            None => {
                return Err(malformed(
                    id,
                    format!("transition {index} spends a burned state"),
                ));
            }
        };
        let public_key = owner
            .public_key()
            .map_err(|e| malformed(id, format!("owner of state {index}: {e}")))?;
        if let TransitionKind::Burn { outputs } = &transition.kind {
            let total = Amount::sum(outputs.iter().map(|o| o.amount))
                .ok_or_else(|| malformed(id, "burn outputs overflow"))?;
            if total != token.amount() || outputs.is_empty() {
                return Err(malformed(id, "burn outputs do not add up to the token"));
            }
        }
        let state = state_hash_at(token, index);
        out.push(ProofClaim {
            token: id,
            request_id: RequestId::derive(&public_key, &state),
            transaction_hash: transition_tx_hash(id, &state, &transition.kind),
            public_key,
            proof: &transition.proof,
        });
    }
    Ok(())
}

fn token_owner_at(token: &Token, k: usize) -> Option<crate::identity::Address> {
    if k == 0 {
        return Some(token.genesis.recipient.clone());
    }
    match &token.transitions[k - 1].kind {
        TransitionKind::Transfer { recipient, .. } => Some(recipient.clone()),
        TransitionKind::Burn { .. } => None,
    }
}

/// Verifies one claim against `trust`: one real signature check of the
/// certified root, one Merkle path, and the proven commitment's fields.
pub fn check_claim(claim: &ProofClaim<'_>, trust: &TrustBase) -> Result<(), TokenError> {
    perf::incr(perf::names::PROOF_VERIFY);
    let bad = |reason: String| TokenError::BadProof {
        token: claim.token,
        request_id: claim.request_id,
        reason,
    };
    match claim.proof.verify_request(trust, &claim.request_id) {
        Ok(ProofOutcome::Included(commitment)) => {
            if commitment.transaction_hash != claim.transaction_hash {
                return Err(bad("commitment is for another transaction".into()));
            }
            if commitment.authenticator.public_key != claim.public_key {
                return Err(bad("commitment is signed by another key".into()));
            }
            Ok(())
        }
        Ok(ProofOutcome::Excluded) => Err(bad("the aggregator proves it absent".into())),
        Err(error) => Err(bad(error.to_string())),
    }
}

/// Verifies a whole token: structure, then every proof once.
pub fn verify_token(token: &Token, trust: &TrustBase) -> Result<(), TokenError> {
    for claim in claims(token)? {
        check_claim(&claim, trust)?;
    }
    Ok(())
}

/// How much checking [`verify_bundles`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct VerifyReport {
    /// Proofs verified, repeats included.
    pub verifications: u64,
    /// Distinct proofs among them.
    pub distinct: u64,
}

/// Verifies the tokens of several bundles with the chosen strategy.
pub fn verify_bundles(
    bundles: &[Vec<Token>],
    trust: &TrustBase,
    strategy: ProofCheck,
) -> Result<VerifyReport, TokenError> {
    let _timer = perf::time(perf::names::VERIFY_PROOFS);
    let per_bundle: Vec<Vec<ProofClaim<'_>>> = bundles
        .iter()
        .map(|tokens| {
            let mut all = Vec::new();
            for token in tokens {
                all.extend(claims(token)?);
            }
            Ok(all)
        })
        .collect::<Result<_, TokenError>>()?;
    let distinct = per_bundle
        .iter()
        .flatten()
        .map(ProofClaim::dedup_key)
        .collect::<HashSet<_>>()
        .len() as u64;
    let mut verifications = 0_u64;
    let mut check_all = |claims: &[ProofClaim<'_>]| -> Result<(), TokenError> {
        for claim in claims {
            check_claim(claim, trust)?;
            verifications += 1;
        }
        Ok(())
    };
    match strategy {
        ProofCheck::Across => {
            let mut seen = HashSet::new();
            let unique: Vec<ProofClaim<'_>> = per_bundle
                .iter()
                .flatten()
                .filter(|c| seen.insert(c.dedup_key()))
                .cloned()
                .collect();
            check_all(&unique)?;
        }
        ProofCheck::Pairwise if per_bundle.len() < 2 => {
            for claims in &per_bundle {
                check_all(claims)?;
            }
        }
        ProofCheck::Pairwise => {
            // Each pair of bundles is reconciled by re-verifying both sides:
            // the shape of the shipped SDK's hotspot, kept on purpose.
            for i in 0..per_bundle.len() {
                for j in (i + 1)..per_bundle.len() {
                    check_all(&per_bundle[i])?;
                    check_all(&per_bundle[j])?;
                }
            }
        }
    }
    Ok(VerifyReport {
        verifications,
        distinct,
    })
}
