//! Background job and messaging rollups in SQLite (`job_rollups`, migration 13): merging a
//! commit's deltas into the stored rows once per row, reading ranges back, coarsening 1-minute
//! rows into 1-hour rows and retention — the recipe of the endpoint and query rollups
//! (`rollups.rs`, `query_rollups.rs`), whose sketch and slowest-list helpers this reuses.

use std::collections::HashMap;

use rusqlite::{Connection, OptionalExtension, Transaction, params};

use super::rollups::{Write, WriteSql, database_error, slowest_from_stored, slowest_to_bytes};
use super::row_cache::{RowCache, merge_commit};
use crate::store::job_rollups::{JobKey, JobRollup, JobRollupQuery};
use crate::store::rollups::{DurationSketch, HOUR_SECONDS, MINUTE_SECONDS};
use crate::store::{StoreResult, WriteBatch};

/// Row identity: (project, job, bucket start ns, bucket seconds).
pub(super) type RowKey = (i64, JobKey, u64, u32);

const COLUMNS: &str = "service_name, environment, messaging_system, name, operation, bucket_start_unix_nano,
    bucket_seconds, span_count, failure_count, duration_sketch, lag_sketch, slowest";

/// The primary key after the project, in [`key_params`] order (`?2` .. `?8`).
const KEY_MATCH: &str = "bucket_start_unix_nano = ?2 AND bucket_seconds = ?3 AND service_name = ?4 AND environment = ?5
    AND messaging_system = ?6 AND name = ?7 AND operation = ?8";

/// Merges every batch's job rollup deltas into the stored rows, once per row (see
/// [`merge_commit`]).
pub(super) fn merge_job_rollups(
    transaction: &Transaction<'_>,
    batches: &[WriteBatch],
    cache: &mut RowCache<RowKey, JobRollup>,
) -> StoreResult<()> {
    let deltas = batches.iter().flat_map(|batch| {
        batch.job_rollups.iter().map(move |delta| {
            ((batch.project_id, delta.key.clone(), delta.bucket_start_unix_nano, delta.bucket_seconds), delta)
        })
    });
    merge_commit(
        deltas,
        cache,
        |key, row| write_row(transaction, key.0, row, Write::Replace).map(drop),
        |key, delta| merge_into_stored(transaction, key.0, delta),
    )
}

type KeyParams<'a> = (i64, i64, u32, &'a str, &'a str, &'a str, &'a str, &'a str);

fn key_params(project_id: i64, rollup: &JobRollup) -> KeyParams<'_> {
    (
        project_id,
        rollup.bucket_start_unix_nano.min(i64::MAX as u64) as i64,
        rollup.bucket_seconds,
        &rollup.key.service_name,
        &rollup.key.environment,
        &rollup.key.messaging_system,
        &rollup.key.name,
        &rollup.key.operation,
    )
}

/// Writes `rollup` as a new row, or adds the stored row of its key and bucket and writes the
/// sum (see the endpoint rollups' `merge_into_stored`); returns the row as stored now.
fn merge_into_stored(connection: &Connection, project_id: i64, mut rollup: JobRollup) -> StoreResult<JobRollup> {
    if write_row(connection, project_id, &rollup, Write::IfNew)? == 1 {
        return Ok(rollup);
    }
    let stored = {
        let key = key_params(project_id, &rollup);
        connection
            .prepare_cached(&format!("SELECT {COLUMNS} FROM job_rollups WHERE project_id = ?1 AND {KEY_MATCH}"))?
            .query_row(params![key.0, key.1, key.2, key.3, key.4, key.5, key.6, key.7], row_to_rollup)
            .optional()?
    };
    if let Some(stored) = stored {
        rollup.merge(&stored?).map_err(database_error)?;
    }
    write_row(connection, project_id, &rollup, Write::Replace)?;
    Ok(rollup)
}

/// Writes the row; returns the rows changed (0 for [`Write::IfNew`] on a stored key).
fn write_row(connection: &Connection, project_id: i64, rollup: &JobRollup, mode: Write) -> StoreResult<usize> {
    let key = key_params(project_id, rollup);
    static SQL: std::sync::LazyLock<WriteSql> = std::sync::LazyLock::new(|| {
        WriteSql::new(
            "INSERT INTO job_rollups (project_id, bucket_start_unix_nano, bucket_seconds, service_name,
                environment, messaging_system, name, operation, span_count, failure_count, duration_sum_nanos,
                duration_sketch, lag_sketch, slowest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
            &["span_count", "failure_count", "duration_sum_nanos", "duration_sketch", "lag_sketch", "slowest"],
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
        key.7,
        rollup.count.min(i64::MAX as u64) as i64,
        rollup.failures.min(i64::MAX as u64) as i64,
        rollup.durations.sum_nanos(),
        rollup.durations.to_bytes(),
        rollup.lags.to_bytes(),
        slowest_to_bytes(&rollup.slowest),
    ])?)
}

/// A row in [`COLUMNS`] order; the inner error is a sketch that does not decode.
fn row_to_rollup(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoreResult<JobRollup>> {
    let duration_bytes: Vec<u8> = row.get(9)?;
    let lag_bytes: Vec<u8> = row.get(10)?;
    let sketches = DurationSketch::from_bytes(&duration_bytes)
        .and_then(|durations| Ok((durations, DurationSketch::from_bytes(&lag_bytes)?)));
    let (durations, lags) = match sketches {
        Ok(sketches) => sketches,
        Err(error) => return Ok(Err(database_error(error))),
    };
    Ok(Ok(JobRollup {
        key: JobKey {
            service_name: row.get(0)?,
            environment: row.get(1)?,
            messaging_system: row.get(2)?,
            name: row.get(3)?,
            operation: row.get(4)?,
        },
        bucket_start_unix_nano: row.get::<_, i64>(5)?.max(0) as u64,
        bucket_seconds: row.get(6)?,
        count: row.get::<_, i64>(7)?.max(0) as u64,
        failures: row.get::<_, i64>(8)?.max(0) as u64,
        durations,
        lags,
        slowest: slowest_from_stored(row.get_ref(11)?),
    }))
}

fn collect_rows(
    statement: &mut rusqlite::CachedStatement<'_>,
    parameters: impl rusqlite::Params,
) -> StoreResult<Vec<JobRollup>> {
    let mut rollups = Vec::new();
    for row in statement.query_map(parameters, row_to_rollup)? {
        rollups.push(row??);
    }
    Ok(rollups)
}

/// Rows matching the query, by bucket start.
pub(super) fn job_rollups(
    connection: &Connection,
    project_id: i64,
    query: &JobRollupQuery,
) -> StoreResult<Vec<JobRollup>> {
    let from = query.from_unix_nano.min(i64::MAX as u64) as i64;
    let to = query.to_unix_nano.min(i64::MAX as u64) as i64;
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM job_rollups
         WHERE project_id = ?1 AND bucket_start_unix_nano >= ?2 AND bucket_start_unix_nano < ?3
            AND (?4 IS NULL OR service_name = ?4) AND (?5 IS NULL OR environment = ?5) AND (?6 IS NULL OR name = ?6)
         ORDER BY bucket_start_unix_nano"
    ))?;
    collect_rows(&mut statement, params![project_id, from, to, query.service, query.environment, query.name])
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
            "SELECT {COLUMNS} FROM job_rollups
             WHERE project_id = ?1 AND bucket_seconds = ?2 AND bucket_start_unix_nano < ?3
             ORDER BY bucket_start_unix_nano LIMIT ?4"
        ))?,
        params![project_id, MINUTE_SECONDS, cutoff_hour, max_rows.min(i64::MAX as usize) as i64],
    )?;
    let mut hours: HashMap<(JobKey, u64), JobRollup> = HashMap::new();
    for minute in &minutes {
        let hour_start = minute.bucket_start_unix_nano / hour_nanos * hour_nanos;
        let hour = hours
            .entry((minute.key.clone(), hour_start))
            .or_insert_with(|| JobRollup::empty(minute.key.clone(), hour_start, HOUR_SECONDS));
        hour.merge(minute).map_err(database_error)?;
    }
    for (_, hour) in hours {
        merge_into_stored(&transaction, project_id, hour)?;
    }
    {
        let mut delete =
            transaction.prepare_cached(&format!("DELETE FROM job_rollups WHERE project_id = ?1 AND {KEY_MATCH}"))?;
        for minute in &minutes {
            let key = key_params(project_id, minute);
            delete.execute(params![key.0, key.1, key.2, key.3, key.4, key.5, key.6, key.7])?;
        }
    }
    transaction.commit()?;
    Ok(minutes.len())
}

/// Deletes up to `max_rows` job rollup rows (either width) whose bucket started before the
/// cutoff; part of the retention transaction. Returns rows deleted.
pub(super) fn delete_expired(
    transaction: &Transaction<'_>,
    project_id: i64,
    cutoff_unix_nano: i64,
    max_rows: i64,
) -> StoreResult<usize> {
    super::rollups::delete_expired_per_width(
        transaction,
        "DELETE FROM job_rollups WHERE (project_id, bucket_start_unix_nano, bucket_seconds, service_name, environment,
            messaging_system, name, operation) IN
            (SELECT project_id, bucket_start_unix_nano, bucket_seconds, service_name, environment, messaging_system,
                name, operation
             FROM job_rollups WHERE project_id = ?1 AND bucket_seconds = ?2 AND bucket_start_unix_nano < ?3 LIMIT ?4)",
        project_id,
        cutoff_unix_nano,
        max_rows,
    )
}

#[cfg(test)]
mod tests {
    use sightline_model::{SpanId, TraceId};

    use crate::store::job_rollups::{JobKey, JobRollup, JobRollupQuery};
    use crate::store::rollups::{MINUTE_SECONDS, SlowRequest};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

    const MINUTE: u64 = 60_000_000_000;

    fn key(name: &str) -> JobKey {
        JobKey {
            service_name: "worker".into(),
            environment: "prod".into(),
            messaging_system: "kafka".into(),
            name: name.into(),
            operation: "process".into(),
        }
    }

    fn delta(name: &str, minute: u64, seed: u64, count: u64) -> JobRollup {
        let mut rollup = JobRollup::empty(key(name), minute * MINUTE, MINUTE_SECONDS);
        for index in 0..count {
            let id = seed * 1_000 + index;
            let slow = SlowRequest {
                trace_id: TraceId([(id % 251) as u8; 16]),
                span_id: SpanId(id.to_be_bytes()),
                duration_nanos: 1_000_000 + ((index * 7919 + seed * 104_729) % 1000).pow(3),
                start_time_unix_nano: minute * MINUTE + index,
            };
            let lag = (index % 3 != 0).then_some((index * 104_729 + seed) % 10_000_000_000);
            rollup.add_span(slow, index % 7 == 0, lag);
        }
        rollup
    }

    fn batch(project_id: i64, rollups: Vec<JobRollup>) -> WriteBatch {
        WriteBatch {
            project_id,
            signal: SignalBatch::Traces(Vec::new()),
            trace_summaries: Vec::new(),
            endpoint_rollups: Vec::new(),
            query_rollups: Vec::new(),
            job_rollups: rollups,
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

    /// Per name: (name, count, failures, p95 ns, lag samples, lag p50 ns, slowest durations).
    type JobTotals = (String, u64, u64, Option<f64>, u64, Option<f64>, Vec<u64>);

    /// Rows stored, and the merged totals per name.
    fn totals(store: &SqliteStore, project_id: i64) -> (usize, Vec<JobTotals>) {
        let query = JobRollupQuery { from_unix_nano: 0, to_unix_nano: u64::MAX / 2, ..JobRollupQuery::default() };
        let rows = store.job_rollups(project_id, &query).expect("read");
        let mut by_name: std::collections::BTreeMap<String, JobRollup> = Default::default();
        for row in &rows {
            by_name
                .entry(row.key.name.clone())
                .or_insert_with(|| JobRollup::empty(row.key.clone(), 0, MINUTE_SECONDS))
                .merge(row)
                .expect("merge");
        }
        let summary = by_name
            .into_iter()
            .map(|(name, total)| {
                let slowest = total.slowest.iter().map(|slow| slow.duration_nanos).collect();
                (
                    name,
                    total.count,
                    total.failures,
                    total.durations.quantile_nanos(0.95),
                    total.lags.count(),
                    total.lags.quantile_nanos(0.5),
                    slowest,
                )
            })
            .collect();
        (rows.len(), summary)
    }

    #[test]
    fn many_commits_one_commit_coarsening_filters_and_retention_agree() {
        let directory = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&directory.path().join("db.sqlite")).expect("store");
        let one = store.create_project("one").expect("project").id;
        let many = store.create_project("many").expect("project").id;
        let mut all = Vec::new();
        for minute in 0..120 {
            for (part, name) in ["orders", "emails", "orders"].iter().enumerate() {
                all.push(delta(name, minute, minute * 3 + part as u64, 20));
            }
        }
        store.commit(&[batch(one, all.clone())]).expect("one commit");
        for chunk in all.chunks(5) {
            let (left, right) = chunk.split_at(chunk.len() / 2);
            store.commit(&[batch(many, left.to_vec()), batch(many, right.to_vec())]).expect("commit");
        }
        let (rows_one, totals_one) = totals(&store, one);
        let (rows_many, totals_many) = totals(&store, many);
        assert_eq!((rows_one, rows_many), (240, 240), "one row per name and minute");
        assert_eq!(totals_many, totals_one);
        assert_eq!(totals_one[1].1, 120 * 40, "orders spans");
        assert_eq!(totals_one[1].4, 120 * 2 * 13, "orders lags: 13 of every 20 spans");

        let filtered = JobRollupQuery {
            name: Some("emails".into()),
            environment: Some("prod".into()),
            service: Some("worker".into()),
            from_unix_nano: 10 * MINUTE,
            to_unix_nano: 20 * MINUTE,
        };
        assert_eq!(store.job_rollups(one, &filtered).expect("read").len(), 10);
        let other_environment = JobRollupQuery { environment: Some("staging".into()), ..filtered };
        assert!(store.job_rollups(one, &other_environment).expect("read").is_empty());

        while store.coarsen_rollups(many, 120 * MINUTE + 5, 33).expect("coarsen") > 0 {}
        let (rows_hours, totals_hours) = totals(&store, many);
        assert_eq!(rows_hours, 4, "two hours of two names");
        assert_eq!(totals_hours, totals_one, "bins add, so hours answer like minutes");

        while store.delete_expired(many, 60 * MINUTE, 1).expect("retention") > 0 {}
        assert_eq!(totals(&store, many).0, 2, "the first hour expired");
    }
}
