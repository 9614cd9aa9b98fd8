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
    commands::{self, CommandError, Common, run::RunOptions},
    process::ProcessGroups,
    reporter,
    runner::exit_codes,
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
    /// Network profile passed to the testnet (realistic, ci, lossy, ideal, or a file).
    #[arg(long, default_value = "ci")]
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
