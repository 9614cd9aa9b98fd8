//! Preparing the two sides of `soak ab`: resolve, check out, build.
//!
//! Each side is a [`BranchSpec`]: a git ref of the repository `soak` runs in
//! (checked out into its own detached worktree in a temp dir), a directory
//! holding a checkout (built in place), or the built-in peer distinguished
//! only by its environment. [`prepare`] first resolves every side, so a typo
//! in the second ref fails before the first build starts, then builds every
//! side one after the other and returns only when all are built: a build
//! never competes with a measured run.
//!
//! A [`PreparedBranch`] owns its worktree: dropping it removes the worktree
//! (`git worktree remove --force`) and its temp dir, build artefacts and all.
//!
//! ```no_run
//! # async fn f(groups: soakgate::process::ProcessGroups, cancel: tokio_util::sync::CancellationToken) {
//! use soakgate::ab::branches::{BranchSource, BranchSpec, BuildSettings, prepare};
//! let specs = vec![
//!     BranchSpec { name: "baseline".into(), source: BranchSource::GitRef("main".into()), env: vec![] },
//!     BranchSpec { name: "treatment".into(), source: BranchSource::GitRef("HEAD".into()), env: vec![] },
//! ];
//! let settings = BuildSettings { build_cmd: None, peer_cmd: None, log_dir: "soak-runs/x".into() };
//! let branches = prepare(specs, &settings, &groups, &cancel).await;
//! # }
//! ```

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{io::AsyncWriteExt, process::Command};
use tokio_util::sync::CancellationToken;

use crate::{
    commands::{CommandError, resolve_command},
    manifest::BranchInfo,
    process::{CommandSpec, ManagedChild, ProcessGroups, describe_exit},
};

/// The build command of a branch built from source, unless `--build-cmd`.
pub const DEFAULT_BUILD_CMD: &str = "cargo build --release -p sphere-sdk";
/// The peer command of a branch built from source, unless `--peer-cmd`;
/// relative to the branch's directory.
pub const DEFAULT_PEER_CMD: &str = "target/release/sphere-peer";
/// How many lines of a failed build's log the error message quotes.
const LOG_TAIL_LINES: usize = 20;

/// What the user named for one side.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BranchSource {
    /// No `--baseline`/`--treatment`: the workspace's own peer binary
    /// (sibling of `soak`) or `--peer-cmd`, distinguished only by env.
    BuiltIn,
    /// A git ref (branch, tag, commit, `HEAD~1`) of the repository `soak`
    /// runs in: checked out into its own worktree in a temp dir, built there.
    GitRef(String),
    /// A directory holding a checkout: built in place (no worktree).
    Dir(PathBuf),
}

/// One side as the user asked for it.
#[derive(Debug, Clone)]
pub struct BranchSpec {
    /// `baseline` or `treatment`.
    pub name: String,
    /// Where its peer comes from.
    pub source: BranchSource,
    /// Extra environment for its peers (`--baseline-env K=V`).
    pub env: Vec<(String, String)>,
}

/// How branches are built, shared by both sides.
#[derive(Debug, Clone)]
pub struct BuildSettings {
    /// `--build-cmd` ([`DEFAULT_BUILD_CMD`] when absent). Not run by a shell:
    /// write `sh -c '...'` for one.
    pub build_cmd: Option<String>,
    /// `--peer-cmd`: for built branches relative to the branch's directory
    /// ([`DEFAULT_PEER_CMD`] when absent); for built-in ones the sibling
    /// `sphere-peer` when absent.
    pub peer_cmd: Option<String>,
    /// Build logs go to `log_dir/build-<name>.log`.
    pub log_dir: PathBuf,
}

/// One side, built and ready to run.
#[derive(Debug)]
pub struct PreparedBranch {
    /// `baseline` or `treatment`.
    pub name: String,
    /// Human text for reports: `main @ 1a2b3c4`, `./other (dir)`,
    /// `built-in SPHERE_PROOF_CHECK=pairwise`.
    pub label: String,
    /// The peer command; a relative program found in `peer_cwd` is made
    /// absolute.
    pub peer_cmd: CommandSpec,
    /// Where peers start: the worktree or directory (none for built-in).
    pub peer_cwd: Option<PathBuf>,
    /// Extra peer environment.
    pub env: Vec<(String, String)>,
    /// The git ref, if checked out from one.
    pub git_ref: Option<String>,
    /// The full sha it was built from, when known.
    pub commit: Option<String>,
    /// The build command, if built.
    pub build_cmd: Option<String>,
    /// Removes the worktree when the branch is dropped.
    _worktree: Option<Worktree>,
}

impl PreparedBranch {
    /// What the manifest records of this branch.
    pub fn manifest(&self) -> BranchInfo {
        BranchInfo {
            name: self.name.clone(),
            git_ref: self.git_ref.clone(),
            commit: self.commit.clone(),
            build_cmd: self.build_cmd.clone(),
            peer_cmd: self.peer_cmd.display(),
            peer_env: self.env.clone(),
            variant: None,
        }
    }
}

/// A detached worktree in a temp dir, removed on drop.
#[derive(Debug)]
struct Worktree {
    repo: PathBuf,
    path: PathBuf,
    // Dropped after `drop` below has unregistered the worktree: deletes
    // whatever `git worktree remove` left.
    _temp: tempfile::TempDir,
}

impl Drop for Worktree {
    fn drop(&mut self) {
        let removed = git_blocking(&self.repo, &["worktree", "remove", "--force"], &self.path);
        if !removed {
            // Delete it ourselves, then let git forget the dangling entry.
            let _ = std::fs::remove_dir_all(&self.path);
            let _ = git_blocking(&self.repo, &["worktree", "prune"], Path::new(""));
        }
    }
}

/// Runs `git -C repo args [path]` synchronously (drop cannot await).
fn git_blocking(repo: &Path, args: &[&str], path: &Path) -> bool {
    let mut command = std::process::Command::new("git");
    command.arg("-C").arg(repo).args(args);
    if !path.as_os_str().is_empty() {
        command.arg(path);
    }
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// A side after resolution, before building.
enum Resolved {
    BuiltIn(CommandSpec),
    GitRef {
        repo: PathBuf,
        git_ref: String,
        sha: String,
    },
    Dir {
        dir: PathBuf,
        shown: String,
        commit: Option<String>,
    },
}

/// Resolves, checks out and builds every branch, relative to the current
/// directory; see [`prepare_from`].
pub async fn prepare(
    specs: Vec<BranchSpec>,
    settings: &BuildSettings,
    groups: &ProcessGroups,
    cancel: &CancellationToken,
) -> Result<Vec<PreparedBranch>, CommandError> {
    let cwd = std::env::current_dir()
        .map_err(|e| CommandError::Usage(format!("cannot read the current directory: {e}")))?;
    prepare_from(&cwd, specs, settings, groups, cancel).await
}

/// [`prepare`] as if `soak` ran in `cwd`: git refs name commits of the
/// repository holding `cwd`, relative directories are relative to it.
///
/// Cargo builds use the branch's own `target/` (`CARGO_TARGET_DIR` is set
/// to it, so a user-wide target dir cannot make both sides overwrite one
/// binary); in a worktree that means a full build, deleted with the worktree.
pub async fn prepare_from(
    cwd: &Path,
    specs: Vec<BranchSpec>,
    settings: &BuildSettings,
    groups: &ProcessGroups,
    cancel: &CancellationToken,
) -> Result<Vec<PreparedBranch>, CommandError> {
    let build_line = settings.build_cmd.as_deref().unwrap_or(DEFAULT_BUILD_CMD);
    let build_cmd = CommandSpec::parse(build_line)
        .map_err(|e| CommandError::Usage(format!("--build-cmd: {e}")))?;
    let built_peer = CommandSpec::parse(settings.peer_cmd.as_deref().unwrap_or(DEFAULT_PEER_CMD))
        .map_err(|e| CommandError::Usage(format!("--peer-cmd: {e}")))?;

    // Resolve everything before building anything.
    let mut resolved = Vec::with_capacity(specs.len());
    for spec in &specs {
        resolved.push(resolve(cwd, spec, settings).await?);
    }

    let mut prepared = Vec::with_capacity(specs.len());
    for (spec, side) in specs.into_iter().zip(resolved) {
        if cancel.is_cancelled() {
            return Err(interrupted(&spec.name));
        }
        let env_text = spec
            .env
            .iter()
            .map(|(k, v)| format!(" {k}={v}"))
            .collect::<String>();
        let (label, dir, git_ref, commit, worktree) = match side {
            Resolved::BuiltIn(peer_cmd) => {
                let origin = match &settings.peer_cmd {
                    Some(_) => format!("`{}`", peer_cmd.display()),
                    None => "built-in".to_owned(),
                };
                prepared.push(PreparedBranch {
                    label: format!("{origin}{env_text}"),
                    name: spec.name,
                    peer_cmd,
                    peer_cwd: None,
                    env: spec.env,
                    git_ref: None,
                    commit: None,
                    build_cmd: None,
                    _worktree: None,
                });
                continue;
            }
            Resolved::GitRef { repo, git_ref, sha } => {
                let worktree = add_worktree(&spec.name, &repo, &sha).await?;
                let label = format!("{git_ref} @ {}", &sha[..sha.len().min(7)]);
                (
                    label,
                    worktree.path.clone(),
                    Some(git_ref),
                    Some(sha),
                    Some(worktree),
                )
            }
            Resolved::Dir { dir, shown, commit } => {
                (format!("{shown} (dir)"), dir, None, commit, None)
            }
        };
        build(&spec.name, &build_cmd, &dir, settings, groups, cancel).await?;
        let peer_cmd = locate_peer(&spec.name, &built_peer, &dir)?;
        prepared.push(PreparedBranch {
            label: format!("{label}{env_text}"),
            name: spec.name,
            peer_cmd,
            peer_cwd: Some(dir),
            env: spec.env,
            git_ref,
            commit,
            build_cmd: Some(build_cmd.display()),
            _worktree: worktree,
        });
    }
    Ok(prepared)
}

/// Checks that a side names something that exists.
async fn resolve(
    cwd: &Path,
    spec: &BranchSpec,
    settings: &BuildSettings,
) -> Result<Resolved, CommandError> {
    let name = &spec.name;
    match &spec.source {
        BranchSource::BuiltIn => {
            resolve_command(settings.peer_cmd.as_deref(), "sphere-peer", "--peer-cmd")
                .map(Resolved::BuiltIn)
        }
        BranchSource::GitRef(git_ref) => {
            let repo = git(cwd, &["rev-parse", "--show-toplevel"])
                .await
                .map_err(|_| {
                    CommandError::Usage(format!(
                        "{name}: `{}` is not inside a git repository, so git ref `{git_ref}` means \
                     nothing (run soak inside the repository, or name a directory)",
                        cwd.display()
                    ))
                })?;
            let repo = PathBuf::from(repo);
            // A leading dash would be read as an option by rev-parse.
            let sha = match git_ref.starts_with('-') {
                true => Err(String::new()),
                false => {
                    git(
                        &repo,
                        &[
                            "rev-parse",
                            "--verify",
                            "--quiet",
                            &format!("{git_ref}^{{commit}}"),
                        ],
                    )
                    .await
                }
            };
            let sha = sha.map_err(|_| {
                CommandError::Usage(format!(
                    "{name}: unknown git ref `{git_ref}` in {} (git branch -a lists them)",
                    repo.display()
                ))
            })?;
            Ok(Resolved::GitRef {
                repo,
                git_ref: git_ref.clone(),
                sha,
            })
        }
        BranchSource::Dir(given) => {
            let dir = cwd.join(given);
            if !dir.is_dir() {
                return Err(CommandError::Usage(format!(
                    "{name}: directory `{}` does not exist (give a checkout's directory or a git ref)",
                    given.display()
                )));
            }
            let dir = dir.canonicalize().unwrap_or(dir);
            // Recorded when the directory is a git checkout; it need not be.
            let commit = git(&dir, &["rev-parse", "--verify", "--quiet", "HEAD"])
                .await
                .ok();
            Ok(Resolved::Dir {
                dir,
                shown: given.display().to_string(),
                commit,
            })
        }
    }
}

/// `git -C dir args`: its trimmed stdout, or its trimmed stderr as the error.
async fn git(dir: &Path, args: &[&str]) -> Result<String, String> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    match output.status.success() {
        true => Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned()),
        false => Err(String::from_utf8_lossy(&output.stderr).trim().to_owned()),
    }
}

/// `git worktree add --detach` of `sha` into a fresh temp dir.
async fn add_worktree(name: &str, repo: &Path, sha: &str) -> Result<Worktree, CommandError> {
    let temp = tempfile::Builder::new()
        .prefix(&format!("soak-{name}-"))
        .tempdir()
        .map_err(|e| {
            CommandError::Infrastructure(format!("{name}: cannot create a temp dir: {e}"))
        })?;
    // A subdirectory, so the checkout's name says what it is in build output.
    let path = temp.path().join(name);
    let path_text = path.to_string_lossy().into_owned();
    git(repo, &["worktree", "add", "--detach", &path_text, sha])
        .await
        .map_err(|e| {
            CommandError::Infrastructure(format!("{name}: git worktree add of {sha} failed: {e}"))
        })?;
    Ok(Worktree {
        repo: repo.to_path_buf(),
        path,
        _temp: temp,
    })
}

/// Runs the build in `dir`, output to `log_dir/build-<name>.log`.
async fn build(
    name: &str,
    build_cmd: &CommandSpec,
    dir: &Path,
    settings: &BuildSettings,
    groups: &ProcessGroups,
    cancel: &CancellationToken,
) -> Result<(), CommandError> {
    let infra = |what: String| CommandError::Infrastructure(format!("{name} build: {what}"));
    let log_path = settings.log_dir.join(format!("build-{name}.log"));
    let header = format!("$ {} (in {})\n", build_cmd.display(), dir.display());
    std::fs::create_dir_all(&settings.log_dir)
        .and_then(|()| std::fs::write(&log_path, header))
        .map_err(|e| infra(format!("cannot write `{}`: {e}", log_path.display())))?;
    let env = [(
        "CARGO_TARGET_DIR".to_owned(),
        dir.join("target").to_string_lossy().into_owned(),
    )];
    let (mut child, pipes) = ManagedChild::spawn(
        &format!("{name} build"),
        build_cmd,
        &[],
        &env,
        Some(&dir.to_path_buf()),
        groups,
    )
    .map_err(|e| CommandError::Infrastructure(e.to_string()))?;
    drop(pipes.stdin); // A build that reads stdin sees end of file.
    // Append mode so the two pumps never overwrite each other's output.
    let open = || std::fs::OpenOptions::new().append(true).open(&log_path);
    let (out_log, err_log) = open()
        .and_then(|a| Ok((a, open()?)))
        .map_err(|e| infra(format!("cannot write `{}`: {e}", log_path.display())))?;
    let out_pump = tokio::spawn(pump(pipes.stdout, out_log));
    let err_pump = tokio::spawn(pump(pipes.stderr, err_log));

    let status = tokio::select! {
        status = child.wait() => status.ok(),
        () = cancel.cancelled() => None,
    };
    // Also kills anything the build left running in its group, which would
    // otherwise hold the pipes open and the pumps waiting.
    child.stop(Duration::from_secs(2)).await;
    for pump in [out_pump, err_pump] {
        let _ = tokio::time::timeout(Duration::from_secs(5), pump).await;
    }
    match status {
        None if cancel.is_cancelled() => Err(interrupted(name)),
        None => Err(infra("lost track of the build process".to_owned())),
        Some(status) if status.success() => Ok(()),
        Some(status) => {
            let log = std::fs::read_to_string(&log_path).unwrap_or_default();
            let lines: Vec<&str> = log.lines().collect();
            let tail = lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n");
            Err(infra(format!(
                "failed with {} (log: {}); its last lines:\n{tail}",
                describe_exit(Some(status)),
                log_path.display()
            )))
        }
    }
}

/// Copies a child's output pipe into the build log until the pipe closes.
async fn pump(pipe: Option<impl tokio::io::AsyncRead + Unpin>, log: std::fs::File) {
    if let Some(mut pipe) = pipe {
        let mut log = tokio::fs::File::from_std(log);
        let _ = tokio::io::copy(&mut pipe, &mut log).await;
        let _ = log.flush().await;
    }
}

fn interrupted(name: &str) -> CommandError {
    CommandError::Infrastructure(format!("{name} build: interrupted"))
}

/// The peer command of a built branch: a relative program that exists in
/// `dir` becomes absolute there; a program given as a path must exist.
fn locate_peer(name: &str, peer: &CommandSpec, dir: &Path) -> Result<CommandSpec, CommandError> {
    let program = Path::new(&peer.program);
    let in_dir = dir.join(program);
    let program: OsString = match in_dir.exists() {
        true => in_dir.into_os_string(),
        // A bare name (`python3`) is looked up on PATH when the peer starts.
        false if program.components().count() == 1 => peer.program.clone(),
        false => {
            return Err(CommandError::Infrastructure(format!(
                "{name}: the build finished but the peer `{}` is not in `{}` \
                 (check --build-cmd, or pass --peer-cmd)",
                program.display(),
                dir.display()
            )));
        }
    };
    Ok(CommandSpec {
        program,
        args: peer.args.clone(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_peer_built_in_the_branch_becomes_absolute_and_a_bare_name_stays() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("target/release")).unwrap();
        std::fs::write(dir.path().join("target/release/sphere-peer"), "").unwrap();
        let spec = CommandSpec::parse("target/release/sphere-peer --x").unwrap();
        let found = locate_peer("baseline", &spec, dir.path()).unwrap();
        assert_eq!(
            found.program,
            dir.path()
                .join("target/release/sphere-peer")
                .into_os_string()
        );
        assert_eq!(found.args, spec.args);
        let bare = CommandSpec::parse("python3 peer.py").unwrap();
        assert_eq!(locate_peer("baseline", &bare, dir.path()).unwrap(), bare);
    }

    #[test]
    fn a_missing_built_peer_names_the_branch_and_the_fix() {
        let dir = tempfile::tempdir().unwrap();
        let spec = CommandSpec::parse(DEFAULT_PEER_CMD).unwrap();
        let err = locate_peer("treatment", &spec, dir.path()).unwrap_err();
        let CommandError::Infrastructure(text) = err else {
            panic!("{err:?}")
        };
        assert!(text.starts_with("treatment: the build finished"), "{text}");
        assert!(text.contains("--peer-cmd"), "{text}");
    }
}
