//! What a wallet keeps in its profile, and the messages it sends over Nostr.
//!
//! Profile keys (values are JSON, encrypted by the profile):
//! - `tokens.bundle.<cid>`: a [`BundleRef`];
//! - `<address>.outbox.<id>`: an [`OutboxEntry`], a payment in progress;
//! - `<address>.sent.<id>`: a [`SentEntry`], the ledger of payments made;
//! - `<address>.tombstones`: the ids of spent tokens (one blob, merged as a
//!   set union across devices);
//! - `invoices.<id>`: an [`Invoice`], created here or received;
//! - `nametag`: the wallet's registered nametag.

use serde::{Deserialize, Serialize};

use crate::{
    amount::{Amount, CoinId},
    identity::Address,
    token::{Token, TokenId, ops::SpendPlan},
};

/// Prefix of bundle-ref keys.
pub const BUNDLE_PREFIX: &str = "tokens.bundle.";
/// Prefix of invoice keys.
pub const INVOICE_PREFIX: &str = "invoices.";
/// Key of the registered nametag.
pub const NAMETAG_KEY: &str = "nametag";

/// Key of the bundle ref for `cid`.
pub fn bundle_key(cid: &str) -> String {
    format!("{BUNDLE_PREFIX}{cid}")
}

/// Prefix of `address`'s outbox keys.
pub fn outbox_prefix(address: &Address) -> String {
    format!("{address}.outbox.")
}

/// Prefix of `address`'s SENT ledger keys.
pub fn sent_prefix(address: &Address) -> String {
    format!("{address}.sent.")
}

/// Key of `address`'s tombstone blob.
pub fn tombstones_key(address: &Address) -> String {
    format!("{address}.tombstones")
}

/// Key of invoice `id`.
pub fn invoice_key(id: &str) -> String {
    format!("{INVOICE_PREFIX}{id}")
}

/// Whether a bundle still counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BundleStatus {
    /// Loaded on recovery.
    Active,
    /// Replaced by a consolidated bundle; kept for history only.
    Superseded,
}

/// A bundle the profile points at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BundleRef {
    /// The bundle's root CID.
    pub cid: String,
    /// Active or superseded.
    pub status: BundleStatus,
    /// When it was built (ms since the Unix epoch).
    pub created_at_ms: u64,
    /// How many tokens it holds.
    pub token_count: usize,
}

/// Where a payment is. Transitions only go forward, one step at a time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OutboxState {
    /// Planned and persisted; nothing sent yet.
    Created,
    /// The spend's commitment went to the aggregator.
    Submitted,
    /// The spend and any mints are proven.
    Proven,
    /// The tokens were sent to the payee.
    Delivered,
    /// Ledger and tombstones written; done.
    Completed,
}

/// A refused outbox transition.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("outbox `{id}`: cannot go from {from:?} to {to:?}")]
pub struct OutboxTransitionError {
    /// The outbox entry.
    pub id: String,
    /// Its state.
    pub from: OutboxState,
    /// The state asked for.
    pub to: OutboxState,
}

/// Who is paid, and how to reach them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payee {
    /// Their wallet address (owner of the tokens they receive).
    pub address: Address,
    /// Their Nostr public key (hex), for delivery.
    pub nostr_pubkey: String,
}

/// A payment in progress, persisted before anything leaves the wallet so a
/// restart can finish it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboxEntry {
    /// Also the transfer id the payee sees.
    pub id: String,
    /// Where it is.
    pub state: OutboxState,
    /// The spend, with every random choice made.
    pub plan: SpendPlan,
    /// Who is paid.
    pub payee: Payee,
    /// How much the payee gets.
    pub amount: Amount,
    /// The invoice it pays, if any.
    pub invoice_id: Option<String>,
    /// When it was created (ms since the Unix epoch).
    pub created_at_ms: u64,
}

impl OutboxEntry {
    /// Moves to `to`, which must be the next state.
    pub fn advance(&mut self, to: OutboxState) -> Result<(), OutboxTransitionError> {
        let next = match self.state {
            OutboxState::Created => Some(OutboxState::Submitted),
            OutboxState::Submitted => Some(OutboxState::Proven),
            OutboxState::Proven => Some(OutboxState::Delivered),
            OutboxState::Delivered => Some(OutboxState::Completed),
            OutboxState::Completed => None,
        };
        if next == Some(to) {
            self.state = to;
            Ok(())
        } else {
            Err(OutboxTransitionError {
                id: self.id.clone(),
                from: self.state,
                to,
            })
        }
    }
}

/// One payment made, in the SENT ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SentEntry {
    /// The transfer id.
    pub transfer_id: String,
    /// The payee's address.
    pub to: Address,
    /// The coin.
    pub coin: CoinId,
    /// The amount paid.
    pub amount: Amount,
    /// The tokens delivered.
    pub token_ids: Vec<TokenId>,
    /// The invoice paid, if any.
    pub invoice_id: Option<String>,
}

/// One payment toward an invoice.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InvoicePayment {
    /// The transfer that paid it.
    pub transfer_id: String,
    /// How much.
    pub amount: Amount,
    /// The tokens that carried it.
    pub token_ids: Vec<TokenId>,
}

/// Who made an invoice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InvoiceRole {
    /// This wallet asks to be paid.
    Payee,
    /// This wallet was asked to pay.
    Payer,
}

/// The state of an invoice, from its payments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum InvoiceState {
    /// Nothing paid.
    Open,
    /// Paid in part.
    Partial,
    /// Paid in full (or more).
    Covered,
}

/// A request for payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Invoice {
    /// Random id.
    pub id: String,
    /// What is asked.
    pub amount: Amount,
    /// In which coin.
    pub coin: CoinId,
    /// Free text.
    pub memo: Option<String>,
    /// Who is to be paid.
    pub payee: Payee,
    /// This wallet's side of it (not sent over the wire as such; the
    /// receiver sets its own).
    pub role: InvoiceRole,
    /// Payments seen: received for a payee, made for a payer.
    pub payments: Vec<InvoicePayment>,
}

impl Invoice {
    /// Total paid so far.
    pub fn paid(&self) -> Amount {
        Amount::sum(self.payments.iter().map(|p| p.amount)).unwrap_or(Amount::from_base(u128::MAX))
    }

    /// Open, partial or covered.
    pub fn state(&self) -> InvoiceState {
        let paid = self.paid();
        if paid == Amount::ZERO {
            InvoiceState::Open
        } else if paid < self.amount {
            InvoiceState::Partial
        } else {
            InvoiceState::Covered
        }
    }

    /// Records a payment once (by transfer id); returns whether it was new.
    pub fn record_payment(&mut self, payment: InvoicePayment) -> bool {
        if self
            .payments
            .iter()
            .any(|p| p.transfer_id == payment.transfer_id)
        {
            return false;
        }
        self.payments.push(payment);
        true
    }
}

/// A token transfer sent over Nostr (encrypted to the payee).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransferMessage {
    /// Format version.
    pub v: u32,
    /// The payer's outbox id.
    pub transfer_id: String,
    /// The invoice it pays, if any.
    pub invoice_id: Option<String>,
    /// The payer's address.
    pub from: Address,
    /// The tokens, with their histories and proofs.
    pub tokens: Vec<Token>,
}

/// An invoice sent over Nostr (gift-wrapped to the payer).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InvoiceMessage {
    /// Format version.
    pub v: u32,
    /// The invoice as the payee holds it.
    pub invoice: Invoice,
}
