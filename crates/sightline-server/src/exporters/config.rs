//! A destination's settings as stored and as the API takes them: the vendor part
//! ([`DestinationSettings`], tagged by `"type"`), routing and batching.
//!
//! JSON shape (the API's `config`):
//! `{"type": "amplitude", "api_key": "...", "region": "eu", "api": "http_v2",
//!   "routing": {...}, "batch": {"max_events": 2000, "interval_ms": 250}}`.
//! Secrets (`api_key`, `token`, `service_account_secret`, `secret`) are write-only: the API
//! shows them as `"set"` / `"unset"` ([`DestinationConfig::redacted_json`]).

use serde::{Deserialize, Serialize};

use super::Secret;
use super::routing::Routing;

/// Vendor data centre.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Region {
    /// United States (the vendors' default hosts).
    #[default]
    Us,
    /// European Union (`api.eu.amplitude.com`, `api-eu.mixpanel.com`).
    Eu,
}

/// Which Amplitude ingestion API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AmplitudeApi {
    /// HTTP V2 `/2/httpapi`: < 1 MB and ≤ 2000 events per request.
    #[default]
    HttpV2,
    /// Batch API `/batch`: up to 20 MB per request, for bulk volumes.
    Batch,
}

/// Amplitude HTTP V2 / Batch API (developers.amplitude.com, "HTTP V2 API", "Batch Event Upload").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AmplitudeSettings {
    /// The project's API key (sent in the body as `api_key`).
    pub api_key: Secret,
    /// `us` (default) or `eu`.
    #[serde(default)]
    pub region: Region,
    /// `http_v2` (default) or `batch`.
    #[serde(default)]
    pub api: AmplitudeApi,
    /// Full URL replacing the vendor's (a proxy, or a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// Mixpanel `/import` (developer.mixpanel.com, "Import Events").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MixpanelSettings {
    /// Project token, sent as the basic-auth user (one of token or service account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token: Option<Secret>,
    /// Service account user name (with `service_account_secret` and `project_id`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_username: Option<String>,
    /// Service account secret.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_account_secret: Option<Secret>,
    /// Mixpanel project id (`project_id` query parameter; required with a service account).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_id: Option<String>,
    /// `us` (default) or `eu`.
    #[serde(default)]
    pub region: Region,
    /// Full URL replacing the vendor's (a proxy, or a test server).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
}

/// A generic webhook: JSON batches POSTed to `url`, signed with HMAC-SHA256.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WebhookSettings {
    /// Where batches go (`http://` or `https://`).
    pub url: String,
    /// Key of the `X-Sightline-Signature` HMAC-SHA256.
    pub secret: Secret,
    /// Gzip the body (`Content-Encoding: gzip`). Default false.
    #[serde(default)]
    pub gzip: bool,
}

/// The vendor part of a destination.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum DestinationSettings {
    /// Amplitude.
    Amplitude(AmplitudeSettings),
    /// Mixpanel.
    Mixpanel(MixpanelSettings),
    /// A signed webhook.
    Webhook(WebhookSettings),
}

impl DestinationSettings {
    /// `amplitude`, `mixpanel` or `webhook`.
    pub fn kind(&self) -> &'static str {
        match self {
            DestinationSettings::Amplitude(_) => "amplitude",
            DestinationSettings::Mixpanel(_) => "mixpanel",
            DestinationSettings::Webhook(_) => "webhook",
        }
    }
}

/// Batching and retry settings; absent fields take the vendor's limits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BatchSettings {
    /// Most events per request (default and maximum: the vendor's, 2000 for both).
    pub max_events: Option<usize>,
    /// Most bytes per request body before compression (default and maximum: the vendor's).
    pub max_bytes: Option<usize>,
    /// How long the first queued event may wait for a fuller batch, ms. Default 200, so the
    /// first attempt comes well under a second after the event was accepted. 0..=60,000.
    pub interval_ms: u64,
    /// Attempts of a retryable failure before the batch becomes dead letters. Default 12
    /// (with backoff capped at 60 s: about 8 minutes of trying). 1..=100.
    pub max_attempts: u32,
    /// Request timeout, ms. Default 10,000 (the ProductGraph clients' timeout). 100..=120,000.
    pub timeout_ms: u64,
}

impl Default for BatchSettings {
    fn default() -> Self {
        Self { max_events: None, max_bytes: None, interval_ms: 200, max_attempts: 12, timeout_ms: 10_000 }
    }
}

/// Everything a destination is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DestinationConfig {
    /// The vendor part.
    #[serde(flatten)]
    pub settings: DestinationSettings,
    /// Which events and properties go.
    #[serde(default)]
    pub routing: Routing,
    /// Batching and retries.
    #[serde(default)]
    pub batch: BatchSettings,
}

/// Names of the secret fields, shown as `"set"` / `"unset"`.
const SECRET_FIELDS: [&str; 4] = ["api_key", "token", "service_account_secret", "secret"];

fn check_url(field: &str, text: &str) -> Result<(), String> {
    let url = reqwest::Url::parse(text).map_err(|error| format!("{field}: {text:?} is not a URL: {error}"))?;
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{field}: {text:?} must be http:// or https://"));
    }
    Ok(())
}

impl DestinationConfig {
    /// Checks the settings can work. Errors name the field and what to do.
    pub fn validate(&self) -> Result<(), String> {
        match &self.settings {
            DestinationSettings::Amplitude(amplitude) => {
                if amplitude.api_key.is_empty() {
                    return Err("api_key: required (the Amplitude project's API key)".into());
                }
                if let Some(endpoint) = &amplitude.endpoint {
                    check_url("endpoint", endpoint)?;
                }
            }
            DestinationSettings::Mixpanel(mixpanel) => {
                let has_token = mixpanel.token.as_ref().is_some_and(|token| !token.is_empty());
                let has_account = mixpanel.service_account_username.is_some()
                    && mixpanel.service_account_secret.as_ref().is_some_and(|secret| !secret.is_empty());
                if !has_token && !has_account {
                    return Err(
                        "token: required, or service_account_username + service_account_secret + project_id".into()
                    );
                }
                if !has_token && mixpanel.project_id.is_none() {
                    return Err("project_id: required with a service account".into());
                }
                if let Some(endpoint) = &mixpanel.endpoint {
                    check_url("endpoint", endpoint)?;
                }
            }
            DestinationSettings::Webhook(webhook) => {
                check_url("url", &webhook.url)?;
                if webhook.secret.is_empty() {
                    return Err("secret: required (the HMAC-SHA256 key of X-Sightline-Signature)".into());
                }
            }
        }
        self.routing.compile()?;
        let limits = super::delivery::vendor_limits(&self.settings);
        if let Some(max_events) = self.batch.max_events
            && !(1..=limits.max_events).contains(&max_events)
        {
            return Err(format!("batch.max_events: between 1 and {} for {}", limits.max_events, self.settings.kind()));
        }
        if let Some(max_bytes) = self.batch.max_bytes
            && !(1024..=limits.max_bytes).contains(&max_bytes)
        {
            return Err(format!("batch.max_bytes: between 1024 and {} for {}", limits.max_bytes, self.settings.kind()));
        }
        if self.batch.interval_ms > 60_000 {
            return Err("batch.interval_ms: at most 60000".into());
        }
        if !(1..=100).contains(&self.batch.max_attempts) {
            return Err("batch.max_attempts: between 1 and 100".into());
        }
        if !(100..=120_000).contains(&self.batch.timeout_ms) {
            return Err("batch.timeout_ms: between 100 and 120000".into());
        }
        Ok(())
    }

    /// The settings as JSON with every secret replaced by `"set"` or `"unset"` (for the API).
    pub fn redacted_json(&self) -> serde_json::Value {
        let mut value = serde_json::to_value(self).unwrap_or(serde_json::Value::Null);
        if let Some(object) = value.as_object_mut() {
            for field in SECRET_FIELDS {
                if field == "token" && self.settings.kind() != "mixpanel" {
                    continue;
                }
                let present = object.get(field).and_then(|value| value.as_str()).is_some_and(|text| !text.is_empty());
                let applies = matches!(
                    (&self.settings, field),
                    (DestinationSettings::Amplitude(_), "api_key")
                        | (DestinationSettings::Mixpanel(_), "token" | "service_account_secret")
                        | (DestinationSettings::Webhook(_), "secret")
                );
                if applies {
                    object.insert(field.into(), serde_json::Value::from(if present { "set" } else { "unset" }));
                }
            }
        }
        value
    }
}

/// RFC 7386 JSON merge patch: `patch`'s members replace `target`'s, `null` removes them.
/// PATCH applies this to the stored settings, so secrets stay unless they are sent again.
pub fn merge_patch(target: &mut serde_json::Value, patch: &serde_json::Value) {
    let serde_json::Value::Object(patch_object) = patch else {
        *target = patch.clone();
        return;
    };
    if !target.is_object() {
        *target = serde_json::Value::Object(serde_json::Map::new());
    }
    if let Some(target_object) = target.as_object_mut() {
        for (key, value) in patch_object {
            if value.is_null() {
                target_object.remove(key);
            } else {
                merge_patch(target_object.entry(key.clone()).or_insert(serde_json::Value::Null), value);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn api_view_never_shows_secrets() {
        let config: DestinationConfig =
            serde_json::from_value(json!({"type": "amplitude", "api_key": "amp-secret-key", "region": "eu"}))
                .expect("config");
        config.validate().expect("valid");
        let view = config.redacted_json();
        assert_eq!(view["api_key"], "set");
        assert_eq!(view["region"], "eu");
        assert!(!view.to_string().contains("amp-secret-key"));
        assert!(!format!("{config:?}").contains("amp-secret-key"), "Debug redacts too");
        let mixpanel: DestinationConfig =
            serde_json::from_value(json!({"type": "mixpanel", "token": "mp-token"})).expect("config");
        let view = mixpanel.redacted_json();
        assert_eq!(view["token"], "set");
        assert!(!view.to_string().contains("mp-token"));
    }

    #[test]
    fn validation_names_the_field() {
        let bad = |value: serde_json::Value| {
            let config: DestinationConfig = serde_json::from_value(value).expect("parses");
            config.validate().expect_err("invalid")
        };
        assert!(bad(json!({"type": "amplitude", "api_key": ""})).contains("api_key"));
        assert!(bad(json!({"type": "mixpanel"})).contains("token"));
        assert!(bad(json!({"type": "webhook", "url": "ftp://x", "secret": "s"})).contains("url"));
        assert!(
            bad(json!({"type": "amplitude", "api_key": "k", "batch": {"max_events": 5000}})).contains("max_events")
        );
    }

    #[test]
    fn merge_patch_keeps_what_is_not_sent() {
        let mut stored = json!({"type": "amplitude", "api_key": "k", "routing": {"events": ["a"]}});
        merge_patch(&mut stored, &json!({"routing": {"deny_properties": ["x"]}, "region": "eu"}));
        assert_eq!(
            stored,
            json!({"type": "amplitude", "api_key": "k", "region": "eu",
            "routing": {"events": ["a"], "deny_properties": ["x"]}})
        );
    }
}
