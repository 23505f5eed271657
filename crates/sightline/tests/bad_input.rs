//! Bad input over OTLP/HTTP and OTLP/gRPC: every kind gets its documented status, the server
//! keeps serving, and valid data sent alongside is stored intact. Overload answers 429 /
//! RESOURCE_EXHAUSTED with a retry delay instead of queueing without bound.

mod common;

use std::io::Write;

use common::TestServer;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;
use serde_json::{Value, json};
use tonic_types::StatusExt;

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// A span with recent timestamps (the retention job deletes anything older than 30 days).
fn span(trace_byte: u8, span_byte: u8, name: &str) -> Span {
    let now = now_nanos();
    Span {
        trace_id: vec![trace_byte; 16],
        span_id: vec![span_byte; 8],
        name: name.to_owned(),
        kind: 2,
        start_time_unix_nano: now,
        end_time_unix_nano: now + 500_000_000,
        ..Span::default()
    }
}

fn request(spans: Vec<Span>) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue { value: Some(any_value::Value::StringValue("bad-input".into())) }),
                    ..KeyValue::default()
                }],
                ..Resource::default()
            }),
            scope_spans: vec![ScopeSpans { spans, ..ScopeSpans::default() }],
            ..ResourceSpans::default()
        }],
    }
}

async fn post(
    server: &TestServer,
    content_type: &str,
    encoding: Option<&str>,
    key: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut builder =
        server.http.post(format!("{}/v1/traces", server.http_base())).header("content-type", content_type).body(body);
    if let Some(encoding) = encoding {
        builder = builder.header("content-encoding", encoding);
    }
    if let Some(key) = key {
        builder = builder.bearer_auth(key);
    }
    builder.send().await.unwrap()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

async fn stored_trace(server: &TestServer, trace_byte: u8) -> Option<Value> {
    let (status, body) = server.api_get(&format!("/api/v1/projects/default/traces/{}", hex(trace_byte, 16))).await;
    (status == 200).then_some(body)
}

fn hex(byte: u8, length: usize) -> String {
    format!("{byte:02x}").repeat(length)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_bad_input_gets_documented_statuses_and_good_data_survives() {
    let server = TestServer::start_with(|config| config.max_body_bytes = 256 * 1024).await;
    let key = server.ingest_key.clone();
    let valid = request(vec![span(1, 1, "valid")]).encode_to_vec();

    // Truncated protobuf → 400 with a google.rpc.Status in protobuf.
    let response = post(&server, "application/x-protobuf", None, Some(&key), valid[..valid.len() - 3].to_vec()).await;
    assert_eq!(response.status(), 400);
    assert_eq!(response.headers()["content-type"], "application/x-protobuf");
    let status = tonic_types::pb::Status::decode(response.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, tonic::Code::InvalidArgument as i32);
    assert!(status.message.contains("invalid protobuf"), "{}", status.message);

    // Garbage → 400; invalid JSON → 400 with a JSON Status.
    assert_eq!(
        post(&server, "application/x-protobuf", None, Some(&key), b"\xff\xff\xff garbage".to_vec()).await.status(),
        400
    );
    let response = post(&server, "application/json", None, Some(&key), b"{\"resourceSpans\": [".to_vec()).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["code"], 3);

    // Wrong content type and encoding → 415.
    assert_eq!(post(&server, "text/plain", None, Some(&key), valid.clone()).await.status(), 415);
    assert_eq!(post(&server, "application/x-protobuf", Some("br"), Some(&key), valid.clone()).await.status(), 415);

    // Missing and unknown keys → 401; a read key cannot ingest → 403.
    assert_eq!(post(&server, "application/x-protobuf", None, None, valid.clone()).await.status(), 401);
    assert_eq!(
        post(&server, "application/x-protobuf", None, Some("sl_ingest_nope"), valid.clone()).await.status(),
        401
    );
    let read_key = server.read_key.clone();
    assert_eq!(post(&server, "application/x-protobuf", None, Some(&read_key), valid.clone()).await.status(), 403);

    // Oversize body → 413; gzip bomb (small compressed, huge inflated) → 413.
    assert_eq!(post(&server, "application/x-protobuf", None, Some(&key), vec![0u8; 300 * 1024]).await.status(), 413);
    let bomb = gzip(&vec![b' '; 64 * 1024 * 1024]);
    assert!(bomb.len() < 256 * 1024);
    assert_eq!(post(&server, "application/json", Some("gzip"), Some(&key), bomb).await.status(), 413);
    // A corrupt gzip stream → 400.
    assert_eq!(
        post(&server, "application/x-protobuf", Some("gzip"), Some(&key), b"not gzip".to_vec()).await.status(),
        400
    );

    // Wrong ids and missing fields → 200 with partial_success; the valid span is kept.
    let mixed = request(vec![
        span(2, 1, "kept"),
        Span { trace_id: vec![2; 15], ..span(2, 2, "short trace id") },
        Span { span_id: vec![0; 8], ..span(2, 3, "zero span id") },
        Span { parent_span_id: vec![1; 3], ..span(2, 4, "bad parent") },
        span(2, 5, ""),
    ]);
    let response = post(&server, "application/x-protobuf", None, Some(&key), mixed.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let answer = ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap();
    let partial = answer.partial_success.expect("partial_success is set when items were rejected");
    assert_eq!(partial.rejected_spans, 4);
    assert!(partial.error_message.contains("trace_id must be 16 bytes"), "{}", partial.error_message);

    // The same over JSON, gzip-compressed: the answer is JSON with int64 as a string.
    let json_body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": hex(3, 16), "spanId": hex(1, 8), "name": "json kept", "startTimeUnixNano": now_nanos().to_string(), "endTimeUnixNano": now_nanos() + 1},
        {"traceId": hex(3, 8), "spanId": hex(2, 8), "name": "json short id", "startTimeUnixNano": "1"}
    ]}]}]});
    let response =
        post(&server, "application/json", Some("gzip"), Some(&key), gzip(json_body.to_string().as_bytes())).await;
    assert_eq!(response.status(), 200);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["partialSuccess"]["rejectedSpans"], "1", "{answer}");

    // An empty request is a success with partial_success unset.
    let response = post(&server, "application/x-protobuf", None, Some(&key), Vec::new()).await;
    assert_eq!(response.status(), 200);
    assert_eq!(ExportTraceServiceResponse::decode(response.bytes().await.unwrap()).unwrap().partial_success, None);

    // Valid data sent alongside, over plain and zstd bodies, is stored intact.
    assert_eq!(post(&server, "application/x-protobuf", None, Some(&key), valid.clone()).await.status(), 200);
    let zstd_body = zstd::encode_all(&request(vec![span(4, 1, "zstd")]).encode_to_vec()[..], 3).unwrap();
    assert_eq!(post(&server, "application/x-protobuf", Some("zstd"), Some(&key), zstd_body).await.status(), 200);
    for (trace_byte, name) in [(1u8, "valid"), (2, "kept"), (3, "json kept"), (4, "zstd")] {
        let trace = stored_trace(&server, trace_byte).await.unwrap_or_else(|| panic!("trace {trace_byte} missing"));
        assert_eq!(trace["span_count"], 1, "{trace}");
        assert_eq!(trace["roots"][0]["name"], name);
    }
    let outcomes = server.api_ok("/api/v1/projects/default/outcomes").await;
    let invalid = outcomes["outcomes"].as_array().unwrap().iter().find(|entry| entry["outcome"] == "invalid").unwrap();
    assert_eq!(invalid["count"], 5);
    server.stop().await;
}

async fn grpc_client(server: &TestServer) -> TraceServiceClient<tonic::transport::Channel> {
    TraceServiceClient::connect(server.grpc_base()).await.unwrap().max_encoding_message_size(64 * 1024 * 1024)
}

fn with_key<T>(message: T, key: &str) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    request.metadata_mut().insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_bad_input_gets_spec_status_codes() {
    let server = TestServer::start_with(|config| config.max_body_bytes = 64 * 1024).await;
    let mut client = grpc_client(&server).await;

    let status = client.export(tonic::Request::new(request(vec![span(1, 1, "x")]))).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated);

    // Oversize: RESOURCE_EXHAUSTED without RetryInfo (tonic alone would say OUT_OF_RANGE, which
    // OTLP clients retry forever).
    let big: Vec<Span> = (0..2000u32).map(|index| span(9, (index % 250) as u8 + 1, &"n".repeat(40))).collect();
    let status = client.export(with_key(request(big), &server.ingest_key)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    assert!(status.get_details_retry_info().is_none());

    let answer = client
        .export(with_key(
            request(vec![span(5, 1, "grpc kept"), Span { span_id: vec![1; 4], ..span(5, 2, "bad") }]),
            &server.ingest_key,
        ))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(answer.partial_success.map(|partial| partial.rejected_spans), Some(1));

    // gzip-compressed requests are accepted.
    let mut gzip_client = grpc_client(&server).await.send_compressed(tonic::codec::CompressionEncoding::Gzip);
    let answer =
        gzip_client.export(with_key(request(vec![span(6, 1, "gzip")]), &server.ingest_key)).await.unwrap().into_inner();
    assert_eq!(answer.partial_success, None);

    assert_eq!(stored_trace(&server, 5).await.unwrap()["roots"][0]["name"], "grpc kept");
    assert_eq!(stored_trace(&server, 6).await.unwrap()["roots"][0]["name"], "gzip");
    assert!(stored_trace(&server, 9).await.is_none(), "nothing of the oversize request is stored");
    server.stop().await;
}

/// Holds SQLite's write lock from another connection so the writer cannot commit, fills the
/// queue, and checks the next requests are refused with a retry delay rather than queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_queue_answers_429_and_resource_exhausted_with_retry_delay() {
    let server = TestServer::start_with(|config| config.max_queued_items = 10).await;
    let database = server.data_dir.path().join("sightline.db");
    let blocker = rusqlite::Connection::open(&database).unwrap();
    blocker.execute_batch("BEGIN IMMEDIATE").unwrap();

    let first_body = request((1..=10).map(|index| span(7, index, "queued")).collect()).encode_to_vec();
    let first = {
        let http = server.http.clone();
        let url = format!("{}/v1/traces", server.http_base());
        let key = server.ingest_key.clone();
        tokio::spawn(async move {
            http.post(url)
                .header("content-type", "application/x-protobuf")
                .bearer_auth(key)
                .body(first_body)
                .send()
                .await
                .unwrap()
                .status()
        })
    };

    // Wait (bounded) until the first request holds the whole queue.
    let mut queued = 0;
    for _ in 0..10_000 {
        queued = server.api_ok("/ready").await["queued_items"].as_u64().unwrap();
        if queued == 10 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(queued, 10, "the first request is queued behind the locked writer");
    let refused = post(
        &server,
        "application/x-protobuf",
        None,
        Some(&server.ingest_key),
        request(vec![span(8, 1, "refused")]).encode_to_vec(),
    )
    .await;
    assert_eq!(refused.status(), 429);
    assert_eq!(refused.headers()["retry-after"], "1");
    let status = tonic_types::pb::Status::decode(refused.bytes().await.unwrap()).unwrap();
    assert_eq!(status.code, tonic::Code::ResourceExhausted as i32);

    let mut client = grpc_client(&server).await;
    let status = client.export(with_key(request(vec![span(8, 2, "refused")]), &server.ingest_key)).await.unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted);
    assert!(status.get_details_retry_info().and_then(|info| info.retry_delay).is_some(), "overload carries RetryInfo");

    blocker.execute_batch("ROLLBACK").unwrap();
    assert_eq!(first.await.unwrap(), 200, "the queued request commits once the lock is released");
    assert_eq!(stored_trace(&server, 7).await.unwrap()["span_count"], 10);
    assert!(stored_trace(&server, 8).await.is_none(), "refused requests stored nothing");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_metrics_count_committed_items() {
    let server = TestServer::start().await;
    let body = request(vec![
        span(11, 1, "counted"),
        span(11, 2, "counted"),
        Span { span_id: vec![1; 3], ..span(11, 3, "bad") },
    ]);
    let response = post(&server, "application/x-protobuf", None, Some(&server.ingest_key), body.encode_to_vec()).await;
    assert_eq!(response.status(), 200);
    let text = server.http.get(format!("{}/metrics", server.http_base())).send().await.unwrap().text().await.unwrap();
    let value = |needle: &str| -> f64 {
        text.lines()
            .find(|line| line.starts_with(needle))
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|number| number.parse().ok())
            .unwrap_or_else(|| panic!("{needle} missing in:\n{text}"))
    };
    // Counters are process-wide and other tests in this binary ingest too: at least ours.
    assert!(value("sightline_ingest_items_total{signal=\"traces\",outcome=\"accepted\"}") >= 2.0);
    assert!(value("sightline_ingest_items_total{signal=\"traces\",outcome=\"invalid\"}") >= 1.0);
    assert!(value("sightline_commit_duration_seconds_count") >= 1.0);
    assert!(text.contains("sightline_ingest_queue_items"));
    assert!(
        value("sightline_session_server_spans_total{with_session=\"false\"}") >= 2.0,
        "SERVER spans without a session"
    );
    server.stop().await;
}

#[test]
fn a_bad_flag_stops_the_server_before_it_creates_anything() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let data_dir = directory.path().join("data");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_sightline"))
        .args(["serve", "--rollup-coarsen-hours", "1", "--data-dir"])
        .arg(&data_dir)
        .env("RUST_BACKTRACE", "0")
        .output()
        .expect("running sightline serve");
    assert!(!output.status.success());
    let diagnostics = String::from_utf8_lossy(&output.stderr);
    assert!(diagnostics.contains("must be between 2 hours and 90 days"), "{diagnostics}");
    assert!(!data_dir.exists(), "no data directory for a server that never started");
}
