//! Realistic OTLP trace exports for the ingest benchmark, generated and protobuf-encoded before
//! anything is timed so the clients only replay bytes.
//!
//! Each request carries one resource (a service with the attributes an SDK sends) and traces of
//! a fixed number of spans: an HTTP server root span and HTTP client children, each with the
//! semantic-convention attributes instrumentation libraries set, current timestamps and about 1%
//! of spans in status ERROR.

use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::load::Workload;

/// Share of spans with status ERROR.
const ERROR_RATE: f64 = 0.01;

/// W3C sampled flag plus OTLP's "has is_remote" bit, as the OpenTelemetry SDKs send them.
const SPAN_FLAGS_SAMPLED_LOCAL: u32 = 0x101;

const SERVICES: &[&str] = &["frontend", "checkout", "cart", "payment", "inventory", "shipping"];

/// (route template, a concrete path) for server root spans.
const ROUTES: &[(&str, &str)] = &[
    ("/api/orders/{order_id}", "/api/orders/8c41f2"),
    ("/api/cart", "/api/cart"),
    ("/api/products/{product_id}", "/api/products/OLJCESPC7Z"),
    ("/api/checkout", "/api/checkout"),
    ("/api/users/{user_id}/addresses", "/api/users/42/addresses"),
    ("/health", "/health"),
];

/// (method, peer host, path) for HTTP client child spans.
const DOWNSTREAM_CALLS: &[(&str, &str, &str)] = &[
    ("GET", "inventory.internal", "/v1/stock/OLJCESPC7Z"),
    ("POST", "payment.internal", "/v1/charges"),
    ("GET", "cart.internal", "/v1/carts/42"),
    ("POST", "shipping.internal", "/v1/quotes"),
    ("GET", "currency.internal", "/v1/convert"),
];

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct WorkloadShape {
    /// Requests (distinct exports) to generate.
    pub requests: usize,
    /// Spans in each request.
    pub spans_per_request: usize,
    /// Spans in each trace (the last trace of a request may be shorter).
    pub spans_per_trace: usize,
}

/// Generates and encodes `shape.requests` requests. `seed` makes the ids reproducible and lets
/// each benchmark phase use its own ids (a fresh seed gives fresh trace ids).
pub fn generate(shape: WorkloadShape, seed: u64) -> Workload {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut bodies = Vec::with_capacity(shape.requests);
    let mut spans_per_body = Vec::with_capacity(shape.requests);
    for request_index in 0..shape.requests {
        let request = generate_request(&mut rng, shape, request_index);
        spans_per_body.push(count_spans(&request));
        bodies.push(Bytes::from(request.encode_to_vec()));
    }
    Workload { bodies, items_per_body: spans_per_body }
}

fn count_spans(request: &ExportTraceServiceRequest) -> u64 {
    let mut spans = 0u64;
    for resource_spans in &request.resource_spans {
        for scope_spans in &resource_spans.scope_spans {
            spans += scope_spans.spans.len() as u64;
        }
    }
    spans
}

fn now_unix_nano() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_nanos() as u64).unwrap_or(1)
}

fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(Value::StringValue(value.to_owned())) }),
        ..Default::default()
    }
}

fn int_attribute(key: &str, value: i64) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(Value::IntValue(value)) }),
        ..Default::default()
    }
}

fn service_resource(service_name: &str, request_index: usize) -> Resource {
    Resource {
        attributes: vec![
            string_attribute("service.name", service_name),
            string_attribute("service.version", "1.42.0"),
            string_attribute("deployment.environment.name", "production"),
            string_attribute("host.name", &format!("{service_name}-{}", request_index % 3)),
            string_attribute("telemetry.sdk.name", "opentelemetry"),
            string_attribute("telemetry.sdk.language", "rust"),
            string_attribute("telemetry.sdk.version", "0.33.1"),
        ],
        ..Default::default()
    }
}

fn random_span_id(rng: &mut StdRng) -> Vec<u8> {
    // All-zero ids are invalid in OTLP; a random 64-bit value is zero with negligible odds,
    // but the loop keeps the generator honest.
    loop {
        let id: [u8; 8] = rng.random();
        if id != [0u8; 8] {
            return id.to_vec();
        }
    }
}

fn generate_request(rng: &mut StdRng, shape: WorkloadShape, request_index: usize) -> ExportTraceServiceRequest {
    let service_name = SERVICES[request_index % SERVICES.len()];
    let mut spans = Vec::with_capacity(shape.spans_per_request);
    let spans_per_trace = shape.spans_per_trace.max(1);
    while spans.len() < shape.spans_per_request {
        let trace_len = spans_per_trace.min(shape.spans_per_request - spans.len());
        push_trace(rng, &mut spans, trace_len, service_name);
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(service_resource(service_name, request_index)),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "opentelemetry-instrumentation-http".to_owned(),
                    version: "0.33.0".to_owned(),
                    ..Default::default()
                }),
                spans,
                schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
            }],
            schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
        }],
    }
}

fn error_status(rng: &mut StdRng) -> (Option<Status>, i64) {
    if rng.random_bool(ERROR_RATE) {
        let status = Status { message: "upstream returned 500".to_owned(), code: StatusCode::Error as i32 };
        (Some(status), 500)
    } else {
        (None, 200)
    }
}

/// Appends one trace of `trace_len` spans: a server root and client children nested inside it,
/// each child's parent being the root or an earlier child.
fn push_trace(rng: &mut StdRng, spans: &mut Vec<Span>, trace_len: usize, service_name: &str) {
    let trace_id: [u8; 16] = rng.random();
    // Ended within the last second, lasting 5–250 ms, as a batch exporter would see them.
    let root_duration_nano = rng.random_range(5_000_000..250_000_000u64);
    let root_end = now_unix_nano() - rng.random_range(0..1_000_000_000u64);
    let root_start = root_end - root_duration_nano;
    let (route, path) = ROUTES[rng.random_range(0..ROUTES.len())];
    let (root_status, root_http_status) = error_status(rng);
    let root_span_id = random_span_id(rng);
    let mut trace_span_ids = vec![root_span_id.clone()];
    spans.push(Span {
        trace_id: trace_id.to_vec(),
        span_id: root_span_id,
        flags: SPAN_FLAGS_SAMPLED_LOCAL,
        name: format!("GET {route}"),
        kind: SpanKind::Server as i32,
        start_time_unix_nano: root_start,
        end_time_unix_nano: root_end,
        attributes: vec![
            string_attribute("http.request.method", "GET"),
            string_attribute("http.route", route),
            string_attribute("url.path", path),
            string_attribute("url.scheme", "https"),
            int_attribute("http.response.status_code", root_http_status),
            string_attribute("server.address", &format!("{service_name}.example.com")),
            string_attribute("user_agent.original", "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"),
        ],
        status: root_status,
        ..Default::default()
    });
    for _ in 1..trace_len {
        let parent_span_id = trace_span_ids[rng.random_range(0..trace_span_ids.len())].clone();
        let span_id = random_span_id(rng);
        trace_span_ids.push(span_id.clone());
        let start = root_start + rng.random_range(0..root_duration_nano / 2);
        let end = start + rng.random_range(100_000..root_duration_nano / 2);
        let (method, host, call_path) = DOWNSTREAM_CALLS[rng.random_range(0..DOWNSTREAM_CALLS.len())];
        let (status, http_status) = error_status(rng);
        spans.push(Span {
            trace_id: trace_id.to_vec(),
            span_id,
            parent_span_id,
            flags: SPAN_FLAGS_SAMPLED_LOCAL,
            name: method.to_owned(),
            kind: SpanKind::Client as i32,
            start_time_unix_nano: start,
            end_time_unix_nano: end,
            attributes: vec![
                string_attribute("http.request.method", method),
                string_attribute("server.address", host),
                int_attribute("server.port", 8080),
                string_attribute("url.full", &format!("http://{host}:8080{call_path}")),
                int_attribute("http.response.status_code", http_status),
                string_attribute("network.protocol.version", "1.1"),
            ],
            status,
            ..Default::default()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_span_passes_validation_and_traces_have_the_asked_size() {
        let shape = WorkloadShape { requests: 3, spans_per_request: 100, spans_per_trace: 8 };
        let workload = generate(shape, 7);
        assert_eq!(workload.total_items(), 300);
        for body in &workload.bodies {
            let request = ExportTraceServiceRequest::decode(&body[..]).expect("decodes");
            let converted = sightline_model::otlp::convert_traces(&request);
            assert_eq!(converted.rejected, 0);
            let spans = &request.resource_spans[0].scope_spans[0].spans;
            let mut traces = std::collections::HashMap::new();
            for span in spans {
                *traces.entry(span.trace_id.clone()).or_insert(0) += 1;
            }
            // 100 spans in traces of 8: twelve full traces and one of 4.
            assert_eq!(traces.len(), 13);
            let roots = spans.iter().filter(|span| span.parent_span_id.is_empty()).count();
            assert_eq!(roots, 13);
        }
    }

    #[test]
    fn different_seeds_give_different_trace_ids() {
        let shape = WorkloadShape { requests: 1, spans_per_request: 8, spans_per_trace: 8 };
        assert_ne!(generate(shape, 1).bodies[0], generate(shape, 2).bodies[0]);
    }
}
