//! The event client against a real Sightline (delivery, context, shutdown) and against small
//! loopback servers that fail on purpose (retries with `Retry-After`, dead endpoints).

mod common;

use std::io::Read;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::post;
use common::{TestServer, eventually};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use opentelemetry::{Context, KeyValue};
use serde_json::Value;
use sightline_sdk::events::{DeliveryError, EventStats};
use sightline_sdk::{Event, EventClient, EventClientConfig};

fn client_for(server: &TestServer) -> EventClient {
    let mut config = EventClientConfig::new(server.http_base()).with_api_key(server.ingest_key.clone());
    config.product_id = "shop".into();
    EventClient::new(config).expect("client starts")
}

#[derive(Debug, thiserror::Error)]
#[error("payment declined for order {0}")]
struct PaymentDeclined(u32);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_delivers_every_queued_event_with_context_from_the_request() {
    let server = TestServer::start().await;
    let client = client_for(&server);
    let span_context = SpanContext::new(
        TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
        SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
        TraceFlags::SAMPLED,
        true,
        TraceState::default(),
    );
    let cx = Context::new()
        .with_remote_span_context(span_context)
        .with_baggage([KeyValue::new("session.id", "sess-events"), KeyValue::new("user.id", "user-1")]);
    {
        let _attached = cx.attach();
        // 123 events: two full batches of 50 and a partial one, all still queued (the 5 s
        // interval has not passed) when shutdown is asked.
        for index in 0..120 {
            assert!(client.track(Event::custom("clicked").property("page.path", format!("/p/{index}"))));
        }
        assert!(client.journey_step("checkout", "payment", "Payment"));
        assert!(client.error(&PaymentDeclined(7)));
        assert!(client.track(Event::custom("elsewhere").session("sess-explicit")));
    }
    let started = Instant::now();
    client.shutdown(Duration::from_secs(10)).expect("everything delivered");
    assert!(started.elapsed() < Duration::from_secs(5), "shutdown flushes at once, not at the next interval");
    let stats = client.stats();
    assert_eq!(stats.accepted, 123, "{stats:?}");
    assert_eq!((stats.rejected, stats.failed, stats.dropped_queue_full), (0, 0, 0));
    assert_eq!(stats.requests, 3, "batches of 50: {stats:?}");
    assert!(!client.track(Event::custom("late")), "a shut-down client refuses events");

    let events = eventually(Duration::from_secs(10), "123 stored events", || async {
        let events = server.api_ok("/api/v1/projects/default/events?limit=1000").await["events"].clone();
        let events = events.as_array().cloned().unwrap_or_default();
        (events.len() == 123).then_some(events)
    })
    .await;
    let text = |event: &Value, key: &str| event.get(key).and_then(Value::as_str).map(str::to_owned);
    let journey = events.iter().find(|event| text(event, "event.type").as_deref() == Some("journey.step"));
    let journey = journey.expect("journey step stored");
    assert_eq!(text(journey, "session.id").as_deref(), Some("sess-events"), "{journey}");
    assert_eq!(text(journey, "user.id").as_deref(), Some("user-1"));
    assert_eq!(journey["properties"]["journey.id"], "checkout");
    assert_eq!(journey["properties"]["journey.step.id"], "payment");
    assert_eq!(journey["properties"]["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
    let error = events.iter().find(|event| text(event, "event.type").as_deref() == Some("error")).expect("error event");
    assert_eq!(error["properties"]["error.message"], "payment declined for order 7");
    assert!(error["properties"]["error.type"].as_str().is_some_and(|name| name.ends_with("PaymentDeclined")));
    let explicit = events.iter().find(|event| text(event, "event.name").as_deref() == Some("elsewhere"));
    assert_eq!(explicit.and_then(|event| text(event, "session.id")).as_deref(), Some("sess-explicit"));
    server.stop().await;
}

/// A receiver that answers 503 with `Retry-After: 1` to the first `failures` requests, then 202;
/// it checks each body is gzip JSON and counts requests.
async fn flaky_receiver(failures: usize) -> (String, Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let requests = Arc::new(AtomicUsize::new(0));
    let delivered = Arc::new(AtomicUsize::new(0));
    let (requests_seen, delivered_seen) = (requests.clone(), delivered.clone());
    let app = Router::new().route(
        "/v1/events",
        post(move |headers: HeaderMap, body: Bytes| {
            let requests = requests_seen.clone();
            let delivered = delivered_seen.clone();
            async move {
                let attempt = requests.fetch_add(1, Ordering::SeqCst);
                assert_eq!(headers.get("content-encoding").map(|value| value.as_bytes()), Some(&b"gzip"[..]));
                assert_eq!(headers.get("x-api-key").map(|value| value.as_bytes()), Some(&b"k1"[..]));
                let mut json = String::new();
                flate2::read::GzDecoder::new(&body[..]).read_to_string(&mut json).expect("gzip body");
                let parsed: Value = serde_json::from_str(&json).expect("JSON body");
                let count = parsed["events"].as_array().map(Vec::len).unwrap_or(0);
                if attempt < failures {
                    return (StatusCode::SERVICE_UNAVAILABLE, [("retry-after", "1")], "busy").into_response();
                }
                delivered.fetch_add(count, Ordering::SeqCst);
                (StatusCode::ACCEPTED, axum::Json(serde_json::json!({"accepted": count, "rejected": 0})))
                    .into_response()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (format!("http://{address}"), requests, delivered)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_and_stop_after_three_attempts() {
    let (endpoint, requests, delivered) = flaky_receiver(2).await;
    let mut config = EventClientConfig::new(endpoint).with_api_key("k1");
    config.initial_backoff = Duration::from_millis(1);
    let client = EventClient::new(config).expect("client");
    client.track(Event::custom("a"));
    let started = Instant::now();
    client.flush(Duration::from_secs(10)).expect("delivered on the third attempt");
    let elapsed = started.elapsed();
    assert!(elapsed >= Duration::from_secs(2), "two Retry-After: 1 waits, not the 1 ms backoff: {elapsed:?}");
    assert_eq!(requests.load(Ordering::SeqCst), 3);
    assert_eq!(delivered.load(Ordering::SeqCst), 1);
    assert_eq!(client.stats().retries, 2);

    let (endpoint, requests, delivered) = flaky_receiver(usize::MAX).await;
    let mut config = EventClientConfig::new(endpoint).with_api_key("k1");
    config.max_backoff = Duration::from_millis(10);
    let client = EventClient::new(config).expect("client");
    client.track(Event::custom("b"));
    assert_eq!(client.flush(Duration::from_secs(10)), Err(DeliveryError::DeadlineExceeded(Duration::from_secs(10))));
    assert_eq!(requests.load(Ordering::SeqCst), 3, "max_attempts = 3");
    assert_eq!(delivered.load(Ordering::SeqCst), 0);
    let stats = client.stats();
    assert_eq!((stats.failed, stats.accepted), (1, 0), "{stats:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_endpoint_costs_at_most_the_deadline_and_a_full_queue_never_blocks() {
    // Accepts connections and never answers: the worst kind of dead endpoint.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = listener.local_addr().expect("addr");
    let _held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            open.push(socket);
        }
    });
    let mut config = EventClientConfig::new(format!("http://{address}"));
    config.queue_capacity = 100;
    config.batch_size = 10;
    let client = EventClient::new(config).expect("client");
    let started = Instant::now();
    let accepted = (0..1000).filter(|_| client.track(Event::custom("x"))).count();
    assert!(started.elapsed() < Duration::from_millis(500), "enqueueing never waits: {:?}", started.elapsed());
    let stats: EventStats = client.stats();
    assert!((100..1000).contains(&accepted), "{accepted}");
    assert_eq!(stats.dropped_queue_full, (1000 - accepted) as u64);

    let deadline = Duration::from_millis(700);
    let started = Instant::now();
    assert_eq!(client.shutdown(deadline), Err(DeliveryError::DeadlineExceeded(deadline)));
    let elapsed = started.elapsed();
    assert!(elapsed < deadline + Duration::from_millis(300), "shutdown took {elapsed:?} for a {deadline:?} deadline");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dropping_every_handle_still_delivers_what_was_queued() {
    let (endpoint, _requests, delivered) = flaky_receiver(0).await;
    let client = EventClient::new(EventClientConfig::new(endpoint).with_api_key("k1")).expect("client");
    for _ in 0..3 {
        client.track(Event::custom("before-drop"));
    }
    drop(client);
    eventually(Duration::from_secs(10), "3 events delivered after the drop", || {
        let delivered = delivered.clone();
        async move { (delivered.load(Ordering::SeqCst) == 3).then_some(()) }
    })
    .await;
}
