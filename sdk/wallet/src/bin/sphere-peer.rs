//! `sphere-peer`: hosts wallets of the sphere SDK and answers the peer
//! protocol (`docs/peer-protocol.md`): JSON requests on stdin, JSON
//! responses on stdout, JSON-line logs on stderr. Ends cleanly (flushing
//! every wallet) on `shutdown`, SIGTERM, SIGINT or end of input.

use std::{path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use anyhow::Context;
use clap::Parser;
use sphere_sdk::{
    config::{Timers, Variants},
    peer::{AfterResponse, Peer, protocol},
    perf,
    transport::{aggregator::AggregatorClient, gateway::GatewayClient},
    wallet::Services,
};
use tokio::{
    io::{AsyncBufReadExt, AsyncWriteExt, BufReader},
    sync::mpsc,
};

const EXIT_USAGE: u8 = 2;
const EXIT_INFRASTRUCTURE: u8 = 3;

#[derive(Debug, Parser)]
#[command(version, about)]
struct Args {
    /// Where wallets keep their local state (one directory each).
    #[arg(long)]
    data_dir: PathBuf,
    /// The aggregator's JSON-RPC URL.
    #[arg(long, env = "SPHERE_AGGREGATOR_URL")]
    aggregator_url: String,
    /// The IPFS gateway's URL.
    #[arg(long, env = "SPHERE_IPFS_GATEWAY")]
    ipfs_gateway: String,
    /// The Nostr relay's URL.
    #[arg(long, env = "SPHERE_NOSTR_RELAY")]
    nostr_relay: String,
    /// Multiply the SDK's own timers (debounce, polls, deadlines) by this;
    /// in (0, 1000].
    // Text, not `f64`: `Timers::parse` checks the range and refuses a bad
    // value in the one-line form every other setting uses.
    #[arg(long, env = "SPHERE_TIME_SCALE", default_value = "1")]
    time_scale: String,
    /// Record perf counters and dump them to stderr.
    #[arg(long, env = "SPHERE_PERF", value_parser = parse_flag, default_value = "0")]
    perf: bool,
    /// Perf dump interval in milliseconds.
    #[arg(long, env = "SPHERE_PERF_DUMP_MS", default_value_t = 5000)]
    perf_dump_ms: u64,
    /// `write_path` variant: flush | per-write (env SPHERE_WRITE_PATH).
    #[arg(long)]
    write_path: Option<String>,
    /// `proof_check` variant: pairwise | across (env SPHERE_PROOF_CHECK).
    #[arg(long)]
    proof_check: Option<String>,
    /// `fanout` variant: 1..64 (env SPHERE_FANOUT).
    #[arg(long)]
    fanout: Option<String>,
    /// `tombstone_merge` variant: union | overwrite (env SPHERE_TOMBSTONE_MERGE).
    #[arg(long)]
    tombstone_merge: Option<String>,
    /// `filter_own_updates` variant: true | false (env SPHERE_FILTER_OWN_UPDATES).
    #[arg(long)]
    filter_own_updates: Option<String>,
    /// `consolidate` variant: on | off (env SPHERE_CONSOLIDATE).
    #[arg(long)]
    consolidate: Option<String>,
    /// This process's device id (default: random); tells a wallet's devices apart.
    #[arg(long)]
    device: Option<String>,
}

fn parse_flag(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" | "" => Ok(false),
        other => Err(format!("`{other}` is not 0/1/true/false")),
    }
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
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("sphere-peer: cannot start the async runtime: {error}");
            return ExitCode::from(EXIT_INFRASTRUCTURE);
        }
    };
    let services = match runtime.block_on(async { services(&args) }) {
        Ok(services) => services,
        Err(error) => {
            eprintln!("sphere-peer: {error:#}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let outcome = runtime.block_on(serve(args, services));
    // Tokio reads stdin on a blocking thread that never returns while the
    // pipe is open; waiting for it would keep a finished peer alive.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("sphere-peer: {error:#}");
            ExitCode::from(EXIT_INFRASTRUCTURE)
        }
    }
}

fn services(args: &Args) -> anyhow::Result<Services> {
    let mut variants = Variants::from_env(|name| std::env::var(name).ok())?;
    let flags = [
        ("write_path", &args.write_path),
        ("proof_check", &args.proof_check),
        ("fanout", &args.fanout),
        ("tombstone_merge", &args.tombstone_merge),
        ("filter_own_updates", &args.filter_own_updates),
        ("consolidate", &args.consolidate),
    ];
    for (name, value) in flags {
        if let Some(value) = value {
            variants.set(name, value)?;
        }
    }
    let timers = Timers::parse(&args.time_scale)?;
    let device = args
        .device
        .clone()
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 6]>()));
    let client_id = format!("sphere-peer-{device}");
    Ok(Services {
        aggregator: AggregatorClient::new(&args.aggregator_url, &client_id, &timers)
            .context("fix --aggregator-url / SPHERE_AGGREGATOR_URL")?,
        gateway: GatewayClient::new(&args.ipfs_gateway, &client_id, &timers)
            .context("fix --ipfs-gateway / SPHERE_IPFS_GATEWAY")?,
        relay_url: args.nostr_relay.clone(),
        timers,
        variants,
        device,
    })
}

async fn serve(args: Args, services: Services) -> anyhow::Result<()> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("cannot create --data-dir `{}`", args.data_dir.display()))?;
    if args.perf {
        perf::set_enabled(true);
        perf::spawn_stderr_dumper(Duration::from_millis(args.perf_dump_ms.max(1)));
    }
    tracing::info!(variant = ?services.variants.to_map(), time_scale = services.timers.time_scale(), "sphere-peer ready");
    let peer = Arc::new(Peer::new(services, args.data_dir));
    let (responses, mut outgoing) = mpsc::unbounded_channel::<(String, AfterResponse)>();
    // Cancelled once the `shutdown` answer is out (or stdout is gone).
    let exit = tokio_util::sync::CancellationToken::new();
    let writer_exit = exit.clone();
    tokio::spawn(async move {
        let mut stdout = tokio::io::stdout();
        while let Some((line, after)) = outgoing.recv().await {
            if stdout.write_all(line.as_bytes()).await.is_err() || stdout.flush().await.is_err() {
                break;
            }
            if after == AfterResponse::Exit {
                break;
            }
        }
        writer_exit.cancel();
    });
    // Raw bytes per line, decoded afterwards: a line that is not UTF-8 is a
    // bad request to answer, not a read error that would end the loop.
    let mut stdin = BufReader::new(tokio::io::stdin());
    let mut buffer = Vec::new();
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    let mut interrupt = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())?;
    loop {
        tokio::select! {
            // `read_until` keeps what it has read in `buffer` if another
            // branch wins, and every other branch ends the loop anyway.
            read = stdin.read_until(b'\n', &mut buffer) => match read {
                Ok(0) => {
                    tracing::info!("end of input: closing");
                    peer.close_all().await;
                    return Ok(());
                }
                Ok(_) => {
                    let line = std::mem::take(&mut buffer);
                    let line = strip_line_end(&line);
                    if line.iter().all(u8::is_ascii_whitespace) {
                        continue;
                    }
                    match protocol::parse_bytes(line) {
                        Ok(request) => {
                            tracing::debug!(op = %request.op, id = %request.id, "request");
                            // Queued here, in arrival order; run in its own task.
                            let answer = peer.queue(request);
                            let responses = responses.clone();
                            tokio::spawn(async move {
                                let (response, after) = answer.await;
                                let _ = responses.send((response_line(&response), after));
                            });
                        }
                        Err(response) => {
                            let _ = responses.send((response_line(&response), AfterResponse::Continue));
                        }
                    }
                }
                Err(error) => {
                    // The pipe itself failed (not a bad line): reading again
                    // would most likely fail the same way, forever.
                    tracing::error!(%error, "cannot read stdin: closing");
                    peer.close_all().await;
                    return Ok(());
                }
            },
            _ = terminate.recv() => {
                tracing::info!("SIGTERM: flushing and exiting");
                peer.close_all().await;
                return Ok(());
            }
            _ = interrupt.recv() => {
                tracing::info!("SIGINT: flushing and exiting");
                peer.close_all().await;
                return Ok(());
            }
            () = exit.cancelled() => return Ok(()),
        }
    }
}

/// `line` without its `\n` or `\r\n`.
fn strip_line_end(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// One response as a line of JSON.
fn response_line(response: &protocol::Response) -> String {
    let mut text = serde_json::to_string(response).unwrap_or_else(|e| {
        format!(r#"{{"id":null,"ok":false,"error":{{"kind":"internal","message":"{e}"}}}}"#)
    });
    text.push('\n');
    text
}
