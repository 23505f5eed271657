//! Per-project head sampling and retention, end to end over OTLP/HTTP.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::TestServer;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;
use serde_json::{Value, json};

const DAY_NANOS: u64 = 86_400 * 1_000_000_000;

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn trace_id(index: u32) -> Vec<u8> {
    // Spread the lower 64 bits so head sampling sees uniform ids.
    let mut id = vec![0xab; 8];
    id.extend_from_slice(&(u64::from(index).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1).to_be_bytes());
    id
}

fn span(index: u32, start: u64, error: bool, padding: usize) -> Span {
    Span {
        trace_id: trace_id(index),
        span_id: vec![index as u8 | 1; 8],
        name: format!("op-{index}"),
        kind: 2,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 1_000_000,
        attributes: vec![KeyValue {
            key: "padding".into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("x".repeat(padding))) }),
            ..KeyValue::default()
        }],
        status: error.then(|| Status { code: 2, message: "boom".into() }),
        ..Span::default()
    }
}

async fn send_spans(server: &TestServer, spans: Vec<Span>) {
    let body = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let response = server
        .http
        .post(format!("{}/v1/traces", server.http_base()))
        .header("content-type", "application/x-protobuf")
        .bearer_auth(&server.ingest_key)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn patch_project(server: &TestServer, body: Value) -> (u16, Value) {
    let response = server
        .http
        .patch(format!("{}/api/v1/projects/default", server.http_base()))
        .bearer_auth(&server.admin_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn outcome(outcomes: &Value, signal: &str, name: &str) -> u64 {
    outcomes["outcomes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|entry| entry["signal"] == signal && entry["outcome"] == name)
        .map_or(0, |entry| entry["count"].as_u64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_sampling_keeps_whole_traces_and_every_error() {
    let server = TestServer::start().await;
    let (status, project) = patch_project(&server, json!({"trace_sample_rate": 0.5})).await;
    assert_eq!(status, 200, "{project}");
    assert_eq!(project["trace_sample_rate"], 0.5);
    assert_eq!(patch_project(&server, json!({"trace_sample_rate": 1.5})).await.0, 400);

    // 200 traces of 3 spans each (sent span by span in different requests), plus error spans.
    let start = now_nanos();
    for part in 0..3u32 {
        let spans = (0..200u32)
            .map(|index| Span {
                span_id: vec![part as u8 + 1, index as u8 | 1, 0, 0, 0, 0, 0, 1],
                ..span(index, start, false, 0)
            })
            .collect();
        send_spans(&server, spans).await;
    }
    send_spans(&server, (1000..1010).map(|index| span(index, start, true, 0)).collect()).await;

    let outcomes = server.api_ok("/api/v1/projects/default/outcomes").await;
    let accepted = outcome(&outcomes, "traces", "accepted");
    let sampled_out = outcome(&outcomes, "traces", "sampled_out");
    assert_eq!(accepted + sampled_out, 610);
    let kept_traces = (accepted - 10) / 3;
    assert_eq!((accepted - 10) % 3, 0, "a trace is kept or dropped whole");
    assert!((60..140).contains(&kept_traces), "about half of 200 traces kept, got {kept_traces}");

    let errors = server.api_ok("/api/v1/projects/default/traces?status=error&limit=100").await;
    assert_eq!(errors["traces"].as_array().unwrap().len(), 10, "every error span is kept");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_expired_data_and_returns_space() {
    let server = TestServer::start().await;
    let (status, _) = patch_project(&server, json!({"retention_days": 7})).await;
    assert_eq!(status, 200);
    assert_eq!(patch_project(&server, json!({"retention_days": 0})).await.0, 400);

    let now = now_nanos();
    let old = now - 10 * DAY_NANOS;
    // ≈ 12 MB of expired spans, and a few recent ones.
    for chunk in 0..10u32 {
        send_spans(&server, (0..300u32).map(|index| span(chunk * 300 + index + 10, old, false, 4000)).collect()).await;
    }
    send_spans(&server, (0..5u32).map(|index| span(index + 5000, now, false, 10)).collect()).await;
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: [(old, "expired"), (now, "recent")]
                    .into_iter()
                    .map(|(time, body)| LogRecord {
                        time_unix_nano: time,
                        body: Some(AnyValue { value: Some(any_value::Value::StringValue(body.into())) }),
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let response = server
        .http
        .post(format!("{}/v1/logs", server.http_base()))
        .header("content-type", "application/x-protobuf")
        .bearer_auth(&server.ingest_key)
        .body(logs.encode_to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let database = server.data_dir.path().join("sightline.db");
    let checkpoint = |path: &std::path::Path| {
        let connection = rusqlite::Connection::open(path).unwrap();
        connection.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(())).unwrap();
    };
    checkpoint(&database);
    let size_before = std::fs::metadata(&database).unwrap().len();
    let store = server.server.as_ref().unwrap().store.clone();
    let deleted =
        tokio::task::spawn_blocking(move || sightline_server::retention::run_once(store.as_ref(), now_nanos(), 500))
            .await
            .unwrap()
            .unwrap();
    assert!(deleted >= 3001, "3000 spans, their summaries and one log deleted, got {deleted}");

    let expired_hex = const_hex(&trace_id(10));
    let (status, _) = server.api_get(&format!("/api/v1/projects/default/traces/{expired_hex}")).await;
    assert_eq!(status, 404);
    let recent_hex = const_hex(&trace_id(5000));
    assert_eq!(server.api_ok(&format!("/api/v1/projects/default/traces/{recent_hex}")).await["span_count"], 1);
    let logs = server.api_ok("/api/v1/projects/default/logs").await;
    let bodies: Vec<&Value> = logs["logs"].as_array().unwrap().iter().map(|log| &log["body"]).collect();
    assert_eq!(bodies, vec![&json!("recent")]);

    // Checkpoint the WAL so the main file reflects the vacuum, then compare sizes.
    checkpoint(&database);
    let size_after = std::fs::metadata(&database).unwrap().len();
    assert!(size_after < size_before / 2, "file shrank from {size_before} to {size_after} bytes");
    server.stop().await;
}

fn const_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}
