//! The subcommands, with validated options and no clap types (the binary
//! owns the flag parsing and turns it into these).

pub mod ab;
pub mod gate;
pub mod power;
pub mod run;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    manifest::{ScenarioInfo, sha256_hex},
    process::CommandSpec,
    scenario::model::Scenario,
};

/// The default scenario, built in so `soak run` works from any directory.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/pay-sync-clear-recover.toml");

/// Why a command could not run. Usage errors exit 2.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad flags or input files.
    #[error("{0}")]
    Usage(String),
    /// Building a branch failed (exit 3).
    #[error("{0}")]
    Infrastructure(String),
}

/// Options every measuring command shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// `--scenario` (the built-in default when absent).
    pub scenario: Option<PathBuf>,
    /// `--set name=value`.
    pub set: Vec<String>,
    /// `--testnet-cmd`.
    pub testnet_cmd: Option<String>,
    /// `--profile`.
    pub profile: String,
    /// `--out`.
    pub out: Option<PathBuf>,
    /// `--keep`.
    pub keep: bool,
    /// `--perf`.
    pub perf: bool,
    /// Perf window asked of the peers.
    pub perf_window: Duration,
    /// `--interval`.
    pub interval: Duration,
    /// `--start-skip`.
    pub start_skip: Duration,
    /// `--contamination-threshold`.
    pub contamination_threshold: f64,
    /// `--step-timeout-ms`: overrides every step's timeout.
    pub step_timeout: Option<Duration>,
    /// `--ready-timeout-ms`.
    pub ready_timeout: Duration,
    /// `--quiet`.
    pub quiet: bool,
    /// `--json`.
    pub json: bool,
}

/// Loads the scenario named by `--scenario` (or the built-in one) with the
/// `--set` overrides.
pub fn load_scenario(common: &Common) -> Result<(Scenario, ScenarioInfo), CommandError> {
    let overrides = common
        .set
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    CommandError::Usage(format!(
                        "--set `{item}`: expected name=value, e.g. --set bundles=5"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (path, text) = match &common.scenario {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                CommandError::Usage(format!("cannot read --scenario `{}`: {e}", path.display()))
            })?;
            (path.clone(), text)
        }
        None => (
            PathBuf::from("<built-in>/pay-sync-clear-recover.toml"),
            DEFAULT_SCENARIO.to_owned(),
        ),
    };
    let scenario = Scenario::from_str(&path, &text, &overrides)
        .map_err(|e| CommandError::Usage(e.to_string()))?;
    let info = ScenarioInfo {
        path: path.display().to_string(),
        name: scenario.name.clone(),
        sha256: sha256_hex(&text),
        params: serde_json::to_value(&scenario.params).unwrap_or_default(),
    };
    Ok((scenario, info))
}

/// `--flag CMD`, or the workspace's own binary `name` next to `soak`.
pub fn resolve_command(
    given: Option<&str>,
    name: &str,
    flag: &str,
) -> Result<CommandSpec, CommandError> {
    match given {
        Some(line) => {
            CommandSpec::parse(line).map_err(|e| CommandError::Usage(format!("{flag}: {e}")))
        }
        None => {
            let sibling = sibling_binary(name);
            if !sibling.exists() {
                return Err(CommandError::Usage(format!(
                    "`{}` not found: build it (cargo build --release --workspace) or pass {flag}",
                    sibling.display()
                )));
            }
            Ok(CommandSpec {
                program: sibling.into_os_string(),
                args: Vec::new(),
            })
        }
    }
}

/// Where the workspace's binary `name` sits: next to the running `soak`.
pub fn sibling_binary(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .and_then(|exe| exe.parent().map(Path::to_path_buf))
        .unwrap_or_default()
        .join(name)
}

/// `K=V` pairs.
pub fn parse_env_pairs(
    items: &[String],
    flag: &str,
) -> Result<Vec<(String, String)>, CommandError> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(CommandError::Usage(format!(
                "{flag} `{item}`: expected KEY=VALUE"
            ))),
        })
        .collect()
}

/// `soak-runs/<UTC timestamp>`.
pub fn default_out_dir() -> PathBuf {
    PathBuf::from("soak-runs").join(chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string())
}
