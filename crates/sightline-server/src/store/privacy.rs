//! Types of the per-project privacy settings and of user erasure crossing the
//! [`super::Store`] boundary.

use serde::Serialize;
use sightline_privacy::HashKey;

/// A project's privacy row as stored.
#[derive(Debug, Clone)]
pub struct StoredPrivacy {
    /// The settings JSON written by `PUT .../privacy` (`crate::privacy::PrivacySettings`);
    /// `None` until first set (defaults apply).
    pub settings_json: Option<String>,
    /// The project's secret key for HMAC-SHA256 pseudonyms: 32 random bytes made when the
    /// project (or the migration) created the row. Never returned by the API nor logged
    /// (`Debug` prints nothing of it).
    pub hash_key: HashKey,
    /// Users (`user.id`) who opted out of forwarding, sorted.
    pub opt_outs: Vec<String>,
}

/// What `DELETE /api/v1/projects/{project}/users/{user_id}` removed, per kind of row.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Erasure {
    /// Product events of the user, or of the user's sessions.
    pub events: u64,
    /// Session summaries of the user.
    pub sessions: u64,
    /// Timeline index entries of those sessions (the spans, logs and errors themselves stay,
    /// without their link to the session).
    pub session_items: u64,
    /// Error events whose user fields (`user_id`, user tags) were cleared.
    pub error_events: u64,
    /// Per-issue user entries removed (the issues' `user_count` is recounted).
    pub issue_users: u64,
    /// Deliveries of the user's events that had not happened yet: outbox rows and dead
    /// letters of every destination (they are never sent now).
    pub pending_deliveries: u64,
}
