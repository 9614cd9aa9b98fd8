//! Starting and stopping the three services as one testnet.

use std::{net::SocketAddr, path::PathBuf, sync::Arc};

use axum::{Json, Router, routing::get};
use serde::Serialize;
use tokio::{net::TcpListener, task::JoinSet};
use tokio_util::sync::CancellationToken;

use crate::{
    aggregator::{Aggregator, AggregatorError},
    gateway::{self, BlockStore, GatewayState},
    http,
    metrics::MetricsReport,
    netmodel::NetworkModel,
    profile::{NetworkProfile, Service},
    relay::RelayFront,
};

/// What a testnet is started with.
#[derive(Debug, Clone)]
pub struct TestnetConfig {
    /// The network model.
    pub profile: NetworkProfile,
    /// Where to keep blocks and aggregator state; in memory when `None`.
    /// The relay always keeps its events in memory.
    pub data_dir: Option<PathBuf>,
    /// Fixed ports; 0 (the default) lets the OS choose, which never collides.
    pub ports: ServicePorts,
}

/// The port of each service; 0 means "any free port".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ServicePorts {
    /// Aggregator port.
    pub aggregator: u16,
    /// Gateway port.
    pub gateway: u16,
    /// Relay port.
    pub relay: u16,
}

/// Why a testnet could not start.
#[derive(Debug, thiserror::Error)]
pub enum TestnetError {
    /// No port could be bound on 127.0.0.1.
    #[error(
        "cannot listen on 127.0.0.1:{port} for the {service}: {source} (choose another --{service}-port, or omit it to let the OS pick)"
    )]
    Bind {
        /// Which service.
        service: Service,
        /// The port asked for (0: any).
        port: u16,
        /// The OS error.
        source: std::io::Error,
    },
    /// The aggregator's data directory is unusable.
    #[error(transparent)]
    Aggregator(#[from] AggregatorError),
    /// The gateway's block directory is unusable.
    #[error("gateway block store: {0}")]
    Gateway(String),
}

/// The endpoints of a running testnet; serialized, this is the ready line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Endpoints {
    /// Always true; lets a reader tell the ready line from a log line.
    pub ready: bool,
    /// `http://127.0.0.1:P` of the aggregator's JSON-RPC.
    pub aggregator: String,
    /// `http://127.0.0.1:P` of the IPFS gateway (and `/metrics`).
    pub gateway: String,
    /// `ws://127.0.0.1:P` of the Nostr relay.
    pub relay: String,
}

/// A started testnet. Dropping it without [`RunningTestnet::stop`] leaves its
/// tasks running until the runtime ends.
pub struct RunningTestnet {
    endpoints: Endpoints,
    profile: NetworkProfile,
    model: NetworkModel,
    relay: RelayFront,
    shutdown: CancellationToken,
    servers: JoinSet<()>,
}

impl RunningTestnet {
    /// Binds the three ports, then starts serving.
    pub async fn start(config: TestnetConfig) -> Result<Self, TestnetError> {
        let ports = config.ports;
        let aggregator_listener = bind(Service::Aggregator, ports.aggregator).await?;
        let gateway_listener = bind(Service::Gateway, ports.gateway).await?;
        let relay_listener = bind(Service::Relay, ports.relay).await?;
        let endpoints = Endpoints {
            ready: true,
            aggregator: format!(
                "http://{}",
                local_addr(&aggregator_listener, Service::Aggregator)?
            ),
            gateway: format!(
                "http://{}",
                local_addr(&gateway_listener, Service::Gateway)?
            ),
            relay: format!("ws://{}", local_addr(&relay_listener, Service::Relay)?),
        };

        let profile = config.profile;
        let model = NetworkModel::new(&profile);
        let shutdown = CancellationToken::new();

        let (aggregator, store) = match &config.data_dir {
            Some(dir) => (
                Aggregator::open_dir(&dir.join("aggregator"))?,
                BlockStore::open_dir(dir.join("blocks"))
                    .map_err(|e| TestnetError::Gateway(e.to_string()))?,
            ),
            None => (Aggregator::in_memory(), BlockStore::in_memory()),
        };
        let block_interval = profile.scaled(profile.aggregator.block_interval_ms.unwrap_or(0));
        aggregator.spawn_block_production(block_interval, shutdown.clone());

        let propagation = profile.scaled(profile.gateway.propagation_ms.unwrap_or(0));
        let retrieval = profile.scaled(profile.gateway.retrieval_ms.unwrap_or(0));
        let gateway_router =
            gateway::router(GatewayState::new(store, propagation).with_retrieval(retrieval))
                .merge(metrics_router(profile.clone(), model.clone()));
        let relay = RelayFront::new(model.relay.clone(), shutdown.clone());

        let mut servers = JoinSet::new();
        servers.spawn(http::serve(
            aggregator_listener,
            aggregator.router(),
            model.aggregator.clone(),
            shutdown.clone(),
        ));
        servers.spawn(http::serve(
            gateway_listener,
            gateway_router,
            model.gateway.clone(),
            shutdown.clone(),
        ));
        servers.spawn(http::serve(
            relay_listener,
            relay.clone().router(),
            model.relay.clone(),
            shutdown.clone(),
        ));
        tracing::info!(profile = %profile.name, seed = profile.seed, time_scale = profile.time_scale, "testnet started");
        Ok(RunningTestnet {
            endpoints,
            profile,
            model,
            relay,
            shutdown,
            servers,
        })
    }

    /// Where each service listens.
    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    /// What the network model has done so far.
    pub fn metrics(&self) -> MetricsReport {
        metrics_report(&self.profile, &self.model)
    }

    /// Stops accepting, ends every connection and waits for the servers.
    pub async fn stop(mut self) {
        self.shutdown.cancel();
        self.relay.stop();
        while self.servers.join_next().await.is_some() {}
        tracing::info!("testnet stopped");
    }
}

async fn bind(service: Service, port: u16) -> Result<TcpListener, TestnetError> {
    TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], port)))
        .await
        .map_err(|source| TestnetError::Bind {
            service,
            port,
            source,
        })
}

fn local_addr(listener: &TcpListener, service: Service) -> Result<SocketAddr, TestnetError> {
    listener.local_addr().map_err(|source| TestnetError::Bind {
        service,
        port: 0,
        source,
    })
}

fn metrics_report(profile: &NetworkProfile, model: &NetworkModel) -> MetricsReport {
    MetricsReport {
        profile: profile.name.clone(),
        seed: profile.seed,
        time_scale: profile.time_scale,
        aggregator: model.aggregator.counters().snapshot(),
        gateway: model.gateway.counters().snapshot(),
        relay: model.relay.counters().snapshot(),
    }
}

fn metrics_router(profile: NetworkProfile, model: NetworkModel) -> Router {
    let shared = Arc::new((profile, model));
    Router::new().route(
        "/metrics",
        get(move || {
            let shared = shared.clone();
            async move { Json(metrics_report(&shared.0, &shared.1)) }
        }),
    )
}
