//! `soak merge SHARD_DIR... --out DIR`: the shards of one sharded `soak ab`
//! combined into one run folder, then judged with each shard as a block.
//!
//! Merging refuses shards that do not belong together (another run, commit,
//! scenario, profile, variant or gate), naming the first difference, since
//! iterations of different inputs compared as one would be a wrong verdict
//! that looks right. Iterations are renumbered per branch in shard order
//! and keep their shard, so `soak gate` on the merged folder judges it the
//! same way again.

use std::path::{Path, PathBuf};

use super::{CommandError, ab::AbOutcome, check_out_dir, check_run_dir, gate::read_branch};
use crate::{
    ab::{compare::JudgeSettings, gate_config::GateConfig, schedule::Side, shard::ShardInfo},
    manifest::{Manifest, MergedShard},
    record::IterationRecord,
};

/// `soak merge` options.
#[derive(Debug, Clone)]
pub struct MergeOptions {
    /// The shard folders, in any order.
    pub shards: Vec<PathBuf>,
    /// The merged folder (new or empty).
    pub out: PathBuf,
    /// The gate configuration (file plus flags).
    pub gate: GateConfig,
    /// `--alpha`, if given.
    pub alpha: Option<f64>,
}

/// One shard as read from its folder.
struct ShardDir {
    dir: PathBuf,
    manifest: Manifest,
    info: ShardInfo,
}

/// Merges and judges; the outcome is the merged run's, like `soak gate`'s.
pub fn run(options: &MergeOptions) -> Result<AbOutcome, CommandError> {
    if options.shards.len() < 2 {
        return Err(CommandError::Usage(
            "soak merge needs at least two shard folders (from `soak ab --shard I/N`)".into(),
        ));
    }
    let mut shards = options
        .shards
        .iter()
        .map(|dir| read_shard(dir))
        .collect::<Result<Vec<_>, _>>()?;
    shards.sort_by_key(|s| s.info.shard.index);
    check_together(&shards)?;
    check_out_dir(&options.out)?;
    let out = &options.out;
    let merged = merge_into(&shards, out)?;
    let first = &shards[0].manifest;
    let retried: Vec<String> = shards
        .iter()
        .flat_map(|s| {
            let lines = s.manifest.judged.as_ref().map(|j| j.retried.clone());
            lines
                .unwrap_or_default()
                .into_iter()
                .map(move |line| format!("shard {}: {line}", s.info.shard))
        })
        .collect();
    let manifest = Manifest {
        command_line: std::env::args().collect(),
        started_at: shards
            .iter()
            .map(|s| s.manifest.started_at)
            .min()
            .unwrap_or(first.started_at),
        iterations: format!("{} per shard x {} shards", first.iterations, shards.len()),
        interrupted: shards.iter().any(|s| s.manifest.interrupted),
        judged: Some(JudgeSettings {
            alpha: options.alpha.unwrap_or(options.gate.alpha),
            interrupted: shards.iter().any(|s| s.manifest.interrupted),
            retried,
        }),
        shard: None,
        shards: merged,
        ..first.clone()
    };
    manifest
        .write(out)
        .map_err(|e| CommandError::Io(format!("cannot write to --out `{}`: {e}", out.display())))?;
    super::gate::run(out, &options.gate, options.alpha)
}

fn read_shard(dir: &Path) -> Result<ShardDir, CommandError> {
    check_run_dir(dir)?;
    let path = dir.join("manifest.json");
    let bytes = std::fs::read(&path).map_err(|e| {
        CommandError::Usage(format!(
            "`{}` has no readable manifest.json ({e}): give folders written by `soak ab --shard I/N`",
            dir.display()
        ))
    })?;
    let manifest: Manifest = serde_json::from_slice(&bytes).map_err(|e| {
        CommandError::Usage(format!(
            "`{}` is not a manifest this soak can read: {e}",
            path.display()
        ))
    })?;
    let info = manifest.shard.clone().ok_or_else(|| {
        CommandError::Usage(format!(
            "`{}` is not a shard (it was run without --shard); merge folders of `soak ab --shard I/N`",
            dir.display()
        ))
    })?;
    Ok(ShardDir {
        dir: dir.to_owned(),
        manifest,
        info,
    })
}

/// Refuses shards of different runs, naming the first input they differ
/// in, and a shard given twice.
fn check_together(shards: &[ShardDir]) -> Result<(), CommandError> {
    let first = &shards[0];
    for pair in shards.windows(2) {
        if pair[0].info.shard.index == pair[1].info.shard.index {
            return Err(CommandError::Usage(format!(
                "shard {} is given twice (`{}` and `{}`): give each shard once",
                pair[0].info.shard,
                pair[0].dir.display(),
                pair[1].dir.display()
            )));
        }
    }
    for other in &shards[1..] {
        if other.info.run_id == first.info.run_id {
            continue;
        }
        let difference = first_difference(&first.manifest, &other.manifest)
            .unwrap_or_else(|| "the gate configuration".into());
        return Err(CommandError::Usage(format!(
            "`{}` (shard {} of {}) and `{}` (shard {} of {}) are not one run: they differ in {difference}; merge shards run with the same inputs",
            first.dir.display(),
            first.info.shard,
            first.info.run_id,
            other.dir.display(),
            other.info.shard,
            other.info.run_id,
        )));
    }
    Ok(())
}

/// The first input two shard manifests disagree on, in words.
fn first_difference(a: &Manifest, b: &Manifest) -> Option<String> {
    let shown = |x: &dyn std::fmt::Debug| format!("{x:?}");
    let mut checks: Vec<(String, String, String)> = vec![
        (
            "the scenario".into(),
            a.scenario.sha256.clone(),
            b.scenario.sha256.clone(),
        ),
        (
            "the scenario parameters".into(),
            a.scenario.params.to_string(),
            b.scenario.params.to_string(),
        ),
        (
            "the network profile".into(),
            a.network_profile.clone(),
            b.network_profile.clone(),
        ),
        (
            "--iterations".into(),
            a.iterations.clone(),
            b.iterations.clone(),
        ),
        (
            "the number of shards".into(),
            shown(&a.shard.as_ref().map(|s| s.shard.count)),
            shown(&b.shard.as_ref().map(|s| s.shard.count)),
        ),
    ];
    for (x, y) in a.branches.iter().zip(&b.branches) {
        checks.push((
            format!("the {} ref", x.name),
            shown(&x.git_ref),
            shown(&y.git_ref),
        ));
        checks.push((
            format!("the {} commit", x.name),
            shown(&x.commit),
            shown(&y.commit),
        ));
        let env = |pairs: &[(String, String)]| {
            let shown: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
            format!("`{}`", shown.join(" "))
        };
        checks.push((
            format!("the {} peer environment", x.name),
            env(&x.peer_env),
            env(&y.peer_env),
        ));
    }
    checks
        .into_iter()
        .find(|(_, x, y)| x != y)
        .map(|(what, x, y)| format!("{what} ({x} vs {y})"))
}

/// Copies every shard's iterations into `out/<branch>/run-K`, renumbered
/// per branch in shard order, each record keeping its shard.
fn merge_into(shards: &[ShardDir], out: &Path) -> Result<Vec<MergedShard>, CommandError> {
    let write_error = |path: &Path, e: std::io::Error| {
        CommandError::Io(format!("cannot write `{}`: {e}", path.display()))
    };
    let mut next = [1_usize, 1];
    let mut merged = Vec::new();
    for shard in shards {
        let mut counts = [0_usize, 0];
        for (index, side) in [Side::Baseline, Side::Treatment].into_iter().enumerate() {
            let records: Vec<IterationRecord> = read_branch(&shard.dir, side.name())?;
            for mut record in records {
                let from = shard
                    .dir
                    .join(side.name())
                    .join(format!("run-{}", record.iteration));
                let k = next[index];
                let to = out.join(side.name()).join(format!("run-{k}"));
                copy_dir(&from, &to).map_err(|e| write_error(&to, e))?;
                record.iteration = k;
                record.shard = Some(shard.info.shard.index);
                let summary = to.join("summary-metrics.json");
                crate::record::write_json(&summary, &record)
                    .map_err(|e| write_error(&summary, e))?;
                next[index] += 1;
                counts[index] += 1;
            }
        }
        merged.push(MergedShard {
            shard: shard.info.shard,
            dir: shard.dir.display().to_string(),
            machine: shard.manifest.machine.clone(),
            started_at: shard.manifest.started_at,
            iterations: (counts[0], counts[1]),
        });
    }
    Ok(merged)
}

/// Copies a folder tree (files and folders; links are skipped: a run folder
/// has none, and following one could copy far more than the run).
fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let kind = entry.file_type()?;
        let target = to.join(entry.file_name());
        if kind.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), &target)?;
        }
    }
    Ok(())
}
