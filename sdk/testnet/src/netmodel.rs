//! The network model: what happens to a request before a service sees it.
//!
//! Each service has one [`ServiceGate`], built from its [`ServiceModel`]. For
//! every request the gate decides an [`Admission`]: forward it after a
//! one-way delay (and delay the answer by another), refuse it because the
//! client's token bucket is empty, close the connection, answer 503, or hold
//! it for the stall time first.
//!
//! Determinism: all randomness comes from one ChaCha RNG per service seeded
//! from the profile's seed, and every decision draws the same number of values
//! whatever its outcome, so the same seed and the same order of requests give
//! the same delays and faults. Rate limiting depends on wall-clock time by
//! nature and is the one input that is not replayed.

use std::{
    collections::HashMap,
    num::NonZeroU32,
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use governor::{
    DefaultKeyedRateLimiter, Quota, RateLimiter,
    clock::{Clock, DefaultClock},
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    metrics::{Counted, ServiceCounters},
    profile::{MAX_DURATION_MS, MAX_TIME_SCALE, NetworkProfile, Service, ServiceModel},
};

/// The longest refill period of a rate limit: [`MAX_DURATION_MS`] at
/// [`MAX_TIME_SCALE`].
const LONGEST_PERIOD: Duration =
    Duration::from_secs(MAX_DURATION_MS / 1000 * MAX_TIME_SCALE as u64);

/// What to do with one request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Admission {
    /// Serve it: wait `before`, handle it, wait `after`, answer.
    Forward {
        /// Delay before the service sees the request (includes any stall).
        before: Duration,
        /// Delay before the client sees the answer.
        after: Duration,
    },
    /// Answer 429 after `delay`, telling the client to come back in `retry_after`.
    RateLimited {
        /// The client may be served again in this long: its bucket's next
        /// token, or the end of its lockout, rounded up to whole seconds of
        /// the profile's time.
        retry_after: Duration,
        /// `retry_after` in the profile's seconds, as `Retry-After` says it.
        retry_after_s: u64,
        /// The round trip the refusal still costs.
        delay: Duration,
    },
    /// Close the connection with no answer after `delay`.
    Drop {
        /// Time before the connection is closed.
        delay: Duration,
    },
    /// Answer 503 after `delay`.
    ServerError {
        /// Time before the error is answered.
        delay: Duration,
    },
}

/// The per-service decision maker. Shared by every connection of the service.
#[derive(Debug)]
pub struct ServiceGate {
    service: Service,
    one_way: Duration,
    jitter: Duration,
    drop_share: f64,
    error_share: f64,
    stall_share: f64,
    stall: Duration,
    disconnect_mean: Option<Duration>,
    rng: Mutex<ChaCha8Rng>,
    limiter: Option<DefaultKeyedRateLimiter<String>>,
    /// Path prefixes the limiter covers; `None`: all.
    limited_paths: Option<Vec<String>>,
    clock: DefaultClock,
    /// One second of the profile's time (`time_scale` real seconds): the
    /// unit of `Retry-After`.
    second: Duration,
    /// How long a client that found its bucket empty is refused, scaled.
    lockout: Option<Duration>,
    /// Clients refused until an instant (with a lockout).
    blocked: Mutex<HashMap<String, Instant>>,
    counters: Arc<ServiceCounters>,
}

impl ServiceGate {
    /// Builds the gate of `service` from `profile`, with its scaled durations.
    pub fn new(profile: &NetworkProfile, service: Service) -> Self {
        let model: &ServiceModel = profile.service(service);
        // Each service gets its own stream so that traffic on one cannot
        // shift the delays drawn for another.
        let stream = match service {
            Service::Aggregator => 1,
            Service::Gateway => 2,
            Service::Relay => 3,
        };
        let mut rng = ChaCha8Rng::seed_from_u64(profile.seed);
        rng.set_stream(stream);
        let limiter = model.rate_limit.as_ref().and_then(|limit| {
            // Validation keeps the period within a day at the largest scale;
            // clamp to that too, so that a profile built by hand cannot make
            // this (or governor, past 584 years) panic.
            let period = Duration::try_from_secs_f64(profile.time_scale / limit.per_second)
                .map_or(LONGEST_PERIOD, |period| period.min(LONGEST_PERIOD));
            let burst = NonZeroU32::new(limit.burst)?;
            // `with_period` refuses a zero period; a period under a
            // nanosecond is no limit at all in practice.
            Quota::with_period(period.max(Duration::from_nanos(1)))
                .map(|quota| RateLimiter::keyed(quota.allow_burst(burst)))
        });
        ServiceGate {
            service,
            one_way: profile.scaled(model.rtt_ms) / 2,
            jitter: profile.scaled(model.jitter_ms),
            drop_share: model.faults.drop,
            error_share: model.faults.error_5xx,
            stall_share: model.faults.stall,
            stall: profile.scaled(model.faults.stall_ms),
            disconnect_mean: model.disconnect_mean_ms.map(|ms| profile.scaled(ms)),
            rng: Mutex::new(rng),
            lockout: model
                .rate_limit
                .as_ref()
                .and_then(|limit| limit.lockout_ms)
                .map(|ms| profile.scaled(ms)),
            limiter,
            limited_paths: model
                .rate_limit
                .as_ref()
                .and_then(|limit| limit.paths.clone()),
            clock: DefaultClock::default(),
            second: profile.scaled(1000).max(Duration::from_nanos(1)),
            blocked: Mutex::new(HashMap::new()),
            counters: Arc::new(ServiceCounters::default()),
        }
    }

    /// Which service this gate guards.
    pub fn service(&self) -> Service {
        self.service
    }

    /// The counters this gate bumps.
    pub fn counters(&self) -> &Arc<ServiceCounters> {
        &self.counters
    }

    /// Decides the fate of one request from `client` to `path` and counts
    /// it; the rate limit applies only if it covers `path`.
    pub fn admit_request(&self, client: &str, path: &str) -> Admission {
        let limited = self
            .limited_paths
            .as_ref()
            .is_none_or(|prefixes| prefixes.iter().any(|p| path.starts_with(p.as_str())));
        self.admit_with(client, limited)
    }

    /// Decides the fate of one request from `client`, which the rate limit
    /// covers, and counts it.
    pub fn admit(&self, client: &str) -> Admission {
        self.admit_with(client, true)
    }

    fn admit_with(&self, client: &str, limited: bool) -> Admission {
        self.counters.bump(Counted::Request);
        let (before, after, roll) = {
            let mut rng = self.lock_rng();
            let before = self.draw_one_way(&mut rng);
            let after = self.draw_one_way(&mut rng);
            (before, after, rng.random::<f64>())
        };
        if let Some(retry_after) = limited.then(|| self.check_rate(client)).flatten() {
            self.counters.bump(Counted::RateLimited);
            return Admission::RateLimited {
                retry_after,
                retry_after_s: self.in_seconds(retry_after),
                delay: before.saturating_add(after),
            };
        }
        let drop_until = self.drop_share;
        let error_until = drop_until + self.error_share;
        let stall_until = error_until + self.stall_share;
        if roll < drop_until {
            self.counters.bump(Counted::Dropped);
            Admission::Drop { delay: before }
        } else if roll < error_until {
            self.counters.bump(Counted::Error5xx);
            Admission::ServerError {
                delay: before.saturating_add(after),
            }
        } else if roll < stall_until {
            self.counters.bump(Counted::Stalled);
            Admission::Forward {
                before: before.saturating_add(self.stall),
                after,
            }
        } else {
            Admission::Forward { before, after }
        }
    }

    /// Takes a token from `client`'s bucket; `Some(wait)` when the client
    /// is refused: its bucket is empty, or it is locked out. The wait is
    /// whole seconds of the profile's time, as a `Retry-After` header can
    /// say it; with a lockout the client is refused for all of it. Used
    /// directly for relay events, which are not HTTP requests.
    pub fn check_rate(&self, client: &str) -> Option<Duration> {
        let limiter = self.limiter.as_ref()?;
        let now = Instant::now();
        let mut blocked = self.blocked.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&until) = blocked.get(client) {
            if until > now {
                return Some(until - now);
            }
            blocked.remove(client);
        }
        let wait = match limiter.check_key(&client.to_owned()) {
            Ok(()) => return None,
            Err(not_until) => not_until.wait_time_from(self.clock.now()),
        };
        let wait = self.whole_seconds(wait.max(self.lockout.unwrap_or_default()));
        if self.lockout.is_some() {
            // A lockout past what an Instant can hold is forever enough.
            let until = now
                .checked_add(wait)
                .or_else(|| now.checked_add(LONGEST_PERIOD))
                .unwrap_or(now);
            blocked.insert(client.to_owned(), until);
        }
        Some(wait)
    }

    /// `wait` rounded up to whole seconds of the profile's time (at least
    /// one).
    fn whole_seconds(&self, wait: Duration) -> Duration {
        self.second
            .saturating_mul(u32::try_from(self.in_seconds(wait)).unwrap_or(u32::MAX))
    }

    /// `wait` in seconds of the profile's time, rounded up, at least 1.
    fn in_seconds(&self, wait: Duration) -> u64 {
        let second = self.second.as_nanos().max(1);
        u64::try_from(wait.as_nanos().div_ceil(second).max(1)).unwrap_or(u64::MAX)
    }

    /// One draw of the one-way delay: half the RTT, plus or minus jitter.
    pub fn one_way_delay(&self) -> Duration {
        let mut rng = self.lock_rng();
        self.draw_one_way(&mut rng)
    }

    /// How long until the next forced disconnect of a relay client, drawn
    /// from an exponential distribution; `None` when disconnects are off.
    pub fn next_disconnect(&self) -> Option<Duration> {
        let mean = self.disconnect_mean?;
        let u: f64 = self.lock_rng().random();
        // Inverse-CDF sampling; `1 - u` is in (0, 1], so the log is finite
        // (at most about 37). Checked all the same: `mul_f64` panics on
        // overflow, and the mean comes from the profile.
        let factor = -(1.0 - u).ln();
        Some(Duration::try_from_secs_f64(mean.as_secs_f64() * factor).unwrap_or(Duration::MAX))
    }

    fn draw_one_way(&self, rng: &mut ChaCha8Rng) -> Duration {
        // Always draw, even with no jitter, so the sequence of draws does not
        // depend on the profile's shape.
        let offset: f64 = rng.random_range(-1.0..=1.0);
        let jitter = self.jitter.mul_f64(offset.abs());
        if offset >= 0.0 {
            self.one_way.saturating_add(jitter)
        } else {
            self.one_way.saturating_sub(jitter)
        }
    }

    fn lock_rng(&self) -> std::sync::MutexGuard<'_, ChaCha8Rng> {
        // A panic while holding this lock cannot leave the RNG in a state
        // worse than any other, so a poisoned lock is simply taken over.
        self.rng
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

/// The three gates of one testnet.
#[derive(Debug, Clone)]
pub struct NetworkModel {
    /// The aggregator's gate.
    pub aggregator: Arc<ServiceGate>,
    /// The gateway's gate.
    pub gateway: Arc<ServiceGate>,
    /// The relay's gate.
    pub relay: Arc<ServiceGate>,
}

impl NetworkModel {
    /// Builds every gate from `profile`.
    pub fn new(profile: &NetworkProfile) -> Self {
        NetworkModel {
            aggregator: Arc::new(ServiceGate::new(profile, Service::Aggregator)),
            gateway: Arc::new(ServiceGate::new(profile, Service::Gateway)),
            relay: Arc::new(ServiceGate::new(profile, Service::Relay)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile(text: &str, overrides: &[&str]) -> NetworkProfile {
        let overrides: Vec<String> = overrides.iter().map(|s| (*s).to_owned()).collect();
        NetworkProfile::from_toml("test", text, "test", &overrides).unwrap()
    }

    fn decisions(gate: &ServiceGate, n: usize) -> Vec<Admission> {
        (0..n)
            .map(|i| gate.admit(&format!("client-{}", i % 3)))
            .collect()
    }

    const LOSSY: &str = "[gateway]\nrtt_ms = 100\njitter_ms = 40\n\
        faults = { drop = 0.1, error_5xx = 0.1, stall = 0.1, stall_ms = 1000 }\n";

    #[test]
    fn same_seed_gives_same_delays_and_faults() {
        let p = profile(LOSSY, &["seed=42"]);
        let a = ServiceGate::new(&p, Service::Gateway);
        let b = ServiceGate::new(&p, Service::Gateway);
        assert_eq!(decisions(&a, 200), decisions(&b, 200));
    }

    #[test]
    fn different_seed_gives_different_delays() {
        let a = ServiceGate::new(&profile(LOSSY, &["seed=1"]), Service::Gateway);
        let b = ServiceGate::new(&profile(LOSSY, &["seed=2"]), Service::Gateway);
        assert_ne!(decisions(&a, 50), decisions(&b, 50));
    }

    #[test]
    fn services_draw_from_separate_streams() {
        let text =
            "[gateway]\nrtt_ms = 100\njitter_ms = 40\n[aggregator]\nrtt_ms = 100\njitter_ms = 40\n";
        let p = profile(text, &[]);
        let gateway = ServiceGate::new(&p, Service::Gateway);
        let aggregator = ServiceGate::new(&p, Service::Aggregator);
        assert_ne!(decisions(&gateway, 20), decisions(&aggregator, 20));
    }

    #[test]
    fn delays_stay_within_rtt_and_jitter() {
        let gate = ServiceGate::new(&profile(LOSSY, &["gateway.faults={}"]), Service::Gateway);
        for admission in decisions(&gate, 500) {
            let Admission::Forward { before, after } = admission else {
                panic!("no faults configured, got {admission:?}");
            };
            for d in [before, after] {
                assert!(
                    d >= Duration::from_millis(10) && d <= Duration::from_millis(90),
                    "{d:?}"
                );
            }
        }
    }

    #[test]
    fn time_scale_multiplies_every_delay() {
        let full = ServiceGate::new(&profile(LOSSY, &["time_scale=1.0"]), Service::Gateway);
        let tenth = ServiceGate::new(&profile(LOSSY, &["time_scale=0.1"]), Service::Gateway);
        for (a, b) in decisions(&full, 100)
            .into_iter()
            .zip(decisions(&tenth, 100))
        {
            let (
                Admission::Forward {
                    before: fa,
                    after: _,
                },
                Admission::Forward { before: ta, .. },
            ) = (a, b)
            else {
                assert_eq!(std::mem::discriminant(&a), std::mem::discriminant(&b));
                continue;
            };
            let ratio = ta.as_secs_f64() / fa.as_secs_f64();
            assert!((ratio - 0.1).abs() < 1e-6, "{fa:?} vs {ta:?}");
        }
    }

    #[test]
    fn fault_shares_are_honoured_roughly() {
        let gate = ServiceGate::new(&profile(LOSSY, &[]), Service::Gateway);
        let all = decisions(&gate, 5000);
        let drops = all
            .iter()
            .filter(|a| matches!(a, Admission::Drop { .. }))
            .count();
        let errors = all
            .iter()
            .filter(|a| matches!(a, Admission::ServerError { .. }))
            .count();
        // 10 % each: 500 expected, far outside 350..650 only if the roll is wrong.
        assert!((350..650).contains(&drops), "{drops}");
        assert!((350..650).contains(&errors), "{errors}");
        let snapshot = gate.counters().snapshot();
        assert_eq!(snapshot.requests, 5000);
        assert_eq!(snapshot.dropped as usize, drops);
        assert_eq!(snapshot.errors_5xx as usize, errors);
    }

    #[test]
    fn a_limit_on_some_paths_leaves_the_others_alone() {
        // Each request in turn: served, refused with a 429, or anything else.
        fn answers(gate: &ServiceGate, paths: &[&str]) -> Vec<&'static str> {
            paths
                .iter()
                .map(|path| match gate.admit_request("a", path) {
                    Admission::Forward { .. } => "served",
                    Admission::RateLimited { .. } => "429",
                    _ => "other",
                })
                .collect()
        }
        let text =
            "[gateway]\nrate_limit = { per_second = 0.01, burst = 2, paths = [\"/ipfs/\"] }\n";
        let gate = ServiceGate::new(&profile(text, &[]), Service::Gateway);
        let pins = answers(&gate, &["/api/v0/dag/import"; 10]);
        assert_eq!(pins, ["served"; 10]);
        let reads = answers(&gate, &["/ipfs/bafy"; 3]);
        assert_eq!(reads, ["served", "served", "429"]);
        // Without `paths` every request draws on the bucket.
        let text = "[gateway]\nrate_limit = { per_second = 0.01, burst = 2 }\n";
        let gate = ServiceGate::new(&profile(text, &[]), Service::Gateway);
        let pins = answers(&gate, &["/api/v0/x"; 3]);
        assert_eq!(pins, ["served", "served", "429"]);
    }

    #[test]
    fn empty_bucket_refuses_with_a_retry_time() {
        // One token per 100 s: the third request of a burst of two must wait.
        let text = "[aggregator]\nrate_limit = { per_second = 0.01, burst = 2 }\n";
        let gate = ServiceGate::new(&profile(text, &[]), Service::Aggregator);
        assert!(matches!(gate.admit("a"), Admission::Forward { .. }));
        assert!(matches!(gate.admit("a"), Admission::Forward { .. }));
        let Admission::RateLimited { retry_after, .. } = gate.admit("a") else {
            panic!("third request should be refused");
        };
        assert!(retry_after > Duration::from_secs(50), "{retry_after:?}");
        // Buckets are per client.
        assert!(matches!(gate.admit("b"), Admission::Forward { .. }));
        assert_eq!(gate.counters().snapshot().rate_limited, 1);
    }

    #[test]
    fn a_throttled_client_is_locked_out_for_whole_seconds() {
        // 10 tokens a second, burst 2, a 3 s lockout, at 1/10 time: the
        // bucket refills a token every 10 ms real, yet the client stays
        // refused for the lockout (300 ms real) and is told 3 seconds.
        // The sleeps only ever need to be long enough, never short.
        let text = "time_scale = 0.1\n[gateway]\nrate_limit = { per_second = 10.0, burst = 2, lockout_ms = 3000 }\n";
        let gate = ServiceGate::new(&profile(text, &[]), Service::Gateway);
        assert!(matches!(gate.admit("a"), Admission::Forward { .. }));
        assert!(matches!(gate.admit("a"), Admission::Forward { .. }));
        let locked_at = Instant::now();
        let Admission::RateLimited {
            retry_after,
            retry_after_s,
            ..
        } = gate.admit("a")
        else {
            panic!("the third request of a burst of two should be refused");
        };
        assert_eq!(retry_after_s, 3);
        assert_eq!(retry_after, Duration::from_millis(300));
        std::thread::sleep(Duration::from_millis(40));
        // Tokens are back; the lockout is not over (unless this thread
        // slept through it, which says nothing about the gate).
        if locked_at.elapsed() < Duration::from_millis(250) {
            assert!(matches!(gate.admit("a"), Admission::RateLimited { .. }));
        }
        // Other clients are not locked out.
        assert!(matches!(gate.admit("b"), Admission::Forward { .. }));
        std::thread::sleep(Duration::from_millis(310));
        assert!(matches!(gate.admit("a"), Admission::Forward { .. }));
    }

    #[test]
    fn without_a_lockout_a_refusal_lasts_until_the_next_token_in_whole_seconds() {
        // One token per 2.5 s of profile time: the wait rounds up to 3.
        let text = "[aggregator]\nrate_limit = { per_second = 0.4, burst = 1 }\n";
        let gate = ServiceGate::new(&profile(text, &[]), Service::Aggregator);
        assert!(matches!(gate.admit("a"), Admission::Forward { .. }));
        let Admission::RateLimited { retry_after_s, .. } = gate.admit("a") else {
            panic!("the second request should be refused");
        };
        assert_eq!(retry_after_s, 3);
    }

    #[test]
    fn a_gate_from_an_unvalidated_profile_saturates_instead_of_panicking() {
        let mut p = profile("", &[]);
        p.time_scale = 1e30;
        for model in [&mut p.aggregator, &mut p.gateway, &mut p.relay] {
            model.rtt_ms = u64::MAX;
            model.jitter_ms = u64::MAX;
            model.rate_limit = Some(crate::profile::RateLimit {
                per_second: 1e-300,
                burst: 1,
                lockout_ms: Some(u64::MAX),
                paths: None,
            });
            model.faults.stall = 1.0;
            model.faults.stall_ms = u64::MAX;
        }
        p.relay.disconnect_mean_ms = Some(u64::MAX);
        for service in Service::ALL {
            let gate = ServiceGate::new(&p, service);
            for _ in 0..3 {
                let _ = gate.admit("a");
                let _ = gate.one_way_delay();
            }
            if service == Service::Relay {
                assert!(gate.next_disconnect().is_some());
            }
        }
    }

    #[test]
    fn disconnects_follow_the_configured_mean() {
        let text = "[relay]\ndisconnect_mean_ms = 1000\n";
        let gate = ServiceGate::new(&profile(text, &[]), Service::Relay);
        let n = 4000;
        let total: f64 = (0..n)
            .map(|_| gate.next_disconnect().unwrap().as_secs_f64())
            .sum();
        let mean = total / n as f64;
        assert!((0.9..1.1).contains(&mean), "{mean}");
        let none = ServiceGate::new(&profile("", &[]), Service::Relay);
        assert_eq!(none.next_disconnect(), None);
    }
}
