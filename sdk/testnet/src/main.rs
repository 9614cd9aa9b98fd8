//! `sphere-testnet`: the aggregator, IPFS gateway and Nostr relay of a local
//! testnet in one process. Prints one JSON ready line on stdout, logs on
//! stderr, and stops cleanly on SIGTERM or SIGINT, and, with
//! `SPHERE_STOP_ON_STDIN_EOF=1`, when its stdin reaches end of input.

use std::{
    io::{Read, Write},
    path::PathBuf,
    process::ExitCode,
};

use anyhow::Context;
use clap::Parser;
use sphere_testnet::{NetworkProfile, RunningTestnet, ServicePorts, TestnetConfig};

/// Exit code for a bad flag or profile.
const EXIT_USAGE: u8 = 2;
/// Exit code when the services cannot start (port, data directory).
const EXIT_INFRASTRUCTURE: u8 = 3;

/// Set to `1`, the testnet stops as on SIGTERM when stdin reaches end of
/// input. A parent that pipes stdin to the testnet and sets this cannot
/// leave it running: however the parent dies, even by SIGKILL, the kernel
/// closes its end of the pipe.
const STOP_ON_STDIN_EOF: &str = "SPHERE_STOP_ON_STDIN_EOF";

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
    let stop_on_stdin_eof = match stop_on_stdin_eof(std::env::var_os(STOP_ON_STDIN_EOF)) {
        Ok(on) => on,
        Err(error) => {
            eprintln!("sphere-testnet: {error}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
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
    match runtime.block_on(run(config, stop_on_stdin_eof)) {
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

/// A bad value for [`STOP_ON_STDIN_EOF`].
#[derive(Debug, thiserror::Error)]
#[error("{STOP_ON_STDIN_EOF}=`{0}`: expected 1 or 0")]
struct BadStopOnStdinEof(String);

/// Whether [`STOP_ON_STDIN_EOF`] (its value, if set) asks to watch stdin.
fn stop_on_stdin_eof(value: Option<std::ffi::OsString>) -> Result<bool, BadStopOnStdinEof> {
    let Some(value) = value else {
        return Ok(false);
    };
    let text = value.to_string_lossy();
    match text.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        _ => Err(BadStopOnStdinEof(text.into_owned())),
    }
}

/// Resolves once stdin reaches end of input (or cannot be read at all).
///
/// Read on a plain thread, not tokio's stdin: a blocking read that never
/// returns would keep the runtime from shutting down after a signal, while
/// a plain thread simply ends with the process.
fn watch_stdin() -> anyhow::Result<tokio::sync::oneshot::Receiver<()>> {
    let (eof_tx, eof_rx) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("stdin-eof".into())
        .spawn(move || {
            let mut stdin = std::io::stdin().lock();
            let mut buffer = [0_u8; 4096];
            loop {
                match stdin.read(&mut buffer) {
                    Ok(0) => break,
                    // What the parent writes is not for us; only the end counts.
                    Ok(_) => {}
                    Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                    Err(error) => {
                        // No readable stdin means no parent to wait for either.
                        tracing::warn!(%error, "cannot read stdin: stopping as at end of input");
                        break;
                    }
                }
            }
            let _ = eof_tx.send(());
        })
        .context("cannot start the stdin watcher thread")?;
    Ok(eof_rx)
}

async fn run(config: TestnetConfig, stop_on_stdin_eof: bool) -> anyhow::Result<()> {
    // Listen before announcing readiness: a SIGTERM sent right after the
    // ready line must stop us cleanly, not by the default action.
    use tokio::signal::unix::{SignalKind, signal};
    let mut terminate = signal(SignalKind::terminate()).context("cannot listen for SIGTERM")?;
    let mut interrupt = signal(SignalKind::interrupt()).context("cannot listen for SIGINT")?;
    let stdin_eof = if stop_on_stdin_eof {
        Some(watch_stdin()?)
    } else {
        None
    };
    let stdin_eof = async move {
        match stdin_eof {
            // A dropped sender (the thread died) counts as end of input too.
            Some(eof) => {
                let _ = eof.await;
            }
            None => std::future::pending().await,
        }
    };
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
        () = stdin_eof => tracing::info!("end of stdin: stopping"),
    }
    tracing::info!(metrics = %serde_json::to_string(&testnet.metrics())?, "network model totals");
    testnet.stop().await;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_on_stdin_eof_is_off_unless_asked() {
        assert!(!stop_on_stdin_eof(None).unwrap());
        for on in ["1", "true", " ON "] {
            assert!(stop_on_stdin_eof(Some(on.into())).unwrap(), "{on}");
        }
        for off in ["0", "false", ""] {
            assert!(!stop_on_stdin_eof(Some(off.into())).unwrap(), "{off}");
        }
        let err = stop_on_stdin_eof(Some("maybe".into())).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SPHERE_STOP_ON_STDIN_EOF=`maybe`: expected 1 or 0"
        );
    }
}
