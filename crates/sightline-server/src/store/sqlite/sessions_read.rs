//! Reading sessions: the summary list with a keyset cursor, one session's merged timeline and the
//! correlation rate.
//!
//! The timeline is two index range scans merged in Rust: `session_items` (requests, logs and
//! errors, joined by row id to their rows) and `product_events_by_session` (frontend events).
//! Both are ordered by (time, kind, row id) — product events count as kind 0 — which is also
//! the cursor, so pages never repeat or skip an entry.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};
use serde_json::{Map, Value};
use sightline_model::span::{kind, status_code};
use sightline_model::{SpanId, TraceId};

use crate::store::sessions::{
    CorrelationRate, DAY_NANOS, MAX_TIMELINE_ENTRIES, SessionDetail, SessionItemKind, SessionQuery, SessionSummary,
    TimelineEntry, TimelineQuery, page_path,
};
use crate::store::{Page, StoreError, StoreResult};

const SUMMARY_COLUMNS: &str =
    "id, session_id, first_seen_unix_nano, last_seen_unix_nano, user_id, entry_page, exit_page,
    page_views, events, errors, requests, logs, services, user_agent";

fn invalid_cursor() -> StoreError {
    StoreError::Conflict("invalid cursor".into())
}

fn sql_time(unix_nano: u64) -> i64 {
    unix_nano.min(i64::MAX as u64) as i64
}

fn count(row: &Row<'_>, index: usize) -> rusqlite::Result<u64> {
    Ok(row.get::<_, i64>(index)?.max(0) as u64)
}

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<SessionSummary> {
    let first_seen_unix_nano = count(row, 2)?;
    let last_seen_unix_nano = count(row, 3)?;
    let services: String = row.get(12)?;
    Ok(SessionSummary {
        session_id: row.get(1)?,
        first_seen_unix_nano,
        last_seen_unix_nano,
        duration_nanos: last_seen_unix_nano.saturating_sub(first_seen_unix_nano),
        user_id: row.get(4)?,
        entry_page: row.get(5)?,
        exit_page: row.get(6)?,
        page_views: count(row, 7)?,
        events: count(row, 8)?,
        errors: count(row, 9)?,
        requests: count(row, 10)?,
        logs: count(row, 11)?,
        services: serde_json::from_str(&services).unwrap_or_default(),
        user_agent: row.get(13)?,
    })
}

/// Sessions matching the query, newest start first, keyset cursor `start:id`.
pub(super) fn list_sessions(
    connection: &Connection,
    project_id: i64,
    query: &SessionQuery,
) -> StoreResult<Page<SessionSummary>> {
    let mut clauses = vec!["project_id = ?1".to_owned()];
    let mut values = vec![SqlValue::Integer(project_id)];
    let mut push = |clause: &str, value: SqlValue| {
        values.push(value);
        clauses.push(clause.replace("{}", &format!("?{}", values.len())));
    };
    if let Some(user) = &query.user {
        push("user_id = {}", SqlValue::Text(user.clone()));
    }
    if let Some(from) = query.from_unix_nano {
        push("first_seen_unix_nano >= {}", SqlValue::Integer(sql_time(from)));
    }
    if let Some(to) = query.to_unix_nano {
        push("first_seen_unix_nano <= {}", SqlValue::Integer(sql_time(to)));
    }
    match query.has_errors {
        Some(true) => clauses.push("errors > 0".to_owned()),
        Some(false) => clauses.push("errors = 0".to_owned()),
        None => {}
    }
    if let Some(cursor) = &query.cursor {
        let (time, id) = cursor.split_once(':').ok_or_else(invalid_cursor)?;
        let time: i64 = time.parse().map_err(|_| invalid_cursor())?;
        let id: i64 = id.parse().map_err(|_| invalid_cursor())?;
        values.push(SqlValue::Integer(time));
        values.push(SqlValue::Integer(id));
        let (time_index, id_index) = (values.len() - 1, values.len());
        clauses.push(format!("(first_seen_unix_nano, id) < (?{time_index}, ?{id_index})"));
    }
    let limit = query.limit.clamp(1, 1000);
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM sessions WHERE {} ORDER BY first_seen_unix_nano DESC, id DESC LIMIT {}",
        clauses.join(" AND "),
        limit + 1
    );
    let mut statement = connection.prepare_cached(&sql)?;
    let mut rows = statement.query(params_from_iter(values.iter()))?;
    let mut items = Vec::new();
    let mut positions = Vec::new();
    while let Some(row) = rows.next()? {
        positions.push((row.get::<_, i64>(2)?, row.get::<_, i64>(0)?));
        items.push(summary_from_row(row)?);
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        positions.get(limit - 1).map(|(time, id)| format!("{time}:{id}"))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Correlation counters of the days overlapping `[from, to]` (all days when absent).
pub(super) fn correlation(
    connection: &Connection,
    project_id: i64,
    from_unix_nano: Option<u64>,
    to_unix_nano: Option<u64>,
) -> StoreResult<CorrelationRate> {
    let from_day = from_unix_nano.map_or(0, |from| from - from % DAY_NANOS);
    let to_day = to_unix_nano.unwrap_or(i64::MAX as u64);
    let (server_spans, with_session): (i64, i64) = connection
        .prepare_cached(
            "SELECT coalesce(sum(server_spans), 0), coalesce(sum(with_session), 0) FROM session_correlation
             WHERE project_id = ?1 AND day_unix_nano >= ?2 AND day_unix_nano <= ?3",
        )?
        .query_row(params![project_id, sql_time(from_day), sql_time(to_day)], |row| Ok((row.get(0)?, row.get(1)?)))?;
    Ok(CorrelationRate::new(server_spans.max(0) as u64, with_session.max(0) as u64))
}

/// Where a timeline page starts: after (time, kind, row id); kind 0 is a product event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct TimelineKey {
    time: i64,
    kind: i64,
    rowid: i64,
}

impl TimelineKey {
    const START: TimelineKey = TimelineKey { time: i64::MIN, kind: i64::MIN, rowid: i64::MIN };

    fn parse(cursor: &str) -> StoreResult<Self> {
        let mut parts = cursor.split(':').map(|part| part.parse::<i64>().map_err(|_| invalid_cursor()));
        let (Some(time), Some(kind), Some(rowid), None) = (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(invalid_cursor());
        };
        Ok(Self { time: time?, kind: kind?, rowid: rowid? })
    }

    fn cursor(&self) -> String {
        format!("{}:{}:{}", self.time, self.kind, self.rowid)
    }
}

/// One session's summary and up to `timeline.limit` timeline entries after the cursor, oldest
/// first; `None` when the project has no such session.
pub(super) fn get_session(
    connection: &Connection,
    project_id: i64,
    session_id: &str,
    timeline: &TimelineQuery,
) -> StoreResult<Option<SessionDetail>> {
    let found = connection
        .prepare_cached(&format!("SELECT {SUMMARY_COLUMNS} FROM sessions WHERE project_id = ?1 AND session_id = ?2"))?
        .query_row(params![project_id, session_id], |row| Ok((row.get::<_, i64>(0)?, summary_from_row(row)?)))
        .optional()?;
    let Some((session_key, summary)) = found else {
        return Ok(None);
    };
    let after = match &timeline.cursor {
        Some(cursor) => TimelineKey::parse(cursor)?,
        None => TimelineKey::START,
    };
    let limit = timeline.limit.clamp(1, MAX_TIMELINE_ENTRIES);
    let mut entries = item_entries(connection, session_key, after, limit + 1)?;
    entries.extend(event_entries(connection, project_id, session_id, after, limit + 1)?);
    entries.sort_by_key(|(key, _)| *key);
    let next_cursor = if entries.len() > limit {
        entries.truncate(limit);
        entries.last().map(|(key, _)| key.cursor())
    } else {
        None
    };
    let timeline = entries.into_iter().map(|(_, entry)| entry).collect();
    Ok(Some(SessionDetail { summary, timeline, next_cursor }))
}

fn span_kind_name(span_kind: i32) -> &'static str {
    match span_kind {
        kind::INTERNAL => "internal",
        kind::SERVER => "server",
        kind::CLIENT => "client",
        kind::PRODUCER => "producer",
        kind::CONSUMER => "consumer",
        _ => "unspecified",
    }
}

fn status_name(code: i32) -> &'static str {
    match code {
        status_code::OK => "ok",
        status_code::ERROR => "error",
        _ => "unset",
    }
}

/// Requests, logs and errors after `after`, through `session_items` joined by row id. The
/// joins also compare times, so an item whose row retention deleted (and whose row id SQLite
/// might reuse) is skipped rather than shown as another row.
fn item_entries(
    connection: &Connection,
    session_key: i64,
    after: TimelineKey,
    limit: usize,
) -> StoreResult<Vec<(TimelineKey, TimelineEntry)>> {
    let mut statement = connection.prepare_cached(
        "SELECT i.timestamp_unix_nano, i.kind, i.item_rowid,
                s.id, s.name, s.service_name, s.kind, s.end_time_unix_nano, s.status_code, s.status_message,
                s.trace_id, s.span_id,
                coalesce(json_extract(s.attributes, '$.\"http.request.method\"'),
                         json_extract(s.attributes, '$.\"http.method\"')),
                json_extract(s.attributes, '$.\"http.route\"'),
                coalesce(json_extract(s.attributes, '$.\"http.response.status_code\"'),
                         json_extract(s.attributes, '$.\"http.status_code\"')),
                l.id, l.severity_number, l.severity_text, l.body, l.service_name, l.trace_id, l.span_id,
                e.id, e.issue_id, iss.title, e.level, e.event_id, e.service_name
         FROM session_items i
         LEFT JOIN spans s ON i.kind = 1 AND s.id = i.item_rowid AND s.start_time_unix_nano = i.timestamp_unix_nano
         LEFT JOIN logs l ON i.kind = 2 AND l.id = i.item_rowid AND l.timestamp_unix_nano = i.timestamp_unix_nano
         LEFT JOIN error_events e
            ON i.kind = 3 AND e.id = i.item_rowid AND e.timestamp_unix_nano = i.timestamp_unix_nano
         LEFT JOIN issues iss ON iss.id = e.issue_id
         WHERE i.session_key = ?1 AND (i.timestamp_unix_nano, i.kind, i.item_rowid) > (?2, ?3, ?4)
         ORDER BY i.timestamp_unix_nano, i.kind, i.item_rowid
         LIMIT ?5",
    )?;
    let mut rows = statement.query(params![session_key, after.time, after.kind, after.rowid, limit as i64])?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        let key = TimelineKey { time: row.get(0)?, kind: row.get(1)?, rowid: row.get(2)? };
        let time_unix_nano = key.time.max(0) as u64;
        let entry = match SessionItemKind::from_code(key.kind) {
            Some(SessionItemKind::Request) => {
                if row.get::<_, Option<i64>>(3)?.is_none() {
                    continue;
                }
                let end_time_unix_nano = count(row, 7)?;
                let (Ok(trace_id), Ok(span_id)) =
                    (TraceId::from_bytes(&row.get::<_, Vec<u8>>(10)?), SpanId::from_bytes(&row.get::<_, Vec<u8>>(11)?))
                else {
                    continue;
                };
                TimelineEntry::Request {
                    time_unix_nano,
                    end_time_unix_nano,
                    name: row.get(4)?,
                    service: row.get(5)?,
                    span_kind: span_kind_name(row.get(6)?),
                    duration_nanos: end_time_unix_nano.saturating_sub(time_unix_nano),
                    status: status_name(row.get(8)?),
                    status_message: row.get(9)?,
                    http_method: text_value(row.get(12)?),
                    http_route: text_value(row.get(13)?),
                    http_status_code: integer_value(row.get(14)?),
                    trace_id,
                    span_id,
                }
            }
            Some(SessionItemKind::Log) => {
                if row.get::<_, Option<i64>>(15)?.is_none() {
                    continue;
                }
                let body: String = row.get(18)?;
                TimelineEntry::Log {
                    time_unix_nano,
                    severity_number: row.get(16)?,
                    severity_text: row.get(17)?,
                    body: serde_json::from_str(&body).unwrap_or(Value::Null),
                    service: row.get(19)?,
                    trace_id: row.get::<_, Option<Vec<u8>>>(20)?.and_then(|bytes| TraceId::from_bytes(&bytes).ok()),
                    span_id: row.get::<_, Option<Vec<u8>>>(21)?.and_then(|bytes| SpanId::from_bytes(&bytes).ok()),
                }
            }
            Some(SessionItemKind::Error) => {
                if row.get::<_, Option<i64>>(22)?.is_none() {
                    continue;
                }
                TimelineEntry::Error {
                    time_unix_nano,
                    issue_id: row.get(23)?,
                    title: row.get::<_, Option<String>>(24)?.unwrap_or_default(),
                    level: row.get(25)?,
                    event_id: row.get(26)?,
                    service: row.get(27)?,
                }
            }
            None => continue,
        };
        entries.push((key, entry));
    }
    Ok(entries)
}

fn text_value(value: SqlValue) -> Option<String> {
    match value {
        SqlValue::Text(text) => Some(text),
        SqlValue::Integer(integer) => Some(integer.to_string()),
        _ => None,
    }
}

fn integer_value(value: SqlValue) -> Option<i64> {
    match value {
        SqlValue::Integer(integer) => Some(integer),
        SqlValue::Text(text) => text.parse().ok(),
        SqlValue::Real(real) => Some(real as i64),
        _ => None,
    }
}

/// Product events of the session after `after`, through `product_events_by_session`.
fn event_entries(
    connection: &Connection,
    project_id: i64,
    session_id: &str,
    after: TimelineKey,
    limit: usize,
) -> StoreResult<Vec<(TimelineKey, TimelineEntry)>> {
    // Events are kind 0: at the cursor's own time they were already returned unless the cursor
    // is an event, in which case those with a larger row id remain.
    let after_rowid = if after.kind == 0 {
        after.rowid
    } else if after.kind < 0 {
        i64::MIN
    } else {
        i64::MAX
    };
    let mut statement = connection.prepare_cached(
        "SELECT id, timestamp_unix_nano, event_id, event_type, event_name, properties FROM product_events
         WHERE project_id = ?1 AND session_id = ?2 AND (timestamp_unix_nano, id) > (?3, ?4)
         ORDER BY timestamp_unix_nano, id
         LIMIT ?5",
    )?;
    let mut rows = statement.query(params![project_id, session_id, after.time, after_rowid, limit as i64])?;
    let mut entries = Vec::new();
    while let Some(row) = rows.next()? {
        let key = TimelineKey { time: row.get(1)?, kind: 0, rowid: row.get(0)? };
        let properties: String = row.get(5)?;
        let properties = match serde_json::from_str(&properties) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        let entry = TimelineEntry::Event {
            time_unix_nano: key.time.max(0) as u64,
            event_id: row.get(2)?,
            event_type: row.get(3)?,
            name: row.get(4)?,
            page: page_path(&properties),
            properties,
        };
        entries.push((key, entry));
    }
    Ok(entries)
}

#[cfg(test)]
mod tests;
