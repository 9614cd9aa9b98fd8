//! JSON-RPC 2.0 dispatch for the aggregator.

use axum::{Json, body::Bytes, extract::State};
use serde_json::Value;
use sphere_protocol::{
    commitment::Commitment,
    rpc::{
        self, BlockHeightResult, GetInclusionProofParams, RpcError, RpcRequest, RpcResponse,
        SubmitCommitmentResult,
    },
};

use super::{Aggregator, SubmitError};

/// Answers one JSON-RPC request. Protocol errors are JSON-RPC errors with
/// HTTP 200, as JSON-RPC over HTTP expects.
pub(super) async fn handle(State(aggregator): State<Aggregator>, body: Bytes) -> Json<RpcResponse> {
    let request: RpcRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            let error = if serde_json::from_slice::<Value>(&body).is_ok() {
                RpcError::invalid_request(e.to_string())
            } else {
                RpcError::parse_error(e.to_string())
            };
            return Json(RpcResponse::error(Value::Null, error));
        }
    };
    let id = request.id.clone();
    Json(RpcResponse::from_result(
        id,
        dispatch(&aggregator, &request),
    ))
}

fn dispatch(aggregator: &Aggregator, request: &RpcRequest) -> Result<Value, RpcError> {
    match request.method.as_str() {
        rpc::SUBMIT_COMMITMENT => {
            let commitment: Commitment = request.parse_params()?;
            let (status, sealed) = aggregator.lock().submit(commitment).map_err(|e| match e {
                SubmitError::Invalid(invalid) => RpcError::from(invalid),
                SubmitError::DoubleSpend(request_id) => RpcError::double_spend(&request_id),
                SubmitError::Tree { .. } => RpcError::internal(e.to_string()),
            })?;
            if let Some(block) = sealed {
                aggregator.record(&block);
            }
            to_value(SubmitCommitmentResult { status })
        }
        rpc::GET_INCLUSION_PROOF => {
            let GetInclusionProofParams { request_id } = request.parse_params()?;
            let proof = aggregator
                .lock()
                .proof(request_id)
                .map_err(RpcError::internal)?;
            to_value(proof)
        }
        rpc::GET_BLOCK_HEIGHT => to_value(BlockHeightResult {
            block_height: aggregator.lock().height(),
        }),
        rpc::GET_TRUST_BASE => to_value(aggregator.lock().trust_base()),
        other => Err(RpcError::method_not_found(other)),
    }
}

fn to_value<T: serde::Serialize>(value: T) -> Result<Value, RpcError> {
    serde_json::to_value(value).map_err(|e| RpcError::internal(e.to_string()))
}
