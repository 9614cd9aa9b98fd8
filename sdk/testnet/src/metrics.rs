//! What the network model did, counted per service.
//!
//! Served as JSON at `GET /metrics` on the gateway port so a soak can report
//! how many requests were throttled or faulted next to its timings: a slower
//! treatment that drew twice the 429s is a different story from one that
//! burned CPU.

use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

/// Counters of one service; cheap to bump from any task.
#[derive(Debug, Default)]
pub struct ServiceCounters {
    requests: AtomicU64,
    rate_limited: AtomicU64,
    dropped: AtomicU64,
    errors_5xx: AtomicU64,
    stalled: AtomicU64,
    disconnects: AtomicU64,
}

/// One kind of event the model counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counted {
    /// A request (or relay connection or event) reached the model.
    Request,
    /// Refused by the token bucket.
    RateLimited,
    /// Connection closed with no answer.
    Dropped,
    /// Answered 503 on purpose.
    Error5xx,
    /// Held for the stall time.
    Stalled,
    /// A relay client disconnected on purpose.
    Disconnect,
}

/// A point-in-time copy of [`ServiceCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct ServiceCountersSnapshot {
    /// Requests seen (relay: connections and events).
    pub requests: u64,
    /// Requests refused with 429 (relay: events refused).
    pub rate_limited: u64,
    /// Connections closed with no answer.
    pub dropped: u64,
    /// Requests answered 503 on purpose.
    pub errors_5xx: u64,
    /// Requests held for the stall time.
    pub stalled: u64,
    /// Relay clients disconnected on purpose.
    pub disconnects: u64,
}

impl ServiceCounters {
    /// Counts one event.
    pub fn bump(&self, what: Counted) {
        let counter = match what {
            Counted::Request => &self.requests,
            Counted::RateLimited => &self.rate_limited,
            Counted::Dropped => &self.dropped,
            Counted::Error5xx => &self.errors_5xx,
            Counted::Stalled => &self.stalled,
            Counted::Disconnect => &self.disconnects,
        };
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Reads every counter.
    pub fn snapshot(&self) -> ServiceCountersSnapshot {
        ServiceCountersSnapshot {
            requests: self.requests.load(Ordering::Relaxed),
            rate_limited: self.rate_limited.load(Ordering::Relaxed),
            dropped: self.dropped.load(Ordering::Relaxed),
            errors_5xx: self.errors_5xx.load(Ordering::Relaxed),
            stalled: self.stalled.load(Ordering::Relaxed),
            disconnects: self.disconnects.load(Ordering::Relaxed),
        }
    }
}

/// The document served at `GET /metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct MetricsReport {
    /// The network profile's name.
    pub profile: String,
    /// The profile's seed.
    pub seed: u64,
    /// The profile's time scale.
    pub time_scale: f64,
    /// Aggregator counters.
    pub aggregator: ServiceCountersSnapshot,
    /// Gateway counters.
    pub gateway: ServiceCountersSnapshot,
    /// Relay counters.
    pub relay: ServiceCountersSnapshot,
}
