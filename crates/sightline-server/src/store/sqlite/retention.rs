//! Retention: deleting expired rows in bounded chunks so the writer lock is never held long,
//! and handing freed pages back to the file system (`auto_vacuum = INCREMENTAL`).

use rusqlite::{Connection, params};

use crate::store::StoreResult;

/// Deletes up to `max_rows` expired rows, table by table in this order: spans (by start time),
/// trace summaries with their span ranges (only once the project has no expired span left),
/// logs, metric points, product events, error events, issues last seen before the cutoff (with their hashes,
/// users, sessions, tags, hourly counts and history), expired hourly counts of live issues,
/// session timeline items before the cutoff, sessions last seen before it, correlation
/// counters of days that ended before it, and endpoint and database query rollups of buckets that started before it.
/// A call moves on to the next table while budget remains, so a result
/// below `max_rows` means nothing older than the cutoff is left (the trait's loop condition).
pub(super) fn delete_expired(
    connection: &mut Connection,
    project_id: i64,
    cutoff_unix_nano: u64,
    max_rows: usize,
) -> StoreResult<usize> {
    let cutoff = cutoff_unix_nano.min(i64::MAX as u64) as i64;
    let remaining = |deleted: usize| max_rows.saturating_sub(deleted) as i64;
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut deleted = transaction.execute(
        "DELETE FROM spans WHERE id IN (SELECT id FROM spans WHERE project_id = ?1 AND start_time_unix_nano < ?2 LIMIT ?3)",
        params![project_id, cutoff, remaining(0)],
    )?;
    if deleted < max_rows {
        transaction
            .execute("CREATE TEMP TABLE IF NOT EXISTS expired_traces (trace_id BLOB PRIMARY KEY) WITHOUT ROWID", [])?;
        transaction.execute("DELETE FROM temp.expired_traces", [])?;
        transaction.execute(
            "INSERT INTO temp.expired_traces SELECT trace_id FROM trace_summaries
             WHERE project_id = ?1 AND start_time_unix_nano < ?2 LIMIT ?3",
            params![project_id, cutoff, remaining(deleted)],
        )?;
        transaction.execute(
            "DELETE FROM trace_span_ranges WHERE project_id = ?1 AND trace_id IN (SELECT trace_id FROM temp.expired_traces)",
            [project_id],
        )?;
        deleted += transaction.execute(
            "DELETE FROM trace_summaries WHERE project_id = ?1 AND trace_id IN (SELECT trace_id FROM temp.expired_traces)",
            [project_id],
        )?;
    }
    if deleted < max_rows {
        deleted += transaction.execute(
            "DELETE FROM logs WHERE id IN (SELECT id FROM logs WHERE project_id = ?1 AND timestamp_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        deleted += transaction.execute(
            "DELETE FROM metric_points WHERE id IN (SELECT id FROM metric_points WHERE project_id = ?1 AND time_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        deleted += transaction.execute(
            "DELETE FROM product_events WHERE id IN
                (SELECT id FROM product_events WHERE project_id = ?1 AND timestamp_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        // Ids of expired untimed events: a retry this late is not deduplicated (nor stored).
        deleted += transaction.execute(
            "DELETE FROM product_event_ids_untimed WHERE project_id = ?1 AND event_id IN (SELECT event_id
                FROM product_event_ids_untimed WHERE project_id = ?1 AND timestamp_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        deleted += transaction.execute(
            "DELETE FROM error_events WHERE id IN
                (SELECT id FROM error_events WHERE project_id = ?1 AND timestamp_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        // Issues whose last event expired go with everything that hangs off them.
        transaction.execute("CREATE TEMP TABLE IF NOT EXISTS expired_issues (id INTEGER PRIMARY KEY)", [])?;
        transaction.execute("DELETE FROM temp.expired_issues", [])?;
        transaction.execute(
            "INSERT INTO temp.expired_issues SELECT id FROM issues WHERE project_id = ?1 AND last_seen_unix_nano < ?2 LIMIT ?3",
            params![project_id, cutoff, remaining(deleted)],
        )?;
        for table in
            ["issue_users", "issue_sessions", "issue_tags", "issue_hourly", "issue_status_history", "error_stacks"]
        {
            transaction
                .execute(&format!("DELETE FROM {table} WHERE issue_id IN (SELECT id FROM temp.expired_issues)"), [])?;
        }
        transaction.execute(
            "DELETE FROM issue_hashes WHERE project_id = ?1 AND issue_id IN (SELECT id FROM temp.expired_issues)",
            [project_id],
        )?;
        deleted += transaction.execute("DELETE FROM issues WHERE id IN (SELECT id FROM temp.expired_issues)", [])?;
    }
    if deleted < max_rows {
        // Issues still receiving events keep their counters but lose expired hourly buckets.
        deleted += transaction.execute(
            "DELETE FROM issue_hourly WHERE (issue_id, hour_unix_nano) IN
                (SELECT h.issue_id, h.hour_unix_nano FROM issue_hourly h JOIN issues i ON i.id = h.issue_id
                 WHERE i.project_id = ?1 AND h.hour_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        // Session timeline items before the cutoff, of expired sessions and of sessions still
        // going (both started before it).
        deleted += transaction.execute(
            "DELETE FROM session_items WHERE (session_key, timestamp_unix_nano, kind, item_rowid) IN
                (SELECT i.session_key, i.timestamp_unix_nano, i.kind, i.item_rowid
                 FROM sessions s JOIN session_items i ON i.session_key = s.id AND i.timestamp_unix_nano < ?2
                 WHERE s.project_id = ?1 AND s.first_seen_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        // Every item of a session is at most its last-seen time, so these have none left.
        deleted += transaction.execute(
            "DELETE FROM sessions WHERE id IN (SELECT id FROM sessions
                WHERE project_id = ?1 AND first_seen_unix_nano < ?2 AND last_seen_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        // Correlation counters of days that ended before the cutoff.
        deleted += transaction.execute(
            "DELETE FROM session_correlation WHERE (project_id, day_unix_nano) IN
                (SELECT project_id, day_unix_nano FROM session_correlation
                 WHERE project_id = ?1 AND day_unix_nano <= ?2 - 86400000000000 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    if deleted < max_rows {
        deleted += super::rollups::delete_expired(&transaction, project_id, cutoff, remaining(deleted))?;
    }
    if deleted < max_rows {
        deleted += super::service_map::delete_expired(&transaction, project_id, cutoff, remaining(deleted))?;
    }
    if deleted < max_rows {
        deleted += super::query_rollups::delete_expired(&transaction, project_id, cutoff, remaining(deleted))?;
    }
    if deleted < max_rows {
        deleted += super::job_rollups::delete_expired(&transaction, project_id, cutoff, remaining(deleted))?;
    }
    if deleted < max_rows {
        deleted += transaction.execute(
            "DELETE FROM ingest_minutes WHERE (project_id, signal, minute_unix_nano) IN
                (SELECT project_id, signal, minute_unix_nano FROM ingest_minutes
                 WHERE project_id = ?1 AND minute_unix_nano < ?2 LIMIT ?3)",
            params![project_id, cutoff, remaining(deleted)],
        )?;
    }
    transaction.commit()?;
    Ok(deleted)
}

/// Frees up to 2,000 pages (8 MiB at the 4 KiB default) per call; returns the free pages left.
pub(super) fn reclaim_space(connection: &mut Connection) -> StoreResult<u64> {
    connection.execute_batch("PRAGMA incremental_vacuum(2000);")?;
    let free_pages: i64 = connection.query_row("PRAGMA freelist_count", [], |row| row.get(0))?;
    Ok(free_pages.max(0) as u64)
}
