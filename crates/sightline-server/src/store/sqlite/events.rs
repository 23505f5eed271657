//! Product events in SQLite: insertion once per (project, timestamp, `event_id`) and the filtered
//! list.

use std::collections::HashSet;

use rusqlite::types::Value as SqlValue;
use rusqlite::{Connection, Transaction, params, params_from_iter};
use sightline_model::{EventType, ProductEvent};

use super::filter::{Filter, nanos};
use crate::store::{EventJson, EventQuery, Page, StoreError, StoreResult};

/// Inserts events, skipping those the project already has (client retries): the same
/// (`event.timestamp`, `event_id`), or the same `event_id` for events sent without a
/// timestamp (see migration 7). `serialized` holds the events' JSON columns (made by the
/// pipeline; computed here when it is shorter). Returns the ids that were duplicates and pushes
/// (index, row id) of each fresh event to `fresh` (the outbox references the row).
pub(super) fn insert_events(
    transaction: &Transaction<'_>,
    project_id: i64,
    events: &[ProductEvent],
    serialized: &[EventJson],
    fresh: &mut Vec<(usize, i64)>,
) -> StoreResult<HashSet<String>> {
    let mut statement = transaction.prepare_cached(
        "INSERT OR IGNORE INTO product_events (project_id, event_id, product_id, session_id, user_id, org_id, event_type,
            event_name, timestamp_unix_nano, sequence, properties, metadata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    let mut duplicates = HashSet::new();
    for (index, event) in events.iter().enumerate() {
        let made_here;
        let json = match serialized.get(index) {
            Some(json) => json,
            None => {
                made_here = EventJson::of(event);
                &made_here
            }
        };
        if event.timestamp_defaulted {
            let first_time = transaction
                .prepare_cached(
                    "INSERT OR IGNORE INTO product_event_ids_untimed (project_id, event_id, timestamp_unix_nano)
                     VALUES (?1, ?2, ?3)",
                )?
                .execute(params![project_id, event.event_id, event.timestamp_unix_nano.min(i64::MAX as u64) as i64])?;
            if first_time == 0 {
                duplicates.insert(event.event_id.clone());
                continue;
            }
        }
        let inserted = statement.execute(params![
            project_id,
            event.event_id,
            event.product_id,
            event.session_id,
            event.user_id,
            event.org_id,
            event.event_type.as_str(),
            event.event_name,
            event.timestamp_unix_nano.min(i64::MAX as u64) as i64,
            event.sequence,
            json.properties,
            json.metadata,
        ])?;
        if inserted == 0 {
            duplicates.insert(event.event_id.clone());
        } else {
            fresh.push((index, transaction.last_insert_rowid()));
        }
    }
    Ok(duplicates)
}

fn invalid_cursor() -> StoreError {
    StoreError::Conflict("invalid cursor".into())
}

pub(super) fn search_events(
    connection: &Connection,
    project_id: i64,
    query: &EventQuery,
) -> StoreResult<Page<ProductEvent>> {
    let mut filter = Filter::default();
    filter.push("project_id = {}", [SqlValue::Integer(project_id)]);
    let mut push = |clause: &str, values: Vec<SqlValue>| filter.push(clause, values);
    if let Some(name) = &query.name {
        push("event_name = {}", vec![SqlValue::Text(name.clone())]);
    }
    if let Some(event_type) = query.event_type {
        push("event_type = {}", vec![SqlValue::Text(event_type.as_str().to_owned())]);
    }
    if let Some(user) = &query.user {
        push("user_id = {}", vec![SqlValue::Text(user.clone())]);
    }
    if let Some(session) = &query.session {
        push("session_id = {}", vec![SqlValue::Text(session.clone())]);
    }
    if let Some(from) = query.from_unix_nano {
        push("timestamp_unix_nano >= {}", vec![nanos(from)]);
    }
    if let Some(to) = query.to_unix_nano {
        push("timestamp_unix_nano <= {}", vec![nanos(to)]);
    }
    if let Some(text) = &query.text {
        push(
            "(instr(lower(event_name), lower({})) > 0 OR instr(lower(properties), lower({})) > 0)",
            vec![SqlValue::Text(text.clone()), SqlValue::Text(text.clone())],
        );
    }
    if let Some(cursor) = &query.cursor {
        let (time, id) = cursor.split_once(':').ok_or_else(invalid_cursor)?;
        let time: i64 = time.parse().map_err(|_| invalid_cursor())?;
        let id: i64 = id.parse().map_err(|_| invalid_cursor())?;
        push(
            "(timestamp_unix_nano < {} OR (timestamp_unix_nano = {} AND id < {}))",
            vec![SqlValue::Integer(time), SqlValue::Integer(time), SqlValue::Integer(id)],
        );
    }
    let limit = query.limit.clamp(1, 1000);
    let sql = format!(
        "SELECT id, event_id, product_id, session_id, user_id, org_id, event_type, event_name, timestamp_unix_nano,
                sequence, properties, metadata
         FROM product_events {} ORDER BY timestamp_unix_nano DESC, id DESC LIMIT {}",
        filter.where_sql(),
        limit + 1
    );
    let mut statement = connection.prepare(&sql)?;
    let mut rows = statement.query(params_from_iter(filter.values.iter()))?;
    let mut items = Vec::new();
    let mut positions = Vec::new();
    while let Some(row) = rows.next()? {
        let properties: String = row.get(10)?;
        let metadata: String = row.get(11)?;
        let object = |text: &str| match serde_json::from_str(text) {
            Ok(serde_json::Value::Object(map)) => map,
            _ => serde_json::Map::new(),
        };
        positions.push((row.get::<_, i64>(8)?, row.get::<_, i64>(0)?));
        items.push(ProductEvent {
            event_id: row.get(1)?,
            product_id: row.get(2)?,
            session_id: row.get(3)?,
            user_id: row.get(4)?,
            org_id: row.get(5)?,
            event_type: EventType::parse(&row.get::<_, String>(6)?).unwrap_or(EventType::Custom),
            event_name: row.get(7)?,
            timestamp_unix_nano: row.get::<_, i64>(8)? as u64,
            timestamp_defaulted: false,
            sequence: row.get(9)?,
            properties: object(&properties),
            metadata: object(&metadata),
        });
    }
    let next_cursor = if items.len() > limit {
        items.truncate(limit);
        positions.get(limit - 1).map(|(time, id)| format!("{time}:{id}"))
    } else {
        None
    };
    Ok(Page { items, next_cursor })
}
