//! The two knobs of a verdict, as types that cannot hold a nonsense value:
//! [`Alpha`] (the one-sided error rate) and [`NoiseBand`] (the relative
//! change that does not count).

use std::fmt;

use serde::Serialize;

use super::StatsError;

/// One-sided error rate of a verdict, strictly between 0 and 0.5.
///
/// A regression is called when the one-sided `1 - alpha` lower bound of the
/// ratio clears the band, an improvement likewise with the upper bound, and
/// "no change" when the two-sided `1 - 2 alpha` interval (made of those same
/// two bounds) lies inside it. The default, 0.05, gives the design's 95 %
/// one-sided bounds and 90 % interval.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Alpha(f64);

impl Alpha {
    /// 0.05: one-sided 95 % bounds, a 90 % two-sided interval.
    pub const DEFAULT: Alpha = Alpha(0.05);

    /// Validates `value` into an alpha; it must lie in (0, 0.5) so that the
    /// two-sided interval has a positive level.
    pub fn new(value: f64) -> Result<Self, StatsError> {
        if value.is_finite() && value > 0.0 && value < 0.5 {
            Ok(Self(value))
        } else {
            Err(StatsError::InvalidAlpha { value })
        }
    }

    /// The raw value.
    pub fn get(self) -> f64 {
        self.0
    }

    /// Confidence of each one-sided bound, `1 - alpha` (0.95 by default).
    pub fn one_sided_level(self) -> f64 {
        1.0 - self.0
    }

    /// Confidence of the two-sided interval, `1 - 2 alpha` (0.90 by default).
    pub fn two_sided_level(self) -> f64 {
        1.0 - 2.0 * self.0
    }

    /// `alpha * share` for a share in (0, 1] (weighted Bonferroni); a share
    /// outside that range is clamped into it, so the result stays valid.
    pub fn scaled(self, share: f64) -> Alpha {
        let share = if share.is_finite() {
            share.clamp(f64::MIN_POSITIVE, 1.0)
        } else {
            1.0
        };
        Alpha(self.0 * share)
    }

    /// `alpha / parts` (Bonferroni). Dividing a value in (0, 0.5) by a
    /// positive count stays in range, so no `Result` is needed; zero parts is
    /// treated as one.
    pub fn divided_by(self, parts: usize) -> Alpha {
        Alpha(self.0 / parts.max(1) as f64)
    }
}

impl Default for Alpha {
    fn default() -> Self {
        Self::DEFAULT
    }
}

impl fmt::Display for Alpha {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", trim_float(self.0))
    }
}

/// The relative change that counts as noise: `0.05` means a ratio within
/// `[0.95, 1.05]` is no change. Strictly between 0 and 1.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct NoiseBand(f64);

impl NoiseBand {
    /// 5 %: the design's default for wall times.
    pub const TIME: NoiseBand = NoiseBand(0.05);
    /// 10 %: the design's default for RSS.
    pub const RSS: NoiseBand = NoiseBand(0.10);

    /// Validates `delta` into a band.
    pub fn new(delta: f64) -> Result<Self, StatsError> {
        if delta.is_finite() && delta > 0.0 && delta < 1.0 {
            Ok(Self(delta))
        } else {
            Err(StatsError::InvalidNoiseBand { value: delta })
        }
    }

    /// The raw relative width, e.g. 0.05.
    pub fn get(self) -> f64 {
        self.0
    }

    /// `1 + delta`: a ratio whose lower bound is above this is a regression.
    pub fn upper(self) -> f64 {
        1.0 + self.0
    }

    /// `1 - delta`: a ratio whose upper bound is below this is an improvement.
    pub fn lower(self) -> f64 {
        1.0 - self.0
    }
}

impl fmt::Display for NoiseBand {
    /// As a percentage: "5%".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}%", trim_float(self.0 * 100.0))
    }
}

/// A share as a percentage without trailing zeros: 0.975 as "97.5%".
pub fn percent(share: f64) -> String {
    format!("{}%", trim_float(share * 100.0))
}

/// A ratio as the change it means, one decimal: 1.123 as "12.3%".
pub(crate) fn change_percent(ratio: f64) -> String {
    format!("{:.1}%", (ratio - 1.0) * 100.0)
}

/// Formats without trailing zeros and without float noise: 5.000000000000001
/// prints as "5", 0.0125 as "0.0125".
pub(crate) fn trim_float(x: f64) -> String {
    let s = format!("{x:.4}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    s.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alpha_range() {
        assert!(Alpha::new(0.0).is_err());
        assert!(Alpha::new(0.5).is_err());
        assert!(Alpha::new(f64::NAN).is_err());
        assert_eq!(Alpha::new(0.05).unwrap(), Alpha::DEFAULT);
        assert!((Alpha::DEFAULT.two_sided_level() - 0.9).abs() < 1e-12);
        assert_eq!(Alpha::DEFAULT.divided_by(4).get(), 0.0125);
    }

    #[test]
    fn band_range_and_display() {
        assert!(NoiseBand::new(0.0).is_err());
        assert!(NoiseBand::new(1.0).is_err());
        assert_eq!(NoiseBand::TIME.to_string(), "5%");
        assert_eq!(NoiseBand::new(0.125).unwrap().to_string(), "12.5%");
        assert_eq!(NoiseBand::TIME.upper(), 1.05);
    }
}
