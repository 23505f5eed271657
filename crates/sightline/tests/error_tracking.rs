//! Error tracking end to end with real errors from real runtimes: Python and Node programs run
//! here raise exceptions, the Rust test captures a real backtrace, and the traces travel as the
//! OpenTelemetry SDKs send them (span event `exception` with `exception.type`, `.message`,
//! `.stacktrace`, over OTLP/HTTP). The issues that result are checked through the API,
//! including Sentry's lifecycle: resolve, regression, resolved-in-release, ignore until.

mod common;

use std::collections::HashMap;
use std::process::Command;

use common::TestServer;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::{Value, json};

/// Runs a Python program that fails and returns its traceback (stderr).
fn python_traceback(program: &str) -> String {
    let output = Command::new("python3").arg("-c").arg(program).output().expect("python3 runs");
    assert!(!output.status.success());
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Runs a Node program that prints `error.stack`.
fn node_stack(program: &str) -> String {
    let output = Command::new("node").arg("-e").arg(program).output().expect("node runs");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

const PYTHON_CHECKOUT: &str = r#"
def load_cart(cart_id):
    items = {"a": 3}
    return price(items, cart_id)

def price(items, cart_id):
    total = sum(items.values())
    return total / (cart_id - cart_id)

load_cart(42)
"#;

/// The same bug after an edit that moved every line and changed the argument.
const PYTHON_CHECKOUT_MOVED: &str = r#"
import os


def load_cart(cart_id):
    # a comment added in the next release
    items = {"a": 3}

    return price(items, cart_id)


def price(items, cart_id):
    total = sum(items.values())
    return total / (cart_id - cart_id)

load_cart(7)
"#;

/// A different bug: a missing key in another function.
const PYTHON_MISSING_KEY: &str = r#"
def read_config(config):
    return config["database_url"]

read_config({})
"#;

const NODE_TYPE_ERROR: &str = r#"
function renderUser(user) { return user.profile.name.toUpperCase(); }
function handler() { return renderUser({ profile: null }); }
try { handler(); } catch (error) { console.log(error.stack); }
"#;

#[inline(never)]
fn rust_failing_operation() -> String {
    std::backtrace::Backtrace::force_capture().to_string()
}

/// One exception to record: (type, message, stack trace, user id).
type Exception = (String, String, String, String);

/// Sends exceptions with the SDK's blocking HTTP exporter on a blocking thread (the blocking
/// client must not run inside the async runtime), then flushes.
async fn send_exceptions(
    server: &TestServer,
    service: &str,
    language: &str,
    release: &str,
    exceptions: Vec<Exception>,
) {
    let endpoint = format!("{}/v1/traces", server.http_base());
    let key = server.ingest_key.clone();
    let (service, language, release) = (service.to_owned(), language.to_owned(), release.to_owned());
    tokio::task::spawn_blocking(move || {
        let sender = Sender::new(&endpoint, &key, &service, &language, &release);
        for (exception_type, message, stacktrace, user) in exceptions {
            sender.send_exception(&exception_type, &message, &stacktrace, &user);
        }
        sender.provider.shutdown().unwrap();
    })
    .await
    .unwrap();
}

fn exception(exception_type: &str, message: &str, stacktrace: &str, user: &str) -> Exception {
    (exception_type.to_owned(), message.to_owned(), stacktrace.to_owned(), user.to_owned())
}

struct Sender {
    provider: SdkTracerProvider,
}

impl Sender {
    fn new(endpoint: &str, key: &str, service: &str, language: &str, release: &str) -> Self {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint.to_owned())
            .with_headers(HashMap::from([("Authorization".to_owned(), format!("Bearer {key}"))]))
            .build()
            .unwrap();
        let resource = Resource::builder_empty()
            .with_service_name(service.to_owned())
            .with_attributes([
                KeyValue::new("telemetry.sdk.language", language.to_owned()),
                KeyValue::new("service.version", release.to_owned()),
                KeyValue::new("deployment.environment.name", "production"),
            ])
            .build();
        Self { provider: SdkTracerProvider::builder().with_resource(resource).with_simple_exporter(exporter).build() }
    }

    /// Records the exception on a span the way the SDKs' `record_exception` does.
    fn send_exception(&self, exception_type: &str, message: &str, stacktrace: &str, user: &str) {
        let tracer = self.provider.tracer("checkout");
        let mut span = tracer
            .span_builder("POST /checkout")
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.route", "/checkout"),
                KeyValue::new("user.id", user.to_owned()),
                KeyValue::new("session.id", format!("sess-{user}")),
                KeyValue::new(
                    "user_agent.original",
                    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36",
                ),
            ])
            .start(&tracer);
        span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", exception_type.to_owned()),
                KeyValue::new("exception.message", message.to_owned()),
                KeyValue::new("exception.stacktrace", stacktrace.to_owned()),
                KeyValue::new("exception.escaped", true),
            ],
        );
        span.set_status(Status::error(message.to_owned()));
        span.end();
    }
}

async fn issues(server: &TestServer, query: &str) -> Vec<Value> {
    server.api_ok(&format!("/api/v1/projects/default/issues?{query}")).await["issues"].as_array().unwrap().clone()
}

async fn patch_issue(server: &TestServer, issue_id: i64, body: Value) -> (u16, Value) {
    let response = server
        .http
        .patch(format!("{}/api/v1/projects/default/issues/{issue_id}", server.http_base()))
        .bearer_auth(&server.admin_key)
        .json(&body)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

/// Moves an issue's resolution time back, as if it was resolved `seconds` ago (the regression
/// guard ignores events within 5 s of a resolution).
fn age_resolution(server: &TestServer, issue_id: i64, seconds: i64) {
    let connection = rusqlite::Connection::open(server.data_dir.path().join("sightline.db")).unwrap();
    connection
        .execute(
            "UPDATE issues SET resolved_at_unix_nano = resolved_at_unix_nano - ?2 WHERE id = ?1",
            rusqlite::params![issue_id, seconds * 1_000_000_000],
        )
        .unwrap();
}

fn now_nanos() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_runtime_errors_group_into_issues() {
    let server = TestServer::start().await;
    let checkout = python_traceback(PYTHON_CHECKOUT);
    let moved = python_traceback(PYTHON_CHECKOUT_MOVED);
    let missing_key = python_traceback(PYTHON_MISSING_KEY);
    assert!(checkout.contains("ZeroDivisionError") && missing_key.contains("KeyError"));
    send_exceptions(
        &server,
        "checkout-py",
        "python",
        "1.0.0",
        vec![
            exception("ZeroDivisionError", "division by zero", &checkout, "alice"),
            exception("ZeroDivisionError", "division by zero", &moved, "bob"),
            exception("ZeroDivisionError", "division by zero", &checkout, "alice"),
            exception("KeyError", "'database_url'", &missing_key, "carol"),
        ],
    )
    .await;

    let stack = node_stack(NODE_TYPE_ERROR);
    let first_line = stack.lines().next().unwrap().to_owned();
    assert!(first_line.starts_with("TypeError"), "{stack}");
    let node_message = first_line.trim_start_matches("TypeError: ").to_owned();
    send_exceptions(&server, "web", "nodejs", "2.3.0", vec![exception("TypeError", &node_message, &stack, "dave")])
        .await;

    let backtrace = rust_failing_operation();
    send_exceptions(
        &server,
        "billing",
        "rust",
        "0.4.1",
        vec![
            exception("billing::InvoiceError", "invoice 1234 has no lines", &backtrace, "erin"),
            exception("billing::InvoiceError", "invoice 98 has no lines", &backtrace, "frank"),
        ],
    )
    .await;

    let all = issues(&server, "sort=count").await;
    assert_eq!(all.len(), 4, "zero division, key error, type error, invoice error: {all:#?}");
    let by_type = |exception_type: &str| -> Value {
        all.iter()
            .find(|issue| issue["exception_type"] == exception_type)
            .cloned()
            .unwrap_or_else(|| panic!("no {exception_type} issue"))
    };
    let zero = by_type("ZeroDivisionError");
    assert_eq!(zero["event_count"], 3, "the same bug on moved lines is the same issue");
    assert_eq!(zero["user_count"], 2);
    assert_eq!(zero["session_count"], 2);
    assert_eq!(zero["status"], "unresolved");
    assert_eq!(zero["substatus"], "new");
    assert!(zero["culprit"].as_str().unwrap().contains("price"), "{zero}");
    assert_eq!(by_type("KeyError")["event_count"], 1, "a different bug is a different issue");
    assert_eq!(by_type("billing::InvoiceError")["event_count"], 2, "numbers in messages do not split issues");
    assert!(by_type("TypeError")["culprit"].as_str().unwrap().contains("renderUser"), "{}", by_type("TypeError"));

    // Filters.
    assert_eq!(issues(&server, "service=web").await.len(), 1);
    assert_eq!(issues(&server, "user=carol").await.len(), 1);
    assert_eq!(issues(&server, "environment=production").await.len(), 4);
    assert_eq!(issues(&server, "release=0.4.1").await.len(), 1);
    assert_eq!(issues(&server, "q=division").await.len(), 1);
    assert_eq!(issues(&server, "status=resolved").await.len(), 0);
    let (status, _) = server.api_get("/api/v1/projects/default/issues?sort=oldest").await;
    assert_eq!(status, 400);

    // The issue page: latest event with frames and context, breakdowns, links.
    let zero_id = zero["id"].as_i64().unwrap();
    let detail = server.api_ok(&format!("/api/v1/projects/default/issues/{zero_id}")).await;
    let event = &detail["latest_event"];
    let frames = event["exceptions"][0]["frames"].as_array().unwrap();
    let innermost = frames.last().unwrap();
    assert_eq!(innermost["function"], "price");
    assert_eq!(innermost["in_app"], true);
    assert!(innermost["lineno"].as_u64().is_some());
    assert_eq!(event["context"]["route"], "/checkout");
    assert_eq!(event["context"]["release"], "1.0.0");
    assert!(event["context"]["browser"].as_str().unwrap().starts_with("Chrome"), "{}", event["context"]);
    assert!(detail["links"]["trace"].as_str().unwrap().contains("/traces/"));
    let trace_link = detail["links"]["trace"].as_str().unwrap().to_owned();
    assert_eq!(server.api_ok(&trace_link).await["span_count"], 1, "the linked trace exists");
    let users: Vec<&Value> = detail["top_tags"]["browser"].as_array().unwrap().iter().collect();
    assert_eq!(users[0][1], 3);
    let hourly: u64 =
        detail["occurrences_per_hour"].as_array().unwrap().iter().map(|entry| entry[1].as_u64().unwrap()).sum();
    assert_eq!(hourly, 3);
    let events = server.api_ok(&format!("/api/v1/projects/default/issues/{zero_id}/events?limit=2")).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 2);
    assert!(events["next_cursor"].is_string());

    let stats = server.api_ok("/api/v1/projects/default/errors/stats?timeRange=24h").await;
    assert_eq!(stats["stats"]["total_events"], 7);
    assert_eq!(stats["stats"]["by_service"]["checkout-py"], 4);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resolution_regression_and_ignore_follow_sentry() {
    let server = TestServer::start().await;
    let traceback = python_traceback(PYTHON_CHECKOUT);
    let send = |release: &'static str| {
        send_exceptions(
            &server,
            "checkout-py",
            "python",
            release,
            vec![exception("ZeroDivisionError", "division by zero", &traceback, "alice")],
        )
    };
    send("1.0.0").await;
    let issue_id = issues(&server, "").await[0]["id"].as_i64().unwrap();

    // A read key may not triage.
    let response = server
        .http
        .patch(format!("{}/api/v1/projects/default/issues/{issue_id}", server.http_base()))
        .bearer_auth(&server.read_key)
        .json(&json!({"status": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 403);

    // Resolved; an event right after (within the 5 s guard) does not regress it.
    let (status, resolved) = patch_issue(&server, issue_id, json!({"status": "resolved"})).await;
    assert_eq!(status, 200, "{resolved}");
    assert_eq!(resolved["status"], "resolved");
    send("1.0.0").await;
    assert_eq!(issues(&server, "").await[0]["status"], "resolved", "the guard absorbs the resolve/ingest race");

    // Later, a new event reopens it as regressed.
    age_resolution(&server, issue_id, 60);
    send("1.0.0").await;
    let regressed = &issues(&server, "").await[0];
    assert_eq!(
        (regressed["status"].clone(), regressed["substatus"].clone()),
        (json!("unresolved"), json!("regressed"))
    );

    // Resolved in 2.0.0: an event from older 1.0.0 does not regress, one from 2.0.0 does.
    let (status, body) =
        patch_issue(&server, issue_id, json!({"status": "resolved_in_release", "release": "2.0.0"})).await;
    assert_eq!(status, 200, "{body}");
    age_resolution(&server, issue_id, 60);
    send("1.0.0").await;
    assert_eq!(issues(&server, "").await[0]["status"], "resolved_in_release");
    send("2.0.0").await;
    assert_eq!(issues(&server, "").await[0]["substatus"], "regressed");

    // Ignored until 2 more events.
    let (status, _) = patch_issue(&server, issue_id, json!({"status": "ignored", "ignore_for_events": 2})).await;
    assert_eq!(status, 200);
    send("2.0.0").await;
    assert_eq!(issues(&server, "").await[0]["status"], "ignored");
    send("2.0.0").await;
    let escalated = &issues(&server, "").await[0];
    assert_eq!(
        (escalated["status"].clone(), escalated["substatus"].clone()),
        (json!("unresolved"), json!("escalating"))
    );

    // Bulk form and the history.
    let response = server
        .http
        .patch(format!("{}/api/v1/projects/default/issues", server.http_base()))
        .bearer_auth(&server.admin_key)
        .json(&json!({"ids": [issue_id], "status": "resolved"}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(patch_issue(&server, 999_999, json!({"status": "resolved"})).await.0, 404);
    let detail = server.api_ok(&format!("/api/v1/projects/default/issues/{issue_id}")).await;
    let reasons: Vec<String> = detail["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|entry| format!("{}:{}", entry["status"].as_str().unwrap(), entry["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(
        reasons,
        [
            "resolved:api",
            "unresolved:regression",
            "resolved_in_release:api",
            "unresolved:regression",
            "ignored:api",
            "unresolved:ignore_expired",
            "resolved:api"
        ]
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_logs_and_error_spans_become_issues_and_bad_traces_are_bounded() {
    let server = TestServer::start().await;
    // An absurdly long, partly malformed trace with invalid UTF-8 turned lossy by the SDK.
    let mut huge = String::from("Traceback (most recent call last):\n");
    for index in 0..50_000 {
        huge.push_str(&format!("  File \"/app/worker/loop.py\", line {index}, in step_{}\n", index % 7));
        if index % 1000 == 0 {
            huge.push_str("garbage \u{fffd}\u{fffd} line without structure\n");
        }
    }
    huge.push_str("RecursionError: maximum recursion depth exceeded\n");
    send_exceptions(
        &server,
        "worker",
        "python",
        "1.0.0",
        vec![exception("RecursionError", "maximum recursion depth exceeded", &huge, "zoe")],
    )
    .await;
    // An ERROR span without an exception event.
    let endpoint = format!("{}/v1/traces", server.http_base());
    let key = server.ingest_key.clone();
    tokio::task::spawn_blocking(move || {
        let sender = Sender::new(&endpoint, &key, "worker", "python", "1.0.0");
        let tracer = sender.provider.tracer("worker");
        let mut span = tracer.span_builder("process job 1234").start(&tracer);
        span.set_status(Status::error("job 1234 failed after 3 attempts"));
        span.end();
        sender.provider.shutdown().unwrap();
    })
    .await
    .unwrap();
    // An error log with exception attributes and a plain ERROR log, over OTLP/JSON.
    let logs = json!({"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "worker"}}]},
    "scopeLogs": [{"logRecords": [
        {"timeUnixNano": now_nanos().to_string(), "severityNumber": 17, "body": {"stringValue": "payment 77 failed"},
         "attributes": [{"key": "exception.type", "value": {"stringValue": "PaymentDeclined"}},
                        {"key": "exception.message", "value": {"stringValue": "card 4242 declined"}}]},
        {"timeUnixNano": now_nanos().to_string(), "severityNumber": 21, "body": {"stringValue": "disk /dev/sda1 is full (98%)"}},
        {"timeUnixNano": now_nanos().to_string(), "severityNumber": 21, "body": {"stringValue": "disk /dev/sda1 is full (99%)"}},
        {"timeUnixNano": now_nanos().to_string(), "severityNumber": 9, "body": {"stringValue": "all good"}}
    ]}]}]});
    let response = server
        .http
        .post(format!("{}/v1/logs", server.http_base()))
        .bearer_auth(&server.ingest_key)
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);

    let all = issues(&server, "").await;
    assert_eq!(all.len(), 4, "recursion, failed job span, declined payment, full disk: {all:#?}");
    let disk = all
        .iter()
        .find(|issue| issue["title"].as_str().unwrap().contains("disk"))
        .expect("a plain fatal log is an issue");
    assert_eq!(disk["event_count"], 2, "messages differing in parameters group together");
    assert_eq!(disk["level"], "fatal");
    assert!(all.iter().any(|issue| issue["exception_type"] == "PaymentDeclined"));
    assert!(all.iter().any(|issue| issue["title"].as_str().unwrap().contains("job")));
    let recursion = all.iter().find(|issue| issue["exception_type"] == "RecursionError").unwrap();
    let detail = server.api_ok(&format!("/api/v1/projects/default/issues/{}", recursion["id"])).await;
    let frames = detail["latest_event"]["exceptions"][0]["frames"].as_array().unwrap();
    assert!(!frames.is_empty() && frames.len() <= 250, "frames are bounded: {}", frames.len());
    assert!(detail["latest_event"]["raw_stacktrace"].as_str().unwrap().len() <= 64 * 1024);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_removes_expired_error_events_and_issues() {
    let server = TestServer::start().await;
    let day = 86_400 * 1_000_000_000u64;
    let log = |time: u64, exception_type: &str| {
        json!({"timeUnixNano": time.to_string(), "severityNumber": 17, "body": {"stringValue": "failed"},
               "attributes": [{"key": "exception.type", "value": {"stringValue": exception_type}}]})
    };
    let logs = json!({"resourceLogs": [{"scopeLogs": [{"logRecords": [
        log(now_nanos() - 40 * day, "OldError"),
        log(now_nanos() - 40 * day, "MixedError"),
        log(now_nanos(), "MixedError"),
        log(now_nanos(), "NewError"),
    ]}]}]});
    let response = server
        .http
        .post(format!("{}/v1/logs", server.http_base()))
        .bearer_auth(&server.ingest_key)
        .json(&logs)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(issues(&server, "").await.len(), 3);

    let store = server.server.as_ref().unwrap().store.clone();
    tokio::task::spawn_blocking(move || sightline_server::retention::run_once(store.as_ref(), now_nanos(), 2))
        .await
        .unwrap()
        .unwrap();
    let remaining = issues(&server, "").await;
    let mut types: Vec<&str> = remaining.iter().map(|issue| issue["exception_type"].as_str().unwrap()).collect();
    types.sort_unstable();
    assert_eq!(types, ["MixedError", "NewError"], "the issue whose last event expired is gone");
    let mixed = remaining.iter().find(|issue| issue["exception_type"] == "MixedError").unwrap();
    let events = server.api_ok(&format!("/api/v1/projects/default/issues/{}/events", mixed["id"])).await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1, "the expired event of a live issue is gone");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn project_in_app_rules_decide_in_app_frames() {
    let server = TestServer::start().await;
    let response = server
        .http
        .patch(format!("{}/api/v1/projects/default", server.http_base()))
        .bearer_auth(&server.admin_key)
        .json(&json!({"in_app_exclude": ["<string>"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let project: Value = response.json().await.unwrap();
    assert_eq!(project["in_app_exclude"], json!(["<string>"]));

    let traceback = python_traceback(PYTHON_CHECKOUT);
    send_exceptions(
        &server,
        "checkout-py",
        "python",
        "1.0.0",
        vec![exception("ZeroDivisionError", "division by zero", &traceback, "a")],
    )
    .await;
    let issue = &issues(&server, "").await[0];
    let detail = server.api_ok(&format!("/api/v1/projects/default/issues/{}", issue["id"])).await;
    let frames = detail["latest_event"]["exceptions"][0]["frames"].as_array().unwrap();
    assert!(!frames.is_empty());
    assert!(frames.iter().all(|frame| frame["in_app"] == false), "excluded frames are not in-app: {frames:?}");
    server.stop().await;
}
