//! Issue text search (`q=`) through a real SQLite store: issues made by committing error logs,
//! found by substrings of title and culprit through the trigram index (or the `instr` scan for
//! 1–2 characters), with FTS5 syntax taken literally, renamed issues reindexed, the cursor and
//! sort orders intact, the planner using the index, and retention keeping the index consistent.

use std::path::{Path, PathBuf};

use rusqlite::{Connection, params_from_iter};
use serde_json::{Value, json};
use sightline_grouping::InAppRules;
use sightline_model::{Attributes, LogRecord, Resource, ResourceGroup, Scope, ScopeGroup};
use tempfile::TempDir;

use super::list_issues_sql;
use crate::pipeline::errors::{DeriveOptions, errors_from_logs};
use crate::store::errors::{Issue, IssueQuery, IssueSort, IssueStatus, StatusChange};
use crate::store::sqlite::SqliteStore;
use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

const BASE: u64 = 1_700_000_000_000_000_000;
const MS: u64 = 1_000_000;
const DAY_MS: u64 = 86_400_000;

struct Fixture {
    _directory: TempDir,
    path: PathBuf,
    store: SqliteStore,
    project_id: i64,
}

fn open() -> Fixture {
    let directory = tempfile::tempdir().expect("temporary directory");
    let path = directory.path().join("search.db");
    let store = SqliteStore::open(&path).expect("store opens");
    let project_id = store.create_project("Search").expect("project created").id;
    Fixture { _directory: directory, path, store, project_id }
}

/// An error log titled "`exception_type`: `message`", grouped by the `fingerprint` attribute (so
/// a new message keeps the issue) and with `route` as culprit (there is no stack trace to name
/// a frame).
fn error_log(at_ms: u64, fingerprint: &str, exception_type: &str, message: &str, route: &str) -> LogRecord {
    let attributes = json!({
        "exception.type": exception_type,
        "exception.message": message,
        "fingerprint": fingerprint,
        "http.route": route,
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

/// Commits `records` the way the pipeline does: errors derived from the logs, grouped at commit.
fn commit(fixture: &Fixture, records: Vec<LogRecord>) {
    let resource = Resource {
        attributes: Attributes(json!({"service.name": "checkout"}).as_object().cloned().unwrap_or_default()),
        ..Resource::default()
    };
    let batch = vec![ResourceGroup { resource, scopes: vec![ScopeGroup { scope: Scope::default(), items: records }] }];
    let rules = InAppRules::default();
    let errors = errors_from_logs(&batch, DeriveOptions { rules: &rules, sourcemaps: None });
    let write = WriteBatch {
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
    fixture.store.commit(&[write]).expect("commit");
}

fn list(fixture: &Fixture, query: IssueQuery) -> Vec<Issue> {
    fixture.store.list_issues(fixture.project_id, &query).expect("list issues").items
}

/// Titles of the issues whose title or culprit contains `text`, most recently seen first.
fn search(fixture: &Fixture, text: &str) -> Vec<String> {
    list(fixture, IssueQuery { text: Some(text.into()), limit: 100, ..IssueQuery::default() })
        .into_iter()
        .map(|issue| issue.title)
        .collect()
}

/// FTS5's own consistency check, against the `issues` rows too (rank 1,
/// https://sqlite.org/fts5.html#the_integrity_check_command). Errors when the index is stale.
fn integrity_check(path: &Path) -> rusqlite::Result<usize> {
    let connection = Connection::open(path)?;
    connection.execute("INSERT INTO issues_search(issues_search, rank) VALUES ('integrity-check', 1)", [])
}

const TAX: &str = "ValueError: Tax rate normalizeTaxRateV2 rejected";
const TIMEOUT: &str = "TimeoutError: upstream timeout after 30s";
const SKU: &str = "KeyError: 'sku' missing";
const SYNTAX: &str = r#"ParseError: unexpected "quote" near * OR NEAR(x) - end"#;

/// Four issues, seen in this order (the list shows them newest first).
fn commit_catalogue(fixture: &Fixture) {
    commit(
        fixture,
        vec![
            error_log(1, "tax", "ValueError", "Tax rate normalizeTaxRateV2 rejected", "/api/Checkout/{cartId}"),
            error_log(2, "timeout", "TimeoutError", "upstream timeout after 30s", "/api/orders"),
            error_log(3, "sku", "KeyError", "'sku' missing", "/api/Inventory/Lookup"),
            error_log(4, "syntax", "ParseError", r#"unexpected "quote" near * OR NEAR(x) - end"#, "/api/search"),
        ],
    );
}

#[test]
fn search_finds_substrings_of_title_and_culprit_in_any_case() {
    let fixture = open();
    commit_catalogue(&fixture);
    let issues = list(&fixture, IssueQuery { limit: 10, ..IssueQuery::default() });
    assert_eq!(
        issues.iter().map(|issue| issue.culprit.as_deref()).collect::<Vec<_>>(),
        [Some("/api/search"), Some("/api/Inventory/Lookup"), Some("/api/orders"), Some("/api/Checkout/{cartId}"),]
    );

    assert_eq!(search(&fixture, "normalizeTaxRate"), [TAX]);
    assert_eq!(search(&fixture, "NORMALIZETAXRATEV2"), [TAX], "upper case finds mixed case");
    assert_eq!(search(&fixture, "rate normalize"), [TAX], "spaces are part of the substring");
    assert_eq!(search(&fixture, "checkout/{CARTID}"), [TAX], "culprit only");
    assert_eq!(search(&fixture, "orders"), [TIMEOUT], "culprit only");
    assert_eq!(search(&fixture, "inventory/look"), [SKU]);
    assert_eq!(search(&fixture, "Error:"), [SYNTAX, SKU, TIMEOUT, TAX], "every title, newest first");
    assert!(search(&fixture, "refund").is_empty());
    assert!(search(&fixture, "Error: /api").is_empty(), "no match across title and culprit");
}

#[test]
fn search_texts_of_one_or_two_characters_still_match() {
    let fixture = open();
    commit_catalogue(&fixture);
    assert_eq!(search(&fixture, "kE"), [SKU]);
    assert_eq!(search(&fixture, "30"), [TIMEOUT]);
    assert_eq!(search(&fixture, "'"), [SKU]);
    assert_eq!(search(&fixture, "}"), [TAX], "culprit only");
    assert_eq!(search(&fixture, "/").len(), 4);
    assert!(search(&fixture, "zq").is_empty());
}

#[test]
fn fts5_syntax_in_search_text_matches_literally() {
    let fixture = open();
    commit_catalogue(&fixture);
    for text in [r#""quote""#, r#"d "q"#, "near *", "* OR NEAR(", "NEAR(x)", "x) - end", "- end"] {
        assert_eq!(search(&fixture, text), [SYNTAX], "{text:?}");
    }
    assert_eq!(search(&fixture, "\""), [SYNTAX], "one quote takes the short path");
    assert_eq!(search(&fixture, "OR"), [SYNTAX, SKU, TIMEOUT, TAX], "`OR` is two characters of `Error`");
    // Operators, column filters, prefix and initial-token syntax, unbalanced quotes: no error,
    // and no match because no title or culprit contains them.
    for text in
        ["a OR b", "tax AND rate", "NOT tax", "title: tax", "{title}: tax", "^Value", "tax*", "\"tax", "tax\"\""]
    {
        assert!(search(&fixture, text).is_empty(), "{text:?}");
    }
}

#[test]
fn renamed_issue_is_found_by_its_new_title_only() {
    let fixture = open();
    commit(&fixture, vec![error_log(1, "ledger", "LedgerError", "connection refused by ledger", "/api/pay")]);
    assert_eq!(search(&fixture, "refused"), ["LedgerError: connection refused by ledger"]);

    commit(&fixture, vec![error_log(2, "ledger", "LedgerError", "ledger quota exceeded", "/api/pay")]);
    let issues = list(&fixture, IssueQuery { limit: 10, ..IssueQuery::default() });
    assert_eq!(issues.len(), 1, "the same fingerprint keeps the issue");
    assert_eq!(issues[0].event_count, 2);
    assert!(search(&fixture, "refused").is_empty(), "old title no longer matches");
    assert_eq!(search(&fixture, "quota exceeded"), ["LedgerError: ledger quota exceeded"]);
    assert_eq!(search(&fixture, "/api/pay").len(), 1, "the unchanged culprit is still indexed");
    // A third event with the same title: the update trigger's WHEN clause skips reindexing.
    commit(&fixture, vec![error_log(3, "ledger", "LedgerError", "ledger quota exceeded", "/api/pay")]);
    assert_eq!(search(&fixture, "quota exceeded"), ["LedgerError: ledger quota exceeded"]);
    integrity_check(&fixture.path).expect("index consistent with issues");
}

#[test]
fn search_keeps_status_sort_and_cursor() {
    let fixture = open();
    // Seven "timeout" issues (event counts 1..=7, seen in turn) and three others in between.
    for index in 0..7u64 {
        let records = (0..=index)
            .map(|event| {
                error_log(index * 10 + event, &format!("t{index}"), "Timeout", &format!("timeout {index}"), "/a")
            })
            .collect();
        commit(&fixture, records);
        commit(&fixture, vec![error_log(index * 10 + 8, &format!("o{index}"), "Other", "disk full", "/b")]);
    }
    let all = list(&fixture, IssueQuery { limit: 100, ..IssueQuery::default() });
    let resolved = all.iter().find(|issue| issue.title == "Timeout: timeout 3").expect("issue").id;
    let change = StatusChange {
        status: IssueStatus::Resolved,
        release: None,
        ignore_for_events: None,
        ignore_until_unix_nano: None,
        actor: "test".into(),
    };
    fixture.store.change_issue_status(fixture.project_id, &[resolved], &change).expect("resolve");

    for sort in [IssueSort::LastSeen, IssueSort::Count, IssueSort::Users] {
        // The reference: the same list without the text, filtered here.
        let unfiltered = list(
            &fixture,
            IssueQuery { status: Some(IssueStatus::Unresolved), sort, limit: 100, ..IssueQuery::default() },
        );
        let expected: Vec<i64> =
            unfiltered.iter().filter(|issue| issue.title.contains("timeout")).map(|issue| issue.id).collect();
        assert_eq!(expected.len(), 6, "seven timeouts, one resolved");

        let mut pages = Vec::new();
        let mut cursor = None;
        loop {
            let query = IssueQuery {
                status: Some(IssueStatus::Unresolved),
                text: Some("TIMEOUT".into()),
                sort,
                limit: 4,
                cursor: cursor.take(),
                ..IssueQuery::default()
            };
            let page = fixture.store.list_issues(fixture.project_id, &query).expect("page");
            pages.push(page.items.iter().map(|issue| issue.id).collect::<Vec<_>>());
            match page.next_cursor {
                Some(next) => cursor = Some(next),
                None => break,
            }
        }
        assert_eq!(pages.len(), 2, "{sort:?}: 4 + 2");
        assert_eq!(pages.concat(), expected, "{sort:?}");
    }
}

/// `EXPLAIN QUERY PLAN` of the list query, one line per step (`detail` column).
fn query_plan(fixture: &Fixture, query: &IssueQuery) -> Vec<String> {
    let (sql, values) = list_issues_sql(fixture.project_id, query).expect("sql");
    let connection = fixture.store.reader().expect("reader");
    let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("explain");
    statement
        .query_map(params_from_iter(values.iter()), |row| row.get::<_, String>(3))
        .expect("plan")
        .collect::<Result<_, _>>()
        .expect("plan rows")
}

#[test]
fn search_plan_reads_the_trigram_index_and_the_sort_index() {
    let fixture = open();
    commit_catalogue(&fixture);
    let cursor = format!("{}:{}", BASE + 3 * MS, i64::MAX);
    for (sort, index) in [
        (IssueSort::LastSeen, "issues_by_last_seen"),
        (IssueSort::Count, "issues_by_count"),
        (IssueSort::Users, "issues_by_users"),
    ] {
        for cursor in [None, Some(cursor.clone())] {
            let query = IssueQuery {
                status: Some(IssueStatus::Unresolved),
                text: Some("normalizeTaxRateV2".into()),
                sort,
                limit: 25,
                cursor,
                ..IssueQuery::default()
            };
            let plan = query_plan(&fixture, &query);
            eprintln!("{sort:?}, cursor {}: {plan:#?}", query.cursor.is_some());
            assert!(plan.iter().any(|step| step.contains(index)), "{sort:?}: {plan:?}");
            assert!(plan.iter().any(|step| step.contains("issues_search VIRTUAL TABLE INDEX")), "{sort:?}: {plan:?}");
            assert!(!plan.iter().any(|step| step.contains("TEMP B-TREE")), "no sort step: {plan:?}");
        }
    }
}

#[test]
fn retention_removes_deleted_issues_from_the_search_index() {
    let fixture = open();
    commit(&fixture, vec![error_log(0, "old", "StaleError", "expired cache entry", "/old")]);
    commit(&fixture, vec![error_log(10 * DAY_MS, "new", "FreshError", "fresh cache entry", "/new")]);
    assert_eq!(search(&fixture, "cache entry").len(), 2);

    while fixture.store.delete_expired(fixture.project_id, BASE + DAY_MS * MS, 1).expect("delete") > 0 {}
    assert_eq!(list(&fixture, IssueQuery { limit: 10, ..IssueQuery::default() }).len(), 1, "the old issue is gone");
    assert!(search(&fixture, "expired cache").is_empty());
    assert!(search(&fixture, "/old").is_empty(), "its culprit too");
    assert_eq!(search(&fixture, "cache entry"), ["FreshError: fresh cache entry"]);
    integrity_check(&fixture.path).expect("index consistent with issues");
}
