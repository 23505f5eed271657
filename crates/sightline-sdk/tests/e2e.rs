//! End to end: the axum-shop example's two services (shop → inventory over HTTP with W3C
//! propagation) send traces, metrics, logs and product events to a real Sightline started
//! in-process; the test drives sessions through them and reads the results back from the
//! Sightline REST API.
//!
//! Each service runs on its own thread with its own `tracing` subscriber and providers (its
//! own `service.name`), as two processes would.

#[path = "../examples/axum-shop/app.rs"]
#[allow(dead_code)]
mod app;
mod common;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use axum::Router;
use common::{TestServer, eventually};
use opentelemetry::metrics::MeterProvider as _;
use serde_json::Value;
use sightline_sdk::init::Telemetry;
use sightline_sdk::propagation::Propagation;
use sightline_sdk::{SightlineGuard, SightlineLayer};

const SESSIONS: usize = 20;

/// A service running on its own thread until `stop` is sent.
struct Service {
    address: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    thread: std::thread::JoinHandle<()>,
    guard: SightlineGuard,
}

fn telemetry(server: &TestServer, service_name: &str) -> Telemetry {
    sightline_sdk::builder()
        .endpoint(server.http_base())
        .api_key(server.ingest_key.clone())
        .service_name(service_name)
        .log_filter("info")
        .build()
        .expect("telemetry builds")
}

fn start_service(telemetry: Telemetry, make_router: impl FnOnce(&SightlineGuard, SightlineLayer) -> Router) -> Service {
    let Telemetry { subscriber, guard, .. } = telemetry;
    let subscriber = subscriber.expect("a subscriber");
    let meter = guard.meter_provider().expect("metrics on").meter(sightline_sdk::middleware::INSTRUMENTATION_SCOPE);
    let router = make_router(&guard, SightlineLayer::with_meter(&meter));
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (ready, address) = std::sync::mpsc::channel();
    let thread = std::thread::spawn(move || {
        let _default = tracing::subscriber::set_default(subscriber);
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
            ready.send(listener.local_addr().expect("address")).expect("test waits");
            axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await
                .expect("serve");
        });
    });
    let address = address.recv_timeout(Duration::from_secs(10)).expect("service started");
    Service { address, stop, thread, guard }
}

impl Service {
    /// Stops serving, then drops the guard (delivering queued events, flushing spans and logs).
    async fn stop(self) -> Duration {
        let _ = self.stop.send(());
        let thread = self.thread;
        let guard = self.guard;
        tokio::task::spawn_blocking(move || {
            thread.join().expect("service thread");
            let started = Instant::now();
            drop(guard);
            started.elapsed()
        })
        .await
        .expect("join")
    }
}

/// Depth-first list of every span node in a trace tree response.
fn flatten(trace: &Value) -> Vec<Value> {
    fn walk(node: &Value, out: &mut Vec<Value>) {
        out.push(node.clone());
        for child in node["children"].as_array().into_iter().flatten() {
            walk(child, out);
        }
    }
    let mut out = Vec::new();
    for root in trace["roots"].as_array().into_iter().flatten() {
        walk(root, &mut out);
    }
    out
}

async fn send(request: reqwest::RequestBuilder, session: &str, user: &str) -> u16 {
    request
        .header("x-session-id", session)
        .header("x-user-id", user)
        .send()
        .await
        .expect("shop answers")
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shop_and_inventory_correlate_sessions_traces_logs_events_and_errors() {
    let server = TestServer::start().await;
    sightline_sdk::propagation::install(&Propagation::DEFAULT);
    let inventory = start_service(telemetry(&server, "inventory"), |_, layer| app::inventory_router(layer));
    let inventory_url = format!("http://{}", inventory.address);
    let shop = start_service(telemetry(&server, "axum-shop"), |guard, layer| {
        let state = app::ShopState {
            inventory_url,
            http: sightline_sdk::http_client::client(reqwest::Client::new()),
            events: guard.events().cloned().expect("events on"),
        };
        app::shop_router(state, layer)
    });
    let base = format!("http://{}", shop.address);
    let client = reqwest::Client::new();
    let mut failures = 0;
    for index in 0..SESSIONS {
        let session = format!("sess-e2e-{index}");
        let user = format!("user-{}", index % 5);
        assert_eq!(send(client.get(format!("{base}/products/mug")), &session, &user).await, 200);
        assert_eq!(send(client.post(format!("{base}/cart/mug")), &session, &user).await, 204);
        let fail = index % 4 == 0;
        failures += usize::from(fail);
        let status = send(client.post(format!("{base}/checkout?fail={fail}")), &session, &user).await;
        assert_eq!(status, if fail { 500 } else { 200 });
    }
    let shop_stop = shop.stop().await;
    let inventory_stop = inventory.stop().await;
    assert!(
        shop_stop < Duration::from_secs(6) && inventory_stop < Duration::from_secs(6),
        "{shop_stop:?} {inventory_stop:?}"
    );

    // Session correlation: every server span of both services carries its session.
    let server_spans = (SESSIONS * 3 + SESSIONS * 2) as u64;
    let correlation = eventually(Duration::from_secs(20), "all server spans stored", || async {
        let correlation = server.api_ok("/api/v1/projects/default/sessions/correlation").await;
        (correlation["server_spans"].as_u64() == Some(server_spans)).then_some(correlation)
    })
    .await;
    let rate = correlation["rate"].as_f64().expect("a rate");
    assert!(rate > 0.95, "session correlation {rate} ({correlation})");

    // W3C propagation: a cart request is one trace across both services, the inventory span
    // nested under the shop's client span (one root, not two).
    let traces = server.api_ok("/api/v1/projects/default/traces?limit=500").await["traces"].clone();
    let traces = traces.as_array().cloned().unwrap_or_default();
    let cart_traces: Vec<&Value> =
        traces.iter().filter(|trace| trace["root_span_name"] == "POST /cart/{sku}").collect();
    assert_eq!(cart_traces.len(), SESSIONS, "one trace per cart request");
    for trace in &cart_traces {
        let services: Vec<&str> =
            trace["services"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
        assert!(services.contains(&"axum-shop") && services.contains(&"inventory"), "{trace}");
    }
    let trace_id = cart_traces[0]["trace_id"].as_str().expect("trace id").to_owned();
    let detail = server.api_ok(&format!("/api/v1/projects/default/traces/{trace_id}")).await;
    assert_eq!(detail["roots"].as_array().map(Vec::len), Some(1), "inventory joined the shop's trace: {detail}");
    let spans = flatten(&detail);
    let names: Vec<&str> = spans.iter().filter_map(|span| span["name"].as_str()).collect();
    for expected in ["POST /cart/{sku}", "inventory.reserve_remote", "POST", "POST /reserve/{sku}", "reserve"] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }

    // Sessions span both services.
    let session = server.api_ok("/api/v1/projects/default/sessions?limit=100").await["sessions"].clone();
    let sessions = session.as_array().cloned().unwrap_or_default();
    assert_eq!(sessions.len(), SESSIONS);
    for session in &sessions {
        assert_eq!(session["services"], serde_json::json!(["axum-shop", "inventory"]), "{session}");
        assert_eq!(session["requests"], 5, "{session}");
    }

    // Journey steps are visible as a funnel.
    let journeys = server.api_ok("/api/v1/projects/default/journeys").await;
    let checkout = &journeys["journeys"][0];
    assert_eq!(checkout["journey_id"], "checkout");
    let steps: Vec<(String, u64)> = checkout["steps"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|step| (step["step_id"].as_str().unwrap_or_default().to_owned(), step["sessions"].as_u64().unwrap_or(0)))
        .collect();
    assert_eq!(
        steps,
        vec![("cart".into(), 20), ("payment".into(), 20), ("confirmed".into(), (SESSIONS - failures) as u64)]
    );

    // Errors grouped: the span exceptions and error events of every failed checkout are one issue.
    let issues = server.api_ok("/api/v1/projects/default/issues").await["issues"].clone();
    let checkout_issues: Vec<&Value> = issues
        .as_array()
        .into_iter()
        .flatten()
        .filter(|issue| issue["exception_type"].as_str().is_some_and(|name| name.ends_with("CheckoutError")))
        .collect();
    assert_eq!(checkout_issues.len(), 1, "one group: {issues}");
    let issue = checkout_issues[0];
    assert_eq!(issue["session_count"], failures as u64);
    assert!(issue["event_count"].as_u64().is_some_and(|count| count >= failures as u64), "{issue}");
    assert!(issue["title"].as_str().is_some_and(|title| title.contains("payment gateway timed out")));

    // Logs are linked to their traces and sessions.
    let logs = server.api_ok("/api/v1/projects/default/logs?limit=1000").await["logs"].clone();
    let logs = logs.as_array().cloned().unwrap_or_default();
    let reserved: Vec<&Value> = logs.iter().filter(|log| log["body"] == "Reserved").collect();
    assert_eq!(reserved.len(), SESSIONS, "the inventory's logs arrived");
    let cart_trace_ids: Vec<&str> = cart_traces.iter().filter_map(|trace| trace["trace_id"].as_str()).collect();
    for log in reserved {
        assert_eq!(log["service_name"], "inventory");
        assert!(log["trace_id"].as_str().is_some_and(|id| cart_trace_ids.contains(&id)), "log not linked: {log}");
        assert!(log["attributes"]["session.id"].as_str().is_some_and(|id| id.starts_with("sess-e2e-")), "{log}");
    }
    server.stop().await;
}
