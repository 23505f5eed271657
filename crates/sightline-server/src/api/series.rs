//! Metric series math for `GET /api/v1/projects/{p}/metrics/{name}/series`: turns stored points
//! into one time series per group on a fixed grid of step buckets, in Rust rather than SQL so
//! both store backends answer alike.
//!
//! A *stream* is what one OTLP exporter reports over time: the same metric, resource and point
//! attributes. Cumulative streams are differenced point to point before anything is summed
//! (summing cumulative values across streams would mix unrelated start times); a stream's first
//! point counts whole only when its start time lies inside the history that was read, since
//! otherwise it holds everything since a start long ago. A *group* is what the caller asked to
//! see: all streams together, or streams split by `group_by` keys.
//!
//! Per type (the value each bucket reports):
//! - gauge: average (or min / max) of the values in the bucket;
//! - monotonic sum: per-second rate (or the increase), from consecutive cumulative points or
//!   from delta points divided by the step;
//! - non-monotonic sum: the latest value of each stream in the bucket, summed across streams
//!   (delta temporality: the sum of the changes);
//! - histogram: merged bucket counts, with count, sum, average and p50 / p90 / p99 interpolated
//!   as Prometheus' `histogram_quantile` does;
//! - exponential histogram: count, sum and average;
//! - summary: the latest point's count, sum and quantiles (quantiles cannot be merged).
//!
//! Number types (gauges, sums) are computed here, distributions in [`distributions`].

mod distributions;

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;
use serde_json::{Map, Value};
use sightline_model::metric::temporality;
use sightline_model::{MetricKind, MetricPoint, PointValue};

use self::distributions::{exponential_histogram_points, histogram_points, summary_points};
use crate::store::StoredMetricPoint;

/// Reused by web vitals (`api/analytics/vitals.rs`) to add up histogram streams over a range.
pub(crate) use self::distributions::histogram_increases;

/// Most buckets one series request may span (a chart a few thousand pixels wide, with room).
pub(crate) const MAX_BUCKETS: u64 = 11_000;

/// Most series one response holds; `group_by` on a high-cardinality key stops here.
pub(crate) const MAX_SERIES: usize = 1_000;

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point marks a stream as stale and has no value.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

const NANOS_PER_SECOND: f64 = 1e9;

/// The resource attribute `group_by` may name besides point attributes.
const SERVICE_NAME_KEY: &str = "service.name";

/// Why a series request cannot be answered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum SeriesError {
    /// `to` precedes `from`.
    #[error("from must not be after to")]
    InvertedRange,
    /// The step is zero.
    #[error("step must be at least 1 second")]
    ZeroStep,
    /// The range divided by the step gives too many buckets.
    #[error(
        "the range holds {bucket_count} steps, more than {MAX_BUCKETS}; use step >= {minimum_step_seconds} (seconds) or a shorter range"
    )]
    TooManyBuckets {
        /// Buckets the request would need.
        bucket_count: u64,
        /// Smallest step in whole seconds that fits.
        minimum_step_seconds: u64,
    },
    /// `stat` names no statistic.
    #[error("stat={0:?} is not known; use avg, min, max, rate, increase, count, sum or pNN (p50, p95, p999)")]
    UnknownStat(String),
    /// `stat` does not apply to the metric's type.
    #[error("stat={stat} does not apply to a {metric_type} metric; use one of: {allowed}")]
    StatNotApplicable {
        /// The stat asked for.
        stat: String,
        /// The metric's type name.
        metric_type: &'static str,
        /// The stats that apply.
        allowed: &'static str,
    },
}

/// The time axis: buckets `[from + i * step, from + (i + 1) * step)` for `i` in
/// `0..bucket_count`, enough to cover `[from, to]` with both ends included.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BucketGrid {
    from_unix_nano: u64,
    step_nanos: u64,
    bucket_count: u64,
}

impl BucketGrid {
    /// Builds the grid; errors when the range is inverted, the step is zero or the grid would
    /// exceed [`MAX_BUCKETS`].
    pub(crate) fn new(from_unix_nano: u64, to_unix_nano: u64, step_nanos: u64) -> Result<Self, SeriesError> {
        if to_unix_nano < from_unix_nano {
            return Err(SeriesError::InvertedRange);
        }
        if step_nanos == 0 {
            return Err(SeriesError::ZeroStep);
        }
        let range_nanos = to_unix_nano - from_unix_nano;
        let bucket_count = range_nanos / step_nanos + 1;
        if bucket_count > MAX_BUCKETS {
            let minimum_step_nanos = range_nanos.div_ceil(MAX_BUCKETS - 1);
            return Err(SeriesError::TooManyBuckets {
                bucket_count,
                minimum_step_seconds: minimum_step_nanos.div_ceil(1_000_000_000),
            });
        }
        Ok(Self { from_unix_nano, step_nanos, bucket_count })
    }

    /// The step in nanoseconds.
    pub(crate) fn step_nanos(&self) -> u64 {
        self.step_nanos
    }

    /// The step in seconds.
    pub(crate) fn step_seconds(&self) -> f64 {
        self.step_nanos as f64 / NANOS_PER_SECOND
    }

    /// The bucket holding `time_unix_nano`, or `None` outside the grid.
    pub(crate) fn index_of(&self, time_unix_nano: u64) -> Option<u64> {
        let offset_nanos = time_unix_nano.checked_sub(self.from_unix_nano)?;
        let index = offset_nanos / self.step_nanos;
        (index < self.bucket_count).then_some(index)
    }

    /// Start time of bucket `index`.
    pub(crate) fn bucket_start_unix_nano(&self, index: u64) -> u64 {
        self.from_unix_nano.saturating_add(index.saturating_mul(self.step_nanos))
    }
}

/// A statistic the caller may pick with `stat=` instead of the type's default output.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Stat {
    /// Mean (gauges, histograms, exponential histograms).
    Avg,
    /// Minimum (gauges).
    Min,
    /// Maximum (gauges).
    Max,
    /// Per-second rate (monotonic sums; their default).
    Rate,
    /// Increase over the bucket (monotonic sums).
    Increase,
    /// Number of observations (distributions).
    Count,
    /// Sum of observations (distributions).
    Sum,
    /// A quantile in `(0, 1)`, written `p50`, `p95`, `p999` (histograms, summaries).
    Quantile(f64),
}

impl Stat {
    /// Parses `avg`, `min`, `max`, `rate`, `increase`, `count`, `sum` or `p` followed by the
    /// quantile's decimal digits (`p5` and `p50` are the median, `p999` is 0.999).
    pub(crate) fn parse(text: &str) -> Result<Self, SeriesError> {
        let stat = match text {
            "avg" => Stat::Avg,
            "min" => Stat::Min,
            "max" => Stat::Max,
            "rate" => Stat::Rate,
            "increase" => Stat::Increase,
            "count" => Stat::Count,
            "sum" => Stat::Sum,
            _ => {
                let digits = text.strip_prefix('p').unwrap_or_default();
                let quantile = if !digits.is_empty() && digits.bytes().all(|byte| byte.is_ascii_digit()) {
                    format!("0.{digits}").parse::<f64>().ok()
                } else {
                    None
                };
                match quantile {
                    Some(quantile) if quantile > 0.0 && quantile < 1.0 => Stat::Quantile(quantile),
                    _ => return Err(SeriesError::UnknownStat(text.to_owned())),
                }
            }
        };
        Ok(stat)
    }

    fn name(&self) -> String {
        match self {
            Stat::Avg => "avg".into(),
            Stat::Min => "min".into(),
            Stat::Max => "max".into(),
            Stat::Rate => "rate".into(),
            Stat::Increase => "increase".into(),
            Stat::Count => "count".into(),
            Stat::Sum => "sum".into(),
            Stat::Quantile(quantile) => {
                // 0.5 → "p50", 0.999 → "p999": the inverse of `parse` for what people write.
                let text = quantile.to_string();
                let digits = text.strip_prefix("0.").unwrap_or(&text);
                if digits.len() == 1 { format!("p{digits}0") } else { format!("p{digits}") }
            }
        }
    }

    /// Checks the stat applies to `kind`; the error lists those that do.
    pub(crate) fn check_applies_to(&self, kind: &MetricKind) -> Result<(), SeriesError> {
        let (applies, allowed) = match kind {
            MetricKind::Gauge => (matches!(self, Stat::Avg | Stat::Min | Stat::Max), "avg, min, max"),
            MetricKind::Sum { is_monotonic: true, .. } => {
                (matches!(self, Stat::Rate | Stat::Increase), "rate, increase")
            }
            MetricKind::Sum { .. } => (false, "none (omit stat)"),
            MetricKind::Histogram { .. } => {
                (matches!(self, Stat::Count | Stat::Sum | Stat::Avg | Stat::Quantile(_)), "count, sum, avg, pNN")
            }
            MetricKind::ExponentialHistogram { .. } => {
                (matches!(self, Stat::Count | Stat::Sum | Stat::Avg), "count, sum, avg")
            }
            MetricKind::Summary => (
                matches!(self, Stat::Count | Stat::Sum | Stat::Quantile(_)),
                "count, sum, pNN (a quantile the summary reports)",
            ),
        };
        if applies {
            Ok(())
        } else {
            Err(SeriesError::StatNotApplicable { stat: self.name(), metric_type: kind.type_name(), allowed })
        }
    }
}

/// One output series: the group's key values and its points in time order.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct Series {
    /// `group_by` key → value (`null` when a stream lacks the key); empty without `group_by`.
    pub group: Map<String, Value>,
    /// Points, one per bucket that has data, oldest first.
    pub points: Vec<SeriesPoint>,
}

/// A quantile reported by a summary point.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct QuantileValue {
    /// The quantile, 0.0..=1.0.
    pub quantile: f64,
    /// Its value.
    pub value: f64,
}

/// One bucket of a series. `time_unix_nano` is the bucket's start.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub(crate) enum SeriesPoint {
    /// Gauges, sums, and any type when `stat` picks one number.
    Value {
        /// Bucket start, ns since the epoch.
        time_unix_nano: u64,
        /// The value.
        value: f64,
    },
    /// Explicit-bucket histograms.
    Histogram {
        /// Bucket start, ns since the epoch.
        time_unix_nano: u64,
        /// Observations in the bucket.
        count: u64,
        /// Their sum; `null` when a stream did not report sums.
        sum: Option<f64>,
        /// `sum / count`; `null` without a sum or observations.
        avg: Option<f64>,
        /// Median; `null` without observations or buckets.
        p50: Option<f64>,
        /// 90th percentile.
        p90: Option<f64>,
        /// 99th percentile.
        p99: Option<f64>,
    },
    /// Exponential histograms.
    ExponentialHistogram {
        /// Bucket start, ns since the epoch.
        time_unix_nano: u64,
        /// Observations in the bucket.
        count: u64,
        /// Their sum; `null` when a stream did not report sums.
        sum: Option<f64>,
        /// `sum / count`; `null` without a sum or observations.
        avg: Option<f64>,
    },
    /// Summaries: the latest point in the bucket.
    Summary {
        /// Bucket start, ns since the epoch.
        time_unix_nano: u64,
        /// Observations since the stream started.
        count: u64,
        /// Their sum.
        sum: f64,
        /// Quantiles as reported.
        quantiles: Vec<QuantileValue>,
    },
}

/// What to compute: the grid, the grouping and the statistic.
#[derive(Debug, Clone)]
pub(crate) struct SeriesRequest {
    /// The time axis.
    pub grid: BucketGrid,
    /// Point attribute keys (or `service.name`) splitting streams into series; empty = one.
    pub group_by: Vec<String>,
    /// The statistic, or `None` for the type's default output.
    pub stat: Option<Stat>,
    /// Every stored point from this time on was read (ns). A cumulative stream whose start
    /// time is at or after it has no unseen earlier point, so its first point counts whole.
    pub complete_from_unix_nano: u64,
}

/// The computed series and whether [`MAX_SERIES`] cut some off.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SeriesResult {
    /// Series ordered by group.
    pub series: Vec<Series>,
    /// True when more groups existed than [`MAX_SERIES`].
    pub series_truncated: bool,
}

/// Computes the series of `points` (of any type; those not of `kind` are ignored). Points
/// before the grid only serve as the previous point of cumulative streams.
pub(crate) fn compute_series(kind: &MetricKind, points: &[StoredMetricPoint], request: &SeriesRequest) -> SeriesResult {
    let split = split_streams(kind, points, &request.group_by);
    let grid = &request.grid;
    let mut per_group: Vec<BTreeMap<u64, SeriesPoint>> = match kind {
        MetricKind::Gauge => gauge_points(&split, grid, request.stat),
        MetricKind::Sum { aggregation_temporality, is_monotonic: true } => {
            if *aggregation_temporality == temporality::DELTA {
                delta_counter_points(&split, grid, request.stat)
            } else {
                cumulative_counter_points(&split, grid, request.stat, request.complete_from_unix_nano)
            }
        }
        MetricKind::Sum { aggregation_temporality, is_monotonic: false } => {
            up_down_counter_points(&split, grid, *aggregation_temporality)
        }
        MetricKind::Histogram { aggregation_temporality } => {
            histogram_points(&split, grid, *aggregation_temporality, request)
        }
        MetricKind::ExponentialHistogram { aggregation_temporality } => {
            exponential_histogram_points(&split, grid, *aggregation_temporality, request)
        }
        MetricKind::Summary => summary_points(&split, grid, request.stat),
    };
    let mut order: Vec<usize> = (0..split.groups.len()).collect();
    order.sort_by(|left, right| split.group_keys[*left].cmp(&split.group_keys[*right]));
    let series_truncated = order.len() > MAX_SERIES;
    order.truncate(MAX_SERIES);
    let series = order
        .into_iter()
        .map(|group_index| Series {
            group: split.groups[group_index].clone(),
            points: std::mem::take(&mut per_group[group_index]).into_values().collect(),
        })
        .collect();
    SeriesResult { series, series_truncated }
}

/// One stream's points in time order, and the group it belongs to.
struct Stream<'a> {
    group_index: usize,
    points: Vec<&'a MetricPoint>,
}

/// What tells streams apart: resource attributes and point attributes.
type StreamIdentity<'a> = (&'a Map<String, Value>, &'a Map<String, Value>);

/// Streams and groups of one request.
struct StreamSplit<'a> {
    groups: Vec<Map<String, Value>>,
    /// The JSON text of each group, to order series.
    group_keys: Vec<String>,
    streams: Vec<Stream<'a>>,
}

fn split_streams<'a>(kind: &MetricKind, points: &'a [StoredMetricPoint], group_by: &[String]) -> StreamSplit<'a> {
    let mut split = StreamSplit { groups: Vec::new(), group_keys: Vec::new(), streams: Vec::new() };
    let mut group_index_by_key: HashMap<String, usize> = HashMap::new();
    // serde_json maps hash and compare regardless of key order, so the same attributes sent in
    // another order are one stream.
    let mut stream_index_by_identity: HashMap<StreamIdentity<'a>, usize> = HashMap::new();
    for stored in points.iter().filter(|stored| stored.kind == *kind) {
        let identity = (&stored.resource.attributes.0, &stored.point.attributes.0);
        let stream_index = match stream_index_by_identity.get(&identity) {
            Some(index) => *index,
            None => {
                let group = group_of(stored, group_by);
                let group_key = Value::Object(group.clone()).to_string();
                let group_index = *group_index_by_key.entry(group_key.clone()).or_insert_with(|| {
                    split.groups.push(group);
                    split.group_keys.push(group_key);
                    split.groups.len() - 1
                });
                split.streams.push(Stream { group_index, points: Vec::new() });
                stream_index_by_identity.insert(identity, split.streams.len() - 1);
                split.streams.len() - 1
            }
        };
        split.streams[stream_index].points.push(&stored.point);
    }
    for stream in &mut split.streams {
        stream.points.sort_by_key(|point| point.time_unix_nano);
    }
    split
}

fn group_of(stored: &StoredMetricPoint, group_by: &[String]) -> Map<String, Value> {
    let mut group = Map::with_capacity(group_by.len());
    for key in group_by {
        let value = match stored.point.attributes.0.get(key) {
            Some(value) => value.clone(),
            None if key == SERVICE_NAME_KEY => Value::String(stored.service_name.clone()),
            None => Value::Null,
        };
        group.insert(key.clone(), value);
    }
    group
}

/// The point's number, unless it is stale, not a number point, or not finite.
fn number_of(point: &MetricPoint) -> Option<f64> {
    if point.flags & FLAG_NO_RECORDED_VALUE != 0 {
        return None;
    }
    match &point.value {
        PointValue::Number { value } => Some(value.as_f64()).filter(|number| number.is_finite()),
        _ => None,
    }
}

fn empty_groups<T>(split: &StreamSplit<'_>) -> Vec<BTreeMap<u64, T>> {
    (0..split.groups.len()).map(|_| BTreeMap::new()).collect()
}

fn value_point(grid: &BucketGrid, index: u64, value: f64) -> SeriesPoint {
    SeriesPoint::Value { time_unix_nano: grid.bucket_start_unix_nano(index), value }
}

#[derive(Debug, Clone, Copy)]
struct GaugeBucket {
    sum: f64,
    count: u64,
    min: f64,
    max: f64,
}

fn gauge_points(split: &StreamSplit<'_>, grid: &BucketGrid, stat: Option<Stat>) -> Vec<BTreeMap<u64, SeriesPoint>> {
    let mut buckets: Vec<BTreeMap<u64, GaugeBucket>> = empty_groups(split);
    for stream in &split.streams {
        for point in &stream.points {
            let (Some(value), Some(index)) = (number_of(point), grid.index_of(point.time_unix_nano)) else {
                continue;
            };
            let bucket = buckets[stream.group_index].entry(index).or_insert(GaugeBucket {
                sum: 0.0,
                count: 0,
                min: f64::INFINITY,
                max: f64::NEG_INFINITY,
            });
            bucket.sum += value;
            bucket.count += 1;
            bucket.min = bucket.min.min(value);
            bucket.max = bucket.max.max(value);
        }
    }
    buckets
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .map(|(index, bucket)| {
                    let value = match stat {
                        Some(Stat::Min) => bucket.min,
                        Some(Stat::Max) => bucket.max,
                        _ => bucket.sum / bucket.count as f64,
                    };
                    (index, value_point(grid, index, value))
                })
                .collect()
        })
        .collect()
}

/// One increase of a cumulative counter between two consecutive points of a stream.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct CounterIncrease {
    /// Time of the later point (ns): the increase belongs to its bucket.
    pub time_unix_nano: u64,
    /// The increase.
    pub increase: f64,
    /// Seconds between the two points.
    pub elapsed_seconds: f64,
}

/// True when `point` of a cumulative stream has a known start time at or after
/// `complete_from_unix_nano`: no earlier point of the stream went unread, so the point's value
/// is all that happened in `(start, time]` (OTLP data model: cumulative points cover that span).
fn started_after(point: &MetricPoint, complete_from_unix_nano: u64) -> bool {
    point.start_time_unix_nano != 0
        && point.start_time_unix_nano >= complete_from_unix_nano
        && point.start_time_unix_nano <= point.time_unix_nano
}

/// Increases between consecutive points of one cumulative stream (points in time order). A
/// counter reset (the value went down, or the start time changed because the process
/// restarted) counts the new value as the increase, as Prometheus' `rate` does. The first
/// point counts as an increase over `(start, time]` when the stream started at or after
/// `complete_from_unix_nano`; otherwise, as in Prometheus, it only anchors the next one.
pub(crate) fn counter_increases(points: &[&MetricPoint], complete_from_unix_nano: u64) -> Vec<CounterIncrease> {
    let mut increases = Vec::with_capacity(points.len());
    let mut previous: Option<(&MetricPoint, f64)> = None;
    for point in points {
        // Stale markers carry no value; the stream goes on from its last value.
        let Some(value) = number_of(point) else {
            continue;
        };
        if previous.is_none()
            && started_after(point, complete_from_unix_nano)
            && point.time_unix_nano > point.start_time_unix_nano
        {
            increases.push(CounterIncrease {
                time_unix_nano: point.time_unix_nano,
                increase: value,
                elapsed_seconds: (point.time_unix_nano - point.start_time_unix_nano) as f64 / NANOS_PER_SECOND,
            });
        }
        if let Some((previous_point, previous_value)) = previous
            && point.time_unix_nano > previous_point.time_unix_nano
        {
            let restarted = value < previous_value || point.start_time_unix_nano != previous_point.start_time_unix_nano;
            increases.push(CounterIncrease {
                time_unix_nano: point.time_unix_nano,
                increase: if restarted { value } else { value - previous_value },
                elapsed_seconds: (point.time_unix_nano - previous_point.time_unix_nano) as f64 / NANOS_PER_SECOND,
            });
        }
        previous = Some((point, value));
    }
    increases
}

fn cumulative_counter_points(
    split: &StreamSplit<'_>,
    grid: &BucketGrid,
    stat: Option<Stat>,
    complete_from_unix_nano: u64,
) -> Vec<BTreeMap<u64, SeriesPoint>> {
    // (sum of per-stream rates, sum of increases) per bucket.
    let mut buckets: Vec<BTreeMap<u64, (f64, f64)>> = empty_groups(split);
    for stream in &split.streams {
        // (increase, elapsed seconds) of this stream per bucket: a stream reporting several
        // times per bucket gets its time-weighted rate, not a mean of rates.
        let mut stream_buckets: BTreeMap<u64, (f64, f64)> = BTreeMap::new();
        for increase in counter_increases(&stream.points, complete_from_unix_nano) {
            if let Some(index) = grid.index_of(increase.time_unix_nano) {
                let entry = stream_buckets.entry(index).or_insert((0.0, 0.0));
                entry.0 += increase.increase;
                entry.1 += increase.elapsed_seconds;
            }
        }
        for (index, (increase, elapsed_seconds)) in stream_buckets {
            let entry = buckets[stream.group_index].entry(index).or_insert((0.0, 0.0));
            entry.0 += increase / elapsed_seconds;
            entry.1 += increase;
        }
    }
    buckets
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .map(|(index, (rate, increase))| {
                    let value = if stat == Some(Stat::Increase) { increase } else { rate };
                    (index, value_point(grid, index, value))
                })
                .collect()
        })
        .collect()
}

fn delta_counter_points(
    split: &StreamSplit<'_>,
    grid: &BucketGrid,
    stat: Option<Stat>,
) -> Vec<BTreeMap<u64, SeriesPoint>> {
    let totals = sum_per_bucket(split, grid);
    let step_seconds = grid.step_seconds();
    totals
        .into_iter()
        .map(|group| {
            group
                .into_iter()
                .map(|(index, total)| {
                    let value = if stat == Some(Stat::Increase) { total } else { total / step_seconds };
                    (index, value_point(grid, index, value))
                })
                .collect()
        })
        .collect()
}

/// Sum of every value in each bucket, per group.
fn sum_per_bucket(split: &StreamSplit<'_>, grid: &BucketGrid) -> Vec<BTreeMap<u64, f64>> {
    let mut totals: Vec<BTreeMap<u64, f64>> = empty_groups(split);
    for stream in &split.streams {
        for point in &stream.points {
            if let (Some(value), Some(index)) = (number_of(point), grid.index_of(point.time_unix_nano)) {
                *totals[stream.group_index].entry(index).or_insert(0.0) += value;
            }
        }
    }
    totals
}

fn up_down_counter_points(
    split: &StreamSplit<'_>,
    grid: &BucketGrid,
    aggregation_temporality: i32,
) -> Vec<BTreeMap<u64, SeriesPoint>> {
    let totals = if aggregation_temporality == temporality::DELTA {
        // Delta points are changes: the bucket's net change is their sum.
        sum_per_bucket(split, grid)
    } else {
        let mut totals: Vec<BTreeMap<u64, f64>> = empty_groups(split);
        for stream in &split.streams {
            let mut latest: BTreeMap<u64, f64> = BTreeMap::new();
            for point in &stream.points {
                if let (Some(value), Some(index)) = (number_of(point), grid.index_of(point.time_unix_nano)) {
                    latest.insert(index, value);
                }
            }
            for (index, value) in latest {
                *totals[stream.group_index].entry(index).or_insert(0.0) += value;
            }
        }
        totals
    };
    totals
        .into_iter()
        .map(|group| group.into_iter().map(|(index, total)| (index, value_point(grid, index, total))).collect())
        .collect()
}

#[cfg(test)]
mod tests {
    use sightline_model::metric::NumberValue;
    use sightline_model::{Attributes, Resource};

    use super::*;

    pub(super) const SECOND: u64 = 1_000_000_000;
    pub(super) const T0: u64 = 1_700_000_000 * SECOND;

    pub(super) fn attributes(pairs: &[(&str, &str)]) -> Attributes {
        Attributes(pairs.iter().map(|(key, value)| ((*key).to_owned(), Value::String((*value).to_owned()))).collect())
    }

    pub(super) fn resource(service: &str) -> Resource {
        Resource { attributes: attributes(&[("service.name", service)]), ..Resource::default() }
    }

    pub(super) fn number_point(start_unix_nano: u64, time_unix_nano: u64, value: f64) -> MetricPoint {
        MetricPoint {
            attributes: Attributes::default(),
            start_time_unix_nano: start_unix_nano,
            time_unix_nano,
            flags: 0,
            value: PointValue::Number { value: NumberValue::Double(value) },
            exemplars: Vec::new(),
        }
    }

    pub(super) fn stored(
        kind: MetricKind,
        service: &str,
        labels: &[(&str, &str)],
        point: MetricPoint,
    ) -> StoredMetricPoint {
        StoredMetricPoint {
            kind,
            service_name: service.to_owned(),
            resource: resource(service),
            point: MetricPoint { attributes: attributes(labels), ..point },
        }
    }

    pub(super) fn request(
        from: u64,
        to: u64,
        step_seconds: u64,
        group_by: &[&str],
        stat: Option<Stat>,
    ) -> SeriesRequest {
        SeriesRequest {
            grid: BucketGrid::new(from, to, step_seconds * SECOND).expect("valid grid"),
            group_by: group_by.iter().map(|key| (*key).to_owned()).collect(),
            stat,
            complete_from_unix_nano: from,
        }
    }

    pub(super) fn values(series: &Series) -> Vec<(u64, f64)> {
        series
            .points
            .iter()
            .map(|point| match point {
                SeriesPoint::Value { time_unix_nano, value } => (*time_unix_nano, *value),
                other => panic!("expected a value point, got {other:?}"),
            })
            .collect()
    }

    pub(super) fn assert_close(actual: f64, expected: f64) {
        assert!((actual - expected).abs() < 1e-9, "expected {expected}, got {actual}");
    }

    #[test]
    fn grid_covers_both_ends_and_refuses_too_many_buckets() {
        let grid = BucketGrid::new(T0, T0 + 60 * SECOND, 10 * SECOND).expect("valid grid");
        assert_eq!(grid.index_of(T0), Some(0));
        assert_eq!(grid.index_of(T0 + 59 * SECOND), Some(5));
        assert_eq!(grid.index_of(T0 + 60 * SECOND), Some(6));
        assert_eq!(grid.index_of(T0 - 1), None);
        assert_eq!(grid.index_of(T0 + 70 * SECOND), None);
        assert_eq!(grid.bucket_start_unix_nano(6), T0 + 60 * SECOND);

        let too_many = BucketGrid::new(T0, T0 + 86_400 * SECOND, SECOND);
        let Err(SeriesError::TooManyBuckets { bucket_count, minimum_step_seconds }) = too_many else {
            panic!("expected TooManyBuckets, got {too_many:?}");
        };
        assert_eq!(bucket_count, 86_401);
        assert_eq!(minimum_step_seconds, 8);
        assert!(BucketGrid::new(T0, T0 + 86_400 * SECOND, 8 * SECOND).is_ok());
        assert_eq!(BucketGrid::new(T0, T0 - 1, SECOND), Err(SeriesError::InvertedRange));
    }

    #[test]
    fn stats_parse_and_are_checked_against_the_type() {
        assert_eq!(Stat::parse("p99"), Ok(Stat::Quantile(0.99)));
        assert_eq!(Stat::parse("p5"), Ok(Stat::Quantile(0.5)));
        assert_eq!(Stat::parse("p999"), Ok(Stat::Quantile(0.999)));
        assert!(Stat::parse("p").is_err());
        assert!(Stat::parse("p0").is_err());
        assert!(Stat::parse("median").is_err());
        assert_eq!(Stat::Quantile(0.95).name(), "p95");
        assert_eq!(Stat::Quantile(0.5).name(), "p50");
        assert!(Stat::Max.check_applies_to(&MetricKind::Gauge).is_ok());
        let error = Stat::Rate.check_applies_to(&MetricKind::Gauge).expect_err("rate of a gauge");
        assert_eq!(error.to_string(), "stat=rate does not apply to a gauge metric; use one of: avg, min, max");
    }

    #[test]
    fn gauge_averages_each_bucket_per_group() {
        let points = vec![
            stored(MetricKind::Gauge, "api", &[("host", "a")], number_point(0, T0, 1.0)),
            stored(MetricKind::Gauge, "api", &[("host", "b")], number_point(0, T0 + 5 * SECOND, 3.0)),
            stored(MetricKind::Gauge, "api", &[("host", "a")], number_point(0, T0 + 10 * SECOND, 10.0)),
            // Not a gauge point of this metric: ignored.
            stored(MetricKind::Summary, "api", &[("host", "a")], number_point(0, T0, 99.0)),
        ];
        let result = compute_series(&MetricKind::Gauge, &points, &request(T0, T0 + 20 * SECOND, 10, &[], None));
        assert_eq!(result.series.len(), 1);
        assert!(result.series[0].group.is_empty());
        assert_eq!(values(&result.series[0]), vec![(T0, 2.0), (T0 + 10 * SECOND, 10.0)]);

        let by_host =
            compute_series(&MetricKind::Gauge, &points, &request(T0, T0 + 20 * SECOND, 10, &["host"], Some(Stat::Max)));
        assert_eq!(by_host.series.len(), 2);
        assert_eq!(by_host.series[0].group.get("host"), Some(&Value::String("a".into())));
        assert_eq!(values(&by_host.series[0]), vec![(T0, 1.0), (T0 + 10 * SECOND, 10.0)]);
        assert_eq!(values(&by_host.series[1]), vec![(T0, 3.0)]);
    }

    #[test]
    fn counter_increases_treat_a_drop_or_new_start_time_as_a_restart() {
        let points = [
            number_point(T0, T0 + 10 * SECOND, 100.0),
            number_point(T0, T0 + 20 * SECOND, 130.0),
            // Restarted (value went down): the new value is the increase.
            number_point(T0 + 21 * SECOND, T0 + 30 * SECOND, 5.0),
            // Restarted with a higher value: the start time tells.
            number_point(T0 + 35 * SECOND, T0 + 40 * SECOND, 50.0),
            number_point(T0 + 35 * SECOND, T0 + 50 * SECOND, 70.0),
        ];
        let references: Vec<&MetricPoint> = points.iter().collect();
        // Started before the read history (T0 + 1 ns): the first point only anchors.
        let increases = counter_increases(&references, T0 + 1);
        let summary: Vec<(u64, f64, f64)> = increases
            .iter()
            .map(|increase| (increase.time_unix_nano, increase.increase, increase.elapsed_seconds))
            .collect();
        assert_eq!(
            summary,
            vec![
                (T0 + 20 * SECOND, 30.0, 10.0),
                (T0 + 30 * SECOND, 5.0, 10.0),
                (T0 + 40 * SECOND, 50.0, 10.0),
                (T0 + 50 * SECOND, 20.0, 10.0),
            ]
        );
    }

    #[test]
    fn cumulative_counter_rate_sums_streams_and_uses_the_point_before_the_window() {
        let kind = MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true };
        let points = vec![
            // Before the window: only the previous point of the first in-window one.
            stored(kind, "api", &[("host", "a")], number_point(1, T0 - 10 * SECOND, 0.0)),
            stored(kind, "api", &[("host", "a")], number_point(1, T0, 20.0)),
            stored(kind, "api", &[("host", "a")], number_point(1, T0 + 30 * SECOND, 80.0)),
            stored(kind, "api", &[("host", "a")], number_point(1, T0 + 60 * SECOND, 90.0)),
            stored(kind, "api", &[("host", "b")], number_point(1, T0 + 30 * SECOND, 1000.0)),
            stored(kind, "api", &[("host", "b")], number_point(1, T0 + 50 * SECOND, 1040.0)),
        ];
        let result = compute_series(&kind, &points, &request(T0, T0 + 60 * SECOND, 60, &[], None));
        // Bucket 0: a gains 20 over 10 s and 60 over 30 s (80 over 40 s = 2/s); b has one
        // point there, so no rate yet; b then gains 40 over 20 s (2/s) in bucket 0 too.
        // Bucket 1 (T0+60 s): a gains 10 over 30 s.
        let series = values(&result.series[0]);
        assert_eq!(series.len(), 2);
        assert_close(series[0].1, 2.0 + 2.0);
        assert_close(series[1].1, 10.0 / 30.0);

        let increase = compute_series(&kind, &points, &request(T0, T0 + 60 * SECOND, 60, &[], Some(Stat::Increase)));
        assert_close(values(&increase.series[0])[0].1, 80.0 + 40.0);
    }

    #[test]
    fn a_counter_started_inside_the_read_history_counts_its_first_point() {
        let points = [
            number_point(T0 + 10 * SECOND, T0 + 20 * SECOND, 5.0),
            MetricPoint { flags: FLAG_NO_RECORDED_VALUE, ..number_point(T0 + 10 * SECOND, T0 + 25 * SECOND, 0.0) },
            number_point(T0 + 10 * SECOND, T0 + 30 * SECOND, 8.0),
        ];
        let references: Vec<&MetricPoint> = points.iter().collect();
        let summary: Vec<(f64, f64)> = counter_increases(&references, T0)
            .iter()
            .map(|increase| (increase.increase, increase.elapsed_seconds))
            .collect();
        // 5 over the 10 s since the start; the stale marker is skipped, not a restart.
        assert_eq!(summary, vec![(5.0, 10.0), (3.0, 10.0)]);
        // Started before the read history: earlier points may exist, so the first only anchors.
        assert_eq!(counter_increases(&references, T0 + 11 * SECOND).len(), 1);
    }

    #[test]
    fn attribute_order_does_not_split_a_stream() {
        let kind = MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true };
        let points = vec![
            stored(kind, "api", &[("a", "1"), ("b", "2")], number_point(1, T0, 10.0)),
            stored(kind, "api", &[("b", "2"), ("a", "1")], number_point(1, T0 + 10 * SECOND, 30.0)),
        ];
        let result = compute_series(&kind, &points, &request(T0, T0 + 10 * SECOND, 60, &[], None));
        assert_eq!(values(&result.series[0]), vec![(T0, 2.0)]);
    }

    #[test]
    fn delta_counter_sums_values_per_bucket_over_the_step() {
        let kind = MetricKind::Sum { aggregation_temporality: temporality::DELTA, is_monotonic: true };
        let points = vec![
            stored(kind, "api", &[], number_point(T0, T0 + 5 * SECOND, 30.0)),
            stored(kind, "worker", &[], number_point(T0, T0 + 8 * SECOND, 10.0)),
            stored(kind, "api", &[], number_point(T0, T0 + 15 * SECOND, 5.0)),
        ];
        let result = compute_series(&kind, &points, &request(T0, T0 + 19 * SECOND, 10, &[], None));
        assert_eq!(values(&result.series[0]), vec![(T0, 4.0), (T0 + 10 * SECOND, 0.5)]);

        let by_service =
            compute_series(&kind, &points, &request(T0, T0 + 19 * SECOND, 10, &["service.name"], Some(Stat::Increase)));
        assert_eq!(by_service.series.len(), 2);
        assert_eq!(by_service.series[1].group.get("service.name"), Some(&Value::String("worker".into())));
        assert_eq!(values(&by_service.series[0]), vec![(T0, 30.0), (T0 + 10 * SECOND, 5.0)]);
    }

    #[test]
    fn up_down_counter_sums_the_latest_value_of_each_stream() {
        let kind = MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: false };
        let points = vec![
            stored(kind, "api", &[("pool", "a")], number_point(1, T0, 4.0)),
            stored(kind, "api", &[("pool", "a")], number_point(1, T0 + 5 * SECOND, 6.0)),
            stored(kind, "api", &[("pool", "b")], number_point(1, T0 + 2 * SECOND, 10.0)),
        ];
        let result = compute_series(&kind, &points, &request(T0, T0 + 9 * SECOND, 10, &[], None));
        assert_eq!(values(&result.series[0]), vec![(T0, 16.0)]);
    }
}
