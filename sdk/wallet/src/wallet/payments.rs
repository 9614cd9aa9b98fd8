//! Value in and out: faucet mints, nametags, invoices, payments and
//! incoming transfers.
//!
//! A payment is an [`OutboxEntry`] persisted before anything leaves the
//! wallet, then driven forward one recorded state at a time; every step is
//! idempotent, so a peer killed at any point finishes the payment when the
//! wallet is next opened. An incoming transfer is stored at once but
//! acknowledged only after a flush has made it durable off-device, so a
//! relay replay after a crash is recognised (by token id) and not counted
//! twice.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{
    State, Wallet, WalletError,
    records::{
        INVOICE_PREFIX, Invoice, InvoiceMessage, InvoicePayment, InvoiceRole, InvoiceState,
        NAMETAG_KEY, OutboxEntry, OutboxState, Payee, SentEntry, TransferMessage, invoice_key,
        outbox_prefix, sent_prefix, tombstones_key,
    },
};
use crate::{
    amount::{Amount, CoinId},
    identity::{Address, Nametag},
    perf,
    store::Table,
    token::{
        MintOrigin, Token,
        ops::{self, MintPlan, SpendPlan},
        verify::verify_token,
    },
};

/// What `receive` did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceiveReport {
    /// Tokens newly taken in.
    pub received: usize,
    /// Whether they were flushed (and so acknowledged) before answering.
    pub finalized: bool,
}

/// One transfer received, in the wallet's received ledger.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReceivedEntry {
    /// The payer's transfer id.
    pub transfer_id: String,
    /// The payer.
    pub from: Address,
    /// Total value received.
    pub amount: Amount,
    /// The tokens.
    pub token_ids: Vec<crate::token::TokenId>,
    /// The invoice paid, if any.
    pub invoice_id: Option<String>,
}

/// Prefix of `address`'s received-ledger keys.
pub(super) fn received_prefix(address: &Address) -> String {
    format!("{address}.received.")
}

impl Wallet {
    /// Mints `amount` of `coin` to this wallet.
    pub async fn faucet(&self, coin: CoinId, amount: Amount) -> Result<Vec<String>, WalletError> {
        if amount == Amount::ZERO {
            return Err(WalletError::Invalid(
                "faucet amount must be positive".into(),
            ));
        }
        let services = self.services().clone();
        let plan = MintPlan::faucet(coin, amount, self.address().clone());
        let token = ops::mint(
            &services.aggregator,
            &services.timers,
            &plan,
            MintOrigin::Faucet,
        )
        .await?;
        let id = token.id().to_string();
        let mut state = self.lock().await;
        state.save_token(token)?;
        state.meta.dirty = true;
        state.save_meta()?;
        drop(state);
        self.schedule_flush();
        Ok(vec![id])
    }

    /// Claims `nametag` for this wallet (first come, first served).
    pub(super) async fn register_nametag(&self, nametag: &Nametag) -> Result<(), WalletError> {
        let nostr = self.nostr()?;
        if let Some(existing) = nostr.resolve_nametag(nametag.as_str()).await?
            && existing.address != self.address().as_str()
        {
            return Err(WalletError::Invalid(format!(
                "nametag `{nametag}` is already registered to `{}`",
                existing.address
            )));
        }
        nostr
            .publish_nametag(nametag.as_str(), self.address().as_str())
            .await?;
        let services = self.services().clone();
        let mut state = self.lock().await;
        state
            .put_json(&services, NAMETAG_KEY, &nametag.as_str())
            .await?;
        state.save_meta()?;
        drop(state);
        self.schedule_flush();
        Ok(())
    }

    /// The wallet's nametag, if it registered one.
    pub async fn nametag(&self) -> Result<Option<String>, WalletError> {
        self.lock().await.get_json(NAMETAG_KEY)
    }

    /// Creates an invoice asking for `amount` of `coin`.
    pub async fn invoice_create(
        &self,
        amount: Amount,
        coin: CoinId,
        memo: Option<String>,
    ) -> Result<String, WalletError> {
        if amount == Amount::ZERO {
            return Err(WalletError::Invalid(
                "invoice amount must be positive".into(),
            ));
        }
        let invoice = Invoice {
            id: super::random_id(),
            amount,
            coin,
            memo,
            payee: Payee {
                address: self.address().clone(),
                nostr_pubkey: self.inner.keys.nostr_keys().public_key().to_hex(),
            },
            role: InvoiceRole::Payee,
            payments: Vec::new(),
        };
        let services = self.services().clone();
        let mut state = self.lock().await;
        state
            .put_json(&services, &invoice_key(&invoice.id), &invoice)
            .await?;
        state.save_meta()?;
        drop(state);
        self.schedule_flush();
        Ok(invoice.id)
    }

    async fn invoice(&self, id: &str) -> Result<Invoice, WalletError> {
        self.lock()
            .await
            .get_json::<Invoice>(&invoice_key(id))?
            .ok_or_else(|| {
                WalletError::NotFound(format!(
                    "invoice `{id}` is not known to wallet `{}`",
                    self.name()
                ))
            })
    }

    /// Sends invoice `id` to the wallet registered as `to`, encrypted.
    pub async fn invoice_deliver(&self, id: &str, to: &Nametag) -> Result<bool, WalletError> {
        let invoice = self.invoice(id).await?;
        let nostr = self.nostr()?;
        let record = nostr
            .resolve_nametag(to.as_str())
            .await?
            .ok_or_else(|| WalletError::NotFound(format!("nametag `{to}` is not registered")))?;
        let message = serde_json::to_string(&InvoiceMessage { v: 1, invoice })?;
        nostr
            .send_private_message(&record.nostr_pubkey, &message)
            .await?;
        Ok(true)
    }

    /// Waits up to `timeout` until invoice `id` is known here (delivered over
    /// Nostr, or synced from another device), and, when `state` is given,
    /// until it is in that state.
    pub async fn invoice_await(
        &self,
        id: &str,
        timeout: Duration,
        state: Option<InvoiceState>,
    ) -> Result<bool, WalletError> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if self.invoice_in_state(id, state).await? {
                return Ok(true);
            }
            if let Some(nostr) = &self.inner.nostr {
                for message in nostr.fetch_private_messages().await? {
                    let Ok(InvoiceMessage { invoice, .. }) = serde_json::from_str(&message.payload)
                    else {
                        continue;
                    };
                    if invoice.id == id {
                        self.store_received_invoice(invoice).await?;
                    }
                }
                if self.invoice_in_state(id, state).await? {
                    return Ok(true);
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return Ok(false);
            }
            self.sync().await?;
            if self.inner.nostr.is_some() {
                self.receive(false).await?;
            }
            perf::waited(
                perf::Wait::Poll,
                tokio::time::sleep(super::poll_interval(&self.services().timers)),
            )
            .await;
        }
    }

    async fn invoice_in_state(
        &self,
        id: &str,
        state: Option<InvoiceState>,
    ) -> Result<bool, WalletError> {
        match self.invoice(id).await {
            Ok(invoice) => Ok(state.is_none_or(|wanted| invoice.state() == wanted)),
            Err(WalletError::NotFound(_)) => Ok(false),
            Err(other) => Err(other),
        }
    }

    async fn store_received_invoice(&self, mut invoice: Invoice) -> Result<(), WalletError> {
        invoice.role = InvoiceRole::Payer;
        invoice.payments.clear();
        let services = self.services().clone();
        let mut state = self.lock().await;
        if state
            .get_json::<Invoice>(&invoice_key(&invoice.id))?
            .is_none()
        {
            state
                .put_json(&services, &invoice_key(&invoice.id), &invoice)
                .await?;
            state.save_meta()?;
            drop(state);
            self.schedule_flush();
        }
        Ok(())
    }

    /// Pays what is still due on invoice `id`; returns the transfer id.
    pub async fn invoice_pay(&self, id: &str) -> Result<String, WalletError> {
        let services = self.services().clone();
        let mut state = self.lock().await;
        let invoice = state
            .get_json::<Invoice>(&invoice_key(id))?
            .ok_or_else(|| {
                WalletError::NotFound(format!(
                    "invoice `{id}` is not known to wallet `{}`",
                    self.name()
                ))
            })?;
        if invoice.role == InvoiceRole::Payee {
            return Err(WalletError::Invalid(format!(
                "invoice `{id}` is this wallet's own; the payer pays it"
            )));
        }
        let due = invoice
            .amount
            .checked_sub(invoice.paid())
            .filter(|due| *due > Amount::ZERO)
            .ok_or_else(|| WalletError::Invalid(format!("invoice `{id}` is already covered")))?;
        let token = state
            .tokens
            .values()
            .filter(|t| t.coin() == &invoice.coin && t.amount() >= due)
            .min_by_key(|t| t.amount())
            .cloned()
            .ok_or_else(|| {
                WalletError::InsufficientFunds(format!(
                    "no single {} token of at least {due} in wallet `{}` (payments combine no tokens yet)",
                    invoice.coin,
                    self.name()
                ))
            })?;
        let plan = if token.amount() == due {
            SpendPlan::transfer(token, invoice.payee.address.clone())
        } else {
            let change = token.amount().checked_sub(due).unwrap_or(Amount::ZERO);
            SpendPlan::split(
                token,
                vec![
                    (due, invoice.payee.address.clone()),
                    (change, self.address().clone()),
                ],
            )?
        };
        let entry = OutboxEntry {
            id: super::random_id(),
            state: OutboxState::Created,
            plan,
            payee: invoice.payee.clone(),
            amount: due,
            invoice_id: Some(invoice.id.clone()),
            created_at_ms: super::now_ms(),
        };
        let key = format!("{}{}", outbox_prefix(self.address()), entry.id);
        state.put_json(&services, &key, &entry).await?;
        state.save_meta()?;
        let transfer_id = self.drive_outbox(&mut state, entry).await?;
        drop(state);
        self.schedule_flush();
        Ok(transfer_id)
    }

    /// Finishes every payment a crash interrupted.
    pub(super) async fn resume_outbox(&self) -> Result<(), WalletError> {
        let mut state = self.lock().await;
        let pending: Vec<OutboxEntry> = state
            .scan_json::<OutboxEntry>(&outbox_prefix(self.address()))?
            .into_iter()
            .map(|(_, e)| e)
            .filter(|e| e.state != OutboxState::Completed)
            .collect();
        for entry in pending {
            let id = entry.id.clone();
            if let Err(error) = self.drive_outbox(&mut state, entry).await {
                tracing::warn!(wallet = %self.name(), outbox = %id, %error, "cannot finish an interrupted payment yet");
            }
        }
        Ok(())
    }

    /// Drives `entry` from its recorded state to completed.
    async fn drive_outbox(
        &self,
        state: &mut State,
        mut entry: OutboxEntry,
    ) -> Result<String, WalletError> {
        let services = self.services().clone();
        let key = format!("{}{}", outbox_prefix(self.address()), entry.id);
        if entry.state == OutboxState::Created {
            advance(state, &services, &key, &mut entry, OutboxState::Submitted).await?;
        }
        // Re-running the spend is idempotent: the aggregator answers
        // ALREADY_COMMITTED and the same proofs come back.
        let outcome = ops::spend(
            &services.aggregator,
            &services.timers,
            &entry.plan,
            self.inner.keys.signing_key(),
        )
        .await?;
        let (delivered, change): (Vec<Token>, Vec<Token>) = if outcome.minted.is_empty() {
            (vec![outcome.spent.clone()], Vec::new())
        } else {
            outcome
                .minted
                .iter()
                .cloned()
                .partition(|t| t.is_spendable_by(&entry.payee.address))
        };
        if entry.state == OutboxState::Submitted {
            let spent_id = entry.plan.token.id();
            state.drop_token(spent_id)?;
            for token in change {
                state.save_token(token)?;
            }
            let mut tombstones = state.tombstones(self.address())?;
            tombstones.insert(spent_id.to_string());
            state
                .put_json(&services, &tombstones_key(self.address()), &tombstones)
                .await?;
            advance(state, &services, &key, &mut entry, OutboxState::Proven).await?;
        }
        if entry.state == OutboxState::Proven {
            let message = TransferMessage {
                v: 1,
                transfer_id: entry.id.clone(),
                invoice_id: entry.invoice_id.clone(),
                from: self.address().clone(),
                tokens: delivered.clone(),
            };
            let payee_key = entry.payee.nostr_pubkey.parse().map_err(|_| {
                WalletError::Invalid(format!(
                    "payee nostr key `{}` is not valid",
                    entry.payee.nostr_pubkey
                ))
            })?;
            self.nostr()?
                .send_transfer(&payee_key, &serde_json::to_string(&message)?)
                .await?;
            advance(state, &services, &key, &mut entry, OutboxState::Delivered).await?;
        }
        if entry.state == OutboxState::Delivered {
            let token_ids: Vec<_> = delivered.iter().map(Token::id).collect();
            let sent = SentEntry {
                transfer_id: entry.id.clone(),
                to: entry.payee.address.clone(),
                coin: entry.plan.token.coin().clone(),
                amount: entry.amount,
                token_ids: token_ids.clone(),
                invoice_id: entry.invoice_id.clone(),
            };
            state
                .put_json(
                    &services,
                    &format!("{}{}", sent_prefix(self.address()), entry.id),
                    &sent,
                )
                .await?;
            if let Some(invoice_id) = &entry.invoice_id {
                let payment = InvoicePayment {
                    transfer_id: entry.id.clone(),
                    amount: entry.amount,
                    token_ids,
                };
                record_invoice_payment(state, &services, invoice_id, InvoiceRole::Payer, payment)
                    .await?;
            }
            advance(state, &services, &key, &mut entry, OutboxState::Completed).await?;
        }
        state.save_meta()?;
        Ok(entry.id)
    }

    /// Takes in every transfer addressed to this wallet; with `finalize`,
    /// flushes before answering so the transfers are acknowledged.
    pub async fn receive(&self, finalize: bool) -> Result<ReceiveReport, WalletError> {
        let nostr = self.nostr()?.clone();
        let services = self.services().clone();
        let messages = nostr.fetch_transfers(None).await?;
        let trust = services.aggregator.trust_base().await?;
        let mut received = 0;
        let mut taken = Vec::new();
        let mut state = self.lock().await;
        for message in messages {
            if state.store.get(Table::Inbox, &message.event_id)?.is_some() {
                continue;
            }
            let Ok(transfer) = serde_json::from_str::<TransferMessage>(&message.payload) else {
                tracing::debug!(event = %message.event_id, "ignoring a transfer that does not parse");
                continue;
            };
            let tokens = self
                .take_in(&mut state, &services, &transfer, &trust)
                .await?;
            received += tokens.len();
            taken.extend(tokens);
            state.pending_acks.push(message.event_id);
        }
        // Tokens taken in from Nostr join the token set as a synced
        // bundle's do: checked together with every active bundle.
        self.verify_with_active_set(&state, taken).await?;
        state.save_meta()?;
        // Transfers that changed nothing (this device already had their
        // tokens and ledger entry, synced from the device that took them
        // in) wait for no flush: acknowledge them now. Otherwise a clean
        // wallet's flush does nothing and they would never be acknowledged.
        if !state.meta.dirty {
            state.ack_pending()?;
        }
        let has_pending = !state.pending_acks.is_empty();
        drop(state);
        let finalized = if finalize && has_pending {
            self.flush(false).await?;
            true
        } else {
            if has_pending {
                self.schedule_flush();
            }
            finalize
        };
        Ok(ReceiveReport {
            received,
            finalized,
        })
    }

    async fn take_in(
        &self,
        state: &mut State,
        services: &super::Services,
        transfer: &TransferMessage,
        trust: &sphere_protocol::certificate::TrustBase,
    ) -> Result<Vec<Token>, WalletError> {
        let tombstones = state.tombstones(self.address())?;
        let mut taken = Vec::new();
        for token in &transfer.tokens {
            if let Err(error) = verify_token(token, trust) {
                tracing::warn!(wallet = %self.name(), token = %token.id(), %error, "refusing a token that does not verify");
                continue;
            }
            let already = state
                .tokens
                .get(&token.id())
                .is_some_and(|held| held.sequence() >= token.sequence());
            if !token.is_spendable_by(self.address())
                || already
                || tombstones.contains(&token.id().to_string())
            {
                continue;
            }
            state.save_token(token.clone())?;
            taken.push(token.clone());
        }
        let ledger_key = format!(
            "{}{}",
            received_prefix(self.address()),
            transfer.transfer_id
        );
        if taken.is_empty() && state.get_json::<ReceivedEntry>(&ledger_key)?.is_some() {
            return Ok(taken);
        }
        let amount = Amount::sum(transfer.tokens.iter().map(Token::amount)).unwrap_or(Amount::ZERO);
        let token_ids: Vec<_> = transfer.tokens.iter().map(Token::id).collect();
        if state.get_json::<ReceivedEntry>(&ledger_key)?.is_none() {
            let entry = ReceivedEntry {
                transfer_id: transfer.transfer_id.clone(),
                from: transfer.from.clone(),
                amount,
                token_ids: token_ids.clone(),
                invoice_id: transfer.invoice_id.clone(),
            };
            state.put_json(services, &ledger_key, &entry).await?;
        }
        if let Some(invoice_id) = &transfer.invoice_id {
            let payment = InvoicePayment {
                transfer_id: transfer.transfer_id.clone(),
                amount,
                token_ids,
            };
            record_invoice_payment(state, services, invoice_id, InvoiceRole::Payee, payment)
                .await?;
        }
        state.meta.dirty = true;
        Ok(taken)
    }

    /// Every invoice this wallet knows, oldest key first.
    pub(super) async fn invoices(&self) -> Result<Vec<Invoice>, WalletError> {
        Ok(self
            .lock()
            .await
            .scan_json::<Invoice>(INVOICE_PREFIX)?
            .into_iter()
            .map(|(_, i)| i)
            .collect())
    }
}

/// Adds `payment` to invoice `id` if this wallet holds it in `role` and has
/// not recorded that transfer yet (payments are idempotent by transfer id).
async fn record_invoice_payment(
    state: &mut State,
    services: &super::Services,
    id: &str,
    role: InvoiceRole,
    payment: InvoicePayment,
) -> Result<(), WalletError> {
    let Some(mut invoice) = state.get_json::<Invoice>(&invoice_key(id))? else {
        return Ok(());
    };
    if invoice.role == role && invoice.record_payment(payment) {
        state.put_json(services, &invoice_key(id), &invoice).await?;
    }
    Ok(())
}

async fn advance(
    state: &mut State,
    services: &super::Services,
    key: &str,
    entry: &mut OutboxEntry,
    to: OutboxState,
) -> Result<(), WalletError> {
    entry
        .advance(to)
        .map_err(|e| WalletError::Storage(e.to_string()))?;
    state.put_json(services, key, entry).await
}
