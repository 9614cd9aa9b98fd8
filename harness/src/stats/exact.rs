//! Exact null distributions of the Mann-Whitney U statistic, counted in
//! integers so small samples get exact tail probabilities (no normal
//! approximation: at 3..10 iterations per side it is visibly wrong).
//!
//! - [`NullDistribution`]: no ties. The number of arrangements of `n` baseline
//!   and `m` treatment values with `U = u` is the coefficient of `q^u` in the
//!   Gaussian binomial `[n+m choose n]_q = prod_{i=1..n} (1 - q^(m+i)) / (1 - q^i)`;
//!   it drives the Hodges-Lehmann interval and the no-ties p-values.
//! - [`TiedNull`]: the permutation distribution of `U` given the observed
//!   tie pattern (mid-ranks), used for p-values when values tie.
//!
//! Counts fit in `u128` up to [`MAX_EXACT_PER_SIDE`] per side
//! (`C(100, 50) ~ 1e29`).

use super::StatsError;

/// Largest number of iterations per side the exact distributions accept.
pub const MAX_EXACT_PER_SIDE: usize = 50;

/// Relative slack when comparing a tail probability with alpha, so that a
/// tail equal to alpha in exact arithmetic (1/20 = 0.05 at 3 per side) is not
/// lost to the rounding of `count / total`.
pub(crate) const TAIL_TOLERANCE: f64 = 1e-9;

fn check_sizes(n: usize, m: usize) -> Result<(), StatsError> {
    if n > MAX_EXACT_PER_SIDE || m > MAX_EXACT_PER_SIDE {
        return Err(StatsError::TooManyForExact {
            baseline: n,
            treatment: m,
            max: MAX_EXACT_PER_SIDE,
        });
    }
    Ok(())
}

/// Exact distribution of `U` (pairs where treatment beats baseline) for `n`
/// baseline and `m` treatment values, without ties, under the null that all
/// `C(n+m, n)` arrangements are equally likely.
#[derive(Debug, Clone, PartialEq)]
pub struct NullDistribution {
    counts: Vec<u128>,
    total: u128,
}

impl NullDistribution {
    /// Counts the arrangements for sizes `n` and `m` (each at most
    /// [`MAX_EXACT_PER_SIDE`]); cost `O(min(n,m) * n * m)`.
    pub fn new(n: usize, m: usize) -> Result<Self, StatsError> {
        check_sizes(n, m)?;
        // The distribution is symmetric in (n, m); the product over the
        // smaller side is cheaper.
        let (small, large) = if n <= m { (n, m) } else { (m, n) };
        // i128: multiplying by (1 - q^k) makes coefficients negative before
        // the exact division restores them.
        let mut poly: Vec<i128> = vec![1];
        for i in 1..=small {
            let shift = large + i;
            let mut product = vec![0i128; poly.len() + shift];
            for (k, &c) in poly.iter().enumerate() {
                product[k] += c;
                product[k + shift] -= c;
            }
            // Divide by (1 - q^i): r[k] = product[k] + r[k - i]. Exact because
            // the quotient is the Gaussian binomial [large+i choose i]_q, of
            // degree i * large; the tail beyond it is zero.
            for k in i..product.len() {
                product[k] += product[k - i];
            }
            product.truncate(i * large + 1);
            poly = product;
        }
        // Every coefficient of a Gaussian binomial is a count, so non-negative.
        let counts: Vec<u128> = poly.iter().map(|&c| c.unsigned_abs()).collect();
        let total = counts.iter().sum();
        Ok(Self { counts, total })
    }

    /// Largest possible `U`, `n * m`.
    pub fn max_u(&self) -> usize {
        self.counts.len() - 1
    }

    /// Number of arrangements with `U = u` (0 outside `0..=n*m`).
    pub fn count(&self, u: usize) -> u128 {
        self.counts.get(u).copied().unwrap_or(0)
    }

    /// Number of arrangements in all, `C(n+m, n)`.
    pub fn total(&self) -> u128 {
        self.total
    }

    /// `P(U <= u)`.
    pub fn cdf(&self, u: usize) -> f64 {
        let upto = u.min(self.max_u());
        let below: u128 = self.counts[..=upto].iter().sum();
        below as f64 / self.total as f64
    }

    /// `P(U >= u)`; by symmetry equal to `P(U <= n*m - u)`.
    pub fn sf(&self, u: usize) -> f64 {
        if u > self.max_u() {
            return 0.0;
        }
        let above: u128 = self.counts[u..].iter().sum();
        above as f64 / self.total as f64
    }

    /// The order-statistic rank `k` of the distribution-free interval: the
    /// largest `k >= 1` with `P(U <= k - 1) <= tail`, or `None` when even
    /// `P(U = 0)` exceeds `tail` (2 per side at tail 0.05: 1/6), in which
    /// case no bounded interval exists at that level.
    ///
    /// With sorted pairwise differences `D_(1)..D_(nm)`, `D_(k)` is a
    /// one-sided `1 - tail` lower bound and `D_(nm+1-k)` the upper one.
    pub fn interval_rank(&self, tail: f64) -> Option<usize> {
        let limit = tail * (1.0 + TAIL_TOLERANCE);
        let mut below: u128 = 0;
        let mut k = 0;
        for &c in &self.counts {
            below += c;
            // `below` is now P(U <= k) * total; k + 1 qualifies if it is small.
            if below as f64 / self.total as f64 <= limit {
                k += 1;
            } else {
                break;
            }
        }
        (k >= 1).then_some(k)
    }
}

/// Exact permutation distribution of `2U` given a tie pattern: all
/// `C(n+m, m)` ways to label the pooled values as treatment are equally
/// likely, and `U` counts ties as one half. Indexed by `2U` so it stays in
/// integers.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TiedNull {
    counts_doubled: Vec<u128>,
    total: u128,
}

impl TiedNull {
    /// `group_sizes`: sizes of the groups of equal pooled values, in
    /// ascending order of value; they sum to `n + m`.
    pub(crate) fn new(group_sizes: &[usize], n: usize, m: usize) -> Result<Self, StatsError> {
        check_sizes(n, m)?;
        let width = 2 * n * m + 1;
        // dp[t][h]: ways to place t treatment values among the groups seen so
        // far, weighted by C(size, j) per group, with doubled U equal to h.
        let mut dp = vec![vec![0u128; width]; m + 1];
        dp[0][0] = 1;
        let mut seen = 0usize;
        for &size in group_sizes {
            let choose = binomial_row(size);
            let mut next = vec![vec![0u128; width]; m + 1];
            for (t, row) in dp.iter().enumerate() {
                // Baseline values seen so far; states with more than n are
                // impossible and have no count.
                let Some(b_before) = seen.checked_sub(t).filter(|b| *b <= n) else {
                    continue;
                };
                for j in 0..=size.min(m - t) {
                    let b_here = size - j;
                    if b_before + b_here > n {
                        continue;
                    }
                    // Each of the j treatment values beats every earlier
                    // baseline value (2 each) and ties the b_here (1 each).
                    let gain = j * (2 * b_before + b_here);
                    for (h, &c) in row.iter().enumerate() {
                        if c != 0 {
                            next[t + j][h + gain] += c * choose[j];
                        }
                    }
                }
            }
            dp = next;
            seen += size;
        }
        let counts_doubled = dp.pop().unwrap_or_default();
        let total = counts_doubled.iter().sum();
        Ok(Self {
            counts_doubled,
            total,
        })
    }

    /// `P(2U >= doubled_u)`.
    pub(crate) fn sf_doubled(&self, doubled_u: usize) -> f64 {
        let above: u128 = self.counts_doubled.iter().skip(doubled_u).sum();
        above as f64 / self.total as f64
    }

    /// `P(2U <= doubled_u)`.
    pub(crate) fn cdf_doubled(&self, doubled_u: usize) -> f64 {
        let below: u128 = self.counts_doubled.iter().take(doubled_u + 1).sum();
        below as f64 / self.total as f64
    }
}

/// `C(size, j)` for `j = 0..=size`, by Pascal's rule (sizes are at most 100,
/// whose largest coefficient fits in `u128`).
fn binomial_row(size: usize) -> Vec<u128> {
    let mut row = vec![1u128];
    for _ in 0..size {
        let mut next = vec![1u128; row.len() + 1];
        for j in 1..row.len() {
            next[j] = row[j - 1] + row[j];
        }
        row = next;
    }
    row
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn three_by_three_counts() {
        // Partitions of u into at most 3 parts each at most 3: 1 1 2 3 3 3 3 2 1 1.
        let d = NullDistribution::new(3, 3).unwrap();
        let counts: Vec<u128> = (0..=9).map(|u| d.count(u)).collect();
        assert_eq!(counts, vec![1, 1, 2, 3, 3, 3, 3, 2, 1, 1]);
        assert_eq!(d.total(), 20);
        assert_eq!(d.cdf(0), 0.05);
        assert_eq!(d.interval_rank(0.05), Some(1));
        assert_eq!(d.interval_rank(0.049), None);
    }

    #[test]
    fn two_by_two_has_no_interval_at_five_percent() {
        let d = NullDistribution::new(2, 2).unwrap();
        assert_eq!(d.total(), 6);
        assert_eq!(d.interval_rank(0.05), None);
    }

    #[test]
    fn largest_size_fits() {
        let d = NullDistribution::new(50, 50).unwrap();
        // C(100, 50)
        assert_eq!(d.total(), 100_891_344_545_564_193_334_812_497_256);
        assert!(NullDistribution::new(51, 3).is_err());
    }

    #[test]
    fn tied_without_ties_matches_plain() {
        let plain = NullDistribution::new(4, 3).unwrap();
        let tied = TiedNull::new(&[1; 7], 4, 3).unwrap();
        assert_eq!(tied.total, plain.total());
        for u in 0..=12 {
            assert_eq!(tied.counts_doubled[2 * u], plain.count(u));
            if u < 12 {
                assert_eq!(tied.counts_doubled[2 * u + 1], 0);
            }
        }
    }

    #[test]
    fn binomials() {
        assert_eq!(binomial_row(4), vec![1, 4, 6, 4, 1]);
    }
}
