//! Source maps in SQLite: the `sourcemaps` table (migration 3), one row per (project, release,
//! uploaded name) with the map as a BLOB and the minified file's key frames are matched by.

use rusqlite::{Connection, OptionalExtension, params};

use super::now_unix_ms;
use crate::store::StoreResult;
use crate::store::sourcemaps::{SourceMapInfo, SourceMapUpload, StoredSourceMap, minified_file_key};

/// Inserts or replaces every upload in one transaction; returns what was stored.
pub(super) fn put(
    connection: &mut Connection,
    project_id: i64,
    release: &str,
    uploads: &[SourceMapUpload],
) -> StoreResult<Vec<SourceMapInfo>> {
    let uploaded_at_unix_ms = now_unix_ms();
    let transaction = connection.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut stored = Vec::with_capacity(uploads.len());
    {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO sourcemaps (project_id, release, name, file_key, content, uploaded_at_unix_ms)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT (project_id, release, name) DO UPDATE SET
                 file_key = excluded.file_key, content = excluded.content, uploaded_at_unix_ms = excluded.uploaded_at_unix_ms",
        )?;
        for upload in uploads {
            let file_key = minified_file_key(&upload.name);
            insert.execute(params![project_id, release, upload.name, file_key, upload.content, uploaded_at_unix_ms])?;
            stored.push(SourceMapInfo {
                name: upload.name.clone(),
                file: file_key.to_owned(),
                size_bytes: upload.content.len() as u64,
                uploaded_at_unix_ms,
            });
        }
    }
    transaction.commit()?;
    Ok(stored)
}

/// A release's maps by name; `length()` of a BLOB reads only the record header, not the content.
pub(super) fn list(connection: &Connection, project_id: i64, release: &str) -> StoreResult<Vec<SourceMapInfo>> {
    let mut statement = connection.prepare_cached(
        "SELECT name, file_key, length(content), uploaded_at_unix_ms FROM sourcemaps
         WHERE project_id = ?1 AND release = ?2 ORDER BY name",
    )?;
    let rows = statement.query_map(params![project_id, release], |row| {
        Ok(SourceMapInfo {
            name: row.get(0)?,
            file: row.get(1)?,
            size_bytes: row.get::<_, i64>(2)?.max(0) as u64,
            uploaded_at_unix_ms: row.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<Vec<_>, _>>()?)
}

/// The latest upload for a minified file key.
pub(super) fn find(
    connection: &Connection,
    project_id: i64,
    release: &str,
    file_key: &str,
) -> StoreResult<Option<StoredSourceMap>> {
    let found = connection
        .prepare_cached(
            "SELECT name, content FROM sourcemaps WHERE project_id = ?1 AND release = ?2 AND file_key = ?3
             ORDER BY uploaded_at_unix_ms DESC, rowid DESC LIMIT 1",
        )?
        .query_row(params![project_id, release, file_key], |row| {
            Ok(StoredSourceMap { name: row.get(0)?, content: row.get(1)? })
        })
        .optional()?;
    Ok(found)
}

/// Deletes one map by name; true when a row went.
pub(super) fn delete(connection: &Connection, project_id: i64, release: &str, name: &str) -> StoreResult<bool> {
    let deleted = connection.execute(
        "DELETE FROM sourcemaps WHERE project_id = ?1 AND release = ?2 AND name = ?3",
        params![project_id, release, name],
    )?;
    Ok(deleted > 0)
}

#[cfg(test)]
mod tests {
    use crate::store::Store;
    use crate::store::sourcemaps::SourceMapUpload;
    use crate::store::sqlite::SqliteStore;

    fn upload(name: &str, content: &str) -> SourceMapUpload {
        SourceMapUpload { name: name.to_owned(), content: content.as_bytes().to_vec() }
    }

    #[test]
    fn maps_are_found_by_file_key_per_project_and_release() {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&directory.path().join("sightline.db")).expect("store opens");
        let project = store.create_project("web").expect("project");
        let stored = store
            .put_sourcemaps(
                project.id,
                "1.0.0",
                &[upload("https://cdn.example.com/js/main.3f2a1b.js.map", "{1}"), upload("vendor.js", "{22}")],
            )
            .expect("stored");
        assert_eq!(
            stored.iter().map(|info| (info.file.as_str(), info.size_bytes)).collect::<Vec<_>>(),
            [("main.3f2a1b.js", 3), ("vendor.js", 4)]
        );

        let found = store.find_sourcemap(project.id, "1.0.0", "main.3f2a1b.js").expect("query").expect("found");
        assert_eq!(
            (found.name.as_str(), found.content.as_slice()),
            ("https://cdn.example.com/js/main.3f2a1b.js.map", b"{1}".as_slice())
        );
        assert!(store.find_sourcemap(project.id, "1.0.1", "main.3f2a1b.js").expect("query").is_none());
        assert!(store.find_sourcemap(project.id + 1, "1.0.0", "main.3f2a1b.js").expect("query").is_none());

        // Another name for the same file: the latest upload wins; the same name replaces.
        store.put_sourcemaps(project.id, "1.0.0", &[upload("main.3f2a1b.js.map", "{333}")]).expect("stored");
        let found = store.find_sourcemap(project.id, "1.0.0", "main.3f2a1b.js").expect("query").expect("found");
        assert_eq!(found.content, b"{333}");
        store.put_sourcemaps(project.id, "1.0.0", &[upload("vendor.js", "{4444}")]).expect("replaced");
        let listed = store.list_sourcemaps(project.id, "1.0.0").expect("listed");
        let names: Vec<(&str, u64)> = listed.iter().map(|info| (info.name.as_str(), info.size_bytes)).collect();
        assert_eq!(
            names,
            [("https://cdn.example.com/js/main.3f2a1b.js.map", 3), ("main.3f2a1b.js.map", 5), ("vendor.js", 6)]
        );

        assert!(store.delete_sourcemap(project.id, "1.0.0", "main.3f2a1b.js.map").expect("deleted"));
        assert!(!store.delete_sourcemap(project.id, "1.0.0", "main.3f2a1b.js.map").expect("nothing to delete"));
        let found =
            store.find_sourcemap(project.id, "1.0.0", "main.3f2a1b.js").expect("query").expect("the other name");
        assert_eq!(found.content, b"{1}");
    }
}
