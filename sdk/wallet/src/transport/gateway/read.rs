//! Reading back: CARs and blocks, and whether pinned CIDs are visible yet.
//!
//! Reads through `/ipfs/` see a block only once it has propagated, so a 404
//! there means "not yet" as often as "never": [`GatewayClient::fetch_car`]
//! and [`GatewayClient::head_verify`] wait it out with a doubling backoff
//! ([`Timers::head_verify_backoff`] to [`Timers::head_verify_backoff_max`])
//! until [`Timers::head_verify_deadline`].

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use futures::{StreamExt, TryStreamExt};
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use sphere_protocol::ipld::{Block, CarContents, Cid, read_car};
use tokio::time::Instant;

use super::{CAR_MEDIA_TYPE, GatewayClient, GatewayError, rejected};
use crate::config::Timers;
use crate::perf;
use crate::transport::retry::{CallCounters, Tally};

/// What HEAD-verifying a set of CIDs took.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeadVerifyReport {
    /// HEAD requests sent, retries included.
    pub requests: u32,
}

const READ_COUNTERS: CallCounters = CallCounters {
    service: perf::Wait::Gateway,
    attempt: None,
    rate_limited: perf::names::GATEWAY_429,
    retry: None,
};

/// The waits between visibility checks, doubling up to a maximum.
struct VisibilityWait {
    started: Instant,
    deadline: Duration,
    next: Duration,
    max: Duration,
}

impl VisibilityWait {
    fn new(timers: &Timers) -> Self {
        VisibilityWait {
            started: Instant::now(),
            deadline: timers.head_verify_deadline(),
            next: timers.head_verify_backoff(),
            max: timers.head_verify_backoff_max(),
        }
    }

    /// Sleeps before the next check, or `Err(waited)` once the deadline has
    /// passed. The last sleep is cut short so one check lands on the deadline.
    async fn pause(&mut self) -> Result<(), Duration> {
        let waited = self.started.elapsed();
        if waited >= self.deadline {
            return Err(waited);
        }
        perf::waited(
            perf::Wait::Poll,
            tokio::time::sleep(self.next.min(self.deadline - waited)),
        )
        .await;
        self.next = self.next.saturating_mul(2).min(self.max);
        Ok(())
    }
}

impl GatewayClient {
    /// The whole DAG under `root` as a CAR from `/ipfs/{root}?format=car`,
    /// every block verified against its CID and the DAG checked complete.
    ///
    /// A 404 (not propagated yet) is retried with the visibility backoff
    /// until the deadline, then [`GatewayError::NotFound`].
    pub async fn fetch_car(&self, root: Cid) -> Result<CarContents, GatewayError> {
        let _timer = perf::time(perf::names::FETCH_CAR);
        let url = self.endpoint(&format!("/ipfs/{root}?format=car"));
        let operation = || format!("fetch of `{root}`");
        let mut wait = VisibilityWait::new(&self.inner.timers);
        loop {
            let build = || self.inner.http.get(&url).header(ACCEPT, CAR_MEDIA_TYPE);
            let answer = self
                .send(
                    &operation,
                    &url,
                    READ_COUNTERS,
                    &mut Tally::default(),
                    build,
                )
                .await?;
            if answer.status.is_success() {
                return verified_dag(root, &answer.body, &url).await;
            }
            if answer.status != StatusCode::NOT_FOUND {
                return Err(rejected(operation(), &url, &answer));
            }
            wait.pause()
                .await
                .map_err(|waited| GatewayError::NotFound { cid: root, waited })?;
        }
    }

    /// [`GatewayClient::fetch_car`] of every root, in the order given, with
    /// at most `fanout` fetches in flight.
    pub async fn fetch_many(
        &self,
        roots: &[Cid],
        fanout: u16,
    ) -> Result<Vec<CarContents>, GatewayError> {
        // A cloned client per fetch keeps the futures free of borrowed
        // lifetimes, so the whole fetch stays `Send`.
        futures::stream::iter(roots.iter().copied())
            .map(|root| {
                let client = self.clone();
                async move { client.fetch_car(root).await }
            })
            .buffered(usize::from(fanout.max(1)))
            .try_collect()
            .await
    }

    /// One block from the pinning node (`/api/v0/block/get`), verified
    /// against `cid`.
    pub async fn block_get(&self, cid: Cid) -> Result<Block, GatewayError> {
        let url = self.endpoint(&format!("/api/v0/block/get?arg={cid}"));
        let operation = || format!("block get of `{cid}`");
        let build = || self.inner.http.post(&url);
        let answer = self
            .send(
                &operation,
                &url,
                READ_COUNTERS,
                &mut Tally::default(),
                build,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(rejected(operation(), &url, &answer));
        }
        Block::verified(cid, answer.body)
            .map_err(|source| GatewayError::InvalidBlock { cid, source })
    }

    /// Whether `cid` is visible through `/ipfs/`: 200 true, 404 false.
    pub async fn head(&self, cid: Cid) -> Result<bool, GatewayError> {
        self.head_counted(cid, &mut Tally::default()).await
    }

    async fn head_counted(&self, cid: Cid, tally: &mut Tally) -> Result<bool, GatewayError> {
        let url = self.endpoint(&format!("/ipfs/{cid}"));
        let operation = || format!("head of `{cid}`");
        let build = || self.inner.http.head(&url);
        let answer = self
            .send(&operation, &url, READ_COUNTERS, tally, build)
            .await?;
        match answer.status {
            status if status.is_success() => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            _ => Err(rejected(operation(), &url, &answer)),
        }
    }

    /// HEADs `cids` until every one answers 200, asking again only for the
    /// ones still missing, with the visibility backoff in between; gives up
    /// at the deadline with [`GatewayError::NotVisible`] naming the missing.
    pub async fn head_verify(&self, cids: &[Cid]) -> Result<HeadVerifyReport, GatewayError> {
        let _timer = perf::time(perf::names::HEAD_VERIFY);
        let mut seen = HashSet::new();
        let mut missing: Vec<Cid> = cids.iter().copied().filter(|c| seen.insert(*c)).collect();
        let mut report = HeadVerifyReport::default();
        let mut wait = VisibilityWait::new(&self.inner.timers);
        loop {
            let mut still_missing = Vec::new();
            for cid in missing {
                let mut tally = Tally::default();
                let visible = self.head_counted(cid, &mut tally).await;
                report.requests += tally.requests;
                perf::add(perf::names::HEAD_REQUEST, u64::from(tally.requests));
                if !visible? {
                    still_missing.push(cid);
                }
            }
            missing = still_missing;
            if missing.is_empty() {
                return Ok(report);
            }
            if let Err(waited) = wait.pause().await {
                return Err(GatewayError::NotVisible {
                    cids: missing,
                    waited,
                });
            }
        }
    }
}

/// Reads a fetched CAR and checks it is the whole DAG under `root`: the
/// header names `root`, and every block linked from it is present.
async fn verified_dag(root: Cid, bytes: &[u8], url: &str) -> Result<CarContents, GatewayError> {
    let car = read_car(bytes)
        .await
        .map_err(|source| GatewayError::InvalidCar { root, source })?;
    let bad = |reason: String| GatewayError::BadResponse {
        operation: format!("fetch of `{root}`"),
        url: url.to_owned(),
        reason,
    };
    if !car.roots.contains(&root) {
        return Err(bad(format!(
            "car names roots {:?}, not `{root}`",
            car.roots
        )));
    }
    let by_cid: HashMap<Cid, &Block> = car.blocks.iter().map(|b| (b.cid, b)).collect();
    let mut pending = vec![(root, None)];
    let mut walked = HashSet::new();
    while let Some((cid, parent)) = pending.pop() {
        if !walked.insert(cid) {
            continue;
        }
        let Some(block) = by_cid.get(&cid) else {
            let from = parent.map_or(String::new(), |p: Cid| format!(" linked from `{p}`"));
            return Err(bad(format!("car lacks block `{cid}`{from}")));
        };
        let links = block
            .links()
            .map_err(|source| GatewayError::InvalidBlock { cid, source })?;
        pending.extend(links.into_iter().map(|link| (link, Some(cid))));
    }
    Ok(car)
}
