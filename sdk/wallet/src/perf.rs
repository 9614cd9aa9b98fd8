//! Perf counters: how often and how long the SDK's hot paths ran.
//!
//! One process-wide registry (the one sanctioned piece of global mutable
//! state in the SDK) keeps, per counter name, a *window* (cleared by each
//! [`dump_and_reset`]) and *totals* (never cleared, served by the peer's
//! `counters` op). Everything is behind a single relaxed atomic load, so with
//! `SPHERE_PERF` unset a counter call costs one branch.
//!
//! ```
//! use sphere_sdk::perf;
//! perf::set_enabled(true);
//! {
//!     let _timer = perf::time(perf::names::FLUSH);
//!     // ... the flush ...
//! }
//! perf::incr(perf::names::GATEWAY_429);
//! assert_eq!(perf::totals()[perf::names::FLUSH].count, 1);
//! ```
//!
//! With `SPHERE_PERF=1` the peer prints each window every
//! `SPHERE_PERF_DUMP_MS` (default 5000) as one JSON line on stderr:
//! `{"timestamp":"…","target":"perf","window_ms":5000,"counters":{"flush":{"count":2,"total_ms":812.4,"avg_ms":406.2,"max_ms":530.1}}}`.

use std::{
    collections::BTreeMap,
    future::Future,
    io::Write,
    sync::{
        Mutex, MutexGuard,
        atomic::{AtomicBool, Ordering},
    },
    time::{Duration, Instant},
};

use serde::{Deserialize, Serialize};

/// The counter names the SDK records; harness reports group by them.
pub mod names {
    /// One op-log entry appended locally.
    pub const PUT_ENTRY: &str = "put_entry";
    /// Remote op-log entries applied (one per applied batch).
    pub const ON_REPLICATION: &str = "on_replication";
    /// Listing the active bundle refs of a profile.
    pub const LIST_ACTIVE_BUNDLES: &str = "list_active_bundles";
    /// Fetching one CAR from the gateway.
    pub const FETCH_CAR: &str = "fetch_car";
    /// Pinning one CAR (import, or per-block puts).
    pub const PIN_CAR: &str = "pin_car";
    /// A pin request retried after a 429, 5xx or dropped connection.
    pub const PIN_RETRY: &str = "pin_car.retry";
    /// A gateway answer of 429 (any request).
    pub const GATEWAY_429: &str = "gateway.429";
    /// One whole flush.
    pub const FLUSH: &str = "flush";
    /// HEAD-verifying that pinned CIDs are visible through the gateway.
    pub const HEAD_VERIFY: &str = "head_verify";
    /// One HEAD request made while verifying.
    pub const HEAD_REQUEST: &str = "head_verify.request";
    /// One proof-verification pass over a set of bundles.
    pub const VERIFY_PROOFS: &str = "verify_proofs";
    /// One inclusion proof checked (certificate signature and Merkle path).
    pub const PROOF_VERIFY: &str = "verify_proofs.verify";
    /// One aggregator JSON-RPC call.
    pub const AGGREGATOR_CALL: &str = "aggregator.call";
    /// An aggregator answer of 429.
    pub const AGGREGATOR_429: &str = "aggregator.429";
    /// Finding the latest profile pointer version.
    pub const POINTER_RECOVER: &str = "pointer_recover";
    /// Publishing a profile pointer version.
    pub const POINTER_PUBLISH: &str = "pointer_publish";
    /// Loading a wallet from pointer, snapshot and bundles.
    pub const LOAD: &str = "load";
    /// Sending one Nostr event.
    pub const NOSTR_SEND: &str = "nostr.send";
}

/// Statistics of one counter over a window or since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct CounterStats {
    /// How many times it was recorded.
    pub count: u64,
    /// Sum of the recorded durations, in milliseconds.
    pub total_ms: f64,
    /// `total_ms / count` (0 when count is 0).
    pub avg_ms: f64,
    /// Longest recorded duration, in milliseconds.
    pub max_ms: f64,
}

impl CounterStats {
    fn record(&mut self, times: u64, elapsed_ms: f64) {
        self.count += times;
        self.total_ms += elapsed_ms;
        self.max_ms = self.max_ms.max(elapsed_ms);
        self.avg_ms = if self.count == 0 {
            0.0
        } else {
            self.total_ms / self.count as f64
        };
    }
}

/// Counters by name.
pub type CounterMap = BTreeMap<String, CounterStats>;

#[derive(Default)]
struct Registry {
    window: CounterMap,
    totals: CounterMap,
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    window: BTreeMap::new(),
    totals: BTreeMap::new(),
});

fn registry() -> MutexGuard<'static, Registry> {
    // Counter updates cannot leave the maps half-written, so a lock poisoned
    // by an unrelated panic is still safe to use.
    REGISTRY.lock().unwrap_or_else(|p| p.into_inner())
}

/// Whether counters are being recorded.
pub fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Turns recording on or off.
pub fn set_enabled(on: bool) {
    ENABLED.store(on, Ordering::Relaxed);
}

fn record(name: &str, times: u64, elapsed: Duration) {
    let ms = elapsed.as_secs_f64() * 1000.0;
    let mut registry = registry();
    registry
        .window
        .entry(name.to_owned())
        .or_default()
        .record(times, ms);
    registry
        .totals
        .entry(name.to_owned())
        .or_default()
        .record(times, ms);
}

/// Counts one event with no duration.
pub fn incr(name: &str) {
    add(name, 1);
}

/// Counts `times` events with no duration.
pub fn add(name: &str, times: u64) {
    if enabled() && times > 0 {
        record(name, times, Duration::ZERO);
    }
}

/// Counts one event that took `elapsed`.
pub fn observe(name: &str, elapsed: Duration) {
    if enabled() {
        record(name, 1, elapsed);
    }
}

/// Starts timing `name`; the event is recorded when the guard drops.
pub fn time(name: &'static str) -> PerfTimer {
    PerfTimer {
        name,
        started: enabled().then(Instant::now),
    }
}

/// Times `future` under `name`.
pub async fn timed<F: Future>(name: &'static str, future: F) -> F::Output {
    let _timer = time(name);
    future.await
}

/// Records the time since it was made when dropped (see [`time`]).
#[must_use = "the timer records when dropped; bind it with `let _timer = …`"]
pub struct PerfTimer {
    name: &'static str,
    started: Option<Instant>,
}

impl Drop for PerfTimer {
    fn drop(&mut self) {
        if let Some(started) = self.started {
            record(self.name, 1, started.elapsed());
        }
    }
}

/// Every counter since start (or since the last [`reset_all`]).
pub fn totals() -> CounterMap {
    registry().totals.clone()
}

/// The current window, which is then cleared.
pub fn dump_and_reset() -> CounterMap {
    std::mem::take(&mut registry().window)
}

/// Clears window and totals (tests and benchmarks).
pub fn reset_all() {
    let mut registry = registry();
    registry.window.clear();
    registry.totals.clear();
}

/// One line of the perf stream on stderr.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerfDump {
    /// RFC 3339 time of the dump.
    pub timestamp: String,
    /// Always `perf`, so a log reader can pick these lines out.
    pub target: String,
    /// The dump interval this window covers.
    pub window_ms: u64,
    /// The window's counters.
    pub counters: CounterMap,
}

/// Writes the current window to `out` as one [`PerfDump`] JSON line and
/// clears it. Empty windows are written too, so a reader sees the cadence.
pub fn dump_to(out: &mut impl Write, window: Duration) -> std::io::Result<()> {
    let dump = PerfDump {
        timestamp: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
        target: "perf".to_owned(),
        window_ms: window.as_millis() as u64,
        counters: dump_and_reset(),
    };
    let line = serde_json::to_string(&dump).map_err(std::io::Error::other)?;
    writeln!(out, "{line}")
}

/// Dumps a window to stderr every `interval` until the runtime ends.
pub fn spawn_stderr_dumper(interval: Duration) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let mut stderr = std::io::stderr().lock();
            if dump_to(&mut stderr, interval).is_err() {
                break;
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // The registry is process-wide; these tests use names no other test
    // uses and read only their own entries.
    #[test]
    fn records_count_total_avg_and_max_per_window_and_in_totals() {
        set_enabled(true);
        observe("test.a", Duration::from_millis(10));
        observe("test.a", Duration::from_millis(30));
        add("test.a", 2);
        let window = dump_and_reset();
        let a = window["test.a"];
        assert_eq!(a.count, 4);
        assert!((a.total_ms - 40.0).abs() < 1e-9);
        assert!((a.avg_ms - 10.0).abs() < 1e-9);
        assert!((a.max_ms - 30.0).abs() < 1e-9);
        assert!(!dump_and_reset().contains_key("test.a"), "window cleared");
        assert_eq!(totals()["test.a"].count, 4, "totals kept");
    }

    #[test]
    fn dump_is_one_json_line_with_target_perf() {
        set_enabled(true);
        incr("test.dump");
        let mut out = Vec::new();
        dump_to(&mut out, Duration::from_millis(5000)).unwrap();
        let text = String::from_utf8(out).unwrap();
        assert_eq!(text.lines().count(), 1);
        let dump: PerfDump = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(dump.target, "perf");
        assert_eq!(dump.window_ms, 5000);
        assert_eq!(dump.counters["test.dump"].count, 1);
    }
}
