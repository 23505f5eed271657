//! Database query rollups in SQLite (`query_rollups`, migration 12): merging a commit's deltas
//! into the stored rows once per row, reading ranges back, coarsening 1-minute rows into 1-hour
//! rows and retention — the same recipe as the endpoint rollups (`rollups.rs`), whose sketch
//! and slowest-list helpers this reuses.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::rollups::{Write, WriteSql, database_error, slowest_from_stored, slowest_to_bytes};
use super::row_cache::{RowCache, merge_commit};
use crate::store::query_rollups::{QueryKey, QueryRollup, QueryRollupQuery};
use crate::store::rollups::{DurationSketch, HOUR_SECONDS, MINUTE_SECONDS};
use crate::store::{StoreResult, WriteBatch};

/// Row identity: (project, query, bucket start ns, bucket seconds).
pub(super) type RowKey = (i64, QueryKey, u64, u32);

const COLUMNS: &str = "service_name, db_system, db_namespace, query_text, bucket_start_unix_nano, bucket_seconds,
    call_count, error_count, duration_sketch, slowest";

/// The primary key after the project, in [`key_params`] order (`?2` .. `?7`).
const KEY_MATCH: &str = "bucket_start_unix_nano = ?2 AND bucket_seconds = ?3 AND service_name = ?4 AND db_system = ?5
    AND db_namespace = ?6 AND query_fingerprint = ?7";

/// Merges every batch's query rollup deltas into the stored rows, once per row (see
/// [`merge_commit`]).
pub(super) fn merge_query_rollups(
    transaction: &Transaction<'_>,
    batches: &[WriteBatch],
    cache: &mut RowCache<RowKey, QueryRollup>,
) -> StoreResult<()> {
    let deltas = batches.iter().flat_map(|batch| {
        batch.query_rollups.iter().map(move |delta| {
            ((batch.project_id, delta.key.clone(), delta.bucket_start_unix_nano, delta.bucket_seconds), delta)
        })
    });
    merge_commit(
        deltas,
        cache,
        |key, row| write_row(transaction, &key_params(key.0, row), row, Write::Replace).map(drop),
        |key, delta| merge_into_stored(transaction, key.0, delta),
    )
}

fn key_params(project_id: i64, rollup: &QueryRollup) -> (i64, i64, u32, String, String, String, i64) {
    (
        project_id,
        rollup.bucket_start_unix_nano.min(i64::MAX as u64) as i64,
        rollup.bucket_seconds,
        rollup.key.service_name.clone(),
        rollup.key.db_system.clone(),
        rollup.key.db_namespace.clone(),
        rollup.key.query_fingerprint(),
    )
}

/// Writes `rollup` as a new row, or adds the stored row of its key and bucket and writes the
/// sum (see the endpoint rollups' `merge_into_stored`); returns the row as stored now.
fn merge_into_stored(connection: &Connection, project_id: i64, mut rollup: QueryRollup) -> StoreResult<QueryRollup> {
    let key = key_params(project_id, &rollup);
    if write_row(connection, &key, &rollup, Write::IfNew)? == 1 {
        return Ok(rollup);
    }
    let stored = connection
        .prepare_cached(&format!("SELECT {COLUMNS} FROM query_rollups WHERE project_id = ?1 AND {KEY_MATCH}"))?
        .query_row(params![key.0, key.1, key.2, key.3, key.4, key.5, key.6], row_to_rollup)
        .optional()?;
    if let Some(stored) = stored {
        rollup.merge(&stored?).map_err(database_error)?;
    }
    write_row(connection, &key, &rollup, Write::Replace)?;
    Ok(rollup)
}

/// Writes the row under `key` ([`key_params`]); returns the rows changed (0 for
/// [`Write::IfNew`] on a stored key).
fn write_row(
    connection: &Connection,
    key: &(i64, i64, u32, String, String, String, i64),
    rollup: &QueryRollup,
    mode: Write,
) -> StoreResult<usize> {
    static SQL: std::sync::LazyLock<WriteSql> = std::sync::LazyLock::new(|| {
        WriteSql::new(
            "INSERT INTO query_rollups (project_id, bucket_start_unix_nano, bucket_seconds, service_name,
                db_system, db_namespace, query_fingerprint, query_text, call_count, error_count, duration_sum_nanos,
                duration_sketch, slowest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
            &["query_text", "call_count", "error_count", "duration_sum_nanos", "duration_sketch", "slowest"],
        )
    });
    Ok(connection.prepare_cached(SQL.get(mode))?.execute(params![
        key.0,
        key.1,
        key.2,
        key.3,
        key.4,
        key.5,
        key.6,
        rollup.key.query,
        rollup.calls.min(i64::MAX as u64) as i64,
        rollup.errors.min(i64::MAX as u64) as i64,
        rollup.durations.sum_nanos(),
        rollup.durations.to_bytes(),
        slowest_to_bytes(&rollup.slowest),
    ])?)
}

/// A row in [`COLUMNS`] order; the inner error is a sketch that does not decode.
fn row_to_rollup(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoreResult<QueryRollup>> {
    let durations = match DurationSketch::from_bytes(&row.get::<_, Vec<u8>>(8)?) {
        Ok(sketch) => sketch,
        Err(error) => return Ok(Err(database_error(error))),
    };
    Ok(Ok(QueryRollup {
        key: QueryKey {
            service_name: row.get(0)?,
            db_system: row.get(1)?,
            db_namespace: row.get(2)?,
            query: row.get(3)?,
        },
        bucket_start_unix_nano: row.get::<_, i64>(4)?.max(0) as u64,
        bucket_seconds: row.get(5)?,
        calls: row.get::<_, i64>(6)?.max(0) as u64,
        errors: row.get::<_, i64>(7)?.max(0) as u64,
        durations,
        slowest: slowest_from_stored(row.get_ref(9)?),
    }))
}

fn collect_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    parameters: impl rusqlite::Params,
) -> StoreResult<Vec<QueryRollup>> {
    let mut rollups = Vec::new();
    for row in statement.query_map(parameters, row_to_rollup)? {
        rollups.push(row??);
    }
    Ok(rollups)
}

/// Rows matching the query, by bucket start.
pub(super) fn query_rollups(
    connection: &Connection,
    project_id: i64,
    query: &QueryRollupQuery,
) -> StoreResult<Vec<QueryRollup>> {
    let from = query.from_unix_nano.min(i64::MAX as u64) as i64;
    let to = query.to_unix_nano.min(i64::MAX as u64) as i64;
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM query_rollups
         WHERE project_id = ?1 AND bucket_start_unix_nano >= ?2 AND bucket_start_unix_nano < ?3
            AND (?4 IS NULL OR service_name = ?4) AND (?5 IS NULL OR db_system = ?5)
         ORDER BY bucket_start_unix_nano"
    ))?;
    collect_rows(&mut statement, params![project_id, from, to, query.service, query.db_system])
}

/// Merges up to `max_rows` 1-minute rows of complete hours before `cutoff_unix_nano` into their
/// 1-hour rows and deletes them, in one transaction; returns the minute rows merged (callers
/// loop until 0). Whole hours only, as for endpoint rollups.
pub(super) fn coarsen(
    connection: &mut Connection,
    project_id: i64,
    cutoff_unix_nano: u64,
    max_rows: usize,
) -> StoreResult<usize> {
    let hour_nanos = u64::from(HOUR_SECONDS) * 1_000_000_000;
    let cutoff_hour = (cutoff_unix_nano / hour_nanos * hour_nanos).min(i64::MAX as u64) as i64;
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let minutes = collect_rows(
        &mut transaction.prepare_cached(&format!(
            "SELECT {COLUMNS} FROM query_rollups
             WHERE project_id = ?1 AND bucket_seconds = ?2 AND bucket_start_unix_nano < ?3
             ORDER BY bucket_start_unix_nano LIMIT ?4"
        ))?,
        params![project_id, MINUTE_SECONDS, cutoff_hour, max_rows.min(i64::MAX as usize) as i64],
    )?;
    let mut hours: HashMap<(QueryKey, u64), QueryRollup> = HashMap::new();
    for minute in &minutes {
        let hour_start = minute.bucket_start_unix_nano / hour_nanos * hour_nanos;
        let hour = hours
            .entry((minute.key.clone(), hour_start))
            .or_insert_with(|| QueryRollup::empty(minute.key.clone(), hour_start, HOUR_SECONDS));
        hour.merge(minute).map_err(database_error)?;
    }
    for (_, hour) in hours {
        merge_into_stored(&transaction, project_id, hour)?;
    }
    {
        let mut delete =
            transaction.prepare_cached(&format!("DELETE FROM query_rollups WHERE project_id = ?1 AND {KEY_MATCH}"))?;
        for minute in &minutes {
            let key = key_params(project_id, minute);
            delete.execute(params![key.0, key.1, key.2, key.3, key.4, key.5, key.6])?;
        }
    }
    transaction.commit()?;
    Ok(minutes.len())
}

/// Deletes up to `max_rows` query rollup rows (either width) whose bucket started before the
/// cutoff; part of the retention transaction. Returns rows deleted.
pub(super) fn delete_expired(
    transaction: &Transaction<'_>,
    project_id: i64,
    cutoff_unix_nano: i64,
    max_rows: i64,
) -> StoreResult<usize> {
    super::rollups::delete_expired_per_width(
        transaction,
        "DELETE FROM query_rollups WHERE (project_id, bucket_start_unix_nano, bucket_seconds, service_name,
            db_system, db_namespace, query_fingerprint) IN
            (SELECT project_id, bucket_start_unix_nano, bucket_seconds, service_name, db_system, db_namespace,
                query_fingerprint
             FROM query_rollups WHERE project_id = ?1 AND bucket_seconds = ?2 AND bucket_start_unix_nano < ?3 LIMIT ?4)",
        project_id,
        cutoff_unix_nano,
        max_rows,
    )
}

#[cfg(test)]
mod tests {
    use sightline_model::{SpanId, TraceId};

    use crate::store::query_rollups::{QueryKey, QueryRollup, QueryRollupQuery};
    use crate::store::rollups::{MINUTE_SECONDS, SlowRequest};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

    const MINUTE: u64 = 60_000_000_000;

    fn key(query: &str) -> QueryKey {
        QueryKey {
            service_name: "shop".into(),
            db_system: "postgresql".into(),
            db_namespace: "orders".into(),
            query: query.into(),
        }
    }

    fn delta(query: &str, minute: u64, seed: u64, count: u64) -> QueryRollup {
        let mut rollup = QueryRollup::empty(key(query), minute * MINUTE, MINUTE_SECONDS);
        for index in 0..count {
            let id = seed * 1_000 + index;
            let slow = SlowRequest {
                trace_id: TraceId([(id % 251) as u8; 16]),
                span_id: SpanId(id.to_be_bytes()),
                duration_nanos: 1_000_000 + ((index * 7919 + seed * 104_729) % 1000).pow(3),
                start_time_unix_nano: minute * MINUTE + index,
            };
            rollup.add_call(slow, index % 7 == 0);
        }
        rollup
    }

    fn batch(project_id: i64, rollups: Vec<QueryRollup>) -> WriteBatch {
        WriteBatch {
            project_id,
            signal: SignalBatch::Traces(Vec::new()),
            trace_summaries: Vec::new(),
            endpoint_rollups: Vec::new(),
            query_rollups: rollups,
            job_rollups: Vec::new(),
            call_halves: Vec::new(),
            paired_calls: Default::default(),
            outcomes: Outcomes::default(),
            errors: Vec::new(),
            derived_events: Vec::new(),
            sessions: Default::default(),
            serialized: Default::default(),
            otlp_forward: None,
        }
    }

    /// Per query: (text, calls, errors, p95 ns, slowest durations).
    type QueryTotals = (String, u64, u64, Option<f64>, Vec<u64>);

    /// Rows stored, and the merged totals per query.
    fn totals(store: &SqliteStore, project_id: i64) -> (usize, Vec<QueryTotals>) {
        let query = QueryRollupQuery { from_unix_nano: 0, to_unix_nano: u64::MAX / 2, ..QueryRollupQuery::default() };
        let rows = store.query_rollups(project_id, &query).expect("read");
        let mut by_query: std::collections::BTreeMap<String, QueryRollup> = Default::default();
        for row in &rows {
            by_query
                .entry(row.key.query.clone())
                .or_insert_with(|| QueryRollup::empty(row.key.clone(), 0, MINUTE_SECONDS))
                .merge(row)
                .expect("merge");
        }
        let summary = by_query
            .into_iter()
            .map(|(query, total)| {
                let slowest = total.slowest.iter().map(|slow| slow.duration_nanos).collect();
                (query, total.calls, total.errors, total.durations.quantile_nanos(0.95), slowest)
            })
            .collect();
        (rows.len(), summary)
    }

    #[test]
    fn many_commits_one_commit_coarsening_and_retention_agree() {
        let directory = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&directory.path().join("db.sqlite")).expect("store");
        let one = store.create_project("one").expect("project").id;
        let many = store.create_project("many").expect("project").id;
        let mut all = Vec::new();
        for minute in 0..120 {
            for (part, query) in ["SELECT ?", "UPDATE t SET a = ?", "SELECT ?"].iter().enumerate() {
                all.push(delta(query, minute, minute * 3 + part as u64, 20));
            }
        }
        store.commit(&[batch(one, all.clone())]).expect("one commit");
        for chunk in all.chunks(5) {
            let (left, right) = chunk.split_at(chunk.len() / 2);
            store.commit(&[batch(many, left.to_vec()), batch(many, right.to_vec())]).expect("commit");
        }
        let (rows_one, totals_one) = totals(&store, one);
        let (rows_many, totals_many) = totals(&store, many);
        assert_eq!((rows_one, rows_many), (240, 240), "one row per query and minute");
        assert_eq!(totals_many, totals_one);
        assert_eq!(totals_one[0].1, 120 * 40, "SELECT ? calls");

        while store.coarsen_rollups(many, 120 * MINUTE + 5, 33).expect("coarsen") > 0 {}
        let (rows_hours, totals_hours) = totals(&store, many);
        assert_eq!(rows_hours, 4, "two hours of two queries");
        assert_eq!(totals_hours, totals_one, "bins add, so hours answer like minutes");

        while store.delete_expired(many, 60 * MINUTE, 1).expect("retention") > 0 {}
        assert_eq!(totals(&store, many).0, 2, "the first hour expired");
    }
}
