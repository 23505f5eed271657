//! Percentiles of exact samples, of histogram buckets, and of both together.
//!
//! One definition covers all three: the q-quantile is the smallest `x` where the cumulative
//! count `F(x)` reaches `q · n`, with
//! - each exact sample counting whole at its value, which makes it the **nearest-rank**
//!   percentile for samples alone (the `⌈q·n⌉`-th smallest value, no interpolation), and
//! - each histogram bucket `(lower, upper]` spreading its observations evenly over the bucket,
//!   which makes it the **linear interpolation within the bucket** of Prometheus'
//!   `histogram_quantile` for buckets alone (the lowest bucket starts at 0; a rank in the `+Inf`
//!   bucket answers the highest finite bound).
//!
//! So performance events (exact values) and OTLP histogram points (bucket counts) of one page
//! merge into one distribution without expanding buckets into made-up samples.

use std::cmp::Ordering;
use std::collections::BTreeMap;

/// A histogram bucket's upper bound, ordered totally so it can key a map (+Inf sorts last).
#[derive(Debug, Clone, Copy)]
struct UpperBound(f64);

impl PartialEq for UpperBound {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for UpperBound {}

impl PartialOrd for UpperBound {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for UpperBound {
    fn cmp(&self, other: &Self) -> Ordering {
        self.0.total_cmp(&other.0)
    }
}

/// The median of `values`: the middle value, or the mean of the two middle values for an even
/// count. `None` when empty.
pub(crate) fn median(values: &[f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 { Some(sorted[middle]) } else { Some((sorted[middle - 1] + sorted[middle]) / 2.0) }
}

/// The nearest-rank `quantile` (0..=1) of `sorted` samples (ascending): the `⌈q·n⌉`-th smallest,
/// the first for `q = 0`. `None` when empty.
pub(crate) fn nearest_rank(sorted: &[f64], quantile: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = rank_of(quantile, sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// `q · n`, rounded to 9 decimals so that e.g. `0.7 · 10` is 7 and not 7.000000000000001 (which
/// would move the nearest rank up by one).
fn rank_of(quantile: f64, count: f64) -> f64 {
    let rank = quantile.clamp(0.0, 1.0) * count;
    (rank * 1e9).round() / 1e9
}

/// Observations of one quantity: exact samples and histogram buckets.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Distribution {
    samples: Vec<f64>,
    /// Observations per bucket upper bound; buckets of different histograms merge by bound.
    buckets: BTreeMap<UpperBound, u64>,
}

impl Distribution {
    /// Adds one exact observation (non-finite values are ignored).
    pub(crate) fn add_sample(&mut self, value: f64) {
        if value.is_finite() {
            self.samples.push(value);
        }
    }

    /// Adds histogram observations given as `(upper bound, count)` per bucket, the last bound
    /// usually `+Inf`; a bucket's lower bound is the next smaller bound of the merged buckets
    /// (0 for the lowest).
    pub(crate) fn add_buckets(&mut self, buckets: &[(f64, u64)]) {
        for (upper, count) in buckets {
            if upper.is_nan() || *count == 0 {
                continue;
            }
            // -0.0 and 0.0 are one bound.
            let upper = if *upper == 0.0 { 0.0 } else { *upper };
            let entry = self.buckets.entry(UpperBound(upper)).or_insert(0);
            *entry = entry.saturating_add(*count);
        }
    }

    /// Adds everything of `other`.
    pub(crate) fn merge(&mut self, other: &Distribution) {
        self.samples.extend_from_slice(&other.samples);
        for (upper, count) in &other.buckets {
            let entry = self.buckets.entry(*upper).or_insert(0);
            *entry = entry.saturating_add(*count);
        }
    }

    /// Exact samples held.
    pub(crate) fn sample_count(&self) -> u64 {
        self.samples.len() as u64
    }

    /// Histogram observations held.
    pub(crate) fn bucket_count(&self) -> u64 {
        self.buckets.values().fold(0u64, |total, count| total.saturating_add(*count))
    }

    /// All observations held.
    pub(crate) fn count(&self) -> u64 {
        self.sample_count().saturating_add(self.bucket_count())
    }

    /// The `quantile` (0..=1) as the module docs define it; `None` without observations.
    pub(crate) fn quantile(&self, quantile: f64) -> Option<f64> {
        let mut samples = self.samples.clone();
        samples.sort_by(f64::total_cmp);
        if self.buckets.is_empty() {
            return nearest_rank(&samples, quantile);
        }
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The smallest positive rank, so q = 0 answers the lowest observation.
        let rank = rank_of(quantile, total as f64).max(f64::MIN_POSITIVE);
        let buckets = self.finite_buckets();
        // Every place where F(x) changes slope or jumps, ascending.
        let mut breakpoints: Vec<f64> = samples.clone();
        for (lower, upper, _) in &buckets {
            breakpoints.push(*lower);
            breakpoints.push(*upper);
        }
        breakpoints.sort_by(f64::total_cmp);
        breakpoints.dedup();
        let mut previous: Option<(f64, f64)> = None;
        let mut samples_below = 0usize;
        for point in &breakpoints {
            // Samples at `point` exactly: F jumps by this many at `point`.
            let samples_at = samples[samples_below..].iter().take_while(|sample| **sample <= *point).count();
            let before_jump = samples_below as f64 + histogram_mass_at_or_below(&buckets, *point);
            let cumulative = before_jump + samples_at as f64;
            if cumulative >= rank {
                return match previous {
                    // Between two breakpoints F rises linearly (histogram mass only).
                    Some((previous_point, previous_cumulative))
                        if before_jump >= rank && before_jump > previous_cumulative =>
                    {
                        let fraction = (rank - previous_cumulative) / (before_jump - previous_cumulative);
                        Some(previous_point + (point - previous_point) * fraction)
                    }
                    _ => Some(*point),
                };
            }
            samples_below += samples_at;
            previous = Some((*point, cumulative));
        }
        // The rank lies in the +Inf bucket: answer the highest finite value, as Prometheus does.
        breakpoints.last().copied()
    }

    /// The share (0..=1) of observations at or below `x`, by the module's `F(x)`: exact samples
    /// count whole, histogram buckets spread evenly (the `+Inf` bucket is never at or below a
    /// finite `x`); `None` without observations.
    pub(crate) fn share_at_or_below(&self, x: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let samples = self.samples.iter().filter(|sample| **sample <= x).count() as f64;
        let mass = histogram_mass_at_or_below(&self.finite_buckets(), x);
        Some(((samples + mass) / total as f64).clamp(0.0, 1.0))
    }

    /// Buckets as `(lower, upper, count)` with finite upper bounds; the lowest starts at 0 (or
    /// at its own bound when that is ≤ 0). The `+Inf` bucket's mass is never reached by a
    /// finite `x`, so it is left out here and only counts in the total.
    fn finite_buckets(&self) -> Vec<(f64, f64, u64)> {
        let mut buckets = Vec::with_capacity(self.buckets.len());
        let mut lower: Option<f64> = None;
        for (upper, count) in &self.buckets {
            if upper.0 == f64::INFINITY {
                break;
            }
            let bucket_lower = lower.unwrap_or(if upper.0 > 0.0 { 0.0 } else { upper.0 });
            buckets.push((bucket_lower, upper.0, *count));
            lower = Some(upper.0);
        }
        buckets
    }
}

/// Histogram observations at or below `x`, spreading each bucket evenly over `(lower, upper]`.
fn histogram_mass_at_or_below(buckets: &[(f64, f64, u64)], x: f64) -> f64 {
    let mut mass = 0.0;
    for (lower, upper, count) in buckets {
        if x >= *upper {
            mass += *count as f64;
        } else if x > *lower {
            mass += *count as f64 * (x - lower) / (upper - lower);
        }
    }
    mass
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: Option<f64>, expected: f64) {
        let actual = actual.expect("a value");
        assert!((actual - expected).abs() < 1e-9, "{actual} != {expected}");
    }

    fn samples(values: &[f64]) -> Distribution {
        let mut distribution = Distribution::default();
        for value in values {
            distribution.add_sample(*value);
        }
        distribution
    }

    #[test]
    fn median_averages_the_two_middle_values() {
        assert_eq!(median(&[]), None);
        assert_eq!(median(&[5.0]), Some(5.0));
        assert_eq!(median(&[9.0, 1.0, 5.0]), Some(5.0));
        assert_eq!(median(&[4.0, 1.0, 3.0, 2.0]), Some(2.5));
    }

    #[test]
    fn nearest_rank_picks_an_observed_value() {
        let sorted = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(nearest_rank(&sorted, 0.75), Some(3.0));
        assert_eq!(nearest_rank(&sorted, 0.76), Some(4.0));
        assert_eq!(nearest_rank(&sorted, 0.5), Some(2.0));
        assert_eq!(nearest_rank(&sorted, 0.0), Some(1.0));
        assert_eq!(nearest_rank(&sorted, 1.0), Some(4.0));
        assert_eq!(nearest_rank(&[], 0.5), None);
        // 0.7 · 10 is 7 (the 7th value), not 7.000000000000001 (the 8th).
        let ten: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(nearest_rank(&ten, 0.7), Some(7.0));
        // The web.dev example: p75 of 100 page loads is the 75th fastest.
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(nearest_rank(&hundred, 0.75), Some(75.0));
    }

    #[test]
    fn samples_alone_give_the_nearest_rank() {
        let distribution = samples(&[3.0, 1.0, 4.0, 2.0, f64::NAN]);
        assert_eq!(distribution.count(), 4);
        assert_eq!(distribution.quantile(0.75), Some(3.0));
        assert_eq!(Distribution::default().quantile(0.75), None);
    }

    #[test]
    fn buckets_alone_interpolate_like_prometheus() {
        // The cases of `series::distributions::histogram_quantile`'s test, same answers.
        let mut histogram = Distribution::default();
        histogram.add_buckets(&[(1.0, 2), (2.0, 2), (4.0, 4), (f64::INFINITY, 0)]);
        assert_close(histogram.quantile(0.5), 2.0);
        assert_close(histogram.quantile(0.25), 1.0);
        assert_close(histogram.quantile(0.125), 0.5);
        assert_close(histogram.quantile(0.75), 3.0);
        let mut overflowing = Distribution::default();
        overflowing.add_buckets(&[(1.0, 1), (f64::INFINITY, 9)]);
        assert_close(overflowing.quantile(0.99), 1.0);
        // LCP histogram in ms: 10 loads ≤ 1 s, 20 in (1, 2.5] s, 10 in (2.5, 4] s.
        let mut lcp = Distribution::default();
        lcp.add_buckets(&[(1000.0, 10), (2500.0, 20), (4000.0, 10), (f64::INFINITY, 0)]);
        // Rank 30 of 40 is the top of the (1000, 2500] bucket.
        assert_close(lcp.quantile(0.75), 2500.0);
        // Rank 32 is 2/10 into (2500, 4000].
        assert_close(lcp.quantile(0.8), 2800.0);
    }

    #[test]
    fn histograms_with_different_bounds_merge_by_bound() {
        let mut merged = Distribution::default();
        merged.add_buckets(&[(100.0, 4), (f64::INFINITY, 0)]);
        merged.add_buckets(&[(50.0, 4), (100.0, 0), (f64::INFINITY, 0)]);
        // (0, 50] holds 4, (50, 100] holds 4: the median is 50.
        assert_close(merged.quantile(0.5), 50.0);
        assert_eq!(merged.bucket_count(), 8);
    }

    #[test]
    fn samples_and_buckets_together() {
        // 2 samples at 10 and 4 histogram observations spread over (0, 40].
        let mut mixed = samples(&[10.0, 10.0]);
        mixed.add_buckets(&[(40.0, 4), (f64::INFINITY, 0)]);
        assert_eq!(mixed.count(), 6);
        // F(10) = 2 + 1 = 3 of 6: the median is exactly 10 (the jump at 10 reaches rank 3).
        assert_close(mixed.quantile(0.5), 10.0);
        // Rank 4.5: above 10, F(x) = 2 + 4·x/40 → x = 25.
        assert_close(mixed.quantile(0.75), 25.0);
        // Rank 1: on (0, 10) only the histogram counts, F(x) = x/10, so rank 1 is reached at 10.
        assert_close(mixed.quantile(1.0 / 6.0), 10.0);
        // A sample beyond every finite bound is reachable.
        let mut outlier = samples(&[100.0]);
        outlier.add_buckets(&[(10.0, 1), (f64::INFINITY, 0)]);
        assert_close(outlier.quantile(1.0), 100.0);
    }

    #[test]
    fn shares_count_samples_whole_and_spread_buckets() {
        let mut distribution = samples(&[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(distribution.share_at_or_below(2.0), Some(0.5), "a sample at x counts");
        assert_eq!(distribution.share_at_or_below(0.5), Some(0.0));
        // 2 observations in (0, 2] and 4 in (2, 8]: at 5, the 4 samples, both of the first
        // bucket and half of the second: 8 of 10.
        distribution.add_buckets(&[(2.0, 2), (8.0, 4), (f64::INFINITY, 0)]);
        assert_eq!(distribution.share_at_or_below(5.0), Some(0.8));
        assert_eq!(Distribution::default().share_at_or_below(1.0), None);
    }

    #[test]
    fn merge_adds_samples_and_buckets() {
        let mut left = samples(&[1.0]);
        left.add_buckets(&[(10.0, 2)]);
        let mut right = samples(&[2.0]);
        right.add_buckets(&[(10.0, 3)]);
        left.merge(&right);
        assert_eq!((left.sample_count(), left.bucket_count()), (2, 5));
    }
}
