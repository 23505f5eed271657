//! Types of the OTLP forwarding outbox (the SQL is in `sqlite/otlp_outbox.rs`): queued export
//! requests per destination, dead letters, and queue statistics.

use serde::Serialize;

use crate::exporters::otlp::{OtlpPayload, OtlpSignal};

/// A payload to queue for some destinations (see `WriteBatch::otlp_forward`).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpForward {
    /// The export request as received.
    pub payload: OtlpPayload,
    /// Names of the destinations that take it.
    pub destinations: Vec<std::sync::Arc<str>>,
}

/// One queued export request.
#[derive(Debug, Clone, PartialEq)]
pub struct QueuedPayload {
    /// Outbox row id (delivery order).
    pub id: i64,
    /// The payload as accepted.
    pub payload: OtlpPayload,
    /// When it was accepted, ms since the epoch.
    pub enqueued_unix_ms: i64,
    /// Failed attempts so far.
    pub attempts: u32,
}

/// What a destination's outbox holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct OtlpQueueStats {
    /// Export requests waiting.
    pub queued_payloads: u64,
    /// Their encoded size, bytes.
    pub queued_bytes: u64,
    /// Items (spans, data points, log records) waiting.
    pub queued_items: u64,
    /// Acceptance time of the oldest waiting request, ms since the epoch (none when empty).
    pub oldest_enqueued_unix_ms: Option<i64>,
    /// Requests parked as dead letters.
    pub dead_letters: u64,
}

/// A parked export request, as listed (without its body).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct OtlpDeadLetter {
    /// Row id.
    pub id: i64,
    /// `traces`, `metrics` or `logs`.
    pub signal: &'static str,
    /// Items inside.
    pub items: u64,
    /// Encoded size, bytes.
    pub bytes: u64,
    /// Attempts made.
    pub attempts: u32,
    /// Why it was refused (status and the destination's message).
    pub reason: String,
    /// When it was parked, ms since the epoch.
    pub dead_at_unix_ms: i64,
}

/// Parses a stored signal name; unknown names (a newer schema) read as traces are never
/// produced, so they are skipped by the caller.
pub fn stored_signal(text: &str) -> Option<OtlpSignal> {
    OtlpSignal::parse(text)
}
