//! SDK costs on the request path, each with a same-run baseline:
//! - `track()` enqueue (context capture, id, timestamp, bounded-queue send), events drained by a
//!   loopback receiver between rounds so the queue never fills;
//! - the middleware around a trivial axum handler vs the bare handler, called in-process with
//!   `oneshot` (no sockets), with the OpenTelemetry SDK recording spans (batch processor,
//!   discarding exporter) and the duration histogram;
//! - the event client's resident memory at rest with the default queue.
//!
//! Criterion reports means; per-call p50 / p99 come from an HDR histogram over timed single
//! calls (each timing includes one `Instant::now()` pair, ≈ 25–40 ns here).
//!
//! Run: `cargo bench -p sightline-sdk --bench sdk`.

use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::routing::get;
use criterion::Criterion;
use hdrhistogram::Histogram;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::metrics::{InMemoryMetricExporter, PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider, SpanData, SpanExporter};
use sightline_sdk::{Event, EventClient, EventClientConfig, SightlineLayer};
use tower::ServiceExt;
use tracing_subscriber::layer::SubscriberExt;

/// Drops every span: the cost measured is recording, not exporting.
#[derive(Debug)]
struct DiscardingExporter;

impl SpanExporter for DiscardingExporter {
    async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
        Ok(())
    }
}

/// A loopback `/v1/events` receiver answering 202 on its own thread; returns its base URL.
fn start_receiver() -> String {
    let (ready, address) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let app = Router::new()
                .route("/v1/events", axum::routing::post(|| async { (axum::http::StatusCode::ACCEPTED, "{}") }));
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            ready.send(listener.local_addr().expect("addr")).expect("bench waits");
            axum::serve(listener, app).await.expect("serve");
        });
    });
    format!("http://{}", address.recv().expect("receiver started"))
}

fn request_context() -> Context {
    let span_context = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
        SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    Context::new()
        .with_remote_span_context(span_context)
        .with_baggage([KeyValue::new("session.id", "sess-bench"), KeyValue::new("user.id", "user-1")])
}

const ROUND: u64 = 5_000;

fn track_event(client: &EventClient) -> bool {
    client.track(Event::custom("add_to_cart").property("page.path", "/cart"))
}

fn bench_track(criterion: &mut Criterion, client: &EventClient) {
    let _attached = request_context().attach();
    criterion.bench_function("track() enqueue", |bencher| {
        bencher.iter_custom(|iterations| {
            let mut measured = Duration::ZERO;
            let mut left = iterations;
            while left > 0 {
                let round = left.min(ROUND);
                let started = Instant::now();
                for _ in 0..round {
                    std::hint::black_box(track_event(client));
                }
                measured += started.elapsed();
                left -= round;
                client.flush(Duration::from_secs(30)).expect("receiver drains the queue");
            }
            measured
        })
    });
    let stats = client.stats();
    assert_eq!(stats.dropped_queue_full, 0, "the queue never filled: {stats:?}");
}

fn track_percentiles(client: &EventClient) -> Histogram<u64> {
    let _attached = request_context().attach();
    let mut histogram = Histogram::<u64>::new(3).expect("histogram");
    for _ in 0..40 {
        for _ in 0..ROUND {
            let started = Instant::now();
            std::hint::black_box(track_event(client));
            let _ = histogram.record(started.elapsed().as_nanos() as u64);
        }
        client.flush(Duration::from_secs(30)).expect("drained");
    }
    histogram
}

fn routers(meter_provider: &SdkMeterProvider) -> (Router, Router) {
    let handler = || async { "ok" };
    let bare = Router::new().route("/items/{id}", get(handler));
    let instrumented = Router::new()
        .route("/items/{id}", get(handler))
        .layer(SightlineLayer::with_meter(&meter_provider.meter("bench")));
    (bare, instrumented)
}

fn request() -> axum::http::Request<Body> {
    axum::http::Request::get("/items/42")
        .header("x-session-id", "sess-bench")
        .header("traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        .header("user-agent", "bench/1.0")
        .body(Body::empty())
        .expect("request")
}

fn middleware_percentiles(
    runtime: &tokio::runtime::Runtime,
    bare: &Router,
    instrumented: &Router,
) -> (Histogram<u64>, Histogram<u64>) {
    let mut bare_histogram = Histogram::<u64>::new(3).expect("histogram");
    let mut instrumented_histogram = Histogram::<u64>::new(3).expect("histogram");
    runtime.block_on(async {
        // Interleaved, so both see the same machine state.
        for _ in 0..50_000 {
            let started = Instant::now();
            let response = bare.clone().oneshot(request()).await.expect("response");
            let _ = bare_histogram.record(started.elapsed().as_nanos() as u64);
            std::hint::black_box(response);
            let started = Instant::now();
            let response = instrumented.clone().oneshot(request()).await.expect("response");
            let _ = instrumented_histogram.record(started.elapsed().as_nanos() as u64);
            std::hint::black_box(response);
        }
    });
    (bare_histogram, instrumented_histogram)
}

fn resident_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

fn print_percentiles(name: &str, histogram: &Histogram<u64>) {
    println!(
        "{name}: n={} p50={:.3} µs p99={:.3} µs p99.9={:.3} µs max={:.3} µs",
        histogram.len(),
        histogram.value_at_quantile(0.5) as f64 / 1e3,
        histogram.value_at_quantile(0.99) as f64 / 1e3,
        histogram.value_at_quantile(0.999) as f64 / 1e3,
        histogram.max() as f64 / 1e3
    );
}

fn main() {
    // Memory at rest first, before the benches allocate anything else.
    let before = resident_bytes();
    let idle = EventClient::new(EventClientConfig::new("http://127.0.0.1:9")).expect("client");
    std::thread::sleep(Duration::from_millis(200));
    let after = resident_bytes();
    if let (Some(before), Some(after)) = (before, after) {
        println!(
            "event client at rest (default queue {} events): RSS +{:.1} KiB",
            sightline_sdk::events::config::DEFAULT_QUEUE_CAPACITY,
            (after.saturating_sub(before)) as f64 / 1024.0
        );
    }
    drop(idle);

    let receiver = start_receiver();
    let client = EventClient::new(EventClientConfig::new(receiver)).expect("client");

    let tracer_provider = SdkTracerProvider::builder()
        .with_span_processor(
            BatchSpanProcessor::builder(DiscardingExporter)
                .with_batch_config(BatchConfigBuilder::default().with_max_queue_size(65_536).build())
                .build(),
        )
        .build();
    let metrics = InMemoryMetricExporter::default();
    let meter_provider = SdkMeterProvider::builder()
        .with_reader(PeriodicReader::builder(metrics).with_interval(Duration::from_secs(3600)).build())
        .build();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_opentelemetry::layer().with_tracer(tracer_provider.tracer("bench")));
    tracing::subscriber::set_global_default(subscriber).expect("first subscriber");
    sightline_sdk::propagation::install(&sightline_sdk::propagation::Propagation::DEFAULT);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
    let (bare, instrumented) = routers(&meter_provider);

    let mut criterion = Criterion::default().configure_from_args();
    bench_track(&mut criterion, &client);
    criterion.bench_function("axum handler, bare", |bencher| {
        bencher.to_async(&runtime).iter(|| bare.clone().oneshot(request()))
    });
    criterion.bench_function("axum handler, with SightlineLayer", |bencher| {
        bencher.to_async(&runtime).iter(|| instrumented.clone().oneshot(request()))
    });
    criterion.final_summary();

    print_percentiles("track() enqueue", &track_percentiles(&client));
    let (bare_histogram, instrumented_histogram) = middleware_percentiles(&runtime, &bare, &instrumented);
    print_percentiles("axum bare", &bare_histogram);
    print_percentiles("axum + SightlineLayer", &instrumented_histogram);
    println!(
        "middleware overhead: p50 +{:.3} µs, p99 +{:.3} µs",
        (instrumented_histogram.value_at_quantile(0.5) as f64 - bare_histogram.value_at_quantile(0.5) as f64) / 1e3,
        (instrumented_histogram.value_at_quantile(0.99) as f64 - bare_histogram.value_at_quantile(0.99) as f64) / 1e3
    );
    let _ = client.shutdown(Duration::from_secs(5));
    let _ = tracer_provider.shutdown();
}
