//! Forwarding of product events to analytics vendors and webhooks (issue 6), in Vector's sink
//! layout: one folder per destination with its request builder and response classification
//! (`amplitude/`, `mixpanel/`, `webhook/`), and a shared driver that batches, retries and
//! dead-letters (`delivery`).
//!
//! Data flow: the SQLite writer adds one `outbox` row per (destination, fresh event) in the
//! same transaction as the event ([`routing::Routing::accepts`] decides), so an acknowledged
//! event is always delivered and a retried one never gets a second row. A tokio task per
//! destination ([`delivery::DeliveryManager`]) reads batches from the outbox, prepares each
//! event ([`routing::prepare_for_forwarding`]), encodes it for the vendor, sends, classifies
//! the response ([`classify::Classification`]) and deletes delivered rows (or parks them as
//! dead letters). Delivery is at least once; the vendors' insert-id dedup (Amplitude
//! `insert_id`, Mixpanel `$insert_id`, the webhook's `event_id`) makes it effectively once.
//!
//! `otlp/` forwards traces, metrics and logs as received to another OTLP endpoint, with its own
//! outbox of encoded export requests (`store::otlp_outbox`) and delivery task.

pub mod amplitude;
pub mod classify;
pub mod config;
pub mod delivery;
pub mod mixpanel;
pub mod otlp;
pub mod routing;
pub mod secret;
pub mod webhook;

pub use classify::Classification;
pub use config::{DestinationConfig, DestinationSettings};
pub use secret::Secret;

/// Flattens a dotted property name into the underscore form Amplitude and Mixpanel show
/// (`page.path` → `page_path`).
pub fn flat_name(name: &str) -> String {
    name.replace('.', "_")
}

/// The display name of an event: its `event.name`, else the name of its type as ProductGraph's
/// analytics adapters send it (`page.view` → "Page View", `ui.*` → "User Action",
/// `state.change` → "State Change", `journey.step` → "Journey Event", `error` → "Error Event",
/// `performance` → "Performance"); other types keep their wire name (`api.request`, `custom`).
pub fn event_display_name(event: &sightline_model::ProductEvent) -> String {
    use sightline_model::EventType;
    if !event.event_name.is_empty() {
        return event.event_name.clone();
    }
    match event.event_type {
        EventType::PageView => "Page View",
        EventType::UiClick
        | EventType::UiInput
        | EventType::UiScroll
        | EventType::UiFocus
        | EventType::UiBlur
        | EventType::UiSubmit => "User Action",
        EventType::StateChange => "State Change",
        EventType::JourneyStep => "Journey Event",
        EventType::Error => "Error Event",
        EventType::Performance => "Performance",
        other => other.as_str(),
    }
    .to_owned()
}

/// An event read back from the outbox, with what the vendors need beside it.
#[derive(Debug, Clone)]
pub struct OutboxEvent {
    /// Row id of the outbox entry (deleted once delivered).
    pub outbox_id: i64,
    /// Row id of the stored event.
    pub event_rowid: i64,
    /// The stored event's project (its privacy rules apply); `None` when the event is gone.
    pub project_id: Option<i64>,
    /// When the outbox row was written, ms since the epoch (lag).
    pub created_at_unix_ms: i64,
    /// The event; `None` when retention deleted it before delivery.
    pub event: Option<sightline_model::ProductEvent>,
    /// Start of the event's session (its first-seen time), ms since the epoch; `None` unknown.
    pub session_start_unix_ms: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_productgraph_table() {
        let mut event = sightline_model::event::parse_event(
            &serde_json::json!({"event_id": "e", "product_id": "p", "session.id": "s", "event.type": "ui.click"}),
            1,
        )
        .expect("valid");
        assert_eq!(event_display_name(&event), "User Action");
        event.event_type = sightline_model::EventType::PageView;
        assert_eq!(event_display_name(&event), "Page View");
        event.event_type = sightline_model::EventType::ApiRequest;
        assert_eq!(event_display_name(&event), "api.request");
        event.event_name = "Checkout Started".into();
        assert_eq!(event_display_name(&event), "Checkout Started");
        assert_eq!(flat_name("page.path"), "page_path");
    }
}
