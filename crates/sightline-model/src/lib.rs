//! Sightline's data model: pure types for spans, log records and metric points, and their
//! conversion from OTLP with validation. No I/O lives here.
//!
//! The shapes follow the OTLP protobuf definitions (opentelemetry-proto v1) one to one, with two
//! deliberate changes: ids are fixed-size arrays ([`TraceId`], [`SpanId`]) and attribute lists are
//! JSON objects in Sightline's typed encoding ([`attributes`]), so that stores can keep and query
//! them as JSON without losing the OTLP value type.

pub mod attributes;
pub mod event;
pub mod ids;
pub mod log;
pub mod metric;
pub mod otlp;
pub mod resource;
pub mod semconv;
pub mod span;

pub use attributes::Attributes;
pub use event::{EventType, ProductEvent};
pub use ids::{SpanId, TraceId};
pub use log::LogRecord;
pub use metric::{Metric, MetricKind, MetricPoint, PointValue};
pub use resource::{Resource, ResourceGroup, Scope, ScopeGroup};
pub use span::{Span, SpanEvent, SpanLink};

/// A batch of one signal's items as OTLP nests them: resources, then instrumentation scopes, then
/// items. `T` is [`Span`], [`LogRecord`] or [`Metric`].
pub type Batch<T> = Vec<ResourceGroup<T>>;

/// Number of items in a batch (spans, log records, or metric data points for metrics).
pub fn batch_len<T: Countable>(batch: &Batch<T>) -> usize {
    batch
        .iter()
        .flat_map(|resource_group| resource_group.scopes.iter())
        .flat_map(|scope_group| scope_group.items.iter())
        .map(Countable::item_count)
        .sum()
}

/// Something counted as OTLP counts it for `partial_success`: a span or log record counts 1, a
/// metric counts its data points.
pub trait Countable {
    /// The number of OTLP items (spans, log records, data points) this value stands for.
    fn item_count(&self) -> usize;
}
