//! Turning a judgement into the reports crate's model, and writing every
//! report file of the run folder.

use std::{collections::BTreeMap, path::Path};

use soakgate_reports::model::{
    self as rm, AbReport, AssertionRow, AttributionPart, AttributionRow, BranchLabel, CounterRow,
    GateSummary, MetricPoints, MetricRow, ResourceSeries,
};

use super::{
    compare::{Judgement, MetricComparison},
    diagnosis::{self, AttributionMedians},
    metrics::{MetricKind, SectionRef},
    strays,
};
use crate::{
    record::{IterationRecord, IterationStatus},
    stats::{GateMode, GateStatus, Verdict, median, percent},
};

/// How each side is labelled in reports.
pub struct Labels {
    /// Baseline label (`main @ 1a2b3c4`).
    pub baseline: String,
    /// Treatment label.
    pub treatment: String,
}

fn verdict(v: &Verdict) -> rm::Verdict {
    match v {
        Verdict::Regression => rm::Verdict::Regression,
        Verdict::Improvement => rm::Verdict::Improvement,
        Verdict::NoRegression => rm::Verdict::NoRegression,
        Verdict::CannotTell { .. } => rm::Verdict::CannotTell,
    }
}

fn status(s: GateStatus) -> rm::GateStatus {
    match s {
        GateStatus::Pass => rm::GateStatus::Pass,
        GateStatus::Fail => rm::GateStatus::Fail,
        GateStatus::CannotTell => rm::GateStatus::CannotTell,
        GateStatus::Interrupted => rm::GateStatus::Interrupted,
        GateStatus::Infrastructure => rm::GateStatus::Infrastructure,
    }
}

fn unit(kind: MetricKind) -> rm::Unit {
    match kind {
        MetricKind::SectionTime
        | MetricKind::TotalTime
        | MetricKind::SectionCpu
        | MetricKind::TotalCpu => rm::Unit::Seconds,
        MetricKind::MeanRss | MetricKind::MaxRss => rm::Unit::Bytes,
        MetricKind::MeanCpu => rm::Unit::Percent,
        MetricKind::CounterTime => rm::Unit::Milliseconds,
        MetricKind::CounterCount => rm::Unit::Count,
    }
}

/// What a row is judged from besides its own comparison.
struct RowContext<'a> {
    judgement: &'a Judgement,
    attribution: &'a [AttributionMedians],
    baseline: &'a [IterationRecord],
    treatment: &'a [IterationRecord],
}

fn row(metric: &MetricComparison, context: &RowContext<'_>) -> Option<MetricRow> {
    let c = metric.comparison.as_ref()?;
    // A changed section says what moved; an undecided one, which
    // iterations kept it from deciding; a regression called without a
    // machine stray, which one it was.
    let why = match c.verdict {
        Verdict::Regression if c.set_aside.is_some() => {
            let moved = diagnosis::why(&metric.id, context.judgement, context.attribution);
            let stray = strays::describe(&metric.id, context.baseline, context.treatment)
                .map(|s| format!("called without the machine's stray: {s}"));
            match (moved, stray) {
                (Some(m), Some(s)) => Some(format!("{m}; {s}")),
                (m, s) => m.or(s),
            }
        }
        Verdict::Regression | Verdict::Improvement => {
            diagnosis::why(&metric.id, context.judgement, context.attribution)
        }
        Verdict::CannotTell { .. } => {
            strays::describe(&metric.id, context.baseline, context.treatment)
        }
        _ => None,
    };
    Some(MetricRow {
        metric: metric.metric.clone(),
        unit: unit(metric.id.kind),
        gated: metric.gated,
        baseline_median: c.baseline_median,
        treatment_median: c.treatment_median,
        delta: c.delta_abs,
        ratio: c.ratio,
        ci_low: c.interval.low(),
        ci_high: c.interval.high(),
        ci_level: c.interval.level(),
        p_value: c.p_slower_adjusted,
        cliffs_delta: c.rank_check.cliffs_delta,
        slower_pairs: c.rank_check.slower_pairs,
        pairs: c.rank_check.pairs,
        verdict: verdict(&c.verdict),
        reason: c.reason.clone(),
        noise_band: Some(c.regression_share).filter(|s| s.is_finite()),
        detectable: Some(c.detectable_ratio).filter(|r| r.is_finite()),
        why,
    })
}

/// Builds the report model.
pub fn build(
    judgement: &Judgement,
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
    labels: &Labels,
    run_dir: &Path,
    manifest: serde_json::Value,
) -> AbReport {
    let is_time = |k: MetricKind| matches!(k, MetricKind::SectionTime | MetricKind::TotalTime);
    let is_resource = |k: MetricKind| {
        matches!(
            k,
            MetricKind::MeanRss
                | MetricKind::MaxRss
                | MetricKind::MeanCpu
                | MetricKind::SectionCpu
                | MetricKind::TotalCpu
        )
    };
    let attribution = diagnosis::attribution_medians(baseline, treatment);
    let context = RowContext {
        judgement,
        attribution: &attribution,
        baseline,
        treatment,
    };
    let sections = judgement
        .metrics
        .iter()
        .filter(|m| is_time(m.id.kind))
        .filter_map(|m| row(m, &context))
        .collect();
    let resources = judgement
        .metrics
        .iter()
        .filter(|m| is_resource(m.id.kind))
        .filter_map(|m| row(m, &context))
        .collect();
    let points = judgement
        .metrics
        .iter()
        .filter(|m| is_time(m.id.kind) || is_resource(m.id.kind))
        .map(|m| MetricPoints {
            metric: m.metric.clone(),
            baseline: m.baseline.clone(),
            treatment: m.treatment.clone(),
        })
        .collect();
    AbReport {
        title: "soak ab: baseline vs treatment".into(),
        generated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        baseline: BranchLabel {
            name: "baseline".into(),
            label: labels.baseline.clone(),
            iterations: judgement.iterations.0,
        },
        treatment: BranchLabel {
            name: "treatment".into(),
            label: labels.treatment.clone(),
            iterations: judgement.iterations.1,
        },
        gate: GateSummary {
            mode: match judgement.mode {
                GateMode::NoRegression => "no-regression".into(),
                GateMode::MustImprove => GateSummary::MUST_IMPROVE.into(),
            },
            status: status(judgement.gate.status),
            passed: judgement.gate.passed,
            headline: judgement.gate.headline.clone(),
            reasons: judgement.gate.reasons.clone(),
            rules_out: judgement.gate.rules_out.clone(),
            could_catch: judgement.gate.could_catch.clone(),
        },
        sections,
        resources,
        counters: counter_rows(judgement),
        attribution: attribution_rows(&attribution),
        assertions: assertion_rows(judgement, baseline, treatment),
        series: series(run_dir, baseline, "baseline")
            .into_iter()
            .chain(series(run_dir, treatment, "treatment"))
            .collect(),
        points,
        warnings: warnings(judgement, baseline, treatment),
        notes: notes(judgement),
        manifest,
    }
}

fn attribution_rows(medians: &[AttributionMedians]) -> Vec<AttributionRow> {
    medians
        .iter()
        .map(|m| AttributionRow {
            section: m.section.to_string(),
            role: m.role.clone(),
            baseline_wall_s: m.wall.0,
            treatment_wall_s: m.wall.1,
            parts: m
                .parts
                .iter()
                .map(|(category, b, t)| AttributionPart {
                    category: category.as_str().to_owned(),
                    baseline_s: *b,
                    treatment_s: *t,
                })
                .collect(),
        })
        .collect()
}

/// Median wall time of a counter row's section on each branch, in ms: the
/// section's own time, or the whole run's for the run-total rows.
fn section_wall_ms(judgement: &Judgement, section: Option<&SectionRef>) -> Option<(f64, f64)> {
    let wall = judgement.metrics.iter().find(|m| match section {
        Some(SectionRef::Scenario { id, .. }) => {
            m.id.kind == MetricKind::SectionTime
                && matches!(&m.id.section, Some(SectionRef::Scenario { id: s, .. }) if s == id)
        }
        Some(SectionRef::Span(label)) if label == crate::counters::RUN_TOTAL => {
            m.id.kind == MetricKind::TotalTime
        }
        _ => false,
    })?;
    if wall.baseline.is_empty() || wall.treatment.is_empty() {
        return None;
    }
    Some((
        median(&wall.baseline) * 1000.0,
        median(&wall.treatment) * 1000.0,
    ))
}

fn counter_rows(judgement: &Judgement) -> Vec<CounterRow> {
    // Pair each counter's time and count metrics by their typed identity.
    type Key = (usize, Option<SectionRef>, Option<String>);
    let mut rows: BTreeMap<Key, CounterRow> = BTreeMap::new();
    for metric in &judgement.metrics {
        let is_time = match metric.id.kind {
            MetricKind::CounterTime => true,
            MetricKind::CounterCount => false,
            _ => continue,
        };
        let id = &metric.id;
        let row = rows
            .entry((id.order, id.section.clone(), id.counter.clone()))
            .or_insert_with(|| CounterRow {
                section: id
                    .section
                    .as_ref()
                    .map(SectionRef::label)
                    .unwrap_or_default(),
                counter: id.counter.clone().unwrap_or_default(),
                baseline_total_ms: 0.0,
                baseline_count: 0.0,
                treatment_total_ms: 0.0,
                treatment_count: 0.0,
                baseline_share: None,
                treatment_share: None,
            });
        let (b, t) = (median(&metric.baseline), median(&metric.treatment));
        if is_time {
            (row.baseline_total_ms, row.treatment_total_ms) = (b, t);
            if let Some((wall_b, wall_t)) = section_wall_ms(judgement, id.section.as_ref()) {
                let share = |ms: f64, wall: f64| (wall > 0.0 && ms.is_finite()).then(|| ms / wall);
                row.baseline_share = share(b, wall_b);
                row.treatment_share = share(t, wall_t);
            }
        } else {
            (row.baseline_count, row.treatment_count) = (b, t);
        }
    }
    rows.into_values().collect()
}

fn assertion_rows(
    judgement: &Judgement,
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
) -> Vec<AssertionRow> {
    judgement
        .assertions
        .iter()
        .map(|rates| {
            let diff = treatment
                .iter()
                .chain(baseline)
                .flat_map(|r| &r.assertions)
                .find(|a| a.name == rates.name && !a.passed)
                .and_then(|a| a.diff.clone().or_else(|| Some(a.message.clone())));
            AssertionRow {
                name: rates.name.clone(),
                baseline_passed: rates.baseline.passed(),
                baseline_total: rates.baseline.total(),
                treatment_passed: rates.treatment.passed(),
                treatment_total: rates.treatment.total(),
                regressed: crate::stats::assertion_regressed(rates.baseline, rates.treatment),
                diff,
            }
        })
        .collect()
}

/// RSS and CPU over time of the branch's median iteration (by total time).
fn series(run_dir: &Path, records: &[IterationRecord], branch: &str) -> Vec<ResourceSeries> {
    let mut complete: Vec<&IterationRecord> = records
        .iter()
        .filter(|r| matches!(r.status, IterationStatus::Passed | IterationStatus::Failed))
        .collect();
    complete.sort_by(|a, b| a.total_seconds.total_cmp(&b.total_seconds));
    let Some(median) = complete.get(complete.len() / 2) else {
        return Vec::new();
    };
    let path = run_dir
        .join(branch)
        .join(format!("run-{}", median.iteration))
        .join("samples.tsv");
    let Ok(mut reader) = csv::ReaderBuilder::new().delimiter(b'\t').from_path(&path) else {
        return Vec::new();
    };
    // Per role: (elapsed, RSS) and (elapsed, CPU) points.
    type Points = Vec<(f64, f64)>;
    let mut by_role: BTreeMap<String, (Points, Points)> = BTreeMap::new();
    for record in reader.records().filter_map(Result::ok) {
        let (Some(elapsed), Some(role), Some(rss), Some(cpu)) = (
            record.get(0).and_then(|v| v.parse::<f64>().ok()),
            record.get(2),
            record.get(4).and_then(|v| v.parse::<f64>().ok()),
            record.get(5).and_then(|v| v.parse::<f64>().ok()),
        ) else {
            continue;
        };
        let entry = by_role.entry(role.to_owned()).or_default();
        entry.0.push((elapsed, rss));
        entry.1.push((elapsed, cpu));
    }
    by_role
        .into_iter()
        .flat_map(|(role, (rss, cpu))| {
            [
                ResourceSeries {
                    branch: branch.to_owned(),
                    role: role.clone(),
                    metric: rm::RSS_SERIES.to_owned(),
                    points: rss,
                },
                ResourceSeries {
                    branch: branch.to_owned(),
                    role,
                    metric: rm::CPU_SERIES.to_owned(),
                    points: cpu,
                },
            ]
        })
        .collect()
}

fn warnings(
    judgement: &Judgement,
    baseline: &[IterationRecord],
    treatment: &[IterationRecord],
) -> Vec<String> {
    let mut out: Vec<String> = baseline
        .iter()
        .chain(treatment)
        .filter_map(|r| {
            let c = r.contamination.as_ref()?;
            c.flagged
                .then(|| format!("{} run-{}: {}", r.branch, r.iteration, c.reason))
        })
        .collect();
    out.extend(judgement.infrastructure.iter().cloned());
    out.extend(judgement.retried.iter().cloned());
    out
}

fn notes(judgement: &Judgement) -> Vec<String> {
    let mut notes = Vec::new();
    let gated = judgement.gated().count();
    let alpha = judgement.alpha;
    notes.push(format!(
        "{gated} gated metrics judged together: a regression needs p <= {alpha} after Holm across them and a slowdown beyond the metric's noise band (without iterations the machine slowed); \"no regression\" needs the one-sided {} upper bound inside its pass bound. All other metrics are advisory.",
        percent(1.0 - alpha)
    ));
    let skipped: Vec<&str> = judgement
        .metrics
        .iter()
        .filter(|m| m.gated && m.comparison.is_none())
        .map(|m| m.metric.as_str())
        .collect();
    if !skipped.is_empty() {
        notes.push(format!(
            "Not compared (nothing timed): {}.",
            skipped.join(", ")
        ));
    }
    notes
}

/// Writes every report file into `dir`, and the Markdown summary to
/// `$GITHUB_STEP_SUMMARY` when set. Returns the terminal rendering.
pub fn write_all(dir: &Path, report: &AbReport, judgement: &Judgement) -> std::io::Result<String> {
    use soakgate_reports::{html, junit, markdown, terminal, tsv};
    std::fs::write(dir.join("compare.tsv"), tsv::compare(report))?;
    std::fs::write(dir.join("resources-compare.tsv"), tsv::resources(report))?;
    std::fs::write(dir.join("counters-compare.tsv"), tsv::counters(report))?;
    if !report.attribution.is_empty() {
        std::fs::write(
            dir.join("attribution-compare.tsv"),
            tsv::attribution(report),
        )?;
    }
    let summary = markdown::render(report);
    std::fs::write(dir.join("summary.md"), &summary)?;
    if let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY") {
        use std::io::Write;
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)?;
        writeln!(file, "{summary}")?;
    }
    std::fs::write(
        dir.join("junit.xml"),
        junit::render(report).map_err(std::io::Error::other)?,
    )?;
    std::fs::write(dir.join("report.html"), html::render(report))?;
    crate::record::write_json(&dir.join("verdict.json"), judgement)?;
    Ok(terminal::render(report, 100))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ab::{
        compare::judge,
        gate_config::{DEFAULT_GATE_TOML, GateConfig},
    };

    /// The §C.2 row of a report on two sides of (seconds, peer CPU).
    fn section_row(baseline: &[(f64, f64)], treatment: &[(f64, f64)]) -> MetricRow {
        let side = crate::ab::strays::tests::records;
        let (baseline, treatment) = (side("baseline", baseline), side("treatment", treatment));
        let config = GateConfig::parse("gate.toml", DEFAULT_GATE_TOML).unwrap();
        let settings = crate::ab::compare::tests::settings();
        let judgement = judge(&baseline, &treatment, &config, settings);
        let labels = Labels {
            baseline: "baseline".into(),
            treatment: "treatment".into(),
        };
        let report = build(
            &judgement,
            &baseline,
            &treatment,
            &labels,
            Path::new("run"),
            serde_json::Value::Null,
        );
        report
            .sections
            .into_iter()
            .find(|r| r.metric.starts_with("§C.2"))
            .unwrap()
    }

    /// An undecided section's row says which iterations kept it so.
    #[test]
    fn an_undecided_section_names_its_stray_iterations() {
        let clean = [(0.72, 0.41), (0.71, 0.41), (0.73, 0.41), (0.72, 0.41)];
        let slow = [(0.72, 0.41), (0.71, 0.41), (0.84, 0.52), (0.72, 0.41)];
        let row = section_row(&clean, &slow);
        assert_eq!(row.verdict, rm::Verdict::CannotTell, "{row:?}");
        let why = row.why.as_deref().unwrap_or_default();
        assert!(
            why.starts_with("a stray iteration widens its interval: treatment run-3 0.84 s")
                && why.ends_with("the machine ran them slower, not the branch"),
            "{why}"
        );
    }

    /// A regression called without a machine stray names the stray.
    #[test]
    fn a_regression_called_without_a_stray_names_it() {
        let baseline = [
            (2.00, 0.80),
            (2.02, 0.81),
            (1.99, 0.80),
            (2.01, 0.80),
            (2.30, 0.96),
        ];
        let slower = [
            (2.20, 0.80),
            (2.22, 0.81),
            (2.19, 0.80),
            (2.21, 0.80),
            (2.21, 0.81),
        ];
        let row = section_row(&baseline, &slower);
        assert_eq!(row.verdict, rm::Verdict::Regression, "{row:?}");
        assert!(
            row.reason.contains("without the baseline's machine stray"),
            "{}",
            row.reason
        );
        let why = row.why.as_deref().unwrap_or_default();
        assert!(
            why.contains("called without the machine's stray")
                && why.contains("baseline run-5 2.30 s"),
            "{why}"
        );
    }

    #[test]
    fn counter_rows_come_from_typed_ids_not_display_names() {
        let record = crate::ab::metrics::tests::record_with_counters();
        let config = GateConfig::parse("gate.toml", DEFAULT_GATE_TOML).unwrap();
        let records = vec![record.clone(), record];
        let settings = crate::ab::compare::tests::settings();
        let judgement = judge(&records, &records, &config, settings);
        let rows = counter_rows(&judgement);
        assert_eq!(rows.len(), 2, "{rows:?}");
        // Scenario order first, the run total last; names kept whole.
        assert_eq!(
            (rows[0].section.as_str(), rows[0].counter.as_str()),
            ("§C.2", "pin_car")
        );
        assert_eq!(rows[1].section, "(run total)");
        assert_eq!(rows[1].counter, "flush total");
        assert_eq!(
            (rows[1].baseline_count, rows[1].baseline_total_ms),
            (5.0, 50.0)
        );
    }
}
