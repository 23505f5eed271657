//! API key administration: listing a project's live keys with their read grants, and revoking
//! one (`revoked_at_unix_ms` is set; lookups ignore revoked keys from then on).

use rusqlite::{Connection, params};

use crate::auth::KeyScope;
use crate::store::StoreResult;
use crate::store::api_keys::ApiKeyListing;

/// The project's unrevoked keys, oldest first, each with the slugs it has read grants on.
pub(super) fn list(connection: &Connection, project_id: i64) -> StoreResult<Vec<ApiKeyListing>> {
    let mut statement = connection.prepare_cached(
        "SELECT id, name, scope, prefix, created_at_unix_ms FROM api_keys
         WHERE project_id = ?1 AND revoked_at_unix_ms IS NULL ORDER BY id",
    )?;
    let rows = statement.query_map([project_id], |row| {
        let scope: String = row.get(2)?;
        Ok(ApiKeyListing {
            id: row.get(0)?,
            name: row.get(1)?,
            scope: KeyScope::parse(&scope).unwrap_or(KeyScope::Ingest),
            prefix: row.get(3)?,
            created_at_unix_ms: row.get(4)?,
            read_grants: Vec::new(),
        })
    })?;
    let mut keys = rows.collect::<Result<Vec<_>, _>>()?;
    let mut grants = connection.prepare_cached(
        "SELECT projects.slug FROM api_key_grants JOIN projects ON projects.id = api_key_grants.project_id
         WHERE api_key_grants.key_id = ?1 ORDER BY projects.slug",
    )?;
    for key in &mut keys {
        key.read_grants = grants.query_map([key.id], |row| row.get(0))?.collect::<Result<Vec<String>, _>>()?;
    }
    Ok(keys)
}

/// Revokes a live key of the project; false when it has no such live key (unknown, another
/// project's, or already revoked).
pub(super) fn revoke(connection: &Connection, project_id: i64, key_id: i64, now_unix_ms: i64) -> StoreResult<bool> {
    let changed = connection.execute(
        "UPDATE api_keys SET revoked_at_unix_ms = ?3 WHERE id = ?1 AND project_id = ?2 AND revoked_at_unix_ms IS NULL",
        params![key_id, project_id, now_unix_ms],
    )?;
    Ok(changed == 1)
}

#[cfg(test)]
mod tests {
    use crate::auth::KeyScope;
    use crate::store::Store;
    use crate::store::sqlite::SqliteStore;

    #[test]
    fn keys_are_listed_with_grants_and_revoked_once() {
        let dir = tempfile::tempdir().expect("temp dir");
        let store = SqliteStore::open(&dir.path().join("db.sqlite")).expect("open");
        let shop = store.create_project("shop").expect("project");
        let billing = store.create_project("billing").expect("project");
        let (ingest, ingest_record) = store.create_api_key(shop.id, KeyScope::Ingest, "browser").expect("key");
        let (_, reader) = store.create_api_key(shop.id, KeyScope::Read, "grafana").expect("key");
        store.create_api_key(billing.id, KeyScope::All, "other").expect("key");
        store.grant_project_read(reader.id, billing.id).expect("grant");

        let keys = store.list_api_keys(shop.id).expect("list");
        let names: Vec<&str> = keys.iter().map(|key| key.name.as_str()).collect();
        assert_eq!(names, ["browser", "grafana"], "only this project's keys");
        assert_eq!(keys[1].read_grants, ["billing"]);
        assert_eq!(keys[0].prefix, ingest.prefix());
        assert!(keys[0].created_at_unix_ms > 0);

        assert!(!store.revoke_api_key(billing.id, ingest_record.id).expect("revoke"), "another project's key");
        assert!(store.revoke_api_key(shop.id, ingest_record.id).expect("revoke"));
        assert!(!store.revoke_api_key(shop.id, ingest_record.id).expect("revoke"), "already revoked");
        assert_eq!(store.find_api_key(&ingest).expect("find"), None, "a revoked key no longer authenticates");
        assert_eq!(store.list_api_keys(shop.id).expect("list").len(), 1);
    }
}
