//! Database query statistics end to end: CLIENT spans of two services, one with the new OTel
//! database semconv (`db.system.name`, `db.namespace`, `db.query.text`) and one with the old
//! (`db.system`, `db.name`, `db.statement`), known durations and literals (numbers, strings,
//! IN lists of several lengths) that must normalize into one query each, sent through the
//! official OpenTelemetry Rust SDK over OTLP/HTTP; then `GET …/databases/queries` is checked:
//! counts, errors, totals, percentiles within the DDSketch bound, the three sort orders, the
//! filters, the configured slow-query threshold and the example trace links.

// A failed unwrap is a failed test, as in the other end-to-end tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, SystemTime};

use common::TestServer;
use common::sketch::{assert_within_bound, exact_quantile, provider};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use serde_json::Value;

/// One database call as sent.
struct Call {
    attributes: Vec<KeyValue>,
    duration_nanos: u64,
    error: bool,
}

/// The normalized queries and what each must report.
const ORDERS: &str = "SELECT * FROM orders WHERE id = ? AND status = ?";
const CARTS: &str = "UPDATE carts SET qty = ? WHERE id IN (?)";
const JOBS: &str = "SELECT id FROM jobs WHERE run_at < ? LIMIT ?";

fn api_calls() -> Vec<(&'static str, Call)> {
    let mut calls = Vec::new();
    // 300 fast-ish reads, 2..=301 ms: the largest total, p95 under the threshold.
    for index in 0..300u64 {
        let text =
            format!("SELECT  *\n FROM orders WHERE id = {index} AND status = 'paid-{index}' -- from the cart page");
        calls.push((
            ORDERS,
            Call {
                attributes: vec![
                    KeyValue::new("db.system.name", "postgresql"),
                    KeyValue::new("db.namespace", "shop"),
                    KeyValue::new("db.query.text", text),
                ],
                duration_nanos: (index + 2) * 1_000_000,
                error: false,
            },
        ));
    }
    // 20 slow updates, 400..=970 ms, IN lists of 1 to 4 ids; 3 failed.
    for index in 0..20u64 {
        let ids: Vec<String> = (0..=index % 4).map(|id| (id + index * 10).to_string()).collect();
        let text = format!("UPDATE carts SET qty = {} WHERE id IN ({})", index + 1, ids.join(", "));
        calls.push((
            CARTS,
            Call {
                attributes: vec![
                    KeyValue::new("db.system.name", "postgresql"),
                    KeyValue::new("db.namespace", "shop"),
                    KeyValue::new("db.query.text", text),
                ],
                duration_nanos: (400 + 30 * index) * 1_000_000 + 17,
                error: index % 7 == 0,
            },
        ));
    }
    calls
}

fn worker_calls() -> Vec<(&'static str, Call)> {
    // 1,000 quick polls with the old semconv: the most calls, the lowest p95.
    (0..1_000u64)
        .map(|index| {
            let text = format!("SELECT id FROM jobs WHERE run_at < {} LIMIT 10", 1_700_000_000 + index);
            let call = Call {
                attributes: vec![
                    KeyValue::new("db.system", "mysql"),
                    KeyValue::new("db.name", "jobs"),
                    KeyValue::new("db.statement", text),
                ],
                duration_nanos: 1_000_000 + (index % 10) * 100_000,
                error: false,
            };
            (JOBS, call)
        })
        .collect()
}

/// Sends the calls as CLIENT spans of `service`; returns (normalized query, duration, trace id).
async fn send(
    server: &TestServer,
    service: &str,
    calls: Vec<(&'static str, Call)>,
) -> Vec<(&'static str, u64, String)> {
    let tracer_provider = provider(server, Resource::builder_empty().with_service_name(service.to_owned()).build());
    let tracer = tracer_provider.tracer("db-e2e");
    let now = SystemTime::now();
    let mut sent = Vec::new();
    for (index, (query, call)) in calls.into_iter().enumerate() {
        let start = now - Duration::from_secs(120 + index as u64 % 300);
        let mut span = tracer
            .span_builder("db call")
            .with_kind(SpanKind::Client)
            .with_start_time(start)
            .with_attributes(call.attributes)
            .start(&tracer);
        if call.error {
            span.set_status(Status::error("deadlock detected"));
        }
        sent.push((query, call.duration_nanos, span.span_context().trace_id().to_string()));
        span.end_with_timestamp(start + Duration::from_nanos(call.duration_nanos));
    }
    tokio::task::spawn_blocking(move || tracer_provider.shutdown().expect("spans exported")).await.unwrap();
    sent
}

fn queries(body: &Value) -> Vec<&str> {
    body["queries"].as_array().unwrap().iter().map(|row| row["query"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_queries_normalize_aggregate_sort_and_flag_slow_ones() {
    let server = TestServer::start_with(|config| config.slow_query_threshold = Duration::from_millis(800)).await;
    let mut sent = send(&server, "api", api_calls()).await;
    sent.extend(send(&server, "worker", worker_calls()).await);

    let body = server.api_ok("/api/v1/projects/default/databases/queries?timeRange=1h").await;
    assert_eq!(body["sort"], "p95");
    assert_eq!(body["slow_query_threshold_ms"], 800.0);
    assert_eq!(queries(&body), [CARTS, ORDERS, JOBS], "by p95, literals and IN lists normalized together: {body}");
    for row in body["queries"].as_array().unwrap() {
        let query = row["query"].as_str().unwrap();
        let mut durations: Vec<u64> =
            sent.iter().filter(|(sent_query, _, _)| *sent_query == query).map(|(_, duration, _)| *duration).collect();
        durations.sort_unstable();
        assert_eq!(row["count"], durations.len(), "{query}");
        let total_nanos: u64 = durations.iter().sum();
        assert!((row["total_ms"].as_f64().unwrap() * 1e6 - total_nanos as f64).abs() < 1.0, "{query} total");
        assert!((row["max_ms"].as_f64().unwrap() * 1e6 - *durations.last().unwrap() as f64).abs() < 1e-3);
        let avg = total_nanos as f64 / durations.len() as f64;
        assert!((row["avg_ms"].as_f64().unwrap() * 1e6 - avg).abs() < 1e-3, "{query} avg");
        for (name, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
            assert_within_bound(&row[name], exact_quantile(&durations, q), &format!("{query} {name}"));
        }
    }
    let rows = body["queries"].as_array().unwrap();
    let (carts, orders, jobs) = (&rows[0], &rows[1], &rows[2]);
    assert_eq!(
        (carts["service"].as_str(), carts["system"].as_str(), carts["namespace"].as_str()),
        (Some("api"), Some("postgresql"), Some("shop"))
    );
    assert_eq!(
        (jobs["service"].as_str(), jobs["system"].as_str(), jobs["namespace"].as_str()),
        (Some("worker"), Some("mysql"), Some("jobs")),
        "old semconv"
    );
    assert_eq!(carts["errors"], 3, "span status ERROR");
    assert_eq!((orders["errors"].as_u64(), jobs["errors"].as_u64()), (Some(0), Some(0)));

    // Slow: the updates' p95 (≈ 940 ms) exceeds 800 ms; the reads' max is 301 ms.
    assert_eq!(
        (carts["slow"].as_bool(), orders["slow"].as_bool(), jobs["slow"].as_bool()),
        (Some(true), Some(false), Some(false))
    );
    assert_eq!(orders["slow_traces"], serde_json::json!([]));
    let mut slowest_carts: Vec<&(&str, u64, String)> = sent.iter().filter(|(query, _, _)| *query == CARTS).collect();
    slowest_carts.sort_by_key(|(_, duration, _)| std::cmp::Reverse(*duration));
    let examples = carts["slow_traces"].as_array().unwrap();
    assert_eq!(examples.len(), 5, "the five slowest calls");
    for (example, (_, duration, trace_id)) in examples.iter().zip(&slowest_carts) {
        assert_eq!(example["trace_id"].as_str().unwrap(), trace_id);
        assert!((example["duration_ms"].as_f64().unwrap() * 1e6 - *duration as f64).abs() < 1.0);
        assert_eq!(example["trace"].as_str().unwrap(), format!("/api/v1/projects/default/traces/{trace_id}"));
    }
    let link = examples[0]["trace"].as_str().unwrap();
    assert_eq!(server.api_get(link).await.0, 200, "{link} opens the trace");

    // The other sort orders, the filters and the limit.
    let by_total = server.api_ok("/api/v1/projects/default/databases/queries?sort=total&timeRange=1h").await;
    assert_eq!(queries(&by_total), [ORDERS, CARTS, JOBS]);
    let by_count = server.api_ok("/api/v1/projects/default/databases/queries?sort=count&timeRange=1h").await;
    assert_eq!(queries(&by_count), [JOBS, ORDERS, CARTS]);
    let worker = server.api_ok("/api/v1/projects/default/databases/queries?service=worker").await;
    assert_eq!(queries(&worker), [JOBS]);
    let postgres =
        server.api_ok("/api/v1/projects/default/databases/queries?system=postgresql&sort=count&limit=1").await;
    assert_eq!(queries(&postgres), [ORDERS]);
    let short = server.api_ok("/api/v1/projects/default/databases/queries?timeRange=1m").await;
    assert_eq!(queries(&short), Vec::<&str>::new(), "every call started over a minute ago");

    for bad in ["sort=p42", "limit=0", "limit=1001", "timeRange=7x", "servce=api"] {
        let (status, body) = server.api_get(&format!("/api/v1/projects/default/databases/queries?{bad}")).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let anonymous = server
        .http
        .get(format!("{}/api/v1/projects/default/databases/queries", server.http_base()))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status(), 401, "read-key auth");
    server.stop().await;
}
