//! Types of forwarding's storage: destinations, the outbox's delivery reports, dead letters
//! and queue statistics (the SQL is in `sqlite/outbox.rs`).

use serde::Serialize;

use crate::exporters::DestinationConfig;

/// Project id of server-wide destinations (the ProductGraph environment variables): they take
/// the events of every project.
pub const SERVER_WIDE_PROJECT: i64 = 0;

/// A stored destination with its durable counters.
#[derive(Debug, Clone)]
pub struct Destination {
    /// Row id.
    pub id: i64,
    /// Owning project, or [`SERVER_WIDE_PROJECT`].
    pub project_id: i64,
    /// Unique name within the project.
    pub name: String,
    /// False pauses delivery (events are still queued).
    pub enabled: bool,
    /// Settings, secrets included (never serialise this to clients; use `redacted_json`).
    pub config: DestinationConfig,
    /// Creation time, ms since the epoch.
    pub created_at_unix_ms: i64,
    /// Events delivered so far.
    pub delivered_count: u64,
    /// Events parked as dead letters so far.
    pub dead_letter_count: u64,
    /// Events routing dropped at delivery time.
    pub filtered_count: u64,
    /// Last failure (retryable or not).
    pub last_error: Option<String>,
    /// When it happened, ms since the epoch.
    pub last_error_at_unix_ms: Option<i64>,
    /// Last successful delivery, ms since the epoch.
    pub last_delivered_at_unix_ms: Option<i64>,
}

/// An event refused for good, to park in the dead-letter list.
#[derive(Debug, Clone)]
pub struct NewDeadLetter {
    /// The outbox row it leaves.
    pub outbox_id: i64,
    /// The stored event's row id.
    pub event_rowid: i64,
    /// The event's `event_id` (empty when the event no longer exists).
    pub event_id: String,
    /// Why (the vendor's reason, or ours).
    pub reason: String,
    /// The last response body (at most 512 bytes), when there was one.
    pub last_response: Option<String>,
    /// Attempts made.
    pub attempts: u32,
}

/// The outcome of one delivery round, recorded in one transaction.
#[derive(Debug, Clone, Default)]
pub struct DeliveryReport {
    /// The destination.
    pub destination_id: i64,
    /// Outbox rows delivered (deleted).
    pub delivered: Vec<i64>,
    /// Outbox rows routing dropped (deleted, counted).
    pub filtered: Vec<i64>,
    /// Rows moved to the dead letters.
    pub dead: Vec<NewDeadLetter>,
    /// The last failure of the round, if any.
    pub last_error: Option<String>,
}

/// A parked event.
#[derive(Debug, Clone, Serialize)]
pub struct DeadLetter {
    /// Row id (for replay).
    pub id: i64,
    /// The event's `event_id`.
    pub event_id: String,
    /// Why it was refused.
    pub reason: String,
    /// The last response body.
    pub last_response: Option<String>,
    /// Attempts made.
    pub attempts: u32,
    /// When it was parked, ms since the epoch.
    pub dead_at_unix_ms: i64,
}

/// The outbox of one destination.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct QueueStats {
    /// Events waiting.
    pub queued: u64,
    /// Age of the oldest waiting event, ms (0 when none).
    pub lag_ms: i64,
}
