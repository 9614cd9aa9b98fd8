//! Retrying HTTP requests that a service refused or never answered.
//!
//! A request is tried again when the answer is 429 (rate limited), a 5xx, or
//! no answer at all (connection dropped, timed out). [`RetryPolicy`] says how
//! often and how long to wait; [`retry_delay`] is the pure schedule: an
//! exponential backoff from [`RetryPolicy::base`] doubling up to
//! [`RetryPolicy::max`], never shorter than what the server asked for with
//! the standard `Retry-After` ([`server_hint`]). The schedule is
//! deterministic (no jitter), so two runs of a soak wait alike.
//!
//! `Retry-After` counts whole seconds, which is all a public IPFS gateway
//! or JSON-RPC service sends: a refused request waits at least a second,
//! however soon the server's token bucket would have let it in. That second
//! is the SDK's own, scaled like its other timers
//! ([`RetryPolicy::server_second`]), so a soak at `SPHERE_TIME_SCALE` 0.1
//! keeps the shape of one at 1. No non-standard exact-wait header is read.
//!
//! ```
//! use std::time::Duration;
//! use sphere_sdk::transport::retry::{RetryPolicy, retry_delay};
//!
//! let policy = RetryPolicy {
//!     max_attempts: 12,
//!     base: Duration::from_millis(200),
//!     max: Duration::from_secs(5),
//!     server_second: Duration::from_secs(1),
//! };
//! assert_eq!(retry_delay(1, &policy, None), Duration::from_millis(200));
//! assert_eq!(retry_delay(3, &policy, None), Duration::from_millis(800));
//! assert_eq!(retry_delay(1, &policy, Some(Duration::from_secs(1))), Duration::from_secs(1));
//! ```
//!
//! The module also holds what both service clients share: building the
//! `reqwest` client that names itself with `x-sphere-client`, and the retry
//! loop itself.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, HeaderValue, RETRY_AFTER};

use crate::config::Timers;
use crate::perf;

/// The header that gives each client its own rate-limit bucket.
pub const CLIENT_HEADER: &str = "x-sphere-client";

/// The longest wait a server's hint can impose; a bogus `Retry-After` of an
/// hour must not stall a wallet.
pub const MAX_SERVER_HINT: Duration = Duration::from_secs(60);

/// How long one HTTP exchange may take before it counts as unanswered.
/// Not scaled: a stalled request must fail and be retried whatever the time
/// scale, and a large CAR over a slow link must still fit.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// How often and how patiently a request is retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included; at least one is always made.
    pub max_attempts: u32,
    /// Wait after the first failed attempt.
    pub base: Duration,
    /// Longest wait of the doubling backoff.
    pub max: Duration,
    /// How long one second of a server's `Retry-After` lasts for this SDK:
    /// one second scaled by its time scale.
    pub server_second: Duration,
}

impl RetryPolicy {
    /// Attempts made by [`RetryPolicy::from_timers`].
    pub const DEFAULT_ATTEMPTS: u32 = 12;

    /// The SDK's policy: [`Timers::retry_backoff`] doubling up to
    /// [`Timers::retry_backoff_max`], [`RetryPolicy::DEFAULT_ATTEMPTS`] attempts,
    /// and a server's second scaled as the timers are.
    pub fn from_timers(timers: &Timers) -> RetryPolicy {
        RetryPolicy {
            max_attempts: Self::DEFAULT_ATTEMPTS,
            base: timers.retry_backoff(),
            max: timers.retry_backoff_max(),
            server_second: timers.scaled(1_000),
        }
    }

    /// The backoff after failed attempt number `attempt` (1-based), ignoring
    /// any server hint: `base * 2^(attempt-1)`, at most `max`.
    pub fn backoff(&self, attempt: u32) -> Duration {
        let doublings = attempt.saturating_sub(1).min(31);
        self.base.saturating_mul(1u32 << doublings).min(self.max)
    }
}

/// How long to wait after failed attempt number `attempt` (1-based).
///
/// Without a hint this is [`RetryPolicy::backoff`]. With one, the server's
/// value is a floor (coming back sooner is sure to be refused again) capped
/// at [`MAX_SERVER_HINT`]; the backoff still applies above it, so requests
/// refused together (a fan-out against one token bucket) drift apart instead
/// of all coming back at the same instant for the same single token.
pub fn retry_delay(attempt: u32, policy: &RetryPolicy, server_hint: Option<Duration>) -> Duration {
    let backoff = policy.backoff(attempt);
    match server_hint {
        None => backoff,
        Some(hint) => hint.min(MAX_SERVER_HINT).max(backoff),
    }
}

/// The wait a refusal asks for: `Retry-After` in whole seconds, each
/// `second` long (see [`RetryPolicy::server_second`]). The HTTP-date form
/// of `Retry-After` is not understood and gives `None`; so does a number
/// too large to hold (the cap in [`retry_delay`] applies to the rest).
pub fn server_hint(headers: &HeaderMap, second: Duration) -> Option<Duration> {
    let seconds: u32 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(second.saturating_mul(seconds))
}

/// Why a service client could not be built.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// The base URL does not parse or is not `http(s)://`.
    #[error("invalid {service} url `{url}`: {reason}")]
    BadUrl {
        /// Which service the URL is for.
        service: &'static str,
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The client id cannot be sent as a header value.
    #[error("invalid client id `{client_id}`: it must be visible ascii to go in `x-sphere-client`")]
    BadClientId {
        /// The id as given.
        client_id: String,
    },
    /// The HTTP client could not be built.
    #[error("cannot build the http client: {0}")]
    Client(#[source] reqwest::Error),
}

/// What the last failed attempt of a request saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LastAnswer {
    /// The service answered with this (retryable) status.
    Status(StatusCode),
    /// No answer: the connection failed, was dropped, or timed out.
    NoAnswer(String),
}

impl fmt::Display for LastAnswer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LastAnswer::Status(status) => write!(f, "last answer {status}"),
            LastAnswer::NoAnswer(reason) => write!(f, "no answer ({reason})"),
        }
    }
}

/// A base URL, checked and without its trailing slash.
pub(crate) fn base_url(service: &'static str, url: &str) -> Result<String, TransportError> {
    let bad = |reason: String| TransportError::BadUrl {
        service,
        url: url.to_owned(),
        reason,
    };
    let parsed = reqwest::Url::parse(url).map_err(|e| bad(e.to_string()))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(bad(format!(
            "scheme `{}` is not http or https",
            parsed.scheme()
        )));
    }
    if parsed.query().is_some() || parsed.fragment().is_some() {
        return Err(bad("a base url takes no query or fragment".to_owned()));
    }
    Ok(url.trim_end_matches('/').to_owned())
}

/// One `reqwest` client for one service, naming `client_id` on every request.
pub(crate) fn http_client(client_id: &str) -> Result<reqwest::Client, TransportError> {
    let value = HeaderValue::from_str(client_id).map_err(|_| TransportError::BadClientId {
        client_id: client_id.to_owned(),
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(CLIENT_HEADER, value);
    reqwest::Client::builder()
        .default_headers(headers)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(TransportError::Client)
}

/// One HTTP answer, read whole.
#[derive(Debug)]
pub(crate) struct Answer {
    pub(crate) status: StatusCode,
    pub(crate) headers: HeaderMap,
    pub(crate) body: Bytes,
}

impl Answer {
    /// The body as text, shortened for an error message.
    pub(crate) fn body_excerpt(&self) -> String {
        let text = String::from_utf8_lossy(&self.body);
        let text = text.trim();
        match text.char_indices().nth(200) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text.to_owned(),
        }
    }
}

/// The perf counters one kind of call records.
#[derive(Debug, Clone, Copy)]
pub(crate) struct CallCounters {
    /// The service whose `wait.*` union each attempt is in flight for.
    pub(crate) service: perf::Wait,
    /// Timer around each HTTP attempt.
    pub(crate) attempt: Option<&'static str>,
    /// Counted for each 429.
    pub(crate) rate_limited: &'static str,
    /// Counted for each attempt after the first.
    pub(crate) retry: Option<&'static str>,
}

/// What the attempts of one or more requests met.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    pub(crate) requests: u32,
    pub(crate) retries: u32,
    pub(crate) rate_limited: u32,
}

impl Tally {
    pub(crate) fn add(&mut self, other: Tally) {
        self.requests += other.requests;
        self.retries += other.retries;
        self.rate_limited += other.rate_limited;
    }
}

/// Why [`send_with_retry`] gave up.
#[derive(Debug)]
pub(crate) enum SendError {
    /// Every attempt was refused or unanswered.
    Exhausted { attempts: u32, last: LastAnswer },
    /// The request could not even be built (not worth retrying).
    Unsendable(String),
}

/// Sends the request `build` makes until it gets an answer worth returning.
///
/// 429s, unanswered attempts, and 5xx answers for which `retry_5xx` says yes
/// are retried per `policy`; any other answer, success or not, is returned
/// for the caller to read. `tally` counts every attempt.
pub(crate) async fn send_with_retry(
    policy: &RetryPolicy,
    counters: CallCounters,
    tally: &mut Tally,
    mut build: impl FnMut() -> reqwest::RequestBuilder,
    retry_5xx: impl Fn(&Answer) -> bool,
) -> Result<Answer, SendError> {
    let mut attempt = 0u32;
    loop {
        attempt += 1;
        tally.requests += 1;
        if attempt > 1 {
            tally.retries += 1;
            if let Some(name) = counters.retry {
                perf::incr(name);
            }
        }
        let result = {
            let _timer = counters.attempt.map(perf::time);
            let _wait = perf::wait(counters.service);
            exchange(build()).await
        };
        let (last, hint) = match result {
            Ok(answer) if answer.status == StatusCode::TOO_MANY_REQUESTS => {
                tally.rate_limited += 1;
                perf::incr(counters.rate_limited);
                (
                    LastAnswer::Status(answer.status),
                    server_hint(&answer.headers, policy.server_second),
                )
            }
            Ok(answer) if answer.status.is_server_error() && retry_5xx(&answer) => (
                LastAnswer::Status(answer.status),
                server_hint(&answer.headers, policy.server_second),
            ),
            Ok(answer) => return Ok(answer),
            Err(error) if error.is_builder() => {
                return Err(SendError::Unsendable(error_chain(&error)));
            }
            Err(error) => (LastAnswer::NoAnswer(error_chain(&error)), None),
        };
        if attempt >= policy.max_attempts {
            return Err(SendError::Exhausted {
                attempts: attempt,
                last,
            });
        }
        perf::waited(
            perf::Wait::Backoff,
            tokio::time::sleep(retry_delay(attempt, policy, hint)),
        )
        .await;
    }
}

/// One attempt: send, then read the whole body, so an answer cut short is
/// retried like one never given.
async fn exchange(request: reqwest::RequestBuilder) -> Result<Answer, reqwest::Error> {
    let response = request.send().await?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await?;
    Ok(Answer {
        status,
        headers,
        body,
    })
}

/// An error and its causes on one line: reqwest's own message alone rarely
/// says what happened ("error sending request").
pub(crate) fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            max_attempts: 12,
            base: Duration::from_millis(200),
            max: Duration::from_secs(5),
            server_second: Duration::from_secs(1),
        }
    }

    #[test]
    fn backoff_doubles_from_base_to_max() {
        let p = policy();
        let waits: Vec<u128> = (1..=7)
            .map(|a| retry_delay(a, &p, None).as_millis())
            .collect();
        assert_eq!(waits, [200, 400, 800, 1600, 3200, 5000, 5000]);
        // Huge attempt numbers saturate instead of overflowing.
        assert_eq!(retry_delay(u32::MAX, &p, None), Duration::from_secs(5));
        assert_eq!(retry_delay(0, &p, None), Duration::from_millis(200));
    }

    #[test]
    fn server_hint_is_a_floor_and_is_capped() {
        let p = policy();
        assert_eq!(
            retry_delay(1, &p, Some(Duration::from_millis(50))),
            Duration::from_millis(200)
        );
        assert_eq!(
            retry_delay(1, &p, Some(Duration::from_millis(700))),
            Duration::from_millis(700)
        );
        assert_eq!(
            retry_delay(4, &p, Some(Duration::from_millis(700))),
            Duration::from_millis(1600)
        );
        assert_eq!(
            retry_delay(1, &p, Some(Duration::from_secs(3600))),
            MAX_SERVER_HINT
        );
    }

    #[test]
    fn policy_from_timers_is_scaled() {
        let p = RetryPolicy::from_timers(&Timers::new(0.1).unwrap());
        assert_eq!(p.base, Duration::from_millis(20));
        assert_eq!(p.max, Duration::from_millis(500));
        assert_eq!(p.server_second, Duration::from_millis(100));
        assert_eq!(p.max_attempts, RetryPolicy::DEFAULT_ATTEMPTS);
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn hint_is_whole_seconds_of_the_sdks_time() {
        let second = Duration::from_secs(1);
        let seconds = headers(&[("retry-after", " 3 ")]);
        assert_eq!(server_hint(&seconds, second), Some(Duration::from_secs(3)));
        // At time scale 0.1 a server's second lasts 100 ms.
        let scaled = Duration::from_millis(100);
        assert_eq!(
            server_hint(&seconds, scaled),
            Some(Duration::from_millis(300))
        );
        // A non-standard exact header is not read: a public gateway sends none.
        let exact = headers(&[("retry-after", "1"), ("retry-after-ms", "40")]);
        assert_eq!(server_hint(&exact, second), Some(second));
        let only_exact = headers(&[("retry-after-ms", "40")]);
        assert_eq!(server_hint(&only_exact, second), None);
        let date = headers(&[("retry-after", "Wed, 21 Oct 2015 07:28:00 GMT")]);
        assert_eq!(server_hint(&date, second), None);
        assert_eq!(server_hint(&HeaderMap::new(), second), None);
    }

    #[test]
    fn last_answer_reads_well() {
        let status = LastAnswer::Status(StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(status.to_string(), "last answer 429 Too Many Requests");
        let none = LastAnswer::NoAnswer("connection closed".into());
        assert_eq!(none.to_string(), "no answer (connection closed)");
    }

    #[test]
    fn base_urls_are_checked_and_trimmed() {
        assert_eq!(
            base_url("gateway", "http://127.0.0.1:5001/").unwrap(),
            "http://127.0.0.1:5001"
        );
        let err = base_url("gateway", "ws://127.0.0.1:1").unwrap_err();
        assert!(err.to_string().contains("`ws://127.0.0.1:1`"), "{err}");
        assert!(base_url("aggregator", "not a url").is_err());
        assert!(base_url("aggregator", "http://h/?x=1").is_err());
    }

    #[test]
    fn client_ids_must_fit_a_header() {
        assert!(http_client("peer-1").is_ok());
        let err = http_client("bad\nid").unwrap_err();
        assert!(matches!(err, TransportError::BadClientId { .. }), "{err}");
    }
}
