//! What one iteration measured, and how it is written to its folder.
//!
//! `summary-metrics.json` is the whole [`IterationRecord`] (versioned by
//! [`SCHEMA_VERSION`]); `totals.tsv`, `samples.tsv` and `counters.tsv` are
//! flat views of it for people and spreadsheets. Writers produce bytes or
//! write one file each, and are called as soon as data exists, so an
//! interrupted run keeps what it measured.

use std::{collections::BTreeMap, io::Write, path::Path};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::{
    counters::SectionCounters,
    sampler::{Contamination, ProcessTreeSample, ResourceSummary},
    scenario::SectionId,
    scenario::assertions::AssertionOutcome,
};

/// Version of the `summary-metrics.json` layout.
pub const SCHEMA_VERSION: u32 = 1;

/// How a section ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SectionStatus {
    /// Every step succeeded and every error-severity assertion held.
    Pass,
    /// A step failed (peer error, unmet expectation) or an assertion failed.
    Fail,
    /// Infrastructure failure: crash, hang, timeout.
    Error,
    /// Not reached.
    NotRun,
}

impl SectionStatus {
    /// The text used in tables.
    pub fn as_str(self) -> &'static str {
        match self {
            SectionStatus::Pass => "PASS",
            SectionStatus::Fail => "FAIL",
            SectionStatus::Error => "ERROR",
            SectionStatus::NotRun => "NOT_RUN",
        }
    }
}

/// One section of one iteration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SectionRecord {
    /// The section (stored as `C.2`, without the `§`).
    pub id: SectionId,
    /// Its title.
    pub title: String,
    /// Wall time from the first request sent to the last response received.
    pub seconds: Option<f64>,
    /// How it ended.
    pub status: SectionStatus,
    /// Why it failed, if it did.
    pub failure: Option<String>,
    /// When it started, for attributing samples and counters.
    pub started_at: Option<chrono::DateTime<chrono::Utc>>,
    /// When it ended.
    pub ended_at: Option<chrono::DateTime<chrono::Utc>>,
    /// CPU-seconds each role's process tree spent in the section (user and
    /// system, read from the kernel's clocks at both ends: exact to one
    /// clock tick, not sampled). Empty where `/proc` is not available.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub cpu_seconds: BTreeMap<String, f64>,
    /// The largest RSS each role's process tree reached in the samples
    /// taken during the section, in bytes. A section shorter than the
    /// sampling interval may have no sample, hence no entry.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub peak_rss_bytes: BTreeMap<String, u64>,
}

/// How an iteration ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum IterationStatus {
    /// Ran to the end; every step succeeded and every assertion held.
    Passed,
    /// Ran; a step or an error-severity assertion failed.
    Failed,
    /// Stopped by an infrastructure failure.
    Infrastructure {
        /// The one-line error.
        message: String,
    },
    /// Stopped by Ctrl-C or SIGTERM.
    Interrupted,
}

/// Everything one iteration measured.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IterationRecord {
    /// [`SCHEMA_VERSION`].
    pub schema_version: u32,
    /// `run`, `baseline` or `treatment`.
    pub branch: String,
    /// 1-based.
    pub iteration: usize,
    /// How it ended.
    pub status: IterationStatus,
    /// When it started.
    pub started_at: chrono::DateTime<chrono::Utc>,
    /// Sum of the sections' wall times.
    pub total_seconds: f64,
    /// Per section.
    pub sections: Vec<SectionRecord>,
    /// Per assertion.
    pub assertions: Vec<AssertionOutcome>,
    /// Per role: RSS and CPU of its process tree.
    pub resources: Vec<ResourceSummary>,
    /// Whether other processes took a large share of the machine.
    pub contamination: Option<Contamination>,
    /// Perf counters per section and role.
    pub counters: Vec<SectionCounters>,
    /// Each peer's `hello` (name, version, variant, ops).
    pub peers: serde_json::Map<String, Value>,
    /// The testnet's `/metrics` at the end (what the network model did).
    pub testnet_metrics: Option<Value>,
    /// The shard this iteration ran in (`soak ab --shard I/N`, kept by
    /// `soak merge`): iterations of one shard share a machine, so the
    /// comparison is made within shards. `None` for an unsharded run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<u32>,
    /// Where each peer's wall time went in each section (with `--perf`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub attribution: Vec<crate::attribution::SectionAttribution>,
    /// Why the iteration stopped early, typed (with `status` Infrastructure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failure: Option<crate::runner::IterationFailure>,
}

/// Writes `value` as pretty JSON to `path`.
pub fn write_json<T: Serialize>(path: &Path, value: &T) -> std::io::Result<()> {
    let bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
    std::fs::write(path, bytes)
}

/// `totals.tsv`: section, seconds, status, then each role's CPU-seconds
/// (`cpu_s_peer1`, ...) beside the wall time.
pub fn totals_tsv(record: &IterationRecord) -> Vec<u8> {
    let roles: std::collections::BTreeSet<&String> = record
        .sections
        .iter()
        .flat_map(|s| s.cpu_seconds.keys())
        .collect();
    let mut out = b"section\ttitle\tseconds\tstatus".to_vec();
    for role in &roles {
        let _ = write!(out, "\tcpu_s_{role}");
    }
    for role in &roles {
        let _ = write!(out, "\tpeak_rss_{role}");
    }
    out.push(b'\n');
    let mut cpu_totals: BTreeMap<&String, f64> = BTreeMap::new();
    for section in &record.sections {
        let seconds = section
            .seconds
            .map(|s| format!("{s:.3}"))
            .unwrap_or_default();
        let _ = write!(
            out,
            "{}\t{}\t{}\t{}",
            section.id,
            section.title,
            seconds,
            section.status.as_str()
        );
        for role in &roles {
            match section.cpu_seconds.get(*role) {
                Some(cpu) => {
                    *cpu_totals.entry(role).or_default() += cpu;
                    let _ = write!(out, "\t{cpu:.3}");
                }
                None => out.push(b'\t'),
            }
        }
        for role in &roles {
            match section.peak_rss_bytes.get(*role) {
                Some(bytes) => {
                    let _ = write!(out, "\t{bytes}");
                }
                None => out.push(b'\t'),
            }
        }
        out.push(b'\n');
    }
    let _ = write!(
        out,
        "total\t\t{:.3}\t{}",
        record.total_seconds,
        status_word(&record.status)
    );
    for role in &roles {
        let _ = write!(out, "\t{:.3}", cpu_totals.get(role).copied().unwrap_or(0.0));
    }
    for role in &roles {
        let peak = record
            .sections
            .iter()
            .filter_map(|s| s.peak_rss_bytes.get(*role))
            .max();
        match peak {
            Some(bytes) => {
                let _ = write!(out, "\t{bytes}");
            }
            None => out.push(b'\t'),
        }
    }
    out.push(b'\n');
    out
}

fn status_word(status: &IterationStatus) -> &'static str {
    match status {
        IterationStatus::Passed => "PASS",
        IterationStatus::Failed => "FAIL",
        IterationStatus::Infrastructure { .. } => "ERROR",
        IterationStatus::Interrupted => "INTERRUPTED",
    }
}

/// `samples.tsv`: elapsed, section, role, pid count, rss bytes, cpu %.
pub fn samples_tsv(samples: &[(Option<SectionId>, ProcessTreeSample)]) -> Vec<u8> {
    let mut out = b"elapsed_s\tsection\trole\tpid_count\trss_bytes\tcpu_pct\n".to_vec();
    for (section, sample) in samples {
        let _ = writeln!(
            out,
            "{:.3}\t{}\t{}\t{}\t{}\t{:.1}",
            sample.elapsed.as_secs_f64(),
            section
                .as_ref()
                .map(ToString::to_string)
                .unwrap_or_default(),
            sample.role,
            sample.pid_count,
            sample.rss_bytes,
            sample.cpu_pct
        );
    }
    out
}

/// `counters.tsv`: section, counter, count, total ms, avg ms, max ms (all
/// roles summed).
pub fn counters_tsv(rows: &[SectionCounters]) -> Vec<u8> {
    let mut out = b"section\trole\tcounter\tcount\ttotal_ms\tavg_ms\tmax_ms\n".to_vec();
    for row in rows {
        let _ = writeln!(
            out,
            "{}\t{}\t{}\t{}\t{:.3}\t{:.3}\t{:.3}",
            row.section,
            row.role,
            row.counter,
            row.count,
            row.total_ms,
            row.avg_ms(),
            row.max_ms
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_put_cpu_seconds_and_peak_rss_beside_the_wall_time() {
        let mut record = crate::ab::metrics::tests::record_with_counters();
        let mut second = record.sections[0].clone();
        second.id = "D.4".into();
        second.title = "Recovery".into();
        record.sections.push(second);
        record.sections[0].cpu_seconds = [("peer1".into(), 0.25), ("testnet".into(), 0.5)].into();
        record.sections[0].peak_rss_bytes = [("peer1".into(), 2048)].into();
        record.sections[1].cpu_seconds = [("peer1".into(), 1.0), ("testnet".into(), 0.125)].into();
        record.sections[1].peak_rss_bytes = [("peer1".into(), 4096), ("testnet".into(), 10)].into();
        let text = String::from_utf8(totals_tsv(&record)).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines,
            [
                "section\ttitle\tseconds\tstatus\tcpu_s_peer1\tcpu_s_testnet\tpeak_rss_peer1\tpeak_rss_testnet",
                "§C.2\tBob pays\t2.000\tPASS\t0.250\t0.500\t2048\t",
                "§D.4\tRecovery\t2.000\tPASS\t1.000\t0.125\t4096\t10",
                "total\t\t2.000\tPASS\t1.250\t0.625\t4096\t10",
            ]
        );
    }
}
