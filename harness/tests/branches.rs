//! `soak ab` branch preparation against real git repositories: worktrees
//! checked out, built, and removed again; errors that name the fix.

use std::{
    path::{Path, PathBuf},
    process::Command,
    time::{Duration, Instant},
};

use soakgate::{
    ab::branches::{
        BranchError, BranchSource, BranchSpec, BuildSettings, PreparedBranch, prepare_from,
    },
    process::ProcessGroups,
};
use tokio_util::sync::CancellationToken;

const SLOW: &str = "print('slow peer')\n";
const FAST: &str = "print('fast peer')\n";
const COPY_BUILD: &str = "sh -c 'cp peer.py built-peer.py'";

/// A throwaway repository with `peer.py` committed twice, tagged `slow`
/// then `fast`, and git run without the user's or the system's config.
struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    fn new() -> Repo {
        let repo = Repo {
            dir: tempfile::tempdir().unwrap(),
        };
        repo.git(&["init", "--quiet"]);
        for (text, tag) in [(SLOW, "slow"), (FAST, "fast")] {
            std::fs::write(repo.path().join("peer.py"), text).unwrap();
            repo.git(&["add", "peer.py"]);
            repo.git(&["commit", "--quiet", "-m", tag]);
            repo.git(&["tag", tag]);
        }
        repo
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Runs git in the repository; panics on failure; returns stdout.
    fn git(&self, args: &[&str]) -> String {
        let output = Command::new("git")
            .args([
                "-c",
                "init.defaultBranch=main",
                "-c",
                "commit.gpgsign=false",
            ])
            .arg("-C")
            .arg(self.path())
            .args(args)
            .env("GIT_CONFIG_GLOBAL", "/dev/null")
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("GIT_AUTHOR_NAME", "Soak Test")
            .env("GIT_AUTHOR_EMAIL", "soak@example.invalid")
            .env("GIT_COMMITTER_NAME", "Soak Test")
            .env("GIT_COMMITTER_EMAIL", "soak@example.invalid")
            .output()
            .unwrap();
        assert!(output.status.success(), "git {args:?}: {output:?}");
        String::from_utf8(output.stdout).unwrap().trim().to_owned()
    }

    fn worktree_count(&self) -> usize {
        self.git(&["worktree", "list", "--porcelain"])
            .lines()
            .filter(|l| l.starts_with("worktree "))
            .count()
    }
}

fn spec(name: &str, source: BranchSource) -> BranchSpec {
    BranchSpec {
        name: name.to_owned(),
        source,
        env: Vec::new(),
    }
}

fn settings(build: &str, peer: &str, log_dir: &Path) -> BuildSettings {
    BuildSettings {
        build_cmd: Some(build.to_owned()),
        peer_cmd: Some(peer.to_owned()),
        log_dir: log_dir.to_path_buf(),
    }
}

async fn run(
    cwd: &Path,
    specs: Vec<BranchSpec>,
    settings: &BuildSettings,
) -> Result<Vec<PreparedBranch>, BranchError> {
    let groups = ProcessGroups::default();
    let result = prepare_from(cwd, specs, settings, &groups, &CancellationToken::new()).await;
    assert!(groups.is_empty(), "a build process group outlived prepare");
    result
}

fn infrastructure(err: BranchError) -> String {
    match err {
        BranchError::Infrastructure(text) => text,
        other => panic!("expected an infrastructure error, got {other:?}"),
    }
}

fn usage(err: BranchError) -> String {
    match err {
        BranchError::Input(text) => text,
        other => panic!("expected a usage error, got {other:?}"),
    }
}

#[tokio::test]
async fn git_refs_are_built_in_their_own_worktrees_which_go_away_on_drop() {
    let repo = Repo::new();
    let logs = tempfile::tempdir().unwrap();
    let settings = settings(COPY_BUILD, "python3 built-peer.py", logs.path());
    let mut baseline = spec("baseline", BranchSource::GitRef("slow".into()));
    baseline.env = vec![("X".into(), "1".into())];
    let specs = vec![
        baseline,
        spec("treatment", BranchSource::GitRef("fast".into())),
    ];
    let branches = run(repo.path(), specs, &settings).await.unwrap();

    let mut dirs = Vec::new();
    for (branch, (text, tag)) in branches.iter().zip([(SLOW, "slow"), (FAST, "fast")]) {
        let dir = branch.peer_cwd.clone().unwrap();
        assert!(
            !dir.starts_with(repo.path()),
            "a worktree, not the repository"
        );
        assert_eq!(
            std::fs::read_to_string(dir.join("built-peer.py")).unwrap(),
            text
        );
        let sha = repo.git(&["rev-parse", tag]);
        assert_eq!(branch.commit.as_deref(), Some(sha.as_str()));
        assert_eq!(branch.git_ref.as_deref(), Some(tag));
        assert!(
            branch.label.starts_with(&format!("{tag} @ {}", &sha[..7])),
            "{}",
            branch.label
        );
        assert_eq!(branch.peer_cmd.display(), "python3 built-peer.py");
        assert!(
            logs.path()
                .join(format!("build-{}.log", branch.name))
                .is_file()
        );
        dirs.push(dir);
    }
    assert_eq!(
        branches[0].label,
        format!(
            "slow @ {} X=1",
            &branches[0].commit.as_deref().unwrap()[..7]
        )
    );

    let info = branches[0].manifest();
    assert_eq!(info.name, "baseline");
    assert_eq!(info.build_cmd.as_deref(), Some(COPY_BUILD));
    assert_eq!(info.peer_env, vec![("X".to_owned(), "1".to_owned())]);
    assert_eq!(repo.worktree_count(), 3);

    drop(branches);
    for dir in dirs {
        assert!(!dir.exists(), "{} outlived its branch", dir.display());
    }
    assert_eq!(
        repo.worktree_count(),
        1,
        "{}",
        repo.git(&["worktree", "list"])
    );
}

#[tokio::test]
async fn an_unknown_ref_is_a_usage_error_found_before_any_build() {
    let repo = Repo::new();
    let logs = tempfile::tempdir().unwrap();
    let settings = settings(COPY_BUILD, "python3 built-peer.py", logs.path());
    let specs = vec![
        spec("baseline", BranchSource::GitRef("slow".into())),
        spec("treatment", BranchSource::GitRef("nope".into())),
    ];
    let text = usage(run(repo.path(), specs, &settings).await.unwrap_err());
    assert!(
        text.starts_with("treatment: unknown git ref `nope` in "),
        "{text}"
    );
    assert!(text.contains("git branch -a"), "{text}");
    assert!(
        !logs.path().join("build-baseline.log").exists(),
        "built before resolving"
    );
    assert_eq!(repo.worktree_count(), 1);
}

#[tokio::test]
async fn a_ref_outside_a_repository_and_a_missing_directory_are_usage_errors() {
    let outside = tempfile::tempdir().unwrap();
    let settings = settings(COPY_BUILD, "python3 built-peer.py", outside.path());
    let specs = vec![spec("baseline", BranchSource::GitRef("main".into()))];
    let text = usage(run(outside.path(), specs, &settings).await.unwrap_err());
    assert!(text.contains("not inside a git repository"), "{text}");

    let specs = vec![spec(
        "baseline",
        BranchSource::Dir(PathBuf::from("no-such-dir")),
    )];
    let text = usage(run(outside.path(), specs, &settings).await.unwrap_err());
    assert!(
        text.starts_with("baseline: directory `no-such-dir` does not exist"),
        "{text}"
    );
}

#[tokio::test]
async fn a_failing_build_names_the_branch_the_status_and_the_log_and_quotes_it() {
    let repo = Repo::new();
    let logs = tempfile::tempdir().unwrap();
    let settings = settings(
        "sh -c 'echo boom >&2; exit 7'",
        "python3 peer.py",
        logs.path(),
    );
    let specs = vec![spec("baseline", BranchSource::GitRef("fast".into()))];
    let text = infrastructure(run(repo.path(), specs, &settings).await.unwrap_err());
    let first = text.lines().next().unwrap();
    let log = logs.path().join("build-baseline.log");
    assert!(first.starts_with("baseline build: "), "{first}");
    assert!(first.contains("exit code 7"), "{first}");
    assert!(first.contains(&log.display().to_string()), "{first}");
    assert!(text.lines().skip(1).any(|l| l.contains("boom")), "{text}");
    assert!(std::fs::read_to_string(&log).unwrap().contains("boom"));
    assert_eq!(
        repo.worktree_count(),
        1,
        "the failed branch's worktree is removed"
    );
}

#[tokio::test]
async fn a_directory_is_built_in_place() {
    let repo = Repo::new();
    let logs = tempfile::tempdir().unwrap();
    let settings = settings(COPY_BUILD, "python3 built-peer.py", logs.path());
    let specs = vec![spec(
        "treatment",
        BranchSource::Dir(repo.path().to_path_buf()),
    )];
    let branches = run(Path::new("/"), specs, &settings).await.unwrap();
    let branch = &branches[0];
    let dir = repo.path().canonicalize().unwrap();
    assert_eq!(branch.peer_cwd.as_deref(), Some(dir.as_path()));
    assert_eq!(
        std::fs::read_to_string(dir.join("built-peer.py")).unwrap(),
        FAST
    );
    assert_eq!(branch.commit, Some(repo.git(&["rev-parse", "HEAD"])));
    assert_eq!(branch.git_ref, None);
    assert!(branch.label.ends_with("(dir)"), "{}", branch.label);
    drop(branches);
    assert!(
        dir.join("built-peer.py").exists(),
        "a directory is the user's: kept"
    );
    assert_eq!(repo.worktree_count(), 1);
}

#[tokio::test]
async fn a_prebuilt_peer_with_per_branch_env_needs_no_build() {
    let logs = tempfile::tempdir().unwrap();
    let settings = settings("false", "/bin/cat --flag", logs.path());
    let mut baseline = spec("baseline", BranchSource::BuiltIn);
    baseline.env = vec![("SPHERE_PROOF_CHECK".into(), "pairwise".into())];
    let branches = run(Path::new("/"), vec![baseline], &settings)
        .await
        .unwrap();
    let branch = &branches[0];
    assert_eq!(branch.peer_cmd.display(), "/bin/cat --flag");
    assert_eq!(branch.peer_cwd, None);
    assert_eq!(branch.build_cmd, None);
    assert_eq!(
        branch.label,
        "`/bin/cat --flag` SPHERE_PROOF_CHECK=pairwise"
    );
    assert!(!logs.path().join("build-baseline.log").exists());
}

#[tokio::test]
async fn cancelling_kills_the_build_and_says_so() {
    let repo = Repo::new();
    let logs = tempfile::tempdir().unwrap();
    let settings = settings(
        "sh -c 'sleep 30 & sleep 30'",
        "python3 peer.py",
        logs.path(),
    );
    let specs = vec![spec(
        "baseline",
        BranchSource::Dir(repo.path().to_path_buf()),
    )];
    let groups = ProcessGroups::default();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let err = prepare_from(Path::new("/"), specs, &settings, &groups, &cancel)
        .await
        .unwrap_err();
    // Ctrl-C is the user's choice, not a broken build: exit 130, not 3.
    match err {
        BranchError::Interrupted(text) => {
            assert_eq!(text, "interrupted during the build of baseline")
        }
        other => panic!("expected an interruption, got {other:?}"),
    }
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(groups.is_empty());
}

#[tokio::test]
async fn a_relative_peer_program_is_made_absolute_and_a_missing_one_named() {
    let repo = Repo::new();
    let logs = tempfile::tempdir().unwrap();
    let build = "sh -c 'mkdir -p bin && cp peer.py bin/peer'";
    let settings = settings(build, "bin/peer --x", logs.path());
    let specs = vec![spec("baseline", BranchSource::GitRef("slow".into()))];
    let branches = run(repo.path(), specs, &settings).await.unwrap();
    let dir = branches[0].peer_cwd.clone().unwrap();
    assert_eq!(
        Path::new(&branches[0].peer_cmd.program),
        dir.join("bin/peer")
    );
    assert_eq!(
        branches[0].peer_cmd.args,
        vec![std::ffi::OsString::from("--x")]
    );

    let settings = BuildSettings {
        build_cmd: Some("true".into()),
        peer_cmd: None,
        ..settings
    };
    let specs = vec![spec("treatment", BranchSource::GitRef("fast".into()))];
    let text = infrastructure(run(repo.path(), specs, &settings).await.unwrap_err());
    assert!(text.starts_with("treatment: the build finished"), "{text}");
    assert!(text.contains("target/release/sphere-peer"), "{text}");
}
