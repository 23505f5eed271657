//! The write path: one transaction per group of batches, prepared statements, and caches of
//! resource / scope / metric ids so repeated resources cost no lookups.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::row_cache::RowCache;
use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sightline_model::{Batch, LogRecord, Metric, PointValue, Resource, Scope, Span, TraceId};

use crate::store::compression::StoredJson;
use crate::store::types::json_array;
use crate::store::{LogJson, SignalBatch, SpanJson, StoreResult, TraceSummaryDelta, WriteBatch};

/// Key of the metric-id cache: (project, name, type, temporality, monotonic, unit).
type MetricKey = (i64, String, &'static str, i32, bool, String);

/// Owns the writer connection and id caches. Cache entries made inside a transaction are only
/// kept when it commits, so a rollback never leaves ids pointing at rows that do not exist.
pub(super) struct Writer {
    connection: Connection,
    resource_ids: HashMap<(i64, i64), i64>,
    scope_ids: HashMap<(i64, i64), i64>,
    metric_ids: HashMap<MetricKey, i64>,
    /// Enabled destinations' routing (forwarding's outbox).
    routes: super::outbox::Routes,
    /// The rollup rows as the last commits stored them ([`super::row_cache`]).
    rows: RollupRows,
    /// Rows in `session_deltas` not folded yet, shared with the store's readers
    /// ([`super::sessions_write`]).
    session_deltas: Arc<AtomicU64>,
    /// Stacks committed to `error_stacks` ([`super::issues_write::StackKeys`]), so that an
    /// event of a known stack does not serialize it again; forgotten past [`MAX_KNOWN_STACKS`].
    known_stacks: super::issues_write::StackKeys,
}

/// Stacks the writer remembers; at this many it starts over (a forgotten stack costs one
/// `INSERT OR IGNORE` of its body the next time it is seen). ≈ 40 bytes each.
const MAX_KNOWN_STACKS: usize = 100_000;

/// Deltas in `session_deltas` at which a commit folds them first. A fold rewrites each page of
/// `sessions` the deltas touch once; the commits in between append instead of rewriting those
/// pages each time. The fold runs inside that commit's call, so its requests wait for it.
pub(super) const FOLD_AT_DELTAS: u64 = 16_384;

/// The writer's [`RowCache`] of each rollup table.
#[derive(Default)]
struct RollupRows {
    endpoints: RowCache<super::rollups::RowKey, crate::store::rollups::EndpointRollup>,
    queries: RowCache<super::query_rollups::RowKey, crate::store::query_rollups::QueryRollup>,
    jobs: RowCache<super::job_rollups::RowKey, crate::store::job_rollups::JobRollup>,
}

impl RollupRows {
    fn clear(&mut self) {
        self.endpoints.clear();
        self.queries.clear();
        self.jobs.clear();
    }
}

#[derive(Default)]
struct PendingCaches {
    resource_ids: Vec<((i64, i64), i64)>,
    scope_ids: Vec<((i64, i64), i64)>,
    metric_ids: Vec<(MetricKey, i64)>,
}

/// Per-service counters accumulated over one commit: (spans, logs, points, last seen ns).
type ServiceCounters = HashMap<(i64, String), (u64, u64, u64, u64)>;

impl Writer {
    /// A writer on `connection`; `session_deltas` counts the rows of `session_deltas` (as
    /// the database holds them now).
    pub(super) fn new(connection: Connection, routes: super::outbox::Routes, session_deltas: Arc<AtomicU64>) -> Self {
        Self {
            session_deltas,
            routes,
            connection,
            resource_ids: HashMap::new(),
            scope_ids: HashMap::new(),
            metric_ids: HashMap::new(),
            rows: RollupRows::default(),
            known_stacks: super::issues_write::StackKeys::new(),
        }
    }

    /// The connection, for writes other than commits. Those may rewrite or delete rollup rows
    /// (coarsening, retention), so the cached rows are forgotten.
    pub(super) fn connection(&mut self) -> &mut Connection {
        self.rows.clear();
        // Retention may delete issues, whose row ids SQLite can hand out again.
        self.known_stacks.clear();
        &mut self.connection
    }

    /// Commits the batches in one transaction; returns how many outbox rows it queued. With
    /// `defer_sync` the commit (and a fold before it) runs with `synchronous = NORMAL`: its WAL
    /// frames are written but not fsynced, and the caller must sync the WAL before telling
    /// anyone the data is stored ([`super::SqliteStore::sync_wal`]). The connection is back at
    /// `synchronous = FULL` afterwards, for every other write.
    pub(super) fn commit(&mut self, batches: &[WriteBatch], defer_sync: bool) -> StoreResult<usize> {
        if !defer_sync {
            return self.commit_and_fold(batches);
        }
        self.connection.pragma_update(None, "synchronous", "NORMAL")?;
        let committed = self.commit_and_fold(batches);
        let restored = self.connection.pragma_update(None, "synchronous", "FULL");
        let queued = committed?;
        restored?;
        Ok(queued)
    }

    /// Checkpoints every WAL frame not checkpointed yet (PASSIVE, from this connection, outside
    /// any transaction), so the next commit rewinds the WAL ([`super::checkpoint`]). Copies
    /// only what the checkpoint thread has not; a reader holding an older snapshot makes it
    /// stop short, and the WAL rewinds at a later request. Failure is logged, not returned:
    /// the commit that follows does not depend on it.
    pub(super) fn catch_up_checkpoint(&mut self) {
        match self.connection.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |row| {
            Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
        }) {
            Ok((busy, wal_pages, checkpointed)) => {
                tracing::debug!(busy, wal_pages, checkpointed, "Writer caught up the WAL checkpoint to rewind the WAL");
            }
            Err(error) => tracing::warn!(%error, "WAL checkpoint before a rewind failed; will retry"),
        }
    }

    fn commit_and_fold(&mut self, batches: &[WriteBatch]) -> StoreResult<usize> {
        if self.session_deltas.load(Ordering::Acquire) >= FOLD_AT_DELTAS
            && let Err(error) = self.fold_sessions()
        {
            // The deltas stay and the next commit tries again; the batches are still stored.
            tracing::warn!(%error, "Folding session deltas failed");
        }
        let committed = self.commit_transaction(batches);
        if committed.is_err() {
            // Rows merged in memory during the failed transaction were rolled back on disk.
            self.rows.clear();
        }
        committed
    }

    /// Folds every pending session delta into `sessions` in its own transaction
    /// ([`super::sessions_write::fold`]); returns how many it folded. Errors when the fold
    /// fails; nothing is folded then.
    pub(super) fn fold_sessions(&mut self) -> StoreResult<u64> {
        if self.session_deltas.load(Ordering::Acquire) == 0 {
            return Ok(0);
        }
        let transaction = self.connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let folded = super::sessions_write::fold(&transaction)?;
        transaction.commit()?;
        self.session_deltas.store(0, Ordering::Release);
        Ok(folded)
    }

    fn commit_transaction(&mut self, batches: &[WriteBatch]) -> StoreResult<usize> {
        let mut pending = PendingCaches::default();
        let routes = self.routes.read().map(|routes| routes.clone()).unwrap_or_default();
        let now_unix_ms = super::now_unix_ms();
        let mut queued = 0usize;
        let now_unix_nano = super::now_unix_nano();
        // IMMEDIATE takes the write lock up front, waiting in the busy handler. A deferred
        // transaction that read first fails at once with SQLITE_BUSY when another connection
        // (retention, a TRUNCATE checkpoint) wrote or held the lock meanwhile.
        let transaction = self.connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        let mut services = ServiceCounters::new();
        // Issues and sessions are aggregated over the whole commit and written once each at
        // the end: many requests in one commit share hot issues and open sessions.
        let mut grouper = super::issues_write::ErrorGrouper::new(&transaction, now_unix_nano)?;
        let mut sessions = super::sessions_write::SessionWriter::default();
        let caches =
            Caches { resource_ids: &self.resource_ids, scope_ids: &self.scope_ids, metric_ids: &self.metric_ids };
        for batch in batches {
            let mut context = BatchContext {
                transaction: &transaction,
                project_id: batch.project_id,
                caches: &caches,
                pending: &mut pending,
                services: &mut services,
            };
            let mut duplicate_event_ids = std::collections::HashSet::new();
            let mut rowids = super::sessions_write::ItemRowids::default();
            match &batch.signal {
                SignalBatch::Traces(spans) => {
                    rowids.spans = context.insert_spans(spans, &batch.serialized.spans)?;
                    upsert_trace_summaries(&transaction, batch.project_id, &batch.trace_summaries)?;
                }
                // Inserted after the batch's error events, which rows may point at.
                SignalBatch::Logs(_) => {}
                SignalBatch::Metrics(metrics) => context.insert_metrics(metrics)?,
                SignalBatch::Events(events) => {
                    let mut fresh = Vec::new();
                    duplicate_event_ids = super::events::insert_events(
                        &transaction,
                        batch.project_id,
                        events,
                        &batch.serialized.events,
                        &mut fresh,
                    )?;
                    queued += super::outbox::queue_events(
                        &transaction,
                        &routes,
                        batch.project_id,
                        events,
                        &fresh,
                        now_unix_ms,
                    )?;
                }
            }
            let mut duplicate_derived_ids = std::collections::HashSet::new();
            if !batch.derived_events.is_empty() {
                let mut fresh = Vec::new();
                duplicate_derived_ids = super::events::insert_events(
                    &transaction,
                    batch.project_id,
                    &batch.derived_events,
                    &batch.serialized.derived_events,
                    &mut fresh,
                )?;
                queued += super::outbox::queue_events(
                    &transaction,
                    &routes,
                    batch.project_id,
                    &batch.derived_events,
                    &fresh,
                    now_unix_ms,
                )?;
            }
            add_outcomes(&transaction, batch, now_unix_nano)?;
            // A retried event batch must not count its errors twice.
            let is_fresh = |error: &crate::store::errors::ErrorEvent| {
                error.source != crate::store::errors::ErrorSource::ProductEvent
                    || !duplicate_event_ids.contains(&error.event_id)
            };
            let errors: std::borrow::Cow<'_, [crate::store::errors::ErrorEvent]> = if duplicate_event_ids.is_empty() {
                std::borrow::Cow::Borrowed(&batch.errors)
            } else {
                std::borrow::Cow::Owned(batch.errors.iter().filter(|error| is_fresh(error)).cloned().collect())
            };
            rowids.errors = Vec::with_capacity(errors.len());
            for (index, error) in batch.errors.iter().enumerate() {
                if !is_fresh(error) {
                    continue;
                }
                let stored = batch.serialized.errors.get(index);
                rowids.errors.push(grouper.add(&transaction, batch.project_id, error, stored, &self.known_stacks)?);
            }
            if let SignalBatch::Logs(records) = &batch.signal {
                // Each log record's error event (the events of a log batch are all fresh).
                let mut record_events = vec![None; sightline_model::batch_len(records)];
                for (error, rowid) in errors.iter().zip(&rowids.errors) {
                    if let Some(slot) = error.log_record.and_then(|index| record_events.get_mut(index)) {
                        *slot = Some(*rowid);
                    }
                }
                rowids.logs = context.insert_logs(records, &batch.serialized.logs, &record_events)?;
            }
            let fresh_events = super::sessions_write::FreshEvents {
                duplicate_event_ids: &duplicate_event_ids,
                duplicate_derived_ids: &duplicate_derived_ids,
            };
            sessions.add_batch(batch, fresh_events, &errors, &rowids);
        }
        let new_stacks = grouper.finish(&transaction)?;
        let appended_deltas = sessions.finish(&transaction)?;
        upsert_service_stats(&transaction, &services)?;
        super::rollups::merge_rollups(&transaction, batches, &mut self.rows.endpoints)?;
        // The calls were paired when the queue admitted each batch (off this serial thread).
        let mut edges = HashMap::new();
        for batch in batches {
            batch.paired_calls.add_to(&mut edges).map_err(super::rollups::database_error)?;
        }
        super::service_map::merge_edges(&transaction, edges)?;
        super::query_rollups::merge_query_rollups(&transaction, batches, &mut self.rows.queries)?;
        super::otlp_outbox::enqueue(&transaction, batches, (now_unix_nano / 1_000_000) as i64)?;
        super::job_rollups::merge_job_rollups(&transaction, batches, &mut self.rows.jobs)?;
        transaction.commit()?;
        self.session_deltas.fetch_add(appended_deltas, Ordering::AcqRel);
        self.resource_ids.extend(pending.resource_ids);
        self.scope_ids.extend(pending.scope_ids);
        self.metric_ids.extend(pending.metric_ids);
        if self.known_stacks.len() + new_stacks.len() > MAX_KNOWN_STACKS {
            self.known_stacks.clear();
        }
        self.known_stacks.extend(new_stacks);
        Ok(queued)
    }
}

struct Caches<'a> {
    resource_ids: &'a HashMap<(i64, i64), i64>,
    scope_ids: &'a HashMap<(i64, i64), i64>,
    metric_ids: &'a HashMap<MetricKey, i64>,
}

struct BatchContext<'a> {
    transaction: &'a Transaction<'a>,
    project_id: i64,
    caches: &'a Caches<'a>,
    pending: &'a mut PendingCaches,
    services: &'a mut ServiceCounters,
}

impl BatchContext<'_> {
    fn resource_id(&mut self, resource: &Resource) -> StoreResult<i64> {
        let key = (self.project_id, resource.fingerprint());
        if let Some(id) = self.caches.resource_ids.get(&key) {
            return Ok(*id);
        }
        if let Some((_, id)) = self.pending.resource_ids.iter().find(|(pending_key, _)| *pending_key == key) {
            return Ok(*id);
        }
        let body = serde_json::to_string(resource).unwrap_or_default();
        let id: i64 = self
            .transaction
            .prepare_cached(
                "INSERT INTO resources (project_id, fingerprint, service_name, body) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (project_id, fingerprint) DO UPDATE SET body = body RETURNING id",
            )?
            .query_row(params![self.project_id, key.1, resource.service_name(), body], |row| row.get(0))?;
        self.pending.resource_ids.push((key, id));
        Ok(id)
    }

    fn scope_id(&mut self, scope: &Scope) -> StoreResult<i64> {
        let key = (self.project_id, scope.fingerprint());
        if let Some(id) = self.caches.scope_ids.get(&key) {
            return Ok(*id);
        }
        if let Some((_, id)) = self.pending.scope_ids.iter().find(|(pending_key, _)| *pending_key == key) {
            return Ok(*id);
        }
        let body = serde_json::to_string(scope).unwrap_or_default();
        let id: i64 = self
            .transaction
            .prepare_cached(
                "INSERT INTO scopes (project_id, fingerprint, body) VALUES (?1, ?2, ?3)
             ON CONFLICT (project_id, fingerprint) DO UPDATE SET body = body RETURNING id",
            )?
            .query_row(params![self.project_id, key.1, body], |row| row.get(0))?;
        self.pending.scope_ids.push((key, id));
        Ok(id)
    }

    fn count_service(&mut self, service: &str, spans: u64, logs: u64, points: u64, seen_unix_nano: u64) {
        let entry = self.services.entry((self.project_id, service.to_owned())).or_default();
        entry.0 += spans;
        entry.1 += logs;
        entry.2 += points;
        entry.3 = entry.3.max(seen_unix_nano);
    }

    /// Inserts the spans (`serialized`: their JSON columns, computed here when shorter); returns
    /// their row ids in iteration order (for session items).
    fn insert_spans(&mut self, batch: &Batch<Span>, serialized: &[SpanJson]) -> StoreResult<Vec<i64>> {
        // (first rowid, last rowid) of each trace's spans in this batch.
        let mut ranges: HashMap<TraceId, (i64, i64)> = HashMap::new();
        let mut rowids = Vec::with_capacity(sightline_model::batch_len(batch));
        for resource_group in batch {
            let resource_id = self.resource_id(&resource_group.resource)?;
            let service = resource_group.resource.service_name();
            for scope_group in &resource_group.scopes {
                let scope_id = self.scope_id(&scope_group.scope)?;
                let mut statement = self.transaction.prepare_cached(
                    "INSERT INTO spans (project_id, trace_id, span_id, parent_span_id, trace_state, flags, name, kind,
                        start_time_unix_nano, end_time_unix_nano, status_code, status_message, attributes,
                        dropped_attributes_count, events, dropped_events_count, links, dropped_links_count,
                        resource_id, scope_id, service_name)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21)",
                )?;
                let mut latest = 0u64;
                for span in &scope_group.items {
                    let made_here;
                    let json = match serialized.get(rowids.len()) {
                        Some(json) => json,
                        None => {
                            made_here = SpanJson::of(span);
                            &made_here
                        }
                    };
                    statement.execute(params![
                        self.project_id,
                        &span.trace_id.0[..],
                        &span.span_id.0[..],
                        span.parent_span_id.as_ref().map(|parent| parent.0.to_vec()),
                        span.trace_state,
                        span.flags,
                        span.name,
                        span.kind,
                        span.start_time_unix_nano as i64,
                        span.end_time_unix_nano as i64,
                        span.status_code,
                        span.status_message,
                        json.attributes,
                        span.dropped_attributes_count,
                        json.events,
                        span.dropped_events_count,
                        json.links,
                        span.dropped_links_count,
                        resource_id,
                        scope_id,
                        service,
                    ])?;
                    let rowid = self.transaction.last_insert_rowid();
                    rowids.push(rowid);
                    let range = ranges.entry(span.trace_id).or_insert((rowid, rowid));
                    range.0 = range.0.min(rowid);
                    range.1 = range.1.max(rowid);
                    latest = latest.max(span.end_time_unix_nano);
                }
                self.count_service(service, scope_group.items.len() as u64, 0, 0, latest);
            }
        }
        let mut statement = self.transaction.prepare_cached(
            "INSERT INTO trace_span_ranges (project_id, trace_id, first_span_rowid, last_span_rowid) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for (trace_id, (first, last)) in ranges {
            statement.execute(params![self.project_id, &trace_id.0[..], first, last])?;
        }
        Ok(rowids)
    }

    /// Inserts the log records (`serialized`: their JSON columns, computed here when shorter;
    /// `record_events`: the row id of each record's error event, in the same order, which a
    /// row whose columns leave the stack trace to it points at); returns their row ids in
    /// iteration order (for session items).
    fn insert_logs(
        &mut self,
        batch: &Batch<LogRecord>,
        serialized: &[LogJson],
        record_events: &[Option<i64>],
    ) -> StoreResult<Vec<i64>> {
        let mut rowids = Vec::with_capacity(sightline_model::batch_len(batch));
        for resource_group in batch {
            let resource_id = self.resource_id(&resource_group.resource)?;
            let service = resource_group.resource.service_name();
            for scope_group in &resource_group.scopes {
                let scope_id = self.scope_id(&scope_group.scope)?;
                let mut statement = self.transaction.prepare_cached(
                    "INSERT INTO logs (project_id, timestamp_unix_nano, time_unix_nano, observed_time_unix_nano,
                        severity_number, severity_text, body, attributes, dropped_attributes_count, flags,
                        trace_id, span_id, event_name, resource_id, scope_id, service_name, stack_event_id)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
                )?;
                let mut latest = 0u64;
                for record in &scope_group.items {
                    let event_rowid = record_events.get(rowids.len()).copied().flatten();
                    let made_here;
                    let json = match serialized.get(rowids.len()) {
                        // Columns that leave the stack trace to an event that was not stored
                        // are made again in full.
                        Some(json) if !json.stack_in_error_event || event_rowid.is_some() => json,
                        _ => {
                            made_here = LogJson::of(record);
                            &made_here
                        }
                    };
                    let stack_event_id = if json.stack_in_error_event { event_rowid } else { None };
                    statement.execute(params![
                        self.project_id,
                        record.effective_time_unix_nano() as i64,
                        record.time_unix_nano as i64,
                        record.observed_time_unix_nano as i64,
                        record.severity_number,
                        record.severity_text,
                        json.body,
                        rusqlite::types::ToSqlOutput::Borrowed(match &json.attributes {
                            StoredJson::Text(text) => rusqlite::types::ValueRef::Text(text.as_bytes()),
                            StoredJson::Compressed(frame) => rusqlite::types::ValueRef::Blob(frame),
                        }),
                        record.dropped_attributes_count,
                        record.flags,
                        record.trace_id.map(|trace_id| trace_id.0.to_vec()),
                        record.span_id.map(|span_id| span_id.0.to_vec()),
                        record.event_name,
                        resource_id,
                        scope_id,
                        service,
                        stack_event_id,
                    ])?;
                    rowids.push(self.transaction.last_insert_rowid());
                    latest = latest.max(record.effective_time_unix_nano());
                }
                self.count_service(service, 0, scope_group.items.len() as u64, 0, latest);
            }
        }
        Ok(rowids)
    }

    fn metric_id(&mut self, metric: &Metric) -> StoreResult<i64> {
        let key: MetricKey = (
            self.project_id,
            metric.name.clone(),
            metric.kind.type_name(),
            metric.kind.aggregation_temporality(),
            metric.kind.is_monotonic(),
            metric.unit.clone(),
        );
        let latest = metric.points.iter().map(|point| point.time_unix_nano).max().unwrap_or(0) as i64;
        let cached =
            self.caches.metric_ids.get(&key).copied().or_else(|| {
                self.pending.metric_ids.iter().find(|(pending_key, _)| *pending_key == key).map(|(_, id)| *id)
            });
        if let Some(id) = cached {
            self.transaction
                .prepare_cached("UPDATE metrics SET last_seen_unix_nano = max(last_seen_unix_nano, ?2) WHERE id = ?1")?
                .execute(params![id, latest])?;
            return Ok(id);
        }
        let id: i64 = self.transaction.prepare_cached(
            "INSERT INTO metrics (project_id, name, type, aggregation_temporality, is_monotonic, unit, description, metadata, last_seen_unix_nano)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
             ON CONFLICT (project_id, name, type, aggregation_temporality, is_monotonic, unit) DO UPDATE SET
                description = excluded.description,
                metadata = excluded.metadata,
                last_seen_unix_nano = max(last_seen_unix_nano, excluded.last_seen_unix_nano)
             RETURNING id",
        )?
        .query_row(
            params![key.0, key.1, key.2, key.3, key.4, key.5, metric.description, metric.metadata.to_json_string(), latest],
            |row| row.get(0),
        )?;
        self.pending.metric_ids.push((key, id));
        Ok(id)
    }

    fn insert_metrics(&mut self, batch: &Batch<Metric>) -> StoreResult<()> {
        for resource_group in batch {
            let resource_id = self.resource_id(&resource_group.resource)?;
            let service = resource_group.resource.service_name();
            for scope_group in &resource_group.scopes {
                let scope_id = self.scope_id(&scope_group.scope)?;
                for metric in &scope_group.items {
                    let metric_id = self.metric_id(metric)?;
                    let mut statement = self.transaction.prepare_cached(
                        "INSERT INTO metric_points (project_id, metric_id, resource_id, scope_id, service_name, attributes,
                            start_time_unix_nano, time_unix_nano, flags, value, exemplars)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                    )?;
                    let mut latest = 0u64;
                    for point in &metric.points {
                        statement.execute(params![
                            self.project_id,
                            metric_id,
                            resource_id,
                            scope_id,
                            service,
                            point.attributes.to_json_string(),
                            point.start_time_unix_nano as i64,
                            point.time_unix_nano as i64,
                            point.flags,
                            point_value_json(&point.value),
                            json_array(&point.exemplars),
                        ])?;
                        latest = latest.max(point.time_unix_nano);
                    }
                    self.count_service(service, 0, 0, metric.points.len() as u64, latest);
                }
            }
        }
        Ok(())
    }
}

/// Point values as JSON. serde_json writes non-finite doubles (no-recorded-value points) as
/// `null`; the read path turns an unreadable value back into NaN.
fn point_value_json(value: &PointValue) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".to_owned())
}

fn upsert_trace_summaries(
    transaction: &Transaction<'_>,
    project_id: i64,
    deltas: &[TraceSummaryDelta],
) -> StoreResult<()> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO trace_summaries (project_id, trace_id, start_time_unix_nano, end_time_unix_nano,
            root_service_name, root_span_name, root_duration_nanos, span_count, error_count, services)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)
         ON CONFLICT (project_id, trace_id) DO UPDATE SET
            start_time_unix_nano = min(start_time_unix_nano, excluded.start_time_unix_nano),
            end_time_unix_nano = max(end_time_unix_nano, excluded.end_time_unix_nano),
            root_service_name = coalesce(excluded.root_service_name, root_service_name),
            root_span_name = coalesce(excluded.root_span_name, root_span_name),
            root_duration_nanos = coalesce(excluded.root_duration_nanos, root_duration_nanos),
            span_count = span_count + excluded.span_count,
            error_count = error_count + excluded.error_count,
            services = excluded.services",
    )?;
    // The merged list is built here: SQL string tests on the whole '|a|b|' text miss names
    // already stored when the delta also brings new ones, and duplicate them.
    let mut stored_services =
        transaction.prepare_cached("SELECT services FROM trace_summaries WHERE project_id = ?1 AND trace_id = ?2")?;
    for delta in deltas {
        let stored: Option<String> =
            stored_services.query_row(params![project_id, &delta.trace_id.0[..]], |row| row.get(0)).optional()?;
        let services = merged_services(stored.as_deref(), &delta.services);
        let (root_service, root_name, root_duration) = match &delta.root {
            Some((service, name, duration)) => (Some(service.as_str()), Some(name.as_str()), Some(*duration as i64)),
            None => (None, None, None),
        };
        statement.execute(params![
            project_id,
            &delta.trace_id.0[..],
            delta.start_time_unix_nano as i64,
            delta.end_time_unix_nano as i64,
            root_service,
            root_name,
            root_duration,
            delta.span_count as i64,
            delta.error_count as i64,
            services,
        ])?;
    }
    Ok(())
}

/// Services as `|a|b|`: the stored names, then the delta's new ones, each once, in order of
/// first appearance (what `LIKE '%|name|%'` searches rely on).
fn merged_services(stored: Option<&str>, delta_services: &[String]) -> String {
    let mut merged = stored.filter(|text| text.starts_with('|')).unwrap_or("|").to_owned();
    for service in delta_services {
        if !merged.contains(&format!("|{service}|")) {
            merged.push_str(service);
            merged.push('|');
        }
    }
    merged
}

/// Adds the batch's outcome counters, and its accepted items to the minute of `now_unix_nano`
/// (`ingest_minutes`, what the overview's ingest rates read).
fn add_outcomes(transaction: &Transaction<'_>, batch: &WriteBatch, now_unix_nano: u64) -> StoreResult<()> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO outcomes (project_id, signal, outcome, count) VALUES (?1, ?2, ?3, ?4)
         ON CONFLICT (project_id, signal, outcome) DO UPDATE SET count = count + excluded.count",
    )?;
    let signal = batch.signal.signal_name();
    for (outcome, count) in [
        ("accepted", batch.outcomes.accepted),
        ("sampled_out", batch.outcomes.sampled_out),
        ("invalid", batch.outcomes.invalid),
    ] {
        if count > 0 {
            statement.execute(params![batch.project_id, signal, outcome, count as i64])?;
        }
    }
    if batch.outcomes.accepted > 0 {
        let minute_unix_nano = now_unix_nano / MINUTE_NANOS * MINUTE_NANOS;
        transaction
            .prepare_cached(
                "INSERT INTO ingest_minutes (project_id, signal, minute_unix_nano, accepted) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (project_id, signal, minute_unix_nano) DO UPDATE SET accepted = accepted + excluded.accepted",
            )?
            .execute(params![batch.project_id, signal, minute_unix_nano as i64, batch.outcomes.accepted as i64])?;
    }
    Ok(())
}

const MINUTE_NANOS: u64 = 60_000_000_000;

fn upsert_service_stats(transaction: &Transaction<'_>, services: &ServiceCounters) -> StoreResult<()> {
    let mut statement = transaction.prepare_cached(
        "INSERT INTO service_stats (project_id, service_name, span_count, log_count, metric_point_count, last_seen_unix_nano)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (project_id, service_name) DO UPDATE SET
            span_count = span_count + excluded.span_count,
            log_count = log_count + excluded.log_count,
            metric_point_count = metric_point_count + excluded.metric_point_count,
            last_seen_unix_nano = max(last_seen_unix_nano, excluded.last_seen_unix_nano)",
    )?;
    for ((project_id, service), (spans, logs, points, last_seen)) in services {
        statement.execute(params![
            project_id,
            service,
            *spans as i64,
            *logs as i64,
            *points as i64,
            *last_seen as i64
        ])?;
    }
    Ok(())
}
