//! Network profiles: what the network model does, as data.
//!
//! A [`NetworkProfile`] is read from TOML (a shipped profile by name, or a
//! file), then adjusted by `key=value` overrides from the command line, then
//! validated. Durations are written in milliseconds of *unscaled* time;
//! [`NetworkProfile::scaled`] multiplies them by `time_scale`, which is how
//! CI runs the realistic shape ten times faster.
//!
//! ```toml
//! name = "example"
//! seed = 7
//! time_scale = 0.1
//! [gateway]
//! rtt_ms = 150
//! jitter_ms = 50
//! propagation_ms = 3000
//! rate_limit = { per_second = 8.0, burst = 16 }
//! faults = { drop = 0.01, error_5xx = 0.02, stall = 0.01, stall_ms = 5000 }
//! ```

use std::{fmt, path::Path, time::Duration};

use serde::{Deserialize, Serialize};

/// The profiles shipped with the testnet, by name.
const BUILTIN_PROFILES: &[(&str, &str)] = &[
    ("ci", include_str!("../profiles/ci.toml")),
    ("ideal", include_str!("../profiles/ideal.toml")),
    ("lossy", include_str!("../profiles/lossy.toml")),
    ("quick", include_str!("../profiles/quick.toml")),
    ("realistic", include_str!("../profiles/realistic.toml")),
];

/// The largest `time_scale`.
pub const MAX_TIME_SCALE: f64 = 1000.0;

/// The longest duration a profile may set, in unscaled milliseconds (one
/// day): far beyond anything a soak iteration models, and small enough that
/// at [`MAX_TIME_SCALE`] every scaled delay, every sum of a few of them and
/// every deadline computed from one stays far inside what `Duration` and
/// `Instant` can hold. Unbounded, `rtt_ms = 9223372036854775807` made the
/// testnet panic on its first request.
pub const MAX_DURATION_MS: u64 = 24 * 60 * 60 * 1000;

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Neither a shipped profile nor a readable file.
    #[error("profile `{name}` not found: not a file and not a shipped profile (shipped: {known})")]
    NotFound {
        /// What the user asked for.
        name: String,
        /// The shipped profile names.
        known: String,
    },
    /// The file exists but could not be read.
    #[error("cannot read profile file `{path}`: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TOML is malformed or has unknown or mistyped fields.
    #[error("invalid profile `{origin}`: {message}")]
    Parse {
        /// File path or shipped name.
        origin: String,
        /// The parser's message, with line and column.
        message: String,
    },
    /// An override is not of the form `dotted.key=value`.
    #[error("invalid override `{0}`: expected `section.key=value`, e.g. `gateway.rtt_ms=40`")]
    Override(String),
    /// A value is outside what the model can do.
    #[error("invalid profile `{origin}`: {message}")]
    Invalid {
        /// File path or shipped name.
        origin: String,
        /// Which field and why.
        message: String,
    },
}

/// The whole network model: one seed, one time scale, one model per service.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NetworkProfile {
    /// Shown in reports; defaults to the file or shipped name.
    #[serde(default)]
    pub name: String,
    /// Seeds every random draw: the same seed gives the same delays and faults
    /// for the same sequence of requests.
    #[serde(default = "default_seed")]
    pub seed: u64,
    /// Every delay, interval and rate-limit period is multiplied by this.
    #[serde(default = "default_time_scale")]
    pub time_scale: f64,
    /// The aggregator's link and block rounds.
    #[serde(default)]
    pub aggregator: ServiceModel,
    /// The IPFS gateway's link and propagation delay.
    #[serde(default)]
    pub gateway: ServiceModel,
    /// The Nostr relay's link and disconnects.
    #[serde(default)]
    pub relay: ServiceModel,
}

fn default_seed() -> u64 {
    1
}

fn default_time_scale() -> f64 {
    1.0
}

/// How one service's link behaves. Fields that only make sense for one
/// service are rejected by [`NetworkProfile::validate`] elsewhere.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServiceModel {
    /// Round-trip time added to every request (half each way).
    #[serde(default)]
    pub rtt_ms: u64,
    /// Each one-way delay varies uniformly by up to this much either way.
    #[serde(default)]
    pub jitter_ms: u64,
    /// Token bucket per client; none means unlimited.
    #[serde(default)]
    pub rate_limit: Option<RateLimit>,
    /// Injected faults.
    #[serde(default)]
    pub faults: Faults,
    /// Gateway only: how long a stored block stays invisible through `/ipfs/`.
    #[serde(default)]
    pub propagation_ms: Option<u64>,
    /// Gateway only: the exchange each `/ipfs/` read makes with the node
    /// that pins the content before the gateway answers; none means the
    /// gateway holds everything itself.
    #[serde(default)]
    pub retrieval_ms: Option<u64>,
    /// Aggregator only: how often pending commitments are sealed into a block;
    /// 0 seals each commitment as it arrives.
    #[serde(default)]
    pub block_interval_ms: Option<u64>,
    /// Relay only: mean time between forced disconnects of each client
    /// (exponentially distributed); none means never.
    #[serde(default)]
    pub disconnect_mean_ms: Option<u64>,
}

/// A token bucket: `burst` requests at once, refilled at `per_second`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained requests per second (unscaled time).
    pub per_second: f64,
    /// Requests allowed back to back.
    pub burst: u32,
    /// A client that finds its bucket empty is refused everything for this
    /// long (unscaled milliseconds), as a shared gateway's rate rule blocks
    /// a client for a mitigation period rather than until its next token:
    /// the capacity a throttled client could have used meanwhile is lost.
    /// Absent: refused only until the bucket holds a token again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lockout_ms: Option<u64>,
    /// Only requests whose path starts with one of these draw on the bucket
    /// (and are refused); absent: every request. A gateway that limits
    /// `/ipfs/` alone is a shared public read path in front of a pinning
    /// node (`/api/v0`) that each client talks to on its own account.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paths: Option<Vec<String>>,
}

/// Shares of requests that fail on purpose. Each is a probability in `[0, 1]`
/// and together they may not exceed 1.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Faults {
    /// Connection closed with no answer.
    #[serde(default)]
    pub drop: f64,
    /// Answered with 503.
    #[serde(default)]
    pub error_5xx: f64,
    /// Held for `stall_ms` before being served normally.
    #[serde(default)]
    pub stall: f64,
    /// How long a stalled request is held.
    #[serde(default)]
    pub stall_ms: u64,
}

/// The three services the model applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Service {
    /// JSON-RPC aggregator.
    Aggregator,
    /// IPFS gateway.
    Gateway,
    /// Nostr relay.
    Relay,
}

impl Service {
    /// Every service, in a fixed order.
    pub const ALL: [Service; 3] = [Service::Aggregator, Service::Gateway, Service::Relay];

    /// The lowercase name used in profiles and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Service::Aggregator => "aggregator",
            Service::Gateway => "gateway",
            Service::Relay => "relay",
        }
    }
}

impl fmt::Display for Service {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl NetworkProfile {
    /// The names of the shipped profiles.
    pub fn builtin_names() -> Vec<&'static str> {
        BUILTIN_PROFILES.iter().map(|(name, _)| *name).collect()
    }

    /// Loads `name_or_path` (a file if one exists there, else a shipped
    /// profile), applies `overrides` (`gateway.rtt_ms=40`, `seed=3`), and
    /// validates the result.
    pub fn load(name_or_path: &str, overrides: &[String]) -> Result<Self, ProfileError> {
        let path = Path::new(name_or_path);
        let (origin, text, default_name) = if path.is_file() {
            let text = std::fs::read_to_string(path).map_err(|source| ProfileError::Read {
                path: name_or_path.to_owned(),
                source,
            })?;
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_else(|| name_or_path.to_owned());
            (name_or_path.to_owned(), text, stem)
        } else if let Some((name, text)) = BUILTIN_PROFILES.iter().find(|(n, _)| *n == name_or_path)
        {
            ((*name).to_owned(), (*text).to_owned(), (*name).to_owned())
        } else {
            return Err(ProfileError::NotFound {
                name: name_or_path.to_owned(),
                known: Self::builtin_names().join(", "),
            });
        };
        Self::from_toml(&origin, &text, &default_name, overrides)
    }

    /// Parses a profile from TOML text; `origin` names it in errors.
    pub fn from_toml(
        origin: &str,
        text: &str,
        default_name: &str,
        overrides: &[String],
    ) -> Result<Self, ProfileError> {
        let parse_error = |message: String| ProfileError::Parse {
            origin: origin.to_owned(),
            message,
        };
        // Deserializing the text itself (not the table) keeps spans, so an
        // error in the file names its line and column.
        toml::from_str::<NetworkProfile>(text).map_err(|e| parse_error(describe(&e, text)))?;
        let mut table: toml::Table =
            toml::from_str(text).map_err(|e| parse_error(describe(&e, text)))?;
        for item in overrides {
            apply_override(&mut table, item)?;
        }
        let mut profile: NetworkProfile =
            toml::Value::Table(table)
                .try_into()
                .map_err(|e: toml::de::Error| {
                    parse_error(format!(
                        "after --set: {}",
                        e.to_string().trim().replace('\n', " ")
                    ))
                })?;
        if profile.name.is_empty() {
            profile.name = default_name.to_owned();
        }
        profile
            .validate()
            .map_err(|message| ProfileError::Invalid {
                origin: origin.to_owned(),
                message,
            })?;
        Ok(profile)
    }

    /// The model of one service.
    pub fn service(&self, service: Service) -> &ServiceModel {
        match service {
            Service::Aggregator => &self.aggregator,
            Service::Gateway => &self.gateway,
            Service::Relay => &self.relay,
        }
    }

    /// `ms` of unscaled time, multiplied by `time_scale`.
    ///
    /// A validated profile keeps this far from overflow; one built by hand
    /// with an absurd scale saturates instead of panicking.
    pub fn scaled(&self, ms: u64) -> Duration {
        let seconds = ms as f64 / 1000.0 * self.time_scale;
        // NaN or negative (an unvalidated scale) is no time at all.
        Duration::try_from_secs_f64(seconds).unwrap_or(if seconds > 0.0 {
            Duration::MAX
        } else {
            Duration::ZERO
        })
    }

    /// Checks ranges and that service-specific fields sit on their service.
    fn validate(&self) -> Result<(), String> {
        // Also refuses NaN, which fails every comparison.
        if !(self.time_scale > 0.0 && self.time_scale <= MAX_TIME_SCALE) {
            return Err(format!(
                "time_scale must be a number in (0, {MAX_TIME_SCALE}], got `{:?}`",
                self.time_scale
            ));
        }
        for service in Service::ALL {
            let model = self.service(service);
            model.validate().map_err(|m| format!("[{service}] {m}"))?;
            let misplaced = [
                (
                    "propagation_ms",
                    model.propagation_ms.is_some(),
                    Service::Gateway,
                ),
                (
                    "retrieval_ms",
                    model.retrieval_ms.is_some(),
                    Service::Gateway,
                ),
                (
                    "block_interval_ms",
                    model.block_interval_ms.is_some(),
                    Service::Aggregator,
                ),
                (
                    "disconnect_mean_ms",
                    model.disconnect_mean_ms.is_some(),
                    Service::Relay,
                ),
            ];
            for (field, present, owner) in misplaced {
                if present && owner != service {
                    return Err(format!(
                        "[{service}] has `{field}`, which only applies to [{owner}]"
                    ));
                }
            }
        }
        Ok(())
    }
}

impl ServiceModel {
    fn validate(&self) -> Result<(), String> {
        if let Some(limit) = &self.rate_limit {
            if !(limit.per_second.is_finite() && limit.per_second > 0.0) {
                return Err(format!(
                    "rate_limit.per_second must be a positive number, got {}",
                    limit.per_second
                ));
            }
            // A refill period over a day is, like any duration over a day,
            // too long to compute with at every scale.
            let period_ms = 1000.0 / limit.per_second;
            if period_ms > MAX_DURATION_MS as f64 {
                return Err(format!(
                    "rate_limit.per_second must be at least one per day (1/86400), got `{:?}`",
                    limit.per_second
                ));
            }
            if limit.burst == 0 {
                return Err("rate_limit.burst must be at least 1".to_owned());
            }
            if let Some(bad) = limit.paths.iter().flatten().find(|p| !p.starts_with('/')) {
                return Err(format!(
                    "rate_limit.paths must be path prefixes starting with `/`, got `{bad}`"
                ));
            }
            if limit.lockout_ms.is_some_and(|ms| ms > MAX_DURATION_MS) {
                return Err(format!(
                    "rate_limit.lockout_ms must be at most {MAX_DURATION_MS} (a day), got {}",
                    limit.lockout_ms.unwrap_or_default()
                ));
            }
        }
        let durations = [
            ("rtt_ms", Some(self.rtt_ms)),
            ("jitter_ms", Some(self.jitter_ms)),
            ("faults.stall_ms", Some(self.faults.stall_ms)),
            ("propagation_ms", self.propagation_ms),
            ("retrieval_ms", self.retrieval_ms),
            ("block_interval_ms", self.block_interval_ms),
            ("disconnect_mean_ms", self.disconnect_mean_ms),
        ];
        for (field, ms) in durations {
            if let Some(ms) = ms.filter(|ms| *ms > MAX_DURATION_MS) {
                return Err(format!(
                    "{field} must be at most `{MAX_DURATION_MS}` (one day), got `{ms}`"
                ));
            }
        }
        let shares = [
            ("drop", self.faults.drop),
            ("error_5xx", self.faults.error_5xx),
            ("stall", self.faults.stall),
        ];
        for (field, share) in shares {
            if !(0.0..=1.0).contains(&share) {
                return Err(format!("faults.{field} must be in [0, 1], got {share}"));
            }
        }
        let total: f64 = shares.iter().map(|(_, s)| s).sum();
        if total > 1.0 {
            return Err(format!(
                "faults.drop + faults.error_5xx + faults.stall must not exceed 1, got {total}"
            ));
        }
        if self.disconnect_mean_ms == Some(0) {
            return Err("disconnect_mean_ms must be positive (omit it for no disconnects)".into());
        }
        Ok(())
    }
}

/// One line: where in `text` the error is, and what it is.
fn describe(error: &toml::de::Error, text: &str) -> String {
    let message = error.message().trim().replace('\n', " ");
    match error.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            let source_line = text.lines().nth(line - 1).unwrap_or("").trim();
            format!("line {line}, column {column} (`{source_line}`): {message}")
        }
        None => message,
    }
}

/// Sets `dotted.key` in `table` to `value`, read as a TOML value when it
/// parses as one (`40`, `0.5`, `true`, `{ per_second = 5.0, burst = 5 }`) and
/// as a string otherwise.
fn apply_override(table: &mut toml::Table, item: &str) -> Result<(), ProfileError> {
    let (key, raw) = item
        .split_once('=')
        .ok_or_else(|| ProfileError::Override(item.to_owned()))?;
    let path: Vec<&str> = key.trim().split('.').collect();
    if path.iter().any(|part| part.is_empty()) {
        return Err(ProfileError::Override(item.to_owned()));
    }
    let raw = raw.trim();
    let value = toml::from_str::<toml::Table>(&format!("v = {raw}"))
        .ok()
        .and_then(|mut t| t.remove("v"))
        .unwrap_or_else(|| toml::Value::String(raw.to_owned()));
    let (last, parents) = path
        .split_last()
        .ok_or_else(|| ProfileError::Override(item.to_owned()))?;
    let mut cursor = table;
    for part in parents {
        let entry = cursor
            .entry((*part).to_owned())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()));
        cursor = entry
            .as_table_mut()
            .ok_or_else(|| ProfileError::Override(item.to_owned()))?;
    }
    cursor.insert((*last).to_owned(), value);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_profile_loads() {
        for name in NetworkProfile::builtin_names() {
            let profile = NetworkProfile::load(name, &[]).unwrap();
            assert_eq!(profile.name, name);
        }
    }

    #[test]
    fn quick_is_the_ci_shape_ten_times_faster() {
        let quick = NetworkProfile::load("quick", &[]).unwrap();
        let ci = NetworkProfile::load("ci", &[]).unwrap();
        assert_eq!(quick.time_scale, 0.01);
        assert_eq!(quick.aggregator, ci.aggregator);
        assert_eq!(quick.gateway, ci.gateway);
        assert_eq!(quick.relay, ci.relay);
    }

    #[test]
    fn ci_is_the_realistic_shape_scaled_down() {
        let ci = NetworkProfile::load("ci", &[]).unwrap();
        let realistic = NetworkProfile::load("realistic", &[]).unwrap();
        assert_eq!(ci.time_scale, 0.1);
        assert_eq!(ci.gateway.rtt_ms, realistic.gateway.rtt_ms);
        assert_eq!(ci.gateway.rate_limit, realistic.gateway.rate_limit);
        assert_eq!(ci.scaled(3000), Duration::from_millis(300));
    }

    #[test]
    fn overrides_change_nested_and_top_level_fields() {
        let overrides = vec![
            "gateway.rtt_ms=40".to_owned(),
            "seed=9".to_owned(),
            "relay.rate_limit={ per_second = 2.0, burst = 3 }".to_owned(),
        ];
        let p = NetworkProfile::load("realistic", &overrides).unwrap();
        assert_eq!(p.gateway.rtt_ms, 40);
        assert_eq!(p.seed, 9);
        assert_eq!(
            p.relay.rate_limit,
            Some(RateLimit {
                per_second: 2.0,
                burst: 3,
                lockout_ms: None,
                paths: None,
            })
        );
    }

    #[test]
    fn unknown_profile_lists_the_shipped_ones() {
        let err = NetworkProfile::load("nope", &[]).unwrap_err().to_string();
        assert!(err.contains("`nope`"), "{err}");
        assert!(err.contains("ci, ideal, lossy, quick, realistic"), "{err}");
    }

    #[test]
    fn unknown_field_is_refused_with_its_name() {
        let err = NetworkProfile::from_toml("x.toml", "[gateway]\nrtt = 3\n", "x", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("x.toml") && err.contains("rtt"), "{err}");
    }

    #[test]
    fn misplaced_service_field_is_refused() {
        for (text, field) in [
            ("[relay]\npropagation_ms = 3\n", "propagation_ms"),
            ("[aggregator]\nretrieval_ms = 3\n", "retrieval_ms"),
        ] {
            let err = NetworkProfile::from_toml("x", text, "x", &[])
                .unwrap_err()
                .to_string();
            assert!(err.contains(field) && err.contains("[gateway]"), "{err}");
        }
    }

    #[test]
    fn fault_shares_must_fit_in_one() {
        let text = "[gateway]\nfaults = { drop = 0.6, error_5xx = 0.6 }\n";
        let err = NetworkProfile::from_toml("x", text, "x", &[])
            .unwrap_err()
            .to_string();
        assert!(err.contains("must not exceed 1"), "{err}");
    }

    #[test]
    fn time_scale_must_be_positive() {
        let err = NetworkProfile::load("ci", &["time_scale=0".to_owned()])
            .unwrap_err()
            .to_string();
        assert!(err.contains("time_scale"), "{err}");
    }

    #[test]
    fn time_scale_over_the_cap_or_not_a_number_is_refused() {
        for value in ["1000.5", "1e30", "nan", "inf", "-1"] {
            let err = NetworkProfile::load("ci", &[format!("time_scale={value}")])
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("time_scale must be a number in (0, 1000]"),
                "{value}: {err}"
            );
        }
        assert!(NetworkProfile::load("ci", &["time_scale=1000".to_owned()]).is_ok());
    }

    #[test]
    fn durations_over_a_day_are_refused_naming_the_field() {
        let cases = [
            ("gateway.rtt_ms=9223372036854775807", "[gateway] rtt_ms"),
            ("aggregator.jitter_ms=86400001", "[aggregator] jitter_ms"),
            (
                "relay.faults={ stall = 0.1, stall_ms = 86400001 }",
                "[relay] faults.stall_ms",
            ),
            (
                "gateway.propagation_ms=86400001",
                "[gateway] propagation_ms",
            ),
            ("gateway.retrieval_ms=86400001", "[gateway] retrieval_ms"),
            (
                "aggregator.block_interval_ms=86400001",
                "[aggregator] block_interval_ms",
            ),
            (
                "relay.disconnect_mean_ms=86400001",
                "[relay] disconnect_mean_ms",
            ),
        ];
        for (item, needle) in cases {
            let err =
                NetworkProfile::load("ideal", &[item.to_owned(), "time_scale=1000".to_owned()])
                    .unwrap_err()
                    .to_string();
            assert!(
                err.contains(needle) && err.contains("`86400000`"),
                "{item}: {err}"
            );
        }
        let day = NetworkProfile::load(
            "ideal",
            &[
                "gateway.rtt_ms=86400000".to_owned(),
                "time_scale=1000".to_owned(),
            ],
        )
        .unwrap();
        assert_eq!(
            day.scaled(day.gateway.rtt_ms),
            Duration::from_secs(86_400_000)
        );
    }

    #[test]
    fn a_rate_limit_slower_than_one_per_day_is_refused() {
        let slow = "gateway.rate_limit={ per_second = 1e-300, burst = 1 }".to_owned();
        let err = NetworkProfile::load("ideal", &[slow])
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("per_second") && err.contains("`1e-300`"),
            "{err}"
        );
        let daily = "gateway.rate_limit={ per_second = 0.0000116, burst = 1 }".to_owned();
        assert!(NetworkProfile::load("ideal", &[daily]).is_ok());
    }

    #[test]
    fn scaled_saturates_instead_of_panicking() {
        let mut profile = NetworkProfile::load("ideal", &[]).unwrap();
        profile.time_scale = 1e30;
        assert_eq!(profile.scaled(60_000), Duration::MAX);
        profile.time_scale = f64::NAN;
        assert_eq!(profile.scaled(60_000), Duration::ZERO);
        profile.time_scale = MAX_TIME_SCALE;
        assert_eq!(profile.scaled(u64::MAX), Duration::MAX);
    }

    #[test]
    fn malformed_override_is_refused() {
        let err = NetworkProfile::load("ci", &["gateway.rtt_ms".to_owned()]).unwrap_err();
        assert!(matches!(err, ProfileError::Override(_)));
    }
}
