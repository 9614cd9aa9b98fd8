//! The subcommands, with validated options and no clap types (the binary
//! owns the flag parsing and turns it into these).

pub mod ab;
pub mod bisect;
pub mod gate;
pub mod merge;
pub mod power;
pub mod run;

use std::{
    path::{Path, PathBuf},
    time::Duration,
};

use crate::{
    manifest::{Manifest, ScenarioInfo, sha256_hex},
    process::CommandSpec,
    scenario::model::Scenario,
};

/// The default scenario, built in so `soak run` works from any directory.
pub const DEFAULT_SCENARIO: &str = include_str!("../../../scenarios/pay-sync-clear-recover.toml");

/// Why a command could not run. The binary turns each kind into its exit
/// code: usage 2, infrastructure 3, interrupted 130.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad flags or input files.
    #[error("{0}")]
    Usage(String),
    /// Building a branch failed (exit 3).
    #[error("{0}")]
    Infrastructure(String),
    /// Ctrl-C or SIGTERM stopped the command before it had anything to
    /// judge (exit 130): kept apart from infrastructure so that a person
    /// who pressed Ctrl-C is not told something broke.
    #[error("{0}")]
    Interrupted(String),
}

impl From<crate::ab::branches::BranchError> for CommandError {
    fn from(error: crate::ab::branches::BranchError) -> Self {
        use crate::ab::branches::BranchError;
        match error {
            BranchError::Input(m) => CommandError::Usage(m),
            BranchError::Infrastructure(m) => CommandError::Infrastructure(m),
            BranchError::Interrupted(m) => CommandError::Interrupted(m),
        }
    }
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
            let cannot = |why: String| {
                CommandError::Usage(format!(
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
        .map_err(|e| CommandError::Usage(e.to_string()))?;
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
) -> Result<CommandSpec, CommandError> {
    crate::process::resolve_command(given, name, flag).map_err(CommandError::Usage)
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

/// `soak-runs/<UTC timestamp>`, or `<UTC timestamp>-2`, `-3`, ... when a
/// run started in the same second already took it: the default folder must
/// pass [`check_out_dir`] like any other.
pub fn default_out_dir() -> PathBuf {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ").to_string();
    let base = PathBuf::from("soak-runs");
    let mut candidate = base.join(&stamp);
    let mut n = 2;
    while check_out_dir(&candidate).is_err() && n < 1000 {
        candidate = base.join(format!("{stamp}-{n}"));
        n += 1;
    }
    candidate
}

/// Refuses an `--out` that already holds anything: `soak gate` and `soak
/// power` read every `run-K` folder they find, so the leftovers of an
/// earlier run (another scenario, more iterations) would be judged as part
/// of this one. A folder that does not exist yet, or exists and is empty,
/// is fine; creating it is the caller's job.
pub fn check_out_dir(out: &Path) -> Result<(), CommandError> {
    let refuse = |why: &str| {
        Err(CommandError::Usage(format!(
            "--out `{}` {why}: choose a new --out or remove it",
            out.display()
        )))
    };
    // An empty path would be "created" as the current folder.
    if out.as_os_str().is_empty() {
        return Err(CommandError::Usage(
            "--out ``: expected a new folder, e.g. --out soak-runs/try-1".into(),
        ));
    }
    match std::fs::symlink_metadata(out) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(CommandError::Usage(format!(
            "cannot use --out `{}`: {e}; choose another --out",
            out.display()
        ))),
        // A symlink to a folder is followed: people point --out at a
        // scratch disk that way.
        Ok(_) if !out.is_dir() => refuse("exists and is not a folder"),
        Ok(_) => match std::fs::read_dir(out) {
            Err(e) => Err(CommandError::Usage(format!(
                "cannot read --out `{}`: {e}; choose another --out",
                out.display()
            ))),
            Ok(mut entries) => match entries.next() {
                Some(_) => refuse(
                    "already exists and is not empty (an earlier run's files would be mixed into this one)",
                ),
                None => Ok(()),
            },
        },
    }
}

/// [`check_out_dir`], then creates the folder.
pub fn create_out_dir(out: &Path) -> Result<(), CommandError> {
    check_out_dir(out)?;
    std::fs::create_dir_all(out).map_err(|e| {
        CommandError::Usage(format!(
            "cannot create --out `{}`: {e}; choose another --out",
            out.display()
        ))
    })
}

/// Checks that `dir` is a run folder `soak gate` and `soak power` can read
/// before they read it: it exists, is a folder, and its `manifest.json`, if
/// there is one, parses. Both commands would otherwise judge without a
/// corrupt manifest in silence: with the gate's own alpha instead of the
/// one the run recorded, and without the check that an A/B folder holds
/// one variant (`soak power`).
pub fn check_run_dir(dir: &Path) -> Result<(), CommandError> {
    let shown = dir.display();
    if !dir.exists() {
        return Err(CommandError::Usage(format!(
            "run folder `{shown}` does not exist; give a folder `soak ab` or `soak run` wrote (soak-runs/<timestamp>)"
        )));
    }
    if !dir.is_dir() {
        return Err(CommandError::Usage(format!(
            "run folder `{shown}` is a file; give the folder `soak ab` or `soak run` wrote"
        )));
    }
    let path = dir.join("manifest.json");
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        // Folders from before manifests, or put together by hand.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => {
            return Err(CommandError::Usage(format!(
                "cannot read `{}`: {e}",
                path.display()
            )));
        }
    };
    let manifest = serde_json::from_slice::<Manifest>(&bytes).map_err(|e| {
        CommandError::Usage(format!(
            "`{}` is not a manifest this soak can read ({e}): restore it, or delete it to judge without it",
            path.display()
        ))
    })?;
    // `soak gate` judges with the alpha the run recorded; a hand-edited one
    // would otherwise be refused without naming the file it came from.
    if let Some(judged) = &manifest.judged
        && !(judged.alpha > 0.0 && judged.alpha < 0.5)
    {
        return Err(CommandError::Usage(format!(
            "`{}`: judged.alpha `{}` is not a probability above 0 and below 0.5: restore it, or pass --alpha",
            path.display(),
            judged.alpha
        )));
    }
    Ok(())
}
