//! The subcommands, with validated options and no clap types (the binary
//! owns the flag parsing and turns it into these).

pub mod ab;
pub mod bisect;
pub mod gate;
pub mod merge;
pub mod power;
pub mod run;

use std::path::{Path, PathBuf};

use crate::manifest::Manifest;

/// Why a command could not run. The binary turns each kind into its exit
/// code: usage 2, infrastructure 3, interrupted 130.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad flags or input files.
    #[error("{0}")]
    Usage(String),
    /// Building a branch failed, or a process the run needs (exit 3).
    #[error("{0}")]
    Infrastructure(String),
    /// Reading or writing the run's own files failed after the run began
    /// (a full disk, a folder removed under it): the machine's fault, not
    /// the input's (exit 3, as infrastructure).
    #[error("{0}")]
    Io(String),
    /// Ctrl-C or SIGTERM stopped the command before it had anything to
    /// judge (exit 130): kept apart from infrastructure so that a person
    /// who pressed Ctrl-C is not told something broke.
    #[error("{0}")]
    Interrupted(String),
}

impl From<SettingsError> for CommandError {
    fn from(error: SettingsError) -> Self {
        match error {
            SettingsError::Input(m) => CommandError::Usage(m),
        }
    }
}

pub use crate::settings::{
    Common, DEFAULT_SCENARIO, SettingsError, load_scenario, parse_env_pairs, resolve_command,
    run_settings,
};

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
