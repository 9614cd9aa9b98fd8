//! `soak gate RUN_DIR`: re-judge an existing A/B run folder without running
//! anything, so thresholds can be tuned after the fact.

use std::path::{Path, PathBuf};

use super::{CommandError, ab::AbOutcome};
use crate::{
    ab::{
        compare::judge,
        gate_config::GateConfig,
        report::{self, Labels},
    },
    manifest::Manifest,
    record::IterationRecord,
    stats::Alpha,
};

/// Reads every `summary-metrics.json` under `dir/<branch>/run-K`, in
/// iteration order.
pub fn read_branch(dir: &Path, branch: &str) -> Result<Vec<IterationRecord>, CommandError> {
    let branch_dir = dir.join(branch);
    let entries = std::fs::read_dir(&branch_dir).map_err(|e| {
        CommandError::Usage(format!(
            "`{}` is not an A/B run folder (no `{branch}/`: {e}); give the folder `soak ab` wrote",
            dir.display()
        ))
    })?;
    let mut runs: Vec<(usize, PathBuf)> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let k = name.strip_prefix("run-")?.parse().ok()?;
            Some((k, e.path().join("summary-metrics.json")))
        })
        .collect();
    runs.sort();
    runs.into_iter()
        .filter(|(_, path)| path.exists())
        .map(|(_, path)| {
            let bytes = std::fs::read(&path).map_err(|e| {
                CommandError::Usage(format!("cannot read `{}`: {e}", path.display()))
            })?;
            serde_json::from_slice(&bytes).map_err(|e| {
                CommandError::Usage(format!(
                    "`{}` is not a summary-metrics.json this soak can read: {e}",
                    path.display()
                ))
            })
        })
        .collect()
}

/// Re-judges `dir` with `config` and rewrites its reports.
pub fn run(dir: &Path, config: &GateConfig) -> Result<AbOutcome, CommandError> {
    let baseline = read_branch(dir, "baseline")?;
    let treatment = read_branch(dir, "treatment")?;
    let alpha = Alpha::new(config.alpha).map_err(|e| CommandError::Usage(e.to_string()))?;
    let judgement = judge(&baseline, &treatment, config, alpha);
    let manifest: Option<Manifest> = std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let label = |name: &str| {
        manifest
            .as_ref()
            .and_then(|m| m.branches.iter().find(|b| b.name == name))
            .map(|b| match (&b.git_ref, &b.commit) {
                (Some(r), Some(c)) => format!("{r} @ {}", &c[..c.len().min(7)]),
                _ => format!(
                    "{} {}",
                    b.peer_cmd,
                    b.peer_env
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join(" ")
                ),
            })
            .unwrap_or_else(|| name.to_owned())
    };
    let labels = Labels {
        baseline: label("baseline"),
        treatment: label("treatment"),
    };
    let manifest_json = manifest
        .map(|m| serde_json::to_value(m).unwrap_or_default())
        .unwrap_or_default();
    let ab_report = report::build(
        &judgement,
        &baseline,
        &treatment,
        &labels,
        dir,
        manifest_json,
    );
    let terminal = report::write_all(dir, &ab_report, &judgement).map_err(|e| {
        CommandError::Infrastructure(format!(
            "cannot write the reports into `{}`: {e}",
            dir.display()
        ))
    })?;
    Ok(AbOutcome {
        exit_code: judgement.exit_code,
        out: dir.to_owned(),
        terminal,
        judgement,
    })
}
