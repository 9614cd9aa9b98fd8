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

use std::{
    ffi::OsString,
    path::{Path, PathBuf},
    process::Stdio,
    time::Duration,
};

use tokio::{io::AsyncWriteExt, process::Command};
use tokio_util::sync::CancellationToken;

use crate::{
    manifest::BranchInfo,
    process::resolve_command,
    process::{CommandSpec, ManagedChild, ProcessGroups, describe_exit},
};

/// Why the branches could not be prepared; the command maps each kind to
/// its exit code.
#[derive(Debug, thiserror::Error)]
pub enum BranchError {
    /// A ref, directory or command the user gave does not work (exit 2).
    #[error("{0}")]
    Input(String),
    /// Git, a temp dir or a build failed (exit 3).
    #[error("{0}")]
    Infrastructure(String),
    /// Ctrl-C during preparation (exit 130).
    #[error("{0}")]
    Interrupted(String),
}

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

/// One side, built and ready to run. Dropping it removes its worktree.
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
    worktree: Option<Worktree>,
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
            label: Some(self.label.clone()),
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
        // Synchronous: drop cannot await, and git is quick here.
        let git = |args: &[&str], path: Option<&Path>| {
            std::process::Command::new("git")
                .arg("-C")
                .arg(&self.repo)
                .args(args)
                .args(path)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|s| s.success())
        };
        if !git(&["worktree", "remove", "--force"], Some(&self.path)) {
            // Delete it ourselves, then let git forget the dangling entry.
            let _ = std::fs::remove_dir_all(&self.path);
            git(&["worktree", "prune"], None);
        }
    }
}

/// Where a resolved side is to be built.
enum Checkout {
    /// Built-in: nothing to build.
    Nothing,
    /// `sha` of `repo`, in a fresh worktree.
    Worktree { repo: PathBuf, sha: String },
    /// A directory, built in place.
    InPlace(PathBuf),
}

/// Resolves, checks out and builds every branch, relative to the current
/// directory; see [`prepare_from`].
pub async fn prepare(
    specs: Vec<BranchSpec>,
    settings: &BuildSettings,
    groups: &ProcessGroups,
    cancel: &CancellationToken,
) -> Result<Vec<PreparedBranch>, BranchError> {
    let cwd = std::env::current_dir()
        .map_err(|e| BranchError::Input(format!("cannot read the current directory: {e}")))?;
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
) -> Result<Vec<PreparedBranch>, BranchError> {
    let build_line = settings.build_cmd.as_deref().unwrap_or(DEFAULT_BUILD_CMD);
    let build_cmd = parse_command(build_line, "--build-cmd", "cargo build --release")?;
    // Located in each branch's directory once it is built.
    let built_peer = parse_command(
        settings.peer_cmd.as_deref().unwrap_or(DEFAULT_PEER_CMD),
        "--peer-cmd",
        DEFAULT_PEER_CMD,
    )?;
    // Resolve everything before building anything.
    let mut planned = Vec::with_capacity(specs.len());
    for spec in specs {
        planned.push(resolve(cwd, spec, &settings.peer_cmd, &built_peer, build_line).await?);
    }
    let mut prepared = Vec::with_capacity(planned.len());
    for (mut branch, checkout) in planned {
        if cancel.is_cancelled() {
            return Err(BranchError::Interrupted(format!(
                "interrupted before the build of {}",
                branch.name
            )));
        }
        let dir = match checkout {
            Checkout::Nothing => {
                prepared.push(branch);
                continue;
            }
            Checkout::Worktree { repo, sha } => {
                let worktree = add_worktree(&branch.name, &repo, &sha).await?;
                let dir = worktree.path.clone();
                branch.worktree = Some(worktree);
                dir
            }
            Checkout::InPlace(dir) => dir,
        };
        build(&branch.name, &build_cmd, &dir, settings, groups, cancel).await?;
        branch.peer_cmd = locate_peer(&branch.name, &branch.peer_cmd, &dir)?;
        branch.peer_cwd = Some(dir);
        prepared.push(branch);
    }
    Ok(prepared)
}

/// `line` of `flag` as a command; an empty one is named with the flag and
/// an example rather than as a bare "empty command".
fn parse_command(line: &str, flag: &str, example: &str) -> Result<CommandSpec, BranchError> {
    if line.trim().is_empty() {
        return Err(BranchError::Input(format!(
            "{flag} `{line}`: empty command; give the program and its arguments, e.g. {flag} \"{example}\""
        )));
    }
    CommandSpec::parse(line).map_err(|e| BranchError::Input(format!("{flag}: {e}")))
}

/// Checks that a side names something that exists, and fills in all but
/// its checkout.
async fn resolve(
    cwd: &Path,
    spec: BranchSpec,
    given_peer: &Option<String>,
    built_peer: &CommandSpec,
    build_line: &str,
) -> Result<(PreparedBranch, Checkout), BranchError> {
    let name = &spec.name;
    let built = Some(build_line.to_owned());
    let (label, peer_cmd, git_ref, commit, build_cmd, checkout) = match &spec.source {
        BranchSource::BuiltIn => {
            let peer = resolve_command(given_peer.as_deref(), "sphere-peer", "--peer-cmd")
                .map_err(BranchError::Input)?;
            let label = match given_peer {
                Some(_) => format!("`{}`", peer.display()),
                None => "built-in".to_owned(),
            };
            (label, peer, None, None, None, Checkout::Nothing)
        }
        BranchSource::GitRef(git_ref) => {
            let (repo, sha) = resolve_ref(cwd, name, git_ref).await?;
            let label = format!("{git_ref} @ {}", &sha[..sha.len().min(7)]);
            let (git_ref, commit) = (Some(git_ref.clone()), Some(sha.clone()));
            let checkout = Checkout::Worktree { repo, sha };
            (label, built_peer.clone(), git_ref, commit, built, checkout)
        }
        BranchSource::Dir(given) => {
            let dir = cwd.join(given);
            if !dir.is_dir() {
                return Err(BranchError::Input(format!(
                    "{name}: directory `{}` does not exist (name a checkout or a git ref)",
                    given.display()
                )));
            }
            let dir = dir.canonicalize().unwrap_or(dir);
            // Recorded when the directory is a git checkout; it need not be.
            let commit = git(&dir, &["rev-parse", "--verify", "--quiet", "HEAD"]).await;
            let label = format!("{} (dir)", given.display());
            let checkout = Checkout::InPlace(dir);
            (
                label,
                built_peer.clone(),
                None,
                commit.ok(),
                built,
                checkout,
            )
        }
    };
    let env_text: String = spec.env.iter().map(|(k, v)| format!(" {k}={v}")).collect();
    let branch = PreparedBranch {
        name: spec.name,
        label: format!("{label}{env_text}"),
        peer_cmd,
        peer_cwd: None,
        env: spec.env,
        git_ref,
        commit,
        build_cmd,
        worktree: None,
    };
    Ok((branch, checkout))
}

/// The repository holding `cwd` and the full sha `git_ref` names in it.
async fn resolve_ref(
    cwd: &Path,
    name: &str,
    git_ref: &str,
) -> Result<(PathBuf, String), BranchError> {
    let repo = git(cwd, &["rev-parse", "--show-toplevel"])
        .await
        .map_err(|_| {
            BranchError::Input(format!(
                "{name}: `{}` is not inside a git repository, so git ref `{git_ref}` names nothing \
             (run soak inside the repository, or name a directory)",
                cwd.display()
            ))
        })?;
    let repo = PathBuf::from(repo);
    let unknown = || {
        BranchError::Input(format!(
            "{name}: unknown git ref `{git_ref}` in {} (git branch -a lists them)",
            repo.display()
        ))
    };
    // rev-parse would read a leading dash as an option.
    if git_ref.starts_with('-') {
        return Err(unknown());
    }
    let commit = format!("{git_ref}^{{commit}}");
    let sha = git(&repo, &["rev-parse", "--verify", "--quiet", &commit]).await;
    let sha = sha.map_err(|_| unknown())?;
    Ok((repo, sha))
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
async fn add_worktree(name: &str, repo: &Path, sha: &str) -> Result<Worktree, BranchError> {
    let temp = tempfile::Builder::new()
        .prefix(&format!("soak-{name}-"))
        .tempdir()
        .map_err(|e| {
            BranchError::Infrastructure(format!("{name}: cannot create a temp dir: {e}"))
        })?;
    // A subdirectory, so the checkout's name says what it is in build output.
    let path = temp.path().join(name);
    let path_text = path.to_string_lossy().into_owned();
    git(repo, &["worktree", "add", "--detach", &path_text, sha])
        .await
        .map_err(|e| {
            BranchError::Infrastructure(format!("{name}: git worktree add of {sha} failed: {e}"))
        })?;
    Ok(Worktree {
        repo: repo.to_path_buf(),
        path,
        _temp: temp,
    })
}

/// Runs the branch's build in `dir`, output to `log_dir/build-<name>.log`.
async fn build(
    name: &str,
    build_cmd: &CommandSpec,
    dir: &Path,
    settings: &BuildSettings,
    groups: &ProcessGroups,
    cancel: &CancellationToken,
) -> Result<(), BranchError> {
    let infra = |what: String| BranchError::Infrastructure(format!("{name} build: {what}"));
    let log_dir = &settings.log_dir;
    let log_path = log_dir.join(format!("build-{name}.log"));
    let header = format!("$ {} (in {})\n", build_cmd.display(), dir.display());
    let cannot_write =
        |e: std::io::Error| infra(format!("cannot write `{}`: {e}", log_path.display()));
    std::fs::create_dir_all(log_dir)
        .and_then(|()| std::fs::write(&log_path, header))
        .map_err(cannot_write)?;
    // Append mode, so the two pumps never overwrite each other's output.
    let out_log = std::fs::OpenOptions::new().append(true).open(&log_path);
    let (out_log, err_log) = out_log
        .and_then(|out| Ok((out.try_clone()?, out)))
        .map_err(cannot_write)?;
    let env = [(
        "CARGO_TARGET_DIR".to_owned(),
        dir.join("target").to_string_lossy().into_owned(),
    )];
    let (role, cwd) = (format!("{name} build"), dir.to_path_buf());
    let (mut child, pipes) = ManagedChild::spawn(&role, build_cmd, &[], &env, Some(&cwd), groups)
        .map_err(|e| BranchError::Infrastructure(e.to_string()))?;
    drop(pipes.stdin); // A build that reads stdin sees end of file.
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

/// Ctrl-C during a build: its own kind, so the binary exits 130 rather
/// than 3 (nothing broke; the person asked to stop).
fn interrupted(name: &str) -> BranchError {
    BranchError::Interrupted(format!("interrupted during the build of {name}"))
}

/// The peer command of a built branch: a relative program that exists in
/// `dir` becomes absolute there; a program given as a path must exist.
fn locate_peer(name: &str, peer: &CommandSpec, dir: &Path) -> Result<CommandSpec, BranchError> {
    let program = Path::new(&peer.program);
    let in_dir = dir.join(program);
    let program: OsString = match in_dir.exists() {
        true => in_dir.into_os_string(),
        // A bare name (`python3`) is looked up on PATH when the peer starts.
        false if program.components().count() == 1 => peer.program.clone(),
        false => {
            return Err(BranchError::Infrastructure(format!(
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
        std::fs::write(dir.path().join(DEFAULT_PEER_CMD), "").unwrap();
        let spec = CommandSpec::parse("target/release/sphere-peer --x").unwrap();
        let found = locate_peer("baseline", &spec, dir.path()).unwrap();
        assert_eq!(Path::new(&found.program), dir.path().join(DEFAULT_PEER_CMD));
        assert_eq!(found.args, spec.args);
        let bare = CommandSpec::parse("python3 peer.py").unwrap();
        assert_eq!(locate_peer("baseline", &bare, dir.path()).unwrap(), bare);
        assert!(
            locate_peer(
                "baseline",
                &CommandSpec::parse("bin/x").unwrap(),
                dir.path()
            )
            .is_err()
        );
    }
}
