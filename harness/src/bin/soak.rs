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
    ab::gate_config::GateConfig,
    commands::{
        self, CommandError, Common,
        ab::{AbOptions, AbOutcome, Iterations},
        run::RunOptions,
    },
    process::ProcessGroups,
    reporter,
    runner::exit_codes,
    stats::{GateMode, OnCannotTell},
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
    /// Measure the gate's false-alarm rate and power by resampling the
    /// iterations of one variant (an A/A `soak ab` or `soak run --iterations N`).
    Power(PowerArgs),
}

#[derive(Debug, Args)]
struct PowerArgs {
    /// The run folder: an A/A `soak ab`, or `soak run --iterations N` (20 or more is best).
    run_dir: PathBuf,
    #[command(flatten)]
    gate: GateFlags,
    /// Resampled runs per iteration count.
    #[arg(long, default_value_t = 1000)]
    trials: usize,
    /// Seed of the resampling (the same seed gives the same table).
    #[arg(long, default_value_t = 1)]
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
    #[arg(long)]
    min_iterations: Option<usize>,
    /// Override the family-wise alpha.
    #[arg(long)]
    alpha: Option<f64>,
    /// Override the noise band of wall times (e.g. 0.05).
    #[arg(long)]
    noise_band_time: Option<f64>,
    /// Override the noise band of RSS.
    #[arg(long)]
    noise_band_rss: Option<f64>,
    /// Override the absolute floor of wall times, in milliseconds.
    #[arg(long)]
    floor_time_ms: Option<f64>,
    /// What the gate does when it cannot tell: fail (exit 1) or warn (exit 0).
    #[arg(long, value_parser = ["fail", "warn"])]
    on_inconclusive: Option<String>,
}

impl GateFlags {
    fn resolve(&self) -> Result<GateConfig, CommandError> {
        let mut config =
            GateConfig::load(self.gate_config.as_deref()).map_err(CommandError::Usage)?;
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
            config.noise_band.time = band;
        }
        if let Some(band) = self.noise_band_rss {
            config.noise_band.rss = band;
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
            .map_err(|e| CommandError::Usage(format!("gate: {e}")))?;
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
    #[arg(long, default_value = "auto")]
    iterations: String,
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
    /// Run folder (default: soak-runs/<timestamp>).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Keep each iteration's workspace (the daemons' on-disk state).
    #[arg(long)]
    keep: bool,
    /// Turn on the peers' perf counters.
    #[arg(long)]
    perf: bool,
    /// Perf counter window asked of the peers, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    perf_window_ms: u64,
    /// Sampling interval in milliseconds.
    #[arg(long, default_value_t = 1000)]
    interval_ms: u64,
    /// Leave samples of the first SECONDS (times the network's time scale) out of averages.
    #[arg(long, default_value_t = 30.0)]
    start_skip: f64,
    /// Flag runs where other processes used more than this share of the machine.
    #[arg(long, default_value_t = 0.25)]
    contamination_threshold: f64,
    /// Cap every step's timeout (milliseconds); for tests and quick checks.
    #[arg(long, hide = true)]
    step_timeout_ms: Option<u64>,
    /// How long the testnet and peers may take to get ready (milliseconds).
    #[arg(long, default_value_t = 30_000)]
    ready_timeout_ms: u64,
    /// Print only the final result.
    #[arg(long)]
    quiet: bool,
    /// Print the result as JSON on stdout.
    #[arg(long)]
    json: bool,
}

impl CommonArgs {
    fn into_common(self) -> Result<Common, CommandError> {
        if !(self.start_skip.is_finite() && self.start_skip >= 0.0) {
            return Err(CommandError::Usage(
                "--start-skip must be a number of seconds >= 0".into(),
            ));
        }
        if self.interval_ms == 0 {
            return Err(CommandError::Usage(
                "--interval-ms must be at least 1".into(),
            ));
        }
        Ok(Common {
            scenario: self.scenario,
            set: self.set,
            testnet_cmd: self.testnet_cmd,
            profile: self.profile,
            out: self.out,
            keep: self.keep,
            perf: self.perf,
            perf_window: Duration::from_millis(self.perf_window_ms.max(1)),
            interval: Duration::from_millis(self.interval_ms),
            start_skip: Duration::from_secs_f64(self.start_skip),
            contamination_threshold: self.contamination_threshold,
            step_timeout: self.step_timeout_ms.map(Duration::from_millis),
            ready_timeout: Duration::from_millis(self.ready_timeout_ms.max(1)),
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
    #[arg(long, default_value_t = 1)]
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
    let cli = Cli::parse();
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
        Err(CommandError::Infrastructure(message)) => {
            eprintln!("soak: {message}");
            exit_codes::INFRASTRUCTURE
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
    let options = RunOptions {
        common: args.common.into_common()?,
        peer_cmd: args.peer_cmd,
        iterations: args.iterations,
        peer_env: args.peer_env,
    };
    let outcome = commands::run::run(options, cancel, groups).await?;
    if json {
        let summary = serde_json::json!({
            "exit_code": outcome.exit_code,
            "out": outcome.out,
            "iterations": outcome.records,
        });
        println!("{summary}");
    } else if !quiet {
        print!("{}", reporter::section_table(&outcome.records));
    }
    let word = match outcome.exit_code {
        exit_codes::PASS => "PASS",
        exit_codes::FAILED => "FAIL",
        exit_codes::INTERRUPTED => "INTERRUPTED",
        _ => "ERROR",
    };
    if !json {
        eprintln!("soak run: {word}; run folder {}", outcome.out.display());
    }
    Ok(outcome.exit_code)
}

async fn ab(
    args: AbArgs,
    cancel: CancellationToken,
    groups: ProcessGroups,
) -> Result<u8, CommandError> {
    let json = args.common.json;
    let quiet = args.common.quiet;
    let iterations = match args.iterations.as_str() {
        "auto" => Iterations::Auto,
        text => match text.parse::<usize>() {
            Ok(n) if n >= 2 => Iterations::Fixed(n),
            _ => {
                return Err(CommandError::Usage(format!(
                    "--iterations `{text}`: expected a number of at least 2, or `auto`"
                )));
            }
        },
    };
    let options = AbOptions {
        gate: args.gate.resolve()?,
        common: args.common.into_common()?,
        baseline: args.baseline,
        treatment: args.treatment,
        build_cmd: args.build_cmd,
        peer_cmd: args.peer_cmd,
        baseline_env: args.baseline_env,
        treatment_env: args.treatment_env,
        iterations,
    };
    let outcome = commands::ab::run(options, cancel, groups).await?;
    Ok(finish("soak ab", &outcome, json, quiet))
}

fn gate(args: GateArgs) -> Result<u8, CommandError> {
    let config = args.gate.resolve()?;
    let outcome = commands::gate::run(&args.run_dir, &config, args.gate.alpha)?;
    Ok(finish("soak gate", &outcome, args.json, false))
}

fn power(args: PowerArgs) -> Result<u8, CommandError> {
    if args.trials < 10 {
        return Err(CommandError::Usage(
            "--trials must be at least 10 (1000 gives rates to about 1 %)".into(),
        ));
    }
    let options = commands::power::PowerOptions {
        dir: args.run_dir,
        gate: args.gate.resolve()?,
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
    outcome.exit_code
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
