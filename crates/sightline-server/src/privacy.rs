//! Per-project privacy: the settings (`GET/PUT /api/v1/projects/{project}/privacy`), compiled
//! into a [`ProjectPrivacy`] once and cached, for the ingest step that scrubs before storing
//! (`pipeline::scrub`) and for forwarding ([`ProjectPrivacy::prepare_for_forwarding`]).
//!
//! The rules are `sightline-privacy` configurations keyed with the project's own secret
//! (`store::privacy::StoredPrivacy::hash_key`), so pseudonyms are stable within a project and
//! unlinkable across projects. Settings are reread at most every 10 s, and at once on the node
//! that changed them.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sightline_model::ProductEvent;
use sightline_privacy::{
    ConsentPolicy, DropReason, ForwardDecision, PrivacyConfig, PrivacyConfigError, PrivacyLevel, Remark, Scrubber,
};

use crate::store::{Store, StoreError};

/// How long a project's compiled settings are reused before the store is asked again.
const CACHE_TTL: Duration = Duration::from_secs(10);

/// The metadata key under which an event scrubbed before storing keeps its remarks (which rule
/// changed which field).
pub const REMARKS_METADATA_KEY: &str = "privacy.remarks";

/// A project's privacy settings as the API reads and writes them.
///
/// ```json
/// {"scrub_before_storing": false,
///  "rules": {}, "applications": {"**": ["@common"]},
///  "consent": {"attribute": "consent.analytics", "require_consent": false}}
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PrivacySettings {
    /// Scrub product events, spans and logs with the rules before they are stored (default
    /// false: the rules apply to forwarding only).
    #[serde(default)]
    pub scrub_before_storing: bool,
    /// The rules and where they apply (`rules`, `applications`); the default is `@common` on
    /// every field (`{"**": ["@common"]}`). `vars.hash_key` cannot be set: each project has its
    /// own generated key.
    #[serde(flatten)]
    pub config: PrivacyConfig,
    /// Consent rules for forwarding.
    #[serde(default)]
    pub consent: ConsentPolicy,
}

impl Default for PrivacySettings {
    fn default() -> Self {
        Self { scrub_before_storing: false, config: PrivacyConfig::common_preset(), consent: ConsentPolicy::default() }
    }
}

/// Why settings sent to the API are refused (answered 400 with this message).
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    /// Not the settings' JSON shape.
    #[error("body: {0}")]
    Syntax(String),
    /// The body tries to set the hash key.
    #[error("vars.hash_key cannot be set: every project has its own generated key, which is never shown")]
    HashKeyGiven,
    /// The consent attribute is empty.
    #[error("consent.attribute must not be empty")]
    EmptyConsentAttribute,
    /// The rules do not compile.
    #[error(transparent)]
    Rules(#[from] PrivacyConfigError),
}

impl PrivacySettings {
    /// Parses and validates a `PUT` body: the shape, no `vars.hash_key`, rules that compile
    /// (unknown rule ids, bad regexes, bad selectors are reported by name). An absent
    /// `applications` with no `rules` keeps the `@common` preset; send `"applications": {}` to
    /// apply nothing.
    pub fn parse(body: &[u8]) -> Result<Self, SettingsError> {
        let value: serde_json::Value =
            serde_json::from_slice(body).map_err(|error| SettingsError::Syntax(error.to_string()))?;
        if value.pointer("/vars/hash_key").is_some() || value.pointer("/vars/hashKey").is_some() {
            return Err(SettingsError::HashKeyGiven);
        }
        let keeps_preset = value.get("applications").is_none() && value.get("rules").is_none();
        let mut settings: PrivacySettings =
            serde_json::from_value(value).map_err(|error| SettingsError::Syntax(error.to_string()))?;
        if keeps_preset {
            settings.config.applications = PrivacyConfig::common_preset().applications;
        }
        if settings.consent.attribute.trim().is_empty() {
            return Err(SettingsError::EmptyConsentAttribute);
        }
        // Compiled with a stand-in key: only the shape of the rules is checked here.
        let mut config = settings.config.clone();
        config.vars.hash_key = Some(sightline_privacy::HashKey::new("validation"));
        Scrubber::new(&config)?;
        Ok(settings)
    }

    /// The settings stored as JSON text (no hash key: it is never serialized).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_owned())
    }
}

/// A project's compiled privacy settings. Cheap to share (`Arc`); scrubbing takes `&self`.
#[derive(Debug)]
pub struct ProjectPrivacy {
    /// The settings as stored.
    pub settings: PrivacySettings,
    scrubber: Scrubber,
    /// The consent policy with the opt-out list, each user also by its pseudonym (events
    /// scrubbed before storing may carry a hashed `user.id`).
    consent: ConsentPolicy,
}

/// What [`ProjectPrivacy::prepare_for_forwarding`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Forwarding {
    /// Send this copy (scrubbed with the project's rules unless it was scrubbed before storing).
    Send {
        /// The event to send (boxed: an event is large next to a drop reason).
        event: Box<ProductEvent>,
        /// What the rules changed in it for forwarding.
        remarks: Vec<Remark>,
    },
    /// Do not send the event.
    Drop(DropReason),
}

impl ProjectPrivacy {
    /// Compiles settings with the project's hash key and opt-out list. Errors when the rules do
    /// not compile (settings are validated when saved, so only a stored row written by another
    /// version can fail).
    pub fn compile(
        settings: PrivacySettings,
        hash_key: sightline_privacy::HashKey,
        opt_outs: Vec<String>,
    ) -> Result<Self, PrivacyConfigError> {
        let mut config = settings.config.clone();
        config.vars.hash_key = Some(hash_key);
        let scrubber = Scrubber::new(&config)?;
        let mut known: HashSet<String> = HashSet::with_capacity(opt_outs.len() * 2);
        for user in opt_outs {
            if let Some(pseudonym) = scrubber.pseudonym(&user) {
                known.insert(pseudonym);
            }
            known.insert(user);
        }
        let consent = ConsentPolicy { opt_outs: known, ..settings.consent.clone() };
        Ok(Self { settings, scrubber, consent })
    }

    /// True when events are scrubbed before they are stored.
    pub fn scrub_before_storing(&self) -> bool {
        self.settings.scrub_before_storing
    }

    /// The compiled rules.
    pub fn scrubber(&self) -> &Scrubber {
        &self.scrubber
    }

    /// The pseudonym `@anything:hash` gives a value in this project (HMAC-SHA256, hex).
    pub fn pseudonym(&self, value: &str) -> Option<String> {
        self.scrubber.pseudonym(value)
    }

    /// Consent and opt-out for an event, whatever the destination.
    pub fn decide(&self, event: &ProductEvent) -> ForwardDecision {
        self.consent.decide(event)
    }

    /// For the exporters: whether `event` may go to a destination accepting events up to
    /// `destination_level` (consent, opt-out list, `privacy_level`), and the copy to send,
    /// scrubbed with the project's rules. Events scrubbed before storing are not scrubbed again
    /// (hashing twice would change the pseudonyms).
    pub fn prepare_for_forwarding(&self, event: &ProductEvent, destination_level: PrivacyLevel) -> Forwarding {
        if let ForwardDecision::Drop(reason) = self.consent.decide_for_destination(event, destination_level) {
            return Forwarding::Drop(reason);
        }
        let mut copy = event.clone();
        let remarks =
            if self.settings.scrub_before_storing { Vec::new() } else { self.scrubber.scrub_event(&mut copy) };
        Forwarding::Send { event: Box::new(copy), remarks }
    }
}

/// Loads and caches every project's [`ProjectPrivacy`].
pub struct PrivacyEngine {
    store: Arc<dyn Store>,
    cache: Mutex<HashMap<i64, (Instant, Arc<ProjectPrivacy>)>>,
}

impl PrivacyEngine {
    /// An engine reading settings from `store`.
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store, cache: Mutex::new(HashMap::new()) }
    }

    /// The project's compiled settings, from the cache when younger than 10 s, else from the
    /// store (blocking: call from a blocking thread, or after [`PrivacyEngine::refresh`]).
    /// Errors when the store fails; a stored configuration that no longer compiles falls back to
    /// the `@common` preset (logged), never to no rules.
    pub fn for_project(&self, project_id: i64) -> Result<Arc<ProjectPrivacy>, StoreError> {
        if let Some((fetched_at, cached)) = self.cached_entry(project_id)
            && fetched_at.elapsed() < CACHE_TTL
        {
            return Ok(cached);
        }
        self.load(project_id)
    }

    /// Reloads the project's settings when the cached ones are older than 10 s, on a blocking
    /// thread (the ingest path calls this while authenticating, so the prepare steps find them
    /// cached). On a store failure the stale entry is kept when there is one.
    pub async fn refresh(self: &Arc<Self>, project_id: i64) -> Result<(), StoreError> {
        let stale = match self.cached_entry(project_id) {
            Some((fetched_at, _)) if fetched_at.elapsed() < CACHE_TTL => return Ok(()),
            Some(_) => true,
            None => false,
        };
        let engine = self.clone();
        let loaded = tokio::task::spawn_blocking(move || engine.load(project_id))
            .await
            .map_err(|error| StoreError::Database(error.to_string()))?;
        match loaded {
            Ok(_) => Ok(()),
            Err(error) if stale => {
                tracing::warn!(project_id, %error, "Privacy settings not reloaded; using the previous ones");
                Ok(())
            }
            Err(error) => Err(error),
        }
    }

    /// The cached settings, fresh or stale, without touching the store.
    pub fn cached(&self, project_id: i64) -> Option<Arc<ProjectPrivacy>> {
        self.cached_entry(project_id).map(|(_, privacy)| privacy)
    }

    /// Forgets the project's settings (after they changed), so the next use reloads them.
    pub fn invalidate(&self, project_id: i64) {
        if let Ok(mut cache) = self.cache.lock() {
            cache.remove(&project_id);
        }
    }

    fn cached_entry(&self, project_id: i64) -> Option<(Instant, Arc<ProjectPrivacy>)> {
        self.cache.lock().ok().and_then(|cache| cache.get(&project_id).cloned())
    }

    fn load(&self, project_id: i64) -> Result<Arc<ProjectPrivacy>, StoreError> {
        let stored = self.store.privacy_settings(project_id)?;
        let settings = match stored.settings_json.as_deref().map(serde_json::from_str::<PrivacySettings>) {
            None => PrivacySettings::default(),
            Some(Ok(settings)) => settings,
            Some(Err(error)) => {
                tracing::error!(project_id, %error, "Stored privacy settings do not read; using the defaults");
                PrivacySettings::default()
            }
        };
        let scrub_before_storing = settings.scrub_before_storing;
        let consent = settings.consent.clone();
        let privacy = match ProjectPrivacy::compile(settings, stored.hash_key.clone(), stored.opt_outs.clone()) {
            Ok(privacy) => privacy,
            Err(error) => {
                tracing::error!(project_id, %error, "Stored privacy rules do not compile; using @common");
                let fallback = PrivacySettings { scrub_before_storing, consent, ..PrivacySettings::default() };
                ProjectPrivacy::compile(fallback, stored.hash_key, stored.opt_outs)
                    .map_err(|error| StoreError::Database(error.to_string()))?
            }
        };
        let privacy = Arc::new(privacy);
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() > 10_000 {
                cache.clear();
            }
            cache.insert(project_id, (Instant::now(), privacy.clone()));
        }
        Ok(privacy)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_parse_validate_and_keep_the_preset() {
        let settings = PrivacySettings::parse(br#"{"scrub_before_storing": true}"#).expect("valid");
        assert!(settings.scrub_before_storing);
        assert_eq!(settings.config, PrivacyConfig::common_preset());
        let none = PrivacySettings::parse(br#"{"applications": {}}"#).expect("valid");
        assert!(none.config.applications.is_empty());
        for (body, expected) in [
            (&br#"{"applications": {"**": ["@nope"]}}"#[..], "unknown rule \"@nope\""),
            (br#"{"rules": {"r": {"type": "pattern", "pattern": "("}}, "applications": {"**": ["r"]}}"#, "bad regex"),
            (br#"{"applications": {"a..b": ["@email"]}}"#, "bad selector"),
            (br#"{"vars": {"hash_key": "mine"}}"#, "cannot be set"),
            (br#"{"consent": {"attribute": " "}}"#, "must not be empty"),
            (br#"{"scrub_before_storing": "yes"}"#, "body:"),
        ] {
            let error = PrivacySettings::parse(body).expect_err(expected).to_string();
            assert!(error.contains(expected), "{error} should contain {expected}");
        }
    }

    #[test]
    fn forwarding_applies_consent_levels_and_rules() {
        let key = sightline_privacy::HashKey::new("k");
        let settings =
            PrivacySettings::parse(br#"{"applications": {"**": ["@common"], "user.id": ["@anything:hash"]}}"#)
                .expect("valid");
        let privacy = ProjectPrivacy::compile(settings, key, vec!["opted-out".into()]).expect("compiles");
        let event = |user: &str, extra: serde_json::Value| {
            let mut body = serde_json::json!({"event_id": "e", "product_id": "p", "session.id": "s",
                                              "event.type": "custom", "user.id": user, "note": "jane@example.com"});
            if let (Some(target), Some(source)) = (body.as_object_mut(), extra.as_object()) {
                target.extend(source.clone());
            }
            sightline_model::event::parse_event(&body, 1).expect("valid")
        };
        match privacy.prepare_for_forwarding(&event("u-1", serde_json::json!({})), PrivacyLevel::Internal) {
            Forwarding::Send { event, remarks } => {
                assert_eq!(event.properties["note"], "[email]");
                assert_eq!(event.user_id, privacy.pseudonym("u-1"));
                assert_eq!(remarks.len(), 2);
            }
            other => panic!("expected Send, got {other:?}"),
        }
        let opted_out = event("opted-out", serde_json::json!({}));
        assert_eq!(
            privacy.prepare_for_forwarding(&opted_out, PrivacyLevel::Pii),
            Forwarding::Drop(DropReason::OptedOut)
        );
        // Stored with a pseudonym (scrubbed before storing): still recognised.
        let pseudonymous = event(&privacy.pseudonym("opted-out").expect("keyed"), serde_json::json!({}));
        assert_eq!(privacy.decide(&pseudonymous), ForwardDecision::Drop(DropReason::OptedOut));
        let denied = event("u-2", serde_json::json!({"consent.analytics": false}));
        assert_eq!(
            privacy.prepare_for_forwarding(&denied, PrivacyLevel::Pii),
            Forwarding::Drop(DropReason::ConsentDenied)
        );
        let pii = event("u-2", serde_json::json!({"privacy_level": "pii"}));
        assert_eq!(
            privacy.prepare_for_forwarding(&pii, PrivacyLevel::Internal),
            Forwarding::Drop(DropReason::PrivacyLevel)
        );
    }
}
