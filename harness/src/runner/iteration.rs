//! One iteration: a fresh testnet and fresh peers, the scenario's sections
//! timed and sampled, everything torn down, everything written.
//!
//! Its life is a sequence of bounded stages: start the testnet (ready
//! timeout) → start the peers → `hello` (ready timeout) → the sections (each
//! step's timeout, the testnet watched throughout) → teardown (the named
//! grace periods). Whatever stops it early is a typed [`IterationFailure`]
//! in the record, never a string patched later.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::ExitStatus,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{
    IterationFailure, RunEvent, RunSettings,
    steps::{SectionEnd, SectionRun, StepContext, run_section},
};
use crate::{
    attribution,
    counters::{
        BoundaryRead, Cumulative, PerfWindow, SectionSpan, attribute, parse_counters_reply,
        rows_from_reads,
    },
    launch::{self, LAST_WORDS_WAIT, LastWords, Peer, PeerLaunch, Testnet},
    peer::{PeerConnection, RequestError},
    process::{ManagedChild, ProcessGroups, describe_exit},
    record::{
        self, IterationRecord, IterationStatus, SCHEMA_VERSION, SectionRecord, SectionStatus,
    },
    sampler::{
        self, ContaminationCheck, MachineSample, ProcessTreeSample, ResourceSummary, RoleRoot,
        cpu_clock,
    },
    scenario::{
        SectionId,
        vars::{Builtins, Captures},
    },
    script_log::{LogSink, Redactor},
};

/// Where and as what an iteration runs.
pub struct IterationPlan<'a> {
    /// `run`, `baseline` or `treatment`.
    pub branch: &'a str,
    /// 1-based.
    pub iteration: usize,
    /// Its folder (`…/run-3`).
    pub dir: PathBuf,
    /// The peer command for this branch.
    pub peer_cmd: &'a crate::process::CommandSpec,
    /// Extra peer environment for this branch.
    pub peer_env: &'a [(String, String)],
    /// Where the peer runs (a branch's worktree), if not here.
    pub peer_cwd: Option<&'a Path>,
    /// The shard of a sharded `soak ab`.
    pub shard: Option<u32>,
    /// An unjudged warm-up iteration (shown as such while it runs).
    pub warmup: bool,
}

type SampleLog = Arc<Mutex<Vec<(Option<SectionId>, ProcessTreeSample)>>>;

/// How long a peer may take to exit after `shutdown`, and the testnet after
/// SIGTERM, before its process group is killed.
const TEARDOWN_GRACE: Duration = Duration::from_secs(5);
/// The same after Ctrl-C: the user wants out now.
const INTERRUPTED_GRACE: Duration = Duration::from_millis(200);
/// A peer that hung or already died gets no `shutdown` (it would only cost
/// the shutdown timeout); its group goes after this.
const FAILED_PEER_GRACE: Duration = Duration::from_millis(200);
/// How long a testnet suspected after a failed step gets to show it is
/// alive (reaped, or answering `/metrics`).
const TESTNET_PROBE: Duration = Duration::from_secs(2);

/// Where the iteration is, for the sampler's section tags and for the
/// failure's "during §C.2".
type CurrentSection = Arc<Mutex<Option<SectionId>>>;

/// What an iteration shares between its stages: fixed for its whole life.
struct Iteration<'a> {
    settings: &'a RunSettings,
    plan: &'a IterationPlan<'a>,
    groups: &'a ProcessGroups,
    events: &'a mpsc::UnboundedSender<RunEvent>,
    log: &'a LogSink,
    workspace: PathBuf,
}

/// What the iteration collected beside the record, for the resource and
/// counter summaries.
#[derive(Default)]
struct Collected {
    samples: SampleLog,
    machine: Vec<MachineSample>,
    windows: Vec<(String, PerfWindow)>,
    /// Each peer's `counters` read around each section (with `--perf`,
    /// from peers that offer the op).
    reads: Vec<BoundaryRead>,
}

/// Runs one iteration and writes its folder. Never fails: what went wrong
/// is in the record's status and typed `failure`.
pub async fn run_iteration(
    settings: &RunSettings,
    plan: IterationPlan<'_>,
    groups: &ProcessGroups,
    events: &mpsc::UnboundedSender<RunEvent>,
) -> IterationRecord {
    let mut record = fresh_record(settings, &plan);
    let workspace = plan.dir.join("workspace");
    let folder = |message: String| IterationFailure::RunFolder { message };
    if let Err(e) = std::fs::create_dir_all(&workspace) {
        let failure = folder(format!("cannot create `{}`: {e}", workspace.display()));
        fail(&mut record, failure);
        return record;
    }
    let (log, log_writer) = match LogSink::create(&plan.dir.join("script.log")) {
        Ok(pair) => pair,
        Err(e) => {
            fail(
                &mut record,
                folder(format!("cannot create script.log: {e}")),
            );
            return record;
        }
    };
    let _ = events.send(RunEvent::IterationStarted {
        branch: plan.branch.to_owned(),
        iteration: plan.iteration,
        warmup: plan.warmup,
    });
    let iteration = Iteration {
        settings,
        plan: &plan,
        groups,
        events,
        log: &log,
        workspace: workspace.clone(),
    };
    let mut collected = Collected::default();
    match iteration.execute(&mut record, &mut collected).await {
        Ok(()) => {}
        Err(Stop::Interrupted) => record.status = IterationStatus::Interrupted,
        Err(Stop::StepFailed) => record.status = IterationStatus::Failed,
        Err(Stop::Failure(failure)) => {
            log.line("harness", '*', &failure.to_string());
            fail(&mut record, failure);
        }
    }
    let samples = summarise(settings, &mut record, collected);

    log.line(
        "harness",
        '*',
        &format!("iteration ended: {:?}", record.status),
    );
    drop(log);
    let _ = log_writer.await;
    write_files(&plan.dir, &record, &samples);
    if !settings.keep {
        let _ = std::fs::remove_dir_all(&workspace);
    }
    let _ = events.send(RunEvent::IterationFinished(Box::new(record.clone())));
    record
}

/// A record with every section not run yet.
fn fresh_record(settings: &RunSettings, plan: &IterationPlan<'_>) -> IterationRecord {
    IterationRecord {
        schema_version: SCHEMA_VERSION,
        branch: plan.branch.to_owned(),
        iteration: plan.iteration,
        status: IterationStatus::Passed,
        started_at: chrono::Utc::now(),
        total_seconds: 0.0,
        sections: settings
            .scenario
            .sections
            .iter()
            .map(|s| SectionRecord {
                id: s.id.clone(),
                title: s.title.clone(),
                seconds: None,
                status: SectionStatus::NotRun,
                failure: None,
                started_at: None,
                ended_at: None,
                cpu_seconds: BTreeMap::new(),
                peak_rss_bytes: BTreeMap::new(),
            })
            .collect(),
        assertions: Vec::new(),
        resources: Vec::new(),
        contamination: None,
        counters: Vec::new(),
        peers: serde_json::Map::new(),
        testnet_metrics: None,
        attribution: Vec::new(),
        shard: plan.shard,
        failure: None,
    }
}

fn fail(record: &mut IterationRecord, failure: IterationFailure) {
    record.status = IterationStatus::Infrastructure {
        message: failure.to_string(),
    };
    record.failure = Some(failure);
}

/// Resources, contamination, counters and the final status from what was
/// collected; returns the samples for `samples.tsv`.
fn summarise(
    settings: &RunSettings,
    record: &mut IterationRecord,
    collected: Collected,
) -> Vec<(Option<SectionId>, ProcessTreeSample)> {
    let time_scale = record
        .testnet_metrics
        .as_ref()
        .and_then(|m| m.get("time_scale"))
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let start_skip = settings.start_skip.mul_f64(time_scale);
    let samples = std::mem::take(&mut *collected.samples.lock().unwrap_or_else(|p| p.into_inner()));
    let mut roles: Vec<String> = samples.iter().map(|(_, s)| s.role.clone()).collect();
    roles.sort();
    roles.dedup();
    let plain: Vec<ProcessTreeSample> = samples.iter().map(|(_, s)| s.clone()).collect();
    for section in &mut record.sections {
        section.peak_rss_bytes = peak_rss(&samples, &section.id);
    }
    record.resources = roles
        .iter()
        .map(|role| ResourceSummary::from_samples(&plain, role, start_skip))
        .collect();
    record.contamination = Some(ContaminationCheck::evaluate(
        &collected.machine,
        settings.contamination_threshold,
    ));
    let spans: Vec<SectionSpan> = record
        .sections
        .iter()
        .filter_map(|s| {
            Some(SectionSpan {
                section: s.id.to_string(),
                start: s.started_at?,
                end: s.ended_at?,
            })
        })
        .collect();
    // Reads at the sections' ends are exact; windows are the fallback for
    // peers without the `counters` op.
    record.counters = if collected.reads.is_empty() {
        attribute(&collected.windows, &spans)
    } else {
        rows_from_reads(&collected.reads)
    };
    record.attribution = attribution::attribute_sections(&record.sections, &record.counters);
    record.total_seconds = record.sections.iter().filter_map(|s| s.seconds).sum();
    if record.status == IterationStatus::Passed
        && (record
            .sections
            .iter()
            .any(|s| s.status == SectionStatus::Fail)
            || record.assertions.iter().any(|a| !a.passed && a.fails_run()))
    {
        record.status = IterationStatus::Failed;
    }
    samples
}

/// Why the iteration stopped before its end.
enum Stop {
    /// A step failed on the branch's merits (the record says which).
    StepFailed,
    /// Ctrl-C or SIGTERM.
    Interrupted,
    /// Anything outside the branch's control, or a scenario that does not fit.
    Failure(IterationFailure),
}

/// The peers of a running iteration.
struct Peers {
    children: BTreeMap<String, ManagedChild>,
    connections: BTreeMap<String, PeerConnection>,
    last_words: BTreeMap<String, LastWords>,
}

impl Iteration<'_> {
    /// The iteration's life: start the testnet, start the peers, `hello`,
    /// the sections, teardown. Each stage is bounded (ready timeout, step
    /// timeouts, the named grace periods) and ends in a typed [`Stop`].
    async fn execute(
        &self,
        record: &mut IterationRecord,
        collected: &mut Collected,
    ) -> Result<(), Stop> {
        let settings = self.settings;
        self.log.banner("start testnet");
        let mut testnet: Testnet = tokio::select! {
            started = launch::start_testnet(&settings.testnet_cmd, &settings.profile, self.groups, self.log, settings.ready_timeout) => {
                started.map_err(|e| Stop::Failure(if e.refused_input {
                    IterationFailure::TestnetRefused { message: e.message }
                } else {
                    IterationFailure::TestnetStart { message: e.message }
                }))?
            }
            () = settings.cancel.cancelled() => return Err(Stop::Interrupted),
        };
        let redactor = Redactor::with_fields(["mnemonic".to_owned()]);
        let (perf_tx, mut perf_rx) = mpsc::unbounded_channel::<(String, PerfWindow)>();
        let mut peers = Peers {
            children: BTreeMap::new(),
            connections: BTreeMap::new(),
            last_words: BTreeMap::new(),
        };
        let current_section: CurrentSection = Arc::default();
        let mut stop = self
            .start_peers(&testnet, &redactor, &perf_tx, &mut peers)
            .await;
        if stop.is_ok() {
            stop = self.hello(&mut peers, &redactor, record).await;
        }

        let sampling = settings.cancel.child_token();
        let sampler_task = {
            spawn_sampler(
                role_roots(&peers, &testnet),
                settings.interval,
                collected.samples.clone(),
                current_section.clone(),
                sampling.clone(),
            )
        };
        if stop.is_ok() {
            stop = self
                .run_sections(
                    record,
                    &peers,
                    &mut testnet,
                    &current_section,
                    &redactor,
                    &mut collected.reads,
                )
                .await;
        }
        sampling.cancel();
        if let Ok(machine) = sampler_task.await {
            collected.machine.extend(machine);
        }
        record.testnet_metrics = launch::fetch_metrics(&testnet.endpoints.gateway).await;
        let exits = self.teardown(&mut peers, &mut testnet, &stop).await;
        drop(perf_tx);
        while let Some(window) = perf_rx.recv().await {
            collected.windows.push(window);
        }
        stop.map_err(|stop| describe_death(stop, &exits, &peers.last_words))
    }

    /// Starts every peer of the scenario with the testnet's endpoints.
    async fn start_peers(
        &self,
        testnet: &Testnet,
        redactor: &Redactor,
        perf: &mpsc::UnboundedSender<(String, PerfWindow)>,
        peers: &mut Peers,
    ) -> Result<(), Stop> {
        let settings = self.settings;
        let endpoints = &testnet.endpoints;
        let builtins = Builtins {
            iteration: self.plan.iteration as u64,
            repeat_index: 0,
        };
        let scenario_env = settings
            .scenario
            .resolved_peer_env(&builtins)
            .map_err(|e| {
                Stop::Failure(IterationFailure::Scenario {
                    message: format!("[peer_env]: {e}"),
                })
            })?;
        for spec in &settings.scenario.peers {
            let mut env = vec![
                (
                    "SPHERE_AGGREGATOR_URL".to_owned(),
                    endpoints.aggregator.clone(),
                ),
                ("SPHERE_IPFS_GATEWAY".to_owned(), endpoints.gateway.clone()),
                ("SPHERE_NOSTR_RELAY".to_owned(), endpoints.relay.clone()),
                (
                    "SPHERE_TIME_SCALE".to_owned(),
                    testnet.time_scale.to_string(),
                ),
                (
                    "SPHERE_PERF".to_owned(),
                    if settings.perf { "1" } else { "0" }.to_owned(),
                ),
                (
                    "SPHERE_PERF_DUMP_MS".to_owned(),
                    settings.perf_window.as_millis().to_string(),
                ),
            ];
            env.extend(scenario_env.iter().map(|(k, v)| (k.clone(), v.clone())));
            env.extend(self.plan.peer_env.iter().cloned());
            let Peer {
                child,
                connection,
                last_words,
            } = launch::start_peer(
                PeerLaunch {
                    role: &spec.name,
                    spec: self.plan.peer_cmd,
                    data_dir: &self.workspace.join(&spec.name),
                    cwd: self.plan.peer_cwd,
                    env,
                    perf_windows: perf.clone(),
                },
                self.groups,
                self.log,
                redactor,
            )
            .map_err(|e| {
                Stop::Failure(IterationFailure::PeerStart {
                    role: e.role,
                    message: e.message,
                })
            })?;
            peers.children.insert(spec.name.clone(), child);
            peers.connections.insert(spec.name.clone(), connection);
            peers.last_words.insert(spec.name.clone(), last_words);
        }
        Ok(())
    }

    /// `hello` to every peer: its secrets join the redactor, its ops are
    /// checked against the scenario's.
    async fn hello(
        &self,
        peers: &mut Peers,
        redactor: &Redactor,
        record: &mut IterationRecord,
    ) -> Result<(), Stop> {
        let settings = self.settings;
        for (role, connection) in &peers.connections {
            let reply = connection
                .request("hello", &json!({}), settings.ready_timeout)
                .await;
            let reply = match reply {
                Ok(reply) => reply,
                Err(e) => {
                    tokio::time::sleep(LAST_WORDS_WAIT).await;
                    let exit = match peers.children.get_mut(role) {
                        Some(child) => child.wait_for(LAST_WORDS_WAIT).await,
                        None => None,
                    };
                    let words = peers
                        .last_words
                        .get(role)
                        .map(LastWords::suffix)
                        .unwrap_or_default();
                    let message = match e {
                        RequestError::Timeout { .. } => format!(
                            "did not answer `hello` within {} s{words}",
                            settings.ready_timeout.as_secs()
                        ),
                        _ => format!(
                            "ended ({}) before answering `hello`{words}",
                            describe_exit(exit)
                        ),
                    };
                    // Exit 2 before `hello` is the peer refusing its input
                    // (a bad variant setting): the user's to fix, exit 2.
                    let refused = exit.and_then(|e| e.code()) == Some(launch::USAGE_EXIT);
                    let failure = if refused {
                        IterationFailure::PeerRefused {
                            role: role.clone(),
                            message,
                        }
                    } else {
                        IterationFailure::PeerStart {
                            role: role.clone(),
                            message,
                        }
                    };
                    return Err(Stop::Failure(failure));
                }
            };
            for secret in reply
                .result
                .get("secrets")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(name) = secret.as_str() {
                    redactor.add_field(name);
                }
            }
            let ops: Vec<String> = reply
                .result
                .get("ops")
                .and_then(Value::as_array)
                .map(|ops| {
                    ops.iter()
                        .filter_map(|o| o.as_str().map(str::to_owned))
                        .collect()
                })
                .unwrap_or_default();
            if ops.is_empty() {
                return Err(Stop::Failure(IterationFailure::PeerStart {
                    role: role.clone(),
                    message: "its `hello` lists no ops (a peer must list the ops it offers; see docs/peer-protocol.md)".into(),
                }));
            }
            settings.scenario.check_ops(role, &ops).map_err(|e| {
                Stop::Failure(IterationFailure::Scenario {
                    message: e.to_string(),
                })
            })?;
            record.peers.insert(role.clone(), reply.result);
        }
        Ok(())
    }

    /// The scenario's sections in order, each watched against the
    /// testnet's death: if it dies, the section stops at once and the
    /// iteration is the testnet's failure, not the branch's.
    async fn run_sections(
        &self,
        record: &mut IterationRecord,
        peers: &Peers,
        testnet: &mut Testnet,
        current_section: &CurrentSection,
        redactor: &Redactor,
        reads: &mut Vec<BoundaryRead>,
    ) -> Result<(), Stop> {
        let settings = self.settings;
        let mut captures = Captures::new();
        let secret_fields = redactor.fields();
        let roots = role_roots(peers, testnet);
        let counted = counted_peers(settings.perf, peers, record);
        for (index, section) in settings.scenario.sections.iter().enumerate() {
            let id = section.id.to_string();
            self.log.banner(&format!("{id} {}", section.title));
            let _ = self.events.send(RunEvent::SectionStarted {
                id: id.clone(),
                title: section.title.clone(),
            });
            *current_section.lock().unwrap_or_else(|p| p.into_inner()) = Some(section.id.clone());
            let counters_before = read_counters(&counted).await;
            let cpu_before = cpu_now(&roots).await;
            let started_at = chrono::Utc::now();
            let mut ctx = StepContext {
                scenario: &settings.scenario,
                peers: &peers.connections,
                captures: &mut captures,
                iteration: self.plan.iteration as u64,
                secret_fields: &secret_fields,
                timeout_override: settings.step_timeout,
                cancel: &settings.cancel,
            };
            let run = tokio::select! {
                run = run_section(&mut ctx, section) => run,
                exit = testnet.child.wait() => {
                    tokio::time::sleep(LAST_WORDS_WAIT).await;
                    let failure = IterationFailure::TestnetDied {
                        exit: describe_exit(exit.ok()),
                        section: id.clone(),
                        last_words: testnet.last_words.suffix(),
                    };
                    let section_record = &mut record.sections[index];
                    section_record.started_at = Some(started_at);
                    section_record.ended_at = Some(chrono::Utc::now());
                    section_record.status = SectionStatus::Error;
                    section_record.failure = Some(failure.to_string());
                    return Err(Stop::Failure(failure));
                }
            };
            record.sections[index].cpu_seconds = cpu_spent(&cpu_before, &cpu_now(&roots).await);
            let mut counters_after = read_counters(&counted).await;
            for (role, before) in counters_before {
                if let Some(after) = counters_after.remove(&role) {
                    reads.push(BoundaryRead {
                        section: record.sections[index].id.to_string(),
                        role,
                        before,
                        after,
                    });
                }
            }
            let mut run = run;
            let trouble = match stopped_peer(&run.end, peers, &id) {
                Some(failure) => Some(failure),
                None => testnet_trouble(&run.end, testnet, &id).await,
            };
            if let Some(failure) = trouble {
                // A step that failed because the testnet died or froze is
                // the testnet's failure: never charged to the branch.
                run.end = SectionEnd::Testnet(failure);
            }
            self.record_section(record, index, &id, started_at, run)?;
        }
        *current_section.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }

    /// Writes one section's outcome into the record and the events.
    fn record_section(
        &self,
        record: &mut IterationRecord,
        index: usize,
        id: &str,
        started_at: chrono::DateTime<chrono::Utc>,
        run: SectionRun,
    ) -> Result<(), Stop> {
        let seconds = match (run.first_sent, run.last_received) {
            (Some(first), Some(last)) => Some(last.duration_since(first).as_secs_f64()),
            _ => Some(0.0),
        };
        let failed_assertion = run.assertions.iter().any(|a| !a.passed && a.fails_run());
        let section_record = &mut record.sections[index];
        section_record.started_at = Some(started_at);
        section_record.ended_at = Some(chrono::Utc::now());
        section_record.seconds = seconds;
        section_record.status = match &run.end {
            SectionEnd::Completed if failed_assertion => SectionStatus::Fail,
            SectionEnd::Completed => SectionStatus::Pass,
            SectionEnd::StepFailed(_) => SectionStatus::Fail,
            SectionEnd::Infrastructure(_)
            | SectionEnd::PeerFailed(_)
            | SectionEnd::Testnet(_)
            | SectionEnd::Interrupted => SectionStatus::Error,
        };
        for outcome in &run.assertions {
            let _ = self
                .events
                .send(RunEvent::Assertion(Box::new(outcome.clone())));
            if !outcome.passed {
                self.log.line("harness", '*', &outcome.message);
                if let Some(diff) = &outcome.diff {
                    for line in diff.lines() {
                        self.log.line("harness", '*', line);
                    }
                }
            }
        }
        record.assertions.extend(run.assertions);
        let _ = self.events.send(RunEvent::SectionFinished {
            id: id.to_owned(),
            seconds: seconds.unwrap_or(0.0),
            status: section_record.status,
        });
        let failure = match run.end {
            SectionEnd::Completed => return Ok(()),
            SectionEnd::Interrupted => return Err(Stop::Interrupted),
            SectionEnd::StepFailed(message) => {
                self.log.line("harness", '*', &message);
                section_record.failure = Some(message.clone());
                let _ = self.events.send(RunEvent::StepFailed {
                    section: id.to_owned(),
                    message,
                });
                return Err(Stop::StepFailed);
            }
            SectionEnd::Infrastructure(error) => IterationFailure::PeerStart {
                role: error.role,
                message: format!("{} (in {id})", error.message),
            },
            SectionEnd::PeerFailed(error) => peer_failure(error, id),
            SectionEnd::Testnet(failure) => failure,
        };
        section_record.failure = Some(failure.to_string());
        Err(Stop::Failure(failure))
    }

    /// Ask nicely, then the process groups go. A peer that hung or died
    /// gets no `shutdown`; every peer's end is logged, so one killed at
    /// teardown says so. Returns how each peer ended.
    async fn teardown(
        &self,
        peers: &mut Peers,
        testnet: &mut Testnet,
        stop: &Result<(), Stop>,
    ) -> BTreeMap<String, Option<ExitStatus>> {
        self.log.banner("teardown");
        let interrupted = self.settings.cancel.is_cancelled();
        let failed_role = match stop {
            Err(Stop::Failure(
                IterationFailure::StepTimedOut { role, .. }
                | IterationFailure::PeerExited { role, .. }
                | IterationFailure::PeerStopped { role, .. }
                | IterationFailure::PeerUnreachable { role, .. },
            )) => Some(role.as_str()),
            _ => None,
        };
        // Without a testnet a peer's shutdown (which flushes) can only wait
        // out its deadlines: skip it and stop every peer briskly.
        let testnet_gone = matches!(
            stop,
            Err(Stop::Failure(
                IterationFailure::TestnetDied { .. } | IterationFailure::TestnetUnresponsive { .. }
            ))
        );
        for (role, connection) in &peers.connections {
            let alive = peers
                .children
                .get_mut(role)
                .is_some_and(|c| c.try_status().is_none());
            if !interrupted && !testnet_gone && alive && failed_role != Some(role.as_str()) {
                let _ = connection
                    .request("shutdown", &json!({}), self.settings.shutdown_timeout)
                    .await;
            }
        }
        let mut exits = BTreeMap::new();
        for (role, child) in &mut peers.children {
            let grace = if interrupted {
                INTERRUPTED_GRACE
            } else if testnet_gone || failed_role == Some(role.as_str()) {
                FAILED_PEER_GRACE
            } else {
                TEARDOWN_GRACE
            };
            let exit = child.stop(grace).await;
            self.log.line(
                "harness",
                '*',
                &format!("{role} ended ({})", describe_exit(exit)),
            );
            exits.insert(role.clone(), exit);
        }
        // A testnet that died or froze has nothing to finish.
        let grace = if interrupted {
            INTERRUPTED_GRACE
        } else if testnet_gone {
            FAILED_PEER_GRACE
        } else {
            TEARDOWN_GRACE
        };
        let exit = testnet.child.stop(grace).await;
        self.log.line(
            "harness",
            '*',
            &format!("testnet ended ({})", describe_exit(exit)),
        );
        exits
    }
}

/// After a failed step: whether a peer is stopped, so nothing it was asked
/// (or another peer waited for) could happen.
fn stopped_peer(end: &SectionEnd, peers: &Peers, section: &str) -> Option<IterationFailure> {
    let step = match end {
        SectionEnd::StepFailed(message) => message.clone(),
        SectionEnd::PeerFailed(error) => error.to_string(),
        _ => return None,
    };
    let (role, _) = peers.children.iter().find(|(_, c)| c.is_stopped())?;
    Some(IterationFailure::PeerStopped {
        role: role.clone(),
        section: section.to_owned(),
        step,
    })
}

/// After a failed step: whether the testnet died or stopped answering, and
/// if so the failure that is really behind the step's.
async fn testnet_trouble(
    end: &SectionEnd,
    testnet: &mut Testnet,
    section: &str,
) -> Option<IterationFailure> {
    let step = match end {
        SectionEnd::StepFailed(message) => message.clone(),
        SectionEnd::PeerFailed(error) => error.to_string(),
        _ => return None,
    };
    if testnet.child.is_stopped() {
        return Some(IterationFailure::TestnetUnresponsive {
            section: section.to_owned(),
            step,
        });
    }
    if let Some(exit) = testnet.child.wait_for(LAST_WORDS_WAIT).await {
        return Some(IterationFailure::TestnetDied {
            exit: describe_exit(Some(exit)),
            section: section.to_owned(),
            last_words: testnet.last_words.suffix(),
        });
    }
    // A testnet that never served /metrics cannot be probed; its silence
    // proves nothing.
    if testnet.serves_metrics && !launch::answers(&testnet.endpoints.gateway, TESTNET_PROBE).await {
        return Some(IterationFailure::TestnetUnresponsive {
            section: section.to_owned(),
            step,
        });
    }
    None
}

/// A request that got no reply, as a typed failure (its exit filled in at
/// teardown, once the process is reaped).
fn peer_failure(error: RequestError, section: &str) -> IterationFailure {
    let section = section.to_owned();
    match error {
        RequestError::Gone { role, op } => IterationFailure::PeerExited {
            role,
            exit: String::new(),
            op,
            section,
            last_words: String::new(),
        },
        RequestError::Timeout { role, op, timeout } => IterationFailure::StepTimedOut {
            role,
            op,
            section,
            seconds: timeout.as_secs_f64(),
        },
        RequestError::Send { role, op, reason } => IterationFailure::PeerUnreachable {
            role,
            op,
            section,
            reason,
        },
    }
}

/// Fills in how a dead peer ended and its last words, now that it is reaped.
fn describe_death(
    stop: Stop,
    exits: &BTreeMap<String, Option<ExitStatus>>,
    last_words: &BTreeMap<String, LastWords>,
) -> Stop {
    match stop {
        Stop::Failure(IterationFailure::PeerExited {
            role, op, section, ..
        }) => Stop::Failure(IterationFailure::PeerExited {
            exit: describe_exit(exits.get(&role).copied().flatten()),
            last_words: last_words
                .get(&role)
                .map(LastWords::suffix)
                .unwrap_or_default(),
            role,
            op,
            section,
        }),
        other => other,
    }
}

/// Samples every `interval` until cancelled; returns the machine samples
/// (the per-tree samples go to `samples`, tagged with the current section).
/// How long a `counters` read at a section boundary may take: it is
/// answered from memory, so a peer that needs longer is busy or gone, and
/// the section simply has no counters from it.
const COUNTERS_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// The peers whose counters are read at section boundaries: with `--perf`,
/// those whose `hello` offers the `counters` op.
fn counted_peers<'p>(
    perf: bool,
    peers: &'p Peers,
    record: &IterationRecord,
) -> Vec<(&'p str, &'p PeerConnection)> {
    if !perf {
        return Vec::new();
    }
    let offers_counters = |role: &str| {
        record
            .peers
            .get(role)
            .and_then(|hello| hello.get("ops"))
            .and_then(Value::as_array)
            .is_some_and(|ops| ops.iter().any(|op| op.as_str() == Some("counters")))
    };
    peers
        .connections
        .iter()
        .filter(|(role, _)| offers_counters(role))
        .map(|(role, connection)| (role.as_str(), connection))
        .collect()
}

/// Each counted peer's cumulative counters now; a peer that does not
/// answer in time, or answers with something else, is left out.
async fn read_counters(peers: &[(&str, &PeerConnection)]) -> BTreeMap<String, Cumulative> {
    let mut read = BTreeMap::new();
    for (role, connection) in peers {
        let reply = connection
            .request("counters", &json!({}), COUNTERS_READ_TIMEOUT)
            .await;
        if let Some(counters) = reply.ok().and_then(|r| parse_counters_reply(&r.result)) {
            read.insert((*role).to_owned(), counters);
        }
    }
    read
}

/// The largest RSS of each role's tree among the samples tagged with
/// `section` (an id without the `§`).
fn peak_rss(
    samples: &[(Option<SectionId>, ProcessTreeSample)],
    section: &SectionId,
) -> BTreeMap<String, u64> {
    let mut peaks: BTreeMap<String, u64> = BTreeMap::new();
    for (tag, sample) in samples {
        if tag.as_ref() == Some(section) && sample.pid_count > 0 {
            let peak = peaks.entry(sample.role.clone()).or_default();
            *peak = (*peak).max(sample.rss_bytes);
        }
    }
    peaks
}

/// Every role's root process: the peers, then the testnet.
fn role_roots(peers: &Peers, testnet: &Testnet) -> Vec<RoleRoot> {
    let mut roots: Vec<RoleRoot> = peers
        .children
        .iter()
        .map(|(role, child)| (role.clone(), child.pid()))
        .collect();
    roots.push(("testnet".to_owned(), testnet.child.pid()));
    roots
}

/// Each role's tree CPU time now (a pass over `/proc`, off the runtime's
/// threads).
async fn cpu_now(roots: &[RoleRoot]) -> BTreeMap<String, Duration> {
    let roots = roots.to_vec();
    tokio::task::spawn_blocking(move || cpu_clock::read_tree_cpu(&roots))
        .await
        .unwrap_or_default()
}

/// CPU-seconds per role between two reads; a role missing from either
/// (its root died) has none.
fn cpu_spent(
    before: &BTreeMap<String, Duration>,
    after: &BTreeMap<String, Duration>,
) -> BTreeMap<String, f64> {
    after
        .iter()
        .filter_map(|(role, end)| {
            let start = before.get(role)?;
            Some((role.clone(), end.saturating_sub(*start).as_secs_f64()))
        })
        .collect()
}

fn spawn_sampler(
    roots: Vec<RoleRoot>,
    interval: Duration,
    samples: SampleLog,
    current_section: CurrentSection,
    cancel: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<Vec<MachineSample>> {
    tokio::spawn(async move {
        let mut machine = Vec::new();
        // The roots are fixed for the iteration's life: the peers and the
        // testnet are all running before sampling starts.
        let (_roots, watched) = tokio::sync::watch::channel(roots);
        let started = std::time::Instant::now();
        let Ok((task, mut events)) = sampler::spawn_sampling(watched, interval, started, cancel)
        else {
            return machine;
        };
        // Each tick goes to the section running when it arrives.
        while let Some(event) = events.recv().await {
            let section = current_section
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(event.trees.into_iter().map(|s| (section.clone(), s)));
            machine.push(event.machine);
        }
        let _ = task.await;
        machine
    })
}

fn write_files(
    dir: &Path,
    record: &IterationRecord,
    samples: &[(Option<SectionId>, ProcessTreeSample)],
) {
    let results = [
        std::fs::write(dir.join("totals.tsv"), record::totals_tsv(record)),
        std::fs::write(dir.join("samples.tsv"), record::samples_tsv(samples)),
        std::fs::write(
            dir.join("counters.tsv"),
            record::counters_tsv(&record.counters),
        ),
        record::write_json(&dir.join("summary-metrics.json"), record),
    ];
    let attribution = if record.attribution.is_empty() {
        Ok(())
    } else {
        std::fs::write(
            dir.join("attribution.tsv"),
            attribution::attribution_tsv(&record.attribution),
        )
    };
    let results = results.into_iter().chain([attribution]);
    for result in results {
        if let Err(error) = result {
            tracing::error!(dir = %dir.display(), %error, "cannot write a run file");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sections_peak_rss_is_the_largest_sample_tagged_with_it() {
        let sample = |role: &str, pids: usize, rss: u64| ProcessTreeSample {
            elapsed: Duration::ZERO,
            role: role.into(),
            pid_count: pids,
            rss_bytes: rss,
            cpu_pct: 0.0,
        };
        let tagged = |tag: Option<&str>, s| (tag.map(SectionId::from), s);
        let samples = vec![
            tagged(None, sample("peer1", 1, 9_000)),
            tagged(Some("C.2"), sample("peer1", 1, 100)),
            tagged(Some("C.2"), sample("peer1", 1, 300)),
            tagged(Some("C.2"), sample("peer2", 1, 50)),
            // A tree already gone reads 0 and is no sample of it.
            tagged(Some("C.2"), sample("testnet", 0, 0)),
            tagged(Some("D.4"), sample("peer1", 1, 700)),
        ];
        let peaks = peak_rss(&samples, &"C.2".into());
        assert_eq!(peaks, [("peer1".into(), 300), ("peer2".into(), 50)].into());
        assert!(peak_rss(&samples, &"E".into()).is_empty());
    }
}
