//! Tab-separated tables for the run folder: `compare.tsv`,
//! `resources-compare.tsv`, `counters-compare.tsv` and
//! `attribution-compare.tsv`.
//!
//! Numbers are raw (seconds, bytes, percent, milliseconds) with a fixed
//! number of decimals so scripts can parse them back: medians and deltas
//! with 3; ratios, interval ends, the interval's confidence level (`0.9000`
//! for 90 %) and the detectable slowdown as a ratio (`1.0800` = 8 %) with 4.
//! An unbounded interval end, or an unknown detectable slowdown, is an
//! empty cell. `verdict` stays the last column so scripts that read it by
//! position from the end keep working. Tabs and line breaks inside names become spaces. Every line,
//! the last included, ends with `\n`.
//!
//! ```
//! # fn demo(report: &soakgate_reports::AbReport) {
//! let tsv = soakgate_reports::tsv::compare(report);
//! assert!(tsv.starts_with("section\tbaseline_median\t"));
//! # }
//! ```

use std::fmt::Write as _;

use crate::model::{AbReport, CounterRow, MetricRow};
use crate::present::{TOP_COUNTERS, counter_ratio, top_counters};

/// The header of [`compare`].
pub const COMPARE_HEADER: &str = "section\tbaseline_median\ttreatment_median\tdelta\tratio\tci_low\tci_high\tci_level\tdetectable\tverdict";

/// The header of [`resources`].
pub const RESOURCES_HEADER: &str = "metric\tunit\tbaseline_median\ttreatment_median\tdelta\tratio\tci_low\tci_high\tci_level\tdetectable\tverdict";

/// The header of [`counters`].
pub const COUNTERS_HEADER: &str = "section\tcounter\tbaseline_total_ms\tbaseline_count\ttreatment_total_ms\ttreatment_count\tratio\tbaseline_share\ttreatment_share";

/// The header of [`attribution`].
pub const ATTRIBUTION_HEADER: &str =
    "section\trole\tcategory\tbaseline_s\ttreatment_s\tdelta_s\tbaseline_wall_s\ttreatment_wall_s";

/// `compare.tsv`: one row per section, the `total` row included, in report order.
pub fn compare(report: &AbReport) -> String {
    let mut out = format!("{COMPARE_HEADER}\n");
    for row in &report.sections {
        let _ = writeln!(out, "{}\t{}", cell(&row.metric), metric_cells(row));
    }
    out
}

/// `resources-compare.tsv`: one row per resource metric, with its unit.
pub fn resources(report: &AbReport) -> String {
    let mut out = format!("{RESOURCES_HEADER}\n");
    for row in &report.resources {
        let _ = writeln!(
            out,
            "{}\t{}\t{}",
            cell(&row.metric),
            row.unit,
            metric_cells(row)
        );
    }
    out
}

/// `counters-compare.tsv`: the top 5 counters of each section by the larger
/// of the two branches' total time. The ratio is treatment total over
/// baseline total (empty when the baseline spent no time).
pub fn counters(report: &AbReport) -> String {
    let mut out = format!("{COUNTERS_HEADER}\n");
    for section in top_counters(report, TOP_COUNTERS) {
        for row in section.rows {
            let _ = writeln!(out, "{}", counter_cells(row));
        }
    }
    out
}

/// `attribution-compare.tsv`: per section, peer and category, the median
/// seconds on each branch (a branch's categories add up to its wall time).
pub fn attribution(report: &AbReport) -> String {
    let mut out = format!("{ATTRIBUTION_HEADER}\n");
    for row in &report.attribution {
        for part in &row.parts {
            let _ = writeln!(
                out,
                "{}\t{}\t{}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{:.3}",
                cell(&row.section),
                cell(&row.role),
                cell(&part.category),
                part.baseline_s,
                part.treatment_s,
                part.treatment_s - part.baseline_s,
                row.baseline_wall_s,
                row.treatment_wall_s
            );
        }
    }
    out
}

fn metric_cells(row: &MetricRow) -> String {
    format!(
        "{:.3}\t{:.3}\t{:.3}\t{:.4}\t{}\t{}\t{:.4}\t{}\t{}",
        row.baseline_median,
        row.treatment_median,
        row.delta,
        row.ratio,
        optional(row.ci_low),
        optional(row.ci_high),
        row.ci_level,
        optional(row.detectable),
        row.verdict
    )
}

fn counter_cells(row: &CounterRow) -> String {
    format!(
        "{}\t{}\t{:.3}\t{:.3}\t{:.3}\t{:.3}\t{}\t{}\t{}",
        cell(&row.section),
        cell(&row.counter),
        row.baseline_total_ms,
        row.baseline_count,
        row.treatment_total_ms,
        row.treatment_count,
        optional(counter_ratio(row)),
        optional(row.baseline_share),
        optional(row.treatment_share)
    )
}

fn optional(value: Option<f64>) -> String {
    value.map(|v| format!("{v:.4}")).unwrap_or_default()
}

/// A text cell: tabs and line breaks would break the table.
fn cell(text: &str) -> String {
    text.replace(['\t', '\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_cells_stay_in_their_column() {
        assert_eq!(cell("a\tb\nc"), "a b c");
        assert_eq!(optional(None), "");
        assert_eq!(optional(Some(1.23456)), "1.2346");
    }
}
