//! Endpoint RED rollups crossing the store boundary: per bucket (1 minute, coarsened to 1 hour)
//! per (service, environment, operation, status class) a request count, an error count, exact
//! status codes, the slowest requests and a DDSketch of durations.
//!
//! Durations are sketched in **nanoseconds** with `sketches-ddsketch` at 1% relative accuracy
//! (DDSketch, Masson, Rim & Lee, VLDB 2019, <https://arxiv.org/abs/1908.10693>): a quantile
//! it reports is within 1% of the sample at rank `floor(q · (n − 1))` of the sorted
//! durations. Sketches merge exactly (bin counts add), so any time range is answered by merging
//! the rows it covers. Stored as DataDog's portable binary encoding (`to_java_bytes`, the
//! format of `sketches-java`/`sketches-go`), which is compact (varint bin deltas).

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;
use sightline_model::{SpanId, TraceId};
use sketches_ddsketch::{Config, DDSketch};

/// Width of a fresh rollup bucket, in seconds.
pub const MINUTE_SECONDS: u32 = 60;
/// Width of a coarsened rollup bucket, in seconds.
pub const HOUR_SECONDS: u32 = 3_600;
/// Slowest requests kept per rollup row. The slowest N of any range are among the union of
/// each row's slowest N, so the endpoint detail's list is exact for N up to this.
pub const SLOWEST_KEPT: usize = 10;
/// The sketch's relative accuracy (1%).
pub const RELATIVE_ACCURACY: f64 = 0.01;

/// A rollup could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum RollupError {
    /// The stored sketch bytes do not decode.
    #[error("stored duration sketch does not decode: {0}")]
    Sketch(String),
    /// Two sketches with different configurations cannot merge (never happens with
    /// [`DurationSketch::new`]).
    #[error("duration sketches with different configurations cannot merge")]
    Merge,
}

/// A DDSketch of request durations in ns (1% relative accuracy, at most 2,048 bins, the
/// lowest collapsing first; a 0 ns duration counts in the zero bin).
#[derive(Clone)]
pub struct DurationSketch(DDSketch);

impl fmt::Debug for DurationSketch {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("DurationSketch")
            .field("count", &self.count())
            .field("min_nanos", &self.0.min())
            .field("max_nanos", &self.0.max())
            .finish()
    }
}

impl Default for DurationSketch {
    fn default() -> Self {
        Self::new()
    }
}

/// One non-empty sketch bin: durations in `[lower_nanos, upper_nanos)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct HistogramBin {
    /// Lower bound, ns (0 for the zero bin).
    pub lower_nanos: f64,
    /// Upper bound, ns (exclusive).
    pub upper_nanos: f64,
    /// Requests in the bin.
    pub count: u64,
}

impl DurationSketch {
    /// An empty sketch with the crate's defaults (α = 1%, 2,048 bins, minimum 1e-9): the
    /// portable decoder rebuilds exactly that configuration, so decoded sketches merge.
    pub fn new() -> Self {
        Self(DDSketch::new(Config::defaults()))
    }

    /// Adds one duration.
    pub fn add_nanos(&mut self, duration_nanos: u64) {
        self.0.add(duration_nanos as f64);
    }

    /// Adds another sketch's counts.
    pub fn merge(&mut self, other: &DurationSketch) -> Result<(), RollupError> {
        self.0.merge(&other.0).map_err(|_| RollupError::Merge)
    }

    /// Durations added.
    pub fn count(&self) -> u64 {
        self.0.count() as u64
    }

    /// The `q` quantile (0..=1) in ns; `None` when empty or `q` is out of range.
    pub fn quantile_nanos(&self, q: f64) -> Option<f64> {
        self.0.quantile(q).ok().flatten()
    }

    /// Exact minimum in ns.
    pub fn min_nanos(&self) -> Option<f64> {
        self.0.min()
    }

    /// Exact maximum in ns.
    pub fn max_nanos(&self) -> Option<f64> {
        self.0.max()
    }

    /// Exact sum in ns (0 when empty).
    pub fn sum_nanos(&self) -> f64 {
        self.0.sum().unwrap_or(0.0)
    }

    /// The portable binary encoding.
    pub fn to_bytes(&self) -> Vec<u8> {
        self.0.to_java_bytes()
    }

    /// Decodes [`DurationSketch::to_bytes`]; empty bytes give an empty sketch.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, RollupError> {
        if bytes.is_empty() {
            return Ok(Self::new());
        }
        // A sketch of another configuration would be refused by the next merge.
        let decoded = DDSketch::from_java_bytes(bytes).map_err(|error| RollupError::Sketch(format!("{error:?}")))?;
        Ok(Self(decoded))
    }

    /// The non-empty bins, lowest first. Bin `k` holds durations in `[γ^k, γ^(k+1))` with
    /// γ = (1 + α)/(1 − α). The crate keeps its bins private; its serde form (feature
    /// `use_serde`, crate version pinned in the workspace) is read instead: `store.bins[i]`
    /// counts key `i + store.offset`.
    pub fn histogram(&self) -> Vec<HistogramBin> {
        let mut bins = Vec::new();
        let Ok(value) = serde_json::to_value(&self.0) else {
            return bins;
        };
        let gamma = value["config"]["gamma"].as_f64().unwrap_or(1.0 + 2.0 * RELATIVE_ACCURACY);
        let zero_count = value["zero_count"].as_u64().unwrap_or(0);
        if zero_count > 0 {
            bins.push(HistogramBin { lower_nanos: 0.0, upper_nanos: 1.0, count: zero_count });
        }
        let offset = value["store"]["offset"].as_i64().unwrap_or(0);
        for (index, count) in value["store"]["bins"].as_array().into_iter().flatten().enumerate() {
            let count = count.as_u64().unwrap_or(0);
            if count == 0 {
                continue;
            }
            let key = index as i64 + offset;
            bins.push(HistogramBin {
                lower_nanos: gamma.powi(key as i32),
                upper_nanos: gamma.powi(key as i32 + 1),
                count,
            });
        }
        bins
    }
}

/// HTTP status class of a request (`http.response.status_code` / old `http.status_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum StatusClass {
    /// 100–199.
    Informational,
    /// 200–299.
    Success,
    /// 300–399.
    Redirection,
    /// 400–499.
    ClientError,
    /// 500–599.
    ServerError,
    /// No status code, or one outside 100–599.
    Unknown,
}

impl StatusClass {
    /// The class of a status code (`None` = absent).
    pub fn of(status_code: Option<u16>) -> Self {
        match status_code {
            Some(100..=199) => StatusClass::Informational,
            Some(200..=299) => StatusClass::Success,
            Some(300..=399) => StatusClass::Redirection,
            Some(400..=499) => StatusClass::ClientError,
            Some(500..=599) => StatusClass::ServerError,
            _ => StatusClass::Unknown,
        }
    }

    /// `1xx` … `5xx`, or `unknown`: the stored value, the API's keys and the Prometheus label.
    pub fn as_str(&self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::Unknown => "unknown",
        }
    }

    /// Parses [`StatusClass::as_str`].
    pub fn parse(text: &str) -> Self {
        match text {
            "1xx" => StatusClass::Informational,
            "2xx" => StatusClass::Success,
            "3xx" => StatusClass::Redirection,
            "4xx" => StatusClass::ClientError,
            "5xx" => StatusClass::ServerError,
            _ => StatusClass::Unknown,
        }
    }
}

/// What a rollup row is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EndpointKey {
    /// `service.name` of the resource.
    pub service_name: String,
    /// `deployment.environment.name` (old: `deployment.environment`); empty when not set.
    pub environment: String,
    /// The operation, e.g. `GET /users/{id}` (see `pipeline::rollups::operation_of`).
    pub operation: String,
    /// HTTP method (`http.request.method`, old `http.method`); empty when not HTTP.
    pub method: String,
    /// Route template or normalized path; empty when only the span name was known.
    pub route: String,
    /// Status class of the requests counted in the row.
    pub status_class: StatusClass,
}

/// One of the slowest requests of a rollup row (an exemplar linking to its trace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SlowRequest {
    /// The request's trace.
    pub trace_id: TraceId,
    /// The SERVER span.
    pub span_id: SpanId,
    /// Its duration, ns.
    pub duration_nanos: u64,
    /// Its start, ns since epoch.
    pub start_time_unix_nano: u64,
}

/// One rollup: a per-batch delta from the pipeline, or a stored row.
#[derive(Debug, Clone)]
pub struct EndpointRollup {
    /// What it counts.
    pub key: EndpointKey,
    /// Bucket start, ns since epoch (a multiple of the bucket width).
    pub bucket_start_unix_nano: u64,
    /// Bucket width: [`MINUTE_SECONDS`] or [`HOUR_SECONDS`].
    pub bucket_seconds: u32,
    /// Requests (SERVER spans).
    pub requests: u64,
    /// Requests with a 5xx status or span status ERROR.
    pub errors: u64,
    /// Requests per exact status code (absent codes are not counted here).
    pub status_codes: BTreeMap<u16, u64>,
    /// Durations.
    pub durations: DurationSketch,
    /// Slowest requests, slowest first, at most [`SLOWEST_KEPT`].
    pub slowest: Vec<SlowRequest>,
}

impl EndpointRollup {
    /// An empty rollup of `key` for the bucket.
    pub fn empty(key: EndpointKey, bucket_start_unix_nano: u64, bucket_seconds: u32) -> Self {
        Self {
            key,
            bucket_start_unix_nano,
            bucket_seconds,
            requests: 0,
            errors: 0,
            status_codes: BTreeMap::new(),
            durations: DurationSketch::new(),
            slowest: Vec::new(),
        }
    }

    /// Adds another rollup's counts (the key and bucket of `self` stay).
    pub fn merge(&mut self, other: &EndpointRollup) -> Result<(), RollupError> {
        self.requests += other.requests;
        self.errors += other.errors;
        for (code, count) in &other.status_codes {
            *self.status_codes.entry(*code).or_default() += count;
        }
        self.durations.merge(&other.durations)?;
        merge_slowest(&mut self.slowest, &other.slowest, SLOWEST_KEPT);
        Ok(())
    }
}

/// Keeps the `limit` slowest of both lists in `kept`, slowest first (ties: earlier start).
pub fn merge_slowest(kept: &mut Vec<SlowRequest>, more: &[SlowRequest], limit: usize) {
    for request in more {
        if kept.iter().any(|known| known.span_id == request.span_id && known.trace_id == request.trace_id) {
            continue;
        }
        kept.push(request.clone());
    }
    kept.sort_by(|left, right| {
        right.duration_nanos.cmp(&left.duration_nanos).then(left.start_time_unix_nano.cmp(&right.start_time_unix_nano))
    });
    kept.truncate(limit);
}

/// Which rollups to read: one service (or all), optionally one environment and operation, in
/// buckets starting in `[from, to)` (ns).
#[derive(Debug, Clone, Default)]
pub struct RollupQuery {
    /// `service.name`; `None` = every service.
    pub service: Option<String>,
    /// Environment; `None` = all.
    pub environment: Option<String>,
    /// Operation; `None` = all.
    pub operation: Option<String>,
    /// Buckets starting at or after this (ns).
    pub from_unix_nano: u64,
    /// Buckets starting before this (ns).
    pub to_unix_nano: u64,
}

/// Cumulative counters of one endpoint over every stored bucket (the Prometheus view's
/// `_count`, `_sum` and counters).
#[derive(Debug, Clone, PartialEq)]
pub struct RollupTotals {
    /// The endpoint.
    pub key: EndpointKey,
    /// Requests.
    pub requests: u64,
    /// Errors.
    pub errors: u64,
    /// Sum of durations, ns.
    pub duration_sum_nanos: f64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sketches_round_trip_merge_and_expose_their_bins() {
        let mut sketch = DurationSketch::new();
        for nanos in [0u64, 1_000, 2_000_000, 2_000_000, 35_000_000_000] {
            sketch.add_nanos(nanos);
        }
        let decoded = DurationSketch::from_bytes(&sketch.to_bytes()).expect("decodes");
        assert_eq!(decoded.count(), 5);
        assert_eq!(decoded.max_nanos(), Some(35_000_000_000.0));
        assert_eq!(decoded.min_nanos(), Some(0.0));
        assert_eq!(decoded.sum_nanos(), sketch.sum_nanos());
        for q in [0.25, 0.5, 0.75] {
            assert_eq!(decoded.quantile_nanos(q), sketch.quantile_nanos(q));
        }
        let mut merged = decoded.clone();
        merged.merge(&sketch).expect("same configuration");
        assert_eq!(merged.count(), 10);
        let bins = merged.histogram();
        assert_eq!(bins.iter().map(|bin| bin.count).sum::<u64>(), 10);
        assert_eq!(bins[0].lower_nanos, 0.0, "the zero bin first");
        let two_ms = bins.iter().find(|bin| bin.lower_nanos <= 2e6 && 2e6 < bin.upper_nanos).expect("2 ms bin");
        assert_eq!(two_ms.count, 4);
        assert!((two_ms.upper_nanos / two_ms.lower_nanos - 1.0202).abs() < 1e-3, "bins are 2% wide");
        assert!(DurationSketch::from_bytes(b"\xff\xff").is_err());
        assert_eq!(DurationSketch::from_bytes(b"").expect("empty").count(), 0);
    }

    #[test]
    fn slowest_lists_keep_the_top_without_duplicates() {
        let request = |id: u8, duration_nanos: u64| SlowRequest {
            trace_id: TraceId([id; 16]),
            span_id: SpanId([id; 8]),
            duration_nanos,
            start_time_unix_nano: 0,
        };
        let mut kept = vec![request(1, 10), request(2, 30)];
        merge_slowest(&mut kept, &[request(2, 30), request(3, 20), request(4, 5)], 3);
        assert_eq!(kept.iter().map(|r| r.duration_nanos).collect::<Vec<_>>(), [30, 20, 10]);
        assert_eq!(StatusClass::of(Some(503)), StatusClass::ServerError);
        assert_eq!(StatusClass::of(Some(99)), StatusClass::Unknown);
        assert_eq!(StatusClass::parse(StatusClass::ClientError.as_str()), StatusClass::ClientError);
    }
}
