//! Helpers for the dashboard tests: users and memberships, a cookie-keeping HTTP client that does
//! not follow redirects, sign-in through the real form, and real OpenTelemetry SDK traffic (a
//! checkout request whose database call fails with a Python exception).

#![allow(clippy::unwrap_used)] // A failed step should stop the test where it failed.

use std::collections::HashMap;

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use sightline_server::users::{Password, hash_password};

use super::TestServer;

/// A real Python traceback (CPython 3.11 format) from an app under /srv/app calling into the
/// standard library.
pub const PYTHON_TRACEBACK: &str = r#"Traceback (most recent call last):
  File "/srv/app/checkout.py", line 42, in place_order
    receipt = charge_card(order)
  File "/srv/app/payments.py", line 17, in charge_card
    return json.loads(response.body)
  File "/usr/lib/python3.11/json/__init__.py", line 346, in loads
    return _default_decoder.decode(s)
  File "/usr/lib/python3.11/json/decoder.py", line 355, in raw_decode
    raise JSONDecodeError("Expecting value", s, err.value) from None
json.decoder.JSONDecodeError: Expecting value: line 1 column 1 (char 0)
"#;

/// Creates a dashboard user who is a member of `projects` (slugs).
pub fn create_user(server: &TestServer, email: &str, password: &str, projects: &[&str]) {
    let store = &server.server.as_ref().expect("running").store;
    let user = store.create_user(email, &hash_password(&Password::new(password)).unwrap()).unwrap();
    for slug in projects {
        let project = store.find_project(slug).unwrap().expect("project exists");
        store.add_membership(user.id, project.id).unwrap();
    }
}

/// An HTTP client that keeps no cookies and follows no redirects (the tests check both).
pub fn plain_client() -> reqwest::Client {
    reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// `name=value` pairs from a response's `Set-Cookie` headers.
pub fn set_cookies(response: &reqwest::Response) -> HashMap<String, String> {
    response
        .headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .filter_map(|line| line.split(';').next()?.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect()
}

/// The value of the first `name="csrf" value="..."` hidden field in a page.
pub fn csrf_field(html: &str) -> String {
    let start =
        html.find(r#"name="csrf" value=""#).expect("the page has a CSRF field") + r#"name="csrf" value=""#.len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// Signs in through `GET /login` and `POST /login`; returns the `Cookie` header value of the
/// session.
pub async fn sign_in(base: &str, email: &str, password: &str) -> String {
    let client = plain_client();
    let form = client.get(format!("{base}/login")).send().await.unwrap();
    let login_cookie = set_cookies(&form).remove("sightline_login_csrf").expect("login CSRF cookie");
    let csrf = csrf_field(&form.text().await.unwrap());
    let response = client
        .post(format!("{base}/login"))
        .header("cookie", format!("sightline_login_csrf={login_cookie}"))
        .form(&[("csrf", csrf.as_str()), ("email", email), ("password", password), ("next", "/")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 303, "sign-in as {email} failed");
    let session = set_cookies(&response).remove("sightline_session").expect("session cookie");
    format!("sightline_session={session}")
}

/// Sends, with the OpenTelemetry SDK over OTLP/HTTP protobuf, one checkout trace to the project
/// of `ingest_key`: a SERVER span `POST /checkout` with a CLIENT database child and an INTERNAL
/// child that records [`PYTHON_TRACEBACK`] and fails. Returns the trace id (hex).
pub async fn send_checkout_trace(server: &TestServer, ingest_key: &str, service: &str) -> String {
    let endpoint = format!("{}/v1/traces", server.http_base());
    let key = ingest_key.to_owned();
    let service = service.to_owned();
    tokio::task::spawn_blocking(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_headers(HashMap::from([("Authorization".to_owned(), format!("Bearer {key}"))]))
            .build()
            .unwrap();
        let resource = Resource::builder_empty()
            .with_service_name(service)
            .with_attributes([
                KeyValue::new("telemetry.sdk.language", "python"),
                KeyValue::new("service.version", "2.4.1"),
                KeyValue::new("deployment.environment.name", "production"),
            ])
            .build();
        let provider = SdkTracerProvider::builder().with_resource(resource).with_simple_exporter(exporter).build();
        let tracer = provider.tracer("checkout");
        // Explicit times give the spans a known shape without waiting.
        let start = std::time::SystemTime::now();
        let at = |ms: u64| start + std::time::Duration::from_millis(ms);
        let root = tracer
            .span_builder("POST /checkout")
            .with_start_time(at(0))
            .with_kind(SpanKind::Server)
            .with_attributes([
                KeyValue::new("http.request.method", "POST"),
                KeyValue::new("http.route", "/checkout"),
                KeyValue::new("http.response.status_code", 500),
                KeyValue::new("user.id", "user-7"),
                KeyValue::new("session.id", "sess-browser-1"),
            ])
            .start(&tracer);
        let trace_id = root.span_context().trace_id().to_string();
        let context = opentelemetry::Context::current_with_span(root);
        let mut query = tracer
            .span_builder("SELECT orders")
            .with_start_time(at(1))
            .with_kind(SpanKind::Client)
            .with_attributes([
                KeyValue::new("db.system.name", "postgresql"),
                KeyValue::new("db.query.text", "SELECT * FROM orders WHERE id = $1"),
            ])
            .start_with_context(&tracer, &context);
        query.end_with_timestamp(at(4));
        let mut charge = tracer
            .span_builder("charge_card")
            .with_start_time(at(5))
            .with_kind(SpanKind::Internal)
            .start_with_context(&tracer, &context);
        charge.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", "json.decoder.JSONDecodeError"),
                KeyValue::new("exception.message", "Expecting value: line 1 column 1 (char 0)"),
                KeyValue::new("exception.stacktrace", PYTHON_TRACEBACK),
                KeyValue::new("exception.escaped", true),
            ],
        );
        charge.set_status(Status::error("payment provider answered garbage"));
        charge.end_with_timestamp(at(9));
        let root = context.span();
        root.set_status(Status::error("checkout failed"));
        root.end_with_timestamp(at(10));
        provider.shutdown().unwrap();
        trace_id
    })
    .await
    .unwrap()
}
