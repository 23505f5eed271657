//! Types of the dashboard's people side of the store: users, their project memberships and
//! their signed-in sessions (only a session token's SHA-256 is stored).

use serde::Serialize;

/// A dashboard user.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct User {
    /// Numeric id.
    pub id: i64,
    /// E-mail address, normalized lowercase ([`crate::users::normalize_email`]).
    pub email: String,
    /// When the user was created, ms since the epoch.
    pub created_at_unix_ms: i64,
}

/// A user with the Argon2id PHC string of their password, for sign-in only.
#[derive(Clone)]
pub struct UserCredentials {
    /// The user.
    pub user: User,
    /// `$argon2id$...` PHC string.
    pub password_hash: String,
}

impl std::fmt::Debug for UserCredentials {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("UserCredentials").field("user", &self.user).finish_non_exhaustive()
    }
}

/// A signed-in dashboard session found by its token's hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiSession {
    /// Whose session it is.
    pub user: User,
    /// When it stops being valid, ms since the epoch.
    pub expires_at_unix_ms: i64,
}
