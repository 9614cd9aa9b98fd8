//! `soak`: A/B soak tests and a performance regression gate.
//!
//! Thin on purpose: flags become validated options, the library runs them,
//! and this file picks the exit code (0 pass, 1 failed, 2 usage, 3
//! infrastructure, 130 interrupted).

// The binary is where results meet the terminal; the library never prints.
#![allow(clippy::print_stdout)]

use std::{path::PathBuf, process::ExitCode, time::Duration};

use clap::{Args, Parser, Subcommand};
use soakgate::{
    ab::{
        gate_config::{self, GateConfig},
        shard::Shard,
    },
    commands::{
        self, CommandError, Common,
        ab::{AbOptions, AbOutcome, Iterations},
        run::RunOptions,
    },
    process::ProcessGroups,
    reporter,
    runner::RunVerdict,
    stats::{Alpha, GateMode, LookSchedule, OnCannotTell},
};
use tokio_util::sync::CancellationToken;

#[derive(Debug, Parser)]
#[command(
    name = "soak",
    version,
    about = "A/B soak tests and a performance regression gate"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the scenario on one branch: fresh testnet and peers per iteration.
    Run(RunArgs),
    /// Compare two branches (git refs, directories, or built-in variants),
    /// interleaved, and gate on the verdict. With no branches: the shipped
    /// proof check (pairwise) against the deduplicated one (across).
    Ab(Box<AbArgs>),
    /// Re-judge an existing `soak ab` run folder without running anything.
    Gate(GateArgs),
    /// Combine the shards of one `soak ab --shard I/N` run into one folder
    /// and judge it, each shard's runner as a block.
    Merge(MergeArgs),
    /// Find the first commit between --good and --bad at which the gate
    /// fails on one metric or assertion (each probe a `soak ab` against
    /// the good commit).
    Bisect(Box<BisectArgs>),
    /// Measure the gate's false-alarm rate and power by resampling the
    /// iterations of one variant (an A/A `soak ab` or `soak run --iterations N`).
    Power(PowerArgs),
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("target").required(true).args(["metric", "assertion"])))]
struct BisectArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    gate: GateFlags,
    /// A commit where the gate passes (the baseline of every probe).
    #[arg(long)]
    good: String,
    /// A later commit where it fails.
    #[arg(long)]
    bad: String,
    /// The metric that regressed: `total`, a section (`C.2` or `§C.2 Bob pays`), or any metric name the reports show.
    #[arg(long)]
    metric: Option<String>,
    /// The assertion that broke, by name.
    #[arg(long)]
    assertion: Option<String>,
    /// Build command run in each probed checkout (default: cargo build --release -p sphere-sdk).
    #[arg(long)]
    build_cmd: Option<String>,
    /// Peer command, relative to each checkout.
    #[arg(long)]
    peer_cmd: Option<String>,
    /// Iterations per side of each probe: `auto` (look at 3, 5, 8, 10 and
    /// stop once the target is decided) or a fixed number.
    #[arg(long, default_value = "auto", allow_negative_numbers = true)]
    iterations: String,
    /// Unjudged warm-up iterations per branch before each probe's first block.
    #[arg(long, default_value_t = commands::ab::DEFAULT_WARMUP, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10))]
    warmup: usize,
}

#[derive(Debug, Args)]
struct MergeArgs {
    /// The shard folders (`soak ab --shard I/N --out DIR` of each shard).
    #[arg(required = true, num_args = 1..)]
    shard_dirs: Vec<PathBuf>,
    /// The merged run folder to write (new or empty).
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    gate: GateFlags,
    /// Print the verdict as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct PowerArgs {
    /// The run folder: an A/A `soak ab`, or `soak run --iterations N` (20 or more is best).
    run_dir: PathBuf,
    #[command(flatten)]
    gate: GateFlags,
    /// Resampled runs per iteration count.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    trials: usize,
    /// Seed of the resampling (the same seed gives the same table).
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    seed: u64,
}

#[derive(Debug, Args)]
struct GateFlags {
    /// Gate configuration (default: ci/gate.toml here, else the built-in one).
    #[arg(long)]
    gate_config: Option<PathBuf>,
    /// Override the gate mode.
    #[arg(long, value_parser = ["no-regression", "must-improve"])]
    mode: Option<String>,
    /// Override the minimum iterations per side.
    #[arg(long, allow_negative_numbers = true)]
    min_iterations: Option<usize>,
    /// Override the family-wise alpha.
    #[arg(long, allow_hyphen_values = true)]
    alpha: Option<f64>,
    /// Override the noise band of wall times (e.g. 0.05); passes are then
    /// bounded by it too, unless --pass-bound-time is given.
    #[arg(long, allow_hyphen_values = true)]
    noise_band_time: Option<f64>,
    /// Override the noise band of RSS.
    #[arg(long, allow_hyphen_values = true)]
    noise_band_rss: Option<f64>,
    /// Override how far a pass must rule out slowdowns of wall time (e.g.
    /// 0.08; never less than the noise band).
    #[arg(long, allow_hyphen_values = true)]
    pass_bound_time: Option<f64>,
    /// Override the absolute floor of wall times, in milliseconds.
    #[arg(long, allow_hyphen_values = true)]
    floor_time_ms: Option<f64>,
    /// What the gate does when it cannot tell: fail (exit 1) or warn (exit 0).
    #[arg(long, value_parser = ["fail", "warn"])]
    on_inconclusive: Option<String>,
}

impl GateFlags {
    /// The gate file with the flags on top, checked as a whole by
    /// [`GateConfig::validate`]: the file was valid on its own, so a value
    /// refused now came from a flag, and the message names that flag.
    fn resolve(&self) -> Result<GateConfig, CommandError> {
        let mut config = GateConfig::load(self.gate_config.as_deref())
            .map_err(|e| CommandError::Usage(e.to_string()))?;
        if let Some(mode) = &self.mode {
            config.mode = if mode == "must-improve" {
                GateMode::MustImprove
            } else {
                GateMode::NoRegression
            };
        }
        if let Some(n) = self.min_iterations {
            config.min_iterations = n;
        }
        if let Some(alpha) = self.alpha {
            config.alpha = alpha;
        }
        if let Some(band) = self.noise_band_time {
            // A band given here replaces the file's whole idea of tolerance:
            // a pass bound kept from the file would quietly loosen a band
            // tightened on the command line.
            config.noise_band.time = band;
            config.pass_bound.time = None;
        }
        if let Some(band) = self.noise_band_rss {
            config.noise_band.rss = band;
        }
        if let Some(pass) = self.pass_bound_time {
            config.pass_bound.time = Some(pass);
        }
        if let Some(floor) = self.floor_time_ms {
            config.floor.time_ms = floor;
        }
        if let Some(on) = &self.on_inconclusive {
            config.on_inconclusive = if on == "warn" {
                OnCannotTell::Warn
            } else {
                OnCannotTell::Fail
            };
        }
        config
            .validate()
            .map_err(|e| CommandError::Usage(e.as_flag()))?;
        Ok(config)
    }
}

#[derive(Debug, Args)]
struct AbArgs {
    #[command(flatten)]
    common: CommonArgs,
    #[command(flatten)]
    gate: GateFlags,
    /// Baseline: a git ref of this repository, or a directory with a checkout.
    #[arg(long)]
    baseline: Option<String>,
    /// Treatment: a git ref of this repository, or a directory with a checkout.
    #[arg(long)]
    treatment: Option<String>,
    /// Build command run in each branch's checkout (default: cargo build --release -p sphere-sdk).
    #[arg(long)]
    build_cmd: Option<String>,
    /// Peer command (relative to each checkout for built branches).
    #[arg(long)]
    peer_cmd: Option<String>,
    /// Extra environment for the baseline's peers; repeatable.
    #[arg(long = "baseline-env", value_name = "KEY=VALUE")]
    baseline_env: Vec<String>,
    /// Extra environment for the treatment's peers; repeatable.
    #[arg(long = "treatment-env", value_name = "KEY=VALUE")]
    treatment_env: Vec<String>,
    /// Iterations per side: `auto` (look at 3, 5, 8, 10 and stop once every
    /// gated metric is decided) or a fixed number.
    #[arg(long, default_value = "auto", allow_negative_numbers = true)]
    iterations: String,
    /// Run shard I of N of this comparison (e.g. one job of a CI matrix):
    /// its own complete ABBA blocks with a fixed --iterations per side.
    /// The shard's exit is 0 once it has measured; `soak merge` judges.
    #[arg(long, value_name = "I/N")]
    shard: Option<String>,
    /// Unjudged warm-up iterations per branch, run (alternating) before the
    /// first measured block and kept in `warmup-W` folders.
    #[arg(long, default_value_t = commands::ab::DEFAULT_WARMUP, value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(0..=10))]
    warmup: usize,
}

#[derive(Debug, Args)]
struct GateArgs {
    /// The run folder `soak ab` wrote.
    run_dir: PathBuf,
    #[command(flatten)]
    gate: GateFlags,
    /// Print the verdict as JSON on stdout.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct CommonArgs {
    /// Scenario file (default: the built-in pay-sync-clear-recover scenario).
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Override a scenario parameter, e.g. `--set bundles=5`; repeatable.
    #[arg(long = "set", value_name = "NAME=VALUE")]
    set: Vec<String>,
    /// Testnet command (default: the workspace's sphere-testnet next to soak).
    #[arg(long)]
    testnet_cmd: Option<String>,
    /// Network profile passed to the testnet (quick, ci, realistic, lossy, ideal, or a file).
    #[arg(long, default_value = "quick")]
    profile: String,
    /// Run folder (default: `soak-runs/<timestamp>`).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep each iteration's workspace (the daemons' on-disk state).
    #[arg(long)]
    keep: bool,
    /// Turn on the peers' perf counters.
    #[arg(long)]
    perf: bool,
    /// Perf counter window asked of the peers, in milliseconds (with --perf).
    #[arg(
        long,
        default_value_t = 1000,
        allow_negative_numbers = true,
        requires = "perf"
    )]
    perf_window_ms: u64,
    /// Sampling interval in milliseconds.
    #[arg(long, default_value_t = 1000, allow_negative_numbers = true)]
    interval_ms: u64,
    /// Leave samples of the first SECONDS (times the network's time scale) out of averages.
    #[arg(long, default_value_t = 30.0, allow_hyphen_values = true)]
    start_skip: f64,
    /// Flag runs where other processes used more than this share of the machine.
    #[arg(long, default_value_t = 0.25, allow_hyphen_values = true)]
    contamination_threshold: f64,
    /// Cap every step's timeout (milliseconds); for tests and quick checks.
    #[arg(long, hide = true, allow_negative_numbers = true)]
    step_timeout_ms: Option<u64>,
    /// How long the testnet and peers may take to get ready (milliseconds).
    #[arg(long, default_value_t = 30_000, allow_negative_numbers = true)]
    ready_timeout_ms: u64,
    /// Print only the final result.
    #[arg(long)]
    quiet: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

/// Most milliseconds a sampling interval or perf window may be: an hour
/// (one sample per run at most is already useless).
const MAX_INTERVAL_MS: u64 = 3_600_000;
/// Most milliseconds a timeout may be: a day. More is a typo, and close
/// to `u64::MAX` it would overflow the clock arithmetic.
const MAX_TIMEOUT_MS: u64 = 86_400_000;
/// Most seconds `--start-skip` may be: a day.
const MAX_START_SKIP_S: f64 = 86_400.0;
/// Most iterations `soak run` and `soak ab` accept (each a fresh testnet).
const MAX_ITERATIONS: usize = 1000;
/// Most resampled runs `soak power` accepts per iteration count.
const MAX_TRIALS: usize = 1_000_000;

/// What each numeric flag takes. One wording whether clap cannot parse the
/// value (`abc`, `-1` for a count, too many digits) or it parses but is out
/// of range, so a person sees the same fix either way.
fn expectation(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "--interval-ms" => "whole milliseconds from 1 to 3600000, e.g. 1000",
        "--perf-window-ms" => "whole milliseconds from 1 to 3600000, e.g. 1000",
        "--ready-timeout-ms" => "whole milliseconds from 1 to 86400000, e.g. 30000",
        "--step-timeout-ms" => "whole milliseconds from 1 to 86400000, e.g. 10000",
        "--start-skip" => "seconds from 0 to 86400, e.g. 30",
        "--contamination-threshold" => "a share between 0 and 1, e.g. 0.25",
        // `soak ab --iterations` is text (it takes `auto`); this is `soak run`'s.
        "--iterations" => "a number of iterations from 1 to 1000, e.g. 3",
        "--trials" => "a number of resampled runs from 10 to 1000000, e.g. 1000",
        "--seed" => "a whole number from 0 to 18446744073709551615, e.g. 1",
        other => return gate_config::flag_expectation(other),
    })
}

/// What `soak ab --iterations` takes (it is text: `auto` or a number).
const AB_ITERATIONS: &str = "`auto` or a number of iterations per side from 2 to 1000, e.g. 5";

/// What the other flags that take a value expect, for a flag given
/// without one.
fn value_hint(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "--out" => "a new folder, e.g. soak-runs/try-1",
        "--scenario" => "a scenario file, e.g. scenarios/smoke.toml",
        "--set" => "name=value, e.g. bundles=5",
        "--profile" => "quick, ci, realistic, lossy, ideal, or a profile file",
        "--gate-config" => "a gate configuration file, e.g. ci/gate.toml",
        "--peer-cmd" | "--testnet-cmd" | "--build-cmd" => {
            "a command line, e.g. \"python3 peer.py\""
        }
        "--baseline" | "--treatment" => "a git ref or a checkout folder, e.g. main",
        "--peer-env" | "--baseline-env" | "--treatment-env" => "KEY=VALUE, e.g. SPHERE_FANOUT=8",
        "--mode" => "no-regression or must-improve",
        "--on-inconclusive" => "fail or warn",
        _ => return None,
    })
}

/// `--flag `value`: expected ...`, the one shape of a bad flag value.
fn bad_value(flag: &str, value: impl std::fmt::Display) -> CommandError {
    let expected = expectation(flag).unwrap_or("another value");
    CommandError::Usage(format!("{flag} `{value}`: expected {expected}"))
}

/// A number as typed: `5`, `0.25`, `NaN`, `1e300` (not 300 digits).
fn show(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:?}")
    }
}

/// Milliseconds in `1..=max`.
fn millis(flag: &str, ms: u64, max: u64) -> Result<Duration, CommandError> {
    if (1..=max).contains(&ms) {
        Ok(Duration::from_millis(ms))
    } else {
        Err(bad_value(flag, ms))
    }
}

impl CommonArgs {
    /// Checks every flag's value; the first bad one is the error.
    fn into_common(self) -> Result<Common, CommandError> {
        // `contains` is false for NaN, so NaN is refused with the rest.
        if !(0.0..=MAX_START_SKIP_S).contains(&self.start_skip) {
            return Err(bad_value("--start-skip", show(self.start_skip)));
        }
        if !(0.0..=1.0).contains(&self.contamination_threshold) {
            return Err(bad_value(
                "--contamination-threshold",
                show(self.contamination_threshold),
            ));
        }
        let interval = millis("--interval-ms", self.interval_ms, MAX_INTERVAL_MS)?;
        let perf_window = millis("--perf-window-ms", self.perf_window_ms, MAX_INTERVAL_MS)?;
        let ready_timeout = millis("--ready-timeout-ms", self.ready_timeout_ms, MAX_TIMEOUT_MS)?;
        let step_timeout = self
            .step_timeout_ms
            .map(|ms| millis("--step-timeout-ms", ms, MAX_TIMEOUT_MS))
            .transpose()?;
        if self.profile.trim().is_empty() {
            return Err(CommandError::Usage(format!(
                "--profile `{}`: expected a network profile (quick, ci, realistic, lossy, ideal) or a profile file",
                self.profile
            )));
        }
        Ok(Common {
            scenario: self.scenario,
            set: self.set,
            testnet_cmd: self.testnet_cmd,
            profile: self.profile,
            out: self.out,
            keep: self.keep,
            perf: self.perf,
            perf_window,
            interval,
            start_skip: Duration::from_secs_f64(self.start_skip),
            contamination_threshold: self.contamination_threshold,
            step_timeout,
            ready_timeout,
            quiet: self.quiet,
            json: self.json,
        })
    }
}

#[derive(Debug, Args)]
struct RunArgs {
    #[command(flatten)]
    common: CommonArgs,
    /// Peer command (default: the workspace's sphere-peer next to soak).
    #[arg(long)]
    peer_cmd: Option<String>,
    /// Iterations to run.
    #[arg(long, default_value_t = 1, allow_negative_numbers = true)]
    iterations: usize,
    /// Extra environment for the peers, e.g. `--peer-env SPHERE_FANOUT=8`; repeatable.
    #[arg(long = "peer-env", value_name = "KEY=VALUE")]
    peer_env: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .init();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => return flag_error(&error),
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("soak: cannot start the async runtime: {error}");
            return ExitCode::from(exit_codes::INFRASTRUCTURE);
        }
    };
    let code = runtime.block_on(dispatch(cli.command));
    runtime.shutdown_timeout(Duration::from_secs(2));
    ExitCode::from(code)
}

async fn dispatch(command: Command) -> u8 {
    let cancel = CancellationToken::new();
    let groups = ProcessGroups::default();
    spawn_signal_handler(cancel.clone(), groups.clone());
    let result = match command {
        Command::Run(args) => run(args, cancel, groups.clone()).await,
        Command::Ab(args) => ab(*args, cancel, groups.clone()).await,
        Command::Gate(args) => gate(args),
        Command::Merge(args) => merge(args),
        Command::Bisect(args) => bisect(*args, cancel, groups.clone()).await,
        Command::Power(args) => power(args),
    };
    // Whatever happened, no child outlives soak.
    groups.kill_all();
    match result {
        Ok(code) => code,
        Err(CommandError::Usage(message)) => {
            eprintln!("soak: {message}");
            exit_codes::USAGE
        }
        Err(CommandError::Infrastructure(message) | CommandError::Io(message)) => {
            eprintln!("soak: {message}");
            exit_codes::INFRASTRUCTURE
        }
        Err(CommandError::Interrupted(message)) => {
            eprintln!("soak: {message}");
            exit_codes::INTERRUPTED
        }
    }
}

/// A flag clap refused, as one line naming the flag, the value and the
/// fix (clap's own text spans several lines with usage and tips); `--help`
/// and `--version` print as clap prints them.
fn flag_error(error: &clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match error.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = error.print();
            ExitCode::SUCCESS
        }
        _ => {
            eprintln!("soak: {}", flag_error_line(error));
            ExitCode::from(exit_codes::USAGE)
        }
    }
}

/// The text of [`flag_error`].
fn flag_error_line(error: &clap::Error) -> String {
    use clap::error::{ContextKind, ContextValue, ErrorKind};
    let get = |kind: ContextKind| -> Option<String> {
        match error.get(kind)? {
            ContextValue::String(text) => Some(text.clone()),
            ContextValue::Strings(texts) => Some(texts.join(", ")),
            ContextValue::StyledStr(text) => Some(text.to_string()),
            ContextValue::StyledStrs(texts) => Some(
                texts
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; "),
            ),
            ContextValue::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    // `--interval-ms <INTERVAL_MS>` -> `--interval-ms`.
    let arg = get(ContextKind::InvalidArg)
        .map(|a| a.split_whitespace().next().unwrap_or_default().to_owned())
        .unwrap_or_default();
    let value = get(ContextKind::InvalidValue).unwrap_or_default();
    // `args_os`: `args` panics on an argument that is not UTF-8, and this
    // is the path that reports such an argument.
    let command = std::env::args_os()
        .nth(1)
        .and_then(|c| c.into_string().ok())
        .filter(|c| ["run", "ab", "gate", "power"].contains(&c.as_str()));
    let help = match &command {
        Some(command) => format!("`soak {command} --help` lists its flags"),
        None => "`soak --help` lists the commands".to_owned(),
    };
    let expected = match (command.as_deref(), arg.as_str()) {
        (Some("ab"), "--iterations") => Some(AB_ITERATIONS),
        _ => expectation(&arg).or_else(|| value_hint(&arg)),
    };
    const RUN_DIR: &str = "missing the run folder: give the folder `soak ab` or `soak run` wrote, e.g. soak-runs/20261125T190000Z";
    match error.kind() {
        ErrorKind::InvalidValue if value.is_empty() && arg == "<RUN_DIR>" => RUN_DIR.to_owned(),
        ErrorKind::InvalidValue if value.is_empty() => match expected {
            Some(expected) => format!("{arg} needs a value: {expected}"),
            None => format!("{arg} needs a value; {help}"),
        },
        ErrorKind::InvalidValue => match get(ContextKind::ValidValue) {
            Some(valid) => format!("{arg} `{value}`: expected one of {valid}"),
            None => format!("{arg} `{value}`: not a value it takes; {help}"),
        },
        ErrorKind::ValueValidation => match expected {
            Some(expected) => format!("{arg} `{value}`: expected {expected}"),
            None => {
                let reason = std::error::Error::source(error)
                    .map(ToString::to_string)
                    .unwrap_or_else(|| "not a value it takes".into());
                format!("{arg} `{value}`: {reason}")
            }
        },
        ErrorKind::UnknownArgument => {
            let what = if arg.starts_with('-') {
                format!("unknown flag `{arg}`")
            } else {
                format!("unexpected argument `{arg}`")
            };
            match get(ContextKind::SuggestedArg) {
                Some(similar) => format!("{what} (did you mean `{similar}`?); {help}"),
                None => format!("{what}; {help}"),
            }
        }
        ErrorKind::InvalidSubcommand => {
            let given = get(ContextKind::InvalidSubcommand).unwrap_or_default();
            format!("unknown command `{given}`: expected run, ab, gate or power; {help}")
        }
        ErrorKind::MissingSubcommand | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            "give a command: run, ab, gate or power (`soak --help` describes them)".to_owned()
        }
        ErrorKind::MissingRequiredArgument => {
            let missing = get(ContextKind::InvalidArg).unwrap_or_default();
            if missing
                .split(", ")
                .any(|m| m.starts_with("--perf ") || m == "--perf")
            {
                "--perf-window-ms sets the window of the perf counters, which are off: add --perf, or drop --perf-window-ms".to_owned()
            } else if missing.contains("<RUN_DIR>") {
                RUN_DIR.to_owned()
            } else {
                format!("missing {missing} (needed by the flags given); {help}")
            }
        }
        ErrorKind::ArgumentConflict => {
            let prior = get(ContextKind::PriorArg).unwrap_or_default();
            if prior.split_whitespace().next() == Some(arg.as_str()) {
                format!("{arg} is given twice; give it once")
            } else {
                format!("{arg} cannot be used with {prior}; {help}")
            }
        }
        ErrorKind::TooManyValues => format!("{arg} takes no value, got `{value}`; {help}"),
        ErrorKind::InvalidUtf8 => {
            // Clap does not say which argument; the flag before the first
            // one that is not UTF-8 is the one that took it.
            let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
            let bad = args.iter().position(|a| a.to_str().is_none());
            let flag = bad
                .and_then(|i| i.checked_sub(1))
                .and_then(|i| args[i].to_str())
                .filter(|f| f.starts_with("--"));
            match flag {
                Some(flag) => format!("{flag}: the value is not valid UTF-8 text; {help}"),
                None => format!("an argument is not valid UTF-8 text; {help}"),
            }
        }
        _ => {
            // Clap's first line, without its `error: ` prefix and styling.
            let text = error.kind().to_string();
            format!("{}; {help}", text.trim())
        }
    }
}

async fn run(
    args: RunArgs,
    cancel: CancellationToken,
    groups: ProcessGroups,
) -> Result<u8, CommandError> {
    let json = args.common.json;
    let quiet = args.common.quiet;
    if !(1..=MAX_ITERATIONS).contains(&args.iterations) {
        return Err(bad_value("--iterations", args.iterations));
    }
    let options = RunOptions {
        common: args.common.into_common()?,
        peer_cmd: args.peer_cmd,
        iterations: args.iterations,
        peer_env: args.peer_env,
    };
    let outcome = commands::run::run(options, cancel, groups).await?;
    if json {
        let summary = serde_json::json!({
            "exit_code": exit_codes::for_run(outcome.verdict),
            "out": outcome.out,
            "iterations": outcome.records,
        });
        println!("{summary}");
    } else if !quiet {
        print!("{}", reporter::section_table(&outcome.records));
    }
    let code = exit_codes::for_run(outcome.verdict);
    let word = match outcome.verdict {
        RunVerdict::Passed => "PASS",
        RunVerdict::Failed => "FAIL",
        RunVerdict::Interrupted => "INTERRUPTED",
        RunVerdict::Infrastructure | RunVerdict::InputError => "ERROR",
    };
    // A usage error found while running (an op the peer does not offer,
    // a profile the testnet refuses) is one line, as any usage error is;
    // nothing was measured that the folder would show.
    let input_error = outcome
        .records
        .iter()
        .find_map(|r| r.failure.as_ref().filter(|f| f.is_input_error()));
    match input_error {
        Some(failure) => eprintln!("soak: {failure}"),
        None if !json => eprintln!("soak run: {word}; run folder {}", outcome.out.display()),
        None => {}
    }
    Ok(code)
}

/// `--iterations` of `soak ab` and `soak bisect`: `auto` or a number.
fn parse_ab_iterations(text: &str) -> Result<Iterations, CommandError> {
    match text.trim() {
        "auto" => Ok(Iterations::Auto),
        number => match number.parse::<usize>() {
            Ok(n) if (2..=MAX_ITERATIONS).contains(&n) => Ok(Iterations::Fixed(n)),
            _ => Err(CommandError::Usage(format!(
                "--iterations `{text}`: expected {AB_ITERATIONS}"
            ))),
        },
    }
}

async fn ab(
    args: AbArgs,
    cancel: CancellationToken,
    groups: ProcessGroups,
) -> Result<u8, CommandError> {
    let json = args.common.json;
    let quiet = args.common.quiet;
    // Refused here, before a scenario is read or a folder made: half a pair
    // would otherwise be noticed only after loading everything else.
    match (&args.baseline, &args.treatment) {
        (Some(_), None) => {
            return Err(CommandError::Usage(
                "--baseline without --treatment: give both, or neither (to compare built-in variants)"
                    .into(),
            ));
        }
        (None, Some(_)) => {
            return Err(CommandError::Usage(
                "--treatment without --baseline: give both, or neither (to compare built-in variants)"
                    .into(),
            ));
        }
        (None, None) if args.build_cmd.is_some() => {
            return Err(CommandError::Usage(format!(
                "--build-cmd `{}` builds --baseline and --treatment, and neither is given (built-in variants are not built): drop it, or name both branches",
                args.build_cmd.as_deref().unwrap_or_default()
            )));
        }
        _ => {}
    }
    let iterations = parse_ab_iterations(&args.iterations)?;
    let shard = match args.shard.as_deref() {
        None => None,
        Some(text) => Some(
            text.parse::<Shard>()
                .map_err(|e| CommandError::Usage(e.to_string()))?,
        ),
    };
    if shard.is_some() && iterations == Iterations::Auto {
        return Err(CommandError::Usage(
            "--shard needs a fixed --iterations N (each shard runs N per side; stopping early is decided on the merged run), e.g. --iterations 3".into(),
        ));
    }
    let common = args.common.into_common()?;
    let gate = args.gate.resolve()?;
    // Checked before anything runs: a plan the gate would refuse to judge
    // costs minutes of builds and iterations otherwise.
    let alpha = Alpha::new(gate.alpha).map_err(|e| CommandError::Usage(e.to_string()))?;
    let cap = LookSchedule::standard(alpha).cap();
    match iterations {
        Iterations::Fixed(n) if n < gate.min_iterations => {
            return Err(CommandError::Usage(format!(
                "--iterations `{n}` is below the gate's min_iterations ({}): the gate would refuse to judge; run more, or lower --min-iterations",
                gate.min_iterations
            )));
        }
        Iterations::Auto if gate.min_iterations > cap => {
            return Err(CommandError::Usage(format!(
                "--min-iterations `{}` is more than --iterations auto runs ({cap} per side at most): lower it, or pass --iterations {}",
                gate.min_iterations, gate.min_iterations
            )));
        }
        _ => {}
    }
    let options = AbOptions {
        gate,
        common,
        baseline: args.baseline,
        treatment: args.treatment,
        build_cmd: args.build_cmd,
        peer_cmd: args.peer_cmd,
        baseline_env: args.baseline_env,
        treatment_env: args.treatment_env,
        iterations,
        shard,
        warmup: args.warmup,
    };
    let outcome = commands::ab::run(options, cancel, groups).await?;
    let code = finish("soak ab", &outcome, json, quiet);
    match shard {
        // A shard is part of the evidence: its own verdict decides nothing.
        Some(shard) => {
            let code = exit_codes::for_shard(&outcome.judgement.gate);
            if code == exit_codes::PASS && !json {
                eprintln!(
                    "soak ab: shard {shard} measured; judge all shards with `soak merge SHARD_DIR... --out DIR`"
                );
            }
            Ok(code)
        }
        None => Ok(code),
    }
}

fn gate(args: GateArgs) -> Result<u8, CommandError> {
    let config = args.gate.resolve()?;
    commands::check_run_dir(&args.run_dir)?;
    let outcome = commands::gate::run(&args.run_dir, &config, args.gate.alpha)?;
    Ok(finish("soak gate", &outcome, args.json, false))
}

async fn bisect(
    args: BisectArgs,
    cancel: CancellationToken,
    groups: ProcessGroups,
) -> Result<u8, CommandError> {
    use commands::bisect::{BisectOptions, Call, Target};
    let iterations = parse_ab_iterations(&args.iterations)?;
    let target = match (args.metric, args.assertion) {
        (Some(metric), None) => Target::Metric(metric),
        (None, Some(assertion)) => Target::Assertion(assertion),
        // clap's group makes it exactly one.
        _ => {
            return Err(CommandError::Usage(
                "give one of --metric or --assertion".into(),
            ));
        }
    };
    let json = args.common.json;
    let options = BisectOptions {
        common: args.common.into_common()?,
        gate: args.gate.resolve()?,
        good: args.good,
        bad: args.bad,
        target,
        build_cmd: args.build_cmd,
        peer_cmd: args.peer_cmd,
        iterations,
        warmup: args.warmup,
    };
    let outcome = commands::bisect::run(options, cancel, groups).await?;
    if json {
        println!("{}", serde_json::to_string(&outcome).unwrap_or_default());
    } else {
        print!("{}", outcome.terminal);
        println!("bisect path ({} commits after --good):", outcome.commits);
        for (step, probe) in outcome.path.iter().enumerate() {
            let call = match probe.call {
                Call::Bad => "bad",
                Call::Good => "good",
                Call::CannotTell => "cannot tell",
            };
            println!(
                "  {}. {} {:<11} {} ({} per side): {}",
                step + 1,
                &probe.commit[..probe.commit.len().min(7)],
                call,
                probe.subject,
                probe.iterations,
                probe.evidence
            );
        }
        match (&outcome.culprit, &outcome.stopped) {
            (Some(culprit), _) => println!(
                "first bad commit: {} {}
  {}",
                culprit.commit, culprit.subject, culprit.evidence
            ),
            (None, Some(why)) => eprintln!("soak bisect: {why}"),
            (None, None) => {}
        }
        eprintln!("soak bisect: probes in {}", outcome.out.display());
    }
    Ok(exit_codes::for_bisect(outcome.culprit.is_some()))
}

fn merge(args: MergeArgs) -> Result<u8, CommandError> {
    let options = commands::merge::MergeOptions {
        gate: args.gate.resolve()?,
        alpha: args.gate.alpha,
        shards: args.shard_dirs,
        out: args.out,
    };
    let outcome = commands::merge::run(&options)?;
    Ok(finish("soak merge", &outcome, args.json, false))
}

fn power(args: PowerArgs) -> Result<u8, CommandError> {
    if !(10..=MAX_TRIALS).contains(&args.trials) {
        return Err(bad_value("--trials", args.trials));
    }
    let gate = args.gate.resolve()?;
    commands::check_run_dir(&args.run_dir)?;
    let options = commands::power::PowerOptions {
        dir: args.run_dir,
        gate,
        trials: args.trials,
        seed: args.seed,
    };
    let outcome = commands::power::run(&options)?;
    let table = commands::power::write_all(&options, &outcome)?;
    print!("{table}");
    println!(
        "\nsuggested gate configuration:\n{}",
        outcome.suggestion.toml
    );
    eprintln!(
        "soak power: power.tsv, power.html and gate-suggested.toml in {}",
        options.dir.display()
    );
    Ok(exit_codes::PASS)
}

fn finish(what: &str, outcome: &AbOutcome, json: bool, quiet: bool) -> u8 {
    if json {
        println!(
            "{}",
            serde_json::to_string(&outcome.judgement).unwrap_or_default()
        );
    } else if !quiet {
        print!("{}", outcome.terminal);
    }
    if !json {
        eprintln!("{what}: reports in {}", outcome.out.display());
    }
    exit_codes::for_gate(&outcome.judgement.gate)
}

/// The exit codes, decided here and nowhere else: 0 pass, 1 gate or
/// assertion failed, 2 usage or input error, 3 infrastructure failure, 130
/// interrupted.
mod exit_codes {
    use soakgate::{
        runner::RunVerdict,
        stats::{GateOutcome, GateStatus},
    };

    /// Everything passed.
    pub(crate) const PASS: u8 = 0;
    /// An assertion or step failed, or the gate failed.
    pub(crate) const FAILED: u8 = 1;
    /// Bad usage or input (flags, scenario file, profile).
    pub(crate) const USAGE: u8 = 2;
    /// Infrastructure failure (build, crash, hang, timeout).
    pub(crate) const INFRASTRUCTURE: u8 = 3;
    /// Interrupted by Ctrl-C or SIGTERM.
    pub(crate) const INTERRUPTED: u8 = 130;

    /// The exit code of `soak run`'s iterations.
    pub(crate) fn for_run(verdict: RunVerdict) -> u8 {
        match verdict {
            RunVerdict::Passed => PASS,
            RunVerdict::Failed => FAILED,
            RunVerdict::Infrastructure => INFRASTRUCTURE,
            RunVerdict::InputError => USAGE,
            RunVerdict::Interrupted => INTERRUPTED,
        }
    }

    /// The exit code of one shard: it measured (0), or it could not
    /// (infrastructure, interrupted); its partial verdict is the merge's to
    /// make.
    pub(crate) fn for_shard(outcome: &GateOutcome) -> u8 {
        match outcome.status {
            GateStatus::Interrupted => INTERRUPTED,
            GateStatus::Infrastructure => INFRASTRUCTURE,
            _ => PASS,
        }
    }

    /// The exit code of a bisection: 0 when it named the first bad commit,
    /// 1 when it could not (the failure did not reproduce, or a probe could
    /// not tell).
    pub(crate) fn for_bisect(found: bool) -> u8 {
        if found { PASS } else { FAILED }
    }

    /// The exit code of a gate's outcome.
    pub(crate) fn for_gate(outcome: &GateOutcome) -> u8 {
        match outcome.status {
            GateStatus::Interrupted => INTERRUPTED,
            GateStatus::Infrastructure => INFRASTRUCTURE,
            _ if outcome.passed => PASS,
            _ => FAILED,
        }
    }
}

/// First Ctrl-C or SIGTERM: stop measuring, tear down, write what exists.
/// A second one: kill every child now.
fn spawn_signal_handler(cancel: CancellationToken, groups: ProcessGroups) {
    tokio::spawn(async move {
        use tokio::signal::unix::{SignalKind, signal};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            return;
        };
        for round in 0.. {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            if round == 0 {
                eprintln!(
                    "soak: interrupted; tearing down and writing what was measured (again to kill at once)"
                );
                cancel.cancel();
            } else {
                groups.kill_all();
                std::process::exit(i32::from(exit_codes::INTERRUPTED));
            }
        }
    });
}
