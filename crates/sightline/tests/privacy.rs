//! Privacy through the real HTTP API: settings validated on `PUT .../privacy`, scrubbing before
//! storing (product events, OTLP logs), the opt-out list, and user erasure with
//! `DELETE .../users/{user_id}`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::TestServer;
use serde_json::{Value, json};

const PRIVACY: &str = "/api/v1/projects/default/privacy";

fn now_nanos() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos() as u64
}

fn event(id: &str, user: &str, session: &str, event_type: &str) -> Value {
    json!({"event_id": id, "product_id": "shop", "session.id": session, "user.id": user,
           "event.type": event_type, "event.timestamp": "2026-11-24T10:00:00.000Z",
           "page.path": "/checkout", "page.title": "Receipt for jane@example.com",
           "page.url": "https://shop.example/checkout?email=jane%40example.com&step=2"})
}

async fn post_events(server: &TestServer, events: Vec<Value>) {
    let response = server
        .http
        .post(format!("{}/v1/events", server.http_base()))
        .header("x-api-key", &server.ingest_key)
        .json(&json!({"events": events}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 202, "{}", response.text().await.unwrap());
}

async fn send(
    server: &TestServer,
    method: reqwest::Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = server.http.request(method, format!("{}{path}", server.http_base())).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn events_of(server: &TestServer, query: &str) -> Vec<Value> {
    server.api_ok(&format!("/api/v1/projects/default/events?limit=1000&{query}")).await["events"]
        .as_array()
        .unwrap()
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_are_validated_and_scrub_before_storing() {
    let server = TestServer::start().await;
    let (status, defaults) = send(&server, reqwest::Method::GET, PRIVACY, &server.read_key, None).await;
    assert_eq!(status, 200);
    assert_eq!(defaults["scrub_before_storing"], false);
    assert_eq!(defaults["applications"], json!({"**": ["@common"]}));
    assert_eq!(defaults["consent"], json!({"attribute": "consent.analytics", "require_consent": false}));
    assert!(defaults.get("vars").is_none(), "the hash key is never shown: {defaults}");

    // Stored as sent while the project does not scrub before storing.
    post_events(&server, vec![event("raw-1", "user-42", "sess-raw", "page.view")]).await;
    assert_eq!(
        events_of(&server, "session=sess-raw").await[0]["properties"]["page.title"],
        "Receipt for jane@example.com"
    );

    let put = |key: String, body: Value| {
        let server = &server;
        async move { send(server, reqwest::Method::PUT, PRIVACY, &key, Some(body)).await }
    };
    let (status, _) = put(server.read_key.clone(), json!({"scrub_before_storing": true})).await;
    assert_eq!(status, 403, "changing privacy rules needs scope all");
    for (body, expected) in [
        (json!({"applications": {"**": ["@nope"]}}), "unknown rule \"@nope\""),
        (json!({"rules": {"r": {"type": "pattern", "pattern": "(("}}, "applications": {"**": ["r"]}}), "bad regex"),
        (json!({"applications": {"page..url": ["@email"]}}), "bad selector"),
        (json!({"vars": {"hash_key": "mine"}}), "cannot be set"),
        (json!({"rules": {"r": {"type": "zodiac"}}}), "body:"),
    ] {
        let (status, error) = put(server.admin_key.clone(), body.clone()).await;
        assert_eq!(status, 400, "{body}");
        let message = error["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(expected), "{body}: {message}");
    }
    let (status, saved) = put(
        server.admin_key.clone(),
        json!({"scrub_before_storing": true,
               "applications": {"**": ["@common"], "user.id": ["@anything:hash"]}}),
    )
    .await;
    assert_eq!(status, 200, "{saved}");
    assert_eq!(saved["scrub_before_storing"], true);
    let (_, read_back) = send(&server, reqwest::Method::GET, PRIVACY, &server.read_key, None).await;
    assert_eq!(read_back["applications"], json!({"**": ["@common"], "user.id": ["@anything:hash"]}));

    // Product events: properties, URL query values and the user id, with the remarks kept.
    post_events(&server, vec![event("scrubbed-1", "user-42", "sess-scrubbed", "page.view")]).await;
    let stored = events_of(&server, "session=sess-scrubbed").await;
    let stored = &stored[0];
    assert_eq!(stored["properties"]["page.title"], "Receipt for [email]");
    assert_eq!(stored["properties"]["page.url"], "https://shop.example/checkout?email=%5Bemail%5D&step=2");
    let pseudonym = stored["user.id"].as_str().unwrap();
    assert!(pseudonym.len() == 64 && pseudonym != "user-42", "{pseudonym}");
    let remarks = stored["metadata"]["privacy.remarks"].as_array().unwrap();
    assert!(
        remarks.contains(&json!({"rule_id": "@anything:hash", "path": "user.id", "method": "hash"})),
        "{remarks:?}"
    );
    assert!(remarks.contains(&json!({"rule_id": "@email", "path": "page.url.$query.email", "method": "replace"})));
    // The same user gets the same pseudonym.
    post_events(&server, vec![event("scrubbed-2", "user-42", "sess-scrubbed", "ui.click")]).await;
    let both = events_of(&server, "session=sess-scrubbed").await;
    assert!(both.iter().all(|event| event["user.id"] == pseudonym), "{both:?}");

    // OTLP logs: attributes and body.
    let logs = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "auth"}}]},
        "scopeLogs": [{"logRecords": [{"timeUnixNano": now_nanos().to_string(), "severityNumber": 9,
            "body": {"stringValue": "login by jane@example.com"},
            "attributes": [{"key": "client.address", "value": {"stringValue": "203.0.113.9"}},
                           {"key": "http.request.header.authorization", "value": {"stringValue": "Bearer abc"}}]}]}]}]});
    let response = server
        .http
        .post(format!("{}/v1/logs", server.http_base()))
        .bearer_auth(&server.ingest_key)
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let stored_logs = server.api_ok("/api/v1/projects/default/logs?service=auth").await;
    let log = &stored_logs["logs"][0];
    assert_eq!(log["body"], "login by [email]", "{log}");
    assert_eq!(log["attributes"]["client.address"], "[ip]");
    assert!(log["attributes"].get("http.request.header.authorization").is_none(), "{log}");

    // Erasure finds events stored under the pseudonym.
    let (status, erased) =
        send(&server, reqwest::Method::DELETE, "/api/v1/projects/default/users/user-42", &server.admin_key, None).await;
    assert_eq!(status, 200);
    assert_eq!(erased["events"], 3, "{erased}");
    assert!(events_of(&server, "").await.is_empty());
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasure_removes_a_users_data_and_reports_it() {
    let server = TestServer::start().await;
    let mut error = event("err-1", "user-42", "sess-a", "error");
    error["error.type"] = json!("TypeError");
    error["error.message"] = json!("total is undefined");
    error["error.stack"] = json!("TypeError: total is undefined\n    at render (https://shop.example/app.js:1:20)");
    post_events(
        &server,
        vec![
            event("a-1", "user-42", "sess-a", "page.view"),
            event("a-2", "user-42", "sess-a", "ui.click"),
            error,
            event("b-1", "user-7", "sess-b", "page.view"),
        ],
    )
    .await;
    let issues = server.api_ok("/api/v1/projects/default/issues").await["issues"].as_array().unwrap().clone();
    assert_eq!(issues[0]["user_count"], 1);

    let path = "/api/v1/projects/default/users/user-42";
    let (status, _) = send(&server, reqwest::Method::DELETE, path, &server.read_key, None).await;
    assert_eq!(status, 403, "erasure needs scope all");
    let (status, erased) = send(&server, reqwest::Method::DELETE, path, &server.admin_key, None).await;
    assert_eq!(status, 200, "{erased}");
    assert_eq!(
        erased,
        json!({"user_id": "user-42", "events": 3, "sessions": 1, "session_items": 1, "error_events": 1,
               "issue_users": 1, "pending_deliveries": 0})
    );

    let remaining = events_of(&server, "").await;
    assert_eq!(remaining.len(), 1);
    assert_eq!(remaining[0]["user.id"], "user-7");
    let sessions = server.api_ok("/api/v1/projects/default/sessions?user=user-42").await;
    assert_eq!(sessions["sessions"], json!([]));
    assert_eq!(
        server.api_ok("/api/v1/projects/default/sessions?user=user-7").await["sessions"].as_array().unwrap().len(),
        1
    );
    let issue = server.api_ok(&format!("/api/v1/projects/default/issues/{}", issues[0]["id"])).await;
    assert_eq!(issue["issue"]["user_count"], 0);
    assert!(issue["latest_event"]["context"]["user_id"].is_null(), "{}", issue["latest_event"]["context"]);

    // Idempotent: nothing left to remove.
    let (status, again) = send(&server, reqwest::Method::DELETE, path, &server.admin_key, None).await;
    assert_eq!(status, 200);
    assert_eq!(
        again,
        json!({"user_id": "user-42", "events": 0, "sessions": 0, "session_items": 0, "error_events": 0,
               "issue_users": 0, "pending_deliveries": 0})
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opt_outs_are_listed_and_counted() {
    let server = TestServer::start().await;
    let path = "/api/v1/projects/default/privacy/opt-outs/user-9";
    let (status, _) = send(&server, reqwest::Method::POST, path, &server.read_key, None).await;
    assert_eq!(status, 403);
    let (status, added) = send(&server, reqwest::Method::POST, path, &server.admin_key, None).await;
    assert_eq!((status, added), (200, json!({"user_id": "user-9", "opted_out": true, "changed": true})));
    let (_, again) = send(&server, reqwest::Method::POST, path, &server.admin_key, None).await;
    assert_eq!(again["changed"], false, "adding twice changes nothing");
    let listed = server.api_ok("/api/v1/projects/default/privacy/opt-outs").await;
    assert_eq!(listed, json!({"opt_outs": ["user-9"]}));
    assert_eq!(server.api_ok(PRIVACY).await["opt_out_count"], 1);
    let (status, removed) = send(&server, reqwest::Method::DELETE, path, &server.admin_key, None).await;
    assert_eq!((status, removed["changed"].clone()), (200, json!(true)));
    assert_eq!(server.api_ok(PRIVACY).await["opt_out_count"], 0);
    let (status, _) =
        send(&server, reqwest::Method::GET, "/api/v1/projects/other/privacy", &server.read_key, None).await;
    assert_eq!(status, 404);
    server.stop().await;
}
