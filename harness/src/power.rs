//! `soak power`: what the gate can and cannot see, measured on your own
//! iterations.
//!
//! From a pool of iterations of one variant (an A/A `soak ab`, or `soak run
//! --iterations N`), draw many A/B runs of `n` iterations a side without
//! replacement, as the ABBA schedule lays them out (below), and judge each
//! with the gate's own rule ([`call_family`] over the gated metrics, as
//! `soak gate` does):
//!
//! - unchanged, to count false alarms (any gated regression) and how often
//!   the gate cannot tell;
//! - with one metric's treatment values slowed by a factor, to find the
//!   smallest slowdown caught in 80 % and 90 % of runs. Slowing a section
//!   adds the same seconds to the total of that iteration, as a real
//!   slowdown would.
//!
//! Every slowdown reuses the same draws (common random numbers), so the
//! catch rate is monotone in the slowdown and a bisection finds the
//! smallest one exactly for these draws. Everything is seeded: the same pool
//! and settings give the same table.
//!
//! Resampling whole iterations keeps the correlation between one
//! iteration's metrics (a slow machine moment slows several sections), which
//! is what Holm must cope with. Drawing them in pairs keeps what the ABBA
//! schedule does with time: a real run puts one iteration of each branch in
//! every block of two neighbours, so a machine that is slower for a minute
//! slows both sides alike. The pool is put in the order it ran and cut into
//! neighbouring pairs; a draw takes `n` pairs and gives one member of each
//! to either side by a coin. Free draws (any `2n` iterations, split at
//! random) would instead judge runs the schedule never makes, with one
//! side's iterations bunched in the slow minute: on a CI pool whose
//! neighbours ran alike but whose pairs alternated fast and slow (totals
//! 2.7 s and 2.9 s), they counted 6.5 % false alarms at 6 a side where the
//! gate's own layout counts none.
//!
//! The rates come out as the reports crate's rows ([`GateRow`], [`RateRow`],
//! [`AutoRow`]), which `power.tsv`, the terminal and `power.html` render.

use rand::{Rng, SeedableRng, seq::index::sample};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use soakgate_reports::power::{AutoRow, GateRow, RateRow};

use crate::{
    ab::{
        gate_config::GateConfig,
        metrics::{MetricId, MetricKind, extract_blocked},
    },
    record::IterationRecord,
    stats::{
        Alpha, Call, Evidence, LogShift, LookSchedule, MetricSamples, Sample, Tolerance,
        call_family, evidence_of, median,
    },
};

/// Why a pool cannot be studied.
#[derive(Debug, thiserror::Error)]
pub enum PowerError {
    /// Too few iterations to draw two sides of the smallest size.
    #[error(
        "{have} complete iterations of one variant; power needs at least {need} (2 x the smallest size, {smallest} a side): run `soak run --iterations {need}` or an A/A `soak ab`"
    )]
    PoolTooSmall {
        /// Iterations in the pool.
        have: usize,
        /// Iterations needed.
        need: usize,
        /// The smallest per-side size asked for.
        smallest: usize,
    },
    /// No gated metric was measured in every iteration.
    #[error("no gated metric was measured in every iteration of the pool")]
    NoGatedMetric,
}

/// One gated metric across the pool.
#[derive(Debug, Clone)]
struct PoolMetric {
    id: MetricId,
    tolerance: Tolerance,
    /// One value per pool iteration, all positive.
    values: Vec<f64>,
    /// The CPU-seconds behind each value, for times whose every iteration
    /// measured them: the gate sets machine strays aside with them.
    cpu: Option<Vec<f64>>,
}

/// The gated metrics of a pool of one variant's iterations, in the order
/// they ran: iterations `2k` and `2k + 1` are neighbours, the pair a draw
/// splits between the sides.
#[derive(Debug, Clone)]
pub struct Pool {
    metrics: Vec<PoolMetric>,
    total: Option<usize>,
    size: usize,
}

impl Pool {
    /// The gated metrics measured (and positive) in every complete iteration
    /// of `records`, put in the order the iterations started.
    pub fn from_records(
        records: &[IterationRecord],
        config: &GateConfig,
    ) -> Result<Self, PowerError> {
        let mut in_order: Vec<&IterationRecord> = records.iter().collect();
        in_order.sort_by_key(|r| r.started_at);
        let per_iteration: Vec<_> = in_order
            .into_iter()
            .map(|r| extract_blocked(std::slice::from_ref(r)))
            .filter(|m| !m.is_empty())
            .collect();
        let size = per_iteration.len();
        let Some(first) = per_iteration.first() else {
            return Err(PowerError::PoolTooSmall {
                have: 0,
                need: 4,
                smallest: 2,
            });
        };
        let metrics: Vec<PoolMetric> = first
            .keys()
            .filter(|id| config.is_gated(id.kind))
            .filter_map(|id| {
                let values: Option<Vec<f64>> = per_iteration
                    .iter()
                    .map(|m| m.get(id).and_then(|v| v.values.first().copied()))
                    .map(|v| v.filter(|x| *x > 0.0 && x.is_finite()))
                    .collect();
                let cpu: Option<Vec<f64>> = per_iteration
                    .iter()
                    .map(|m| m.get(id).and_then(|v| v.cpu.first().copied().flatten()))
                    .collect();
                Some(PoolMetric {
                    id: id.clone(),
                    tolerance: config.tolerance(id.kind),
                    values: values?,
                    cpu,
                })
            })
            .collect();
        if metrics.is_empty() {
            return Err(PowerError::NoGatedMetric);
        }
        let total = metrics
            .iter()
            .position(|m| m.id.kind == MetricKind::TotalTime);
        Ok(Self {
            metrics,
            total,
            size,
        })
    }

    /// Iterations in the pool.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Neighbouring pairs in the pool (an odd last iteration is in none):
    /// the most iterations a side a draw can take.
    fn pairs(&self) -> usize {
        self.size / 2
    }
}

/// What to study.
#[derive(Debug, Clone)]
pub struct PowerSettings {
    /// Resampled runs per size.
    pub trials: usize,
    /// Per-side sizes.
    pub sizes: Vec<usize>,
    /// Family alpha of a fixed-size gate.
    pub alpha: Alpha,
    /// Seed of the draws.
    pub seed: u64,
}

impl PowerSettings {
    /// 1000 runs per size, 3 to 10 a side (as far as the pool allows).
    pub fn standard(alpha: Alpha) -> Self {
        Self {
            trials: 1000,
            sizes: (3..=10).collect(),
            alpha,
            seed: 1,
        }
    }
}

/// One gated metric's power table.
#[derive(Debug, Clone, Serialize)]
pub struct MetricPower {
    /// The metric.
    pub id: MetricId,
    /// Its shown name.
    pub metric: String,
    /// Median over the pool.
    pub median: f64,
    /// Coefficient of variation over the pool (sd of logs).
    pub spread: f64,
    /// Rates per size.
    pub rates: Vec<RateRow>,
}

/// Everything `soak power` reports.
#[derive(Debug, Clone, Serialize)]
pub struct PowerStudy {
    /// Iterations in the pool.
    pub pool_size: usize,
    /// Resampled runs per size.
    pub trials: usize,
    /// Family alpha.
    pub alpha: f64,
    /// The gate per size.
    pub gate: Vec<GateRow>,
    /// Each gated metric per size.
    pub metrics: Vec<MetricPower>,
    /// The adaptive plan, when the pool is deep enough for its cap.
    pub auto: Option<AutoRow>,
}

/// Runs the study.
pub fn study(pool: &Pool, settings: &PowerSettings) -> Result<PowerStudy, PowerError> {
    let sizes: Vec<usize> = settings
        .sizes
        .iter()
        .copied()
        .filter(|&n| n >= 2 && n <= pool.pairs())
        .collect();
    if sizes.is_empty() {
        let smallest = settings.sizes.iter().copied().min().unwrap_or(3).max(2);
        return Err(PowerError::PoolTooSmall {
            have: pool.size,
            need: 2 * smallest,
            smallest,
        });
    }
    let mut gate = Vec::new();
    let mut per_metric: Vec<Vec<RateRow>> = vec![Vec::new(); pool.metrics.len()];
    for &n in &sizes {
        let draws = draws(pool.pairs(), n, settings.trials, settings.seed ^ n as u64);
        let unchanged: Vec<Vec<Call>> = draws
            .iter()
            .map(|d| judge(pool, d, n, None, settings.alpha))
            .collect();
        gate.push(gate_rates(n, &unchanged));
        for (index, rates) in per_metric.iter_mut().enumerate() {
            let false_alarm = share(&unchanged, |calls| calls[index] == Call::Regression);
            let caught = |s: f64| caught(pool, &draws, n, index, s, settings.alpha);
            rates.push(RateRow {
                per_side: n,
                false_alarm,
                caught_10: caught(0.10),
                caught_20: caught(0.20),
                slowdown_80: smallest_caught(&caught, 0.8),
                slowdown_90: smallest_caught(&caught, 0.9),
            });
        }
    }
    let metrics = pool
        .metrics
        .iter()
        .zip(per_metric)
        .map(|(m, rates)| MetricPower {
            id: m.id.clone(),
            metric: m.id.name(),
            median: median(&m.values),
            spread: log_sd(&m.values),
            rates,
        })
        .collect();
    Ok(PowerStudy {
        pool_size: pool.size,
        trials: settings.trials,
        alpha: settings.alpha.get(),
        gate,
        metrics,
        auto: auto_rates(pool, settings),
    })
}

/// `trials` draws of `n` distinct neighbouring pairs out of `pairs`, each
/// pair giving one iteration to each side (which one by a coin, as ABBA
/// alternates who goes first). A draw lists `2n` pool indices: the first
/// `n` are the baseline, the rest the treatment, both in the order the
/// pairs were drawn, so the first `k` of each side are again `k` whole
/// pairs (what an adaptive run has seen at its look at `k`).
fn draws(pairs: usize, n: usize, trials: usize, seed: u64) -> Vec<Vec<usize>> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    (0..trials)
        .map(|_| {
            let chosen = sample(&mut rng, pairs, n).into_vec();
            let (mut baseline, mut treatment) = (Vec::with_capacity(2 * n), Vec::with_capacity(n));
            for pair in chosen {
                let first_to_baseline = rng.random_bool(0.5);
                let (b, t) = if first_to_baseline { (0, 1) } else { (1, 0) };
                baseline.push(2 * pair + b);
                treatment.push(2 * pair + t);
            }
            baseline.extend(treatment);
            baseline
        })
        .collect()
}

/// The gate's calls on one drawn run, with metric `slowed.0`'s treatment
/// values multiplied by `1 + slowed.1` (and its extra seconds added to the
/// total when it is a section).
fn judge(
    pool: &Pool,
    draw: &[usize],
    n: usize,
    slowed: Option<(usize, f64)>,
    alpha: Alpha,
) -> Vec<Call> {
    let (base, treat) = draw.split_at(n);
    let evidence: Vec<Evidence> = pool
        .metrics
        .iter()
        .enumerate()
        .map(|(index, m)| {
            let b: Vec<f64> = base.iter().map(|&i| m.values[i]).collect();
            let t: Vec<f64> = treat
                .iter()
                .map(|&i| m.values[i] + extra(pool, slowed, index, i))
                .collect();
            // A slowdown added to the values leaves their CPU as it was: it
            // moves the whole side, so no value becomes a stray by it.
            let cpu = m.cpu.as_ref().map(|cpu| {
                let side = |draw: &[usize]| draw.iter().map(|&i| cpu[i]).collect::<Vec<f64>>();
                (side(base), side(treat))
            });
            evidence(&b, &t, m.tolerance, cpu.as_ref())
        })
        .collect();
    call_family(&evidence, alpha)
        .into_iter()
        .map(|(call, _, _)| call)
        .collect()
}

/// What slowing metric `slowed.0` by `slowed.1` adds to metric `index` in
/// pool iteration `i`.
fn extra(pool: &Pool, slowed: Option<(usize, f64)>, index: usize, i: usize) -> f64 {
    let Some((target, factor)) = slowed else {
        return 0.0;
    };
    let added = pool.metrics[target].values[i] * factor;
    let section_into_total =
        pool.total == Some(index) && pool.metrics[target].id.kind == MetricKind::SectionTime;
    if index == target || section_into_total {
        added
    } else {
        0.0
    }
}

/// The gate's own evidence ([`evidence_of`], as `soak gate` builds it).
fn evidence(
    b: &[f64],
    t: &[f64],
    tolerance: Tolerance,
    cpu: Option<&(Vec<f64>, Vec<f64>)>,
) -> Evidence {
    // Pool values are positive and finite and sides have n >= 2, so the
    // samples cannot be refused; if they were, the metric would count as
    // undecided rather than invent evidence.
    match (Sample::new(b.to_vec()), Sample::new(t.to_vec())) {
        (Ok(baseline), Ok(treatment)) => evidence_of(&MetricSamples {
            name: "",
            baseline: &baseline,
            treatment: &treatment,
            tolerance,
            blocks: None,
            cpu: cpu.map(|(b, t)| (b.as_slice(), t.as_slice())),
        }),
        _ => Evidence::new(
            LogShift {
                log_ratio: 0.0,
                standard_error: f64::INFINITY,
                df: 1.0,
            },
            tolerance.band().get(),
            b.len(),
        ),
    }
}

fn caught(pool: &Pool, draws: &[Vec<usize>], n: usize, index: usize, s: f64, alpha: Alpha) -> f64 {
    let calls: Vec<Vec<Call>> = draws
        .iter()
        .map(|d| judge(pool, d, n, Some((index, s)), alpha))
        .collect();
    share(&calls, |c| c[index] == Call::Regression)
}

/// The smallest slowdown in (0, 1] whose catch rate reaches `target`, to
/// 0.1 %; `None` when even doubling does not.
fn smallest_caught(caught: &dyn Fn(f64) -> f64, target: f64) -> Option<f64> {
    let (mut low, mut high) = (0.0, 1.0);
    if caught(high) < target {
        return None;
    }
    while high - low > 0.001 {
        let mid = (low + high) / 2.0;
        if caught(mid) >= target {
            high = mid;
        } else {
            low = mid;
        }
    }
    Some(high)
}

fn gate_rates(n: usize, runs: &[Vec<Call>]) -> GateRow {
    GateRow {
        per_side: n,
        false_alarm: share(runs, |c| c.contains(&Call::Regression)),
        cannot_tell: share(runs, |c| {
            !c.contains(&Call::Regression) && c.contains(&Call::CannotTell)
        }),
        pass: share(runs, |c| {
            !c.contains(&Call::Regression) && !c.contains(&Call::CannotTell)
        }),
    }
}

/// The adaptive plan on unchanged runs: one draw of the cap's size per
/// trial, looked at after each planned size with that look's alpha.
fn auto_rates(pool: &Pool, settings: &PowerSettings) -> Option<AutoRow> {
    let plan = LookSchedule::standard(settings.alpha);
    let cap = plan.cap();
    if cap > pool.pairs() {
        return None;
    }
    let draws = draws(pool.pairs(), cap, settings.trials, settings.seed ^ 0xA070);
    let (mut alarms, mut undecided, mut spent) = (0usize, 0usize, 0usize);
    for draw in &draws {
        let (base, treat) = draw.split_at(cap);
        let mut ended = false;
        for look in plan.looks() {
            let n = look.per_side;
            let sub: Vec<usize> = base[..n].iter().chain(&treat[..n]).copied().collect();
            let calls = judge(pool, &sub, n, None, look.alpha);
            if calls.contains(&Call::Regression) {
                alarms += 1;
                spent += n;
                ended = true;
                break;
            }
            if !calls.contains(&Call::CannotTell) {
                spent += n;
                ended = true;
                break;
            }
        }
        if !ended {
            undecided += 1;
            spent += cap;
        }
    }
    let trials = draws.len().max(1) as f64;
    Some(AutoRow {
        looks: plan.looks().iter().map(|l| l.per_side).collect(),
        false_alarm: alarms as f64 / trials,
        cannot_tell: undecided as f64 / trials,
        mean_per_side: spent as f64 / trials,
    })
}

fn share<T>(items: &[T], pred: impl Fn(&T) -> bool) -> f64 {
    if items.is_empty() {
        return 0.0;
    }
    items.iter().filter(|i| pred(i)).count() as f64 / items.len() as f64
}

fn log_sd(values: &[f64]) -> f64 {
    let logs: Vec<f64> = values.iter().map(|v| v.ln()).collect();
    let n = logs.len() as f64;
    if n < 2.0 {
        return 0.0;
    }
    let mean = logs.iter().sum::<f64>() / n;
    (logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt()
}

/// A gate configuration that fits the pool's noise.
#[derive(Debug, Clone, Serialize)]
pub struct Suggestion {
    /// Iterations per side at which an unchanged run passes in at least
    /// [`SUGGEST_PASS_RATE`] of runs (the largest size studied if none).
    pub per_side: usize,
    /// The narrowest wall-time pass bound at which it does so at that size
    /// (never below the noise band: a pass bound is at least the band).
    pub pass_bound: f64,
    /// The suggestion as `gate.toml` lines with the numbers behind them.
    pub toml: String,
}

/// The share of unchanged runs that should pass at the suggested settings.
pub const SUGGEST_PASS_RATE: f64 = 0.8;

/// Wall-time pass bounds tried, narrowest first.
const CANDIDATE_BANDS: [f64; 6] = [0.02, 0.03, 0.05, 0.08, 0.10, 0.15];

/// Suggests iterations and a wall-time band from a finished study.
pub fn suggest(
    pool: &Pool,
    config: &GateConfig,
    settings: &PowerSettings,
    result: &PowerStudy,
) -> Suggestion {
    let fits = |g: &GateRow| g.pass >= SUGGEST_PASS_RATE && g.false_alarm <= result.alpha;
    let per_side = result
        .gate
        .iter()
        .find(|g| fits(g))
        .or(result.gate.last())
        .map_or(5, |g| g.per_side);
    let draws = draws(
        pool.pairs(),
        per_side,
        settings.trials,
        settings.seed ^ 0xBA4D,
    );
    let band = config.noise_band.time;
    let pass_bound = CANDIDATE_BANDS
        .iter()
        .copied()
        .filter(|&bound| bound >= band)
        .find(|&bound| {
            let mut widened = config.clone();
            widened.pass_bound.time = Some(bound);
            let pool = pool.with_config(&widened);
            let runs: Vec<Vec<Call>> = draws
                .iter()
                .map(|d| judge(&pool, d, per_side, None, settings.alpha))
                .collect();
            fits(&gate_rates(per_side, &runs))
        })
        .unwrap_or_else(|| config.pass_bound.time.unwrap_or(band).max(band));
    let mut toml = format!(
        "# Suggested by `soak power` from {} iterations of one variant, {} resampled runs per size.\n",
        result.pool_size, result.trials
    );
    if let Some(g) = result.gate.iter().find(|g| g.per_side == per_side) {
        toml.push_str(&format!(
            "# At {per_side} iterations per side with the current settings an unchanged run passes in {:.0}% of runs, cannot tell in {:.0}%, and raises a false alarm in {:.1}%.\n",
            g.pass * 100.0,
            g.cannot_tell * 100.0,
            g.false_alarm * 100.0
        ));
    }
    toml.push_str("# Smallest slowdown caught in 90% of runs at that size:\n");
    for m in &result.metrics {
        let at = m.rates.iter().find(|r| r.per_side == per_side);
        let text = at
            .and_then(|r| r.slowdown_90)
            .map_or_else(|| "above 100%".to_owned(), |s| format!("{:.1}%", s * 100.0));
        toml.push_str(&format!("#   {}: {text}\n", m.metric));
    }
    let gated: Vec<String> = config.gated.iter().map(|g| format!("{g:?}")).collect();
    toml.push_str(&format!(
        "# Run `soak ab --iterations {per_side}` (or `auto`, which looks at 3, 5, 8, 10).\n\
         mode = \"{}\"\nmin_iterations = {}\nalpha = {}\non_inconclusive = \"{}\"\ngated = [{}]\n\n[noise_band]\ntime = {band}\nrss = {}\ncpu = {}\ncounters = {}\n\n[floor]\ntime_ms = {}\nrss_mib = {}\ncpu_pct = {}\ncpu_ms = {}\ncounters = {}\n\n[pass_bound]\ntime = {pass_bound}\n",
        config.mode,
        config.min_iterations.min(per_side),
        config.alpha,
        config.on_inconclusive,
        gated.join(", "),
        config.noise_band.rss,
        config.noise_band.cpu,
        config.noise_band.counters,
        config.floor.time_ms,
        config.floor.rss_mib,
        config.floor.cpu_pct,
        config.floor.cpu_ms,
        config.floor.counters,
    ));
    Suggestion {
        per_side,
        pass_bound,
        toml,
    }
}

impl Pool {
    /// The same pool judged with another configuration's tolerances.
    pub fn with_config(&self, config: &GateConfig) -> Pool {
        let mut pool = self.clone();
        for m in &mut pool.metrics {
            m.tolerance = config.tolerance(m.id.kind);
        }
        pool
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::NoiseBand;

    fn pool_of_totals(totals: &[f64]) -> Pool {
        Pool {
            metrics: vec![PoolMetric {
                id: MetricId::total(),
                tolerance: Tolerance::relative(NoiseBand::TIME),
                values: totals.to_vec(),
                cpu: None,
            }],
            total: Some(0),
            size: totals.len(),
        }
    }

    /// What `draws` replaced: any `2n` iterations, split at random.
    fn free_draws(pool: usize, n: usize, trials: usize, seed: u64) -> Vec<Vec<usize>> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..trials)
            .map(|_| sample(&mut rng, pool, 2 * n).into_vec())
            .collect()
    }

    fn false_alarms(pool: &Pool, draws: &[Vec<usize>], n: usize) -> f64 {
        let alpha = Alpha::new(0.05).unwrap();
        let runs: Vec<Vec<Call>> = draws
            .iter()
            .map(|d| judge(pool, d, n, None, alpha))
            .collect();
        share(&runs, |c| c.contains(&Call::Regression))
    }

    /// Twelve iterations whose neighbours ran alike while the machine
    /// alternated between a fast and a slow minute, as a CI pool did.
    fn alternating_minutes() -> Vec<f64> {
        (0..12)
            .map(|i: usize| {
                let minute = if (i / 2).is_multiple_of(2) {
                    2.70
                } else {
                    2.95
                };
                minute * (1.0 + 0.004 * ((i * 7) % 5) as f64)
            })
            .collect()
    }

    #[test]
    fn a_draw_splits_whole_neighbouring_pairs_between_the_sides() {
        let mut first_to_baseline = 0;
        for n in 2..=6 {
            for draw in draws(6, n, 300, n as u64) {
                let (baseline, treatment) = draw.split_at(n);
                let pairs: Vec<usize> = baseline.iter().map(|i| i / 2).collect();
                let partners: Vec<usize> = treatment.iter().map(|i| i / 2).collect();
                assert_eq!(pairs, partners, "{draw:?}");
                let mut distinct = pairs.clone();
                distinct.sort_unstable();
                distinct.dedup();
                assert_eq!(distinct.len(), n, "{draw:?}");
                assert!(baseline.iter().zip(treatment).all(|(b, t)| b != t));
                first_to_baseline += baseline.iter().filter(|i| *i % 2 == 0).count();
            }
        }
        // The coin: either member goes to the baseline about half the time.
        let members = 300 * (2..=6).sum::<usize>();
        let share = first_to_baseline as f64 / members as f64;
        assert!((0.45..0.55).contains(&share), "{share}");
    }

    #[test]
    fn drift_that_neighbours_share_raises_no_false_alarm() {
        let pool = pool_of_totals(&alternating_minutes());
        let mut worst_free: f64 = 0.0;
        for n in 3..=6 {
            let paired = false_alarms(&pool, &draws(pool.pairs(), n, 1000, 1), n);
            assert!(paired <= 0.05, "paired draws at {n} a side: {paired}");
            let free = false_alarms(&pool, &free_draws(pool.size, n, 1000, 1), n);
            worst_free = worst_free.max(free);
        }
        // The pool is one that free draws misjudge: they bunch one side's
        // iterations in the slow minute, which no ABBA run does.
        assert!(worst_free > 0.05, "{worst_free}");
    }
}
