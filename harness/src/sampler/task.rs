//! The sampling task: samples every interval until cancelled and sends each
//! tick's samples on a channel, so the run loop consumes events instead of
//! measuring inline.

use std::time::{Duration, Instant};

use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

use super::{
    MINIMUM_CPU_UPDATE_INTERVAL, MachineSample, ProcessTreeSample, RoleRoot, Sampler, SamplerError,
};

/// Room for this many ticks in the channel: at one tick a second a slow
/// consumer would have to stall for minutes before sampling waits on it.
const CHANNEL_CAPACITY: usize = 1024;

/// One tick of the sampling task.
#[derive(Debug, Clone, PartialEq)]
pub struct SampleEvent {
    /// One sample per role root, in the order of the roots at that tick.
    pub trees: Vec<ProcessTreeSample>,
    /// The whole machine's CPU next to ours.
    pub machine: MachineSample,
}

/// Starts a task that samples the current `roots` every `interval` until
/// `cancel` is cancelled, and returns its handle and the receiver of its
/// events.
///
/// - `roots` is read at every tick, so the runner adds a role when its
///   process starts (`sender.send_modify(|r| r.push(...))`) and removes it
///   after teardown; the task keeps going if the sender is dropped.
/// - The first tick is immediate and, as the sampler's first sample, reports
///   0 CPU ([`MachineSample::cpu_valid`] is `false`).
/// - `interval` is raised to [`MINIMUM_CPU_UPDATE_INTERVAL`] if shorter,
///   since CPU% needs refreshes at least that far apart. Ticks that fall
///   behind are delayed, not bunched.
/// - `elapsed` in each sample is measured from `started` just before the
///   refresh.
/// - The `sysinfo` work runs on tokio's blocking pool (one `System` reused,
///   moved in and out), so a refresh of every process never stalls the
///   runtime. The task ends when cancelled, when the receiver is dropped,
///   or if a refresh panics.
///
/// Must be called from within a tokio runtime (it spawns a task).
pub fn spawn_sampling(
    roots: watch::Receiver<Vec<RoleRoot>>,
    interval: Duration,
    started: Instant,
    cancel: CancellationToken,
) -> Result<(JoinHandle<()>, mpsc::Receiver<SampleEvent>), SamplerError> {
    let sampler = Sampler::new()?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let handle = tokio::spawn(run(
        sampler,
        roots,
        interval.max(MINIMUM_CPU_UPDATE_INTERVAL),
        started,
        cancel,
        tx,
    ));
    Ok((handle, rx))
}

async fn run(
    sampler: Sampler,
    roots: watch::Receiver<Vec<RoleRoot>>,
    interval: Duration,
    started: Instant,
    cancel: CancellationToken,
    tx: mpsc::Sender<SampleEvent>,
) {
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let mut sampler = Some(sampler);
    loop {
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            _ = ticker.tick() => {}
        }
        let Some(mut owned) = sampler.take() else {
            break;
        };
        let current = roots.borrow().clone();
        let joined = tokio::task::spawn_blocking(move || {
            let (trees, machine) = owned.sample(&current, started.elapsed());
            (owned, SampleEvent { trees, machine })
        })
        .await;
        // A panic inside sysinfo ends sampling; the run goes on without
        // further samples rather than crashing the harness.
        let Ok((owned, event)) = joined else {
            break;
        };
        sampler = Some(owned);
        tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            sent = tx.send(event) => if sent.is_err() { break },
        }
    }
}
