//! Session correlation end to end: a browser session posted the way the ProductGraph web adapter
//! posts it, backend traffic from the official OpenTelemetry Rust SDK (OTLP/HTTP) carrying the
//! same session id as a `session.id` attribute on one service and as the recorded `X-Session-ID`
//! header on another, a log line of the session and a span without one — read back as one
//! session summary, one merged timeline with links, filters, the correlation rate, and again
//! after a restart.

mod common;

use std::collections::HashMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::TestServer;
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _, TracerProvider as _};
use opentelemetry::{Array, Context, KeyValue, StringValue, Value as OtelValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};

const USER: &str = "user-42";
const USER_AGENT: &str = concat!(
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) ",
    "Version/17.5 Safari/605.1.15"
);

/// `sess-<base36 ms>-<8 chars>`, as the adapter's `SessionManager.generateSessionId` makes them.
fn adapter_session_id(now_ms: u64) -> String {
    let mut digits = Vec::new();
    let mut rest = now_ms;
    while rest > 0 {
        digits.push(char::from_digit((rest % 36) as u32, 36).unwrap());
        rest /= 36;
    }
    let timestamp: String = digits.iter().rev().collect();
    format!("sess-{timestamp}-3f9a1c7e")
}

/// The session's times: everything happens in the last minute.
struct Clock {
    start: SystemTime,
}

impl Clock {
    fn at(&self, offset_ms: u64) -> SystemTime {
        self.start + Duration::from_millis(offset_ms)
    }

    fn nanos(&self, offset_ms: u64) -> u64 {
        self.at(offset_ms).duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
    }

    fn iso(&self, offset_ms: u64) -> String {
        // `new Date(event.timestamp).toISOString()`: milliseconds, `Z`.
        humantime::format_rfc3339_millis(self.at(offset_ms)).to_string()
    }
}

/// The adapter's state for one tab: its session and event sequence.
struct Browser<'a> {
    session: &'a str,
    clock: &'a Clock,
    sequence: u64,
}

impl Browser<'_> {
    /// One event as the adapter's `track()` builds it (`project_id`, `event.sequence`,
    /// `ui.viewport`, `user.id`, page fields, unknown properties in `metadata`).
    fn event(&mut self, offset_ms: u64, event_type: &str, name: &str, fields: Value) -> Value {
        self.sequence += 1;
        let mut event = json!({
            "event_id": format!("0b7c{:04}-5d1e-4c7a-9a8e-1f2d3c4b5a69", self.sequence),
            "project_id": "shop-web",
            "session.id": self.session,
            "event.type": event_type,
            "event.name": name,
            "event.timestamp": self.clock.iso(offset_ms),
            "event.sequence": self.sequence,
            "ui.viewport": "1440x900",
            "user.id": USER,
            "metadata": {"userAgent": USER_AGENT},
        });
        for (key, value) in fields.as_object().unwrap() {
            event[key] = value.clone();
        }
        event
    }
}

/// `flush()`: `POST {endpoint}` with `Content-Type: application/json` and `X-PG-API-Key`.
async fn adapter_flush(server: &TestServer, events: Vec<Value>) {
    let response = server
        .http
        .post(format!("{}/v1/events", server.http_base()))
        .header("content-type", "application/json")
        .header("x-pg-api-key", &server.ingest_key)
        .header("origin", "https://shop.example.com")
        .body(serde_json::to_vec(&json!({ "events": events })).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["rejected"], 0, "{answer}");
}

/// Where the backend services export to.
#[derive(Clone)]
struct Collector {
    http_base: String,
    ingest_key: String,
}

fn providers(collector: &Collector, service: &str) -> (SdkTracerProvider, SdkLoggerProvider) {
    let headers = HashMap::from([("Authorization".to_owned(), format!("Bearer {}", collector.ingest_key))]);
    let resource = || Resource::builder_empty().with_service_name(service.to_owned()).build();
    let spans = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/traces", collector.http_base))
        .with_headers(headers.clone())
        .build()
        .unwrap();
    let logs = opentelemetry_otlp::LogExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(format!("{}/v1/logs", collector.http_base))
        .with_headers(headers)
        .build()
        .unwrap();
    (
        SdkTracerProvider::builder().with_resource(resource()).with_batch_exporter(spans).build(),
        SdkLoggerProvider::builder().with_resource(resource()).with_batch_exporter(logs).build(),
    )
}

/// What the backend sent, to find in the timeline.
struct Backend {
    trace_id: String,
    health_trace_id: String,
}

/// `checkout-api` records the session as a `session.id` attribute (its middleware copies the
/// W3C baggage entry); `payments` only has HTTP instrumentation recording the `X-Session-ID`
/// request header the API forwards. A health check has no session.
fn send_backend(collector: &Collector, session: &str, clock: &Clock) -> Backend {
    let (api_tracer_provider, api_logger_provider) = providers(collector, "checkout-api");
    let (payments_tracer_provider, payments_logger_provider) = providers(collector, "payments");
    let api_tracer = api_tracer_provider.tracer("checkout-api-http");
    let payments_tracer = payments_tracer_provider.tracer("payments-http");

    let mut orders = api_tracer
        .span_builder("POST /api/orders")
        .with_kind(SpanKind::Server)
        .with_start_time(clock.at(1_250))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/api/orders"),
            KeyValue::new("http.response.status_code", 502i64),
            KeyValue::new("user_agent.original", USER_AGENT),
            KeyValue::new("session.id", session.to_owned()),
            KeyValue::new("user.id", USER),
        ])
        .start(&api_tracer);
    orders.set_status(Status::error("payment service answered 402"));
    let orders_context = Context::current_with_span(orders);
    let trace_id = orders_context.span().span_context().trace_id().to_string();
    let call = api_tracer
        .span_builder("POST payments")
        .with_kind(SpanKind::Client)
        .with_start_time(clock.at(1_280))
        .with_attributes([KeyValue::new("http.request.method", "POST")])
        .start_with_context(&api_tracer, &orders_context);
    let call_context = orders_context.with_span(call);
    let header = OtelValue::Array(Array::String(vec![StringValue::from(session.to_owned())]));
    let mut authorize = payments_tracer
        .span_builder("POST /payments/authorize")
        .with_kind(SpanKind::Server)
        .with_start_time(clock.at(1_300))
        .with_attributes([
            KeyValue::new("http.request.method", "POST"),
            KeyValue::new("http.route", "/payments/authorize"),
            KeyValue::new("http.response.status_code", 402i64),
            KeyValue::new("http.request.header.x-session-id", header),
        ])
        .start_with_context(&payments_tracer, &call_context);
    authorize.end_with_timestamp(clock.at(1_400));
    call_context.span().end_with_timestamp(clock.at(1_410));

    let logger = api_logger_provider.logger("checkout-api");
    let mut record = logger.create_log_record();
    record.set_timestamp(clock.at(1_420));
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.set_body(AnyValue::from("payment declined for order 1042"));
    record.add_attribute("session.id", session.to_owned());
    let span_context = orders_context.span().span_context().clone();
    record.set_trace_context(span_context.trace_id(), span_context.span_id(), None);
    logger.emit(record);
    orders_context.span().end_with_timestamp(clock.at(1_450));

    let mut health = api_tracer
        .span_builder("GET /health")
        .with_kind(SpanKind::Server)
        .with_start_time(clock.at(3_000))
        .with_attributes([KeyValue::new("http.route", "/health"), KeyValue::new("http.response.status_code", 200i64)])
        .start(&api_tracer);
    let health_trace_id = health.span_context().trace_id().to_string();
    health.end_with_timestamp(clock.at(3_001));

    for provider in [api_tracer_provider, payments_tracer_provider] {
        provider.shutdown().expect("span export succeeds");
    }
    for provider in [api_logger_provider, payments_logger_provider] {
        provider.shutdown().expect("log export succeeds");
    }
    Backend { trace_id, health_trace_id }
}

/// `(kind, what, offset ms)` of each timeline entry.
fn timeline_outline(session: &Value, clock: &Clock) -> Vec<(String, String, u64)> {
    session["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| {
            let what = match entry["kind"].as_str().unwrap() {
                "event" => entry["event_type"].as_str().unwrap().to_owned(),
                "request" => format!("{} {}", entry["service"].as_str().unwrap(), entry["name"].as_str().unwrap()),
                "log" => entry["body"].as_str().unwrap().to_owned(),
                "error" => entry["title"].as_str().unwrap().to_owned(),
                other => panic!("unknown kind {other}"),
            };
            let offset_ms = (entry["time_unix_nano"].as_u64().unwrap() - clock.nanos(0)) / 1_000_000;
            (entry["kind"].as_str().unwrap().to_owned(), what, offset_ms)
        })
        .collect()
}

fn outline(entries: &[(&str, &str, u64)]) -> Vec<(String, String, u64)> {
    entries.iter().map(|(kind, what, at)| ((*kind).to_owned(), (*what).to_owned(), *at)).collect()
}

async fn check_session(server: &TestServer, session: &str, clock: &Clock, backend: &Backend) {
    let detail = server.api_ok(&format!("/api/v1/projects/default/sessions/{session}")).await;
    assert_eq!(detail["session_id"], session);
    assert_eq!(detail["user_id"], USER);
    assert_eq!(detail["first_seen_unix_nano"], clock.nanos(0));
    assert_eq!(detail["last_seen_unix_nano"], clock.nanos(4_000));
    assert_eq!(detail["duration_nanos"], 4_000_000_000u64);
    assert_eq!(detail["entry_page"], "/products");
    assert_eq!(detail["exit_page"], "/cart");
    assert_eq!(detail["page_views"], 2);
    assert_eq!(detail["events"], 6);
    // The browser's TypeError and the ERROR server span of checkout-api.
    assert_eq!(detail["errors"], 2);
    assert_eq!(detail["requests"], 2, "SERVER spans with the session");
    assert_eq!(detail["logs"], 1);
    assert_eq!(detail["services"], json!(["checkout-api", "payments"]));
    assert_eq!(detail["user_agent"], USER_AGENT, "the browser's own user agent");
    assert_eq!(detail["next_cursor"], Value::Null);

    let expected = outline(&[
        ("event", "page.view", 0),
        ("event", "page.view", 500),
        ("event", "ui.click", 1_000),
        ("event", "api.request", 1_200),
        ("request", "checkout-api POST /api/orders", 1_250),
        ("request", "payments POST /payments/authorize", 1_300),
        ("log", "payment declined for order 1042", 1_420),
        // Issue titles of plain messages are parameterized.
        ("error", "payment service answered <int>", 1_450),
        ("event", "error", 2_500),
        ("error", "TypeError: Cannot read properties of undefined (reading 'total')", 2_500),
        ("event", "page.leave", 4_000),
    ]);
    assert_eq!(timeline_outline(&detail, clock), expected);

    let timeline = detail["timeline"].as_array().unwrap();
    let trace_link = format!("/api/v1/projects/default/traces/{}", backend.trace_id);
    let orders = &timeline[4];
    assert_eq!(orders["trace_id"], backend.trace_id);
    assert_eq!(orders["link"], trace_link);
    assert_eq!((orders["status"].as_str(), orders["span_kind"].as_str()), (Some("error"), Some("server")));
    assert_eq!((orders["http_route"].as_str(), orders["http_status_code"].as_i64()), (Some("/api/orders"), Some(502)));
    assert_eq!(orders["http_method"], "POST");
    assert_eq!(orders["duration_nanos"], 200_000_000u64);
    let authorize = &timeline[5];
    assert_eq!(authorize["trace_id"], backend.trace_id, "the payments span is in the same trace");
    assert_eq!(authorize["http_status_code"], 402);
    let log = &timeline[6];
    assert_eq!((log["severity_text"].as_str(), log["service"].as_str()), (Some("WARN"), Some("checkout-api")));
    assert_eq!(log["link"], trace_link);
    let click = &timeline[2];
    assert_eq!(click["page"], "/cart");
    assert_eq!(click["properties"]["ui.element"], "button#checkout");
    assert_eq!(click["name"], "checkout clicked");

    // Links resolve: the trace holds the requests, the issue is the browser's error.
    let trace = server.api_ok(&trace_link).await;
    let names: Vec<String> =
        common::flatten_spans(&trace).iter().map(|span| span["name"].as_str().unwrap().to_owned()).collect();
    for name in ["POST /api/orders", "POST payments", "POST /payments/authorize"] {
        assert!(names.iter().any(|stored| stored == name), "{name} missing from {names:?}");
    }
    let browser_error = &timeline[9];
    let issue = server.api_ok(browser_error["link"].as_str().unwrap()).await;
    assert_eq!(issue["issue"]["title"], browser_error["title"]);
    assert_eq!(issue["links"]["session_id"], session);

    // Paging through the timeline four entries at a time gives the same entries.
    let mut paged = Vec::new();
    let mut cursor = String::new();
    loop {
        let page = server.api_ok(&format!("/api/v1/projects/default/sessions/{session}?limit=4&cursor={cursor}")).await;
        paged.extend(page["timeline"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = next.to_owned(),
            None => break,
        }
    }
    assert_eq!(paged, *timeline);

    // Lists and filters, with the correlation rate: 2 of 3 SERVER spans carried the session.
    let with_errors = server.api_ok("/api/v1/projects/default/sessions?has_errors=true").await;
    let ids: Vec<&Value> = with_errors["sessions"].as_array().unwrap().iter().map(|item| &item["session_id"]).collect();
    assert_eq!(ids, [session]);
    assert_eq!(with_errors["sessions"][0]["errors"], 2);
    let expected_rate = json!({"server_spans": 3, "with_session": 2, "rate": 2.0 / 3.0});
    assert_eq!(with_errors["correlation"], expected_rate);
    let without_errors = server.api_ok("/api/v1/projects/default/sessions?has_errors=false").await;
    assert_eq!(without_errors["sessions"], json!([]));
    let by_user = server.api_ok(&format!("/api/v1/projects/default/sessions?user={USER}&limit=10")).await;
    assert_eq!(by_user["sessions"].as_array().unwrap().len(), 1);
    let other_user = server.api_ok("/api/v1/projects/default/sessions?user=someone-else").await;
    assert_eq!(other_user["sessions"], json!([]));
    let (status, _) = server.api_get("/api/v1/projects/default/sessions/sess-unknown").await;
    assert_eq!(status, 404);
    let correlation = server.api_ok("/api/v1/projects/default/sessions/correlation").await;
    assert_eq!(correlation, expected_rate);
    let health = server.api_ok(&format!("/api/v1/projects/default/traces/{}", backend.health_trace_id)).await;
    assert_eq!(health["trace_id"], backend.health_trace_id, "the session-less span is stored, just not in a session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_session_and_its_backend_traffic_become_one_timeline() {
    let mut server = TestServer::start().await;
    // Whole milliseconds, as browsers' `Date` has them.
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as u64;
    let start = UNIX_EPOCH + Duration::from_millis(now_ms - 60_000);
    let clock = Clock { start };
    let session = adapter_session_id(start.duration_since(UNIX_EPOCH).unwrap().as_millis() as u64);
    assert!(session.starts_with("sess-") && session.len() == "sess-".len() + 8 + 1 + 8, "{session}");

    // The adapter's batch flush (timer or 20 events), then `pagehide` flushes the page.leave.
    let mut browser = Browser { session: &session, clock: &clock, sequence: 0 };
    let message = "Cannot read properties of undefined (reading 'total')";
    let stack =
        format!("TypeError: {message}\n    at renderTotal (https://shop.example.com/assets/cart.3f2a1b.js:1:2042)");
    let first_flush = vec![
        browser.event(0, "page.view", "page_view", json!({"page.path": "/products", "page.title": "Products"})),
        browser.event(
            500,
            "page.view",
            "page_view",
            json!({"page.path": "/cart", "page.url": "https://shop.example.com/cart"}),
        ),
        browser.event(
            1_000,
            "ui.click",
            "checkout clicked",
            json!({"page.path": "/cart", "ui.element": "button#checkout", "ui.action": "click"}),
        ),
        browser.event(
            1_200,
            "api.request",
            "create order",
            json!({"page.path": "/cart", "api.method": "POST", "api.path": "/api/orders", "api.status_code": 502}),
        ),
        browser.event(
            2_500,
            "error",
            "TypeError",
            json!({"page.path": "/cart", "error.type": "TypeError", "error.message": message, "error.stack": stack}),
        ),
    ];
    let page_leave = vec![browser.event(4_000, "page.leave", "page_leave", json!({"page.path": "/cart"}))];
    adapter_flush(&server, first_flush).await;
    // The SDK's blocking HTTP exporters run off the async runtime.
    let collector = Collector { http_base: server.http_base(), ingest_key: server.ingest_key.clone() };
    let backend = {
        let session = session.clone();
        let clock = Clock { start };
        tokio::task::spawn_blocking(move || send_backend(&collector, &session, &clock)).await.unwrap()
    };
    adapter_flush(&server, page_leave).await;

    check_session(&server, &session, &clock, &backend).await;
    server.restart().await;
    check_session(&server, &session, &clock, &backend).await;
    server.stop().await;
}
