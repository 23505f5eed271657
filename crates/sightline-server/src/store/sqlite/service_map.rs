//! Service map edges in SQLite (`service_edges`, migration 11): a commit's paired calls merged
//! into per-minute rows once per row, edge reads for a time range, and retention.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use crate::store::rollups::DurationSketch;
use crate::store::service_map::{EdgeKey, EdgeRollup};
use crate::store::{StoreError, StoreResult};

fn database_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

fn sql_time(unix_nano: u64) -> i64 {
    unix_nano.min(i64::MAX as u64) as i64
}

/// Adds the commit's calls to the stored rows: one insert per new (edge, minute); a read and a
/// write more when the row is stored already.
pub(super) fn merge_edges(
    transaction: &Transaction<'_>,
    edges: HashMap<(i64, EdgeKey, u64), EdgeRollup>,
) -> StoreResult<()> {
    let mut insert = transaction.prepare_cached(
        "INSERT INTO service_edges (project_id, bucket_start_unix_nano, caller, callee, virtual_callee,
            call_count, error_count, duration_sketch) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) ON CONFLICT DO NOTHING",
    )?;
    let mut read = transaction.prepare_cached(
        "SELECT call_count, error_count, duration_sketch FROM service_edges
         WHERE project_id = ?1 AND bucket_start_unix_nano = ?2 AND caller = ?3 AND callee = ?4 AND virtual_callee = ?5",
    )?;
    // An UPDATE in place: `INSERT OR REPLACE` deleted the row and its unique-index entry and
    // inserted both again under a new row id.
    let mut write = transaction.prepare_cached(
        "UPDATE service_edges SET call_count = ?6, error_count = ?7, duration_sketch = ?8
         WHERE project_id = ?1 AND bucket_start_unix_nano = ?2 AND caller = ?3 AND callee = ?4 AND virtual_callee = ?5",
    )?;
    for ((project_id, key, bucket), mut edge) in edges {
        // Both statements take the row as ?1..?8.
        let row = |statement: &mut rusqlite::CachedStatement<'_>, edge: &EdgeRollup| {
            statement.execute(params![
                project_id,
                sql_time(bucket),
                key.caller,
                key.callee,
                key.virtual_callee,
                edge.calls as i64,
                edge.errors as i64,
                edge.durations.to_bytes(),
            ])
        };
        let inserted = row(&mut insert, &edge)?;
        if inserted == 1 {
            continue;
        }
        let stored: Option<(i64, i64, Vec<u8>)> = read
            .query_row(params![project_id, sql_time(bucket), key.caller, key.callee, key.virtual_callee], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        if let Some((calls, errors, sketch)) = stored {
            edge.calls += calls.max(0) as u64;
            edge.errors += errors.max(0) as u64;
            edge.durations
                .merge(&DurationSketch::from_bytes(&sketch).map_err(database_error)?)
                .map_err(database_error)?;
        }
        row(&mut write, &edge)?;
    }
    Ok(())
}

/// Edge rows of minutes starting in `[from, to)`, optionally only those touching `service`.
pub(super) fn service_edges(
    connection: &Connection,
    project_id: i64,
    service: Option<&str>,
    from_unix_nano: u64,
    to_unix_nano: u64,
) -> StoreResult<Vec<EdgeRollup>> {
    let mut statement = connection.prepare_cached(
        "SELECT caller, callee, virtual_callee, bucket_start_unix_nano, call_count, error_count, duration_sketch
         FROM service_edges WHERE project_id = ?1 AND bucket_start_unix_nano >= ?2 AND bucket_start_unix_nano < ?3
            AND (?4 IS NULL OR caller = ?4 OR callee = ?4)
         ORDER BY bucket_start_unix_nano",
    )?;
    let rows =
        statement.query_map(params![project_id, sql_time(from_unix_nano), sql_time(to_unix_nano), service], |row| {
            Ok((
                EdgeKey { caller: row.get(0)?, callee: row.get(1)?, virtual_callee: row.get(2)? },
                row.get::<_, i64>(3)?,
                row.get::<_, i64>(4)?,
                row.get::<_, i64>(5)?,
                row.get::<_, Vec<u8>>(6)?,
            ))
        })?;
    let mut edges = Vec::new();
    for row in rows {
        let (key, bucket, calls, errors, sketch) = row?;
        edges.push(EdgeRollup {
            key,
            bucket_start_unix_nano: bucket.max(0) as u64,
            calls: calls.max(0) as u64,
            errors: errors.max(0) as u64,
            durations: DurationSketch::from_bytes(&sketch).map_err(database_error)?,
        });
    }
    Ok(edges)
}

/// Deletes up to `max_rows` edge rows of minutes before the cutoff.
pub(super) fn delete_expired(
    transaction: &Transaction<'_>,
    project_id: i64,
    cutoff_unix_nano: i64,
    max_rows: i64,
) -> StoreResult<usize> {
    Ok(transaction.execute(
        "DELETE FROM service_edges WHERE rowid IN (SELECT rowid FROM service_edges
            WHERE project_id = ?1 AND bucket_start_unix_nano < ?2 LIMIT ?3)",
        params![project_id, cutoff_unix_nano, max_rows],
    )?)
}
