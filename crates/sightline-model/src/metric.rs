//! Metrics and their data points (opentelemetry-proto `metrics/v1/metrics.proto`).

use serde::{Deserialize, Serialize};

use crate::Countable;
use crate::attributes::Attributes;
use crate::ids::{SpanId, TraceId};

/// OTLP `AggregationTemporality` values.
pub mod temporality {
    /// `AGGREGATION_TEMPORALITY_UNSPECIFIED`.
    pub const UNSPECIFIED: i32 = 0;
    /// `AGGREGATION_TEMPORALITY_DELTA`: each point covers (start, time] only.
    pub const DELTA: i32 = 1;
    /// `AGGREGATION_TEMPORALITY_CUMULATIVE`: each point covers (start, time] since a fixed start.
    pub const CUMULATIVE: i32 = 2;
}

/// The metric's data type with its type-level fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum MetricKind {
    /// `Gauge`.
    Gauge,
    /// `Sum` with its temporality and monotonicity.
    Sum {
        /// [`temporality`] value.
        aggregation_temporality: i32,
        /// `is_monotonic`.
        is_monotonic: bool,
    },
    /// `Histogram` (explicit buckets).
    Histogram {
        /// [`temporality`] value.
        aggregation_temporality: i32,
    },
    /// `ExponentialHistogram`.
    ExponentialHistogram {
        /// [`temporality`] value.
        aggregation_temporality: i32,
    },
    /// `Summary` (legacy quantiles).
    Summary,
}

impl MetricKind {
    /// Short type name: `gauge`, `sum`, `histogram`, `exponential_histogram`, `summary`.
    pub fn type_name(&self) -> &'static str {
        match self {
            MetricKind::Gauge => "gauge",
            MetricKind::Sum { .. } => "sum",
            MetricKind::Histogram { .. } => "histogram",
            MetricKind::ExponentialHistogram { .. } => "exponential_histogram",
            MetricKind::Summary => "summary",
        }
    }

    /// The aggregation temporality (UNSPECIFIED for gauge and summary).
    pub fn aggregation_temporality(&self) -> i32 {
        match self {
            MetricKind::Sum { aggregation_temporality, .. }
            | MetricKind::Histogram { aggregation_temporality }
            | MetricKind::ExponentialHistogram { aggregation_temporality } => *aggregation_temporality,
            MetricKind::Gauge | MetricKind::Summary => temporality::UNSPECIFIED,
        }
    }

    /// True for monotonic sums.
    pub fn is_monotonic(&self) -> bool {
        matches!(self, MetricKind::Sum { is_monotonic: true, .. })
    }
}

/// One metric stream's description and the points of this batch.
#[derive(Debug, Clone, PartialEq)]
pub struct Metric {
    /// Metric name, e.g. `http.server.request.duration`.
    pub name: String,
    /// Description.
    pub description: String,
    /// UCUM unit, e.g. `s`, `By`, `{request}`.
    pub unit: String,
    /// `metadata` attributes.
    pub metadata: Attributes,
    /// Type and type-level fields.
    pub kind: MetricKind,
    /// The data points.
    pub points: Vec<MetricPoint>,
}

impl Countable for Metric {
    fn item_count(&self) -> usize {
        self.points.len()
    }
}

/// One data point of any type. Times are ns since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricPoint {
    /// Point attributes (the stream's dimensions).
    pub attributes: Attributes,
    /// Start of the aggregation interval (0 = unknown).
    pub start_time_unix_nano: u64,
    /// End of the interval / observation time.
    pub time_unix_nano: u64,
    /// `DataPointFlags` (bit 0: no recorded value).
    pub flags: u32,
    /// The value.
    pub value: PointValue,
    /// Exemplars linking the point to traces.
    pub exemplars: Vec<Exemplar>,
}

/// A number as OTLP sends it: integer or double.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NumberValue {
    /// `as_int`.
    Int(i64),
    /// `as_double`.
    Double(f64),
}

impl NumberValue {
    /// The value as f64 (integers beyond 2^53 round).
    pub fn as_f64(&self) -> f64 {
        match self {
            NumberValue::Int(integer) => *integer as f64,
            NumberValue::Double(double) => *double,
        }
    }
}

/// The value of a point, by metric type.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PointValue {
    /// Gauge or sum point.
    Number {
        /// The number.
        value: NumberValue,
    },
    /// Explicit-bucket histogram point.
    Histogram {
        /// Number of values.
        count: u64,
        /// Sum of values, if known.
        sum: Option<f64>,
        /// Minimum, if known.
        min: Option<f64>,
        /// Maximum, if known.
        max: Option<f64>,
        /// Counts per bucket (`explicit_bounds.len() + 1` entries).
        bucket_counts: Vec<u64>,
        /// Upper bounds (exclusive of the last, +Inf, bucket).
        explicit_bounds: Vec<f64>,
    },
    /// Exponential histogram point.
    ExponentialHistogram {
        /// Number of values.
        count: u64,
        /// Sum of values, if known.
        sum: Option<f64>,
        /// Minimum, if known.
        min: Option<f64>,
        /// Maximum, if known.
        max: Option<f64>,
        /// Resolution: base = 2^(2^-scale).
        scale: i32,
        /// Count of values in the zero bucket.
        zero_count: u64,
        /// Width of the zero bucket.
        zero_threshold: f64,
        /// Positive buckets: first index.
        positive_offset: i32,
        /// Positive bucket counts.
        positive_bucket_counts: Vec<u64>,
        /// Negative buckets: first index.
        negative_offset: i32,
        /// Negative bucket counts.
        negative_bucket_counts: Vec<u64>,
    },
    /// Summary point.
    Summary {
        /// Number of values.
        count: u64,
        /// Sum of values.
        sum: f64,
        /// `(quantile, value)` pairs.
        quantile_values: Vec<(f64, f64)>,
    },
}

/// An exemplar: one measurement with the trace it was recorded in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Exemplar {
    /// Attributes filtered out of the point's attributes.
    pub filtered_attributes: Attributes,
    /// Measurement time, ns since epoch.
    pub time_unix_nano: u64,
    /// The measurement.
    pub value: NumberValue,
    /// Span that recorded it, if any.
    pub span_id: Option<SpanId>,
    /// Trace that recorded it, if any.
    pub trace_id: Option<TraceId>,
}
