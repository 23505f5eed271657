//! Session correlation at ingest: which session (and user) a span, log record or metric exemplar
//! belongs to, and the per-batch session deltas the store merges into session summaries.
//!
//! The session id reaches backend telemetry in three ways, all read by [`session_identity`]:
//! - an attribute `session.id` (semconv "Session" attributes; `user.id` / `enduser.id` for the
//!   user), set by instrumentation directly or copied from W3C baggage entries of the same names;
//! - a `baggage` attribute holding the raw W3C baggage header (`session.id=abc,user.id=u1`), as
//!   some middleware records it;
//! - the `X-Session-ID` request header (sent by the ProductGraph clients) recorded by HTTP
//!   instrumentation as `http.request.header.x-session-id` — semconv makes header attributes
//!   string arrays; a plain string is accepted too. `X-User-ID` likewise gives the user.
//!
//! Product events carry `session.id` as a field (so do those derived from OpenTelemetry log
//! events); their deltas are built at commit, after retried events are recognised (see
//! [`crate::store::sessions::SessionAccumulator`]), and so are error events'.

use serde_json::Value;
use sightline_model::span::kind;
use sightline_model::{Attributes, Batch, LogRecord, Metric, Span};

use crate::store::sessions::{SessionAccumulator, SessionBatch, SessionItem, SessionItemKind, UserAgentSource};

/// Longest session or user id accepted, bytes; longer values are not ids (ProductGraph's web
/// adapter makes ids like `sess-lx3k2a-8f3kd92a`).
pub const MAX_ID_BYTES: usize = 256;

/// Attribute keys that hold the session id, in order of preference.
const SESSION_KEYS: [&str; 1] = ["session.id"];
/// Attribute keys that hold the user id, in order of preference.
const USER_KEYS: [&str; 2] = ["user.id", "enduser.id"];
/// The raw W3C baggage header recorded as an attribute.
const BAGGAGE_KEY: &str = "baggage";
/// `X-Session-ID` as HTTP semconv records request headers.
const SESSION_HEADER_KEY: &str = "http.request.header.x-session-id";
/// `X-User-ID` as HTTP semconv records request headers.
const USER_HEADER_KEY: &str = "http.request.header.x-user-id";

/// The session and user an item belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionIdentity {
    /// `session.id`.
    pub session_id: String,
    /// `user.id` / `enduser.id`, when known.
    pub user_id: Option<String>,
}

/// The session of an item whose attribute lists are `sources`, most specific first (e.g. the
/// span's attributes, then its resource's). The session id comes from the first source that has
/// one, the user id likewise (independently); `None` without a session id.
pub fn session_identity(sources: &[&Attributes]) -> Option<SessionIdentity> {
    let session_id = sources.iter().find_map(|attributes| session_id(attributes))?;
    let user_id = sources.iter().find_map(|attributes| user_id(attributes));
    Some(SessionIdentity { session_id, user_id })
}

/// The session id of one attribute list: `session.id`, else the baggage entry, else the
/// `X-Session-ID` header.
pub fn session_id(attributes: &Attributes) -> Option<String> {
    identifier(attributes, &SESSION_KEYS, SESSION_HEADER_KEY)
}

/// The user id of one attribute list: `user.id` / `enduser.id`, else the baggage entry, else the
/// `X-User-ID` header.
pub fn user_id(attributes: &Attributes) -> Option<String> {
    identifier(attributes, &USER_KEYS, USER_HEADER_KEY)
}

fn identifier(attributes: &Attributes, keys: &[&str], header_key: &str) -> Option<String> {
    if let Some(found) = keys.iter().find_map(|key| attributes.0.get(*key).and_then(scalar_id)) {
        return Some(found);
    }
    if let Some(Value::String(baggage)) = attributes.0.get(BAGGAGE_KEY)
        && let Some(found) = keys.iter().find_map(|key| baggage_entry(baggage, key))
    {
        return Some(found);
    }
    match attributes.0.get(header_key)? {
        Value::Array(values) => values.iter().find_map(scalar_id),
        other => scalar_id(other),
    }
}

/// A usable id from an attribute value: a non-empty string (trimmed) or an integer.
fn scalar_id(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => valid_id(text.trim()),
        Value::Number(number) if number.is_i64() || number.is_u64() => Some(number.to_string()),
        _ => None,
    }
}

fn valid_id(text: &str) -> Option<String> {
    (!text.is_empty() && text.len() <= MAX_ID_BYTES).then(|| text.to_owned())
}

/// The value of `key` in a W3C baggage header (`key1=value1;property,key2=value2`): list members
/// split on `,`, optional whitespace around `=` and members, properties after `;` ignored, the
/// value percent-decoded (W3C Baggage §3.3.1.3).
pub fn baggage_entry(baggage: &str, key: &str) -> Option<String> {
    for member in baggage.split(',') {
        let entry = member.split(';').next().unwrap_or("");
        let Some((name, value)) = entry.split_once('=') else { continue };
        if name.trim() == key {
            return valid_id(&percent_decode(value.trim()));
        }
    }
    None
}

fn percent_decode(text: &str) -> String {
    if !text.contains('%') {
        return text.to_owned();
    }
    let bytes = text.as_bytes();
    let mut decoded = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        let hex = |offset: usize| bytes.get(index + offset).and_then(|byte| (*byte as char).to_digit(16));
        match (bytes[index], hex(1), hex(2)) {
            (b'%', Some(high), Some(low)) => {
                decoded.push((high * 16 + low) as u8);
                index += 3;
            }
            (byte, _, _) => {
                decoded.push(byte);
                index += 1;
            }
        }
    }
    String::from_utf8_lossy(&decoded).into_owned()
}

/// Session deltas of a span batch, and the correlation counters: every span with a session
/// touches its session (times, service, user, user agent); SERVER spans count as requests; SERVER
/// and root spans with a session are indexed for the timeline. Positions are the spans' indexes
/// in iteration order (what the writer numbers inserted rows by).
pub fn sessions_from_spans(batch: &Batch<Span>) -> SessionBatch {
    let mut accumulator = SessionAccumulator::default();
    let mut position = 0usize;
    for resource_group in batch {
        let resource = &resource_group.resource;
        let service = resource.service_name();
        let resource_session = session_id(&resource.attributes);
        for scope_group in &resource_group.scopes {
            for span in &scope_group.items {
                let span_position = position;
                position += 1;
                let is_server = span.kind == kind::SERVER;
                let session = session_id(&span.attributes).or_else(|| resource_session.clone());
                if is_server {
                    accumulator.count_server_span(span.start_time_unix_nano, session.is_some());
                }
                let Some(session) = session else { continue };
                let delta = accumulator.session(&session, span.start_time_unix_nano);
                delta.touch(span.start_time_unix_nano, span.end_time_unix_nano);
                delta.add_service(service);
                if delta.user_id.is_none() {
                    delta.offer_user(user_id(&span.attributes).or_else(|| user_id(&resource.attributes)).as_deref());
                }
                let user_agent = span
                    .attributes
                    .get_str("user_agent.original")
                    .or_else(|| span.attributes.get_str("http.user_agent"));
                delta.offer_user_agent(UserAgentSource::Span, user_agent);
                if is_server {
                    delta.requests += 1;
                }
                if is_server || span.parent_span_id.is_none() {
                    delta.items.push(SessionItem {
                        kind: SessionItemKind::Request,
                        position: span_position,
                        timestamp_unix_nano: span.start_time_unix_nano,
                    });
                }
            }
        }
    }
    accumulator.finish()
}

/// Session deltas of a log batch: every record with a session counts and is indexed for the
/// timeline.
pub fn sessions_from_logs(batch: &Batch<LogRecord>) -> SessionBatch {
    let mut accumulator = SessionAccumulator::default();
    let mut position = 0usize;
    for resource_group in batch {
        let resource = &resource_group.resource;
        let service = resource.service_name();
        let resource_session = session_id(&resource.attributes);
        for scope_group in &resource_group.scopes {
            for record in &scope_group.items {
                let record_position = position;
                position += 1;
                let Some(session) = session_id(&record.attributes).or_else(|| resource_session.clone()) else {
                    continue;
                };
                let timestamp = record.effective_time_unix_nano();
                let delta = accumulator.session(&session, timestamp);
                delta.touch(timestamp, timestamp);
                delta.add_service(service);
                if delta.user_id.is_none() {
                    delta.offer_user(user_id(&record.attributes).or_else(|| user_id(&resource.attributes)).as_deref());
                }
                delta.logs += 1;
                delta.items.push(SessionItem {
                    kind: SessionItemKind::Log,
                    position: record_position,
                    timestamp_unix_nano: timestamp,
                });
            }
        }
    }
    accumulator.finish()
}

/// Session deltas of a metrics batch: exemplars whose filtered attributes carry a session touch
/// it (time and service); they have no timeline entry.
pub fn sessions_from_metrics(batch: &Batch<Metric>) -> SessionBatch {
    let mut accumulator = SessionAccumulator::default();
    for resource_group in batch {
        let service = resource_group.resource.service_name();
        let exemplars = resource_group
            .scopes
            .iter()
            .flat_map(|scope_group| &scope_group.items)
            .flat_map(|metric| &metric.points)
            .flat_map(|point| &point.exemplars);
        for exemplar in exemplars {
            let Some(identity) = session_identity(&[&exemplar.filtered_attributes]) else { continue };
            let delta = accumulator.session(&identity.session_id, exemplar.time_unix_nano);
            delta.touch(exemplar.time_unix_nano, exemplar.time_unix_nano);
            delta.add_service(service);
            delta.offer_user(identity.user_id.as_deref());
        }
    }
    accumulator.finish()
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::metric::{Exemplar, NumberValue};
    use sightline_model::{
        MetricKind, MetricPoint, PointValue, Resource, ResourceGroup, Scope, ScopeGroup, SpanId, TraceId,
    };

    use super::*;

    fn attributes(value: Value) -> Attributes {
        match value {
            Value::Object(map) => Attributes(map),
            _ => Attributes::default(),
        }
    }

    fn identity(session: &str, user: Option<&str>) -> Option<SessionIdentity> {
        Some(SessionIdentity { session_id: session.into(), user_id: user.map(str::to_owned) })
    }

    #[test]
    fn session_and_user_come_from_attributes_baggage_or_headers() {
        let cases = [
            (json!({"session.id": "sess-1", "user.id": "u1"}), identity("sess-1", Some("u1"))),
            (json!({"session.id": " sess-1 ", "enduser.id": "u2"}), identity("sess-1", Some("u2"))),
            (
                json!({"baggage": "tenant=acme, session.id = sess-b%2F1;ttl=30 ,user.id=u%20b"}),
                identity("sess-b/1", Some("u b")),
            ),
            (json!({"http.request.header.x-session-id": ["", "sess-h"]}), identity("sess-h", None)),
            (
                json!({"http.request.header.x-session-id": "sess-s", "http.request.header.x-user-id": ["u-h"]}),
                identity("sess-s", Some("u-h")),
            ),
            (json!({"session.id": 42}), identity("42", None)),
            (
                json!({"session.id": "a", "baggage": "session.id=b", "http.request.header.x-session-id": ["c"]}),
                identity("a", None),
            ),
            (json!({"user.id": "u1"}), None),
            (json!({"session.id": ""}), None),
            (json!({"session.id": "x".repeat(MAX_ID_BYTES + 1)}), None),
            (json!({"session.id": true, "baggage": "other=1"}), None),
            (json!({"session.id": {"kvlist": {}}}), None),
        ];
        for (input, expected) in cases {
            assert_eq!(session_identity(&[&attributes(input.clone())]), expected, "{input}");
        }
    }

    #[test]
    fn the_first_source_with_a_value_wins_for_each_field() {
        let span = attributes(json!({"http.request.header.x-session-id": ["from-span"]}));
        let resource = attributes(json!({"session.id": "from-resource", "enduser.id": "resource-user"}));
        assert_eq!(session_identity(&[&span, &resource]), identity("from-span", Some("resource-user")));
        assert_eq!(
            session_identity(&[&Attributes::default(), &resource]),
            identity("from-resource", Some("resource-user"))
        );
    }

    #[test]
    fn baggage_parsing_tolerates_malformed_members() {
        assert_eq!(baggage_entry("noequals,session.id=%zz1", "session.id").as_deref(), Some("%zz1"));
        assert_eq!(baggage_entry("session.idx=1", "session.id"), None);
        assert_eq!(baggage_entry("", "session.id"), None);
        assert_eq!(baggage_entry("session.id=%E2%9C%93", "session.id").as_deref(), Some("✓"));
    }

    fn span(name: &str, span_kind: i32, parent: bool, start: u64, attributes_json: Value) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([start as u8 + 1; 8]),
            parent_span_id: parent.then_some(SpanId([9; 8])),
            trace_state: String::new(),
            flags: 0,
            name: name.into(),
            kind: span_kind,
            start_time_unix_nano: start,
            end_time_unix_nano: start + 10,
            attributes: attributes(attributes_json),
            dropped_attributes_count: 0,
            events: Vec::new(),
            dropped_events_count: 0,
            links: Vec::new(),
            dropped_links_count: 0,
            status_code: 0,
            status_message: String::new(),
        }
    }

    fn group<T>(service: &str, items: Vec<T>) -> ResourceGroup<T> {
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), json!(service));
        ResourceGroup { resource, scopes: vec![ScopeGroup { scope: Scope::default(), items }] }
    }

    #[test]
    fn span_batches_give_one_delta_per_session_and_count_server_spans() {
        let batch = vec![
            group(
                "api",
                vec![
                    span(
                        "GET /cart",
                        kind::SERVER,
                        true,
                        100,
                        json!({"session.id": "s1", "user_agent.original": "curl/8"}),
                    ),
                    span("SELECT", kind::CLIENT, true, 105, json!({"session.id": "s1"})),
                    span("GET /health", kind::SERVER, false, 120, json!({})),
                ],
            ),
            group(
                "orders",
                vec![span(
                    "POST /orders",
                    kind::SERVER,
                    true,
                    90,
                    json!({"http.request.header.x-session-id": ["s1"], "enduser.id": "u1"}),
                )],
            ),
        ];
        let sessions = sessions_from_spans(&batch);
        assert_eq!(sessions.deltas.len(), 1);
        let delta = &sessions.deltas[0];
        assert_eq!((delta.first_seen_unix_nano, delta.last_seen_unix_nano), (90, 115));
        assert_eq!(delta.requests, 2);
        assert_eq!(delta.services, ["api", "orders"]);
        assert_eq!(delta.user_id.as_deref(), Some("u1"));
        assert_eq!(delta.user_agent, Some((UserAgentSource::Span, "curl/8".into())));
        let positions: Vec<usize> = delta.items.iter().map(|item| item.position).collect();
        assert_eq!(positions, [0, 3], "server spans are indexed, the client child is not");
        assert_eq!(sessions.correlation.len(), 1);
        assert_eq!((sessions.correlation[0].server_spans, sessions.correlation[0].with_session), (3, 2));
    }

    #[test]
    fn logs_and_exemplars_touch_their_sessions() {
        let record = |time: u64, attributes_json: Value| LogRecord {
            time_unix_nano: time,
            observed_time_unix_nano: time,
            severity_number: 9,
            severity_text: "INFO".into(),
            body: json!("hello"),
            attributes: attributes(attributes_json),
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: None,
            span_id: None,
            event_name: String::new(),
        };
        let logs = vec![group("api", vec![record(5, json!({})), record(7, json!({"baggage": "session.id=s2"}))])];
        let sessions = sessions_from_logs(&logs);
        assert_eq!(sessions.deltas.len(), 1);
        assert_eq!((sessions.deltas[0].logs, sessions.deltas[0].items[0].position), (1, 1));

        let exemplar = Exemplar {
            filtered_attributes: attributes(json!({"session.id": "s3"})),
            time_unix_nano: 11,
            value: NumberValue::Int(1),
            span_id: None,
            trace_id: None,
        };
        let point = MetricPoint {
            attributes: Attributes::default(),
            start_time_unix_nano: 0,
            time_unix_nano: 12,
            flags: 0,
            value: PointValue::Number { value: NumberValue::Int(1) },
            exemplars: vec![exemplar],
        };
        let metric = Metric {
            name: "requests".into(),
            description: String::new(),
            unit: String::new(),
            metadata: Attributes::default(),
            kind: MetricKind::Gauge,
            points: vec![point],
        };
        let sessions = sessions_from_metrics(&vec![group("api", vec![metric])]);
        assert_eq!(sessions.deltas[0].session_id, "s3");
        assert_eq!(sessions.deltas[0].services, ["api"]);
        assert!(sessions.deltas[0].items.is_empty());
    }
}
