//! Talking to a peer over the peer protocol: JSON requests on its stdin,
//! JSON responses on its stdout, matched by id.
//!
//! One reader task owns the peer's stdout and completes the waiting request
//! with the same id; when stdout closes (the peer died) every waiting
//! request fails at once with [`RequestError::Gone`] instead of waiting out
//! its timeout. Requests and responses are copied to the script log with
//! secrets redacted.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    process::{ChildStdin, ChildStdout},
    sync::{Mutex, oneshot},
};

use crate::script_log::{LogSink, Redactor};

/// A peer's answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Reply {
    /// Whether the op succeeded.
    pub ok: bool,
    /// The result (null on failure).
    #[serde(default)]
    pub result: Value,
    /// The error (null on success).
    #[serde(default)]
    pub error: Option<PeerErrorBody>,
}

/// A peer's error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerErrorBody {
    /// Machine-readable kind.
    pub kind: String,
    /// One line for a person.
    pub message: String,
}

/// Why a request got no reply.
#[derive(Debug, Clone, thiserror::Error)]
pub enum RequestError {
    /// The peer did not answer in time.
    #[error("{role}: no answer to `{op}` within {} s", timeout.as_secs_f64())]
    Timeout {
        /// The peer.
        role: String,
        /// The op.
        op: String,
        /// The limit.
        timeout: Duration,
    },
    /// The peer's stdout closed: it exited or crashed.
    #[error("{role}: exited while `{op}` was pending")]
    Gone {
        /// The peer.
        role: String,
        /// The op.
        op: String,
    },
    /// Writing the request failed (its stdin is closed).
    #[error("{role}: cannot send `{op}`: {reason}")]
    Send {
        /// The peer.
        role: String,
        /// The op.
        op: String,
        /// The I/O error.
        reason: String,
    },
}

type Pending = Arc<std::sync::Mutex<Option<HashMap<u64, oneshot::Sender<Reply>>>>>;

/// A live connection to one peer.
pub struct PeerConnection {
    role: String,
    stdin: Mutex<ChildStdin>,
    pending: Pending,
    next_id: AtomicU64,
    log: LogSink,
    redactor: Redactor,
}

impl PeerConnection {
    /// Starts reading `stdout` and returns the connection.
    pub fn start(
        role: &str,
        stdin: ChildStdin,
        stdout: ChildStdout,
        log: LogSink,
        redactor: Redactor,
    ) -> Self {
        let pending: Pending = Arc::new(std::sync::Mutex::new(Some(HashMap::new())));
        let reader_pending = pending.clone();
        let reader_log = log.clone();
        let reader_redactor = redactor.clone();
        let reader_role = role.to_owned();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stdout).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                reader_log.line(&reader_role, '<', &reader_redactor.scrub_json_line(&line));
                let Ok(value) = serde_json::from_str::<Value>(&line) else {
                    reader_log.line(&reader_role, '?', "stdout line is not a protocol response");
                    continue;
                };
                let Some(id) = value.get("id").and_then(Value::as_u64) else {
                    continue;
                };
                let Ok(reply) = serde_json::from_value::<Reply>(value) else {
                    continue;
                };
                let waiter = lock(&reader_pending)
                    .as_mut()
                    .and_then(|map| map.remove(&id));
                if let Some(waiter) = waiter {
                    let _ = waiter.send(reply);
                }
            }
            // Dropping every sender wakes every waiter with "gone".
            lock(&reader_pending).take();
        });
        PeerConnection {
            role: role.to_owned(),
            stdin: Mutex::new(stdin),
            pending,
            next_id: AtomicU64::new(1),
            log,
            redactor,
        }
    }

    /// The peer's role.
    pub fn role(&self) -> &str {
        &self.role
    }

    /// Sends `op` with `args` and waits up to `timeout` for the reply.
    pub async fn request(
        &self,
        op: &str,
        args: &Value,
        timeout: Duration,
    ) -> Result<Reply, RequestError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        match lock(&self.pending).as_mut() {
            Some(map) => {
                map.insert(id, tx);
            }
            None => {
                return Err(RequestError::Gone {
                    role: self.role.clone(),
                    op: op.to_owned(),
                });
            }
        }
        let line = json!({"id": id, "op": op, "args": args}).to_string();
        self.log
            .line(&self.role, '>', &self.redactor.scrub_json_line(&line));
        let sent = {
            let mut stdin = self.stdin.lock().await;
            match stdin.write_all(format!("{line}\n").as_bytes()).await {
                Ok(()) => stdin.flush().await,
                Err(e) => Err(e),
            }
        };
        if let Err(e) = sent {
            self.forget(id);
            return Err(RequestError::Send {
                role: self.role.clone(),
                op: op.to_owned(),
                reason: e.to_string(),
            });
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Ok(reply),
            Ok(Err(_)) => Err(RequestError::Gone {
                role: self.role.clone(),
                op: op.to_owned(),
            }),
            Err(_) => {
                self.forget(id);
                Err(RequestError::Timeout {
                    role: self.role.clone(),
                    op: op.to_owned(),
                    timeout,
                })
            }
        }
    }

    fn forget(&self, id: u64) {
        if let Some(map) = lock(&self.pending).as_mut() {
            map.remove(&id);
        }
    }
}

fn lock<T>(m: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
