//! The embedded default store: one SQLite file in WAL mode, one writer connection owned by the
//! pipeline's writer thread, and a pool of read-only connections for queries.

mod analytics;
mod api_keys;
mod checkpoint;
mod events;
mod filter;
mod grants;
mod issues_read;
mod issues_write;
mod job_rollups;
mod migrations;
mod otlp_outbox;
mod outbox;
mod privacy;
mod query_rollups;
mod read;
mod retention;
mod rollups;
mod row_cache;
mod service_map;
mod sessions_read;
mod sessions_write;
mod sourcemaps;
mod users;
mod write;

use std::path::Path;
use std::sync::Mutex;
use std::time::{SystemTime, UNIX_EPOCH};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};

use super::{ApiKeyRecord, Project, Store, StoreError, StoreResult, WriteBatch};
use crate::auth::{ApiKeySecret, KeyScope};

/// SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// The database file (its WAL is this path plus `-wal`).
    path: std::path::PathBuf,
    writer: Mutex<write::Writer>,
    /// Enabled destinations' routing, read by the writer at each commit.
    routes: outbox::Routes,
    /// Wakes delivery workers after commits that queued events.
    outbox_signal: std::sync::Arc<tokio::sync::Notify>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    checkpointer: checkpoint::Checkpointer,
    /// Rows of `session_deltas` not folded into `sessions` yet (the writer keeps it current).
    session_deltas: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

/// Prepared statements kept per connection. rusqlite keeps 16 by default, but one commit runs
/// more than 80 distinct cached statements (spans, logs, rollups, issues, sessions, outboxes):
/// with 16, each commit re-prepared most of them (≈ 3 % of the writer's time in `bench apm`,
/// BENCHMARKS.md). Readers run the API's queries, also more than 16.
const STATEMENT_CACHE_CAPACITY: usize = 256;

/// Pragmas for every connection. `synchronous=FULL` with WAL fsyncs each commit, so an
/// acknowledged write survives power loss too. Ingest's group commits are the exception: they
/// run at `NORMAL` and the writer's sync thread fsyncs the WAL before answering their requests
/// ([`SqliteStore::sync_wal`], `pipeline::writer`).
fn configure(connection: &Connection) -> rusqlite::Result<()> {
    connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
    connection.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;
         PRAGMA foreign_keys = ON;",
    )?;
    sessions_write::register_functions(connection)
}

pub(crate) use crate::clock::now_unix_nano;

pub(crate) fn now_unix_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|elapsed| elapsed.as_millis() as i64).unwrap_or(0)
}

/// Lowercase name with runs of anything but `[a-z0-9]` replaced by `-`.
fn slugify(name: &str) -> String {
    let mut slug = String::with_capacity(name.len());
    for character in name.trim().to_lowercase().chars() {
        if character.is_ascii_alphanumeric() {
            slug.push(character);
        } else if !slug.ends_with('-') && !slug.is_empty() {
            slug.push('-');
        }
    }
    slug.trim_end_matches('-').to_owned()
}

impl SqliteStore {
    /// Opens (creating when missing) the database at `path`, applies migrations and prepares
    /// the read pool. Errors when the file cannot be opened or migrated.
    pub fn open(path: &Path) -> StoreResult<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|error| StoreError::Database(format!("cannot create {}: {error}", parent.display())))?;
        }
        let mut connection = Connection::open(path)?;
        // Must precede table creation to take effect; lets retention return pages to the OS.
        connection.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
        configure(&connection)?;
        migrations::migrate(&mut connection)?;
        // Checkpoints run on their own thread (see `checkpoint`), not inside the writer's commits.
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
        let checkpointer = checkpoint::Checkpointer::start(path, checkpoint::REWIND_WAL_PAGES)?;
        let manager = SqliteConnectionManager::file(path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI)
            .with_init(|connection| {
                connection.set_prepared_statement_cache_capacity(STATEMENT_CACHE_CAPACITY);
                connection.execute_batch(
                    "PRAGMA busy_timeout = 5000; PRAGMA cache_size = -32768; PRAGMA temp_store = MEMORY;",
                )
            });
        let readers = r2d2::Pool::builder().max_size(8).build(manager)?;
        let routes: outbox::Routes = std::sync::Arc::new(std::sync::RwLock::new(outbox::load_routes(&connection)?));
        // Deltas a previous run committed but did not fold (it stopped or crashed) are folded
        // by the first reader of sessions or a later commit, like any other.
        let pending_deltas: i64 = connection.query_row("SELECT count(*) FROM session_deltas", [], |row| row.get(0))?;
        let session_deltas = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(pending_deltas as u64));
        Ok(Self {
            path: path.to_owned(),
            writer: Mutex::new(write::Writer::new(connection, routes.clone(), session_deltas.clone())),
            session_deltas,
            routes,
            outbox_signal: std::sync::Arc::new(tokio::sync::Notify::new()),
            readers,
            checkpointer,
        })
    }

    /// Runs a destination change on the writer connection and reloads the writer's routing.
    fn change_destinations<T>(&self, action: impl FnOnce(&mut Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.with_writer(|writer| {
            let result = action(writer.connection())?;
            let routes = outbox::load_routes(writer.connection())?;
            if let Ok(mut shared) = self.routes.write() {
                *shared = routes;
            }
            Ok(result)
        })
    }

    fn with_writer<T>(&self, action: impl FnOnce(&mut write::Writer) -> StoreResult<T>) -> StoreResult<T> {
        let mut writer = self.writer.lock().map_err(|_| StoreError::Database("writer lock poisoned".into()))?;
        action(&mut writer)
    }

    fn commit_with(&self, batches: &[WriteBatch], defer_sync: bool) -> StoreResult<()> {
        let rewind = self.checkpointer.take_rewind_request();
        let queued = self.with_writer(|writer| {
            if rewind {
                writer.catch_up_checkpoint();
            }
            writer.commit(batches, defer_sync)
        })?;
        self.checkpointer.committed();
        if queued > 0 {
            self.outbox_signal.notify_waiters();
        }
        Ok(())
    }

    /// fdatasyncs the WAL file, so every commit that returned before this call is durable
    /// (`fsync` applies to the file, whichever descriptor names it: POSIX.1-2017 `fsync`).
    /// The file is opened anew each time, so a WAL that SQLite recreated is the one synced; when
    /// there is none, its frames were checkpointed and the database file is synced instead.
    /// Errors with the I/O error when either cannot be opened or synced.
    fn sync_wal(&self) -> StoreResult<()> {
        let sync = |path: &Path| std::fs::File::open(path).and_then(|file| file.sync_data());
        let mut wal = self.path.clone().into_os_string();
        wal.push("-wal");
        match sync(Path::new(&wal)) {
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => sync(&self.path),
            synced => synced,
        }
        .map_err(|error| {
            StoreError::Database(format!("syncing the write-ahead log of {}: {error}", self.path.display()))
        })
    }

    fn reader(&self) -> StoreResult<r2d2::PooledConnection<SqliteConnectionManager>> {
        Ok(self.readers.get()?)
    }
}

fn project_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<Project> {
    Ok(Project {
        id: row.get(0)?,
        slug: row.get(1)?,
        name: row.get(2)?,
        retention_days: row.get(3)?,
        trace_sample_rate: row.get(4)?,
        created_at_unix_ms: row.get(5)?,
        in_app_include: serde_json::from_str(&row.get::<_, String>(6)?).unwrap_or_default(),
        in_app_exclude: serde_json::from_str(&row.get::<_, String>(7)?).unwrap_or_default(),
        allowed_origins: serde_json::from_str(&row.get::<_, String>(8)?).unwrap_or_default(),
        // Missing fields take their defaults; a row no release can read falls back to defaults.
        health_thresholds: serde_json::from_str(&row.get::<_, String>(9)?).unwrap_or_default(),
    })
}

/// A project by id, as the settings updates return it; `NotFound` when there is none.
fn project_by_id(connection: &Connection, project_id: i64) -> StoreResult<Project> {
    connection
        .query_row(&format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE id = ?1"), [project_id], project_from_row)
        .optional()?
        .ok_or_else(|| StoreError::NotFound(format!("project {project_id}")))
}

const PROJECT_COLUMNS: &str = "id, slug, name, retention_days, trace_sample_rate, created_at_unix_ms, in_app_include, in_app_exclude, allowed_origins, health_thresholds";

impl Store for SqliteStore {
    fn create_project(&self, name: &str) -> StoreResult<Project> {
        let slug = slugify(name);
        if slug.is_empty() {
            return Err(StoreError::Conflict("project name needs at least one letter or digit".into()));
        }
        self.with_writer(|writer| {
            let connection = writer.connection();
            let inserted = connection.execute(
                "INSERT INTO projects (slug, name, created_at_unix_ms) VALUES (?1, ?2, ?3) ON CONFLICT (slug) DO NOTHING",
                params![slug, name.trim(), now_unix_ms()],
            )?;
            if inserted == 0 {
                return Err(StoreError::Conflict(format!("a project named {slug:?} exists")));
            }
            let project = connection.query_row(
                &format!("SELECT {PROJECT_COLUMNS} FROM projects WHERE slug = ?1"),
                [&slug],
                project_from_row,
            )?;
            Ok(project)
        })
    }

    fn list_projects(&self) -> StoreResult<Vec<Project>> {
        let connection = self.reader()?;
        let mut statement =
            connection.prepare_cached(&format!("SELECT {PROJECT_COLUMNS} FROM projects ORDER BY id"))?;
        let projects = statement.query_map([], project_from_row)?.collect::<Result<Vec<_>, _>>()?;
        Ok(projects)
    }

    fn find_project(&self, slug_or_id: &str) -> StoreResult<Option<Project>> {
        let connection = self.reader()?;
        let numeric_id: i64 = slug_or_id.parse().unwrap_or(-1);
        let project = connection
            .query_row(
                // A slug wins over an id: a project may be named "123" while another has id 123.
                &format!(
                    "SELECT {PROJECT_COLUMNS} FROM projects WHERE slug = ?1 OR id = ?2 ORDER BY slug = ?1 DESC LIMIT 1"
                ),
                params![slug_or_id, numeric_id],
                project_from_row,
            )
            .optional()?;
        Ok(project)
    }

    fn update_project_settings(
        &self,
        project_id: i64,
        retention_days: u32,
        trace_sample_rate: f64,
    ) -> StoreResult<Project> {
        self.with_writer(|writer| {
            let connection = writer.connection();
            connection.execute(
                "UPDATE projects SET retention_days = ?2, trace_sample_rate = ?3 WHERE id = ?1",
                params![project_id, retention_days.max(1), trace_sample_rate.clamp(0.0, 1.0)],
            )?;
            project_by_id(connection, project_id)
        })
    }

    fn update_in_app_rules(&self, project_id: i64, include: &[String], exclude: &[String]) -> StoreResult<Project> {
        let include = serde_json::to_string(include).unwrap_or_else(|_| "[]".into());
        let exclude = serde_json::to_string(exclude).unwrap_or_else(|_| "[]".into());
        self.with_writer(|writer| {
            let connection = writer.connection();
            connection.execute(
                "UPDATE projects SET in_app_include = ?2, in_app_exclude = ?3 WHERE id = ?1",
                params![project_id, include, exclude],
            )?;
            project_by_id(connection, project_id)
        })
    }

    fn update_health_thresholds(
        &self,
        project_id: i64,
        thresholds: &crate::store::health::HealthThresholds,
    ) -> StoreResult<Project> {
        let text = serde_json::to_string(thresholds).map_err(|error| StoreError::Database(error.to_string()))?;
        self.with_writer(|writer| {
            let connection = writer.connection();
            connection
                .execute("UPDATE projects SET health_thresholds = ?2 WHERE id = ?1", params![project_id, text])?;
            project_by_id(connection, project_id)
        })
    }

    fn update_allowed_origins(&self, project_id: i64, origins: &[String]) -> StoreResult<Project> {
        let origins = serde_json::to_string(origins).unwrap_or_else(|_| "[]".into());
        self.with_writer(|writer| {
            let connection = writer.connection();
            connection
                .execute("UPDATE projects SET allowed_origins = ?2 WHERE id = ?1", params![project_id, origins])?;
            project_by_id(connection, project_id)
        })
    }

    fn search_events(
        &self,
        project_id: i64,
        query: &super::EventQuery,
    ) -> StoreResult<super::Page<sightline_model::ProductEvent>> {
        events::search_events(&*self.reader()?, project_id, query)
    }

    fn journey_touches(
        &self,
        project_id: i64,
        query: &super::analytics::JourneyTouchQuery,
    ) -> StoreResult<super::analytics::Capped<super::analytics::JourneyTouch>> {
        analytics::journey_touches(&*self.reader()?, project_id, query)
    }

    fn event_stats(
        &self,
        project_id: i64,
        query: &super::analytics::EventStatsQuery,
    ) -> StoreResult<super::analytics::EventStats> {
        analytics::event_stats(&*self.reader()?, project_id, query)
    }

    fn performance_samples(
        &self,
        project_id: i64,
        from_unix_nano: u64,
        to_unix_nano: u64,
        max_samples: usize,
    ) -> StoreResult<super::analytics::Capped<super::analytics::PerformanceSample>> {
        analytics::performance_samples(&*self.reader()?, project_id, from_unix_nano, to_unix_nano, max_samples)
    }

    fn create_api_key(
        &self,
        project_id: i64,
        scope: KeyScope,
        name: &str,
    ) -> StoreResult<(ApiKeySecret, ApiKeyRecord)> {
        let secret = ApiKeySecret::generate(scope);
        let prefix = secret.prefix();
        self.with_writer(|writer| {
            let connection = writer.connection();
            connection.execute(
                "INSERT INTO api_keys (project_id, key_hash, prefix, scope, name, created_at_unix_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![project_id, &secret.hash()[..], prefix, scope.as_str(), name, now_unix_ms()],
            )?;
            let record = ApiKeyRecord { id: connection.last_insert_rowid(), project_id, scope, prefix, name: name.to_owned() };
            Ok((secret, record))
        })
    }

    fn create_user(&self, email: &str, password_hash: &str) -> StoreResult<super::users::User> {
        self.with_writer(|writer| users::create_user(writer.connection(), email, password_hash))
    }

    fn set_user_password(&self, email: &str, password_hash: &str) -> StoreResult<()> {
        self.with_writer(|writer| users::set_password(writer.connection(), email, password_hash))
    }

    fn find_user_credentials(&self, email: &str) -> StoreResult<Option<super::users::UserCredentials>> {
        users::find_credentials(&*self.reader()?, email)
    }

    fn count_users(&self) -> StoreResult<u64> {
        users::count_users(&*self.reader()?)
    }

    fn add_membership(&self, user_id: i64, project_id: i64) -> StoreResult<()> {
        self.with_writer(|writer| users::add_membership(writer.connection(), user_id, project_id))
    }

    fn user_projects(&self, user_id: i64) -> StoreResult<Vec<Project>> {
        users::user_projects(&*self.reader()?, user_id)
    }

    fn create_ui_session(&self, user_id: i64, token_hash: &[u8; 32], expires_at_unix_ms: i64) -> StoreResult<()> {
        self.with_writer(|writer| users::create_session(writer.connection(), user_id, token_hash, expires_at_unix_ms))
    }

    fn find_ui_session(&self, token_hash: &[u8; 32]) -> StoreResult<Option<super::users::UiSession>> {
        users::find_session(&*self.reader()?, token_hash)
    }

    fn delete_ui_session(&self, token_hash: &[u8; 32]) -> StoreResult<()> {
        self.with_writer(|writer| users::delete_session(writer.connection(), token_hash))
    }

    fn find_api_key_by_id(&self, key_id: i64) -> StoreResult<Option<ApiKeyRecord>> {
        grants::find_key_by_id(&*self.reader()?, key_id)
    }

    fn grant_project_read(&self, key_id: i64, project_id: i64) -> StoreResult<bool> {
        self.with_writer(|writer| grants::grant(writer.connection(), key_id, project_id, now_unix_ms()))
    }

    fn revoke_project_read(&self, key_id: i64, project_id: i64) -> StoreResult<bool> {
        self.with_writer(|writer| grants::revoke(writer.connection(), key_id, project_id))
    }

    fn key_may_read(&self, key: &ApiKeyRecord, project_id: i64) -> StoreResult<bool> {
        grants::may_read(&*self.reader()?, key, project_id)
    }

    fn list_api_keys(&self, project_id: i64) -> StoreResult<Vec<super::api_keys::ApiKeyListing>> {
        api_keys::list(&*self.reader()?, project_id)
    }

    fn revoke_api_key(&self, project_id: i64, key_id: i64) -> StoreResult<bool> {
        self.with_writer(|writer| api_keys::revoke(writer.connection(), project_id, key_id, now_unix_ms()))
    }

    fn find_api_key(&self, key: &ApiKeySecret) -> StoreResult<Option<ApiKeyRecord>> {
        let connection = self.reader()?;
        let record = connection
            .query_row(
                "SELECT id, project_id, scope, prefix, name FROM api_keys WHERE key_hash = ?1 AND revoked_at_unix_ms IS NULL",
                [&key.hash()[..]],
                |row| {
                    let scope: String = row.get(2)?;
                    Ok(ApiKeyRecord {
                        id: row.get(0)?,
                        project_id: row.get(1)?,
                        scope: KeyScope::parse(&scope).unwrap_or(KeyScope::Ingest),
                        prefix: row.get(3)?,
                        name: row.get(4)?,
                    })
                },
            )
            .optional()?;
        Ok(record)
    }

    fn commit(&self, batches: &[WriteBatch]) -> StoreResult<()> {
        self.commit_with(batches, false)
    }

    fn commit_deferring_sync(&self, batches: &[WriteBatch]) -> StoreResult<()> {
        self.commit_with(batches, true)
    }

    fn sync_commits(&self) -> StoreResult<()> {
        self.sync_wal()
    }

    fn create_destination(
        &self,
        project_id: i64,
        name: &str,
        enabled: bool,
        config: &crate::exporters::DestinationConfig,
    ) -> StoreResult<super::outbox::Destination> {
        self.change_destinations(|connection| outbox::create(connection, project_id, name, enabled, config))
    }

    fn upsert_server_destination(
        &self,
        name: &str,
        enabled: bool,
        config: &crate::exporters::DestinationConfig,
    ) -> StoreResult<super::outbox::Destination> {
        self.change_destinations(|connection| outbox::upsert_server(connection, name, enabled, config))
    }

    fn list_destinations(&self, project_id: Option<i64>) -> StoreResult<Vec<super::outbox::Destination>> {
        outbox::list(&*self.reader()?, project_id)
    }

    fn get_destination(&self, destination_id: i64) -> StoreResult<Option<super::outbox::Destination>> {
        outbox::get(&*self.reader()?, destination_id)
    }

    fn update_destination(
        &self,
        destination_id: i64,
        name: &str,
        enabled: bool,
        config: &crate::exporters::DestinationConfig,
    ) -> StoreResult<super::outbox::Destination> {
        self.change_destinations(|connection| outbox::update(connection, destination_id, name, enabled, config))
    }

    fn delete_destination(&self, destination_id: i64) -> StoreResult<bool> {
        self.change_destinations(|connection| outbox::delete(connection, destination_id))
    }

    fn pending_outbox(&self, destination_id: i64, limit: usize) -> StoreResult<Vec<crate::exporters::OutboxEvent>> {
        // Events carry their session's start (Amplitude's `session_id`): fold so a new
        // session's start is in `sessions`.
        self.fold_pending_summaries()?;
        outbox::pending(&*self.reader()?, destination_id, limit)
    }

    fn record_delivery(&self, report: &super::outbox::DeliveryReport) -> StoreResult<()> {
        self.with_writer(|writer| outbox::record(writer.connection(), report))
    }

    fn outbox_stats(&self, destination_id: i64) -> StoreResult<super::outbox::QueueStats> {
        outbox::stats(&*self.reader()?, destination_id)
    }

    fn dead_letters(
        &self,
        destination_id: i64,
        of_project: Option<i64>,
        limit: usize,
        before_id: Option<i64>,
    ) -> StoreResult<Vec<super::outbox::DeadLetter>> {
        outbox::dead_letters(&*self.reader()?, destination_id, of_project, limit, before_id)
    }

    fn replay_dead_letters(
        &self,
        destination_id: i64,
        of_project: Option<i64>,
        ids: Option<&[i64]>,
    ) -> StoreResult<usize> {
        let moved = self.with_writer(|writer| outbox::replay(writer.connection(), destination_id, of_project, ids))?;
        if moved > 0 {
            self.outbox_signal.notify_waiters();
        }
        Ok(moved)
    }

    fn outbox_signal(&self) -> std::sync::Arc<tokio::sync::Notify> {
        self.outbox_signal.clone()
    }

    fn get_trace(
        &self,
        project_id: i64,
        trace_id: &sightline_model::TraceId,
    ) -> StoreResult<Option<Vec<super::StoredSpan>>> {
        read::get_trace(&*self.reader()?, project_id, trace_id)
    }

    fn search_traces(
        &self,
        project_id: i64,
        query: &super::TraceQuery,
    ) -> StoreResult<super::Page<super::TraceSummary>> {
        read::search_traces(&*self.reader()?, project_id, query)
    }

    fn search_logs(&self, project_id: i64, query: &super::LogQuery) -> StoreResult<super::Page<super::StoredLog>> {
        read::search_logs(&*self.reader()?, project_id, query)
    }

    fn list_metrics(&self, project_id: i64) -> StoreResult<Vec<super::MetricDescription>> {
        read::list_metrics(&*self.reader()?, project_id)
    }

    fn metric_points(
        &self,
        project_id: i64,
        name: &str,
        from_unix_nano: u64,
        to_unix_nano: u64,
        max_points: usize,
    ) -> StoreResult<Vec<super::StoredMetricPoint>> {
        read::metric_points(&*self.reader()?, project_id, name, from_unix_nano, to_unix_nano, max_points)
    }

    fn service_metric_points(
        &self,
        project_id: i64,
        service_name: &str,
        name: &str,
        from_unix_nano: u64,
        to_unix_nano: u64,
        max_points: usize,
    ) -> StoreResult<Vec<super::StoredMetricPoint>> {
        read::service_metric_points(
            &*self.reader()?,
            project_id,
            service_name,
            name,
            from_unix_nano,
            to_unix_nano,
            max_points,
        )
    }

    fn list_services(&self, project_id: i64) -> StoreResult<Vec<super::ServiceStats>> {
        read::list_services(&*self.reader()?, project_id)
    }

    fn outcomes(&self, project_id: i64) -> StoreResult<Vec<super::OutcomeCount>> {
        read::outcomes(&*self.reader()?, project_id)
    }

    fn ingest_minutes(&self, project_id: i64, from_unix_nano: u64) -> StoreResult<Vec<super::IngestMinute>> {
        read::ingest_minutes(&*self.reader()?, project_id, from_unix_nano)
    }

    fn list_issues(
        &self,
        project_id: i64,
        query: &super::errors::IssueQuery,
    ) -> StoreResult<super::Page<super::errors::Issue>> {
        issues_read::list_issues(&*self.reader()?, project_id, query)
    }

    fn get_issue(&self, project_id: i64, issue_id: i64, hours: u32) -> StoreResult<Option<super::errors::IssueDetail>> {
        issues_read::get_issue(&*self.reader()?, project_id, issue_id, hours, now_unix_nano())
    }

    fn issue_events(
        &self,
        project_id: i64,
        issue_id: i64,
        limit: usize,
        cursor: Option<&str>,
    ) -> StoreResult<Option<super::Page<super::errors::StoredErrorEvent>>> {
        issues_read::issue_events(&*self.reader()?, project_id, issue_id, limit, cursor)
    }

    fn change_issue_status(
        &self,
        project_id: i64,
        issue_ids: &[i64],
        change: &super::errors::StatusChange,
    ) -> StoreResult<Vec<super::errors::Issue>> {
        self.with_writer(|writer| {
            let transaction =
                writer.connection().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            issues_write::change_status(&transaction, project_id, issue_ids, change, now_unix_nano())?;
            transaction.commit()?;
            Ok(())
        })?;
        let connection = self.reader()?;
        let mut issues = Vec::with_capacity(issue_ids.len());
        for issue_id in issue_ids {
            if let Some(detail) = issues_read::get_issue(&connection, project_id, *issue_id, 1, now_unix_nano())? {
                issues.push(detail.issue);
            }
        }
        Ok(issues)
    }

    fn error_stats(
        &self,
        project_id: i64,
        from_unix_nano: u64,
        to_unix_nano: u64,
        service: Option<&str>,
    ) -> StoreResult<super::errors::ErrorStats> {
        issues_read::error_stats(&*self.reader()?, project_id, from_unix_nano, to_unix_nano, service)
    }

    fn put_sourcemaps(
        &self,
        project_id: i64,
        release: &str,
        uploads: &[super::sourcemaps::SourceMapUpload],
    ) -> StoreResult<Vec<super::sourcemaps::SourceMapInfo>> {
        self.with_writer(|writer| sourcemaps::put(writer.connection(), project_id, release, uploads))
    }

    fn list_sourcemaps(&self, project_id: i64, release: &str) -> StoreResult<Vec<super::sourcemaps::SourceMapInfo>> {
        sourcemaps::list(&*self.reader()?, project_id, release)
    }

    fn find_sourcemap(
        &self,
        project_id: i64,
        release: &str,
        file_key: &str,
    ) -> StoreResult<Option<super::sourcemaps::StoredSourceMap>> {
        sourcemaps::find(&*self.reader()?, project_id, release, file_key)
    }

    fn delete_sourcemap(&self, project_id: i64, release: &str, name: &str) -> StoreResult<bool> {
        self.with_writer(|writer| sourcemaps::delete(writer.connection(), project_id, release, name))
    }

    /// Folds pending session deltas into `sessions` on the writer ([`sessions_write`]), so a
    /// read of sessions sees every committed change; every read of sessions here calls it
    /// first. Waits for the writer's current commit; does nothing when no delta is pending.
    fn fold_pending_summaries(&self) -> StoreResult<()> {
        if self.session_deltas.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return Ok(());
        }
        self.with_writer(|writer| writer.fold_sessions().map(|_| ()))
    }

    fn list_sessions(
        &self,
        project_id: i64,
        query: &super::sessions::SessionQuery,
    ) -> StoreResult<super::Page<super::sessions::SessionSummary>> {
        self.fold_pending_summaries()?;
        sessions_read::list_sessions(&*self.reader()?, project_id, query)
    }

    fn get_session(
        &self,
        project_id: i64,
        session_id: &str,
        timeline: &super::sessions::TimelineQuery,
    ) -> StoreResult<Option<super::sessions::SessionDetail>> {
        self.fold_pending_summaries()?;
        sessions_read::get_session(&*self.reader()?, project_id, session_id, timeline)
    }

    fn session_correlation(
        &self,
        project_id: i64,
        from_unix_nano: Option<u64>,
        to_unix_nano: Option<u64>,
    ) -> StoreResult<super::sessions::CorrelationRate> {
        sessions_read::correlation(&*self.reader()?, project_id, from_unix_nano, to_unix_nano)
    }

    fn delete_expired(&self, project_id: i64, cutoff_unix_nano: u64, max_rows: usize) -> StoreResult<usize> {
        self.with_writer(|writer| {
            // Pending deltas of expired sessions would bring them back when folded.
            writer.fold_sessions()?;
            retention::delete_expired(writer.connection(), project_id, cutoff_unix_nano, max_rows)
        })
    }

    fn reclaim_space(&self) -> StoreResult<u64> {
        self.with_writer(|writer| retention::reclaim_space(writer.connection()))
    }

    fn service_edges(
        &self,
        project_id: i64,
        service: Option<&str>,
        from_unix_nano: u64,
        to_unix_nano: u64,
    ) -> StoreResult<Vec<super::service_map::EdgeRollup>> {
        service_map::service_edges(&*self.reader()?, project_id, service, from_unix_nano, to_unix_nano)
    }

    fn endpoint_rollups(
        &self,
        project_id: i64,
        query: &super::rollups::RollupQuery,
    ) -> StoreResult<Vec<super::rollups::EndpointRollup>> {
        rollups::endpoint_rollups(&*self.reader()?, project_id, query, rollups::RollupColumns::All)
    }

    fn endpoint_rollup_sketches(
        &self,
        project_id: i64,
        query: &super::rollups::RollupQuery,
    ) -> StoreResult<Vec<super::rollups::EndpointRollup>> {
        rollups::endpoint_rollups(&*self.reader()?, project_id, query, rollups::RollupColumns::CountsAndSketches)
    }

    fn rollup_totals(&self, project_id: i64) -> StoreResult<Vec<super::rollups::RollupTotals>> {
        rollups::rollup_totals(&*self.reader()?, project_id)
    }

    fn coarsen_rollups(&self, project_id: i64, cutoff_unix_nano: u64, max_rows: usize) -> StoreResult<usize> {
        self.with_writer(|writer| {
            let endpoint_rows = rollups::coarsen(writer.connection(), project_id, cutoff_unix_nano, max_rows)?;
            let budget_left = max_rows.saturating_sub(endpoint_rows);
            if budget_left == 0 {
                return Ok(endpoint_rows);
            }
            let query_rows = query_rollups::coarsen(writer.connection(), project_id, cutoff_unix_nano, budget_left)?;
            let budget_left = budget_left.saturating_sub(query_rows);
            if budget_left == 0 {
                return Ok(endpoint_rows + query_rows);
            }
            let job_rows = job_rollups::coarsen(writer.connection(), project_id, cutoff_unix_nano, budget_left)?;
            Ok(endpoint_rows + query_rows + job_rows)
        })
    }

    fn job_rollups(
        &self,
        project_id: i64,
        query: &super::job_rollups::JobRollupQuery,
    ) -> StoreResult<Vec<super::job_rollups::JobRollup>> {
        job_rollups::job_rollups(&*self.reader()?, project_id, query)
    }

    fn query_rollups(
        &self,
        project_id: i64,
        query: &super::query_rollups::QueryRollupQuery,
    ) -> StoreResult<Vec<super::query_rollups::QueryRollup>> {
        query_rollups::query_rollups(&*self.reader()?, project_id, query)
    }

    fn expire_dead_letters(&self, otlp_cutoff_unix_ms: i64) -> StoreResult<usize> {
        self.with_writer(|writer| otlp_outbox::expire_dead_letters(writer.connection(), otlp_cutoff_unix_ms))
    }

    fn otlp_outbox_claim(
        &self,
        destination: &str,
        max_payloads: usize,
        max_bytes: usize,
    ) -> StoreResult<Vec<crate::store::otlp_outbox::QueuedPayload>> {
        otlp_outbox::claim(&*self.reader()?, destination, max_payloads, max_bytes)
    }

    fn otlp_outbox_delivered(&self, ids: &[i64]) -> StoreResult<()> {
        self.with_writer(|writer| otlp_outbox::delete(writer.connection(), ids))
    }

    fn otlp_outbox_failed_attempt(&self, ids: &[i64]) -> StoreResult<()> {
        self.with_writer(|writer| otlp_outbox::count_attempt(writer.connection(), ids))
    }

    fn otlp_outbox_dead_letter(&self, ids: &[i64], reason: &str) -> StoreResult<()> {
        let now_unix_ms = (now_unix_nano() / 1_000_000) as i64;
        self.with_writer(|writer| otlp_outbox::dead_letter(writer.connection(), ids, reason, now_unix_ms))
    }

    fn otlp_outbox_replay(&self, destination: &str) -> StoreResult<usize> {
        let now_unix_ms = (now_unix_nano() / 1_000_000) as i64;
        self.with_writer(|writer| otlp_outbox::replay(writer.connection(), destination, now_unix_ms))
    }

    fn otlp_outbox_stats(&self, destination: &str) -> StoreResult<crate::store::otlp_outbox::OtlpQueueStats> {
        otlp_outbox::stats(&*self.reader()?, destination)
    }

    fn otlp_dead_letters(
        &self,
        destination: &str,
        limit: usize,
    ) -> StoreResult<Vec<crate::store::otlp_outbox::OtlpDeadLetter>> {
        otlp_outbox::dead_letters(&*self.reader()?, destination, limit)
    }

    fn is_ready(&self) -> bool {
        self.reader()
            .and_then(|connection| Ok(connection.query_row("SELECT 1", [], |row| row.get::<_, i64>(0))?))
            .is_ok()
    }

    fn privacy_settings(&self, project_id: i64) -> StoreResult<crate::store::privacy::StoredPrivacy> {
        privacy::privacy_settings(&*self.reader()?, project_id)
    }

    fn put_privacy_settings(&self, project_id: i64, settings_json: &str) -> StoreResult<()> {
        self.with_writer(|writer| privacy::put_privacy_settings(writer.connection(), project_id, settings_json))
    }

    fn add_opt_out(&self, project_id: i64, user_id: &str) -> StoreResult<bool> {
        self.with_writer(|writer| privacy::add_opt_out(writer.connection(), project_id, user_id))
    }

    fn remove_opt_out(&self, project_id: i64, user_id: &str) -> StoreResult<bool> {
        self.with_writer(|writer| privacy::remove_opt_out(writer.connection(), project_id, user_id))
    }

    fn erase_user(&self, project_id: i64, user_ids: &[String]) -> StoreResult<crate::store::privacy::Erasure> {
        self.with_writer(|writer| {
            // The user's pending session changes are erased with the sessions they fold into.
            writer.fold_sessions()?;
            privacy::erase_user(writer.connection(), project_id, user_ids)
        })
    }
}

#[cfg(test)]
mod tests;
