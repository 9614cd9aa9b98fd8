//! Starting the testnet and the peers of one iteration, bounded in time,
//! with their output wired to the script log.

use std::{ffi::OsString, path::Path, time::Duration};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{
    counters::{PerfWindow, parse_perf_line},
    peer::PeerConnection,
    process::{ChildPipes, CommandSpec, ManagedChild, ProcessGroups, describe_exit},
    script_log::{LogSink, Redactor},
};

/// An infrastructure failure: something the scenario did not ask for went
/// wrong (a process would not start, crashed, hung). Exit code 3.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
#[error("{role}: {message}")]
pub struct InfraError {
    /// The role at fault (`testnet`, `peer1`, `build baseline`, ...).
    pub role: String,
    /// What happened and, where possible, what fixes it.
    pub message: String,
}

impl InfraError {
    /// An error of `role`.
    pub fn new(role: &str, message: impl Into<String>) -> InfraError {
        InfraError {
            role: role.to_owned(),
            message: message.into(),
        }
    }
}

/// The three endpoints the testnet announces in its ready line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Endpoints {
    /// Aggregator URL.
    pub aggregator: String,
    /// IPFS gateway URL.
    pub gateway: String,
    /// Nostr relay URL.
    pub relay: String,
}

/// A started testnet.
pub struct Testnet {
    /// The process.
    pub child: ManagedChild,
    /// Its endpoints.
    pub endpoints: Endpoints,
    /// The network model's time scale (1 if the testnet does not say).
    pub time_scale: f64,
}

/// Starts the testnet and waits up to `ready_timeout` for its ready line.
pub async fn start_testnet(
    spec: &CommandSpec,
    profile: &str,
    groups: &ProcessGroups,
    log: &LogSink,
    ready_timeout: Duration,
) -> Result<Testnet, InfraError> {
    let args = [OsString::from("--profile"), OsString::from(profile)];
    let (mut child, pipes) = ManagedChild::spawn("testnet", spec, &args, &[], None, groups)
        .map_err(|e| {
            InfraError::new(
                "testnet",
                format!(
                    "cannot start `{}`: {} (fix --testnet-cmd)",
                    e.command, e.reason
                ),
            )
        })?;
    let ChildPipes { stdout, stderr, .. } = pipes;
    let redactor = Redactor::default();
    if let Some(stderr) = stderr {
        tee_stderr("testnet", stderr, log.clone(), redactor, None);
    }
    let Some(stdout) = stdout else {
        return Err(InfraError::new("testnet", "stdout was not captured"));
    };
    let mut lines = BufReader::new(stdout).lines();
    let ready = tokio::time::timeout(ready_timeout, async {
        while let Ok(Some(line)) = lines.next_line().await {
            log.line("testnet", '<', &line);
            if let Ok(value) = serde_json::from_str::<Value>(&line)
                && value.get("ready") == Some(&Value::Bool(true))
            {
                return serde_json::from_value::<Endpoints>(value).ok();
            }
        }
        None
    })
    .await;
    let endpoints = match ready {
        Ok(Some(endpoints)) => endpoints,
        Ok(None) => {
            let status = child.wait_for(Duration::from_secs(2)).await;
            child.stop(Duration::from_secs(1)).await;
            return Err(InfraError::new(
                "testnet",
                format!(
                    "ended ({}) before printing its ready line; see script.log",
                    describe_exit(status)
                ),
            ));
        }
        Err(_) => {
            child.stop(Duration::from_secs(2)).await;
            return Err(InfraError::new(
                "testnet",
                format!(
                    "no ready line within {} s (a testnet must print {{\"ready\":true,\"aggregator\":…,\"gateway\":…,\"relay\":…}} on stdout)",
                    ready_timeout.as_secs()
                ),
            ));
        }
    };
    // Keep draining stdout so a chatty testnet never blocks on a full pipe.
    let drain_log = log.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            drain_log.line("testnet", '<', &line);
        }
    });
    let time_scale = fetch_time_scale(&endpoints.gateway).await.unwrap_or(1.0);
    Ok(Testnet {
        child,
        endpoints,
        time_scale,
    })
}

/// The testnet's `/metrics` document, if it serves one.
pub async fn fetch_metrics(gateway: &str) -> Option<Value> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .ok()?;
    let response = client.get(format!("{gateway}/metrics")).send().await.ok()?;
    response.json::<Value>().await.ok()
}

async fn fetch_time_scale(gateway: &str) -> Option<f64> {
    fetch_metrics(gateway).await?.get("time_scale")?.as_f64()
}

/// A started peer.
pub struct Peer {
    /// The process.
    pub child: ManagedChild,
    /// The protocol connection.
    pub connection: PeerConnection,
}

/// What a peer needs to be started.
pub struct PeerLaunch<'a> {
    /// Its role (`peer1`).
    pub role: &'a str,
    /// The command.
    pub spec: &'a CommandSpec,
    /// Its data directory (absolute, so a peer run elsewhere finds it).
    pub data_dir: &'a Path,
    /// Its working directory, if not the harness's.
    pub cwd: Option<&'a Path>,
    /// Environment, on top of the harness's own.
    pub env: Vec<(String, String)>,
    /// Where perf windows go.
    pub perf_windows: tokio::sync::mpsc::UnboundedSender<(String, PerfWindow)>,
}

/// Starts a peer and connects to it.
pub fn start_peer(
    launch: PeerLaunch<'_>,
    groups: &ProcessGroups,
    log: &LogSink,
    redactor: &Redactor,
) -> Result<Peer, InfraError> {
    std::fs::create_dir_all(launch.data_dir).map_err(|e| {
        InfraError::new(
            launch.role,
            format!("cannot create `{}`: {e}", launch.data_dir.display()),
        )
    })?;
    // Absolute, so a peer started in a branch's worktree finds it.
    let data_dir =
        std::path::absolute(launch.data_dir).unwrap_or_else(|_| launch.data_dir.to_owned());
    let args = [OsString::from("--data-dir"), data_dir.into_os_string()];
    let cwd = launch.cwd.map(Path::to_path_buf);
    let (child, pipes) = ManagedChild::spawn(
        launch.role,
        launch.spec,
        &args,
        &launch.env,
        cwd.as_ref(),
        groups,
    )
    .map_err(|e| {
        InfraError::new(
            launch.role,
            format!(
                "cannot start `{}`: {} (fix --peer-cmd)",
                e.command, e.reason
            ),
        )
    })?;
    let ChildPipes {
        stdin,
        stdout,
        stderr,
    } = pipes;
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        return Err(InfraError::new(launch.role, "pipes were not captured"));
    };
    if let Some(stderr) = stderr {
        tee_stderr(
            launch.role,
            stderr,
            log.clone(),
            redactor.clone(),
            Some(launch.perf_windows),
        );
    }
    let connection =
        PeerConnection::start(launch.role, stdin, stdout, log.clone(), redactor.clone());
    Ok(Peer { child, connection })
}

/// Copies a child's stderr into the script log (scrubbed), picking out perf
/// windows on the way.
fn tee_stderr(
    role: &str,
    stderr: tokio::process::ChildStderr,
    log: LogSink,
    redactor: Redactor,
    perf: Option<tokio::sync::mpsc::UnboundedSender<(String, PerfWindow)>>,
) {
    let role = role.to_owned();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(perf) = &perf
                && let Some(window) = parse_perf_line(&line)
            {
                let _ = perf.send((role.clone(), window));
            }
            log.line(&role, '!', &redactor.scrub_text(&line));
        }
    });
}
