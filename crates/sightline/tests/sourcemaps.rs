//! JavaScript source maps end to end: two releases of a real app minified by terser (committed
//! under `tests/fixtures/sourcemaps/`, with `build.sh`), run here with Node to get real minified
//! stack traces, sent as the OpenTelemetry SDK records exceptions. Once a release's maps are
//! uploaded, its events carry the original files, functions, lines and source context, and the
//! two builds, whose minified names differ, group into one issue.

mod common;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Command;

use common::TestServer;
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde_json::Value;

fn fixtures() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/sourcemaps")
}

/// Runs a minified bundle with Node; it prints the `error.stack` of the error it catches.
fn node_stack(release: &str, bundle: &str) -> String {
    let output =
        Command::new("node").arg(fixtures().join(release).join("dist").join(bundle)).output().expect("node runs");
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let stack = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(stack.starts_with("TypeError: Cannot read properties of undefined"), "{stack}");
    stack
}

fn map_bytes(release: &str, bundle: &str) -> Vec<u8> {
    std::fs::read(fixtures().join(release).join("dist").join(format!("{bundle}.map"))).expect("fixture map")
}

/// Records one exception the way the OTel SDKs' `record_exception` does, with the release as
/// `service.version`, over OTLP/HTTP (blocking exporter, so on a blocking thread).
async fn send_exception(server: &TestServer, language: &str, release: &str, stack: &str) {
    let endpoint = format!("{}/v1/traces", server.http_base());
    let key = server.ingest_key.clone();
    let (language, release, stack) = (language.to_owned(), release.to_owned(), stack.to_owned());
    tokio::task::spawn_blocking(move || {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(endpoint)
            .with_headers(HashMap::from([("Authorization".to_owned(), format!("Bearer {key}"))]))
            .build()
            .unwrap();
        let resource = Resource::builder_empty()
            .with_service_name("storefront")
            .with_attributes([
                KeyValue::new("telemetry.sdk.language", language),
                KeyValue::new("service.version", release),
            ])
            .build();
        let provider = SdkTracerProvider::builder().with_resource(resource).with_simple_exporter(exporter).build();
        let tracer = provider.tracer("storefront");
        let mut span = tracer.span_builder("render cart").with_kind(SpanKind::Internal).start(&tracer);
        let message = stack.lines().next().unwrap().trim_start_matches("TypeError: ").to_owned();
        span.add_event(
            "exception",
            vec![
                KeyValue::new("exception.type", "TypeError"),
                KeyValue::new("exception.message", message.clone()),
                KeyValue::new("exception.stacktrace", stack),
            ],
        );
        span.set_status(Status::error(message));
        span.end();
        provider.shutdown().unwrap();
    })
    .await
    .unwrap();
}

async fn upload(server: &TestServer, key: &str, release: &str, form: reqwest::multipart::Form) -> (u16, Value) {
    let response = server
        .http
        .post(format!("{}/api/v1/projects/default/releases/{release}/sourcemaps", server.http_base()))
        .bearer_auth(key)
        .multipart(form)
        .send()
        .await
        .unwrap();
    (response.status().as_u16(), response.json().await.unwrap_or(Value::Null))
}

fn map_part(file_name: &str, bytes: Vec<u8>) -> reqwest::multipart::Part {
    reqwest::multipart::Part::bytes(bytes).file_name(file_name.to_owned()).mime_str("application/json").unwrap()
}

async fn issues(server: &TestServer) -> Vec<Value> {
    server.api_ok("/api/v1/projects/default/issues?sort=count").await["issues"].as_array().unwrap().clone()
}

async fn latest_event(server: &TestServer, issue_id: &Value) -> Value {
    server.api_ok(&format!("/api/v1/projects/default/issues/{issue_id}")).await["latest_event"].clone()
}

/// The app's frames (those in the bundle or its sources), innermost first: (function, file, line, in_app).
fn frames(event: &Value) -> Vec<(Value, String, Value, bool)> {
    let mut frames: Vec<(Value, String, Value, bool)> = event["exceptions"][0]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|frame| {
            frame["filename"].as_str().is_some_and(|file| !file.starts_with("node:") && file != "<anonymous>")
        })
        .map(|frame| {
            let file = frame["filename"].as_str().unwrap();
            let file = file.rsplit_once("/dist/").map_or(file, |(_, bundle)| bundle).to_owned();
            (frame["function"].clone(), file, frame["lineno"].clone(), frame["in_app"].as_bool().unwrap())
        })
        .collect();
    frames.reverse();
    frames
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn minified_errors_are_symbolicated_with_uploaded_source_maps() {
    let server = TestServer::start().await;
    let first_build = node_stack("1.0.0", "main.1a2b3c4d.js");
    let second_build = node_stack("1.0.1", "main.9f8e7d6c.js");

    // Before any upload: the event stays as sent, minified names and all.
    send_exception(&server, "nodejs", "1.0.0", &first_build).await;
    let before = issues(&server).await;
    assert_eq!(before.len(), 1);
    let unmapped_issue = before[0]["id"].clone();
    let unmapped = latest_event(&server, &unmapped_issue).await;
    assert_eq!(unmapped["symbolicated"], false);
    assert!(unmapped.get("source_context").is_none());
    let unmapped_frames = frames(&unmapped);
    assert_eq!(unmapped_frames[0].0, "n", "{unmapped_frames:?}");
    assert_eq!(unmapped_frames[0].1, "main.1a2b3c4d.js");

    // Uploads need a key with scope `all` and real source maps.
    let form = || {
        reqwest::multipart::Form::new()
            .part("file", map_part("main.1a2b3c4d.js.map", map_bytes("1.0.0", "main.1a2b3c4d.js")))
    };
    assert_eq!(upload(&server, &server.read_key, "1.0.0", form()).await.0, 403);
    assert_eq!(upload(&server, &server.ingest_key, "1.0.0", form()).await.0, 403);
    let minified_code = std::fs::read(fixtures().join("1.0.0/dist/main.1a2b3c4d.js")).unwrap();
    let bad = reqwest::multipart::Form::new().part("file", map_part("main.1a2b3c4d.js.map", minified_code));
    let (status, body) = upload(&server, &server.admin_key, "1.0.0", bad).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("main.1a2b3c4d.js.map"), "{body}");

    // Release 1.0.0's map under the URL the browser loads it from (a `name` field), 1.0.1's
    // under its file name; frames from a local path still find them by base name.
    let named = reqwest::multipart::Form::new()
        .text("name", "https://cdn.example.com/static/js/main.1a2b3c4d.js.map")
        .part("file", map_part("main.1a2b3c4d.js.map", map_bytes("1.0.0", "main.1a2b3c4d.js")));
    let (status, body) = upload(&server, &server.admin_key, "1.0.0", named).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(body["sourcemaps"][0]["name"], "https://cdn.example.com/static/js/main.1a2b3c4d.js.map");
    assert_eq!(body["sourcemaps"][0]["size_bytes"], map_bytes("1.0.0", "main.1a2b3c4d.js").len());
    let (status, body) = upload(
        &server,
        &server.admin_key,
        "1.0.1",
        reqwest::multipart::Form::new()
            .part("file", map_part("main.9f8e7d6c.js.map", map_bytes("1.0.1", "main.9f8e7d6c.js"))),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let listed = server.api_ok("/api/v1/projects/default/releases/1.0.0/sourcemaps").await;
    assert_eq!(listed["sourcemaps"].as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed["sourcemaps"][0]["file"], "main.1a2b3c4d.js");

    // The same crash again (the upload cleared the cached "no map"), then the next release's
    // build, then that build under a release without maps.
    send_exception(&server, "nodejs", "1.0.0", &first_build).await;
    send_exception(&server, "webjs", "1.0.1", &second_build).await;
    send_exception(&server, "webjs", "1.0.1-unmapped", &second_build).await;

    let all = issues(&server).await;
    assert_eq!(all.len(), 3, "unmapped 1.0.0, symbolicated 1.0.0 + 1.0.1, unmapped 1.0.1: {all:#?}");
    let symbolicated_issue = &all[0];
    assert_eq!(symbolicated_issue["event_count"], 2, "both builds group together once symbolicated: {all:#?}");
    assert!(symbolicated_issue["culprit"].as_str().unwrap().contains("formatPrice"), "{symbolicated_issue}");
    assert!(all.iter().all(|issue| issue["id"] == unmapped_issue
        || issue["id"] == symbolicated_issue["id"]
        || issue["event_count"] == 1));

    let event = latest_event(&server, &symbolicated_issue["id"]).await;
    assert_eq!(event["context"]["release"], "1.0.1");
    assert_eq!(event["symbolicated"], true);
    let expected = [
        (Value::from("formatAmount"), "./node_modules/price-format/index.js".to_owned(), Value::from(3), false),
        (Value::from("formatPrice"), "src/app.js".to_owned(), Value::from(10), true),
        (Value::Null, "src/app.js".to_owned(), Value::from(14), true),
        (Value::from("renderCart"), "src/app.js".to_owned(), Value::from(14), true),
        (Value::from("checkout"), "src/app.js".to_owned(), Value::from(18), true),
        (Value::from("Object.<anonymous>"), "src/app.js".to_owned(), Value::from(23), true),
    ];
    assert_eq!(frames(&event), expected);
    let crash_frame = event["exceptions"][0]["frames"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|frame| frame["function"] == "formatAmount")
        .unwrap();
    assert_eq!(crash_frame["context_line"], "const units = price.amount / 100;");
    let contexts = event["source_context"].as_array().unwrap();
    assert_eq!(contexts.len(), 6);
    let crash_context =
        contexts.iter().find(|context| context["line"].as_str().unwrap().contains("price.amount")).unwrap();
    assert_eq!(crash_context["pre_lines"][1], "function formatAmount(price) {");
    assert!(event["raw_stacktrace"].as_str().unwrap().contains("main.9f8e7d6c.js:1:24"), "the minified trace is kept");

    // The first build, symbolicated, has the same original frames (its lines differ: 1.0.1
    // added a function above them).
    let events = server.api_ok(&format!("/api/v1/projects/default/issues/{}/events", symbolicated_issue["id"])).await;
    let first_build_event =
        events["events"].as_array().unwrap().iter().find(|event| event["context"]["release"] == "1.0.0").unwrap();
    let names =
        |event: &Value| frames(event).into_iter().map(|(function, file, _, _)| (function, file)).collect::<Vec<_>>();
    assert_eq!(names(first_build_event), names(&event));

    // Without maps the two builds do not group: minified names differ from build to build.
    let unmapped_second =
        all.iter().find(|issue| issue["id"] != unmapped_issue && issue["id"] != symbolicated_issue["id"]).unwrap();
    let unmapped_second_event = latest_event(&server, &unmapped_second["id"]).await;
    assert_eq!(unmapped_second_event["symbolicated"], false);
    assert_eq!(frames(&unmapped_second_event)[1].0, "c", "1.0.1 mangled formatPrice as c (1.0.0: t)");

    // Deleting a map: later events of that release stay minified.
    let response = server
        .http
        .delete(format!(
            "{}/api/v1/projects/default/releases/1.0.1/sourcemaps/main.9f8e7d6c.js.map",
            server.http_base()
        ))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    send_exception(&server, "webjs", "1.0.1", &second_build).await;
    let after_delete = issues(&server).await;
    let count = |id: &Value| after_delete.iter().find(|issue| &issue["id"] == id).unwrap()["event_count"].clone();
    assert_eq!(count(&symbolicated_issue["id"]), 2);
    assert_eq!(count(&unmapped_second["id"]), 2, "grouped with the other minified 1.0.1 event");
    server.stop().await;
}
