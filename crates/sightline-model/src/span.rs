//! Spans (opentelemetry-proto `trace/v1/trace.proto`).

use serde::{Deserialize, Serialize};

use crate::Countable;
use crate::attributes::Attributes;
use crate::ids::{SpanId, TraceId};

/// OTLP `Span.SpanKind` values.
pub mod kind {
    /// `SPAN_KIND_UNSPECIFIED`.
    pub const UNSPECIFIED: i32 = 0;
    /// `SPAN_KIND_INTERNAL`.
    pub const INTERNAL: i32 = 1;
    /// `SPAN_KIND_SERVER`.
    pub const SERVER: i32 = 2;
    /// `SPAN_KIND_CLIENT`.
    pub const CLIENT: i32 = 3;
    /// `SPAN_KIND_PRODUCER`.
    pub const PRODUCER: i32 = 4;
    /// `SPAN_KIND_CONSUMER`.
    pub const CONSUMER: i32 = 5;
}

/// OTLP `Status.StatusCode` values.
pub mod status_code {
    /// `STATUS_CODE_UNSET`.
    pub const UNSET: i32 = 0;
    /// `STATUS_CODE_OK`.
    pub const OK: i32 = 1;
    /// `STATUS_CODE_ERROR`.
    pub const ERROR: i32 = 2;
}

/// One span with every OTLP field. Times are nanoseconds since the Unix epoch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Span {
    /// 16-byte trace id.
    pub trace_id: TraceId,
    /// 8-byte span id.
    pub span_id: SpanId,
    /// Parent span id; `None` for a root span.
    pub parent_span_id: Option<SpanId>,
    /// W3C `tracestate` header value.
    pub trace_state: String,
    /// `flags` (W3C trace flags in the low 8 bits, OTLP `SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE_MASK` …).
    pub flags: u32,
    /// Operation name.
    pub name: String,
    /// Span kind ([`kind`]).
    pub kind: i32,
    /// Start time, ns since epoch.
    pub start_time_unix_nano: u64,
    /// End time, ns since epoch.
    pub end_time_unix_nano: u64,
    /// Span attributes.
    pub attributes: Attributes,
    /// `dropped_attributes_count` as sent.
    pub dropped_attributes_count: u32,
    /// Span events.
    pub events: Vec<SpanEvent>,
    /// `dropped_events_count` as sent.
    pub dropped_events_count: u32,
    /// Span links.
    pub links: Vec<SpanLink>,
    /// `dropped_links_count` as sent.
    pub dropped_links_count: u32,
    /// Status code ([`status_code`]).
    pub status_code: i32,
    /// Status message (meaningful with ERROR).
    pub status_message: String,
}

impl Span {
    /// Duration in ns (0 when the end precedes the start).
    pub fn duration_nanos(&self) -> u64 {
        self.end_time_unix_nano.saturating_sub(self.start_time_unix_nano)
    }

    /// True when the span's status is ERROR.
    pub fn is_error(&self) -> bool {
        self.status_code == status_code::ERROR
    }
}

impl Countable for Span {
    fn item_count(&self) -> usize {
        1
    }
}

/// A span event (`Span.Event`), e.g. an `exception`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanEvent {
    /// Event time, ns since epoch.
    pub time_unix_nano: u64,
    /// Event name.
    pub name: String,
    /// Event attributes.
    pub attributes: Attributes,
    /// `dropped_attributes_count` as sent.
    #[serde(default)]
    pub dropped_attributes_count: u32,
}

/// A span link (`Span.Link`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SpanLink {
    /// Linked trace id.
    pub trace_id: TraceId,
    /// Linked span id.
    pub span_id: SpanId,
    /// W3C `tracestate` of the linked span.
    pub trace_state: String,
    /// Link attributes.
    pub attributes: Attributes,
    /// `dropped_attributes_count` as sent.
    #[serde(default)]
    pub dropped_attributes_count: u32,
    /// Link flags.
    #[serde(default)]
    pub flags: u32,
}
