//! OTLP forwarding against real receivers: a second Sightline server (its OTLP/HTTP and
//! OTLP/gRPC receivers) and small loopback servers that answer with the failures the OTLP
//! specification describes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::http::StatusCode;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use sightline_model::TraceId;

use super::*;
use crate::config::Config;
use crate::exporters::Secret;
use crate::server::{RunningServer, ensure_default_project, open_store, start};
use crate::store::{LogQuery, Store};

struct Receiver {
    server: RunningServer,
    store: Arc<dyn Store>,
    project_id: i64,
    ingest_key: String,
    _directory: tempfile::TempDir,
}

async fn receiver() -> Receiver {
    let directory = tempfile::tempdir().unwrap();
    let config = Config {
        data_dir: directory.path().to_path_buf(),
        http_addr: "127.0.0.1:0".parse().unwrap(),
        grpc_addr: "127.0.0.1:0".parse().unwrap(),
        ..Config::default()
    };
    let store = open_store(&config).unwrap();
    let first = ensure_default_project(store.as_ref()).unwrap().unwrap();
    let server = start(config, store.clone()).await.unwrap();
    Receiver {
        server,
        store,
        project_id: first.project.id,
        ingest_key: first.ingest_key.expose().to_owned(),
        _directory: directory,
    }
}

fn string_value(text: &str) -> Option<AnyValue> {
    Some(AnyValue { value: Some(any_value::Value::StringValue(text.into())) })
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![KeyValue { key: "service.name".into(), value: string_value(service), ..Default::default() }],
        ..Default::default()
    })
}

fn trace_request(trace_id: [u8; 16], spans: usize) -> ExportTraceServiceRequest {
    let spans = (0..spans)
        .map(|index| Span {
            trace_id: trace_id.to_vec(),
            span_id: vec![index as u8 + 1; 8],
            name: format!("GET /items/{index}"),
            kind: 2,
            start_time_unix_nano: 1_700_000_000_000_000_000 + index as u64,
            end_time_unix_nano: 1_700_000_000_100_000_000 + index as u64,
            ..Default::default()
        })
        .collect();
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: resource("checkout"),
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
}

fn config_for(endpoint: String, protocol: OtlpProtocol, key: &str) -> OtlpDestinationConfig {
    let mut config = OtlpDestinationConfig::new(endpoint, protocol);
    config.headers.insert("Authorization".into(), Secret::new(format!("Bearer {key}")));
    config.timeout_ms = 5_000;
    config
}

async fn forwarded_spans(receiver: &Receiver, trace_id: [u8; 16]) -> usize {
    let store = receiver.store.clone();
    let project_id = receiver.project_id;
    let spans =
        tokio::task::spawn_blocking(move || store.get_trace(project_id, &TraceId(trace_id)).unwrap()).await.unwrap();
    spans.map(|spans| spans.len()).unwrap_or(0)
}

#[tokio::test]
async fn merged_traces_reach_a_sightline_over_http_and_grpc() {
    let receiver = receiver().await;
    for (protocol, address, trace_byte) in [
        (OtlpProtocol::HttpProtobuf, receiver.server.http_addr, 0x11),
        (OtlpProtocol::Grpc, receiver.server.grpc_addr, 0x22),
    ] {
        for compression in [OtlpCompression::Gzip, OtlpCompression::None] {
            let trace_id = [trace_byte + compression as u8; 16];
            let mut config = config_for(format!("http://{address}"), protocol, &receiver.ingest_key);
            config.compression = compression;
            let forwarder = OtlpForwarder::new(config).unwrap();
            let payloads =
                [OtlpPayload::traces(&trace_request(trace_id, 3)), OtlpPayload::traces(&trace_request(trace_id, 2))];
            let merged = request::merge(&payloads, 1 << 20);
            assert_eq!(merged.len(), 1);
            let outcome = forwarder.send(&merged[0]).await;
            assert_eq!(
                outcome,
                OtlpOutcome::Delivered { rejected_items: 0, message: String::new() },
                "{protocol:?} {compression:?}"
            );
            // The receiver acknowledged after its commit: the spans are stored now. Both
            // requests' spans share ids 1 and 2, so the trace holds the five sent rows.
            assert_eq!(forwarded_spans(&receiver, trace_id).await, 5, "{protocol:?} {compression:?}");
        }
    }
}

#[tokio::test]
async fn logs_and_a_partial_success_come_back_as_the_receiver_said() {
    let receiver = receiver().await;
    let record = |body: &str, trace_id: Vec<u8>| LogRecord {
        time_unix_nano: 1_700_000_000_000_000_000,
        body: string_value(body),
        trace_id,
        ..Default::default()
    };
    // One good record and one with a 3-byte trace id, which Sightline rejects (OTLP: ids are 16 bytes).
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("worker"),
            scope_logs: vec![ScopeLogs {
                log_records: vec![record("forwarded line", vec![]), record("bad id", vec![1, 2, 3])],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    for (protocol, address) in
        [(OtlpProtocol::HttpProtobuf, receiver.server.http_addr), (OtlpProtocol::Grpc, receiver.server.grpc_addr)]
    {
        let forwarder =
            OtlpForwarder::new(config_for(format!("http://{address}"), protocol, &receiver.ingest_key)).unwrap();
        let outcome = forwarder.send(&OtlpPayload::logs(&request)).await;
        let OtlpOutcome::Delivered { rejected_items, message } = outcome else {
            panic!("{protocol:?}: delivered with a partial success expected, got {outcome:?}");
        };
        assert_eq!(rejected_items, 1, "{protocol:?}: {message}");
        assert!(!message.is_empty(), "{protocol:?}: the receiver explains the rejection");
    }
    let store = receiver.store.clone();
    let project_id = receiver.project_id;
    let query = LogQuery { text: Some("forwarded line".into()), limit: 10, ..Default::default() };
    let logs = tokio::task::spawn_blocking(move || store.search_logs(project_id, &query).unwrap()).await.unwrap();
    assert_eq!(logs.items.len(), 2, "the good record arrived once per protocol");
}

#[tokio::test]
async fn a_wrong_key_is_permanent_and_a_dead_port_is_retryable() {
    let receiver = receiver().await;
    for (protocol, address) in
        [(OtlpProtocol::HttpProtobuf, receiver.server.http_addr), (OtlpProtocol::Grpc, receiver.server.grpc_addr)]
    {
        let forwarder =
            OtlpForwarder::new(config_for(format!("http://{address}"), protocol, "sl_ingest_wrong")).unwrap();
        let outcome = forwarder.send(&OtlpPayload::traces(&trace_request([0x33; 16], 1))).await;
        assert!(matches!(outcome, OtlpOutcome::Permanent { .. }), "{protocol:?}: {outcome:?}");
    }
    // A port nobody listens on: bind, note the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    for protocol in [OtlpProtocol::HttpProtobuf, OtlpProtocol::Grpc] {
        let forwarder = OtlpForwarder::new(config_for(format!("http://{closed}"), protocol, "k")).unwrap();
        let outcome = forwarder.send(&OtlpPayload::traces(&trace_request([0x44; 16], 1))).await;
        assert!(matches!(outcome, OtlpOutcome::Retry { retry_after: None, .. }), "{protocol:?}: {outcome:?}");
    }
}

/// A loopback OTLP/HTTP endpoint that always answers `status` with `headers`.
async fn answering(status: StatusCode, headers: &'static [(&'static str, &'static str)]) -> SocketAddr {
    let handler = move || async move {
        let mut response = axum::response::Response::builder().status(status);
        for (name, value) in headers {
            response = response.header(*name, *value);
        }
        response.body(axum::body::Body::from("try later")).unwrap()
    };
    let app = Router::new().route("/v1/traces", post(handler));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    address
}

#[tokio::test]
async fn throttling_answers_carry_their_retry_after() {
    let throttled = answering(StatusCode::SERVICE_UNAVAILABLE, &[("retry-after", "9")]).await;
    let forwarder =
        OtlpForwarder::new(config_for(format!("http://{throttled}"), OtlpProtocol::HttpProtobuf, "k")).unwrap();
    let outcome = forwarder.send(&OtlpPayload::traces(&trace_request([0x55; 16], 1))).await;
    assert_eq!(
        outcome,
        OtlpOutcome::Retry { retry_after: Some(Duration::from_secs(9)), reason: "HTTP 503: try later".into() }
    );
    let rejecting = answering(StatusCode::PAYLOAD_TOO_LARGE, &[]).await;
    let forwarder =
        OtlpForwarder::new(config_for(format!("http://{rejecting}"), OtlpProtocol::HttpProtobuf, "k")).unwrap();
    let outcome = forwarder.send(&OtlpPayload::traces(&trace_request([0x55; 16], 1))).await;
    assert!(matches!(outcome, OtlpOutcome::Permanent { .. }), "413 is not retryable: {outcome:?}");
}

#[tokio::test]
async fn a_silent_endpoint_times_out_as_retryable() {
    // Accepts connections and never answers.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    let mut config = config_for(format!("http://{address}"), OtlpProtocol::HttpProtobuf, "k");
    config.timeout_ms = 200;
    let forwarder = OtlpForwarder::new(config).unwrap();
    let outcome = forwarder.send(&OtlpPayload::traces(&trace_request([0x66; 16], 1))).await;
    let OtlpOutcome::Retry { reason, .. } = outcome else {
        panic!("timeout must be retryable: {outcome:?}");
    };
    assert!(reason.starts_with("timed out"), "{reason}");
    holder.abort();
}
