//! Human-readable numbers shared by the terminal, Markdown, JUnit and HTML
//! renderers: values with units, signed deltas, ratios, intervals and their
//! confidence levels.
//!
//! Memory is shown in binary units (KiB, MiB, GiB), CPU in percent of one
//! core, times with one decimal. A value that is not finite prints as `n/a`,
//! so a broken input shows up instead of a panic.

use crate::model::{MetricRow, Unit};

const KIB: f64 = 1024.0;
const MIB: f64 = KIB * 1024.0;
const GIB: f64 = MIB * 1024.0;

/// What a value that is not a number prints as.
pub(crate) const NOT_A_NUMBER: &str = "n/a";

/// `value` with its unit, e.g. "55.0 s", "1.21 GiB", "147.0 %".
pub(crate) fn value(value: f64, unit: Unit) -> String {
    scaled(value, unit, value.abs())
}

/// Two medians in the same scale, chosen by the larger, so a row never
/// reads "1003.5 MiB" against "1.02 GiB".
pub(crate) fn pair(baseline: f64, treatment: f64, unit: Unit) -> (String, String) {
    let magnitude = [baseline, treatment]
        .into_iter()
        .filter(|v| v.is_finite())
        .map(f64::abs)
        .fold(0.0, f64::max);
    (
        scaled(baseline, unit, magnitude),
        scaled(treatment, unit, magnitude),
    )
}

/// `value` with its unit, the scale (GiB, MiB, ...) chosen for `magnitude`.
fn scaled(value: f64, unit: Unit, magnitude: f64) -> String {
    if !value.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    let abs = magnitude;
    match unit {
        Unit::Seconds if abs > 0.0 && abs < 1.0 => format!("{value:.2} s"),
        Unit::Seconds => format!("{value:.1} s"),
        Unit::Bytes if abs >= GIB => format!("{:.2} GiB", value / GIB),
        Unit::Bytes if abs >= MIB => format!("{:.1} MiB", value / MIB),
        Unit::Bytes if abs >= KIB => format!("{:.1} KiB", value / KIB),
        Unit::Bytes => format!("{value:.0} B"),
        Unit::Percent => format!("{value:.1} %"),
        Unit::Milliseconds => format!("{value:.1} ms"),
        Unit::Count if value.fract() == 0.0 => format!("{value:.0}"),
        Unit::Count => format!("{value:.1}"),
    }
}

/// `delta` with an explicit sign, e.g. "+3.0 s", "-190.5 MiB", "+0.0 s".
pub(crate) fn signed(delta: f64, unit: Unit) -> String {
    if !delta.is_finite() {
        return NOT_A_NUMBER.to_owned();
    }
    // -0.0 would print as "-0.0".
    let delta = if delta == 0.0 { 0.0 } else { delta };
    let text = value(delta, unit);
    if delta >= 0.0 {
        format!("+{text}")
    } else {
        text
    }
}

/// A ratio as a multiplier, e.g. "1.28x".
pub(crate) fn ratio(ratio: f64) -> String {
    if ratio.is_finite() {
        format!("{ratio:.2}x")
    } else {
        NOT_A_NUMBER.to_owned()
    }
}

/// A ratio's interval, e.g. "[1.22, 1.33]" (its level is printed apart, see
/// [`level`]); an unbounded lower end prints as 0 and an unbounded upper end as ∞.
pub(crate) fn interval(low: Option<f64>, high: Option<f64>) -> String {
    let end = |v: f64| {
        if v.is_finite() {
            format!("{v:.2}")
        } else {
            NOT_A_NUMBER.to_owned()
        }
    };
    let low = low.map_or_else(|| "0".to_owned(), end);
    let high = high.map_or_else(|| "∞".to_owned(), end);
    format!("[{low}, {high}]")
}

/// A row's ratio with its interval, e.g. "1.28x [1.22, 1.33]".
pub(crate) fn ratio_with_interval(row: &MetricRow) -> String {
    format!("{} {}", ratio(row.ratio), interval(row.ci_low, row.ci_high))
}

/// A row's ratio with its interval and the interval's level, e.g.
/// "1.28x [1.22, 1.33] (95% CI)", for places without a column header.
pub(crate) fn ratio_with_level(row: &MetricRow) -> String {
    format!("{} ({} CI)", ratio_with_interval(row), level(row.ci_level))
}

/// A confidence level as a percentage, e.g. "90%", "95%", "97.5%"; a level
/// outside (0, 1) prints as `n/a` rather than as a misleading number.
pub(crate) fn level(level: f64) -> String {
    if !(level.is_finite() && level > 0.0 && level < 1.0) {
        return NOT_A_NUMBER.to_owned();
    }
    // Two decimals absorb binary noise (0.9 * 100 = 90.00000000000001);
    // trailing zeros go so the common levels read "90%", not "90.00%".
    let percent = format!("{:.2}", level * 100.0);
    let percent = percent.trim_end_matches('0').trim_end_matches('.');
    format!("{percent}%")
}

/// [`level`] of a level that may be unknown (a table without rows).
pub(crate) fn optional_level(level: Option<f64>) -> String {
    level.map_or_else(|| NOT_A_NUMBER.to_owned(), self::level)
}

/// The header of a ratio column whose intervals are at `level`, e.g.
/// "ratio [90% CI]"; without rows there is no level to name.
pub(crate) fn ratio_header(level: Option<f64>) -> String {
    match level {
        Some(level) => format!("ratio [{} CI]", self::level(level)),
        None => "ratio [CI]".to_owned(),
    }
}

/// The smallest slowdown a run would catch, from its ratio, e.g. 1.082 →
/// "8.2%"; unknown prints as `n/a`.
pub(crate) fn detectable(ratio: Option<f64>) -> String {
    match ratio.filter(|r| r.is_finite()) {
        Some(ratio) => format!("{:.1}%", (ratio - 1.0) * 100.0),
        None => NOT_A_NUMBER.to_owned(),
    }
}

/// A p-value: three significant places, or "< 0.001".
pub(crate) fn p_value(p: f64) -> String {
    if !p.is_finite() {
        NOT_A_NUMBER.to_owned()
    } else if p < 0.001 {
        "< 0.001".to_owned()
    } else {
        format!("{p:.3}")
    }
}

/// A pass count, e.g. "5/5".
pub(crate) fn fraction(passed: usize, total: usize) -> String {
    format!("{passed}/{total}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_carry_their_units() {
        assert_eq!(value(55.0, Unit::Seconds), "55.0 s");
        assert_eq!(value(0.25, Unit::Seconds), "0.25 s");
        assert_eq!(value(1.21 * GIB, Unit::Bytes), "1.21 GiB");
        assert_eq!(value(512.0 * MIB, Unit::Bytes), "512.0 MiB");
        assert_eq!(value(2048.0, Unit::Bytes), "2.0 KiB");
        assert_eq!(value(12.0, Unit::Bytes), "12 B");
        assert_eq!(value(147.0, Unit::Percent), "147.0 %");
        assert_eq!(value(12.34, Unit::Milliseconds), "12.3 ms");
        assert_eq!(value(42.0, Unit::Count), "42");
        assert_eq!(value(42.5, Unit::Count), "42.5");
        assert_eq!(value(f64::NAN, Unit::Count), "n/a");
    }

    #[test]
    fn pairs_share_a_scale() {
        let (b, t) = pair(0.98 * GIB, 1.02 * GIB, Unit::Bytes);
        assert_eq!((b.as_str(), t.as_str()), ("0.98 GiB", "1.02 GiB"));
        let (b, t) = pair(f64::NAN, 3.0 * MIB, Unit::Bytes);
        assert_eq!((b.as_str(), t.as_str()), ("n/a", "3.0 MiB"));
    }

    #[test]
    fn deltas_are_signed() {
        assert_eq!(signed(3.0, Unit::Seconds), "+3.0 s");
        assert_eq!(signed(0.0, Unit::Seconds), "+0.0 s");
        assert_eq!(signed(-0.0, Unit::Seconds), "+0.0 s");
        assert_eq!(signed(-174.0, Unit::Seconds), "-174.0 s");
        assert_eq!(signed(-190.0 * MIB, Unit::Bytes), "-190.0 MiB");
    }

    #[test]
    fn intervals_show_unbounded_ends() {
        assert_eq!(interval(Some(1.2222), Some(1.333)), "[1.22, 1.33]");
        assert_eq!(interval(None, Some(1.1)), "[0, 1.10]");
        assert_eq!(interval(Some(1.01), None), "[1.01, ∞]");
        assert_eq!(ratio(1.276), "1.28x");
        assert_eq!(p_value(0.0004), "< 0.001");
        assert_eq!(p_value(0.0079), "0.008");
    }

    #[test]
    fn levels_print_as_plain_percentages() {
        assert_eq!(level(0.9), "90%");
        assert_eq!(level(0.95), "95%");
        assert_eq!(level(0.99), "99%");
        assert_eq!(level(0.975), "97.5%");
        assert_eq!(level(0.5), "50%");
        assert_eq!(level(1.0), "n/a");
        assert_eq!(level(f64::NAN), "n/a");
        assert_eq!(ratio_header(Some(0.95)), "ratio [95% CI]");
        assert_eq!(ratio_header(None), "ratio [CI]");
        assert_eq!(detectable(Some(1.082)), "8.2%");
        assert_eq!(detectable(None), "n/a");
    }
}
