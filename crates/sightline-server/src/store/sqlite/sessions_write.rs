//! Session summaries at commit: completes each batch's session deltas with its fresh product events
//! and error events and merges them over the commit; each session's merged change is appended to
//! `session_deltas` in the same transaction, and [`fold`] later merges many commits' changes
//! into `sessions` (the upsert is [`SessionDelta::merge`] in SQL, so out-of-order batches give
//! the same summary) and indexes the sessions' items for the timeline. Correlation counters are
//! added at once.
//!
//! Why two steps: the sessions of a busy service are random keys, so upserting them in every
//! commit rewrote most pages of `sessions`, its indexes and `session_items` per commit (in
//! `bench errors`, 39 % of the WAL frames). Appended deltas fill a few fresh pages per commit,
//! and a fold rewrites each touched page once for many commits. Readers of sessions fold first
//! (`Store::fold_pending_summaries`), so they never see a summary without its deltas.

use std::collections::{BTreeMap, HashSet};

use rusqlite::{OptionalExtension, Transaction, params};
use serde::{Deserialize, Serialize};

use crate::store::errors::ErrorEvent;
use crate::store::sessions::{
    PageMark, SessionAccumulator, SessionDelta, SessionItem, SessionItemKind, UserAgentSource,
};
use crate::store::{SignalBatch, StoreResult, WriteBatch};

/// Row ids of what a batch inserted, in the order session item positions count them.
#[derive(Debug, Default)]
pub(super) struct ItemRowids {
    /// Spans, in iteration order.
    pub(super) spans: Vec<i64>,
    /// Log records, in iteration order.
    pub(super) logs: Vec<i64>,
    /// Error events, in the order they were grouped.
    pub(super) errors: Vec<i64>,
}

/// Which of a batch's product events were already stored (client retries): they do not count
/// again.
#[derive(Clone, Copy)]
pub(super) struct FreshEvents<'a> {
    /// Duplicate ids among the batch's `/v1/events` events.
    pub(super) duplicate_event_ids: &'a HashSet<String>,
    /// Duplicate ids among the events derived from OpenTelemetry log events.
    pub(super) duplicate_derived_ids: &'a HashSet<String>,
}

/// A session's changes over a commit: the merged delta of every batch that touched it, and its
/// timeline items already resolved to stored row ids.
struct PendingSession {
    delta: SessionDelta,
    /// (time ns, kind code, row id).
    items: Vec<(i64, i64, i64)>,
}

/// Keyed by (project, `session.id`), ordered so upserts walk the unique index in order.
type PendingSessions = BTreeMap<(i64, String), PendingSession>;

/// Adds one change of a session to what is pending for it: [`SessionDelta::merge`] is the same
/// merge the upsert performs, so merging first and upserting once gives the summary separate
/// upserts would have.
fn add_pending(sessions: &mut PendingSessions, project_id: i64, delta: SessionDelta, items: Vec<(i64, i64, i64)>) {
    match sessions.entry((project_id, delta.session_id.clone())) {
        std::collections::btree_map::Entry::Occupied(mut entry) => {
            let pending = entry.get_mut();
            pending.delta.merge(delta);
            pending.items.extend(items);
        }
        std::collections::btree_map::Entry::Vacant(entry) => {
            entry.insert(PendingSession { delta, items });
        }
    }
}

/// Collects the session facts of every batch of a commit and appends one delta per session:
/// a session seen by many requests in one commit costs one row, not one per request.
#[derive(Default)]
pub(super) struct SessionWriter {
    sessions: PendingSessions,
    /// (project, day) → (SERVER spans, with a session).
    correlation: BTreeMap<(i64, u64), (u64, u64)>,
}

impl SessionWriter {
    /// Adds one batch's session facts. `errors` are the error events grouped for this batch
    /// (retries left out), `rowids` what the batch inserted.
    pub(super) fn add_batch(
        &mut self,
        batch: &WriteBatch,
        fresh: FreshEvents<'_>,
        errors: &[ErrorEvent],
        rowids: &ItemRowids,
    ) {
        let events = match &batch.signal {
            SignalBatch::Events(events) => events.as_slice(),
            _ => &[],
        };
        let has_session = |event: &&sightline_model::ProductEvent| !event.session_id.is_empty();
        let nothing_to_do = batch.sessions.is_empty()
            && !events.iter().any(|event| has_session(&event))
            && !batch.derived_events.iter().any(|event| has_session(&event))
            && !errors.iter().any(|error| error.context.session_id.is_some());
        if nothing_to_do {
            return;
        }
        let mut accumulator = SessionAccumulator::from_batch(batch.sessions.clone());
        for event in events.iter().filter(|event| !fresh.duplicate_event_ids.contains(&event.event_id)) {
            accumulator.add_event(event);
        }
        for event in batch.derived_events.iter().filter(|event| !fresh.duplicate_derived_ids.contains(&event.event_id))
        {
            accumulator.add_event(event);
        }
        for (position, error) in errors.iter().enumerate() {
            let Some(session_id) = &error.context.session_id else { continue };
            let delta = accumulator.session(session_id, error.timestamp_unix_nano);
            delta.touch(error.timestamp_unix_nano, error.timestamp_unix_nano);
            delta.errors += 1;
            delta.items.push(SessionItem {
                kind: SessionItemKind::Error,
                position,
                timestamp_unix_nano: error.timestamp_unix_nano,
            });
        }
        let sessions = accumulator.finish();
        for mut delta in sessions.deltas {
            let items: Vec<(i64, i64, i64)> = std::mem::take(&mut delta.items)
                .iter()
                .filter_map(|item| {
                    let stored = match item.kind {
                        SessionItemKind::Request => &rowids.spans,
                        SessionItemKind::Log => &rowids.logs,
                        SessionItemKind::Error => &rowids.errors,
                    };
                    // A position without a row would be a pipeline bug; the item is skipped,
                    // never misfiled.
                    let rowid = stored.get(item.position)?;
                    Some((as_sql_time(item.timestamp_unix_nano), item.kind.code(), *rowid))
                })
                .collect();
            add_pending(&mut self.sessions, batch.project_id, delta, items);
        }
        for counter in &sessions.correlation {
            let entry = self.correlation.entry((batch.project_id, counter.day_unix_nano)).or_default();
            entry.0 += counter.server_spans;
            entry.1 += counter.with_session;
        }
    }

    /// Appends each session's merged change to `session_deltas` and adds the correlation
    /// counters; returns how many deltas it appended (what [`fold`] has more to do).
    pub(super) fn finish(self, transaction: &Transaction<'_>) -> StoreResult<u64> {
        let mut append = transaction.prepare_cached("INSERT INTO session_deltas (project_id, body) VALUES (?1, ?2)")?;
        for ((project_id, _), pending) in &self.sessions {
            append.execute(params![project_id, StoredDelta::from_pending(pending).to_json()?])?;
        }
        let mut statement = transaction.prepare_cached(
            "INSERT INTO session_correlation (project_id, day_unix_nano, server_spans, with_session) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, day_unix_nano) DO UPDATE SET
                server_spans = server_spans + excluded.server_spans,
                with_session = with_session + excluded.with_session",
        )?;
        for ((project_id, day_unix_nano), (server_spans, with_session)) in &self.correlation {
            statement.execute(params![
                project_id,
                as_sql_time(*day_unix_nano),
                *server_spans as i64,
                *with_session as i64
            ])?;
        }
        Ok(self.sessions.len() as u64)
    }
}

/// Merges every row of `session_deltas` into `sessions` and `session_items` and deletes the
/// rows, in the caller's transaction: each session is upserted once, in key order, however
/// many commits changed it. Returns the number of deltas folded. Errors when a statement fails
/// or a row does not decode (a row this version did not write); the transaction then must be
/// rolled back, and the deltas stay for the next fold.
pub(super) fn fold(transaction: &Transaction<'_>) -> StoreResult<u64> {
    let mut sessions = PendingSessions::new();
    let mut last_id = None;
    let mut folded = 0u64;
    {
        let mut statement =
            transaction.prepare_cached("SELECT id, project_id, body FROM session_deltas ORDER BY id")?;
        let mut rows = statement.query([])?;
        while let Some(row) = rows.next()? {
            let (id, project_id, body): (i64, i64, String) = (row.get(0)?, row.get(1)?, row.get(2)?);
            let stored: StoredDelta = serde_json::from_str(&body).map_err(|error| {
                crate::store::StoreError::Database(format!("session delta {id} does not decode: {error}"))
            })?;
            let (delta, items) = stored.into_parts();
            add_pending(&mut sessions, project_id, delta, items);
            last_id = Some(id);
            folded += 1;
        }
    }
    let Some(last_id) = last_id else { return Ok(0) };
    let mut statements = FoldStatements::prepare(transaction)?;
    for ((project_id, _), pending) in &mut sessions {
        let session_key = upsert_session(&mut statements, *project_id, &pending.delta)?;
        // Sorted, so the inserts walk `session_items` in key order.
        pending.items.sort_unstable();
        insert_items(&mut statements.insert_item, session_key, &pending.items)?;
    }
    transaction.execute("DELETE FROM session_deltas WHERE id <= ?1", [last_id])?;
    Ok(folded)
}

/// One session's merged change as `session_deltas.body` stores it: [`SessionDelta`] without its
/// unresolved items, plus the items resolved to (time ns, kind code, row id). Short keys: a
/// commit appends one per session it touched.
#[derive(Debug, Serialize, Deserialize)]
struct StoredDelta {
    /// `session.id`.
    s: String,
    /// First and last seen, ns.
    f: u64,
    l: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    u: Option<String>,
    /// Entry and exit page: (time ns, path).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    en: Option<(u64, String)>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ex: Option<(u64, String)>,
    /// Counters: page views, events, errors, requests, logs.
    c: [u64; 5],
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    sv: Vec<String>,
    /// User agent: (source code, user agent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ua: Option<(u8, String)>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    it: Vec<(i64, i64, i64)>,
}

impl StoredDelta {
    fn from_pending(pending: &PendingSession) -> Self {
        let delta = &pending.delta;
        let mark = |page: &Option<PageMark>| page.as_ref().map(|page| (page.timestamp_unix_nano, page.path.clone()));
        Self {
            s: delta.session_id.clone(),
            f: delta.first_seen_unix_nano,
            l: delta.last_seen_unix_nano,
            u: delta.user_id.clone(),
            en: mark(&delta.entry_page),
            ex: mark(&delta.exit_page),
            c: [delta.page_views, delta.events, delta.errors, delta.requests, delta.logs],
            sv: delta.services.clone(),
            ua: delta.user_agent.as_ref().map(|(source, user_agent)| (*source as u8, user_agent.clone())),
            it: pending.items.clone(),
        }
    }

    fn to_json(&self) -> StoreResult<String> {
        serde_json::to_string(self)
            .map_err(|error| crate::store::StoreError::Database(format!("encoding a session delta: {error}")))
    }

    fn into_parts(self) -> (SessionDelta, Vec<(i64, i64, i64)>) {
        let mark = |page: Option<(u64, String)>| {
            page.map(|(timestamp_unix_nano, path)| PageMark { timestamp_unix_nano, path })
        };
        let [page_views, events, errors, requests, logs] = self.c;
        let user_agent = self.ua.map(|(source, user_agent)| {
            (
                if source == UserAgentSource::Event as u8 { UserAgentSource::Event } else { UserAgentSource::Span },
                user_agent,
            )
        });
        let delta = SessionDelta {
            session_id: self.s,
            first_seen_unix_nano: self.f,
            last_seen_unix_nano: self.l,
            user_id: self.u,
            entry_page: mark(self.en),
            exit_page: mark(self.ex),
            page_views,
            events,
            errors,
            requests,
            logs,
            services: self.sv,
            user_agent,
            items: Vec::new(),
        };
        (delta, self.it)
    }
}

fn as_sql_time(unix_nano: u64) -> i64 {
    unix_nano.min(i64::MAX as u64) as i64
}

/// The columns [`upsert_session`] merges that no index covers, as `SET` assignments reading the
/// row as it was and the delta as the statement's parameters (`?4`, `?6`..`?17`, in the insert's
/// column order): the earliest entry page (ties keep the stored one), the latest exit page (ties
/// take the new one), counters added, services united and sorted, the best user agent source.
const UNINDEXED_MERGE: &str = "
    last_seen_unix_nano = max(last_seen_unix_nano, ?4),
    entry_page = CASE WHEN ?7 < coalesce(entry_page_unix_nano, 9223372036854775807) THEN ?6 ELSE entry_page END,
    entry_page_unix_nano = CASE WHEN ?7 < coalesce(entry_page_unix_nano, 9223372036854775807)
        THEN ?7 ELSE entry_page_unix_nano END,
    exit_page = CASE WHEN ?9 >= coalesce(exit_page_unix_nano, -1) THEN ?8 ELSE exit_page END,
    exit_page_unix_nano = CASE WHEN ?9 >= coalesce(exit_page_unix_nano, -1) THEN ?9 ELSE exit_page_unix_nano END,
    page_views = page_views + ?10,
    events = events + ?11,
    errors = errors + ?12,
    requests = requests + ?13,
    logs = logs + ?14,
    services = CASE WHEN ?15 = '[]' OR ?15 = services THEN services ELSE sightline_union_sorted(services, ?15) END,
    user_agent = CASE WHEN ?17 > user_agent_source THEN ?16 ELSE user_agent END,
    user_agent_source = max(user_agent_source, ?17)";

/// Registers `sightline_union_sorted(a, b)` on `connection`: the sorted union of two JSON arrays
/// of strings, as JSON text; text that is not such an array counts as empty. A session's
/// services are merged with it: the same union in SQL (`json_each` twice, `UNION`, `json_group_array`) was ≈ 40 % of each session's
/// update in a fold (BENCHMARKS.md, 2026-12-01 late).
pub(super) fn register_functions(connection: &rusqlite::Connection) -> rusqlite::Result<()> {
    use rusqlite::functions::FunctionFlags;
    connection.create_scalar_function(
        "sightline_union_sorted",
        2,
        FunctionFlags::SQLITE_UTF8 | FunctionFlags::SQLITE_DETERMINISTIC,
        |context| {
            let list = |index: usize| -> Vec<String> {
                match context.get_raw(index) {
                    rusqlite::types::ValueRef::Text(text) => serde_json::from_slice(text).unwrap_or_default(),
                    _ => Vec::new(),
                }
            };
            let united: std::collections::BTreeSet<String> = list(0).into_iter().chain(list(1)).collect();
            Ok(serde_json::to_string(&united).unwrap_or_else(|_| "[]".to_owned()))
        },
    )
}

/// The statements of a fold, prepared once for its thousands of sessions (each `prepare_cached`
/// formats and hashes the long SQL text).
struct FoldStatements<'t> {
    /// The fast path: updates a stored session whose indexed columns the delta leaves as they
    /// are — its first seen time is not earlier, and it has a user id or the delta has none —
    /// touching only unindexed columns; returns its row id, no row when there is no such session
    /// (new, or the full upsert must move its index entries). SQLite rewrites an index entry
    /// whenever a `SET` assigns one of its columns, even to the same value, so the full upsert
    /// rewrote `sessions_by_start` and `sessions_by_user` for every session of every commit;
    /// with random sessions that dirtied nearly every page of both indexes per commit
    /// (BENCHMARKS.md).
    update_unindexed: rusqlite::CachedStatement<'t>,
    /// The full upsert, which also moves the session's index entries.
    upsert: rusqlite::CachedStatement<'t>,
    insert_item: rusqlite::CachedStatement<'t>,
}

impl<'t> FoldStatements<'t> {
    fn prepare(transaction: &'t Transaction<'_>) -> StoreResult<Self> {
        Ok(Self {
            update_unindexed: transaction.prepare_cached(&format!(
                "UPDATE sessions SET {UNINDEXED_MERGE}
                 WHERE project_id = ?1 AND session_id = ?2 AND first_seen_unix_nano <= ?3
                    AND (user_id IS NOT NULL OR ?5 IS NULL)
                 RETURNING id"
            ))?,
            // Mirrors `SessionDelta::merge`: the earliest first-seen time, the first user id, and
            // the unindexed columns as in `UNINDEXED_MERGE`. SET expressions all read the row as
            // it was.
            upsert: transaction.prepare_cached(&format!(
                "INSERT INTO sessions (project_id, session_id, first_seen_unix_nano, last_seen_unix_nano, user_id,
                    entry_page, entry_page_unix_nano, exit_page, exit_page_unix_nano, page_views, events, errors,
                    requests, logs, services, user_agent, user_agent_source)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)
                 ON CONFLICT (project_id, session_id) DO UPDATE SET
                    first_seen_unix_nano = min(first_seen_unix_nano, ?3),
                    user_id = coalesce(user_id, ?5),
                    {UNINDEXED_MERGE}
                 RETURNING id"
            ))?,
            insert_item: transaction.prepare_cached(
                "INSERT OR IGNORE INTO session_items (session_key, timestamp_unix_nano, kind, item_rowid)
                 VALUES (?1, ?2, ?3, ?4)",
            )?,
        })
    }
}

/// Upserts one session; returns its row id (the key of its items).
fn upsert_session(statements: &mut FoldStatements<'_>, project_id: i64, delta: &SessionDelta) -> StoreResult<i64> {
    let services = serde_json::to_string(&delta.services).unwrap_or_else(|_| "[]".to_owned());
    let (user_agent_source, user_agent) = match &delta.user_agent {
        Some((source, user_agent)) => (*source as i64, Some(user_agent.as_str())),
        None => (0, None),
    };
    let first_seen = as_sql_time(delta.first_seen_unix_nano);
    let last_seen = as_sql_time(delta.last_seen_unix_nano);
    let entry_page = delta.entry_page.as_ref().map(|page| page.path.as_str());
    let entry_page_time = delta.entry_page.as_ref().map(|page| as_sql_time(page.timestamp_unix_nano));
    let exit_page = delta.exit_page.as_ref().map(|page| page.path.as_str());
    let exit_page_time = delta.exit_page.as_ref().map(|page| as_sql_time(page.timestamp_unix_nano));
    let counts = [delta.page_views, delta.events, delta.errors, delta.requests, delta.logs].map(|count| count as i64);
    let parameters: [&dyn rusqlite::ToSql; 17] = [
        &project_id,
        &delta.session_id,
        &first_seen,
        &last_seen,
        &delta.user_id,
        &entry_page,
        &entry_page_time,
        &exit_page,
        &exit_page_time,
        &counts[0],
        &counts[1],
        &counts[2],
        &counts[3],
        &counts[4],
        &services,
        &user_agent,
        &user_agent_source,
    ];
    if let Some(session_key) =
        statements.update_unindexed.query_row(parameters.as_slice(), |row| row.get(0)).optional()?
    {
        return Ok(session_key);
    }
    Ok(statements.upsert.query_row(parameters.as_slice(), |row| row.get(0))?)
}

fn insert_items(
    statement: &mut rusqlite::CachedStatement<'_>,
    session_key: i64,
    items: &[(i64, i64, i64)],
) -> StoreResult<()> {
    for (timestamp_unix_nano, kind, rowid) in items {
        statement.execute(params![session_key, timestamp_unix_nano, kind, rowid])?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn services_unite_sorted_and_without_repeats() {
        let connection = rusqlite::Connection::open_in_memory().expect("database");
        register_functions(&connection).expect("functions");
        let unite = |stored: Option<&str>, added: &str| -> String {
            connection
                .query_row("SELECT sightline_union_sorted(?1, ?2)", rusqlite::params![stored, added], |row| row.get(0))
                .expect("union")
        };
        assert_eq!(unite(Some(r#"["checkout","web"]"#), r#"["api","web"]"#), r#"["api","checkout","web"]"#);
        assert_eq!(unite(Some(r#"["api","web"]"#), r#"["web"]"#), r#"["api","web"]"#, "already there");
        assert_eq!(unite(Some("[]"), r#"["b","a","b"]"#), r#"["a","b"]"#);
        assert_eq!(unite(None, r#"["api"]"#), r#"["api"]"#, "NULL counts as empty");
        assert_eq!(unite(Some("not json"), r#"["api"]"#), r#"["api"]"#);
        assert_eq!(unite(Some(r#"["Zeta","alpha"]"#), "[]"), r#"["Zeta","alpha"]"#, "byte order, as SQLite sorts");
    }
}
