//! SQLite queries for dashboard users, memberships and sessions (migration 13).

use rusqlite::{Connection, OptionalExtension, params};

use super::{now_unix_ms, project_from_row};
use crate::store::users::{UiSession, User, UserCredentials};
use crate::store::{Project, StoreError, StoreResult};

fn user_from_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<User> {
    Ok(User { id: row.get(0)?, email: row.get(1)?, created_at_unix_ms: row.get(2)? })
}

/// Inserts a user; `Conflict` when the e-mail is taken.
pub(super) fn create_user(connection: &Connection, email: &str, password_hash: &str) -> StoreResult<User> {
    let created_at_unix_ms = now_unix_ms();
    let inserted = connection.execute(
        "INSERT INTO users (email, password_hash, created_at_unix_ms) VALUES (?1, ?2, ?3) ON CONFLICT (email) DO NOTHING",
        params![email, password_hash, created_at_unix_ms],
    )?;
    if inserted == 0 {
        return Err(StoreError::Conflict(format!("a user with e-mail {email:?} exists")));
    }
    Ok(User { id: connection.last_insert_rowid(), email: email.to_owned(), created_at_unix_ms })
}

/// Replaces a user's password hash; `NotFound` for an unknown e-mail.
pub(super) fn set_password(connection: &Connection, email: &str, password_hash: &str) -> StoreResult<()> {
    let changed =
        connection.execute("UPDATE users SET password_hash = ?2 WHERE email = ?1", params![email, password_hash])?;
    if changed == 0 {
        return Err(StoreError::NotFound(format!("user {email:?}")));
    }
    // A new password ends every session of the user.
    connection
        .execute("DELETE FROM ui_sessions WHERE user_id = (SELECT id FROM users WHERE email = ?1)", params![email])?;
    Ok(())
}

/// The user with `email` and their hash.
pub(super) fn find_credentials(connection: &Connection, email: &str) -> StoreResult<Option<UserCredentials>> {
    let found = connection
        .query_row("SELECT id, email, created_at_unix_ms, password_hash FROM users WHERE email = ?1", [email], |row| {
            Ok(UserCredentials { user: user_from_row(row)?, password_hash: row.get(3)? })
        })
        .optional()?;
    Ok(found)
}

/// How many users exist.
pub(super) fn count_users(connection: &Connection) -> StoreResult<u64> {
    let count: i64 = connection.query_row("SELECT count(*) FROM users", [], |row| row.get(0))?;
    Ok(count as u64)
}

/// Makes the user a member of the project (idempotent); `NotFound` for an unknown user or project.
pub(super) fn add_membership(connection: &Connection, user_id: i64, project_id: i64) -> StoreResult<()> {
    let known: i64 = connection.query_row(
        "SELECT (SELECT count(*) FROM users WHERE id = ?1) + 2 * (SELECT count(*) FROM projects WHERE id = ?2)",
        params![user_id, project_id],
        |row| row.get(0),
    )?;
    if known & 1 == 0 {
        return Err(StoreError::NotFound(format!("user {user_id}")));
    }
    if known & 2 == 0 {
        return Err(StoreError::NotFound(format!("project {project_id}")));
    }
    connection.execute(
        "INSERT INTO memberships (user_id, project_id, created_at_unix_ms) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id, project_id) DO NOTHING",
        params![user_id, project_id, now_unix_ms()],
    )?;
    Ok(())
}

/// Projects the user is a member of, oldest first.
pub(super) fn user_projects(connection: &Connection, user_id: i64) -> StoreResult<Vec<Project>> {
    let mut statement = connection.prepare_cached(
        "SELECT p.id, p.slug, p.name, p.retention_days, p.trace_sample_rate, p.created_at_unix_ms,
                p.in_app_include, p.in_app_exclude, p.allowed_origins, p.health_thresholds
         FROM memberships m JOIN projects p ON p.id = m.project_id WHERE m.user_id = ?1 ORDER BY p.id",
    )?;
    let projects = statement.query_map([user_id], project_from_row)?.collect::<rusqlite::Result<Vec<_>>>()?;
    Ok(projects)
}

/// Stores a new session (and drops expired ones).
pub(super) fn create_session(
    connection: &Connection,
    user_id: i64,
    token_hash: &[u8; 32],
    expires_at_unix_ms: i64,
) -> StoreResult<()> {
    let now = now_unix_ms();
    connection.execute("DELETE FROM ui_sessions WHERE expires_at_unix_ms <= ?1", [now])?;
    connection.execute(
        "INSERT INTO ui_sessions (token_hash, user_id, created_at_unix_ms, expires_at_unix_ms) VALUES (?1, ?2, ?3, ?4)",
        params![&token_hash[..], user_id, now, expires_at_unix_ms],
    )?;
    Ok(())
}

/// The unexpired session with this token hash.
pub(super) fn find_session(connection: &Connection, token_hash: &[u8; 32]) -> StoreResult<Option<UiSession>> {
    let found = connection
        .query_row(
            "SELECT u.id, u.email, u.created_at_unix_ms, s.expires_at_unix_ms
             FROM ui_sessions s JOIN users u ON u.id = s.user_id
             WHERE s.token_hash = ?1 AND s.expires_at_unix_ms > ?2",
            params![&token_hash[..], now_unix_ms()],
            |row| Ok(UiSession { user: user_from_row(row)?, expires_at_unix_ms: row.get(3)? }),
        )
        .optional()?;
    Ok(found)
}

/// Deletes the session (sign-out); a missing one is fine.
pub(super) fn delete_session(connection: &Connection, token_hash: &[u8; 32]) -> StoreResult<()> {
    connection.execute("DELETE FROM ui_sessions WHERE token_hash = ?1", [&token_hash[..]])?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::store::sqlite::SqliteStore;
    use crate::store::{Store, StoreError};

    fn store() -> (tempfile::TempDir, SqliteStore) {
        let directory = tempfile::tempdir().expect("temporary directory");
        let store = SqliteStore::open(&directory.path().join("sightline.db")).expect("open");
        (directory, store)
    }

    #[test]
    fn users_are_unique_by_email_and_see_only_member_projects() {
        let (_directory, store) = store();
        let first = store.create_project("Shop").expect("project");
        let second = store.create_project("Billing").expect("project");
        let user = store.create_user("ada@example.com", "$argon2id$fake").expect("user");
        assert!(matches!(store.create_user("ada@example.com", "x"), Err(StoreError::Conflict(_))));
        assert_eq!(store.count_users().expect("count"), 1);
        assert!(store.user_projects(user.id).expect("projects").is_empty());
        store.add_membership(user.id, second.id).expect("member");
        store.add_membership(user.id, second.id).expect("idempotent");
        let slugs: Vec<String> = store.user_projects(user.id).expect("projects").into_iter().map(|p| p.slug).collect();
        assert_eq!(slugs, ["billing"]);
        assert!(matches!(store.add_membership(user.id + 10, first.id), Err(StoreError::NotFound(_))));
        assert!(matches!(store.add_membership(user.id, first.id + 10), Err(StoreError::NotFound(_))));
        let found = store.find_user_credentials("ada@example.com").expect("find").expect("found");
        assert_eq!((found.user.id, found.password_hash.as_str()), (user.id, "$argon2id$fake"));
        assert!(!format!("{found:?}").contains("argon2id"), "Debug leaves the hash out");
        assert!(store.find_user_credentials("bob@example.com").expect("find").is_none());
    }

    #[test]
    fn sessions_expire_end_on_sign_out_and_on_a_new_password() {
        let (_directory, store) = store();
        let user = store.create_user("ada@example.com", "old").expect("user");
        let now = super::now_unix_ms();
        store.create_ui_session(user.id, &[1; 32], now + 60_000).expect("session");
        store.create_ui_session(user.id, &[2; 32], now - 1).expect("expired session");
        store.create_ui_session(user.id, &[3; 32], now + 60_000).expect("session");
        assert_eq!(store.find_ui_session(&[1; 32]).expect("find").map(|session| session.user.id), Some(user.id));
        assert!(store.find_ui_session(&[2; 32]).expect("find").is_none(), "expired");
        assert!(store.find_ui_session(&[9; 32]).expect("find").is_none(), "unknown");
        store.delete_ui_session(&[1; 32]).expect("sign out");
        assert!(store.find_ui_session(&[1; 32]).expect("find").is_none());
        store.set_user_password("ada@example.com", "new").expect("new password");
        assert!(store.find_ui_session(&[3; 32]).expect("find").is_none(), "a new password ends sessions");
        assert!(matches!(store.set_user_password("bob@example.com", "x"), Err(StoreError::NotFound(_))));
    }
}
