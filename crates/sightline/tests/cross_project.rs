//! Cross-project analytics end to end: three projects receive SERVER spans through the
//! OpenTelemetry SDK, each with its own ingest key; a read key of `default` is granted `billing`
//! with the real `sightline project grant` command; then `GET /api/v1/analytics/cross-project`
//! is checked for each metric (values against what was sent, percentiles within the DDSketch
//! bound, series adding up), and for its refusals: 403 naming a project that is not granted or
//! does not exist (same answer), 400 for a bad metric, 401 / 403 for missing and ingest keys, and
//! 403 again once `sightline project revoke` withdraws the grant.

// A failed unwrap is a failed test, as in the other end-to-end tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, SystemTime};

use common::TestServer;
use common::sketch::{assert_within_bound, exact_quantile};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;
use sightline_server::auth::KeyScope;
use sightline_server::server::{ensure_default_project, open_store, start};

/// Sends `durations_ms.len()` SERVER spans to the project of `ingest_key`; every `error_every`-th
/// answers 500.
async fn send(base: &str, ingest_key: &str, durations_ms: &[u64], error_every: usize) {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{base}/v1/traces"))
        .with_headers(HashMap::from([("Authorization".to_owned(), format!("Bearer {ingest_key}"))]))
        .build()
        .unwrap();
    let provider = SdkTracerProvider::builder()
        .with_resource(Resource::builder_empty().with_service_name("api").build())
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("cross-project-e2e");
    let now = SystemTime::now() - Duration::from_secs(300);
    for (index, duration_ms) in durations_ms.iter().enumerate() {
        let start = now + Duration::from_millis(index as u64);
        let status = if error_every > 0 && index % error_every == 0 { 500 } else { 200 };
        let mut span = tracer
            .span_builder("GET /orders")
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .with_attributes(vec![
                KeyValue::new("http.request.method", "GET"),
                KeyValue::new("http.route", "/orders"),
                KeyValue::new("http.response.status_code", status),
            ])
            .start(&tracer);
        span.end_with_timestamp(start + Duration::from_millis(*duration_ms));
    }
    tokio::task::spawn_blocking(move || provider.shutdown().expect("spans exported")).await.unwrap();
}

fn sightline(data_dir: &std::path::Path, arguments: &[&str]) -> String {
    let output =
        Command::new(env!("CARGO_BIN_EXE_sightline")).args(arguments).arg("--data-dir").arg(data_dir).output().unwrap();
    assert!(output.status.success(), "sightline {arguments:?}: {}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn entry<'a>(body: &'a Value, project: &str) -> &'a Value {
    body["projects"].as_array().unwrap().iter().find(|entry| entry["project"] == project).unwrap()
}

fn series_sum(entry: &Value, field: &str) -> u64 {
    entry["series"].as_array().unwrap().iter().map(|point| point[field].as_u64().unwrap()).sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_key_compares_the_projects_it_may_read() {
    let data_dir = tempfile::tempdir().unwrap();
    let config = common::test_config(data_dir.path().to_path_buf());
    // Projects and keys, then the grant through the CLI while the server is not running.
    let (default_ingest, billing_ingest, secret_ingest, reader, reader_id) = {
        let store = open_store(&config).unwrap();
        let first = ensure_default_project(store.as_ref()).unwrap().unwrap();
        let billing = store.create_project("billing").unwrap();
        let secret = store.create_project("secret").unwrap();
        let (billing_ingest, _) = store.create_api_key(billing.id, KeyScope::Ingest, "").unwrap();
        let (secret_ingest, _) = store.create_api_key(secret.id, KeyScope::Ingest, "").unwrap();
        let (reader, record) = store.create_api_key(first.project.id, KeyScope::Read, "dashboards").unwrap();
        (
            first.ingest_key.expose().to_owned(),
            billing_ingest.expose().to_owned(),
            secret_ingest.expose().to_owned(),
            reader.expose().to_owned(),
            record.id,
        )
    };
    let granted = sightline(data_dir.path(), &["project", "grant", "billing", "--key-id", &reader_id.to_string()]);
    assert!(granted.contains("may now read project 'billing'"), "{granted}");

    let store = open_store(&config).unwrap();
    let running = start(config, store).await.unwrap();
    let server = TestServer {
        http_addr: running.http_addr,
        grpc_addr: running.grpc_addr,
        server: Some(running),
        data_dir,
        ingest_key: default_ingest.clone(),
        read_key: reader.clone(),
        admin_key: String::new(),
        http: reqwest::Client::new(),
    };
    let base = server.http_base();
    let default_durations: Vec<u64> = (1..=200).collect();
    let billing_durations: Vec<u64> = (0..50).map(|index| 300 + index * 20).collect();
    send(&base, &default_ingest, &default_durations, 10).await;
    send(&base, &billing_ingest, &billing_durations, 0).await;
    send(&base, &secret_ingest, &[5, 5, 5], 1).await;

    // Response time: both projects in the order asked, percentiles within the sketch bound.
    let path =
        "/api/v1/analytics/cross-project?projects[]=billing&projects[]=default&metric=response_time&timeRange=1h";
    let body = server.api_ok(path).await;
    assert_eq!(body["metric"], "response_time");
    let order: Vec<&str> =
        body["projects"].as_array().unwrap().iter().map(|e| e["project"].as_str().unwrap()).collect();
    assert_eq!(order, ["billing", "default"]);
    for (project, durations) in [("default", &default_durations), ("billing", &billing_durations)] {
        let entry = entry(&body, project);
        assert_eq!(entry["requests"], durations.len(), "{project}");
        let nanos: Vec<u64> = durations.iter().map(|ms| ms * 1_000_000).collect();
        for (field, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
            assert_within_bound(&entry[field], exact_quantile(&nanos, q), &format!("{project} {field}"));
        }
        let buckets_with_data = entry["series"].as_array().unwrap().iter().filter(|p| !p["p95_ms"].is_null()).count();
        assert!(buckets_with_data >= 1, "{project}: {entry}");
    }

    // Error rate and throughput.
    let body =
        server.api_ok("/api/v1/analytics/cross-project?projects=default,billing&metric=error_rate&timeRange=1h").await;
    assert_eq!(entry(&body, "default")["errors"], 20, "every 10th of 200 answered 500");
    assert_eq!(entry(&body, "default")["error_rate"], 0.1);
    assert_eq!(entry(&body, "billing")["error_rate"], 0.0);
    assert_eq!(series_sum(entry(&body, "default"), "requests"), 200);
    let body = server
        .api_ok("/api/v1/analytics/cross-project?projects[]=default&projects[]=billing&metric=throughput&timeRange=1h")
        .await;
    let range_minutes =
        (body["to_unix_nano"].as_u64().unwrap() - body["from_unix_nano"].as_u64().unwrap()) as f64 / 6e10;
    assert!((entry(&body, "billing")["rpm"].as_f64().unwrap() - 50.0 / range_minutes).abs() < 1e-9);
    assert_eq!(series_sum(entry(&body, "billing"), "requests"), 50);

    // Refusals. A project not granted and one that does not exist get the same 403.
    for (path, status, needle) in [
        ("/api/v1/analytics/cross-project?projects[]=default&projects[]=secret&metric=throughput", 403, "\"secret\""),
        ("/api/v1/analytics/cross-project?projects[]=default&projects[]=nope&metric=throughput", 403, "\"nope\""),
        ("/api/v1/analytics/cross-project?projects[]=default&metric=latency", 400, "latency"),
        ("/api/v1/analytics/cross-project?projects[]=default", 400, "metric is required"),
        ("/api/v1/analytics/cross-project?metric=throughput", 400, "projects[]"),
        ("/api/v1/analytics/cross-project?projects[]=default&metric=throughput&timeRange=1y", 400, "timeRange"),
    ] {
        let (answered, error) = server.api_get(path).await;
        assert_eq!(answered, status, "{path}: {error}");
        let message = error["error"]["message"].as_str().unwrap();
        assert!(message.contains(needle), "{path}: {message}");
    }
    let path = format!("{base}/api/v1/analytics/cross-project?projects[]=default&metric=throughput");
    let anonymous = server.http.get(&path).send().await.unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    let ingest = server.http.get(&path).bearer_auth(&default_ingest).send().await.unwrap();
    assert_eq!(ingest.status().as_u16(), 403);

    // The grant opens the project's own read routes to the key too.
    assert_eq!(server.api_get("/api/v1/projects/billing/services").await.0, 200);
    assert_eq!(server.api_get("/api/v1/projects/secret/services").await.0, 404);

    // Revoked while the server runs: refused at once.
    let revoked =
        sightline(server.data_dir.path(), &["project", "revoke", "billing", "--key-id", &reader_id.to_string()]);
    assert!(revoked.contains("no longer reads"), "{revoked}");
    let (answered, _) = server.api_get("/api/v1/analytics/cross-project?projects[]=billing&metric=throughput").await;
    assert_eq!(answered, 403);
    assert_eq!(server.api_get("/api/v1/projects/billing/services").await.0, 404);
    server.stop().await;
}
