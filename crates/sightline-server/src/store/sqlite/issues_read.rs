//! Reading issues: the filtered, sorted list with keyset cursors and text search (the trigram
//! index `issues_search`), the issue page (latest event, hourly occurrences, top tag values,
//! history), an issue's events, and error statistics.

use std::collections::BTreeMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, OptionalExtension, Row, params, params_from_iter};

use super::filter::{Filter, nanos};
use crate::store::errors::{
    ErrorEvent, ErrorStats, Issue, IssueDetail, IssueQuery, IssueSort, IssueStatus, Level, StatusHistoryEntry,
    StoredErrorEvent,
};
use crate::store::{Page, StoreError, StoreResult};

const HOUR_NANOS: u64 = 3_600_000_000_000;

const ISSUE_COLUMNS: &str = "i.id, i.title, i.culprit, i.exception_type, i.level, i.platform, i.status, i.substatus,
    i.first_seen_unix_nano, i.last_seen_unix_nano, i.event_count, i.user_count, i.session_count, i.last_release,
    i.resolved_in_release, i.resolved_at_unix_nano, i.ignore_until_event_count, i.ignore_until_unix_nano, i.primary_hash";

fn issue_from_row(row: &Row<'_>) -> rusqlite::Result<Issue> {
    let optional_u64 = |index: usize| -> rusqlite::Result<Option<u64>> {
        Ok(row.get::<_, Option<i64>>(index)?.map(|value| value as u64))
    };
    Ok(Issue {
        id: row.get(0)?,
        title: row.get(1)?,
        culprit: row.get(2)?,
        exception_type: row.get(3)?,
        level: Level::parse(&row.get::<_, String>(4)?).unwrap_or(Level::Error),
        platform: serde_json::from_value(serde_json::Value::String(row.get(5)?))
            .unwrap_or(sightline_grouping::Platform::Other),
        status: IssueStatus::parse(&row.get::<_, String>(6)?).unwrap_or(IssueStatus::Unresolved),
        substatus: row.get(7)?,
        first_seen_unix_nano: row.get::<_, i64>(8)? as u64,
        last_seen_unix_nano: row.get::<_, i64>(9)? as u64,
        event_count: row.get::<_, i64>(10)? as u64,
        user_count: row.get::<_, i64>(11)? as u64,
        session_count: row.get::<_, i64>(12)? as u64,
        last_release: row.get(13)?,
        resolved_in_release: row.get(14)?,
        resolved_at_unix_nano: optional_u64(15)?,
        ignore_until_event_count: optional_u64(16)?,
        ignore_until_unix_nano: optional_u64(17)?,
        primary_hash: row.get(18)?,
    })
}

/// The shortest text the trigram index of `issues_search` can answer: FTS5's trigram tokenizer
/// matches no row for a substring of fewer than 3 Unicode characters
/// (https://sqlite.org/fts5.html#the_trigram_tokenizer).
const TRIGRAM_MIN_CHARS: usize = 3;

/// `text` as one FTS5 string: in double quotes, inner double quotes doubled. User input is then
/// never FTS5 query syntax (`OR`, `NEAR(`, `*`, `-`, column filters), and with the trigram
/// tokenizer the string matches wherever it occurs as a substring
/// (https://sqlite.org/fts5.html#fts5_strings).
fn fts5_string_literal(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

fn invalid_cursor() -> StoreError {
    StoreError::Conflict("invalid cursor".into())
}

pub(super) fn list_issues(connection: &Connection, project_id: i64, query: &IssueQuery) -> StoreResult<Page<Issue>> {
    let limit = page_size(query);
    let (sql, values) = list_issues_sql(project_id, query)?;
    let mut statement = connection.prepare(&sql)?;
    let mut items =
        statement.query_map(params_from_iter(values.iter()), issue_from_row)?.collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| {
            let sort_value = match query.sort {
                IssueSort::LastSeen => last.last_seen_unix_nano,
                IssueSort::Count => last.event_count,
                IssueSort::Users => last.user_count,
            };
            format!("{sort_value}:{}", last.id)
        })
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// Issues per page: the query's limit, within 1..=1000.
fn page_size(query: &IssueQuery) -> usize {
    query.limit.clamp(1, 1000)
}

/// The list's SQL (one row more than the page, to know whether another follows) and its
/// parameters. Separate from running it so tests can check its query plan.
fn list_issues_sql(project_id: i64, query: &IssueQuery) -> StoreResult<(String, Vec<SqlValue>)> {
    let mut filter = Filter::default();
    filter.push("i.project_id = {}", [SqlValue::Integer(project_id)]);
    let mut push = |clause: &str, values: Vec<SqlValue>| filter.push(clause, values);
    if let Some(status) = query.status {
        push("i.status = {}", vec![SqlValue::Text(status.as_str().to_owned())]);
    }
    if let Some(level) = query.level {
        push("i.level = {}", vec![SqlValue::Text(level.as_str().to_owned())]);
    }
    for (key, value) in &query.tags {
        push(
            "EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = i.id AND t.key = {} AND t.value = {})",
            vec![SqlValue::Text(key.clone()), SqlValue::Text(value.clone())],
        );
    }
    if let Some(user) = &query.user {
        push(
            "EXISTS (SELECT 1 FROM issue_users u WHERE u.issue_id = i.id AND u.value = {})",
            vec![SqlValue::Text(user.clone())],
        );
    }
    if let Some(from) = query.from_unix_nano {
        push("i.last_seen_unix_nano >= {}", vec![nanos(from)]);
    }
    if let Some(to) = query.to_unix_nano {
        push("i.first_seen_unix_nano <= {}", vec![nanos(to)]);
    }
    if let Some(text) = &query.text {
        if text.chars().count() >= TRIGRAM_MIN_CHARS {
            // The subquery form keeps rare and common texts cheap: SQLite runs it once into a
            // list (with a Bloom filter), then walks the sort index as for any list and stops at a
            // full page. Driving the join from the FTS side instead is faster for one match but
            // twice as slow for tens of thousands (BENCHMARKS.md, "the text search").
            push(
                "i.id IN (SELECT rowid FROM issues_search WHERE issues_search MATCH {})",
                vec![SqlValue::Text(fts5_string_literal(text))],
            );
        } else {
            // Shorter texts have no trigram to look up, so they keep the scan. It stops at a full
            // page, which comes quickly for a text this short unless it is rare.
            push(
                "(instr(lower(i.title), lower({})) > 0 OR instr(lower(coalesce(i.culprit, '')), lower({})) > 0)",
                vec![SqlValue::Text(text.clone()), SqlValue::Text(text.clone())],
            );
        }
    }
    let sort_column = match query.sort {
        IssueSort::LastSeen => "i.last_seen_unix_nano",
        IssueSort::Count => "i.event_count",
        IssueSort::Users => "i.user_count",
    };
    if let Some(cursor) = &query.cursor {
        let (sort_value, id) = cursor.split_once(':').ok_or_else(invalid_cursor)?;
        let sort_value: i64 = sort_value.parse().map_err(|_| invalid_cursor())?;
        let id: i64 = id.parse().map_err(|_| invalid_cursor())?;
        push(
            &format!("({sort_column} < {{}} OR ({sort_column} = {{}} AND i.id < {{}}))"),
            vec![SqlValue::Integer(sort_value), SqlValue::Integer(sort_value), SqlValue::Integer(id)],
        );
    }
    let sql = format!(
        "SELECT {ISSUE_COLUMNS} FROM issues i {} ORDER BY {sort_column} DESC, i.id DESC LIMIT {}",
        filter.where_sql(),
        page_size(query) + 1
    );
    Ok((sql, filter.values))
}

/// Joins each event row `e` with its stack `st` (migration 21), NULL for events stored whole.
const EVENT_STACK_JOIN: &str = "LEFT JOIN error_stacks st ON st.issue_id = e.issue_id AND st.hash = e.stack_hash";

fn find_issue(connection: &Connection, project_id: i64, issue_id: i64) -> StoreResult<Option<Issue>> {
    Ok(connection
        .prepare_cached(&format!("SELECT {ISSUE_COLUMNS} FROM issues i WHERE i.id = ?1 AND i.project_id = ?2"))?
        .query_row(params![issue_id, project_id], issue_from_row)
        .optional()?)
}

/// Reads an event from `issue_id, body, …, stack body` ([`EVENT_STACK_JOIN`]): the stack's
/// body is the row's last column, NULL for events stored whole.
fn event_from_row(row: &Row<'_>) -> rusqlite::Result<Option<StoredErrorEvent>> {
    let stack = row.get_ref(row.as_ref().column_count() - 1)?.as_blob_or_null()?;
    let event = match row.get_ref(1)? {
        rusqlite::types::ValueRef::Blob(body) | rusqlite::types::ValueRef::Text(body) => {
            ErrorEvent::from_stored_parts(body, stack)
        }
        _ => None,
    };
    Ok(event.map(|event| StoredErrorEvent { issue_id: row.get(0).unwrap_or(0), event }))
}

pub(super) fn get_issue(
    connection: &Connection,
    project_id: i64,
    issue_id: i64,
    hours: u32,
    now_unix_nano: u64,
) -> StoreResult<Option<IssueDetail>> {
    let Some(issue) = find_issue(connection, project_id, issue_id)? else {
        return Ok(None);
    };
    let latest_event = connection
        .prepare_cached(&format!(
            "SELECT e.issue_id, e.body, st.body FROM error_events e {EVENT_STACK_JOIN}
             WHERE e.issue_id = ?1 ORDER BY e.timestamp_unix_nano DESC, e.id DESC LIMIT 1"
        ))?
        .query_row([issue_id], event_from_row)
        .optional()?
        .flatten();

    let hours = u64::from(hours.clamp(1, 24 * 90));
    let end_hour = now_unix_nano - now_unix_nano % HOUR_NANOS;
    let start_hour = end_hour.saturating_sub((hours - 1) * HOUR_NANOS);
    let mut counts: BTreeMap<u64, u64> = (0..hours).map(|index| (start_hour + index * HOUR_NANOS, 0)).collect();
    let mut statement = connection.prepare_cached(
        "SELECT hour_unix_nano, count FROM issue_hourly WHERE issue_id = ?1 AND hour_unix_nano >= ?2 ORDER BY hour_unix_nano",
    )?;
    for row in statement.query_map(params![issue_id, start_hour as i64], |row| {
        Ok((row.get::<_, i64>(0)? as u64, row.get::<_, i64>(1)? as u64))
    })? {
        let (hour, count) = row?;
        *counts.entry(hour).or_insert(0) += count;
    }

    let mut top_tags: BTreeMap<String, Vec<(String, u64)>> = BTreeMap::new();
    let mut statement = connection.prepare_cached(
        "SELECT key, value, count FROM issue_tags WHERE issue_id = ?1 ORDER BY key, count DESC, value",
    )?;
    for row in statement.query_map([issue_id], |row| {
        Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?, row.get::<_, i64>(2)? as u64))
    })? {
        let (key, value, count) = row?;
        let values = top_tags.entry(key).or_default();
        if values.len() < 10 {
            values.push((value, count));
        }
    }

    let mut statement = connection.prepare_cached(
        "SELECT status, substatus, reason, actor, release, at_unix_nano FROM issue_status_history WHERE issue_id = ?1 ORDER BY id",
    )?;
    let history = statement
        .query_map([issue_id], |row| {
            Ok(StatusHistoryEntry {
                status: IssueStatus::parse(&row.get::<_, String>(0)?).unwrap_or(IssueStatus::Unresolved),
                substatus: row.get(1)?,
                reason: row.get(2)?,
                actor: row.get(3)?,
                release: row.get(4)?,
                at_unix_nano: row.get::<_, i64>(5)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(Some(IssueDetail { issue, latest_event, occurrences_per_hour: counts.into_iter().collect(), top_tags, history }))
}

pub(super) fn issue_events(
    connection: &Connection,
    project_id: i64,
    issue_id: i64,
    limit: usize,
    cursor: Option<&str>,
) -> StoreResult<Option<Page<StoredErrorEvent>>> {
    if find_issue(connection, project_id, issue_id)?.is_none() {
        return Ok(None);
    }
    let (before_time, before_id) = match cursor {
        Some(cursor) => {
            let (time, id) = cursor.split_once(':').ok_or_else(invalid_cursor)?;
            (time.parse::<i64>().map_err(|_| invalid_cursor())?, id.parse::<i64>().map_err(|_| invalid_cursor())?)
        }
        None => (i64::MAX, i64::MAX),
    };
    let limit = limit.clamp(1, 1000);
    let mut statement = connection.prepare_cached(&format!(
        "SELECT e.issue_id, e.body, e.timestamp_unix_nano, e.id, st.body FROM error_events e {EVENT_STACK_JOIN}
             WHERE e.issue_id = ?1 AND (e.timestamp_unix_nano < ?2 OR (e.timestamp_unix_nano = ?2 AND e.id < ?3))
             ORDER BY e.timestamp_unix_nano DESC, e.id DESC LIMIT ?4"
    ))?;
    let mut rows = statement.query(params![issue_id, before_time, before_id, (limit + 1) as i64])?;
    let mut items = Vec::new();
    let mut positions = Vec::new();
    while let Some(row) = rows.next()? {
        positions.push((row.get::<_, i64>(2)?, row.get::<_, i64>(3)?));
        if let Some(event) = event_from_row(row)? {
            items.push(event);
        }
    }
    let next_cursor = if positions.len() > limit {
        items.truncate(limit);
        positions.get(limit - 1).map(|(time, id)| format!("{time}:{id}"))
    } else {
        None
    };
    Ok(Some(Page { items, next_cursor }))
}

pub(super) fn error_stats(
    connection: &Connection,
    project_id: i64,
    from_unix_nano: u64,
    to_unix_nano: u64,
    service: Option<&str>,
) -> StoreResult<ErrorStats> {
    let from = from_unix_nano.min(i64::MAX as u64) as i64;
    let to = to_unix_nano.min(i64::MAX as u64) as i64;
    let mut by_level = BTreeMap::new();
    let mut by_service = BTreeMap::new();
    let mut trend: BTreeMap<u64, u64> = BTreeMap::new();
    let mut issues = std::collections::HashSet::new();
    let mut total_events = 0u64;
    let start_hour = from_unix_nano - from_unix_nano % HOUR_NANOS;
    let mut hour = start_hour;
    while hour <= to_unix_nano && trend.len() < 24 * 90 {
        trend.insert(hour, 0);
        hour += HOUR_NANOS;
    }
    let mut statement = connection.prepare_cached(
        "SELECT level, service_name, timestamp_unix_nano, issue_id FROM error_events
         WHERE project_id = ?1 AND timestamp_unix_nano BETWEEN ?2 AND ?3 AND (?4 IS NULL OR service_name = ?4)",
    )?;
    let mut rows = statement.query(params![project_id, from, to, service])?;
    while let Some(row) = rows.next()? {
        let level: String = row.get(0)?;
        let service_name: String = row.get(1)?;
        let timestamp = row.get::<_, i64>(2)? as u64;
        issues.insert(row.get::<_, i64>(3)?);
        total_events += 1;
        *by_level.entry(level).or_insert(0) += 1;
        *by_service.entry(service_name).or_insert(0) += 1;
        *trend.entry(timestamp - timestamp % HOUR_NANOS).or_insert(0) += 1;
    }
    let new_issues: i64 = connection
        .prepare_cached(
            "SELECT count(*) FROM issues i WHERE i.project_id = ?1 AND i.first_seen_unix_nano BETWEEN ?2 AND ?3
             AND (?4 IS NULL OR EXISTS (SELECT 1 FROM issue_tags t WHERE t.issue_id = i.id AND t.key = 'service' AND t.value = ?4))",
        )?
        .query_row(params![project_id, from, to, service], |row| row.get(0))?;
    Ok(ErrorStats {
        total_events,
        issues_with_events: issues.len() as u64,
        new_issues: new_issues as u64,
        by_level,
        by_service,
        trend: trend.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests;
