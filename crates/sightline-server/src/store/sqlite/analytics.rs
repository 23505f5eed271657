//! Product-analytics reads in SQLite: journey touches, event counts per group and time bucket,
//! and the web-vital fields of `performance` events.
//!
//! Journeys and performance events are found through two partial indexes of migration 6
//! (`product_events_journeys`, `product_events_performance`): only the events they cover get an
//! index entry, so ordinary events cost nothing more at insert. Their `WHERE` terms are repeated
//! verbatim in the queries below, which is what lets SQLite use them.

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Row, params};

use crate::store::StoreResult;
use crate::store::analytics::{
    BucketCounts, Capped, EventCounts, EventGroupKey, EventStats, EventStatsQuery, GroupCounts, JourneyTouch,
    JourneyTouchQuery, PerformanceSample,
};

fn nanos(value: u64) -> i64 {
    value.min(i64::MAX as u64) as i64
}

fn count(value: usize) -> i64 {
    value.min(i64::MAX as usize) as i64
}

/// A JSON value read with `json_extract` as text: strings as they are, numbers printed, anything
/// else (null, blobs) as `None`. Clients sometimes send ids as numbers.
fn text_of(value: SqlValue) -> Option<String> {
    match value {
        SqlValue::Text(text) if !text.is_empty() => Some(text),
        SqlValue::Integer(integer) => Some(integer.to_string()),
        SqlValue::Real(real) => Some(real.to_string()),
        _ => None,
    }
}

fn number_of(value: SqlValue) -> Option<f64> {
    match value {
        SqlValue::Integer(integer) => Some(integer as f64),
        SqlValue::Real(real) if real.is_finite() => Some(real),
        _ => None,
    }
}

/// Journey touches: `?1` project, `?2..=?3` time range, `?4` journey id or NULL, `?5` limit.
const JOURNEY_TOUCHES_SQL: &str = r#"
    SELECT json_extract(properties, '$."journey.id"'), session_id, user_id,
           json_extract(properties, '$."journey.step.id"'), json_extract(properties, '$."journey.step.name"'),
           json_extract(properties, '$."journey.conversion.status"'), timestamp_unix_nano,
           json_extract(metadata, '$.source')
    FROM product_events
    WHERE project_id = ?1 AND instr(properties, '"journey.id"') > 0
      AND timestamp_unix_nano BETWEEN ?2 AND ?3
      AND json_extract(properties, '$."journey.id"') IS NOT NULL
      AND (?4 IS NULL OR json_extract(properties, '$."journey.id"') = ?4)
    ORDER BY timestamp_unix_nano, id LIMIT ?5"#;

/// Web-vital fields of `performance` events: `?1` project, `?2..=?3` time range, `?4` limit.
const PERFORMANCE_SAMPLES_SQL: &str = r#"
    SELECT timestamp_unix_nano,
           json_extract(properties, '$."page.path"'), json_extract(properties, '$."page.url"'),
           json_extract(properties, '$."performance.lcp_ms"'), json_extract(properties, '$."performance.fid_ms"'),
           json_extract(properties, '$."performance.inp_ms"'), json_extract(properties, '$."performance.cls"'),
           json_extract(properties, '$."performance.ttfb_ms"'), json_extract(properties, '$."performance.fcp_ms"')
    FROM product_events
    WHERE project_id = ?1 AND event_type = 'performance' AND timestamp_unix_nano BETWEEN ?2 AND ?3
    ORDER BY timestamp_unix_nano DESC, id DESC LIMIT ?4"#;

/// Journey touches in the range, oldest first, at most `max_touches` (more sets `truncated`).
pub(super) fn journey_touches(
    connection: &Connection,
    project_id: i64,
    query: &JourneyTouchQuery,
) -> StoreResult<Capped<JourneyTouch>> {
    let mut statement = connection.prepare_cached(JOURNEY_TOUCHES_SQL)?;
    let mut rows = statement.query(params![
        project_id,
        nanos(query.from_unix_nano),
        nanos(query.to_unix_nano),
        query.journey_id,
        count(query.max_touches.saturating_add(1)),
    ])?;
    let mut items = Vec::new();
    let mut truncated = false;
    while let Some(row) = rows.next()? {
        if items.len() == query.max_touches {
            truncated = true;
            break;
        }
        let Some(journey_id) = text_of(row.get(0)?) else { continue };
        items.push(JourneyTouch {
            journey_id,
            session_id: row.get(1)?,
            user_id: row.get::<_, Option<String>>(2)?.filter(|user| !user.is_empty()),
            step_id: text_of(row.get(3)?),
            step_name: text_of(row.get(4)?),
            conversion_status: text_of(row.get(5)?),
            timestamp_unix_nano: row.get::<_, i64>(6)?.max(0) as u64,
            source: text_of(row.get(7)?),
        });
    }
    Ok(Capped { items, truncated })
}

/// The SQL expression of a grouping (fixed text, never user input).
fn group_expression(group_by: EventGroupKey) -> &'static str {
    match group_by {
        EventGroupKey::Name => "NULLIF(event_name, '')",
        EventGroupKey::Type => "event_type",
        EventGroupKey::Page => r#"json_extract(properties, '$."page.path"')"#,
    }
}

fn counts_at(row: &Row<'_>, first: usize) -> rusqlite::Result<EventCounts> {
    Ok(EventCounts {
        count: row.get::<_, i64>(first)?.max(0) as u64,
        unique_users: row.get::<_, i64>(first + 1)?.max(0) as u64,
        unique_sessions: row.get::<_, i64>(first + 2)?.max(0) as u64,
    })
}

/// Event statistics over the oldest `max_events` events of the range, read in one snapshot
/// (four aggregate passes over the same rows: per group, overall, per bucket, per bucket and
/// group).
pub(super) fn event_stats(
    connection: &Connection,
    project_id: i64,
    query: &EventStatsQuery,
) -> StoreResult<EventStats> {
    // One read transaction: every pass sees the same committed state.
    let transaction = connection.unchecked_transaction()?;
    let interval = nanos(query.interval_nanos.max(1));
    let scoped = format!(
        "WITH scoped AS (
            SELECT timestamp_unix_nano AS ts, {} AS grp, user_id, session_id
            FROM product_events WHERE project_id = ?1 AND timestamp_unix_nano BETWEEN ?2 AND ?3
            ORDER BY timestamp_unix_nano LIMIT ?4)",
        group_expression(query.group_by)
    );
    let range = (project_id, nanos(query.from_unix_nano), nanos(query.to_unix_nano), count(query.max_events));

    let truncated: bool = transaction.query_row(
        "SELECT EXISTS (SELECT 1 FROM product_events WHERE project_id = ?1 AND timestamp_unix_nano BETWEEN ?2 AND ?3
                        ORDER BY timestamp_unix_nano LIMIT 1 OFFSET ?4)",
        params![range.0, range.1, range.2, range.3],
        |row| row.get(0),
    )?;

    let mut groups = Vec::new();
    {
        let mut statement = transaction.prepare(&format!(
            "{scoped} SELECT grp, COUNT(*), COUNT(DISTINCT user_id), COUNT(DISTINCT session_id)
             FROM scoped GROUP BY grp ORDER BY COUNT(*) DESC, grp LIMIT ?5"
        ))?;
        let mut rows =
            statement.query(params![range.0, range.1, range.2, range.3, count(query.max_groups.saturating_add(1))])?;
        while let Some(row) = rows.next()? {
            groups.push(GroupCounts { group: text_of(row.get(0)?), counts: counts_at(row, 1)? });
        }
    }
    let groups_truncated = groups.len() > query.max_groups;
    groups.truncate(query.max_groups);

    let total = transaction.query_row(
        &format!("{scoped} SELECT COUNT(*), COUNT(DISTINCT user_id), COUNT(DISTINCT session_id) FROM scoped"),
        params![range.0, range.1, range.2, range.3],
        |row| counts_at(row, 0),
    )?;

    let mut bucket_totals = Vec::new();
    {
        let mut statement = transaction.prepare(&format!(
            "{scoped} SELECT (ts / ?5) * ?5 AS bucket, COUNT(*), COUNT(DISTINCT user_id), COUNT(DISTINCT session_id)
             FROM scoped GROUP BY bucket ORDER BY bucket"
        ))?;
        let mut rows = statement.query(params![range.0, range.1, range.2, range.3, interval])?;
        while let Some(row) = rows.next()? {
            bucket_totals.push(BucketCounts {
                bucket_start_unix_nano: row.get::<_, i64>(0)?.max(0) as u64,
                group: None,
                counts: counts_at(row, 1)?,
            });
        }
    }

    let named_groups: Vec<&str> = groups.iter().filter_map(|group| group.group.as_deref()).collect();
    let null_group_kept = groups.iter().any(|group| group.group.is_none());
    let named_groups_json = serde_json::to_string(&named_groups).unwrap_or_else(|_| "[]".into());
    let mut cells = Vec::new();
    {
        let mut statement = transaction.prepare(&format!(
            "{scoped} SELECT (ts / ?5) * ?5 AS bucket, grp, COUNT(*), COUNT(DISTINCT user_id), COUNT(DISTINCT session_id)
             FROM scoped WHERE grp IN (SELECT value FROM json_each(?6)) OR (grp IS NULL AND ?7)
             GROUP BY bucket, grp ORDER BY bucket, grp"
        ))?;
        let mut rows = statement.query(params![
            range.0,
            range.1,
            range.2,
            range.3,
            interval,
            named_groups_json,
            null_group_kept
        ])?;
        while let Some(row) = rows.next()? {
            cells.push(BucketCounts {
                bucket_start_unix_nano: row.get::<_, i64>(0)?.max(0) as u64,
                group: text_of(row.get(1)?),
                counts: counts_at(row, 2)?,
            });
        }
    }
    transaction.finish()?;
    Ok(EventStats { groups, cells, bucket_totals, total, groups_truncated, truncated })
}

/// The web-vital fields of `performance` events in the range, newest first, at most
/// `max_samples` (more sets `truncated`).
pub(super) fn performance_samples(
    connection: &Connection,
    project_id: i64,
    from_unix_nano: u64,
    to_unix_nano: u64,
    max_samples: usize,
) -> StoreResult<Capped<PerformanceSample>> {
    let mut statement = connection.prepare_cached(PERFORMANCE_SAMPLES_SQL)?;
    let mut rows = statement.query(params![
        project_id,
        nanos(from_unix_nano),
        nanos(to_unix_nano),
        count(max_samples.saturating_add(1))
    ])?;
    let mut items = Vec::new();
    let mut truncated = false;
    while let Some(row) = rows.next()? {
        if items.len() == max_samples {
            truncated = true;
            break;
        }
        items.push(PerformanceSample {
            timestamp_unix_nano: row.get::<_, i64>(0)?.max(0) as u64,
            page_path: text_of(row.get(1)?),
            page_url: text_of(row.get(2)?),
            lcp_ms: number_of(row.get(3)?),
            fid_ms: number_of(row.get(4)?),
            inp_ms: number_of(row.get(5)?),
            cls: number_of(row.get(6)?),
            ttfb_ms: number_of(row.get(7)?),
            fcp_ms: number_of(row.get(8)?),
        });
    }
    Ok(Capped { items, truncated })
}

#[cfg(test)]
mod tests {
    use serde_json::{Map, Value, json};
    use sightline_model::{EventType, ProductEvent};

    use super::super::SqliteStore;
    use super::super::events::insert_events;
    use super::*;
    use crate::store::Store;

    const SECOND: u64 = 1_000_000_000;
    const HOUR: u64 = 3_600 * SECOND;
    /// 2023-11-14T22:00:00Z, on the hour.
    const T0: u64 = 1_699_999_200 * SECOND;

    fn event(
        id: &str,
        session: &str,
        user: Option<&str>,
        event_type: EventType,
        name: &str,
        at: u64,
        properties: Value,
    ) -> ProductEvent {
        let as_map = |value: Value| match value {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        ProductEvent {
            event_id: id.into(),
            product_id: "shop".into(),
            session_id: session.into(),
            user_id: user.map(str::to_owned),
            org_id: None,
            event_type,
            event_name: name.into(),
            timestamp_unix_nano: at,
            timestamp_defaulted: false,
            sequence: None,
            properties: as_map(properties),
            metadata: Map::new(),
        }
    }

    fn store_with(events: &[ProductEvent]) -> (tempfile::TempDir, SqliteStore, i64) {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&directory.path().join("sightline.db")).expect("store opens");
        let project = store.create_project("Shop").expect("project");
        store
            .with_writer(|writer| {
                let transaction =
                    writer.connection().transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
                insert_events(&transaction, project.id, events, &[], &mut Vec::new())?;
                transaction.commit()?;
                Ok(())
            })
            .expect("events inserted");
        (directory, store, project.id)
    }

    fn stats_query(group_by: EventGroupKey) -> EventStatsQuery {
        EventStatsQuery {
            from_unix_nano: T0,
            to_unix_nano: T0 + 2 * HOUR,
            interval_nanos: HOUR,
            group_by,
            max_groups: 10,
            max_events: 1_000,
        }
    }

    fn stats_fixture() -> Vec<ProductEvent> {
        let page = |path: &str| json!({"page.path": path});
        vec![
            event("1", "s1", Some("u1"), EventType::PageView, "view", T0 + 60 * SECOND, page("/")),
            event("2", "s1", Some("u1"), EventType::UiClick, "add_to_cart", T0 + 120 * SECOND, page("/")),
            event("3", "s2", Some("u2"), EventType::UiClick, "add_to_cart", T0 + 180 * SECOND, page("/p/1")),
            event("4", "s3", None, EventType::UiClick, "add_to_cart", T0 + HOUR + 5 * SECOND, page("/p/1")),
            event("5", "s3", None, EventType::Custom, "", T0 + HOUR + 6 * SECOND, json!({})),
            // Outside the range.
            event("6", "s9", Some("u9"), EventType::UiClick, "add_to_cart", T0 + 3 * HOUR, page("/")),
        ]
    }

    #[test]
    fn event_stats_count_events_users_and_sessions_per_group_and_bucket() {
        let (_directory, store, project_id) = store_with(&stats_fixture());
        let stats = store.event_stats(project_id, &stats_query(EventGroupKey::Name)).expect("stats");
        assert_eq!(stats.total, EventCounts { count: 5, unique_users: 2, unique_sessions: 3 });
        let groups: Vec<(Option<&str>, EventCounts)> =
            stats.groups.iter().map(|group| (group.group.as_deref(), group.counts)).collect();
        assert_eq!(
            groups,
            [
                (Some("add_to_cart"), EventCounts { count: 3, unique_users: 2, unique_sessions: 3 }),
                (None, EventCounts { count: 1, unique_users: 0, unique_sessions: 1 }),
                (Some("view"), EventCounts { count: 1, unique_users: 1, unique_sessions: 1 }),
            ]
        );
        let totals: Vec<(u64, u64)> =
            stats.bucket_totals.iter().map(|bucket| (bucket.bucket_start_unix_nano, bucket.counts.count)).collect();
        assert_eq!(totals, [(T0, 3), (T0 + HOUR, 2)]);
        let cart: Vec<(u64, EventCounts)> = stats
            .cells
            .iter()
            .filter(|cell| cell.group.as_deref() == Some("add_to_cart"))
            .map(|cell| (cell.bucket_start_unix_nano, cell.counts))
            .collect();
        assert_eq!(
            cart,
            [
                (T0, EventCounts { count: 2, unique_users: 2, unique_sessions: 2 }),
                (T0 + HOUR, EventCounts { count: 1, unique_users: 0, unique_sessions: 1 }),
            ]
        );
        assert!(stats.cells.iter().any(|cell| cell.group.is_none()), "the null group keeps its cells");
        assert!(!stats.truncated && !stats.groups_truncated);

        let pages = store.event_stats(project_id, &stats_query(EventGroupKey::Page)).expect("stats");
        assert_eq!(pages.groups[0].group.as_deref(), Some("/"));
        assert_eq!(pages.groups[1].group.as_deref(), Some("/p/1"));
        let types = store.event_stats(project_id, &stats_query(EventGroupKey::Type)).expect("stats");
        assert_eq!(types.groups[0].group.as_deref(), Some("ui.click"));
    }

    #[test]
    fn event_stats_are_bounded_in_groups_and_events() {
        let (_directory, store, project_id) = store_with(&stats_fixture());
        let few_groups = EventStatsQuery { max_groups: 1, ..stats_query(EventGroupKey::Name) };
        let stats = store.event_stats(project_id, &few_groups).expect("stats");
        assert_eq!(stats.groups.len(), 1);
        assert!(stats.groups_truncated);
        assert!(stats.cells.iter().all(|cell| cell.group.as_deref() == Some("add_to_cart")));
        let few_events = EventStatsQuery { max_events: 3, ..stats_query(EventGroupKey::Name) };
        let stats = store.event_stats(project_id, &few_events).expect("stats");
        assert!(stats.truncated);
        assert_eq!(stats.total.count, 3, "the oldest 3 events are counted");
        assert_eq!(stats.bucket_totals.len(), 1);
    }

    #[test]
    fn journey_touches_read_steps_statuses_and_sources() {
        let mut server_step = event(
            "3",
            "s1",
            Some("u1"),
            EventType::JourneyStep,
            "journey.step",
            T0 + 3 * SECOND,
            json!({"journey.id": "checkout", "journey.step.id": "payment"}),
        );
        server_step.metadata.insert("source".into(), json!("otlp"));
        let events = vec![
            event(
                "1",
                "s1",
                Some("u1"),
                EventType::JourneyStep,
                "journey.step",
                T0 + SECOND,
                json!({"journey.id": "checkout", "journey.step.id": "cart", "journey.step.name": "Cart"}),
            ),
            event(
                "2",
                "s1",
                Some("u1"),
                EventType::Custom,
                "done",
                T0 + 2 * SECOND,
                json!({"journey.id": "checkout", "journey.conversion.status": "converted"}),
            ),
            server_step,
            event(
                "4",
                "s2",
                None,
                EventType::JourneyStep,
                "journey.step",
                T0 + 4 * SECOND,
                json!({"journey.id": "signup", "journey.step.id": 1}),
            ),
            // "journey.id" inside a value only: found by the index predicate, dropped by the query.
            event("5", "s3", None, EventType::Custom, "note", T0 + 5 * SECOND, json!({"text": "\"journey.id\""})),
            event("6", "s4", None, EventType::PageView, "view", T0 + 6 * SECOND, json!({"page.path": "/"})),
        ];
        let (_directory, store, project_id) = store_with(&events);
        let query =
            JourneyTouchQuery { from_unix_nano: T0, to_unix_nano: T0 + HOUR, journey_id: None, max_touches: 100 };
        let touches = store.journey_touches(project_id, &query).expect("touches");
        assert!(!touches.truncated);
        let ids: Vec<(&str, Option<&str>)> =
            touches.items.iter().map(|touch| (touch.journey_id.as_str(), touch.step_id.as_deref())).collect();
        assert_eq!(
            ids,
            [("checkout", Some("cart")), ("checkout", None), ("checkout", Some("payment")), ("signup", Some("1"))]
        );
        assert_eq!(touches.items[0].step_name.as_deref(), Some("Cart"));
        assert_eq!(touches.items[0].user_id.as_deref(), Some("u1"));
        assert_eq!(touches.items[1].conversion_status.as_deref(), Some("converted"));
        assert_eq!(touches.items[2].source.as_deref(), Some("otlp"));
        assert_eq!(touches.items[0].source, None);

        let one = JourneyTouchQuery { journey_id: Some("signup".into()), ..query.clone() };
        assert_eq!(store.journey_touches(project_id, &one).expect("touches").items.len(), 1);
        let capped = JourneyTouchQuery { max_touches: 2, ..query };
        let touches = store.journey_touches(project_id, &capped).expect("touches");
        assert_eq!((touches.items.len(), touches.truncated), (2, true));
    }

    #[test]
    fn performance_samples_read_numbers_newest_first() {
        let events = vec![
            event(
                "1",
                "s1",
                None,
                EventType::Performance,
                "vitals",
                T0 + SECOND,
                json!({"page.path": "/", "performance.lcp_ms": 1200, "performance.cls": 0.05}),
            ),
            event(
                "2",
                "s2",
                None,
                EventType::Performance,
                "vitals",
                T0 + 2 * SECOND,
                json!({"page.url": "https://shop.example.com/cart", "performance.inp_ms": 180.5,
                       "performance.fid_ms": 12, "performance.ttfb_ms": 300, "performance.fcp_ms": 900}),
            ),
            event("3", "s3", None, EventType::PageView, "view", T0 + 3 * SECOND, json!({"performance.lcp_ms": 99999})),
        ];
        let (_directory, store, project_id) = store_with(&events);
        let samples = store.performance_samples(project_id, T0, T0 + HOUR, 10).expect("samples");
        assert_eq!(samples.items.len(), 2, "only performance events");
        let newest = &samples.items[0];
        assert_eq!(newest.page_url.as_deref(), Some("https://shop.example.com/cart"));
        assert_eq!(
            (newest.inp_ms, newest.fid_ms, newest.ttfb_ms, newest.fcp_ms),
            (Some(180.5), Some(12.0), Some(300.0), Some(900.0))
        );
        let oldest = &samples.items[1];
        assert_eq!((oldest.page_path.as_deref(), oldest.lcp_ms, oldest.cls), (Some("/"), Some(1_200.0), Some(0.05)));
        let capped = store.performance_samples(project_id, T0, T0 + HOUR, 1).expect("samples");
        assert_eq!((capped.items.len(), capped.truncated), (1, true));
    }

    #[test]
    fn journey_and_performance_reads_use_their_partial_indexes() {
        let (_directory, store, _) = store_with(&[]);
        let connection = store.reader().expect("reader");
        let plan = |sql: &str| -> String {
            let mut statement = connection.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).expect("plan");
            let values = vec![SqlValue::Integer(1); statement.parameter_count()];
            let rows =
                statement.query_map(rusqlite::params_from_iter(values), |row| row.get::<_, String>(3)).expect("rows");
            rows.collect::<Result<Vec<_>, _>>().expect("plan rows").join("; ")
        };
        let journeys = plan(JOURNEY_TOUCHES_SQL);
        assert!(journeys.contains("product_events_journeys"), "{journeys}");
        let performance = plan(PERFORMANCE_SAMPLES_SQL);
        assert!(performance.contains("product_events_performance"), "{performance}");
    }
}
