//! `soak power RUN_DIR`: the gate's false-alarm rate and power, measured by
//! resampling the iterations of one variant in an existing run folder.

use std::path::{Path, PathBuf};

use super::{CommandError, gate::read_runs};
use crate::{
    ab::{compare::completed, gate_config::GateConfig},
    manifest::Manifest,
    power::{Pool, PowerSettings, PowerStudy, Suggestion, study, suggest},
    record::IterationRecord,
    stats::Alpha,
};
use soakgate_reports::power::PowerReport;

/// `soak power` options.
#[derive(Debug, Clone)]
pub struct PowerOptions {
    /// The folder of an A/A `soak ab` or of `soak run --iterations N`.
    pub dir: PathBuf,
    /// The gate whose power is measured.
    pub gate: GateConfig,
    /// Resampled runs per size.
    pub trials: usize,
    /// Seed of the draws.
    pub seed: u64,
}

/// What `soak power` found.
pub struct PowerOutcome {
    /// The study.
    pub study: PowerStudy,
    /// The suggested gate configuration.
    pub suggestion: Suggestion,
}

/// The pool: both sides of an A/A `soak ab` folder, or the runs of a `soak
/// run` folder. A/B folders whose branches differ are refused: their
/// iterations are not one variant's noise.
pub fn read_pool(dir: &Path) -> Result<Vec<IterationRecord>, CommandError> {
    let (baseline, treatment) = (dir.join("baseline"), dir.join("treatment"));
    if !(baseline.is_dir() && treatment.is_dir()) {
        let runs = read_runs(dir)?;
        if runs.is_empty() {
            return Err(CommandError::Usage(format!(
                "`{}` holds no run-K/summary-metrics.json: give the folder of `soak run --iterations N` or of an A/A `soak ab`",
                dir.display()
            )));
        }
        return Ok(runs);
    }
    if let Some(manifest) = read_manifest(dir)
        && let [b, t] = manifest.branches.as_slice()
    {
        let same = b.peer_env == t.peer_env && b.commit == t.commit && b.peer_cmd == t.peer_cmd;
        if !same {
            return Err(CommandError::Usage(format!(
                "`{}` compares two different branches ({} vs {}); power needs iterations of one variant: an A/A `soak ab` (same --baseline-env and --treatment-env) or `soak run --iterations N`",
                dir.display(),
                b.label.as_deref().unwrap_or("baseline"),
                t.label.as_deref().unwrap_or("treatment")
            )));
        }
    }
    let mut pool = read_runs(&baseline)?;
    pool.extend(read_runs(&treatment)?);
    Ok(pool)
}

fn read_manifest(dir: &Path) -> Option<Manifest> {
    let bytes = std::fs::read(dir.join("manifest.json")).ok()?;
    serde_json::from_slice(&bytes).ok()
}

/// Runs the study on `options.dir`.
pub fn run(options: &PowerOptions) -> Result<PowerOutcome, CommandError> {
    let records = read_pool(&options.dir)?;
    let complete: Vec<IterationRecord> = records
        .into_iter()
        .filter(|r| completed(std::slice::from_ref(r)) == 1)
        .collect();
    let pool = Pool::from_records(&complete, &options.gate)
        .map_err(|e| CommandError::Usage(format!("`{}`: {e}", options.dir.display())))?;
    let alpha = Alpha::new(options.gate.alpha).map_err(|e| CommandError::Usage(e.to_string()))?;
    let settings = PowerSettings {
        trials: options.trials,
        seed: options.seed,
        ..PowerSettings::standard(alpha)
    };
    let result = study(&pool, &settings)
        .map_err(|e| CommandError::Usage(format!("`{}`: {e}", options.dir.display())))?;
    let suggestion = suggest(&pool, &options.gate, &settings, &result);
    Ok(PowerOutcome {
        study: result,
        suggestion,
    })
}

/// The study in the reports crate's model.
pub fn report_model(options: &PowerOptions, outcome: &PowerOutcome) -> PowerReport {
    use soakgate_reports::power::MetricPowerRow;
    let s = &outcome.study;
    PowerReport {
        source: options.dir.display().to_string(),
        pool_size: s.pool_size,
        trials: s.trials,
        alpha: s.alpha,
        gate: s.gate.clone(),
        metrics: s
            .metrics
            .iter()
            .map(|m| MetricPowerRow {
                metric: m.metric.clone(),
                median: m.median,
                spread: m.spread,
                rates: m.rates.clone(),
            })
            .collect(),
        auto: s.auto.clone(),
        suggestion: outcome.suggestion.toml.clone(),
    }
}

/// Writes `power.tsv`, `power.html`, `power.json` and `gate-suggested.toml`
/// into the run folder; returns the terminal table.
pub fn write_all(options: &PowerOptions, outcome: &PowerOutcome) -> Result<String, CommandError> {
    let report = report_model(options, outcome);
    let dir = &options.dir;
    let write = |name: &str, bytes: &[u8]| {
        std::fs::write(dir.join(name), bytes).map_err(|e| {
            CommandError::Io(format!("cannot write `{}`: {e}", dir.join(name).display()))
        })
    };
    write(
        "power.tsv",
        soakgate_reports::power::tsv(&report).as_bytes(),
    )?;
    write(
        "power.html",
        soakgate_reports::power::html(&report).as_bytes(),
    )?;
    write("gate-suggested.toml", outcome.suggestion.toml.as_bytes())?;
    let json = serde_json::to_vec_pretty(&outcome.study).unwrap_or_default();
    write("power.json", &json)?;
    Ok(soakgate_reports::power::terminal(&report))
}
