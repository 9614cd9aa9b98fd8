//! Renders an A/B soak comparison that the harness has already computed.
//!
//! The input is an [`AbReport`]: medians, ratios of geometric means with
//! their intervals (each row carries its confidence level, e.g. 90 %),
//! verdicts, the gate's decision and headline, resource series and perf
//! counters. This crate computes no statistics; it formats,
//! lays out and plots. Every renderer is a pure function that returns text:
//! no file I/O, no clock, no environment.
//!
//! | renderer | output | run-folder file |
//! |---|---|---|
//! | [`tsv::compare`], [`tsv::resources`], [`tsv::counters`] | tab-separated tables | `compare.tsv`, `resources-compare.tsv`, `counters-compare.tsv` |
//! | [`terminal::render`] | the gate's headline, plain-text tables and a closing verdict line | (stdout) |
//! | [`markdown::render`] | GitHub-flavoured pull-request summary | `summary.md` |
//! | [`junit::render`] | JUnit XML, one case per gated metric and assertion, an errored `gate` case without a verdict | `junit.xml` |
//! | [`html::render`] | one self-contained HTML page with inline SVG charts | `report.html` |
//!
//! ```
//! # fn demo(report: &soakgate_reports::model::AbReport) -> Result<(), soakgate_reports::ReportError> {
//! let table = soakgate_reports::terminal::render(report, 100);
//! let xml = soakgate_reports::junit::render(report)?;
//! let page = soakgate_reports::html::render(report);
//! # let _ = (table, xml, page); Ok(()) }
//! ```

#![warn(missing_docs)]

mod escape;
mod format;
mod present;

pub mod html;
pub mod junit;
pub mod markdown;
pub mod model;
pub mod power;
pub mod terminal;
pub mod tsv;

pub use model::AbReport;

/// Why a report could not be rendered.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ReportError {
    /// quick-junit refused to serialize the test suite.
    #[error("cannot serialize the junit report: {0}")]
    Junit(#[from] quick_junit::SerializeError),
}

#[cfg(test)]
mod testing {
    use crate::model::{AbReport, BranchLabel, GateStatus, GateSummary};

    /// A report with no rows, for unit tests that fill in one part.
    pub(crate) fn empty_report() -> AbReport {
        let branch = |name: &str| BranchLabel {
            name: name.into(),
            label: format!("{name} label"),
            iterations: 3,
        };
        AbReport {
            title: "empty".into(),
            generated_at: "2026-11-25T10:00:00Z".into(),
            baseline: branch("baseline"),
            treatment: branch("treatment"),
            gate: GateSummary {
                mode: "no-regression".into(),
                status: GateStatus::Pass,
                passed: true,
                headline: "GATE PASS: no regression".into(),
                reasons: vec![],
                rules_out: None,
                could_catch: None,
            },
            sections: vec![],
            resources: vec![],
            counters: vec![],
            attribution: vec![],
            assertions: vec![],
            series: vec![],
            points: vec![],
            warnings: vec![],
            notes: vec![],
            manifest: serde_json::Value::Null,
        }
    }
}
