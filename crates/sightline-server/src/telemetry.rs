//! Sightline's own metrics, exposed at `GET /metrics` in the Prometheus text format
//! (prometheus-client). Names follow Prometheus conventions (`_total` counters, base units).
//!
//! - `sightline_ingest_items_total{signal, outcome}`: items by outcome (accepted, sampled_out,
//!   invalid) once committed; `signal` is traces, logs, metrics or events.
//! - `sightline_ingest_refused_requests_total{reason}`: requests refused with a retry delay
//!   (`overloaded`, `unavailable`).
//! - `sightline_ingest_queue_items`: items accepted but not yet committed.
//! - `sightline_commit_duration_seconds`: time of each group commit.
//! - `sightline_commit_items`: items per group commit.
//! - `sightline_session_server_spans_total{with_session}`: committed SERVER spans with and
//!   without a `session.id`; the session correlation rate is
//!   `rate(..{with_session="true"}[5m]) / rate(sightline_session_server_spans_total[5m])`.
//!
//! - `sightline_otlp_forward_items_total{destination, signal, outcome}`: items of forwarded
//!   OTLP requests by outcome (`delivered`, `rejected` by the destination's partial success,
//!   `dead_lettered`, `dropped` because the forwarding queue was full).
//! - `sightline_otlp_forward_attempts_total{destination, result}`: export attempts by result
//!   (`delivered`, `retry`, `permanent`).
//! - `sightline_otlp_forward_queued_bytes{destination}` and
//!   `sightline_otlp_forward_lag_seconds{destination}`: the outbox's size and the age of its
//!   oldest request.
//! - `sightline_delivery_events_total{destination, outcome}`: forwarded product events by
//!   outcome (`delivered`, `dead_lettered`, `filtered`) per destination id; and
//!   `sightline_delivery_requests_total{destination, result}` (`delivered`, `partial`, `retry`,
//!   `split`, `permanent`).
//! - `sightline_delivery_queued_events{destination}`, `sightline_delivery_in_flight_events`,
//!   `sightline_delivery_lag_seconds{destination}` (age of the oldest queued event).
//!
//! One registry per process: counters are process-wide, like the process they describe.

use std::sync::LazyLock;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

/// Labels of `sightline_ingest_items_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ItemLabels {
    /// `traces`, `logs`, `metrics` or `events`.
    pub signal: String,
    /// `accepted`, `sampled_out` or `invalid`.
    pub outcome: String,
}

/// Labels of `sightline_ingest_refused_requests_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RefusedLabels {
    /// `overloaded` (queue full) or `unavailable` (commit failed, shutting down).
    pub reason: String,
}

/// Labels of `sightline_session_server_spans_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct CorrelationLabels {
    /// `true` when the span carried a session id.
    pub with_session: String,
}

/// Labels of `sightline_otlp_forward_items_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForwardItemLabels {
    /// Destination name.
    pub destination: String,
    /// `traces`, `metrics` or `logs`.
    pub signal: String,
    /// `delivered`, `rejected`, `dead_lettered` or `dropped`.
    pub outcome: String,
}

/// Labels of `sightline_otlp_forward_attempts_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ForwardAttemptLabels {
    /// Destination name.
    pub destination: String,
    /// `delivered`, `retry` or `permanent`.
    pub result: String,
}

/// Labels of `sightline_delivery_events_total`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DeliveryLabels {
    /// The destination's id.
    pub destination: String,
    /// `delivered`, `dead_lettered` or `filtered`.
    pub outcome: String,
}

/// Labels of the per-destination gauges (product-event destinations by id, the OTLP
/// forwarding destination by name).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DestinationLabels {
    /// The destination's id or name.
    pub destination: String,
}

/// The process's metrics.
pub struct ServerMetrics {
    /// Forwarded events by destination and outcome.
    pub delivery_events: Family<DeliveryLabels, Counter>,
    /// Delivery requests by destination and classification (`outcome` label holds it).
    pub delivery_requests: Family<DeliveryLabels, Counter>,
    /// Events waiting in the outbox per destination.
    pub delivery_queued: Family<DestinationLabels, Gauge>,
    /// Events in requests being sent per destination.
    pub delivery_in_flight: Family<DestinationLabels, Gauge>,
    /// Age of the oldest queued event per destination, seconds.
    pub delivery_lag_seconds: Family<DestinationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>,
    registry: Registry,
    /// Items by signal and outcome.
    pub items: Family<ItemLabels, Counter>,
    /// Requests refused with a retry delay.
    pub refused: Family<RefusedLabels, Counter>,
    /// Items waiting for commit.
    pub queue_items: Gauge,
    /// Group commit durations, seconds.
    pub commit_seconds: Histogram,
    /// Items per group commit.
    pub commit_items: Histogram,
    /// Durations of the syncs that make group commits durable (one may cover several), seconds.
    pub sync_seconds: Histogram,
    /// SERVER spans with and without a session id.
    pub server_spans: Family<CorrelationLabels, Counter>,
    /// Forwarded OTLP items by destination, signal and outcome.
    pub otlp_forward_items: Family<ForwardItemLabels, Counter>,
    /// OTLP export attempts by destination and result.
    pub otlp_forward_attempts: Family<ForwardAttemptLabels, Counter>,
    /// Bytes waiting in each OTLP destination's outbox.
    pub otlp_forward_queued_bytes: Family<DestinationLabels, Gauge>,
    /// Age of the oldest waiting OTLP request per destination, seconds.
    pub otlp_forward_lag_seconds: Family<DestinationLabels, Gauge>,
}

static METRICS: LazyLock<ServerMetrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("sightline");
    let items = Family::<ItemLabels, Counter>::default();
    registry.register("ingest_items", "Ingested items by signal and outcome, once committed", items.clone());
    let refused = Family::<RefusedLabels, Counter>::default();
    registry.register("ingest_refused_requests", "Requests refused with a retry delay", refused.clone());
    let queue_items = Gauge::default();
    registry.register("ingest_queue_items", "Items accepted but not yet committed", queue_items.clone());
    let commit_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
    registry.register("commit_duration_seconds", "Duration of each group commit", commit_seconds.clone());
    let commit_items = Histogram::new(exponential_buckets(1.0, 4.0, 10));
    registry.register("commit_items", "Items committed per group commit", commit_items.clone());
    let sync_seconds = Histogram::new(exponential_buckets(0.0005, 2.0, 14));
    registry.register(
        "commit_sync_duration_seconds",
        "Duration of each sync of group commits to disk",
        sync_seconds.clone(),
    );
    let server_spans = Family::<CorrelationLabels, Counter>::default();
    registry.register(
        "session_server_spans",
        "Committed SERVER spans with and without a session id (session correlation)",
        server_spans.clone(),
    );
    let otlp_forward_items = Family::<ForwardItemLabels, Counter>::default();
    registry.register(
        "otlp_forward_items",
        "Items of forwarded OTLP requests by destination, signal and outcome",
        otlp_forward_items.clone(),
    );
    let otlp_forward_attempts = Family::<ForwardAttemptLabels, Counter>::default();
    registry.register(
        "otlp_forward_attempts",
        "OTLP export attempts by destination and result",
        otlp_forward_attempts.clone(),
    );
    let otlp_forward_queued_bytes = Family::<DestinationLabels, Gauge>::default();
    registry.register(
        "otlp_forward_queued_bytes",
        "Bytes waiting in the OTLP forwarding outbox per destination",
        otlp_forward_queued_bytes.clone(),
    );
    let otlp_forward_lag_seconds = Family::<DestinationLabels, Gauge>::default();
    registry.register(
        "otlp_forward_lag_seconds",
        "Age of the oldest waiting OTLP request per destination",
        otlp_forward_lag_seconds.clone(),
    );
    let delivery_events = Family::<DeliveryLabels, Counter>::default();
    registry.register(
        "delivery_events",
        "Forwarded product events by destination and outcome",
        delivery_events.clone(),
    );
    let delivery_requests = Family::<DeliveryLabels, Counter>::default();
    registry.register(
        "delivery_requests",
        "Delivery requests by destination and response classification",
        delivery_requests.clone(),
    );
    let delivery_queued = Family::<DestinationLabels, Gauge>::default();
    registry.register("delivery_queued_events", "Events waiting in the outbox", delivery_queued.clone());
    let delivery_in_flight = Family::<DestinationLabels, Gauge>::default();
    registry.register("delivery_in_flight_events", "Events in requests being sent", delivery_in_flight.clone());
    let delivery_lag_seconds = Family::<DestinationLabels, Gauge<f64, std::sync::atomic::AtomicU64>>::default();
    registry.register("delivery_lag_seconds", "Age of the oldest queued event", delivery_lag_seconds.clone());
    ServerMetrics {
        registry,
        items,
        refused,
        queue_items,
        commit_seconds,
        commit_items,
        sync_seconds,
        server_spans,
        otlp_forward_items,
        otlp_forward_attempts,
        otlp_forward_queued_bytes,
        otlp_forward_lag_seconds,
        delivery_events,
        delivery_requests,
        delivery_queued,
        delivery_in_flight,
        delivery_lag_seconds,
    }
});

/// The process-wide metrics.
pub fn metrics() -> &'static ServerMetrics {
    &METRICS
}

impl ServerMetrics {
    /// Counts `count` items of `signal` with `outcome`.
    pub fn count_items(&self, signal: &str, outcome: &str, count: u64) {
        if count > 0 {
            self.items
                .get_or_create(&ItemLabels { signal: signal.to_owned(), outcome: outcome.to_owned() })
                .inc_by(count);
        }
    }

    /// The Prometheus text exposition (OpenMetrics text format).
    pub fn encode(&self) -> String {
        let mut text = String::new();
        if prometheus_client::encoding::text::encode(&mut text, &self.registry).is_err() {
            text.clear();
        }
        text
    }
}
