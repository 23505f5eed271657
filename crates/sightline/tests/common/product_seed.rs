//! Product traffic for the sessions / journeys / web-vitals dashboard tests: three browser
//! sessions posted as real `POST /v1/events` batches (page views, a click, checkout journey
//! steps, `performance` events with web vitals), then the checkout request of the first session
//! sent with the OpenTelemetry SDK carrying the same `session.id` (see
//! `common::dashboard::send_checkout_trace`). Included with `#[path]` by the tests that use it.
//!
//! What the tests may expect:
//! - `sess-browser-1` (user-7): cart → shipping (+11 s) → payment (+8 s), LCP 1.8 s on
//!   `/checkout`, then the failing `POST /checkout` trace; the only session with errors.
//! - `sess-browser-2` (user-8): cart only, abandoned; LCP 4.8 s, INP 350 ms, CLS 0.3 on `/cart`.
//! - `sess-browser-3` (user-9): cart → shipping (+5 s); LCP 3 s on `/checkout`.
//! - So the checkout funnel is 3 → 2 → 1 (66.7 %, 50 %, 33.3 % overall, median 8 s between
//!   cart and shipping), `/checkout` LCP p75 is 3 s (needs improvement, half of the loads
//!   good), `/cart` LCP is poor.

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::common::TestServer;
use crate::common::dashboard::send_checkout_trace;

/// The session the checkout trace belongs to.
pub const SESSION: &str = "sess-browser-1";

/// What was seeded.
pub struct Seeded {
    /// The checkout trace of [`SESSION`] (hex).
    pub trace_id: String,
}

fn event(session: &str, user: &str, at: SystemTime, event_type: &str, name: &str, fields: Value) -> Value {
    let mut event = json!({
        "event_id": format!("{session}-{name}-{}", at.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_millis()),
        "product_id": "shop-web",
        "session.id": session,
        "user.id": user,
        "event.type": event_type,
        "event.name": name,
        "event.timestamp": humantime::format_rfc3339_millis(at).to_string(),
        "metadata": {"userAgent": "Mozilla/5.0 (X11; Linux x86_64) Chrome/131.0 Safari/537.36"},
    });
    for (key, value) in fields.as_object().unwrap() {
        event[key] = value.clone();
    }
    event
}

fn step(session: &str, user: &str, at: SystemTime, step: &str, title: &str) -> Value {
    let fields = json!({"page.path": "/checkout", "journey.id": "checkout", "journey.step.id": step,
                        "journey.step.name": title});
    event(session, user, at, "journey.step", &format!("checkout_{step}"), fields)
}

fn vitals(session: &str, user: &str, at: SystemTime, page: &str, lcp: f64, inp: f64, cls: f64) -> Value {
    let fields = json!({"page.path": page, "performance.lcp_ms": lcp, "performance.inp_ms": inp, "performance.cls": cls,
                        "performance.fcp_ms": 900, "performance.ttfb_ms": 300});
    event(session, user, at, "performance", "web_vitals", fields)
}

/// Posts `events` to `/v1/events` of the project of `ingest_key`; all must be accepted.
pub async fn post_events(server: &TestServer, ingest_key: &str, events: &[Value]) {
    let response = server
        .http
        .post(format!("{}/v1/events", server.http_base()))
        .header("x-api-key", ingest_key)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["accepted"], events.len(), "{answer}");
}

/// Posts the three sessions and the checkout trace to the `default` project, and waits until
/// the first session's summary counts its request and error.
pub async fn seed_shop(server: &TestServer) -> Seeded {
    let base = SystemTime::now() - Duration::from_secs(60);
    let at = |seconds: u64| base + Duration::from_secs(seconds);
    let (s1, s2, s3) = (SESSION, "sess-browser-2", "sess-browser-3");
    let events = vec![
        event(s1, "user-7", at(0), "page.view", "page_view", json!({"page.path": "/cart", "page.title": "Cart"})),
        step(s1, "user-7", at(1), "cart", "Cart"),
        event(s1, "user-7", at(2), "ui.click", "add_to_cart", json!({"page.path": "/cart", "cart.items": 2})),
        event(s1, "user-7", at(10), "page.view", "page_view", json!({"page.path": "/checkout"})),
        vitals(s1, "user-7", at(11), "/checkout", 1_800.0, 150.0, 0.05),
        step(s1, "user-7", at(12), "shipping", "Shipping address"),
        step(s1, "user-7", at(20), "payment", "Payment"),
        event(s2, "user-8", at(0), "page.view", "page_view", json!({"page.path": "/cart"})),
        vitals(s2, "user-8", at(1), "/cart", 4_800.0, 350.0, 0.3),
        step(s2, "user-8", at(2), "cart", "Cart"),
        event(
            s2,
            "user-8",
            at(30),
            "custom",
            "checkout_result",
            json!({"journey.id": "checkout", "journey.conversion.status": "abandoned"}),
        ),
        event(s3, "user-9", at(0), "page.view", "page_view", json!({"page.path": "/checkout"})),
        vitals(s3, "user-9", at(1), "/checkout", 3_000.0, 120.0, 0.02),
        step(s3, "user-9", at(3), "cart", "Cart"),
        step(s3, "user-9", at(8), "shipping", "Shipping address"),
    ];
    post_events(server, &server.ingest_key.clone(), &events).await;
    let trace_id = send_checkout_trace(server, &server.ingest_key.clone(), "checkout-api").await;
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, session) = server.api_get(&format!("/api/v1/projects/default/sessions/{SESSION}")).await;
        if status == 200 && session["requests"].as_u64() >= Some(1) && session["errors"].as_u64() >= Some(1) {
            break;
        }
        assert!(Instant::now() < deadline, "the session never counted its request and error: {status} {session}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Seeded { trace_id }
}
