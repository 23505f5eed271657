//! Consent and privacy levels: whether an event may be forwarded to a destination.
//!
//! An event is never forwarded when its consent attribute (`consent.analytics` by default) says
//! no, when its user is on the project's opt-out list, or when its `privacy_level` is above
//! what the destination accepts. Events without a level are `internal`; destinations accept up
//! to `internal` unless configured for `pii`, so personal data leaves only where it was allowed
//! explicitly. An unknown level counts as `pii` (fail closed).

use std::collections::HashSet;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use sightline_model::ProductEvent;

/// The property (or metadata key) holding an event's privacy level.
pub const PRIVACY_LEVEL_KEY: &str = "privacy_level";
/// The default consent attribute.
pub const DEFAULT_CONSENT_ATTRIBUTE: &str = "consent.analytics";

/// How sensitive an event is, least to most.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PrivacyLevel {
    /// May go anywhere.
    Public,
    /// For the organisation's own tools (the default).
    #[default]
    Internal,
    /// Holds personal data.
    Pii,
}

impl PrivacyLevel {
    /// Parses `public`, `internal` or `pii` (ASCII case ignored).
    pub fn parse(text: &str) -> Option<Self> {
        match text.to_ascii_lowercase().as_str() {
            "public" => Some(PrivacyLevel::Public),
            "internal" => Some(PrivacyLevel::Internal),
            "pii" => Some(PrivacyLevel::Pii),
            _ => None,
        }
    }

    /// The event's level from its `privacy_level` property (or metadata key): `internal` when
    /// absent, `pii` when present but not a known level.
    pub fn of_event(event: &ProductEvent) -> Self {
        let value = event.properties.get(PRIVACY_LEVEL_KEY).or_else(|| event.metadata.get(PRIVACY_LEVEL_KEY));
        match value {
            None | Some(Value::Null) => PrivacyLevel::Internal,
            Some(Value::String(text)) => PrivacyLevel::parse(text).unwrap_or(PrivacyLevel::Pii),
            Some(_) => PrivacyLevel::Pii,
        }
    }

    /// `public`, `internal` or `pii`.
    pub fn as_str(&self) -> &'static str {
        match self {
            PrivacyLevel::Public => "public",
            PrivacyLevel::Internal => "internal",
            PrivacyLevel::Pii => "pii",
        }
    }
}

/// Why an event is not forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The consent attribute says no.
    ConsentDenied,
    /// The policy requires consent and the event has none.
    ConsentMissing,
    /// The user is on the opt-out list.
    OptedOut,
    /// The event's privacy level is above the destination's.
    PrivacyLevel,
}

/// Whether an event may be forwarded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ForwardDecision {
    /// It may.
    Forward,
    /// It may not, for this reason.
    Drop(DropReason),
}

/// A project's consent rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConsentPolicy {
    /// The property (or metadata key, dotted for nested objects) holding analytics consent.
    pub attribute: String,
    /// When true, an event without a consent value is not forwarded (opt-in); when false (the
    /// default), only an explicit "no" stops it (opt-out).
    pub require_consent: bool,
    /// Users (`user.id`) who opted out. Not part of the serialized settings: the server keeps
    /// them in their own table.
    #[serde(skip)]
    pub opt_outs: HashSet<String>,
}

impl Default for ConsentPolicy {
    fn default() -> Self {
        Self { attribute: DEFAULT_CONSENT_ATTRIBUTE.to_owned(), require_consent: false, opt_outs: HashSet::new() }
    }
}

/// What a consent value says: `Some(false)` for `false`, `0`, `"false"`, `"no"`, `"0"`,
/// `"denied"`, `"deny"`, `"off"`, `"rejected"`; `Some(true)` for their opposites; `None` for
/// anything else.
fn consent_value(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(granted) => Some(*granted),
        Value::Number(number) => number.as_f64().map(|number| number != 0.0),
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "false" | "no" | "0" | "denied" | "deny" | "off" | "rejected" => Some(false),
            "true" | "yes" | "1" | "granted" | "allow" | "allowed" | "on" | "accepted" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

fn lookup<'a>(map: &'a Map<String, Value>, dotted: &str) -> Option<&'a Value> {
    if let Some(value) = map.get(dotted) {
        return Some(value);
    }
    let mut parts = dotted.split('.');
    let mut current = map.get(parts.next()?)?;
    for part in parts {
        current = current.as_object()?.get(part)?;
    }
    Some(current)
}

impl ConsentPolicy {
    /// The event's consent (`None` when it carries no readable value): properties first, then
    /// metadata (flat key or nested path).
    pub fn consent_of(&self, event: &ProductEvent) -> Option<bool> {
        lookup(&event.properties, &self.attribute)
            .and_then(consent_value)
            .or_else(|| lookup(&event.metadata, &self.attribute).and_then(consent_value))
    }

    /// Consent and opt-out, whatever the destination.
    pub fn decide(&self, event: &ProductEvent) -> ForwardDecision {
        if event.user_id.as_ref().is_some_and(|user| self.opt_outs.contains(user)) {
            return ForwardDecision::Drop(DropReason::OptedOut);
        }
        match self.consent_of(event) {
            Some(false) => ForwardDecision::Drop(DropReason::ConsentDenied),
            None if self.require_consent => ForwardDecision::Drop(DropReason::ConsentMissing),
            _ => ForwardDecision::Forward,
        }
    }

    /// [`ConsentPolicy::decide`], then the event's privacy level against the highest level the
    /// destination accepts.
    pub fn decide_for_destination(&self, event: &ProductEvent, destination_level: PrivacyLevel) -> ForwardDecision {
        match self.decide(event) {
            ForwardDecision::Forward if PrivacyLevel::of_event(event) > destination_level => {
                ForwardDecision::Drop(DropReason::PrivacyLevel)
            }
            decision => decision,
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;
    use sightline_model::event::parse_event;

    use super::*;

    fn event(extra: Value) -> ProductEvent {
        let mut value = json!({"event_id": "e1", "product_id": "p", "session.id": "s", "event.type": "custom",
                               "user.id": "u-1"});
        if let (Value::Object(target), Value::Object(source)) = (&mut value, extra) {
            target.extend(source);
        }
        parse_event(&value, 1).expect("valid event")
    }

    #[test]
    fn consent_values_and_places() {
        let policy = ConsentPolicy::default();
        assert_eq!(policy.decide(&event(json!({}))), ForwardDecision::Forward);
        for denied in [json!(false), json!("false"), json!("denied"), json!(0), json!("NO")] {
            let decision = policy.decide(&event(json!({"consent.analytics": denied})));
            assert_eq!(decision, ForwardDecision::Drop(DropReason::ConsentDenied), "{denied}");
        }
        assert_eq!(policy.decide(&event(json!({"consent.analytics": true}))), ForwardDecision::Forward);
        let nested = event(json!({"metadata": {"consent": {"analytics": false}}}));
        assert_eq!(policy.decide(&nested), ForwardDecision::Drop(DropReason::ConsentDenied));
        let custom = ConsentPolicy { attribute: "gdpr".into(), ..ConsentPolicy::default() };
        assert_eq!(
            custom.decide(&event(json!({"gdpr": "no", "consent.analytics": true}))),
            ForwardDecision::Drop(DropReason::ConsentDenied)
        );
        let opt_in = ConsentPolicy { require_consent: true, ..ConsentPolicy::default() };
        assert_eq!(opt_in.decide(&event(json!({}))), ForwardDecision::Drop(DropReason::ConsentMissing));
        assert_eq!(opt_in.decide(&event(json!({"consent.analytics": "granted"}))), ForwardDecision::Forward);
    }

    #[test]
    fn opted_out_users_are_dropped_first() {
        let policy = ConsentPolicy { opt_outs: HashSet::from(["u-1".to_owned()]), ..ConsentPolicy::default() };
        assert_eq!(
            policy.decide(&event(json!({"consent.analytics": true}))),
            ForwardDecision::Drop(DropReason::OptedOut)
        );
    }

    #[test]
    fn privacy_levels_default_to_internal_and_fail_closed() {
        assert_eq!(PrivacyLevel::of_event(&event(json!({}))), PrivacyLevel::Internal);
        assert_eq!(PrivacyLevel::of_event(&event(json!({"privacy_level": "PUBLIC"}))), PrivacyLevel::Public);
        assert_eq!(PrivacyLevel::of_event(&event(json!({"privacy_level": "secret"}))), PrivacyLevel::Pii);
        let policy = ConsentPolicy::default();
        let pii = event(json!({"privacy_level": "pii"}));
        assert_eq!(
            policy.decide_for_destination(&pii, PrivacyLevel::Internal),
            ForwardDecision::Drop(DropReason::PrivacyLevel)
        );
        assert_eq!(policy.decide_for_destination(&pii, PrivacyLevel::Pii), ForwardDecision::Forward);
        let internal = event(json!({}));
        assert_eq!(
            policy.decide_for_destination(&internal, PrivacyLevel::Public),
            ForwardDecision::Drop(DropReason::PrivacyLevel)
        );
    }
}
