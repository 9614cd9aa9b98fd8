//! Reductions of a run's samples: per-role [`ResourceSummary`] and the
//! machine-wide [`ContaminationCheck`].

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{MachineSample, ProcessTreeSample};

/// Share of the machine's CPU capacity that other processes may take on
/// average before a run is flagged.
pub const DEFAULT_THRESHOLD_SHARE: f64 = 0.25;

/// A run is also flagged when more than this fraction of its samples are
/// over the threshold: a parallel build during a fifth of the run distorts
/// the sections it overlaps even if the run-wide mean dilutes it.
const BURST_FRACTION: f64 = 0.2;

/// One role's resources over a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceSummary {
    /// The role's name.
    pub role: String,
    /// Samples of this role in which its tree existed (`pid_count > 0`);
    /// samples after the root exited are left out of everything, since an
    /// absent tree uses nothing and would drag the means down.
    pub samples: usize,
    /// Of those, the samples at or after `start_skip`, which the means use.
    pub averaged_samples: usize,
    /// Mean RSS of the samples at or after `start_skip`, in bytes; `None`
    /// when no sample qualifies (a run shorter than `start_skip`), which
    /// the report must say rather than show a 0.
    pub trimmed_mean_rss_bytes: Option<u64>,
    /// Largest RSS over all samples, warm-up included, in bytes.
    pub max_rss_bytes: u64,
    /// Mean CPU (percent of one core) of the samples at or after
    /// `start_skip`; `None` when none qualifies.
    pub mean_cpu_pct: Option<f64>,
    /// Largest CPU over all samples, in percent of one core.
    pub max_cpu_pct: f64,
}

impl ResourceSummary {
    /// Summarises `role`'s samples (samples of other roles are ignored).
    ///
    /// The means skip the warm-up: only samples with `elapsed >= start_skip`
    /// count (the design's `start_skip`, default 30 s scaled with
    /// `time_scale`); the maxima use every sample.
    pub fn from_samples(samples: &[ProcessTreeSample], role: &str, start_skip: Duration) -> Self {
        let alive = samples
            .iter()
            .filter(|sample| sample.role == role && sample.pid_count > 0);
        let mut summary = Self {
            role: role.to_string(),
            samples: 0,
            averaged_samples: 0,
            trimmed_mean_rss_bytes: None,
            max_rss_bytes: 0,
            mean_cpu_pct: None,
            max_cpu_pct: 0.0,
        };
        let (mut rss_sum, mut cpu_sum) = (0_u128, 0.0_f64);
        for sample in alive {
            summary.samples += 1;
            summary.max_rss_bytes = summary.max_rss_bytes.max(sample.rss_bytes);
            summary.max_cpu_pct = summary.max_cpu_pct.max(sample.cpu_pct);
            if sample.elapsed >= start_skip {
                summary.averaged_samples += 1;
                rss_sum += u128::from(sample.rss_bytes);
                cpu_sum += sample.cpu_pct;
            }
        }
        if let Ok(n) = u32::try_from(summary.averaged_samples)
            && n > 0
        {
            let n128 = u128::from(n);
            // Rounded to the nearest byte; the mean of u64s fits a u64.
            let mean = (rss_sum + n128 / 2) / n128;
            summary.trimmed_mean_rss_bytes = Some(u64::try_from(mean).unwrap_or(u64::MAX));
            summary.mean_cpu_pct = Some(cpu_sum / f64::from(n));
        }
        summary
    }
}

/// The contamination guard: did processes other than ours take a large
/// share of the machine's CPU during the run?
///
/// Our trees are measured on their own, so other load does not inflate our
/// RSS or CPU figures; it slows our sections down, which is what the flag
/// warns about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ContaminationCheck;

/// The verdict of the [`ContaminationCheck`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contamination {
    /// Whether the run is flagged (to be shown in every report).
    pub flagged: bool,
    /// Mean share (0..1) of the machine's capacity used by other processes.
    pub other_cpu_share_mean: f64,
    /// Largest share (0..1) in a single sample.
    pub other_cpu_share_max: f64,
    /// Samples with valid CPU figures that were evaluated.
    pub samples: usize,
    /// Of those, samples where the other share was above the threshold.
    pub samples_over_threshold: usize,
    /// One sentence for reports.
    pub reason: String,
}

impl ContaminationCheck {
    /// Evaluates a run's machine samples against `threshold_share` (a share
    /// of the machine's capacity, `cores * 100` percent; e.g.
    /// [`DEFAULT_THRESHOLD_SHARE`]).
    ///
    /// "Other" is the machine's total minus ours, floored at 0 (the two are
    /// read a few microseconds apart). Samples without valid CPU figures
    /// (a sampler's first) are skipped. The run is flagged when the mean
    /// other share is above the threshold, or when more than a fifth of the
    /// samples are. A threshold that is not a number falls back to the
    /// default; others are clamped to 0..=1.
    pub fn evaluate(machine_samples: &[MachineSample], threshold_share: f64) -> Contamination {
        let threshold = if threshold_share.is_nan() {
            DEFAULT_THRESHOLD_SHARE
        } else {
            threshold_share.clamp(0.0, 1.0)
        };
        let shares: Vec<f64> = machine_samples
            .iter()
            .filter(|sample| sample.cpu_valid && sample.cores > 0)
            .map(|sample| {
                let capacity = 100.0 * sample.cores as f64;
                ((sample.cpu_pct_total - sample.cpu_pct_ours).max(0.0) / capacity).min(1.0)
            })
            .collect();
        if shares.is_empty() {
            return Contamination {
                flagged: false,
                other_cpu_share_mean: 0.0,
                other_cpu_share_max: 0.0,
                samples: 0,
                samples_over_threshold: 0,
                reason: "not checked: no machine sample with CPU figures (CPU needs at least two samples)"
                    .to_string(),
            };
        }
        let mean = shares.iter().sum::<f64>() / shares.len() as f64;
        let max = shares.iter().copied().fold(0.0, f64::max);
        let over = shares.iter().filter(|share| **share > threshold).count();
        let burst = over as f64 > BURST_FRACTION * shares.len() as f64;
        let flagged = mean > threshold || burst;
        let pct = |share: f64| share * 100.0;
        let reason = if mean > threshold {
            format!(
                "other processes used {:.1}% of the machine's CPU on average (max {:.1}%), above the {:.1}% threshold: timings of this run are suspect",
                pct(mean),
                pct(max),
                pct(threshold)
            )
        } else if burst {
            format!(
                "other processes used more than {:.1}% of the machine's CPU in {over} of {} samples (mean {:.1}%, max {:.1}%): timings of this run are suspect",
                pct(threshold),
                shares.len(),
                pct(mean),
                pct(max)
            )
        } else {
            format!(
                "other processes used {:.1}% of the machine's CPU on average (max {:.1}%), within the {:.1}% threshold",
                pct(mean),
                pct(max),
                pct(threshold)
            )
        };
        Contamination {
            flagged,
            other_cpu_share_mean: mean,
            other_cpu_share_max: max,
            samples: shares.len(),
            samples_over_threshold: over,
            reason,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(role: &str, secs: u64, pids: usize, rss: u64, cpu: f64) -> ProcessTreeSample {
        ProcessTreeSample {
            elapsed: Duration::from_secs(secs),
            role: role.to_string(),
            pid_count: pids,
            rss_bytes: rss,
            cpu_pct: cpu,
        }
    }

    fn machine(secs: u64, total: f64, ours: f64, valid: bool) -> MachineSample {
        MachineSample {
            elapsed: Duration::from_secs(secs),
            cpu_pct_total: total,
            cpu_pct_ours: ours,
            cores: 4,
            cpu_valid: valid,
        }
    }

    #[test]
    fn summary_trims_means_but_not_maxima() {
        let samples = vec![
            tree("peer1", 0, 1, 900, 0.0),
            tree("peer1", 10, 1, 100, 300.0),
            tree("peer2", 20, 1, 5000, 50.0),
            tree("peer1", 30, 2, 200, 20.0),
            tree("peer1", 40, 2, 301, 40.0),
            tree("peer1", 50, 0, 0, 0.0),
        ];
        let summary = ResourceSummary::from_samples(&samples, "peer1", Duration::from_secs(30));
        assert_eq!(summary.samples, 4);
        assert_eq!(summary.averaged_samples, 2);
        assert_eq!(summary.trimmed_mean_rss_bytes, Some(251)); // 250.5 rounds up
        assert_eq!(summary.max_rss_bytes, 900);
        assert_eq!(summary.mean_cpu_pct, Some(30.0));
        assert_eq!(summary.max_cpu_pct, 300.0);
    }

    #[test]
    fn summary_of_short_run_has_no_means() {
        let samples = vec![tree("peer1", 1, 1, 100, 5.0), tree("peer1", 2, 1, 120, 7.0)];
        let summary = ResourceSummary::from_samples(&samples, "peer1", Duration::from_secs(30));
        assert_eq!(summary.samples, 2);
        assert_eq!(summary.averaged_samples, 0);
        assert_eq!(summary.trimmed_mean_rss_bytes, None);
        assert_eq!(summary.mean_cpu_pct, None);
        assert_eq!(summary.max_rss_bytes, 120);
        assert_eq!(summary.max_cpu_pct, 7.0);
        let none = ResourceSummary::from_samples(&samples, "peer9", Duration::ZERO);
        assert_eq!(none.samples, 0);
        assert_eq!(none.trimmed_mean_rss_bytes, None);
    }

    #[test]
    fn contamination_uses_machine_capacity() {
        // 4 cores = 400 %. Other = 100 % of one core = 25 % of the machine.
        let samples = vec![
            machine(0, 0.0, 0.0, false),
            machine(1, 250.0, 150.0, true),
            machine(2, 250.0, 150.0, true),
        ];
        let result = ContaminationCheck::evaluate(&samples, 0.2);
        assert_eq!(result.samples, 2);
        assert!((result.other_cpu_share_mean - 0.25).abs() < 1e-12);
        assert!(result.flagged, "{}", result.reason);
        assert!(result.reason.contains("above"));
        let result = ContaminationCheck::evaluate(&samples, 0.3);
        assert!(!result.flagged, "{}", result.reason);
        assert!(result.reason.contains("within"));
    }

    #[test]
    fn contamination_floors_other_at_zero_and_flags_bursts() {
        let mut samples = vec![machine(1, 100.0, 120.0, true)];
        let result = ContaminationCheck::evaluate(&samples, 0.25);
        assert_eq!(result.other_cpu_share_max, 0.0);
        assert!(!result.flagged);
        // 3 of 10 samples at 75 % other: the mean (22.5 %) is under 25 %,
        // but the burst covers more than a fifth of the run.
        samples = (0..10)
            .map(|i| machine(i, if i < 3 { 300.0 } else { 0.0 }, 0.0, true))
            .collect();
        let result = ContaminationCheck::evaluate(&samples, 0.25);
        assert!(result.other_cpu_share_mean < 0.25);
        assert_eq!(result.samples_over_threshold, 3);
        assert!(result.flagged, "{}", result.reason);
    }

    #[test]
    fn contamination_without_samples_is_not_flagged() {
        let result = ContaminationCheck::evaluate(&[machine(0, 0.0, 0.0, false)], f64::NAN);
        assert!(!result.flagged);
        assert_eq!(result.samples, 0);
        assert!(result.reason.starts_with("not checked"));
    }
}
