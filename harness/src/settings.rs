//! Options resolved once, below every command: the flags the binary has
//! already checked become a loaded scenario, resolved commands and the
//! [`RunSettings`] every iteration runs with. `soak run`, `soak ab`, `soak
//! bisect` and the shard runs all start here, so a scenario or command is
//! read and refused the same way whichever command names it.

use std::{path::PathBuf, time::Duration};

use tokio_util::sync::CancellationToken;

use crate::{
    manifest::{ScenarioInfo, sha256_hex},
    process::CommandSpec,
    runner::RunSettings,
    scenario::model::Scenario,
};

/// Why options cannot be turned into settings: always the input's fault
/// (a scenario file, a `--set`, a command or a `KEY=VALUE`), in one line
/// naming it and the fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    /// A bad flag value or input file.
    #[error("{0}")]
    Input(String),
}

/// The default scenario, built in so `soak run` works from any directory.
pub const DEFAULT_SCENARIO: &str = include_str!("../../scenarios/pay-sync-clear-recover.toml");

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
pub fn load_scenario(common: &Common) -> Result<(Scenario, ScenarioInfo), SettingsError> {
    let overrides = common
        .set
        .iter()
        .map(|item| {
            item.split_once('=')
                .map(|(k, v)| (k.trim().to_owned(), v.trim().to_owned()))
                .ok_or_else(|| {
                    SettingsError::Input(format!(
                        "--set `{item}`: expected name=value, e.g. --set bundles=5"
                    ))
                })
        })
        .collect::<Result<Vec<_>, _>>()?;
    let (path, text) = match &common.scenario {
        Some(path) => {
            let cannot = |why: String| {
                SettingsError::Input(format!(
                    "cannot read --scenario `{}`: {why}",
                    path.display()
                ))
            };
            if path.is_dir() {
                return Err(cannot("it is a folder; name a scenario .toml file".into()));
            }
            let bytes = std::fs::read(path).map_err(|e| cannot(e.to_string()))?;
            // Said plainly: std's "stream did not contain valid UTF-8" does
            // not tell a person they gave soak the wrong file.
            let text = String::from_utf8(bytes).map_err(|e| {
                cannot(format!(
                    "byte {} is not UTF-8 text; a scenario is a TOML file",
                    e.utf8_error().valid_up_to()
                ))
            })?;
            (path.clone(), text)
        }
        None => (
            PathBuf::from("<built-in>/pay-sync-clear-recover.toml"),
            DEFAULT_SCENARIO.to_owned(),
        ),
    };
    let scenario = Scenario::from_str(&path, &text, &overrides)
        .map_err(|e| SettingsError::Input(e.to_string()))?;
    let info = ScenarioInfo {
        path: path.display().to_string(),
        name: scenario.name.clone(),
        sha256: sha256_hex(&text),
        params: serde_json::to_value(&scenario.params).unwrap_or_default(),
    };
    Ok((scenario, info))
}

/// `--flag CMD`, or the workspace's own binary `name` next to `soak`
/// ([`crate::process::resolve_command`], with its refusal as a usage error).
pub fn resolve_command(
    given: Option<&str>,
    name: &str,
    flag: &str,
) -> Result<CommandSpec, SettingsError> {
    crate::process::resolve_command(given, name, flag).map_err(SettingsError::Input)
}

/// `K=V` pairs.
pub fn parse_env_pairs(
    items: &[String],
    flag: &str,
) -> Result<Vec<(String, String)>, SettingsError> {
    items
        .iter()
        .map(|item| match item.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => Ok((k.trim().to_owned(), v.to_owned())),
            _ => Err(SettingsError::Input(format!(
                "{flag} `{item}`: expected KEY=VALUE"
            ))),
        })
        .collect()
}

/// Builds the settings shared by every iteration from the common options.
pub fn run_settings(
    common: &Common,
    cancel: CancellationToken,
) -> Result<(RunSettings, ScenarioInfo), SettingsError> {
    let (scenario, info) = load_scenario(common)?;
    let testnet_cmd = resolve_command(
        common.testnet_cmd.as_deref(),
        "sphere-testnet",
        "--testnet-cmd",
    )?;
    Ok((
        RunSettings {
            scenario,
            testnet_cmd,
            profile: common.profile.clone(),
            perf: common.perf,
            perf_window: common.perf_window,
            interval: common.interval,
            start_skip: common.start_skip,
            keep: common.keep,
            ready_timeout: common.ready_timeout,
            step_timeout: common.step_timeout,
            shutdown_timeout: Duration::from_secs(30),
            contamination_threshold: common.contamination_threshold,
            cancel,
        },
        info,
    ))
}
