//! Error logs whose `exception.stacktrace` is kept once with their error event (migration 22):
//! real runtimes' traces read back from the logs API byte for byte, the rows really leave the
//! text out, and rows that cannot share it (a trace cut to its bound, an event gone) keep or
//! degrade to what they can without failing the page.

use rusqlite::Connection;
use serde_json::{Value, json};
use sightline_grouping::InAppRules;
use sightline_model::{Attributes, LogRecord, Resource, ResourceGroup, Scope, ScopeGroup};
use tempfile::TempDir;

use crate::pipeline::errors::{DeriveOptions, errors_from_logs};
use crate::store::sqlite::SqliteStore;
use crate::store::{LogQuery, Outcomes, STACKTRACE_KEY, SignalBatch, Store, WriteBatch};

const BASE: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;

/// Traces printed by real programs (`sightline-grouping/tests/fixtures`, README there).
const PYTHON_CHAINED: &str =
    include_str!("../../../../../sightline-grouping/tests/fixtures/python/direct_cause.input.txt");
const JAVA_CAUSED_BY: &str =
    include_str!("../../../../../sightline-grouping/tests/fixtures/java/CheckoutFailure.input.txt");
const NODE_CAUSE: &str =
    include_str!("../../../../../sightline-grouping/tests/fixtures/javascript/error_cause.input.txt");

struct Fixture {
    _directory: TempDir,
    path: std::path::PathBuf,
    store: SqliteStore,
    project_id: i64,
}

fn open() -> Fixture {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("stacks.db");
    let store = SqliteStore::open(&path).expect("store opens");
    let project_id = store.create_project("Stacks").expect("project created").id;
    Fixture { _directory: directory, path, store, project_id }
}

/// An error log as an SDK's log bridge sends it: the trace, its type and message, a user.
fn error_log(at_ms: u64, exception_type: &str, message: &str, stacktrace: &str, user: &str) -> LogRecord {
    let attributes = json!({
        "exception.type": exception_type,
        "exception.message": message,
        STACKTRACE_KEY: stacktrace,
        "user.id": user,
        "http.route": "/checkout",
    });
    let Value::Object(attributes) = attributes else { unreachable!("a JSON object") };
    LogRecord {
        time_unix_nano: BASE + at_ms * MS,
        observed_time_unix_nano: BASE + at_ms * MS,
        severity_number: 17,
        severity_text: "ERROR".into(),
        body: json!(message),
        attributes: Attributes(attributes),
        dropped_attributes_count: 0,
        flags: 0,
        trace_id: None,
        span_id: None,
        event_name: String::new(),
    }
}

/// Commits `records` as the pipeline does: errors derived, JSON made on the "prepare thread"
/// (`serialize_items`) when `serialize`, else by the writer.
fn commit(fixture: &Fixture, records: Vec<LogRecord>, serialize: bool) {
    let resource = Resource {
        attributes: Attributes(json!({"service.name": "checkout"}).as_object().cloned().unwrap_or_default()),
        ..Resource::default()
    };
    let batch = vec![ResourceGroup { resource, scopes: vec![ScopeGroup { scope: Scope::default(), items: records }] }];
    let rules = InAppRules::default();
    let errors = errors_from_logs(&batch, DeriveOptions { rules: &rules, sourcemaps: None });
    let mut write = WriteBatch {
        project_id: fixture.project_id,
        signal: SignalBatch::Logs(batch),
        trace_summaries: Vec::new(),
        endpoint_rollups: Vec::new(),
        query_rollups: Vec::new(),
        job_rollups: Vec::new(),
        call_halves: Vec::new(),
        paired_calls: Default::default(),
        outcomes: Outcomes::default(),
        errors,
        derived_events: Vec::new(),
        sessions: Default::default(),
        serialized: Default::default(),
        otlp_forward: None,
    };
    if serialize {
        write.serialize_items();
    }
    fixture.store.commit(&[write]).expect("commit");
}

/// Every stored record, oldest first.
fn read_back(fixture: &Fixture) -> Vec<LogRecord> {
    let query = LogQuery { limit: 1000, ..LogQuery::default() };
    let mut records: Vec<LogRecord> = fixture
        .store
        .search_logs(fixture.project_id, &query)
        .expect("search")
        .items
        .into_iter()
        .map(|log| log.record)
        .collect();
    records.reverse();
    records
}

/// (`stack_event_id` is set, the stored attributes mention the trace's first line), oldest first.
fn rows(fixture: &Fixture) -> Vec<(bool, bool)> {
    let connection = Connection::open(&fixture.path).expect("database");
    let mut statement = connection
        .prepare("SELECT stack_event_id IS NOT NULL, CAST(attributes AS BLOB) FROM logs ORDER BY id")
        .expect("query");
    statement
        .query_map([], |row| {
            let stored: Vec<u8> = row.get(1)?;
            let text = crate::store::compression::json_text(&stored).map(|text| text.into_owned()).unwrap_or_default();
            Ok((row.get(0)?, text.contains("Traceback") || text.contains("\\tat ") || text.contains("    at ")))
        })
        .expect("rows")
        .collect::<Result<_, _>>()
        .expect("read")
}

fn catalogue() -> Vec<LogRecord> {
    vec![
        error_log(1, "ConnectionError", "gateway 10.2.3.4 timed out after 30s (amount=1299)", PYTHON_CHAINED, "u-1"),
        error_log(2, "java.lang.RuntimeException", "checkout failed for order 1042", JAVA_CAUSED_BY, "u-2"),
        error_log(3, "Error", "could not load cart", NODE_CAUSE, "u-1"),
        // The same bug again with another message: the event shares the stored stack template.
        error_log(
            4,
            "java.lang.RuntimeException",
            "checkout failed for order 2077",
            &JAVA_CAUSED_BY.replace("1042", "2077"),
            "u-3",
        ),
    ]
}

#[test]
fn real_traces_read_back_exactly_and_rows_leave_them_to_the_event() {
    let fixture = open();
    let sent = catalogue();
    commit(&fixture, sent.clone(), true);
    assert_eq!(read_back(&fixture), sent, "attributes (trace included) read back as sent");
    assert_eq!(rows(&fixture), vec![(true, false); 4], "every row points at its event and holds no trace text");
    // One issue per bug: the second Java event shares the first one's stack.
    let issues = fixture
        .store
        .list_issues(fixture.project_id, &crate::store::errors::IssueQuery { limit: 100, ..Default::default() })
        .expect("issues")
        .items;
    assert_eq!(issues.len(), 3, "{issues:#?}");
}

#[test]
fn batches_serialized_by_the_writer_keep_the_trace_in_the_row() {
    let fixture = open();
    let sent = catalogue();
    commit(&fixture, sent.clone(), false);
    assert_eq!(read_back(&fixture), sent);
    assert_eq!(rows(&fixture), vec![(false, true); 4]);
}

#[test]
fn a_trace_cut_to_its_bound_stays_whole_in_the_row() {
    let fixture = open();
    let mut long = PYTHON_CHAINED.to_owned();
    let frame = "  File \"/srv/shop/payments.py\", line 16, in charge\n    call_gateway(\"10.2.3.4\", amount_cents)\n";
    while long.len() <= 70 * 1024 {
        long.insert_str("Traceback (most recent call last):\n".len(), frame);
    }
    let sent = vec![error_log(1, "ConnectionError", "gateway timed out", &long, "u-1")];
    commit(&fixture, sent.clone(), true);
    assert_eq!(read_back(&fixture), sent, "the whole 70 KiB trace, not the event's 64 KiB");
    assert_eq!(rows(&fixture), vec![(false, true)]);
}

#[test]
fn user_erasure_keeps_the_traces_and_a_missing_event_reads_as_null() {
    let fixture = open();
    let sent = catalogue();
    commit(&fixture, sent.clone(), true);
    // Erasure rewrites the events' bodies; the messages that fill the templates stay.
    fixture.store.erase_user(fixture.project_id, &["u-1".to_owned()]).expect("erased");
    assert_eq!(read_back(&fixture), sent);

    let connection = Connection::open(&fixture.path).expect("database");
    connection
        .execute("DELETE FROM error_events WHERE id = (SELECT stack_event_id FROM logs ORDER BY id LIMIT 1)", [])
        .expect("delete one event");
    let read = read_back(&fixture);
    assert_eq!(read[0].attributes.0[STACKTRACE_KEY], Value::Null, "the page still reads");
    assert_eq!(read[0].attributes.get_str("exception.message"), sent[0].attributes.get_str("exception.message"));
    assert_eq!(read[1..], sent[1..]);
}
