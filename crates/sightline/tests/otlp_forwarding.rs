//! OTLP forwarding end to end: the official OpenTelemetry SDK sends to Sightline A, which
//! forwards to Sightline B over OTLP/HTTP or OTLP/gRPC; B's query API shows what arrived. Also:
//! requests accepted while the destination is down survive a restart of A and arrive once.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::{TestServer, flatten_spans};
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sightline_server::Config;
use sightline_server::exporters::Secret;
use sightline_server::exporters::otlp::{OtlpDestinationConfig, OtlpProtocol};
use sightline_server::server::OTLP_DESTINATION_NAME;

/// Upper bound for anything asynchronous to show up (polled, not slept).
const DEADLINE: Duration = Duration::from_secs(30);

fn forward_to(endpoint: String, protocol: OtlpProtocol, key: &str) -> impl FnOnce(&mut Config) {
    let key = key.to_owned();
    move |config: &mut Config| {
        let mut destination = OtlpDestinationConfig::new(endpoint, protocol);
        destination.headers.insert("authorization".into(), Secret::new(format!("Bearer {key}")));
        config.forward_otlp = Some(destination);
    }
}

fn resource(service: &str) -> Resource {
    Resource::builder_empty().with_service_name(service.to_owned()).build()
}

/// Sends `traces` traces of two spans each and one log line per trace to `server` with the
/// official SDK over OTLP/HTTP protobuf; returns the trace ids (hex). Returns after the SDK's
/// flush, i.e. after `server` acknowledged (committed) everything.
fn send_with_sdk(server: &TestServer, service: &str, traces: usize) -> Vec<String> {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]);
    let base = server.http_base();
    let span_exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_headers(headers.clone())
        .build()
        .unwrap();
    let log_exporter = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/logs"))
        .with_headers(headers)
        .build()
        .unwrap();
    let tracer_provider =
        SdkTracerProvider::builder().with_resource(resource(service)).with_batch_exporter(span_exporter).build();
    let logger_provider =
        SdkLoggerProvider::builder().with_resource(resource(service)).with_batch_exporter(log_exporter).build();
    let tracer = tracer_provider.tracer("forwarding-test");
    let logger = logger_provider.logger("forwarding-test");
    let mut trace_ids = Vec::new();
    for index in 0..traces {
        let root = tracer.start(format!("GET /orders/{index}"));
        let context = Context::current_with_span(root);
        let trace_id = context.span().span_context().trace_id();
        let mut child = tracer.start_with_context("SELECT orders", &context);
        child.set_attribute(KeyValue::new("db.system.name", "postgresql"));
        child.end();
        let mut record = logger.create_log_record();
        record.set_body(format!("order {index} loaded").into());
        record.set_severity_number(Severity::Info);
        record.set_trace_context(trace_id, context.span().span_context().span_id(), None);
        logger.emit(record);
        context.span().end();
        trace_ids.push(trace_id.to_string());
    }
    tracer_provider.force_flush().unwrap();
    logger_provider.force_flush().unwrap();
    tracer_provider.shutdown().unwrap();
    logger_provider.shutdown().unwrap();
    trace_ids
}

/// Polls `server` until the trace is there with `spans` spans, or fails at the deadline.
async fn wait_for_trace(server: &TestServer, trace_id: &str, spans: usize) {
    let started = Instant::now();
    loop {
        let (status, body) = server.api_get(&format!("/api/v1/projects/default/traces/{trace_id}")).await;
        if status == 200 {
            let count = body["span_count"].as_u64().unwrap_or(0) as usize;
            let in_tree = flatten_spans(&body).len();
            assert_eq!(in_tree, count, "the tree holds every span");
            if count >= spans {
                assert_eq!(count, spans, "trace {trace_id} must hold each forwarded span once: {body}");
                return;
            }
        }
        assert!(started.elapsed() < DEADLINE, "trace {trace_id} did not arrive (last answer {status}: {body})");
        tokio::task::yield_now().await;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn log_count(server: &TestServer, text: &str) -> usize {
    let body = server.api_ok(&format!("/api/v1/projects/default/logs?q={text}&limit=100")).await;
    body["logs"].as_array().map_or(0, Vec::len)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sdk_telemetry_is_forwarded_to_another_sightline_over_http_and_grpc() {
    let destination = TestServer::start().await;
    for (protocol, address) in
        [(OtlpProtocol::HttpProtobuf, destination.http_addr), (OtlpProtocol::Grpc, destination.grpc_addr)]
    {
        let service = format!("shop-{protocol:?}").to_lowercase();
        let source =
            TestServer::start_with(forward_to(format!("http://{address}"), protocol, &destination.ingest_key)).await;
        let trace_ids = tokio::task::block_in_place(|| send_with_sdk(&source, &service, 3));
        for trace_id in &trace_ids {
            wait_for_trace(&source, trace_id, 2).await;
            wait_for_trace(&destination, trace_id, 2).await;
        }
        let started = Instant::now();
        while log_count(&destination, "loaded").await
            < trace_ids.len() * (1 + (protocol == OtlpProtocol::Grpc) as usize)
        {
            assert!(started.elapsed() < DEADLINE, "{protocol:?}: forwarded logs did not arrive");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let outbox = source.server.as_ref().unwrap().store.otlp_outbox_stats(OTLP_DESTINATION_NAME).unwrap();
        assert_eq!(outbox.dead_letters, 0, "{protocol:?}");
        source.stop().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_queued_while_the_destination_is_down_arrive_once_after_a_restart() {
    // A port nobody listens on yet: the destination starts there later.
    let reserved: SocketAddr = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let destination_key_holder = TestServer::start().await;
    // The destination's data directory and keys are made now; it listens on `reserved` only later.
    let destination_key = destination_key_holder.ingest_key.clone();
    let mut destination = destination_key_holder;
    destination.restart_with(|_| {}).await;
    let forward = forward_to(format!("http://{reserved}"), OtlpProtocol::Grpc, &destination_key);
    let mut source = TestServer::start_with(forward).await;
    let trace_ids = tokio::task::block_in_place(|| send_with_sdk(&source, "billing", 4));

    // Acknowledged means queued: the outbox holds every span and log record already.
    let store = source.server.as_ref().unwrap().store.clone();
    let stats = store.otlp_outbox_stats(OTLP_DESTINATION_NAME).unwrap();
    assert_eq!(stats.queued_items, 4 * 2 + 4, "8 spans and 4 log records queued: {stats:?}");

    // A stops with the destination still down; the destination comes up on the reserved
    // port; A starts again on the same data directory and delivers what it had queued.
    let forward_again = forward_to(format!("http://{reserved}"), OtlpProtocol::Grpc, &destination_key);
    source.server.take().unwrap().shutdown().await;
    destination.restart_with(|config| config.grpc_addr = reserved).await;
    source.restart_with(forward_again).await;
    for trace_id in &trace_ids {
        wait_for_trace(&destination, trace_id, 2).await;
    }
    let store = source.server.as_ref().unwrap().store.clone();
    let started = Instant::now();
    loop {
        let stats = store.otlp_outbox_stats(OTLP_DESTINATION_NAME).unwrap();
        if stats.queued_payloads == 0 {
            assert_eq!(stats.dead_letters, 0);
            break;
        }
        assert!(started.elapsed() < DEADLINE, "outbox not drained: {stats:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(log_count(&destination, "loaded").await, 4, "each log record arrived once");
}
