//! Running a scenario: iterations of one branch (`soak run`), each in its
//! own folder, reported through [`RunEvent`]s.
//!
//! The runner emits events and writes files; it prints nothing. Whoever
//! runs it (the terminal reporter, a JSON printer, tests) consumes the
//! events.

mod failure;
mod iteration;
mod steps;

use std::{path::PathBuf, time::Duration};

use serde::Serialize;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub use failure::IterationFailure;
pub use iteration::{IterationPlan, run_iteration};

use crate::{
    process::{CommandSpec, ProcessGroups},
    record::{IterationRecord, IterationStatus, SectionStatus},
    scenario::{assertions::AssertionOutcome, model::Scenario},
};

/// Everything an iteration needs, resolved and validated.
pub struct RunSettings {
    /// The scenario, parameters applied.
    pub scenario: Scenario,
    /// The testnet command (`--profile P` is appended).
    pub testnet_cmd: CommandSpec,
    /// The network profile passed to the testnet.
    pub profile: String,
    /// Turn the peers' perf counters on.
    pub perf: bool,
    /// Perf window length asked of the peers.
    pub perf_window: Duration,
    /// Sampling interval.
    pub interval: Duration,
    /// Samples before this (scaled by the network's time scale) are left out
    /// of averages.
    pub start_skip: Duration,
    /// Keep each iteration's workspace (the daemons' on-disk state).
    pub keep: bool,
    /// Replaces every step's timeout when set.
    pub step_timeout: Option<Duration>,
    /// How long a testnet or peer may take to be ready.
    pub ready_timeout: Duration,
    /// How long a peer may take to answer `shutdown`.
    pub shutdown_timeout: Duration,
    /// Share of the machine other processes may use before a run is flagged.
    pub contamination_threshold: f64,
    /// Fired by Ctrl-C or SIGTERM.
    pub cancel: CancellationToken,
}

/// What happened, as it happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum RunEvent {
    /// An iteration began.
    IterationStarted {
        /// Branch.
        branch: String,
        /// 1-based.
        iteration: usize,
        /// An unjudged warm-up iteration.
        warmup: bool,
    },
    /// A section began.
    SectionStarted {
        /// `§C.2`.
        id: String,
        /// Its title.
        title: String,
    },
    /// A section ended.
    SectionFinished {
        /// `§C.2`.
        id: String,
        /// Wall time.
        seconds: f64,
        /// How it ended.
        status: SectionStatus,
    },
    /// A step failed and the iteration stops.
    StepFailed {
        /// `§C.2`.
        section: String,
        /// Why.
        message: String,
    },
    /// An assertion was checked.
    Assertion(Box<AssertionOutcome>),
    /// An iteration ended and its folder is written.
    IterationFinished(Box<IterationRecord>),
}

/// How a set of iterations ended, most serious first: interrupted beats an
/// input error beats an infrastructure failure beats a failure beats a
/// pass. The binary turns it into an exit code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RunVerdict {
    /// Every iteration ran and every assertion held.
    Passed,
    /// A step or an assertion failed on the branch's merits.
    Failed,
    /// A process would not start, died or hung.
    Infrastructure,
    /// The scenario or the profile does not fit the peer or the testnet.
    InputError,
    /// Ctrl-C or SIGTERM.
    Interrupted,
}

impl RunVerdict {
    /// The verdict on `records`.
    pub fn of(records: &[IterationRecord]) -> RunVerdict {
        let any = |f: &dyn Fn(&IterationStatus) -> bool| records.iter().any(|r| f(&r.status));
        let input_error = records.iter().any(|r| {
            r.failure
                .as_ref()
                .is_some_and(IterationFailure::is_input_error)
        });
        if any(&|s| matches!(s, IterationStatus::Interrupted)) {
            RunVerdict::Interrupted
        } else if input_error {
            RunVerdict::InputError
        } else if any(&|s| matches!(s, IterationStatus::Infrastructure { .. })) {
            RunVerdict::Infrastructure
        } else if any(&|s| matches!(s, IterationStatus::Failed)) {
            RunVerdict::Failed
        } else {
            RunVerdict::Passed
        }
    }
}

/// One branch to run: which peer, how many iterations, where.
pub struct BranchRun<'a> {
    /// `run`, `baseline` or `treatment`.
    pub name: &'a str,
    /// Its peer command.
    pub peer_cmd: &'a CommandSpec,
    /// Its extra peer environment.
    pub peer_env: &'a [(String, String)],
    /// Its folder (iterations go in `run-K` below it).
    pub out: &'a std::path::Path,
    /// Where its peers run, if not here.
    pub peer_cwd: Option<&'a std::path::Path>,
    /// The shard this run is (`soak ab --shard`), recorded in every
    /// iteration.
    pub shard: Option<u32>,
}

impl BranchRun<'_> {
    /// The plan of warm-up iteration `w` (1-based): run like any other,
    /// in `warmup-W`, which nothing reads as evidence.
    pub fn warmup_plan(&self, w: usize) -> IterationPlan<'_> {
        IterationPlan {
            dir: self.out.join(format!("warmup-{w}")),
            warmup: true,
            ..self.plan(w)
        }
    }

    /// The plan of iteration `k` (1-based) of this branch.
    pub fn plan(&self, k: usize) -> IterationPlan<'_> {
        IterationPlan {
            branch: self.name,
            iteration: k,
            dir: iteration_dir(self.out, k),
            peer_cmd: self.peer_cmd,
            peer_env: self.peer_env,
            peer_cwd: self.peer_cwd,
            shard: self.shard,
            warmup: false,
        }
    }
}

/// Runs `iterations` iterations of one branch, stopping early when
/// interrupted.
pub async fn run_branch(
    settings: &RunSettings,
    branch: &BranchRun<'_>,
    iterations: usize,
    groups: &ProcessGroups,
    events: &mpsc::UnboundedSender<RunEvent>,
) -> Vec<IterationRecord> {
    let mut records = Vec::new();
    for k in 1..=iterations {
        if settings.cancel.is_cancelled() {
            break;
        }
        records.push(run_iteration(settings, branch.plan(k), groups, events).await);
    }
    records
}

/// `out/run-K`.
pub fn iteration_dir(out: &std::path::Path, k: usize) -> PathBuf {
    out.join(format!("run-{k}"))
}
