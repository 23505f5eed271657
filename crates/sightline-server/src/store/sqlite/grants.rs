//! Read grants of API keys on other projects (`api_key_grants`, migration 14): what lets one
//! read key answer the cross-project analytics (`GET /api/v1/analytics/cross-project`) and the
//! project routes of the granted projects. Granted with `sightline project grant`.

use rusqlite::{Connection, OptionalExtension, params};

use crate::auth::KeyScope;
use crate::store::{ApiKeyRecord, StoreError, StoreResult};

/// A key by id; revoked keys are not found.
pub(super) fn find_key_by_id(connection: &Connection, key_id: i64) -> StoreResult<Option<ApiKeyRecord>> {
    let record = connection
        .query_row(
            "SELECT id, project_id, scope, prefix, name FROM api_keys WHERE id = ?1 AND revoked_at_unix_ms IS NULL",
            [key_id],
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

/// Grants `key_id` read access to `project_id`; false when the key already had it (its own
/// project or an earlier grant). `NotFound` for an unknown or revoked key or project;
/// `Conflict` for an ingest-only key, which cannot read anything.
pub(super) fn grant(connection: &Connection, key_id: i64, project_id: i64, now_unix_ms: i64) -> StoreResult<bool> {
    let key = find_key_by_id(connection, key_id)?.ok_or_else(|| StoreError::NotFound(format!("API key {key_id}")))?;
    if !key.scope.can_read() {
        return Err(StoreError::Conflict(format!(
            "API key {key_id} is an ingest key and cannot read; grant a key with scope read or all"
        )));
    }
    let project_exists: bool =
        connection.query_row("SELECT EXISTS (SELECT 1 FROM projects WHERE id = ?1)", [project_id], |row| row.get(0))?;
    if !project_exists {
        return Err(StoreError::NotFound(format!("project {project_id}")));
    }
    if key.project_id == project_id {
        return Ok(false);
    }
    let inserted = connection.execute(
        "INSERT OR IGNORE INTO api_key_grants (key_id, project_id, granted_at_unix_ms) VALUES (?1, ?2, ?3)",
        params![key_id, project_id, now_unix_ms],
    )?;
    Ok(inserted == 1)
}

/// Withdraws a grant; false when there was none.
pub(super) fn revoke(connection: &Connection, key_id: i64, project_id: i64) -> StoreResult<bool> {
    let deleted = connection
        .execute("DELETE FROM api_key_grants WHERE key_id = ?1 AND project_id = ?2", params![key_id, project_id])?;
    Ok(deleted == 1)
}

/// True when `key` may read `project_id`: it has a read scope and the project is its own or
/// granted to it.
pub(super) fn may_read(connection: &Connection, key: &ApiKeyRecord, project_id: i64) -> StoreResult<bool> {
    if !key.scope.can_read() {
        return Ok(false);
    }
    if key.project_id == project_id {
        return Ok(true);
    }
    let granted: bool = connection
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM api_key_grants WHERE key_id = ?1 AND project_id = ?2)")?
        .query_row(params![key.id, project_id], |row| row.get(0))?;
    Ok(granted)
}

#[cfg(test)]
mod tests {
    use crate::auth::KeyScope;
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Store, StoreError};

    #[test]
    fn grants_add_read_access_to_read_keys_only_and_can_be_revoked() {
        let directory = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&directory.path().join("db.sqlite")).expect("store");
        let shop = store.create_project("shop").expect("project");
        let billing = store.create_project("billing").expect("project");
        let (_, reader) = store.create_api_key(shop.id, KeyScope::Read, "reader").expect("key");
        let (_, ingest) = store.create_api_key(shop.id, KeyScope::Ingest, "ingest").expect("key");

        assert!(store.key_may_read(&reader, shop.id).expect("check"), "own project");
        assert!(!store.key_may_read(&reader, billing.id).expect("check"), "not granted yet");
        assert!(store.grant_project_read(reader.id, billing.id).expect("grant"));
        assert!(!store.grant_project_read(reader.id, billing.id).expect("grant"), "already granted");
        assert!(!store.grant_project_read(reader.id, shop.id).expect("grant"), "its own project");
        assert!(store.key_may_read(&reader, billing.id).expect("check"));

        assert!(matches!(store.grant_project_read(ingest.id, billing.id), Err(StoreError::Conflict(_))));
        assert!(!store.key_may_read(&ingest, shop.id).expect("check"), "ingest keys read nothing");
        assert!(matches!(store.grant_project_read(9_999, billing.id), Err(StoreError::NotFound(_))));
        assert!(matches!(store.grant_project_read(reader.id, 9_999), Err(StoreError::NotFound(_))));
        assert_eq!(store.find_api_key_by_id(reader.id).expect("find").map(|key| key.name), Some("reader".into()));

        assert!(store.revoke_project_read(reader.id, billing.id).expect("revoke"));
        assert!(!store.revoke_project_read(reader.id, billing.id).expect("revoke"), "nothing left");
        assert!(!store.key_may_read(&reader, billing.id).expect("check"));
    }
}
