//! End to end with the official OpenTelemetry Rust SDK as the sender: traces, logs and metrics
//! over OTLP HTTP/protobuf, HTTP/JSON and gRPC, read back through the query API field by field,
//! then again after a restart.

mod common;

use std::collections::HashMap;

use common::{TestServer, flatten_spans};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{Link, Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, Value as OtelValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};

#[derive(Clone, Copy, Debug)]
enum Transport {
    HttpProtobuf,
    HttpJson,
    Grpc,
}

struct Providers {
    tracer: SdkTracerProvider,
    logger: SdkLoggerProvider,
    meter: SdkMeterProvider,
}

fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attributes([
            KeyValue::new("deployment.environment.name", "test"),
            KeyValue::new("service.version", "1.2.3"),
        ])
        .build()
}

fn providers(server: &TestServer, transport: Transport, service: &str) -> Providers {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]);
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert("authorization", format!("Bearer {}", server.ingest_key).parse().unwrap());
    let http_protocol = match transport {
        Transport::HttpJson => Protocol::HttpJson,
        _ => Protocol::HttpBinary,
    };
    let base = server.http_base();
    let (span_exporter, log_exporter, metric_exporter) = match transport {
        Transport::Grpc => (
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc_base())
                .with_metadata(metadata.clone())
                .with_compression(opentelemetry_otlp::Compression::Gzip)
                .build()
                .unwrap(),
            opentelemetry_otlp::LogExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc_base())
                .with_metadata(metadata.clone())
                .build()
                .unwrap(),
            opentelemetry_otlp::MetricExporter::builder()
                .with_tonic()
                .with_endpoint(server.grpc_base())
                .with_metadata(metadata)
                .build()
                .unwrap(),
        ),
        _ => (
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(http_protocol)
                .with_endpoint(format!("{base}/v1/traces"))
                .with_headers(headers.clone())
                .build()
                .unwrap(),
            opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(http_protocol)
                .with_endpoint(format!("{base}/v1/logs"))
                .with_headers(headers.clone())
                .build()
                .unwrap(),
            opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(http_protocol)
                .with_endpoint(format!("{base}/v1/metrics"))
                .with_headers(headers)
                .build()
                .unwrap(),
        ),
    };
    Providers {
        tracer: SdkTracerProvider::builder()
            .with_resource(resource(service))
            .with_batch_exporter(span_exporter)
            .build(),
        logger: SdkLoggerProvider::builder().with_resource(resource(service)).with_batch_exporter(log_exporter).build(),
        meter: SdkMeterProvider::builder()
            .with_resource(resource(service))
            .with_periodic_exporter(metric_exporter)
            .build(),
    }
}

/// What the test sent, to compare with what comes back.
struct Sent {
    trace_id: String,
    root_span_id: String,
    child_span_id: String,
    linked_trace_id: String,
}

fn send_telemetry(providers: &Providers) -> Sent {
    let tracer = providers
        .tracer
        .tracer_with_scope(opentelemetry::InstrumentationScope::builder("e2e-scope").with_version("0.9.0").build());
    // A separate trace to link to.
    let linked = tracer.span_builder("linked").start(&tracer);
    let linked_context = linked.span_context().clone();
    drop(linked);

    let mut root = tracer
        .span_builder("GET /orders/{id}")
        .with_kind(SpanKind::Server)
        .with_attributes([
            KeyValue::new("http.request.method", "GET"),
            KeyValue::new("http.route", "/orders/{id}"),
            KeyValue::new("http.response.status_code", 200i64),
            KeyValue::new("sample.ratio", 0.25f64),
            KeyValue::new("cache.hit", true),
            KeyValue::new("order.items", OtelValue::Array(Array::I64(vec![3, 5, 8]))),
        ])
        .start(&tracer);
    root.add_event("cache.lookup", vec![KeyValue::new("cache.key", "order:42")]);
    let root_context = Context::current_with_span(root);
    let mut child = tracer
        .span_builder("SELECT orders")
        .with_kind(SpanKind::Client)
        .with_attributes([KeyValue::new("db.system.name", "postgresql")])
        .with_links(vec![Link::new(linked_context.clone(), vec![KeyValue::new("link.reason", "retry-of")], 0)])
        .start_with_context(&tracer, &root_context);
    child.add_event(
        "exception",
        vec![KeyValue::new("exception.type", "TimeoutError"), KeyValue::new("exception.message", "query timed out")],
    );
    child.set_status(Status::error("query timed out"));
    let sent = Sent {
        trace_id: child.span_context().trace_id().to_string(),
        root_span_id: root_context.span().span_context().span_id().to_string(),
        child_span_id: child.span_context().span_id().to_string(),
        linked_trace_id: linked_context.trace_id().to_string(),
    };
    child.end();

    // A log record inside the child span's trace context.
    let logger = providers.logger.logger("e2e-logger");
    let mut record = logger.create_log_record();
    record.set_body(AnyValue::from("order 42 lookup failed"));
    record.set_severity_number(Severity::Error);
    record.set_severity_text("ERROR");
    record.add_attribute("order.id", 42i64);
    record.set_event_name("order.lookup_failed");
    record.set_trace_context(
        opentelemetry::trace::TraceId::from_hex(&sent.trace_id).unwrap(),
        opentelemetry::trace::SpanId::from_hex(&sent.child_span_id).unwrap(),
        None,
    );
    logger.emit(record);
    root_context.span().end();

    let meter = providers.meter.meter("e2e-meter");
    let counter = meter.u64_counter("orders.processed").with_unit("{order}").build();
    counter.add(5, &[KeyValue::new("status", "ok")]);
    counter.add(7, &[KeyValue::new("status", "ok")]);
    let histogram = meter.f64_histogram("orders.duration").with_unit("s").build();
    for value in [0.01, 0.02, 0.3] {
        histogram.record(value, &[]);
    }
    let gauge = meter.i64_gauge("orders.queue_depth").build();
    gauge.record(17, &[]);
    sent
}

async fn flush(providers: Providers) {
    tokio::task::spawn_blocking(move || {
        providers.tracer.shutdown().expect("span export succeeds");
        providers.logger.shutdown().expect("log export succeeds");
        providers.meter.shutdown().expect("metric export succeeds");
    })
    .await
    .unwrap();
}

fn span_by_name<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans.iter().find(|span| span["name"] == name).unwrap_or_else(|| panic!("span {name} missing in {spans:?}"))
}

async fn check_trace(server: &TestServer, sent: &Sent, service: &str) -> Value {
    let trace = server.api_ok(&format!("/api/v1/projects/default/traces/{}", sent.trace_id)).await;
    assert_eq!(trace["trace_id"], sent.trace_id);
    let roots = trace["roots"].as_array().unwrap();
    assert_eq!(roots.len(), 1, "one root: {trace}");
    let spans = flatten_spans(&trace);
    assert_eq!(spans.len(), 2);

    let root = span_by_name(&spans, "GET /orders/{id}");
    assert_eq!(root["span_id"], sent.root_span_id);
    assert_eq!(root["parent_span_id"], Value::Null);
    assert_eq!(root["kind"], 2);
    assert_eq!(root["attributes"]["http.request.method"], "GET");
    assert_eq!(root["attributes"]["http.response.status_code"], 200);
    assert_eq!(root["attributes"]["sample.ratio"], 0.25);
    assert_eq!(root["attributes"]["cache.hit"], true);
    assert_eq!(root["attributes"]["order.items"], json!([3, 5, 8]));
    assert_eq!(root["events"][0]["name"], "cache.lookup");
    assert_eq!(root["events"][0]["attributes"]["cache.key"], "order:42");
    assert_eq!(root["resource"]["attributes"]["service.name"], service);
    assert_eq!(root["resource"]["attributes"]["service.version"], "1.2.3");
    assert_eq!(root["scope"]["name"], "e2e-scope");
    assert_eq!(root["scope"]["version"], "0.9.0");
    assert!(root["end_time_unix_nano"].as_u64().unwrap() >= root["start_time_unix_nano"].as_u64().unwrap());

    let child = &root["children"][0];
    assert_eq!(child["name"], "SELECT orders");
    assert_eq!(child["span_id"], sent.child_span_id);
    assert_eq!(child["parent_span_id"], sent.root_span_id);
    assert_eq!(child["kind"], 3);
    assert_eq!(child["status"]["code"], 2);
    assert_eq!(child["status"]["message"], "query timed out");
    assert_eq!(child["links"][0]["trace_id"], sent.linked_trace_id);
    assert_eq!(child["links"][0]["attributes"]["link.reason"], "retry-of");
    assert_eq!(child["events"][0]["name"], "exception");
    assert_eq!(child["events"][0]["attributes"]["exception.type"], "TimeoutError");
    trace
}

async fn check_search_logs_metrics(server: &TestServer, sent: &Sent, service: &str) {
    let found = server.api_ok(&format!("/api/v1/projects/default/traces?service={service}&status=error")).await;
    let summary = found["traces"]
        .as_array()
        .unwrap()
        .iter()
        .find(|summary| summary["trace_id"] == sent.trace_id)
        .unwrap_or_else(|| panic!("trace missing from search: {found}"));
    assert_eq!(summary["span_count"], 2);
    assert_eq!(summary["root_span_name"], "GET /orders/{id}");
    assert_eq!(summary["has_error"], true);

    let by_attribute = server.api_ok("/api/v1/projects/default/traces?attr.http.route=/orders/{id}").await;
    assert!(by_attribute["traces"].as_array().unwrap().iter().any(|summary| summary["trace_id"] == sent.trace_id));

    let logs = server.api_ok(&format!("/api/v1/projects/default/logs?trace_id={}", sent.trace_id)).await;
    let log = &logs["logs"][0];
    assert_eq!(log["body"], "order 42 lookup failed");
    assert_eq!(log["severity_number"], 17);
    assert_eq!(log["severity_text"], "ERROR");
    assert_eq!(log["attributes"]["order.id"], 42);
    assert_eq!(log["event_name"], "order.lookup_failed");
    assert_eq!(log["span_id"], sent.child_span_id);
    assert_eq!(log["resource"]["attributes"]["service.name"], service);
    let searched = server.api_ok("/api/v1/projects/default/logs?q=LOOKUP%20FAILED&severity_min=error").await;
    assert_eq!(searched["logs"].as_array().unwrap().len(), 1);

    let metrics = server.api_ok("/api/v1/projects/default/metrics").await;
    let by_name = |name: &str| -> Value {
        metrics["metrics"]
            .as_array()
            .unwrap()
            .iter()
            .find(|metric| metric["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("metric {name} missing: {metrics}"))
    };
    assert_eq!(by_name("orders.processed")["type"], "sum");
    assert_eq!(by_name("orders.processed")["is_monotonic"], true);
    assert_eq!(by_name("orders.processed")["unit"], "{order}");
    assert_eq!(by_name("orders.duration")["type"], "histogram");
    assert_eq!(by_name("orders.queue_depth")["type"], "gauge");

    let series = server.api_ok("/api/v1/projects/default/metrics/orders.queue_depth/series?step=60").await;
    let values: Vec<f64> =
        series["series"][0]["points"].as_array().unwrap().iter().filter_map(|point| point["value"].as_f64()).collect();
    assert_eq!(values, vec![17.0], "{series}");
    let histogram = server.api_ok("/api/v1/projects/default/metrics/orders.duration/series?step=3600").await;
    let counts: u64 =
        histogram["series"][0]["points"].as_array().unwrap().iter().filter_map(|point| point["count"].as_u64()).sum();
    assert_eq!(counts, 3, "{histogram}");

    let services = server.api_ok("/api/v1/projects/default/services").await;
    let entry = services["services"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["service_name"] == service)
        .unwrap_or_else(|| panic!("service missing: {services}"))
        .clone();
    assert_eq!(entry["span_count"], 3, "root, child and the linked span");
    assert_eq!(entry["log_count"], 1);
}

async fn round_trip(transport: Transport) {
    let service = format!("e2e-{transport:?}").to_lowercase();
    let mut server = TestServer::start().await;
    let providers = providers(&server, transport, &service);
    let sent = send_telemetry(&providers);
    flush(providers).await;

    let before = check_trace(&server, &sent, &service).await;
    check_search_logs_metrics(&server, &sent, &service).await;

    server.restart().await;
    let after = check_trace(&server, &sent, &service).await;
    assert_eq!(before, after, "the trace reads back identically after a restart");
    check_search_logs_metrics(&server, &sent, &service).await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_sdk_over_http_protobuf() {
    round_trip(Transport::HttpProtobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_sdk_over_http_json() {
    round_trip(Transport::HttpJson).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn official_sdk_over_grpc() {
    round_trip(Transport::Grpc).await;
}
