//! `soak bisect --good REF --bad REF (--metric M | --assertion A)`: the
//! first commit between two refs at which the gate fails on one metric or
//! one assertion.
//!
//! Every probe is a `soak ab` of the good commit (built once, kept for the
//! whole bisection) against the probed commit (built before any of its
//! iterations run), judged with the gate's three outcomes on the chosen
//! target alone: a regression marks the commit bad, no regression (or an
//! improvement) good. An adaptive probe looks at 3, 5, 8 and 10 iterations
//! per side and stops once the target is decided, so a probe that cannot
//! tell runs more iterations instead of guessing; one that still cannot
//! tell at the last look ends the bisection with the range it narrowed to.
//!
//! The bad end is probed first, to confirm the failure reproduces; then a
//! binary search over the first-parent commits after the good one: at most
//! `ceil(log2 n) + 1` probes for `n` commits.

use std::path::{Path, PathBuf};

use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::{
    CommandError, Common,
    ab::{AbOutcome, Iterations, MeasurePlan, measure},
    check_out_dir, default_out_dir,
};
use crate::{
    ab::{
        branches::{self, BranchSource, BranchSpec, BuildSettings, PreparedBranch},
        compare::Judgement,
        gate_config::GateConfig,
        metrics::{MetricKind, SectionRef},
    },
    process::ProcessGroups,
    scenario::SectionId,
    stats::{Verdict, assertion_regressed},
};

/// What the bisection judges each probe on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", content = "name", rename_all = "snake_case")]
pub enum Target {
    /// A metric: `total`, a section (`C.2`, `§C.2` or its full name
    /// `§C.2 Bob pays`), or any metric's name as the reports show it.
    Metric(String),
    /// An assertion, by name: bad where it passes on the good commit and
    /// fails on the probed one.
    Assertion(String),
}

/// `soak bisect` options.
#[derive(Debug, Clone)]
pub struct BisectOptions {
    /// Shared options (`--out` is the bisection's folder).
    pub common: Common,
    /// `--good`.
    pub good: String,
    /// `--bad`.
    pub bad: String,
    /// `--metric` or `--assertion`.
    pub target: Target,
    /// `--build-cmd`.
    pub build_cmd: Option<String>,
    /// `--peer-cmd`.
    pub peer_cmd: Option<String>,
    /// Iterations per side of each probe.
    pub iterations: Iterations,
    /// Unjudged iterations per branch before each probe's first block.
    pub warmup: usize,
    /// The gate.
    pub gate: GateConfig,
}

/// How one probed commit judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Call {
    /// The gate fails on the target here.
    Bad,
    /// It does not.
    Good,
    /// Not decided even at the last look.
    CannotTell,
}

/// One probe of the bisection.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The probed commit.
    pub commit: String,
    /// Its subject line.
    pub subject: String,
    /// How it judged.
    pub call: Call,
    /// The target's verdict in words (`1.31x [1.25, 1.37]: regression`).
    pub evidence: String,
    /// The probe's run folder.
    pub dir: PathBuf,
    /// Iterations per side it took.
    pub iterations: usize,
}

/// What the bisection found.
#[derive(Debug, Serialize)]
pub struct BisectOutcome {
    /// Its folder.
    pub out: PathBuf,
    /// Every probe, in the order made.
    pub path: Vec<Probe>,
    /// The first bad commit, if the search ended on one.
    pub culprit: Option<Probe>,
    /// Why it ended without a culprit, in words.
    pub stopped: Option<String>,
    /// The commits searched (after the good one, oldest first).
    pub commits: usize,
    /// The culprit's terminal report.
    #[serde(skip)]
    pub terminal: String,
}

/// Runs the bisection.
pub async fn run(
    options: BisectOptions,
    cancel: CancellationToken,
    groups: ProcessGroups,
) -> Result<BisectOutcome, CommandError> {
    let (settings, scenario) = super::run_settings(&options.common, cancel.clone())?;
    check_section(&options.target, &settings.scenario)?;
    let cwd = std::env::current_dir()
        .map_err(|e| CommandError::Usage(format!("cannot read the current directory: {e}")))?;
    let good = rev_parse(&cwd, &options.good, "--good").await?;
    let bad = rev_parse(&cwd, &options.bad, "--bad").await?;
    let commits = commits_between(&cwd, &good, &bad, &options).await?;
    let out = options.common.out.clone().unwrap_or_else(default_out_dir);
    check_out_dir(&out)?;
    std::fs::create_dir_all(&out).map_err(|e| {
        CommandError::Usage(format!("cannot create --out `{}`: {e}", out.display()))
    })?;
    let build = BuildSettings {
        build_cmd: options.build_cmd.clone(),
        peer_cmd: options.peer_cmd.clone(),
        log_dir: out.clone(),
    };
    let baseline = prepare(&good, "baseline", &build, &groups, &cancel).await?;
    let plan = MeasurePlan {
        settings: &settings,
        scenario: &scenario,
        gate: &options.gate,
        iterations: options.iterations,
        shard: None,
        warmup: options.warmup,
        quiet: options.common.quiet || options.common.json,
        cancel: &cancel,
        groups: &groups,
    };
    let mut bisection = Bisection {
        plan,
        baseline: &baseline,
        build: &build,
        target: &options.target,
        out: &out,
        path: Vec::new(),
        culprit_terminal: String::new(),
    };
    // Confirm the bad end first: a failure that does not reproduce has
    // nothing to bisect.
    let last = commits.len() - 1;
    let (confirmed, terminal) = bisection.probe(&commits[last]).await?;
    if confirmed.call != Call::Bad {
        let why = format!(
            "the gate does not fail on {} at --bad {} ({}): nothing to bisect; check the target, or give more --iterations",
            describe(&options.target),
            short(&commits[last].0),
            confirmed.evidence
        );
        return Ok(bisection.finish(commits.len(), None, Some(why)));
    }
    bisection.culprit_terminal = terminal;
    // Invariant: everything up to `good_end` is good (-1: only the good
    // ref), `bad_end` is bad.
    let (mut good_end, mut bad_end) = (-1_isize, last as isize);
    while bad_end - good_end > 1 {
        let mid = (good_end + bad_end) / 2;
        let (probe, terminal) = bisection.probe(&commits[mid as usize]).await?;
        match probe.call {
            Call::Bad => {
                bad_end = mid;
                bisection.culprit_terminal = terminal;
            }
            Call::Good => good_end = mid,
            Call::CannotTell => {
                let from = if good_end < 0 {
                    short(&good)
                } else {
                    short(&commits[good_end as usize].0)
                };
                let why = format!(
                    "cannot tell at {} even after the last look: the first bad commit is after {from} and at or before {}; rerun with more --iterations or a quieter machine",
                    short(&probe.commit),
                    short(&commits[bad_end as usize].0)
                );
                return Ok(bisection.finish(commits.len(), None, Some(why)));
            }
        }
    }
    let culprit = bisection
        .path
        .iter()
        .find(|p| p.commit == commits[bad_end as usize].0)
        .cloned();
    Ok(bisection.finish(commits.len(), culprit, None))
}

/// The state of a bisection between probes.
struct Bisection<'a> {
    plan: MeasurePlan<'a>,
    baseline: &'a PreparedBranch,
    build: &'a BuildSettings,
    target: &'a Target,
    out: &'a Path,
    path: Vec<Probe>,
    /// The terminal report of the earliest bad probe so far.
    culprit_terminal: String,
}

impl Bisection<'_> {
    /// Builds `commit`, measures it against the good commit, and calls it.
    async fn probe(
        &mut self,
        (commit, subject): &(String, String),
    ) -> Result<(Probe, String), CommandError> {
        let step = self.path.len() + 1;
        let dir = self.out.join(format!("probe-{step}-{}", short(commit)));
        let treatment = prepare(
            commit,
            "treatment",
            self.build,
            self.plan.groups,
            self.plan.cancel,
        )
        .await?;
        let target = self.target;
        let outcome: AbOutcome = measure(&self.plan, [self.baseline, &treatment], &dir, |j| {
            call(j, target).is_ok_and(|(call, _)| call != Call::CannotTell)
        })
        .await?;
        if self.plan.cancel.is_cancelled() {
            return Err(CommandError::Interrupted(format!(
                "interrupted while probing {}; its folder is {}",
                short(commit),
                dir.display()
            )));
        }
        let (call, evidence) = call(&outcome.judgement, self.target)?;
        let probe = Probe {
            commit: commit.clone(),
            subject: subject.clone(),
            call,
            evidence,
            dir,
            iterations: outcome.judgement.iterations.1,
        };
        self.path.push(probe.clone());
        Ok((probe, outcome.terminal))
    }

    fn finish(
        self,
        commits: usize,
        culprit: Option<Probe>,
        stopped: Option<String>,
    ) -> BisectOutcome {
        let terminal = if culprit.is_some() {
            self.culprit_terminal
        } else {
            String::new()
        };
        let outcome = BisectOutcome {
            out: self.out.to_owned(),
            path: self.path,
            culprit,
            stopped,
            commits,
            terminal,
        };
        let _ = crate::record::write_json(&outcome.out.join("bisect.json"), &outcome);
        outcome
    }
}

/// The target's call in one judgement, with its evidence in words; a
/// metric no probe measured is a usage error naming what there is.
fn call(judgement: &Judgement, target: &Target) -> Result<(Call, String), CommandError> {
    match target {
        Target::Metric(name) => {
            let wanted = SectionId::parse_label(name);
            let found = judgement.metrics.iter().find(|m| {
                m.metric == name.trim()
                    || (m.id.kind == MetricKind::SectionTime
                        && matches!(&m.id.section, Some(SectionRef::Scenario { id, .. }) if *id == wanted))
            });
            let Some(metric) = found else {
                let known: Vec<&str> = judgement
                    .metrics
                    .iter()
                    .filter(|m| {
                        matches!(m.id.kind, MetricKind::SectionTime | MetricKind::TotalTime)
                    })
                    .map(|m| m.metric.as_str())
                    .collect();
                return Err(CommandError::Usage(format!(
                    "--metric `{name}` is not a metric of this scenario; try `total` or a section: {}",
                    known.join(", ")
                )));
            };
            let Some(comparison) = &metric.comparison else {
                let why = metric.not_compared.clone().unwrap_or_default();
                return Ok((Call::CannotTell, format!("not compared: {why}")));
            };
            let call = match comparison.verdict {
                Verdict::Regression => Call::Bad,
                Verdict::NoRegression | Verdict::Improvement => Call::Good,
                Verdict::CannotTell { .. } => Call::CannotTell,
            };
            Ok((call, comparison.reason.clone()))
        }
        Target::Assertion(name) => {
            let Some(rates) = judgement.assertions.iter().find(|a| a.name == *name) else {
                let known: Vec<&str> = judgement
                    .assertions
                    .iter()
                    .map(|a| a.name.as_str())
                    .collect();
                return Err(CommandError::Usage(format!(
                    "--assertion `{name}` is not an assertion of this scenario; it has: {}",
                    known.join(", ")
                )));
            };
            let evidence = format!(
                "passes {}/{} on good, {}/{} here",
                rates.baseline.passed(),
                rates.baseline.total(),
                rates.treatment.passed(),
                rates.treatment.total()
            );
            let call = if assertion_regressed(rates.baseline, rates.treatment) {
                Call::Bad
            } else {
                Call::Good
            };
            Ok((call, evidence))
        }
    }
}

/// Refuses, before anything is built, a `§` target naming no section of
/// the scenario (other metric names are checked against the first probe).
fn check_section(
    target: &Target,
    scenario: &crate::scenario::Scenario,
) -> Result<(), CommandError> {
    let Target::Metric(name) = target else {
        return Ok(());
    };
    if !name.trim().starts_with('§') {
        return Ok(());
    }
    // `§C.2` or the full name `§C.2 Bob pays`.
    let id = SectionId::parse_label(name.split_whitespace().next().unwrap_or_default());
    if scenario.sections.iter().any(|s| s.id == id) {
        return Ok(());
    }
    let known: Vec<String> = scenario.sections.iter().map(|s| s.id.to_string()).collect();
    Err(CommandError::Usage(format!(
        "--metric `{name}` is not a metric of this scenario; try `total` or a section: {}",
        known.join(", ")
    )))
}

fn describe(target: &Target) -> String {
    match target {
        Target::Metric(name) => format!("metric `{name}`"),
        Target::Assertion(name) => format!("assertion `{name}`"),
    }
}

fn short(sha: &str) -> String {
    sha.chars().take(7).collect()
}

/// Checks out and builds one commit.
async fn prepare(
    sha: &str,
    side: &str,
    build: &BuildSettings,
    groups: &ProcessGroups,
    cancel: &CancellationToken,
) -> Result<PreparedBranch, CommandError> {
    let spec = BranchSpec {
        name: side.to_owned(),
        source: BranchSource::GitRef(sha.to_owned()),
        env: Vec::new(),
    };
    let mut prepared = branches::prepare(vec![spec], build, groups, cancel).await?;
    prepared.pop().ok_or_else(|| {
        CommandError::Infrastructure(format!("preparing {} returned nothing", short(sha)))
    })
}

async fn git(cwd: &Path, args: &[&str]) -> Result<String, String> {
    let output = tokio::process::Command::new("git")
        .args(args)
        .current_dir(cwd)
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .map_err(|e| format!("cannot run git: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
    } else {
        Err(String::from_utf8_lossy(&output.stderr).trim().to_owned())
    }
}

async fn rev_parse(cwd: &Path, git_ref: &str, flag: &str) -> Result<String, CommandError> {
    git(cwd, &["rev-parse", "--verify", "--quiet", &format!("{git_ref}^{{commit}}")])
        .await
        .map_err(|_| {
            CommandError::Usage(format!(
                "{flag} `{git_ref}` names no commit of the repository here; give a branch, tag or sha (see `git log`)"
            ))
        })
}

/// The first-parent commits after `good` up to `bad`, oldest first, each
/// with its subject; refuses a `good` that is not an ancestor of `bad`.
async fn commits_between(
    cwd: &Path,
    good: &str,
    bad: &str,
    options: &BisectOptions,
) -> Result<Vec<(String, String)>, CommandError> {
    if git(cwd, &["merge-base", "--is-ancestor", good, bad])
        .await
        .is_err()
    {
        return Err(CommandError::Usage(format!(
            "--good `{}` is not an ancestor of --bad `{}`: bisect needs the good commit before the bad one",
            options.good, options.bad
        )));
    }
    let list = git(
        cwd,
        &[
            "rev-list",
            "--first-parent",
            "--reverse",
            "--format=%H %s",
            "--no-commit-header",
            &format!("{good}..{bad}"),
        ],
    )
    .await
    .map_err(|e| CommandError::Infrastructure(format!("git rev-list failed: {e}")))?;
    let commits: Vec<(String, String)> = list
        .lines()
        .filter_map(|line| {
            let (sha, subject) = line.split_once(' ').unwrap_or((line, ""));
            (sha.len() == 40).then(|| (sha.to_owned(), subject.to_owned()))
        })
        .collect();
    if commits.is_empty() {
        return Err(CommandError::Usage(format!(
            "--good `{}` and --bad `{}` are the same commit: nothing to bisect",
            options.good, options.bad
        )));
    }
    Ok(commits)
}
