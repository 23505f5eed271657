//! Derives endpoint RED rollup deltas (requests, errors, status codes, duration sketch, slowest
//! requests) per minute from a batch of spans; the store merges them into the stored rows at
//! commit (`store/sqlite/rollups.rs`).
//!
//! Which spans count (OTel semconv HTTP spans, `docs/http/http-spans.md`): SERVER spans, and
//! root spans of kind UNSPECIFIED or INTERNAL with an HTTP method attribute (instrumentations
//! that leave the kind unset); a root CLIENT span (an outgoing call) never counts.
//!
//! The operation name, first rule that applies:
//! 1. method + ` ` + route, the method from `http.request.method` (old semconv `http.method`)
//!    and the route from `http.route`;
//! 2. without `http.route`: method + ` ` + the normalized path of `url.path` (old `http.target`
//!    without its query and fragment);
//! 3. without a method but with a route or path: the route or normalized path alone;
//! 4. otherwise the span name, whose words starting with `/` are normalized like paths.
//!
//! Path normalization ([`normalize_path`]) replaces a segment that is all ASCII digits by
//! `{id}`, a UUID (8-4-4-4-12 hex digits) by `{uuid}`, and a segment of 16 or more hex digits
//! (object ids, hashes) by `{hex}`, so raw URLs never reach the operation name. Other segments
//! are kept as they are.

use std::collections::HashMap;

use serde_json::Value;
use sightline_model::span::{kind, status_code};
use sightline_model::{Attributes, Batch, Span};

use crate::store::rollups::{
    EndpointKey, EndpointRollup, MINUTE_SECONDS, SLOWEST_KEPT, SlowRequest, StatusClass, merge_slowest,
};

/// ns per rollup minute.
pub(crate) const NANOS_PER_MINUTE: u64 = MINUTE_SECONDS as u64 * 1_000_000_000;

/// The operation of an endpoint span and its parts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Operation {
    /// The name rollups are keyed by, e.g. `GET /users/{id}`.
    pub name: String,
    /// HTTP method; empty when none was sent.
    pub method: String,
    /// Route template or normalized path; empty when only the span name was usable.
    pub route: String,
}

/// True for spans that are requests to the service (see the module docs).
pub fn is_endpoint_span(span: &Span) -> bool {
    let kind_unset = matches!(span.kind, kind::UNSPECIFIED | kind::INTERNAL);
    span.kind == kind::SERVER
        || (kind_unset && span.parent_span_id.is_none() && http_method(&span.attributes).is_some())
}

pub(crate) fn non_empty<'a>(attributes: &'a Attributes, key: &str) -> Option<&'a str> {
    attributes.get_str(key).map(str::trim).filter(|text| !text.is_empty())
}

fn http_method(attributes: &Attributes) -> Option<&str> {
    non_empty(attributes, "http.request.method").or_else(|| non_empty(attributes, "http.method"))
}

/// The operation of an endpoint span (rules in the module docs).
pub fn operation_of(span: &Span) -> Operation {
    let attributes = &span.attributes;
    let method = http_method(attributes).unwrap_or("").to_owned();
    let route = non_empty(attributes, "http.route")
        .map(str::to_owned)
        .or_else(|| {
            non_empty(attributes, "url.path")
                .or_else(|| non_empty(attributes, "http.target"))
                .map(|target| normalize_path(path_part(target)))
        })
        .unwrap_or_default();
    let name = match (method.is_empty(), route.is_empty()) {
        (false, false) => format!("{method} {route}"),
        (true, false) => route.clone(),
        _ => normalize_span_name(&span.name),
    };
    Operation { name, method, route }
}

/// The path of an HTTP target: without `?query` and `#fragment`.
fn path_part(target: &str) -> &str {
    let end = target.find(['?', '#']).unwrap_or(target.len());
    &target[..end]
}

fn normalize_span_name(name: &str) -> String {
    name.split(' ')
        .map(|word| if word.starts_with('/') { normalize_path(path_part(word)) } else { word.to_owned() })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Replaces id-like path segments by placeholders: digits → `{id}`, UUID → `{uuid}`, 16+ hex
/// digits → `{hex}` (see the module docs).
pub fn normalize_path(path: &str) -> String {
    path.split('/')
        .map(|segment| {
            if !segment.is_empty() && segment.bytes().all(|byte| byte.is_ascii_digit()) {
                "{id}"
            } else if is_uuid(segment) {
                "{uuid}"
            } else if segment.len() >= 16 && segment.bytes().all(|byte| byte.is_ascii_hexdigit()) {
                "{hex}"
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

fn is_uuid(segment: &str) -> bool {
    let groups: Vec<&str> = segment.split('-').collect();
    groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(group, length)| group.len() == length && group.bytes().all(|byte| byte.is_ascii_hexdigit()))
}

/// `http.response.status_code` (old `http.status_code`) as an integer or a numeric string.
pub fn status_code_of(attributes: &Attributes) -> Option<u16> {
    let value = attributes.0.get("http.response.status_code").or_else(|| attributes.0.get("http.status_code"))?;
    match value {
        Value::Number(number) => number.as_u64().and_then(|code| u16::try_from(code).ok()),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}

/// `deployment.environment.name`, else the old `deployment.environment`; empty when neither.
pub(crate) fn environment_of(resource_attributes: &Attributes) -> &str {
    non_empty(resource_attributes, "deployment.environment.name")
        .or_else(|| non_empty(resource_attributes, "deployment.environment"))
        .unwrap_or("")
}

/// Start of the rollup minute the span started in, ns.
pub(crate) fn minute_of(span: &Span) -> u64 {
    span.start_time_unix_nano / NANOS_PER_MINUTE * NANOS_PER_MINUTE
}

/// The span as a slow-request exemplar (a trace link).
pub(crate) fn slow_request_of(span: &Span) -> SlowRequest {
    SlowRequest {
        trace_id: span.trace_id,
        span_id: span.span_id,
        duration_nanos: span.duration_nanos(),
        start_time_unix_nano: span.start_time_unix_nano,
    }
}

/// One delta per (service, environment, operation, status class, minute of the span start)
/// present in the batch.
pub fn rollups_from_spans(batch: &Batch<Span>) -> Vec<EndpointRollup> {
    let mut index_by_key: HashMap<(EndpointKey, u64), usize> = HashMap::new();
    let mut deltas: Vec<EndpointRollup> = Vec::new();
    for resource_group in batch {
        let service = resource_group.resource.service_name();
        let environment = environment_of(&resource_group.resource.attributes);
        for scope_group in &resource_group.scopes {
            for span in scope_group.items.iter().filter(|span| is_endpoint_span(span)) {
                let operation = operation_of(span);
                let status = status_code_of(&span.attributes);
                let key = EndpointKey {
                    service_name: service.to_owned(),
                    environment: environment.to_owned(),
                    operation: operation.name,
                    method: operation.method,
                    route: operation.route,
                    status_class: StatusClass::of(status),
                };
                let minute = minute_of(span);
                let index = *index_by_key.entry((key, minute)).or_insert_with_key(|(key, minute)| {
                    deltas.push(EndpointRollup::empty(key.clone(), *minute, MINUTE_SECONDS));
                    deltas.len() - 1
                });
                let delta = &mut deltas[index];
                let duration_nanos = span.duration_nanos();
                delta.requests += 1;
                // Semconv: for SERVER spans a 5xx is an error, a 4xx is not (the client's fault).
                let is_error = span.status_code == status_code::ERROR || status.is_some_and(|code| code >= 500);
                delta.errors += u64::from(is_error);
                if let Some(code) = status {
                    *delta.status_codes.entry(code).or_default() += 1;
                }
                delta.durations.add_nanos(duration_nanos);
                let slowest_kept = delta.slowest.last().map_or(0, |slow| slow.duration_nanos);
                if delta.slowest.len() < SLOWEST_KEPT || duration_nanos > slowest_kept {
                    merge_slowest(&mut delta.slowest, &[slow_request_of(span)], SLOWEST_KEPT);
                }
            }
        }
    }
    deltas
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::{Resource, ResourceGroup, Scope, ScopeGroup, SpanId, TraceId};

    use super::*;

    fn span(name: &str, span_kind: i32, root: bool, attributes: Value) -> Span {
        Span {
            trace_id: TraceId([1; 16]),
            span_id: SpanId([2; 8]),
            parent_span_id: if root { None } else { Some(SpanId([3; 8])) },
            trace_state: String::new(),
            flags: 0,
            name: name.into(),
            kind: span_kind,
            start_time_unix_nano: 120_000_000_000 + 5,
            end_time_unix_nano: 120_000_000_000 + 5 + 2_000_000,
            attributes: match attributes {
                Value::Object(map) => Attributes(map),
                _ => Attributes::default(),
            },
            dropped_attributes_count: 0,
            events: vec![],
            dropped_events_count: 0,
            links: vec![],
            dropped_links_count: 0,
            status_code: 0,
            status_message: String::new(),
        }
    }

    fn name_of(attributes: Value, span_name: &str) -> String {
        operation_of(&span(span_name, kind::SERVER, false, attributes)).name
    }

    #[test]
    fn operations_prefer_the_route_and_fall_back_through_old_semconv_to_the_name() {
        assert_eq!(
            name_of(json!({"http.request.method": "GET", "http.route": "/users/{id}", "url.path": "/users/7"}), "x"),
            "GET /users/{id}"
        );
        // Old semconv throughout.
        assert_eq!(
            name_of(json!({"http.method": "POST", "http.target": "/orders/42?x=1#top"}), "x"),
            "POST /orders/{id}"
        );
        // Mixed: new method, old target; old method, new route.
        assert_eq!(name_of(json!({"http.request.method": "PUT", "http.target": "/a/12"}), "x"), "PUT /a/{id}");
        assert_eq!(name_of(json!({"http.method": "GET", "http.route": "/health"}), "x"), "GET /health");
        // A new attribute wins over the old one when both are present.
        assert_eq!(
            name_of(json!({"http.request.method": "GET", "http.method": "POST", "http.route": "/r"}), "x"),
            "GET /r"
        );
        assert_eq!(name_of(json!({"http.route": "/only/route"}), "x"), "/only/route");
        assert_eq!(name_of(json!({"http.request.method": "GET"}), "GET"), "GET");
        assert_eq!(name_of(json!({}), "GET /files/0123456789abcdef0123"), "GET /files/{hex}");
        let operation =
            operation_of(&span("x", kind::SERVER, false, json!({"http.method": "GET", "http.target": "/7"})));
        assert_eq!((operation.method.as_str(), operation.route.as_str()), ("GET", "/{id}"));
    }

    #[test]
    fn paths_lose_numeric_uuid_and_long_hex_segments_only() {
        assert_eq!(normalize_path("/users/123/orders"), "/users/{id}/orders");
        assert_eq!(normalize_path("/u/9b2e4c1a-0f3d-4e5b-8a7c-112233445566/"), "/u/{uuid}/");
        assert_eq!(normalize_path("/blobs/DEADBEEFDEADBEEF"), "/blobs/{hex}");
        // Short hex, words and versions stay.
        assert_eq!(normalize_path("/v2/cafe/abc123/settings"), "/v2/cafe/abc123/settings");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path(""), "");
    }

    #[test]
    fn status_codes_come_as_integers_or_strings_under_either_name() {
        assert_eq!(
            status_code_of(&Attributes(
                json!({"http.response.status_code": 503}).as_object().cloned().unwrap_or_default()
            )),
            Some(503)
        );
        assert_eq!(
            status_code_of(&Attributes(json!({"http.status_code": "404"}).as_object().cloned().unwrap_or_default())),
            Some(404)
        );
        assert_eq!(
            status_code_of(&Attributes(json!({"http.status_code": -1}).as_object().cloned().unwrap_or_default())),
            None
        );
    }

    #[test]
    fn deltas_group_by_endpoint_class_and_minute_and_count_errors() {
        let mut ok = span(
            "GET /a",
            kind::SERVER,
            false,
            json!({"http.request.method": "GET", "http.route": "/a", "http.response.status_code": 200}),
        );
        let mut failed = ok.clone();
        failed.status_code = status_code::ERROR;
        failed.span_id = SpanId([9; 8]);
        failed.end_time_unix_nano += 8_000_000;
        let server_error = span(
            "GET /a",
            kind::SERVER,
            false,
            json!({"http.method": "GET", "http.route": "/a", "http.status_code": 502}),
        );
        let client = span("GET", kind::CLIENT, true, json!({"http.request.method": "GET"}));
        let root_without_kind =
            span("GET", kind::UNSPECIFIED, true, json!({"http.method": "GET", "http.target": "/b/5"}));
        let mut next_minute = ok.clone();
        next_minute.start_time_unix_nano += 60_000_000_000;
        next_minute.end_time_unix_nano += 60_000_000_000;
        ok.span_id = SpanId([4; 8]);
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), json!("shop"));
        resource.attributes.0.insert("deployment.environment".into(), json!("prod"));
        let batch = vec![ResourceGroup {
            resource,
            scopes: vec![ScopeGroup {
                scope: Scope::default(),
                items: vec![ok, failed, server_error, client, root_without_kind, next_minute],
            }],
        }];
        let deltas = rollups_from_spans(&batch);
        let summary: Vec<(&str, &str, u64, u64, u64)> = deltas
            .iter()
            .map(|delta| {
                (
                    delta.key.operation.as_str(),
                    delta.key.status_class.as_str(),
                    delta.bucket_start_unix_nano / 60_000_000_000,
                    delta.requests,
                    delta.errors,
                )
            })
            .collect();
        assert_eq!(
            summary,
            [
                ("GET /a", "2xx", 2, 2, 1),
                ("GET /a", "5xx", 2, 1, 1),
                ("GET /b/{id}", "unknown", 2, 1, 0),
                ("GET /a", "2xx", 3, 1, 0)
            ]
        );
        assert_eq!(deltas[0].key.environment, "prod", "old semconv environment");
        assert_eq!(deltas[0].durations.count(), 2);
        assert_eq!(deltas[0].slowest[0].duration_nanos, 10_000_000, "the ERROR span was slowest");
        assert_eq!(deltas[0].status_codes.get(&200), Some(&2));
    }
}
