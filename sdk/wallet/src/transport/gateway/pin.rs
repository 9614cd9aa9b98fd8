//! Pinning a DAG: one CAR through `dag/import`, or one `block/put` per block.
//!
//! The two paths are the `fanout` variant: with fanout 1 the whole DAG goes
//! in one request, which a per-client rate limit barely notices; with more,
//! every block is its own request, `fanout` at a time, which is faster on an
//! unlimited link and meets 429s on a limited one.

use bytes::Bytes;
use futures::{StreamExt, TryStreamExt};
use reqwest::header::CONTENT_TYPE;
use serde::Deserialize;
use sphere_protocol::ipld::{Block, BlockError, Cid, write_car};

use super::{CAR_MEDIA_TYPE, GatewayClient, GatewayError, rejected};
use crate::perf;
use crate::transport::retry::{CallCounters, Tally};

/// What pinning one DAG took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PinReport {
    /// HTTP requests sent, retries included.
    pub requests: u32,
    /// Requests that were retries of an earlier refused or unanswered one.
    pub retries: u32,
    /// Answers of 429.
    pub rate_limited: u32,
}

impl From<Tally> for PinReport {
    fn from(tally: Tally) -> Self {
        PinReport {
            requests: tally.requests,
            retries: tally.retries,
            rate_limited: tally.rate_limited,
        }
    }
}

const PIN_COUNTERS: CallCounters = CallCounters {
    service: perf::Wait::Gateway,
    attempt: None,
    rate_limited: perf::names::GATEWAY_429,
    retry: Some(perf::names::PIN_RETRY),
};

/// One line of `dag/import`'s NDJSON answer; stats lines have no `Root`.
#[derive(Debug, Deserialize)]
struct ImportLine {
    #[serde(rename = "Root")]
    root: Option<ImportRoot>,
}

#[derive(Debug, Deserialize)]
struct ImportRoot {
    #[serde(rename = "Cid")]
    cid: CidLink,
    #[serde(rename = "PinErrorMsg", default)]
    pin_error: String,
}

/// `{"/": "<cid>"}`, as Kubo writes a CID in JSON.
#[derive(Debug, Deserialize)]
struct CidLink {
    #[serde(rename = "/")]
    cid: String,
}

/// One line of `block/put`'s answer.
#[derive(Debug, Deserialize)]
struct PutLine {
    #[serde(rename = "Key")]
    key: String,
}

impl GatewayClient {
    /// Pins the DAG under `root` made of `blocks` (the root's own block
    /// included): with `fanout` 1 (or 0) as one CAR through
    /// `/api/v0/dag/import`, otherwise one `/api/v0/block/put` per block with
    /// at most `fanout` in flight. Each request is retried per the policy;
    /// the first that fails for good fails the pin.
    pub async fn pin(
        &self,
        root: Cid,
        blocks: &[Block],
        fanout: u16,
    ) -> Result<PinReport, GatewayError> {
        let _timer = perf::time(perf::names::PIN_CAR);
        let tally = if fanout <= 1 {
            self.import_car(root, blocks).await?
        } else {
            self.put_blocks(root, blocks, usize::from(fanout)).await?
        };
        Ok(PinReport::from(tally))
    }

    async fn import_car(&self, root: Cid, blocks: &[Block]) -> Result<Tally, GatewayError> {
        let car = write_car(&[root], blocks)
            .await
            .map_err(|source| GatewayError::InvalidCar { root, source })?;
        let car = Bytes::from(car);
        let url = self.endpoint("/api/v0/dag/import?pin-roots=true");
        let operation = || format!("pin of `{root}`");
        let mut tally = Tally::default();
        let build = || {
            self.inner
                .http
                .post(&url)
                .header(CONTENT_TYPE, CAR_MEDIA_TYPE)
                .body(car.clone())
        };
        let answer = self
            .send(&operation, &url, PIN_COUNTERS, &mut tally, build)
            .await?;
        if !answer.status.is_success() {
            return Err(rejected(operation(), &url, &answer));
        }
        let bad = |reason: String| GatewayError::BadResponse {
            operation: operation(),
            url: url.clone(),
            reason,
        };
        let text = String::from_utf8_lossy(&answer.body);
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let line: ImportLine = serde_json::from_str(line)
                .map_err(|e| bad(format!("cannot read ndjson line `{line}`: {e}")))?;
            let Some(pinned) = line.root else { continue };
            let cid: Cid = pinned
                .cid
                .cid
                .parse()
                .map_err(|e| bad(format!("invalid root cid `{}`: {e}", pinned.cid.cid)))?;
            if cid != root {
                continue;
            }
            if !pinned.pin_error.is_empty() {
                return Err(GatewayError::PinFailed {
                    root,
                    message: pinned.pin_error,
                });
            }
            return Ok(tally);
        }
        Err(bad(format!("no line reports root `{root}`")))
    }

    async fn put_blocks(
        &self,
        root: Cid,
        blocks: &[Block],
        fanout: usize,
    ) -> Result<Tally, GatewayError> {
        // Owned blocks and a cloned client keep each put future free of
        // borrowed lifetimes, so a pin stays `Send` (callers spawn it); a
        // block clone only bumps its `Bytes` refcount.
        futures::stream::iter(blocks.iter().cloned())
            .map(|block| {
                let client = self.clone();
                async move { client.put_block(root, &block).await }
            })
            .buffer_unordered(fanout)
            .try_fold(Tally::default(), |mut total, tally| async move {
                total.add(tally);
                Ok(total)
            })
            .await
    }

    async fn put_block(&self, root: Cid, block: &Block) -> Result<Tally, GatewayError> {
        let codec = block.codec().map_err(|e| GatewayError::InvalidBlock {
            cid: block.cid,
            source: BlockError::UnsupportedCodec {
                cid: block.cid,
                codec: e.0,
            },
        })?;
        let url = self.endpoint(&format!(
            "/api/v0/block/put?cid-codec={}&mhtype=sha2-256&pin=true",
            codec.name()
        ));
        let operation = || format!("block put of `{}` (pin of `{root}`)", block.cid);
        let mut tally = Tally::default();
        let build = || {
            self.inner
                .http
                .post(&url)
                .header(CONTENT_TYPE, "application/octet-stream")
                .body(block.data.clone())
        };
        let answer = self
            .send(&operation, &url, PIN_COUNTERS, &mut tally, build)
            .await?;
        if !answer.status.is_success() {
            return Err(rejected(operation(), &url, &answer));
        }
        let bad = |reason: String| GatewayError::BadResponse {
            operation: operation(),
            url: url.clone(),
            reason,
        };
        let text = String::from_utf8_lossy(&answer.body);
        let line = text
            .lines()
            .find(|l| !l.trim().is_empty())
            .ok_or_else(|| bad("empty answer".to_owned()))?;
        let put: PutLine =
            serde_json::from_str(line).map_err(|e| bad(format!("cannot read `{line}`: {e}")))?;
        let key: Cid = put
            .key
            .parse()
            .map_err(|e| bad(format!("invalid key `{}`: {e}", put.key)))?;
        if key != block.cid {
            return Err(bad(format!("stored as `{key}`, expected `{}`", block.cid)));
        }
        Ok(tally)
    }
}
