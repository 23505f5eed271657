//! The middleware in an axum router, with an in-memory span exporter and metric reader.

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use http::{Request, StatusCode};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{SpanKind, Status, TracerProvider as _};
use opentelemetry_sdk::metrics::data::{AggregatedMetrics, MetricData};
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

use super::*;
use crate::propagation::{Propagation, install};

struct Harness {
    spans: InMemorySpanExporter,
    tracer_provider: SdkTracerProvider,
    metrics: InMemoryMetricExporter,
    meter_provider: SdkMeterProvider,
    _subscriber: tracing::subscriber::DefaultGuard,
}

impl Harness {
    fn new() -> Self {
        install(&Propagation::DEFAULT);
        let spans = InMemorySpanExporter::default();
        let tracer_provider = SdkTracerProvider::builder().with_simple_exporter(spans.clone()).build();
        let metrics = InMemoryMetricExporter::default();
        let meter_provider =
            SdkMeterProvider::builder().with_reader(PeriodicReader::builder(metrics.clone()).build()).build();
        let subscriber = tracing_subscriber::registry()
            .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("test")));
        let _subscriber = tracing::subscriber::set_default(subscriber);
        Harness { spans, tracer_provider, metrics, meter_provider, _subscriber }
    }

    fn router(&self) -> Router {
        Router::new()
            .route("/items/{id}", get(|| async { "ok" }))
            .route("/boom", get(|| async { StatusCode::INTERNAL_SERVER_ERROR }))
            .route(
                "/panic",
                get(|| async {
                    if std::hint::black_box(true) {
                        panic!("handler exploded");
                    }
                    "unreachable"
                }),
            )
            .route("/echo-baggage", get(|| async { format!("{:?}", crate::context::RequestIdentity::current()) }))
            .layer(SightlineLayer::with_meter(&self.meter_provider.meter("test")))
    }

    fn finished(&self) -> Vec<SpanData> {
        let _ = self.tracer_provider.force_flush();
        self.spans.get_finished_spans().expect("spans")
    }
}

fn attribute(span: &SpanData, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key.as_str() == key).map(|kv| kv.value.to_string())
}

#[tokio::test]
async fn server_span_has_semconv_attributes_ids_and_a_parent_from_traceparent() {
    let harness = Harness::new();
    let request = Request::get("/items/42?x=1")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .header("x-session-id", "sess-abc")
        .header("x-user-id", "user-7")
        .header("user-agent", "curl/8.0")
        .header("x-forwarded-for", "203.0.113.9, 10.0.0.1")
        .body(Body::empty())
        .expect("request");
    let response = harness.router().oneshot(request).await.expect("response");
    assert_eq!(response.status(), StatusCode::OK);
    let request_id = response.headers().get("x-request-id").and_then(|value| value.to_str().ok()).expect("echoed");
    assert!(uuid::Uuid::parse_str(request_id).is_ok(), "generated id is a UUID: {request_id}");

    let spans = harness.finished();
    let span = spans.iter().find(|span| span.span_kind == SpanKind::Server).expect("a server span");
    assert_eq!(span.name, "GET /items/{id}");
    assert_eq!(span.span_context.trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_eq!(span.parent_span_id.to_string(), "00f067aa0ba902b7");
    for (key, expected) in [
        ("http.request.method", "GET"),
        ("http.route", "/items/{id}"),
        ("url.path", "/items/42"),
        ("user_agent.original", "curl/8.0"),
        ("client.address", "203.0.113.9"),
        ("session.id", "sess-abc"),
        ("user.id", "user-7"),
        ("http.response.status_code", "200"),
        ("http.request.header.x-request-id", request_id),
    ] {
        assert_eq!(attribute(span, key).as_deref(), Some(expected), "{key}");
    }
    assert_eq!(span.status, Status::Unset);
}

#[tokio::test]
async fn a_sent_request_id_is_kept_and_ids_reach_handlers_through_baggage() {
    let harness = Harness::new();
    let request = Request::get("/echo-baggage")
        .header("x-request-id", "req-123")
        .header("baggage", "session.id=sess-from-baggage,user.id=u-9")
        .body(Body::empty())
        .expect("request");
    let response = harness.router().oneshot(request).await.expect("response");
    assert_eq!(response.headers()["x-request-id"], "req-123");
    let body = http_body_util::BodyExt::collect(response.into_body()).await.expect("body").to_bytes();
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("sess-from-baggage") && text.contains("u-9") && text.contains("req-123"), "{text}");
}

#[tokio::test]
async fn five_hundreds_and_panics_are_errors_with_exceptions_and_metrics_count_every_request() {
    let harness = Harness::new();
    let router = harness.router();
    let response = router.clone().oneshot(Request::get("/boom").body(Body::empty()).expect("request")).await;
    assert_eq!(response.expect("response").status(), StatusCode::INTERNAL_SERVER_ERROR);
    // The panic is re-raised after recording: it reaches the caller as a panic.
    let panicked =
        tokio::spawn(router.clone().oneshot(Request::get("/panic").body(Body::empty()).expect("request"))).await;
    assert!(panicked.expect_err("re-raised").is_panic());
    let not_found = router.oneshot(Request::get("/nowhere").body(Body::empty()).expect("request")).await;
    assert_eq!(not_found.expect("response").status(), StatusCode::NOT_FOUND);

    let spans = harness.finished();
    let boom = spans.iter().find(|span| span.name == "GET /boom").expect("boom span");
    assert!(matches!(boom.status, Status::Error { .. }));
    assert_eq!(attribute(boom, "error.type").as_deref(), Some("500"));
    let panic = spans.iter().find(|span| span.name == "GET /panic").expect("panic span");
    assert!(matches!(panic.status, Status::Error { .. }));
    let exception = panic.events.iter().find(|event| event.name == "exception").expect("exception event");
    assert!(exception.attributes.iter().any(|kv| kv.value.to_string() == "handler exploded"));
    let not_found = spans.iter().find(|span| attribute(span, "http.response.status_code").as_deref() == Some("404"));
    let not_found = not_found.expect("404 span");
    assert_eq!(not_found.name, "GET", "no route matched: the span is named by the method alone");
    assert_eq!(not_found.status, Status::Unset, "4xx is not a server error");

    harness.meter_provider.force_flush().expect("flush");
    let exported = harness.metrics.get_finished_metrics().expect("metrics");
    let metric = exported
        .iter()
        .flat_map(|resource| resource.scope_metrics())
        .flat_map(|scope| scope.metrics())
        .find(|metric| metric.name() == "http.server.request.duration")
        .expect("duration histogram");
    assert_eq!(metric.unit(), "s");
    let AggregatedMetrics::F64(MetricData::Histogram(histogram)) = metric.data() else { panic!("not a histogram") };
    let total: u64 = histogram.data_points().map(|point| point.count()).sum();
    assert_eq!(total, 3, "every request counted, the panicking one too");
    let error_types: Vec<String> = histogram
        .data_points()
        .flat_map(|point| {
            point.attributes().filter(|kv| kv.key.as_str() == "error.type").map(|kv| kv.value.to_string())
        })
        .collect();
    assert!(error_types.contains(&"500".to_owned()) && error_types.contains(&"panic".to_owned()), "{error_types:?}");
    assert_eq!(
        histogram.data_points().next().map(|point| point.bounds().count()),
        Some(DURATION_BUCKETS_SECONDS.len())
    );
}
