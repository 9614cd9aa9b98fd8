//! The Kubo RPC subset: `/api/v0/dag/{import,export}` and
//! `/api/v0/block/{get,put,stat}`.
//!
//! These endpoints are the node the client pinned to, so they see every
//! stored block at once, with no propagation delay. Shapes follow Kubo:
//! POST only, the CID in the `arg` query parameter (bare or `/ipfs/<cid>`),
//! JSON answers with Kubo's field names (NDJSON where Kubo streams), and
//! errors as `{"Message", "Code", "Type": "error"}` with Kubo's codes (0 for
//! a server-side failure with status 500, 1 for a client error with 400).

use std::fmt::Display;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, Request, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use cid::Cid;
use serde::Deserialize;
use serde_json::json;
use sphere_protocol::ipld::{Block, CarError, Codec, check_block_size, read_car, write_car};

use super::GatewayState;
use super::dag::{Reach, WalkError, collect_dag, fetch};
use super::ipfs_path::{CidArgError, required_cid};
use super::store::StoreError;
use super::upload::{UploadError, read_uploads};

/// Content type of a CAR answer.
const CAR_CONTENT_TYPE: &str = "application/vnd.ipld.car";

/// A Kubo-shaped error answer.
#[derive(Debug)]
pub(crate) struct RpcError {
    status: StatusCode,
    /// Kubo's error type: 0 normal (server), 1 client.
    code: u8,
    message: String,
}

impl RpcError {
    fn client(message: impl Display) -> RpcError {
        RpcError {
            status: StatusCode::BAD_REQUEST,
            code: 1,
            message: message.to_string(),
        }
    }

    fn server(message: impl Display) -> RpcError {
        RpcError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            code: 0,
            message: message.to_string(),
        }
    }

    /// A block over the one limit both upload routes share: 413, as for a
    /// body over the request limit, so a client tells "too big" from "bad".
    fn too_large(message: impl Display) -> RpcError {
        RpcError {
            status: StatusCode::PAYLOAD_TOO_LARGE,
            code: 1,
            message: message.to_string(),
        }
    }

    /// What an offline Kubo node answers for a block it does not hold.
    fn not_local(cid: &Cid) -> RpcError {
        RpcError::server(not_local_message(cid))
    }

    fn walk(error: WalkError) -> RpcError {
        match error.absent_cid() {
            Some(cid) => RpcError::not_local(&cid),
            None => RpcError::server(error),
        }
    }
}

fn not_local_message(cid: &Cid) -> String {
    format!("block was not found locally (offline): ipld: could not find {cid}")
}

impl From<QueryRejection> for RpcError {
    fn from(e: QueryRejection) -> RpcError {
        RpcError::client(e.body_text())
    }
}

impl From<CidArgError> for RpcError {
    fn from(e: CidArgError) -> RpcError {
        RpcError::client(e)
    }
}

impl From<UploadError> for RpcError {
    fn from(e: UploadError) -> RpcError {
        let status = e.status();
        RpcError {
            status,
            code: if status.is_client_error() { 1 } else { 0 },
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for RpcError {
    fn from(e: StoreError) -> RpcError {
        match e {
            StoreError::Invalid(e) => RpcError::client(e),
            other => RpcError::server(other),
        }
    }
}

impl IntoResponse for RpcError {
    fn into_response(self) -> Response {
        let body = json!({"Message": self.message, "Code": self.code, "Type": "error"});
        (self.status, axum::Json(body)).into_response()
    }
}

/// The query parameters of the RPC endpoints (Kubo's option names).
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct RpcQuery {
    arg: Option<String>,
    cid_codec: Option<String>,
    format: Option<String>,
    mhtype: Option<String>,
    mhlen: Option<String>,
    pin_roots: Option<String>,
    stats: Option<String>,
}

type RpcQueryResult = Result<Query<RpcQuery>, QueryRejection>;

/// A Kubo boolean option: absent gives `default`; `true`/`1`/empty are on.
fn flag(value: Option<&str>, name: &str, default: bool) -> Result<bool, RpcError> {
    match value {
        None => Ok(default),
        Some("" | "true" | "1") => Ok(true),
        Some("false" | "0") => Ok(false),
        Some(other) => Err(RpcError::client(format!(
            "invalid value `{other}` for option \"{name}\" (expected true or false)"
        ))),
    }
}

/// Newline-delimited JSON, as Kubo streams its per-item answers.
fn ndjson(lines: &[serde_json::Value]) -> Response {
    let mut body = String::new();
    for line in lines {
        body.push_str(&line.to_string());
        body.push('\n');
    }
    let mut response = ([(CONTENT_TYPE, "application/json")], body).into_response();
    response
        .headers_mut()
        .insert("x-chunked-output", HeaderValue::from_static("1"));
    response
}

/// `POST /api/v0/dag/import`: verify and store every block of one or more
/// CARs, then report each root's pin.
///
/// All CARs are verified before anything is stored, so one bad block
/// refuses the whole request. A root whose DAG is incomplete is stored but
/// reported with a `PinErrorMsg`, as Kubo reports a failed recursive pin.
pub(crate) async fn dag_import(
    State(state): State<GatewayState>,
    query: RpcQueryResult,
    request: Request,
) -> Result<Response, RpcError> {
    let Query(query) = query?;
    let pin_roots = flag(query.pin_roots.as_deref(), "pin-roots", true)?;
    let stats = flag(query.stats.as_deref(), "stats", false)?;
    let files = read_uploads(request).await?;
    let mut roots: Vec<Cid> = Vec::new();
    let mut blocks = Vec::new();
    for file in &files {
        let car = read_car(file).await.map_err(|e| {
            let message = format!("car file refused, nothing was stored: {e}");
            match e {
                CarError::BlockTooLarge(_) => RpcError::too_large(message),
                _ => RpcError::client(message),
            }
        })?;
        for root in car.roots {
            if !roots.contains(&root) {
                roots.push(root);
            }
        }
        blocks.extend(car.blocks);
    }
    let block_count = blocks.len();
    let byte_count: usize = blocks.iter().map(|b| b.data.len()).sum();
    let store = state.store();
    store.put_all(blocks).await?;

    let mut lines = Vec::new();
    if pin_roots {
        for root in &roots {
            let pin_error = match collect_dag(store, root, Reach::Local) {
                Ok(_) => String::new(),
                Err(e) => e
                    .absent_cid()
                    .map_or_else(|| e.to_string(), |cid| not_local_message(&cid)),
            };
            lines.push(json!({"Root": {"Cid": {"/": root.to_string()}, "PinErrorMsg": pin_error}}));
        }
    }
    if stats {
        lines.push(json!({"Stats": {"BlockCount": block_count, "BlockBytesCount": byte_count}}));
    }
    Ok(ndjson(&lines))
}

/// `POST /api/v0/dag/export?arg=<root>`: a CARv1 of the whole DAG.
pub(crate) async fn dag_export(
    State(state): State<GatewayState>,
    query: RpcQueryResult,
) -> Result<Response, RpcError> {
    let Query(query) = query?;
    let root = required_cid(query.arg.as_deref(), "root")?;
    let blocks = collect_dag(state.store(), &root, Reach::Local).map_err(RpcError::walk)?;
    let car = write_car(&[root], &blocks)
        .await
        .map_err(|e| RpcError::server(format!("cannot write car for `{root}`: {e}")))?;
    Ok(([(CONTENT_TYPE, CAR_CONTENT_TYPE)], car).into_response())
}

/// `POST /api/v0/block/get?arg=<cid>`: the block's raw bytes.
pub(crate) async fn block_get(
    State(state): State<GatewayState>,
    query: RpcQueryResult,
) -> Result<Response, RpcError> {
    let Query(query) = query?;
    let cid = required_cid(query.arg.as_deref(), "cid")?;
    let block = fetch(state.store(), &cid, Reach::Local).map_err(RpcError::walk)?;
    Ok(([(CONTENT_TYPE, "application/octet-stream")], block.data).into_response())
}

/// `POST /api/v0/block/stat?arg=<cid>`: `{"Key", "Size"}`.
pub(crate) async fn block_stat(
    State(state): State<GatewayState>,
    query: RpcQueryResult,
) -> Result<Response, RpcError> {
    let Query(query) = query?;
    let cid = required_cid(query.arg.as_deref(), "cid")?;
    let data = state
        .store()
        .get(&cid)
        .ok_or_else(|| RpcError::not_local(&cid))?;
    Ok(axum::Json(json!({"Key": cid.to_string(), "Size": data.len()})).into_response())
}

/// `POST /api/v0/block/put?cid-codec=raw|dag-cbor&mhtype=sha2-256`: store
/// each uploaded file as a block; one `{"Key", "Size"}` line per file.
///
/// The CID is computed here, so a block cannot be stored under a wrong one.
/// dag-cbor data is checked to decode, because the gateway later walks its
/// links. Every stored block is kept, so Kubo's `pin` option is moot.
pub(crate) async fn block_put(
    State(state): State<GatewayState>,
    query: RpcQueryResult,
    request: Request,
) -> Result<Response, RpcError> {
    let Query(query) = query?;
    let codec = put_codec(&query)?;
    match query.mhtype.as_deref() {
        None | Some("sha2-256") => {}
        Some(other) => {
            return Err(RpcError::client(format!(
                "mhtype `{other}` is not supported (only sha2-256)"
            )));
        }
    }
    match query.mhlen.as_deref() {
        None | Some("-1" | "32") => {}
        Some(other) => {
            return Err(RpcError::client(format!(
                "mhlen `{other}` is not supported (sha2-256 digests are 32 bytes)"
            )));
        }
    }
    let files = read_uploads(request).await?;
    if files.is_empty() {
        return Err(RpcError::client("file argument \"data\" is required"));
    }
    // The limit `dag/import` applies to a block inside a CAR: without it a
    // block too large to import could still be put, and the two upload
    // paths of the `fanout` variant would disagree on what can be stored.
    for file in &files {
        check_block_size(file.len()).map_err(RpcError::too_large)?;
    }
    let blocks: Vec<Block> = files.into_iter().map(|f| Block::new(codec, f)).collect();
    for block in &blocks {
        block.links().map_err(RpcError::client)?;
    }
    let lines: Vec<_> = blocks
        .iter()
        .map(|b| json!({"Key": b.cid.to_string(), "Size": b.data.len()}))
        .collect();
    state.store().put_all(blocks).await?;
    Ok(ndjson(&lines))
}

/// The codec from `cid-codec`, or from the deprecated `format` option.
fn put_codec(query: &RpcQuery) -> Result<Codec, RpcError> {
    let (name, option) = match (&query.cid_codec, &query.format) {
        (Some(codec), _) => (codec.as_str(), "cid-codec"),
        (None, Some(format)) => (format.as_str(), "format"),
        (None, None) => return Ok(Codec::Raw),
    };
    match name {
        "raw" => Ok(Codec::Raw),
        "dag-cbor" | "cbor" => Ok(Codec::DagCbor),
        other => Err(RpcError::client(format!(
            "{option} `{other}` is not supported (use raw or dag-cbor)"
        ))),
    }
}
