//! Store tests against a real SQLite file in a temporary directory.
//!
//! Expected values are computed from the data each test writes (or spelled out from the
//! `Store` trait's documented contract), never copied from what the implementation returns.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;

use opentelemetry_proto::tonic::common::v1::any_value::Value as OtlpValue;
use opentelemetry_proto::tonic::common::v1::{AnyValue, ArrayValue, KeyValue, KeyValueList};
use serde_json::{Value, json};
use sightline_model::metric::{Exemplar, NumberValue, temporality};
use sightline_model::span::{kind, status_code};
use sightline_model::{
    Attributes, Batch, LogRecord, Metric, MetricKind, MetricPoint, PointValue, Resource, ResourceGroup, Scope,
    ScopeGroup, Span, SpanEvent, SpanId, SpanLink, TraceId, batch_len,
};
use tempfile::TempDir;

use super::SqliteStore;
use crate::auth::{ApiKeySecret, KeyScope};
use crate::store::{
    LogQuery, MetricDescription, OutcomeCount, Outcomes, Page, ServiceStats, SignalBatch, Store, StoreError, StoredLog,
    StoredMetricPoint, StoredSpan, TraceQuery, TraceSummary, TraceSummaryDelta, WriteBatch,
};

/// A realistic epoch (November 2023) so times look like real ns timestamps.
const BASE: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

// ---------------------------------------------------------------------------------------------
// Helpers: model values built directly in Rust.
// ---------------------------------------------------------------------------------------------

fn open_store() -> (TempDir, SqliteStore) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&directory.path().join("t.db")).expect("store opens");
    (directory, store)
}

fn new_project(store: &SqliteStore, name: &str) -> i64 {
    store.create_project(name).expect("project created").id
}

/// Distinct, non-zero trace ids whose byte order is unrelated to `n` (so ordering by id is
/// exercised for real).
fn trace_id(n: u32) -> TraceId {
    let mixed = (u128::from(n) + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15_f39c_c060_5ced_c835) | 1;
    TraceId(mixed.to_be_bytes())
}

fn span_id(n: u64) -> SpanId {
    SpanId(((n + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1).to_be_bytes())
}

/// Attributes from a JSON object already in the typed encoding (plain strings/ints/bools).
fn attributes(object: Value) -> Attributes {
    match object {
        Value::Object(map) => Attributes(map),
        other => panic!("attributes must be a JSON object, got {other}"),
    }
}

fn key_value(key: &str, value: Option<OtlpValue>) -> KeyValue {
    KeyValue { key: key.to_owned(), value: value.map(|value| AnyValue { value: Some(value) }), ..KeyValue::default() }
}

/// One attribute of every OTLP `AnyValue` type, through the model's own OTLP conversion.
fn attributes_of_every_type() -> Attributes {
    let any = |value| AnyValue { value: Some(value) };
    Attributes::from_otlp(&[
        key_value("http.route", Some(OtlpValue::StringValue("/checkout/{id}".into()))),
        key_value("quote\"and\\slash", Some(OtlpValue::StringValue("ünïcödé \"quoted\"".into()))),
        key_value("cache.hit", Some(OtlpValue::BoolValue(false))),
        key_value("int.max", Some(OtlpValue::IntValue(i64::MAX))),
        key_value("int.min", Some(OtlpValue::IntValue(i64::MIN))),
        key_value("double.tenth", Some(OtlpValue::DoubleValue(0.1))),
        key_value("double.third", Some(OtlpValue::DoubleValue(1.0 / 3.0))),
        key_value("double.tiny", Some(OtlpValue::DoubleValue(-2.5e-300))),
        key_value("double.whole", Some(OtlpValue::DoubleValue(2.0))),
        key_value("double.nan", Some(OtlpValue::DoubleValue(f64::NAN))),
        key_value("bytes", Some(OtlpValue::BytesValue(vec![0, 1, 127, 128, 254, 255]))),
        key_value(
            "array",
            Some(OtlpValue::ArrayValue(ArrayValue {
                values: vec![
                    any(OtlpValue::StringValue("a".into())),
                    any(OtlpValue::IntValue(7)),
                    any(OtlpValue::DoubleValue(7.5)),
                    any(OtlpValue::BoolValue(true)),
                ],
            })),
        ),
        key_value(
            "kvlist",
            Some(OtlpValue::KvlistValue(KeyValueList {
                values: vec![
                    key_value("nested.int", Some(OtlpValue::IntValue(-3))),
                    key_value("nested.bytes", Some(OtlpValue::BytesValue(vec![9, 8, 7]))),
                ],
            })),
        ),
        key_value("empty", None),
    ])
}

fn resource(service: &str) -> Resource {
    Resource { attributes: attributes(json!({ "service.name": service })), ..Resource::default() }
}

fn resource_with(service: &str, extra: Value) -> Resource {
    let mut resource = resource(service);
    resource.attributes.0.extend(attributes(extra).0);
    resource
}

fn scope(name: &str) -> Scope {
    Scope { name: name.to_owned(), version: "1.2.3".to_owned(), ..Scope::default() }
}

fn group<T>(resource: Resource, items: Vec<T>) -> ResourceGroup<T> {
    ResourceGroup { resource, scopes: vec![ScopeGroup { scope: scope("io.opentelemetry.test"), items }] }
}

/// A plain span: INTERNAL, status UNSET, no attributes.
fn span(trace: TraceId, id: u64, parent: Option<u64>, name: &str, start: u64, end: u64) -> Span {
    Span {
        trace_id: trace,
        span_id: span_id(id),
        parent_span_id: parent.map(span_id),
        trace_state: String::new(),
        flags: 1,
        name: name.to_owned(),
        kind: kind::INTERNAL,
        start_time_unix_nano: start,
        end_time_unix_nano: end,
        attributes: Attributes::default(),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status_code: status_code::UNSET,
        status_message: String::new(),
    }
}

fn with_attributes(mut span: Span, object: Value) -> Span {
    span.attributes = attributes(object);
    span
}

fn failed(mut span: Span) -> Span {
    span.status_code = status_code::ERROR;
    span.status_message = "boom".to_owned();
    span
}

/// A span with every field set to a non-default value.
fn rich_span(trace: TraceId, id: u64, parent: Option<u64>, start: u64) -> Span {
    Span {
        trace_state: "vendor=abc,other=1".to_owned(),
        flags: 0x301,
        kind: kind::SERVER,
        attributes: attributes_of_every_type(),
        dropped_attributes_count: 3,
        events: vec![
            SpanEvent {
                time_unix_nano: start + 5,
                name: "exception".to_owned(),
                attributes: attributes(json!({ "exception.type": "IOError", "exception.escaped": true })),
                dropped_attributes_count: 1,
            },
            SpanEvent {
                time_unix_nano: start + 6,
                name: "retry".to_owned(),
                attributes: Attributes::default(),
                dropped_attributes_count: 0,
            },
        ],
        dropped_events_count: 2,
        links: vec![SpanLink {
            trace_id: trace_id(9_999),
            span_id: span_id(9_999),
            trace_state: "k=v".to_owned(),
            attributes: attributes(json!({ "link.reason": "follows-from", "link.n": 4 })),
            dropped_attributes_count: 4,
            flags: 0x101,
        }],
        dropped_links_count: 5,
        status_code: status_code::ERROR,
        status_message: "upstream timed out".to_owned(),
        ..span(trace, id, parent, &format!("rich-{id}"), start, start + 40 * MS)
    }
}

/// Per-trace summary deltas the way the pipeline derives them: min start, max end, counts,
/// distinct services in order of appearance, root when present.
fn summarize(batch: &Batch<Span>) -> Vec<TraceSummaryDelta> {
    let mut deltas: Vec<TraceSummaryDelta> = Vec::new();
    for resource_group in batch {
        let service = resource_group.resource.service_name().to_owned();
        for span in resource_group.scopes.iter().flat_map(|scope_group| scope_group.items.iter()) {
            let position = match deltas.iter().position(|delta| delta.trace_id == span.trace_id) {
                Some(position) => position,
                None => {
                    deltas.push(TraceSummaryDelta {
                        trace_id: span.trace_id,
                        start_time_unix_nano: span.start_time_unix_nano,
                        end_time_unix_nano: span.end_time_unix_nano,
                        span_count: 0,
                        error_count: 0,
                        services: Vec::new(),
                        root: None,
                    });
                    deltas.len() - 1
                }
            };
            let delta = &mut deltas[position];
            delta.start_time_unix_nano = delta.start_time_unix_nano.min(span.start_time_unix_nano);
            delta.end_time_unix_nano = delta.end_time_unix_nano.max(span.end_time_unix_nano);
            delta.span_count += 1;
            delta.error_count += u64::from(span.is_error());
            if !delta.services.contains(&service) {
                delta.services.push(service.clone());
            }
            if span.parent_span_id.is_none() {
                delta.root = Some((service.clone(), span.name.clone(), span.duration_nanos()));
            }
        }
    }
    deltas
}

fn accepted<T: sightline_model::Countable>(batch: &Batch<T>) -> Outcomes {
    Outcomes { accepted: batch_len(batch) as u64, ..Outcomes::default() }
}

fn traces(project_id: i64, batch: Batch<Span>) -> WriteBatch {
    WriteBatch {
        project_id,
        trace_summaries: summarize(&batch),
        endpoint_rollups: Vec::new(),
        query_rollups: Vec::new(),
        job_rollups: Vec::new(),
        call_halves: Vec::new(),
        paired_calls: Default::default(),
        outcomes: accepted(&batch),
        signal: SignalBatch::Traces(batch),
        errors: Vec::new(),
        derived_events: Vec::new(),
        sessions: Default::default(),
        serialized: Default::default(),
        otlp_forward: None,
    }
}

fn logs(project_id: i64, batch: Batch<LogRecord>) -> WriteBatch {
    WriteBatch {
        project_id,
        trace_summaries: Vec::new(),
        endpoint_rollups: Vec::new(),
        query_rollups: Vec::new(),
        job_rollups: Vec::new(),
        call_halves: Vec::new(),
        paired_calls: Default::default(),
        outcomes: accepted(&batch),
        signal: SignalBatch::Logs(batch),
        errors: Vec::new(),
        derived_events: Vec::new(),
        sessions: Default::default(),
        serialized: Default::default(),
        otlp_forward: None,
    }
}

fn metrics(project_id: i64, batch: Batch<Metric>) -> WriteBatch {
    WriteBatch {
        project_id,
        trace_summaries: Vec::new(),
        endpoint_rollups: Vec::new(),
        query_rollups: Vec::new(),
        job_rollups: Vec::new(),
        call_halves: Vec::new(),
        paired_calls: Default::default(),
        outcomes: accepted(&batch),
        signal: SignalBatch::Metrics(batch),
        errors: Vec::new(),
        derived_events: Vec::new(),
        sessions: Default::default(),
        serialized: Default::default(),
        otlp_forward: None,
    }
}

fn log(time: u64, observed: u64, severity_number: i32, body: Value) -> LogRecord {
    LogRecord {
        time_unix_nano: time,
        observed_time_unix_nano: observed,
        severity_number,
        severity_text: format!("SEV{severity_number}"),
        body,
        attributes: Attributes::default(),
        dropped_attributes_count: 0,
        flags: 0,
        trace_id: None,
        span_id: None,
        event_name: String::new(),
    }
}

fn number_point(time: u64, value: NumberValue) -> MetricPoint {
    MetricPoint {
        attributes: Attributes::default(),
        start_time_unix_nano: BASE,
        time_unix_nano: time,
        flags: 0,
        value: PointValue::Number { value },
        exemplars: Vec::new(),
    }
}

fn metric(name: &str, unit: &str, kind: MetricKind, points: Vec<MetricPoint>) -> Metric {
    Metric {
        name: name.to_owned(),
        description: format!("{name} described"),
        unit: unit.to_owned(),
        metadata: Attributes::default(),
        kind,
        points,
    }
}

fn trace_ids(summaries: &[TraceSummary]) -> Vec<TraceId> {
    summaries.iter().map(|summary| summary.trace_id).collect()
}

fn query(limit: usize) -> TraceQuery {
    TraceQuery { limit, ..TraceQuery::default() }
}

fn summary_of(store: &SqliteStore, project_id: i64, trace: TraceId) -> TraceSummary {
    let page = store.search_traces(project_id, &query(1000)).expect("search");
    page.items.into_iter().find(|summary| summary.trace_id == trace).expect("trace has a summary")
}

// ---------------------------------------------------------------------------------------------
// 1. Projects and keys
// ---------------------------------------------------------------------------------------------

#[test]
fn create_project_derives_slug_and_rejects_duplicates() {
    let (_directory, store) = open_store();
    let project = store.create_project("  My Shop: Checkout API  ").expect("created");
    assert_eq!(project.slug, "my-shop-checkout-api");
    assert_eq!(project.name, "My Shop: Checkout API", "name is kept, trimmed");
    assert_eq!(project.retention_days, 30, "documented default");
    assert_eq!(project.trace_sample_rate, 1.0, "documented default");
    assert!(project.created_at_unix_ms > 1_600_000_000_000, "creation time is ms since epoch");

    // Different spelling, same slug.
    assert!(matches!(store.create_project("my shop checkout api!"), Err(StoreError::Conflict(_))));
    // No letter or digit: no slug at all.
    assert!(matches!(store.create_project(" !!! "), Err(StoreError::Conflict(_))));

    let other = store.create_project("Other").expect("created");
    assert_ne!(other.id, project.id);
    assert_eq!(store.list_projects().expect("list"), vec![project, other], "oldest first, nothing from failed creates");
}

#[test]
fn find_project_by_slug_or_id() {
    let (_directory, store) = open_store();
    let first = store.create_project("Alpha").expect("created");
    let second = store.create_project("Beta Team").expect("created");
    assert_eq!(store.find_project("alpha").expect("find"), Some(first.clone()));
    assert_eq!(store.find_project("beta-team").expect("find"), Some(second.clone()));
    assert_eq!(store.find_project(&first.id.to_string()).expect("find"), Some(first.clone()));
    assert_eq!(store.find_project(&second.id.to_string()).expect("find"), Some(second.clone()));
    assert_eq!(store.find_project("gamma").expect("find"), None);
    assert_eq!(store.find_project(&(second.id + 100).to_string()).expect("find"), None);
    assert_eq!(store.find_project("Beta Team").expect("find"), None, "display names are not slugs");
    // A project whose slug is another project's id: the slug wins, the other stays reachable by slug.
    let numeric = store.create_project(&first.id.to_string()).expect("created");
    assert_eq!(store.find_project(&first.id.to_string()).expect("find"), Some(numeric));
    assert_eq!(store.find_project("alpha").expect("find").map(|project| project.id), Some(first.id));
}

#[test]
fn update_project_settings_clamps_and_persists() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Settings");
    let updated = store.update_project_settings(project_id, 7, 0.25).expect("updated");
    assert_eq!((updated.retention_days, updated.trace_sample_rate), (7, 0.25));
    assert_eq!(store.find_project("settings").expect("find"), Some(updated));
    let clamped = store.update_project_settings(project_id, 0, 1.5).expect("updated");
    assert_eq!((clamped.retention_days, clamped.trace_sample_rate), (1, 1.0), "days ≥ 1, rate within 0..=1");
    assert!(matches!(store.update_project_settings(project_id + 50, 7, 0.5), Err(StoreError::NotFound(_))));
}

#[test]
fn api_keys_are_found_by_secret_with_scope_and_project() {
    let (_directory, store) = open_store();
    let first_project = new_project(&store, "One");
    let second_project = new_project(&store, "Two");
    let mut created = Vec::new();
    for (project_id, scope, name) in [
        (first_project, KeyScope::Ingest, "browser"),
        (first_project, KeyScope::Read, "grafana"),
        (second_project, KeyScope::All, "admin"),
    ] {
        let (secret, record) = store.create_api_key(project_id, scope, name).expect("key created");
        assert_eq!((record.project_id, record.scope, record.name.as_str()), (project_id, scope, name));
        assert!(secret.expose().starts_with(&record.prefix), "prefix identifies the key");
        assert!(secret.expose().len() > record.prefix.len(), "the prefix is not the whole key");
        created.push((secret, record));
    }
    for (secret, record) in &created {
        // A key received from a client is a fresh value with the same text.
        let received = ApiKeySecret::new(secret.expose());
        assert_eq!(store.find_api_key(&received).expect("lookup").as_ref(), Some(record));
    }
    let (first_secret, _) = &created[0];
    let mut tampered = first_secret.expose().to_owned();
    let last = tampered.pop().expect("non-empty key");
    tampered.push(if last == 'a' { 'b' } else { 'a' });
    assert_eq!(store.find_api_key(&ApiKeySecret::new(tampered)).expect("lookup"), None);
    assert_eq!(store.find_api_key(&ApiKeySecret::new("sl_all_unknown")).expect("lookup"), None);
    assert_eq!(
        store.find_api_key(&ApiKeySecret::new(first_secret.prefix())).expect("lookup"),
        None,
        "a prefix is no key"
    );
}

// ---------------------------------------------------------------------------------------------
// 2. Trace storage and lookup
// ---------------------------------------------------------------------------------------------

#[test]
fn get_trace_returns_every_span_field_with_resource_and_scope() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let first_trace = trace_id(1);
    let second_trace = trace_id(2);
    let frontend = Resource {
        attributes: attributes(json!({ "service.name": "frontend", "service.version": "2.0", "host.cpu": 8 })),
        dropped_attributes_count: 2,
        schema_url: "https://opentelemetry.io/schemas/1.26.0".to_owned(),
        entity_refs: json!([{ "type": "service", "id_keys": ["service.name"] }]),
    };
    let backend = resource("backend");
    let http_scope = Scope {
        name: "opentelemetry-http".to_owned(),
        version: "0.9".to_owned(),
        attributes: attributes(json!({ "scope.kind": "auto" })),
        dropped_attributes_count: 1,
        schema_url: "https://example.com/scope".to_owned(),
    };
    let database_scope = scope("sqlx");

    // Commit 1 holds two batches; the traces interleave inside each batch so one trace's rowid
    // range covers the other's spans.
    let first_root = rich_span(first_trace, 10, None, BASE);
    let second_root = span(second_trace, 20, None, "GET /other", BASE + MS, BASE + 9 * MS);
    let first_child = rich_span(first_trace, 11, Some(10), BASE + 2 * MS);
    let batch_one: Batch<Span> = vec![ResourceGroup {
        resource: frontend.clone(),
        scopes: vec![ScopeGroup {
            scope: http_scope.clone(),
            items: vec![first_root.clone(), second_root.clone(), first_child.clone()],
        }],
    }];
    let first_query = span(first_trace, 12, Some(11), "SELECT orders", BASE + 3 * MS, BASE + 4 * MS);
    let second_child = span(second_trace, 21, Some(20), "cache get", BASE + 2 * MS, BASE + 3 * MS);
    let batch_two: Batch<Span> = vec![ResourceGroup {
        resource: backend.clone(),
        scopes: vec![
            ScopeGroup { scope: database_scope.clone(), items: vec![first_query.clone()] },
            ScopeGroup { scope: http_scope.clone(), items: vec![second_child.clone()] },
        ],
    }];
    store.commit(&[traces(project_id, batch_one), traces(project_id, batch_two)]).expect("commit 1");

    // Commit 2: a late span of the first trace, from the frontend resource again.
    let first_late = rich_span(first_trace, 13, Some(10), BASE + 30 * MS);
    let batch_three: Batch<Span> = vec![ResourceGroup {
        resource: frontend.clone(),
        scopes: vec![ScopeGroup { scope: http_scope.clone(), items: vec![first_late.clone()] }],
    }];
    store.commit(&[traces(project_id, batch_three)]).expect("commit 2");

    let stored = |span: &Span, resource: &Resource, scope: &Scope| StoredSpan {
        span: span.clone(),
        resource: resource.clone(),
        scope: scope.clone(),
    };
    let mut expected_first = vec![
        stored(&first_root, &frontend, &http_scope),
        stored(&first_child, &frontend, &http_scope),
        stored(&first_query, &backend, &database_scope),
        stored(&first_late, &frontend, &http_scope),
    ];
    expected_first.sort_by_key(|stored| stored.span.start_time_unix_nano);
    let actual_first = store.get_trace(project_id, &first_trace).expect("get").expect("trace exists");
    assert_eq!(
        actual_first.len(),
        expected_first.len(),
        "every span of every batch and commit, nothing of the other trace"
    );
    for (actual, expected) in actual_first.iter().zip(&expected_first) {
        // Field by field first, so a failure names the field.
        let (actual_span, expected_span) = (&actual.span, &expected.span);
        assert_eq!(actual_span.trace_id, expected_span.trace_id);
        assert_eq!(actual_span.span_id, expected_span.span_id);
        assert_eq!(actual_span.parent_span_id, expected_span.parent_span_id);
        assert_eq!(actual_span.trace_state, expected_span.trace_state);
        assert_eq!(actual_span.flags, expected_span.flags);
        assert_eq!(actual_span.name, expected_span.name);
        assert_eq!(actual_span.kind, expected_span.kind);
        assert_eq!(actual_span.start_time_unix_nano, expected_span.start_time_unix_nano);
        assert_eq!(actual_span.end_time_unix_nano, expected_span.end_time_unix_nano);
        assert_eq!(
            (actual_span.status_code, &actual_span.status_message),
            (expected_span.status_code, &expected_span.status_message)
        );
        assert_eq!(actual_span.attributes, expected_span.attributes, "attributes of span {}", expected_span.name);
        // Debug text, because the NaN double never equals itself.
        assert_eq!(
            format!("{:?}", actual_span.attributes.to_otlp()),
            format!("{:?}", expected_span.attributes.to_otlp()),
            "OTLP value types survive"
        );
        assert_eq!(actual_span.dropped_attributes_count, expected_span.dropped_attributes_count);
        assert_eq!(actual_span.events, expected_span.events);
        assert_eq!(actual_span.dropped_events_count, expected_span.dropped_events_count);
        assert_eq!(actual_span.links, expected_span.links);
        assert_eq!(actual_span.dropped_links_count, expected_span.dropped_links_count);
        assert_eq!(actual.resource, expected.resource);
        assert_eq!(actual.scope, expected.scope);
    }
    assert_eq!(actual_first, expected_first);

    let mut expected_second =
        vec![stored(&second_root, &frontend, &http_scope), stored(&second_child, &backend, &http_scope)];
    expected_second.sort_by_key(|stored| stored.span.start_time_unix_nano);
    assert_eq!(store.get_trace(project_id, &second_trace).expect("get"), Some(expected_second));
    assert_eq!(store.get_trace(project_id, &trace_id(3)).expect("get"), None, "unknown trace");
}

#[test]
fn traces_are_isolated_by_project() {
    let (_directory, store) = open_store();
    let shop = new_project(&store, "Shop");
    let bank = new_project(&store, "Bank");
    let shared_trace = trace_id(7);
    let shop_only = trace_id(8);
    let shop_spans = vec![
        span(shared_trace, 1, None, "shop root", BASE, BASE + MS),
        span(shop_only, 2, None, "shop only", BASE, BASE + MS),
    ];
    // The same trace id in another project (ids are client-chosen; they must not leak).
    let bank_spans = vec![span(shared_trace, 3, None, "bank root", BASE, BASE + MS)];
    store
        .commit(&[
            traces(shop, vec![group(resource("shop-api"), shop_spans)]),
            traces(bank, vec![group(resource("bank-api"), bank_spans)]),
        ])
        .expect("commit");

    let shop_view = store.get_trace(shop, &shared_trace).expect("get").expect("shop sees its trace");
    assert_eq!(shop_view.iter().map(|stored| stored.span.name.as_str()).collect::<Vec<_>>(), ["shop root"]);
    assert_eq!(shop_view[0].resource.service_name(), "shop-api");
    let bank_view = store.get_trace(bank, &shared_trace).expect("get").expect("bank sees its trace");
    assert_eq!(bank_view.iter().map(|stored| stored.span.name.as_str()).collect::<Vec<_>>(), ["bank root"]);
    assert_eq!(store.get_trace(bank, &shop_only).expect("get"), None);

    assert_eq!(trace_ids(&store.search_traces(bank, &query(100)).expect("search").items), vec![shared_trace]);
    let bank_summary = summary_of(&store, bank, shared_trace);
    assert_eq!((bank_summary.span_count, bank_summary.services.clone()), (1, vec!["bank-api".to_owned()]));
    let by_attribute = TraceQuery { attributes: vec![("service.name".into(), "shop-api".into())], ..query(100) };
    assert!(
        store.search_traces(bank, &by_attribute).expect("search").items.is_empty(),
        "resource filter stays in project"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Trace summaries and search
// ---------------------------------------------------------------------------------------------

#[test]
fn trace_summary_merges_batches_and_commits() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let trace = trace_id(1);
    // Commit 1: children only (the root arrives later, as with a slow frontend exporter).
    let backend_spans = vec![
        failed(span(trace, 2, Some(1), "charge", BASE + 10 * MS, BASE + 50 * MS)),
        span(trace, 3, Some(2), "audit", BASE + 20 * MS, BASE + 30 * MS),
    ];
    let database_spans = vec![span(trace, 4, Some(2), "INSERT", BASE + 12 * MS, BASE + 14 * MS)];
    store
        .commit(&[traces(
            project_id,
            vec![group(resource("backend"), backend_spans), group(resource("db"), database_spans)],
        )])
        .expect("commit 1");

    let partial = summary_of(&store, project_id, trace);
    assert_eq!((partial.root_service_name.clone(), partial.root_span_name.clone()), (None, None), "no root yet");
    assert_eq!((partial.span_count, partial.error_count, partial.has_error), (3, 1, true));
    assert_eq!((partial.start_time_unix_nano, partial.end_time_unix_nano), (BASE + 10 * MS, BASE + 50 * MS));
    assert_eq!(partial.services, ["backend", "db"]);

    // Commit 2, two batches: the root (frontend), another failing backend span; then one more
    // frontend-only batch.
    let frontend_root = vec![span(trace, 1, None, "POST /checkout", BASE, BASE + 80 * MS)];
    let backend_retry = vec![failed(span(trace, 5, Some(1), "charge retry", BASE + 60 * MS, BASE + 95 * MS))];
    let frontend_late = vec![span(trace, 6, Some(1), "render", BASE + 81 * MS, BASE + 90 * MS)];
    store
        .commit(&[
            traces(
                project_id,
                vec![group(resource("frontend"), frontend_root), group(resource("backend"), backend_retry)],
            ),
            traces(project_id, vec![group(resource("frontend"), frontend_late)]),
        ])
        .expect("commit 2");

    let merged = summary_of(&store, project_id, trace);
    assert_eq!(merged.span_count, 6);
    assert_eq!((merged.error_count, merged.has_error), (2, true));
    assert_eq!(merged.root_service_name.as_deref(), Some("frontend"));
    assert_eq!(merged.root_span_name.as_deref(), Some("POST /checkout"));
    assert_eq!((merged.start_time_unix_nano, merged.end_time_unix_nano), (BASE, BASE + 95 * MS));
    assert_eq!(merged.duration_nanos, 95 * MS);
    assert_eq!(merged.services, ["backend", "db", "frontend"], "each service once, in order of first appearance");
    let stored_spans = store.get_trace(project_id, &trace).expect("get").expect("trace");
    assert_eq!(stored_spans.len() as u64, merged.span_count, "summary counts what get_trace returns");
}

/// The search fixture: five traces with known properties, newest last.
struct SearchFixture {
    home: TraceId,
    checkout: TraceId,
    pay: TraceId,
    job: TraceId,
    orphan: TraceId,
}

fn commit_search_fixture(store: &SqliteStore, project_id: i64) -> SearchFixture {
    let fixture = SearchFixture {
        home: trace_id(1),
        checkout: trace_id(2),
        pay: trace_id(3),
        job: trace_id(4),
        orphan: trace_id(5),
    };
    let prod_frontend = resource_with("frontend", json!({ "deployment.environment.name": "prod" }));
    let prod_backend = resource_with("backend", json!({ "deployment.environment.name": "prod" }));
    let staging_backend = resource_with("backend", json!({ "deployment.environment.name": "staging" }));
    let t = |offset_ms: u64| BASE + offset_ms * MS;
    // home: 1_000 → 1_100 ms, frontend + backend, status 200.
    let home = (
        vec![with_attributes(
            span(fixture.home, 10, None, "GET /home", t(1_000), t(1_100)),
            json!({ "http.route": "/home", "http.response.status_code": 200 }),
        )],
        vec![span(fixture.home, 11, Some(10), "load", t(1_010), t(1_050))],
    );
    // checkout: 2_000 → 7_000 ms, an error on a backend span starting at 6_000 ms.
    let checkout = (
        vec![with_attributes(
            span(fixture.checkout, 20, None, "GET /checkout", t(2_000), t(7_000)),
            json!({ "http.route": "/checkout", "http.response.status_code": 500, "sampled": true }),
        )],
        vec![failed(with_attributes(
            span(fixture.checkout, 21, Some(20), "query", t(6_000), t(6_900)),
            json!({ "db.system": "sqlite", "retry": 1.5 }),
        ))],
    );
    store
        .commit(&[
            traces(project_id, vec![group(prod_frontend.clone(), home.0), group(prod_backend.clone(), home.1)]),
            traces(project_id, vec![group(prod_frontend, checkout.0), group(prod_backend, checkout.1)]),
        ])
        .expect("commit");
    // pay: 3_000 → 3_050 ms, backend only, staging.
    let pay = vec![with_attributes(
        span(fixture.pay, 30, None, "POST /pay", t(3_000), t(3_050)),
        json!({ "http.response.status_code": 200 }),
    )];
    // job: 4_000 → 14_000 ms, worker.
    let job = vec![span(fixture.job, 40, None, "job", t(4_000), t(14_000))];
    // orphan: a child whose root never arrived, 5_000 → 5_001 ms.
    let orphan = vec![span(fixture.orphan, 51, Some(50), "orphan", t(5_000), t(5_001))];
    store
        .commit(&[
            traces(project_id, vec![group(staging_backend, pay)]),
            traces(project_id, vec![group(resource("worker"), job), group(resource("frontend"), orphan)]),
        ])
        .expect("commit");
    fixture
}

#[test]
fn search_traces_filters() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let SearchFixture { home, checkout, pay, job, orphan } = commit_search_fixture(&store, project_id);
    let search = |query: TraceQuery| -> HashSet<TraceId> {
        let page = store.search_traces(project_id, &query).expect("search");
        let found: Vec<TraceId> = trace_ids(&page.items);
        let distinct: HashSet<TraceId> = found.iter().copied().collect();
        assert_eq!(distinct.len(), found.len(), "no trace twice in {found:?}");
        distinct
    };
    let set = |ids: &[TraceId]| ids.iter().copied().collect::<HashSet<_>>();
    let attribute =
        |key: &str, value: &str| TraceQuery { attributes: vec![(key.to_owned(), value.to_owned())], ..query(100) };

    let all = store.search_traces(project_id, &query(100)).expect("search");
    assert_eq!(trace_ids(&all.items), vec![orphan, job, pay, checkout, home], "newest first");
    assert_eq!(all.next_cursor, None);

    assert_eq!(
        search(TraceQuery { service: Some("backend".into()), ..query(100) }),
        set(&[home, checkout, pay]),
        "any span's service"
    );
    assert_eq!(search(TraceQuery { service: Some("frontend".into()), ..query(100) }), set(&[home, checkout, orphan]));
    assert_eq!(
        search(TraceQuery { service: Some("back".into()), ..query(100) }),
        set(&[]),
        "service names match whole"
    );
    assert_eq!(search(TraceQuery { service: Some("%".into()), ..query(100) }), set(&[]), "LIKE wildcards are literal");
    assert_eq!(search(TraceQuery { operation: Some("GET /checkout".into()), ..query(100) }), set(&[checkout]));
    assert_eq!(
        search(TraceQuery { operation: Some("orphan".into()), ..query(100) }),
        set(&[]),
        "operation is the root span name"
    );
    assert_eq!(search(TraceQuery { errors_only: true, ..query(100) }), set(&[checkout]));
    assert_eq!(
        search(TraceQuery { min_duration_nanos: Some(5_000 * MS), ..query(100) }),
        set(&[checkout, job]),
        "≥ is inclusive"
    );
    assert_eq!(search(TraceQuery { min_duration_nanos: Some(5_000 * MS + 1), ..query(100) }), set(&[job]));
    let from_to =
        TraceQuery { from_unix_nano: Some(BASE + 2_000 * MS), to_unix_nano: Some(BASE + 4_000 * MS), ..query(100) };
    assert_eq!(search(from_to), set(&[checkout, pay, job]), "inclusive bounds on the trace start");
    assert_eq!(search(TraceQuery { from_unix_nano: Some(BASE + 4_500 * MS), ..query(100) }), set(&[orphan]));

    assert_eq!(search(attribute("http.route", "/home")), set(&[home]), "span attribute, string");
    assert_eq!(
        search(attribute("http.response.status_code", "200")),
        set(&[home, pay]),
        "span attribute stored as int"
    );
    assert_eq!(search(attribute("http.response.status_code", "500")), set(&[checkout]));
    assert_eq!(search(attribute("retry", "1.5")), set(&[checkout]), "span attribute stored as double");
    assert_eq!(search(attribute("sampled", "true")), set(&[checkout]), "span attribute stored as bool");
    assert_eq!(search(attribute("db.system", "sqlite")), set(&[checkout]), "attribute on a non-root span");
    assert_eq!(search(attribute("deployment.environment.name", "staging")), set(&[pay]), "resource attribute");
    assert_eq!(search(attribute("deployment.environment.name", "prod")), set(&[home, checkout]));
    assert_eq!(search(attribute("service.name", "worker")), set(&[job]));
    assert_eq!(search(attribute("http.route", "/nowhere")), set(&[]));
    assert_eq!(search(attribute("we\"ird", "x")), set(&[]), "unaddressable keys match nothing");
    let both = TraceQuery {
        attributes: vec![("http.route".into(), "/checkout".into()), ("db.system".into(), "sqlite".into())],
        ..query(100)
    };
    assert_eq!(search(both), set(&[checkout]), "all attributes must match, on different spans");
    let conflicting = TraceQuery {
        attributes: vec![("http.route".into(), "/home".into()), ("db.system".into(), "sqlite".into())],
        ..query(100)
    };
    assert_eq!(search(conflicting), set(&[]));
    // The time window applies to the trace start; a matching span may start later.
    let late_span_attribute = TraceQuery { to_unix_nano: Some(BASE + 2_500 * MS), ..attribute("db.system", "sqlite") };
    assert_eq!(search(late_span_attribute), set(&[checkout]), "span starting after `to` in a trace starting before it");
    let combined = TraceQuery {
        service: Some("backend".into()),
        errors_only: false,
        min_duration_nanos: Some(60 * MS),
        ..attribute("deployment.environment.name", "prod")
    };
    assert_eq!(search(combined), set(&[home, checkout]));
}

#[test]
fn search_traces_pages_through_every_trace_once() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let trace_total = 25u32;
    // Starts repeat in threes so pages split runs of equal start times.
    let spans: Vec<Span> = (0..trace_total)
        .map(|n| {
            let start = BASE + u64::from(n / 3) * MS;
            span(trace_id(n), u64::from(n), None, "tick", start, start + u64::from(n) * MS)
        })
        .collect();
    let (front, back) = spans.split_at(11);
    store.commit(&[traces(project_id, vec![group(resource("a"), front.to_vec())])]).expect("commit");
    store.commit(&[traces(project_id, vec![group(resource("b"), back.to_vec())])]).expect("commit");

    for service in [None, Some("b")] {
        let expected: HashSet<TraceId> = spans
            .iter()
            .enumerate()
            .filter(|(index, _)| service.is_none() || *index >= 11)
            .map(|(_, span)| span.trace_id)
            .collect();
        for limit in [1, 4, 5, expected.len(), expected.len() + 1] {
            let mut seen: Vec<TraceSummary> = Vec::new();
            let mut cursor = None;
            for _page in 0..=expected.len() {
                let request =
                    TraceQuery { service: service.map(str::to_owned), cursor: cursor.clone(), ..query(limit) };
                let Page { items, next_cursor } = store.search_traces(project_id, &request).expect("search");
                assert!(items.len() <= limit);
                assert!(next_cursor.is_none() || items.len() == limit, "only full pages have a next page");
                seen.extend(items);
                cursor = next_cursor;
                if cursor.is_none() {
                    break;
                }
            }
            assert!(cursor.is_none(), "pagination ends");
            let distinct: HashSet<TraceId> = seen.iter().map(|summary| summary.trace_id).collect();
            assert_eq!(distinct.len(), seen.len(), "no duplicates with limit {limit}");
            assert_eq!(distinct, expected, "every trace with limit {limit}, service {service:?}");
            assert!(
                seen.windows(2).all(|pair| pair[0].start_time_unix_nano >= pair[1].start_time_unix_nano),
                "newest first across pages"
            );
        }
    }
    let bad_cursor = TraceQuery { cursor: Some("not-a-cursor".into()), ..query(10) };
    assert!(matches!(store.search_traces(project_id, &bad_cursor), Err(StoreError::Conflict(_))));
}

// ---------------------------------------------------------------------------------------------
// 4. Logs
// ---------------------------------------------------------------------------------------------

/// Commits six log records of two services in one commit; returns them as they should read back.
fn commit_log_fixture(store: &SqliteStore, project_id: i64) -> Vec<StoredLog> {
    let api = resource("api");
    let worker = resource("worker");
    let trace = trace_id(42);
    let mut traced = log(BASE + 10 * MS, BASE + 11 * MS, 17, json!("Connection TIMEOUT to db"));
    traced.trace_id = Some(trace);
    traced.span_id = Some(span_id(4));
    traced.flags = 1;
    traced.attributes = attributes_of_every_type();
    traced.dropped_attributes_count = 2;
    traced.event_name = "db.error".to_owned();
    // No event time: ordered and filtered by the observed time.
    let untimed = log(0, BASE + 25 * MS, 9, json!({ "kvlist": { "msg": "structured body", "n": 3 } }));
    let quoted = log(BASE + 20 * MS, BASE + 20 * MS, 13, json!(r#"user "bob" not found in C:\users"#));
    let fatal = log(BASE + 30 * MS, BASE + 31 * MS, 21, json!("out of memory"));
    let debug = log(BASE + 5 * MS, BASE + 5 * MS, 5, json!("cache timeout tuned"));
    let mut other_trace = log(BASE + 15 * MS, BASE + 15 * MS, 9, json!("done"));
    other_trace.trace_id = Some(trace_id(43));
    store
        .commit(&[
            logs(project_id, vec![group(api.clone(), vec![traced.clone(), untimed.clone(), quoted.clone()])]),
            logs(project_id, vec![group(worker.clone(), vec![fatal.clone(), debug.clone(), other_trace.clone()])]),
        ])
        .expect("commit");
    let stored = |record: &LogRecord, resource: &Resource| StoredLog {
        record: record.clone(),
        resource: resource.clone(),
        scope: scope("io.opentelemetry.test"),
    };
    vec![
        stored(&traced, &api),
        stored(&untimed, &api),
        stored(&quoted, &api),
        stored(&fatal, &worker),
        stored(&debug, &worker),
        stored(&other_trace, &worker),
    ]
}

fn log_query(limit: usize) -> LogQuery {
    LogQuery { limit, ..LogQuery::default() }
}

#[test]
fn logs_round_trip_newest_first_with_observed_time_fallback() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let mut written = commit_log_fixture(&store, project_id);
    let page = store.search_logs(project_id, &log_query(100)).expect("search");
    assert_eq!(page.next_cursor, None);
    written.sort_by_key(|stored| std::cmp::Reverse(stored.record.effective_time_unix_nano()));
    assert_eq!(page.items, written, "every field, resource and scope; ordered by time, else observed time");
    let untimed =
        page.items.iter().find(|stored| stored.record.time_unix_nano == 0).expect("untimed record kept as sent");
    assert_eq!(untimed.record.observed_time_unix_nano, BASE + 25 * MS);
    let other = new_project(&store, "Other");
    assert!(store.search_logs(other, &log_query(100)).expect("search").items.is_empty(), "project isolation");
}

#[test]
fn search_logs_filters() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let written = commit_log_fixture(&store, project_id);
    let search = |query: LogQuery| -> Vec<String> {
        let mut bodies: Vec<String> = store
            .search_logs(project_id, &query)
            .expect("search")
            .items
            .into_iter()
            .map(|stored| stored.record.body.to_string())
            .collect();
        bodies.sort();
        bodies
    };
    let expect = |predicate: &dyn Fn(&LogRecord, &Resource) -> bool| -> Vec<String> {
        let mut bodies: Vec<String> = written
            .iter()
            .filter(|stored| predicate(&stored.record, &stored.resource))
            .map(|stored| stored.record.body.to_string())
            .collect();
        bodies.sort();
        bodies
    };

    let severe = search(LogQuery { severity_min: Some(17), ..log_query(100) });
    assert_eq!(severe, expect(&|record, _| record.severity_number >= 17));
    assert_eq!(severe.len(), 2);
    let trace = trace_id(42);
    let traced = search(LogQuery { trace_id: Some(trace), ..log_query(100) });
    assert_eq!(traced, expect(&|record, _| record.trace_id == Some(trace)));
    assert_eq!(traced.len(), 1);
    let worker = search(LogQuery { service: Some("worker".into()), ..log_query(100) });
    assert_eq!(worker, expect(&|_, resource| resource.service_name() == "worker"));
    assert_eq!(worker.len(), 3);
    let timeouts = search(LogQuery { text: Some("timeout".into()), ..log_query(100) });
    assert_eq!(
        timeouts,
        [json!("Connection TIMEOUT to db").to_string(), json!("cache timeout tuned").to_string()],
        "case-insensitive"
    );
    assert_eq!(search(LogQuery { text: Some("TimeOut TO".into()), ..log_query(100) }).len(), 1);
    assert_eq!(
        search(LogQuery { text: Some("structured".into()), ..log_query(100) }).len(),
        1,
        "structured bodies are searchable"
    );
    let quoted_text = r#"user "bob" not found in C:\users"#;
    assert_eq!(
        search(LogQuery { text: Some(r#""bob""#.into()), ..log_query(100) }),
        [json!(quoted_text).to_string()],
        "body text, not its JSON escaping"
    );
    assert_eq!(search(LogQuery { text: Some(r"C:\users".into()), ..log_query(100) }), [json!(quoted_text).to_string()]);
    assert!(search(LogQuery { text: Some("no such words".into()), ..log_query(100) }).is_empty());

    let (from, to) = (BASE + 15 * MS, BASE + 25 * MS);
    let window = search(LogQuery { from_unix_nano: Some(from), to_unix_nano: Some(to), ..log_query(100) });
    assert_eq!(
        window,
        expect(&|record, _| (from..=to).contains(&record.effective_time_unix_nano())),
        "inclusive, by effective time"
    );
    assert_eq!(window.len(), 3, "includes the untimed record at its observed time");
    let combined = search(LogQuery {
        severity_min: Some(9),
        service: Some("api".into()),
        text: Some("o".into()),
        to_unix_nano: Some(BASE + 20 * MS),
        ..log_query(100)
    });
    assert_eq!(
        combined,
        expect(&|record, resource| record.severity_number >= 9
            && resource.service_name() == "api"
            && record.body.to_string().to_lowercase().contains('o')
            && record.effective_time_unix_nano() <= BASE + 20 * MS)
    );
}

#[test]
fn search_logs_pages_through_every_record_once() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let record_total = 23u64;
    // Times repeat in fours; records 0, 4, 8 … have no time of their own.
    let records: Vec<LogRecord> = (0..record_total)
        .map(|n| {
            let time = BASE + (n / 4) * MS;
            if n % 4 == 0 {
                log(0, time, 9, json!(format!("record {n}")))
            } else {
                log(time, time + 7, 9, json!(format!("record {n}")))
            }
        })
        .collect();
    store.commit(&[logs(project_id, vec![group(resource("a"), records[..10].to_vec())])]).expect("commit");
    store.commit(&[logs(project_id, vec![group(resource("a"), records[10..].to_vec())])]).expect("commit");
    for limit in [1, 5, 22, 23, 24] {
        let mut seen: Vec<LogRecord> = Vec::new();
        let mut cursor = None;
        for _page in 0..=record_total {
            let Page { items, next_cursor } = store
                .search_logs(project_id, &LogQuery { cursor: cursor.clone(), ..log_query(limit) })
                .expect("search");
            assert!(items.len() <= limit);
            seen.extend(items.into_iter().map(|stored| stored.record));
            cursor = next_cursor;
            if cursor.is_none() {
                break;
            }
        }
        assert!(cursor.is_none(), "pagination ends");
        let bodies: Vec<String> = seen.iter().map(|record| record.body.to_string()).collect();
        let distinct: HashSet<&String> = bodies.iter().collect();
        assert_eq!(distinct.len(), bodies.len(), "no duplicates with limit {limit}");
        assert_eq!(seen.len() as u64, record_total, "every record with limit {limit}");
        assert!(
            seen.windows(2).all(|pair| pair[0].effective_time_unix_nano() >= pair[1].effective_time_unix_nano()),
            "newest first"
        );
    }
    let bad_cursor = LogQuery { cursor: Some("12:abc".into()), ..log_query(10) };
    assert!(matches!(store.search_logs(project_id, &bad_cursor), Err(StoreError::Conflict(_))));
}

// ---------------------------------------------------------------------------------------------
// 5. Metrics
// ---------------------------------------------------------------------------------------------

fn exemplar(time: u64, value: NumberValue, with_ids: bool) -> Exemplar {
    Exemplar {
        filtered_attributes: attributes(json!({ "user.id": "u-1", "retry": 2 })),
        time_unix_nano: time,
        value,
        span_id: with_ids.then(|| span_id(77)),
        trace_id: with_ids.then(|| trace_id(77)),
    }
}

/// One metric of every type, with attributes, exemplars and awkward doubles.
fn metrics_of_every_type() -> Vec<Metric> {
    let t = |offset_ms: u64| BASE + offset_ms * MS;
    let mut gauge_low = number_point(t(10), NumberValue::Double(0.1));
    gauge_low.attributes = attributes(json!({ "state": "used" }));
    let mut gauge_high = number_point(t(20), NumberValue::Double(1.0 / 3.0));
    gauge_high.attributes = attributes(json!({ "state": "free" }));
    gauge_high.exemplars = vec![exemplar(t(19), NumberValue::Double(0.3), false)];
    let mut sum_point = number_point(t(15), NumberValue::Int(i64::MAX));
    sum_point.exemplars = vec![exemplar(t(14), NumberValue::Int(-5), true)];
    let histogram_point = MetricPoint {
        attributes: attributes(json!({ "http.route": "/pay", "http.response.status_code": 200 })),
        start_time_unix_nano: t(0),
        time_unix_nano: t(30),
        flags: 0,
        value: PointValue::Histogram {
            count: 6,
            sum: Some(1.75),
            min: Some(0.05),
            max: None,
            bucket_counts: vec![1, 3, 2],
            explicit_bounds: vec![0.1, 0.5],
        },
        exemplars: vec![
            exemplar(t(29), NumberValue::Double(0.42), true),
            exemplar(t(28), NumberValue::Double(0.07), false),
        ],
    };
    let exponential_point = MetricPoint {
        attributes: Attributes::default(),
        start_time_unix_nano: t(0),
        time_unix_nano: t(40),
        flags: 0,
        value: PointValue::ExponentialHistogram {
            count: 8,
            sum: Some(12.5),
            min: None,
            max: Some(4.0),
            scale: -3,
            zero_count: 1,
            zero_threshold: 1e-9,
            positive_offset: -2,
            positive_bucket_counts: vec![1, 0, 4],
            negative_offset: 1,
            negative_bucket_counts: vec![2],
        },
        exemplars: vec![exemplar(t(39), NumberValue::Double(3.9), true)],
    };
    let summary_point = MetricPoint {
        attributes: attributes(json!({ "gc": "young" })),
        start_time_unix_nano: t(0),
        time_unix_nano: t(50),
        flags: 0,
        value: PointValue::Summary {
            count: 4,
            sum: 10.0,
            quantile_values: vec![(0.0, 0.5), (0.5, 2.0), (0.99, 4.75), (1.0, 5.0)],
        },
        exemplars: Vec::new(),
    };
    vec![
        metric("system.memory.utilization", "1", MetricKind::Gauge, vec![gauge_low, gauge_high]),
        metric(
            "http.server.requests",
            "{request}",
            MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true },
            vec![sum_point],
        ),
        metric(
            "queue.depth",
            "{item}",
            MetricKind::Sum { aggregation_temporality: temporality::DELTA, is_monotonic: false },
            vec![number_point(t(12), NumberValue::Int(-4))],
        ),
        metric(
            "http.server.request.duration",
            "s",
            MetricKind::Histogram { aggregation_temporality: temporality::DELTA },
            vec![histogram_point],
        ),
        metric(
            "rpc.server.duration",
            "ms",
            MetricKind::ExponentialHistogram { aggregation_temporality: temporality::CUMULATIVE },
            vec![exponential_point],
        ),
        metric("jvm.gc.pause", "ms", MetricKind::Summary, vec![summary_point]),
    ]
}

#[test]
fn metrics_of_every_type_round_trip() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let written = metrics_of_every_type();
    let service = resource_with("payments", json!({ "host.name": "node-1" }));
    let (first_half, second_half) = written.split_at(3);
    store
        .commit(&[
            metrics(project_id, vec![group(service.clone(), first_half.to_vec())]),
            metrics(project_id, vec![group(service.clone(), second_half.to_vec())]),
        ])
        .expect("commit");

    let mut expected_descriptions: Vec<MetricDescription> = written
        .iter()
        .map(|metric| MetricDescription {
            name: metric.name.clone(),
            kind: metric.kind,
            unit: metric.unit.clone(),
            description: metric.description.clone(),
            last_seen_unix_nano: metric.points.iter().map(|point| point.time_unix_nano).max().unwrap_or(0),
        })
        .collect();
    expected_descriptions.sort_by(|left, right| left.name.cmp(&right.name));
    let mut descriptions = store.list_metrics(project_id).expect("list");
    descriptions.sort_by(|left, right| left.name.cmp(&right.name));
    assert_eq!(descriptions, expected_descriptions, "types, temporality, monotonicity, units, descriptions");

    for metric in &written {
        let points = store.metric_points(project_id, &metric.name, 0, u64::MAX, 1000).expect("points");
        let mut expected_points = metric.points.clone();
        expected_points.sort_by_key(|point| point.time_unix_nano);
        let expected: Vec<StoredMetricPoint> = expected_points
            .into_iter()
            .map(|point| StoredMetricPoint {
                kind: metric.kind,
                service_name: "payments".to_owned(),
                resource: service.clone(),
                point,
            })
            .collect();
        assert_eq!(points, expected, "points of {}", metric.name);
    }

    let gauge = &written[0];
    let only_first = store.metric_points(project_id, &gauge.name, BASE, BASE + 10 * MS, 1000).expect("points");
    assert_eq!(
        only_first.iter().map(|stored| stored.point.clone()).collect::<Vec<_>>(),
        vec![gauge.points[0].clone()],
        "inclusive range"
    );
    let limited = store.metric_points(project_id, &gauge.name, 0, u64::MAX, 1).expect("points");
    assert_eq!(limited.len(), 1, "max_points");
    assert_eq!(limited[0].point.time_unix_nano, gauge.points[0].time_unix_nano, "earliest first");
    assert!(store.metric_points(project_id, &gauge.name, BASE + 21 * MS, u64::MAX, 10).expect("points").is_empty());
    assert!(store.metric_points(project_id, "no.such.metric", 0, u64::MAX, 10).expect("points").is_empty());
}

#[test]
fn repeated_metric_streams_accumulate_points_and_stay_isolated() {
    let (_directory, store) = open_store();
    let shop = new_project(&store, "Shop");
    let bank = new_project(&store, "Bank");
    let kind = MetricKind::Sum { aggregation_temporality: temporality::CUMULATIVE, is_monotonic: true };
    let at = |offset_ms: u64, value: i64| number_point(BASE + offset_ms * MS, NumberValue::Int(value));
    let requests = |points| metric("http.server.requests", "{request}", kind, points);
    store
        .commit(&[metrics(shop, vec![group(resource("api"), vec![requests(vec![at(10, 1), at(20, 2)])])])])
        .expect("commit");
    // Second commit of the same stream: the store must reuse it and move last_seen forward.
    store.commit(&[metrics(shop, vec![group(resource("api"), vec![requests(vec![at(30, 3)])])])]).expect("commit");
    // An older point arriving late must not move last_seen backwards.
    store.commit(&[metrics(shop, vec![group(resource("api"), vec![requests(vec![at(5, 0)])])])]).expect("commit");
    store.commit(&[metrics(bank, vec![group(resource("ledger"), vec![requests(vec![at(99, 42)])])])]).expect("commit");

    let shop_metrics = store.list_metrics(shop).expect("list");
    assert_eq!(shop_metrics.len(), 1, "one stream, not one per commit");
    assert_eq!(shop_metrics[0].last_seen_unix_nano, BASE + 30 * MS);
    let values: Vec<PointValue> = store
        .metric_points(shop, "http.server.requests", 0, u64::MAX, 100)
        .expect("points")
        .into_iter()
        .map(|stored| stored.point.value)
        .collect();
    let expected: Vec<PointValue> =
        [0, 1, 2, 3].into_iter().map(|value| PointValue::Number { value: NumberValue::Int(value) }).collect();
    assert_eq!(values, expected, "ordered by time, no points of the other project");
    assert_eq!(store.list_metrics(bank).expect("list")[0].last_seen_unix_nano, BASE + 99 * MS);
}

#[test]
fn service_metric_points_keep_only_that_service() {
    let (_directory, store) = open_store();
    let shop = new_project(&store, "Shop");
    let kind = MetricKind::Gauge;
    let at = |offset_ms: u64, value: i64| number_point(BASE + offset_ms * MS, NumberValue::Int(value));
    let memory = |points| metric("process.memory.usage", "By", kind, points);
    store
        .commit(&[metrics(
            shop,
            vec![
                group(resource("api"), vec![memory(vec![at(10, 1), at(30, 3)])]),
                group(resource("worker"), vec![memory(vec![at(20, 2)])]),
            ],
        )])
        .expect("commit");
    let values = |service: &str, from: u64, max_points: usize| -> Vec<PointValue> {
        store
            .service_metric_points(shop, service, "process.memory.usage", from, u64::MAX, max_points)
            .expect("points")
            .into_iter()
            .map(|stored| stored.point.value)
            .collect()
    };
    let number = |value: i64| PointValue::Number { value: NumberValue::Int(value) };
    assert_eq!(values("api", 0, 100), vec![number(1), number(3)]);
    assert_eq!(values("worker", 0, 100), vec![number(2)]);
    assert_eq!(values("api", BASE + 11 * MS, 100), vec![number(3)], "time range");
    assert_eq!(values("api", 0, 1), vec![number(1)], "max_points, earliest first");
    assert!(values("nobody", 0, 100).is_empty());
}

// ---------------------------------------------------------------------------------------------
// 6. Service counters and outcomes
// ---------------------------------------------------------------------------------------------

#[test]
fn services_and_outcomes_count_committed_items() {
    let (_directory, store) = open_store();
    let shop = new_project(&store, "Shop");
    let bank = new_project(&store, "Bank");
    let t = |offset_ms: u64| BASE + offset_ms * MS;
    let trace = trace_id(1);
    let frontend_spans = vec![
        span(trace, 1, None, "a", t(0), t(50)),
        span(trace, 2, Some(1), "b", t(1), t(70)),
        span(trace, 3, Some(1), "c", t(2), t(3)),
    ];
    let backend_spans = vec![span(trace, 4, Some(2), "d", t(5), t(60)), span(trace, 5, Some(2), "e", t(6), t(7))];
    let frontend_logs =
        vec![log(t(80), t(81), 9, json!("x")), log(0, t(95), 9, json!("y")), log(t(10), t(10), 9, json!("z"))];
    let backend_metrics = vec![
        metric(
            "m1",
            "1",
            MetricKind::Gauge,
            vec![number_point(t(40), NumberValue::Int(1)), number_point(t(45), NumberValue::Int(2))],
        ),
        metric("m2", "1", MetricKind::Gauge, vec![number_point(t(30), NumberValue::Int(3))]),
    ];
    let mut span_batch =
        traces(shop, vec![group(resource("frontend"), frontend_spans), group(resource("backend"), backend_spans)]);
    span_batch.outcomes.sampled_out = 4;
    let mut log_batch = logs(shop, vec![group(resource("frontend"), frontend_logs.clone())]);
    log_batch.outcomes.invalid = 2;
    store.commit(&[span_batch, log_batch]).expect("commit 1");
    let mut second_log_batch = logs(shop, vec![group(resource("frontend"), frontend_logs[..1].to_vec())]);
    second_log_batch.outcomes.invalid = 1;
    let metric_batch = metrics(shop, vec![group(resource("backend"), backend_metrics)]);
    let bank_batch = logs(bank, vec![group(resource("ledger"), vec![log(t(1), t(1), 9, json!("bank"))])]);
    store.commit(&[second_log_batch, metric_batch, bank_batch]).expect("commit 2");

    let service = |service_name: &str, span_count, log_count, metric_point_count, last_seen_unix_nano| ServiceStats {
        service_name: service_name.to_owned(),
        span_count,
        log_count,
        metric_point_count,
        last_seen_unix_nano,
    };
    let mut services = store.list_services(shop).expect("services");
    services.sort_by(|left, right| left.service_name.cmp(&right.service_name));
    assert_eq!(
        services,
        vec![
            // Spans count at their end, logs at their time else observed time, points at their time.
            service("backend", 2, 0, 3, t(60)),
            service("frontend", 3, 4, 0, t(95)),
        ]
    );
    assert_eq!(store.list_services(bank).expect("services"), vec![service("ledger", 0, 1, 0, t(1))]);

    let outcome = |signal: &str, outcome: &str, count| OutcomeCount {
        signal: signal.to_owned(),
        outcome: outcome.to_owned(),
        count,
    };
    let as_map = |counts: Vec<OutcomeCount>| {
        counts.into_iter().map(|count| ((count.signal, count.outcome), count.count)).collect::<BTreeMap<_, _>>()
    };
    let expected = vec![
        outcome("logs", "accepted", 4),
        outcome("logs", "invalid", 3),
        outcome("metrics", "accepted", 3),
        outcome("traces", "accepted", 5),
        outcome("traces", "sampled_out", 4),
    ];
    let actual = as_map(store.outcomes(shop).expect("outcomes"));
    // Zero counters may be present or absent; every non-zero one must be exact.
    let non_zero: BTreeMap<_, _> = actual.into_iter().filter(|(_, count)| *count > 0).collect();
    assert_eq!(non_zero, as_map(expected));
    let bank_outcomes: BTreeMap<_, _> =
        as_map(store.outcomes(bank).expect("outcomes")).into_iter().filter(|(_, count)| *count > 0).collect();
    assert_eq!(bank_outcomes, as_map(vec![outcome("logs", "accepted", 1)]));
}

// ---------------------------------------------------------------------------------------------
// 7. Atomicity, retention and space
// ---------------------------------------------------------------------------------------------

#[test]
fn a_failed_commit_stores_nothing_and_leaves_the_store_usable() {
    let (directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    // Make the second batch fail inside the transaction.
    let side_connection = rusqlite::Connection::open(directory.path().join("t.db")).expect("side connection");
    side_connection
        .execute_batch("CREATE TRIGGER reject_boom BEFORE INSERT ON logs WHEN NEW.body LIKE '%boom%' BEGIN SELECT RAISE(ABORT, 'boom'); END;")
        .expect("trigger");
    let trace = trace_id(1);
    let fresh_resource = resource_with("new-service", json!({ "first.seen": "in a failed commit" }));
    let spans = vec![span(trace, 1, None, "root", BASE, BASE + MS)];
    let result = store.commit(&[
        traces(project_id, vec![group(fresh_resource.clone(), spans.clone())]),
        logs(project_id, vec![group(fresh_resource.clone(), vec![log(BASE, BASE, 9, json!("boom"))])]),
    ]);
    assert!(result.is_err(), "the trigger aborts the commit");
    assert_eq!(store.get_trace(project_id, &trace).expect("get"), None, "all or nothing");
    assert!(store.search_traces(project_id, &query(10)).expect("search").items.is_empty());
    assert!(store.list_services(project_id).expect("services").is_empty());
    assert!(store.outcomes(project_id).expect("outcomes").iter().all(|outcome| outcome.count == 0));

    side_connection.execute_batch("DROP TRIGGER reject_boom;").expect("drop trigger");
    // The resource first met in the rolled-back transaction must be written again, not
    // referenced by a cached id whose row never committed.
    store.commit(&[traces(project_id, vec![group(fresh_resource.clone(), spans)])]).expect("commit after failure");
    let stored = store.get_trace(project_id, &trace).expect("get").expect("trace stored");
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].resource, fresh_resource);
}

/// Commits old and recent telemetry of every signal for one project; returns (old trace,
/// recent trace).
fn commit_aged_data(store: &SqliteStore, project_id: i64, old: u64, recent: u64) -> (TraceId, TraceId) {
    let old_trace = trace_id(project_id as u32 * 100 + 1);
    let recent_trace = trace_id(project_id as u32 * 100 + 2);
    let old_spans: Vec<Span> = (0..7)
        .map(|n| {
            span(
                old_trace,
                1000 * project_id as u64 + n,
                n.checked_sub(1).map(|parent| 1000 * project_id as u64 + parent),
                "old",
                old + n,
                old + n + 10,
            )
        })
        .collect();
    let recent_spans = vec![span(recent_trace, 1000 * project_id as u64 + 500, None, "recent", recent, recent + 10)];
    let old_logs: Vec<LogRecord> =
        (0..5).map(|n| log(old + n, old + n, 9, json!("old"))).chain([log(0, old, 9, json!("old untimed"))]).collect();
    let recent_logs = vec![log(recent, recent, 9, json!("recent")), log(0, recent, 9, json!("recent untimed"))];
    let old_points: Vec<MetricPoint> = (0..4).map(|n| number_point(old + n, NumberValue::Int(n as i64))).collect();
    let recent_points = vec![number_point(recent, NumberValue::Int(99))];
    store
        .commit(&[
            traces(project_id, vec![group(resource("svc"), old_spans)]),
            traces(project_id, vec![group(resource("svc"), recent_spans)]),
            logs(project_id, vec![group(resource("svc"), old_logs), group(resource("svc"), recent_logs)]),
            metrics(project_id, vec![group(resource("svc"), vec![metric("m", "1", MetricKind::Gauge, old_points)])]),
            metrics(project_id, vec![group(resource("svc"), vec![metric("m", "1", MetricKind::Gauge, recent_points)])]),
        ])
        .expect("commit");
    (old_trace, recent_trace)
}

#[test]
fn delete_expired_removes_only_older_rows_of_the_project() {
    let (_directory, store) = open_store();
    let shop = new_project(&store, "Shop");
    let bank = new_project(&store, "Bank");
    let (old, recent) = (BASE, BASE + 86_400_000 * MS);
    let cutoff = recent - 1;
    let (old_trace, recent_trace) = commit_aged_data(&store, shop, old, recent);
    let (bank_old_trace, _) = commit_aged_data(&store, bank, old, recent);

    // The documented caller: loop until a call deletes less than `max_rows`.
    let max_rows = 3;
    let mut calls = 0;
    loop {
        let deleted = store.delete_expired(shop, cutoff, max_rows).expect("delete");
        assert!(deleted <= max_rows, "bounded work per call");
        calls += 1;
        assert!(calls < 100, "retention terminates");
        if deleted < max_rows {
            break;
        }
    }
    assert_eq!(store.delete_expired(shop, cutoff, max_rows).expect("delete"), 0, "nothing older is left");

    assert_eq!(store.get_trace(shop, &old_trace).expect("get"), None);
    let recent_spans = store.get_trace(shop, &recent_trace).expect("get").expect("recent trace intact");
    assert_eq!(recent_spans.iter().map(|stored| stored.span.name.as_str()).collect::<Vec<_>>(), ["recent"]);
    assert_eq!(trace_ids(&store.search_traces(shop, &query(100)).expect("search").items), vec![recent_trace]);
    let remaining_logs: HashSet<String> = store
        .search_logs(shop, &log_query(100))
        .expect("search")
        .items
        .into_iter()
        .map(|stored| stored.record.body.to_string())
        .collect();
    assert_eq!(
        remaining_logs,
        HashSet::from([json!("recent").to_string(), json!("recent untimed").to_string()]),
        "untimed logs age by observed time"
    );
    let points = store.metric_points(shop, "m", 0, u64::MAX, 100).expect("points");
    assert_eq!(
        points.iter().map(|stored| stored.point.value.clone()).collect::<Vec<_>>(),
        vec![PointValue::Number { value: NumberValue::Int(99) }]
    );

    // The other project keeps everything.
    assert_eq!(store.get_trace(bank, &bank_old_trace).expect("get").expect("bank trace").len(), 7);
    assert_eq!(store.search_traces(bank, &query(100)).expect("search").items.len(), 2);
    assert_eq!(store.search_logs(bank, &log_query(100)).expect("search").items.len(), 8);
    assert_eq!(store.metric_points(bank, "m", 0, u64::MAX, 100).expect("points").len(), 5);
    // A cutoff older than everything deletes nothing.
    assert_eq!(store.delete_expired(bank, old, 1000).expect("delete"), 0);
}

#[test]
fn delete_expired_one_row_at_a_time_until_zero_clears_everything_old() {
    let (_directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let (old_trace, recent_trace) = commit_aged_data(&store, project_id, BASE, BASE + 1_000 * MS);
    let mut total = 0;
    loop {
        let deleted = store.delete_expired(project_id, BASE + 500 * MS, 1).expect("delete");
        assert!(deleted <= 1);
        total += deleted;
        if deleted == 0 {
            break;
        }
        assert!(total < 1_000, "retention terminates");
    }
    // 7 spans, 1 trace summary, 6 logs, 4 points at least; the exact split between tables is
    // the implementation's business.
    assert!(total >= 7 + 1 + 6 + 4, "deleted {total} rows");
    assert_eq!(store.get_trace(project_id, &old_trace).expect("get"), None);
    assert!(store.get_trace(project_id, &recent_trace).expect("get").is_some());
    assert_eq!(store.search_logs(project_id, &log_query(100)).expect("search").items.len(), 2);
    assert_eq!(store.metric_points(project_id, "m", 0, u64::MAX, 100).expect("points").len(), 1);
}

fn pragma(path: &Path, name: &str) -> i64 {
    let connection = rusqlite::Connection::open(path).expect("side connection");
    connection.query_row(&format!("PRAGMA {name}"), [], |row| row.get(0)).expect("pragma")
}

#[test]
fn reclaim_space_returns_freed_pages() {
    let (directory, store) = open_store();
    let path = directory.path().join("t.db");
    let project_id = new_project(&store, "Shop");
    let filler = "x".repeat(2_000);
    let records: Vec<LogRecord> =
        (0..2_000).map(|n| log(BASE + n, BASE + n, 9, json!(format!("{n} {filler}")))).collect();
    store.commit(&[logs(project_id, vec![group(resource("svc"), records)])]).expect("commit");
    while store.delete_expired(project_id, BASE + 10_000, 500).expect("delete") > 0 {}
    assert!(store.search_logs(project_id, &log_query(10)).expect("search").items.is_empty());

    let free_before = pragma(&path, "freelist_count");
    assert!(free_before > 100, "deleting ~4 MB of logs frees pages ({free_before})");
    store.reclaim_space().expect("reclaim");
    let free_after = pragma(&path, "freelist_count");
    assert!(free_after < free_before, "incremental vacuum returned pages: {free_before} → {free_after}");
    store.reclaim_space().expect("reclaim again is harmless");
    assert!(store.is_ready());
}

// ---------------------------------------------------------------------------------------------
// 8. Durability
// ---------------------------------------------------------------------------------------------

#[test]
fn data_survives_reopen_and_migrations_are_idempotent() {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("nested").join("t.db");
    let trace = trace_id(1);
    let (project, key, written_logs) = {
        let store = SqliteStore::open(&path).expect("open");
        assert!(store.is_ready());
        let project = store.create_project("Durable").expect("project");
        let (key, record) = store.create_api_key(project.id, KeyScope::All, "ci").expect("key");
        store
            .commit(&[traces(
                project.id,
                vec![group(resource("svc"), vec![span(trace, 1, None, "root", BASE, BASE + MS)])],
            )])
            .expect("commit");
        let written_logs = commit_log_fixture(&store, project.id);
        store.commit(&[metrics(project.id, vec![group(resource("svc"), metrics_of_every_type())])]).expect("commit");
        ((project, record), key, written_logs)
    };
    let schema_version = pragma(&path, "user_version");
    assert!(schema_version > 0, "migrations recorded their version");

    for reopen in 0..2 {
        let store = SqliteStore::open(&path).expect("reopen runs migrations again without error");
        assert_eq!(pragma(&path, "user_version"), schema_version, "reopen {reopen} applies nothing twice");
        assert_eq!(store.list_projects().expect("projects"), vec![project.0.clone()]);
        assert_eq!(store.find_api_key(&ApiKeySecret::new(key.expose())).expect("key"), Some(project.1.clone()));
        let spans = store.get_trace(project.0.id, &trace).expect("get").expect("trace survived");
        assert_eq!(
            spans.iter().map(|stored| stored.span.span_id).collect::<Vec<_>>(),
            // The root, then the late span written after each earlier reopen.
            std::iter::once(span_id(1)).chain((0..reopen).map(|earlier| span_id(10 + earlier))).collect::<Vec<_>>()
        );
        assert_eq!(store.search_logs(project.0.id, &log_query(100)).expect("logs").items.len(), written_logs.len());
        assert_eq!(store.list_metrics(project.0.id).expect("metrics").len(), metrics_of_every_type().len());
        assert_eq!(summary_of(&store, project.0.id, trace).span_count, 1 + reopen);

        // Writing after a reopen (empty id caches, existing resource rows) still works.
        let late = span(trace, 10 + reopen, Some(1), "late", BASE + 2 * MS, BASE + 3 * MS);
        store.commit(&[traces(project.0.id, vec![group(resource("svc"), vec![late])])]).expect("commit after reopen");
        let spans = store.get_trace(project.0.id, &trace).expect("get").expect("trace");
        assert_eq!(spans.len() as u64, 2 + reopen);
        assert!(spans.iter().all(|stored| stored.resource == resource("svc")));
        assert!(matches!(store.create_project("Durable"), Err(StoreError::Conflict(_))), "unique slug survives");
    }
    let connection = rusqlite::Connection::open(&path).expect("side connection");
    let resource_rows: i64 =
        connection.query_row("SELECT count(*) FROM resources", [], |row| row.get(0)).expect("count");
    assert_eq!(resource_rows, 3, "svc, api and worker once each, across reopens");
    let services: HashMap<String, u64> = SqliteStore::open(&path)
        .expect("open")
        .list_services(project.0.id)
        .expect("services")
        .into_iter()
        .map(|stats| (stats.service_name, stats.span_count))
        .collect();
    assert_eq!(services.get("svc"), Some(&3));
}

#[test]
fn a_commit_deferring_its_sync_is_readable_at_once_and_leaves_the_writer_at_full_sync() {
    let (directory, store) = open_store();
    let project_id = new_project(&store, "Shop");
    let records: Vec<LogRecord> = (0..50).map(|n| log(BASE + n, BASE + n, 9, json!(format!("line {n}")))).collect();
    store.commit_deferring_sync(&[logs(project_id, vec![group(resource("svc"), records)])]).expect("commit");
    assert_eq!(store.search_logs(project_id, &log_query(100)).expect("search").items.len(), 50);
    // Every other write through the writer's connection keeps fsyncing at commit (2 = FULL).
    let synchronous: i64 = store
        .with_writer(|writer| Ok(writer.connection().query_row("PRAGMA synchronous", [], |row| row.get(0))?))
        .expect("pragma");
    assert_eq!(synchronous, 2);
    store.sync_commits().expect("the WAL syncs");
    // With the WAL gone (SQLite removes it when the last connection closes) the database
    // file is synced instead of failing.
    std::fs::remove_file(directory.path().join("t.db-wal")).expect("the WAL exists while the store is open");
    store.sync_commits().expect("no WAL: the database file syncs");
}
