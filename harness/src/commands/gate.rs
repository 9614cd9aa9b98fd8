//! `soak gate RUN_DIR`: re-judge an existing A/B run folder without running
//! anything, so thresholds can be tuned after the fact.

use std::path::{Path, PathBuf};

use super::{CommandError, ab::AbOutcome};
use crate::{
    ab::{
        compare::{JudgeSettings, completed, judge},
        gate_config::GateConfig,
        report::{self, Labels},
    },
    manifest::{BranchInfo, Manifest},
    record::{IterationRecord, IterationStatus},
    stats::Alpha,
};

/// Reads every `summary-metrics.json` under `dir/<branch>/run-K`, in
/// iteration order.
pub fn read_branch(dir: &Path, branch: &str) -> Result<Vec<IterationRecord>, CommandError> {
    let branch_dir = dir.join(branch);
    if !branch_dir.is_dir() {
        return Err(CommandError::Usage(format!(
            "`{}` is not an A/B run folder (no `{branch}/`); give the folder `soak ab` wrote",
            dir.display()
        )));
    }
    read_runs(&branch_dir)
}

/// Reads every `summary-metrics.json` under `dir/run-K`, in iteration order.
pub fn read_runs(dir: &Path) -> Result<Vec<IterationRecord>, CommandError> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| CommandError::Usage(format!("cannot read `{}`: {e}", dir.display())))?;
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

/// Re-judges `dir` with `config` and rewrites its reports. `alpha` is a
/// `--alpha` given on the command line; without it the alpha the run
/// recorded (its last look's) is used, so the verdict is the run's own.
pub fn run(dir: &Path, config: &GateConfig, alpha: Option<f64>) -> Result<AbOutcome, CommandError> {
    let baseline = read_branch(dir, "baseline")?;
    let treatment = read_branch(dir, "treatment")?;
    let manifest: Option<Manifest> = std::fs::read(dir.join("manifest.json"))
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let recorded = manifest.as_ref().and_then(|m| m.judged.clone());
    let interrupted = manifest.as_ref().is_some_and(|m| m.interrupted);
    let settings = JudgeSettings {
        alpha: alpha
            .or(recorded.as_ref().map(|r| r.alpha))
            .unwrap_or(config.alpha),
        interrupted,
        retried: recorded.map(|r| r.retried).unwrap_or_default(),
    };
    Alpha::new(settings.alpha).map_err(|e| CommandError::Usage(e.to_string()))?;
    let (b, t) = (completed(&baseline), completed(&treatment));
    // A run that stopped early (Ctrl-C, or an infrastructure failure out of
    // retries) is reported as such, whatever its count; only a complete run
    // with too little evidence is refused.
    let stopped_early = baseline
        .iter()
        .chain(&treatment)
        .any(|r| matches!(r.status, IterationStatus::Infrastructure { .. }));
    if !interrupted && !stopped_early && b.min(t) < config.min_iterations {
        return Err(CommandError::Usage(format!(
            "`{}` has {b} baseline and {t} treatment iterations that completed; the gate needs at least {} per side (min_iterations) to judge",
            dir.display(),
            config.min_iterations
        )));
    }
    let judgement = judge(&baseline, &treatment, config, settings);
    let label = |name: &str| {
        let branch = manifest
            .as_ref()
            .and_then(|m| m.branches.iter().find(|b| b.name == name));
        match branch {
            Some(b) => b.label.clone().unwrap_or_else(|| legacy_label(b)),
            None => name.to_owned(),
        }
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
        CommandError::Io(format!(
            "cannot write the reports into `{}`: {e}",
            dir.display()
        ))
    })?;
    Ok(AbOutcome {
        out: dir.to_owned(),
        terminal,
        judgement,
    })
}

/// A label for a manifest written before labels were recorded.
fn legacy_label(b: &BranchInfo) -> String {
    match (&b.git_ref, &b.commit) {
        // `chars` rather than a byte slice: a commit string is input.
        (Some(r), Some(c)) => format!("{r} @ {}", c.chars().take(7).collect::<String>()),
        _ => format!(
            "{} {}",
            b.peer_cmd,
            b.peer_env
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}
