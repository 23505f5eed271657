//! Handler tests: the real API router on a real SQLite store in a temporary directory, data
//! committed straight through the store (the pipeline has its own tests).

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use sightline_model::metric::{NumberValue, temporality};
use sightline_model::span::{kind, status_code};
use sightline_model::{
    Attributes, Batch, LogRecord, Metric, MetricKind, MetricPoint, PointValue, Resource, ResourceGroup, Scope,
    ScopeGroup, Span, SpanId, TraceId,
};
use tower::ServiceExt;

use crate::auth::KeyScope;
use crate::pipeline::trace_summary::summarize;
use crate::pipeline::{Ingestor, start_writer};
use crate::server::AppState;
use crate::store::sqlite::SqliteStore;
use crate::store::{Outcomes, Project, SignalBatch, Store, WriteBatch};

const SECOND: u64 = 1_000_000_000;
/// 2023-11-14T22:13:20Z.
const T0: u64 = 1_700_000_000 * SECOND;
const TRACE_A: TraceId = TraceId([0xaa; 16]);
const TRACE_B: TraceId = TraceId([0xbb; 16]);

struct Fixture {
    router: Router,
    store: Arc<dyn Store>,
    project: Project,
    read_key: String,
    admin_key: String,
    ingest_key: String,
    _directory: tempfile::TempDir,
}

impl Fixture {
    fn new() -> Self {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store: Arc<dyn Store> =
            Arc::new(SqliteStore::open(&directory.path().join("sightline.db")).expect("store opens"));
        let project = store.create_project("Shop").expect("project");
        let (read_key, _) = store.create_api_key(project.id, KeyScope::Read, "read").expect("read key");
        let (ingest_key, _) = store.create_api_key(project.id, KeyScope::Ingest, "ingest").expect("ingest key");
        let (admin_key, _) = store.create_api_key(project.id, KeyScope::All, "admin").expect("admin key");
        let log_tail = crate::live_tail::LogTail::new(4);
        let (queue, _writer) = start_writer(store.clone(), log_tail.clone(), 1_000, 1_000, Duration::from_secs(1));
        let state = AppState {
            ingestor: Arc::new(Ingestor::new(store.clone(), queue)),
            store: store.clone(),
            max_body_bytes: 1 << 20,
            slow_query_threshold: Duration::from_millis(500),
            secure_cookies: false,
            delivery: crate::exporters::delivery::DeliveryManager::new(store.clone(), Duration::from_millis(10)),
            sign_in_limits: Default::default(),
            log_tail,
        };
        Self {
            router: super::routes().with_state(Arc::new(state)),
            store,
            project,
            read_key: read_key.expose().to_owned(),
            admin_key: admin_key.expose().to_owned(),
            ingest_key: ingest_key.expose().to_owned(),
            _directory: directory,
        }
    }

    async fn send(&self, method: Method, uri: &str, key: Option<&str>, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = Request::builder().method(method).uri(uri);
        if let Some(key) = key {
            request = request.header("authorization", format!("Bearer {key}"));
        }
        let body = body.map(|body| Body::from(body.to_string())).unwrap_or_else(Body::empty);
        let response = self.router.clone().oneshot(request.body(body).expect("request")).await.expect("response");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        let json = serde_json::from_slice(&bytes)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
        (status, json)
    }

    async fn get(&self, path: &str) -> (StatusCode, Value) {
        self.send(Method::GET, &format!("/api/v1/projects/shop{path}"), Some(&self.read_key), None).await
    }

    fn commit(&self, signal: SignalBatch, trace_summaries: Vec<crate::store::TraceSummaryDelta>) {
        let batch = WriteBatch {
            project_id: self.project.id,
            signal,
            trace_summaries,
            endpoint_rollups: Vec::new(),
            query_rollups: Vec::new(),
            job_rollups: Vec::new(),
            call_halves: Vec::new(),
            paired_calls: Default::default(),
            outcomes: Outcomes { accepted: 1, sampled_out: 0, invalid: 0 },
            errors: Vec::new(),
            derived_events: Vec::new(),
            sessions: Default::default(),
            serialized: Default::default(),
            otlp_forward: None,
        };
        self.store.commit(&[batch]).expect("commit");
    }
}

fn resource(service: &str) -> Resource {
    let mut resource = Resource::default();
    resource.attributes.0.insert("service.name".into(), service.into());
    resource
}

fn one_group<T>(service: &str, items: Vec<T>) -> ResourceGroup<T> {
    ResourceGroup {
        resource: resource(service),
        scopes: vec![ScopeGroup { scope: Scope { name: "test".into(), ..Scope::default() }, items }],
    }
}

fn span(trace_id: TraceId, id: u8, parent: Option<u8>, start: u64, error: bool) -> Span {
    let mut attributes = Attributes::default();
    attributes.0.insert("http.route".into(), format!("/route/{id}").into());
    Span {
        trace_id,
        span_id: SpanId([id; 8]),
        parent_span_id: parent.map(|parent| SpanId([parent; 8])),
        trace_state: String::new(),
        flags: 1,
        name: format!("op {id}"),
        kind: kind::SERVER,
        start_time_unix_nano: start,
        end_time_unix_nano: start + 100,
        attributes,
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status_code: if error { status_code::ERROR } else { status_code::UNSET },
        status_message: String::new(),
    }
}

fn commit_traces(fixture: &Fixture) {
    let batch: Batch<Span> = vec![
        one_group("web", vec![span(TRACE_A, 1, None, T0, false), span(TRACE_B, 9, None, T0 + 1000, false)]),
        // 3's parent 7 never arrives: an orphan.
        one_group("db", vec![span(TRACE_A, 2, Some(1), T0 + 10, true), span(TRACE_A, 3, Some(7), T0 + 20, false)]),
    ];
    let summaries = summarize(&batch);
    fixture.commit(SignalBatch::Traces(batch), summaries);
}

fn log(time: u64, severity_number: i32, body: &str, trace_id: Option<TraceId>) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: time,
        severity_number,
        severity_text: String::new(),
        body: Value::String(body.into()),
        attributes: Attributes::default(),
        dropped_attributes_count: 0,
        flags: 0,
        trace_id,
        span_id: None,
        event_name: String::new(),
    }
}

fn number(time: u64, value: f64, host: &str) -> MetricPoint {
    let mut attributes = Attributes::default();
    attributes.0.insert("host".into(), host.into());
    MetricPoint {
        attributes,
        start_time_unix_nano: T0 - 3600 * SECOND,
        time_unix_nano: time,
        flags: 0,
        value: PointValue::Number { value: NumberValue::Double(value) },
        exemplars: Vec::new(),
    }
}

fn metric(name: &str, kind: MetricKind, points: Vec<MetricPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: String::new(),
        unit: "1".into(),
        metadata: Attributes::default(),
        kind,
        points,
    }
}

#[tokio::test]
async fn a_trace_comes_back_as_a_tree() {
    let fixture = Fixture::new();
    commit_traces(&fixture);

    let (status, trace) = fixture.get(&format!("/traces/{TRACE_A}")).await;
    assert_eq!(status, StatusCode::OK, "{trace}");
    assert_eq!(trace["span_count"], 3);
    assert_eq!(trace["start_time_unix_nano"], T0);
    assert_eq!(trace["duration_nanos"], 120);
    assert_eq!(trace["services"], json!(["web", "db"]));
    let roots = trace["roots"].as_array().expect("roots");
    assert_eq!(roots.len(), 2);
    assert_eq!(roots[0]["span_id"], "0101010101010101");
    assert_eq!(roots[0]["kind_name"], "SERVER");
    assert_eq!(roots[0]["children"][0]["span_id"], "0202020202020202");
    assert_eq!(roots[0]["children"][0]["status"]["code_name"], "ERROR");
    assert_eq!(roots[0]["children"][0]["service_name"], "db");
    assert_eq!(roots[1]["parent_span_id"], "0707070707070707");
    assert_eq!(roots[1]["scope"]["name"], "test");

    let (status, missing) = fixture.get(&format!("/traces/{}", TraceId([1; 16]))).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(missing["error"]["code"], "not_found");
    let (status, malformed) = fixture.get("/traces/not-a-trace-id").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(malformed["error"]["code"], "invalid_parameter");
}

#[tokio::test]
async fn trace_search_filters_and_pages() {
    let fixture = Fixture::new();
    commit_traces(&fixture);

    let (status, page) = fixture.get("/traces").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let ids: Vec<&str> = page["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .map(|trace| trace["trace_id"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(ids, vec![TRACE_B.to_hex(), TRACE_A.to_hex()]);
    assert_eq!(page["next_cursor"], Value::Null);

    let (_, errors) = fixture.get("/traces?status=error").await;
    assert_eq!(errors["traces"].as_array().map(Vec::len), Some(1));
    assert_eq!(errors["traces"][0]["trace_id"], TRACE_A.to_hex());
    let (_, healthy) = fixture.get("/traces?status=ok").await;
    assert_eq!(healthy["traces"][0]["trace_id"], TRACE_B.to_hex());
    let (_, by_attribute) = fixture.get("/traces?attr.http.route=/route/3").await;
    assert_eq!(by_attribute["traces"][0]["trace_id"], TRACE_A.to_hex());
    let (_, by_service) = fixture.get("/traces?service=db").await;
    assert_eq!(by_service["traces"].as_array().map(Vec::len), Some(1));

    let (_, first) = fixture.get("/traces?limit=1").await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, second) = fixture.get(&format!("/traces?limit=1&cursor={cursor}")).await;
    assert_eq!(second["traces"][0]["trace_id"], TRACE_A.to_hex());

    for bad in [
        "/traces?status=broken",
        "/traces?limit=1001",
        "/traces?servce=db",
        "/traces?from=yesterday",
        "/traces?cursor=zzz",
    ] {
        let (status, body) = fixture.get(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter", "{bad}");
    }
}

#[tokio::test]
async fn keys_are_checked() {
    let fixture = Fixture::new();
    let uri = "/api/v1/projects/shop/services";
    assert_eq!(fixture.send(Method::GET, uri, None, None).await.0, StatusCode::UNAUTHORIZED);
    assert_eq!(fixture.send(Method::GET, uri, Some(&fixture.ingest_key), None).await.0, StatusCode::FORBIDDEN);
    assert_eq!(fixture.send(Method::GET, uri, Some(&fixture.read_key), None).await.0, StatusCode::OK);
    let by_id = format!("/api/v1/projects/{}/services", fixture.project.id);
    assert_eq!(fixture.send(Method::GET, &by_id, Some(&fixture.read_key), None).await.0, StatusCode::OK);
    fixture.store.create_project("Other").expect("second project");
    let (status, body) =
        fixture.send(Method::GET, "/api/v1/projects/other/services", Some(&fixture.read_key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
}

#[tokio::test]
async fn logs_are_searched() {
    let fixture = Fixture::new();
    let batch = vec![one_group(
        "web",
        vec![
            log(T0, 9, "started", None),
            log(T0 + SECOND, 17, "Payment TIMEOUT", Some(TRACE_A)),
            log(T0 + 2 * SECOND, 13, "slow", None),
        ],
    )];
    fixture.commit(SignalBatch::Logs(batch), Vec::new());

    let (status, page) = fixture.get("/logs").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    let logs = page["logs"].as_array().expect("logs");
    assert_eq!(logs.len(), 3);
    assert_eq!(logs[0]["body"], "slow");
    assert_eq!(logs[0]["service_name"], "web");
    assert_eq!(logs[0]["trace_id"], Value::Null);
    assert_eq!(logs[0]["resource"]["attributes"]["service.name"], "web");
    assert_eq!(logs[1]["trace_id"], TRACE_A.to_hex());

    let (_, warnings) = fixture.get("/logs?severity_min=warn").await;
    assert_eq!(warnings["logs"].as_array().map(Vec::len), Some(2));
    let (_, errors) = fixture.get("/logs?severity_min=17").await;
    assert_eq!(errors["logs"].as_array().map(Vec::len), Some(1));
    let (_, text) = fixture.get("/logs?q=timeout").await;
    assert_eq!(text["logs"][0]["body"], "Payment TIMEOUT");
    let (_, by_trace) = fixture.get(&format!("/logs?trace_id={TRACE_A}")).await;
    assert_eq!(by_trace["logs"].as_array().map(Vec::len), Some(1));
    let (_, first) = fixture.get("/logs?limit=2").await;
    let cursor = first["next_cursor"].as_str().expect("a next page").to_owned();
    let (_, second) = fixture.get(&format!("/logs?limit=2&cursor={cursor}")).await;
    assert_eq!(second["logs"][0]["body"], "started");
    assert_eq!(second["next_cursor"], Value::Null);

    for bad in ["/logs?severity_min=loud", "/logs?trace_id=12", "/logs?text=x"] {
        assert_eq!(fixture.get(bad).await.0, StatusCode::BAD_REQUEST, "{bad}");
    }
}

#[tokio::test]
async fn metrics_are_listed_and_charted() {
    let fixture = Fixture::new();
    let counter = MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true };
    let batch = vec![one_group(
        "web",
        vec![
            metric("queue.depth", MetricKind::Gauge, vec![number(T0, 2.0, "a"), number(T0 + 10 * SECOND, 4.0, "b")]),
            metric(
                "http.requests",
                counter,
                vec![
                    number(T0, 100.0, "a"),
                    number(T0 + 30 * SECOND, 160.0, "a"),
                    number(T0 + 60 * SECOND, 190.0, "a"),
                ],
            ),
        ],
    )];
    fixture.commit(SignalBatch::Metrics(batch), Vec::new());

    let (status, list) = fixture.get("/metrics").await;
    assert_eq!(status, StatusCode::OK, "{list}");
    let names: Vec<&str> = list["metrics"]
        .as_array()
        .expect("metrics")
        .iter()
        .map(|metric| metric["name"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(names, vec!["http.requests", "queue.depth"]);
    assert_eq!(list["metrics"][0]["type"], "sum");
    assert_eq!(list["metrics"][0]["is_monotonic"], true);

    let range = format!("from={}&to={}", T0 / SECOND, T0 / SECOND + 119);
    let (status, gauge) = fixture.get(&format!("/metrics/queue.depth/series?{range}&step=60")).await;
    assert_eq!(status, StatusCode::OK, "{gauge}");
    assert_eq!(gauge["metric"]["type"], "gauge");
    assert_eq!(gauge["step_seconds"], 60);
    assert_eq!(gauge["from_unix_nano"], T0);
    assert_eq!(gauge["truncated"], false);
    assert_eq!(gauge["series"], json!([{"group": {}, "points": [{"time_unix_nano": T0, "value": 3.0}]}]));

    let (_, by_host) =
        fixture.get(&format!("/metrics/queue.depth/series?{range}&step=60&group_by=host&stat=max")).await;
    assert_eq!(by_host["series"][1], json!({"group": {"host": "b"}, "points": [{"time_unix_nano": T0, "value": 4.0}]}));

    let (status, rate) = fixture.get(&format!("/metrics/http.requests/series?{range}&step=60")).await;
    assert_eq!(status, StatusCode::OK, "{rate}");
    assert_eq!(
        rate["series"][0]["points"],
        json!([{"time_unix_nano": T0, "value": 2.0}, {"time_unix_nano": T0 + 60 * SECOND, "value": 1.0}])
    );

    let (status, missing) = fixture.get("/metrics/nope/series").await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{missing}");
    let (status, wrong_stat) = fixture.get("/metrics/queue.depth/series?stat=rate").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(wrong_stat["error"]["message"].as_str().unwrap_or("").contains("avg, min, max"));
    let (status, _) = fixture.get(&format!("/metrics/queue.depth/series?from=0&to={}&step=1", T0 / SECOND)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[tokio::test]
async fn project_settings_services_and_outcomes() {
    let fixture = Fixture::new();
    commit_traces(&fixture);

    let (status, project) = fixture.get("").await;
    assert_eq!(status, StatusCode::OK, "{project}");
    assert_eq!(project["slug"], "shop");
    assert_eq!(project["retention_days"], 30);

    let uri = "/api/v1/projects/shop";
    let (status, body) =
        fixture.send(Method::PATCH, uri, Some(&fixture.read_key), Some(json!({"retention_days": 1}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a read key cannot shorten retention: {body}");
    let (status, updated) =
        fixture.send(Method::PATCH, uri, Some(&fixture.admin_key), Some(json!({"retention_days": 7}))).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["retention_days"], 7);
    assert_eq!(updated["trace_sample_rate"], 1.0);
    let (_, updated) =
        fixture.send(Method::PATCH, uri, Some(&fixture.admin_key), Some(json!({"trace_sample_rate": 0.25}))).await;
    assert_eq!((updated["retention_days"].clone(), updated["trace_sample_rate"].clone()), (json!(7), json!(0.25)));
    for bad in [json!({"retention_days": 0}), json!({"trace_sample_rate": 2}), json!({"retention": 1})] {
        let (status, body) = fixture.send(Method::PATCH, uri, Some(&fixture.admin_key), Some(bad.clone())).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{bad}: {body}");
        assert_eq!(body["error"]["code"], "invalid_parameter");
    }

    let (status, services) = fixture.get("/services").await;
    assert_eq!(status, StatusCode::OK, "{services}");
    assert_eq!(services["services"][0]["service_name"], "db");
    assert_eq!(services["services"][0]["span_count"], 2);
    let (status, outcomes) = fixture.get("/outcomes").await;
    assert_eq!(status, StatusCode::OK, "{outcomes}");
    assert_eq!(outcomes["outcomes"][0], json!({"signal": "traces", "outcome": "accepted", "count": 1}));
}

/// A real terser source map (see `crates/sightline/tests/fixtures/sourcemaps/build.sh`).
const SOURCE_MAP: &[u8] =
    include_bytes!("../../../sightline/tests/fixtures/sourcemaps/1.0.0/dist/main.1a2b3c4d.js.map");

/// A `multipart/form-data` body of `(field name, file name, content)` parts; a part without a
/// file name is a text field.
fn multipart_body(parts: &[(&str, Option<&str>, &[u8])]) -> (String, Vec<u8>) {
    let boundary = "sightline-test-boundary-7d2f";
    let mut body = Vec::new();
    for (field, file_name, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file_name {
            Some(file_name) => body.extend_from_slice(
                format!("Content-Disposition: form-data; name=\"{field}\"; filename=\"{file_name}\"\r\nContent-Type: application/json\r\n\r\n").as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{field}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

impl Fixture {
    async fn upload(&self, release: &str, key: &str, parts: &[(&str, Option<&str>, &[u8])]) -> (StatusCode, Value) {
        let (content_type, body) = multipart_body(parts);
        let request = Request::builder()
            .method(Method::POST)
            .uri(format!("/api/v1/projects/shop/releases/{release}/sourcemaps"))
            .header("authorization", format!("Bearer {key}"))
            .header("content-type", content_type)
            .body(Body::from(body))
            .expect("request");
        let response = self.router.clone().oneshot(request).await.expect("response");
        let status = response.status();
        let bytes = response.into_body().collect().await.expect("body").to_bytes();
        (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
    }
}

#[tokio::test]
async fn source_maps_are_uploaded_listed_replaced_and_deleted() {
    let fixture = Fixture::new();
    let map_part = [("file", Some("main.1a2b3c4d.js.map"), SOURCE_MAP)];
    let (status, body) = fixture.upload("1.0.0", &fixture.read_key, &map_part).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "a read key may not upload: {body}");
    let (status, _) = fixture.upload("1.0.0", &fixture.ingest_key, &map_part).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // A `name` field names the next file; otherwise the part's file name does.
    let url = "https://cdn.example.com/static/js/main.1a2b3c4d.js.map";
    let (status, body) = fixture
        .upload(
            "1.0.0",
            &fixture.admin_key,
            &[
                ("name", None, url.as_bytes()),
                ("file", Some("ignored.map"), SOURCE_MAP),
                ("file", Some("vendor.js"), SOURCE_MAP),
            ],
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
    let stored: Vec<(&str, &str, u64)> = body["sourcemaps"]
        .as_array()
        .expect("list")
        .iter()
        .map(|map| {
            (
                map["name"].as_str().expect("name"),
                map["file"].as_str().expect("file"),
                map["size_bytes"].as_u64().expect("size"),
            )
        })
        .collect();
    let size = SOURCE_MAP.len() as u64;
    assert_eq!(stored, [(url, "main.1a2b3c4d.js", size), ("vendor.js", "vendor.js", size)]);

    // Re-uploading a name replaces it.
    let (status, _) = fixture.upload("1.0.0", &fixture.admin_key, &[("file", Some("vendor.js"), SOURCE_MAP)]).await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, listed) = fixture.get("/releases/1.0.0/sourcemaps").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert_eq!(listed["sourcemaps"].as_array().map(Vec::len), Some(2));
    assert_eq!(listed["sourcemaps"][0]["name"], url);
    let (_, other_release) = fixture.get("/releases/2.0.0/sourcemaps").await;
    assert_eq!(other_release["sourcemaps"], json!([]));

    let encoded = "https%3A%2F%2Fcdn.example.com%2Fstatic%2Fjs%2Fmain.1a2b3c4d.js.map";
    let delete_uri = format!("/api/v1/projects/shop/releases/1.0.0/sourcemaps/{encoded}");
    let (status, _) = fixture.send(Method::DELETE, &delete_uri, Some(&fixture.read_key), None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, body) = fixture.send(Method::DELETE, &delete_uri, Some(&fixture.admin_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{body}");
    let (status, _) = fixture.send(Method::DELETE, &delete_uri, Some(&fixture.admin_key), None).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let unencoded = "/api/v1/projects/shop/releases/1.0.0/sourcemaps/vendor.js";
    let (status, _) = fixture.send(Method::DELETE, unencoded, Some(&fixture.admin_key), None).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (_, listed) = fixture.get("/releases/1.0.0/sourcemaps").await;
    assert_eq!(listed["sourcemaps"], json!([]));
}

#[tokio::test]
async fn bad_and_oversized_source_maps_are_refused() {
    let fixture = Fixture::new();
    let admin = fixture.admin_key.clone();
    let minified_js: &[u8] = b"function n(n){return n.price.amount}";
    let (status, body) = fixture
        .upload(
            "1.0.0",
            &admin,
            &[("file", Some("good.js.map"), SOURCE_MAP), ("file", Some("main.js.map"), minified_js)],
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"]["code"], "invalid_sourcemap");
    assert!(
        body["error"]["message"].as_str().expect("message").starts_with("main.js.map is not a valid source map"),
        "{body}"
    );
    let (status, body) = fixture.upload("1.0.0", &admin, &[("file", Some("empty.js.map"), b"{}")]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a map without mappings: {body}");
    let (_, listed) = fixture.get("/releases/1.0.0/sourcemaps").await;
    assert_eq!(listed["sourcemaps"], json!([]), "a bad upload stores nothing");

    let (status, body) = fixture.upload("1.0.0", &admin, &[("file", None, SOURCE_MAP)]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "a file part needs a name: {body}");
    let (status, _) = fixture.upload("1.0.0", &admin, &[]).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an upload without files");
    let (status, body) = fixture
        .send(Method::POST, "/api/v1/projects/shop/releases/1.0.0/sourcemaps", Some(&admin), Some(json!({})))
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "JSON is not multipart: {body}");

    let too_big_file = vec![b' '; crate::pipeline::symbolicate::MAX_SOURCEMAP_BYTES + 1];
    let (status, body) = fixture.upload("1.0.0", &admin, &[("file", Some("huge.js.map"), &too_big_file)]).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"]["message"].as_str().expect("message").contains("huge.js.map"), "{body}");
    let chunk = vec![b' '; 18 << 20];
    let parts: Vec<(&str, Option<&str>, &[u8])> = vec![
        ("file", Some("a.js.map"), &chunk),
        ("file", Some("b.js.map"), &chunk),
        ("file", Some("c.js.map"), &chunk),
    ];
    let (status, body) = fixture.upload("1.0.0", &admin, &parts).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "54 MiB in all: {body}");
}

#[tokio::test]
async fn health_judges_recent_traffic_with_the_projects_thresholds() {
    let fixture = Fixture::new();
    let (status, body) = fixture.get("/health").await;
    assert_eq!((status, body["status"].as_str()), (StatusCode::OK, Some("no_traffic")), "{body}");

    // 30 SERVER requests in the last minute, 300 ms each, 3 of them ERROR (10 %).
    let now = crate::clock::now_unix_nano();
    let spans: Vec<Span> = (0..30u8)
        .map(|index| {
            let mut request = span(TraceId([index + 1; 16]), index + 1, None, now - 20 * SECOND, index < 3);
            request.end_time_unix_nano = request.start_time_unix_nano + 300_000_000;
            request
        })
        .collect();
    let batch: Batch<Span> = vec![one_group("web", spans)];
    let mut write = WriteBatch {
        project_id: fixture.project.id,
        endpoint_rollups: crate::pipeline::rollups::rollups_from_spans(&batch),
        query_rollups: Vec::new(),
        job_rollups: Vec::new(),
        call_halves: Vec::new(),
        paired_calls: Default::default(),
        trace_summaries: summarize(&batch),
        signal: SignalBatch::Traces(batch),
        outcomes: Outcomes { accepted: 30, sampled_out: 0, invalid: 0 },
        errors: Vec::new(),
        derived_events: Vec::new(),
        sessions: Default::default(),
        serialized: Default::default(),
        otlp_forward: None,
    };
    write.serialize_items();
    fixture.store.commit(&[write]).expect("commit");

    let (_, body) = fixture.get("/health").await;
    assert_eq!(body["status"], "failing", "10 % errors is over the default 5 %: {body}");
    let web = &body["services"][0];
    assert_eq!((web["service"].as_str(), web["windows"]["5m"]["requests"].as_u64()), (Some("web"), Some(30)));
    let p95 = web["windows"]["5m"]["p95_ms"].as_f64().expect("p95");
    assert!((p95 - 300.0).abs() <= 3.0, "p95 within 1 %: {p95}");

    // Looser error thresholds and a tight latency one: now the 300 ms p95 decides.
    let uri = "/api/v1/projects/shop";
    let thresholds = json!({"health_thresholds": {"error_percent_degraded": 20, "error_percent_failing": 50, "p95_ms_degraded": 250}});
    let (status, updated) = fixture.send(Method::PATCH, uri, Some(&fixture.admin_key), Some(thresholds)).await;
    assert_eq!(status, StatusCode::OK, "{updated}");
    assert_eq!(updated["health_thresholds"]["p95_ms_failing"], 3000.0, "absent fields keep their defaults");
    let (_, body) = fixture.get("/health").await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert_eq!(body["thresholds"]["p95_ms_degraded"], 250.0);

    let inverted = json!({"health_thresholds": {"p95_ms_degraded": 500, "p95_ms_failing": 100}});
    let (status, error) = fixture.send(Method::PATCH, uri, Some(&fixture.admin_key), Some(inverted)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    let (status, _) =
        fixture.send(Method::PATCH, uri, Some(&fixture.read_key), Some(json!({"health_thresholds": {}}))).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = fixture.get("/health?window=5m").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "unknown parameters are refused");
    let (status, _) = fixture.send(Method::GET, "/api/v1/projects/shop/health", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
}
