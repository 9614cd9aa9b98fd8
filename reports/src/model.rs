//! The input of every renderer: an A/B comparison the harness has already
//! computed.
//!
//! [`AbReport`] carries medians, ratios of geometric means, intervals with
//! their confidence levels, verdicts and the gate's decision as numbers and
//! words; nothing in this crate recomputes them. The model is
//! `Serialize + Deserialize` so tests and tools can keep a report as JSON;
//! `soak gate` does not read it back but re-judges from the iteration
//! records, so a re-render always reflects the current gate.
//!
//! ```
//! use soakgate_reports::model::{AbReport, Verdict};
//!
//! let json = r#"{"title":"t","generated_at":"2026-11-25T10:00:00Z",
//!   "baseline":{"name":"baseline","label":"main @ 1a2b3c4","iterations":3},
//!   "treatment":{"name":"treatment","label":"HEAD @ 9f8e7d6","iterations":3},
//!   "gate":{"mode":"no-regression","status":"pass","passed":true,
//!           "headline":"GATE PASS: no regression","reasons":[]},
//!   "sections":[],"resources":[],"counters":[],"assertions":[],"series":[],
//!   "points":[],"warnings":[],"notes":[],"manifest":{}}"#;
//! let report: AbReport = serde_json::from_str(json).unwrap();
//! assert!(report.gate.passed);
//! assert_eq!(Verdict::NoRegression.to_string(), "no regression");
//! ```

use std::fmt;

use serde::{Deserialize, Serialize};

/// Everything one A/B report shows, already computed by the harness.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AbReport {
    /// The report's headline, e.g. "pay-sync-clear-recover: main vs HEAD".
    pub title: String,
    /// When the comparison was made, RFC 3339 (shown as is, never parsed).
    pub generated_at: String,
    /// The reference branch.
    pub baseline: BranchLabel,
    /// The branch under test.
    pub treatment: BranchLabel,
    /// The gate's decision and why.
    pub gate: GateSummary,
    /// Wall time per section, in scenario order, then a final row whose
    /// metric is `"total"`.
    pub sections: Vec<MetricRow>,
    /// Resource metrics, e.g. "peer1 mean RSS", "peer1 max RSS", "peer1 mean CPU".
    pub resources: Vec<MetricRow>,
    /// Perf counters per section, medians over iterations.
    pub counters: Vec<CounterRow>,
    /// Where each peer's wall time went per section (with perf counters):
    /// medians per branch, in scenario order.
    #[serde(default)]
    pub attribution: Vec<AttributionRow>,
    /// Assertion pass-rates per branch.
    pub assertions: Vec<AssertionRow>,
    /// RSS and CPU over time of each branch's median iteration, per role.
    pub series: Vec<ResourceSeries>,
    /// Every iteration's value per metric (for dots on the bars).
    pub points: Vec<MetricPoints>,
    /// Things that make the evidence weaker, e.g. contaminated runs.
    pub warnings: Vec<String>,
    /// Explanations shown with the report, e.g. what n = 3 can detect.
    pub notes: Vec<String>,
    /// Refs, commits, commands, variants, network profile, machine.
    pub manifest: serde_json::Value,
}

/// One side of the comparison.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BranchLabel {
    /// The side's name, `"baseline"` or `"treatment"`.
    pub name: String,
    /// What was run, e.g. "main @ 1a2b3c4" or "SPHERE_PROOF_CHECK=pairwise".
    pub label: String,
    /// Iterations completed on this side.
    pub iterations: usize,
}

/// The gate's outcome, as decided by the harness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GateStatus {
    /// No gated metric regressed beyond tolerance and every one is decided.
    Pass,
    /// A regression, a broken assertion or an unmet must-improve claim.
    Fail,
    /// Nothing failed, but some gated metric is undecided; `passed` says
    /// whether the configuration lets that pass with a warning.
    CannotTell,
    /// The run was interrupted: partial evidence, no verdict.
    Interrupted,
    /// An iteration failed for reasons outside both branches: no verdict.
    Infrastructure,
}

/// The gate's decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GateSummary {
    /// `"no-regression"` or `"must-improve"`.
    pub mode: String,
    /// Which outcome.
    pub status: GateStatus,
    /// Whether the job passes (a pass, or cannot-tell configured to warn).
    pub passed: bool,
    /// One line for the top of every report, e.g.
    /// "GATE FAIL: regression in `§C.2 Bob pays`".
    pub headline: String,
    /// Why the gate decided as it did, most important first.
    pub reasons: Vec<String>,
    /// What a pass rules out, e.g. "a slowdown above 3.2% in any gated metric (...)".
    #[serde(default)]
    pub rules_out: Option<String>,
    /// The smallest regression the run would have caught in 90 % of runs.
    #[serde(default)]
    pub could_catch: Option<String>,
}

impl GateSummary {
    /// The mode in which total wall time must be an improvement.
    pub const MUST_IMPROVE: &'static str = "must-improve";

    /// Whether the gate ran in `must-improve` mode.
    pub fn is_must_improve(&self) -> bool {
        self.mode == Self::MUST_IMPROVE
    }
}

/// The unit of a metric's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Unit {
    /// Wall time in seconds.
    Seconds,
    /// Memory in bytes.
    Bytes,
    /// CPU in percent of one core.
    Percent,
    /// Time in milliseconds.
    Milliseconds,
    /// A plain count.
    Count,
}

impl Unit {
    /// The unit's short name as written in TSV files: `s`, `bytes`, `%`, `ms`, `count`.
    pub fn as_str(self) -> &'static str {
        match self {
            Unit::Seconds => "s",
            Unit::Bytes => "bytes",
            Unit::Percent => "%",
            Unit::Milliseconds => "ms",
            Unit::Count => "count",
        }
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the evidence says about one metric (decided by the harness).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The treatment is slower beyond the tolerance, with confidence.
    Regression,
    /// The treatment is faster beyond the tolerance, with confidence.
    Improvement,
    /// Any slowdown is within the tolerance, with confidence.
    NoRegression,
    /// The evidence decides neither way.
    CannotTell,
}

impl Verdict {
    /// The verdict in words: "regression", "improvement", "no regression", "cannot tell".
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Regression => "regression",
            Verdict::Improvement => "improvement",
            Verdict::NoRegression => "no regression",
            Verdict::CannotTell => "cannot tell",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One metric compared between the branches.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricRow {
    /// The metric's name, e.g. "§C.2 Bob pays", "total" or "peer1 mean RSS".
    pub metric: String,
    /// The unit of the medians and the delta.
    pub unit: Unit,
    /// Whether the gate decides on this metric (the rest are advisory).
    pub gated: bool,
    /// Median over baseline iterations.
    pub baseline_median: f64,
    /// Median over treatment iterations.
    pub treatment_median: f64,
    /// Treatment minus baseline, in `unit`.
    pub delta: f64,
    /// Estimated treatment / baseline ratio (of geometric means).
    pub ratio: f64,
    /// Lower end of the ratio's interval; `None` = unbounded.
    pub ci_low: Option<f64>,
    /// Upper end of the ratio's interval; `None` = unbounded.
    pub ci_high: Option<f64>,
    /// Confidence of the two-sided interval, e.g. 0.9 (its ends are the
    /// one-sided bounds at `(1 + ci_level) / 2`). It follows the alpha the
    /// verdict used, so an adaptive run's last look shows its own level.
    pub ci_level: f64,
    /// p-value of "the treatment is slower", Holm-adjusted for gated metrics.
    pub p_value: f64,
    /// Cliff's delta, in [-1, 1].
    pub cliffs_delta: f64,
    /// Pairs (t_i, b_j) in which the treatment was slower (larger).
    pub slower_pairs: usize,
    /// All pairs, m x n.
    pub pairs: usize,
    /// The harness's verdict.
    pub verdict: Verdict,
    /// The verdict's reason in words.
    pub reason: String,
    /// The tolerance the verdict used at this metric's size, as a fraction
    /// (0.05 = ±5 %; the noise band, or the absolute floor when larger), if
    /// known; drawn as a shaded band on the ratio chart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub noise_band: Option<f64>,
    /// The smallest slowdown (as a ratio, 1.08 = 8 %) this run would catch
    /// in 90 % of runs at its noise and iteration count.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detectable: Option<f64>,
    /// For a section that got slower or faster: which kind of time moved
    /// and which counter with it, e.g. "gateway +2.00 s, backoff +1.00 s;
    /// pin_car +980 ms (14 → 112 calls)".
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub why: Option<String>,
}

/// One perf counter in one section, medians over iterations per branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CounterRow {
    /// The section the counter window belongs to.
    pub section: String,
    /// The counter's name, e.g. "verify_proofs".
    pub counter: String,
    /// Median total time on the baseline, ms.
    pub baseline_total_ms: f64,
    /// Median count on the baseline.
    pub baseline_count: f64,
    /// Median total time on the treatment, ms.
    pub treatment_total_ms: f64,
    /// Median count on the treatment.
    pub treatment_count: f64,
    /// The baseline's total time as a share of the section's median wall
    /// time (a union counter never exceeds 1; a sum over concurrent calls
    /// may).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_share: Option<f64>,
    /// The same on the treatment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub treatment_share: Option<f64>,
}

/// One peer's wall time in one section, split by what it was spent on;
/// medians per branch. The parts of a branch add up to its wall time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionRow {
    /// The section's label, e.g. "§C.2".
    pub section: String,
    /// The peer, e.g. "peer1".
    pub role: String,
    /// Median wall time of the section on the baseline, seconds.
    pub baseline_wall_s: f64,
    /// The same on the treatment.
    pub treatment_wall_s: f64,
    /// Per category (cpu, backoff, aggregator, gateway, relay, poll, store,
    /// other), in that order.
    pub parts: Vec<AttributionPart>,
}

/// One category of an [`AttributionRow`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttributionPart {
    /// The category's name, e.g. "gateway".
    pub category: String,
    /// Median seconds on the baseline.
    pub baseline_s: f64,
    /// Median seconds on the treatment.
    pub treatment_s: f64,
}

/// One assertion's pass-rate per branch.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssertionRow {
    /// The assertion's name, e.g. "bob-peer1-vs-peer2-after".
    pub name: String,
    /// Baseline iterations in which it passed.
    pub baseline_passed: usize,
    /// Baseline iterations in which it was evaluated.
    pub baseline_total: usize,
    /// Treatment iterations in which it passed.
    pub treatment_passed: usize,
    /// Treatment iterations in which it was evaluated.
    pub treatment_total: usize,
    /// Whether it passes on the baseline and fails on the treatment.
    pub regressed: bool,
    /// A failing unified diff, e.g. "-UCT: 99.99 (1 token)\n+UCT: 199.99 (2 tokens)".
    pub diff: Option<String>,
}

/// A resource over time in one branch's median iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSeries {
    /// `"baseline"` or `"treatment"`.
    pub branch: String,
    /// The process tree, e.g. "peer1", "peer2", "testnet".
    pub role: String,
    /// `"rss_bytes"` or `"cpu_pct"`.
    pub metric: String,
    /// (elapsed seconds, value).
    pub points: Vec<(f64, f64)>,
}

/// Every iteration's value of one metric, per branch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoints {
    /// The metric's name, matching a [`MetricRow::metric`].
    pub metric: String,
    /// Baseline values, one per iteration.
    pub baseline: Vec<f64>,
    /// Treatment values, one per iteration.
    pub treatment: Vec<f64>,
}

/// The metric name of the final row in [`AbReport::sections`].
pub const TOTAL_METRIC: &str = "total";

/// The [`ResourceSeries::metric`] of resident memory, in bytes.
pub const RSS_SERIES: &str = "rss_bytes";

/// The [`ResourceSeries::metric`] of CPU, in percent of one core.
pub const CPU_SERIES: &str = "cpu_pct";
