//! Executing one section's steps against the peers.

use std::{collections::BTreeMap, time::Duration};

use serde_json::{Value, json};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::{
    launch::InfraError,
    peer::{PeerConnection, Reply, RequestError},
    scenario::{
        assertions::{AssertionOutcome, evaluate_with, expect_mismatch},
        model::{OpStep, Scenario, Section, SnapshotStep, StepKind},
        vars::{Builtins, Captures, resolve_repeat, substitute},
    },
};

/// How executing a section went.
#[derive(Debug)]
pub(crate) enum SectionEnd {
    /// Every step ran; assertions may have failed (see their outcomes).
    Completed,
    /// A step failed: the scenario cannot go on.
    StepFailed(String),
    /// A peer is not running.
    Infrastructure(InfraError),
    /// A request got no reply: the peer died, hung, or its stdin closed.
    PeerFailed(RequestError),
    /// The testnet died or froze under the section (set by the iteration,
    /// which watches it).
    Testnet(super::IterationFailure),
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

/// A section's result.
pub(crate) struct SectionRun {
    pub(crate) end: SectionEnd,
    pub(crate) first_sent: Option<Instant>,
    pub(crate) last_received: Option<Instant>,
    pub(crate) assertions: Vec<AssertionOutcome>,
}

/// What the steps run against.
pub(crate) struct StepContext<'a> {
    pub(crate) scenario: &'a Scenario,
    pub(crate) peers: &'a BTreeMap<String, PeerConnection>,
    pub(crate) captures: &'a mut Captures,
    pub(crate) iteration: u64,
    pub(crate) secret_fields: &'a [String],
    pub(crate) timeout_override: Option<Duration>,
    pub(crate) cancel: &'a CancellationToken,
}

enum Failure {
    Step(String),
    Infra(InfraError),
    Peer(RequestError),
    Interrupted,
}

/// Runs every step of `section` in order.
pub(crate) async fn run_section(ctx: &mut StepContext<'_>, section: &Section) -> SectionRun {
    let mut run = SectionRun {
        end: SectionEnd::Completed,
        first_sent: None,
        last_received: None,
        assertions: Vec::new(),
    };
    for step in &section.steps {
        let where_ = format!(
            "{}:{}:{}",
            ctx.scenario.source.path.display(),
            step.location.line,
            step.location.column
        );
        let timeout = ctx
            .timeout_override
            .unwrap_or_else(|| ctx.scenario.timeout_for(step));
        let result = match &step.kind {
            StepKind::Op(op) => run_op(ctx, op, timeout, &mut run, &where_).await,
            StepKind::Snapshot(snapshot) => {
                run_snapshot(ctx, snapshot, timeout, &mut run, &where_).await
            }
            StepKind::Assert(assert) => {
                let builtins = ctx.builtins(0);
                let outcome = evaluate_with(assert, ctx.captures, &ctx.scenario.params, &builtins);
                run.assertions.push(outcome);
                Ok(())
            }
        };
        match result {
            Ok(()) => {}
            Err(Failure::Step(message)) => {
                run.end = SectionEnd::StepFailed(message);
                break;
            }
            Err(Failure::Infra(error)) => {
                run.end = SectionEnd::Infrastructure(error);
                break;
            }
            Err(Failure::Peer(error)) => {
                run.end = SectionEnd::PeerFailed(error);
                break;
            }
            Err(Failure::Interrupted) => {
                run.end = SectionEnd::Interrupted;
                break;
            }
        }
    }
    run
}

impl StepContext<'_> {
    fn builtins(&self, repeat_index: u64) -> Builtins {
        Builtins {
            iteration: self.iteration,
            repeat_index,
        }
    }
}

async fn run_op(
    ctx: &mut StepContext<'_>,
    op: &OpStep,
    timeout: Duration,
    run: &mut SectionRun,
    where_: &str,
) -> Result<(), Failure> {
    let step_error = |e: &dyn std::fmt::Display| Failure::Step(format!("{where_}: {e}"));
    let times = match &op.repeat {
        None => 1,
        Some(repeat) => {
            resolve_repeat(repeat, ctx.captures, &ctx.scenario.params, &ctx.builtins(0))
                .map_err(|e| step_error(&e))?
        }
    };
    for repeat_index in 0..times {
        let builtins = ctx.builtins(repeat_index);
        let args = substitute(&op.args, ctx.captures, &ctx.scenario.params, &builtins)
            .map_err(|e| step_error(&e))?;
        let reply = request(ctx, &op.peer, &op.op, &args, timeout, run).await?;
        let result = match (&op.expect_error, reply.ok) {
            (None, _) => check_reply(&op.peer, &op.op, reply, where_)?,
            (Some(kind), false) => {
                let error = reply
                    .error
                    .map(|e| json!({"kind": e.kind, "message": e.message}))
                    .unwrap_or(Value::Null);
                if error.get("kind").and_then(Value::as_str) != Some(kind.as_str()) {
                    return Err(Failure::Step(format!(
                        "{where_}: {} `{}` failed with {error} where the scenario expects error kind `{kind}`",
                        op.peer, op.op
                    )));
                }
                error
            }
            (Some(kind), true) => {
                return Err(Failure::Step(format!(
                    "{where_}: {} `{}` succeeded where the scenario expects error kind `{kind}`",
                    op.peer, op.op
                )));
            }
        };
        if let Some(expect) = &op.expect {
            let expect = substitute(expect, ctx.captures, &ctx.scenario.params, &builtins)
                .map_err(|e| step_error(&e))?;
            if let Some(mismatch) = expect_mismatch(&result, &expect) {
                return Err(Failure::Step(format!(
                    "{where_}: {} `{}`: {mismatch}",
                    op.peer, op.op
                )));
            }
        }
        if let Some(name) = &op.capture {
            ctx.captures.capture(name, result, ctx.secret_fields);
        }
    }
    Ok(())
}

async fn run_snapshot(
    ctx: &mut StepContext<'_>,
    snapshot: &SnapshotStep,
    timeout: Duration,
    run: &mut SectionRun,
    where_: &str,
) -> Result<(), Failure> {
    let builtins = ctx.builtins(0);
    for (op, args, capture) in snapshot.requests() {
        let args = substitute(&args, ctx.captures, &ctx.scenario.params, &builtins)
            .map_err(|e| Failure::Step(format!("{where_}: {e}")))?;
        let reply = request(ctx, &snapshot.peer, &op, &args, timeout, run).await?;
        let result = check_reply(&snapshot.peer, &op, reply, where_)?;
        ctx.captures.capture(&capture, result, ctx.secret_fields);
    }
    Ok(())
}

async fn request(
    ctx: &StepContext<'_>,
    peer: &str,
    op: &str,
    args: &Value,
    timeout: Duration,
    run: &mut SectionRun,
) -> Result<Reply, Failure> {
    let Some(connection) = ctx.peers.get(peer) else {
        return Err(Failure::Infra(InfraError::new(peer, "is not running")));
    };
    run.first_sent.get_or_insert_with(Instant::now);
    let reply = tokio::select! {
        reply = connection.request(op, args, timeout) => reply,
        () = ctx.cancel.cancelled() => return Err(Failure::Interrupted),
    };
    run.last_received = Some(Instant::now());
    // The iteration turns this into a typed failure once the process is
    // reaped and it knows how it exited.
    reply.map_err(Failure::Peer)
}

fn check_reply(peer: &str, op: &str, reply: Reply, where_: &str) -> Result<Value, Failure> {
    if reply.ok {
        return Ok(reply.result);
    }
    let (kind, message) = reply
        .error
        .map(|e| (e.kind, e.message))
        .unwrap_or_else(|| ("error".into(), "no message".into()));
    Err(Failure::Step(format!(
        "{where_}: {peer} `{op}` failed: {kind}: {message}"
    )))
}
