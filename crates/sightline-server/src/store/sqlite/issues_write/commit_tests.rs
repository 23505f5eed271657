//! Grouping aggregated over a commit: the issues, counters, users, sessions, tags, hours and
//! lifecycle transitions must be exactly what committing each event alone gives.

use std::collections::BTreeMap;

use sightline_grouping::{Fingerprint, Platform};
use tempfile::TempDir;

use crate::store::errors::{
    ErrorContext, ErrorEvent, ErrorSource, IssueDetail, IssueQuery, IssueStatus, Level, StatusChange,
};
use crate::store::sqlite::SqliteStore;
use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

const MINUTE: u64 = 60_000_000_000;

/// The start of the hour three hours ago, once per test run (occurrences per hour are counted
/// back from now).
static BASE: std::sync::LazyLock<u64> = std::sync::LazyLock::new(|| {
    let three_hours_ago = crate::clock::now_unix_nano() - 180 * MINUTE;
    three_hours_ago - three_hours_ago % (60 * MINUTE)
});

fn open() -> (TempDir, SqliteStore) {
    let directory = tempfile::tempdir().expect("temporary directory");
    let store = SqliteStore::open(&directory.path().join("grouping.db")).expect("store opens");
    (directory, store)
}

/// An error event of bug `bug` grouped by `hashes` (the first is the primary hash).
fn event(index: u64, bug: &str, hashes: &[&str], minutes: u64, user: Option<&str>, release: &str) -> ErrorEvent {
    let mut tags = BTreeMap::new();
    tags.insert("release".to_owned(), release.to_owned());
    tags.insert("browser".to_owned(), if index % 2 == 0 { "Firefox".into() } else { "Chrome".into() });
    ErrorEvent {
        event_id: format!("{index:032x}"),
        timestamp_unix_nano: *BASE + minutes * MINUTE,
        source: ErrorSource::Log,
        level: if index % 5 == 4 { Level::Fatal } else { Level::Error },
        platform: Platform::Python,
        exception_type: format!("{bug}Error"),
        message: format!("{bug} failed #{index}"),
        exceptions: Vec::new(),
        raw_stacktrace: None,
        escaped: None,
        context: ErrorContext {
            service: "shop".into(),
            release: Some(release.into()),
            user_id: user.map(str::to_owned),
            session_id: Some(format!("session-{}", index % 4)),
            ..ErrorContext::default()
        },
        tags,
        fingerprint: Fingerprint {
            primary_hash: hashes[0].into(),
            hashes: hashes.iter().map(|hash| (*hash).to_owned()).collect(),
            variant: "app".into(),
            contributing: vec![format!("{bug}Error")],
        },
        title: format!("{bug}Error: {bug} failed #{index}"),
        culprit: Some(format!("shop.{bug} in handle")),
        symbolicated: false,
        source_context: Vec::new(),
        log_record: None,
    }
}

fn batch(project_id: i64, errors: Vec<ErrorEvent>, serialize: bool) -> WriteBatch {
    let mut batch = WriteBatch {
        project_id,
        signal: SignalBatch::Logs(Vec::new()),
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
        batch.serialize_items();
    }
    batch
}

/// Three bugs over two hours; bug "b" later brings a second hash, which must join its issue.
fn events() -> Vec<ErrorEvent> {
    let users = [Some("u1"), Some("u2"), None, Some("u1"), Some("u3")];
    (0..30)
        .map(|index| {
            let (bug, hashes): (&str, &[&str]) = match index % 3 {
                0 => ("a", &["hash-a"]),
                1 if index < 15 => ("b", &["hash-b"]),
                1 => ("b", &["hash-b2", "hash-b"]),
                _ => ("c", &["hash-c"]),
            };
            let release = if index < 20 { "1.0.0" } else { "1.1.0" };
            event(index, bug, hashes, index * 4, users[index as usize % users.len()], release)
        })
        .collect()
}

/// Everything the store says about a project's issues, keyed by primary hash (ids differ
/// between projects).
fn describe(store: &SqliteStore, project_id: i64) -> BTreeMap<String, String> {
    let page = store.list_issues(project_id, &IssueQuery { limit: 100, ..IssueQuery::default() }).expect("issues");
    page.items
        .iter()
        .map(|issue| {
            let IssueDetail { issue, occurrences_per_hour, top_tags, history, .. } =
                store.get_issue(project_id, issue.id, 24).expect("detail").expect("issue exists");
            let described = format!(
                "{} | {:?} | {:?} | {:?} | {:?} | {} {} | events {} users {} sessions {} | {:?} | hours {:?} | tags {:?} | history {:?}",
                issue.title,
                issue.culprit,
                issue.level,
                issue.status,
                issue.substatus,
                issue.first_seen_unix_nano,
                issue.last_seen_unix_nano,
                issue.event_count,
                issue.user_count,
                issue.session_count,
                issue.last_release,
                occurrences_per_hour.iter().filter(|(_, count)| *count > 0).collect::<Vec<_>>(),
                top_tags,
                history.iter().map(|entry| (entry.status, entry.substatus.clone(), entry.reason.clone())).collect::<Vec<_>>(),
            );
            (issue.primary_hash.clone(), described)
        })
        .collect()
}

#[test]
fn one_commit_groups_like_one_commit_per_event() {
    let (_directory, store) = open();
    let alone = store.create_project("alone").expect("project").id;
    let together = store.create_project("together").expect("project").id;
    for event in events() {
        store.commit(&[batch(alone, vec![event], false)]).expect("commit");
    }
    // Three requests in one group commit; one of them with its JSON made by the pipeline.
    let all = events();
    store
        .commit(&[
            batch(together, all[..7].to_vec(), true),
            batch(together, all[7..22].to_vec(), false),
            batch(together, all[22..].to_vec(), true),
        ])
        .expect("commit");

    let expected = describe(&store, alone);
    assert_eq!(expected.len(), 3, "three bugs, three issues (hash-b2 joined hash-b's issue): {expected:#?}");
    let issue_b = &expected["hash-b"];
    assert!(issue_b.contains("events 10 users 3 sessions 4"), "{issue_b}");
    assert!(issue_b.contains("hours [("), "occurrences were counted: {issue_b}");
    assert_eq!(describe(&store, together), expected);
    let events_stored = store
        .list_issues(together, &IssueQuery { limit: 100, ..IssueQuery::default() })
        .expect("issues")
        .items
        .iter()
        .map(|issue| issue.event_count)
        .sum::<u64>();
    assert_eq!(events_stored, 30);
}

/// Moves an issue's resolution 10 s into the past, out of the 5 s regression guard.
fn age_resolution(directory: &TempDir, issue_id: i64) {
    let connection = rusqlite::Connection::open(directory.path().join("grouping.db")).expect("second connection");
    connection
        .execute(
            "UPDATE issues SET resolved_at_unix_nano = resolved_at_unix_nano - 10000000000 WHERE id = ?1",
            [issue_id],
        )
        .expect("aging the resolution");
}

#[test]
fn lifecycle_advances_event_by_event_inside_one_commit() {
    let (directory, store) = open();
    let project_id = store.create_project("shop").expect("project").id;
    let first = event(0, "a", &["hash-a"], 0, Some("u1"), "1.1.0");
    store.commit(&[batch(project_id, vec![first], true)]).expect("commit");
    let issue_id =
        store.list_issues(project_id, &IssueQuery { limit: 1, ..IssueQuery::default() }).expect("list").items[0].id;
    let resolve = StatusChange {
        status: IssueStatus::Resolved,
        release: None,
        ignore_for_events: None,
        ignore_until_unix_nano: None,
        actor: "test".into(),
    };
    store.change_issue_status(project_id, &[issue_id], &resolve).expect("resolve");
    age_resolution(&directory, issue_id);

    // An event of an older release (does not regress), then two of a newer one (the first
    // regresses, the second finds it unresolved already), all in one commit.
    let commit = vec![
        event(1, "a", &["hash-a"], 1, Some("u2"), "1.0.0"),
        event(2, "a", &["hash-a"], 2, Some("u2"), "1.2.0"),
        event(3, "a", &["hash-a"], 3, Some("u3"), "1.2.0"),
    ];
    store.commit(&[batch(project_id, commit, true)]).expect("commit");
    let detail = store.get_issue(project_id, issue_id, 24).expect("detail").expect("issue");
    assert_eq!((detail.issue.status, detail.issue.substatus.as_deref()), (IssueStatus::Unresolved, Some("regressed")));
    assert_eq!((detail.issue.event_count, detail.issue.user_count), (4, 3));
    let regressions: Vec<_> =
        detail.history.iter().filter(|entry| entry.reason == "regression").map(|entry| entry.release.clone()).collect();
    assert_eq!(regressions, vec![Some("1.2.0".to_owned())], "one regression, by the newer release");

    // Ignored until 2 more events: one in a commit of its own, then the first of a commit of
    // two ends it.
    let ignore = StatusChange { status: IssueStatus::Ignored, ignore_for_events: Some(2), ..resolve };
    store.change_issue_status(project_id, &[issue_id], &ignore).expect("ignore");
    store.commit(&[batch(project_id, vec![event(4, "a", &["hash-a"], 4, None, "1.2.0")], true)]).expect("commit");
    let still_ignored = store.get_issue(project_id, issue_id, 24).expect("detail").expect("issue");
    assert_eq!(still_ignored.issue.status, IssueStatus::Ignored);
    store
        .commit(&[batch(
            project_id,
            vec![event(5, "a", &["hash-a"], 5, None, "1.2.0"), event(6, "a", &["hash-a"], 6, None, "1.2.0")],
            false,
        )])
        .expect("commit");
    let escalated = store.get_issue(project_id, issue_id, 24).expect("detail").expect("issue");
    assert_eq!(
        (escalated.issue.status, escalated.issue.substatus.as_deref()),
        (IssueStatus::Unresolved, Some("escalating"))
    );
    assert_eq!(escalated.issue.event_count, 7);
    assert_eq!(escalated.history.iter().filter(|entry| entry.reason == "ignore_expired").count(), 1);
}

/// Events of one bug store their frames and raw trace once per issue (`error_stacks`) and read
/// back exactly as they were sent, whichever commit and serialization path stored them.
#[test]
fn a_bugs_events_share_one_stored_stack_and_read_back_whole() {
    let (directory, store) = open();
    let project = store.create_project("stacks").expect("project").id;
    let trace = |order: u32, line: u32| {
        format!(
            "Traceback (most recent call last):\n  File \"/srv/app/shop/views.py\", line 12, in checkout\n    \
             total = cart.total()\n  File \"/srv/app/shop/cart.py\", line {line}, in total\n    \
             return sum(item.price for item in self.items)\nKeyError: 'order {order} has no items'\n"
        )
    };
    let with_stack = |index: u64, raw: String| {
        let mut event = event(index, "k", &["hash-k"], index, Some("u1"), "1.0.0");
        let parsed = sightline_grouping::parse_stacktrace(&raw, Some(Platform::Python));
        event.message.clone_from(&parsed.exceptions[0].message);
        event.exceptions = parsed.exceptions;
        event.raw_stacktrace = Some(raw);
        event
    };
    let sent: Vec<ErrorEvent> = (0..6u64)
        .map(|index| with_stack(index, trace(1000 + index as u32, if index == 5 { 88 } else { 40 })))
        .collect();
    assert_eq!(sent[0].exceptions[0].frames.len(), 2, "{:?}", sent[0].exceptions);
    // Two commits, one batch serialized by the pipeline and one by the writer.
    store.commit(&[batch(project, sent[..3].to_vec(), true)]).expect("commit");
    store.commit(&[batch(project, sent[3..].to_vec(), false)]).expect("commit");

    let connection = rusqlite::Connection::open(directory.path().join("grouping.db")).expect("second connection");
    let stacks: i64 = connection.query_row("SELECT count(*) FROM error_stacks", [], |row| row.get(0)).expect("count");
    assert_eq!(stacks, 2, "five events of one stack and one with another line");
    let whole: i64 = connection
        .query_row("SELECT count(*) FROM error_events WHERE stack_hash IS NULL", [], |row| row.get(0))
        .expect("count");
    assert_eq!(whole, 0);

    let issue = store.list_issues(project, &IssueQuery::default()).expect("issues").items[0].id;
    let page = store.issue_events(project, issue, 100, None).expect("events").expect("issue exists");
    let mut read: Vec<ErrorEvent> = page.items.into_iter().map(|stored| stored.event).collect();
    read.sort_by_key(|event| event.timestamp_unix_nano);
    assert_eq!(read, sent, "every event reads back as sent");
    let detail = store.get_issue(project, issue, 24).expect("detail").expect("issue exists");
    assert_eq!(detail.latest_event.map(|stored| stored.event).as_ref(), sent.last());

    // Erasing the user rewrites each event's own row; its stack stays shared and joins back.
    let erasure = store.erase_user(project, &["u1".to_owned()]).expect("erasure");
    assert_eq!(erasure.error_events, 6);
    let page = store.issue_events(project, issue, 100, None).expect("events").expect("issue exists");
    let mut erased: Vec<ErrorEvent> = page.items.into_iter().map(|stored| stored.event).collect();
    erased.sort_by_key(|event| event.timestamp_unix_nano);
    let expected: Vec<ErrorEvent> = sent
        .into_iter()
        .map(|mut event| {
            event.context.user_id = None;
            event
        })
        .collect();
    assert_eq!(erased, expected, "only the user is gone");
}
