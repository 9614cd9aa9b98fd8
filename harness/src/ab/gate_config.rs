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
    /// Perf counters, in their own unit (ms for times, calls for counts).
    pub counters: f64,
}

impl Default for Floors {
    fn default() -> Self {
        Self {
            time_ms: 0.0,
            rss_mib: 0.0,
            cpu_pct: 0.0,
            counters: 0.0,
        }
    }
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
    /// Gated metric groups: total, sections, mean_rss, max_rss, mean_cpu.
    pub gated: Vec<String>,
    /// Noise bands.
    pub noise_band: NoiseBands,
    /// Absolute floors.
    #[serde(default)]
    pub floor: Floors,
}

/// The metric groups `gated` may name.
const GROUPS: [&str; 5] = ["total", "sections", "mean_rss", "max_rss", "mean_cpu"];

impl GateConfig {
    /// Parses `text`; `origin` names it in errors.
    pub fn parse(origin: &str, text: &str) -> Result<GateConfig, String> {
        let config: GateConfig = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].matches('\n').count() + 1)
                .map(|l| format!(":{l}"))
                .unwrap_or_default();
            format!("{origin}{line}: {}", e.message().trim())
        })?;
        config.validate().map_err(|e| format!("{origin}: {e}"))?;
        Ok(config)
    }

    /// `path` if given, else `ci/gate.toml` in the current directory if it
    /// exists, else the built-in defaults.
    pub fn load(path: Option<&Path>) -> Result<GateConfig, String> {
        let local = Path::new("ci/gate.toml");
        match path {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read --gate-config `{}`: {e}", path.display()))?;
                GateConfig::parse(&path.display().to_string(), &text)
            }
            None if local.is_file() => {
                let text = std::fs::read_to_string(local)
                    .map_err(|e| format!("cannot read `ci/gate.toml`: {e}"))?;
                GateConfig::parse("ci/gate.toml", &text)
            }
            None => GateConfig::parse("<built-in gate.toml>", DEFAULT_GATE_TOML),
        }
    }

    /// Checks ranges and group names.
    pub fn validate(&self) -> Result<(), String> {
        if !(self.alpha > 0.0 && self.alpha < 0.5) {
            return Err(format!("alpha must be in (0, 0.5), got {}", self.alpha));
        }
        let bands = [
            ("time", self.noise_band.time),
            ("rss", self.noise_band.rss),
            ("cpu", self.noise_band.cpu),
            ("counters", self.noise_band.counters),
        ];
        for (name, band) in bands {
            if !(band > 0.0 && band < 1.0) {
                return Err(format!("noise_band.{name} must be in (0, 1), got {band}"));
            }
        }
        let floors = [
            ("time_ms", self.floor.time_ms),
            ("rss_mib", self.floor.rss_mib),
            ("cpu_pct", self.floor.cpu_pct),
            ("counters", self.floor.counters),
        ];
        for (name, floor) in floors {
            if !(floor.is_finite() && floor >= 0.0) {
                return Err(format!("floor.{name} must be a number >= 0, got {floor}"));
            }
        }
        if self.min_iterations < 2 {
            return Err("min_iterations must be at least 2".into());
        }
        for group in &self.gated {
            if !GROUPS.contains(&group.as_str()) {
                return Err(format!(
                    "gated: unknown group `{group}` (known: {})",
                    GROUPS.join(", ")
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
            MetricKind::CounterTime | MetricKind::CounterCount => self.floor.counters,
        };
        let band = NoiseBand::new(self.band(kind)).unwrap_or(NoiseBand::TIME);
        Tolerance::new(band, floor).unwrap_or_else(|_| Tolerance::relative(band))
    }

    /// The noise band of `kind`.
    pub fn band(&self, kind: MetricKind) -> f64 {
        match kind {
            MetricKind::SectionTime | MetricKind::TotalTime => self.noise_band.time,
            MetricKind::MeanRss | MetricKind::MaxRss => self.noise_band.rss,
            MetricKind::MeanCpu => self.noise_band.cpu,
            MetricKind::CounterTime | MetricKind::CounterCount => self.noise_band.counters,
        }
    }
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
        let text = DEFAULT_GATE_TOML.replace("time = 0.05", "time = 2");
        assert!(
            GateConfig::parse("g", &text)
                .unwrap_err()
                .contains("noise_band.time")
        );
        let text = DEFAULT_GATE_TOML.replace("\"mean_rss\"]", "\"speed\"]");
        assert!(
            GateConfig::parse("g", &text)
                .unwrap_err()
                .contains("`speed`")
        );
        let text = DEFAULT_GATE_TOML.replace("time_ms = 25", "time_ms = -1");
        assert!(
            GateConfig::parse("g", &text)
                .unwrap_err()
                .contains("floor.time_ms")
        );
        let text = DEFAULT_GATE_TOML.replace("\"fail\"", "\"maybe\"");
        assert!(GateConfig::parse("g", &text).is_err());
        let text = DEFAULT_GATE_TOML.replace("mode = \"no-regression\"", "mode = \"yolo\"");
        assert!(GateConfig::parse("g", &text).unwrap_err().starts_with("g:"));
    }
}
