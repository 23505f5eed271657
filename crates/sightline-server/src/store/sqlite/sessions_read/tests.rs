//! Sessions through a real SQLite store: summaries built from the pipeline's deltas and the
//! commit's events and errors, the same summary whatever order batches arrive in, retries not
//! counted twice, the merged timeline with its cursor, correlation counters and retention.

use serde_json::{Value, json};
use sightline_grouping::InAppRules;
use sightline_model::span::{kind, status_code};
use sightline_model::{
    Attributes, Batch, EventType, LogRecord, ProductEvent, Resource, ResourceGroup, Scope, ScopeGroup, Span, SpanId,
    TraceId,
};
use tempfile::TempDir;

use crate::pipeline::errors::{DeriveOptions, errors_from_product_events, errors_from_spans};
use crate::pipeline::session::{sessions_from_logs, sessions_from_spans};
use crate::store::sessions::{
    DAY_NANOS, SessionAccumulator, SessionDelta, SessionQuery, SessionSummary, TimelineEntry, TimelineQuery,
};
use crate::store::sqlite::SqliteStore;
use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

const BASE: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
const SESSION: &str = "sess-lx3k2a-8f3kd92a";

fn attributes(value: Value) -> Attributes {
    match value {
        Value::Object(map) => Attributes(map),
        other => panic!("attributes must be an object, got {other}"),
    }
}

fn group<T>(service: &str, items: Vec<T>) -> ResourceGroup<T> {
    let resource = Resource { attributes: attributes(json!({"service.name": service})), ..Resource::default() };
    ResourceGroup { resource, scopes: vec![ScopeGroup { scope: Scope::default(), items }] }
}

fn span(name: &str, span_kind: i32, parent: Option<u8>, start_ms: u64, end_ms: u64, extra: Value) -> Span {
    Span {
        trace_id: TraceId([start_ms as u8 + 1; 16]),
        span_id: SpanId([start_ms as u8 + 2; 8]),
        parent_span_id: parent.map(|byte| SpanId([byte; 8])),
        trace_state: String::new(),
        flags: 0,
        name: name.into(),
        kind: span_kind,
        start_time_unix_nano: BASE + start_ms * MS,
        end_time_unix_nano: BASE + end_ms * MS,
        attributes: attributes(extra),
        dropped_attributes_count: 0,
        events: Vec::new(),
        dropped_events_count: 0,
        links: Vec::new(),
        dropped_links_count: 0,
        status_code: status_code::UNSET,
        status_message: String::new(),
    }
}

fn spans() -> Batch<Span> {
    let mut failing = span(
        "POST /orders",
        kind::SERVER,
        Some(7),
        2_500,
        2_700,
        json!({
            "http.request.header.x-session-id": [SESSION],
            "http.route": "/orders",
            "http.response.status_code": 500,
        }),
    );
    failing.status_code = status_code::ERROR;
    failing.status_message = "payment declined".into();
    vec![
        group(
            "api",
            vec![
                span(
                    "GET /api/cart",
                    kind::SERVER,
                    None,
                    1_500,
                    1_600,
                    json!({
                        "session.id": SESSION,
                        "user.id": "u1",
                        "http.route": "/api/cart",
                        "http.request.method": "GET",
                    }),
                ),
                span("SELECT cart", kind::CLIENT, Some(9), 1_520, 1_540, json!({"session.id": SESSION})),
                span("GET /health", kind::SERVER, None, 1_700, 1_701, json!({})),
            ],
        ),
        group("orders", vec![failing]),
    ]
}

fn logs() -> Batch<LogRecord> {
    let record = LogRecord {
        time_unix_nano: BASE + 2_600 * MS,
        observed_time_unix_nano: BASE + 2_600 * MS,
        severity_number: 13,
        severity_text: "WARN".into(),
        body: json!("card check slow"),
        attributes: attributes(json!({"baggage": format!("session.id={SESSION}")})),
        dropped_attributes_count: 0,
        flags: 0,
        trace_id: Some(TraceId([9; 16])),
        span_id: None,
        event_name: String::new(),
    };
    vec![group("api", vec![record])]
}

fn event(index: u64, event_type: EventType, at_ms: u64, path: &str) -> ProductEvent {
    let mut properties = serde_json::Map::new();
    properties.insert("page.path".into(), json!(path));
    if event_type == EventType::Error {
        properties.insert("error.type".into(), json!("TypeError"));
        properties.insert("error.message".into(), json!("cart is undefined"));
    }
    let mut metadata = serde_json::Map::new();
    metadata.insert("user_agent".into(), json!("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"));
    ProductEvent {
        event_id: format!("evt-{index}"),
        product_id: "shop".into(),
        session_id: SESSION.into(),
        user_id: Some("u1".into()),
        org_id: None,
        event_type,
        event_name: format!("{} {index}", event_type.as_str()),
        timestamp_unix_nano: BASE + at_ms * MS,
        timestamp_defaulted: false,
        sequence: Some(index as i64),
        properties,
        metadata,
    }
}

fn events() -> Vec<ProductEvent> {
    vec![
        event(1, EventType::PageView, 0, "/home"),
        event(2, EventType::UiClick, 1_000, "/home"),
        event(3, EventType::PageView, 2_000, "/cart"),
        event(4, EventType::Error, 3_000, "/cart"),
        event(5, EventType::PageLeave, 4_000, "/cart"),
    ]
}

fn options(rules: &InAppRules) -> DeriveOptions<'_> {
    DeriveOptions { rules, sourcemaps: None }
}

fn write_batch(project_id: i64, signal: SignalBatch) -> WriteBatch {
    let rules = InAppRules::default();
    let (errors, sessions) = match &signal {
        SignalBatch::Traces(spans) => (errors_from_spans(spans, options(&rules)), sessions_from_spans(spans)),
        SignalBatch::Logs(records) => (Vec::new(), sessions_from_logs(records)),
        SignalBatch::Events(events) => (errors_from_product_events(events, options(&rules)), Default::default()),
        SignalBatch::Metrics(_) => (Vec::new(), Default::default()),
    };
    let mut batch = WriteBatch {
        project_id,
        signal,
        trace_summaries: Vec::new(),
        endpoint_rollups: Vec::new(),
        query_rollups: Vec::new(),
        job_rollups: Vec::new(),
        call_halves: Vec::new(),
        paired_calls: Default::default(),
        outcomes: Outcomes::default(),
        errors,
        derived_events: Vec::new(),
        sessions,
        serialized: Default::default(),
        otlp_forward: None,
    };
    // As the pipeline does; the store tests elsewhere leave it empty (the writer's fallback).
    batch.serialize_items();
    batch
}

fn open() -> (TempDir, SqliteStore) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&directory.path().join("sessions.db")).expect("store opens");
    (directory, store)
}

fn summary(store: &SqliteStore, project_id: i64) -> SessionSummary {
    let page = store.list_sessions(project_id, &SessionQuery { limit: 10, ..SessionQuery::default() }).expect("list");
    assert_eq!(page.items.len(), 1, "one session: {:?}", page.items);
    page.items[0].clone()
}

fn timeline(store: &SqliteStore, project_id: i64, limit: usize) -> Vec<TimelineEntry> {
    let mut entries = Vec::new();
    let mut cursor = None;
    loop {
        let detail = store
            .get_session(project_id, SESSION, &TimelineQuery { limit, cursor })
            .expect("get session")
            .expect("session exists");
        entries.extend(detail.timeline);
        match detail.next_cursor {
            Some(next) => cursor = Some(next),
            None => return entries,
        }
    }
}

fn describe(entry: &TimelineEntry) -> String {
    let at = (entry.time_unix_nano() - BASE) / MS;
    match entry {
        TimelineEntry::Event { event_type, .. } => format!("{at} event {event_type}"),
        TimelineEntry::Request { name, .. } => format!("{at} request {name}"),
        TimelineEntry::Log { severity_text, .. } => format!("{at} log {severity_text}"),
        TimelineEntry::Error { title, .. } => format!("{at} error {title}"),
    }
}

#[test]
fn summary_and_timeline_do_not_depend_on_arrival_order() {
    let (_directory, store) = open();
    let in_order = store.create_project("in order").expect("project").id;
    let shuffled = store.create_project("shuffled").expect("project").id;
    let all_events = events();
    store.commit(&[write_batch(in_order, SignalBatch::Events(all_events.clone()))]).expect("commit");
    store.commit(&[write_batch(in_order, SignalBatch::Traces(spans()))]).expect("commit");
    store.commit(&[write_batch(in_order, SignalBatch::Logs(logs()))]).expect("commit");
    // Late events first, the logs and spans in one group commit, the early events last.
    store.commit(&[write_batch(shuffled, SignalBatch::Events(all_events[2..].to_vec()))]).expect("commit");
    store
        .commit(&[
            write_batch(shuffled, SignalBatch::Logs(logs())),
            write_batch(shuffled, SignalBatch::Traces(spans())),
        ])
        .expect("commit");
    store.commit(&[write_batch(shuffled, SignalBatch::Events(all_events[..2].to_vec()))]).expect("commit");
    // Everything in one group commit: the writer merges the batches' deltas before its upserts.
    let one_commit = store.create_project("one commit").expect("project").id;
    store
        .commit(&[
            write_batch(one_commit, SignalBatch::Events(all_events[2..].to_vec())),
            write_batch(one_commit, SignalBatch::Logs(logs())),
            write_batch(one_commit, SignalBatch::Traces(spans())),
            write_batch(one_commit, SignalBatch::Events(all_events[..2].to_vec())),
        ])
        .expect("commit");

    let expected = SessionSummary {
        session_id: SESSION.into(),
        first_seen_unix_nano: BASE,
        last_seen_unix_nano: BASE + 4_000 * MS,
        duration_nanos: 4_000 * MS,
        user_id: Some("u1".into()),
        entry_page: Some("/home".into()),
        exit_page: Some("/cart".into()),
        page_views: 2,
        events: 5,
        // The browser's TypeError and the ERROR server span.
        errors: 2,
        requests: 2,
        logs: 1,
        services: vec!["api".into(), "orders".into()],
        user_agent: Some("Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0".into()),
    };
    assert_eq!(summary(&store, in_order), expected);
    assert_eq!(summary(&store, shuffled), expected);
    assert_eq!(summary(&store, one_commit), expected);

    let expected_timeline = [
        "0 event page.view",
        "1000 event ui.click",
        "1500 request GET /api/cart",
        "2000 event page.view",
        "2500 request POST /orders",
        "2600 log WARN",
        "2700 error payment declined",
        "3000 event error",
        "3000 error TypeError: cart is undefined",
        "4000 event page.leave",
    ];
    for project_id in [in_order, shuffled, one_commit] {
        for page_size in [1, 3, 1000] {
            let described: Vec<String> = timeline(&store, project_id, page_size).iter().map(describe).collect();
            assert_eq!(described, expected_timeline, "project {project_id}, pages of {page_size}");
        }
    }
    let entries = timeline(&store, in_order, 1000);
    let TimelineEntry::Request { http_route, http_status_code, status, service, trace_id, .. } = &entries[4] else {
        panic!("a request: {:?}", entries[4]);
    };
    assert_eq!(
        (http_route.as_deref(), *http_status_code, *status, service.as_str(), *trace_id),
        (Some("/orders"), Some(500), "error", "orders", TraceId([2_500u64 as u8 + 1; 16]))
    );
    let TimelineEntry::Event { page, .. } = &entries[3] else { panic!("an event") };
    assert_eq!(page.as_deref(), Some("/cart"));

    let correlation = store.session_correlation(in_order, None, None).expect("correlation");
    assert_eq!((correlation.server_spans, correlation.with_session), (3, 2));
    let outside = store.session_correlation(in_order, Some(BASE + 2 * DAY_NANOS), None).expect("correlation");
    assert_eq!((outside.server_spans, outside.rate), (0, None));
}

/// (rows in `session_deltas`, rows in `sessions`), read past the store.
fn stored_counts(path: &std::path::Path) -> (i64, i64) {
    let connection = rusqlite::Connection::open(path).expect("database");
    let count = |table: &str| -> i64 {
        connection.query_row(&format!("SELECT count(*) FROM {table}"), [], |row| row.get(0)).expect("count")
    };
    (count("session_deltas"), count("sessions"))
}

#[test]
fn session_changes_wait_as_deltas_survive_a_restart_and_fold_on_read() {
    let commit_all = |store: &SqliteStore, project_id: i64| {
        store.commit(&[write_batch(project_id, SignalBatch::Events(events()))]).expect("commit");
        store.commit(&[write_batch(project_id, SignalBatch::Traces(spans()))]).expect("commit");
        store.commit(&[write_batch(project_id, SignalBatch::Logs(logs()))]).expect("commit");
    };
    // The reference: the same commits, read at once.
    let (_reference_directory, reference) = open();
    let reference_project = reference.create_project("read at once").expect("project").id;
    commit_all(&reference, reference_project);
    let expected_summary = summary(&reference, reference_project);
    let expected_timeline: Vec<String> = {
        let entries = reference
            .get_session(reference_project, SESSION, &TimelineQuery { limit: 1000, cursor: None })
            .expect("get session")
            .expect("session exists")
            .timeline;
        entries.iter().map(describe).collect()
    };
    assert_eq!(expected_timeline.len(), 10, "{expected_timeline:?}");

    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("sessions.db");
    let project_id = {
        let store = SqliteStore::open(&path).expect("store opens");
        let project_id = store.create_project("restarted").expect("project").id;
        commit_all(&store, project_id);
        // One delta per commit (each touched the one session); nothing folded yet.
        assert_eq!(stored_counts(&path), (3, 0));
        project_id
    };
    // The process stopped before anything read the sessions: the deltas are still there.
    let store = SqliteStore::open(&path).expect("store reopens");
    assert_eq!(stored_counts(&path), (3, 0));
    assert_eq!(summary(&store, project_id), expected_summary);
    assert_eq!(stored_counts(&path), (0, 1), "the read folded the deltas");
    let entries = store
        .get_session(project_id, SESSION, &TimelineQuery { limit: 1000, cursor: None })
        .expect("get session")
        .expect("session exists")
        .timeline;
    assert_eq!(entries.iter().map(describe).collect::<Vec<_>>(), expected_timeline);

    // Changes after a fold go on from the folded row.
    store.commit(&[write_batch(project_id, SignalBatch::Logs(logs()))]).expect("commit");
    assert_eq!(stored_counts(&path), (1, 1));
    let again = summary(&store, project_id);
    assert_eq!((again.logs, again.errors), (expected_summary.logs + 1, expected_summary.errors));
}

#[test]
fn a_commit_folds_the_deltas_once_enough_are_pending() {
    let threshold = crate::store::sqlite::write::FOLD_AT_DELTAS as usize;
    let (directory, store) = open();
    let path = directory.path().join("sessions.db");
    let project_id = store.create_project("busy").expect("project").id;
    let record = |session: usize| {
        let mut record = logs()[0].scopes[0].items[0].clone();
        record.attributes = attributes(json!({"session.id": format!("busy-{session}")}));
        record
    };
    // One commit touching as many sessions as the threshold: one delta each.
    store
        .commit(&[write_batch(project_id, SignalBatch::Logs(vec![group("api", (0..threshold).map(record).collect())]))])
        .expect("commit");
    assert_eq!(stored_counts(&path), (threshold as i64, 0));
    // The next commit folds them first, then appends its own.
    store.commit(&[write_batch(project_id, SignalBatch::Logs(vec![group("api", vec![record(0)])]))]).expect("commit");
    assert_eq!(stored_counts(&path), (1, threshold as i64));
    let first = store
        .get_session(project_id, "busy-0", &TimelineQuery { limit: 10, cursor: None })
        .expect("get session")
        .expect("busy-0 is stored");
    assert_eq!(first.summary.logs, 2, "the folded row and the delta after it");
    assert_eq!(first.timeline.len(), 2, "both logs on the timeline: {:?}", first.timeline);
    assert_eq!(stored_counts(&path), (0, threshold as i64));
}

#[test]
fn the_sql_upsert_is_the_rust_merge() {
    let (_directory, store) = open();
    let project_id = store.create_project("shop").expect("project").id;
    let batches = [
        write_batch(project_id, SignalBatch::Traces(spans())),
        write_batch(project_id, SignalBatch::Events(events()[3..].to_vec())),
        write_batch(project_id, SignalBatch::Logs(logs())),
        write_batch(project_id, SignalBatch::Events(events()[..3].to_vec())),
    ];
    let mut merged: Option<SessionDelta> = None;
    for batch in &batches {
        store.commit(std::slice::from_ref(batch)).expect("commit");
        let mut accumulator = SessionAccumulator::from_batch(batch.sessions.clone());
        if let SignalBatch::Events(events) = &batch.signal {
            events.iter().for_each(|event| accumulator.add_event(event));
        }
        for error in &batch.errors {
            let delta = accumulator.session(SESSION, error.timestamp_unix_nano);
            delta.touch(error.timestamp_unix_nano, error.timestamp_unix_nano);
            delta.errors += 1;
        }
        for delta in accumulator.finish().deltas {
            match &mut merged {
                Some(merged) => merged.merge(delta),
                None => merged = Some(delta),
            }
        }
        let merged = merged.as_ref().expect("a delta");
        let stored = summary(&store, project_id);
        let expected = (
            merged.first_seen_unix_nano,
            merged.last_seen_unix_nano,
            merged.entry_page.as_ref().map(|page| page.path.clone()),
            merged.exit_page.as_ref().map(|page| page.path.clone()),
            (merged.page_views, merged.events, merged.errors, merged.requests, merged.logs),
            merged.services.clone(),
            merged.user_id.clone(),
            merged.user_agent.as_ref().map(|(_, agent)| agent.clone()),
        );
        let actual = (
            stored.first_seen_unix_nano,
            stored.last_seen_unix_nano,
            stored.entry_page,
            stored.exit_page,
            (stored.page_views, stored.events, stored.errors, stored.requests, stored.logs),
            stored.services,
            stored.user_id,
            stored.user_agent,
        );
        assert_eq!(actual, expected);
    }
}

#[test]
fn retried_events_count_once_and_filters_select_sessions() {
    let (_directory, store) = open();
    let project_id = store.create_project("shop").expect("project").id;
    store.commit(&[write_batch(project_id, SignalBatch::Events(events()))]).expect("commit");
    store.commit(&[write_batch(project_id, SignalBatch::Events(events()))]).expect("retry");
    let mut quiet = event(9, EventType::PageView, 60_000, "/about");
    quiet.session_id = "sess-quiet".into();
    quiet.user_id = Some("u2".into());
    store.commit(&[write_batch(project_id, SignalBatch::Events(vec![quiet]))]).expect("commit");

    let list = |query: SessionQuery| {
        store
            .list_sessions(project_id, &SessionQuery { limit: 10, ..query })
            .expect("list")
            .items
            .into_iter()
            .map(|session| (session.session_id, session.events, session.errors))
            .collect::<Vec<_>>()
    };
    assert_eq!(list(SessionQuery::default()), [("sess-quiet".into(), 1, 0), (SESSION.into(), 5, 1)]);
    assert_eq!(list(SessionQuery { has_errors: Some(true), ..SessionQuery::default() }), [(SESSION.into(), 5, 1)]);
    assert_eq!(list(SessionQuery { has_errors: Some(false), ..SessionQuery::default() }).len(), 1);
    assert_eq!(list(SessionQuery { user: Some("u2".into()), ..SessionQuery::default() }).len(), 1);
    assert_eq!(list(SessionQuery { from_unix_nano: Some(BASE + 1), ..SessionQuery::default() }).len(), 1);
    let first_page =
        store.list_sessions(project_id, &SessionQuery { limit: 1, ..SessionQuery::default() }).expect("list");
    let second_page = store
        .list_sessions(
            project_id,
            &SessionQuery { limit: 1, cursor: first_page.next_cursor, ..SessionQuery::default() },
        )
        .expect("list");
    assert_eq!(second_page.items[0].session_id, SESSION);
    assert_eq!(second_page.next_cursor, None);
    let error_entries =
        timeline(&store, project_id, 100).iter().filter(|entry| matches!(entry, TimelineEntry::Error { .. })).count();
    assert_eq!(error_entries, 1, "the retried error is in the timeline once");
    assert!(
        store.get_session(project_id, "unknown", &TimelineQuery { limit: 10, cursor: None }).expect("get").is_none()
    );
    assert!(store.get_session(project_id, SESSION, &TimelineQuery { limit: 10, cursor: Some("x".into()) }).is_err());
}

#[test]
fn retention_removes_old_items_then_expired_sessions() {
    let (_directory, store) = open();
    let project_id = store.create_project("shop").expect("project").id;
    store.commit(&[write_batch(project_id, SignalBatch::Traces(spans()))]).expect("commit");
    store.commit(&[write_batch(project_id, SignalBatch::Logs(logs()))]).expect("commit");

    // A cutoff inside the session: its early request goes, the session stays.
    while store.delete_expired(project_id, BASE + 2_000 * MS, 1).expect("delete") > 0 {}
    let remaining: Vec<String> = timeline(&store, project_id, 100).iter().map(describe).collect();
    assert_eq!(remaining, ["2500 request POST /orders", "2600 log WARN", "2700 error payment declined"]);

    while store.delete_expired(project_id, BASE + 2 * DAY_NANOS, 2).expect("delete") > 0 {}
    let sessions = store.list_sessions(project_id, &SessionQuery { limit: 10, ..SessionQuery::default() });
    assert!(sessions.expect("list").items.is_empty());
    assert_eq!(store.session_correlation(project_id, None, None).expect("correlation").server_spans, 0);
    let connection = store.reader().expect("reader");
    let items: i64 = connection.query_row("SELECT count(*) FROM session_items", [], |row| row.get(0)).expect("count");
    assert_eq!(items, 0);
}

/// Timing of a 5,000-entry timeline page (the bar: < 50 ms) among unrelated traffic.
/// Not a pass/fail test: `cargo test --release -p sightline-server timeline_latency -- --ignored
/// --nocapture` prints the numbers.
#[test]
#[ignore = "manual timing run"]
fn timeline_latency_for_5000_entries() {
    let (_directory, store) = open();
    let project_id = store.create_project("shop").expect("project").id;
    let started = std::time::Instant::now();
    // 1,250 requests (every fourth ERROR, so 313 errors), 1,250 logs, 2,187 events = 5,000
    // entries, spread over an hour, mixed into 120,000 spans and 40,000 logs of other traffic.
    let mut span_number = 0u64;
    let mut next_span = |session: Option<&str>, at_ns: u64| {
        span_number += 1;
        let mut span = span("GET /api/items/{id}", kind::SERVER, None, 0, 0, json!({"http.route": "/api/items/{id}"}));
        span.trace_id = TraceId((u128::from(span_number) * 0x9e37_79b9_7f4a_7c15 + 1).to_be_bytes());
        span.span_id = SpanId((span_number * 0x9e37_79b9 + 1).to_be_bytes());
        span.start_time_unix_nano = at_ns;
        span.end_time_unix_nano = at_ns + 20 * MS;
        if let Some(session) = session {
            span.attributes.0.insert("session.id".into(), json!(session));
            if span_number.is_multiple_of(4) {
                span.status_code = status_code::ERROR;
                span.status_message = format!("upstream failed {}", span_number % 7);
            }
        }
        span
    };
    let mut session_requests = 0u64;
    let mut extraction = std::time::Duration::ZERO;
    for chunk in 0..120u64 {
        let mut items = Vec::new();
        for index in 0..1_000u64 {
            let at = BASE + (chunk * 1_000 + index) * 30 * MS;
            items.push(next_span(None, at));
        }
        let without_session = vec![group("api", items.clone())];
        let extraction_started = std::time::Instant::now();
        assert!(sessions_from_spans(&without_session).deltas.is_empty());
        extraction += extraction_started.elapsed();
        for _ in 0..11 {
            if session_requests < 1_250 {
                items.push(next_span(Some(SESSION), BASE + session_requests * 2_880 * MS));
                session_requests += 1;
            }
        }
        store.commit(&[write_batch(project_id, SignalBatch::Traces(vec![group("api", items)]))]).expect("commit");
    }
    for chunk in 0..41u64 {
        let records: Vec<LogRecord> = (0..1_000u64)
            .map(|index| {
                let mut record = logs()[0].scopes[0].items[0].clone();
                let at = BASE + (chunk * 1_000 + index) * 90 * MS;
                record.time_unix_nano = at;
                record.observed_time_unix_nano = at;
                if index % 33 != 0 || chunk * 31 + index / 33 >= 1_250 {
                    record.attributes = Attributes::default();
                }
                record
            })
            .collect();
        store.commit(&[write_batch(project_id, SignalBatch::Logs(vec![group("api", records)]))]).expect("commit");
    }
    let mut events_batch = Vec::new();
    for index in 0..2_187u64 {
        let event_type = [EventType::PageView, EventType::UiClick, EventType::ApiRequest][index as usize % 3];
        let mut product_event = event(10_000 + index, event_type, index * 1_600, "/items");
        product_event.metadata.clear();
        events_batch.push(product_event);
        if events_batch.len() == 1_000 {
            store
                .commit(&[write_batch(project_id, SignalBatch::Events(std::mem::take(&mut events_batch)))])
                .expect("c");
        }
    }
    store.commit(&[write_batch(project_id, SignalBatch::Events(events_batch))]).expect("commit");
    println!(
        "setup took {:?}; session extraction of spans without one: {:?} per span",
        started.elapsed(),
        extraction / 120_000
    );

    let detail = store
        .get_session(project_id, SESSION, &TimelineQuery { limit: 5_000, cursor: None })
        .expect("get")
        .expect("session");
    let summary = &detail.summary;
    println!(
        "session: {} events, {} requests, {} logs, {} errors; first page {} entries, next cursor {:?}",
        summary.events,
        summary.requests,
        summary.logs,
        summary.errors,
        detail.timeline.len(),
        detail.next_cursor
    );
    let mut query_times = Vec::new();
    let mut json_times = Vec::new();
    for _ in 0..30 {
        let started = std::time::Instant::now();
        let detail = store
            .get_session(project_id, SESSION, &TimelineQuery { limit: 5_000, cursor: None })
            .expect("get")
            .expect("session");
        query_times.push(started.elapsed());
        let started = std::time::Instant::now();
        let body = serde_json::to_vec(&detail).expect("json");
        json_times.push(started.elapsed());
        assert!(!body.is_empty());
    }
    query_times.sort();
    json_times.sort();
    println!(
        "get_session(limit 5000): min {:?}, median {:?}, max {:?}; JSON encoding median {:?}",
        query_times[0], query_times[15], query_times[29], json_times[15]
    );
    let connection = store.reader().expect("reader");
    for sql in [
        "EXPLAIN QUERY PLAN SELECT i.kind FROM session_items i LEFT JOIN spans s ON i.kind = 1 AND s.id = i.item_rowid
         WHERE i.session_key = 1 AND (i.timestamp_unix_nano, i.kind, i.item_rowid) > (0, 0, 0)
         ORDER BY i.timestamp_unix_nano, i.kind, i.item_rowid LIMIT 10",
        "EXPLAIN QUERY PLAN SELECT id FROM product_events WHERE project_id = 1 AND session_id = 's'
         AND (timestamp_unix_nano, id) > (0, 0) ORDER BY timestamp_unix_nano, id LIMIT 10",
    ] {
        let mut statement = connection.prepare(sql).expect("plan");
        let plan: Vec<String> = statement
            .query_map([], |row| row.get::<_, String>(3))
            .expect("plan")
            .map(|row| row.expect("row"))
            .collect();
        println!("{plan:?}");
    }
}
