//! `soak ab`: prepare both branches, run them interleaved, judge, report.

use std::path::{Path, PathBuf};

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{CommandError, Common, default_out_dir, parse_env_pairs, run_settings};
use crate::{
    ab::{
        branches::{self, BranchSource, BranchSpec, BuildSettings, PreparedBranch},
        compare::{JudgeSettings, Judgement, judge},
        gate_config::GateConfig,
        report::{self, Labels},
        schedule::{Side, abba},
        shard::{Shard, ShardInfo, run_id},
    },
    manifest::{Manifest, ScenarioInfo},
    process::ProcessGroups,
    record::IterationRecord,
    reporter::{self, Verbosity},
    runner::{self, BranchRun},
    stats::{Alpha, LookSchedule},
};

/// The variants `soak ab` compares when given no branches: the shipped
/// proof check against the deduplicated one.
pub const BUILT_IN_BASELINE_ENV: (&str, &str) = ("SPHERE_PROOF_CHECK", "pairwise");
/// See [`BUILT_IN_BASELINE_ENV`].
pub const BUILT_IN_TREATMENT_ENV: (&str, &str) = ("SPHERE_PROOF_CHECK", "across");

/// How many iterations per side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Iterations {
    /// Exactly this many.
    Fixed(usize),
    /// 3, then 5, 8, 10 until every gated metric is decided (the default).
    Auto,
}

/// `soak ab` options.
#[derive(Debug, Clone)]
pub struct AbOptions {
    /// Shared options.
    pub common: Common,
    /// `--baseline REF_OR_DIR`.
    pub baseline: Option<String>,
    /// `--treatment REF_OR_DIR`.
    pub treatment: Option<String>,
    /// `--build-cmd`.
    pub build_cmd: Option<String>,
    /// `--peer-cmd`.
    pub peer_cmd: Option<String>,
    /// `--baseline-env K=V`.
    pub baseline_env: Vec<String>,
    /// `--treatment-env K=V`.
    pub treatment_env: Vec<String>,
    /// `--iterations N|auto`.
    pub iterations: Iterations,
    /// The gate configuration (file plus flags).
    pub gate: GateConfig,
    /// `--shard I/N`: this machine runs shard I of N (with a fixed
    /// `--iterations`, each shard's own count per side).
    pub shard: Option<Shard>,
    /// `--warmup N`: unjudged iterations per branch before the first block.
    pub warmup: usize,
}

/// Warm-up iterations per branch unless `--warmup` says otherwise. The
/// first iteration after a build can be the slowest of a run (measured: in
/// one of four A/A pools of the default scenario both sides' first
/// iteration was 6 % slower than the rest, in another 2 %), which at 3 to 5
/// a side is enough to widen every interval; one unjudged iteration per
/// branch costs one iteration's time and takes it out.
pub const DEFAULT_WARMUP: usize = 1;

/// How many times one branch's iterations may be re-run after failures
/// outside its control (a crash, a hang, a testnet that died) before the
/// run stops with exit 3.
pub const MAX_INFRASTRUCTURE_RETRIES: usize = 2;

/// Re-runs of iterations that failed outside both branches' control, and
/// the lines the reports show for them (and for failed warm-ups).
#[derive(Debug, Default)]
struct Retries {
    used: [usize; 2],
    lines: Vec<String>,
}

impl Retries {
    /// Whether to run iteration `k` of `side` again: its failure is worth a
    /// retry and the branch has retries left. The failed attempt's folder is
    /// kept beside it as `run-K-failed-N` (not read as an iteration).
    fn rerun(&mut self, side: Side, k: usize, record: &IterationRecord, dir: &Path) -> bool {
        let Some(failure) = record.failure.as_ref().filter(|f| f.worth_retrying()) else {
            return false;
        };
        let used = &mut self.used[usize::from(side == Side::Treatment)];
        if *used >= MAX_INFRASTRUCTURE_RETRIES {
            return false;
        }
        *used += 1;
        let kept = format!("run-{k}-failed-{used}");
        let _ = std::fs::rename(dir.join(format!("run-{k}")), dir.join(&kept));
        self.lines.push(format!(
            "{} run-{k} re-run after an infrastructure failure (kept as {kept}): {failure}",
            side.name()
        ));
        true
    }
}

/// What `soak ab` produced.
pub struct AbOutcome {
    /// The run folder.
    pub out: PathBuf,
    /// The terminal report.
    pub terminal: String,
    /// The judgement.
    pub judgement: Judgement,
}

fn specs(options: &AbOptions) -> Result<Vec<BranchSpec>, CommandError> {
    let mut baseline_env = parse_env_pairs(&options.baseline_env, "--baseline-env")?;
    let mut treatment_env = parse_env_pairs(&options.treatment_env, "--treatment-env")?;
    let source = |given: &Option<String>| match given {
        None => BranchSource::BuiltIn,
        Some(text) if Path::new(text).is_dir() => BranchSource::Dir(PathBuf::from(text)),
        Some(text) => BranchSource::GitRef(text.clone()),
    };
    match (&options.baseline, &options.treatment) {
        (Some(_), None) | (None, Some(_)) => {
            return Err(CommandError::Usage(
                "give both --baseline and --treatment, or neither (to compare built-in variants)"
                    .into(),
            ));
        }
        (None, None) if baseline_env.is_empty() && treatment_env.is_empty() => {
            baseline_env.push((
                BUILT_IN_BASELINE_ENV.0.into(),
                BUILT_IN_BASELINE_ENV.1.into(),
            ));
            treatment_env.push((
                BUILT_IN_TREATMENT_ENV.0.into(),
                BUILT_IN_TREATMENT_ENV.1.into(),
            ));
        }
        _ => {}
    }
    Ok(vec![
        BranchSpec {
            name: Side::Baseline.name().into(),
            source: source(&options.baseline),
            env: baseline_env,
        },
        BranchSpec {
            name: Side::Treatment.name().into(),
            source: source(&options.treatment),
            env: treatment_env,
        },
    ])
}

/// Runs the whole A/B soak: prepare both branches (every build before the
/// first measured iteration), then [`measure`] until the gate is settled.
pub async fn run(
    options: AbOptions,
    cancel: CancellationToken,
    groups: ProcessGroups,
) -> Result<AbOutcome, CommandError> {
    let (settings, scenario_info) = run_settings(&options.common, cancel.clone())?;
    let specs = specs(&options)?;
    let out = options.common.out.clone().unwrap_or_else(default_out_dir);
    super::check_out_dir(&out)?;
    std::fs::create_dir_all(&out).map_err(|e| {
        CommandError::Usage(format!("cannot create --out `{}`: {e}", out.display()))
    })?;
    if let Iterations::Fixed(n) = options.iterations
        && n < options.gate.min_iterations
    {
        return Err(CommandError::Usage(format!(
            "--iterations {n} is below the gate's min_iterations ({}): the gate would refuse to judge; run more, or lower min_iterations in the gate config",
            options.gate.min_iterations
        )));
    }
    let build = BuildSettings {
        build_cmd: options.build_cmd.clone(),
        peer_cmd: options.peer_cmd.clone(),
        log_dir: out.clone(),
    };
    let prepared: Vec<PreparedBranch> = branches::prepare(specs, &build, &groups, &cancel).await?;
    let (Some(baseline), Some(treatment)) = (prepared.first(), prepared.get(1)) else {
        return Err(CommandError::Infrastructure(
            "branch preparation returned fewer than two branches".into(),
        ));
    };
    let plan = MeasurePlan {
        settings: &settings,
        scenario: &scenario_info,
        gate: &options.gate,
        iterations: options.iterations,
        shard: options.shard,
        warmup: options.warmup,
        quiet: options.common.quiet || options.common.json,
        cancel: &cancel,
        groups: &groups,
    };
    measure(&plan, [baseline, treatment], &out, |judgement| {
        judgement.settled()
    })
    .await
}

/// What [`measure`] needs besides the branches: fixed for a whole run (and
/// for every step of a bisection).
pub struct MeasurePlan<'a> {
    /// Scenario, profile, sampling and timeouts.
    pub settings: &'a runner::RunSettings,
    /// The scenario as the manifest records it.
    pub scenario: &'a ScenarioInfo,
    /// The gate.
    pub gate: &'a GateConfig,
    /// Fixed, or looks at 3, 5, 8, 10 per side.
    pub iterations: Iterations,
    /// This run is one shard of several.
    pub shard: Option<Shard>,
    /// Unjudged iterations per branch before the first block.
    pub warmup: usize,
    /// No progress lines.
    pub quiet: bool,
    /// Ctrl-C.
    pub cancel: &'a CancellationToken,
    /// Every child's process group.
    pub groups: &'a ProcessGroups,
}

/// Runs prepared branches interleaved in ABBA blocks into `out`, judging at
/// each look of an adaptive run and stopping once `settled` says more
/// iterations could not change what the caller asks (the gate's outcome
/// for `soak ab`; one metric's verdict for a bisection step); then writes
/// the manifest and every report.
pub async fn measure(
    plan: &MeasurePlan<'_>,
    [baseline, treatment]: [&PreparedBranch; 2],
    out: &Path,
    settled: impl Fn(&Judgement) -> bool,
) -> Result<AbOutcome, CommandError> {
    let (settings, cancel, groups) = (plan.settings, plan.cancel, plan.groups);
    std::fs::create_dir_all(out)
        .map_err(|e| CommandError::Io(format!("cannot create `{}`: {e}", out.display())))?;
    let alpha = Alpha::new(plan.gate.alpha).map_err(|e| CommandError::Usage(e.to_string()))?;
    let looks = LookSchedule::standard(alpha);
    let iterations_text = match plan.iterations {
        Iterations::Fixed(n) => n.to_string(),
        Iterations::Auto => "auto".into(),
    };
    let mut manifest = Manifest::start(
        plan.scenario.clone(),
        settings,
        vec![baseline.manifest(), treatment.manifest()],
        iterations_text,
    );
    manifest.warmup = plan.warmup;
    if let Some(shard) = plan.shard {
        let gate = serde_json::to_value(plan.gate).unwrap_or_default();
        manifest.shard = Some(ShardInfo {
            shard,
            run_id: run_id(&manifest, shard.count, &gate),
        });
    }
    manifest
        .write(out)
        .map_err(|e| CommandError::Io(format!("cannot write to `{}`: {e}", out.display())))?;

    let (events_tx, events_rx) = mpsc::unbounded_channel();
    let planned = match plan.iterations {
        Iterations::Fixed(n) => n,
        Iterations::Auto => looks.cap(),
    };
    let verbosity = if plan.quiet {
        Verbosity::Quiet
    } else {
        Verbosity::Normal
    };
    let progress = reporter::spawn_progress(events_rx, planned, verbosity);
    let baseline_dir = out.join(Side::Baseline.name());
    let treatment_dir = out.join(Side::Treatment.name());
    let shard = plan.shard.map(|s| s.index);
    let runs = [
        BranchRun {
            name: Side::Baseline.name(),
            peer_cmd: &baseline.peer_cmd,
            peer_env: &baseline.env,
            out: &baseline_dir,
            peer_cwd: baseline.peer_cwd.as_deref(),
            shard,
        },
        BranchRun {
            name: Side::Treatment.name(),
            peer_cmd: &treatment.peer_cmd,
            peer_env: &treatment.env,
            out: &treatment_dir,
            peer_cwd: treatment.peer_cwd.as_deref(),
            shard,
        },
    ];
    let mut retries = Retries::default();
    match warm_up(plan, &runs, &events_tx).await {
        Ok(failed) => retries.lines.extend(failed),
        Err(input) => {
            manifest.interrupted = cancel.is_cancelled();
            let _ = manifest.write(out);
            return Err(input);
        }
    }
    let mut records: [Vec<IterationRecord>; 2] = [Vec::new(), Vec::new()];
    let mut done = 0;
    let mut look_alpha = alpha;
    'looks: loop {
        let target = match plan.iterations {
            Iterations::Fixed(n) => n,
            Iterations::Auto => match looks.next_after(done) {
                Some(look) => {
                    look_alpha = look.alpha;
                    look.per_side
                }
                None => break,
            },
        };
        for side in abba(done, target) {
            if cancel.is_cancelled() {
                break;
            }
            let index = usize::from(side == Side::Treatment);
            let k = records[index].len() + 1;
            let record = loop {
                let record =
                    runner::run_iteration(settings, runs[index].plan(k), groups, &events_tx).await;
                if cancel.is_cancelled() || !retries.rerun(side, k, &record, runs[index].out) {
                    break record;
                }
            };
            let failure = record.failure.clone();
            records[index].push(record);
            match failure {
                // The scenario does not fit the peer: input, exit 2.
                Some(f) if f.is_input_error() => {
                    manifest.interrupted = cancel.is_cancelled();
                    let _ = manifest.write(out);
                    return Err(CommandError::Usage(f.to_string()));
                }
                // Out of retries: the run stops; the reports say why (exit 3).
                Some(_) => break 'looks,
                None => {}
            }
        }
        done = target;
        let look = JudgeSettings {
            alpha: look_alpha.get(),
            interrupted: false,
            retried: retries.lines.clone(),
        };
        let judgement = judge(&records[0], &records[1], plan.gate, look);
        if cancel.is_cancelled()
            || matches!(plan.iterations, Iterations::Fixed(_))
            || settled(&judgement)
        {
            break;
        }
    }
    drop(events_tx);
    let _ = progress.await;
    let judged = JudgeSettings {
        alpha: look_alpha.get(),
        interrupted: cancel.is_cancelled(),
        retried: retries.lines,
    };
    let judgement = judge(&records[0], &records[1], plan.gate, judged.clone());
    manifest.interrupted = judged.interrupted;
    manifest.judged = Some(judged);
    manifest.record_variants(&[&records[0], &records[1]]);
    let _ = manifest.write(out);
    let labels = Labels {
        baseline: baseline.label.clone(),
        treatment: treatment.label.clone(),
    };
    let manifest_json = serde_json::to_value(&manifest).unwrap_or_default();
    let ab_report = report::build(
        &judgement,
        &records[0],
        &records[1],
        &labels,
        out,
        manifest_json,
    );
    let terminal = report::write_all(out, &ab_report, &judgement).map_err(|e| {
        CommandError::Io(format!(
            "cannot write the reports into `{}`: {e}",
            out.display()
        ))
    })?;
    Ok(AbOutcome {
        out: out.to_owned(),
        terminal,
        judgement,
    })
}

/// Runs `plan.warmup` unjudged iterations of each branch, alternating, into
/// `warmup-W` folders. Their outcome is not evidence: a failure there is
/// returned as a line for the reports and left to the measured iterations
/// to show (with their retries), except an input error, which no iteration
/// can get past.
async fn warm_up(
    plan: &MeasurePlan<'_>,
    runs: &[BranchRun<'_>; 2],
    events: &mpsc::UnboundedSender<runner::RunEvent>,
) -> Result<Vec<String>, CommandError> {
    let mut failed = Vec::new();
    for w in 1..=plan.warmup {
        for run in runs {
            if plan.cancel.is_cancelled() {
                return Ok(failed);
            }
            let record =
                runner::run_iteration(plan.settings, run.warmup_plan(w), plan.groups, events).await;
            match record.failure {
                Some(failure) if failure.is_input_error() => {
                    return Err(CommandError::Usage(failure.to_string()));
                }
                Some(failure) => failed.push(format!(
                    "{} warmup-{w} failed and was not judged: {failure}",
                    run.name
                )),
                None => {}
            }
        }
    }
    Ok(failed)
}
