//! Scrub (privacy): when a project sets `scrub_before_storing`, its privacy rules rewrite
//! product events, span and log attributes before anything is derived or stored, so errors,
//! sessions and rollups are computed from scrubbed data too (shared/ARCHITECTURE.md: validate →
//! sample → scrub → enrich → derive).
//!
//! Product events keep the record of what changed in `metadata["privacy.remarks"]`
//! (`[{"rule_id", "path", "method"}]`); spans and logs are only counted (a remark per span would
//! cost more than the span). Scrubbed in spans: attributes, span event attributes (exception
//! messages and stack traces), link attributes; in logs: attributes and the body (path `body`).
//! Resource and scope attributes are not scrubbed.

use serde_json::Value;
use sightline_model::{Batch, LogRecord, ProductEvent, Span};

use crate::privacy::{ProjectPrivacy, REMARKS_METADATA_KEY};

/// What one scrub step changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScrubCounts {
    /// Items with at least one change.
    pub items_changed: u64,
    /// Fields changed (remarks).
    pub fields_changed: u64,
}

/// Scrubs product events in place when the project scrubs before storing; each changed event
/// gets its remarks under `metadata["privacy.remarks"]`.
pub fn scrub_events(privacy: &ProjectPrivacy, events: &mut [ProductEvent]) -> ScrubCounts {
    let mut counts = ScrubCounts::default();
    if !privacy.scrub_before_storing() || privacy.scrubber().is_empty() {
        return counts;
    }
    for event in events {
        let remarks = privacy.scrubber().scrub_event(event);
        if remarks.is_empty() {
            continue;
        }
        counts.items_changed += 1;
        counts.fields_changed += remarks.len() as u64;
        if let Ok(value) = serde_json::to_value(&remarks) {
            event.metadata.insert(REMARKS_METADATA_KEY.to_owned(), value);
        }
    }
    counts
}

/// Scrubs span attributes, span event and link attributes in place when the project scrubs
/// before storing.
pub fn scrub_spans(privacy: &ProjectPrivacy, batch: &mut Batch<Span>) -> ScrubCounts {
    let mut counts = ScrubCounts::default();
    if !privacy.scrub_before_storing() || privacy.scrubber().is_empty() {
        return counts;
    }
    let scrubber = privacy.scrubber();
    for span in batch.iter_mut().flat_map(|group| &mut group.scopes).flat_map(|scope| &mut scope.items) {
        let mut changed = scrubber.scrub_attributes(&mut span.attributes.0).len();
        for event in &mut span.events {
            changed += scrubber.scrub_attributes(&mut event.attributes.0).len();
        }
        for link in &mut span.links {
            changed += scrubber.scrub_attributes(&mut link.attributes.0).len();
        }
        if changed > 0 {
            counts.items_changed += 1;
            counts.fields_changed += changed as u64;
        }
    }
    counts
}

/// Scrubs log attributes and bodies in place when the project scrubs before storing (a body
/// removed by a rule becomes empty).
pub fn scrub_logs(privacy: &ProjectPrivacy, batch: &mut Batch<LogRecord>) -> ScrubCounts {
    let mut counts = ScrubCounts::default();
    if !privacy.scrub_before_storing() || privacy.scrubber().is_empty() {
        return counts;
    }
    let scrubber = privacy.scrubber();
    for record in batch.iter_mut().flat_map(|group| &mut group.scopes).flat_map(|scope| &mut scope.items) {
        let mut changed = scrubber.scrub_attributes(&mut record.attributes.0).len();
        let (keep, body_remarks) = scrubber.scrub_value("body", &mut record.body);
        if !keep {
            record.body = Value::Null;
        }
        changed += body_remarks.len();
        if changed > 0 {
            counts.items_changed += 1;
            counts.fields_changed += changed as u64;
        }
    }
    counts
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::{Attributes, Resource, ResourceGroup, Scope, ScopeGroup};
    use sightline_privacy::HashKey;

    use super::*;
    use crate::privacy::PrivacySettings;

    fn privacy(scrub_before_storing: bool) -> ProjectPrivacy {
        let settings = PrivacySettings { scrub_before_storing, ..PrivacySettings::default() };
        ProjectPrivacy::compile(settings, HashKey::new("k"), Vec::new()).expect("compiles")
    }

    fn group<T>(items: Vec<T>) -> Batch<T> {
        vec![ResourceGroup {
            resource: Resource::default(),
            scopes: vec![ScopeGroup { scope: Scope::default(), items }],
        }]
    }

    fn log(body: Value, attributes: Value) -> LogRecord {
        LogRecord {
            time_unix_nano: 1,
            observed_time_unix_nano: 1,
            severity_number: 17,
            severity_text: "ERROR".into(),
            body,
            attributes: Attributes(attributes.as_object().cloned().unwrap_or_default()),
            dropped_attributes_count: 0,
            flags: 0,
            trace_id: None,
            span_id: None,
            event_name: String::new(),
        }
    }

    #[test]
    fn logs_are_scrubbed_only_when_asked() {
        let record =
            log(json!("login failed for jane@example.com"), json!({"client.address": "203.0.113.7", "code": 3}));
        let mut untouched = group(vec![record.clone()]);
        assert_eq!(scrub_logs(&privacy(false), &mut untouched), ScrubCounts::default());
        assert_eq!(untouched[0].scopes[0].items[0], record);
        let mut logs = group(vec![record]);
        assert_eq!(scrub_logs(&privacy(true), &mut logs), ScrubCounts { items_changed: 1, fields_changed: 2 });
        let scrubbed = &logs[0].scopes[0].items[0];
        assert_eq!(scrubbed.body, json!("login failed for [email]"));
        assert_eq!(scrubbed.attributes.0["client.address"], "[ip]");
        assert_eq!(scrubbed.attributes.0["code"], 3);
    }

    #[test]
    fn events_keep_their_remarks() {
        let body = json!({"event_id": "e", "product_id": "p", "session.id": "s", "event.type": "custom",
                          "page.title": "hi jane@example.com"});
        let mut events = vec![sightline_model::event::parse_event(&body, 1).expect("valid")];
        assert_eq!(scrub_events(&privacy(true), &mut events).fields_changed, 1);
        assert_eq!(events[0].properties["page.title"], "hi [email]");
        assert_eq!(
            events[0].metadata[REMARKS_METADATA_KEY],
            json!([{"rule_id": "@email", "path": "page.title", "method": "replace"}])
        );
    }
}
