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
    // 2: error tracking: error events grouped into issues (Sentry's groups) with counters,
    // tag breakdowns, hourly occurrences and status history; releases; in-app rules.
    r#"
    ALTER TABLE projects ADD COLUMN in_app_include TEXT NOT NULL DEFAULT '[]';
    ALTER TABLE projects ADD COLUMN in_app_exclude TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE issues (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        primary_hash TEXT NOT NULL,
        title TEXT NOT NULL,
        culprit TEXT,
        exception_type TEXT NOT NULL,
        level TEXT NOT NULL,
        platform TEXT NOT NULL,
        status TEXT NOT NULL,
        substatus TEXT,
        first_seen_unix_nano INTEGER NOT NULL,
        last_seen_unix_nano INTEGER NOT NULL,
        event_count INTEGER NOT NULL,
        user_count INTEGER NOT NULL,
        session_count INTEGER NOT NULL,
        last_release TEXT,
        resolved_in_release TEXT,
        resolved_at_unix_nano INTEGER,
        ignore_until_event_count INTEGER,
        ignore_until_unix_nano INTEGER
    );
    CREATE INDEX issues_by_last_seen ON issues (project_id, status, last_seen_unix_nano);
    CREATE INDEX issues_by_count ON issues (project_id, status, event_count);
    CREATE INDEX issues_by_users ON issues (project_id, status, user_count);
    CREATE INDEX issues_all_by_last_seen ON issues (project_id, last_seen_unix_nano);
    -- Every grouping hash (app, system, ...) of every event points at its issue.
    CREATE TABLE issue_hashes (
        project_id INTEGER NOT NULL,
        hash TEXT NOT NULL,
        issue_id INTEGER NOT NULL,
        PRIMARY KEY (project_id, hash)
    ) WITHOUT ROWID;
    CREATE TABLE issue_users (
        issue_id INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (issue_id, value)
    ) WITHOUT ROWID;
    CREATE TABLE issue_sessions (
        issue_id INTEGER NOT NULL,
        value TEXT NOT NULL,
        PRIMARY KEY (issue_id, value)
    ) WITHOUT ROWID;
    CREATE TABLE issue_tags (
        issue_id INTEGER NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (issue_id, key, value)
    ) WITHOUT ROWID;
    CREATE INDEX issue_tags_by_value ON issue_tags (key, value);
    CREATE TABLE issue_hourly (
        issue_id INTEGER NOT NULL,
        hour_unix_nano INTEGER NOT NULL,
        count INTEGER NOT NULL,
        PRIMARY KEY (issue_id, hour_unix_nano)
    ) WITHOUT ROWID;
    CREATE TABLE issue_status_history (
        id INTEGER PRIMARY KEY,
        issue_id INTEGER NOT NULL,
        status TEXT NOT NULL,
        substatus TEXT,
        reason TEXT NOT NULL,
        actor TEXT NOT NULL,
        release TEXT,
        at_unix_nano INTEGER NOT NULL
    );
    CREATE INDEX issue_status_history_by_issue ON issue_status_history (issue_id);
    CREATE TABLE error_events (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        issue_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        timestamp_unix_nano INTEGER NOT NULL,
        level TEXT NOT NULL,
        service_name TEXT NOT NULL,
        body TEXT NOT NULL
    );
    CREATE INDEX error_events_by_issue ON error_events (issue_id, timestamp_unix_nano);
    CREATE INDEX error_events_by_time ON error_events (project_id, timestamp_unix_nano);
    CREATE TABLE releases (
        project_id INTEGER NOT NULL,
        version TEXT NOT NULL,
        first_seen_unix_nano INTEGER NOT NULL,
        PRIMARY KEY (project_id, version)
    ) WITHOUT ROWID;
    "#,
    // 3: JavaScript source maps per project and release. A rowid table (not WITHOUT ROWID):
    // contents are large BLOBs that belong in overflow pages, not in the key's b-tree.
    r#"
    CREATE TABLE sourcemaps (
        project_id INTEGER NOT NULL,
        release TEXT NOT NULL,
        name TEXT NOT NULL,
        -- The minified file's base name without `.map` (`minified_file_key`): what frames match on.
        file_key TEXT NOT NULL,
        content BLOB NOT NULL,
        uploaded_at_unix_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, release, name)
    );
    CREATE INDEX sourcemaps_by_file ON sourcemaps (project_id, release, file_key);
    "#,
    // 4: product events (ProductGraph `/v1/events`), stored once per (project, event_id), and the
    // origins browsers may post them from.
    r#"
    ALTER TABLE projects ADD COLUMN allowed_origins TEXT NOT NULL DEFAULT '[]';
    CREATE TABLE product_events (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        user_id TEXT,
        org_id TEXT,
        event_type TEXT NOT NULL,
        event_name TEXT NOT NULL,
        timestamp_unix_nano INTEGER NOT NULL,
        sequence INTEGER,
        properties TEXT NOT NULL,
        metadata TEXT NOT NULL,
        UNIQUE (project_id, event_id)
    );
    CREATE INDEX product_events_by_time ON product_events (project_id, timestamp_unix_nano);
    CREATE INDEX product_events_by_session ON product_events (project_id, session_id, timestamp_unix_nano);
    "#,
    // 5: session correlation. Summaries are upserted once per session and batch. Timeline lookups
    // of spans, logs and errors go through `session_items`, written only for items that carry a
    // session (one index entry each, none for the rest), keyed by the session's row id; product
    // events are found through `product_events_by_session`. Correlation counters per UTC day.
    r#"
    CREATE TABLE sessions (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        session_id TEXT NOT NULL,
        first_seen_unix_nano INTEGER NOT NULL,
        last_seen_unix_nano INTEGER NOT NULL,
        user_id TEXT,
        entry_page TEXT,
        entry_page_unix_nano INTEGER,
        exit_page TEXT,
        exit_page_unix_nano INTEGER,
        page_views INTEGER NOT NULL,
        events INTEGER NOT NULL,
        errors INTEGER NOT NULL,
        requests INTEGER NOT NULL,
        logs INTEGER NOT NULL,
        -- Sorted JSON array of service names.
        services TEXT NOT NULL,
        user_agent TEXT,
        -- 1 from a span, 2 from a product event (the browser's own wins).
        user_agent_source INTEGER NOT NULL DEFAULT 0,
        UNIQUE (project_id, session_id)
    );
    CREATE INDEX sessions_by_start ON sessions (project_id, first_seen_unix_nano);
    CREATE INDEX sessions_by_user ON sessions (project_id, user_id, first_seen_unix_nano) WHERE user_id IS NOT NULL;
    -- kind: 1 request (span rowid), 2 log (log rowid), 3 error (error_events rowid).
    CREATE TABLE session_items (
        session_key INTEGER NOT NULL,
        timestamp_unix_nano INTEGER NOT NULL,
        kind INTEGER NOT NULL,
        item_rowid INTEGER NOT NULL,
        PRIMARY KEY (session_key, timestamp_unix_nano, kind, item_rowid)
    ) WITHOUT ROWID;
    CREATE TABLE session_correlation (
        project_id INTEGER NOT NULL,
        day_unix_nano INTEGER NOT NULL,
        server_spans INTEGER NOT NULL,
        with_session INTEGER NOT NULL,
        PRIMARY KEY (project_id, day_unix_nano)
    ) WITHOUT ROWID;
    "#,
    // 6: product analytics. Partial indexes: only events naming a journey and `performance`
    // events get an entry. Measured with the sqlite3 CLI on 200k inserts (15% of them journey or
    // performance events): ~5% more CPU with these two, ~20% when the journey predicate used
    // `json_extract`. `instr` is cheap on every insert, and a false positive (the text inside a
    // value) is filtered out by the query's own `json_extract`.
    r#"
    CREATE INDEX product_events_journeys ON product_events (project_id, timestamp_unix_nano)
        WHERE instr(properties, '"journey.id"') > 0;
    CREATE INDEX product_events_performance ON product_events (project_id, timestamp_unix_nano)
        WHERE event_type = 'performance';
    "#,
    // 7: product events deduplicated by (project, timestamp, event_id) instead of (project,
    // event_id). A unique index on random UUIDs dirtied about one index page per event and was
    // the largest cost of `/v1/events` ingest (BENCHMARKS.md, "Product events"); this key grows
    // at its right edge like the time index it replaces. Mixpanel deduplicates on time and
    // `$insert_id` the same way. Events sent without `event.timestamp` get the receipt time, so
    // a retry would get another one: their ids go in `product_event_ids_untimed` (one small
    // random-key table for the rare untimed event) and are deduplicated by id alone.
    // SQLite cannot drop a table constraint, hence the copy.
    r#"
    CREATE TABLE product_events_v7 (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        product_id TEXT NOT NULL,
        session_id TEXT NOT NULL,
        user_id TEXT,
        org_id TEXT,
        event_type TEXT NOT NULL,
        event_name TEXT NOT NULL,
        timestamp_unix_nano INTEGER NOT NULL,
        sequence INTEGER,
        properties TEXT NOT NULL,
        metadata TEXT NOT NULL
    );
    INSERT INTO product_events_v7 (id, project_id, event_id, product_id, session_id, user_id, org_id, event_type,
        event_name, timestamp_unix_nano, sequence, properties, metadata)
        SELECT id, project_id, event_id, product_id, session_id, user_id, org_id, event_type, event_name,
            timestamp_unix_nano, sequence, properties, metadata
        FROM product_events;
    DROP TABLE product_events;
    ALTER TABLE product_events_v7 RENAME TO product_events;
    CREATE UNIQUE INDEX product_events_by_time ON product_events (project_id, timestamp_unix_nano, event_id);
    CREATE INDEX product_events_by_session ON product_events (project_id, session_id, timestamp_unix_nano);
    CREATE INDEX product_events_journeys ON product_events (project_id, timestamp_unix_nano)
        WHERE instr(properties, '"journey.id"') > 0;
    CREATE INDEX product_events_performance ON product_events (project_id, timestamp_unix_nano)
        WHERE event_type = 'performance';
    CREATE TABLE product_event_ids_untimed (
        project_id INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        -- The receipt time stored as the event's timestamp; retention goes by it.
        timestamp_unix_nano INTEGER NOT NULL,
        PRIMARY KEY (project_id, event_id)
    ) WITHOUT ROWID;
    "#,
    // 8: issue text search (`q=`). `instr(lower(title), ...)` cannot use an index, so a rare term
    // made the list walk every unresolved issue (≈ 130 ms at 100,000 issues, BENCHMARKS.md). A
    // trigram index answers any substring of 3 or more characters, case-insensitively by default
    // (https://sqlite.org/fts5.html#the_trigram_tokenizer). External content
    // (https://sqlite.org/fts5.html#external_content_tables): the text stays only in `issues`,
    // and the triggers keep the index in step with it, so no writer has to know the index exists.
    // A "delete" must pass the values that were indexed, which AFTER triggers have in `old`.
    // Grouping rewrites `title` and `culprit` on every event; the WHEN clause skips reindexing
    // when both come back unchanged, because a reindex deletes and re-adds every trigram.
    r#"
    CREATE VIRTUAL TABLE issues_search USING fts5(
        title, culprit, content='issues', content_rowid='id', tokenize='trigram'
    );
    INSERT INTO issues_search(issues_search) VALUES('rebuild');
    CREATE TRIGGER issues_search_insert AFTER INSERT ON issues BEGIN
        INSERT INTO issues_search(rowid, title, culprit) VALUES (new.id, new.title, new.culprit);
    END;
    CREATE TRIGGER issues_search_delete AFTER DELETE ON issues BEGIN
        INSERT INTO issues_search(issues_search, rowid, title, culprit)
            VALUES ('delete', old.id, old.title, old.culprit);
    END;
    CREATE TRIGGER issues_search_update AFTER UPDATE OF title, culprit ON issues
        WHEN old.title IS NOT new.title OR old.culprit IS NOT new.culprit
    BEGIN
        INSERT INTO issues_search(issues_search, rowid, title, culprit)
            VALUES ('delete', old.id, old.title, old.culprit);
        INSERT INTO issues_search(rowid, title, culprit) VALUES (new.id, new.title, new.culprit);
    END;
    "#,
    // 9: endpoint RED rollups (issue 5), merged at commit once per (endpoint, bucket) and commit,
    // so their write cost follows the number of distinct endpoints per minute, not spans.
    // WITHOUT ROWID with the key first by (project, service, bucket start): the performance
    // page reads one service's range in key order with no second lookup per row. The time
    // index serves retention and the coarsening pass (1-minute rows → 1-hour rows), per width.
    r#"
    CREATE TABLE endpoint_rollups (
        project_id INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        bucket_start_unix_nano INTEGER NOT NULL,
        -- 60 (fresh) or 3600 (coarsened).
        bucket_seconds INTEGER NOT NULL,
        environment TEXT NOT NULL,
        operation TEXT NOT NULL,
        -- '1xx' .. '5xx' or 'unknown'.
        status_class TEXT NOT NULL,
        method TEXT NOT NULL,
        route TEXT NOT NULL,
        request_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        -- Sum of durations in ns (also inside the sketch; here for SQL totals).
        duration_sum_nanos REAL NOT NULL,
        -- Exact status codes as JSON {"200": n, ...}.
        status_codes TEXT NOT NULL,
        -- DDSketch of durations (ns) in DataDog's portable binary encoding.
        duration_sketch BLOB NOT NULL,
        -- Slowest requests as JSON [[trace_id_hex, span_id_hex, duration_ns, start_ns], ...].
        slowest TEXT NOT NULL,
        PRIMARY KEY (project_id, service_name, bucket_start_unix_nano, bucket_seconds, environment, operation, status_class)
    ) WITHOUT ROWID;
    CREATE INDEX endpoint_rollups_by_width_time ON endpoint_rollups (project_id, bucket_seconds, bucket_start_unix_nano);
    "#,
    // 10: per-project endpoint health thresholds (`store::health::HealthThresholds` as JSON;
    // `{}` = every default).
    r#"
    ALTER TABLE projects ADD COLUMN health_thresholds TEXT NOT NULL DEFAULT '{}';
    "#,
    // 11: service map edges per minute (`store::service_map`). A rowid table with a unique key
    // starting at (project, minute): rows are written once per edge and commit, read by time
    // range, and the map has few edges per minute, so the key is also the range index.
    r#"
    CREATE TABLE service_edges (
        project_id INTEGER NOT NULL,
        bucket_start_unix_nano INTEGER NOT NULL,
        caller TEXT NOT NULL,
        callee TEXT NOT NULL,
        -- 1 when the callee sent no spans (named from the client span's peer attributes).
        virtual_callee INTEGER NOT NULL,
        call_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        -- DurationSketch::to_bytes of the client spans' durations.
        duration_sketch BLOB NOT NULL,
        UNIQUE (project_id, bucket_start_unix_nano, caller, callee, virtual_callee)
    );
    "#,
    // 12: database query rollups (issue 5, item 3), merged at commit like the endpoint rollups.
    // The key holds a 64-bit hash of the normalized query, not the text (up to 2 KiB): WITHOUT
    // ROWID tables want small rows in their key, and the text is read only for display. The key
    // starts with (project, bucket start) because the databases page reads every service of a
    // time range; the width/time index serves retention and coarsening, as for endpoints.
    r#"
    CREATE TABLE query_rollups (
        project_id INTEGER NOT NULL,
        bucket_start_unix_nano INTEGER NOT NULL,
        -- 60 (fresh) or 3600 (coarsened).
        bucket_seconds INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        -- db.system.name (old db.system).
        db_system TEXT NOT NULL,
        -- db.namespace (old db.name); '' when not sent.
        db_namespace TEXT NOT NULL,
        -- FNV-1a 64 of query_text, as a signed integer.
        query_fingerprint INTEGER NOT NULL,
        query_text TEXT NOT NULL,
        call_count INTEGER NOT NULL,
        error_count INTEGER NOT NULL,
        duration_sum_nanos REAL NOT NULL,
        -- DDSketch of durations (ns) in DataDog's portable binary encoding.
        duration_sketch BLOB NOT NULL,
        -- Slowest calls as JSON [[trace_id_hex, span_id_hex, duration_ns, start_ns], ...].
        slowest TEXT NOT NULL,
        PRIMARY KEY (project_id, bucket_start_unix_nano, bucket_seconds, service_name, db_system, db_namespace, query_fingerprint)
    ) WITHOUT ROWID;
    CREATE INDEX query_rollups_by_width_time ON query_rollups (project_id, bucket_seconds, bucket_start_unix_nano);
    "#,
    // 13: the OTLP forwarding outbox (`store::otlp_outbox`): one row per accepted export request
    // and forwarding destination, written in the transaction that stores the request's items,
    // deleted once delivered; refused payloads move to the dead letters with the reason.
    r#"
    CREATE TABLE otlp_outbox (
        id INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        signal TEXT NOT NULL,
        body BLOB NOT NULL,
        items INTEGER NOT NULL,
        enqueued_unix_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0
    );
    CREATE INDEX otlp_outbox_by_destination ON otlp_outbox (destination, id);
    CREATE TABLE otlp_dead_letters (
        id INTEGER PRIMARY KEY,
        destination TEXT NOT NULL,
        signal TEXT NOT NULL,
        body BLOB NOT NULL,
        items INTEGER NOT NULL,
        enqueued_unix_ms INTEGER NOT NULL,
        attempts INTEGER NOT NULL,
        reason TEXT NOT NULL,
        dead_at_unix_ms INTEGER NOT NULL
    );
    CREATE INDEX otlp_dead_letters_by_destination ON otlp_dead_letters (destination, id);
    "#,
    // 14: dashboard users (Argon2id PHC password hashes), their project memberships and their
    // signed-in sessions. Only a session token's SHA-256 is stored, as for API keys.
    r#"
    CREATE TABLE users (
        id INTEGER PRIMARY KEY,
        email TEXT NOT NULL UNIQUE,
        password_hash TEXT NOT NULL,
        created_at_unix_ms INTEGER NOT NULL
    );
    CREATE TABLE memberships (
        user_id INTEGER NOT NULL REFERENCES users(id),
        project_id INTEGER NOT NULL REFERENCES projects(id),
        created_at_unix_ms INTEGER NOT NULL,
        PRIMARY KEY (user_id, project_id)
    ) WITHOUT ROWID;
    CREATE TABLE ui_sessions (
        token_hash BLOB PRIMARY KEY,
        user_id INTEGER NOT NULL REFERENCES users(id),
        created_at_unix_ms INTEGER NOT NULL,
        expires_at_unix_ms INTEGER NOT NULL
    ) WITHOUT ROWID;
    "#,
    // 15: background job and messaging rollups (issue 5, item 4; `store::job_rollups`), merged
    // at commit like the query rollups, with the same key order (project, bucket start first:
    // the jobs page reads every service of a time range) and the same width/time index for
    // retention and coarsening. Destination and job names are short, so they are in the key.
    r#"
    CREATE TABLE job_rollups (
        project_id INTEGER NOT NULL,
        bucket_start_unix_nano INTEGER NOT NULL,
        -- 60 (fresh) or 3600 (coarsened).
        bucket_seconds INTEGER NOT NULL,
        service_name TEXT NOT NULL,
        -- deployment.environment.name; '' when not sent.
        environment TEXT NOT NULL,
        -- messaging.system; '' for plain jobs.
        messaging_system TEXT NOT NULL,
        -- Destination (queue, topic) or job name.
        name TEXT NOT NULL,
        -- messaging.operation.type (process, send, ...) or 'job'.
        operation TEXT NOT NULL,
        span_count INTEGER NOT NULL,
        failure_count INTEGER NOT NULL,
        duration_sum_nanos REAL NOT NULL,
        -- DDSketches (ns) in DataDog's portable binary encoding: durations, and queue lags of
        -- the spans whose lag is known.
        duration_sketch BLOB NOT NULL,
        lag_sketch BLOB NOT NULL,
        -- Slowest spans as JSON [[trace_id_hex, span_id_hex, duration_ns, start_ns], ...].
        slowest TEXT NOT NULL,
        PRIMARY KEY (project_id, bucket_start_unix_nano, bucket_seconds, service_name, environment, messaging_system,
            name, operation)
    ) WITHOUT ROWID;
    CREATE INDEX job_rollups_by_width_time ON job_rollups (project_id, bucket_seconds, bucket_start_unix_nano);
    "#,
    // 16: read grants of API keys on other projects (`store/sqlite/grants.rs`): one key may read
    // several projects (cross-project analytics). Looked up by (key, project) only.
    r#"
    CREATE TABLE api_key_grants (
        key_id INTEGER NOT NULL REFERENCES api_keys(id),
        project_id INTEGER NOT NULL REFERENCES projects(id),
        granted_at_unix_ms INTEGER NOT NULL,
        PRIMARY KEY (key_id, project_id)
    ) WITHOUT ROWID;
    "#,
    // 17: forwarding of product events (issue 6; `exporters`). `destinations` are per project,
    // or server-wide with project_id 0 (from the ProductGraph environment variables; 0 rather
    // than NULL so the unique name holds). `config` is the destination's JSON settings with its
    // secrets (never returned by the API). `outbox` rows are written in the ingest transaction,
    // one per (destination, fresh event), and reference the stored event row; they are deleted
    // once delivered. Ids only grow, so the (destination_id, id) index appends. Dead letters
    // keep the reason and the last response; replay moves them back to the outbox.
    r#"
    CREATE TABLE destinations (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        kind TEXT NOT NULL,
        enabled INTEGER NOT NULL DEFAULT 1,
        config TEXT NOT NULL,
        created_at_unix_ms INTEGER NOT NULL,
        delivered_count INTEGER NOT NULL DEFAULT 0,
        dead_letter_count INTEGER NOT NULL DEFAULT 0,
        filtered_count INTEGER NOT NULL DEFAULT 0,
        last_error TEXT,
        last_error_at_unix_ms INTEGER,
        last_delivered_at_unix_ms INTEGER,
        UNIQUE (project_id, name)
    );
    CREATE TABLE outbox (
        id INTEGER PRIMARY KEY,
        destination_id INTEGER NOT NULL,
        event_rowid INTEGER NOT NULL,
        created_at_unix_ms INTEGER NOT NULL
    );
    CREATE INDEX outbox_by_destination ON outbox (destination_id, id);
    CREATE TABLE dead_letters (
        id INTEGER PRIMARY KEY,
        destination_id INTEGER NOT NULL,
        event_rowid INTEGER NOT NULL,
        event_id TEXT NOT NULL,
        reason TEXT NOT NULL,
        last_response TEXT,
        attempts INTEGER NOT NULL,
        dead_at_unix_ms INTEGER NOT NULL
    );
    CREATE INDEX dead_letters_by_destination ON dead_letters (destination_id, id);
    "#,
    // 18 (privacy, issue 6 item 4): per-project privacy settings (`crate::privacy::PrivacySettings`
    // as JSON; NULL = defaults) and the project's secret key for HMAC-SHA256 pseudonyms, plus
    // the users who opted out of forwarding. Self-contained: existing projects get their key
    // here and new ones from the trigger, so project creation needs no change. `randomblob` is
    // SQLite's CSPRNG (ChaCha20 seeded from the OS's randomness, https://sqlite.org/c3ref/randomness.html).
    r#"
    CREATE TABLE project_privacy (
        project_id INTEGER PRIMARY KEY,
        hash_key BLOB NOT NULL,
        settings TEXT,
        updated_at_unix_ms INTEGER NOT NULL DEFAULT 0
    );
    INSERT INTO project_privacy (project_id, hash_key) SELECT id, randomblob(32) FROM projects;
    CREATE TRIGGER project_privacy_for_new_projects AFTER INSERT ON projects BEGIN
        INSERT INTO project_privacy (project_id, hash_key) VALUES (new.id, randomblob(32));
    END;
    CREATE TABLE privacy_opt_outs (
        project_id INTEGER NOT NULL,
        user_id TEXT NOT NULL,
        created_at_unix_ms INTEGER NOT NULL,
        PRIMARY KEY (project_id, user_id)
    ) WITHOUT ROWID;
    "#,
    // 19 (dashboard overview, issue 7 item 2): items accepted per project, signal and minute of
    // commit, so the overview can show ingest rates per signal (the `outcomes` table only has
    // totals since the project started). One upsert per committed batch; retention expires rows.
    r#"
    CREATE TABLE ingest_minutes (
        project_id INTEGER NOT NULL,
        signal TEXT NOT NULL,
        minute_unix_nano INTEGER NOT NULL,
        accepted INTEGER NOT NULL,
        PRIMARY KEY (project_id, signal, minute_unix_nano)
    ) WITHOUT ROWID;
    "#,
    // 20 (error ingest speed, issue 3): session changes are appended here in each commit (rowid
    // order, so a commit fills a few fresh pages) and folded into `sessions` and `session_items`
    // many commits at a time (`sessions_write::fold`). Updating random sessions in every commit
    // rewrote most pages of those tables per commit (BENCHMARKS.md). `body` is a merged
    // `SessionDelta` with its timeline items as JSON (`sessions_write::StoredDelta`).
    r#"
    CREATE TABLE session_deltas (
        id INTEGER PRIMARY KEY,
        project_id INTEGER NOT NULL,
        body TEXT NOT NULL
    );
    "#,
    // 21 (error ingest speed, issue 3): events of one bug repeat their frames and the raw
    // trace's text around a new message; those are stored once per issue and stack hash here
    // (`ErrorEvent::stack_body`), and the event row keeps only the hash (NULL: the body holds
    // everything, as rows stored before did).
    r#"
    ALTER TABLE error_events ADD COLUMN stack_hash BLOB;
    CREATE TABLE error_stacks (
        id INTEGER PRIMARY KEY,
        issue_id INTEGER NOT NULL,
        hash BLOB NOT NULL,
        body BLOB NOT NULL,
        UNIQUE (issue_id, hash)
    );
    "#,
    // 22 (error ingest speed, issue 3): an error log's `exception.stacktrace` is its error
    // event's `raw_stacktrace`, which `error_stacks` already keeps once per issue and stack as a
    // template. Such a row stores the attribute as `null` and points here at the event (same
    // commit, same timestamp, so retention removes the log no later than the event); reading
    // puts the text back. NULL: the attributes hold everything, as rows stored before do.
    r#"
    ALTER TABLE logs ADD COLUMN stack_event_id INTEGER;
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

#[cfg(test)]
mod tests {
    use rusqlite::{Connection, params};

    use super::{MIGRATIONS, migrate};

    /// A database written before migration 7 keeps its product events (ids included), and the
    /// new key deduplicates by (project, timestamp, event_id).
    #[test]
    fn product_events_survive_the_new_dedup_key() {
        let mut connection = Connection::open_in_memory().expect("database");
        for sql in &MIGRATIONS[..6] {
            connection.execute_batch(sql).expect("an old migration");
        }
        connection.pragma_update(None, "user_version", 6).expect("version");
        let insert = "INSERT INTO product_events (id, project_id, event_id, product_id, session_id, event_type,
                event_name, timestamp_unix_nano, properties, metadata)
             VALUES (?1, 1, ?2, 'shop', 's', 'page.view', '', ?3, '{\"journey.id\":\"j\"}', '{}')";
        connection.execute(insert, params![41, "evt-1", 1_000]).expect("old row");
        connection.execute(insert, params![42, "evt-2", 2_000]).expect("old row");

        assert_eq!(migrate(&mut connection).expect("migrates"), MIGRATIONS.len() as u32);
        let kept: Vec<(i64, String)> = connection
            .prepare("SELECT id, event_id FROM product_events ORDER BY id")
            .expect("query")
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))
            .expect("rows")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert_eq!(kept, [(41, "evt-1".to_owned()), (42, "evt-2".to_owned())]);
        let insert_new = "INSERT OR IGNORE INTO product_events (project_id, event_id, product_id, session_id,
                event_type, event_name, timestamp_unix_nano, properties, metadata)
             VALUES (1, ?1, 'shop', 's', 'page.view', '', ?2, '{}', '{}')";
        assert_eq!(connection.execute(insert_new, params!["evt-1", 1_000]).expect("insert"), 0, "a retry");
        assert_eq!(connection.execute(insert_new, params!["evt-1", 1_001]).expect("insert"), 1, "another time");
        let journeys: i64 = connection
            .query_row(
                "SELECT count(*) FROM product_events INDEXED BY product_events_journeys WHERE project_id = 1
                 AND timestamp_unix_nano >= 0 AND instr(properties, '\"journey.id\"') > 0",
                [],
                |row| row.get(0),
            )
            .expect("the partial index is back");
        assert_eq!(journeys, 2);
    }

    /// The version before the issue search index (migration 8).
    const BEFORE_SEARCH: usize = 7;

    fn matching_ids(connection: &Connection, fts5_query: &str) -> Vec<i64> {
        let mut statement = connection
            .prepare("SELECT rowid FROM issues_search WHERE issues_search MATCH ?1 ORDER BY rowid")
            .expect("search statement");
        statement.query_map([fts5_query], |row| row.get(0)).expect("search").collect::<Result<_, _>>().expect("ids")
    }

    fn integrity_check(connection: &Connection) -> rusqlite::Result<usize> {
        connection.execute("INSERT INTO issues_search(issues_search, rank) VALUES ('integrity-check', 1)", [])
    }

    #[test]
    fn issues_from_before_the_search_migration_are_searchable_after_it() {
        let mut connection = Connection::open_in_memory().expect("database");
        for sql in &MIGRATIONS[..BEFORE_SEARCH] {
            connection.execute_batch(sql).expect("older migration");
        }
        connection.pragma_update(None, "user_version", BEFORE_SEARCH as u32).expect("version");
        let mut insert = connection
            .prepare(
                "INSERT INTO issues (id, project_id, primary_hash, title, culprit, exception_type, level, platform,
                    status, first_seen_unix_nano, last_seen_unix_nano, event_count, user_count, session_count)
                 VALUES (?1, 1, ?1, ?2, ?3, 'E', 'error', 'python', 'unresolved', 0, 0, 1, 0, 0)",
            )
            .expect("insert statement");
        insert.execute(params![1, "OrderError: Payment Declined", "billing.charge in capture"]).expect("issue");
        insert.execute(params![2, "KeyError: 'sku'", None::<String>]).expect("issue");
        drop(insert);

        assert_eq!(migrate(&mut connection).expect("migrate"), MIGRATIONS.len() as u32);
        assert_eq!(matching_ids(&connection, "\"payment decl\""), [1], "title, any case");
        assert_eq!(matching_ids(&connection, "\"CHARGE IN\""), [1], "culprit");
        assert_eq!(matching_ids(&connection, "\"'sku'\""), [2]);
        integrity_check(&connection).expect("rebuilt index consistent");

        // The triggers: a culprit appearing (NULL to text, which `IS NOT` sees), an insert, a delete.
        connection.execute("UPDATE issues SET culprit = 'inventory in lookup' WHERE id = 2", []).expect("update");
        connection
            .execute(
                "INSERT INTO issues (id, project_id, primary_hash, title, exception_type, level, platform, status,
                    first_seen_unix_nano, last_seen_unix_nano, event_count, user_count, session_count)
                 VALUES (3, 1, '3', 'Timeout: inventory', 'E', 'error', 'python', 'unresolved', 0, 0, 1, 0, 0)",
                [],
            )
            .expect("insert");
        assert_eq!(matching_ids(&connection, "\"inventory\""), [2, 3]);
        connection.execute("DELETE FROM issues WHERE id = 1", []).expect("delete");
        assert!(matching_ids(&connection, "\"payment\"").is_empty());
        integrity_check(&connection).expect("index kept consistent");

        // Grouping's per-event update rewrites the title with the same value: the index is not
        // written (its segments in `issues_search_data` stay as they were), unlike a real change.
        let index_data = |connection: &Connection| -> (i64, f64) {
            connection
                .query_row("SELECT count(*), total(length(block)) FROM issues_search_data", [], |row| {
                    Ok((row.get(0)?, row.get(1)?))
                })
                .expect("index data")
        };
        let before = index_data(&connection);
        connection
            .execute("UPDATE issues SET title = title, culprit = culprit, event_count = event_count + 1", [])
            .expect("same-title update");
        assert_eq!(index_data(&connection), before, "same values: no reindex");
        connection.execute("UPDATE issues SET title = 'Timeout: warehouse' WHERE id = 3", []).expect("rename");
        assert_ne!(index_data(&connection), before, "a new title is reindexed");
        assert_eq!(matching_ids(&connection, "\"warehouse\""), [3]);

        // The check really compares against `issues`: a change behind the triggers' back fails it.
        connection.execute_batch("DROP TRIGGER issues_search_update").expect("drop trigger");
        connection.execute("UPDATE issues SET title = 'renamed' WHERE id = 3", []).expect("update");
        assert!(integrity_check(&connection).is_err(), "a stale index fails the check");
    }
}
