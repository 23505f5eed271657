//! Distribution metrics as series: explicit-bucket histograms (merged bucket counts, count,
//! sum, average and quantiles interpolated like Prometheus' `histogram_quantile`), exponential
//! histograms (count, sum, average) and summaries (the latest point, as quantiles cannot be
//! merged).

use std::cmp::Ordering;
use std::collections::BTreeMap;

use sightline_model::metric::temporality;
use sightline_model::{MetricPoint, PointValue};

use super::{
    BucketGrid, FLAG_NO_RECORDED_VALUE, QuantileValue, SeriesPoint, SeriesRequest, Stat, StreamSplit, empty_groups,
    started_after, value_point,
};

/// Quantiles a histogram bucket reports by default.
const DEFAULT_QUANTILES: [f64; 3] = [0.5, 0.9, 0.99];

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

/// What one histogram stream observed between two points (or in one delta point).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct HistogramIncrease {
    /// Time of the (later) point (ns).
    pub time_unix_nano: u64,
    /// Observations.
    pub count: u64,
    /// Their sum, when known.
    pub sum: Option<f64>,
    /// `(upper bound, observations)` per bucket, the last bound `+Inf`.
    pub buckets: Vec<(f64, u64)>,
}

fn bounded_buckets(bucket_counts: &[u64], explicit_bounds: &[f64]) -> Vec<(f64, u64)> {
    bucket_counts
        .iter()
        .enumerate()
        .map(|(index, count)| {
            let upper = explicit_bounds.get(index).copied().unwrap_or(f64::INFINITY);
            // -0.0 and 0.0 are one bound.
            (if upper == 0.0 { 0.0 } else { upper }, *count)
        })
        .collect()
}

/// What each point of one explicit-histogram stream adds (points in time order): delta points
/// as they are, cumulative points as the difference to the previous point, or whole when the
/// stream restarted (count or a bucket went down, start time or bounds changed). The first
/// cumulative point counts whole when the stream started at or after `complete_from_unix_nano`
/// and otherwise only anchors the next one. Stale markers are skipped.
pub(crate) fn histogram_increases(
    points: &[&MetricPoint],
    cumulative: bool,
    complete_from_unix_nano: u64,
) -> Vec<HistogramIncrease> {
    let mut increases = Vec::with_capacity(points.len());
    let mut previous: Option<&MetricPoint> = None;
    for point in points {
        let PointValue::Histogram { count, sum, bucket_counts, explicit_bounds, .. } = &point.value else {
            continue;
        };
        if point.flags & FLAG_NO_RECORDED_VALUE != 0 {
            continue;
        }
        let whole = HistogramIncrease {
            time_unix_nano: point.time_unix_nano,
            count: *count,
            sum: *sum,
            buckets: bounded_buckets(bucket_counts, explicit_bounds),
        };
        if !cumulative {
            increases.push(whole);
            continue;
        }
        let earlier = previous.replace(point);
        let Some(earlier) = earlier else {
            if started_after(point, complete_from_unix_nano) {
                increases.push(whole);
            }
            continue;
        };
        let PointValue::Histogram {
            count: earlier_count,
            sum: earlier_sum,
            bucket_counts: earlier_bucket_counts,
            explicit_bounds: earlier_bounds,
            ..
        } = &earlier.value
        else {
            continue;
        };
        if point.time_unix_nano <= earlier.time_unix_nano {
            continue;
        }
        let restarted = count < earlier_count
            || point.start_time_unix_nano != earlier.start_time_unix_nano
            || explicit_bounds != earlier_bounds
            || bucket_counts.len() != earlier_bucket_counts.len()
            || bucket_counts.iter().zip(earlier_bucket_counts).any(|(now, before)| now < before);
        if restarted {
            increases.push(whole);
            continue;
        }
        let bucket_differences: Vec<u64> =
            bucket_counts.iter().zip(earlier_bucket_counts).map(|(now, before)| now - before).collect();
        increases.push(HistogramIncrease {
            time_unix_nano: point.time_unix_nano,
            count: count - earlier_count,
            sum: sum.zip(*earlier_sum).map(|(now, before)| now - before),
            buckets: bounded_buckets(&bucket_differences, explicit_bounds),
        });
    }
    increases
}

/// The `quantile` of a histogram given as `(upper bound, observations)` per bucket in bound
/// order, the last bound `+Inf`, interpolated linearly inside the bucket the rank falls in,
/// exactly as Prometheus' `histogram_quantile`: the lowest bucket starts at 0 (or is returned
/// whole when its bound is ≤ 0), and a rank in the `+Inf` bucket returns the highest finite
/// bound. `None` without observations, with fewer than two buckets or without a `+Inf` bucket.
pub(crate) fn histogram_quantile(quantile: f64, buckets: &[(f64, u64)]) -> Option<f64> {
    if buckets.len() < 2 || !(0.0..=1.0).contains(&quantile) {
        return None;
    }
    let last = buckets.len() - 1;
    if buckets[last].0 != f64::INFINITY {
        return None;
    }
    let mut cumulative = Vec::with_capacity(buckets.len());
    let mut running = 0u64;
    for (_, count) in buckets {
        running = running.saturating_add(*count);
        cumulative.push(running);
    }
    if running == 0 {
        return None;
    }
    let rank = quantile * running as f64;
    let index = cumulative[..last].iter().position(|count| *count as f64 >= rank).unwrap_or(last);
    if index == last {
        return Some(buckets[last - 1].0);
    }
    let upper = buckets[index].0;
    if index == 0 && upper <= 0.0 {
        return Some(upper);
    }
    let (lower, count_below) = if index == 0 { (0.0, 0) } else { (buckets[index - 1].0, cumulative[index - 1]) };
    let count_inside = cumulative[index] - count_below;
    if count_inside == 0 {
        return Some(lower);
    }
    Some(lower + (upper - lower) * ((rank - count_below as f64) / count_inside as f64))
}

/// Histogram increases of one group merged in one step bucket.
#[derive(Debug, Clone, Default)]
struct MergedHistogram {
    count: u64,
    sum: f64,
    sum_missing: bool,
    /// Observations by upper bound; streams with different bounds merge by bound.
    buckets: BTreeMap<UpperBound, u64>,
}

impl MergedHistogram {
    fn add(&mut self, increase: &HistogramIncrease) {
        self.count = self.count.saturating_add(increase.count);
        match increase.sum {
            Some(sum) => self.sum += sum,
            None => self.sum_missing = true,
        }
        for (upper, count) in &increase.buckets {
            let entry = self.buckets.entry(UpperBound(*upper)).or_insert(0);
            *entry = entry.saturating_add(*count);
        }
    }

    fn sum(&self) -> Option<f64> {
        (!self.sum_missing).then_some(self.sum)
    }

    fn avg(&self) -> Option<f64> {
        self.sum().filter(|_| self.count > 0).map(|sum| sum / self.count as f64)
    }

    fn quantile(&self, quantile: f64) -> Option<f64> {
        let buckets: Vec<(f64, u64)> = self.buckets.iter().map(|(upper, count)| (upper.0, *count)).collect();
        histogram_quantile(quantile, &buckets)
    }
}

/// Per group and step bucket: the merged histogram, or the statistic `request.stat` picks.
pub(super) fn histogram_points(
    split: &StreamSplit<'_>,
    grid: &BucketGrid,
    aggregation_temporality: i32,
    request: &SeriesRequest,
) -> Vec<BTreeMap<u64, SeriesPoint>> {
    let cumulative = aggregation_temporality != temporality::DELTA;
    let stat = request.stat;
    let mut merged: Vec<BTreeMap<u64, MergedHistogram>> = empty_groups(split);
    for stream in &split.streams {
        for increase in histogram_increases(&stream.points, cumulative, request.complete_from_unix_nano) {
            if let Some(index) = grid.index_of(increase.time_unix_nano) {
                merged[stream.group_index].entry(index).or_default().add(&increase);
            }
        }
    }
    merged
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .filter_map(|(index, histogram)| {
                    let time_unix_nano = grid.bucket_start_unix_nano(index);
                    let point = match stat {
                        None => {
                            let [p50, p90, p99] = DEFAULT_QUANTILES.map(|quantile| histogram.quantile(quantile));
                            SeriesPoint::Histogram {
                                time_unix_nano,
                                count: histogram.count,
                                sum: histogram.sum(),
                                avg: histogram.avg(),
                                p50,
                                p90,
                                p99,
                            }
                        }
                        Some(Stat::Count) => value_point(grid, index, histogram.count as f64),
                        Some(Stat::Sum) => value_point(grid, index, histogram.sum()?),
                        Some(Stat::Quantile(quantile)) => value_point(grid, index, histogram.quantile(quantile)?),
                        Some(_) => value_point(grid, index, histogram.avg()?),
                    };
                    Some((index, point))
                })
                .collect()
        })
        .collect()
}

/// Per group and step bucket: count, sum and average, or the one `request.stat` picks. Cumulative
/// streams are differenced as in [`histogram_increases`].
pub(super) fn exponential_histogram_points(
    split: &StreamSplit<'_>,
    grid: &BucketGrid,
    aggregation_temporality: i32,
    request: &SeriesRequest,
) -> Vec<BTreeMap<u64, SeriesPoint>> {
    let cumulative = aggregation_temporality != temporality::DELTA;
    let stat = request.stat;
    let mut merged: Vec<BTreeMap<u64, MergedHistogram>> = empty_groups(split);
    for stream in &split.streams {
        let mut previous: Option<(u64, u64, u64, Option<f64>)> = None;
        for point in &stream.points {
            let PointValue::ExponentialHistogram { count, sum, .. } = &point.value else {
                continue;
            };
            if point.flags & FLAG_NO_RECORDED_VALUE != 0 {
                continue;
            }
            let current = (point.start_time_unix_nano, point.time_unix_nano, *count, *sum);
            let increase = if !cumulative {
                Some((*count, *sum))
            } else {
                match previous.replace(current) {
                    None => started_after(point, request.complete_from_unix_nano).then_some((*count, *sum)),
                    Some((_, earlier_time, _, _)) if point.time_unix_nano <= earlier_time => None,
                    Some((earlier_start, _, earlier_count, earlier_sum)) => {
                        if *count < earlier_count || point.start_time_unix_nano != earlier_start {
                            Some((*count, *sum))
                        } else {
                            let sum_difference = sum.zip(earlier_sum).map(|(now, before)| now - before);
                            Some((count - earlier_count, sum_difference))
                        }
                    }
                }
            };
            let (Some((count, sum)), Some(index)) = (increase, grid.index_of(point.time_unix_nano)) else {
                continue;
            };
            merged[stream.group_index].entry(index).or_default().add(&HistogramIncrease {
                time_unix_nano: point.time_unix_nano,
                count,
                sum,
                buckets: Vec::new(),
            });
        }
    }
    merged
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .filter_map(|(index, histogram)| {
                    let point = match stat {
                        None => SeriesPoint::ExponentialHistogram {
                            time_unix_nano: grid.bucket_start_unix_nano(index),
                            count: histogram.count,
                            sum: histogram.sum(),
                            avg: histogram.avg(),
                        },
                        Some(Stat::Count) => value_point(grid, index, histogram.count as f64),
                        Some(Stat::Sum) => value_point(grid, index, histogram.sum()?),
                        Some(_) => value_point(grid, index, histogram.avg()?),
                    };
                    Some((index, point))
                })
                .collect()
        })
        .collect()
}

/// Per group and step bucket: the latest summary point, or the statistic `stat` picks.
pub(super) fn summary_points(
    split: &StreamSplit<'_>,
    grid: &BucketGrid,
    stat: Option<Stat>,
) -> Vec<BTreeMap<u64, SeriesPoint>> {
    // Quantiles of different streams cannot be combined, so each bucket shows the latest point
    // of the group; group by the attribute telling streams apart to see each one.
    let mut latest: Vec<BTreeMap<u64, &MetricPoint>> = empty_groups(split);
    for stream in &split.streams {
        for point in &stream.points {
            let is_summary = matches!(point.value, PointValue::Summary { .. });
            let Some(index) = grid.index_of(point.time_unix_nano) else {
                continue;
            };
            if !is_summary || point.flags & FLAG_NO_RECORDED_VALUE != 0 {
                continue;
            }
            let slot = latest[stream.group_index].entry(index).or_insert(point);
            if point.time_unix_nano >= slot.time_unix_nano {
                *slot = point;
            }
        }
    }
    latest
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .filter_map(|(index, point)| {
                    let PointValue::Summary { count, sum, quantile_values } = &point.value else {
                        return None;
                    };
                    let series_point = match stat {
                        Some(Stat::Count) => value_point(grid, index, *count as f64),
                        Some(Stat::Sum) => value_point(grid, index, *sum),
                        Some(Stat::Quantile(wanted)) => {
                            let (_, value) =
                                quantile_values.iter().find(|(quantile, _)| (quantile - wanted).abs() < 1e-9)?;
                            value_point(grid, index, *value)
                        }
                        _ => SeriesPoint::Summary {
                            time_unix_nano: grid.bucket_start_unix_nano(index),
                            count: *count,
                            sum: *sum,
                            quantiles: quantile_values
                                .iter()
                                .map(|(quantile, value)| QuantileValue { quantile: *quantile, value: *value })
                                .collect(),
                        },
                    };
                    Some((index, series_point))
                })
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use sightline_model::MetricKind;

    use super::super::compute_series;
    use super::super::tests::{SECOND, T0, assert_close, number_point, request, stored, values};
    use super::*;

    fn histogram_point(
        start_unix_nano: u64,
        time_unix_nano: u64,
        bucket_counts: &[u64],
        bounds: &[f64],
        sum: f64,
    ) -> MetricPoint {
        MetricPoint {
            value: PointValue::Histogram {
                count: bucket_counts.iter().sum(),
                sum: Some(sum),
                min: None,
                max: None,
                bucket_counts: bucket_counts.to_vec(),
                explicit_bounds: bounds.to_vec(),
            },
            ..number_point(start_unix_nano, time_unix_nano, 0.0)
        }
    }

    #[test]
    fn histogram_quantile_interpolates_like_prometheus() {
        let buckets = [(1.0, 10), (2.0, 10), (4.0, 20), (f64::INFINITY, 0)];
        // 40 observations: the median (rank 20) is the top of the (1, 2] bucket.
        assert_close(histogram_quantile(0.5, &buckets).expect("median"), 2.0);
        // Rank 10 of 40 → the top of the first bucket, which starts at 0.
        assert_close(histogram_quantile(0.25, &buckets).expect("p25"), 1.0);
        // Rank 5 → halfway through [0, 1].
        assert_close(histogram_quantile(0.125, &buckets).expect("p12.5"), 0.5);
        // Rank 30 → halfway through (2, 4].
        assert_close(histogram_quantile(0.75, &buckets).expect("p75"), 3.0);
        // Ranks in the +Inf bucket give the highest finite bound.
        let overflowing = [(1.0, 1), (f64::INFINITY, 9)];
        assert_close(histogram_quantile(0.99, &overflowing).expect("p99"), 1.0);
        // A first bound ≤ 0 is returned as is.
        assert_close(histogram_quantile(0.1, &[(-1.0, 5), (f64::INFINITY, 5)]).expect("p10"), -1.0);
        assert_eq!(histogram_quantile(0.5, &[(1.0, 0), (f64::INFINITY, 0)]), None);
        assert_eq!(histogram_quantile(0.5, &[(f64::INFINITY, 3)]), None);
    }

    #[test]
    fn cumulative_histogram_differences_points_and_merges_streams() {
        let kind = MetricKind::Histogram { aggregation_temporality: temporality::CUMULATIVE };
        let bounds = [0.1, 0.5];
        let points = vec![
            stored(kind, "api", &[("route", "/a")], histogram_point(1, T0 - SECOND, &[1, 1, 0], &bounds, 0.3)),
            stored(kind, "api", &[("route", "/a")], histogram_point(1, T0 + SECOND, &[5, 3, 0], &bounds, 1.5)),
            stored(kind, "api", &[("route", "/b")], histogram_point(1, T0 - SECOND, &[0, 0, 0], &bounds, 0.0)),
            stored(kind, "api", &[("route", "/b")], histogram_point(1, T0 + 2 * SECOND, &[0, 4, 2], &bounds, 3.2)),
            // Restart: taken whole.
            stored(kind, "api", &[("route", "/b")], histogram_point(9, T0 + 12 * SECOND, &[2, 0, 0], &bounds, 0.1)),
        ];
        let result = compute_series(&kind, &points, &request(T0, T0 + 19 * SECOND, 10, &[], None));
        let series = &result.series[0];
        assert_eq!(series.points.len(), 2);
        let SeriesPoint::Histogram { time_unix_nano, count, sum, avg, p50, p90, p99 } = &series.points[0] else {
            panic!("expected a histogram point");
        };
        // Merged increase: [4, 2, 0] from /a and [0, 4, 2] from /b = [4, 6, 2], 12 observations.
        assert_eq!((*time_unix_nano, *count), (T0, 12));
        assert_close(sum.expect("sum"), 1.2 + 3.2);
        assert_close(avg.expect("avg"), 4.4 / 12.0);
        // Rank 6 → 2 of 6 into (0.1, 0.5].
        assert_close(p50.expect("p50"), 0.1 + 0.4 * (2.0 / 6.0));
        // Rank 10.8 → in +Inf: the highest finite bound.
        assert_close(p90.expect("p90"), 0.5);
        assert_close(p99.expect("p99"), 0.5);
        let SeriesPoint::Histogram { count, .. } = &series.points[1] else {
            panic!("expected a histogram point");
        };
        assert_eq!(*count, 2);

        let p50_only =
            compute_series(&kind, &points, &request(T0, T0 + 19 * SECOND, 10, &[], Some(Stat::Quantile(0.5))));
        assert_close(values(&p50_only.series[0])[1].1, 0.05);
    }

    #[test]
    fn a_histogram_started_inside_the_read_history_counts_its_first_point() {
        let kind = MetricKind::Histogram { aggregation_temporality: temporality::CUMULATIVE };
        // One export at shutdown of a process that started during the window.
        let points =
            vec![stored(kind, "api", &[], histogram_point(T0 + SECOND, T0 + 5 * SECOND, &[1, 2], &[1.0], 2.5))];
        let result = compute_series(&kind, &points, &request(T0, T0 + 9 * SECOND, 10, &[], Some(Stat::Count)));
        assert_eq!(values(&result.series[0]), vec![(T0, 3.0)]);
        let mut long_running = request(T0, T0 + 9 * SECOND, 10, &[], Some(Stat::Count));
        long_running.complete_from_unix_nano = T0 + 2 * SECOND;
        assert!(compute_series(&kind, &points, &long_running).series[0].points.is_empty());
    }

    #[test]
    fn delta_histograms_are_taken_as_they_are() {
        let kind = MetricKind::Histogram { aggregation_temporality: temporality::DELTA };
        let points = vec![stored(kind, "api", &[], histogram_point(T0, T0 + SECOND, &[2, 2], &[10.0], 12.0))];
        let result = compute_series(&kind, &points, &request(T0, T0 + 9 * SECOND, 10, &[], Some(Stat::Count)));
        assert_eq!(values(&result.series[0]), vec![(T0, 4.0)]);
    }

    #[test]
    fn summaries_show_the_latest_point_of_the_bucket() {
        let summary = |time_unix_nano: u64, count: u64, p99: f64| MetricPoint {
            value: PointValue::Summary { count, sum: count as f64, quantile_values: vec![(0.5, 1.0), (0.99, p99)] },
            ..number_point(1, time_unix_nano, 0.0)
        };
        let points = vec![
            stored(MetricKind::Summary, "api", &[], summary(T0 + SECOND, 10, 7.0)),
            stored(MetricKind::Summary, "api", &[], summary(T0 + 2 * SECOND, 12, 8.0)),
        ];
        let full = compute_series(&MetricKind::Summary, &points, &request(T0, T0 + 9 * SECOND, 10, &[], None));
        let SeriesPoint::Summary { count, quantiles, .. } = &full.series[0].points[0] else {
            panic!("expected a summary point");
        };
        assert_eq!(*count, 12);
        assert_eq!(quantiles[1], QuantileValue { quantile: 0.99, value: 8.0 });
        let p99 = compute_series(
            &MetricKind::Summary,
            &points,
            &request(T0, T0 + 9 * SECOND, 10, &[], Some(Stat::Quantile(0.99))),
        );
        assert_eq!(values(&p99.series[0]), vec![(T0, 8.0)]);
    }

    #[test]
    fn series_json_has_the_documented_shape() {
        let point = SeriesPoint::Histogram {
            time_unix_nano: 5,
            count: 0,
            sum: Some(0.0),
            avg: None,
            p50: None,
            p90: None,
            p99: None,
        };
        assert_eq!(
            serde_json::to_value(&point).expect("serializable"),
            serde_json::json!({"time_unix_nano": 5, "count": 0, "sum": 0.0, "avg": null, "p50": null, "p90": null, "p99": null})
        );
    }
}
