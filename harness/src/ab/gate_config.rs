//! The gate's configuration: `ci/gate.toml`, then flags on top.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::metrics::MetricKind;
use crate::stats::{GateMode, NoiseBand, OnCannotTell, Tolerance};

/// The gate configuration shipped in `ci/gate.toml`, built in so that a
/// run with no file still has the documented defaults.
pub const DEFAULT_GATE_TOML: &str = include_str!("../../../ci/gate.toml");

/// Noise bands per kind of metric (shares, e.g. 0.05).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoiseBands {
    /// Wall times.
    pub time: f64,
    /// RSS.
    pub rss: f64,
    /// CPU.
    pub cpu: f64,
    /// Perf counters.
    pub counters: f64,
}

/// Absolute floors per kind of metric: a change smaller than this, in the
/// metric's own unit, is never a regression whatever its ratio.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Floors {
    /// Wall times, milliseconds.
    pub time_ms: f64,
    /// RSS, MiB.
    pub rss_mib: f64,
    /// CPU, percent of one core.
    pub cpu_pct: f64,
    /// CPU-seconds, in CPU-milliseconds. Absent from older files: 0.
    #[serde(default)]
    pub cpu_ms: f64,
    /// Perf counters, in their own unit (ms for times, calls for counts).
    pub counters: f64,
}

impl Default for Floors {
    fn default() -> Self {
        Self {
            time_ms: 0.0,
            rss_mib: 0.0,
            cpu_pct: 0.0,
            cpu_ms: 0.0,
            counters: 0.0,
        }
    }
}

/// How far a pass must rule slowdowns out, per kind of metric, when that
/// is wider than the noise band (shares; absent: the band).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PassBounds {
    /// Wall times.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time: Option<f64>,
}

/// The whole gate configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GateConfig {
    /// no-regression or must-improve.
    pub mode: GateMode,
    /// Fewer iterations per side fails the gate.
    pub min_iterations: usize,
    /// Family-wise alpha.
    pub alpha: f64,
    /// What a gate that cannot tell does: `fail` (default) or `warn`.
    #[serde(default)]
    pub on_inconclusive: OnCannotTell,
    /// Gated metric groups: total, sections, mean_rss, max_rss, mean_cpu,
    /// cpu_seconds.
    pub gated: Vec<String>,
    /// Noise bands.
    pub noise_band: NoiseBands,
    /// Absolute floors.
    #[serde(default)]
    pub floor: Floors,
    /// How far passes must rule slowdowns out, when wider than the band.
    #[serde(default)]
    pub pass_bound: PassBounds,
}

/// The metric groups `gated` may name.
const GROUPS: [&str; 6] = [
    "total",
    "sections",
    "mean_rss",
    "max_rss",
    "mean_cpu",
    "cpu_seconds",
];

/// Most iterations per side a gate may demand: more than anyone runs, so
/// a larger `min_iterations` is a typo, and a gate that always refuses.
pub const MAX_MIN_ITERATIONS: usize = 1000;

/// Largest floors accepted, per unit: beyond these nothing could ever be a
/// regression, which is a gate switched off rather than a tolerance.
const MAX_FLOOR_MS: f64 = 3_600_000.0;
const MAX_FLOOR_MIB: f64 = 1_048_576.0;
const MAX_FLOOR_CPU_PCT: f64 = 100_000.0;
const MAX_FLOOR_COUNTERS: f64 = 1e12;

/// Why a gate configuration cannot be used: one line naming the file (or
/// flag), the key and the value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum GateConfigError {
    /// The file could not be read.
    #[error("cannot read {what}: {reason}")]
    Read {
        /// The file and where it came from: --gate-config `x`, `ci/gate.toml`.
        what: String,
        /// What the file system said, and the fix.
        reason: String,
    },
    /// TOML syntax, an unknown or missing key, a wrong type.
    #[error("{origin}{}: {message}", line.map(|l| format!(":{l}")).unwrap_or_default())]
    Syntax {
        /// The file (`ci/gate.toml`, the --gate-config path, or the built-in one).
        origin: String,
        /// The 1-based line, when the parser knows it.
        line: Option<usize>,
        /// The parser's message, on one line.
        message: String,
    },
    /// A value out of its range, or an unknown group, in a file.
    #[error("{origin}: {value}")]
    Invalid {
        /// The file.
        origin: String,
        /// The value and what it should be.
        value: InvalidValue,
    },
}

/// One value of the configuration that is out of range: the key, the
/// value as read, and what was expected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("`{key}` `{value}`: expected {expected}")]
pub struct InvalidValue {
    /// The key as written in gate.toml (`alpha`, `noise_band.time`).
    pub key: &'static str,
    /// The value as read.
    pub value: String,
    /// What the key takes, with an example.
    pub expected: String,
}

impl InvalidValue {
    /// The command-line flag that overrides this key, if there is one.
    pub fn flag(&self) -> Option<&'static str> {
        Some(match self.key {
            "alpha" => "--alpha",
            "min_iterations" => "--min-iterations",
            "noise_band.time" => "--noise-band-time",
            "noise_band.rss" => "--noise-band-rss",
            "pass_bound.time" => "--pass-bound-time",
            "floor.time_ms" => "--floor-time-ms",
            _ => return None,
        })
    }

    /// The same problem said of the flag: `--alpha `0.7`: expected ...`.
    pub fn as_flag(&self) -> String {
        match self.flag() {
            Some(flag) => format!("{flag} `{}`: expected {}", self.value, self.expected),
            None => format!("gate configuration: {self}"),
        }
    }
}

/// What `alpha` takes.
const EXPECT_ALPHA: &str = "a probability above 0 and below 0.5, e.g. 0.05";
/// What a noise band takes.
const EXPECT_BAND: &str = "a share above 0 and below 1, e.g. 0.05 for 5 %";
/// What `floor.time_ms` takes.
const EXPECT_FLOOR_TIME: &str = "milliseconds from 0 to 3600000, e.g. 25";
/// What `min_iterations` takes.
const EXPECT_MIN_ITERATIONS: &str = "a number of iterations from 2 to 1000, e.g. 3";

/// What the gate flag `flag` takes, worded as [`GateConfig::validate`]
/// words it, so that `--alpha abc` (which clap cannot parse) and `--alpha
/// 0.7` (which validate refuses) read alike.
pub fn flag_expectation(flag: &str) -> Option<&'static str> {
    Some(match flag {
        "--alpha" => EXPECT_ALPHA,
        "--min-iterations" => EXPECT_MIN_ITERATIONS,
        "--noise-band-time" | "--noise-band-rss" | "--pass-bound-time" => EXPECT_BAND,
        "--floor-time-ms" => EXPECT_FLOOR_TIME,
        _ => return None,
    })
}

/// A number as people write it: `0.05`, `5`, `NaN`, `1e300` (never three
/// hundred digits).
fn show(x: f64) -> String {
    if x.is_finite() && x == x.trunc() && x.abs() < 1e15 {
        format!("{x:.0}")
    } else {
        format!("{x:?}")
    }
}

impl GateConfig {
    /// Parses `text`; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<GateConfig, GateConfigError> {
        let config: GateConfig = toml::from_str(text).map_err(|e| {
            let line = e.span().map(|s| {
                let before = text.get(..s.start.min(text.len())).unwrap_or(text);
                before.matches('\n').count() + 1
            });
            // The parser's message alone may not name the key ("invalid
            // type: string, expected f64"), so quote the line it is about.
            // Only when the error is about one line: a missing key's span
            // is the whole table, and its first line says nothing.
            let one_line_span = e
                .span()
                .and_then(|s| text.get(s))
                .is_some_and(|t| !t.trim().is_empty() && !t.trim_end().contains('\n'));
            let quoted = line
                .filter(|_| one_line_span)
                .and_then(|l| text.lines().nth(l - 1))
                .map(str::trim)
                .filter(|l| !l.is_empty())
                .map(|l| {
                    let short: String = l.chars().take(60).collect();
                    let more = if short.len() < l.len() { "..." } else { "" };
                    format!(" (`{short}{more}`)")
                })
                .unwrap_or_default();
            GateConfigError::Syntax {
                origin: origin.to_owned(),
                line,
                // Some parser messages span lines; the error is one line.
                message: format!("{}{quoted}", one_line(e.message())),
            }
        })?;
        config
            .validate()
            .map_err(|value| GateConfigError::Invalid {
                origin: origin.to_owned(),
                value,
            })?;
        Ok(config)
    }

    /// `path` if given, else `ci/gate.toml` in the current directory if it
    /// exists, else the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<GateConfig, GateConfigError> {
        let local = Path::new("ci/gate.toml");
        let read = |path: &Path, what: String| {
            let reason = if path.is_dir() {
                Err("it is a folder; name a gate.toml file".to_owned())
            } else {
                std::fs::read(path).map_err(|e| e.to_string())
            };
            reason
                .and_then(|bytes| {
                    String::from_utf8(bytes)
                        .map_err(|_| "not UTF-8 text; a gate configuration is a TOML file".into())
                })
                .map_err(|reason| GateConfigError::Read { what, reason })
        };
        match path {
            Some(path) => {
                let what = format!("--gate-config `{}`", path.display());
                GateConfig::parse(&path.display().to_string(), &read(path, what)?)
            }
            None if local.is_file() => {
                let text = read(local, "`ci/gate.toml`".into())?;
                GateConfig::parse("ci/gate.toml", &text)
            }
            None => GateConfig::parse("<built-in gate.toml>", DEFAULT_GATE_TOML),
        }
    }

    /// Checks ranges and group names: every key from the file or from a
    /// flag goes through here.
    pub fn validate(&self) -> Result<(), InvalidValue> {
        let bad = |key: &'static str, value: String, expected: &str| InvalidValue {
            key,
            value,
            expected: expected.to_owned(),
        };
        // Written as "not inside" so that NaN, which compares false with
        // everything, is refused too.
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(bad("alpha", show(self.alpha), EXPECT_ALPHA));
        }
        if !(2..=MAX_MIN_ITERATIONS).contains(&self.min_iterations) {
            return Err(bad(
                "min_iterations",
                self.min_iterations.to_string(),
                EXPECT_MIN_ITERATIONS,
            ));
        }
        let bands = [
            ("noise_band.time", self.noise_band.time),
            ("noise_band.rss", self.noise_band.rss),
            ("noise_band.cpu", self.noise_band.cpu),
            ("noise_band.counters", self.noise_band.counters),
        ]
        .into_iter()
        .chain(self.pass_bound.time.map(|t| ("pass_bound.time", t)));
        for (key, band) in bands {
            if !(band > 0.0 && band < 1.0) {
                return Err(bad(key, show(band), EXPECT_BAND));
            }
        }
        let floors = [
            (
                "floor.time_ms",
                self.floor.time_ms,
                MAX_FLOOR_MS,
                "milliseconds",
                "25",
            ),
            (
                "floor.rss_mib",
                self.floor.rss_mib,
                MAX_FLOOR_MIB,
                "MiB",
                "2",
            ),
            (
                "floor.cpu_pct",
                self.floor.cpu_pct,
                MAX_FLOOR_CPU_PCT,
                "percent",
                "5",
            ),
            (
                "floor.cpu_ms",
                self.floor.cpu_ms,
                MAX_FLOOR_MS,
                "CPU-milliseconds",
                "20",
            ),
            (
                "floor.counters",
                self.floor.counters,
                MAX_FLOOR_COUNTERS,
                "units",
                "10",
            ),
        ];
        for (key, floor, max, unit, example) in floors {
            if !(floor.is_finite() && (0.0..=max).contains(&floor)) {
                let expected = match key {
                    "floor.time_ms" => EXPECT_FLOOR_TIME.to_owned(),
                    _ => format!("{unit} from 0 to {}, e.g. {example}", show(max)),
                };
                return Err(bad(key, show(floor), &expected));
            }
        }
        for group in &self.gated {
            if !GROUPS.contains(&group.as_str()) {
                return Err(bad(
                    "gated",
                    group.clone(),
                    &format!("metric groups among {}", GROUPS.join(", ")),
                ));
            }
        }
        Ok(())
    }

    /// Whether metrics of `kind` decide the gate.
    pub fn is_gated(&self, kind: MetricKind) -> bool {
        let group = match kind {
            MetricKind::TotalTime => "total",
            MetricKind::SectionTime => "sections",
            MetricKind::MeanRss => "mean_rss",
            MetricKind::MaxRss => "max_rss",
            MetricKind::MeanCpu => "mean_cpu",
            MetricKind::SectionCpu | MetricKind::TotalCpu => "cpu_seconds",
            MetricKind::CounterTime | MetricKind::CounterCount => return false,
        };
        self.gated.iter().any(|g| g == group)
    }

    /// The tolerance of `kind`: its band and its floor in the metric's own
    /// unit (seconds, bytes, percent, ms or calls). `validate` has checked
    /// both, so the fallbacks are never taken.
    pub fn tolerance(&self, kind: MetricKind) -> Tolerance {
        let floor = match kind {
            MetricKind::SectionTime | MetricKind::TotalTime => self.floor.time_ms / 1000.0,
            MetricKind::MeanRss | MetricKind::MaxRss => self.floor.rss_mib * 1024.0 * 1024.0,
            MetricKind::MeanCpu => self.floor.cpu_pct,
            MetricKind::SectionCpu | MetricKind::TotalCpu => self.floor.cpu_ms / 1000.0,
            MetricKind::CounterTime | MetricKind::CounterCount => self.floor.counters,
        };
        let band = NoiseBand::new(self.band(kind)).unwrap_or(NoiseBand::TIME);
        let tolerance = Tolerance::new(band, floor).unwrap_or_else(|_| Tolerance::relative(band));
        let pass = match kind {
            MetricKind::SectionTime | MetricKind::TotalTime => self.pass_bound.time,
            _ => None,
        };
        match pass.and_then(|share| NoiseBand::new(share).ok()) {
            Some(pass) => tolerance.with_pass_bound(pass),
            None => tolerance,
        }
    }

    /// The noise band of `kind`.
    pub fn band(&self, kind: MetricKind) -> f64 {
        match kind {
            MetricKind::SectionTime | MetricKind::TotalTime => self.noise_band.time,
            MetricKind::MeanRss | MetricKind::MaxRss => self.noise_band.rss,
            MetricKind::MeanCpu | MetricKind::SectionCpu | MetricKind::TotalCpu => {
                self.noise_band.cpu
            }
            MetricKind::CounterTime | MetricKind::CounterCount => self.noise_band.counters,
        }
    }
}

/// `text` with its lines joined, for messages that must stay one line.
fn one_line(text: &str) -> String {
    text.split('\n')
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_file_is_the_default_and_valid() {
        let config = GateConfig::parse("gate.toml", DEFAULT_GATE_TOML).unwrap();
        assert_eq!(config.mode, GateMode::NoRegression);
        assert!(config.is_gated(MetricKind::TotalTime));
        assert!(config.is_gated(MetricKind::SectionTime));
        assert!(!config.is_gated(MetricKind::MeanCpu));
        assert!(!config.is_gated(MetricKind::SectionCpu));
        assert!((config.tolerance(MetricKind::SectionCpu).floor() - 0.020).abs() < 1e-12);
        let cpu = DEFAULT_GATE_TOML.replace("\"mean_rss\"]", "\"mean_rss\", \"cpu_seconds\"]");
        let cpu = GateConfig::parse("gate.toml", &cpu).unwrap();
        assert!(cpu.is_gated(MetricKind::SectionCpu) && cpu.is_gated(MetricKind::TotalCpu));
        assert_eq!(config.band(MetricKind::SectionTime), 0.05);
        assert_eq!(config.on_inconclusive, OnCannotTell::Fail);
        let tol = config.tolerance(MetricKind::SectionTime);
        assert!((tol.floor() - 0.025).abs() < 1e-12);
        assert!(
            (config.tolerance(MetricKind::MeanRss).floor() - 2.0 * 1024.0 * 1024.0).abs() < 1e-6
        );
    }

    #[test]
    fn bad_values_are_named() {
        let error = |text: &str| GateConfig::parse("g", text).unwrap_err().to_string();
        let text = DEFAULT_GATE_TOML.replace("time = 0.05", "time = 2");
        assert_eq!(
            error(&text),
            "g: `noise_band.time` `2`: expected a share above 0 and below 1, e.g. 0.05 for 5 %"
        );
        let text = DEFAULT_GATE_TOML.replace("\"mean_rss\"]", "\"speed\"]");
        assert!(error(&text).contains("`speed`"));
        let text = DEFAULT_GATE_TOML.replace("time_ms = 25", "time_ms = -1");
        assert!(error(&text).contains("floor.time_ms"));
        let text = DEFAULT_GATE_TOML.replace("time_ms = 25", "time_ms = 1e300");
        assert!(error(&text).contains("`1e300`"), "{}", error(&text));
        let text = DEFAULT_GATE_TOML.replace("\"fail\"", "\"maybe\"");
        assert!(GateConfig::parse("g", &text).is_err());
        let text = DEFAULT_GATE_TOML.replace("mode = \"no-regression\"", "mode = \"yolo\"");
        assert!(error(&text).starts_with("g:"));
        let text = DEFAULT_GATE_TOML.replace("min_iterations = 3", "min_iterations = 1");
        assert!(error(&text).contains("`min_iterations` `1`"));
        let text = DEFAULT_GATE_TOML.replace("[pass_bound]\ntime = 0.08", "[pass_bound]\ntime = 0");
        assert!(
            error(&text).contains("`pass_bound.time` `0`"),
            "{}",
            error(&text)
        );
        let text = DEFAULT_GATE_TOML.replace("[pass_bound]\ntime", "[pass_bound]\nrss");
        assert!(error(&text).contains("rss"), "{}", error(&text));
    }

    #[test]
    fn passes_are_bounded_where_pass_bound_says_for_times_only() {
        let config = GateConfig::parse("g", DEFAULT_GATE_TOML).unwrap();
        assert_eq!(config.pass_bound.time, Some(0.08));
        let time = config.tolerance(MetricKind::SectionTime);
        assert_eq!((time.band().get(), time.pass_bound().get()), (0.05, 0.08));
        // A 0.2 s section: the 25 ms floor (12.5 %) governs both.
        assert!((time.regression_share(0.2) - 0.125).abs() < 1e-12);
        assert!((time.share(0.2) - 0.125).abs() < 1e-12);
        let rss = config.tolerance(MetricKind::MeanRss);
        assert_eq!(rss.pass_bound(), rss.band());
        // Below the band it is the band; absent, the band too.
        let mut narrow = config.clone();
        narrow.pass_bound.time = Some(0.01);
        let time = narrow.tolerance(MetricKind::SectionTime);
        assert_eq!(time.pass_bound(), time.band());
        let absent = DEFAULT_GATE_TOML.replace("[pass_bound]\ntime = 0.08", "");
        let absent = GateConfig::parse("g", &absent).unwrap();
        assert_eq!(absent.pass_bound.time, None);
        let time = absent.tolerance(MetricKind::TotalTime);
        assert_eq!(time.pass_bound(), time.band());
    }

    #[test]
    fn a_bad_override_names_its_flag() {
        let mut config = GateConfig::parse("g", DEFAULT_GATE_TOML).unwrap();
        config.alpha = f64::NAN;
        assert_eq!(
            config.validate().unwrap_err().as_flag(),
            "--alpha `NaN`: expected a probability above 0 and below 0.5, e.g. 0.05"
        );
        config.alpha = 0.05;
        config.floor.time_ms = -3.0;
        assert!(
            config
                .validate()
                .unwrap_err()
                .as_flag()
                .starts_with("--floor-time-ms `-3`:")
        );
    }

    #[test]
    fn syntax_errors_stay_on_one_line() {
        let message = GateConfig::parse("g", "[noise_band\nx = 1\n")
            .unwrap_err()
            .to_string();
        assert!(message.starts_with("g:1: "), "{message}");
        assert!(!message.contains('\n'), "{message}");
    }
}
