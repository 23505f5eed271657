//! Forwarding in SQLite: destinations, the outbox written inside the ingest transaction, and
//! dead letters (migration 13).
//!
//! The writer keeps the enabled destinations' compiled routing in memory ([`Routes`]),
//! reloaded after every destination change, so queueing costs one indexed insert per
//! (destination, fresh event) and nothing when no destination matches. Outbox rows reference
//! the stored event row; an event that retention deleted first becomes a dead letter.

use std::sync::{Arc, RwLock};

use rusqlite::{Connection, OptionalExtension, Transaction, params};
use sightline_model::{EventType, ProductEvent};

use crate::exporters::routing::RouteMatcher;
use crate::exporters::{DestinationConfig, OutboxEvent};
use crate::store::outbox::{DeadLetter, DeliveryReport, Destination, QueueStats, SERVER_WIDE_PROJECT};
use crate::store::{StoreError, StoreResult};

/// One enabled destination as the writer sees it.
#[derive(Debug, Clone)]
pub(super) struct Route {
    destination_id: i64,
    project_id: i64,
    matcher: RouteMatcher,
}

/// The writer's routing table, shared with the store for reloads.
pub(super) type Routes = Arc<RwLock<Vec<Route>>>;

const COLUMNS: &str = "id, project_id, name, kind, enabled, config, created_at_unix_ms, delivered_count,
    dead_letter_count, filtered_count, last_error, last_error_at_unix_ms, last_delivered_at_unix_ms";

fn destination_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<(Destination, String)> {
    let config_text: String = row.get(5)?;
    // A row no release can read (hand-edited) surfaces as an error below, not a panic.
    let placeholder = DestinationConfig {
        settings: crate::exporters::DestinationSettings::Webhook(crate::exporters::config::WebhookSettings {
            url: String::new(),
            secret: crate::exporters::Secret::default(),
            gzip: false,
        }),
        routing: Default::default(),
        batch: Default::default(),
    };
    Ok((
        Destination {
            id: row.get(0)?,
            project_id: row.get(1)?,
            name: row.get(2)?,
            enabled: row.get::<_, i64>(4)? != 0,
            config: placeholder,
            created_at_unix_ms: row.get(6)?,
            delivered_count: row.get::<_, i64>(7)? as u64,
            dead_letter_count: row.get::<_, i64>(8)? as u64,
            filtered_count: row.get::<_, i64>(9)? as u64,
            last_error: row.get(10)?,
            last_error_at_unix_ms: row.get(11)?,
            last_delivered_at_unix_ms: row.get(12)?,
        },
        config_text,
    ))
}

fn parse_destination((mut destination, config_text): (Destination, String)) -> StoreResult<Destination> {
    destination.config = serde_json::from_str(&config_text).map_err(|error| {
        StoreError::Database(format!("destination {} has unreadable settings: {error}", destination.id))
    })?;
    Ok(destination)
}

/// Every destination (`None`) or a project's plus the server-wide ones, by id.
pub(super) fn list(connection: &Connection, project_id: Option<i64>) -> StoreResult<Vec<Destination>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT {COLUMNS} FROM destinations WHERE ?1 IS NULL OR project_id = ?1 OR project_id = ?2 ORDER BY id"
    ))?;
    let rows = statement.query_map(params![project_id, SERVER_WIDE_PROJECT], destination_from_row)?;
    let mut destinations = Vec::new();
    for row in rows {
        destinations.push(parse_destination(row?)?);
    }
    Ok(destinations)
}

/// One destination.
pub(super) fn get(connection: &Connection, destination_id: i64) -> StoreResult<Option<Destination>> {
    let row = connection
        .query_row(&format!("SELECT {COLUMNS} FROM destinations WHERE id = ?1"), [destination_id], destination_from_row)
        .optional()?;
    row.map(parse_destination).transpose()
}

fn config_text(config: &DestinationConfig) -> StoreResult<String> {
    serde_json::to_string(config).map_err(|error| StoreError::Database(error.to_string()))
}

/// Inserts a destination; `Conflict` when the project has one of that name.
pub(super) fn create(
    connection: &Connection,
    project_id: i64,
    name: &str,
    enabled: bool,
    config: &DestinationConfig,
) -> StoreResult<Destination> {
    let inserted = connection.execute(
        "INSERT INTO destinations (project_id, name, kind, enabled, config, created_at_unix_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (project_id, name) DO NOTHING",
        params![project_id, name, config.settings.kind(), enabled, config_text(config)?, super::now_unix_ms()],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("a destination named {name:?} exists")));
    }
    let id = connection.last_insert_rowid();
    get(connection, id)?.ok_or_else(|| StoreError::NotFound(format!("destination {id}")))
}

/// Creates or replaces the server-wide destination `name`.
pub(super) fn upsert_server(
    connection: &Connection,
    name: &str,
    enabled: bool,
    config: &DestinationConfig,
) -> StoreResult<Destination> {
    connection.execute(
        "INSERT INTO destinations (project_id, name, kind, enabled, config, created_at_unix_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT (project_id, name) DO UPDATE SET kind = excluded.kind, enabled = excluded.enabled,
            config = excluded.config",
        params![SERVER_WIDE_PROJECT, name, config.settings.kind(), enabled, config_text(config)?, super::now_unix_ms()],
    )?;
    let id: i64 = connection.query_row(
        "SELECT id FROM destinations WHERE project_id = ?1 AND name = ?2",
        params![SERVER_WIDE_PROJECT, name],
        |row| row.get(0),
    )?;
    get(connection, id)?.ok_or_else(|| StoreError::NotFound(format!("destination {id}")))
}

/// Replaces a destination's settings.
pub(super) fn update(
    connection: &Connection,
    destination_id: i64,
    name: &str,
    enabled: bool,
    config: &DestinationConfig,
) -> StoreResult<Destination> {
    let changed = connection
        .execute(
            "UPDATE destinations SET name = ?2, kind = ?3, enabled = ?4, config = ?5 WHERE id = ?1",
            params![destination_id, name, config.settings.kind(), enabled, config_text(config)?],
        )
        .map_err(|error| match error {
            rusqlite::Error::SqliteFailure(failure, _) if failure.code == rusqlite::ErrorCode::ConstraintViolation => {
                StoreError::Conflict(format!("a destination named {name:?} exists"))
            }
            other => other.into(),
        })?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("destination {destination_id}")));
    }
    get(connection, destination_id)?.ok_or_else(|| StoreError::NotFound(format!("destination {destination_id}")))
}

/// Deletes a destination, its queue and its dead letters.
pub(super) fn delete(connection: &mut Connection, destination_id: i64) -> StoreResult<bool> {
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    transaction.execute("DELETE FROM outbox WHERE destination_id = ?1", [destination_id])?;
    transaction.execute("DELETE FROM dead_letters WHERE destination_id = ?1", [destination_id])?;
    let deleted = transaction.execute("DELETE FROM destinations WHERE id = ?1", [destination_id])?;
    transaction.commit()?;
    Ok(deleted > 0)
}

/// The enabled destinations' compiled routing (those whose routing does not compile are left
/// out with a warning: the API refuses them, so only a hand-edited row can get here).
pub(super) fn load_routes(connection: &Connection) -> StoreResult<Vec<Route>> {
    let mut routes = Vec::new();
    for destination in list(connection, None)? {
        if !destination.enabled {
            continue;
        }
        match destination.config.routing.compile() {
            Ok(matcher) => {
                routes.push(Route { destination_id: destination.id, project_id: destination.project_id, matcher })
            }
            Err(error) => tracing::warn!(destination = destination.id, %error, "Destination skipped"),
        }
    }
    Ok(routes)
}

/// Queues `fresh` events (index into `events`, stored row id) for every matching destination
/// of the project; returns how many rows were written.
pub(super) fn queue_events(
    transaction: &Transaction<'_>,
    routes: &[Route],
    project_id: i64,
    events: &[ProductEvent],
    fresh: &[(usize, i64)],
    now_unix_ms: i64,
) -> StoreResult<usize> {
    let matching: Vec<&Route> = routes
        .iter()
        .filter(|route| route.project_id == project_id || route.project_id == SERVER_WIDE_PROJECT)
        .collect();
    if matching.is_empty() || fresh.is_empty() {
        return Ok(0);
    }
    let mut statement = transaction
        .prepare_cached("INSERT INTO outbox (destination_id, event_rowid, created_at_unix_ms) VALUES (?1, ?2, ?3)")?;
    let mut queued = 0;
    for (index, rowid) in fresh {
        let Some(event) = events.get(*index) else { continue };
        for route in &matching {
            if route.matcher.accepts(event) {
                statement.execute(params![route.destination_id, rowid, now_unix_ms])?;
                queued += 1;
            }
        }
    }
    Ok(queued)
}

/// The oldest `limit` rows of a destination's queue with their events and session starts.
pub(super) fn pending(connection: &Connection, destination_id: i64, limit: usize) -> StoreResult<Vec<OutboxEvent>> {
    let mut statement = connection.prepare_cached(
        "SELECT o.id, o.event_rowid, o.created_at_unix_ms, e.event_id, e.product_id, e.session_id, e.user_id, e.org_id,
                e.event_type, e.event_name, e.timestamp_unix_nano, e.sequence, e.properties, e.metadata,
                s.first_seen_unix_nano, e.project_id
         FROM outbox o
         LEFT JOIN product_events e ON e.id = o.event_rowid
         LEFT JOIN sessions s ON s.project_id = e.project_id AND s.session_id = e.session_id
         WHERE o.destination_id = ?1 ORDER BY o.id LIMIT ?2",
    )?;
    let mut rows = statement.query(params![destination_id, limit as i64])?;
    let mut items = Vec::with_capacity(limit.min(4096));
    let object = |text: &str| match serde_json::from_str(text) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    while let Some(row) = rows.next()? {
        let event = match row.get::<_, Option<String>>(3)? {
            None => None,
            Some(event_id) => Some(ProductEvent {
                event_id,
                product_id: row.get(4)?,
                session_id: row.get(5)?,
                user_id: row.get(6)?,
                org_id: row.get(7)?,
                event_type: EventType::parse(&row.get::<_, String>(8)?).unwrap_or(EventType::Custom),
                event_name: row.get(9)?,
                timestamp_unix_nano: row.get::<_, i64>(10)?.max(0) as u64,
                timestamp_defaulted: false,
                sequence: row.get(11)?,
                properties: object(&row.get::<_, String>(12)?),
                metadata: object(&row.get::<_, String>(13)?),
            }),
        };
        items.push(OutboxEvent {
            outbox_id: row.get(0)?,
            event_rowid: row.get(1)?,
            project_id: row.get(15)?,
            created_at_unix_ms: row.get(2)?,
            event,
            session_start_unix_ms: row.get::<_, Option<i64>>(14)?.map(|nanos| nanos / 1_000_000),
        });
    }
    Ok(items)
}

/// Records a delivery round in one transaction.
pub(super) fn record(connection: &mut Connection, report: &DeliveryReport) -> StoreResult<()> {
    let now = super::now_unix_ms();
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    {
        let mut delete = transaction.prepare_cached("DELETE FROM outbox WHERE id = ?1 AND destination_id = ?2")?;
        let mut delivered = 0i64;
        for outbox_id in &report.delivered {
            delivered += delete.execute(params![outbox_id, report.destination_id])? as i64;
        }
        let mut filtered = 0i64;
        for outbox_id in &report.filtered {
            filtered += delete.execute(params![outbox_id, report.destination_id])? as i64;
        }
        let mut park = transaction.prepare_cached(
            "INSERT INTO dead_letters (destination_id, event_rowid, event_id, reason, last_response, attempts, dead_at_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
        )?;
        let mut dead = 0i64;
        for letter in &report.dead {
            // Only a row still queued becomes a dead letter (never twice).
            if delete.execute(params![letter.outbox_id, report.destination_id])? == 1 {
                park.execute(params![
                    report.destination_id,
                    letter.event_rowid,
                    letter.event_id,
                    letter.reason,
                    letter.last_response,
                    letter.attempts,
                    now
                ])?;
                dead += 1;
            }
        }
        transaction.execute(
            "UPDATE destinations SET delivered_count = delivered_count + ?2, filtered_count = filtered_count + ?3,
                dead_letter_count = dead_letter_count + ?4,
                last_delivered_at_unix_ms = CASE WHEN ?2 > 0 THEN ?5 ELSE last_delivered_at_unix_ms END,
                last_error = coalesce(?6, last_error),
                last_error_at_unix_ms = CASE WHEN ?6 IS NOT NULL THEN ?5 ELSE last_error_at_unix_ms END
             WHERE id = ?1",
            params![report.destination_id, delivered, filtered, dead, now, report.last_error],
        )?;
    }
    transaction.commit()?;
    Ok(())
}

/// Queue length and lag.
pub(super) fn stats(connection: &Connection, destination_id: i64) -> StoreResult<QueueStats> {
    let (queued, oldest): (i64, Option<i64>) = connection.query_row(
        "SELECT count(*), min(created_at_unix_ms) FROM outbox WHERE destination_id = ?1",
        [destination_id],
        |row| Ok((row.get(0)?, row.get(1)?)),
    )?;
    let lag_ms = oldest.map(|oldest| (super::now_unix_ms() - oldest).max(0)).unwrap_or(0);
    Ok(QueueStats { queued: queued as u64, lag_ms })
}

/// The filter "`parameter` is NULL, or the dead letter `d` is of an event of that project".
fn of_project(parameter: &str) -> String {
    format!(
        "({parameter} IS NULL OR EXISTS (SELECT 1 FROM product_events e WHERE e.id = d.event_rowid AND e.project_id = {parameter}))"
    )
}

/// Dead letters, newest first (see `Store::dead_letters`).
pub(super) fn dead_letters(
    connection: &Connection,
    destination_id: i64,
    project: Option<i64>,
    limit: usize,
    before_id: Option<i64>,
) -> StoreResult<Vec<DeadLetter>> {
    let mut statement = connection.prepare_cached(&format!(
        "SELECT d.id, d.event_id, d.reason, d.last_response, d.attempts, d.dead_at_unix_ms FROM dead_letters d
         WHERE d.destination_id = ?1 AND d.id < ?2 AND {} ORDER BY d.id DESC LIMIT ?3",
        of_project("?4")
    ))?;
    let parameters = params![destination_id, before_id.unwrap_or(i64::MAX), limit as i64, project];
    let rows = statement.query_map(parameters, |row| {
        Ok(DeadLetter {
            id: row.get(0)?,
            event_id: row.get(1)?,
            reason: row.get(2)?,
            last_response: row.get(3)?,
            attempts: row.get::<_, i64>(4)?.max(0) as u32,
            dead_at_unix_ms: row.get(5)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// Moves dead letters back to the queue (see `Store::replay_dead_letters`).
pub(super) fn replay(
    connection: &mut Connection,
    destination_id: i64,
    project: Option<i64>,
    ids: Option<&[i64]>,
) -> StoreResult<usize> {
    let now = super::now_unix_ms();
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut moved = 0;
    {
        let mut requeue = transaction.prepare_cached(&format!(
            "INSERT INTO outbox (destination_id, event_rowid, created_at_unix_ms)
             SELECT d.destination_id, d.event_rowid, ?3 FROM dead_letters d
             WHERE d.destination_id = ?1 AND d.id = ?2 AND {}",
            of_project("?4")
        ))?;
        let mut remove =
            transaction.prepare_cached("DELETE FROM dead_letters WHERE destination_id = ?1 AND id = ?2")?;
        let all: Vec<i64> = match ids {
            Some(ids) => ids.to_vec(),
            None => {
                let mut select = transaction.prepare_cached(&format!(
                    "SELECT d.id FROM dead_letters d WHERE d.destination_id = ?1 AND {} ORDER BY d.id",
                    of_project("?2")
                ))?;
                select.query_map(params![destination_id, project], |row| row.get(0))?.collect::<Result<Vec<_>, _>>()?
            }
        };
        for id in all {
            // Only a letter the requeue found (this destination's, of the project when scoped)
            // leaves the dead letters.
            if requeue.execute(params![destination_id, id, now, project])? == 1 {
                remove.execute(params![destination_id, id])?;
                moved += 1;
            }
        }
        transaction.execute(
            "UPDATE destinations SET dead_letter_count = max(dead_letter_count - ?2, 0) WHERE id = ?1",
            params![destination_id, moved as i64],
        )?;
    }
    transaction.commit()?;
    Ok(moved)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use crate::exporters::DestinationConfig;
    use crate::store::outbox::{DeliveryReport, NewDeadLetter};
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Outcomes, SignalBatch, Store, WriteBatch};

    fn events(ids: &[&str], event_type: &str) -> Vec<sightline_model::ProductEvent> {
        ids.iter()
            .map(|id| {
                sightline_model::event::parse_event(
                    &json!({"event_id": id, "product_id": "p", "session.id": "sess-1", "event.type": event_type,
                        "event.timestamp": "2026-11-24T10:00:00Z"}),
                    1,
                )
                .expect("valid")
            })
            .collect()
    }

    fn batch(project_id: i64, events: Vec<sightline_model::ProductEvent>) -> WriteBatch {
        let mut batch = WriteBatch {
            project_id,
            signal: SignalBatch::Events(events),
            trace_summaries: Vec::new(),
            endpoint_rollups: Vec::new(),
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
        };
        batch.serialize_items();
        batch
    }

    fn webhook(routing: serde_json::Value) -> DestinationConfig {
        serde_json::from_value(
            json!({"type": "webhook", "url": "http://127.0.0.1:9/", "secret": "s", "routing": routing}),
        )
        .expect("config")
    }

    #[test]
    fn outbox_rows_follow_routing_fresh_events_and_delivery_reports() {
        let directory = tempfile::tempdir().expect("directory");
        let store = SqliteStore::open(&directory.path().join("sightline.db")).expect("store");
        let shop = store.create_project("Shop").expect("project");
        let other = store.create_project("Other").expect("project");
        let pages =
            store.create_destination(shop.id, "pages", true, &webhook(json!({"events": ["page.*"]}))).expect("created");
        let everything = store.create_destination(shop.id, "all", true, &webhook(json!({}))).expect("created");
        let paused = store.create_destination(shop.id, "paused", false, &webhook(json!({}))).expect("created");
        assert!(store.create_destination(shop.id, "all", true, &webhook(json!({}))).is_err(), "names are unique");

        store
            .commit(&[batch(shop.id, events(&["a", "b"], "page.view")), batch(shop.id, events(&["c"], "ui.click"))])
            .expect("commit");
        // A client retry: the same events again queue nothing more.
        store.commit(&[batch(shop.id, events(&["a", "b"], "page.view"))]).expect("commit");
        // Another project's events are not this project's destinations' business.
        store.commit(&[batch(other.id, events(&["x"], "page.view"))]).expect("commit");

        let queued = |id: i64| store.outbox_stats(id).expect("stats").queued;
        assert_eq!((queued(pages.id), queued(everything.id), queued(paused.id)), (2, 3, 0));
        let pending = store.pending_outbox(everything.id, 10).expect("pending");
        let ids: Vec<&str> =
            pending.iter().filter_map(|item| item.event.as_ref()).map(|event| event.event_id.as_str()).collect();
        assert_eq!(ids, ["a", "b", "c"], "oldest first");

        store
            .record_delivery(&DeliveryReport {
                destination_id: everything.id,
                delivered: vec![pending[0].outbox_id, pending[1].outbox_id],
                filtered: vec![],
                dead: vec![NewDeadLetter {
                    outbox_id: pending[2].outbox_id,
                    event_rowid: pending[2].event_rowid,
                    event_id: "c".into(),
                    reason: "invalid".into(),
                    last_response: Some("{}".into()),
                    attempts: 1,
                }],
                last_error: Some("HTTP 400".into()),
            })
            .expect("recorded");
        let destination = store.get_destination(everything.id).expect("read").expect("exists");
        assert_eq!((destination.delivered_count, destination.dead_letter_count), (2, 1));
        assert_eq!(destination.last_error.as_deref(), Some("HTTP 400"));
        assert_eq!(queued(everything.id), 0);
        let letters = store.dead_letters(everything.id, None, 10, None).expect("letters");
        assert_eq!(letters.len(), 1);
        assert_eq!(store.replay_dead_letters(everything.id, None, None).expect("replay"), 1);
        assert_eq!(queued(everything.id), 1);
        assert!(store.dead_letters(everything.id, None, 10, None).expect("letters").is_empty());

        assert!(store.delete_destination(pages.id).expect("deleted"));
        store.commit(&[batch(shop.id, events(&["d"], "page.view"))]).expect("commit");
        assert_eq!(queued(pages.id), 0, "a deleted destination queues nothing");
        assert_eq!(queued(everything.id), 2);
    }

    #[test]
    fn a_server_wide_destination_shows_and_replays_each_project_only_its_own_dead_letters() {
        let directory = tempfile::tempdir().expect("directory");
        let store = SqliteStore::open(&directory.path().join("sightline.db")).expect("store");
        let shop = store.create_project("Shop").expect("project");
        let other = store.create_project("Other").expect("project");
        let shared = store
            .create_destination(crate::store::outbox::SERVER_WIDE_PROJECT, "shared", true, &webhook(json!({})))
            .expect("created");
        store.commit(&[batch(shop.id, events(&["s1", "s2"], "page.view"))]).expect("commit");
        store.commit(&[batch(other.id, events(&["o1"], "page.view"))]).expect("commit");
        let pending = store.pending_outbox(shared.id, 10).expect("pending");
        assert_eq!(pending.len(), 3, "a server-wide destination takes every project's events");
        let dead = pending
            .iter()
            .map(|item| NewDeadLetter {
                outbox_id: item.outbox_id,
                event_rowid: item.event_rowid,
                event_id: item.event.as_ref().map(|event| event.event_id.clone()).unwrap_or_default(),
                reason: "invalid".into(),
                last_response: None,
                attempts: 1,
            })
            .collect();
        store
            .record_delivery(&DeliveryReport {
                destination_id: shared.id,
                delivered: vec![],
                filtered: vec![],
                dead,
                last_error: None,
            })
            .expect("recorded");

        let names = |letters: Vec<crate::store::outbox::DeadLetter>| {
            let mut ids: Vec<String> = letters.into_iter().map(|letter| letter.event_id).collect();
            ids.sort();
            ids
        };
        assert_eq!(names(store.dead_letters(shared.id, None, 10, None).expect("all")), ["o1", "s1", "s2"]);
        assert_eq!(names(store.dead_letters(shared.id, Some(shop.id), 10, None).expect("shop")), ["s1", "s2"]);
        assert_eq!(names(store.dead_letters(shared.id, Some(other.id), 10, None).expect("other")), ["o1"]);

        // Naming another project's letter replays nothing; replaying all moves only one's own.
        let foreign = store.dead_letters(shared.id, Some(other.id), 10, None).expect("other")[0].id;
        assert_eq!(store.replay_dead_letters(shared.id, Some(shop.id), Some(&[foreign])).expect("replay"), 0);
        assert_eq!(store.replay_dead_letters(shared.id, Some(shop.id), None).expect("replay"), 2);
        assert_eq!(names(store.dead_letters(shared.id, None, 10, None).expect("left")), ["o1"]);
        assert_eq!(store.outbox_stats(shared.id).expect("stats").queued, 2);
    }
}
