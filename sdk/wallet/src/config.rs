//! SDK configuration: the switchable variants, the time scale, and the
//! timers they scale.
//!
//! Every variant is a real code path, read from an environment variable
//! named `SPHERE_` plus its name in upper case (`SPHERE_FANOUT=8`,
//! `SPHERE_TOMBSTONE_MERGE=overwrite`) or from a `--name value` flag of
//! `sphere-peer`; flags win over the environment.

use std::{collections::BTreeMap, fmt, str::FromStr, time::Duration};

use serde::{Deserialize, Serialize};

/// Why a setting was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A known setting with a value it cannot take.
    #[error("{name}=`{value}`: expected {expected}")]
    BadValue {
        /// The setting (env var or flag name).
        name: String,
        /// What was given.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// A variant name that does not exist.
    #[error(
        "unknown variant `{0}` (known: write_path, proof_check, fanout, tombstone_merge, filter_own_updates, consolidate)"
    )]
    UnknownVariant(String),
}

macro_rules! choice {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "kebab-case")]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every accepted spelling, for error messages.
            pub const CHOICES: &'static str = concat!($($text, " "),+);

            /// The spelling used in env vars, flags and `hello`.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(format!("one of: {}", Self::CHOICES.trim_end().replace(' ', ", "))),
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

choice!(
    /// How profile writes reach the network.
    WritePath {
        /// Writes are batched and flushed after a debounce.
        Flush => "flush",
        /// Every write pins and HEAD-verifies at once (one round trip per write).
        PerWrite => "per-write",
    }
);

choice!(
    /// How inclusion proofs are checked when bundles are loaded.
    ProofCheck {
        /// Every pair of bundles re-verifies both bundles' proofs: O(B^2).
        Pairwise => "pairwise",
        /// Each distinct proof is verified once across all bundles.
        Across => "across",
    }
);

choice!(
    /// How the tombstone blob merges when a remote snapshot is applied.
    TombstoneMerge {
        /// Set union: a token spent on any device stays spent.
        Union => "union",
        /// The local blob wins (the bug): spends seen only remotely are lost.
        Overwrite => "overwrite",
    }
);

/// The switchable code paths of the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Variants {
    /// Per-write round trips or batched flushes.
    pub write_path: WritePath,
    /// Pairwise or deduplicated proof checks.
    pub proof_check: ProofCheck,
    /// Requests in flight for pins and fetches; 1 pins a whole CAR with one
    /// `dag/import`, more put blocks one by one, that many at a time.
    pub fanout: u16,
    /// Tombstone merge rule.
    pub tombstone_merge: TombstoneMerge,
    /// Drop update events whose writer is this wallet (also the wallet's
    /// other devices, which is what makes it a bug).
    pub filter_own_updates: bool,
    /// Supersede old bundles when more than [`Variants::MAX_ACTIVE_BUNDLES`]
    /// are active.
    pub consolidate: bool,
}

impl Default for Variants {
    fn default() -> Self {
        Variants {
            write_path: WritePath::Flush,
            proof_check: ProofCheck::Pairwise,
            fanout: 1,
            tombstone_merge: TombstoneMerge::Union,
            filter_own_updates: false,
            consolidate: true,
        }
    }
}

/// The variant names, in the order `hello` reports them.
pub const VARIANT_NAMES: [&str; 6] = [
    "write_path",
    "proof_check",
    "fanout",
    "tombstone_merge",
    "filter_own_updates",
    "consolidate",
];

/// The most requests in flight `fanout` may ask for.
pub const MAX_FANOUT: u16 = 64;

impl Variants {
    /// Consolidation starts when more bundles than this are active.
    pub const MAX_ACTIVE_BUNDLES: usize = 3;

    /// Reads every `SPHERE_<NAME>` variable that `lookup` knows.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let mut variants = Variants::default();
        for name in VARIANT_NAMES {
            let var = format!("SPHERE_{}", name.to_ascii_uppercase());
            if let Some(value) = lookup(&var) {
                variants.set_as(name, &value, &var)?;
            }
        }
        Ok(variants)
    }

    /// Sets one variant by name (`fanout`, `write_path`, ...).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), ConfigError> {
        self.set_as(name, value, name)
    }

    fn set_as(&mut self, name: &str, value: &str, shown_as: &str) -> Result<(), ConfigError> {
        let bad = |expected: String| ConfigError::BadValue {
            name: shown_as.to_owned(),
            value: value.to_owned(),
            expected,
        };
        match name.replace('-', "_").as_str() {
            "write_path" => self.write_path = value.parse().map_err(bad)?,
            "proof_check" => self.proof_check = value.parse().map_err(bad)?,
            "tombstone_merge" => self.tombstone_merge = value.parse().map_err(bad)?,
            "fanout" => {
                self.fanout = value
                    .trim()
                    .parse::<u16>()
                    .ok()
                    .filter(|n| (1..=MAX_FANOUT).contains(n))
                    .ok_or_else(|| bad(format!("an integer from 1 to {MAX_FANOUT}")))?;
            }
            "filter_own_updates" => {
                self.filter_own_updates =
                    parse_bool(value).ok_or_else(|| bad("true or false".into()))?
            }
            "consolidate" => {
                self.consolidate = parse_bool(value)
                    .or(match value.trim() {
                        "on" => Some(true),
                        "off" => Some(false),
                        _ => None,
                    })
                    .ok_or_else(|| bad("on or off".into()))?;
            }
            other => return Err(ConfigError::UnknownVariant(other.to_owned())),
        }
        Ok(())
    }

    /// Every variant as text, as `hello` reports them.
    pub fn to_map(&self) -> BTreeMap<String, String> {
        let mut map = BTreeMap::new();
        map.insert("write_path".into(), self.write_path.to_string());
        map.insert("proof_check".into(), self.proof_check.to_string());
        map.insert("fanout".into(), self.fanout.to_string());
        map.insert("tombstone_merge".into(), self.tombstone_merge.to_string());
        map.insert(
            "filter_own_updates".into(),
            self.filter_own_updates.to_string(),
        );
        map.insert(
            "consolidate".into(),
            if self.consolidate { "on" } else { "off" }.into(),
        );
        map
    }
}

fn parse_bool(value: &str) -> Option<bool> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" => Some(true),
        "false" | "0" | "no" => Some(false),
        _ => None,
    }
}

/// The largest `SPHERE_TIME_SCALE`, as the testnet caps its `time_scale`:
/// at 1000 the longest timer (the 60 s proof deadline) is under a day, so
/// every scaled duration and every deadline computed from one fits.
pub const MAX_TIME_SCALE: f64 = 1000.0;

/// The SDK's own timers, before scaling.
///
/// The scale is private so that every `Timers` went through [`Timers::new`]:
/// an unchecked scale of `1e30` would make the scaled durations overflow.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timers {
    /// Multiplies every duration below (`SPHERE_TIME_SCALE`).
    time_scale: f64,
}

impl Timers {
    /// Timers at `time_scale`, which must be in `(0, MAX_TIME_SCALE]`.
    pub fn new(time_scale: f64) -> Result<Self, ConfigError> {
        // Debug, unlike Display, writes `1e30` rather than thirty zeros.
        Self::checked(time_scale, &format!("{time_scale:?}"))
    }

    /// Timers at the scale written as `text` (`SPHERE_TIME_SCALE`'s value),
    /// refused with the text as given.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        match text.trim().parse::<f64>() {
            Ok(time_scale) => Self::checked(time_scale, text),
            Err(_) => Err(Self::bad_scale(text)),
        }
    }

    fn checked(time_scale: f64, shown: &str) -> Result<Self, ConfigError> {
        // Also refuses NaN, which fails every comparison.
        if time_scale > 0.0 && time_scale <= MAX_TIME_SCALE {
            Ok(Timers { time_scale })
        } else {
            Err(Self::bad_scale(shown))
        }
    }

    fn bad_scale(shown: &str) -> ConfigError {
        ConfigError::BadValue {
            name: "SPHERE_TIME_SCALE".into(),
            value: shown.to_owned(),
            expected: format!("a number in (0, {MAX_TIME_SCALE}]"),
        }
    }

    /// The factor every timer is multiplied by.
    pub fn time_scale(&self) -> f64 {
        self.time_scale
    }

    /// `ms` of unscaled time, scaled.
    pub fn scaled(&self, ms: u64) -> Duration {
        // The scale is at most `MAX_TIME_SCALE`, so only an `ms` near
        // `u64::MAX` can overflow; saturate rather than panic.
        Duration::try_from_secs_f64(ms as f64 / 1000.0 * self.time_scale).unwrap_or(Duration::MAX)
    }

    /// Quiet time after the last write before a flush starts (2 s).
    pub fn flush_debounce(&self) -> Duration {
        self.scaled(2_000)
    }

    /// How long HEAD-verify waits for pinned CIDs to become visible (30 s).
    pub fn head_verify_deadline(&self) -> Duration {
        self.scaled(30_000)
    }

    /// First HEAD-verify backoff (0.5 s), doubled up to [`Timers::head_verify_backoff_max`].
    pub fn head_verify_backoff(&self) -> Duration {
        self.scaled(500)
    }

    /// Largest HEAD-verify backoff (5 s).
    pub fn head_verify_backoff_max(&self) -> Duration {
        self.scaled(5_000)
    }

    /// Poll interval while waiting for an inclusion proof (0.25 s).
    pub fn proof_poll(&self) -> Duration {
        self.scaled(250)
    }

    /// How long to wait for an inclusion proof (60 s).
    pub fn proof_deadline(&self) -> Duration {
        self.scaled(60_000)
    }

    /// First retry backoff for a refused or failed request (0.2 s).
    pub fn retry_backoff(&self) -> Duration {
        self.scaled(200)
    }

    /// Largest retry backoff (5 s).
    pub fn retry_backoff_max(&self) -> Duration {
        self.scaled(5_000)
    }
}

impl Default for Timers {
    fn default() -> Self {
        Timers { time_scale: 1.0 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn defaults_are_the_shipped_behaviour() {
        let v = Variants::from_env(env(&[])).unwrap();
        assert_eq!(v, Variants::default());
        assert_eq!(v.to_map()["proof_check"], "pairwise");
        assert_eq!(v.to_map()["consolidate"], "on");
    }

    #[test]
    fn env_vars_select_variants() {
        let v = Variants::from_env(env(&[
            ("SPHERE_TOMBSTONE_MERGE", "overwrite"),
            ("SPHERE_FANOUT", "8"),
            ("SPHERE_WRITE_PATH", "per-write"),
            ("SPHERE_PROOF_CHECK", "across"),
            ("SPHERE_FILTER_OWN_UPDATES", "true"),
            ("SPHERE_CONSOLIDATE", "off"),
        ]))
        .unwrap();
        assert_eq!(v.tombstone_merge, TombstoneMerge::Overwrite);
        assert_eq!(v.fanout, 8);
        assert_eq!(v.write_path, WritePath::PerWrite);
        assert_eq!(v.proof_check, ProofCheck::Across);
        assert!(v.filter_own_updates);
        assert!(!v.consolidate);
    }

    #[test]
    fn bad_values_name_the_variable_and_the_choices() {
        let err = Variants::from_env(env(&[("SPHERE_FANOUT", "0")])).unwrap_err();
        assert_eq!(
            err.to_string(),
            "SPHERE_FANOUT=`0`: expected an integer from 1 to 64"
        );
        let err = Variants::from_env(env(&[("SPHERE_PROOF_CHECK", "fast")])).unwrap_err();
        assert!(err.to_string().contains("pairwise, across"), "{err}");
        let mut v = Variants::default();
        assert!(matches!(
            v.set("speed", "1"),
            Err(ConfigError::UnknownVariant(_))
        ));
    }

    #[test]
    fn timers_scale() {
        let t = Timers::new(0.1).unwrap();
        assert_eq!(t.flush_debounce(), Duration::from_millis(200));
        assert_eq!(t.head_verify_deadline(), Duration::from_secs(3));
        assert!(Timers::new(0.0).is_err());
    }

    #[test]
    fn time_scale_out_of_range_is_refused_naming_the_range() {
        for text in [
            "1e30", "1000.5", "-1", "0", "NaN", "inf", "-inf", "fast", "",
        ] {
            let err = Timers::parse(text).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("SPHERE_TIME_SCALE=`{text}`: expected a number in (0, 1000]")
            );
        }
        assert_eq!(
            Timers::new(1e30).unwrap_err().to_string(),
            "SPHERE_TIME_SCALE=`1e30`: expected a number in (0, 1000]"
        );
        assert!(Timers::new(f64::NAN).is_err());
        let fastest = Timers::parse(" 1000 ").unwrap();
        assert_eq!(fastest.time_scale(), 1000.0);
        assert_eq!(fastest.proof_deadline(), Duration::from_secs(60_000));
        assert_eq!(
            Timers::parse("1e-3").unwrap().scaled(2_000),
            Duration::from_millis(2)
        );
    }

    #[test]
    fn scaled_saturates_instead_of_panicking() {
        let t = Timers::new(MAX_TIME_SCALE).unwrap();
        assert_eq!(t.scaled(u64::MAX), Duration::MAX);
    }
}
