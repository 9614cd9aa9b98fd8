//! The HTTP front door of every service, where the network model applies.
//!
//! [`serve`] accepts connections itself (rather than `axum::serve`) for one
//! reason: a dropped request must close the connection with no answer, like a
//! real lossy link, and hyper does exactly that when the service future
//! returns an error, which an axum router never does.
//!
//! Clients are told apart by the `x-sphere-client` header when they send one
//! (each SDK peer does, so two peers on one machine get two token buckets),
//! and by their IP address otherwise.

use std::{convert::Infallible, net::SocketAddr, sync::Arc, time::Duration};

use axum::{
    Router,
    body::Body,
    http::{HeaderValue, Request, Response, StatusCode, header},
};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;
use tower::ServiceExt;

use crate::netmodel::{Admission, ServiceGate};

/// The header a client sets to get its own token bucket.
pub const CLIENT_HEADER: &str = "x-sphere-client";

/// Paths that bypass the model: observing the testnet must not perturb it.
const EXEMPT_PATHS: &[&str] = &["/metrics"];

/// The remote address of the connection a request came on, for handlers
/// (the relay keys its event buckets by it).
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub SocketAddr);

/// Returned by the service to make hyper close the connection unanswered.
#[derive(Debug, thiserror::Error)]
#[error("connection dropped by the network model")]
struct DroppedByModel;

/// Serves `router` on `listener` behind `gate` until `shutdown` fires; then
/// stops accepting and ends every open connection.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    gate: Arc<ServiceGate>,
    shutdown: CancellationToken,
) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    connections.spawn(serve_connection(stream, peer, router.clone(), gate.clone()));
                }
                Err(error) => {
                    // Typically EMFILE: back off instead of spinning.
                    tracing::warn!(service = %gate.service(), %error, "accept failed");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    connections.shutdown().await;
}

async fn serve_connection(
    stream: tokio::net::TcpStream,
    peer: SocketAddr,
    router: Router,
    gate: Arc<ServiceGate>,
) {
    // Latency comes from the model, not from Nagle's algorithm.
    let _ = stream.set_nodelay(true);
    let service = hyper::service::service_fn(move |request: Request<Incoming>| {
        handle(request, peer, router.clone(), gate.clone())
    });
    let connection = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    if let Err(error) = connection.await {
        tracing::debug!(%peer, %error, "connection ended");
    }
}

async fn handle(
    request: Request<Incoming>,
    peer: SocketAddr,
    router: Router,
    gate: Arc<ServiceGate>,
) -> Result<Response<Body>, DroppedByModel> {
    let mut request = request.map(Body::new);
    request.extensions_mut().insert(ClientAddr(peer));
    if EXEMPT_PATHS.contains(&request.uri().path()) {
        return Ok(call(router, request).await);
    }
    let client = client_key(&request, peer);
    match gate.admit_request(&client, request.uri().path()) {
        Admission::Forward { before, after } => {
            tokio::time::sleep(before).await;
            let response = call(router, request).await;
            tokio::time::sleep(after).await;
            Ok(response)
        }
        Admission::RateLimited {
            retry_after,
            retry_after_s,
            delay,
        } => {
            tokio::time::sleep(delay).await;
            Ok(too_many_requests(retry_after, retry_after_s))
        }
        Admission::ServerError { delay } => {
            tokio::time::sleep(delay).await;
            Ok(json_error(
                StatusCode::SERVICE_UNAVAILABLE,
                "service unavailable (injected by the network model)",
            ))
        }
        Admission::Drop { delay } => {
            tokio::time::sleep(delay).await;
            Err(DroppedByModel)
        }
    }
}

async fn call(router: Router, request: Request<Body>) -> Response<Body> {
    let result: Result<Response<Body>, Infallible> = router.oneshot(request).await;
    match result {
        Ok(response) => response,
        Err(never) => match never {},
    }
}

fn client_key(request: &Request<Body>, peer: SocketAddr) -> String {
    request
        .headers()
        .get(CLIENT_HEADER)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
        .map(|v| format!("id:{v}"))
        .unwrap_or_else(|| format!("ip:{}", peer.ip()))
}

/// A 429 as a public gateway sends it: the standard `Retry-After` in whole
/// seconds of the profile's time (at least one; the client scales them as
/// it scales every delay). There is no exact-milliseconds header, so a
/// client cannot come back sooner than a real service would let it; the
/// body names the wait in real milliseconds for people reading logs.
fn too_many_requests(retry_after: Duration, seconds: u64) -> Response<Body> {
    let millis = retry_after.as_millis().max(1);
    let mut response = json_error(
        StatusCode::TOO_MANY_REQUESTS,
        &format!("rate limited by the network model: retry in {millis} ms"),
    );
    let headers = response.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(seconds.max(1)));
    response
}

/// A small JSON error body: `{"error": "..."}`.
pub fn json_error(status: StatusCode, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": message }).to_string();
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}
