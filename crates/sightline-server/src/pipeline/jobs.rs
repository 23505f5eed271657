//! Derives background job and messaging rollup deltas (count, failures, duration sketch, queue
//! lag sketch, slowest spans) per minute from a batch of spans; the store merges them into the
//! stored rows at commit (`store/sqlite/job_rollups.rs`).
//!
//! Which spans count (OTel semconv "Messaging spans", `docs/messaging/messaging-spans.md`, and
//! the attribute registry `docs/registry/attributes/messaging.md`):
//! - **messaging spans**: kind PRODUCER or CONSUMER, and spans of any kind carrying
//!   `messaging.system`, `messaging.operation.type` (old `messaging.operation`) or
//!   `messaging.destination.name` (old `messaging.destination`) — e.g. `receive` and `settle`
//!   spans, which semconv makes CLIENT spans. Queue libraries used for background jobs
//!   (Sidekiq, ActiveJob, Celery, Hangfire, BullMQ instrumentations) report their jobs this
//!   way, with the queue as the destination.
//! - **plain jobs**: semconv has no job convention, so a job is a root span (no parent) of kind
//!   INTERNAL or UNSPECIFIED, without an HTTP method (those are endpoints), carrying
//!   `code.function.name` (old `code.function`, with `code.namespace` in front when sent) — what
//!   a scheduler or a `#[traced]` job entry point records. Its operation is `job`.
//!
//! Keys: the name is `messaging.destination.template` (semconv: the low-cardinality form of
//! templated destinations), else `messaging.destination.name` (old `messaging.destination`);
//! temporary or anonymous destinations (`messaging.destination.temporary` /
//! `.anonymous` true) without a template are named `(temporary)` so one-off reply queues do
//! not each get a row; without any destination the span name is used. The operation is
//! `messaging.operation.type`, else the old `messaging.operation` with its renamed values mapped
//! (`publish` → `send`, `deliver` → `process`, as semconv 1.26 renamed them), else from the
//! kind (PRODUCER → `send`, CONSUMER → `process`, other kinds `unknown`). A failure is a span
//! with status ERROR (semconv: messaging spans set it when the operation fails).
//!
//! Queue lag — the time a message waited: consumer span start − enqueue time, for spans whose
//! operation is `process` or `receive`, from the first source that applies:
//! 1. `messaging.servicebus.message.enqueued_time` or `messaging.eventhubs.message.enqueued_time`
//!    (semconv: "the UTC epoch seconds at which the message has been accepted and stored"; the
//!    only enqueue timestamps in semconv). Values of 10^11 and more are read as milliseconds,
//!    as some SDKs send. Whole seconds: the lag may be up to 1 s too large.
//! 2. The message's creation context in the same export request: the consumer span's parent
//!    or one of its links (semconv: consumers link to, or are parented by, the creation
//!    context) naming a PRODUCER span (or one whose operation is `create`, `send`, `publish`)
//!    of the same request; the lag is measured from that span's start.
//!
//! A producer exported in another request (usually another service) is not looked up: that
//! would need a store read per consumer span at ingest. Negative lags (clock skew between
//! hosts) are not counted.

use std::borrow::Cow;
use std::collections::HashMap;

use serde_json::Value;
use sightline_model::span::{kind, status_code};
use sightline_model::{Attributes, Batch, Span, SpanId, TraceId};

use super::rollups::{environment_of, minute_of, non_empty, slow_request_of};
use crate::store::job_rollups::{JOB_OPERATION, JobKey, JobRollup};
use crate::store::rollups::MINUTE_SECONDS;

/// Semconv enqueue-time attributes (epoch seconds), in the order they are tried.
const ENQUEUED_TIME_KEYS: [&str; 2] =
    ["messaging.servicebus.message.enqueued_time", "messaging.eventhubs.message.enqueued_time"];

/// Name of temporary or anonymous destinations without a template.
pub const TEMPORARY_DESTINATION: &str = "(temporary)";

fn is_true(attributes: &Attributes, key: &str) -> bool {
    matches!(attributes.0.get(key), Some(Value::Bool(true)))
}

/// True for spans with messaging attributes or a messaging kind (see the module docs).
fn is_messaging_span(span: &Span) -> bool {
    let attributes = &span.attributes;
    if matches!(span.kind, kind::PRODUCER | kind::CONSUMER) {
        return true;
    }
    // Most spans carry no `messaging.*` key at all: one pass over the keys answers them without
    // the five hashed look-ups below.
    attributes.0.keys().any(|key| key.starts_with("messaging."))
        && [
            "messaging.system",
            "messaging.operation.type",
            "messaging.operation",
            "messaging.destination.name",
            "messaging.destination",
        ]
        .iter()
        .any(|key| non_empty(attributes, key).is_some())
}

/// The name of a plain job (see the module docs), `None` for other spans.
fn plain_job_name(span: &Span) -> Option<Cow<'_, str>> {
    let attributes = &span.attributes;
    let root_without_kind = span.parent_span_id.is_none() && matches!(span.kind, kind::INTERNAL | kind::UNSPECIFIED);
    if !root_without_kind
        || non_empty(attributes, "http.request.method").is_some()
        || non_empty(attributes, "http.method").is_some()
    {
        return None;
    }
    if let Some(function) = non_empty(attributes, "code.function.name") {
        return Some(Cow::Borrowed(function));
    }
    let function = non_empty(attributes, "code.function")?;
    Some(match non_empty(attributes, "code.namespace") {
        Some(namespace) => Cow::Owned(format!("{namespace}.{function}")),
        None => Cow::Borrowed(function),
    })
}

fn destination_of(span: &Span) -> &str {
    let attributes = &span.attributes;
    if let Some(template) = non_empty(attributes, "messaging.destination.template") {
        return template;
    }
    if is_true(attributes, "messaging.destination.temporary") || is_true(attributes, "messaging.destination.anonymous")
    {
        return TEMPORARY_DESTINATION;
    }
    non_empty(attributes, "messaging.destination.name")
        .or_else(|| non_empty(attributes, "messaging.destination"))
        .unwrap_or(span.name.as_str())
}

/// The semconv operation type of a messaging span (see the module docs).
fn operation_of(span: &Span) -> Cow<'_, str> {
    let attributes = &span.attributes;
    let sent =
        non_empty(attributes, "messaging.operation.type").or_else(|| non_empty(attributes, "messaging.operation"));
    match sent {
        Some("publish") => Cow::Borrowed("send"),
        Some("deliver") => Cow::Borrowed("process"),
        Some(operation) if !operation.bytes().any(|byte| byte.is_ascii_uppercase()) => Cow::Borrowed(operation),
        Some(operation) => Cow::Owned(operation.to_ascii_lowercase()),
        None => Cow::Borrowed(match span.kind {
            kind::PRODUCER => "send",
            kind::CONSUMER => "process",
            _ => "unknown",
        }),
    }
}

fn is_creation_span(span: &Span) -> bool {
    span.kind == kind::PRODUCER
        || matches!(
            non_empty(&span.attributes, "messaging.operation.type")
                .or_else(|| non_empty(&span.attributes, "messaging.operation")),
            Some("create" | "send" | "publish")
        )
}

/// An integer-valued attribute sent as an int, a double or a numeric string.
fn number_of(attributes: &Attributes, key: &str) -> Option<f64> {
    match attributes.0.get(key)? {
        Value::Number(number) => number.as_f64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// Enqueue time from the semconv attributes, ns since the epoch.
fn enqueued_time_nanos(attributes: &Attributes) -> Option<u64> {
    let value = ENQUEUED_TIME_KEYS.iter().find_map(|key| number_of(attributes, key))?;
    if !value.is_finite() || value <= 0.0 {
        return None;
    }
    let nanos = if value >= 1e11 { value * 1e6 } else { value * 1e9 };
    (nanos < u64::MAX as f64).then_some(nanos as u64)
}

/// Queue lag of a consumer span (ns), from the sources in the module docs.
fn lag_of(span: &Span, creation_starts: &HashMap<(TraceId, SpanId), u64>, operation: &str) -> Option<u64> {
    if !matches!(operation, "process" | "receive") {
        return None;
    }
    let enqueued = enqueued_time_nanos(&span.attributes).or_else(|| {
        let parent = span.parent_span_id.and_then(|parent| creation_starts.get(&(span.trace_id, parent)));
        parent
            .or_else(|| span.links.iter().find_map(|link| creation_starts.get(&(link.trace_id, link.span_id))))
            .copied()
    })?;
    span.start_time_unix_nano.checked_sub(enqueued)
}

/// One delta per (service, environment, messaging system, destination or job name, operation,
/// minute of the span start) present in the batch.
pub fn job_rollups_from_spans(batch: &Batch<Span>) -> Vec<JobRollup> {
    let mut creation_starts: HashMap<(TraceId, SpanId), u64> = HashMap::new();
    for span in batch.iter().flat_map(|group| &group.scopes).flat_map(|scope| &scope.items) {
        if is_creation_span(span) {
            creation_starts.insert((span.trace_id, span.span_id), span.start_time_unix_nano);
        }
    }
    // Keyed by borrowed strings: a row's `JobKey` is allocated once per batch, not per span. The
    // strings are the client's, so the map keeps the standard (keyed) hasher.
    let mut index_by_key: HashMap<BorrowedKey<'_>, usize> = HashMap::new();
    let mut deltas: Vec<JobRollup> = Vec::new();
    for resource_group in batch {
        let service = resource_group.resource.service_name();
        let environment = environment_of(&resource_group.resource.attributes);
        for span in resource_group.scopes.iter().flat_map(|scope| &scope.items) {
            let (messaging_system, name, operation) = if is_messaging_span(span) {
                let system = non_empty(&span.attributes, "messaging.system").unwrap_or("");
                (system, Cow::Borrowed(destination_of(span)), operation_of(span))
            } else if let Some(job) = plain_job_name(span) {
                ("", job, Cow::Borrowed(JOB_OPERATION))
            } else {
                continue;
            };
            let lag_nanos = lag_of(span, &creation_starts, &operation);
            let key = (service, environment, messaging_system, name, operation, minute_of(span));
            let index = *index_by_key.entry(key).or_insert_with_key(
                |(service, environment, system, name, operation, minute)| {
                    let key = JobKey {
                        service_name: (*service).to_owned(),
                        environment: (*environment).to_owned(),
                        messaging_system: (*system).to_owned(),
                        name: name.to_string(),
                        operation: operation.to_string(),
                    };
                    deltas.push(JobRollup::empty(key, *minute, MINUTE_SECONDS));
                    deltas.len() - 1
                },
            );
            deltas[index].add_span(slow_request_of(span), span.status_code == status_code::ERROR, lag_nanos);
        }
    }
    deltas
}

/// (service, environment, messaging system, name, operation, minute start ns) of a row, borrowed
/// from the batch.
type BorrowedKey<'a> = (&'a str, &'a str, &'a str, Cow<'a, str>, Cow<'a, str>, u64);

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::span::SpanLink;
    use sightline_model::{Resource, ResourceGroup, Scope, ScopeGroup};

    use super::*;

    const START: u64 = 1_700_000_040_000_000_000;

    fn span(id: u8, span_kind: i32, attributes: Value, start: u64, duration_ms: u64) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([id; 8]),
            parent_span_id: Some(SpanId([99; 8])),
            trace_state: String::new(),
            flags: 0,
            name: format!("span {id}"),
            kind: span_kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + duration_ms * 1_000_000,
            attributes: Attributes(attributes.as_object().cloned().unwrap_or_default()),
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: status_code::UNSET,
            status_message: String::new(),
        }
    }

    fn batch(spans: Vec<Span>) -> Batch<Span> {
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), json!("worker"));
        resource.attributes.0.insert("deployment.environment.name".into(), json!("prod"));
        vec![ResourceGroup { resource, scopes: vec![ScopeGroup { scope: Scope::default(), items: spans }] }]
    }

    /// (system, name, operation, count, failures, lag samples, max lag ns).
    type Summary = (String, String, String, u64, u64, u64, Option<f64>);

    fn summary(deltas: &[JobRollup]) -> Vec<Summary> {
        let mut rows: Vec<Summary> = deltas
            .iter()
            .map(|delta| {
                (
                    delta.key.messaging_system.clone(),
                    delta.key.name.clone(),
                    delta.key.operation.clone(),
                    delta.count,
                    delta.failures,
                    delta.lags.count(),
                    delta.lags.max_nanos(),
                )
            })
            .collect();
        rows.sort_by(|left, right| (&left.1, &left.2).cmp(&(&right.1, &right.2)));
        rows
    }

    #[test]
    fn new_and_old_semconv_keys_failures_and_lag_sources() {
        // A producer and its consumer in the same request: lag from the link, 250 ms.
        let producer = span(
            1,
            kind::PRODUCER,
            json!({"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.operation.type": "send"}),
            START,
            2,
        );
        let mut linked = span(
            2,
            kind::CONSUMER,
            json!({"messaging.system": "kafka", "messaging.destination.name": "orders", "messaging.operation.type": "process"}),
            START + 250_000_000,
            40,
        );
        linked.links.push(SpanLink {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([1; 8]),
            trace_state: String::new(),
            attributes: Attributes::default(),
            dropped_attributes_count: 0,
            flags: 0,
        });
        // Parented by the producer instead, old semconv, failed: lag 1 s.
        let mut parented = span(
            3,
            kind::CONSUMER,
            json!({"messaging.system": "kafka", "messaging.destination": "orders", "messaging.operation": "deliver"}),
            START + 1_000_000_000,
            10,
        );
        parented.parent_span_id = Some(SpanId([1; 8]));
        parented.status_code = status_code::ERROR;
        // Service Bus with its enqueue time in epoch seconds (and one in ms): lag 3 s and 2 s.
        let enqueued_seconds = START / 1_000_000_000 - 3;
        let servicebus = span(
            4,
            kind::CONSUMER,
            json!({"messaging.system": "servicebus", "messaging.destination.name": "mail",
                   "messaging.servicebus.message.enqueued_time": enqueued_seconds}),
            START,
            5,
        );
        let servicebus_ms = span(
            5,
            kind::CONSUMER,
            json!({"messaging.system": "servicebus", "messaging.destination.name": "mail",
                   "messaging.servicebus.message.enqueued_time": (enqueued_seconds + 1) * 1000}),
            START,
            5,
        );
        // Skewed clock: enqueued after the start; counted without a lag.
        let skewed = span(
            6,
            kind::CONSUMER,
            json!({"messaging.system": "servicebus", "messaging.destination.name": "mail",
                   "messaging.eventhubs.message.enqueued_time": enqueued_seconds + 60}),
            START,
            5,
        );
        // A CONSUMER span without attributes, a templated and a temporary destination.
        let bare = span(7, kind::CONSUMER, json!({}), START, 1);
        let templated = span(
            8,
            kind::CLIENT,
            json!({"messaging.system": "rabbitmq", "messaging.destination.name": "user-42",
                   "messaging.destination.template": "user-{id}", "messaging.operation.type": "settle"}),
            START,
            1,
        );
        let temporary = span(
            9,
            kind::PRODUCER,
            json!({"messaging.system": "rabbitmq", "messaging.destination.name": "amq.gen-XYZ",
                   "messaging.destination.temporary": true, "messaging.operation": "publish"}),
            START,
            1,
        );
        // A plain job (root INTERNAL with code.function), an old-semconv one, and non-jobs.
        let mut job = span(10, kind::INTERNAL, json!({"code.function.name": "billing.send_invoices"}), START, 900);
        job.parent_span_id = None;
        let mut old_job =
            span(11, kind::INTERNAL, json!({"code.namespace": "Reports", "code.function": "nightly"}), START, 9);
        old_job.parent_span_id = None;
        let child_function = span(12, kind::INTERNAL, json!({"code.function.name": "helper"}), START, 1);
        let mut http_root =
            span(13, kind::INTERNAL, json!({"code.function.name": "handler", "http.method": "GET"}), START, 1);
        http_root.parent_span_id = None;
        let plain_client = span(14, kind::CLIENT, json!({"db.system": "redis"}), START, 1);

        let deltas = job_rollups_from_spans(&batch(vec![
            producer,
            linked,
            parented,
            servicebus,
            servicebus_ms,
            skewed,
            bare,
            templated,
            temporary,
            job,
            old_job,
            child_function,
            http_root,
            plain_client,
        ]));
        let row = |system: &str, name: &str, operation: &str, count, failures, lags, max_lag: Option<f64>| {
            (system.to_owned(), name.to_owned(), operation.to_owned(), count, failures, lags, max_lag)
        };
        assert_eq!(
            summary(&deltas),
            [
                row("rabbitmq", TEMPORARY_DESTINATION, "send", 1, 0, 0, None),
                row("", "Reports.nightly", "job", 1, 0, 0, None),
                row("", "billing.send_invoices", "job", 1, 0, 0, None),
                row("servicebus", "mail", "process", 3, 0, 2, Some(3e9)),
                row("kafka", "orders", "process", 2, 1, 2, Some(1e9)),
                row("kafka", "orders", "send", 1, 0, 0, None),
                row("", "span 7", "process", 1, 0, 0, None),
                row("rabbitmq", "user-{id}", "settle", 1, 0, 0, None),
            ]
        );
        let orders = deltas.iter().find(|delta| delta.key.name == "orders" && delta.key.operation == "process");
        let orders = orders.expect("orders row");
        // The 250 ms lag is the minimum; the sketch is within 1%.
        let min_lag = orders.lags.min_nanos().expect("lags");
        assert!((min_lag - 250e6).abs() < 1.0, "{min_lag}");
        assert_eq!((orders.key.service_name.as_str(), orders.key.environment.as_str()), ("worker", "prod"));
        assert_eq!(orders.bucket_start_unix_nano % 60_000_000_000, 0);
        assert_eq!(orders.slowest[0].span_id, SpanId([2; 8]), "the 40 ms span first");
    }
}
