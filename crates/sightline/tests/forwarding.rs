//! Forwarding of product events end to end: the real server on loopback, destinations created
//! through the API, and local Amplitude / Mixpanel / webhook stand-ins that validate requests
//! as the vendors document them and inject faults (429 without Retry-After, 500, timeouts,
//! connection resets, 400 naming invalid events, 413). A server killed mid-delivery and
//! restarted on the same data directory still delivers every event, and none twice by insert id.

mod common;
#[path = "common/vendors.rs"]
mod vendors;

use std::time::{Duration, Instant};

use common::TestServer;
use serde_json::{Value, json};
use vendors::{Fault, Vendor};

fn event(index: usize, extra: Value) -> Value {
    let mut event = json!({
        "event_id": format!("evt-{index:05}"),
        "product_id": "shop",
        "session.id": format!("sess-lx3k2a-{:08}", index % 7),
        "user.id": format!("user-{:04}", index % 13),
        "event.type": "page.view",
        "event.timestamp": "2026-11-24T10:00:00.000Z",
        "page.path": "/checkout",
        "page.url": "https://shop.example.com/checkout",
    });
    if let (Some(target), Value::Object(more)) = (event.as_object_mut(), extra) {
        target.extend(more);
    }
    event
}

async fn post_events(server: &TestServer, events: Vec<Value>) {
    let response = server
        .http
        .post(format!("{}/v1/events", server.http_base()))
        .header("x-api-key", &server.ingest_key)
        .json(&json!({"events": events}))
        .send()
        .await
        .expect("ingest request");
    assert_eq!(response.status(), 202);
}

async fn admin(server: &TestServer, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut request = server
        .http
        .request(method, format!("{}/api/v1/projects/default{path}", server.http_base()))
        .bearer_auth(&server.admin_key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("API request");
    let status = response.status().as_u16();
    (status, response.json::<Value>().await.unwrap_or(Value::Null))
}

async fn create_destination(server: &TestServer, name: &str, config: Value) -> i64 {
    let (status, body) =
        admin(server, reqwest::Method::POST, "/destinations", Some(json!({"name": name, "config": config}))).await;
    assert_eq!(status, 201, "{body}");
    body["id"].as_i64().expect("an integer")
}

/// Polls the destination until `done` holds (deadline 30 s); returns its last view.
async fn wait_for(server: &TestServer, id: i64, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let view = server.api_ok(&format!("/api/v1/projects/default/destinations/{id}")).await;
        if done(&view) {
            return view;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}: {view}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn settled(total: u64) -> impl Fn(&Value) -> bool {
    move |view| {
        let state = &view["state"];
        state["queued"] == 0
            && state["in_flight"] == 0
            && state["delivered"].as_u64().unwrap_or(0) + state["dead_lettered"].as_u64().unwrap_or(0) == total
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn amplitude_gets_documented_requests_through_every_fault() {
    let vendor = Vendor::amplitude("amp-key-123456", 2000).await;
    // Each fault answers one request; the driver must retry through all of them.
    vendor.inject([
        Fault::TooManyRequests,
        Fault::ServerError,
        Fault::Delay(Duration::from_millis(1500)),
        Fault::Reset,
    ]);
    let server = TestServer::start_with(|config| config.delivery_retry_base = Duration::from_millis(20)).await;
    let id = create_destination(
        &server,
        "amplitude",
        json!({"type": "amplitude", "api_key": "amp-key-123456", "endpoint": vendor.url("/2/httpapi"),
               "batch": {"interval_ms": 50, "timeout_ms": 500}}),
    )
    .await;
    let mut events: Vec<Value> = (0..40).map(|index| event(index, json!({}))).collect();
    // Refused by the vendor once (400 naming it), then accepted on replay.
    events[3]["reject_once"] = json!(true);
    // Never acceptable: both ids shorter than Amplitude's 5 characters.
    events[5]["user.id"] = json!("u1");
    events[5]["session.id"] = json!("s1");
    post_events(&server, events).await;

    let view = wait_for(&server, id, "the batch to settle", settled(40)).await;
    assert_eq!(view["state"]["delivered"], 38, "{view}");
    assert_eq!(view["state"]["dead_lettered"], 2);
    assert!(view["state"]["last_error"].as_str().is_some_and(|error| !error.is_empty()), "{view}");
    assert_eq!(view["config"]["api_key"], "set");
    assert!(!view.to_string().contains("amp-key-123456"), "the key is never returned");

    {
        let seen = vendor.seen.lock().expect("vendor state lock");
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert!(seen.requests >= 6, "4 faults, a 400 and the accepted resend: {}", seen.requests);
        assert!(seen.received.values().all(|count| *count == 1), "no event ingested twice");
        let sample = &seen.ingested["evt-00000"];
        assert_eq!(sample["event_type"], "Page View");
        assert_eq!(sample["user_id"], "user-0000");
        assert_eq!(sample["time"], 1_795_514_400_000i64);
        assert_eq!(sample["event_properties"]["page_path"], "/checkout");
        assert!(
            sample["session_id"].as_i64().expect("an integer") > 1_700_000_000_000,
            "session start in ms: {sample}"
        );
    }

    let (status, letters) =
        admin(&server, reqwest::Method::GET, &format!("/destinations/{id}/dead-letters"), None).await;
    assert_eq!(status, 200);
    let letters = letters["dead_letters"].as_array().expect("an array").clone();
    let reason_of = |event_id: &str| {
        letters.iter().find(|letter| letter["event_id"] == event_id).map(|letter| letter["reason"].clone())
    };
    assert!(
        reason_of("evt-00003")
            .expect("a dead letter for this event")
            .as_str()
            .expect("a string")
            .contains("invalid fields: time")
    );
    assert!(
        reason_of("evt-00005")
            .expect("a dead letter for this event")
            .as_str()
            .expect("a string")
            .contains("5 characters")
    );
    let refused =
        letters.iter().find(|letter| letter["event_id"] == "evt-00003").expect("a dead letter for this event");
    assert!(refused["last_response"].as_str().expect("a string").contains("events_with_invalid_fields"), "{refused}");

    // Replay: the vendor now accepts evt-00003; evt-00005 is refused again before sending.
    let (status, replayed) =
        admin(&server, reqwest::Method::POST, &format!("/destinations/{id}/dead-letters/replay"), Some(json!({})))
            .await;
    assert_eq!((status, replayed["replayed"].as_u64()), (200, Some(2)));
    wait_for(&server, id, "the replay", |view| view["state"]["delivered"] == 39 && view["state"]["queued"] == 0).await;
    assert_eq!(vendor.ingested_ids().len(), 39);
    assert!(vendor.ingested_ids().contains(&"evt-00003".to_owned()));
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mixpanel_imports_split_on_413_and_keep_partial_successes() {
    // This stand-in answers 413 above 8 records, so a batch of 30 must be split.
    let vendor = Vendor::mixpanel("mp-token", 8).await;
    let server = TestServer::start_with(|config| config.delivery_retry_base = Duration::from_millis(20)).await;
    let id = create_destination(
        &server,
        "mixpanel",
        json!({"type": "mixpanel", "token": "mp-token", "endpoint": vendor.url("/import"),
               "routing": {"exclude_events": ["ui.*"], "deny_properties": ["page.url"]},
               "batch": {"interval_ms": 50}}),
    )
    .await;
    let mut events: Vec<Value> = (0..30).map(|index| event(index, json!({}))).collect();
    events[7]["reject_once"] = json!(true);
    events.push(event(100, json!({"event.type": "ui.click"})));
    events.push(event(101, json!({"privacy_level": "pii"})));
    post_events(&server, events).await;

    let view = wait_for(&server, id, "the import", settled(30)).await;
    assert_eq!(view["state"]["delivered"], 29, "{view}");
    assert_eq!(view["state"]["dead_lettered"], 1, "the failed record");
    {
        let seen = vendor.seen.lock().expect("vendor state lock");
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
        assert!(seen.request_sizes.iter().all(|size| *size <= 8), "split below the limit: {:?}", seen.request_sizes);
        assert!(seen.encodings.iter().all(|encoding| encoding == "gzip"), "gzip: {:?}", seen.encodings);
        assert_eq!(seen.ingested.len(), 29, "routing kept ui.click and the pii event out");
        assert!(seen.received.values().all(|count| *count == 1), "partial success: the others were not resent");
        let record = &seen.ingested["evt-00000"]["properties"];
        assert_eq!(record["distinct_id"], "user-0000");
        assert_eq!(record["time"], 1_795_514_400_000i64);
        assert!(record.get("$current_url").is_none(), "page.url denied by routing: {record}");
        assert_eq!(record["page_path"], "/checkout");
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhook_batches_are_signed_and_bad_input_is_refused() {
    let vendor = Vendor::webhook("hook-secret").await;
    let server = TestServer::start().await;
    let (status, body) = admin(
        &server,
        reqwest::Method::POST,
        "/destinations",
        Some(json!({"name": "bad", "config": {"type": "webhook", "url": "ftp://x", "secret": "s"}})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().expect("a string").contains("url"));
    let (status, _) = admin(
        &server,
        reqwest::Method::POST,
        "/destinations",
        Some(json!({"name": "x", "config": {"type": "carrier-pigeon"}})),
    )
    .await;
    assert_eq!(status, 400);
    let read_only = server
        .http
        .post(format!("{}/api/v1/projects/default/destinations", server.http_base()))
        .bearer_auth(&server.read_key)
        .json(&json!({}))
        .send()
        .await
        .expect("API request");
    assert_eq!(read_only.status(), 403);

    let id = create_destination(
        &server,
        "hook",
        json!({"type": "webhook", "url": vendor.url("/hook"), "secret": "hook-secret", "batch": {"interval_ms": 20}}),
    )
    .await;
    let (status, _) = admin(
        &server,
        reqwest::Method::POST,
        "/destinations",
        Some(json!({"name": "hook", "config": {"type": "webhook", "url": vendor.url("/hook"), "secret": "s"}})),
    )
    .await;
    assert_eq!(status, 400, "duplicate name");
    // A client retry of the same batch is stored once and queued once (else 20 would go).
    post_events(&server, (0..10).map(|index| event(index, json!({}))).collect()).await;
    post_events(&server, (0..10).map(|index| event(index, json!({}))).collect()).await;
    let view = wait_for(&server, id, "the webhook", settled(10)).await;
    assert!(
        vendor.seen.lock().expect("vendor state lock").received.values().all(|count| *count == 1),
        "a retried batch is sent once"
    );
    assert_eq!(view["config"]["secret"], "set");
    assert!(vendor.seen.lock().expect("vendor state lock").violations.is_empty());
    assert_eq!(vendor.ingested_ids().len(), 10);

    // PATCH keeps the secret (merge patch) and can disable; DELETE removes.
    let (status, patched) = admin(
        &server,
        reqwest::Method::PATCH,
        &format!("/destinations/{id}"),
        Some(json!({"enabled": false, "config": {"gzip": true}})),
    )
    .await;
    assert_eq!(status, 200, "{patched}");
    assert_eq!((patched["enabled"].clone(), patched["config"]["secret"].clone()), (json!(false), json!("set")));
    let (status, _) = admin(&server, reqwest::Method::DELETE, &format!("/destinations/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, _) = admin(&server, reqwest::Method::GET, &format!("/destinations/{id}"), None).await;
    assert_eq!(status, 404);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_delivery_delivers_everything_once_after_restart() {
    let vendor = Vendor::amplitude("amp-key-123456", 2000).await;
    let mut server = TestServer::start().await;
    let id = create_destination(
        &server,
        "amplitude",
        json!({"type": "amplitude", "api_key": "amp-key-123456", "endpoint": vendor.url("/2/httpapi"),
               "batch": {"max_events": 250, "interval_ms": 0}}),
    )
    .await;
    // Two batches go through; the third request is held in flight when the server is killed.
    post_events(&server, (0..500).map(|index| event(index, json!({}))).collect()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while vendor.seen.lock().expect("vendor state lock").ingested.len() < 500 {
        assert!(Instant::now() < deadline, "the first two batches were not delivered");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let requests_before = vendor.seen.lock().expect("vendor state lock").requests;
    vendor.inject([Fault::HoldUntilReleased]);
    post_events(&server, (500..1000).map(|index| event(index, json!({}))).collect()).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while vendor.seen.lock().expect("vendor state lock").requests <= requests_before {
        assert!(Instant::now() < deadline, "no request reached the hold");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    // Kill: the worker is dropped mid-request; its rows are still queued.
    server.restart().await;
    vendor.release();
    let view = wait_for(&server, id, "delivery after the restart", |view| {
        view["state"]["queued"] == 0 && view["state"]["in_flight"] == 0
    })
    .await;
    let ids = vendor.ingested_ids();
    assert_eq!(ids.len(), 1000, "every event delivered: {view}");
    let expected: Vec<String> = (0..1000).map(|index| format!("evt-{index:05}")).collect();
    assert_eq!(ids, expected);
    // Vendor-side dedup by insert_id: a batch interrupted by the kill may arrive twice, but
    // batches that were acknowledged before it are never sent again.
    {
        let seen = vendor.seen.lock().expect("vendor state lock");
        let repeats: usize = seen.received.values().map(|count| count - 1).sum();
        assert!(repeats > 0, "the interrupted batch was resent after the restart");
        assert!(repeats <= 250, "at most the interrupted batch is resent, got {repeats} repeats");
        assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn productgraph_variables_configure_a_server_wide_destination() {
    let vendor = Vendor::amplitude("env-amp-key", 2000).await;
    let endpoint = vendor.url("/2/httpapi");
    let server = TestServer::start_with(|config| {
        config.forwarding = sightline_server::config::ProductGraphForwarding {
            analytics_enabled: true,
            amplitude_enabled: true,
            amplitude_api_key: Some(sightline_server::exporters::Secret::new("env-amp-key")),
            amplitude_endpoint: Some(endpoint),
            ..Default::default()
        };
    })
    .await;
    let list = server.api_ok("/api/v1/projects/default/destinations").await;
    let destination = &list["destinations"][0];
    assert_eq!((destination["name"].clone(), destination["scope"].clone()), (json!("amplitude"), json!("server")));
    assert!(!list.to_string().contains("env-amp-key"));
    let id = destination["id"].as_i64().expect("an integer");
    let (status, _) =
        admin(&server, reqwest::Method::PATCH, &format!("/destinations/{id}"), Some(json!({"enabled": false}))).await;
    assert_eq!(status, 403, "server-wide destinations are changed through the environment");
    post_events(&server, (0..5).map(|index| event(index, json!({}))).collect()).await;
    wait_for(&server, id, "env delivery", settled(5)).await;
    assert_eq!(vendor.ingested_ids().len(), 5);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn privacy_rules_and_consent_apply_before_forwarding() {
    let vendor = Vendor::webhook("hook-secret").await;
    let server = TestServer::start().await;
    // Events of index % 13 == 1 come from user-0001, who opts out of forwarding.
    let (status, body) = admin(&server, reqwest::Method::POST, "/privacy/opt-outs/user-0001", None).await;
    assert_eq!(status, 200, "{body}");
    let id = create_destination(
        &server,
        "hook",
        json!({"type": "webhook", "url": vendor.url("/hook"), "secret": "hook-secret", "batch": {"interval_ms": 20}}),
    )
    .await;
    let events = (0..13)
        .map(|index| {
            let mut extra = json!({"page.title": "Receipt for jane.doe@example.com", "client.address": "203.0.113.9"});
            if index == 12 {
                extra["consent.analytics"] = json!(false);
            }
            event(index, extra)
        })
        .collect();
    post_events(&server, events).await;
    let view = wait_for(&server, id, "the webhook", |view| {
        let state = &view["state"];
        state["queued"] == 0 && state["in_flight"] == 0 && state["delivered"].as_u64().unwrap_or(0) == 11
    })
    .await;
    assert_eq!(view["state"]["filtered"], 2, "the opted-out user's event and the one without consent: {view}");
    let seen = vendor.seen.lock().expect("vendor state lock");
    assert!(seen.violations.is_empty(), "{:?}", seen.violations);
    let mut ids: Vec<&String> = seen.ingested.keys().collect();
    ids.sort();
    assert!(!ids.iter().any(|id| *id == "evt-00001" || *id == "evt-00012"), "{ids:?}");
    assert_eq!(ids.len(), 11);
    for event in seen.ingested.values() {
        let text = event.to_string();
        assert!(!text.contains("jane.doe@example.com") && !text.contains("203.0.113.9"), "scrubbed by @common: {text}");
        assert!(text.contains("[email]"), "{text}");
    }
    drop(seen);
    // Stored events keep their data: only the forwarded copies were scrubbed.
    let stored = server.api_ok("/api/v1/projects/default/events?limit=20").await;
    assert!(stored.to_string().contains("jane.doe@example.com"), "scrub_before_storing is off by default");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn destinations_declared_in_the_configuration_file_are_applied_at_start() {
    let vendor = Vendor::webhook("file-secret").await;
    let text = format!(
        "[[destinations]]\nproject = \"default\"\nname = \"from-file\"\n[destinations.config]\ntype = \"webhook\"\n\
         url = \"{}\"\nsecret = \"file-secret\"\n[destinations.config.batch]\ninterval_ms = 20\n",
        vendor.url("/hook")
    );
    let declared = sightline_server::config_file::parse(&text).expect("valid file");
    let mut server = TestServer::start_with(|config| config.file_destinations = declared.clone()).await;
    let listed = server.api_ok("/api/v1/projects/default/destinations").await;
    let id = listed["destinations"]
        .as_array()
        .and_then(|all| all.iter().find(|destination| destination["name"] == "from-file"))
        .and_then(|destination| destination["id"].as_i64())
        .unwrap_or_else(|| panic!("the file's destination is listed: {listed}"));
    assert_eq!(listed["destinations"][0]["config"]["secret"], "set", "secrets from the file stay hidden");
    post_events(&server, (0..5).map(|index| event(index, json!({}))).collect()).await;
    wait_for(&server, id, "the file's webhook", settled(5)).await;
    assert_eq!(vendor.ingested_ids().len(), 5);

    // A second start with the same file updates the destination instead of adding another.
    server.restart_with(|config| config.file_destinations = declared).await;
    let listed = server.api_ok("/api/v1/projects/default/destinations").await;
    let named: Vec<&Value> = listed["destinations"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|destination| destination["name"] == "from-file")
        .collect();
    assert_eq!(named.len(), 1, "{listed}");
    assert_eq!(named[0]["id"].as_i64(), Some(id));
    server.stop().await;
}
