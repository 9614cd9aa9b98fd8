//! One iteration: a fresh testnet and fresh peers, the scenario's sections
//! timed and sampled, everything torn down, everything written.

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
    time::Duration,
};

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::{
    RunEvent, RunSettings,
    steps::{SectionEnd, StepContext, run_section},
};
use crate::{
    counters::{PerfWindow, SectionSpan, attribute},
    launch::{self, InfraError, Peer, PeerLaunch, Testnet},
    process::{ManagedChild, ProcessGroups, describe_exit},
    record::{
        self, IterationRecord, IterationStatus, SCHEMA_VERSION, SectionRecord, SectionStatus,
    },
    sampler::{ContaminationCheck, MachineSample, ProcessTreeSample, ResourceSummary, Sampler},
    scenario::vars::{Builtins, Captures},
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
}

type SampleLog = Arc<Mutex<Vec<(Option<String>, ProcessTreeSample)>>>;

/// Runs one iteration and writes its folder. Never fails: what went wrong
/// is in the record's status.
pub async fn run_iteration(
    settings: &RunSettings,
    plan: IterationPlan<'_>,
    groups: &ProcessGroups,
    events: &mpsc::UnboundedSender<RunEvent>,
) -> IterationRecord {
    let started_at = chrono::Utc::now();
    let mut record = IterationRecord {
        schema_version: SCHEMA_VERSION,
        branch: plan.branch.to_owned(),
        iteration: plan.iteration,
        status: IterationStatus::Passed,
        started_at,
        total_seconds: 0.0,
        sections: settings
            .scenario
            .sections
            .iter()
            .map(|s| SectionRecord {
                id: s.id.to_string().trim_start_matches('§').to_owned(),
                title: s.title.clone(),
                seconds: None,
                status: SectionStatus::NotRun,
                failure: None,
                started_at: None,
                ended_at: None,
            })
            .collect(),
        assertions: Vec::new(),
        resources: Vec::new(),
        contamination: None,
        counters: Vec::new(),
        peers: serde_json::Map::new(),
        testnet_metrics: None,
    };
    let workspace = plan.dir.join("workspace");
    if let Err(e) = std::fs::create_dir_all(&workspace) {
        record.status = IterationStatus::Infrastructure {
            message: format!("run folder: cannot create `{}`: {e}", workspace.display()),
        };
        return record;
    }
    let (log, log_writer) = match LogSink::create(&plan.dir.join("script.log")) {
        Ok(pair) => pair,
        Err(e) => {
            record.status = IterationStatus::Infrastructure {
                message: format!("run folder: cannot create script.log: {e}"),
            };
            return record;
        }
    };
    let _ = events.send(RunEvent::IterationStarted {
        branch: plan.branch.to_owned(),
        iteration: plan.iteration,
    });
    let samples: SampleLog = Arc::default();
    let mut machine: Vec<MachineSample> = Vec::new();
    let mut windows: Vec<(String, PerfWindow)> = Vec::new();

    let outcome = execute(
        settings,
        &plan,
        &workspace,
        groups,
        events,
        &log,
        &mut record,
        &samples,
        &mut machine,
        &mut windows,
    )
    .await;
    if let Err(status) = outcome {
        record.status = status;
    }

    // Resources, contamination and counters from what was collected.
    let time_scale = record
        .testnet_metrics
        .as_ref()
        .and_then(|m| m.get("time_scale"))
        .and_then(Value::as_f64)
        .unwrap_or(1.0);
    let start_skip = settings.start_skip.mul_f64(time_scale);
    let samples = std::mem::take(&mut *samples.lock().unwrap_or_else(|p| p.into_inner()));
    let mut roles: Vec<String> = samples.iter().map(|(_, s)| s.role.clone()).collect();
    roles.sort();
    roles.dedup();
    let plain: Vec<ProcessTreeSample> = samples.iter().map(|(_, s)| s.clone()).collect();
    record.resources = roles
        .iter()
        .map(|role| ResourceSummary::from_samples(&plain, role, start_skip))
        .collect();
    record.contamination = Some(ContaminationCheck::evaluate(
        &machine,
        settings.contamination_threshold,
    ));
    let spans: Vec<SectionSpan> = record
        .sections
        .iter()
        .filter_map(|s| {
            Some(SectionSpan {
                section: format!("§{}", s.id),
                start: s.started_at?,
                end: s.ended_at?,
            })
        })
        .collect();
    record.counters = attribute(&windows, &spans);
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

#[allow(clippy::too_many_arguments)]
async fn execute(
    settings: &RunSettings,
    plan: &IterationPlan<'_>,
    workspace: &Path,
    groups: &ProcessGroups,
    events: &mpsc::UnboundedSender<RunEvent>,
    log: &LogSink,
    record: &mut IterationRecord,
    samples: &SampleLog,
    machine: &mut Vec<MachineSample>,
    windows: &mut Vec<(String, PerfWindow)>,
) -> Result<(), IterationStatus> {
    let infra = |e: InfraError| IterationStatus::Infrastructure {
        message: e.to_string(),
    };
    log.banner("start testnet");
    let mut testnet: Testnet = tokio::select! {
        started = launch::start_testnet(&settings.testnet_cmd, &settings.profile, groups, log, settings.ready_timeout) => started.map_err(infra)?,
        () = settings.cancel.cancelled() => return Err(IterationStatus::Interrupted),
    };
    let redactor = Redactor::with_fields(["mnemonic".to_owned()]);
    let (perf_tx, mut perf_rx) = mpsc::unbounded_channel::<(String, PerfWindow)>();
    let mut children: BTreeMap<String, ManagedChild> = BTreeMap::new();
    let mut connections = BTreeMap::new();
    let result = async {
        let endpoints = testnet.endpoints.clone();
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
            let builtins = Builtins {
                iteration: plan.iteration as u64,
                repeat_index: 0,
            };
            let scenario_env = settings
                .scenario
                .resolved_peer_env(&builtins)
                .map_err(|e| IterationStatus::Infrastructure {
                    message: format!("scenario [peer_env]: {e}"),
                })?;
            env.extend(scenario_env);
            env.extend(plan.peer_env.iter().cloned());
            let Peer { child, connection } = launch::start_peer(
                PeerLaunch {
                    role: &spec.name,
                    spec: plan.peer_cmd,
                    data_dir: &workspace.join(&spec.name),
                    cwd: plan.peer_cwd,
                    env,
                    perf_windows: perf_tx.clone(),
                },
                groups,
                log,
                &redactor,
            )
            .map_err(infra)?;
            children.insert(spec.name.clone(), child);
            connections.insert(spec.name.clone(), connection);
        }
        for (role, connection) in &connections {
            let reply = connection
                .request("hello", &json!({}), settings.ready_timeout)
                .await
                .map_err(|e| {
                    infra(InfraError::new(
                        role,
                        format!("did not answer `hello`: {e}"),
                    ))
                })?;
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
            if !ops.is_empty() {
                settings.scenario.check_ops(role, &ops).map_err(|e| {
                    IterationStatus::Infrastructure {
                        message: format!("scenario: {e}"),
                    }
                })?;
            }
            record.peers.insert(role.clone(), reply.result);
        }
        Ok::<(), IterationStatus>(())
    }
    .await;

    let current_section: Arc<Mutex<Option<String>>> = Arc::default();
    let sampling = settings.cancel.child_token();
    let sampler_task = {
        let mut roots: Vec<(String, u32)> =
            children.iter().map(|(r, c)| (r.clone(), c.pid())).collect();
        roots.push(("testnet".to_owned(), testnet.child.pid()));
        spawn_sampler(
            roots,
            settings.interval,
            samples.clone(),
            current_section.clone(),
            sampling.clone(),
        )
    };

    let mut status = result;
    if status.is_ok() {
        let secret_fields = redactor.fields();
        status = run_sections(
            settings,
            plan,
            record,
            &connections,
            events,
            log,
            &current_section,
            &secret_fields,
        )
        .await;
    }
    sampling.cancel();
    if let Ok(collected) = sampler_task.await {
        machine.extend(collected);
    }
    record.testnet_metrics = launch::fetch_metrics(&testnet.endpoints.gateway).await;

    // Teardown: ask nicely, then the process groups go.
    log.banner("teardown");
    let interrupted = settings.cancel.is_cancelled();
    for (role, connection) in &connections {
        if !interrupted
            && children
                .get_mut(role)
                .is_some_and(|c| c.try_status().is_none())
        {
            let _ = connection
                .request("shutdown", &json!({}), settings.shutdown_timeout)
                .await;
        }
    }
    let mut exits = BTreeMap::new();
    for (role, child) in &mut children {
        let grace = if interrupted {
            Duration::from_millis(200)
        } else {
            Duration::from_secs(5)
        };
        exits.insert(role.clone(), child.stop(grace).await);
    }
    testnet.child.stop(Duration::from_secs(5)).await;
    drop(perf_tx);
    while let Some(window) = perf_rx.recv().await {
        windows.push(window);
    }
    // A crash message says how the process ended, now that it is reaped.
    if let Err(IterationStatus::Infrastructure { message }) = &mut status
        && let Some((role, _)) = message.split_once(": exited while")
        && let Some(exit) = exits.get(role)
    {
        *message = message.replacen(
            ": exited while",
            &format!(": exited ({}) while", describe_exit(*exit)),
            1,
        );
    }
    status
}

#[allow(clippy::too_many_arguments)]
async fn run_sections(
    settings: &RunSettings,
    plan: &IterationPlan<'_>,
    record: &mut IterationRecord,
    connections: &BTreeMap<String, crate::peer::PeerConnection>,
    events: &mpsc::UnboundedSender<RunEvent>,
    log: &LogSink,
    current_section: &Arc<Mutex<Option<String>>>,
    secret_fields: &[String],
) -> Result<(), IterationStatus> {
    let mut captures = Captures::new();
    let secret_fields = secret_fields.to_vec();
    for (index, section) in settings.scenario.sections.iter().enumerate() {
        let id = section.id.to_string();
        log.banner(&format!("{id} {}", section.title));
        let _ = events.send(RunEvent::SectionStarted {
            id: id.clone(),
            title: section.title.clone(),
        });
        *current_section.lock().unwrap_or_else(|p| p.into_inner()) =
            Some(id.trim_start_matches('§').to_owned());
        let started_at = chrono::Utc::now();
        let mut ctx = StepContext {
            scenario: &settings.scenario,
            peers: connections,
            captures: &mut captures,
            iteration: plan.iteration as u64,
            secret_fields: &secret_fields,
            timeout_override: settings.step_timeout,
            cancel: &settings.cancel,
        };
        let run = run_section(&mut ctx, section).await;
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
            SectionEnd::Infrastructure(_) | SectionEnd::Interrupted => SectionStatus::Error,
        };
        for outcome in &run.assertions {
            let _ = events.send(RunEvent::Assertion(Box::new(outcome.clone())));
            if !outcome.passed {
                log.line("harness", '*', &outcome.message);
                if let Some(diff) = &outcome.diff {
                    for line in diff.lines() {
                        log.line("harness", '*', line);
                    }
                }
            }
        }
        record.assertions.extend(run.assertions);
        let _ = events.send(RunEvent::SectionFinished {
            id: id.clone(),
            seconds: seconds.unwrap_or(0.0),
            status: section_record.status,
        });
        match run.end {
            SectionEnd::Completed => {}
            SectionEnd::StepFailed(message) => {
                log.line("harness", '*', &message);
                section_record.failure = Some(message.clone());
                let _ = events.send(RunEvent::StepFailed {
                    section: id,
                    message,
                });
                return Err(IterationStatus::Failed);
            }
            SectionEnd::Infrastructure(error) => {
                section_record.failure = Some(error.to_string());
                return Err(IterationStatus::Infrastructure {
                    message: format!("{error} (in {id})"),
                });
            }
            SectionEnd::Interrupted => return Err(IterationStatus::Interrupted),
        }
    }
    *current_section.lock().unwrap_or_else(|p| p.into_inner()) = None;
    Ok(())
}

/// Samples every `interval` until cancelled; returns the machine samples
/// (the per-tree samples go to `samples`, tagged with the current section).
fn spawn_sampler(
    roots: Vec<(String, u32)>,
    interval: Duration,
    samples: SampleLog,
    current_section: Arc<Mutex<Option<String>>>,
    cancel: tokio_util::sync::CancellationToken,
) -> tokio::task::JoinHandle<Vec<MachineSample>> {
    tokio::spawn(async move {
        let started = tokio::time::Instant::now();
        let mut machine = Vec::new();
        let Ok(sampler) = Sampler::new() else {
            return machine;
        };
        let sampler = Arc::new(Mutex::new(sampler));
        let mut ticker = tokio::time::interval(interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => break,
                _ = ticker.tick() => {}
            }
            let elapsed = started.elapsed();
            let sampler = sampler.clone();
            let roots = roots.clone();
            // Refreshing every process reads /proc: keep it off the runtime.
            let taken = tokio::task::spawn_blocking(move || {
                sampler
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .sample(&roots, elapsed)
            })
            .await;
            let Ok((trees, whole)) = taken else { break };
            let section = current_section
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone();
            samples
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .extend(trees.into_iter().map(|s| (section.clone(), s)));
            machine.push(whole);
        }
        machine
    })
}

fn write_files(
    dir: &Path,
    record: &IterationRecord,
    samples: &[(Option<String>, ProcessTreeSample)],
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
    for result in results {
        if let Err(error) = result {
            tracing::error!(dir = %dir.display(), %error, "cannot write a run file");
        }
    }
}
