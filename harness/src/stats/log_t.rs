//! The estimate that decides verdicts: the treatment/baseline ratio as the
//! difference of mean log values, with Welch's t-distribution for its
//! uncertainty.
//!
//! Why this and not the exact rank machinery: an exact rank test at `n` a
//! side cannot produce a p-value below `1 / C(2n, n)` (0.05 at 3, 0.004 at
//! 5), so with a dozen gated metrics nothing could be decided below 6 a
//! side. Iteration times of one variant are close to log-normal with 1-4 %
//! spread, so a t interval on log times has resolution at 3-5 a side and is
//! scale-free (multiplying every value by `c` shifts both means by `ln c`).
//! Welch rather than a pooled variance because a treatment may change the
//! spread as well as the level (a rate-limited fan-out adds backoff jitter).
//! The rank statistics stay in the report as a robustness check.
//!
//! ```
//! use soakgate::stats::{LogShift, Sample};
//! let b = Sample::new(vec![10.0, 10.2, 9.9, 10.1, 10.0])?;
//! let t = Sample::new(vec![11.0, 11.1, 10.9, 11.2, 11.0])?;
//! let shift = LogShift::welch(&b, &t);
//! assert!((shift.ratio() - 1.0996).abs() < 1e-4);
//! assert!(shift.p_greater() < 1e-5);
//! # Ok::<(), soakgate::stats::StatsError>(())
//! ```

use serde::Serialize;
use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{Alpha, Sample};

/// Welch's estimate of `ln(treatment) - ln(baseline)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LogShift {
    /// Mean log treatment minus mean log baseline.
    pub log_ratio: f64,
    /// Standard error of `log_ratio` (Welch: `sqrt(s_b^2/n + s_t^2/m)`).
    pub standard_error: f64,
    /// Welch-Satterthwaite degrees of freedom.
    pub df: f64,
}

impl LogShift {
    /// Welch's unequal-variance estimate on the natural logs of both samples.
    pub fn welch(baseline: &Sample, treatment: &Sample) -> Self {
        let (mean_b, var_b, n) = moments(&baseline.logs());
        let (mean_t, var_t, m) = moments(&treatment.logs());
        let (vb, vt) = (var_b / n, var_t / m);
        let se2 = vb + vt;
        // Satterthwaite; with both variances zero the df is moot (the
        // standard error is zero and every probability below is a step), so
        // the pooled df stands in.
        let df = if se2 > 0.0 {
            se2 * se2 / (vb * vb / (n - 1.0) + vt * vt / (m - 1.0))
        } else {
            n + m - 2.0
        };
        Self {
            log_ratio: mean_t - mean_b,
            standard_error: se2.sqrt(),
            df,
        }
    }

    /// The estimated treatment/baseline ratio, `exp(log_ratio)` (a ratio of
    /// geometric means).
    pub fn ratio(&self) -> f64 {
        self.log_ratio.exp()
    }

    /// One-sided p-value of "the treatment is slower (larger)": the chance of
    /// a t statistic at least this large if the ratio were 1.
    pub fn p_greater(&self) -> f64 {
        self.upper_tail(self.log_ratio)
    }

    /// One-sided p-value of "the treatment is faster (smaller)".
    pub fn p_less(&self) -> f64 {
        self.upper_tail(-self.log_ratio)
    }

    /// One-sided `1 - alpha` upper confidence bound of the ratio.
    pub fn upper_bound(&self, alpha: Alpha) -> f64 {
        (self.log_ratio + self.critical(alpha) * self.standard_error).exp()
    }

    /// One-sided `1 - alpha` lower confidence bound of the ratio.
    pub fn lower_bound(&self, alpha: Alpha) -> f64 {
        (self.log_ratio - self.critical(alpha) * self.standard_error).exp()
    }

    /// The `1 - alpha` quantile of the t distribution with this df.
    pub fn critical(&self, alpha: Alpha) -> f64 {
        t_quantile(1.0 - alpha.get(), self.df)
    }

    /// The smallest slowdown (a ratio above 1) that a test at one-sided level
    /// `alpha`, requiring also an estimate beyond `threshold` (a ratio),
    /// would catch with probability `power`, if this standard error held.
    /// A planning figure: it treats the standard error as known.
    pub fn detectable_ratio(&self, alpha: Alpha, threshold: f64, power: f64) -> f64 {
        let z = t_quantile(power, self.df);
        let by_test = (self.critical(alpha) + z) * self.standard_error;
        let by_threshold = threshold.ln().max(0.0) + z * self.standard_error;
        by_test.max(by_threshold).exp()
    }

    /// `P(T >= x / se)` under this estimate's t distribution: the chance the
    /// estimate overshoots the truth by more than `x` on the log scale.
    pub fn tail_beyond(&self, x: f64) -> f64 {
        self.upper_tail(x)
    }

    /// `P(T >= x / se)` for the t distribution with this df; a step when the
    /// standard error is zero (identical values on both sides).
    fn upper_tail(&self, x: f64) -> f64 {
        if self.standard_error == 0.0 {
            return if x > 0.0 { 0.0 } else { 1.0 };
        }
        students_t(self.df).map_or(1.0, |t| t.sf(x / self.standard_error))
    }
}

/// Mean, sample variance (n - 1) and count, as floats.
fn moments(values: &[f64]) -> (f64, f64, f64) {
    let n = values.len() as f64;
    let mean = values.iter().sum::<f64>() / n;
    let ss: f64 = values.iter().map(|v| (v - mean).powi(2)).sum();
    (mean, ss / (n - 1.0).max(1.0), n)
}

/// The standard t distribution; `None` only for a df that is not positive
/// (impossible for samples of two or more, which [`Sample`] guarantees).
fn students_t(df: f64) -> Option<StudentsT> {
    StudentsT::new(0.0, 1.0, df).ok()
}

/// The `p` quantile of the t distribution with `df` degrees of freedom.
pub(crate) fn t_quantile(p: f64, df: f64) -> f64 {
    students_t(df).map_or(f64::INFINITY, |t| t.inverse_cdf(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[f64]) -> Sample {
        Sample::new(v.to_vec()).unwrap()
    }

    // Reference values computed independently with scipy:
    //   b = log([10, 10.4, 9.8]); t = log([11, 11.5, 10.7])
    //   scipy.stats.ttest_ind(t, b, equal_var=False, alternative='greater')
    //   -> statistic 3.463905, pvalue 0.0135627, df 3.869711
    //   scipy.stats.t.ppf(0.95, 3.869711) -> 2.152638
    #[test]
    fn matches_scipy_welch() {
        let shift = LogShift::welch(&s(&[10.0, 10.4, 9.8]), &s(&[11.0, 11.5, 10.7]));
        let t = shift.log_ratio / shift.standard_error;
        assert!((t - 3.463_905).abs() < 1e-5, "t {t}");
        assert!((shift.df - 3.869_711).abs() < 1e-5, "df {}", shift.df);
        let p = shift.p_greater();
        assert!((p - 0.013_562_7).abs() < 1e-6, "p {p}");
        assert!((shift.critical(Alpha::DEFAULT) - 2.152_638).abs() < 1e-5);
    }

    // scipy.stats.t.ppf(0.975, 8) = 2.306004; t.ppf(0.995, 4) = 4.604095
    #[test]
    fn quantiles() {
        assert!((t_quantile(0.975, 8.0) - 2.306_004).abs() < 1e-5);
        assert!((t_quantile(0.995, 4.0) - 4.604_095).abs() < 1e-5);
    }

    #[test]
    fn identical_values_are_a_step() {
        let same = LogShift::welch(&s(&[5.0, 5.0]), &s(&[5.0, 5.0]));
        assert_eq!(same.p_greater(), 1.0);
        assert_eq!(same.upper_bound(Alpha::DEFAULT), 1.0);
        let slower = LogShift::welch(&s(&[5.0, 5.0]), &s(&[6.0, 6.0]));
        assert_eq!(slower.p_greater(), 0.0);
        assert_eq!(slower.p_less(), 1.0);
    }
}
