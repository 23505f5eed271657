//! The logs and metrics pages and the live log tail over plain HTTP: no page or stream without
//! a session or key (303 to /login for pages, 401 for streams), 404 for projects the viewer or
//! key may not read, 400 with a message for bad filters, the page lists records newest first
//! with paging and trace links, and the Server-Sent Events API streams only newly committed
//! records matching its filters, within a bounded number of connections (503 + Retry-After);
//! a reader that stops reading does not hold ingest back and is told how many records it missed.
//! The pages have no forms that change state, so there is no CSRF case here.

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

mod common;
mod common_logs;

use std::time::{Duration, Instant};

use common::TestServer;
use common::dashboard::{create_user, plain_client, sign_in};
use common_logs::{EventReader, TestLog, send_gauge, send_logs};
use sightline_server::auth::KeyScope;

const ALICE: (&str, &str) = ("alice@example.com", "alice-password-1");
/// Longest wait for an event that must arrive.
const EVENT_WAIT: Duration = Duration::from_secs(10);
/// The trace the error records belong to (the waterfall needs not exist for a link).
const TRACE_ID: &str = "5b8efff798038103d269b633813fc60c";

async fn get(client: &reqwest::Client, url: &str, cookie: Option<&str>) -> reqwest::Response {
    let mut request = client.get(url);
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_and_metric_pages_need_a_session_and_membership_and_refuse_bad_filters() {
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    let other = store.create_project("Other team").unwrap();
    let (other_key, _) = store.create_api_key(other.id, KeyScope::Ingest, "other").unwrap();
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    let ingest_key = server.ingest_key.clone();
    send_logs(
        &server,
        &ingest_key,
        &[
            TestLog::info("checkout-api", "order 1 placed"),
            TestLog {
                trace_id: Some(TRACE_ID),
                span_id: Some("eee19b7ec3c1b174"),
                attributes: &[("payment.provider", "acme")],
                ..TestLog::error("checkout-api", "card declined for order 2")
            },
        ],
    )
    .await;
    send_logs(&server, other_key.expose(), &[TestLog::error("billing-secret-service", "secret ledger mismatch")]).await;
    send_gauge(&server, "queue.depth", "queue", &[("emails", 12.0), ("payments", 3.0)]).await;
    let base = server.http_base();
    let client = plain_client();

    for path in
        ["/p/default/logs", "/p/default/logs?q=card", "/p/default/metrics", "/p/default/metrics?name=queue.depth"]
    {
        let response = get(&client, &format!("{base}{path}"), None).await;
        assert_eq!(response.status().as_u16(), 303, "{path} without a session");
        let location = response.headers()["location"].to_str().unwrap().to_owned();
        assert!(location.starts_with("/login?next="), "{path} → {location}");
        assert!(!response.text().await.unwrap().contains("card declined"));
    }
    let tail = get(&client, &format!("{base}/p/default/logs/tail"), None).await;
    assert_eq!(tail.status().as_u16(), 401, "an event stream cannot follow a redirect to the sign-in form");

    let cookie = sign_in(&base, ALICE.0, ALICE.1).await;
    for path in ["/p/other-team/logs", "/p/other-team/metrics", "/p/other-team/logs/tail", "/p/nope/logs"] {
        let response = get(&client, &format!("{base}{path}"), Some(&cookie)).await;
        assert_eq!(response.status().as_u16(), 404, "{path} is not Alice's");
        assert!(!response.text().await.unwrap().contains("secret ledger"));
    }
    for (path, message) in [
        ("/p/default/logs?severity_min=loud", "severity_min=\"loud\""),
        ("/p/default/logs?range=2y", "range=\"2y\""),
        ("/p/default/logs?trace_id=xyz", "trace_id=\"xyz\""),
        ("/p/default/logs?color=red", "color"),
        ("/p/default/logs/tail?severity_min=loud", "severity_min=\"loud\""),
        ("/p/default/metrics?name=queue.depth&stat=p95", "does not apply to a gauge"),
        ("/p/default/metrics?name=queue.depth&range=1y", "range=\"1y\""),
    ] {
        let response = get(&client, &format!("{base}{path}"), Some(&cookie)).await;
        assert_eq!(response.status().as_u16(), 400, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains(&message.replace('"', "&quot;")) || html.contains(message), "{path}: {html}");
    }
    let missing = get(&client, &format!("{base}/p/default/metrics?name=no.such.metric"), Some(&cookie)).await;
    assert_eq!(missing.status().as_u16(), 404);

    // The page: newest first, the error's trace link goes to its span, attributes are there.
    let page = get(&client, &format!("{base}/p/default/logs"), Some(&cookie)).await;
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    let newest = html.find("card declined for order 2").expect("the error is listed");
    let oldest = html.find("order 1 placed").expect("the info is listed");
    assert!(newest < oldest, "newest first");
    assert!(html.contains(&format!("/p/default/traces/{TRACE_ID}#span-eee19b7ec3c1b174")), "{html}");
    assert!(html.contains("payment.provider") && html.contains("acme"));
    assert!(html.contains("data-tail-url=\"/p/default/logs/tail\""), "the first page offers the live tail");
    assert!(!html.contains("secret ledger"));
    let errors =
        get(&client, &format!("{base}/p/default/logs?severity_min=error&service=checkout-api"), Some(&cookie)).await;
    let html = errors.text().await.unwrap();
    assert!(html.contains("card declined") && !html.contains("order 1 placed"), "{html}");
    assert!(
        html.contains("data-tail-url=\"/p/default/logs/tail?severity_min=error&amp;service=checkout-api\""),
        "{html}"
    );

    // Paging: one per page, the next page holds the older record and no live tail.
    let first = get(&client, &format!("{base}/p/default/logs?limit=1"), Some(&cookie)).await.text().await.unwrap();
    assert!(first.contains("card declined") && !first.contains("order 1 placed"));
    let start = first.find("rel=\"next\" href=\"").expect("an older page") + "rel=\"next\" href=\"".len();
    let next = first[start..].split('"').next().unwrap().replace("&amp;", "&");
    let second = get(&client, &format!("{base}{next}"), Some(&cookie)).await.text().await.unwrap();
    assert!(second.contains("order 1 placed") && !second.contains("card declined"), "{next}: {second}");
    assert!(!second.contains("data-tail-url"), "older pages do not tail");

    // The metrics explorer lists the gauge and charts it grouped by its attribute.
    let list = get(&client, &format!("{base}/p/default/metrics"), Some(&cookie)).await.text().await.unwrap();
    assert!(list.contains("queue.depth") && list.contains("Messages waiting to be sent"), "{list}");
    let chart = get(
        &client,
        &format!("{base}/p/default/metrics?name=queue.depth&group_by=queue&stat=max&range=15m"),
        Some(&cookie),
    )
    .await
    .text()
    .await
    .unwrap();
    assert_eq!(chart.matches("<g class=\"series\">").count(), 2, "one line per queue: {chart}");
    assert!(chart.contains("queue=emails") && chart.contains("queue=payments"));
    assert!(chart.contains("latest 12.0 {message}") && chart.contains("latest 3.00 {message}"), "{chart}");
    assert!(
        chart.contains("<option value=\"queue\" selected>"),
        "the group-by choice offers the point's keys: {chart}"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_api_streams_new_records_that_match_its_filters() {
    let server = TestServer::start().await;
    create_user(&server, ALICE.0, ALICE.1, &["default"]);
    let ingest_key = server.ingest_key.clone();
    send_logs(&server, &ingest_key, &[TestLog::error("checkout-api", "boom before the tail")]).await;
    let base = server.http_base();
    let response = server
        .http
        .get(format!("{base}/api/v1/projects/default/logs/tail?severity_min=error&q=BOOM&service=checkout-api"))
        .bearer_auth(&server.read_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["cache-control"], "no-cache");
    let mut events = EventReader::new(response);
    // One export: two records that miss a filter each, then two that match, in this order.
    send_logs(
        &server,
        &ingest_key,
        &[
            TestLog::info("checkout-api", "boom but only info"),
            TestLog::error("cart", "boom in another service"),
            TestLog::error("checkout-api", "no match in the text"),
            TestLog { trace_id: Some(TRACE_ID), ..TestLog::error("checkout-api", "Boom one") },
            TestLog::error("checkout-api", "boom two"),
        ],
    )
    .await;
    let mut bodies = Vec::new();
    while bodies.len() < 2 {
        let (name, data) = events.next_event(EVENT_WAIT).await.expect("the matching records arrive");
        assert_eq!(name, "log", "{data}");
        let log: serde_json::Value = serde_json::from_str(&data).unwrap();
        assert_eq!(log["service_name"], "checkout-api");
        assert_eq!(log["severity_number"], 17);
        bodies.push((log["body"].as_str().unwrap().to_owned(), log["trace_id"].clone()));
    }
    assert_eq!(
        bodies,
        [("Boom one".to_owned(), serde_json::json!(TRACE_ID)), ("boom two".to_owned(), serde_json::Value::Null)],
        "only new records matching every filter, in commit order (the earlier record is not replayed)"
    );

    // The dashboard's tail streams the same under the session.
    let cookie = sign_in(&base, ALICE.0, ALICE.1).await;
    let dashboard = plain_client()
        .get(format!("{base}/p/default/logs/tail?q=dashboard"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    let mut dashboard_events = EventReader::new(dashboard);
    send_logs(&server, &ingest_key, &[TestLog::info("web", "seen on the dashboard")]).await;
    let (name, data) = dashboard_events.next_event(EVENT_WAIT).await.expect("the dashboard stream gets it");
    assert_eq!(name, "log");
    assert!(data.contains("seen on the dashboard"), "{data}");
    // Shutdown ends open streams instead of waiting for them.
    tokio::time::timeout(Duration::from_secs(20), server.stop()).await.expect("shutdown does not wait on open tails");
    assert!(events.next_event(Duration::from_secs(5)).await.is_none(), "the stream ended");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tail_api_needs_a_read_key_of_the_project() {
    let server = TestServer::start().await;
    let store = server.server.as_ref().unwrap().store.clone();
    let other = store.create_project("Other team").unwrap();
    let (other_read_key, _) = store.create_api_key(other.id, KeyScope::Read, "other read").unwrap();
    let url = format!("{}/api/v1/projects/default/logs/tail", server.http_base());
    let status = |request: reqwest::RequestBuilder| async move { request.send().await.unwrap().status().as_u16() };
    assert_eq!(status(server.http.get(&url)).await, 401, "no key");
    assert_eq!(status(server.http.get(&url).bearer_auth("sl_not_a_key")).await, 401, "unknown key");
    assert_eq!(status(server.http.get(&url).bearer_auth(&server.ingest_key)).await, 403, "ingest key");
    assert_eq!(status(server.http.get(&url).bearer_auth(other_read_key.expose())).await, 404, "another project's key");
    let unknown = format!("{}/api/v1/projects/no-such-project/logs/tail", server.http_base());
    assert_eq!(status(server.http.get(&unknown).bearer_auth(&server.read_key)).await, 404);
    let bad = server.http.get(format!("{url}?severity_min=loud")).bearer_auth(&server.read_key).send().await.unwrap();
    assert_eq!(bad.status().as_u16(), 400);
    let body: serde_json::Value = bad.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("severity_min"), "{body}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tail_connections_are_bounded_with_retry_after() {
    let server = TestServer::start_with(|config| config.max_tail_connections = 2).await;
    let url = format!("{}/api/v1/projects/default/logs/tail", server.http_base());
    let open = || server.http.get(&url).bearer_auth(&server.read_key).send();
    let first = EventReader::new(open().await.unwrap());
    let _second = EventReader::new(open().await.unwrap());
    let refused = open().await.unwrap();
    assert_eq!(refused.status().as_u16(), 503, "a third connection is over the limit");
    assert_eq!(refused.headers()["retry-after"], "5");
    let body: serde_json::Value = refused.json().await.unwrap();
    assert!(body["error"]["message"].as_str().unwrap().contains("too many live tail connections"), "{body}");

    // Closing one frees its slot once the server notices the connection is gone.
    drop(first);
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = open().await.unwrap();
        if response.status().as_u16() == 200 {
            break;
        }
        assert_eq!(response.status().as_u16(), 503);
        assert!(Instant::now() < deadline, "the closed stream's slot was never freed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_that_falls_behind_is_told_how_many_records_it_missed() {
    let server = TestServer::start().await;
    let response = server
        .http
        .get(format!("{}/api/v1/projects/default/logs/tail", server.http_base()))
        .bearer_auth(&server.read_key)
        .send()
        .await
        .unwrap();
    let mut events = EventReader::new(response);
    // Not reading while 30,000 records (about 20 MB of events, more than loopback socket
    // buffers, the connection's queue and the project's ring hold) are committed.
    let padding = "x".repeat(300);
    let bodies: Vec<String> = (0..10_000).map(|index| format!("record {index} {padding}")).collect();
    let ingest_key = server.ingest_key.clone();
    for _ in 0..3 {
        let logs: Vec<TestLog<'_>> = bodies.iter().map(|body| TestLog::info("flood", body)).collect();
        send_logs(&server, &ingest_key, &logs).await;
    }
    let (mut received, mut missed, mut lagged_events) = (0_u64, 0_u64, 0);
    while received + missed < 30_000 {
        let (name, data) = events.next_event(EVENT_WAIT).await.expect("every record is delivered or counted missed");
        match name.as_str() {
            "log" => received += 1,
            "lagged" => {
                lagged_events += 1;
                let lagged: serde_json::Value = serde_json::from_str(&data).unwrap();
                missed += lagged["missed"].as_u64().unwrap();
            }
            other => panic!("unexpected event {other}: {data}"),
        }
    }
    assert_eq!(received + missed, 30_000, "what arrived and what was reported missed add up");
    assert!(lagged_events > 0 && missed > 0, "the slow reader lagged (received {received})");
    server.stop().await;
}
