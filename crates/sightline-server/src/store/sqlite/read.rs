//! The read path: trace lookup through `trace_span_ranges`, searches over summaries and logs
//! with keyset cursors, metric points and counters.

use std::collections::HashMap;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params, params_from_iter};
use sightline_model::metric::NumberValue;
use sightline_model::{
    Attributes, LogRecord, MetricKind, MetricPoint, PointValue, Resource, Scope, Span, SpanId, TraceId,
};

use super::filter::{Filter, nanos};
use crate::store::{
    LogQuery, MetricDescription, OutcomeCount, Page, ServiceStats, StoreError, StoreResult, StoredLog,
    StoredMetricPoint, StoredSpan, TraceQuery, TraceSummary,
};

/// Parses resources and scopes once per id while reading many rows.
#[derive(Default)]
struct BodyCache {
    resources: HashMap<i64, Resource>,
    scopes: HashMap<i64, Scope>,
}

impl BodyCache {
    fn resource(&mut self, id: i64, body: &str) -> Resource {
        self.resources.entry(id).or_insert_with(|| serde_json::from_str(body).unwrap_or_default()).clone()
    }

    fn scope(&mut self, id: i64, body: &str) -> Scope {
        self.scopes.entry(id).or_insert_with(|| serde_json::from_str(body).unwrap_or_default()).clone()
    }
}

fn optional_id<T>(bytes: Option<Vec<u8>>, parse: fn(&[u8]) -> Result<T, sightline_model::ids::IdError>) -> Option<T> {
    bytes.and_then(|bytes| parse(&bytes).ok())
}

fn blob_to_trace_id(bytes: Vec<u8>) -> rusqlite::Result<TraceId> {
    TraceId::from_bytes(&bytes)
        .map_err(|error| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(error)))
}

fn blob_to_span_id(bytes: Vec<u8>) -> rusqlite::Result<SpanId> {
    SpanId::from_bytes(&bytes)
        .map_err(|error| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Blob, Box::new(error)))
}

const SPAN_COLUMNS: &str = "s.trace_id, s.span_id, s.parent_span_id, s.trace_state, s.flags, s.name, s.kind,
    s.start_time_unix_nano, s.end_time_unix_nano, s.status_code, s.status_message, s.attributes,
    s.dropped_attributes_count, s.events, s.dropped_events_count, s.links, s.dropped_links_count,
    s.resource_id, r.body, s.scope_id, sc.body";

fn span_from_row(row: &Row<'_>, cache: &mut BodyCache) -> rusqlite::Result<StoredSpan> {
    let attributes: String = row.get(11)?;
    let events: String = row.get(13)?;
    let links: String = row.get(15)?;
    let span = Span {
        trace_id: blob_to_trace_id(row.get(0)?)?,
        span_id: blob_to_span_id(row.get(1)?)?,
        parent_span_id: optional_id(row.get(2)?, SpanId::from_bytes),
        trace_state: row.get(3)?,
        flags: row.get(4)?,
        name: row.get(5)?,
        kind: row.get(6)?,
        start_time_unix_nano: row.get::<_, i64>(7)? as u64,
        end_time_unix_nano: row.get::<_, i64>(8)? as u64,
        status_code: row.get(9)?,
        status_message: row.get(10)?,
        attributes: Attributes::from_json_str(&attributes),
        dropped_attributes_count: row.get(12)?,
        events: serde_json::from_str(&events).unwrap_or_default(),
        dropped_events_count: row.get(14)?,
        links: serde_json::from_str(&links).unwrap_or_default(),
        dropped_links_count: row.get(16)?,
    };
    let resource = cache.resource(row.get(17)?, &row.get::<_, String>(18)?);
    let scope = cache.scope(row.get(19)?, &row.get::<_, String>(20)?);
    Ok(StoredSpan { span, resource, scope })
}

/// One trace's spans through its rowid ranges. `+s.project_id` keeps SQLite from reading the
/// spans through `spans_by_time (project_id, ...)` (which the ORDER BY tempts it to, without
/// ANALYZE statistics): that plan walks every span of the project, ≈ 10 s at 1 M spans, instead
/// of the few rowids of the trace's ranges.
fn get_trace_sql() -> String {
    format!(
        "SELECT {SPAN_COLUMNS}
         FROM trace_span_ranges t
         JOIN spans s ON s.id BETWEEN t.first_span_rowid AND t.last_span_rowid
         JOIN resources r ON r.id = s.resource_id
         JOIN scopes sc ON sc.id = s.scope_id
         WHERE t.trace_id = ?1 AND t.project_id = ?2 AND s.trace_id = ?1 AND +s.project_id = ?2
         ORDER BY s.start_time_unix_nano, s.id"
    )
}

pub(super) fn get_trace(
    connection: &Connection,
    project_id: i64,
    trace_id: &TraceId,
) -> StoreResult<Option<Vec<StoredSpan>>> {
    let mut statement = connection.prepare_cached(&get_trace_sql())?;
    let mut cache = BodyCache::default();
    let mut rows = statement.query(params![&trace_id.0[..], project_id])?;
    let mut spans = Vec::new();
    while let Some(row) = rows.next()? {
        spans.push(span_from_row(row, &mut cache)?);
    }
    Ok(if spans.is_empty() { None } else { Some(spans) })
}

/// JSON path for a key: `$."key"`. Keys holding `"` or `\` cannot be addressed and match nothing.
fn json_path(prefix: &str, key: &str) -> Option<String> {
    if key.contains('"') || key.contains('\\') {
        return None;
    }
    Some(format!("{prefix}\"{key}\""))
}

/// The SQL values an attribute given as text in a URL may be stored as: the text itself and,
/// when it reads as one, the number or boolean (JSON true/false come out of SQLite as 1/0).
fn attribute_candidates(text: &str) -> (SqlValue, SqlValue) {
    let typed = if let Ok(integer) = text.parse::<i64>() {
        SqlValue::Integer(integer)
    } else if let Ok(double) = text.parse::<f64>() {
        SqlValue::Real(double)
    } else if text == "true" {
        SqlValue::Integer(1)
    } else if text == "false" {
        SqlValue::Integer(0)
    } else {
        SqlValue::Text(text.to_owned())
    };
    (typed, SqlValue::Text(text.to_owned()))
}

fn parse_cursor(cursor: &str) -> StoreResult<(i64, String)> {
    let (time, rest) = cursor.split_once(':').ok_or_else(|| StoreError::Conflict("invalid cursor".into()))?;
    let time = time.parse::<i64>().map_err(|_| StoreError::Conflict("invalid cursor".into()))?;
    Ok((time, rest.to_owned()))
}

pub(super) fn search_traces(
    connection: &Connection,
    project_id: i64,
    query: &TraceQuery,
) -> StoreResult<Page<TraceSummary>> {
    let mut filter = Filter::default();
    filter.push("t.project_id = {}", [SqlValue::Integer(project_id)]);
    if let Some(service) = &query.service {
        filter.push("t.services LIKE {} ESCAPE '\\'", [SqlValue::Text(format!("%|{}|%", escape_like(service)))]);
    }
    if let Some(operation) = &query.operation {
        filter.push("t.root_span_name = {}", [SqlValue::Text(operation.clone())]);
    }
    if query.errors_only {
        filter.push("t.error_count > 0", []);
    }
    if let Some(min_duration) = query.min_duration_nanos {
        filter.push("t.end_time_unix_nano - t.start_time_unix_nano >= {}", [nanos(min_duration)]);
    }
    if let Some(from) = query.from_unix_nano {
        filter.push("t.start_time_unix_nano >= {}", [nanos(from)]);
    }
    if let Some(to) = query.to_unix_nano {
        filter.push("t.start_time_unix_nano <= {}", [nanos(to)]);
    }
    for (key, value) in &query.attributes {
        let (Some(span_path), Some(resource_path)) = (json_path("$.", key), json_path("$.attributes.", key)) else {
            return Ok(Page { items: Vec::new(), next_cursor: None });
        };
        let (typed, text) = attribute_candidates(value);
        let mut clause = String::from(
            "t.trace_id IN (SELECT s.trace_id FROM spans s JOIN resources r ON r.id = s.resource_id WHERE s.project_id = {}",
        );
        let mut values = vec![SqlValue::Integer(project_id)];
        // Every span of a trace starts at or after the trace start, so `from` narrows the scan
        // safely; `to` bounds the trace start only, and a matching span may start after it.
        if let Some(from) = query.from_unix_nano {
            clause.push_str(" AND s.start_time_unix_nano >= {}");
            values.push(nanos(from));
        }
        clause.push_str(" AND (json_extract(s.attributes, {}) IN ({}, {}) OR json_extract(r.body, {}) IN ({}, {})))");
        values.extend([
            SqlValue::Text(span_path),
            typed.clone(),
            text.clone(),
            SqlValue::Text(resource_path),
            typed,
            text,
        ]);
        filter.push(&clause, values);
    }
    if let Some(cursor) = &query.cursor {
        let (time, trace_hex) = parse_cursor(cursor)?;
        let trace_id = TraceId::from_hex(&trace_hex).map_err(|_| StoreError::Conflict("invalid cursor".into()))?;
        filter.push(
            "(t.start_time_unix_nano < {} OR (t.start_time_unix_nano = {} AND t.trace_id < {}))",
            [SqlValue::Integer(time), SqlValue::Integer(time), SqlValue::Blob(trace_id.0.to_vec())],
        );
    }
    let limit = query.limit.clamp(1, 1000);
    let sql = format!(
        "SELECT t.trace_id, t.start_time_unix_nano, t.end_time_unix_nano, t.root_service_name, t.root_span_name,
                t.span_count, t.error_count, t.services
         FROM trace_summaries t {} ORDER BY t.start_time_unix_nano DESC, t.trace_id DESC LIMIT {}",
        filter.where_sql(),
        limit + 1
    );
    let mut statement = connection.prepare(&sql)?;
    let mut items = statement
        .query_map(params_from_iter(filter.values.iter()), |row| {
            let start = row.get::<_, i64>(1)? as u64;
            let end = row.get::<_, i64>(2)? as u64;
            let error_count = row.get::<_, i64>(6)? as u64;
            let services: String = row.get(7)?;
            Ok(TraceSummary {
                trace_id: blob_to_trace_id(row.get(0)?)?,
                start_time_unix_nano: start,
                end_time_unix_nano: end,
                duration_nanos: end.saturating_sub(start),
                root_service_name: row.get(3)?,
                root_span_name: row.get(4)?,
                span_count: row.get::<_, i64>(5)? as u64,
                error_count,
                has_error: error_count > 0,
                services: services.split('|').filter(|name| !name.is_empty()).map(str::to_owned).collect(),
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        items.last().map(|last| format!("{}:{}", last.start_time_unix_nano, last.trace_id.to_hex()))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_")
}

pub(super) fn search_logs(connection: &Connection, project_id: i64, query: &LogQuery) -> StoreResult<Page<StoredLog>> {
    let mut filter = Filter::default();
    filter.push("l.project_id = {}", [SqlValue::Integer(project_id)]);
    if let Some(from) = query.from_unix_nano {
        filter.push("l.timestamp_unix_nano >= {}", [nanos(from)]);
    }
    if let Some(to) = query.to_unix_nano {
        filter.push("l.timestamp_unix_nano <= {}", [nanos(to)]);
    }
    if let Some(severity_min) = query.severity_min {
        filter.push("l.severity_number >= {}", [SqlValue::Integer(severity_min.into())]);
    }
    if let Some(trace_id) = &query.trace_id {
        filter.push("l.trace_id = {}", [SqlValue::Blob(trace_id.0.to_vec())]);
    }
    if let Some(service) = &query.service {
        filter.push("l.service_name = {}", [SqlValue::Text(service.clone())]);
    }
    if let Some(text) = &query.text {
        // Bodies are stored as JSON; search a string body's text, not its escaped form.
        filter.push("instr(lower(json_extract(l.body, '$')), lower({})) > 0", [SqlValue::Text(text.clone())]);
    }
    if let Some(cursor) = &query.cursor {
        let (time, id) = parse_cursor(cursor)?;
        let id: i64 = id.parse().map_err(|_| StoreError::Conflict("invalid cursor".into()))?;
        filter.push(
            "(l.timestamp_unix_nano < {} OR (l.timestamp_unix_nano = {} AND l.id < {}))",
            [SqlValue::Integer(time), SqlValue::Integer(time), SqlValue::Integer(id)],
        );
    }
    let limit = query.limit.clamp(1, 1000);
    let sql = format!(
        "SELECT l.id, l.time_unix_nano, l.observed_time_unix_nano, l.severity_number, l.severity_text, l.body,
                l.attributes, l.dropped_attributes_count, l.flags, l.trace_id, l.span_id, l.event_name,
                l.resource_id, r.body, l.scope_id, sc.body, l.timestamp_unix_nano,
                l.stack_event_id, e.body, e.issue_id, e.stack_hash, st.body
         FROM logs l JOIN resources r ON r.id = l.resource_id JOIN scopes sc ON sc.id = l.scope_id
         LEFT JOIN error_events e ON e.id = l.stack_event_id
         LEFT JOIN error_stacks st ON st.issue_id = e.issue_id AND st.hash = e.stack_hash
         {} ORDER BY l.timestamp_unix_nano DESC, l.id DESC LIMIT {}",
        filter.where_sql(),
        limit + 1
    );
    let mut statement = connection.prepare(&sql)?;
    let mut cache = BodyCache::default();
    let mut templates = HashMap::new();
    let mut rows = statement.query(params_from_iter(filter.values.iter()))?;
    let mut items = Vec::new();
    let mut positions = Vec::new();
    while let Some(row) = rows.next()? {
        let body: String = row.get(5)?;
        // Text, or a compressed frame when long (`LogJson`); a frame that does not decode reads as
        // no attributes rather than failing the whole page.
        let mut attributes = match row.get_ref(6)? {
            rusqlite::types::ValueRef::Text(stored) | rusqlite::types::ValueRef::Blob(stored) => {
                crate::store::compression::json_text(stored)
                    .map(|text| Attributes::from_json_str(&text))
                    .unwrap_or_default()
            }
            _ => Attributes::default(),
        };
        if row.get::<_, Option<i64>>(17)?.is_some() {
            // The stack trace is the error event's (migration 22); a missing event leaves `null`.
            if let Some(raw) = shared_stacktrace(row, &mut templates)? {
                attributes.0.insert(crate::store::STACKTRACE_KEY.to_owned(), serde_json::Value::String(raw));
            }
        }
        let record = LogRecord {
            time_unix_nano: row.get::<_, i64>(1)? as u64,
            observed_time_unix_nano: row.get::<_, i64>(2)? as u64,
            severity_number: row.get(3)?,
            severity_text: row.get(4)?,
            body: serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
            attributes,
            dropped_attributes_count: row.get(7)?,
            flags: row.get(8)?,
            trace_id: optional_id(row.get(9)?, TraceId::from_bytes),
            span_id: optional_id(row.get(10)?, SpanId::from_bytes),
            event_name: row.get(11)?,
        };
        let resource = cache.resource(row.get(12)?, &row.get::<_, String>(13)?);
        let scope = cache.scope(row.get(14)?, &row.get::<_, String>(15)?);
        positions.push((row.get::<_, i64>(16)?, row.get::<_, i64>(0)?));
        items.push(StoredLog { record, resource, scope });
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        positions.get(limit - 1).map(|(time, id)| format!("{time}:{id}"))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}

/// A stack template read once per page for the log rows that share it: (issue id, stack hash).
type PageTemplates = HashMap<(i64, Vec<u8>), Option<crate::store::errors::StackTemplate>>;

/// The `exception.stacktrace` a log row left to its error event (columns 18–21 of
/// [`search_logs`]: event body, issue id, stack hash, stack body); `None` when the event is gone
/// or does not decode.
fn shared_stacktrace(row: &rusqlite::Row<'_>, templates: &mut PageTemplates) -> rusqlite::Result<Option<String>> {
    let Some(body) = row.get::<_, Option<Vec<u8>>>(18)? else { return Ok(None) };
    let template = match (row.get::<_, Option<i64>>(19)?, row.get::<_, Option<Vec<u8>>>(20)?) {
        (Some(issue_id), Some(hash)) => {
            let stack = row.get_ref(21)?.as_blob_or_null()?;
            templates
                .entry((issue_id, hash))
                .or_insert_with(|| stack.and_then(crate::store::errors::StackTemplate::from_stored))
                .as_ref()
        }
        _ => None,
    };
    Ok(crate::store::errors::ErrorEvent::raw_stacktrace_of_stored(&body, template))
}

fn metric_kind(type_name: &str, temporality: i32, monotonic: bool) -> MetricKind {
    match type_name {
        "sum" => MetricKind::Sum { aggregation_temporality: temporality, is_monotonic: monotonic },
        "histogram" => MetricKind::Histogram { aggregation_temporality: temporality },
        "exponential_histogram" => MetricKind::ExponentialHistogram { aggregation_temporality: temporality },
        "summary" => MetricKind::Summary,
        _ => MetricKind::Gauge,
    }
}

pub(super) fn list_metrics(connection: &Connection, project_id: i64) -> StoreResult<Vec<MetricDescription>> {
    let mut statement = connection.prepare_cached(
        "SELECT name, type, aggregation_temporality, is_monotonic, unit, description, last_seen_unix_nano
         FROM metrics WHERE project_id = ?1 ORDER BY name, type",
    )?;
    let metrics = statement
        .query_map([project_id], |row| {
            Ok(MetricDescription {
                name: row.get(0)?,
                kind: metric_kind(&row.get::<_, String>(1)?, row.get(2)?, row.get(3)?),
                unit: row.get(4)?,
                description: row.get(5)?,
                last_seen_unix_nano: row.get::<_, i64>(6)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(metrics)
}

pub(super) fn metric_points(
    connection: &Connection,
    project_id: i64,
    name: &str,
    from_unix_nano: u64,
    to_unix_nano: u64,
    max_points: usize,
) -> StoreResult<Vec<StoredMetricPoint>> {
    metric_points_of(connection, project_id, name, None, from_unix_nano, to_unix_nano, max_points)
}

/// Like [`metric_points`], but only the points one service sent.
pub(super) fn service_metric_points(
    connection: &Connection,
    project_id: i64,
    service_name: &str,
    name: &str,
    from_unix_nano: u64,
    to_unix_nano: u64,
    max_points: usize,
) -> StoreResult<Vec<StoredMetricPoint>> {
    metric_points_of(connection, project_id, name, Some(service_name), from_unix_nano, to_unix_nano, max_points)
}

fn metric_points_of(
    connection: &Connection,
    project_id: i64,
    name: &str,
    service_name: Option<&str>,
    from_unix_nano: u64,
    to_unix_nano: u64,
    max_points: usize,
) -> StoreResult<Vec<StoredMetricPoint>> {
    let mut statement = connection.prepare_cached(
        "SELECT m.type, m.aggregation_temporality, m.is_monotonic, p.service_name, p.resource_id, r.body,
                p.attributes, p.start_time_unix_nano, p.time_unix_nano, p.flags, p.value, p.exemplars
         FROM metrics m
         JOIN metric_points p ON p.metric_id = m.id
         JOIN resources r ON r.id = p.resource_id
         WHERE m.project_id = ?1 AND m.name = ?2 AND p.time_unix_nano BETWEEN ?3 AND ?4
           AND (?6 IS NULL OR p.service_name = ?6)
         ORDER BY p.time_unix_nano, p.id LIMIT ?5",
    )?;
    let mut cache = BodyCache::default();
    let mut rows = statement.query(params![
        project_id,
        name,
        from_unix_nano.min(i64::MAX as u64) as i64,
        to_unix_nano.min(i64::MAX as u64) as i64,
        max_points as i64,
        service_name
    ])?;
    let mut points = Vec::new();
    while let Some(row) = rows.next()? {
        let attributes: String = row.get(6)?;
        let value: String = row.get(10)?;
        let exemplars: String = row.get(11)?;
        points.push(StoredMetricPoint {
            kind: metric_kind(&row.get::<_, String>(0)?, row.get(1)?, row.get(2)?),
            service_name: row.get(3)?,
            resource: cache.resource(row.get(4)?, &row.get::<_, String>(5)?),
            point: MetricPoint {
                attributes: Attributes::from_json_str(&attributes),
                start_time_unix_nano: row.get::<_, i64>(7)? as u64,
                time_unix_nano: row.get::<_, i64>(8)? as u64,
                flags: row.get(9)?,
                value: serde_json::from_str(&value)
                    .unwrap_or(PointValue::Number { value: NumberValue::Double(f64::NAN) }),
                exemplars: serde_json::from_str(&exemplars).unwrap_or_default(),
            },
        });
    }
    Ok(points)
}

pub(super) fn list_services(connection: &Connection, project_id: i64) -> StoreResult<Vec<ServiceStats>> {
    let mut statement = connection.prepare_cached(
        "SELECT service_name, span_count, log_count, metric_point_count, last_seen_unix_nano
         FROM service_stats WHERE project_id = ?1 ORDER BY service_name",
    )?;
    let services = statement
        .query_map([project_id], |row| {
            Ok(ServiceStats {
                service_name: row.get(0)?,
                span_count: row.get::<_, i64>(1)? as u64,
                log_count: row.get::<_, i64>(2)? as u64,
                metric_point_count: row.get::<_, i64>(3)? as u64,
                last_seen_unix_nano: row.get::<_, i64>(4)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(services)
}

pub(super) fn outcomes(connection: &Connection, project_id: i64) -> StoreResult<Vec<OutcomeCount>> {
    let mut statement = connection
        .prepare_cached("SELECT signal, outcome, count FROM outcomes WHERE project_id = ?1 ORDER BY signal, outcome")?;
    let outcomes = statement
        .query_map([project_id], |row| {
            Ok(OutcomeCount { signal: row.get(0)?, outcome: row.get(1)?, count: row.get::<_, i64>(2)? as u64 })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(outcomes)
}

pub(super) fn ingest_minutes(
    connection: &Connection,
    project_id: i64,
    from_unix_nano: u64,
) -> StoreResult<Vec<crate::store::IngestMinute>> {
    let mut statement = connection.prepare_cached(
        "SELECT signal, minute_unix_nano, accepted FROM ingest_minutes
         WHERE project_id = ?1 AND minute_unix_nano >= ?2 ORDER BY signal, minute_unix_nano",
    )?;
    let minutes = statement
        .query_map(params![project_id, from_unix_nano as i64], |row| {
            Ok(crate::store::IngestMinute {
                signal: row.get(0)?,
                minute_unix_nano: row.get::<_, i64>(1)? as u64,
                accepted: row.get::<_, i64>(2)? as u64,
            })
        })?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(minutes)
}

#[cfg(test)]
mod shared_stack_tests;

#[cfg(test)]
mod plan_tests {
    use super::get_trace_sql;

    #[test]
    fn a_trace_is_read_through_its_rowid_ranges_not_the_project_time_index() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let _store = crate::store::sqlite::SqliteStore::open(&directory.path().join("t.db")).expect("open");
        let connection = rusqlite::Connection::open(directory.path().join("t.db")).expect("connection");
        let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {}", get_trace_sql())).expect("plan");
        let plan: Vec<String> = statement
            .query_map(rusqlite::params![vec![1u8; 16], 1], |row| row.get::<_, String>(3))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        let spans_step = plan.iter().find(|step| step.contains(" s ")).expect("a step reads spans");
        assert!(spans_step.contains("INTEGER PRIMARY KEY (rowid>? AND rowid<?)"), "{plan:#?}");
        assert!(plan[0].contains("trace_span_ranges"), "the ranges drive the join: {plan:#?}");
    }
}
