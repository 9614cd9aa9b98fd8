//! The public read path: `GET` and `HEAD /ipfs/{cid}`, after the IPFS
//! trustless gateway specification.
//!
//! A block is served only once the propagation delay has passed since it
//! was first stored; before that the gateway answers 404, as a real public
//! gateway does while the content has not reached it. Every read first
//! spends the state's retrieval exchange with the pinning node. The answer
//! is the raw block (`?format=raw` or `Accept: application/vnd.ipld.raw`),
//! a CARv1 of the DAG (`?format=car` or `Accept: application/vnd.ipld.car`;
//! every block in it must have propagated), or, with neither, the block's
//! bytes typed by its codec. Errors are plain text, as gateways answer them.

use axum::extract::{Path, Query, State};
use axum::http::header::{
    ACCEPT, CACHE_CONTROL, CONTENT_DISPOSITION, CONTENT_TYPE, ETAG, HeaderName,
};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use cid::Cid;
use serde::Deserialize;
use sphere_protocol::ipld::{Codec, write_car};

use super::GatewayState;
use super::dag::{Reach, WalkError, collect_dag, fetch};
use super::ipfs_path::parse_cid_arg;

const RAW_CONTENT_TYPE: &str = "application/vnd.ipld.raw";
const CAR_ACCEPT: &str = "application/vnd.ipld.car";
const CAR_CONTENT_TYPE: &str = "application/vnd.ipld.car; version=1; order=dfs; dups=n";
/// Content under a CID never changes, so it may be cached for good.
const IMMUTABLE: &str = "public, max-age=29030400, immutable";

/// The query parameters of `/ipfs/{cid}`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) struct GatewayQuery {
    format: Option<String>,
    dag_scope: Option<String>,
}

/// What the client asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Wanted {
    /// The block's bytes, typed by codec.
    Plain,
    /// The block as `application/vnd.ipld.raw`.
    Raw,
    /// A CAR of the DAG (or only the root block, with `dag-scope=block`).
    Car { whole_dag: bool },
}

/// A plain-text gateway error.
fn text_error(status: StatusCode, message: impl Into<String>) -> Response {
    (
        status,
        [(CONTENT_TYPE, "text/plain; charset=utf-8")],
        message.into() + "\n",
    )
        .into_response()
}

fn walk_error(error: WalkError) -> Response {
    match error {
        WalkError::Missing(cid) => {
            text_error(StatusCode::NOT_FOUND, format!("block `{cid}` not found"))
        }
        WalkError::Pending(cid) => text_error(
            StatusCode::NOT_FOUND,
            format!("block `{cid}` not found (it has not propagated to this gateway yet)"),
        ),
        other => text_error(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
    }
}

/// What the request asks for, or why that is unsupported (a 400).
fn wanted(query: &GatewayQuery, headers: &HeaderMap) -> Result<Wanted, String> {
    let whole_dag = match query.dag_scope.as_deref() {
        None | Some("all") => true,
        // For dag-cbor and raw the "entity" is the block itself.
        Some("block" | "entity") => false,
        Some(other) => {
            return Err(format!(
                "unsupported dag-scope `{other}` (use all, entity or block)"
            ));
        }
    };
    match query.format.as_deref() {
        Some("raw") => return Ok(Wanted::Raw),
        Some("car") => return Ok(Wanted::Car { whole_dag }),
        Some("") | None => {}
        Some(other) => {
            return Err(format!(
                "unsupported format `{other}` (this gateway serves raw and car)"
            ));
        }
    }
    // The first of the two types the Accept header names wins.
    let accept = headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|item| {
            item.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    for media_type in accept {
        if media_type == CAR_ACCEPT {
            return Ok(Wanted::Car { whole_dag });
        }
        if media_type == RAW_CONTENT_TYPE {
            return Ok(Wanted::Raw);
        }
    }
    Ok(Wanted::Plain)
}

/// Headers every successful answer carries.
fn common_headers(cid: &Cid, etag: String) -> [(HeaderName, String); 5] {
    [
        (ETAG, format!("\"{etag}\"")),
        (CACHE_CONTROL, IMMUTABLE.to_owned()),
        (
            HeaderName::from_static("x-ipfs-path"),
            format!("/ipfs/{cid}"),
        ),
        (HeaderName::from_static("x-ipfs-roots"), cid.to_string()),
        (
            HeaderName::from_static("x-content-type-options"),
            "nosniff".to_owned(),
        ),
    ]
}

/// `GET`/`HEAD /ipfs/{cid}` (axum answers HEAD with this handler, dropping
/// the body but keeping `Content-Length`).
pub(crate) async fn get_ipfs(
    State(state): State<GatewayState>,
    Path(arg): Path<String>,
    query: Result<Query<GatewayQuery>, axum::extract::rejection::QueryRejection>,
    headers: HeaderMap,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e.body_text()),
    };
    let cid = match parse_cid_arg(&arg) {
        Ok(cid) => cid,
        Err(e) => return text_error(StatusCode::BAD_REQUEST, e.to_string()),
    };
    let wanted = match wanted(&query, &headers) {
        Ok(wanted) => wanted,
        Err(message) => return text_error(StatusCode::BAD_REQUEST, message),
    };
    // The public gateway asks the pinning node before it can answer, found
    // or not (a lookup that fails costs the exchange too).
    if !state.retrieval().is_zero() {
        tokio::time::sleep(state.retrieval()).await;
    }
    let reach = Reach::Propagated(state.propagation());
    match wanted {
        Wanted::Car { whole_dag } => {
            let blocks = if whole_dag {
                collect_dag(state.store(), &cid, reach)
            } else {
                fetch(state.store(), &cid, reach).map(|b| vec![b])
            };
            let blocks = match blocks {
                Ok(blocks) => blocks,
                Err(e) => return walk_error(e),
            };
            match write_car(&[cid], &blocks).await {
                Ok(car) => (
                    common_headers(&cid, format!("{cid}.car")),
                    [
                        (CONTENT_TYPE, CAR_CONTENT_TYPE.to_owned()),
                        (
                            CONTENT_DISPOSITION,
                            format!("attachment; filename=\"{cid}.car\""),
                        ),
                    ],
                    Bytes::from(car),
                )
                    .into_response(),
                Err(e) => text_error(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("cannot write car for `{cid}`: {e}"),
                ),
            }
        }
        Wanted::Raw | Wanted::Plain => {
            let block = match fetch(state.store(), &cid, reach) {
                Ok(block) => block,
                Err(e) => return walk_error(e),
            };
            let (content_type, etag) = match (wanted, Codec::try_from(cid.codec())) {
                (Wanted::Raw, _) => (RAW_CONTENT_TYPE, format!("{cid}.raw")),
                (_, Ok(Codec::DagCbor)) => ("application/vnd.ipld.dag-cbor", cid.to_string()),
                _ => ("application/octet-stream", cid.to_string()),
            };
            (
                common_headers(&cid, etag),
                [(CONTENT_TYPE, content_type)],
                block.data,
            )
                .into_response()
        }
    }
}
