//! Log records (opentelemetry-proto `logs/v1/logs.proto`).

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Countable;
use crate::attributes::Attributes;
use crate::ids::{SpanId, TraceId};

/// One log record with every OTLP field. Times are ns since the Unix epoch; `0` means unknown.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogRecord {
    /// When the event occurred (0 = unknown).
    pub time_unix_nano: u64,
    /// When the collection system saw it.
    pub observed_time_unix_nano: u64,
    /// OTLP `SeverityNumber` 0..=24 (9 INFO, 13 WARN, 17 ERROR, 21 FATAL).
    pub severity_number: i32,
    /// Severity as the source wrote it.
    pub severity_text: String,
    /// Body as an `AnyValue` in the typed JSON encoding ([`crate::attributes`]).
    pub body: Value,
    /// Log attributes.
    pub attributes: Attributes,
    /// `dropped_attributes_count` as sent.
    pub dropped_attributes_count: u32,
    /// W3C trace flags.
    pub flags: u32,
    /// Trace the record belongs to, if any.
    pub trace_id: Option<TraceId>,
    /// Span the record belongs to, if any.
    pub span_id: Option<SpanId>,
    /// `event_name`: set when the record is an OpenTelemetry event.
    pub event_name: String,
}

impl LogRecord {
    /// The time to order and filter by: `time_unix_nano`, else `observed_time_unix_nano` (the
    /// OTLP logs data model's recommendation when the source gave no time).
    pub fn effective_time_unix_nano(&self) -> u64 {
        if self.time_unix_nano != 0 { self.time_unix_nano } else { self.observed_time_unix_nano }
    }
}

impl Countable for LogRecord {
    fn item_count(&self) -> usize {
        1
    }
}
