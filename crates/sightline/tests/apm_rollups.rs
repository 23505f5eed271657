//! Endpoint RED rollups end to end: thousands of SERVER spans with known durations (explicit
//! start and end times, a long tail), several routes, 5xx and ERROR statuses, new and old HTTP
//! semconv, sent through the official OpenTelemetry Rust SDK over OTLP/HTTP; then every number
//! of the performance API, the endpoint detail and the Prometheus view is checked against the
//! exact values computed here, percentiles within the DDSketch bound; then again after the
//! minute rows are coarsened into hours.

// A failed unwrap is a failed test, as in the other end-to-end tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use common::sketch::{assert_within_bound, exact_quantile, provider};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_sdk::Resource;
use serde_json::Value;

/// A small deterministic generator (SplitMix64), so failures reproduce.
struct Random(u64);

impl Random {
    fn next_f64(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64
    }
}

/// One request as sent.
struct Request {
    operation: &'static str,
    start: SystemTime,
    duration_nanos: u64,
    status_code: Option<i64>,
    span_error: bool,
}

/// What the test expects per operation (and per status class for the Prometheus view).
#[derive(Default)]
struct Expected {
    durations: Vec<u64>,
    errors: u64,
    classes: BTreeMap<String, u64>,
    codes: BTreeMap<String, u64>,
    by_class_durations: BTreeMap<String, Vec<u64>>,
}

fn class_of(code: Option<i64>) -> String {
    match code {
        Some(code @ 100..=599) => format!("{}xx", code / 100),
        _ => "unknown".into(),
    }
}

/// 3,000 requests over the last 20 minutes: lognormal-like bodies and a 3% tail of 0.5–5 s.
fn generate(now: SystemTime) -> Vec<Request> {
    let mut random = Random(7);
    let operations = ["GET /api/orders/{id}", "POST /api/cart", "GET /health"];
    (0..3_000)
        .map(|index| {
            let operation = operations[index % 3];
            let body_ms = (random.next_f64() * 4.0).exp() * if operation == "GET /health" { 0.2 } else { 3.0 };
            let tail = random.next_f64() < 0.03;
            let duration_ms = if tail { 500.0 + random.next_f64() * 4_500.0 } else { body_ms };
            let roll = random.next_f64();
            let status_code = match roll {
                r if r < 0.04 => Some(503),
                r if r < 0.07 => Some(404),
                r if r < 0.09 => Some(302),
                r if r < 0.10 => None,
                _ => Some(200),
            };
            Request {
                operation,
                start: now - Duration::from_secs(60 + (index as u64 * 1_200 / 3_000)),
                duration_nanos: (duration_ms * 1e6) as u64 + 1,
                status_code,
                span_error: status_code == Some(200) && random.next_f64() < 0.02,
            }
        })
        .collect()
}

fn parse_prometheus(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if line.is_empty() || line.starts_with('#') {
            assert!(line.is_empty() || line.starts_with("# HELP ") || line.starts_with("# TYPE "), "{line}");
            continue;
        }
        let brace = line.find('{').expect("labels");
        let name = line[..brace].to_owned();
        assert!(name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'), "metric name {name}");
        let mut labels = BTreeMap::new();
        let mut rest = &line[brace + 1..];
        loop {
            let equals = rest.find("=\"").expect("label");
            let label = rest[..equals].to_owned();
            let mut value = String::new();
            let mut characters = rest[equals + 2..].char_indices();
            let end = loop {
                let (offset, character) = characters.next().expect("closing quote");
                match character {
                    '\\' => match characters.next().expect("escape").1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    '"' => break offset,
                    other => value.push(other),
                }
            };
            labels.insert(label, value);
            rest = &rest[equals + 2 + end + 1..];
            if let Some(next) = rest.strip_prefix(',') {
                rest = next;
            } else {
                rest = rest.strip_prefix("} ").expect("end of labels");
                break;
            }
        }
        let value = if rest == "NaN" { f64::NAN } else { rest.parse().expect("sample value") };
        samples.push((name, labels, value));
    }
    samples
}

async fn check_performance(server: &TestServer, expected: &BTreeMap<&str, Expected>, time_range: &str) {
    let body =
        server.api_ok(&format!("/api/v1/projects/default/services/checkout/performance?timeRange={time_range}")).await;
    let total: usize = expected.values().map(|e| e.durations.len()).sum();
    assert_eq!(body["summary"]["requests"], total);
    let errors: u64 = expected.values().map(|e| e.errors).sum();
    assert_eq!(body["summary"]["errors"], errors);
    let error_rate = body["summary"]["error_rate"].as_f64().unwrap();
    assert!((error_rate - errors as f64 / total as f64).abs() < 1e-12);
    let mut all: Vec<u64> = expected.values().flat_map(|e| e.durations.clone()).collect();
    all.sort_unstable();
    for (name, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
        assert_within_bound(&body["summary"][name], exact_quantile(&all, q), &format!("{time_range} service {name}"));
    }
    let endpoints = body["endpoints"].as_array().unwrap();
    assert_eq!(endpoints.len(), expected.len(), "{body}");
    for endpoint in endpoints {
        let operation = endpoint["operation"].as_str().unwrap();
        let wanted = &expected[operation];
        let mut sorted = wanted.durations.clone();
        sorted.sort_unstable();
        assert_eq!(endpoint["requests"], sorted.len(), "{operation}");
        assert_eq!(endpoint["errors"], wanted.errors, "{operation}");
        let error_percent = endpoint["error_percent"].as_f64().unwrap();
        assert!((error_percent - wanted.errors as f64 * 100.0 / sorted.len() as f64).abs() < 1e-9);
        let classes: BTreeMap<String, u64> = serde_json::from_value(endpoint["status_classes"].clone()).unwrap();
        assert_eq!(classes, wanted.classes, "{operation}");
        // min, max and avg are exact (kept beside the bins).
        let close = |value: &Value, nanos: f64| (value.as_f64().unwrap() * 1e6 - nanos).abs() <= nanos * 1e-12 + 1e-6;
        assert!(close(&endpoint["min_ms"], sorted[0] as f64), "{operation} min");
        assert!(close(&endpoint["max_ms"], *sorted.last().unwrap() as f64), "{operation} max");
        let avg = sorted.iter().sum::<u64>() as f64 / sorted.len() as f64;
        assert!(close(&endpoint["avg_ms"], avg), "{operation} avg");
        for (name, q) in [("p50_ms", 0.5), ("p90_ms", 0.9), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
            assert_within_bound(
                &endpoint[name],
                exact_quantile(&sorted, q),
                &format!("{time_range} {operation} {name}"),
            );
        }
    }
    let series = body["series"].as_array().unwrap();
    assert_eq!(series.iter().map(|bucket| bucket["requests"].as_u64().unwrap()).sum::<u64>(), total as u64);
    assert_eq!(series.iter().map(|bucket| bucket["errors"].as_u64().unwrap()).sum::<u64>(), errors);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn known_latency_distributions_come_back_within_the_sketch_bound() {
    let server = TestServer::start().await;
    let now = SystemTime::now();
    let requests = generate(now);

    // Service "checkout": current semconv (http.request.method, http.route, ...).
    let checkout = provider(
        &server,
        Resource::builder_empty()
            .with_service_name("checkout")
            .with_attributes([KeyValue::new("deployment.environment.name", "prod")])
            .build(),
    );
    let tracer = checkout.tracer("apm-e2e");
    let mut expected: BTreeMap<&str, Expected> = BTreeMap::new();
    let mut slowest_orders: Vec<(u64, String)> = Vec::new();
    for request in &requests {
        let (method, route) = request.operation.split_once(' ').unwrap();
        let mut attributes = vec![KeyValue::new("http.request.method", method), KeyValue::new("http.route", route)];
        if let Some(code) = request.status_code {
            attributes.push(KeyValue::new("http.response.status_code", code));
        }
        let mut span = tracer
            .span_builder(request.operation)
            .with_kind(SpanKind::Server)
            .with_start_time(request.start)
            .with_attributes(attributes)
            .start(&tracer);
        if request.span_error {
            span.set_status(Status::error("handler failed"));
        }
        if request.operation == "GET /api/orders/{id}" {
            slowest_orders.push((request.duration_nanos, span.span_context().trace_id().to_string()));
        }
        span.end_with_timestamp(request.start + Duration::from_nanos(request.duration_nanos));
        let wanted = expected.entry(request.operation).or_default();
        wanted.durations.push(request.duration_nanos);
        let is_error = request.span_error || request.status_code.is_some_and(|code| code >= 500);
        wanted.errors += u64::from(is_error);
        let class = class_of(request.status_code);
        *wanted.classes.entry(class.clone()).or_default() += 1;
        wanted.by_class_durations.entry(class).or_default().push(request.duration_nanos);
        if let Some(code) = request.status_code {
            *wanted.codes.entry(code.to_string()).or_default() += 1;
        }
    }
    // A CLIENT span is not a request to the service.
    tracer
        .span_builder("GET")
        .with_kind(SpanKind::Client)
        .with_attributes([KeyValue::new("http.request.method", "GET")])
        .start(&tracer)
        .end();

    // Service "legacy": old semconv only (http.method, http.target with ids and a query,
    // http.status_code, deployment.environment), and a root span without a kind.
    let legacy = provider(
        &server,
        Resource::builder_empty()
            .with_service_name("legacy")
            .with_attributes([KeyValue::new("deployment.environment", "staging")])
            .build(),
    );
    let legacy_tracer = legacy.tracer("apm-e2e");
    for (index, code) in [200i64, 200, 500, 404].into_iter().enumerate() {
        let start = now - Duration::from_secs(120);
        let mut span = legacy_tracer
            .span_builder(format!("GET /users/{index}"))
            .with_kind(if index == 0 { SpanKind::Internal } else { SpanKind::Server })
            .with_start_time(start)
            .with_attributes([
                KeyValue::new("http.method", "GET"),
                KeyValue::new("http.target", format!("/users/{}?page=2", 1000 + index)),
                KeyValue::new("http.status_code", code),
            ])
            .start(&legacy_tracer);
        span.end_with_timestamp(start + Duration::from_millis(10 * (index as u64 + 1)));
    }
    tokio::task::spawn_blocking(move || {
        checkout.shutdown().expect("checkout spans exported");
        legacy.shutdown().expect("legacy spans exported");
    })
    .await
    .unwrap();

    check_performance(&server, &expected, "1h").await;

    // Mixed semconv: the old attributes give the same operation shape, environment and errors.
    let legacy_body =
        server.api_ok("/api/v1/projects/default/services/legacy/performance?timeRange=1h&environment=staging").await;
    let legacy_endpoints = legacy_body["endpoints"].as_array().unwrap();
    assert_eq!(legacy_endpoints.len(), 1, "{legacy_body}");
    assert_eq!(legacy_endpoints[0]["operation"], "GET /users/{id}");
    assert_eq!(legacy_endpoints[0]["requests"], 4, "the root INTERNAL span with HTTP attributes counts");
    assert_eq!(legacy_endpoints[0]["errors"], 1);
    assert_eq!(legacy_endpoints[0]["status_classes"], serde_json::json!({"2xx": 2, "4xx": 1, "5xx": 1}));
    let other_environment =
        server.api_ok("/api/v1/projects/default/services/legacy/performance?timeRange=1h&environment=prod").await;
    assert_eq!(other_environment["summary"]["requests"], 0);

    // Endpoint detail: histogram from the sketch's bins, exact codes, exact slowest traces.
    let orders = &expected["GET /api/orders/{id}"];
    let detail = server
        .api_ok("/api/v1/projects/default/services/checkout/endpoints/GET%20%2Fapi%2Forders%2F%7Bid%7D?timeRange=1h&limit=5")
        .await;
    assert_eq!(detail["stats"]["requests"], orders.durations.len());
    let histogram = detail["histogram"].as_array().unwrap();
    assert_eq!(histogram.iter().map(|bin| bin["count"].as_u64().unwrap()).sum::<u64>(), orders.durations.len() as u64);
    for bin in histogram {
        let (lower, upper) = (bin["lower_ms"].as_f64().unwrap() * 1e6, bin["upper_ms"].as_f64().unwrap() * 1e6);
        let inside = orders
            .durations
            .iter()
            .filter(|&&d| lower * (1.0 - 1e-9) <= d as f64 && (d as f64) < upper * (1.0 + 1e-9))
            .count();
        assert!(inside as u64 >= bin["count"].as_u64().unwrap(), "bin [{lower}, {upper}) holds its durations");
    }
    let codes: BTreeMap<String, u64> = serde_json::from_value(detail["status_codes"].clone()).unwrap();
    assert_eq!(codes, orders.codes);
    slowest_orders.sort_by_key(|order| std::cmp::Reverse(order.0));
    let slowest = detail["slowest_traces"].as_array().unwrap();
    assert_eq!(slowest.len(), 5);
    for (reported, (duration, trace_id)) in slowest.iter().zip(&slowest_orders) {
        assert_eq!(reported["trace_id"].as_str().unwrap(), trace_id);
        assert!((reported["duration_ms"].as_f64().unwrap() * 1e6 - *duration as f64).abs() < 1.0);
    }
    let link = slowest[0]["trace"].as_str().unwrap();
    assert_eq!(server.api_get(link).await.0, 200, "{link} opens the trace");

    // Bad parameters and unknown services.
    for bad in ["performance?timeRange=7x", "performance?timeRange=91d", "performance?servce=a", "endpoints/x?limit=11"]
    {
        assert_eq!(server.api_get(&format!("/api/v1/projects/default/services/checkout/{bad}")).await.0, 400, "{bad}");
    }
    assert_eq!(server.api_get("/api/v1/projects/default/services/nobody/performance").await.0, 404);
    assert_eq!(server.api_get("/api/v1/projects/nope/services/checkout/performance").await.0, 404);

    // The Prometheus view parses and agrees with the JSON API and the exact values.
    let response = server
        .http
        .get(format!("{}/api/v1/projects/default/metrics/prometheus?window=1h", server.http_base()))
        .bearer_auth(&server.read_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    let samples = parse_prometheus(&response.text().await.unwrap());
    let sample = |name: &str, route: &str, class: &str, quantile: Option<&str>| -> f64 {
        samples
            .iter()
            .find(|(sample_name, labels, _)| {
                sample_name == name
                    && labels["service"] == "checkout"
                    && labels["route"] == route
                    && labels["status_class"] == class
                    && labels.get("quantile").map(String::as_str) == quantile
            })
            .unwrap_or_else(|| panic!("{name} {route} {class} {quantile:?}"))
            .2
    };
    for (operation, wanted) in &expected {
        let route = operation.split_once(' ').unwrap().1;
        let mut count = 0.0;
        let mut errors = 0.0;
        for (class, durations) in &wanted.by_class_durations {
            let mut sorted = durations.clone();
            sorted.sort_unstable();
            assert_eq!(sample("http_server_request_duration_seconds_count", route, class, None), sorted.len() as f64);
            let sum = sample("http_server_request_duration_seconds_sum", route, class, None);
            assert!((sum * 1e9 - sorted.iter().sum::<u64>() as f64).abs() < 1e3, "{operation} {class} sum");
            for (label, q) in [("0.5", 0.5), ("0.9", 0.9), ("0.95", 0.95), ("0.99", 0.99)] {
                let seconds = sample("http_server_request_duration_seconds", route, class, Some(label));
                let value = Value::from(seconds * 1e3);
                assert_within_bound(
                    &value,
                    exact_quantile(&sorted, q),
                    &format!("prometheus {operation} {class} {label}"),
                );
            }
            count += sample("http_server_requests_total", route, class, None);
            errors += sample("http_server_errors_total", route, class, None);
        }
        assert_eq!(count, wanted.durations.len() as f64, "{operation}: counters agree with the JSON API");
        assert_eq!(errors, wanted.errors as f64);
    }
    let legacy_sample = samples
        .iter()
        .find(|(name, labels, _)| {
            name == "http_server_requests_total" && labels["service"] == "legacy" && labels["status_class"] == "5xx"
        })
        .expect("legacy 5xx counter");
    assert_eq!(
        (
            legacy_sample.1["route"].as_str(),
            legacy_sample.1["method"].as_str(),
            legacy_sample.1["environment"].as_str()
        ),
        ("/users/{id}", "GET", "staging")
    );

    // Coarsening every minute row into hours keeps counts exact and percentiles in bound (a
    // 24 h range so the hour rows starting before the last hour are inside).
    let store = server.server.as_ref().unwrap().store.clone();
    let later = now.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64 + 3 * 3_600_000_000_000;
    let merged = tokio::task::spawn_blocking(move || {
        sightline_server::retention::coarsen_rollups_once(store.as_ref(), later, Duration::from_secs(2 * 3600), 500)
    })
    .await
    .unwrap()
    .unwrap();
    assert!(merged >= 20, "the minute rows of 20 minutes were coarsened ({merged})");
    check_performance(&server, &expected, "24h").await;
    server.stop().await;
}
