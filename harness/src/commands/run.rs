//! `soak run`: iterations of one branch, reported and written to a run
//! folder.

use std::path::PathBuf;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{
    CommandError, Common, create_out_dir, default_out_dir, parse_env_pairs, resolve_command,
    run_settings,
};
use crate::{
    manifest::{BranchInfo, Manifest},
    process::ProcessGroups,
    record::IterationRecord,
    reporter::{self, Verbosity},
    runner::{self, RunVerdict},
};

/// `soak run` options, validated by [`run`].
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Options shared with `soak ab`.
    pub common: Common,
    /// `--peer-cmd`.
    pub peer_cmd: Option<String>,
    /// `--iterations`.
    pub iterations: usize,
    /// `--peer-env K=V`.
    pub peer_env: Vec<String>,
}

/// What a finished `soak run` produced.
pub struct RunOutcome {
    /// How the iterations ended (the binary picks the exit code).
    pub verdict: RunVerdict,
    /// The run folder.
    pub out: PathBuf,
    /// Every iteration.
    pub records: Vec<IterationRecord>,
}

/// Runs the iterations and writes the run folder.
pub async fn run(
    options: RunOptions,
    cancel: CancellationToken,
    groups: ProcessGroups,
) -> Result<RunOutcome, CommandError> {
    let (settings, scenario_info) = run_settings(&options.common, cancel.clone())?;
    let peer_cmd = resolve_command(options.peer_cmd.as_deref(), "sphere-peer", "--peer-cmd")?;
    let peer_env = parse_env_pairs(&options.peer_env, "--peer-env")?;
    if options.iterations == 0 {
        return Err(CommandError::Usage(
            "--iterations `0`: expected at least 1 iteration, e.g. --iterations 3".into(),
        ));
    }
    let out = options.common.out.clone().unwrap_or_else(default_out_dir);
    create_out_dir(&out)?;
    let mut manifest = Manifest::start(
        scenario_info,
        &settings,
        vec![BranchInfo {
            name: "run".into(),
            peer_cmd: peer_cmd.display(),
            peer_env: peer_env.clone(),
            ..BranchInfo::default()
        }],
        options.iterations.to_string(),
    );
    manifest
        .write(&out)
        .map_err(|e| CommandError::Io(format!("cannot write to --out `{}`: {e}", out.display())))?;

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let verbosity = if options.common.quiet || options.common.json {
        Verbosity::Quiet
    } else {
        Verbosity::Normal
    };
    let progress = reporter::spawn_progress(events_rx, options.iterations, verbosity);
    let branch = runner::BranchRun {
        name: "run",
        peer_cmd: &peer_cmd,
        peer_env: &peer_env,
        out: &out,
        peer_cwd: None,
        shard: None,
    };
    let records =
        runner::run_branch(&settings, &branch, options.iterations, &groups, &events_tx).await;
    drop(events_tx);
    let _ = progress.await;

    manifest.interrupted = cancel.is_cancelled();
    manifest.record_variants(&[&records]);
    if let Err(error) = manifest.write(&out) {
        tracing::error!(%error, "cannot update manifest.json");
    }
    Ok(RunOutcome {
        verdict: RunVerdict::of(&records),
        out,
        records,
    })
}
