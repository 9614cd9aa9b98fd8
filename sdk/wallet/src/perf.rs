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
    /// Taking a joining device's token set from the relay's token backup
    /// (inside `load`).
    pub const LOAD_BACKUP: &str = "load.token_backup";
    /// Sending one Nostr event.
    pub const NOSTR_SEND: &str = "nostr.send";
    /// Union of the time at least one aggregator request was in flight.
    pub const WAIT_AGGREGATOR: &str = "wait.aggregator";
    /// Union of the time at least one gateway request was in flight.
    pub const WAIT_GATEWAY: &str = "wait.gateway";
    /// Union of the time at least one relay request was in flight.
    pub const WAIT_RELAY: &str = "wait.relay";
    /// Union of the time at least one retry was sleeping after a 429, 5xx
    /// or dropped request (any service).
    pub const WAIT_BACKOFF: &str = "wait.backoff";
    /// Union of the time at least one poll was sleeping before asking again
    /// for something not there yet (a block still propagating, a proof not
    /// yet sealed, an invoice not yet visible).
    pub const WAIT_POLL: &str = "wait.poll";
    /// Union of the time at least one local store transaction was running.
    pub const WAIT_STORE: &str = "wait.store";
}

/// What a section can be waiting on; each kind is one `wait.*` counter whose
/// `total_ms` is the wall-clock union of its operations (see [`wait`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wait {
    /// A request to the aggregator ([`names::WAIT_AGGREGATOR`]).
    Aggregator,
    /// A request to the IPFS gateway ([`names::WAIT_GATEWAY`]).
    Gateway,
    /// A request to the Nostr relay ([`names::WAIT_RELAY`]).
    Relay,
    /// A retry's sleep after a refusal or a lost request ([`names::WAIT_BACKOFF`]).
    Backoff,
    /// A poll's sleep before asking again ([`names::WAIT_POLL`]).
    Poll,
    /// A local storage transaction ([`names::WAIT_STORE`]).
    Store,
}

impl Wait {
    const ALL: [Wait; 6] = [
        Wait::Aggregator,
        Wait::Gateway,
        Wait::Relay,
        Wait::Backoff,
        Wait::Poll,
        Wait::Store,
    ];

    /// The counter name this kind is reported under.
    pub const fn name(self) -> &'static str {
        match self {
            Wait::Aggregator => names::WAIT_AGGREGATOR,
            Wait::Gateway => names::WAIT_GATEWAY,
            Wait::Relay => names::WAIT_RELAY,
            Wait::Backoff => names::WAIT_BACKOFF,
            Wait::Poll => names::WAIT_POLL,
            Wait::Store => names::WAIT_STORE,
        }
    }

    const fn index(self) -> usize {
        self as usize
    }
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

/// The union clock of one [`Wait`] kind: how many of its operations are in
/// flight, and since when the current busy interval has not been credited.
#[derive(Debug, Clone, Copy)]
struct UnionClock {
    in_flight: u64,
    /// Start of the part of the current busy interval not yet added to the
    /// counters; `None` when nothing is in flight.
    uncredited_since: Option<Instant>,
}

impl UnionClock {
    const IDLE: UnionClock = UnionClock {
        in_flight: 0,
        uncredited_since: None,
    };
}

struct Registry {
    window: CounterMap,
    totals: CounterMap,
    clocks: [UnionClock; Wait::ALL.len()],
}

impl Registry {
    /// Adds `ms` of busy time (and `ops` operations, the longest `op_ms`
    /// long) to one wait counter, in the window and in the totals.
    fn credit_wait(&mut self, kind: Wait, ms: f64, ops: u64, op_ms: f64) {
        for map in [&mut self.window, &mut self.totals] {
            let stats = map.entry(kind.name().to_owned()).or_default();
            stats.count += ops;
            stats.total_ms += ms;
            stats.max_ms = stats.max_ms.max(op_ms);
            stats.avg_ms = if stats.count == 0 {
                0.0
            } else {
                stats.total_ms / stats.count as f64
            };
        }
    }

    /// One operation of `kind` starts at `now`: the first one in flight
    /// opens a busy interval.
    fn begin_wait(&mut self, kind: Wait, now: Instant) {
        let clock = &mut self.clocks[kind.index()];
        clock.in_flight += 1;
        if clock.in_flight == 1 {
            clock.uncredited_since = Some(now);
        }
    }

    /// The operation of `kind` that began at `started` ends at `now`: the
    /// last one in flight closes the busy interval and credits it.
    fn end_wait(&mut self, kind: Wait, started: Instant, now: Instant) {
        let op_ms = ms_between(started, now);
        let clock = &mut self.clocks[kind.index()];
        // A reset_all while this guard lived leaves the clock idle: count the
        // operation but no busy time rather than underflow.
        let busy_ms = if clock.in_flight <= 1 {
            clock.in_flight = 0;
            clock
                .uncredited_since
                .take()
                .map_or(0.0, |since| ms_between(since, now))
        } else {
            clock.in_flight -= 1;
            0.0
        };
        self.credit_wait(kind, busy_ms, 1, op_ms);
    }

    /// Credits every busy interval still open up to `now`, so a window dump
    /// or a `counters` read includes the wait in progress and the next one
    /// starts counting from `now` (each instant is credited exactly once).
    fn credit_open_waits(&mut self, now: Instant) {
        for kind in Wait::ALL {
            let clock = &mut self.clocks[kind.index()];
            if let Some(since) = clock.uncredited_since {
                clock.uncredited_since = Some(now);
                self.credit_wait(kind, ms_between(since, now), 0, 0.0);
            }
        }
    }
}

fn ms_between(from: Instant, to: Instant) -> f64 {
    to.saturating_duration_since(from).as_secs_f64() * 1000.0
}

static ENABLED: AtomicBool = AtomicBool::new(false);
static REGISTRY: Mutex<Registry> = Mutex::new(Registry {
    window: BTreeMap::new(),
    totals: BTreeMap::new(),
    clocks: [UnionClock::IDLE; Wait::ALL.len()],
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

/// Marks one operation of `kind` in flight until the guard drops.
///
/// The `wait.*` counter of that kind then holds, in `total_ms`, the
/// wall-clock *union* of the intervals during which at least one such
/// operation was in flight: eight concurrent gateway requests of 100 ms add
/// 100 ms, not 800, so a section's wall time can be split into waits on each
/// service and the rest. `count` is the number of operations, `max_ms` the
/// longest one. With counters off the guard is inert (one branch).
pub fn wait(kind: Wait) -> WaitGuard {
    wait_when(enabled(), kind)
}

fn wait_when(on: bool, kind: Wait) -> WaitGuard {
    if !on {
        return WaitGuard { active: None };
    }
    let started = Instant::now();
    registry().begin_wait(kind, started);
    WaitGuard {
        active: Some((kind, started)),
    }
}

/// Runs `future` as one operation of `kind` (see [`wait`]).
pub async fn waited<F: Future>(kind: Wait, future: F) -> F::Output {
    let _wait = wait(kind);
    future.await
}

/// One operation in flight for a `wait.*` counter (see [`wait`]).
#[must_use = "the wait ends when the guard drops; bind it with `let _wait = …`"]
pub struct WaitGuard {
    active: Option<(Wait, Instant)>,
}

impl Drop for WaitGuard {
    fn drop(&mut self) {
        if let Some((kind, started)) = self.active {
            registry().end_wait(kind, started, Instant::now());
        }
    }
}

/// Every counter since start (or since the last [`reset_all`]). A `wait.*`
/// counter includes the wait in progress up to now.
pub fn totals() -> CounterMap {
    let mut registry = registry();
    registry.credit_open_waits(Instant::now());
    registry.totals.clone()
}

/// The current window, which is then cleared. A `wait.*` counter includes
/// the wait in progress up to now; the rest of it goes to the next window.
pub fn dump_and_reset() -> CounterMap {
    let mut registry = registry();
    registry.credit_open_waits(Instant::now());
    std::mem::take(&mut registry.window)
}

/// Clears window and totals (tests and benchmarks).
pub fn reset_all() {
    let mut registry = registry();
    registry.window.clear();
    registry.totals.clear();
    registry.clocks = [UnionClock::IDLE; Wait::ALL.len()];
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

    fn fresh_registry() -> Registry {
        Registry {
            window: BTreeMap::new(),
            totals: BTreeMap::new(),
            clocks: [UnionClock::IDLE; Wait::ALL.len()],
        }
    }

    fn at(origin: Instant, ms: u64) -> Instant {
        origin + Duration::from_millis(ms)
    }

    #[test]
    fn overlapping_waits_count_their_union_not_their_sum() {
        let mut registry = fresh_registry();
        let t = Instant::now();
        // a: 0..90, b: 30..90, c: 60..120; in flight 90 + 60 + 60 = 210 ms
        // in sum, but at least one of them only during 0..120.
        registry.begin_wait(Wait::Gateway, at(t, 0));
        registry.begin_wait(Wait::Gateway, at(t, 30));
        registry.begin_wait(Wait::Gateway, at(t, 60));
        registry.end_wait(Wait::Gateway, at(t, 0), at(t, 90));
        registry.end_wait(Wait::Gateway, at(t, 30), at(t, 90));
        registry.end_wait(Wait::Gateway, at(t, 60), at(t, 120));
        let stats = registry.totals[names::WAIT_GATEWAY];
        assert!((stats.total_ms - 120.0).abs() < 1e-6, "{stats:?}");
        assert_eq!(stats.count, 3);
        assert!((stats.max_ms - 90.0).abs() < 1e-6, "{stats:?}");
        assert!((stats.avg_ms - 40.0).abs() < 1e-6, "{stats:?}");
        assert_eq!(registry.window[names::WAIT_GATEWAY], stats);
    }

    #[test]
    fn sequential_waits_add_up_and_idle_time_is_not_counted() {
        let mut registry = fresh_registry();
        let t = Instant::now();
        for (start, end) in [(0, 20), (50, 70), (70, 100)] {
            registry.begin_wait(Wait::Store, at(t, start));
            registry.end_wait(Wait::Store, at(t, start), at(t, end));
        }
        let stats = registry.totals[names::WAIT_STORE];
        assert!((stats.total_ms - 70.0).abs() < 1e-6, "{stats:?}");
        assert_eq!(stats.count, 3);
        assert!((stats.max_ms - 30.0).abs() < 1e-6, "{stats:?}");
    }

    #[test]
    fn kinds_are_separate_clocks() {
        let mut registry = fresh_registry();
        let t = Instant::now();
        registry.begin_wait(Wait::Aggregator, at(t, 0));
        registry.begin_wait(Wait::Backoff, at(t, 10));
        registry.end_wait(Wait::Backoff, at(t, 10), at(t, 30));
        registry.end_wait(Wait::Aggregator, at(t, 0), at(t, 50));
        assert!((registry.totals[names::WAIT_AGGREGATOR].total_ms - 50.0).abs() < 1e-6);
        assert!((registry.totals[names::WAIT_BACKOFF].total_ms - 20.0).abs() < 1e-6);
    }

    #[test]
    fn an_open_wait_is_split_between_windows_and_counted_once() {
        let mut registry = fresh_registry();
        let t = Instant::now();
        registry.begin_wait(Wait::Relay, at(t, 0));
        registry.credit_open_waits(at(t, 30));
        let first = std::mem::take(&mut registry.window)[names::WAIT_RELAY];
        assert!((first.total_ms - 30.0).abs() < 1e-6, "{first:?}");
        assert_eq!(first.count, 0, "the operation is counted when it ends");
        // A `counters` read in between credits the same instants only once.
        registry.credit_open_waits(at(t, 40));
        registry.end_wait(Wait::Relay, at(t, 0), at(t, 70));
        let second = std::mem::take(&mut registry.window)[names::WAIT_RELAY];
        assert!((second.total_ms - 40.0).abs() < 1e-6, "{second:?}");
        assert_eq!(second.count, 1);
        assert!((second.max_ms - 70.0).abs() < 1e-6, "{second:?}");
        let total = registry.totals[names::WAIT_RELAY];
        assert!((total.total_ms - 70.0).abs() < 1e-6, "{total:?}");
    }

    #[test]
    fn the_global_guard_records_union_time_and_is_inert_when_off() {
        let off = wait_when(false, Wait::Poll);
        assert!(off.active.is_none(), "off: no clock is touched");
        drop(off);
        set_enabled(true);
        let before = totals().get(names::WAIT_POLL).copied().unwrap_or_default();
        {
            let _outer = wait(Wait::Poll);
            let _inner = wait(Wait::Poll);
            std::thread::sleep(Duration::from_millis(5));
        }
        let after = totals()[names::WAIT_POLL];
        assert!(after.count - before.count >= 2);
        assert!(after.total_ms - before.total_ms >= 5.0);
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
