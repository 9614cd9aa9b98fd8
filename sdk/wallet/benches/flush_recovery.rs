//! Flush and recovery cost as the number of active bundles `B` grows.
//!
//! A wallet that never consolidates (`consolidate = off`) gains one active
//! bundle per flush, and a fresh device recovering it must fetch every
//! bundle CAR and verify every inclusion proof. With `proof_check =
//! pairwise` that check re-verifies both bundles of every pair, O(B^2) real
//! signature checks: the hotspot that dominated a real recovery at B ~ 70
//! (DESIGN.md §10). `across` verifies each distinct proof once. This bench
//! puts numbers on both, for B in {10, 70, 300}:
//!
//! - **flush**: one more `flush(force = true)` of the wallet with B active
//!   bundles (median of [`FLUSH_RUNS`]; each run adds a bundle). Flush never
//!   reads `proof_check` (a lone device has no newer pointer to ingest), so
//!   it is measured once per B and shown on both rows;
//! - **recovery**: `Wallet::import` from the mnemonic into a fresh directory
//!   with `nostr = false`: pointer discovery, snapshot fetch, all B bundle
//!   CARs, proof verification with the variant's strategy (median of
//!   [`RECOVERY_RUNS`]), with the `verify_proofs.verify` count and the
//!   `verify_proofs` total from the perf counters, reset before each run;
//! - **memory**: the process's peak RSS (VmHWM, reset through
//!   `/proc/self/clear_refs` before each variant's recoveries when the kernel
//!   allows) and current RSS (VmRSS) after them. The testnet runs in this
//!   process, so its in-memory block store is counted too.
//!
//! The testnet runs in-process with the `ideal` network profile, so the
//! numbers are the SDK's own cost, not modelled network delay; `--network
//! ideal,ci` adds the `ci` shape (time scale 0.1), reported separately.
//! Nothing is asserted: this is a measurement, not a test.
//!
//! ```text
//! cargo bench -p sphere-sdk --bench flush_recovery              # B = 10, 70, 300
//! cargo bench -p sphere-sdk --bench flush_recovery -- --quick   # B = 10, 70; 1 run each
//! ```
//!
//! Results go to stdout as a table and to `target/bench-flush-recovery.json`.

#![allow(clippy::print_stdout)]

use std::{
    path::{Path, PathBuf},
    process::ExitCode,
    time::{Duration, Instant},
};

use anyhow::Context;
use serde::Serialize;
use sphere_sdk::{
    amount::{Amount, CoinId, Unit},
    config::{ProofCheck, Timers, Variants},
    identity::Mnemonic,
    perf,
    transport::{aggregator::AggregatorClient, gateway::GatewayClient},
    wallet::{Services, Wallet},
};
use sphere_testnet::{Endpoints, NetworkProfile, RunningTestnet, ServicePorts, TestnetConfig};

const FULL_SIZES: &[usize] = &[10, 70, 300];
const QUICK_SIZES: &[usize] = &[10, 70];
/// Timed forced flushes per B (full run).
const FLUSH_RUNS: usize = 5;
/// Timed recoveries per B and variant (full run).
const RECOVERY_RUNS: usize = 3;
const STRATEGIES: [ProofCheck; 2] = [ProofCheck::Pairwise, ProofCheck::Across];
const EXIT_USAGE: u8 = 2;
const EXIT_INFRASTRUCTURE: u8 = 3;

/// What the command line asked for.
struct BenchOptions {
    sizes: &'static [usize],
    flush_runs: usize,
    recovery_runs: usize,
    networks: Vec<String>,
}

impl BenchOptions {
    fn parse(mut args: impl Iterator<Item = String>) -> Result<Self, String> {
        let mut options = BenchOptions {
            sizes: FULL_SIZES,
            flush_runs: FLUSH_RUNS,
            recovery_runs: RECOVERY_RUNS,
            networks: vec!["ideal".to_owned()],
        };
        while let Some(arg) = args.next() {
            match arg.as_str() {
                "--quick" => {
                    options.sizes = QUICK_SIZES;
                    options.flush_runs = 1;
                    options.recovery_runs = 1;
                }
                // `cargo bench` passes `--bench` to harness-less benches.
                "--bench" => {}
                "--network" => {
                    let list = args
                        .next()
                        .ok_or("--network needs a value, e.g. ideal,ci")?;
                    options.networks = list.split(',').map(str::to_owned).collect();
                }
                other => {
                    return Err(format!(
                        "unknown argument `{other}` (known: --quick, --network ideal,ci)"
                    ));
                }
            }
        }
        Ok(options)
    }
}

/// One line of the report: one network, one B, one `proof_check` variant.
#[derive(Debug, Serialize)]
struct ResultRow {
    network: String,
    bundles: usize,
    proof_check: String,
    flush_median_ms: f64,
    flush_runs_ms: Vec<f64>,
    recovery_median_ms: f64,
    recovery_runs_ms: Vec<f64>,
    /// `verify_proofs.verify` count of one recovery.
    verifications: u64,
    /// `verify_proofs` total of one recovery (the median run's).
    verify_ms: f64,
    peak_rss_mib: f64,
    rss_mib: f64,
}

#[derive(Debug, Serialize)]
struct BenchReport {
    cores: usize,
    load_average_at_start: String,
    load_average_at_end: String,
    peak_rss_reset_per_variant: bool,
    rows: Vec<ResultRow>,
}

/// One timed recovery and what its perf counters saw.
struct Recovery {
    elapsed: Duration,
    verifications: u64,
    verify: Duration,
}

fn main() -> ExitCode {
    let options = match BenchOptions::parse(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(message) => {
            eprintln!("flush_recovery: {message}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let outcome = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
        .and_then(|runtime| runtime.block_on(run(&options)));
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("flush_recovery: {error:#}");
            ExitCode::from(EXIT_INFRASTRUCTURE)
        }
    }
}

async fn run(options: &BenchOptions) -> anyhow::Result<()> {
    perf::set_enabled(true);
    let mut report = BenchReport {
        cores: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_average_at_start: load_average(),
        load_average_at_end: String::new(),
        peak_rss_reset_per_variant: reset_peak_rss(),
        rows: Vec::new(),
    };
    let json_path = report_path();
    for network in &options.networks {
        bench_network(network, options, &mut report, &json_path).await?;
    }
    report.load_average_at_end = load_average();
    write_report(&report, &json_path)?;
    println!("{}", render_table(&report));
    println!("json: {}", json_path.display());
    Ok(())
}

/// Grows one wallet through every B on a fresh testnet of `network`,
/// writing the report after each B so a later failure loses nothing.
async fn bench_network(
    network: &str,
    options: &BenchOptions,
    report: &mut BenchReport,
    json_path: &Path,
) -> anyhow::Result<()> {
    let profile = NetworkProfile::load(network, &[]).context("use --network ideal or ci")?;
    let timers = Timers::new(profile.time_scale)?;
    let testnet = RunningTestnet::start(TestnetConfig {
        profile,
        data_dir: None,
        ports: ServicePorts::default(),
    })
    .await?;
    let endpoints = testnet.endpoints().clone();
    let dir = tempfile::tempdir()?;
    let origin = services(&endpoints, timers, ProofCheck::Pairwise, "bench-origin")?;
    let (wallet, mnemonic) =
        Wallet::create(origin, "origin", &dir.path().join("origin"), None).await?;
    for amount in ["100", "50"] {
        wallet
            .faucet(CoinId::uct(), Amount::parse(amount, Unit::Coin)?)
            .await?;
    }
    let mut active = wallet.flush(false).await?.active_bundles;
    for &bundles in options.sizes {
        eprintln!("[{network}] growing to B = {bundles} (now {active})");
        while active < bundles {
            active = wallet.flush(true).await?.active_bundles;
        }
        let mut per_strategy = Vec::new();
        for strategy in STRATEGIES {
            reset_peak_rss();
            let mut runs = Vec::new();
            for run in 0..options.recovery_runs {
                let device = format!("bench-recovery-{bundles}-{strategy}-{run}");
                let services = services(&endpoints, timers, strategy, &device)?;
                runs.push(recover(services, &mnemonic).await?);
            }
            runs.sort_by_key(|r| r.elapsed);
            let (peak_rss_mib, rss_mib) = rss_mib()?;
            eprintln!(
                "[{network}] B = {bundles} {strategy}: recovery {:?}",
                runs[runs.len() / 2].elapsed
            );
            per_strategy.push((strategy, runs, peak_rss_mib, rss_mib));
        }
        let mut flushes = Vec::new();
        for _ in 0..options.flush_runs {
            let started = Instant::now();
            active = wallet.flush(true).await?.active_bundles;
            flushes.push(started.elapsed());
        }
        for (strategy, runs, peak_rss_mib, rss_mib) in per_strategy {
            let median = &runs[runs.len() / 2];
            report.rows.push(ResultRow {
                network: network.to_owned(),
                bundles,
                proof_check: strategy.to_string(),
                flush_median_ms: ms(median_duration(&flushes)),
                flush_runs_ms: flushes.iter().copied().map(ms).collect(),
                recovery_median_ms: ms(median.elapsed),
                recovery_runs_ms: runs.iter().map(|r| ms(r.elapsed)).collect(),
                verifications: median.verifications,
                verify_ms: ms(median.verify),
                peak_rss_mib,
                rss_mib,
            });
        }
        write_report(report, json_path)?;
    }
    wallet.close().await?;
    testnet.stop().await;
    Ok(())
}

/// The services of one device, with `proof_check` set and never consolidating.
fn services(
    endpoints: &Endpoints,
    timers: Timers,
    proof_check: ProofCheck,
    device: &str,
) -> anyhow::Result<Services> {
    let variants = Variants {
        proof_check,
        consolidate: false,
        ..Variants::default()
    };
    Ok(Services {
        aggregator: AggregatorClient::new(&endpoints.aggregator, device, &timers)?,
        gateway: GatewayClient::new(&endpoints.gateway, device, &timers)?,
        relay_url: endpoints.relay.clone(),
        timers,
        variants,
        device: device.to_owned(),
    })
}

/// One timed import into a fresh directory, with the counters it caused.
async fn recover(services: Services, mnemonic: &Mnemonic) -> anyhow::Result<Recovery> {
    let dir = tempfile::tempdir()?;
    perf::reset_all();
    let started = Instant::now();
    let wallet = Wallet::import(services, "recovered", dir.path(), mnemonic, false).await?;
    let elapsed = started.elapsed();
    drop(wallet);
    let totals = perf::totals();
    let counter = |name: &str| totals.get(name).copied().unwrap_or_default();
    Ok(Recovery {
        elapsed,
        verifications: counter(perf::names::PROOF_VERIFY).count,
        verify: Duration::from_secs_f64(counter(perf::names::VERIFY_PROOFS).total_ms / 1000.0),
    })
}

fn median_duration(samples: &[Duration]) -> Duration {
    let mut sorted = samples.to_vec();
    sorted.sort();
    sorted[sorted.len() / 2]
}

fn ms(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1e6).round() / 1e3
}

/// Peak (VmHWM) and current (VmRSS) resident memory of this process, in MiB.
fn rss_mib() -> anyhow::Result<(f64, f64)> {
    let status =
        std::fs::read_to_string("/proc/self/status").context("reading /proc/self/status")?;
    let field = |name: &str| -> anyhow::Result<f64> {
        let line = status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .with_context(|| format!("no `{name}` in /proc/self/status"))?;
        let kib: f64 = line.trim().trim_end_matches("kB").trim().parse()?;
        Ok((kib / 1024.0 * 10.0).round() / 10.0)
    };
    Ok((field("VmHWM:")?, field("VmRSS:")?))
}

/// Resets VmHWM to the current RSS (Linux `clear_refs` value 5); false when
/// the kernel refuses, in which case peaks are cumulative.
fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

/// `target/bench-flush-recovery.json` of the workspace this bench was built in.
fn report_path() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .or_else(|| {
            // The bench runs as <target>/<profile>/deps/flush_recovery-<hash>.
            let exe = std::env::current_exe().ok()?;
            Some(exe.parent()?.parent()?.parent()?.to_path_buf())
        })
        .unwrap_or_else(|| PathBuf::from("target"));
    target.join("bench-flush-recovery.json")
}

fn write_report(report: &BenchReport, path: &Path) -> anyhow::Result<()> {
    let bytes = serde_json::to_vec_pretty(report)?;
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

const TABLE_HEADER: &str = "network      B  proof_check   flush ms   recovery ms verifications   verify ms  peak MiB  RSS MiB";

fn render_table(report: &BenchReport) -> String {
    let mut out = format!("{TABLE_HEADER}\n");
    for r in &report.rows {
        out += &format!(
            "{:<8} {:>5}  {:<11} {:>10.1} {:>13.1} {:>13} {:>11.1} {:>9.1} {:>8.1}\n",
            r.network,
            r.bundles,
            r.proof_check,
            r.flush_median_ms,
            r.recovery_median_ms,
            r.verifications,
            r.verify_ms,
            r.peak_rss_mib,
            r.rss_mib
        );
    }
    let peak = if report.peak_rss_reset_per_variant {
        "reset before each variant's recoveries"
    } else {
        "cumulative (clear_refs refused)"
    };
    out + &format!(
        "machine: {} cores, load average {} at start, {} at end; peak RSS {peak}",
        report.cores, report.load_average_at_start, report.load_average_at_end
    )
}
