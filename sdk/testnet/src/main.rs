//! `sphere-testnet`: the aggregator, IPFS gateway and Nostr relay of a local
//! testnet in one process. Prints one JSON ready line on stdout, logs on
//! stderr, and stops cleanly on SIGTERM or SIGINT.

use std::{io::Write, path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Parser;
use sphere_testnet::{NetworkProfile, RunningTestnet, ServicePorts, TestnetConfig};

/// Exit code for a bad flag or profile.
const EXIT_USAGE: u8 = 2;
/// Exit code when the services cannot start (port, data directory).
const EXIT_INFRASTRUCTURE: u8 = 3;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Network profile: a shipped name (realistic, ci, quick, lossy, ideal) or a TOML file.
    #[arg(long, default_value = "realistic")]
    profile: String,
    /// Seed for every random delay and fault (overrides the profile's).
    #[arg(long)]
    seed: Option<u64>,
    /// Multiply every delay and interval by this (overrides the profile's).
    #[arg(long)]
    time_scale: Option<f64>,
    /// Override any profile field, e.g. `--set gateway.rtt_ms=40`; repeatable.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Keep blocks and aggregator state here; in memory when absent.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// Fixed aggregator port (default: any free port).
    #[arg(long, default_value_t = 0)]
    aggregator_port: u16,
    /// Fixed gateway port (default: any free port).
    #[arg(long, default_value_t = 0)]
    gateway_port: u16,
    /// Fixed relay port (default: any free port).
    #[arg(long, default_value_t = 0)]
    relay_port: u16,
    /// Print the resolved profile as TOML and exit.
    #[arg(long)]
    print_profile: bool,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .json()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    let args = Args::parse();
    let profile = match load_profile(&args) {
        Ok(profile) => profile,
        Err(error) => {
            eprintln!("sphere-testnet: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    if args.print_profile {
        return match toml::to_string_pretty(&profile) {
            Ok(text) => match std::io::stdout().write_all(text.as_bytes()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(error) => {
                    eprintln!("sphere-testnet: cannot write to stdout: {error}");
                    ExitCode::from(EXIT_INFRASTRUCTURE)
                }
            },
            Err(error) => {
                eprintln!("sphere-testnet: {error}");
                ExitCode::from(EXIT_USAGE)
            }
        };
    }
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sphere-testnet: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_INFRASTRUCTURE);
        }
    };
    let config = TestnetConfig {
        profile,
        data_dir: args.data_dir,
        ports: ServicePorts {
            aggregator: args.aggregator_port,
            gateway: args.gateway_port,
            relay: args.relay_port,
        },
    };
    match runtime.block_on(run(config)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sphere-testnet: {error:#}");
            ExitCode::from(EXIT_INFRASTRUCTURE)
        }
    }
}

fn load_profile(args: &Args) -> anyhow::Result<NetworkProfile> {
    let mut overrides = args.overrides.clone();
    if let Some(seed) = args.seed {
        overrides.push(format!("seed={seed}"));
    }
    if let Some(scale) = args.time_scale {
        overrides.push(format!("time_scale={scale}"));
    }
    Ok(NetworkProfile::load(&args.profile, &overrides)?)
}

async fn run(config: TestnetConfig) -> anyhow::Result<()> {
    // Listen before announcing readiness: a SIGTERM sent right after the
    // ready line must stop us cleanly, not by the default action.
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let testnet = RunningTestnet::start(config).await?;
    let ready = serde_json::to_string(testnet.endpoints())?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{ready}").context("cannot write the ready line to stdout")?;
        stdout.flush().context("cannot flush stdout")?;
    }
    tokio::select! {
        _ = terminate.recv() => tracing::info!("SIGTERM: stopping"),
        _ = interrupt.recv() => tracing::info!("SIGINT: stopping"),
    }
    tracing::info!(metrics = %serde_json::to_string(&testnet.metrics())?, "network model totals");
    testnet.stop().await;
    Ok(())
}
