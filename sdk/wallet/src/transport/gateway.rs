//! The IPFS gateway's client: pin DAGs, fetch them back as CARs, and check
//! that pinned blocks are visible to the public.
//!
//! [`GatewayClient`] speaks the Kubo RPC subset (`/api/v0/...`, the node the
//! wallet pins to) and the trustless gateway (`/ipfs/{cid}`, what other
//! devices read, where a fresh pin shows only after it has propagated). Every
//! request names the wallet with `x-sphere-client` and is retried on 429,
//! 5xx and dropped connections per [`RetryPolicy`]; a 5xx carrying a Kubo
//! error object is the node's own final answer and is not retried.
//!
//! - [`GatewayClient::pin`]: one CAR through `dag/import` (fanout 1), or one
//!   `block/put` per block with up to `fanout` in flight;
//! - [`GatewayClient::fetch_car`], [`GatewayClient::fetch_many`]: whole DAGs
//!   as verified CARs, waiting out 404s until the propagation deadline;
//! - [`GatewayClient::head`], [`GatewayClient::head_verify`]: visibility;
//! - [`GatewayClient::block_get`]: one block from the pinning node.
//!
//! ```no_run
//! # async fn run(root: sphere_protocol::ipld::Cid, blocks: Vec<sphere_protocol::ipld::Block>) -> Result<(), Box<dyn std::error::Error>> {
//! use sphere_sdk::{config::Timers, transport::gateway::GatewayClient};
//!
//! let gateway = GatewayClient::new("http://127.0.0.1:41237", "peer-1", &Timers::default())?;
//! let report = gateway.pin(root, &blocks, 1).await?;
//! gateway.head_verify(&[root]).await?;
//! let car = gateway.fetch_car(root).await?;
//! assert_eq!(car.blocks.len(), blocks.len());
//! # let _ = report; Ok(()) }
//! ```

mod pin;
mod read;

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use sphere_protocol::ipld::{BlockError, CarError, Cid};

pub use pin::PinReport;
pub use read::HeadVerifyReport;

use super::retry::{
    Answer, CallCounters, LastAnswer, RetryPolicy, SendError, Tally, TransportError, base_url,
    http_client, send_with_retry,
};
use crate::config::Timers;

/// Content type of a CARv1 upload or answer.
pub const CAR_MEDIA_TYPE: &str = "application/vnd.ipld.car";

/// Why a gateway operation failed.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// Every attempt was refused (429, 5xx) or unanswered.
    #[error("{operation} at `{url}` failed after {attempts} attempts: {last}")]
    Exhausted {
        /// What was being done, naming the CID (`pin of `bafy…``).
        operation: String,
        /// The request URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What the last attempt saw.
        last: LastAnswer,
    },
    /// The request could not be built or sent at all.
    #[error("{operation} at `{url}` could not be sent: {reason}")]
    Request {
        /// What was being done.
        operation: String,
        /// The request URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// A final answer that is not success: a 4xx, or the node's own error.
    #[error("{operation} at `{url}` was refused with {status}: {message}")]
    Rejected {
        /// What was being done.
        operation: String,
        /// The request URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The node's message, or the start of the body.
        message: String,
    },
    /// A success answer that is not what the request should give.
    #[error("{operation} at `{url}` gave an unexpected answer: {reason}")]
    BadResponse {
        /// What was being done.
        operation: String,
        /// The request URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The node stored the CAR but could not pin its root (the DAG is
    /// incomplete).
    #[error("pin of `{root}` failed: {message}")]
    PinFailed {
        /// The root that was not pinned.
        root: Cid,
        /// The node's `PinErrorMsg`.
        message: String,
    },
    /// A CAR could not be written, or one received does not verify.
    #[error("car of `{root}` is invalid: {source}")]
    InvalidCar {
        /// The DAG's root.
        root: Cid,
        /// What is wrong.
        #[source]
        source: CarError,
    },
    /// A block does not match its CID or uses an unsupported codec.
    #[error("block `{cid}` is invalid: {source}")]
    InvalidBlock {
        /// The block's CID.
        cid: Cid,
        /// What is wrong.
        #[source]
        source: BlockError,
    },
    /// The gateway kept answering 404 until the deadline.
    #[error("`{cid}` was not found through the gateway after {waited:?}")]
    NotFound {
        /// The CID asked for.
        cid: Cid,
        /// How long was waited.
        waited: Duration,
    },
    /// Some pinned CIDs never became visible before the deadline.
    #[error("{} not visible through the gateway after {waited:?}", cid_list(cids))]
    NotVisible {
        /// The CIDs still answering 404.
        cids: Vec<Cid>,
        /// How long was waited.
        waited: Duration,
    },
}

/// `` `a`, `b` `` for an error message.
fn cid_list(cids: &[Cid]) -> String {
    let mut text = String::new();
    for (i, cid) in cids.iter().enumerate() {
        let sep = if i == 0 { "" } else { ", " };
        let _ = write!(text, "{sep}`{cid}`");
    }
    text
}

/// A client of one IPFS gateway. Cheap to clone; clones share the
/// connection pool.
#[derive(Debug, Clone)]
pub struct GatewayClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    http: reqwest::Client,
    policy: RetryPolicy,
    timers: Timers,
}

impl GatewayClient {
    /// A client of the gateway at `base_url`, sending `x-sphere-client:
    /// <client_id>`, retrying per [`RetryPolicy::from_timers`], and waiting
    /// for visibility per `timers`' HEAD-verify settings.
    pub fn new(base_url: &str, client_id: &str, timers: &Timers) -> Result<Self, TransportError> {
        Self::with_policy(
            base_url,
            client_id,
            timers,
            RetryPolicy::from_timers(timers),
        )
    }

    /// [`GatewayClient::new`] with an explicit retry policy.
    pub fn with_policy(
        url: &str,
        client_id: &str,
        timers: &Timers,
        policy: RetryPolicy,
    ) -> Result<Self, TransportError> {
        Ok(GatewayClient {
            inner: Arc::new(Inner {
                url: base_url("gateway", url)?,
                http: http_client(client_id)?,
                policy,
                timers: *timers,
            }),
        })
    }

    /// The gateway's base URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    fn endpoint(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.inner.url)
    }

    /// Sends one request with retries; `operation` names it in errors.
    async fn send(
        &self,
        operation: &(dyn Fn() -> String + Sync),
        url: &str,
        counters: CallCounters,
        tally: &mut Tally,
        build: impl FnMut() -> reqwest::RequestBuilder,
    ) -> Result<Answer, GatewayError> {
        let retry_5xx = |answer: &Answer| kubo_error_message(answer).is_none();
        send_with_retry(&self.inner.policy, counters, tally, build, retry_5xx)
            .await
            .map_err(|e| match e {
                SendError::Exhausted { attempts, last } => GatewayError::Exhausted {
                    operation: operation(),
                    url: url.to_owned(),
                    attempts,
                    last,
                },
                SendError::Unsendable(reason) => GatewayError::Request {
                    operation: operation(),
                    url: url.to_owned(),
                    reason,
                },
            })
    }
}

/// The `Message` of a Kubo error object (`{"Message","Code","Type":"error"}`).
fn kubo_error_message(answer: &Answer) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(&answer.body).ok()?;
    if value.get("Type")?.as_str()? != "error" {
        return None;
    }
    Some(value.get("Message")?.as_str()?.to_owned())
}

/// The error for a final answer that is not success.
fn rejected(operation: String, url: &str, answer: &Answer) -> GatewayError {
    GatewayError::Rejected {
        operation,
        url: url.to_owned(),
        status: answer.status,
        message: kubo_error_message(answer).unwrap_or_else(|| answer.body_excerpt()),
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use reqwest::header::HeaderMap;
    use sphere_protocol::ipld::{Block, Codec};

    use super::*;

    fn answer(status: StatusCode, body: &'static str) -> Answer {
        Answer {
            status,
            headers: HeaderMap::new(),
            body: Bytes::from_static(body.as_bytes()),
        }
    }

    #[test]
    fn kubo_errors_are_told_from_other_bodies() {
        let kubo = answer(
            StatusCode::INTERNAL_SERVER_ERROR,
            r#"{"Message":"block was not found locally","Code":0,"Type":"error"}"#,
        );
        assert_eq!(
            kubo_error_message(&kubo).as_deref(),
            Some("block was not found locally")
        );
        let model = answer(
            StatusCode::SERVICE_UNAVAILABLE,
            r#"{"error":"service unavailable"}"#,
        );
        assert_eq!(kubo_error_message(&model), None);
        assert_eq!(
            kubo_error_message(&answer(StatusCode::BAD_GATEWAY, "oops")),
            None
        );
        let err = rejected("block get of `x`".into(), "http://g/api", &kubo);
        assert!(
            err.to_string()
                .ends_with("500 Internal Server Error: block was not found locally"),
            "{err}"
        );
    }

    #[test]
    fn not_visible_lists_every_cid() {
        let a = Block::new(Codec::Raw, b"a".to_vec()).cid;
        let b = Block::new(Codec::Raw, b"b".to_vec()).cid;
        let err = GatewayError::NotVisible {
            cids: vec![a, b],
            waited: Duration::from_millis(300),
        };
        assert_eq!(
            err.to_string(),
            format!("`{a}`, `{b}` not visible through the gateway after 300ms")
        );
    }

    #[test]
    fn base_url_is_checked() {
        let err = GatewayClient::new("127.0.0.1:5001", "p", &Timers::default()).unwrap_err();
        assert!(err.to_string().contains("gateway url"), "{err}");
        let client = GatewayClient::new("http://127.0.0.1:5001/", "p", &Timers::default()).unwrap();
        assert_eq!(client.endpoint("/ipfs/x"), "http://127.0.0.1:5001/ipfs/x");
    }
}
