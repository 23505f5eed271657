//! Storage: the [`Store`] trait every backend implements, and the types crossing it.
//!
//! Writes arrive as [`WriteBatch`]es from the pipeline's single writer, many per call, and are
//! committed in one transaction ([`Store::commit`]): that is the group commit behind every
//! acknowledgement. Reads are synchronous and run on blocking threads; they never block the
//! writer (SQLite WAL readers see the last committed state).

pub mod analytics;
pub mod api_keys;
pub mod compression;
pub mod errors;
pub mod health;
pub mod job_rollups;
pub mod otlp_outbox;
pub mod outbox;
pub mod privacy;
pub mod query_rollups;
pub mod rollups;
pub mod service_map;
pub mod sessions;
pub mod sourcemaps;
pub mod sqlite;
mod types;
pub mod users;

pub use types::*;

use crate::auth::{ApiKeySecret, KeyScope};
use errors::{ErrorStats, Issue, IssueDetail, IssueQuery, StatusChange, StoredErrorEvent};
use sourcemaps::{SourceMapInfo, SourceMapUpload, StoredSourceMap};

/// A storage failure. Callers answer 503 (retryable) for these: nothing was acknowledged.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database reported an error.
    #[error("database error: {0}")]
    Database(String),
    /// A named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The request conflicts with existing data (e.g. a duplicate project name).
    #[error("{0}")]
    Conflict(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(error: rusqlite::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

impl From<r2d2::Error> for StoreError {
    fn from(error: r2d2::Error) -> Self {
        StoreError::Database(error.to_string())
    }
}

/// Result alias for store calls.
pub type StoreResult<T> = Result<T, StoreError>;

/// A storage backend. All methods block; call them from blocking threads.
pub trait Store: Send + Sync + 'static {
    /// Brings summaries the store keeps behind the data up to date (SQLite folds pending
    /// session deltas into `sessions`), so a reader of the database file itself, past this
    /// trait, sees every committed change; the trait's own reads do this already. Errors when
    /// that write fails.
    fn fold_pending_summaries(&self) -> StoreResult<()> {
        Ok(())
    }
    /// Creates a project; the slug is derived from the name. Errors with `Conflict` when a
    /// project with that slug exists.
    fn create_project(&self, name: &str) -> StoreResult<Project>;
    /// All projects, oldest first.
    fn list_projects(&self) -> StoreResult<Vec<Project>>;
    /// Finds a project by slug or numeric id.
    fn find_project(&self, slug_or_id: &str) -> StoreResult<Option<Project>>;
    /// Changes a project's retention (days, ≥ 1) and trace head-sampling rate (0.0..=1.0).
    fn update_project_settings(
        &self,
        project_id: i64,
        retention_days: u32,
        trace_sample_rate: f64,
    ) -> StoreResult<Project>;
    /// Replaces the project's in-app rules (module / path prefixes).
    fn update_in_app_rules(&self, project_id: i64, include: &[String], exclude: &[String]) -> StoreResult<Project>;
    /// Replaces the origins browsers may post product events from (empty = any).
    fn update_allowed_origins(&self, project_id: i64, origins: &[String]) -> StoreResult<Project>;
    /// Replaces the project's endpoint health thresholds (validated by the caller).
    fn update_health_thresholds(&self, project_id: i64, thresholds: &health::HealthThresholds) -> StoreResult<Project>;
    /// Product events matching the query, newest first.
    fn search_events(&self, project_id: i64, query: &EventQuery) -> StoreResult<Page<sightline_model::ProductEvent>>;
    /// Events naming a journey (`journey.id`) in the query's range, oldest first, at most
    /// `query.max_touches`.
    fn journey_touches(
        &self,
        project_id: i64,
        query: &analytics::JourneyTouchQuery,
    ) -> StoreResult<analytics::Capped<analytics::JourneyTouch>>;
    /// Event counts, distinct users and distinct sessions per group, per time bucket and overall.
    fn event_stats(&self, project_id: i64, query: &analytics::EventStatsQuery) -> StoreResult<analytics::EventStats>;
    /// Web-vital fields of `performance` events in `[from, to]` (ns), newest first, at most
    /// `max_samples`.
    fn performance_samples(
        &self,
        project_id: i64,
        from_unix_nano: u64,
        to_unix_nano: u64,
        max_samples: usize,
    ) -> StoreResult<analytics::Capped<analytics::PerformanceSample>>;
    /// Creates and stores a key; returns the plain key (shown once) and its record.
    fn create_api_key(&self, project_id: i64, scope: KeyScope, name: &str)
    -> StoreResult<(ApiKeySecret, ApiKeyRecord)>;
    /// Looks a key up by its hash; revoked keys are not found.
    fn find_api_key(&self, key: &ApiKeySecret) -> StoreResult<Option<ApiKeyRecord>>;

    /// Creates a dashboard user with a normalized e-mail and an Argon2id PHC hash
    /// ([`crate::users::hash_password`]); `Conflict` when the e-mail is taken.
    fn create_user(&self, email: &str, password_hash: &str) -> StoreResult<users::User>;
    /// Replaces a user's password hash and ends their sessions; `NotFound` for an unknown e-mail.
    fn set_user_password(&self, email: &str, password_hash: &str) -> StoreResult<()>;
    /// The user with this (normalized) e-mail and their password hash.
    fn find_user_credentials(&self, email: &str) -> StoreResult<Option<users::UserCredentials>>;
    /// How many dashboard users exist (0 before the first admin).
    fn count_users(&self) -> StoreResult<u64>;
    /// Makes a user a member of a project (idempotent); `NotFound` for an unknown user or project.
    fn add_membership(&self, user_id: i64, project_id: i64) -> StoreResult<()>;
    /// The projects a user is a member of, oldest first: all the dashboard shows them.
    fn user_projects(&self, user_id: i64) -> StoreResult<Vec<Project>>;
    /// Stores a signed-in session by the SHA-256 of its token, valid until `expires_at_unix_ms`.
    fn create_ui_session(&self, user_id: i64, token_hash: &[u8; 32], expires_at_unix_ms: i64) -> StoreResult<()>;
    /// The unexpired session whose token hashes to `token_hash`.
    fn find_ui_session(&self, token_hash: &[u8; 32]) -> StoreResult<Option<users::UiSession>>;
    /// Ends a session (sign-out); an unknown one is not an error.
    fn delete_ui_session(&self, token_hash: &[u8; 32]) -> StoreResult<()>;
    /// A key by its numeric id; revoked keys are not found.
    fn find_api_key_by_id(&self, key_id: i64) -> StoreResult<Option<ApiKeyRecord>>;
    /// Lets a key with scope `read` or `all` read another project too (its API routes and the
    /// cross-project analytics); false when it already could. `NotFound` for an unknown key or
    /// project, `Conflict` for an ingest key.
    fn grant_project_read(&self, key_id: i64, project_id: i64) -> StoreResult<bool>;
    /// Withdraws a read grant; false when there was none.
    fn revoke_project_read(&self, key_id: i64, project_id: i64) -> StoreResult<bool>;
    /// True when the key has a read scope and the project is its own or granted to it.
    fn key_may_read(&self, key: &ApiKeyRecord, project_id: i64) -> StoreResult<bool>;
    /// The project's live (unrevoked) keys, oldest first, with their read grants; for the
    /// dashboard's key list (prefixes only, never a key).
    fn list_api_keys(&self, project_id: i64) -> StoreResult<Vec<api_keys::ApiKeyListing>>;
    /// Revokes a live key of the project: it no longer authenticates (ingest caches it for at
    /// most `pipeline::CACHE_TTL` unless told, see `Ingestor::forget_keys_of`). False when the
    /// project has no such live key.
    fn revoke_api_key(&self, project_id: i64, key_id: i64) -> StoreResult<bool>;

    /// Commits every batch in one transaction: all or nothing, and durable when it returns.
    fn commit(&self, batches: &[WriteBatch]) -> StoreResult<()>;

    /// Commits like [`Store::commit`] but may return before the commit is durable (SQLite:
    /// the WAL frames are written, not fsynced), so the next commit can start while the disk
    /// catches up. Nothing committed this way may be acknowledged until a later
    /// [`Store::sync_commits`] returns. By default the same as [`Store::commit`].
    fn commit_deferring_sync(&self, batches: &[WriteBatch]) -> StoreResult<()> {
        self.commit(batches)
    }

    /// Makes every commit that returned before this call durable (SQLite: one fdatasync of the
    /// WAL). Errors when the sync fails; the commits' data must then not be acknowledged. By
    /// default nothing to do.
    fn sync_commits(&self) -> StoreResult<()> {
        Ok(())
    }

    /// One trace's spans with resources and scopes; `None` when no span is stored.
    fn get_trace(&self, project_id: i64, trace_id: &sightline_model::TraceId) -> StoreResult<Option<Vec<StoredSpan>>>;
    /// Trace summaries matching the query, newest first.
    fn search_traces(&self, project_id: i64, query: &TraceQuery) -> StoreResult<Page<TraceSummary>>;
    /// Log records matching the query, newest first.
    fn search_logs(&self, project_id: i64, query: &LogQuery) -> StoreResult<Page<StoredLog>>;
    /// Metric streams' descriptions.
    fn list_metrics(&self, project_id: i64) -> StoreResult<Vec<MetricDescription>>;
    /// Points of one metric name in `[from, to]` (ns), ordered by time.
    fn metric_points(
        &self,
        project_id: i64,
        name: &str,
        from_unix_nano: u64,
        to_unix_nano: u64,
        max_points: usize,
    ) -> StoreResult<Vec<StoredMetricPoint>>;
    /// Points of one metric name that one service (`service.name`) sent in `[from, to]` (ns),
    /// ordered by time; for per-service views such as system health.
    fn service_metric_points(
        &self,
        project_id: i64,
        service_name: &str,
        name: &str,
        from_unix_nano: u64,
        to_unix_nano: u64,
        max_points: usize,
    ) -> StoreResult<Vec<StoredMetricPoint>>;
    /// Services seen, with per-signal counts and last-seen time.
    fn list_services(&self, project_id: i64) -> StoreResult<Vec<ServiceStats>>;
    /// Counters of item outcomes (accepted, sampled_out, invalid) per signal.
    fn outcomes(&self, project_id: i64) -> StoreResult<Vec<OutcomeCount>>;
    /// Accepted items per signal and minute of commit since `from_unix_nano` (ns), oldest first
    /// per signal; minutes with nothing accepted are absent.
    fn ingest_minutes(&self, project_id: i64, from_unix_nano: u64) -> StoreResult<Vec<IngestMinute>>;

    /// Issues matching the query.
    fn list_issues(&self, project_id: i64, query: &IssueQuery) -> StoreResult<Page<Issue>>;
    /// One issue with its latest event, hourly occurrences over the last `hours`, top tag
    /// values and status history; `None` when it is not an issue of the project.
    fn get_issue(&self, project_id: i64, issue_id: i64, hours: u32) -> StoreResult<Option<IssueDetail>>;
    /// An issue's events, newest first; `None` when it is not an issue of the project.
    fn issue_events(
        &self,
        project_id: i64,
        issue_id: i64,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<Page<StoredErrorEvent>>>;
    /// Changes the status of issues (all or none); `NotFound` when an id is not the project's.
    fn change_issue_status(&self, project_id: i64, issue_ids: &[i64], change: &StatusChange)
    -> StoreResult<Vec<Issue>>;
    /// Error counts in `[from, to]` (ns), optionally for one service.
    fn error_stats(
        &self,
        project_id: i64,
        from_unix_nano: u64,
        to_unix_nano: u64,
        service: Option<&str>,
    ) -> StoreResult<ErrorStats>;

    /// Stores a release's source maps in one transaction (all or none); a map with the name of
    /// a stored one of the release replaces it. Returns what was stored, in upload order.
    fn put_sourcemaps(
        &self,
        project_id: i64,
        release: &str,
        uploads: &[SourceMapUpload],
    ) -> StoreResult<Vec<SourceMapInfo>>;
    /// A release's source maps without content, by name.
    fn list_sourcemaps(&self, project_id: i64, release: &str) -> StoreResult<Vec<SourceMapInfo>>;
    /// The source map of a release for a minified file, by the file's key
    /// ([`sourcemaps::minified_file_key`], e.g. `main.3f2a1b.js`); the latest upload wins when
    /// several names share the key. `None` when the release has none.
    fn find_sourcemap(&self, project_id: i64, release: &str, file_key: &str) -> StoreResult<Option<StoredSourceMap>>;
    /// Deletes one source map by the name it was uploaded under; false when there was none.
    fn delete_sourcemap(&self, project_id: i64, release: &str, name: &str) -> StoreResult<bool>;

    /// Session summaries matching the query, newest session start first.
    fn list_sessions(
        &self,
        project_id: i64,
        query: &sessions::SessionQuery,
    ) -> StoreResult<Page<sessions::SessionSummary>>;
    /// One session's summary and a page of its timeline (product events, requests, logs and
    /// errors in time order); `None` when the project has no such session.
    fn get_session(
        &self,
        project_id: i64,
        session_id: &str,
        timeline: &sessions::TimelineQuery,
    ) -> StoreResult<Option<sessions::SessionDetail>>;
    /// Share of SERVER spans carrying a session id, over the days overlapping `[from, to]` (ns;
    /// all stored days when absent).
    fn session_correlation(
        &self,
        project_id: i64,
        from_unix_nano: Option<u64>,
        to_unix_nano: Option<u64>,
    ) -> StoreResult<sessions::CorrelationRate>;

    /// Removes dead letters that cannot be replayed usefully any more: product-event ones whose
    /// event is gone, OTLP ones parked before `otlp_cutoff_unix_ms`. Returns how many.
    fn expire_dead_letters(&self, otlp_cutoff_unix_ms: i64) -> StoreResult<usize>;
    /// The oldest queued OTLP payloads of a forwarding destination (at most `max_payloads`,
    /// at most `max_bytes` together unless the first alone is larger), in acceptance order.
    fn otlp_outbox_claim(
        &self,
        destination: &str,
        max_payloads: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<otlp_outbox::QueuedPayload>>;
    /// Removes delivered outbox rows.
    fn otlp_outbox_delivered(&self, ids: &[i64]) -> StoreResult<()>;
    /// Counts a failed (retryable) attempt on outbox rows that stay queued.
    fn otlp_outbox_failed_attempt(&self, ids: &[i64]) -> StoreResult<()>;
    /// Moves outbox rows refused for good to the dead letters, with the reason.
    fn otlp_outbox_dead_letter(&self, ids: &[i64], reason: &str) -> StoreResult<()>;
    /// Queues a destination's dead letters again (attempts reset); returns how many.
    fn otlp_outbox_replay(&self, destination: &str) -> StoreResult<usize>;
    /// What a destination's outbox and dead letters hold.
    fn otlp_outbox_stats(&self, destination: &str) -> StoreResult<otlp_outbox::OtlpQueueStats>;
    /// A destination's newest dead letters, at most `limit`.
    fn otlp_dead_letters(&self, destination: &str, limit: usize) -> StoreResult<Vec<otlp_outbox::OtlpDeadLetter>>;

    /// Deletes expired rows (older than `cutoff_unix_nano`) of the project, at most `max_rows`
    /// per table and call, table after table (spans, trace summaries, logs, metric points), in
    /// one short transaction; returns how many went. Callers loop until it returns 0.
    fn delete_expired(&self, project_id: i64, cutoff_unix_nano: u64, max_rows: usize) -> StoreResult<usize>;
    /// Returns some free pages to the file system after deletions (bounded work per call);
    /// returns how many free pages remain, so callers loop until 0.
    fn reclaim_space(&self) -> StoreResult<u64>;
    /// Service map edge rows of minutes starting in `[from, to)` (ns), optionally only those
    /// where `service` is the caller or the callee, by minute.
    fn service_edges(
        &self,
        project_id: i64,
        service: Option<&str>,
        from_unix_nano: u64,
        to_unix_nano: u64,
    ) -> StoreResult<Vec<service_map::EdgeRollup>>;
    /// Endpoint RED rollup rows matching the query (buckets starting in `[from, to)`), by
    /// bucket start; 1-minute rows and, for older data, 1-hour rows.
    fn endpoint_rollups(
        &self,
        project_id: i64,
        query: &rollups::RollupQuery,
    ) -> StoreResult<Vec<rollups::EndpointRollup>>;
    /// Like [`Store::endpoint_rollups`] with each row's `status_codes` and `slowest` left empty:
    /// what pages that only need counts and sketches read (it skips two JSON columns a row).
    fn endpoint_rollup_sketches(
        &self,
        project_id: i64,
        query: &rollups::RollupQuery,
    ) -> StoreResult<Vec<rollups::EndpointRollup>>;
    /// Requests, errors and duration sums per endpoint over every stored rollup row.
    fn rollup_totals(&self, project_id: i64) -> StoreResult<Vec<rollups::RollupTotals>>;
    /// Merges up to `max_rows` 1-minute rollup rows (endpoint, then query, then job rollups) of
    /// whole hours before the cutoff into 1-hour rows, in short transactions; returns the
    /// minute rows merged (callers loop until 0).
    fn coarsen_rollups(&self, project_id: i64, cutoff_unix_nano: u64, max_rows: usize) -> StoreResult<usize>;
    /// Database query rollup rows matching the query (buckets starting in `[from, to)`), by
    /// bucket start; 1-minute rows and, for older data, 1-hour rows.
    fn query_rollups(
        &self,
        project_id: i64,
        query: &query_rollups::QueryRollupQuery,
    ) -> StoreResult<Vec<query_rollups::QueryRollup>>;
    /// Background job and messaging rollup rows matching the query (buckets starting in
    /// `[from, to)`), by bucket start; 1-minute rows and, for older data, 1-hour rows.
    fn job_rollups(
        &self,
        project_id: i64,
        query: &job_rollups::JobRollupQuery,
    ) -> StoreResult<Vec<job_rollups::JobRollup>>;
    /// True when the store answers (for `/ready`).
    fn is_ready(&self) -> bool;

    /// Creates a destination of `project_id` (or [`outbox::SERVER_WIDE_PROJECT`]); events
    /// committed from now on are queued for it. `Conflict` when the name is taken.
    fn create_destination(
        &self,
        project_id: i64,
        name: &str,
        enabled: bool,
        config: &crate::exporters::DestinationConfig,
    ) -> StoreResult<outbox::Destination>;
    /// Creates or replaces the server-wide destination named `name` (environment variables).
    fn upsert_server_destination(
        &self,
        name: &str,
        enabled: bool,
        config: &crate::exporters::DestinationConfig,
    ) -> StoreResult<outbox::Destination>;
    /// Destinations of a project and the server-wide ones (`Some`), or all (`None`), by id.
    fn list_destinations(&self, project_id: Option<i64>) -> StoreResult<Vec<outbox::Destination>>;
    /// One destination by id.
    fn get_destination(&self, destination_id: i64) -> StoreResult<Option<outbox::Destination>>;
    /// Replaces a destination's name, enabled flag and settings.
    fn update_destination(
        &self,
        destination_id: i64,
        name: &str,
        enabled: bool,
        config: &crate::exporters::DestinationConfig,
    ) -> StoreResult<outbox::Destination>;
    /// Deletes a destination with its queue and dead letters; false when there was none.
    fn delete_destination(&self, destination_id: i64) -> StoreResult<bool>;
    /// The oldest `limit` queued events of a destination, with their session start.
    fn pending_outbox(&self, destination_id: i64, limit: usize) -> StoreResult<Vec<crate::exporters::OutboxEvent>>;
    /// Records a delivery round in one transaction (deletes delivered rows, parks dead letters,
    /// updates counters and `last_error`).
    fn record_delivery(&self, report: &outbox::DeliveryReport) -> StoreResult<()>;
    /// Queue length and lag of a destination.
    fn outbox_stats(&self, destination_id: i64) -> StoreResult<outbox::QueueStats>;
    /// Dead letters of a destination, newest first, with ids below `before_id` when given;
    /// with `of_project`, only those of that project's events (a server-wide destination
    /// carries every project's events, and a project may see only its own).
    fn dead_letters(
        &self,
        destination_id: i64,
        of_project: Option<i64>,
        limit: usize,
        before_id: Option<i64>,
    ) -> StoreResult<Vec<outbox::DeadLetter>>;
    /// Moves dead letters (all, or the given ids; with `of_project`, only those of that
    /// project's events) back to the outbox; returns how many.
    fn replay_dead_letters(
        &self,
        destination_id: i64,
        of_project: Option<i64>,
        ids: Option<&[i64]>,
    ) -> StoreResult<usize>;
    /// Notified after every commit that queued events, so workers start at once.
    fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify>;
    /// The project's privacy settings, hash key and opt-out list; `NotFound` for an unknown
    /// project.
    fn privacy_settings(&self, project_id: i64) -> StoreResult<privacy::StoredPrivacy>;
    /// Replaces the project's privacy settings (JSON validated by the caller); `NotFound` for an
    /// unknown project.
    fn put_privacy_settings(&self, project_id: i64, settings_json: &str) -> StoreResult<()>;
    /// Adds a user to the opt-out list; false when already there.
    fn add_opt_out(&self, project_id: i64, user_id: &str) -> StoreResult<bool>;
    /// Removes a user from the opt-out list; false when not there.
    fn remove_opt_out(&self, project_id: i64, user_id: &str) -> StoreResult<bool>;
    /// Erases the data of a user known by any of `user_ids` (the id and its pseudonyms), in one
    /// transaction, and reports what went (see [`privacy::Erasure`]). Idempotent: a second call
    /// reports zeros.
    fn erase_user(&self, project_id: i64, user_ids: &[String]) -> StoreResult<privacy::Erasure>;
}
