//! The Nostr relay: a real NIP-01 relay behind the network model.
//!
//! The relay itself is `nostr-relay-builder`'s `LocalRelay`. It never opens a
//! port of its own: the testnet's HTTP front door ([`crate::http::serve`])
//! accepts the WebSocket upgrade on the announced port (so there is no window
//! in which another process can take the relay's port), and hands the
//! upgraded stream to the relay through an in-process pipe that delays every
//! chunk in each direction by a one-way delay drawn from the relay's gate.
//! That pipe is also where forced disconnects happen.
//!
//! Per-client rate limiting applies to published events: an event over the
//! budget is refused with NIP-01's `OK false` and a `rate-limited:` reason,
//! and is not stored.

use std::{net::SocketAddr, sync::Arc};

use axum::{
    Router,
    body::Body,
    extract::Request,
    http::{HeaderValue, Response, StatusCode, header},
    routing::any,
};
use bytes::Bytes;
use hyper_util::rt::TokioIo;
use nostr_relay_builder::{
    LocalRelay, RelayBuilder,
    builder::{PolicyResult, RateLimit, WritePolicy},
    prelude::{BoxedFuture, Event},
};
use tokio::{
    io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt},
    sync::mpsc,
    time::Instant,
};
use tokio_util::sync::CancellationToken;

use crate::{
    http::{ClientAddr, json_error},
    metrics::Counted,
    netmodel::ServiceGate,
};

/// The relay and what it needs to accept connections.
#[derive(Clone)]
pub struct RelayFront {
    relay: LocalRelay,
    gate: Arc<ServiceGate>,
    shutdown: CancellationToken,
}

impl RelayFront {
    /// A fresh in-memory relay whose clients pass through `gate`.
    pub fn new(gate: Arc<ServiceGate>, shutdown: CancellationToken) -> Self {
        let builder = RelayBuilder::default()
            // The crate's own per-session limiter is replaced by the model's
            // token bucket, which is seeded, scaled and counted.
            .rate_limit(RateLimit {
                max_reqs: 1000,
                notes_per_minute: u32::MAX,
            })
            .write_policy(EventBudget { gate: gate.clone() });
        RelayFront {
            relay: LocalRelay::new(builder),
            gate,
            shutdown,
        }
    }

    /// The router that accepts WebSocket upgrades on any path.
    pub fn router(self) -> Router {
        Router::new()
            .route("/", any(upgrade))
            .route("/{*path}", any(upgrade))
            .with_state(self)
    }

    /// Stops the relay's own tasks.
    pub fn stop(&self) {
        self.relay.shutdown();
    }
}

async fn upgrade(
    axum::extract::State(front): axum::extract::State<RelayFront>,
    mut request: Request,
) -> Response<Body> {
    let key = request
        .headers()
        .get(header::SEC_WEBSOCKET_KEY)
        .map(|k| k.as_bytes().to_vec());
    let wants_websocket = request
        .headers()
        .get(header::UPGRADE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.eq_ignore_ascii_case("websocket"));
    let (Some(key), true) = (key, wants_websocket) else {
        return json_error(
            StatusCode::UPGRADE_REQUIRED,
            "this is a Nostr relay: connect with a WebSocket (NIP-01)",
        );
    };
    let Some(ClientAddr(client)) = request.extensions().get::<ClientAddr>().copied() else {
        return json_error(StatusCode::INTERNAL_SERVER_ERROR, "client address missing");
    };
    let on_upgrade = hyper::upgrade::on(&mut request);
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => front.carry(TokioIo::new(upgraded), client).await,
            Err(error) => tracing::debug!(%client, %error, "relay upgrade failed"),
        }
    });
    let accept = tungstenite::handshake::derive_accept_key(&key);
    let mut response = Response::new(Body::empty());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(header::UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(header::CONNECTION, HeaderValue::from_static("Upgrade"));
    if let Ok(value) = HeaderValue::from_str(&accept) {
        headers.insert(header::SEC_WEBSOCKET_ACCEPT, value);
    }
    response
}

impl RelayFront {
    /// Carries one client's bytes to and from the relay, delayed, until either
    /// side closes, a forced disconnect fires, or the testnet stops.
    async fn carry<S>(&self, client_stream: S, client: SocketAddr)
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (relay_end, our_end) = tokio::io::duplex(256 * 1024);
        let relay = self.relay.clone();
        let session = tokio::spawn(async move {
            if let Err(error) = relay.take_connection(relay_end, client).await {
                tracing::debug!(%client, %error, "relay session ended");
            }
        });
        let (client_read, client_write) = tokio::io::split(client_stream);
        let (relay_read, relay_write) = tokio::io::split(our_end);
        let upstream = delayed_copy(client_read, relay_write, self.gate.clone());
        let downstream = delayed_copy(relay_read, client_write, self.gate.clone());
        let disconnect = self.gate.next_disconnect();
        let forced = async {
            match disconnect {
                Some(after) => tokio::time::sleep(after).await,
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = async { tokio::join!(upstream, downstream) } => {}
            () = forced => {
                self.gate.counters().bump(Counted::Disconnect);
                tracing::debug!(%client, "relay client disconnected by the network model");
            }
            () = self.shutdown.cancelled() => {}
        }
        session.abort();
    }
}

/// Copies `reader` to `writer`, each chunk held for one one-way delay. Order
/// is kept: a chunk is never due before the one read ahead of it.
async fn delayed_copy<R, W>(mut reader: R, mut writer: W, gate: Arc<ServiceGate>)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (tx, mut rx) = mpsc::unbounded_channel::<(Instant, Bytes)>();
    let reading = async move {
        let mut buffer = vec![0_u8; 16 * 1024];
        let mut last_due = Instant::now();
        loop {
            let n = match reader.read(&mut buffer).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            let due = (Instant::now() + gate.one_way_delay()).max(last_due);
            last_due = due;
            if tx
                .send((due, Bytes::copy_from_slice(&buffer[..n])))
                .is_err()
            {
                break;
            }
        }
    };
    let writing = async move {
        while let Some((due, chunk)) = rx.recv().await {
            tokio::time::sleep_until(due).await;
            if writer.write_all(&chunk).await.is_err() {
                return;
            }
        }
        let _ = writer.shutdown().await;
    };
    tokio::join!(reading, writing);
}

/// Refuses events over the client connection's token bucket.
#[derive(Debug)]
struct EventBudget {
    gate: Arc<ServiceGate>,
}

impl WritePolicy for EventBudget {
    fn admit_event<'a>(
        &'a self,
        _event: &'a Event,
        addr: &'a SocketAddr,
    ) -> BoxedFuture<'a, PolicyResult> {
        Box::pin(async move {
            self.gate.counters().bump(Counted::Request);
            match self.gate.check_rate(&format!("conn:{addr}")) {
                None => PolicyResult::Accept,
                Some(wait) => {
                    self.gate.counters().bump(Counted::RateLimited);
                    PolicyResult::Reject(format!(
                        "rate-limited: event budget exhausted, retry in {} ms",
                        wait.as_millis().max(1)
                    ))
                }
            }
        })
    }
}
