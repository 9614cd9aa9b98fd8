//! Read-only views of a wallet: balance, tokens, invoices, ledgers. Each is
//! sorted and shaped so that two devices with the same state produce
//! byte-identical JSON, which is what the scenario's assertions compare.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{
    Wallet, WalletError,
    payments::{ReceivedEntry, received_prefix},
    records::{InvoiceRole, InvoiceState, SentEntry, sent_prefix},
};
use sphere_protocol::{hash::RequestId, rpc::ProofOutcome};

use crate::amount::{Amount, CoinId};

/// The balance of one coin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CoinBalance {
    /// The coin.
    pub symbol: CoinId,
    /// Value of the proven tokens held.
    pub confirmed: Amount,
    /// Value whose proofs are still pending: always zero here, because this
    /// SDK takes a token in only once every proof in it verifies.
    pub unconfirmed: Amount,
    /// How many tokens.
    pub tokens: usize,
}

/// A wallet's balance, per coin, with a one-line text form.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Balance {
    /// One entry per coin held, sorted by symbol.
    pub coins: Vec<CoinBalance>,
    /// E.g. `UCT: 99.999999999989 (1 token)`; coins joined by `, `.
    pub text: String,
}

/// One token, as `tokens` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenView {
    /// Token id.
    pub id: String,
    /// Coin.
    pub coin: CoinId,
    /// Value, in coin units.
    pub amount: String,
    /// Hash of the current state.
    pub state_hash: String,
}

/// One invoice, as `invoice_list` lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoiceView {
    /// Invoice id.
    pub id: String,
    /// Amount asked, in coin units.
    pub amount: String,
    /// Coin.
    pub coin: CoinId,
    /// OPEN, PARTIAL or COVERED.
    pub state: InvoiceState,
    /// Payee or payer.
    pub role: InvoiceRole,
    /// Amount paid so far, in coin units.
    pub paid: String,
}

/// The wallet's ledgers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryView {
    /// Payments made, by transfer id.
    pub sent: Vec<SentEntry>,
    /// Transfers received, by transfer id.
    pub received: Vec<ReceivedEntry>,
}

impl Wallet {
    /// Per-coin balance of the tokens held.
    pub async fn balance(&self) -> Result<Balance, WalletError> {
        let state = self.lock().await;
        let mut coins: BTreeMap<CoinId, CoinBalance> = BTreeMap::new();
        for token in state.tokens.values() {
            let entry = coins
                .entry(token.coin().clone())
                .or_insert_with(|| CoinBalance {
                    symbol: token.coin().clone(),
                    confirmed: Amount::ZERO,
                    unconfirmed: Amount::ZERO,
                    tokens: 0,
                });
            entry.confirmed = entry
                .confirmed
                .checked_add(token.amount())
                .ok_or_else(|| WalletError::Invalid("balance overflows".into()))?;
            entry.tokens += 1;
        }
        let coins: Vec<CoinBalance> = coins.into_values().collect();
        let text = if coins.is_empty() {
            "no tokens".to_owned()
        } else {
            coins
                .iter()
                .map(|c| {
                    let noun = if c.tokens == 1 { "token" } else { "tokens" };
                    format!("{}: {} ({} {noun})", c.symbol, c.confirmed, c.tokens)
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        Ok(Balance { coins, text })
    }

    /// Every token held, sorted by id.
    pub async fn tokens(&self) -> Result<Vec<TokenView>, WalletError> {
        let state = self.lock().await;
        Ok(state
            .tokens
            .values()
            .map(|t| TokenView {
                id: t.id().to_string(),
                coin: t.coin().clone(),
                amount: t.amount().to_string(),
                state_hash: t.current_state().to_string(),
            })
            .collect())
    }

    /// Invoices, optionally only those in `state`, sorted by id.
    pub async fn invoice_list(
        &self,
        state: Option<InvoiceState>,
    ) -> Result<Vec<InvoiceView>, WalletError> {
        self.confirm_unspent().await?;
        let mut views: Vec<InvoiceView> = self
            .invoices()
            .await?
            .into_iter()
            .filter(|i| state.is_none_or(|s| i.state() == s))
            .map(|i| InvoiceView {
                state: i.state(),
                paid: i.paid().to_string(),
                id: i.id,
                amount: i.amount.to_string(),
                coin: i.coin,
                role: i.role,
            })
            .collect();
        views.sort_by(|a, b| a.id.cmp(&b.id));
        Ok(views)
    }

    /// Confirms each token held against the aggregator's current root: every
    /// commitment its history claims is still included (a fresh proof per
    /// claim, verified), and it is unspent at the state this device has (the
    /// request id a spend from that state would use is not committed). A
    /// ledger is only as true as its tokens, so ledger reads (invoice list
    /// and status, history) confirm first: one aggregator round trip and one
    /// proof verification per claim and per token.
    async fn confirm_unspent(&self) -> Result<(), WalletError> {
        let tokens: Vec<crate::token::Token> = {
            let state = self.lock().await;
            state.tokens.values().cloned().collect()
        };
        if tokens.is_empty() {
            return Ok(());
        }
        let aggregator = &self.services().aggregator;
        let trust = aggregator.trust_base().await?;
        for token in &tokens {
            for claim in crate::token::verify::claims(token)? {
                let proof = aggregator.inclusion_proof(&claim.request_id).await?;
                let confirmed = matches!(
                    proof.verify_request(&trust, &claim.request_id),
                    Ok(ProofOutcome::Included(ref c)) if c.transaction_hash == claim.transaction_hash
                );
                if !confirmed {
                    return Err(WalletError::Verification(format!(
                        "token `{}`: the aggregator no longer confirms request `{}`",
                        token.id(),
                        claim.request_id
                    )));
                }
            }
        }
        let owner = self.inner.keys.signing_key().public_key();
        let states = tokens.iter().map(|t| (t.id(), t.current_state()));
        for (token, current) in states {
            let request = RequestId::derive(&owner, &current);
            let proof = aggregator.inclusion_proof(&request).await?;
            match proof.verify_request(&trust, &request) {
                Ok(ProofOutcome::Excluded) => {}
                Ok(ProofOutcome::Included(_)) => tracing::warn!(
                    wallet = %self.name(),
                    %token,
                    "token spent elsewhere; this device's ledger is behind until it syncs"
                ),
                Err(e) => {
                    return Err(WalletError::Verification(format!(
                        "spent-check of token `{token}`: {e}"
                    )));
                }
            }
        }
        Ok(())
    }

    /// The state of invoice `id`.
    pub async fn invoice_status(&self, id: &str) -> Result<InvoiceState, WalletError> {
        self.confirm_unspent().await?;
        self.invoices()
            .await?
            .into_iter()
            .find(|i| i.id == id)
            .map(|i| i.state())
            .ok_or_else(|| {
                WalletError::NotFound(format!(
                    "invoice `{id}` is not known to wallet `{}`",
                    self.name()
                ))
            })
    }

    /// Payments made and transfers received.
    pub async fn history(&self) -> Result<HistoryView, WalletError> {
        self.confirm_unspent().await?;
        let state = self.lock().await;
        let sent = state
            .scan_json::<SentEntry>(&sent_prefix(self.address()))?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        let received = state
            .scan_json::<ReceivedEntry>(&received_prefix(self.address()))?
            .into_iter()
            .map(|(_, e)| e)
            .collect();
        Ok(HistoryView { sent, received })
    }
}
