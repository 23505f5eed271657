//! Which events go to a destination and with which properties (issue 6 item 3): event name /
//! type globs, property allow and deny lists, and a maximum privacy level.
//!
//! Privacy levels are read from the event's `privacy_level` property (`public` < `internal` <
//! `pii`). An event without one counts as `internal`, and destinations default to
//! `max_privacy_level: "internal"`: unlabeled events flow, events labeled `pii` are held back
//! unless a destination opts in. An unknown label counts as `pii` (fail closed).

use serde::{Deserialize, Serialize};
use sightline_model::ProductEvent;

/// How sensitive an event is (`public` < `internal` < `pii`), read from its `privacy_level`
/// property: the privacy crate's type, so routing and consent agree on every event.
pub use sightline_privacy::PrivacyLevel;

/// A destination's routing rules, as configured (JSON). Globs use `*` (any run of characters,
/// dots included), `?` and `[...]` (the `glob` crate's patterns).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Routing {
    /// Events to send, matched against `event.name` and `event.type` (e.g. `code_references.*`,
    /// `page.view`); empty sends every event.
    pub events: Vec<String>,
    /// Events never sent, matched the same way; wins over `events`.
    pub exclude_events: Vec<String>,
    /// Property names (dotted, as stored: `page.path`) that may be sent; empty allows all.
    pub allow_properties: Vec<String>,
    /// Property names never sent; wins over `allow_properties`.
    pub deny_properties: Vec<String>,
    /// Most sensitive level sent (default `internal`).
    pub max_privacy_level: PrivacyLevel,
}

/// [`Routing`] with its globs compiled, as the writer and the workers use it.
#[derive(Debug, Clone)]
pub struct RouteMatcher {
    events: Vec<glob::Pattern>,
    exclude_events: Vec<glob::Pattern>,
    allow_properties: Vec<glob::Pattern>,
    deny_properties: Vec<glob::Pattern>,
    max_privacy_level: PrivacyLevel,
}

fn compile(field: &str, globs: &[String]) -> Result<Vec<glob::Pattern>, String> {
    globs
        .iter()
        .map(|text| {
            glob::Pattern::new(text).map_err(|error| format!("routing.{field}: {text:?} is not a glob: {error}"))
        })
        .collect()
}

impl Routing {
    /// Compiles the globs; errors name the field and the pattern.
    pub fn compile(&self) -> Result<RouteMatcher, String> {
        Ok(RouteMatcher {
            events: compile("events", &self.events)?,
            exclude_events: compile("exclude_events", &self.exclude_events)?,
            allow_properties: compile("allow_properties", &self.allow_properties)?,
            deny_properties: compile("deny_properties", &self.deny_properties)?,
            max_privacy_level: self.max_privacy_level,
        })
    }
}

impl RouteMatcher {
    /// True when the event goes to this destination (names, types, privacy level). The writer
    /// asks this before adding an outbox row.
    pub fn accepts(&self, event: &ProductEvent) -> bool {
        let matches = |patterns: &[glob::Pattern]| {
            patterns.iter().any(|pattern| {
                pattern.matches(event.event_type.as_str())
                    || (!event.event_name.is_empty() && pattern.matches(&event.event_name))
            })
        };
        if !self.events.is_empty() && !matches(&self.events) {
            return false;
        }
        if matches(&self.exclude_events) {
            return false;
        }
        PrivacyLevel::of_event(event) <= self.max_privacy_level
    }

    /// True when a property may be sent.
    pub fn allows_property(&self, name: &str) -> bool {
        if self.deny_properties.iter().any(|pattern| pattern.matches(name)) {
            return false;
        }
        self.allow_properties.is_empty() || self.allow_properties.iter().any(|pattern| pattern.matches(name))
    }
}

/// The one place an event is prepared for leaving Sightline: a copy of the event with only
/// the properties the destination allows, or `None` when it must not go at all.
///
/// Order: routing (names, types, privacy level) → the project's privacy rules and consent
/// (`crate::privacy::ProjectPrivacy::prepare_for_forwarding`: opt-outs and
/// `consent.analytics` drop the event, the scrubbing rules clean the copy unless the event was
/// scrubbed before storing) → the destination's property allow/deny lists.
pub fn prepare_for_forwarding(
    event: &ProductEvent,
    routing: &RouteMatcher,
    privacy: Option<&crate::privacy::ProjectPrivacy>,
) -> Option<ProductEvent> {
    if !routing.accepts(event) {
        return None;
    }
    let mut copy = match privacy {
        None => event.clone(),
        Some(privacy) => match privacy.prepare_for_forwarding(event, routing.max_privacy_level) {
            crate::privacy::Forwarding::Send { event, .. } => *event,
            crate::privacy::Forwarding::Drop(_) => return None,
        },
    };
    copy.properties.retain(|name, _| name != "privacy_level" && routing.allows_property(name));
    Some(copy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(name: &str, event_type: &str, extra: serde_json::Value) -> ProductEvent {
        let mut object = json!({"event_id": "e1", "product_id": "p", "session.id": "sess-1", "event.type": event_type,
            "event.name": name, "page.path": "/a", "page.url": "https://x/a"});
        if let (Some(target), serde_json::Value::Object(more)) = (object.as_object_mut(), extra) {
            target.extend(more);
        }
        sightline_model::event::parse_event(&object, 1).expect("valid event")
    }

    #[test]
    fn event_globs_match_names_and_types() {
        let routing = Routing { events: vec!["code_references.*".into(), "page.view".into()], ..Routing::default() }
            .compile()
            .expect("globs");
        assert!(routing.accepts(&event("code_references.opened", "custom", json!({}))));
        assert!(routing.accepts(&event("", "page.view", json!({}))));
        assert!(!routing.accepts(&event("checkout", "custom", json!({}))));
        let excluding = Routing { exclude_events: vec!["ui.*".into()], ..Routing::default() }.compile().expect("globs");
        assert!(!excluding.accepts(&event("", "ui.click", json!({}))));
        assert!(excluding.accepts(&event("", "page.view", json!({}))));
    }

    #[test]
    fn privacy_levels_default_to_internal_and_unknown_is_pii() {
        let internal = Routing::default().compile().expect("globs");
        assert!(internal.accepts(&event("a", "custom", json!({}))), "unlabeled counts as internal");
        assert!(internal.accepts(&event("a", "custom", json!({"privacy_level": "public"}))));
        assert!(!internal.accepts(&event("a", "custom", json!({"privacy_level": "pii"}))));
        assert!(!internal.accepts(&event("a", "custom", json!({"privacy_level": "secret"}))), "unknown fails closed");
        let public =
            Routing { max_privacy_level: PrivacyLevel::Public, ..Routing::default() }.compile().expect("globs");
        assert!(!public.accepts(&event("a", "custom", json!({}))));
    }

    #[test]
    fn properties_are_allowed_and_denied() {
        let routing = Routing {
            allow_properties: vec!["page.*".into()],
            deny_properties: vec!["page.url".into()],
            ..Routing::default()
        }
        .compile()
        .expect("globs");
        let prepared =
            prepare_for_forwarding(&event("a", "custom", json!({"cart.total": 3})), &routing, None).expect("sent");
        let names: Vec<&String> = prepared.properties.keys().collect();
        assert_eq!(names, ["page.path"]);
    }

    #[test]
    fn bad_globs_are_named() {
        let error = Routing { events: vec!["[".into()], ..Routing::default() }.compile().expect_err("bad glob");
        assert!(error.contains("routing.events"), "{error}");
    }
}
