//! Endpoint RED rollups in SQLite (`endpoint_rollups`, migration 9): merging a commit's deltas
//! into the stored rows, reading ranges back, coarsening 1-minute rows into 1-hour rows and
//! retention.
//!
//! A commit aggregates every batch's deltas per (project, endpoint, bucket) first, then reads
//! each stored row once, merges in Rust (sketches cannot merge in SQL) and writes it back once,
//! all inside the commit's transaction.

use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sightline_model::{SpanId, TraceId};

use crate::store::rollups::{
    DurationSketch, EndpointKey, EndpointRollup, HOUR_SECONDS, MINUTE_SECONDS, RollupQuery, RollupTotals, SlowRequest,
    StatusClass,
};
use crate::store::{StoreError, StoreResult, WriteBatch};

/// Row identity: (project, endpoint, bucket start ns, bucket seconds).
type RowKey = (i64, EndpointKey, u64, u32);

const COLUMNS: &str = "service_name, environment, operation, method, route, status_class, bucket_start_unix_nano,
    bucket_seconds, request_count, error_count, status_codes, duration_sketch, slowest";

/// Merges every batch's rollup deltas into the stored rows, once per row. Call inside the
/// commit's transaction.
pub(super) fn merge_rollups(transaction: &Transaction<'_>, batches: &[WriteBatch]) -> StoreResult<()> {
    let mut merged: HashMap<RowKey, EndpointRollup> = HashMap::new();
    for batch in batches {
        for delta in &batch.endpoint_rollups {
            let key = (batch.project_id, delta.key.clone(), delta.bucket_start_unix_nano, delta.bucket_seconds);
            match merged.get_mut(&key) {
                Some(existing) => existing.merge(delta).map_err(database_error)?,
                None => {
                    merged.insert(key, delta.clone());
                }
            }
        }
    }
    for ((project_id, _, _, _), rollup) in merged {
        merge_into_stored(transaction, project_id, rollup)?;
    }
    Ok(())
}

fn database_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

/// Reads the stored row of `rollup`'s key and bucket (if any), adds it, and writes the sum.
fn merge_into_stored(connection: &Connection, project_id: i64, mut rollup: EndpointRollup) -> StoreResult<()> {
    let stored = connection
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM endpoint_rollups WHERE project_id = ?1 AND service_name = ?2
                AND bucket_start_unix_nano = ?3 AND bucket_seconds = ?4 AND environment = ?5 AND operation = ?6
                AND status_class = ?7"
        ))?
        .query_row(
            params![
                project_id,
                rollup.key.service_name,
                rollup.bucket_start_unix_nano as i64,
                rollup.bucket_seconds,
                rollup.key.environment,
                rollup.key.operation,
                rollup.key.status_class.as_str(),
            ],
            row_to_rollup,
        )
        .optional()?;
    if let Some(stored) = stored {
        let stored = stored?;
        rollup.merge(&stored).map_err(database_error)?;
    }
    write_row(connection, project_id, &rollup)
}

fn write_row(connection: &Connection, project_id: i64, rollup: &EndpointRollup) -> StoreResult<()> {
    let status_codes: BTreeMap<String, u64> =
        rollup.status_codes.iter().map(|(code, count)| (code.to_string(), *count)).collect();
    let slowest: Vec<(String, String, u64, u64)> = rollup
        .slowest
        .iter()
        .map(|slow| (slow.trace_id.to_hex(), slow.span_id.to_hex(), slow.duration_nanos, slow.start_time_unix_nano))
        .collect();
    connection
        .prepare_cached(
            "INSERT OR REPLACE INTO endpoint_rollups (project_id, service_name, bucket_start_unix_nano, bucket_seconds,
                environment, operation, status_class, method, route, request_count, error_count, duration_sum_nanos,
                status_codes, duration_sketch, slowest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?
        .execute(params![
            project_id,
            rollup.key.service_name,
            rollup.bucket_start_unix_nano as i64,
            rollup.bucket_seconds,
            rollup.key.environment,
            rollup.key.operation,
            rollup.key.status_class.as_str(),
            rollup.key.method,
            rollup.key.route,
            rollup.requests as i64,
            rollup.errors as i64,
            rollup.durations.sum_nanos(),
            serde_json::to_string(&status_codes).unwrap_or_else(|_| "{}".into()),
            rollup.durations.to_bytes(),
            serde_json::to_string(&slowest).unwrap_or_else(|_| "[]".into()),
        ])?;
    Ok(())
}

/// A row in [`COLUMNS`] order; the inner error is a sketch that does not decode.
fn row_to_rollup(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoreResult<EndpointRollup>> {
    let key = EndpointKey {
        service_name: row.get(0)?,
        environment: row.get(1)?,
        operation: row.get(2)?,
        method: row.get(3)?,
        route: row.get(4)?,
        status_class: StatusClass::parse(&row.get::<_, String>(5)?),
    };
    let status_codes: BTreeMap<String, u64> = serde_json::from_str(&row.get::<_, String>(10)?).unwrap_or_default();
    let slowest: Vec<(String, String, u64, u64)> = serde_json::from_str(&row.get::<_, String>(12)?).unwrap_or_default();
    let sketch_bytes: Vec<u8> = row.get(11)?;
    let durations = match DurationSketch::from_bytes(&sketch_bytes) {
        Ok(sketch) => sketch,
        Err(error) => return Ok(Err(database_error(error))),
    };
    Ok(Ok(EndpointRollup {
        key,
        bucket_start_unix_nano: row.get::<_, i64>(6)?.max(0) as u64,
        bucket_seconds: row.get(7)?,
        requests: row.get::<_, i64>(8)?.max(0) as u64,
        errors: row.get::<_, i64>(9)?.max(0) as u64,
        status_codes: status_codes.into_iter().filter_map(|(code, count)| Some((code.parse().ok()?, count))).collect(),
        durations,
        slowest: slowest
            .into_iter()
            .filter_map(|(trace, span, duration_nanos, start_time_unix_nano)| {
                Some(SlowRequest {
                    trace_id: TraceId::from_hex(&trace).ok()?,
                    span_id: SpanId::from_hex(&span).ok()?,
                    duration_nanos,
                    start_time_unix_nano,
                })
            })
            .collect(),
    }))
}

/// Rows matching the query, by bucket start.
pub(super) fn endpoint_rollups(
    connection: &Connection,
    project_id: i64,
    query: &RollupQuery,
) -> StoreResult<Vec<EndpointRollup>> {
    let from = query.from_unix_nano.min(i64::MAX as u64) as i64;
    let to = query.to_unix_nano.min(i64::MAX as u64) as i64;
    // Without a service the time index is the way in; with one, the primary key's range.
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM endpoint_rollups
         WHERE project_id = ?1 AND (?2 IS NULL OR service_name = ?2)
            AND bucket_start_unix_nano >= ?3 AND bucket_start_unix_nano < ?4
            AND (?5 IS NULL OR environment = ?5) AND (?6 IS NULL OR operation = ?6)
         ORDER BY bucket_start_unix_nano"
    ))?;
    let rows = statement
        .query_map(params![project_id, query.service, from, to, query.environment, query.operation], row_to_rollup)?;
    let mut rollups = Vec::new();
    for row in rows {
        rollups.push(row??);
    }
    Ok(rollups)
}

/// Cumulative counters per endpoint over every stored row.
pub(super) fn rollup_totals(connection: &Connection, project_id: i64) -> StoreResult<Vec<RollupTotals>> {
    let mut statement = connection.prepare_cached(
        "SELECT service_name, environment, operation, min(method), min(route), status_class,
            sum(request_count), sum(error_count), sum(duration_sum_nanos)
         FROM endpoint_rollups WHERE project_id = ?1
         GROUP BY service_name, environment, operation, status_class",
    )?;
    let rows = statement.query_map([project_id], |row| {
        Ok(RollupTotals {
            key: EndpointKey {
                service_name: row.get(0)?,
                environment: row.get(1)?,
                operation: row.get(2)?,
                method: row.get(3)?,
                route: row.get(4)?,
                status_class: StatusClass::parse(&row.get::<_, String>(5)?),
            },
            requests: row.get::<_, i64>(6)?.max(0) as u64,
            errors: row.get::<_, i64>(7)?.max(0) as u64,
            duration_sum_nanos: row.get(8)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Merges up to `max_rows` 1-minute rows of complete hours before `cutoff_unix_nano` into their
/// 1-hour rows (creating or adding to them) and deletes them, in one transaction; returns the
/// minute rows merged. Callers loop until it returns 0.
pub(super) fn coarsen(
    connection: &mut Connection,
    project_id: i64,
    cutoff_unix_nano: u64,
    max_rows: usize,
) -> StoreResult<usize> {
    let hour_nanos = u64::from(HOUR_SECONDS) * 1_000_000_000;
    // Only whole hours: an hour row never mixes coarsened minutes with minutes still kept.
    let cutoff_hour = (cutoff_unix_nano / hour_nanos * hour_nanos).min(i64::MAX as u64) as i64;
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let minutes: Vec<EndpointRollup> = {
        let mut statement = transaction.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM endpoint_rollups
             WHERE project_id = ?1 AND bucket_seconds = ?2 AND bucket_start_unix_nano < ?3
             ORDER BY bucket_start_unix_nano LIMIT ?4"
        ))?;
        let rows = statement.query_map(
            params![project_id, MINUTE_SECONDS, cutoff_hour, max_rows.min(i64::MAX as usize) as i64],
            row_to_rollup,
        )?;
        let mut minutes = Vec::new();
        for row in rows {
            minutes.push(row??);
        }
        minutes
    };
    let mut hours: HashMap<(EndpointKey, u64), EndpointRollup> = HashMap::new();
    for minute in &minutes {
        let hour_start = minute.bucket_start_unix_nano / hour_nanos * hour_nanos;
        let hour = hours
            .entry((minute.key.clone(), hour_start))
            .or_insert_with(|| EndpointRollup::empty(minute.key.clone(), hour_start, HOUR_SECONDS));
        hour.merge(minute).map_err(database_error)?;
    }
    for (_, hour) in hours {
        merge_into_stored(&transaction, project_id, hour)?;
    }
    let mut delete = transaction.prepare_cached(
        "DELETE FROM endpoint_rollups WHERE project_id = ?1 AND service_name = ?2 AND bucket_start_unix_nano = ?3
            AND bucket_seconds = ?4 AND environment = ?5 AND operation = ?6 AND status_class = ?7",
    )?;
    for minute in &minutes {
        delete.execute(params![
            project_id,
            minute.key.service_name,
            minute.bucket_start_unix_nano as i64,
            MINUTE_SECONDS,
            minute.key.environment,
            minute.key.operation,
            minute.key.status_class.as_str(),
        ])?;
    }
    drop(delete);
    transaction.commit()?;
    Ok(minutes.len())
}

/// Deletes up to `max_rows` rollup rows (either width) whose bucket started before the cutoff;
/// part of the retention transaction. Returns rows deleted.
pub(super) fn delete_expired(
    transaction: &Transaction<'_>,
    project_id: i64,
    cutoff_unix_nano: i64,
    max_rows: i64,
) -> StoreResult<usize> {
    let mut deleted = 0;
    for width in [MINUTE_SECONDS, HOUR_SECONDS] {
        let remaining = max_rows - deleted as i64;
        if remaining <= 0 {
            break;
        }
        deleted += transaction.execute(
            "DELETE FROM endpoint_rollups WHERE (project_id, service_name, bucket_start_unix_nano, bucket_seconds,
                environment, operation, status_class) IN
                (SELECT project_id, service_name, bucket_start_unix_nano, bucket_seconds, environment, operation, status_class
                 FROM endpoint_rollups WHERE project_id = ?1 AND bucket_seconds = ?2 AND bucket_start_unix_nano < ?3 LIMIT ?4)",
            params![project_id, width, cutoff_unix_nano, remaining],
        )?;
    }
    Ok(deleted)
}
