//! Starting the testnet and the peers of one iteration, bounded in time,
//! with their output wired to the script log.

use std::{
    ffi::OsString,
    path::Path,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::{
    counters::{PerfWindow, parse_perf_line},
    peer::PeerConnection,
    process::{ChildPipes, CommandSpec, ManagedChild, ProcessGroups, SpawnError, describe_exit},
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
    /// The child refused its input (it exited 2, the usage code, before it
    /// was ready: a bad profile, a bad variant setting): exit 2, not 3.
    #[serde(default)]
    pub refused_input: bool,
}

impl InfraError {
    /// An error of `role`.
    pub fn new(role: &str, message: impl Into<String>) -> InfraError {
        InfraError {
            role: role.to_owned(),
            message: message.into(),
            refused_input: false,
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
    /// Whether it serves `/metrics` (so a health probe means something).
    pub serves_metrics: bool,
    /// Its last stderr line, for the error when it dies.
    pub last_words: LastWords,
    /// Held open: the testnet stops when it closes.
    _stdin: Option<tokio::process::ChildStdin>,
}

/// How long the stderr copier gets to see a dead child's last line.
pub const LAST_WORDS_WAIT: Duration = Duration::from_millis(100);

/// The exit code with which the workspace's daemons refuse their input.
pub const USAGE_EXIT: i32 = 2;

/// Set for the testnet: stop when stdin closes (see docs/testnet.md).
pub const STOP_ON_STDIN_EOF: &str = "SPHERE_STOP_ON_STDIN_EOF";

/// Starts the testnet and waits up to `ready_timeout` for its ready line.
pub async fn start_testnet(
    spec: &CommandSpec,
    profile: &str,
    groups: &ProcessGroups,
    log: &LogSink,
    ready_timeout: Duration,
) -> Result<Testnet, InfraError> {
    let args = [OsString::from("--profile"), OsString::from(profile)];
    // The testnet stops when its stdin closes, so it dies with soak even
    // when soak is killed outright (SIGKILL closes the pipe).
    let env = [(STOP_ON_STDIN_EOF.to_owned(), "1".to_owned())];
    let (mut child, pipes) = ManagedChild::spawn("testnet", spec, &args, &env, None, groups)
        .map_err(cannot_start("testnet", "--testnet-cmd"))?;
    let ChildPipes {
        stdin,
        stdout,
        stderr,
    } = pipes;
    let redactor = Redactor::default();
    let last_words = stderr
        .map(|stderr| tee_stderr("testnet", stderr, log.clone(), redactor, None))
        .unwrap_or_default();
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
            // Give the stderr copier a moment to see the last line.
            tokio::time::sleep(LAST_WORDS_WAIT).await;
            let refused_input = status.and_then(|s| s.code()) == Some(USAGE_EXIT);
            let mut error = InfraError::new(
                "testnet",
                match last_words.get() {
                    Some(words) => format!(
                        "ended ({}) before printing its ready line: {words}",
                        describe_exit(status)
                    ),
                    None => format!(
                        "ended ({}) before printing its ready line; see script.log",
                        describe_exit(status)
                    ),
                },
            );
            error.refused_input = refused_input;
            return Err(error);
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
    let announced = fetch_time_scale(&endpoints.gateway).await;
    let serves_metrics = announced.is_some();
    let time_scale = announced.unwrap_or(1.0);
    Ok(Testnet {
        child,
        endpoints,
        time_scale,
        serves_metrics,
        last_words,
        _stdin: stdin,
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

/// Whether the testnet's gateway answers `/metrics` within `limit`.
pub async fn answers(gateway: &str, limit: Duration) -> bool {
    let Ok(client) = reqwest::Client::builder().timeout(limit).build() else {
        return false;
    };
    client
        .get(format!("{gateway}/metrics"))
        .send()
        .await
        .is_ok_and(|r| r.status().is_success())
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
    /// Its last stderr line, for the error when it dies.
    pub last_words: LastWords,
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
    .map_err(cannot_start(launch.role, "--peer-cmd"))?;
    let ChildPipes {
        stdin,
        stdout,
        stderr,
    } = pipes;
    let (Some(stdin), Some(stdout)) = (stdin, stdout) else {
        return Err(InfraError::new(launch.role, "pipes were not captured"));
    };
    let last_words = stderr
        .map(|stderr| {
            tee_stderr(
                launch.role,
                stderr,
                log.clone(),
                redactor.clone(),
                Some(launch.perf_windows),
            )
        })
        .unwrap_or_default();
    let connection =
        PeerConnection::start(launch.role, stdin, stdout, log.clone(), redactor.clone());
    Ok(Peer {
        child,
        connection,
        last_words,
    })
}

/// The last line a child wrote to stderr (scrubbed of secrets): when a child
/// dies before it is ready, its own last words are the best error message.
#[derive(Debug, Clone, Default)]
pub struct LastWords(Arc<Mutex<Option<String>>>);

impl LastWords {
    /// The last non-empty stderr line that is not a perf window, trimmed
    /// to one short line.
    pub fn get(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn set(&self, line: &str) {
        let line = line.trim();
        if line.is_empty() {
            return;
        }
        // A JSON log line: its message field says it best.
        let text = serde_json::from_str::<Value>(line)
            .ok()
            .and_then(|v| {
                let fields = v.get("fields").unwrap_or(&v);
                fields
                    .get("message")
                    .or_else(|| fields.get("error"))
                    .and_then(Value::as_str)
                    .map(str::to_owned)
            })
            .unwrap_or_else(|| line.to_owned());
        let short: String = text.chars().take(300).collect();
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = Some(short);
    }

    /// `: <last words>` for an error message, or nothing.
    pub fn suffix(&self) -> String {
        self.get().map(|w| format!(": {w}")).unwrap_or_default()
    }
}

/// Copies a child's stderr into the script log (scrubbed), picking out perf
/// windows on the way; returns the child's last words.
fn tee_stderr(
    role: &str,
    stderr: tokio::process::ChildStderr,
    log: LogSink,
    redactor: Redactor,
    perf: Option<tokio::sync::mpsc::UnboundedSender<(String, PerfWindow)>>,
) -> LastWords {
    let role = role.to_owned();
    let last = LastWords::default();
    let words = last.clone();
    tokio::spawn(async move {
        let mut lines = BufReader::new(stderr).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let scrubbed = redactor.scrub_text(&line);
            match perf.as_ref().zip(parse_perf_line(&line)) {
                Some((perf, window)) => {
                    let _ = perf.send((role.clone(), window));
                }
                None => words.set(&scrubbed),
            }
            log.line(&role, '!', &scrubbed);
        }
    });
    last
}

/// Turns a failed spawn of `role` into one line naming the command, why it
/// did not start, and the flag that fixes it.
fn cannot_start<'a>(role: &'a str, flag: &'a str) -> impl FnOnce(SpawnError) -> InfraError + 'a {
    move |e| {
        InfraError::new(
            role,
            format!("cannot start `{}`: {} (fix {flag})", e.command, e.reason),
        )
    }
}
