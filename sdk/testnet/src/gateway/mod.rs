//! The testnet's IPFS gateway: a Kubo-compatible HTTP subset over a
//! [`BlockStore`], with a propagation delay on public reads.
//!
//! A client written against this gateway also works against a real Kubo
//! node. [`router`] serves:
//!
//! | route | answer |
//! |---|---|
//! | `POST /api/v0/dag/import` | CARv1 upload (multipart or raw body), NDJSON `{"Root":{"Cid":{"/":..},"PinErrorMsg":..}}` per root |
//! | `POST /api/v0/dag/export?arg=CID` | CARv1 of the DAG under `CID` |
//! | `POST /api/v0/block/get?arg=CID` | the block's bytes |
//! | `POST /api/v0/block/put?cid-codec=raw\|dag-cbor` | `{"Key":CID,"Size":n}` per uploaded file (each at most [`MAX_BLOCK_BYTES`], as in a CAR) |
//! | `POST /api/v0/block/stat?arg=CID` | `{"Key":CID,"Size":n}` |
//! | `GET`, `HEAD /ipfs/{cid}` | raw block or CAR (trustless gateway), 404 until propagated |
//!
//! The `/api/v0` endpoints stand for the node the client pinned to and see
//! blocks at once; `/ipfs/` stands for the public network and sees a block
//! only once [`GatewayState`]'s propagation delay has passed since it was
//! first stored, and answers only after [`GatewayState::with_retrieval`]'s
//! exchange with the node that holds it (a public gateway holds nothing
//! itself). Latency, rate limits and faults of the client's own link are
//! not this module's job: the testnet wraps the router in its network model.
//!
//! ```no_run
//! # async fn run() -> std::io::Result<()> {
//! use std::time::Duration;
//! use sphere_testnet::gateway::{BlockStore, GatewayState, router};
//!
//! let state = GatewayState::new(BlockStore::in_memory(), Duration::from_secs(2));
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! axum::serve(listener, router(state)).await
//! # }
//! ```

mod dag;
mod ipfs_path;
mod kubo;
mod store;
mod trustless;
mod upload;

use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};

pub use sphere_protocol::ipld::MAX_BLOCK_BYTES;
pub use store::{BlockStore, StoreError};

/// The largest request body accepted (a CAR upload), in bytes. Each block
/// in it, and each block put on its own, is limited to [`MAX_BLOCK_BYTES`]
/// (answered 413 like an oversize body).
pub const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

/// What the gateway's handlers share: the store, the propagation delay and
/// the retrieval exchange.
///
/// Cheap to clone: the store is an `Arc` inside.
#[derive(Debug, Clone)]
pub struct GatewayState {
    store: BlockStore,
    propagation: Duration,
    retrieval: Duration,
}

impl GatewayState {
    /// A gateway over `store` whose public reads see a block only
    /// `propagation` after it was first stored, and answer at once.
    pub fn new(store: BlockStore, propagation: Duration) -> GatewayState {
        GatewayState {
            store,
            propagation,
            retrieval: Duration::ZERO,
        }
    }

    /// The same gateway, taking `retrieval` before it answers each `/ipfs/`
    /// read: the exchange in which a public gateway finds and fetches the
    /// content from the node that pins it (provider lookup and transfer).
    /// The `/api/v0` endpoints are that node and pay nothing.
    pub fn with_retrieval(self, retrieval: Duration) -> GatewayState {
        GatewayState { retrieval, ..self }
    }

    /// How long each `/ipfs/` read spends retrieving from the pinning node.
    pub fn retrieval(&self) -> Duration {
        self.retrieval
    }

    /// The block store behind the gateway.
    pub fn store(&self) -> &BlockStore {
        &self.store
    }

    /// How long a stored block stays invisible to `/ipfs/` reads.
    pub fn propagation(&self) -> Duration {
        self.propagation
    }
}

/// The gateway's routes, with request bodies up to [`MAX_BODY_BYTES`].
pub fn router(state: GatewayState) -> Router {
    Router::new()
        .route("/api/v0/dag/import", post(kubo::dag_import))
        .route("/api/v0/dag/export", post(kubo::dag_export))
        .route("/api/v0/block/get", post(kubo::block_get))
        .route("/api/v0/block/put", post(kubo::block_put))
        .route("/api/v0/block/stat", post(kubo::block_stat))
        // `get` also answers HEAD, with the same headers and no body.
        .route("/ipfs/{cid}", get(trustless::get_ipfs))
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}
