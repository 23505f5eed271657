//! Per-project privacy settings, opt-outs and user erasure in SQLite (tables of migration
//! "privacy": `project_privacy`, `privacy_opt_outs`).

use std::collections::BTreeSet;

use rusqlite::types::Value;
use rusqlite::{Connection, OptionalExtension, params, params_from_iter};
use sightline_privacy::HashKey;

use super::now_unix_ms;
use crate::store::errors::ErrorEvent;
use crate::store::privacy::{Erasure, StoredPrivacy};
use crate::store::{StoreError, StoreResult};

/// Tag keys of error events that hold the user (`errors::derive` copies `user.id`).
const USER_TAG_KEYS: &[&str] = &["user", "user.id", "enduser.id"];

pub(super) fn privacy_settings(connection: &Connection, project_id: i64) -> StoreResult<StoredPrivacy> {
    let row: Option<(Option<String>, Vec<u8>)> = connection
        .prepare_cached("SELECT settings, hash_key FROM project_privacy WHERE project_id = ?1")?
        .query_row([project_id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    let (settings_json, hash_key) = row.ok_or_else(|| StoreError::NotFound(format!("project {project_id}")))?;
    let mut statement =
        connection.prepare_cached("SELECT user_id FROM privacy_opt_outs WHERE project_id = ?1 ORDER BY user_id")?;
    let opt_outs = statement.query_map([project_id], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
    Ok(StoredPrivacy { settings_json, hash_key: HashKey::new(hash_key), opt_outs })
}

pub(super) fn put_privacy_settings(connection: &Connection, project_id: i64, settings_json: &str) -> StoreResult<()> {
    let updated = connection.execute(
        "UPDATE project_privacy SET settings = ?2, updated_at_unix_ms = ?3 WHERE project_id = ?1",
        params![project_id, settings_json, now_unix_ms()],
    )?;
    if updated == 0 {
        return Err(StoreError::NotFound(format!("project {project_id}")));
    }
    Ok(())
}

pub(super) fn add_opt_out(connection: &Connection, project_id: i64, user_id: &str) -> StoreResult<bool> {
    let inserted = connection.execute(
        "INSERT OR IGNORE INTO privacy_opt_outs (project_id, user_id, created_at_unix_ms) VALUES (?1, ?2, ?3)",
        params![project_id, user_id, now_unix_ms()],
    )?;
    Ok(inserted > 0)
}

pub(super) fn remove_opt_out(connection: &Connection, project_id: i64, user_id: &str) -> StoreResult<bool> {
    let deleted = connection
        .execute("DELETE FROM privacy_opt_outs WHERE project_id = ?1 AND user_id = ?2", params![project_id, user_id])?;
    Ok(deleted > 0)
}

/// `first` then the user ids, as statement parameters.
fn id_params(first: i64, user_ids: &[String]) -> impl rusqlite::Params {
    let values = std::iter::once(Value::Integer(first)).chain(user_ids.iter().map(|id| Value::Text(id.clone())));
    params_from_iter(values.collect::<Vec<_>>())
}

/// `?2, ?3, ...` for `count` values after the project id.
fn placeholders(count: usize) -> String {
    (0..count).map(|index| format!("?{}", index + 2)).collect::<Vec<_>>().join(", ")
}

/// Removes the data of the users known by any of `user_ids` (an id and its pseudonyms) in one
/// transaction: sessions with their timeline entries, product events of those users or
/// sessions, user fields of error events and per-issue user entries.
pub(super) fn erase_user(connection: &mut Connection, project_id: i64, user_ids: &[String]) -> StoreResult<Erasure> {
    let mut erasure = Erasure::default();
    if user_ids.is_empty() {
        return Ok(erasure);
    }
    let transaction = connection.transaction()?;
    let ids = placeholders(user_ids.len());

    // Sessions of the user (through `sessions_by_user`) and their timeline entries.
    let sessions: Vec<(i64, String)> = transaction
        .prepare(&format!("SELECT id, session_id FROM sessions WHERE project_id = ?1 AND user_id IN ({ids})"))?
        .query_map(id_params(project_id, user_ids), |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    for (session_key, session_id) in &sessions {
        erasure.session_items +=
            transaction.execute("DELETE FROM session_items WHERE session_key = ?1", [session_key])? as u64;
        for table in ["outbox", "dead_letters"] {
            erasure.pending_deliveries += transaction.execute(
                &format!(
                    "DELETE FROM {table} WHERE event_rowid IN
                        (SELECT id FROM product_events WHERE project_id = ?1 AND session_id = ?2)"
                ),
                params![project_id, session_id],
            )? as u64;
        }
        erasure.events += transaction.execute(
            "DELETE FROM product_events WHERE project_id = ?1 AND session_id = ?2",
            params![project_id, session_id],
        )? as u64;
        erasure.sessions += transaction.execute("DELETE FROM sessions WHERE id = ?1", [session_key])? as u64;
    }
    // Events of the user outside those sessions (a full scan of the project's events: erasure
    // is rare, and an index on user_id would cost every insert).
    for table in ["outbox", "dead_letters"] {
        erasure.pending_deliveries += transaction.execute(
            &format!(
                "DELETE FROM {table} WHERE event_rowid IN
                    (SELECT id FROM product_events WHERE project_id = ?1 AND user_id IN ({ids}))"
            ),
            id_params(project_id, user_ids),
        )? as u64;
    }
    erasure.events += transaction.execute(
        &format!("DELETE FROM product_events WHERE project_id = ?1 AND user_id IN ({ids})"),
        id_params(project_id, user_ids),
    )? as u64;

    // Error events: the issues the user hit, then their events naming the user.
    let issues: Vec<i64> = transaction
        .prepare(&format!(
            "SELECT DISTINCT u.issue_id FROM issue_users u JOIN issues i ON i.id = u.issue_id
             WHERE i.project_id = ?1 AND u.value IN ({ids})"
        ))?
        .query_map(id_params(project_id, user_ids), |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let wanted: BTreeSet<&str> = user_ids.iter().map(String::as_str).collect();
    for issue_id in &issues {
        let rows: Vec<(i64, Vec<u8>)> = transaction
            .prepare_cached("SELECT id, body FROM error_events WHERE issue_id = ?1")?
            .query_map([issue_id], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<Result<_, _>>()?;
        for (row_id, body) in rows {
            let Some(mut event) = ErrorEvent::from_stored_body(&body) else { continue };
            let names_user = event.context.user_id.as_deref().is_some_and(|user| wanted.contains(user))
                || USER_TAG_KEYS
                    .iter()
                    .any(|key| event.tags.get(*key).is_some_and(|user| wanted.contains(user.as_str())));
            if !names_user {
                continue;
            }
            event.context.user_id = None;
            for key in USER_TAG_KEYS {
                event.tags.remove(*key);
            }
            let body = event.to_stored_body().map_err(StoreError::Database)?;
            transaction.execute("UPDATE error_events SET body = ?2 WHERE id = ?1", params![row_id, body])?;
            erasure.error_events += 1;
        }
        let removed = transaction.execute(
            &format!("DELETE FROM issue_users WHERE issue_id = ?1 AND value IN ({ids})"),
            id_params(*issue_id, user_ids),
        )?;
        erasure.issue_users += removed as u64;
        transaction.execute(
            "UPDATE issues SET user_count = (SELECT count(*) FROM issue_users WHERE issue_id = ?1) WHERE id = ?1",
            [issue_id],
        )?;
        for key in USER_TAG_KEYS {
            transaction.execute(
                &format!("DELETE FROM issue_tags WHERE issue_id = ?1 AND key = '{key}' AND value IN ({ids})"),
                id_params(*issue_id, user_ids),
            )?;
        }
    }
    transaction.commit()?;
    Ok(erasure)
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn every_project_gets_its_own_secret_key_and_settings_round_trip() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&directory.path().join("t.db")).expect("store opens");
        let first = store.create_project("Shop").expect("created");
        let second = store.create_project("Blog").expect("created");
        let first_privacy = store.privacy_settings(first.id).expect("row made by the trigger");
        let second_privacy = store.privacy_settings(second.id).expect("row made by the trigger");
        assert_eq!(first_privacy.hash_key.as_bytes().len(), 32);
        assert_ne!(first_privacy.hash_key, second_privacy.hash_key, "keys are random per project");
        assert!(first_privacy.settings_json.is_none());
        assert!(!format!("{first_privacy:?}").contains(&format!("{:?}", first_privacy.hash_key.as_bytes())));

        store.put_privacy_settings(first.id, r#"{"scrub_before_storing":true}"#).expect("saved");
        assert!(store.add_opt_out(first.id, "u-2").expect("added"));
        assert!(store.add_opt_out(first.id, "u-1").expect("added"));
        assert!(!store.add_opt_out(first.id, "u-1").expect("already there"));
        let reread = store.privacy_settings(first.id).expect("reads");
        assert_eq!(reread.settings_json.as_deref(), Some(r#"{"scrub_before_storing":true}"#));
        assert_eq!(reread.opt_outs, ["u-1", "u-2"]);
        assert_eq!(reread.hash_key, first_privacy.hash_key, "the key never changes");
        assert!(store.remove_opt_out(first.id, "u-2").expect("removed"));
        assert!(store.privacy_settings(second.id).expect("reads").opt_outs.is_empty(), "per project");
        assert!(matches!(store.privacy_settings(999), Err(crate::store::StoreError::NotFound(_))));
    }
}
