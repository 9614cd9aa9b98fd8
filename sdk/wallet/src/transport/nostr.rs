//! A wallet's link to the Nostr relay: nametags, token transfers and NIP-17
//! private messages.
//!
//! [`NostrLink`] holds one `nostr_sdk::Client` per wallet, signing with the
//! wallet's keys. It talks to its relay directly rather than through the
//! pool's helpers, because it must tell the relay's answers apart: an
//! `OK false` saying `rate-limited` is retried with backoff (honouring a
//! `retry in N ms` hint); a send cut off by a dropped connection is sent
//! again once reconnected (a relay that already has the event answers
//! `OK true duplicate:`); any other refusal is an error with the relay's message.
//!
//! - Nametags are NIP-78 application data (kind 30078, `d` tag
//!   `sphere-nametag:<name>`). [`NostrLink::resolve_nametag`] returns the
//!   *earliest* claim by any key (ties broken by event id), so a later squatter
//!   cannot take a name. `created_at` is the claimant's word: this stops late
//!   squatters, not one who backdates.
//! - Transfers are stored events of kind 4444 ([`TRANSFER_KIND`]), NIP-44 v2
//!   encrypted to the recipient named by their `p` tag.
//! - Private messages are NIP-17 kind-14 rumors, sealed and gift-wrapped (kind 1059).
//! - Token backups are stored events of kind 4446 ([`TOKEN_BACKUP_KIND`]),
//!   NIP-44 v2 encrypted to the wallet's own key (as NIP-60 wallets keep
//!   their tokens on relays), tagged `v` with the pointer version whose
//!   snapshot they complete. A regular kind rather than a replaceable one:
//!   replacement goes by `created_at`, whole seconds, and two flushes a
//!   second apart would race; the `v` tag names the one wanted exactly.
//!
//! Payloads may carry tokens and keys are secrets: neither is ever logged,
//! only event ids and kinds.

use std::{fmt, sync::Arc, time::Duration};

use nostr_sdk::{
    Alphabet, Client, ClientMessage, Event, EventBuilder, EventId, Filter, Keys, Kind, PublicKey,
    Relay, RelayMessage, RelayOptions, RelayStatus, RelayUrl, SingleLetterTag, SubscriptionId, Tag,
    TagKind, Timestamp,
    nips::{nip44, nip59::UnwrappedGift},
    pool::{RelayNotification, relay::Error as RelayError},
};
use serde::{Deserialize, Serialize};
use tokio::{sync::broadcast::error::RecvError, time::Instant};
use tracing::debug;

use crate::{
    config::Timers,
    perf,
    transport::retry::{RetryPolicy, retry_delay},
};

/// Kind of a token transfer: a regular kind, so the relay keeps it for a
/// recipient who is offline when it is sent.
pub const TRANSFER_KIND: Kind = Kind::Custom(4444);

/// Kind of a wallet's token backup: a regular kind, one event per pointer
/// version, found by its `v` tag.
pub const TOKEN_BACKUP_KIND: Kind = Kind::Custom(4446);

/// Kind of a nametag claim (NIP-78 application-specific data).
pub const NAMETAG_KIND: Kind = Kind::ApplicationSpecificData;

/// Prefix of a nametag claim's `d` tag.
pub const NAMETAG_D_PREFIX: &str = "sphere-nametag:";

/// How long connecting, waiting for a reconnection and one fetch may take.
/// Not scaled: a loopback relay answers in milliseconds, a slow one must fit.
pub const RELAY_TIMEOUT: Duration = Duration::from_secs(10);

/// Most events one fetch asks for (the relay's default would be 500).
const FETCH_LIMIT: usize = 10_000;

/// How often the connection state is polled while waiting for it; polling
/// cannot miss a change that happens between a check and a subscribe.
const CONNECTION_POLL: Duration = Duration::from_millis(10);

/// Why a relay operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NostrError {
    /// The URL is invalid, or no connection was made within [`RELAY_TIMEOUT`].
    #[error("cannot connect to relay `{url}`: {reason}")]
    Connect {
        /// The relay URL as given.
        url: String,
        /// The last failure.
        reason: String,
    },
    /// The relay refused the event (rate limiting only once retries ran out).
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
    /// The event could not be delivered: connection lost for good, no answer.
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
    /// A fetch failed, was cut off twice, or timed out.
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

/// A nametag's owner, from its earliest claim.
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

// Written by hand so that `{:?}` in a log line cannot leak a token.
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
#[derive(Serialize, Deserialize)]
struct NametagClaim {
    nametag: String,
    address: String,
}

/// Why one fetch attempt failed; an interrupted one is tried once more.
enum FetchFailure {
    Interrupted(String),
    Failed(String),
}

/// A wallet's connection to the relay. Clones share the connection.
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

// Written by hand: the keys must never reach a log.
impl fmt::Debug for NostrLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NostrLink")
            .field("relay", &self.inner.url)
            .field("public_key", &self.public_key().to_hex())
            .finish_non_exhaustive()
    }
}

impl NostrLink {
    /// Connects to `relay_url` as `keys` within [`RELAY_TIMEOUT`], retrying
    /// refused or dropped connection attempts with backoff meanwhile.
    pub async fn connect(relay_url: &str, keys: Keys, timers: Timers) -> Result<Self, NostrError> {
        let fail = |reason: String| NostrError::Connect {
            url: relay_url.to_owned(),
            reason,
        };
        let url = RelayUrl::parse(relay_url).map_err(|e| fail(format!("invalid url: {e}")))?;
        // Nagle off: see `relay_socket`.
        let client = Client::builder()
            .signer(keys.clone())
            .websocket_transport(super::relay_socket::NoDelayTransport)
            .build();
        // The pool's default reconnects after 10 s ± 3 s, longer after each
        // failure; a relay that kicks clients every few hundred milliseconds
        // needs the SDK's own scaled backoff.
        let options = RelayOptions::new()
            .retry_interval(timers.retry_backoff())
            .adjust_retry_interval(false);
        let pool = client.pool();
        pool.add_relay(url.clone(), options)
            .await
            .map_err(|e| fail(e.to_string()))?;
        let relay = client.relay(url).await.map_err(|e| fail(e.to_string()))?;
        let policy = RetryPolicy::from_timers(&timers);
        let deadline = Instant::now() + RELAY_TIMEOUT;
        let mut attempt = 0;
        // `try_connect` leaves the relay connected on success, and on failure
        // schedules nothing, so the loop owns the retries.
        while let Err(error) = perf::waited(
            perf::Wait::Relay,
            relay.try_connect(deadline.saturating_duration_since(Instant::now())),
        )
        .await
        {
            attempt += 1;
            let wait = retry_delay(attempt, &policy, None);
            if Instant::now() + wait >= deadline {
                return Err(fail(error.to_string()));
            }
            debug!(url = relay_url, attempt, %error, "relay connection failed; retrying");
            perf::waited(perf::Wait::Backoff, tokio::time::sleep(wait)).await;
        }
        let url = relay_url.to_owned();
        let inner = LinkInner {
            client,
            relay,
            url,
            keys,
            policy,
        };
        Ok(NostrLink {
            inner: Arc::new(inner),
        })
    }

    /// This wallet's Nostr public key.
    pub fn public_key(&self) -> PublicKey {
        self.inner.keys.public_key()
    }

    /// Claims `nametag` for `address`. Only the earliest claim wins
    /// [`NostrLink::resolve_nametag`]; publishing again replaces one's own
    /// claim, and so restamps it.
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
            .identifier(nametag_d_tag(nametag));
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
        let mut filter = Filter::new().kind(TRANSFER_KIND).pubkey(self.public_key());
        if let Some(since) = since {
            filter = filter.since(since);
        }
        let secret = self.inner.keys.secret_key();
        let mut messages = Vec::new();
        for event in self.fetch(filter, TRANSFER_KIND).await? {
            match nip44::decrypt(secret, &event.pubkey, &event.content) {
                Ok(payload) => messages.push(IncomingMessage {
                    event_id: event.id.to_hex(),
                    from: event.pubkey,
                    payload,
                    created_at: event.created_at.as_secs(),
                }),
                Err(error) => {
                    debug!(event_id = %event.id, %error, "undecryptable transfer skipped")
                }
            }
        }
        sort_messages(&mut messages);
        Ok(messages)
    }

    /// Stores `payload` as this wallet's token backup for pointer `version`,
    /// encrypted to the wallet's own key.
    pub async fn publish_token_backup(
        &self,
        version: u64,
        payload: &str,
    ) -> Result<EventId, NostrError> {
        let keys = &self.inner.keys;
        let me = keys.public_key();
        let content = nip44::encrypt(keys.secret_key(), &me, payload, nip44::Version::V2)
            .map_err(|e| build_error(TOKEN_BACKUP_KIND, None, e))?;
        let event = EventBuilder::new(TOKEN_BACKUP_KIND, content)
            .tag(Tag::custom(
                TagKind::SingleLetter(version_tag()),
                [version.to_string()],
            ))
            .sign_with_keys(keys)
            .map_err(|e| build_error(TOKEN_BACKUP_KIND, None, e))?;
        self.send_event(event).await
    }

    /// The decrypted payloads of this wallet's token backups for pointer
    /// `version` (normally one). Events that do not decrypt are skipped.
    pub async fn fetch_token_backups(&self, version: u64) -> Result<Vec<String>, NostrError> {
        let keys = &self.inner.keys;
        let me = keys.public_key();
        let filter = Filter::new()
            .kind(TOKEN_BACKUP_KIND)
            .author(me)
            .custom_tag(version_tag(), version.to_string());
        let mut payloads = Vec::new();
        for event in self.fetch(filter, TOKEN_BACKUP_KIND).await? {
            match nip44::decrypt(keys.secret_key(), &me, &event.content) {
                Ok(payload) => payloads.push(payload),
                Err(error) => {
                    debug!(event_id = %event.id, %error, "undecryptable token backup skipped")
                }
            }
        }
        Ok(payloads)
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

    /// Every NIP-17 message gift-wrapped for this wallet, oldest first by the
    /// rumor's time. Wraps that do not unwrap to a kind-14 rumor are skipped.
    pub async fn fetch_private_messages(&self) -> Result<Vec<IncomingMessage>, NostrError> {
        let filter = Filter::new().kind(Kind::GiftWrap).pubkey(self.public_key());
        let mut messages = Vec::new();
        for event in self.fetch(filter, Kind::GiftWrap).await? {
            // The unwrap checks the seal's signed author against the rumor's,
            // so `from` is authenticated; the wrap's own key is throwaway.
            match UnwrappedGift::from_gift_wrap(&self.inner.keys, &event).await {
                Ok(gift) if gift.rumor.kind == Kind::PrivateDirectMessage => {
                    messages.push(IncomingMessage {
                        event_id: event.id.to_hex(),
                        from: gift.rumor.pubkey,
                        payload: gift.rumor.content,
                        created_at: gift.rumor.created_at.as_secs(),
                    })
                }
                Ok(gift) => {
                    debug!(event_id = %event.id, kind = gift.rumor.kind.as_u16(), "non-dm skipped")
                }
                Err(error) => {
                    debug!(event_id = %event.id, %error, "gift wrap that does not unwrap skipped")
                }
            }
        }
        sort_messages(&mut messages);
        Ok(messages)
    }

    /// Closes the connection for good; later sends and fetches fail.
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
            perf::waited(perf::Wait::Poll, tokio::time::sleep(CONNECTION_POLL)).await;
        }
        true
    }

    /// Sends `event` until the relay accepts it, retrying rate-limit
    /// refusals and lost connections up to the retry policy's attempts each.
    async fn send_event(&self, event: Event) -> Result<EventId, NostrError> {
        let _timer = perf::time(perf::names::NOSTR_SEND);
        let LinkInner {
            relay, url, policy, ..
        } = &*self.inner;
        let (id, kind) = (event.id, event.kind.as_u16());
        let unsent = |reason: String| NostrError::Unsent {
            url: url.clone(),
            kind,
            event_id: id.to_hex(),
            reason,
        };
        let (mut refusals, mut losses) = (0_u32, 0_u32);
        loop {
            if !self.wait_until_connected(RELAY_TIMEOUT).await {
                return Err(unsent(format!("no connection within {RELAY_TIMEOUT:?}")));
            }
            let error = match perf::waited(perf::Wait::Relay, relay.send_event(&event)).await {
                Ok(_) => {
                    debug!(event_id = %id, kind, refusals, losses, "event accepted");
                    return Ok(id);
                }
                Err(error) => error,
            };
            match error {
                RelayError::RelayMessage(message)
                    if message.contains("rate-limited") && refusals + 1 < policy.max_attempts =>
                {
                    refusals += 1;
                    debug!(event_id = %id, kind, refusals, "event rate-limited; retrying");
                    let delay = retry_delay(refusals, policy, rate_limit_hint(&message));
                    perf::waited(perf::Wait::Backoff, tokio::time::sleep(delay)).await;
                }
                RelayError::RelayMessage(message) => {
                    let event_id = id.to_hex();
                    return Err(NostrError::Refused {
                        url: url.clone(),
                        kind,
                        event_id,
                        message,
                    });
                }
                error if is_connection_loss(&error) && losses + 1 < policy.max_attempts => {
                    losses += 1;
                    debug!(event_id = %id, kind, losses, %error, "send cut off; resending");
                    // No OK in time while still connected: back off rather
                    // than resend in a tight loop.
                    if relay.is_connected() {
                        let delay = policy.backoff(losses);
                        perf::waited(perf::Wait::Backoff, tokio::time::sleep(delay)).await;
                    }
                }
                error => return Err(unsent(error.to_string())),
            }
        }
    }

    /// The stored events matching `filter`, fetched once more if the first
    /// attempt is cut off by a lost connection.
    async fn fetch(&self, filter: Filter, kind: Kind) -> Result<Vec<Event>, NostrError> {
        let filter = filter.limit(FETCH_LIMIT);
        let mut result = self.fetch_once(filter.clone()).await;
        if let Err(FetchFailure::Interrupted(reason)) = &result {
            debug!(kind = kind.as_u16(), reason, "fetch cut off; retrying once");
            result = self.fetch_once(filter).await;
        }
        result.map_err(
            |(FetchFailure::Interrupted(reason) | FetchFailure::Failed(reason))| {
                NostrError::Fetch {
                    url: self.inner.url.clone(),
                    kind: kind.as_u16(),
                    reason,
                }
            },
        )
    }

    /// One REQ, read until its EOSE. By hand, because the pool's
    /// `fetch_events` returns what it has so far, with no error, when the
    /// connection drops or its timeout passes.
    async fn fetch_once(&self, filter: Filter) -> Result<Vec<Event>, FetchFailure> {
        let relay = &self.inner.relay;
        if !self.wait_until_connected(RELAY_TIMEOUT).await {
            return Err(FetchFailure::Interrupted("relay disconnected".into()));
        }
        // From the REQ to its EOSE (or the end of trying) the relay has a
        // request of ours in flight.
        let _wait = perf::wait(perf::Wait::Relay);
        let mut notifications = relay.notifications();
        let id = SubscriptionId::generate();
        if let Err(error) = relay.send_msg(ClientMessage::req(id.clone(), vec![filter])) {
            return Err(FetchFailure::Interrupted(error.to_string()));
        }
        let mut events = Vec::new();
        let read = tokio::time::timeout(RELAY_TIMEOUT, async {
            loop {
                if let Some(end) = on_notification(notifications.recv().await, &id, &mut events) {
                    return end;
                }
            }
        })
        .await;
        // Best effort: the relay forgets the subscription with the connection anyway.
        let _ = relay.send_msg(ClientMessage::close(id));
        let timed_out = format!("no end of stored events within {RELAY_TIMEOUT:?}");
        read.unwrap_or(Err(FetchFailure::Failed(timed_out)))
            .map(|()| events)
    }
}

/// What one relay notification means to the REQ `id`: `None` to read on,
/// else the end of the fetch. Matching events are added to `events`.
fn on_notification(
    notification: Result<RelayNotification, RecvError>,
    id: &SubscriptionId,
    events: &mut Vec<Event>,
) -> Option<Result<(), FetchFailure>> {
    use FetchFailure::{Failed, Interrupted};
    match notification {
        Ok(RelayNotification::Message { message }) => match message {
            RelayMessage::Event {
                subscription_id,
                event,
            } if *subscription_id == *id => {
                events.push(event.into_owned());
                None
            }
            RelayMessage::EndOfStoredEvents(sub) if *sub == *id => Some(Ok(())),
            RelayMessage::Closed {
                subscription_id,
                message,
            } if *subscription_id == *id => {
                Some(Err(Failed(format!("relay closed the request: {message}"))))
            }
            _ => None,
        },
        Ok(RelayNotification::RelayStatus {
            status: RelayStatus::Disconnected | RelayStatus::Terminated | RelayStatus::Banned,
        }) => Some(Err(Interrupted("connection lost".into()))),
        Ok(RelayNotification::Shutdown) | Err(RecvError::Closed) => {
            Some(Err(Failed("client shut down".into())))
        }
        // Missed messages may have been ours: the result would be incomplete.
        Err(RecvError::Lagged(n)) => Some(Err(Interrupted(format!("missed {n} relay messages")))),
        Ok(_) => None,
    }
}

/// The tag naming the pointer version a token backup belongs to.
fn version_tag() -> SingleLetterTag {
    SingleLetterTag::lowercase(Alphabet::V)
}

/// The `d` tag of a claim of `nametag`.
fn nametag_d_tag(nametag: &str) -> String {
    format!("{NAMETAG_D_PREFIX}{nametag}")
}

/// The earliest claim of `nametag` among `events`, ties going to the smaller
/// event id. Claims whose `d` tag or content name another tag are ignored.
fn earliest_claim(nametag: &str, events: &[Event]) -> Option<NametagRecord> {
    let d_tag = nametag_d_tag(nametag);
    events
        .iter()
        .filter(|e| e.kind == NAMETAG_KIND && e.tags.identifier() == Some(d_tag.as_str()))
        .filter_map(
            |event| match serde_json::from_str::<NametagClaim>(&event.content) {
                Ok(claim) if claim.nametag == nametag => Some((event, claim)),
                _ => {
                    debug!(event_id = %event.id, "malformed nametag claim skipped");
                    None
                }
            },
        )
        .min_by_key(|(event, _)| (event.created_at, event.id))
        .map(|(event, claim)| NametagRecord {
            nametag: claim.nametag,
            address: claim.address,
            nostr_pubkey: event.pubkey,
        })
}

/// The wait a rate-limit refusal asks for: `… retry in N ms …`.
fn rate_limit_hint(message: &str) -> Option<Duration> {
    let (number, unit) = message.split("retry in ").nth(1)?.split_once(' ')?;
    if !unit.starts_with("ms") {
        return None;
    }
    number.parse().ok().map(Duration::from_millis)
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

/// Oldest first, then by id, so two fetches of one set read alike.
fn sort_messages(messages: &mut [IncomingMessage]) {
    messages.sort_by(|a, b| (a.created_at, &a.event_id).cmp(&(b.created_at, &b.event_id)));
}

fn build_error(kind: Kind, to: Option<&PublicKey>, error: impl fmt::Display) -> NostrError {
    NostrError::Build {
        kind: kind.as_u16(),
        recipient: to.map_or_else(|| "-".to_owned(), PublicKey::to_hex),
        reason: error.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claim(keys: &Keys, nametag: &str, content: &str, at: u64) -> Event {
        EventBuilder::new(NAMETAG_KIND, content)
            .tag(Tag::identifier(nametag_d_tag(nametag)))
            .custom_created_at(Timestamp::from(at))
            .sign_with_keys(keys)
            .unwrap()
    }

    fn json(nametag: &str, address: &str) -> String {
        serde_json::json!({ "nametag": nametag, "address": address }).to_string()
    }

    #[test]
    fn the_earliest_well_formed_claim_wins() {
        let (alice, mallory) = (Keys::generate(), Keys::generate());
        let events = [
            claim(&mallory, "alice", &json("alice", "m"), 200),
            claim(&alice, "alice", &json("alice", "a"), 100),
            claim(&mallory, "alice", "not json", 50),
            claim(&mallory, "alice", &json("bob", "m"), 50),
        ];
        let record = earliest_claim("alice", &events).unwrap();
        assert_eq!(
            (record.address.as_str(), record.nostr_pubkey),
            ("a", alice.public_key())
        );
        assert_eq!(
            earliest_claim("bob", &events),
            None,
            "the d tag must match too"
        );

        let ties = [
            claim(&alice, "x", &json("x", "1"), 5),
            claim(&mallory, "x", &json("x", "2"), 5),
        ];
        let first = ties.iter().min_by_key(|e| e.id).unwrap();
        assert_eq!(
            earliest_claim("x", &ties).unwrap().nostr_pubkey,
            first.pubkey
        );
    }

    #[test]
    fn rate_limit_hint_reads_milliseconds_only() {
        let message = "blocked: rate-limited: event budget exhausted, retry in 180 ms";
        assert_eq!(rate_limit_hint(message), Some(Duration::from_millis(180)));
        assert_eq!(rate_limit_hint("rate-limited: slow down"), None);
        assert_eq!(rate_limit_hint("retry in soon ms"), None);
        assert_eq!(rate_limit_hint("retry in 3 s"), None);
    }

    #[test]
    fn debug_output_hides_payloads() {
        let from = Keys::generate().public_key();
        let message = IncomingMessage {
            event_id: "ab".into(),
            from,
            payload: "tok".into(),
            created_at: 1,
        };
        let text = format!("{message:?}");
        assert!(
            !text.contains("tok") && text.contains("<3 bytes>"),
            "{text}"
        );
    }
}
