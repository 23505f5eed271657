//! Types crossing the [`super::Store`] boundary: projects, keys, write batches, queries and
//! their results. Times are ns since the Unix epoch unless a name says otherwise.

use serde::Serialize;
use sightline_model::{Batch, LogRecord, Metric, MetricKind, Resource, Scope, Span, TraceId};

use crate::auth::KeyScope;
use crate::store::errors::ErrorEvent;

/// A project: the unit of isolation for data, keys and settings.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Project {
    /// Numeric id.
    pub id: i64,
    /// URL-safe unique name used in API paths (`/api/v1/projects/{slug}/...`).
    pub slug: String,
    /// Display name.
    pub name: String,
    /// Days data is kept (default 30).
    pub retention_days: u32,
    /// Head-sampling rate for traces, 0.0..=1.0 (default 1.0 = keep all).
    pub trace_sample_rate: f64,
    /// Creation time, ms since epoch.
    pub created_at_unix_ms: i64,
    /// Module / path prefixes that are the project's own code (stack frames are in-app).
    pub in_app_include: Vec<String>,
    /// Module / path prefixes that are never in-app.
    pub in_app_exclude: Vec<String>,
    /// Origins browsers may send product events from (`https://app.example.com`); empty = any.
    pub allowed_origins: Vec<String>,
    /// When endpoints count as degraded or failing (`GET .../health`).
    pub health_thresholds: crate::store::health::HealthThresholds,
}

/// A stored API key (never the key itself).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ApiKeyRecord {
    /// Numeric id.
    pub id: i64,
    /// Owning project.
    pub project_id: i64,
    /// What the key may do.
    #[serde(serialize_with = "serialize_scope")]
    pub scope: KeyScope,
    /// Display prefix of the key.
    pub prefix: String,
    /// Free-form name.
    pub name: String,
}

fn serialize_scope<S: serde::Serializer>(scope: &KeyScope, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(scope.as_str())
}

/// The items of one request for one signal, after validation and sampling.
#[derive(Debug, Clone)]
pub enum SignalBatch {
    /// Spans.
    Traces(Batch<Span>),
    /// Log records.
    Logs(Batch<LogRecord>),
    /// Metrics with their points.
    Metrics(Batch<Metric>),
    /// Product events (`/v1/events`).
    Events(Vec<sightline_model::ProductEvent>),
}

impl SignalBatch {
    /// `traces`, `logs`, `metrics` or `events`.
    pub fn signal_name(&self) -> &'static str {
        match self {
            SignalBatch::Traces(_) => "traces",
            SignalBatch::Logs(_) => "logs",
            SignalBatch::Metrics(_) => "metrics",
            SignalBatch::Events(_) => "events",
        }
    }
}

/// Per-trace facts from one batch, merged into the stored trace summary at commit.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummaryDelta {
    /// The trace.
    pub trace_id: TraceId,
    /// Earliest span start in the batch.
    pub start_time_unix_nano: u64,
    /// Latest span end in the batch.
    pub end_time_unix_nano: u64,
    /// Spans of the trace in the batch.
    pub span_count: u64,
    /// Spans with status ERROR in the batch.
    pub error_count: u64,
    /// Services of those spans, distinct, in order of appearance.
    pub services: Vec<String>,
    /// The root span (no parent) when it is in the batch: (service, name, duration ns).
    pub root: Option<(String, String, u64)>,
}

/// Item counts by outcome for one request.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcomes {
    /// Stored.
    pub accepted: u64,
    /// Dropped by head sampling.
    pub sampled_out: u64,
    /// Rejected by validation (reported in `partial_success`).
    pub invalid: u64,
}

/// One request's worth of data for one project, ready to commit.
#[derive(Debug, Clone)]
pub struct WriteBatch {
    /// Owning project.
    pub project_id: i64,
    /// The items.
    pub signal: SignalBatch,
    /// Trace summary updates (traces only).
    pub trace_summaries: Vec<TraceSummaryDelta>,
    /// Endpoint RED rollup deltas, one per (endpoint, status class, minute) of the batch's
    /// SERVER spans (traces only; empty when rollups are switched off).
    pub endpoint_rollups: Vec<crate::store::rollups::EndpointRollup>,
    /// Database query rollup deltas, one per (query, minute) of the batch's database spans
    /// (traces only; empty when rollups are switched off).
    pub query_rollups: Vec<crate::store::query_rollups::QueryRollup>,
    /// Background job and messaging rollup deltas, one per (destination or job, operation,
    /// minute) of the batch's messaging and job spans (traces only; empty when rollups are
    /// switched off).
    pub job_rollups: Vec<crate::store::job_rollups::JobRollup>,
    /// The halves of cross-service calls in the batch's spans, for the service map (traces only;
    /// empty when derived APM data is switched off). Spans committed without them do not feed
    /// the map.
    pub call_halves: Vec<crate::store::service_map::CallHalf>,
    /// Calls paired when the ingest queue admitted the batch (its own halves with halves that
    /// waited, and lone client halves that expired then); the store adds them to the service
    /// map's rows in the batch's commit. Empty until the queue fills it.
    pub paired_calls: crate::store::service_map::EdgeTally,
    /// Outcome counters to add.
    pub outcomes: Outcomes,
    /// Error events derived from the items, grouped into issues at commit.
    pub errors: Vec<ErrorEvent>,
    /// Product events derived from the items (OpenTelemetry log events), stored with them.
    pub derived_events: Vec<sightline_model::ProductEvent>,
    /// Session deltas of the spans, logs and exemplars (product events and errors are added at
    /// commit, once retries are known), and SERVER-span correlation counters.
    pub sessions: crate::store::sessions::SessionBatch,
    /// JSON text of the items, made on the prepare threads (see [`SerializedItems`]).
    pub serialized: SerializedItems,
    /// The request as received, to forward to OTLP destinations (none when forwarding is
    /// off or its queue is full); queued in the same transaction as the items.
    pub otlp_forward: Option<crate::store::otlp_outbox::OtlpForward>,
}

impl WriteBatch {
    /// Serializes the spans', log records', product events' and error events' JSON columns into
    /// [`WriteBatch::serialized`]. Call it on the thread that prepared the batch, after the last
    /// change to its events: the single writer then only copies text into rows.
    pub fn serialize_items(&mut self) {
        let events = match &self.signal {
            SignalBatch::Events(events) => events.as_slice(),
            _ => &[],
        };
        let (spans, logs) = match &self.signal {
            SignalBatch::Traces(batch) => (items_of(batch).map(SpanJson::of).collect(), Vec::new()),
            SignalBatch::Logs(batch) => (Vec::new(), self.log_json(batch)),
            _ => (Vec::new(), Vec::new()),
        };
        self.serialized = SerializedItems {
            spans,
            logs,
            events: events.iter().map(EventJson::of).collect(),
            derived_events: self.derived_events.iter().map(EventJson::of).collect(),
            // Serializing an error event cannot fail (string keys only); were it to, the list stays
            // empty and the writer serializes again and reports the error.
            errors: self.errors.iter_mut().map(ErrorEvent::stored_parts).collect::<Result<_, _>>().unwrap_or_default(),
        };
    }

    /// The log records' JSON columns. A record whose error event keeps its stack trace word
    /// for word (`raw_stacktrace`, unless cut to its bound) leaves its `exception.stacktrace`
    /// to the event ([`LogJson::of_sharing_stack`]): the event stores the trace once per issue
    /// as a template, so the row no longer carries the longest value of an error log (nor
    /// escapes and compresses it here).
    fn log_json(&self, batch: &sightline_model::Batch<LogRecord>) -> Vec<LogJson> {
        let mut sharing = vec![false; sightline_model::batch_len(batch)];
        let records: Vec<&LogRecord> = items_of(batch).collect();
        for error in &self.errors {
            let (Some(index), Some(raw)) = (error.log_record, error.raw_stacktrace.as_deref()) else { continue };
            if let Some(record) = records.get(index)
                && record.attributes.get_str(STACKTRACE_KEY) == Some(raw)
            {
                sharing[index] = true;
            }
        }
        records
            .iter()
            .zip(sharing)
            .map(|(record, shares)| if shares { LogJson::of_sharing_stack(record) } else { LogJson::of(record) })
            .collect()
    }
}

/// The attribute a log record's stack trace is in (semconv `exception.stacktrace`).
pub const STACKTRACE_KEY: &str = "exception.stacktrace";

/// A batch's items in storage order: resource → scope → item.
fn items_of<T>(batch: &sightline_model::Batch<T>) -> impl Iterator<Item = &T> {
    batch.iter().flat_map(|resource| resource.scopes.iter().flat_map(|scope| scope.items.iter()))
}

/// JSON text of a list (`[]` when empty).
pub(crate) fn json_array<T: Serialize>(items: &[T]) -> String {
    if items.is_empty() {
        return "[]".to_owned();
    }
    serde_json::to_string(items).unwrap_or_else(|_| "[]".to_owned())
}

/// The JSON columns of one stored span.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SpanJson {
    /// Attributes (typed attribute encoding).
    pub attributes: String,
    /// Span events as a JSON array.
    pub events: String,
    /// Links as a JSON array.
    pub links: String,
}

impl SpanJson {
    /// Serializes a span's JSON columns.
    pub fn of(span: &Span) -> Self {
        Self {
            attributes: span.attributes.to_json_string(),
            events: json_array(&span.events),
            links: json_array(&span.links),
        }
    }
}

/// The JSON columns of one stored log record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogJson {
    /// Attributes (typed attribute encoding), compressed when long
    /// ([`crate::store::compression::stored_json`]: an error log's stack trace).
    pub attributes: crate::store::compression::StoredJson,
    /// Body as JSON.
    pub body: String,
    /// True when `attributes` holds `exception.stacktrace` as `null`, the text being that of
    /// the record's error event (stored in the same commit; the row points at it).
    pub stack_in_error_event: bool,
}

impl LogJson {
    /// Serializes a log record's JSON columns.
    pub fn of(record: &LogRecord) -> Self {
        Self {
            attributes: crate::store::compression::stored_json(record.attributes.to_json_string()),
            body: record.body.to_string(),
            stack_in_error_event: false,
        }
    }

    /// [`LogJson::of`] with `exception.stacktrace` written as `null`, for a record whose error
    /// event holds the same text ([`LogJson::stack_in_error_event`]).
    pub fn of_sharing_stack(record: &LogRecord) -> Self {
        Self {
            attributes: crate::store::compression::stored_json(
                record.attributes.to_json_string_without_value_of(STACKTRACE_KEY),
            ),
            body: record.body.to_string(),
            stack_in_error_event: true,
        }
    }
}

/// The JSON columns of one stored product event.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventJson {
    /// `properties` as a JSON object.
    pub properties: String,
    /// `metadata` as a JSON object.
    pub metadata: String,
}

impl EventJson {
    /// Serializes an event's JSON columns.
    pub fn of(event: &sightline_model::ProductEvent) -> Self {
        let object = |map: &serde_json::Map<String, serde_json::Value>| {
            serde_json::to_string(map).unwrap_or_else(|_| "{}".to_owned())
        };
        Self { properties: object(&event.properties), metadata: object(&event.metadata) }
    }
}

/// JSON text of a batch's items, serialized where the batch is prepared (many threads) rather
/// than on the single writer, which spent ~10% of its time serializing (and error bodies are
/// compressed there too). Each list is either
/// empty (the writer then serializes the item itself) or exactly as long as the items it
/// belongs to, in the same order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SerializedItems {
    /// One per span of [`SignalBatch::Traces`], in storage order (resource → scope → span).
    pub spans: Vec<SpanJson>,
    /// One per log record of [`SignalBatch::Logs`], in storage order.
    pub logs: Vec<LogJson>,
    /// One per product event of [`SignalBatch::Events`].
    pub events: Vec<EventJson>,
    /// One per [`WriteBatch::derived_events`] entry.
    pub derived_events: Vec<EventJson>,
    /// The stored form of each [`WriteBatch::errors`] entry ([`ErrorEvent::to_stored_parts`]).
    pub errors: Vec<crate::store::errors::StoredErrorBody>,
}

/// A page of results and the cursor for the next one (absent on the last page).
#[derive(Debug, Clone, Serialize)]
pub struct Page<T> {
    /// The results.
    pub items: Vec<T>,
    /// Opaque cursor for the next page.
    pub next_cursor: Option<String>,
}

/// Trace search filters (`GET /api/v1/projects/{p}/traces`).
#[derive(Debug, Clone, Default)]
pub struct TraceQuery {
    /// A service the trace touches.
    pub service: Option<String>,
    /// Root span name.
    pub operation: Option<String>,
    /// Only traces with at least one ERROR span.
    pub errors_only: bool,
    /// Minimum trace duration in ns.
    pub min_duration_nanos: Option<u64>,
    /// Trace start ≥ this (ns).
    pub from_unix_nano: Option<u64>,
    /// Trace start ≤ this (ns).
    pub to_unix_nano: Option<u64>,
    /// Span or resource attribute equals value (all must match, possibly on different spans).
    pub attributes: Vec<(String, String)>,
    /// Page size (1..=1000).
    pub limit: usize,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}

/// The stored summary of one trace.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TraceSummary {
    /// The trace id (hex).
    pub trace_id: TraceId,
    /// Earliest span start (ns).
    pub start_time_unix_nano: u64,
    /// Latest span end (ns).
    pub end_time_unix_nano: u64,
    /// `end - start` in ns.
    pub duration_nanos: u64,
    /// Root span's service, once the root span arrived.
    pub root_service_name: Option<String>,
    /// Root span's name, once the root span arrived.
    pub root_span_name: Option<String>,
    /// Spans stored.
    pub span_count: u64,
    /// Spans with status ERROR.
    pub error_count: u64,
    /// True when any span has status ERROR.
    pub has_error: bool,
    /// Services the trace touches.
    pub services: Vec<String>,
}

/// A stored span with its resource and scope.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredSpan {
    /// The span.
    pub span: Span,
    /// Its resource.
    pub resource: Resource,
    /// Its instrumentation scope.
    pub scope: Scope,
}

/// Log search filters (`GET /api/v1/projects/{p}/logs`).
#[derive(Debug, Clone, Default)]
pub struct LogQuery {
    /// Time ≥ this (ns).
    pub from_unix_nano: Option<u64>,
    /// Time ≤ this (ns).
    pub to_unix_nano: Option<u64>,
    /// Severity number ≥ this.
    pub severity_min: Option<i32>,
    /// Only records of this trace.
    pub trace_id: Option<TraceId>,
    /// Only records of this service.
    pub service: Option<String>,
    /// Case-insensitive substring of the body.
    pub text: Option<String>,
    /// Page size (1..=1000).
    pub limit: usize,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}

/// A stored log record with its resource and scope.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredLog {
    /// The record.
    pub record: LogRecord,
    /// Its resource.
    pub resource: Resource,
    /// Its instrumentation scope.
    pub scope: Scope,
}

/// A metric stream's description.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricDescription {
    /// Metric name.
    pub name: String,
    /// Type and type-level fields.
    #[serde(flatten)]
    pub kind: MetricKind,
    /// UCUM unit.
    pub unit: String,
    /// Description.
    pub description: String,
    /// Latest point time (ns).
    pub last_seen_unix_nano: u64,
}

/// A stored metric point with what series it belongs to.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMetricPoint {
    /// Type of the metric the point belongs to.
    pub kind: MetricKind,
    /// Service of the resource.
    pub service_name: String,
    /// Resource attributes.
    pub resource: Resource,
    /// The point.
    pub point: sightline_model::MetricPoint,
}

/// Per-service counters maintained at ingest.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ServiceStats {
    /// `service.name`.
    pub service_name: String,
    /// Spans stored.
    pub span_count: u64,
    /// Log records stored.
    pub log_count: u64,
    /// Metric data points stored.
    pub metric_point_count: u64,
    /// Latest item time seen (ns).
    pub last_seen_unix_nano: u64,
}

/// One outcome counter.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OutcomeCount {
    /// `traces`, `logs` or `metrics`.
    pub signal: String,
    /// `accepted`, `sampled_out` or `invalid`.
    pub outcome: String,
    /// Items.
    pub count: u64,
}

/// Items of one signal accepted in one minute (by commit time).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IngestMinute {
    /// `traces`, `logs`, `metrics` or `events`.
    pub signal: String,
    /// Start of the minute, ns since the Unix epoch.
    pub minute_unix_nano: u64,
    /// Items (spans, log records, metric points, product events) accepted in it.
    pub accepted: u64,
}

/// Product event filters (`GET /api/v1/projects/{p}/events`).
#[derive(Debug, Clone, Default)]
pub struct EventQuery {
    /// `event.name` equals.
    pub name: Option<String>,
    /// `event.type` equals.
    pub event_type: Option<sightline_model::EventType>,
    /// `user.id` equals.
    pub user: Option<String>,
    /// `session.id` equals.
    pub session: Option<String>,
    /// Timestamp ≥ (ns).
    pub from_unix_nano: Option<u64>,
    /// Timestamp ≤ (ns).
    pub to_unix_nano: Option<u64>,
    /// Case-insensitive substring of the name, page path or properties.
    pub text: Option<String>,
    /// Page size (1..=1000).
    pub limit: usize,
    /// Cursor from a previous page.
    pub cursor: Option<String>,
}
