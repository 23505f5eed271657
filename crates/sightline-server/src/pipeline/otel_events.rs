//! OpenTelemetry events as product events: a log record with `event_name` (or, from older
//! SDKs, the attribute `event.name`) is an event in the OTel data model (logs data model,
//! "Events"), and Sightline stores it in the product-event model too, so backend events
//! (`journey.step` confirmed by a server, `checkout.completed`, ...) are queried with the
//! frontend's. Attributes become properties (`gen_ai.journey.*` read as `journey.*`); `session.id`
//! and `user.id` attributes — including those instrumentation copied from W3C baggage — are
//! honoured.
//!
//! The event id is derived from the record's content, so an OTLP retry of the same record is
//! stored once, like a retried `/v1/events` batch.

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sightline_model::{Batch, EventType, LogRecord, ProductEvent};

/// Product events of a log batch: one per record that is an OpenTelemetry event.
pub fn product_events_from_logs(batch: &Batch<LogRecord>) -> Vec<ProductEvent> {
    let mut events = Vec::new();
    for resource_group in batch {
        let service = resource_group.resource.service_name();
        for scope_group in &resource_group.scopes {
            for record in &scope_group.items {
                let name = if record.event_name.is_empty() {
                    match record.attributes.get_str("event.name") {
                        Some(name) if !name.is_empty() => name.to_owned(),
                        _ => continue,
                    }
                } else {
                    record.event_name.clone()
                };
                events.push(product_event(service, &name, record));
            }
        }
    }
    events
}

fn product_event(service: &str, name: &str, record: &LogRecord) -> ProductEvent {
    let text = |key: &str| record.attributes.get_str(key).filter(|value| !value.is_empty()).map(str::to_owned);
    let event_type = text("event.type")
        .and_then(|value| EventType::parse(&value))
        .or_else(|| EventType::parse(name))
        .unwrap_or(EventType::Custom);
    let mut properties = Map::new();
    for (key, value) in &record.attributes.0 {
        let key = key.strip_prefix("gen_ai.").filter(|rest| rest.starts_with("journey.")).unwrap_or(key);
        if matches!(key, "session.id" | "user.id" | "org.id" | "event.name" | "event.type" | "event_id") {
            continue;
        }
        properties.insert(key.to_owned(), value.clone());
    }
    let mut metadata = Map::new();
    metadata.insert("source".into(), Value::String("otlp".into()));
    metadata.insert("service.name".into(), Value::String(service.to_owned()));
    if let Some(trace_id) = record.trace_id {
        metadata.insert("trace_id".into(), Value::String(trace_id.to_hex()));
    }
    if let Some(span_id) = record.span_id {
        metadata.insert("span_id".into(), Value::String(span_id.to_hex()));
    }
    if !record.body.is_null() {
        metadata.insert("body".into(), record.body.clone());
    }
    let event_id = text("event_id").unwrap_or_else(|| content_id(service, name, record));
    ProductEvent {
        event_id,
        product_id: service.to_owned(),
        session_id: text("session.id").unwrap_or_default(),
        user_id: text("user.id").or_else(|| text("enduser.id")),
        org_id: text("org.id"),
        event_type,
        event_name: name.to_owned(),
        timestamp_unix_nano: record.effective_time_unix_nano(),
        // The record's own time (or observed time) is part of the content the id is made of.
        timestamp_defaulted: false,
        sequence: None,
        properties,
        metadata,
    }
}

/// 32 hex characters of SHA-256 over the record's identifying content.
fn content_id(service: &str, name: &str, record: &LogRecord) -> String {
    let mut hasher = Sha256::new();
    for part in [service, name, &record.time_unix_nano.to_string(), &record.observed_time_unix_nano.to_string()] {
        hasher.update(part.as_bytes());
        hasher.update([0x1f]);
    }
    hasher.update(record.attributes.to_json_string().as_bytes());
    hasher.update(record.body.to_string().as_bytes());
    if let Some(span_id) = record.span_id {
        hasher.update(span_id.0);
    }
    const_hex::encode(&hasher.finalize()[..16])
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::{Attributes, Resource, ResourceGroup, Scope, ScopeGroup};

    use super::*;

    fn record(event_name: &str, attributes: Value) -> LogRecord {
        LogRecord {
            time_unix_nano: 1_000,
            observed_time_unix_nano: 2_000,
            severity_number: 9,
            severity_text: String::new(),
            body: Value::Null,
            attributes: Attributes(attributes.as_object().unwrap().clone()),
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: None,
            span_id: None,
            event_name: event_name.to_owned(),
        }
    }

    fn batch(records: Vec<LogRecord>) -> Batch<LogRecord> {
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), json!("checkout-api"));
        vec![ResourceGroup { resource, scopes: vec![ScopeGroup { scope: Scope::default(), items: records }] }]
    }

    #[test]
    fn log_events_become_product_events_and_plain_logs_do_not() {
        let events = product_events_from_logs(&batch(vec![
            record(
                "journey.step",
                json!({"session.id": "s1", "user.id": "u1", "gen_ai.journey.id": "checkout", "journey.step.id": "paid"}),
            ),
            record("", json!({"event.name": "checkout.completed", "event.type": "custom", "order.total": 42.5})),
            record("", json!({"message": "plain log"})),
        ]));
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].event_type, EventType::JourneyStep);
        assert_eq!(events[0].session_id, "s1");
        assert_eq!(events[0].user_id.as_deref(), Some("u1"));
        assert_eq!(events[0].properties["journey.id"], "checkout");
        assert_eq!(events[0].product_id, "checkout-api");
        assert_eq!(events[0].metadata["source"], "otlp");
        assert_eq!(events[1].event_name, "checkout.completed");
        assert_eq!(events[1].properties["order.total"], 42.5);
        assert!(!events[1].properties.contains_key("event.name"));
    }

    #[test]
    fn the_same_record_gets_the_same_id_and_different_records_different_ids() {
        let first = product_events_from_logs(&batch(vec![record("a", json!({"x": 1}))]));
        let again = product_events_from_logs(&batch(vec![record("a", json!({"x": 1}))]));
        let other = product_events_from_logs(&batch(vec![record("a", json!({"x": 2}))]));
        assert_eq!(first[0].event_id, again[0].event_id);
        assert_ne!(first[0].event_id, other[0].event_id);
        assert_eq!(first[0].event_id.len(), 32);
    }
}
