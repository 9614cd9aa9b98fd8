//! The aggregator's JSON-RPC 2.0 interface: envelope, methods, error codes,
//! and the typed params and results of each method.
//!
//! | method | params | result |
//! |---|---|---|
//! | [`SUBMIT_COMMITMENT`] | [`SubmitCommitmentParams`] | [`SubmitCommitmentResult`] |
//! | [`GET_INCLUSION_PROOF`] | [`GetInclusionProofParams`] | [`InclusionProofResponse`] |
//! | [`GET_BLOCK_HEIGHT`] | none | [`BlockHeightResult`] |
//! | [`GET_TRUST_BASE`] | none | [`TrustBaseResult`] |
//!
//! Submitting the very commitment already stored answers
//! [`SubmitStatus::AlreadyCommitted`], so clients may retry freely; a
//! different commitment for a stored request id is a [`DOUBLE_SPEND`] error.
//! Field names on the wire are camelCase.

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use crate::certificate::{CertificateError, CertifiedRoot, TrustBase};
use crate::commitment::{Commitment, CommitmentError};
use crate::hash::RequestId;
use crate::smt::{MerkleProof, ProofError};

/// Submit a commitment for inclusion in the tree.
pub const SUBMIT_COMMITMENT: &str = "submit_commitment";
/// Fetch the inclusion or exclusion proof of a request id.
pub const GET_INCLUSION_PROOF: &str = "get_inclusion_proof";
/// Fetch the current block height.
pub const GET_BLOCK_HEIGHT: &str = "get_block_height";
/// Fetch the key that certifies roots.
pub const GET_TRUST_BASE: &str = "get_trust_base";

/// The body is not valid JSON.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid request object.
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The params do not fit the method.
pub const INVALID_PARAMS: i64 = -32602;
/// The server failed for a reason of its own.
pub const INTERNAL_ERROR: i64 = -32603;
/// The commitment's signature does not verify.
pub const INVALID_SIGNATURE: i64 = -32001;
/// The commitment's request id is not derived from its authenticator.
pub const REQUEST_ID_MISMATCH: i64 = -32002;
/// A different commitment is already stored for this request id.
pub const DOUBLE_SPEND: i64 = -32003;

/// The `"jsonrpc": "2.0"` member; any other version is refused on input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct JsonRpcVersion;

impl JsonRpcVersion {
    /// The only version spoken.
    pub const TEXT: &'static str = "2.0";
}

impl Serialize for JsonRpcVersion {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(Self::TEXT)
    }
}

impl<'de> Deserialize<'de> for JsonRpcVersion {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text == Self::TEXT {
            Ok(JsonRpcVersion)
        } else {
            Err(serde::de::Error::custom(format!(
                "unsupported jsonrpc version `{text}`, expected `2.0`"
            )))
        }
    }
}

/// A JSON-RPC request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcRequest {
    /// Always `"2.0"`.
    pub jsonrpc: JsonRpcVersion,
    /// Echoed back in the response; null if absent.
    #[serde(default)]
    pub id: Value,
    /// One of the method constants.
    pub method: String,
    /// Method params; null if absent.
    #[serde(default)]
    pub params: Value,
}

impl RpcRequest {
    /// A request with already-built params.
    pub fn new(id: impl Into<Value>, method: impl Into<String>, params: Value) -> RpcRequest {
        RpcRequest {
            jsonrpc: JsonRpcVersion,
            id: id.into(),
            method: method.into(),
            params,
        }
    }

    /// A request whose params are `params` serialized.
    pub fn with_params<T: Serialize>(
        id: impl Into<Value>,
        method: impl Into<String>,
        params: &T,
    ) -> Result<RpcRequest, serde_json::Error> {
        Ok(RpcRequest::new(id, method, serde_json::to_value(params)?))
    }

    /// The params as `T`, or the [`INVALID_PARAMS`] error to answer with.
    pub fn parse_params<T: DeserializeOwned>(&self) -> Result<T, RpcError> {
        T::deserialize(&self.params).map_err(|err| RpcError::invalid_params(err.to_string()))
    }
}

/// The error object of a failed call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, thiserror::Error)]
#[error("rpc error {code}: {message}")]
pub struct RpcError {
    /// One of the error code constants.
    pub code: i64,
    /// A short lowercase description.
    pub message: String,
    /// Extra detail, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<Value>,
}

impl RpcError {
    /// An error with no data.
    pub fn new(code: i64, message: impl Into<String>) -> RpcError {
        RpcError {
            code,
            message: message.into(),
            data: None,
        }
    }

    /// The same error carrying `data`.
    pub fn with_data(self, data: Value) -> RpcError {
        RpcError {
            data: Some(data),
            ..self
        }
    }

    /// [`PARSE_ERROR`] with the parser's message.
    pub fn parse_error(detail: impl Into<String>) -> RpcError {
        RpcError::new(PARSE_ERROR, format!("parse error: {}", detail.into()))
    }

    /// [`INVALID_REQUEST`] explaining what is wrong.
    pub fn invalid_request(detail: impl Into<String>) -> RpcError {
        RpcError::new(
            INVALID_REQUEST,
            format!("invalid request: {}", detail.into()),
        )
    }

    /// [`METHOD_NOT_FOUND`] naming the method.
    pub fn method_not_found(method: &str) -> RpcError {
        RpcError::new(METHOD_NOT_FOUND, format!("method `{method}` not found"))
    }

    /// [`INVALID_PARAMS`] explaining what is wrong.
    pub fn invalid_params(detail: impl Into<String>) -> RpcError {
        RpcError::new(INVALID_PARAMS, format!("invalid params: {}", detail.into()))
    }

    /// [`INTERNAL_ERROR`] explaining what failed.
    pub fn internal(detail: impl Into<String>) -> RpcError {
        RpcError::new(INTERNAL_ERROR, format!("internal error: {}", detail.into()))
    }

    /// [`DOUBLE_SPEND`] for `request_id`.
    pub fn double_spend(request_id: &RequestId) -> RpcError {
        RpcError::new(
            DOUBLE_SPEND,
            format!("double spend: request id `{request_id}` already holds a different commitment"),
        )
    }
}

impl From<CommitmentError> for RpcError {
    fn from(err: CommitmentError) -> Self {
        let code = match err {
            CommitmentError::RequestIdMismatch { .. } => REQUEST_ID_MISMATCH,
            CommitmentError::InvalidSignature { .. } => INVALID_SIGNATURE,
        };
        RpcError::new(code, err.to_string())
    }
}

/// A JSON-RPC response: `result` or `error`, never both.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RpcResponse {
    /// Always `"2.0"`.
    pub jsonrpc: JsonRpcVersion,
    /// The request's id (null if the request could not be read).
    pub id: Value,
    /// The `result` or `error` member.
    #[serde(flatten)]
    pub outcome: RpcOutcome,
}

/// The part of a response that differs between success and failure.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RpcOutcome {
    /// The call succeeded.
    #[serde(rename = "result")]
    Result(Value),
    /// The call failed.
    #[serde(rename = "error")]
    Error(RpcError),
}

/// Why a response could not be turned into the expected result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum RpcCallError {
    /// The server answered with an error.
    #[error(transparent)]
    Remote(#[from] RpcError),
    /// The server's result does not have the expected shape.
    #[error("unexpected result shape: {0}")]
    UnexpectedResult(String),
}

impl RpcResponse {
    /// A successful response.
    pub fn success(id: Value, result: Value) -> RpcResponse {
        RpcResponse {
            jsonrpc: JsonRpcVersion,
            id,
            outcome: RpcOutcome::Result(result),
        }
    }

    /// A failed response.
    pub fn error(id: Value, error: RpcError) -> RpcResponse {
        RpcResponse {
            jsonrpc: JsonRpcVersion,
            id,
            outcome: RpcOutcome::Error(error),
        }
    }

    /// The response for a handler's outcome; a result that cannot be
    /// serialized becomes an [`INTERNAL_ERROR`].
    pub fn from_result<T: Serialize>(id: Value, result: Result<T, RpcError>) -> RpcResponse {
        match result.and_then(|value| {
            serde_json::to_value(value).map_err(|err| RpcError::internal(err.to_string()))
        }) {
            Ok(value) => RpcResponse::success(id, value),
            Err(error) => RpcResponse::error(id, error),
        }
    }

    /// The raw result, or the server's error.
    pub fn into_result(self) -> Result<Value, RpcError> {
        match self.outcome {
            RpcOutcome::Result(value) => Ok(value),
            RpcOutcome::Error(error) => Err(error),
        }
    }

    /// The result decoded as `T`.
    pub fn decode<T: DeserializeOwned>(self) -> Result<T, RpcCallError> {
        let value = self.into_result()?;
        serde_json::from_value(value).map_err(|err| RpcCallError::UnexpectedResult(err.to_string()))
    }
}

/// Params of [`SUBMIT_COMMITMENT`]: the commitment itself.
pub type SubmitCommitmentParams = Commitment;

/// Result of [`SUBMIT_COMMITMENT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SubmitCommitmentResult {
    /// Whether the commitment is new.
    pub status: SubmitStatus,
}

/// How a submitted commitment was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SubmitStatus {
    /// Stored now.
    Success,
    /// This exact commitment was already stored.
    AlreadyCommitted,
}

/// Params of [`GET_INCLUSION_PROOF`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GetInclusionProofParams {
    /// The request id to prove.
    pub request_id: RequestId,
}

/// Result of [`GET_INCLUSION_PROOF`]: the stored commitment (if any), a
/// proof for its request id, and the certified root the proof is against.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InclusionProofResponse {
    /// The request id the proof is about.
    pub request_id: RequestId,
    /// The stored commitment, or null if the request id is unspent.
    pub commitment: Option<Commitment>,
    /// Inclusion of the commitment's leaf, or exclusion of the request id.
    pub merkle_proof: MerkleProof,
    /// The root the proof is against, signed by the testnet.
    pub certified_root: CertifiedRoot,
}

/// What a verified [`InclusionProofResponse`] shows.
// One value per verification, so the unboxed commitment costs nothing worth
// a `Box` in every caller's match.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProofOutcome {
    /// The request id is spent by this commitment.
    Included(Commitment),
    /// The request id is unspent as of the certified root.
    Excluded,
}

/// Why an [`InclusionProofResponse`] was not believed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InclusionProofError {
    /// The root is not certified by the trust base.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// The included commitment is itself invalid.
    #[error(transparent)]
    Commitment(#[from] CommitmentError),
    /// The response is about a different request id.
    #[error("response is about request id `{actual}`, expected `{expected}`")]
    RequestIdMismatch {
        /// The request id that was asked for, or the response's own.
        expected: RequestId,
        /// The request id found instead.
        actual: RequestId,
    },
    /// The Merkle proof does not hold against the certified root.
    #[error("merkle proof for request id `{request_id}` does not hold: {source}")]
    Proof {
        /// The request id proved.
        request_id: RequestId,
        /// The proof failure.
        #[source]
        source: ProofError,
    },
}

impl InclusionProofResponse {
    /// Verifies the certificate, then the commitment and its inclusion, or
    /// the request id's exclusion when there is no commitment.
    ///
    /// This trusts `request_id` as given; use
    /// [`InclusionProofResponse::verify_request`] to also check it is the one
    /// asked for.
    pub fn verify(&self, trust_base: &TrustBase) -> Result<ProofOutcome, InclusionProofError> {
        trust_base.verify(&self.certified_root)?;
        let root = &self.certified_root.root;
        let proof_error = |source| InclusionProofError::Proof {
            request_id: self.request_id,
            source,
        };
        match &self.commitment {
            Some(commitment) => {
                commitment.verify()?;
                if commitment.request_id != self.request_id {
                    return Err(InclusionProofError::RequestIdMismatch {
                        expected: self.request_id,
                        actual: commitment.request_id,
                    });
                }
                self.merkle_proof
                    .verify_inclusion(root, &self.request_id, &commitment.leaf_hash())
                    .map_err(proof_error)?;
                Ok(ProofOutcome::Included(commitment.clone()))
            }
            None => {
                self.merkle_proof
                    .verify_exclusion(root, &self.request_id)
                    .map_err(proof_error)?;
                Ok(ProofOutcome::Excluded)
            }
        }
    }

    /// [`InclusionProofResponse::verify`], after checking that the response
    /// is about `requested`.
    pub fn verify_request(
        &self,
        trust_base: &TrustBase,
        requested: &RequestId,
    ) -> Result<ProofOutcome, InclusionProofError> {
        if self.request_id != *requested {
            return Err(InclusionProofError::RequestIdMismatch {
                expected: *requested,
                actual: self.request_id,
            });
        }
        self.verify(trust_base)
    }
}

/// Result of [`GET_BLOCK_HEIGHT`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlockHeightResult {
    /// The current block height.
    pub block_height: u64,
}

/// Result of [`GET_TRUST_BASE`].
pub type TrustBaseResult = TrustBase;

#[cfg(test)]
mod tests;
