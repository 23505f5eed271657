//! Traffic for the performance pages' tests, sent with the official OpenTelemetry SDK over
//! OTLP/HTTP protobuf: a three-service chain `web` → `cart` → `payments` with W3C trace context
//! carried between the "processes" in `traceparent` headers, a database query inside `cart`,
//! a second cheap endpoint on `web`, and memory metrics from `web`'s host.

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

use std::collections::HashMap;
use std::time::{Duration, SystemTime};

use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;

use super::TestServer;

/// Requests through the chain (and as many `GET /health` calls on `web`).
pub const REQUESTS: u64 = 30;
/// The user endpoint's operation: spaces, slashes and braces, to test URL encoding.
pub const USERS_OPERATION: &str = "GET /users/{id}";
/// The normalized query `cart` runs per request; every 10th call takes 80 ms.
pub const ORDERS_QUERY: &str = "SELECT * FROM orders WHERE id = ?";
/// What `web`'s host reports: `process.memory.usage` (256 MiB) and used memory 42 %.
pub const WEB_HOST: &str = "web-1";
pub const WEB_MEMORY_BYTES: i64 = 256 * 1024 * 1024;

/// What was sent.
pub struct Sent {
    /// Trace ids (hex) of the chain requests, in order; request `i` took `20 + 5 i` ms at `web`.
    pub trace_ids: Vec<String>,
    /// The slowest chain request's trace id (the last one, 165 ms).
    pub slowest_trace_id: String,
    /// A trace whose database call was slow (80 ms).
    pub slow_query_trace_id: String,
}

fn tracer_provider(server: &TestServer, service: &str) -> SdkTracerProvider {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]);
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", server.http_base()))
        .with_headers(headers)
        .build()
        .unwrap();
    let resource = Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attributes([
            KeyValue::new("deployment.environment.name", "production"),
            KeyValue::new("host.name", format!("{service}-1")),
        ])
        .build();
    SdkTracerProvider::builder().with_resource(resource).with_batch_exporter(exporter).build()
}

fn http_attributes(method: &'static str, route: &'static str, status: i64) -> Vec<KeyValue> {
    vec![
        KeyValue::new("http.request.method", method),
        KeyValue::new("http.route", route),
        KeyValue::new("http.response.status_code", status),
    ]
}

/// One request through the chain starting at `start`, `total_ms` long at `web`; payments
/// answers 500 when `fail`. Returns the trace id.
fn chain_request(
    providers: [&SdkTracerProvider; 3],
    start: SystemTime,
    total_ms: u64,
    fail: bool,
    query_ms: u64,
    index: u64,
) -> String {
    let [web, cart, payments] = providers;
    let at = |ms: u64| start + Duration::from_millis(ms);
    let propagator = TraceContextPropagator::new();
    let web_tracer = web.tracer("web");
    let mut attributes = http_attributes("GET", "/users/{id}", 200);
    attributes.push(KeyValue::new("url.path", format!("/users/{index}")));
    let root = web_tracer
        .span_builder(USERS_OPERATION)
        .with_kind(SpanKind::Server)
        .with_start_time(at(0))
        .with_attributes(attributes)
        .start(&web_tracer);
    let trace_id = root.span_context().trace_id().to_string();
    let root_context = Context::current_with_span(root);
    let call = web_tracer
        .span_builder("POST /cart")
        .with_kind(SpanKind::Client)
        .with_start_time(at(1))
        .start_with_context(&web_tracer, &root_context);
    let call_context = root_context.with_span(call);
    let mut headers: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&call_context, &mut headers);

    let cart_tracer = cart.tracer("cart");
    let parent = propagator.extract(&headers);
    let cart_server = cart_tracer
        .span_builder("POST /cart")
        .with_kind(SpanKind::Server)
        .with_start_time(at(2))
        .with_attributes(http_attributes("POST", "/cart", 200))
        .start_with_context(&cart_tracer, &parent);
    let cart_context = parent.with_span(cart_server);
    let mut query = cart_tracer
        .span_builder("SELECT orders")
        .with_kind(SpanKind::Client)
        .with_start_time(at(3))
        .with_attributes([
            KeyValue::new("db.system.name", "postgresql"),
            KeyValue::new("db.namespace", "shop"),
            KeyValue::new("db.query.text", format!("SELECT * FROM orders WHERE id = {index}")),
        ])
        .start_with_context(&cart_tracer, &cart_context);
    query.end_with_timestamp(at(3 + query_ms));
    let pay = cart_tracer
        .span_builder("POST /pay")
        .with_kind(SpanKind::Client)
        .with_start_time(at(4 + query_ms))
        .start_with_context(&cart_tracer, &cart_context);
    let pay_context = cart_context.with_span(pay);
    let mut pay_headers: HashMap<String, String> = HashMap::new();
    propagator.inject_context(&pay_context, &mut pay_headers);

    let payments_tracer = payments.tracer("payments");
    let payments_parent = propagator.extract(&pay_headers);
    let mut payment = payments_tracer
        .span_builder("POST /pay")
        .with_kind(SpanKind::Server)
        .with_start_time(at(5 + query_ms))
        .with_attributes(http_attributes("POST", "/pay", if fail { 500 } else { 200 }))
        .start_with_context(&payments_tracer, &payments_parent);
    if fail {
        payment.set_status(Status::error("card declined"));
    }
    let end = total_ms.max(10 + query_ms);
    payment.end_with_timestamp(at(end - 4));
    pay_context.span().end_with_timestamp(at(end - 3));
    cart_context.span().end_with_timestamp(at(end - 2));
    call_context.span().end_with_timestamp(at(end - 1));
    root_context.span().end_with_timestamp(at(end));
    trace_id
}

/// Sends [`REQUESTS`] chain requests (every 5th payment fails; request `i` takes `20 + 5 i` ms;
/// every 10th database call takes 80 ms, the others 5 ms) spread over the last 5 minutes (so
/// the health API judges them: at least 20 requests), the
/// same number of 1 ms `GET /health` calls on `web`, and `web`'s memory metrics.
pub async fn send_shop_traffic(server: &TestServer) -> Sent {
    let providers =
        [tracer_provider(server, "web"), tracer_provider(server, "cart"), tracer_provider(server, "payments")];
    let sent = tokio::task::spawn_blocking(move || {
        let now = SystemTime::now();
        let mut trace_ids = Vec::new();
        let mut slow_query_trace_id = String::new();
        for index in 0..REQUESTS {
            let start = now - Duration::from_secs(280 - index * 8);
            let query_ms = if index % 10 == 9 { 80 } else { 5 };
            let trace_id = chain_request(
                [&providers[0], &providers[1], &providers[2]],
                start,
                20 + 5 * index,
                index % 5 == 0,
                query_ms,
                index,
            );
            if query_ms == 80 {
                slow_query_trace_id.clone_from(&trace_id);
            }
            trace_ids.push(trace_id);
            let web_tracer = providers[0].tracer("web");
            let health_start = start + Duration::from_secs(5);
            let mut health = web_tracer
                .span_builder("GET /health")
                .with_kind(SpanKind::Server)
                .with_start_time(health_start)
                .with_attributes(http_attributes("GET", "/health", 200))
                .start(&web_tracer);
            health.end_with_timestamp(health_start + Duration::from_millis(1));
        }
        for provider in &providers {
            provider.force_flush().unwrap();
        }
        let slowest_trace_id = trace_ids.last().cloned().unwrap();
        Sent { trace_ids, slowest_trace_id, slow_query_trace_id }
    })
    .await
    .unwrap();
    send_web_metrics(server).await;
    sent
}

/// One export of `web`'s memory gauges from host [`WEB_HOST`].
async fn send_web_metrics(server: &TestServer) {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]);
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/metrics", server.http_base()))
        .with_headers(headers)
        .build()
        .unwrap();
    let reader = PeriodicReader::builder(exporter).with_interval(Duration::from_secs(3600)).build();
    let resource = Resource::builder_empty()
        .with_service_name("web")
        .with_attributes([KeyValue::new("host.name", WEB_HOST)])
        .build();
    let provider = SdkMeterProvider::builder().with_resource(resource).with_reader(reader).build();
    let meter = provider.meter("perf-ui");
    let _memory = meter
        .i64_observable_up_down_counter("process.memory.usage")
        .with_unit("By")
        .with_callback(|observer| observer.observe(WEB_MEMORY_BYTES, &[]))
        .build();
    let _utilization = meter
        .f64_observable_gauge("system.memory.utilization")
        .with_unit("1")
        .with_callback(|observer| {
            observer.observe(0.42, &[KeyValue::new("system.memory.state", "used")]);
            observer.observe(0.58, &[KeyValue::new("system.memory.state", "free")]);
        })
        .build();
    tokio::task::spawn_blocking(move || {
        provider.force_flush().unwrap();
        provider.shutdown().unwrap();
    })
    .await
    .unwrap();
}
