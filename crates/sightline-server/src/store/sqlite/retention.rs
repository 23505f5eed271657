//! Retention: deleting expired rows in bounded chunks so the writer lock is never held long,
//! and handing freed pages back to the file system (`auto_vacuum = INCREMENTAL`).

use rusqlite::{Connection, params};

use crate::store::StoreResult;

/// Deletes up to `max_rows` expired rows of the first table that still has some, in this
/// order: spans (by start time), trace summaries with their span ranges, logs, metric points.
/// Returns the number deleted; 0 means the project has nothing older than the cutoff.
pub(super) fn delete_expired(connection: &mut Connection, project_id: i64, cutoff_unix_nano: u64, max_rows: usize) -> StoreResult<usize> {
    let cutoff = cutoff_unix_nano.min(i64::MAX as u64) as i64;
    let limit = max_rows as i64;
    let transaction = connection.transaction()?;
    let mut deleted = transaction.execute(
        "DELETE FROM spans WHERE id IN (SELECT id FROM spans WHERE project_id = ?1 AND start_time_unix_nano < ?2 LIMIT ?3)",
        params![project_id, cutoff, limit],
    )?;
    if deleted == 0 {
        transaction.execute(
            "CREATE TEMP TABLE IF NOT EXISTS expired_traces (trace_id BLOB PRIMARY KEY) WITHOUT ROWID",
            [],
        )?;
        transaction.execute("DELETE FROM temp.expired_traces", [])?;
        transaction.execute(
            "INSERT INTO temp.expired_traces SELECT trace_id FROM trace_summaries
             WHERE project_id = ?1 AND start_time_unix_nano < ?2 LIMIT ?3",
            params![project_id, cutoff, limit],
        )?;
        transaction.execute(
            "DELETE FROM trace_span_ranges WHERE project_id = ?1 AND trace_id IN (SELECT trace_id FROM temp.expired_traces)",
            [project_id],
        )?;
        deleted = transaction.execute(
            "DELETE FROM trace_summaries WHERE project_id = ?1 AND trace_id IN (SELECT trace_id FROM temp.expired_traces)",
            [project_id],
        )?;
    }
    if deleted == 0 {
        deleted = transaction.execute(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE project_id = ?1 AND timestamp_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, limit],
        )?;
    }
    if deleted == 0 {
        deleted = transaction.execute(
            "DELETE FROM metric_points WHERE id IN (SELECT id FROM metric_points WHERE project_id = ?1 AND time_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, limit],
        )?;
    }
    transaction.commit()?;
    Ok(deleted)
}

/// Frees up to 2,000 pages (8 MiB at the 4 KiB default) per call.
pub(super) fn reclaim_space(connection: &mut Connection) -> StoreResult<()> {
    connection.execute_batch("PRAGMA incremental_vacuum(2000);")?;
    Ok(())
}
