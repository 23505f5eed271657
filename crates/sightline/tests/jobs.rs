//! Background jobs and messaging end to end, through the official OpenTelemetry Rust SDK over
//! OTLP/HTTP: a worker that publishes to RabbitMQ and consumes its own messages (new messaging
//! semconv, consumers linked to the producer spans: lag from the link), a Kafka consumer with the
//! old semconv (`messaging.destination`, `messaging.operation`; no lag source), an Azure Service
//! Bus consumer with `messaging.servicebus.message.enqueued_time` (lag from the attribute), and
//! plain scheduled jobs (root INTERNAL spans with `code.function.name`). Then `GET …/jobs` and
//! `GET …/jobs/{name}` are checked: counts, failures, duration and lag percentiles within the
//! DDSketch bound, sort orders, filters, series and errors.

// A failed unwrap is a failed test, as in the other end-to-end tests.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use common::sketch::{assert_within_bound, exact_quantile};
use opentelemetry::trace::{Link, Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use serde_json::Value;

/// A provider that exports only at shutdown, in one request of up to 5,000 spans: producer and
/// consumer spans of a service then share a request, which the link-based lag needs.
fn provider(server: &TestServer, service: &str) -> SdkTracerProvider {
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", server.http_base()))
        .with_headers(HashMap::from([("Authorization".to_owned(), format!("Bearer {}", server.ingest_key))]))
        .build()
        .unwrap();
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(5_000)
        .with_max_export_batch_size(5_000)
        .with_scheduled_delay(Duration::from_secs(3_600))
        .build();
    let processor = BatchSpanProcessor::builder(exporter).with_batch_config(config).build();
    let resource = Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attribute(KeyValue::new("deployment.environment.name", "prod"))
        .build();
    SdkTracerProvider::builder().with_resource(resource).with_span_processor(processor).build()
}

async fn shutdown(provider: SdkTracerProvider) {
    tokio::task::spawn_blocking(move || provider.shutdown().expect("spans exported")).await.unwrap();
}

/// What was sent for one (name, operation): durations and lags in ns, failures.
#[derive(Default)]
struct Sent {
    durations: Vec<u64>,
    lags: Vec<u64>,
    failures: u64,
}

impl Sent {
    fn record(&mut self, duration_nanos: u64, lag_nanos: Option<u64>, failed: bool) {
        self.durations.push(duration_nanos);
        self.lags.extend(lag_nanos);
        self.failures += u64::from(failed);
    }
}

fn nanos_since_epoch(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

/// The worker: 200 sends to `thumbnails`, each consumed 100 ms to 5 s later (10 failed).
async fn send_worker(server: &TestServer, base: SystemTime, sent: &mut HashMap<(&str, &str), Sent>) {
    let provider = provider(server, "worker");
    let tracer = provider.tracer("jobs-e2e");
    for index in 0..200u64 {
        let produced_at = base + Duration::from_millis(index * 7);
        let send_nanos = 1_000_000 + index * 10_000;
        let mut producer = tracer
            .span_builder("send thumbnails")
            .with_kind(SpanKind::Producer)
            .with_start_time(produced_at)
            .with_attributes(vec![
                KeyValue::new("messaging.system", "rabbitmq"),
                KeyValue::new("messaging.destination.name", "thumbnails"),
                KeyValue::new("messaging.operation.type", "send"),
            ])
            .start(&tracer);
        let producer_context = producer.span_context().clone();
        producer.end_with_timestamp(produced_at + Duration::from_nanos(send_nanos));
        sent.entry(("thumbnails", "send")).or_default().record(send_nanos, None, false);

        let lag_nanos = (index % 50 + 1) * 100_000_000;
        let consumed_at = produced_at + Duration::from_nanos(lag_nanos);
        let process_nanos = (20 + index * 3) * 1_000_000 + 11;
        let failed = index % 20 == 3;
        let mut consumer = tracer
            .span_builder("process thumbnails")
            .with_kind(SpanKind::Consumer)
            .with_start_time(consumed_at)
            .with_links(vec![Link::with_context(producer_context)])
            .with_attributes(vec![
                KeyValue::new("messaging.system", "rabbitmq"),
                KeyValue::new("messaging.destination.name", "thumbnails"),
                KeyValue::new("messaging.operation.type", "process"),
            ])
            .start_with_context(&tracer, &Context::new());
        if failed {
            consumer.set_status(Status::error("image too large"));
        }
        consumer.end_with_timestamp(consumed_at + Duration::from_nanos(process_nanos));
        sent.entry(("thumbnails", "process")).or_default().record(process_nanos, Some(lag_nanos), failed);
    }
    shutdown(provider).await;
}

/// Billing: 300 Kafka messages in the old semconv, no lag source; 5 nightly jobs.
async fn send_billing(server: &TestServer, base: SystemTime, sent: &mut HashMap<(&str, &str), Sent>) {
    let provider = provider(server, "billing");
    let tracer = provider.tracer("jobs-e2e");
    for index in 0..300u64 {
        let start = base + Duration::from_millis(index * 3);
        let duration_nanos = 2_000_000 + (index % 17) * 250_000;
        let failed = index % 100 == 0;
        let mut span = tracer
            .span_builder("invoices process")
            .with_kind(SpanKind::Consumer)
            .with_start_time(start)
            .with_attributes(vec![
                KeyValue::new("messaging.system", "kafka"),
                KeyValue::new("messaging.destination", "invoices"),
                KeyValue::new("messaging.operation", "process"),
            ])
            .start(&tracer);
        if failed {
            span.set_status(Status::error("ledger closed"));
        }
        span.end_with_timestamp(start + Duration::from_nanos(duration_nanos));
        sent.entry(("invoices", "process")).or_default().record(duration_nanos, None, failed);
    }
    for run in 0..5u64 {
        let start = base + Duration::from_secs(run * 10);
        let duration_nanos = (1_000 + run * 500) * 1_000_000;
        let mut job = tracer
            .span_builder("nightly reports")
            .with_kind(SpanKind::Internal)
            .with_start_time(start)
            .with_attributes(vec![KeyValue::new("code.function.name", "reports.nightly")])
            .start_with_context(&tracer, &Context::new());
        // A function the job calls is not a job itself (it has a parent).
        let parent = Context::new().with_remote_span_context(job.span_context().clone());
        let mut child = tracer
            .span_builder("render")
            .with_start_time(start)
            .with_attributes(vec![KeyValue::new("code.function.name", "reports.render")])
            .start_with_context(&tracer, &parent);
        child.end_with_timestamp(start + Duration::from_millis(1));
        job.end_with_timestamp(start + Duration::from_nanos(duration_nanos));
        sent.entry(("reports.nightly", "job")).or_default().record(duration_nanos, None, false);
    }
    shutdown(provider).await;
}

/// Mailer: 100 Service Bus messages whose enqueue time (epoch seconds) is 2 to 11 s earlier.
async fn send_mailer(server: &TestServer, base: SystemTime, sent: &mut HashMap<(&str, &str), Sent>) {
    let provider = provider(server, "mailer");
    let tracer = provider.tracer("jobs-e2e");
    for index in 0..100u64 {
        let start = base + Duration::from_millis(index * 13 + 1);
        let start_nanos = nanos_since_epoch(start);
        let enqueued_seconds = start_nanos / 1_000_000_000 - (2 + index % 10);
        let lag_nanos = start_nanos - enqueued_seconds * 1_000_000_000;
        let duration_nanos = 5_000_000 + index * 1_000_000;
        let mut span = tracer
            .span_builder("process mail")
            .with_kind(SpanKind::Consumer)
            .with_start_time(start)
            .with_attributes(vec![
                KeyValue::new("messaging.system", "servicebus"),
                KeyValue::new("messaging.destination.name", "mail"),
                KeyValue::new("messaging.operation.type", "process"),
                KeyValue::new("messaging.servicebus.message.enqueued_time", enqueued_seconds as i64),
            ])
            .start(&tracer);
        span.end_with_timestamp(start + Duration::from_nanos(duration_nanos));
        sent.entry(("mail", "process")).or_default().record(duration_nanos, Some(lag_nanos), false);
    }
    shutdown(provider).await;
}

fn job_rows(body: &Value) -> Vec<(String, String)> {
    body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|row| (row["name"].as_str().unwrap().to_owned(), row["operation"].as_str().unwrap().to_owned()))
        .collect()
}

fn row<'a>(body: &'a Value, name: &str, operation: &str) -> &'a Value {
    body["jobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|row| row["name"] == name && row["operation"] == operation)
        .unwrap_or_else(|| panic!("no {name} {operation} in {body}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jobs_and_messaging_count_fail_time_and_lag() {
    let server = TestServer::start().await;
    // Whole minutes in the past, inside the hour the API is asked about.
    let base = SystemTime::now() - Duration::from_secs(600);
    let mut sent: HashMap<(&str, &str), Sent> = HashMap::new();
    send_worker(&server, base, &mut sent).await;
    send_billing(&server, base, &mut sent).await;
    send_mailer(&server, base, &mut sent).await;

    let body = server.api_ok("/api/v1/projects/default/jobs?timeRange=1h").await;
    assert_eq!(body["sort"], "throughput");
    let rows = job_rows(&body);
    assert_eq!(rows.len(), 5, "thumbnails send/process, invoices, mail, reports.nightly: {body}");
    assert_eq!(rows[0], ("invoices".to_owned(), "process".to_owned()), "most spans first");
    for ((name, operation), expected) in &mut sent {
        let reported = row(&body, name, operation);
        let what = format!("{name} {operation}");
        expected.durations.sort_unstable();
        assert_eq!(reported["count"], expected.durations.len(), "{what}");
        assert_eq!(reported["failures"], expected.failures, "{what}");
        assert_eq!(reported["environment"], "prod", "{what}");
        let count = expected.durations.len() as f64;
        assert!((reported["failure_rate"].as_f64().unwrap() - expected.failures as f64 / count).abs() < 1e-12);
        assert!((reported["throughput_per_minute"].as_f64().unwrap() - count / 60.0).abs() < 0.05 * count / 60.0);
        let max = *expected.durations.last().unwrap() as f64;
        assert!((reported["max_ms"].as_f64().unwrap() * 1e6 - max).abs() < 1e-3, "{what} max");
        for (field, q) in [("p50_ms", 0.5), ("p95_ms", 0.95), ("p99_ms", 0.99)] {
            assert_within_bound(&reported[field], exact_quantile(&expected.durations, q), &format!("{what} {field}"));
        }
        if expected.lags.is_empty() {
            assert_eq!(reported["lag"], Value::Null, "{what}: no lag source");
        } else {
            expected.lags.sort_unstable();
            assert_eq!(reported["lag"]["samples"], expected.lags.len(), "{what}");
            for (field, q) in [("p50_ms", 0.5), ("p95_ms", 0.95)] {
                let exact = exact_quantile(&expected.lags, q);
                assert_within_bound(&reported["lag"][field], exact, &format!("{what} lag {field}"));
            }
        }
    }
    assert_eq!(row(&body, "invoices", "process")["messaging_system"], "kafka", "old semconv");
    assert_eq!(row(&body, "reports.nightly", "job")["service"], "billing");
    assert_eq!(row(&body, "thumbnails", "process")["lag"]["max_ms"], 5_000.0);

    // Sorting and filters.
    let by_lag = server.api_ok("/api/v1/projects/default/jobs?timeRange=1h&sort=lag").await;
    assert_eq!(
        job_rows(&by_lag)[..2],
        [("mail".to_owned(), "process".to_owned()), ("thumbnails".to_owned(), "process".to_owned())]
    );
    let by_failures = server.api_ok("/api/v1/projects/default/jobs?timeRange=1h&sort=failure_rate&limit=1").await;
    assert_eq!(job_rows(&by_failures), [("thumbnails".to_owned(), "process".to_owned())], "10 of 200");
    let worker = server.api_ok("/api/v1/projects/default/jobs?timeRange=1h&service=worker").await;
    assert_eq!(job_rows(&worker).len(), 2);
    let staging = server.api_ok("/api/v1/projects/default/jobs?timeRange=1h&environment=staging").await;
    assert_eq!(job_rows(&staging).len(), 0);

    // One destination in detail: both operations, a series adding up, slow traces.
    let detail = server.api_ok("/api/v1/projects/default/jobs/thumbnails?timeRange=1h&limit=3").await;
    assert_eq!(detail["summary"]["count"], 400);
    assert_eq!(detail["summary"]["failures"], 10);
    assert_eq!(detail["operations"].as_array().unwrap().len(), 2);
    assert_eq!(detail["bucket_seconds"], 300, "a range just over an hour (started at a whole minute)");
    let series_total: u64 =
        detail["series"].as_array().unwrap().iter().map(|bucket| bucket["count"].as_u64().unwrap()).sum();
    assert_eq!(series_total, 400);
    let slowest = detail["slowest_traces"].as_array().unwrap();
    assert_eq!(slowest.len(), 3);
    let slowest_sent = *sent[&("thumbnails", "process")].durations.last().unwrap() as f64;
    assert!((slowest[0]["duration_ms"].as_f64().unwrap() * 1e6 - slowest_sent).abs() < 1e-3);
    let trace_link = slowest[0]["trace"].as_str().unwrap();
    let (status, trace) = server.api_get(trace_link).await;
    assert_eq!(status, 200, "{trace}");

    // Errors.
    for (path, expected) in [
        ("/api/v1/projects/default/jobs/nothing-here?timeRange=1h", 404),
        ("/api/v1/projects/default/jobs?sort=fastest", 400),
        ("/api/v1/projects/default/jobs?servce=worker", 400),
        ("/api/v1/projects/default/jobs?timeRange=forever", 400),
        ("/api/v1/projects/default/jobs/thumbnails?limit=6", 400),
    ] {
        let (status, error) = server.api_get(path).await;
        assert_eq!(status, expected, "{path}: {error}");
        assert!(error["error"]["message"].as_str().is_some_and(|message| !message.is_empty()), "{path}: {error}");
    }
    let unauthenticated =
        server.http.get(format!("{}/api/v1/projects/default/jobs", server.http_base())).send().await.unwrap();
    assert_eq!(unauthenticated.status().as_u16(), 401);
    server.stop().await;
}
