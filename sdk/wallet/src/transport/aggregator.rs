//! The aggregator's JSON-RPC client: submit commitments, fetch and verify
//! inclusion proofs.
//!
//! [`AggregatorClient`] sends every call as one JSON-RPC request to `POST /`,
//! naming itself with `x-sphere-client`, and retries calls refused with 429,
//! answered with a 5xx, or left unanswered, per [`RetryPolicy`]. Retrying a
//! submit is safe: the aggregator answers a resubmitted identical commitment
//! with [`SubmitStatus::AlreadyCommitted`], which counts as success here.
//!
//! ```no_run
//! # async fn run(commitment: sphere_protocol::commitment::Commitment) -> Result<(), Box<dyn std::error::Error>> {
//! use sphere_sdk::{config::Timers, transport::aggregator::AggregatorClient};
//!
//! let timers = Timers::default();
//! let aggregator = AggregatorClient::new("http://127.0.0.1:41235", "peer-1", &timers)?;
//! aggregator.submit(&commitment).await?;
//! let (included, _proof) = aggregator
//!     .wait_for_inclusion(&commitment.request_id, timers.proof_deadline(), timers.proof_poll())
//!     .await?;
//! assert_eq!(included, commitment);
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::CONTENT_TYPE;
use serde::Serialize;
use serde::de::DeserializeOwned;
use sphere_protocol::certificate::TrustBase;
use sphere_protocol::commitment::Commitment;
use sphere_protocol::hash::RequestId;
use sphere_protocol::rpc::{
    self, BlockHeightResult, GetInclusionProofParams, InclusionProofError, InclusionProofResponse,
    ProofOutcome, RpcCallError, RpcRequest, RpcResponse, SubmitCommitmentResult, SubmitStatus,
};
use tokio::sync::OnceCell;
use tokio::time::Instant;

use super::retry::{
    CallCounters, LastAnswer, RetryPolicy, SendError, Tally, TransportError, base_url, http_client,
    send_with_retry,
};
use crate::config::Timers;
use crate::perf;

/// Why an aggregator call failed.
#[derive(Debug, thiserror::Error)]
pub enum AggregatorError {
    /// Every attempt was refused (429, 5xx) or unanswered.
    #[error("`{method}` to `{url}` failed after {attempts} attempts: {last}")]
    Exhausted {
        /// The JSON-RPC method.
        method: &'static str,
        /// The aggregator's URL.
        url: String,
        /// Attempts made.
        attempts: u32,
        /// What the last attempt saw.
        last: LastAnswer,
    },
    /// The request could not be built or sent at all.
    #[error("`{method}` to `{url}` could not be sent: {reason}")]
    Request {
        /// The JSON-RPC method.
        method: &'static str,
        /// The aggregator's URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// An HTTP status that is neither success nor worth retrying.
    #[error("`{method}` to `{url}` answered {status}: {body}")]
    Http {
        /// The JSON-RPC method.
        method: &'static str,
        /// The aggregator's URL.
        url: String,
        /// The status.
        status: StatusCode,
        /// The start of the answer's body.
        body: String,
    },
    /// The answer is not the JSON-RPC response expected.
    #[error("`{method}` to `{url}` gave an unreadable answer: {reason}")]
    BadResponse {
        /// The JSON-RPC method.
        method: &'static str,
        /// The aggregator's URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A different commitment already spends this request id.
    #[error("double spend: request id `{request_id}` already holds a different commitment")]
    DoubleSpend {
        /// The contested request id.
        request_id: RequestId,
    },
    /// Any other JSON-RPC error.
    #[error("`{method}` failed with rpc error {code}: {message}")]
    Rpc {
        /// The JSON-RPC method.
        method: &'static str,
        /// The error code (see [`sphere_protocol::rpc`]).
        code: i64,
        /// The server's message.
        message: String,
    },
    /// A proof that does not verify against the trust base.
    #[error("inclusion proof for `{request_id}` does not verify: {source}")]
    InvalidProof {
        /// The request id asked about.
        request_id: RequestId,
        /// Why it was not believed.
        #[source]
        source: InclusionProofError,
    },
    /// The commitment was not included before the deadline.
    #[error("request id `{request_id}` was not included after {waited:?}")]
    NotIncluded {
        /// The request id waited for.
        request_id: RequestId,
        /// How long was waited.
        waited: Duration,
    },
}

/// A client of one aggregator. Cheap to clone; clones share the connection
/// pool and the cached trust base.
#[derive(Debug, Clone)]
pub struct AggregatorClient {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    url: String,
    http: reqwest::Client,
    policy: RetryPolicy,
    next_id: AtomicU64,
    trust_base: OnceCell<TrustBase>,
}

/// The `{}` params of methods that take none.
#[derive(Serialize)]
struct NoParams {}

const COUNTERS: CallCounters = CallCounters {
    service: perf::Wait::Aggregator,
    attempt: Some(perf::names::AGGREGATOR_CALL),
    rate_limited: perf::names::AGGREGATOR_429,
    retry: None,
};

impl AggregatorClient {
    /// A client of the aggregator at `base_url`, sending `x-sphere-client:
    /// <client_id>` and retrying per [`RetryPolicy::from_timers`].
    pub fn new(base_url: &str, client_id: &str, timers: &Timers) -> Result<Self, TransportError> {
        Self::with_policy(base_url, client_id, RetryPolicy::from_timers(timers))
    }

    /// [`AggregatorClient::new`] with an explicit retry policy.
    pub fn with_policy(
        url: &str,
        client_id: &str,
        policy: RetryPolicy,
    ) -> Result<Self, TransportError> {
        Ok(AggregatorClient {
            inner: Arc::new(Inner {
                url: base_url("aggregator", url)?,
                http: http_client(client_id)?,
                policy,
                next_id: AtomicU64::new(1),
                trust_base: OnceCell::new(),
            }),
        })
    }

    /// The aggregator's base URL.
    pub fn url(&self) -> &str {
        &self.inner.url
    }

    /// Submits `commitment`. [`SubmitStatus::AlreadyCommitted`] is success:
    /// a retry after a lost answer sees it.
    pub async fn submit(&self, commitment: &Commitment) -> Result<SubmitStatus, AggregatorError> {
        let result: Result<SubmitCommitmentResult, _> =
            self.call(rpc::SUBMIT_COMMITMENT, commitment).await;
        match result {
            Ok(result) => Ok(result.status),
            Err(AggregatorError::Rpc {
                code: rpc::DOUBLE_SPEND,
                ..
            }) => Err(AggregatorError::DoubleSpend {
                request_id: commitment.request_id,
            }),
            Err(other) => Err(other),
        }
    }

    /// The inclusion or exclusion proof of `request_id`, unverified.
    pub async fn inclusion_proof(
        &self,
        request_id: &RequestId,
    ) -> Result<InclusionProofResponse, AggregatorError> {
        let params = GetInclusionProofParams {
            request_id: *request_id,
        };
        self.call(rpc::GET_INCLUSION_PROOF, &params).await
    }

    /// The key that certifies roots, fetched on first use and then cached.
    pub async fn trust_base(&self) -> Result<TrustBase, AggregatorError> {
        self.inner
            .trust_base
            .get_or_try_init(|| self.call(rpc::GET_TRUST_BASE, &NoParams {}))
            .await
            .cloned()
    }

    /// The current block height.
    pub async fn block_height(&self) -> Result<u64, AggregatorError> {
        let result: BlockHeightResult = self.call(rpc::GET_BLOCK_HEIGHT, &NoParams {}).await?;
        Ok(result.block_height)
    }

    /// Polls every `poll` until `request_id` is included, then returns the
    /// included commitment and its verified proof.
    ///
    /// Every answer is verified against the trust base and `request_id`; one
    /// that does not verify is an error at once, not something to wait out.
    /// Gives up with [`AggregatorError::NotIncluded`] once `deadline` has
    /// passed.
    pub async fn wait_for_inclusion(
        &self,
        request_id: &RequestId,
        deadline: Duration,
        poll: Duration,
    ) -> Result<(Commitment, InclusionProofResponse), AggregatorError> {
        let trust_base = self.trust_base().await?;
        let started = Instant::now();
        loop {
            let response = self.inclusion_proof(request_id).await?;
            match response.verify_request(&trust_base, request_id) {
                Ok(ProofOutcome::Included(commitment)) => return Ok((commitment, response)),
                Ok(ProofOutcome::Excluded) => {}
                Err(source) => {
                    return Err(AggregatorError::InvalidProof {
                        request_id: *request_id,
                        source,
                    });
                }
            }
            let waited = started.elapsed();
            if waited >= deadline {
                return Err(AggregatorError::NotIncluded {
                    request_id: *request_id,
                    waited,
                });
            }
            perf::waited(
                perf::Wait::Poll,
                tokio::time::sleep(poll.min(deadline - waited)),
            )
            .await;
        }
    }

    /// One JSON-RPC call, retried per the policy, decoded as `T`.
    async fn call<T: DeserializeOwned>(
        &self,
        method: &'static str,
        params: &impl Serialize,
    ) -> Result<T, AggregatorError> {
        let inner = &*self.inner;
        let url = || inner.url.clone();
        let id = inner.next_id.fetch_add(1, Ordering::Relaxed);
        let request =
            RpcRequest::with_params(id, method, params).map_err(|e| AggregatorError::Request {
                method,
                url: url(),
                reason: format!("cannot encode params: {e}"),
            })?;
        let body = bytes::Bytes::from(serde_json::to_vec(&request).map_err(|e| {
            AggregatorError::Request {
                method,
                url: url(),
                reason: format!("cannot encode request: {e}"),
            }
        })?);
        let build = || {
            inner
                .http
                .post(&inner.url)
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        };
        let mut tally = Tally::default();
        let answer = send_with_retry(&inner.policy, COUNTERS, &mut tally, build, |_| true)
            .await
            .map_err(|e| match e {
                SendError::Exhausted { attempts, last } => AggregatorError::Exhausted {
                    method,
                    url: url(),
                    attempts,
                    last,
                },
                SendError::Unsendable(reason) => AggregatorError::Request {
                    method,
                    url: url(),
                    reason,
                },
            })?;
        if !answer.status.is_success() {
            return Err(AggregatorError::Http {
                method,
                url: url(),
                status: answer.status,
                body: answer.body_excerpt(),
            });
        }
        let bad = |reason: String| AggregatorError::BadResponse {
            method,
            url: url(),
            reason,
        };
        let response: RpcResponse = serde_json::from_slice(&answer.body)
            .map_err(|e| bad(format!("not a json-rpc response: {e}")))?;
        response.decode().map_err(|e| match e {
            RpcCallError::Remote(error) => AggregatorError::Rpc {
                method,
                code: error.code,
                message: error.message,
            },
            RpcCallError::UnexpectedResult(reason) => bad(reason),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_method_url_and_last_answer() {
        let err = AggregatorError::Exhausted {
            method: rpc::SUBMIT_COMMITMENT,
            url: "http://127.0.0.1:1".into(),
            attempts: 12,
            last: LastAnswer::Status(StatusCode::SERVICE_UNAVAILABLE),
        };
        assert_eq!(
            err.to_string(),
            "`submit_commitment` to `http://127.0.0.1:1` failed after 12 attempts: last answer 503 Service Unavailable"
        );
    }

    #[test]
    fn bad_urls_are_refused_at_construction() {
        let err = AggregatorClient::new("ftp://x", "peer", &Timers::default()).unwrap_err();
        assert!(
            err.to_string().contains("aggregator url `ftp://x`"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unreachable_aggregator_fails_after_the_policy_attempts() {
        // A port just released by the OS has nothing listening on it.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let policy = RetryPolicy {
            max_attempts: 3,
            base: Duration::from_millis(1),
            max: Duration::from_millis(2),
            server_second: Duration::from_millis(1),
        };
        let client =
            AggregatorClient::with_policy(&format!("http://127.0.0.1:{port}"), "t", policy)
                .unwrap();
        let err = client.block_height().await.unwrap_err();
        assert!(
            matches!(
                err,
                AggregatorError::Exhausted {
                    attempts: 3,
                    last: LastAnswer::NoAnswer(_),
                    ..
                }
            ),
            "{err}"
        );
    }
}
