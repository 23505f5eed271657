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

use super::row_cache::{RowCache, merge_commit};
use crate::store::rollups::{
    DurationSketch, EndpointKey, EndpointRollup, HOUR_SECONDS, MINUTE_SECONDS, RollupQuery, RollupTotals, SlowRequest,
    StatusClass,
};
use crate::store::{StoreError, StoreResult, WriteBatch};

/// Row identity: (project, endpoint, bucket start ns, bucket seconds).
pub(super) type RowKey = (i64, EndpointKey, u64, u32);

const COLUMNS: &str = "service_name, environment, operation, method, route, status_class, bucket_start_unix_nano,
    bucket_seconds, request_count, error_count, status_codes, duration_sketch, slowest";

/// [`COLUMNS`] without the JSON ones (see [`RollupColumns::CountsAndSketches`]).
const SKETCH_COLUMNS: &str = "service_name, environment, operation, method, route, status_class,
    bucket_start_unix_nano, bucket_seconds, request_count, error_count, duration_sketch";

/// Merges every batch's endpoint rollup deltas into the stored rows, once per row (see
/// [`merge_commit`]; rows not cached go through [`merge_into_stored`]).
pub(super) fn merge_rollups(
    transaction: &Transaction<'_>,
    batches: &[WriteBatch],
    cache: &mut RowCache<RowKey, EndpointRollup>,
) -> StoreResult<()> {
    let deltas = batches.iter().flat_map(|batch| {
        batch.endpoint_rollups.iter().map(move |delta| {
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

/// Bytes per entry of [`slowest_to_bytes`]: trace id (16), span id (8), duration ns and start
/// ns (8 each, little-endian).
const SLOWEST_ENTRY_BYTES: usize = 40;

/// The slowest requests as stored: a BLOB of [`SLOWEST_ENTRY_BYTES`] per entry, slowest first.
/// Rows written before stored JSON text (`[[trace_id_hex, span_id_hex, duration_ns, start_ns],
/// ...]`), which [`slowest_from_stored`] still reads. The BLOB is ≈ 45 % of the JSON: live
/// traffic rewrites its current minutes' rows in every commit, so their size is written again
/// and again (BENCHMARKS.md).
pub(super) fn slowest_to_bytes(slowest: &[SlowRequest]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(slowest.len() * SLOWEST_ENTRY_BYTES);
    for slow in slowest {
        bytes.extend_from_slice(&slow.trace_id.0);
        bytes.extend_from_slice(&slow.span_id.0);
        bytes.extend_from_slice(&slow.duration_nanos.to_le_bytes());
        bytes.extend_from_slice(&slow.start_time_unix_nano.to_le_bytes());
    }
    bytes
}

/// Reads a stored slowest list: the BLOB of [`slowest_to_bytes`], or the JSON text of older
/// rows (entries that do not parse are skipped); anything else reads as empty.
pub(super) fn slowest_from_stored(value: rusqlite::types::ValueRef<'_>) -> Vec<SlowRequest> {
    match value {
        rusqlite::types::ValueRef::Blob(bytes) => bytes
            .chunks_exact(SLOWEST_ENTRY_BYTES)
            .filter_map(|entry| {
                let u64_at = |at: usize| entry.get(at..at + 8)?.try_into().ok().map(u64::from_le_bytes);
                Some(SlowRequest {
                    trace_id: TraceId(entry.get(..16)?.try_into().ok()?),
                    span_id: SpanId(entry.get(16..24)?.try_into().ok()?),
                    duration_nanos: u64_at(24)?,
                    start_time_unix_nano: u64_at(32)?,
                })
            })
            .collect(),
        rusqlite::types::ValueRef::Text(text) => slowest_from_json(std::str::from_utf8(text).unwrap_or("[]")),
        _ => Vec::new(),
    }
}

/// Reads the JSON text older rows stored; entries that do not parse are skipped.
fn slowest_from_json(text: &str) -> Vec<SlowRequest> {
    let rows: Vec<(String, String, u64, u64)> = serde_json::from_str(text).unwrap_or_default();
    rows.into_iter()
        .filter_map(|(trace, span, duration_nanos, start_time_unix_nano)| {
            Some(SlowRequest {
                trace_id: TraceId::from_hex(&trace).ok()?,
                span_id: SpanId::from_hex(&span).ok()?,
                duration_nanos,
                start_time_unix_nano,
            })
        })
        .collect()
}

pub(super) fn database_error(error: impl std::fmt::Display) -> StoreError {
    StoreError::Database(error.to_string())
}

/// How a row is written: [`Write::IfNew`] inserts only when no row has the key (and reports
/// whether it did), [`Write::Replace`] overwrites.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Write {
    /// `INSERT … ON CONFLICT DO NOTHING`.
    IfNew,
    /// `INSERT … ON CONFLICT DO UPDATE SET` every column outside the key. Not `INSERT OR
    /// REPLACE`: that deletes the stored row and its entry in the table's time index and
    /// inserts both again; the upsert changes the row in place and leaves the index alone.
    Replace,
}

/// A rollup table's write statement in both [`Write`] modes, built once per table (the SQL
/// text is also the statement cache's key).
pub(super) struct WriteSql {
    if_new: String,
    replace: String,
}

impl WriteSql {
    /// `insert` is `INSERT INTO table (…) VALUES (…)`; `value_columns` are the columns outside
    /// the key, which [`Write::Replace`] overwrites.
    pub(super) fn new(insert: &str, value_columns: &[&str]) -> Self {
        let assignments: Vec<String> =
            value_columns.iter().map(|column| format!("{column} = excluded.{column}")).collect();
        Self {
            if_new: format!("{insert} ON CONFLICT DO NOTHING"),
            replace: format!("{insert} ON CONFLICT DO UPDATE SET {}", assignments.join(", ")),
        }
    }

    /// The statement for `mode`.
    pub(super) fn get(&self, mode: Write) -> &str {
        match mode {
            Write::IfNew => &self.if_new,
            Write::Replace => &self.replace,
        }
    }
}

/// Writes `rollup` as a new row, or when its key and bucket are stored already, reads that row,
/// adds it and writes the sum; returns the row as stored now. Trying the insert first costs one statement for a new row (most
/// rows of a commit are: a minute starts new rows) and one extra probe for an existing one.
fn merge_into_stored(
    connection: &Connection,
    project_id: i64,
    mut rollup: EndpointRollup,
) -> StoreResult<EndpointRollup> {
    if write_row(connection, project_id, &rollup, Write::IfNew)? == 1 {
        return Ok(rollup);
    }
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
    write_row(connection, project_id, &rollup, Write::Replace)?;
    Ok(rollup)
}

/// Writes the row; returns the rows changed (0 for [`Write::IfNew`] on a stored key).
fn write_row(connection: &Connection, project_id: i64, rollup: &EndpointRollup, mode: Write) -> StoreResult<usize> {
    let status_codes: BTreeMap<String, u64> =
        rollup.status_codes.iter().map(|(code, count)| (code.to_string(), *count)).collect();
    static SQL: std::sync::LazyLock<WriteSql> = std::sync::LazyLock::new(|| {
        WriteSql::new(
            "INSERT INTO endpoint_rollups (project_id, service_name, bucket_start_unix_nano, bucket_seconds,
                environment, operation, status_class, method, route, request_count, error_count, duration_sum_nanos,
                status_codes, duration_sketch, slowest)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
            &[
                "method",
                "route",
                "request_count",
                "error_count",
                "duration_sum_nanos",
                "status_codes",
                "duration_sketch",
                "slowest",
            ],
        )
    });
    Ok(connection.prepare_cached(SQL.get(mode))?.execute(params![
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
        slowest_to_bytes(&rollup.slowest),
    ])?)
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
        slowest: slowest_from_stored(row.get_ref(12)?),
    }))
}

/// Which columns a range read decodes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RollupColumns {
    /// Everything, as stored.
    All,
    /// Counts and sketches; `status_codes` and `slowest` are left empty (two JSON columns
    /// per row not parsed).
    CountsAndSketches,
}

/// Rows matching the query, by bucket start.
pub(super) fn endpoint_rollups(
    connection: &Connection,
    project_id: i64,
    query: &RollupQuery,
    columns: RollupColumns,
) -> StoreResult<Vec<EndpointRollup>> {
    let from = query.from_unix_nano.min(i64::MAX as u64) as i64;
    let to = query.to_unix_nano.min(i64::MAX as u64) as i64;
    let selected = match columns {
        RollupColumns::All => COLUMNS,
        RollupColumns::CountsAndSketches => SKETCH_COLUMNS,
    };
    // SQLite plans a statement once, without its parameters' values: with
    // `(?2 IS NULL OR service_name = ?2)` it could use neither the primary key's service column
    // nor the time index, and every read scanned all of the project's rows (every service, all
    // of retention). One statement per shape keeps each read a range scan: with a service the
    // primary key's (project, service, bucket start) range, without one the time index, once per
    // bucket width.
    let sql = match query.service {
        Some(_) => format!(
            "SELECT {selected} FROM endpoint_rollups
             WHERE project_id = ?1 AND service_name = ?2
                AND bucket_start_unix_nano >= ?3 AND bucket_start_unix_nano < ?4
                AND (?5 IS NULL OR environment = ?5) AND (?6 IS NULL OR operation = ?6)
             ORDER BY bucket_start_unix_nano"
        ),
        None => format!(
            "SELECT {selected} FROM endpoint_rollups INDEXED BY endpoint_rollups_by_width_time
             WHERE project_id = ?1 AND ?2 IS NULL AND bucket_seconds IN ({MINUTE_SECONDS}, {HOUR_SECONDS})
                AND bucket_start_unix_nano >= ?3 AND bucket_start_unix_nano < ?4
                AND (?5 IS NULL OR environment = ?5) AND (?6 IS NULL OR operation = ?6)
             ORDER BY bucket_start_unix_nano"
        ),
    };
    let mut statement = connection.prepare_cached(&sql)?;
    let parameters = params![project_id, query.service, from, to, query.environment, query.operation];
    let mut rollups = Vec::new();
    match columns {
        RollupColumns::All => {
            for row in statement.query_map(parameters, row_to_rollup)? {
                rollups.push(row??);
            }
        }
        RollupColumns::CountsAndSketches => {
            for row in statement.query_map(parameters, row_to_sketch_rollup)? {
                rollups.push(row??);
            }
        }
    }
    Ok(rollups)
}

/// A row in [`SKETCH_COLUMNS`] order, without status codes and slowest requests; the inner
/// error is a sketch that does not decode.
fn row_to_sketch_rollup(row: &rusqlite::Row<'_>) -> rusqlite::Result<StoreResult<EndpointRollup>> {
    let key = EndpointKey {
        service_name: row.get(0)?,
        environment: row.get(1)?,
        operation: row.get(2)?,
        method: row.get(3)?,
        route: row.get(4)?,
        status_class: StatusClass::parse(row.get_ref(5)?.as_str()?),
    };
    let durations = match DurationSketch::from_bytes(row.get_ref(10)?.as_blob()?) {
        Ok(sketch) => sketch,
        Err(error) => return Ok(Err(database_error(error))),
    };
    Ok(Ok(EndpointRollup {
        key,
        bucket_start_unix_nano: row.get::<_, i64>(6)?.max(0) as u64,
        bucket_seconds: row.get(7)?,
        requests: row.get::<_, i64>(8)?.max(0) as u64,
        errors: row.get::<_, i64>(9)?.max(0) as u64,
        status_codes: BTreeMap::new(),
        durations,
        slowest: Vec::new(),
    }))
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
    delete_expired_per_width(
        transaction,
        "DELETE FROM endpoint_rollups WHERE (project_id, service_name, bucket_start_unix_nano, bucket_seconds,
            environment, operation, status_class) IN
            (SELECT project_id, service_name, bucket_start_unix_nano, bucket_seconds, environment, operation, status_class
             FROM endpoint_rollups WHERE project_id = ?1 AND bucket_seconds = ?2 AND bucket_start_unix_nano < ?3 LIMIT ?4)",
        project_id,
        cutoff_unix_nano,
        max_rows,
    )
}

/// Runs `delete_sql` (parameters: project, bucket width s, cutoff ns, row limit) for minute rows,
/// then for hour rows, within `max_rows` in all: each width has its own time index, so each
/// delete is a range scan. Shared by the endpoint and the query rollups. Returns rows deleted.
pub(super) fn delete_expired_per_width(
    transaction: &Transaction<'_>,
    delete_sql: &str,
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
        deleted += transaction.execute(delete_sql, params![project_id, width, cutoff_unix_nano, remaining])?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use crate::store::rollups::{EndpointKey, EndpointRollup, MINUTE_SECONDS, RollupQuery, StatusClass};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

    const MINUTE: u64 = 60_000_000_000;

    fn key(operation: &str) -> EndpointKey {
        EndpointKey {
            service_name: "shop".into(),
            environment: "prod".into(),
            operation: operation.into(),
            method: "GET".into(),
            route: "/a".into(),
            status_class: StatusClass::Success,
        }
    }

    /// Deterministic durations with a long tail: 1 ms .. ~1 s.
    fn durations(seed: u64, count: u64) -> Vec<u64> {
        (0..count).map(|index| 1_000_000 + ((index * 7919 + seed * 104_729) % 1000).pow(3)).collect()
    }

    fn delta(minute: u64, durations: &[u64]) -> EndpointRollup {
        let mut rollup = EndpointRollup::empty(key("GET /a"), minute * MINUTE, MINUTE_SECONDS);
        for (index, duration) in durations.iter().enumerate() {
            rollup.requests += 1;
            rollup.errors += u64::from(index % 10 == 0);
            *rollup.status_codes.entry(200).or_default() += 1;
            rollup.durations.add_nanos(*duration);
        }
        rollup
    }

    fn batch(project_id: i64, rollups: Vec<EndpointRollup>) -> WriteBatch {
        WriteBatch {
            project_id,
            signal: SignalBatch::Traces(Vec::new()),
            trace_summaries: Vec::new(),
            endpoint_rollups: rollups,
            query_rollups: Vec::new(),
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

    fn read_all(store: &SqliteStore, project_id: i64) -> Vec<EndpointRollup> {
        let query = RollupQuery { from_unix_nano: 0, to_unix_nano: u64::MAX / 2, ..RollupQuery::default() };
        store.endpoint_rollups(project_id, &query).expect("read")
    }

    fn merged(rows: &[EndpointRollup]) -> EndpointRollup {
        let mut total = EndpointRollup::empty(key("GET /a"), 0, MINUTE_SECONDS);
        for row in rows {
            total.merge(row).expect("merge");
        }
        total
    }

    #[test]
    fn slowest_lists_read_back_from_bytes_and_from_the_older_json() {
        use rusqlite::types::ValueRef;
        use sightline_model::{SpanId, TraceId};

        use super::{slowest_from_stored, slowest_to_bytes};
        use crate::store::rollups::SlowRequest;

        let slowest: Vec<SlowRequest> = (0..10u8)
            .map(|index| SlowRequest {
                trace_id: TraceId([index.wrapping_mul(31).wrapping_add(1); 16]),
                span_id: SpanId([255 - index; 8]),
                duration_nanos: u64::MAX - u64::from(index),
                start_time_unix_nano: 1_700_000_000_000_000_000 + u64::from(index),
            })
            .collect();
        let bytes = slowest_to_bytes(&slowest);
        assert_eq!(bytes.len(), 400);
        assert_eq!(slowest_from_stored(ValueRef::Blob(&bytes)), slowest);
        // A cut-off entry is dropped, the whole ones are kept.
        assert_eq!(slowest_from_stored(ValueRef::Blob(&bytes[..bytes.len() - 1])), slowest[..9]);
        let older = format!(
            r#"[["{}","{}",5000000,1700000000000000000],["not hex","00",1,2]]"#,
            slowest[0].trace_id.to_hex(),
            slowest[0].span_id.to_hex()
        );
        let read = slowest_from_stored(ValueRef::Text(older.as_bytes()));
        assert_eq!(read.len(), 1);
        assert_eq!((read[0].trace_id, read[0].duration_nanos), (slowest[0].trace_id, 5_000_000));
        assert!(slowest_from_stored(ValueRef::Null).is_empty());
    }

    #[test]
    fn many_commits_one_commit_and_coarsened_hours_agree() {
        let directory = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&directory.path().join("db.sqlite")).expect("store");
        let one = store.create_project("one commit").expect("project").id;
        let many = store.create_project("many commits").expect("project").id;
        // Minutes 0..120 (two whole hours), 50 requests each, split into 3 deltas.
        let mut all = Vec::new();
        for minute in 0..120 {
            for part in 0..3 {
                all.push(delta(minute, &durations(minute * 3 + part, 50)));
            }
        }
        store.commit(&[batch(one, all.clone())]).expect("one commit");
        for chunk in all.chunks(7) {
            // Two batches per commit: the writer merges them before touching the row.
            let (left, right) = chunk.split_at(chunk.len() / 2);
            store.commit(&[batch(many, left.to_vec()), batch(many, right.to_vec())]).expect("commit");
        }
        let rows_one = read_all(&store, one);
        let rows_many = read_all(&store, many);
        assert_eq!(rows_one.len(), 120, "one row per minute");
        assert_eq!(rows_many.len(), 120);
        let (total_one, total_many) = (merged(&rows_one), merged(&rows_many));
        assert_eq!(total_one.requests, 120 * 150);
        assert_eq!(total_many.requests, total_one.requests);
        assert_eq!(total_many.errors, total_one.errors);
        assert_eq!(total_many.status_codes, total_one.status_codes);
        for q in [0.5, 0.9, 0.95, 0.99] {
            assert_eq!(total_many.durations.quantile_nanos(q), total_one.durations.quantile_nanos(q), "q={q}");
        }

        // Coarsen everything before minute 120 in chunks of 25 rows: two hour rows remain.
        let mut merged_minutes = 0;
        loop {
            let merged_now = store.coarsen_rollups(many, 120 * MINUTE + 5, 25).expect("coarsen");
            merged_minutes += merged_now;
            if merged_now == 0 {
                break;
            }
        }
        assert_eq!(merged_minutes, 120);
        let hours = read_all(&store, many);
        assert_eq!(hours.iter().map(|row| row.bucket_seconds).collect::<Vec<_>>(), [3600, 3600]);
        let total_hours = merged(&hours);
        assert_eq!(total_hours.requests, total_one.requests);
        assert_eq!(total_hours.errors, total_one.errors);
        assert_eq!(total_hours.status_codes, total_one.status_codes);
        assert_eq!(total_hours.slowest, total_one.slowest, "the slowest survive coarsening");
        // Bin counts add, so merged hours answer exactly like merged minutes.
        for q in [0.5, 0.9, 0.95, 0.99] {
            assert_eq!(total_hours.durations.quantile_nanos(q), total_one.durations.quantile_nanos(q), "q={q}");
        }
        // An hour still under way (cutoff inside hour 2) is not touched.
        store.commit(&[batch(many, vec![delta(125, &[5_000_000])])]).expect("commit");
        assert_eq!(store.coarsen_rollups(many, 150 * MINUTE, 100).expect("coarsen"), 0);

        // Retention removes rollups of buckets that started before the cutoff.
        while store.delete_expired(many, 60 * MINUTE, 1).expect("retention") > 0 {}
        let left: Vec<u64> = read_all(&store, many).iter().map(|row| row.bucket_start_unix_nano / MINUTE).collect();
        assert_eq!(left, [60, 125]);
    }

    /// The writer merges a row it wrote before in memory; a late delta for a minute coarsened
    /// meanwhile must start a new minute row (counted once), not rewrite the merged sum.
    #[test]
    fn rows_merged_in_memory_match_the_store_and_coarsening_is_not_counted_twice() {
        let directory = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&directory.path().join("db.sqlite")).expect("store");
        let project = store.create_project("shop").expect("project").id;
        // Five commits to the same minute row: the first reads the store, the rest the cache.
        for part in 0..5 {
            store.commit(&[batch(project, vec![delta(3, &durations(part, 20))])]).expect("commit");
        }
        let rows = read_all(&store, project);
        assert_eq!(rows.len(), 1);
        let mut expected = delta(3, &durations(0, 20));
        for part in 1..5 {
            expected.merge(&delta(3, &durations(part, 20))).expect("merge");
        }
        assert_eq!((rows[0].requests, rows[0].errors), (expected.requests, expected.errors));
        assert_eq!(rows[0].status_codes, expected.status_codes);
        assert_eq!(rows[0].durations.quantile_nanos(0.99), expected.durations.quantile_nanos(0.99));

        // Coarsen minute 3 into its hour, then a late request for minute 3 arrives.
        while store.coarsen_rollups(project, 120 * MINUTE, 100).expect("coarsen") > 0 {}
        store.commit(&[batch(project, vec![delta(3, &[7_000_000])])]).expect("late commit");
        let rows = read_all(&store, project);
        let widths: Vec<(u32, u64)> = rows.iter().map(|row| (row.bucket_seconds, row.requests)).collect();
        assert!(widths.contains(&(3600, 100)), "the hour holds the five commits: {widths:?}");
        assert!(widths.contains(&(60, 1)), "the late minute row holds only the late request: {widths:?}");
        assert_eq!(merged(&rows).requests, 101);
    }

    #[test]
    fn the_row_cache_is_bounded() {
        let mut cache = super::RowCache::default();
        for index in 0..super::super::row_cache::ROWS_PER_TABLE + 10 {
            cache.insert(index, index);
        }
        assert!(cache.len() <= super::super::row_cache::ROWS_PER_TABLE);
        assert_eq!(
            cache.get_mut(&(super::super::row_cache::ROWS_PER_TABLE + 9)),
            Some(&mut (super::super::row_cache::ROWS_PER_TABLE + 9))
        );
    }
}
