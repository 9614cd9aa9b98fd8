//! A wallet's link to the Nostr relay: nametags, token transfers and NIP-17
//! private messages.
//!
//! [`NostrLink`] holds one `nostr_sdk::Client` per wallet, signing with the
//! wallet's keys, connected to one relay. It speaks to that relay directly
//! (not through the pool's fan-out helpers) because it must tell the relay's
//! answers apart: an `OK false` whose message says `rate-limited` is retried
//! with backoff (honouring a `retry in N ms` hint), a send cut off by a
//! dropped connection waits for the reconnection and is sent again (the
//! relay answers a resent event it already has with `OK true duplicate:`),
//! and any other refusal is an error carrying the relay's message.
//!
//! - Nametags are NIP-78 application data (kind 30078) with `d` tag
//!   `sphere-nametag:<name>`. Any key may publish one; [`NostrLink::resolve_nametag`]
//!   returns the *earliest* claim (ties broken by event id), so a later
//!   squatter cannot take a name. `created_at` is the claimant's own word:
//!   this stops late squatters, not a claimant who backdates.
//! - Transfers are regular stored events of kind 4444 ([`TRANSFER_KIND`]),
//!   NIP-44 v2 encrypted to the recipient named by their `p` tag.
//! - Private messages are NIP-17 kind-14 rumors, sealed and gift-wrapped
//!   (kind 1059).
//!
//! Payloads may carry tokens and keys are secrets, so neither is ever
//! logged: logs name event ids and kinds only.

use std::{fmt, sync::Arc, time::Duration};

use nostr_sdk::{
    Client, ClientMessage, Event, EventBuilder, EventId, Filter, Keys, Kind, PublicKey, Relay,
    RelayMessage, RelayOptions, RelayStatus, RelayUrl, SubscriptionId, Tag, Timestamp,
    nips::{nip44, nip59::UnwrappedGift},
    pool::{RelayNotification, relay::Error as RelayError},
};
use serde::{Deserialize, Serialize};
use tokio::{sync::broadcast::error::RecvError, time::Instant};

use crate::{
    config::Timers,
    perf,
    transport::retry::{RetryPolicy, retry_delay},
};

/// Kind of a token transfer: a regular kind, so the relay stores it for a
/// recipient who is offline when it is sent.
pub const TRANSFER_KIND: Kind = Kind::Custom(4444);

/// Kind of a nametag claim (NIP-78 application-specific data).
pub const NAMETAG_KIND: Kind = Kind::ApplicationSpecificData;

/// Prefix of a nametag claim's `d` tag.
pub const NAMETAG_D_PREFIX: &str = "sphere-nametag:";

/// How long connecting, reconnecting and one fetch may take. Not scaled: a
/// loopback relay answers in milliseconds, and a slow one must still fit.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// Most events one fetch asks for (the relay's default would be 500).
const FETCH_LIMIT: usize = 10_000;

/// How often the connection state is polled while waiting for it. Polling
/// cannot miss a status change that happens between a check and a subscribe.
const CONNECTION_POLL: Duration = Duration::from_millis(10);

/// Why a relay operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NostrError {
    /// The relay URL does not parse.
    #[error("invalid relay url `{url}`: {reason}")]
    BadUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No connection could be made within [`RELAY_TIMEOUT`].
    #[error("cannot connect to relay `{url}`: {reason}")]
    Connect {
        /// The relay.
        url: String,
        /// The last failure.
        reason: String,
    },
    /// The relay refused the event for a reason other than rate limiting.
    #[error("relay `{url}` refused kind {kind} event {event_id}: {message}")]
    Refused {
        /// The relay.
        url: String,
        /// Kind of the event.
        kind: u16,
        /// Hex id of the event.
        event_id: String,
        /// The relay's `OK false` message.
        message: String,
    },
    /// The event was rate-limited on every attempt.
    #[error(
        "relay `{url}` still rate-limited kind {kind} event {event_id} after {attempts} attempts: {message}"
    )]
    RateLimited {
        /// The relay.
        url: String,
        /// Kind of the event.
        kind: u16,
        /// Hex id of the event.
        event_id: String,
        /// Attempts made.
        attempts: u32,
        /// The relay's last message.
        message: String,
    },
    /// The event could not be delivered (connection lost, no answer).
    #[error("cannot send kind {kind} event {event_id} to relay `{url}`: {reason}")]
    Unsent {
        /// The relay.
        url: String,
        /// Kind of the event.
        kind: u16,
        /// Hex id of the event.
        event_id: String,
        /// The last failure.
        reason: String,
    },
    /// A fetch failed or timed out.
    #[error("cannot fetch kind {kind} events from relay `{url}`: {reason}")]
    Fetch {
        /// The relay.
        url: String,
        /// Kind fetched.
        kind: u16,
        /// What went wrong.
        reason: String,
    },
    /// The event could not be built, encrypted or signed.
    #[error("cannot build kind {kind} event for recipient {recipient}: {reason}")]
    Build {
        /// Kind of the event.
        kind: u16,
        /// Hex public key of the recipient (`-` when there is none).
        recipient: String,
        /// What went wrong.
        reason: String,
    },
}

/// A nametag's owner, as resolved from the earliest claim.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NametagRecord {
    /// The name.
    pub nametag: String,
    /// The wallet address the name points to.
    pub address: String,
    /// The Nostr key that claimed it first.
    pub nostr_pubkey: PublicKey,
}

/// A decrypted transfer or private message addressed to this wallet.
#[derive(Clone, PartialEq, Eq)]
pub struct IncomingMessage {
    /// Hex id of the event (for a private message, of the gift wrap).
    pub event_id: String,
    /// The sender (for a private message, the rumor's author).
    pub from: PublicKey,
    /// The decrypted payload.
    pub payload: String,
    /// Unix seconds the sender stamped it with.
    pub created_at: u64,
}

// Hand-written so that `{:?}` in a log line cannot leak a token.
impl fmt::Debug for IncomingMessage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncomingMessage")
            .field("event_id", &self.event_id)
            .field("from", &self.from.to_hex())
            .field("payload", &format_args!("<{} bytes>", self.payload.len()))
            .field("created_at", &self.created_at)
            .finish()
    }
}

/// The JSON content of a nametag claim.
#[derive(Debug, Serialize, Deserialize)]
struct NametagClaim {
    nametag: String,
    address: String,
}

/// Why one fetch attempt failed; only an interrupted one is retried.
enum FetchFailure {
    Interrupted(String),
    Failed(String),
}

/// A wallet's connection to the relay. Cloning shares the connection.
#[derive(Clone)]
pub struct NostrLink {
    inner: Arc<LinkInner>,
}

struct LinkInner {
    client: Client,
    relay: Relay,
    url: String,
    keys: Keys,
    policy: RetryPolicy,
}

// Hand-written: `Keys` must never reach a log.
impl fmt::Debug for NostrLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NostrLink")
            .field("relay", &self.inner.url)
            .field("public_key", &self.inner.keys.public_key().to_hex())
            .finish_non_exhaustive()
    }
}

impl NostrLink {
    /// Connects to `relay_url` as `keys`, waiting up to [`RELAY_TIMEOUT`]
    /// (refused or dropped upgrades are retried with backoff meanwhile).
    pub async fn connect(
        relay_url: &str,
        keys: Keys,
        timers: Timers,
    ) -> Result<NostrLink, NostrError> {
        let url = RelayUrl::parse(relay_url).map_err(|e| NostrError::BadUrl {
            url: relay_url.to_owned(),
            reason: e.to_string(),
        })?;
        let connect_error = |reason: String| NostrError::Connect {
            url: relay_url.to_owned(),
            reason,
        };
        let policy = RetryPolicy::from_timers(&timers);
        let client = Client::new(keys.clone());
        // The pool's defaults reconnect after 10 s ± 3 s, growing with each
        // failure; a testnet that kicks clients every few hundred
        // milliseconds needs the SDK's own, scaled, backoff instead.
        let options = RelayOptions::new()
            .retry_interval(timers.retry_backoff())
            .adjust_retry_interval(false);
        client
            .pool()
            .add_relay(url.clone(), options)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let relay = client
            .relay(url)
            .await
            .map_err(|e| connect_error(e.to_string()))?;
        let deadline = Instant::now() + RELAY_TIMEOUT;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let left = deadline.saturating_duration_since(Instant::now());
            match relay.try_connect(left).await {
                Ok(()) => break,
                Err(error) => {
                    let wait = retry_delay(attempt, &policy, None);
                    if Instant::now() + wait >= deadline {
                        return Err(connect_error(error.to_string()));
                    }
                    tracing::debug!(url = relay_url, attempt, %error, "relay connection failed; retrying");
                    tokio::time::sleep(wait).await;
                }
            }
        }
        let link = NostrLink {
            inner: Arc::new(LinkInner {
                client,
                relay,
                url: relay_url.to_owned(),
                keys,
                policy,
            }),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if !link.wait_until_connected(left).await {
            return Err(connect_error(format!(
                "not connected after {} s",
                RELAY_TIMEOUT.as_secs()
            )));
        }
        Ok(link)
    }

    /// This wallet's Nostr public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.keys.public_key()
    }

    /// The relay's URL, as given to [`NostrLink::connect`].
    pub fn relay_url(&self) -> &str {
        &self.inner.url
    }

    /// Claims `nametag` for `address`. A claim by a key that is not the
    /// earliest claimant is stored but never wins [`NostrLink::resolve_nametag`];
    /// re-publishing replaces one's own claim and so restamps it.
    pub async fn publish_nametag(
        &self,
        nametag: &str,
        address: &str,
    ) -> Result<EventId, NostrError> {
        let claim = NametagClaim {
            nametag: nametag.to_owned(),
            address: address.to_owned(),
        };
        let content =
            serde_json::to_string(&claim).map_err(|e| build_error(NAMETAG_KIND, None, e))?;
        let event = EventBuilder::new(NAMETAG_KIND, content)
            .tag(Tag::identifier(nametag_d_tag(nametag)))
            .sign_with_keys(&self.inner.keys)
            .map_err(|e| build_error(NAMETAG_KIND, None, e))?;
        self.send_event(event).await
    }

    /// The earliest claim of `nametag` by any key, if there is one.
    pub async fn resolve_nametag(
        &self,
        nametag: &str,
    ) -> Result<Option<NametagRecord>, NostrError> {
        let filter = Filter::new()
            .kind(NAMETAG_KIND)
            .identifier(nametag_d_tag(nametag))
            .limit(FETCH_LIMIT);
        let events = self.fetch(filter, NAMETAG_KIND).await?;
        Ok(earliest_claim(nametag, &events))
    }

    /// Sends `payload` to `to` as a NIP-44 encrypted kind-4444 transfer.
    pub async fn send_transfer(
        &self,
        to: &PublicKey,
        payload: &str,
    ) -> Result<EventId, NostrError> {
        let keys = &self.inner.keys;
        let content = nip44::encrypt(keys.secret_key(), to, payload, nip44::Version::V2)
            .map_err(|e| build_error(TRANSFER_KIND, Some(to), e))?;
        let event = EventBuilder::new(TRANSFER_KIND, content)
            .tag(Tag::public_key(*to))
            .sign_with_keys(keys)
            .map_err(|e| build_error(TRANSFER_KIND, Some(to), e))?;
        self.send_event(event).await
    }

    /// Every transfer addressed to this wallet (from `since` on, if given),
    /// decrypted, oldest first. Transfers that do not decrypt are skipped.
    pub async fn fetch_transfers(
        &self,
        since: Option<Timestamp>,
    ) -> Result<Vec<IncomingMessage>, NostrError> {
        let mut filter = Filter::new()
            .kind(TRANSFER_KIND)
            .pubkey(self.public_key())
            .limit(FETCH_LIMIT);
        if let Some(since) = since {
            filter = filter.since(since);
        }
        let events = self.fetch(filter, TRANSFER_KIND).await?;
        let secret = self.inner.keys.secret_key();
        let mut messages: Vec<IncomingMessage> = events
            .into_iter()
            .filter_map(|event| match nip44::decrypt(secret, &event.pubkey, &event.content) {
                Ok(payload) => Some(IncomingMessage {
                    event_id: event.id.to_hex(),
                    from: event.pubkey,
                    payload,
                    created_at: event.created_at.as_secs(),
                }),
                Err(error) => {
                    tracing::debug!(event_id = %event.id, kind = TRANSFER_KIND.as_u16(), %error, "skipping a transfer that does not decrypt");
                    None
                }
            })
            .collect();
        sort_messages(&mut messages);
        Ok(messages)
    }

    /// Sends `payload` to `to` as a NIP-17 private message (gift-wrapped).
    pub async fn send_private_message(
        &self,
        to: &PublicKey,
        payload: &str,
    ) -> Result<(), NostrError> {
        let event = EventBuilder::private_msg(&self.inner.keys, *to, payload, Vec::<Tag>::new())
            .await
            .map_err(|e| build_error(Kind::GiftWrap, Some(to), e))?;
        self.send_event(event).await.map(|_| ())
    }

    /// Every NIP-17 private message gift-wrapped for this wallet, oldest
    /// first by the rumor's time. Wraps that do not unwrap, or hold a rumor
    /// other than a kind-14 message, are skipped.
    pub async fn fetch_private_messages(&self) -> Result<Vec<IncomingMessage>, NostrError> {
        let filter = Filter::new()
            .kind(Kind::GiftWrap)
            .pubkey(self.public_key())
            .limit(FETCH_LIMIT);
        let events = self.fetch(filter, Kind::GiftWrap).await?;
        let mut messages = Vec::with_capacity(events.len());
        for event in events {
            match UnwrappedGift::from_gift_wrap(&self.inner.keys, &event).await {
                // The seal's signature vouches for the rumor's author (the
                // unwrap checks they match); the wrap's own key is throwaway.
                Ok(gift) if gift.rumor.kind == Kind::PrivateDirectMessage => {
                    messages.push(IncomingMessage {
                        event_id: event.id.to_hex(),
                        from: gift.rumor.pubkey,
                        payload: gift.rumor.content,
                        created_at: gift.rumor.created_at.as_secs(),
                    })
                }
                Ok(gift) => {
                    tracing::debug!(event_id = %event.id, rumor_kind = gift.rumor.kind.as_u16(), "skipping a gift wrap that is not a private message");
                }
                Err(error) => {
                    tracing::debug!(event_id = %event.id, kind = Kind::GiftWrap.as_u16(), %error, "skipping a gift wrap that does not unwrap");
                }
            }
        }
        sort_messages(&mut messages);
        Ok(messages)
    }

    /// Closes the connection; later sends and fetches fail.
    pub async fn disconnect(&self) {
        self.inner.client.disconnect().await;
    }

    /// Polls until the relay is connected or `within` has passed.
    async fn wait_until_connected(&self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        while !self.inner.relay.is_connected() {
            if Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(CONNECTION_POLL).await;
        }
        true
    }

    /// Sends `event` until the relay accepts it, retrying rate-limit
    /// refusals and lost connections.
    async fn send_event(&self, event: Event) -> Result<EventId, NostrError> {
        let _timer = perf::time(perf::names::NOSTR_SEND);
        let LinkInner {
            relay, url, policy, ..
        } = &*self.inner;
        let kind = event.kind.as_u16();
        let unsent = |reason: String| NostrError::Unsent {
            url: url.clone(),
            kind,
            event_id: event.id.to_hex(),
            reason,
        };
        let (mut refusals, mut losses) = (0_u32, 0_u32);
        loop {
            if !self.wait_until_connected(RELAY_TIMEOUT).await {
                return Err(unsent(format!(
                    "still disconnected after {} s",
                    RELAY_TIMEOUT.as_secs()
                )));
            }
            match relay.send_event(&event).await {
                Ok(id) => {
                    tracing::debug!(event_id = %id, kind, refusals, losses, "event accepted");
                    return Ok(id);
                }
                Err(RelayError::RelayMessage(message)) if message.contains("rate-limited") => {
                    refusals += 1;
                    if refusals >= policy.max_attempts {
                        return Err(NostrError::RateLimited {
                            url: url.clone(),
                            kind,
                            event_id: event.id.to_hex(),
                            attempts: refusals,
                            message,
                        });
                    }
                    let wait = retry_delay(refusals, policy, rate_limit_hint(&message));
                    tracing::debug!(event_id = %event.id, kind, attempt = refusals, wait_ms = wait.as_millis() as u64, "event rate-limited; retrying");
                    tokio::time::sleep(wait).await;
                }
                Err(RelayError::RelayMessage(message)) => {
                    return Err(NostrError::Refused {
                        url: url.clone(),
                        kind,
                        event_id: event.id.to_hex(),
                        message,
                    });
                }
                Err(error) if is_connection_loss(&error) => {
                    losses += 1;
                    if losses >= policy.max_attempts {
                        return Err(unsent(format!("{error} (after {losses} attempts)")));
                    }
                    tracing::debug!(event_id = %event.id, kind, attempt = losses, %error, "send cut off; resending after reconnection");
                    // A drop reported while the relay still looks connected
                    // (no OK in time) must not turn into a tight resend loop.
                    if relay.is_connected() {
                        tokio::time::sleep(policy.backoff(losses)).await;
                    }
                }
                Err(error) => return Err(unsent(error.to_string())),
            }
        }
    }

    /// Fetches the stored events matching `filter`, once more if the first
    /// attempt is cut off by a lost connection.
    async fn fetch(&self, filter: Filter, kind: Kind) -> Result<Vec<Event>, NostrError> {
        let first = match self.fetch_once(filter.clone()).await {
            Err(FetchFailure::Interrupted(reason)) => {
                tracing::debug!(kind = kind.as_u16(), reason, "fetch cut off; retrying once");
                self.fetch_once(filter).await
            }
            other => other,
        };
        first.map_err(
            |(FetchFailure::Interrupted(reason) | FetchFailure::Failed(reason))| {
                NostrError::Fetch {
                    url: self.inner.url.clone(),
                    kind: kind.as_u16(),
                    reason,
                }
            },
        )
    }

    /// One REQ, read until its EOSE. Done by hand rather than with the
    /// pool's `fetch_events`, which returns what it has so far, with no
    /// error, when the connection drops or the timeout passes.
    async fn fetch_once(&self, filter: Filter) -> Result<Vec<Event>, FetchFailure> {
        let relay = &self.inner.relay;
        if !self.wait_until_connected(RELAY_TIMEOUT).await {
            return Err(FetchFailure::Interrupted("relay disconnected".to_owned()));
        }
        let mut notifications = relay.notifications();
        let id = SubscriptionId::generate();
        relay
            .send_msg(ClientMessage::req(id.clone(), vec![filter]))
            .map_err(|e| FetchFailure::Interrupted(e.to_string()))?;
        let mut events = Vec::new();
        let collected = tokio::time::timeout(RELAY_TIMEOUT, async {
            loop {
                match notifications.recv().await {
                    Ok(RelayNotification::Message { message }) => match message {
                        RelayMessage::Event {
                            subscription_id,
                            event,
                        } if *subscription_id == id => {
                            events.push(event.into_owned());
                        }
                        RelayMessage::EndOfStoredEvents(subscription_id)
                            if *subscription_id == id =>
                        {
                            return Ok(());
                        }
                        RelayMessage::Closed {
                            subscription_id,
                            message,
                        } if *subscription_id == id => {
                            return Err(FetchFailure::Failed(format!(
                                "relay closed the request: {message}"
                            )));
                        }
                        _ => {}
                    },
                    Ok(RelayNotification::RelayStatus { status }) if is_down(status) => {
                        return Err(FetchFailure::Interrupted("connection lost".to_owned()));
                    }
                    Ok(RelayNotification::Shutdown) | Err(RecvError::Closed) => {
                        return Err(FetchFailure::Failed("client shut down".to_owned()));
                    }
                    Ok(_) => {}
                    Err(RecvError::Lagged(missed)) => {
                        return Err(FetchFailure::Interrupted(format!(
                            "missed {missed} relay messages"
                        )));
                    }
                }
            }
        })
        .await;
        // Best effort: the relay forgets the subscription with the connection anyway.
        let _ = relay.send_msg(ClientMessage::close(id));
        match collected {
            Ok(Ok(())) => Ok(events),
            Ok(Err(failure)) => Err(failure),
            Err(_) => Err(FetchFailure::Failed(format!(
                "no end of stored events within {} s",
                RELAY_TIMEOUT.as_secs()
            ))),
        }
    }
}

/// The `d` tag of a claim of `nametag`.
fn nametag_d_tag(nametag: &str) -> String {
    format!("{NAMETAG_D_PREFIX}{nametag}")
}

/// The earliest valid claim of `nametag` among `events`, ties broken by the
/// smaller event id. Claims whose `d` tag or content do not name `nametag`
/// are ignored.
fn earliest_claim(nametag: &str, events: &[Event]) -> Option<NametagRecord> {
    let d_tag = nametag_d_tag(nametag);
    events
        .iter()
        .filter(|event| event.kind == NAMETAG_KIND && event.tags.identifier() == Some(d_tag.as_str()))
        .filter_map(|event| match serde_json::from_str::<NametagClaim>(&event.content) {
            Ok(claim) if claim.nametag == nametag => Some((event, claim)),
            _ => {
                tracing::debug!(event_id = %event.id, kind = NAMETAG_KIND.as_u16(), "skipping a malformed nametag claim");
                None
            }
        })
        .min_by_key(|(event, _)| (event.created_at, event.id))
        .map(|(event, claim)| NametagRecord {
            nametag: claim.nametag,
            address: claim.address,
            nostr_pubkey: event.pubkey,
        })
}

/// The wait a rate-limit refusal asks for: `… retry in N ms …`.
fn rate_limit_hint(message: &str) -> Option<Duration> {
    let rest = &message[message.find("retry in ")? + "retry in ".len()..];
    let digits: &str = rest.split(|c: char| !c.is_ascii_digit()).next()?;
    let after = rest[digits.len()..].trim_start();
    if digits.is_empty() || !after.starts_with("ms") {
        return None;
    }
    digits.parse().ok().map(Duration::from_millis)
}

/// Whether a send failed because the connection went away or never
/// answered, so the same event may be sent again.
fn is_connection_loss(error: &RelayError) -> bool {
    matches!(
        error,
        RelayError::NotConnected
            | RelayError::NotReady
            | RelayError::Timeout
            | RelayError::PrematureExit
            | RelayError::Transport(_)
            | RelayError::CantSendChannelMessage { .. }
    )
}

/// Whether `status` means the connection is gone.
fn is_down(status: RelayStatus) -> bool {
    matches!(
        status,
        RelayStatus::Disconnected | RelayStatus::Terminated | RelayStatus::Banned
    )
}

/// Oldest first, then by id, so two fetches of one set read alike.
fn sort_messages(messages: &mut [IncomingMessage]) {
    messages.sort_by(|a, b| (a.created_at, &a.event_id).cmp(&(b.created_at, &b.event_id)));
}

fn build_error(kind: Kind, recipient: Option<&PublicKey>, error: impl fmt::Display) -> NostrError {
    NostrError::Build {
        kind: kind.as_u16(),
        recipient: recipient.map_or_else(|| "-".to_owned(), PublicKey::to_hex),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(keys: &Keys, nametag: &str, address: &str, at: u64) -> Event {
        let content = serde_json::json!({ "nametag": nametag, "address": address }).to_string();
        EventBuilder::new(NAMETAG_KIND, content)
            .tag(Tag::identifier(nametag_d_tag(nametag)))
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(keys)
            .unwrap()
    }

    #[test]
    fn earliest_claim_wins_whatever_the_order() {
        let (alice, mallory) = (Keys::generate(), Keys::generate());
        let events = [
            claim(&mallory, "alice", "m-addr", 200),
            claim(&alice, "alice", "a-addr", 100),
        ];
        let record = earliest_claim("alice", &events).unwrap();
        assert_eq!(record.address, "a-addr");
        assert_eq!(record.nostr_pubkey, alice.public_key());
        assert_eq!(earliest_claim("bob", &events), None);
    }

    #[test]
    fn ties_go_to_the_smaller_event_id_and_bad_claims_are_ignored() {
        let events = [
            claim(&Keys::generate(), "x", "one", 5),
            claim(&Keys::generate(), "x", "two", 5),
        ];
        let winner = events.iter().min_by_key(|e| e.id).unwrap();
        assert_eq!(
            earliest_claim("x", &events).unwrap().nostr_pubkey,
            winner.pubkey
        );

        let keys = Keys::generate();
        let garbage = EventBuilder::new(NAMETAG_KIND, "not json")
            .tag(Tag::identifier(nametag_d_tag("x")))
            .custom_created_at(Timestamp::from(1))
            .sign_with_keys(&keys)
            .unwrap();
        let wrong_name = claim(&keys, "y", "y-addr", 1);
        let mut all = vec![garbage, wrong_name];
        all.extend(events.iter().cloned());
        assert_eq!(
            earliest_claim("x", &all).unwrap().nostr_pubkey,
            winner.pubkey
        );
    }

    #[test]
    fn rate_limit_hint_reads_milliseconds() {
        let message = "blocked: rate-limited: event budget exhausted, retry in 180 ms";
        assert_eq!(rate_limit_hint(message), Some(Duration::from_millis(180)));
        assert_eq!(rate_limit_hint("rate-limited: slow down"), None);
        assert_eq!(rate_limit_hint("retry in soon ms"), None);
        assert_eq!(rate_limit_hint("retry in 3 s"), None);
    }

    #[test]
    fn debug_output_hides_payloads() {
        let message = IncomingMessage {
            event_id: "ab".into(),
            from: Keys::generate().public_key(),
            payload: "secret-token".into(),
            created_at: 1,
        };
        let text = format!("{message:?}");
        assert!(!text.contains("secret-token"), "{text}");
        assert!(text.contains("<12 bytes>"), "{text}");
    }
}
