//! SQLite schema, as numbered migrations applied at start (tracked in `PRAGMA user_version`).
//!
//! Layout choices follow what was measured on this machine (shared/REFERENCE.md): raw rows live
//! in rowid tables with few indexes; random-key lookups (trace id) go through small side tables
//! with one entry per trace and batch (`trace_span_ranges`) instead of one index entry per span.

use rusqlite::Connection;

/// Each entry upgrades the schema by one version. Never edit a released entry; append one.
const MIGRATIONS: &[&str] = &[
    // 1: projects, keys, raw telemetry, derived summaries.
    r#"
    CREATE TABLE projects (
        id INTEGER PRIMARY KEY,
        slug TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL,
        retention_days INTEGER NOT NULL DEFAULT 30,
        trace_sample_rate REAL NOT NULL DEFAULT 1.0,
        created_at_unix_ms INTEGER NOT NULL
    );
    CREATE TABLE api_keys (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL REFERENCES projects(id),
        key_hash BLOB NOT NULL UNIQUE,
        prefix TEXT NOT NULL,
        scope TEXT NOT NULL,
        name TEXT NOT NULL DEFAULT '',
        created_at_unix_ms INTEGER NOT NULL,
        revoked_at_unix_ms INTEGER
    );
    CREATE TABLE resources (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        fingerprint INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (project_id, fingerprint)
    );
    CREATE TABLE scopes (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        fingerprint INTEGER NOT NULL,
        body TEXT NOT NULL,
        UNIQUE (project_id, fingerprint)
    );
    CREATE TABLE spans (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        trace_id BLOB NOT NULL,
        span_id BLOB NOT NULL,
        parent_span_id BLOB,
        trace_state TEXT NOT NULL,
        flags INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind INTEGER NOT NULL,
        start_time_unix_nano INTEGER NOT NULL,
        end_time_unix_nano INTEGER NOT NULL,
        status_code INTEGER NOT NULL,
        status_message TEXT NOT NULL,
        attributes TEXT NOT NULL,
        dropped_attributes_count INTEGER NOT NULL,
        events TEXT NOT NULL,
        dropped_events_count INTEGER NOT NULL,
        links TEXT NOT NULL,
        dropped_links_count INTEGER NOT NULL,
        resource_id INTEGER NOT NULL,
        scope_id INTEGER NOT NULL,
        service_name TEXT NOT NULL
    );
    CREATE INDEX spans_by_time ON spans (project_id, start_time_unix_nano);
    -- One row per (trace, committed batch): where that trace's spans sit in `spans`.
    CREATE TABLE trace_span_ranges (
        project_id INTEGER NOT NULL,
        trace_id BLOB NOT NULL,
        first_span_rowid INTEGER NOT NULL,
        last_span_rowid INTEGER NOT NULL
    );
    CREATE INDEX trace_span_ranges_by_trace ON trace_span_ranges (trace_id);
    CREATE TABLE trace_summaries (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        trace_id BLOB NOT NULL,
        start_time_unix_nano INTEGER NOT NULL,
        end_time_unix_nano INTEGER NOT NULL,
        root_service_name TEXT,
        root_span_name TEXT,
        root_duration_nanos INTEGER,
        span_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        -- Services as '|a|b|' so `LIKE '%|a|%'` finds a member.
        services TEXT NOT NULL,
        UNIQUE (project_id, trace_id)
    );
    CREATE INDEX trace_summaries_by_time ON trace_summaries (project_id, start_time_unix_nano);
    CREATE TABLE logs (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        -- time_unix_nano, else observed_time_unix_nano: what queries order and filter by.
        timestamp_unix_nano INTEGER NOT NULL,
        time_unix_nano INTEGER NOT NULL,
        observed_time_unix_nano INTEGER NOT NULL,
        severity_number INTEGER NOT NULL,
        severity_text TEXT NOT NULL,
        body TEXT NOT NULL,
        attributes TEXT NOT NULL,
        dropped_attributes_count INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        trace_id BLOB,
        span_id BLOB,
        event_name TEXT NOT NULL,
        resource_id INTEGER NOT NULL,
        scope_id INTEGER NOT NULL,
        service_name TEXT NOT NULL
    );
    CREATE INDEX logs_by_time ON logs (project_id, timestamp_unix_nano);
    CREATE INDEX logs_by_trace ON logs (trace_id) WHERE trace_id IS NOT NULL;
    CREATE TABLE metrics (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        type TEXT NOT NULL,
        aggregation_temporality INTEGER NOT NULL,
        is_monotonic INTEGER NOT NULL,
        unit TEXT NOT NULL,
        description TEXT NOT NULL,
        metadata TEXT NOT NULL,
        last_seen_unix_nano INTEGER NOT NULL,
        UNIQUE (project_id, name, type, aggregation_temporality, is_monotonic, unit)
    );
    CREATE TABLE metric_points (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        metric_id INTEGER NOT NULL,
        resource_id INTEGER NOT NULL,
        scope_id INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        attributes TEXT NOT NULL,
        start_time_unix_nano INTEGER NOT NULL,
        time_unix_nano INTEGER NOT NULL,
        flags INTEGER NOT NULL,
        -- PointValue as JSON (number, histogram, exponential histogram or summary).
        value TEXT NOT NULL,
        exemplars TEXT NOT NULL
    );
    CREATE INDEX metric_points_by_time ON metric_points (metric_id, time_unix_nano);
    CREATE INDEX metric_points_by_project_time ON metric_points (project_id, time_unix_nano);
    CREATE TABLE service_stats (
        project_id INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        span_count INTEGER NOT NULL DEFAULT 0,
        log_count INTEGER NOT NULL DEFAULT 0,
        metric_point_count INTEGER NOT NULL DEFAULT 0,
        last_seen_unix_nano INTEGER NOT NULL DEFAULT 0,
        PRIMARY KEY (project_id, service_name)
    );
    CREATE TABLE outcomes (
        project_id INTEGER NOT NULL,
        signal TEXT NOT NULL,
        outcome TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (project_id, signal, outcome)
    );
    "#,
];

/// Applies every migration newer than the database's `user_version`, each in its own
/// transaction. Errors leave the database at the last complete version.
pub fn migrate(connection: &mut Connection) -> rusqlite::Result<u32> {
    let current: u32 = connection.query_row("PRAGMA user_version", [], |row| row.get(0))?;
    for (index, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let version = index as u32 + 1;
        let transaction = connection.transaction()?;
        transaction.execute_batch(sql)?;
        transaction.pragma_update(None, "user_version", version)?;
        transaction.commit()?;
    }
    Ok(MIGRATIONS.len() as u32)
}
