//! Mixpanel `/import` destination (developer.mixpanel.com "Import Events").
//!
//! Request: `POST https://api.mixpanel.com/import?strict=1` (EU: `api-eu.mixpanel.com`), a JSON
//! array of `{"event", "properties": {"time" (ms), "distinct_id", "$insert_id", ...}}`, gzip
//! allowed; ≤ 2000 events and 10 MB uncompressed per request. Auth: the project token as the
//! basic-auth user, or a service account (basic auth) with the `project_id` parameter.
//! Mixpanel deduplicates on (`event`, `distinct_id`, `time`, `$insert_id`), so a resent event
//! is stored once.
//!
//! Mapping: `event` from [`super::event_display_name`]; `distinct_id` = `user.id`, else the
//! session id; `$insert_id` = the event id when it fits Mixpanel's rule (≤ 36 characters of
//! letters, digits and `-`), else the first 32 hex digits of its SHA-256 (stable, so dedup
//! still works); `$current_url` = `page.url`; `$referrer` = `page.referrer`; `session_id`;
//! other properties flattened (`page.path` → `page_path`) plus `event_category`.

mod response;

pub use response::classify;

use serde_json::{Map, Value};
use sha2::{Digest, Sha256};
use sightline_model::ProductEvent;

use super::config::{MixpanelSettings, Region};
use super::delivery::{Exporter, Limits};

/// Mixpanel's `/import` limits: 2000 events and 10 MB (uncompressed) per request.
pub const LIMITS: Limits = Limits { max_events: 2000, max_bytes: 10 * 1024 * 1024 };

/// The Mixpanel exporter.
#[derive(Debug)]
pub struct MixpanelExporter {
    settings: MixpanelSettings,
    url: String,
}

impl MixpanelExporter {
    /// An exporter for these settings.
    pub fn new(settings: MixpanelSettings) -> Self {
        let base = settings.endpoint.clone().unwrap_or_else(|| match settings.region {
            Region::Us => "https://api.mixpanel.com/import".into(),
            Region::Eu => "https://api-eu.mixpanel.com/import".into(),
        });
        let separator = if base.contains('?') { '&' } else { '?' };
        let mut url = format!("{base}{separator}strict=1");
        if let Some(project_id) = &settings.project_id {
            url.push_str("&project_id=");
            url.push_str(&utf8_percent_encode(project_id));
        }
        Self { settings, url }
    }
}

fn utf8_percent_encode(text: &str) -> String {
    reqwest::Url::parse_with_params("http://x/", &[("v", text)])
        .ok()
        .and_then(|url| url.query().map(|query| query.trim_start_matches("v=").to_owned()))
        .unwrap_or_default()
}

/// `$insert_id` for an event id: itself when Mixpanel accepts it, else a stable hash.
pub fn insert_id(event_id: &str) -> String {
    let fits = !event_id.is_empty()
        && event_id.len() <= 36
        && event_id.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-');
    if fits {
        return event_id.to_owned();
    }
    let digest = Sha256::digest(event_id.as_bytes());
    const_hex::encode(&digest[..16])
}

/// The Mixpanel event object for one event.
pub fn mixpanel_event(event: &ProductEvent) -> Value {
    let mut properties = Map::with_capacity(event.properties.len() + 6);
    properties.insert("time".into(), Value::from((event.timestamp_unix_nano / 1_000_000) as i64));
    properties.insert("distinct_id".into(), Value::from(event.user_id.as_deref().unwrap_or(event.session_id.as_str())));
    properties.insert("$insert_id".into(), Value::from(insert_id(&event.event_id)));
    properties.insert("session_id".into(), Value::from(event.session_id.as_str()));
    properties.insert("event_category".into(), Value::from(event.event_type.as_str()));
    for (name, value) in &event.properties {
        match name.as_str() {
            "page.url" => properties.insert("$current_url".into(), value.clone()),
            "page.referrer" => properties.insert("$referrer".into(), value.clone()),
            other => properties.insert(super::flat_name(other), value.clone()),
        };
    }
    if let Some(org_id) = &event.org_id {
        properties.insert("org_id".into(), Value::from(org_id.as_str()));
    }
    let mut object = Map::with_capacity(2);
    object.insert("event".into(), Value::from(super::event_display_name(event)));
    object.insert("properties".into(), Value::Object(properties));
    Value::Object(object)
}

impl Exporter for MixpanelExporter {
    fn limits(&self) -> Limits {
        LIMITS
    }

    fn overhead_bytes(&self) -> usize {
        2
    }

    fn encode_event(&self, event: &ProductEvent, _session_start_unix_ms: Option<i64>) -> Result<Vec<u8>, String> {
        serde_json::to_vec(&mixpanel_event(event)).map_err(|error| error.to_string())
    }

    fn body(&self, events: &[&[u8]]) -> Vec<u8> {
        super::delivery::join_json(b"[", events, b"]")
    }

    fn gzip(&self) -> bool {
        true
    }

    fn request(&self, client: &reqwest::Client, body: Vec<u8>) -> reqwest::RequestBuilder {
        let request = client.post(&self.url).header(http::header::CONTENT_TYPE, "application/json").body(body);
        match (&self.settings.token, &self.settings.service_account_username, &self.settings.service_account_secret) {
            (Some(token), _, _) if !token.is_empty() => request.basic_auth(token.expose(), Some("")),
            (_, Some(username), Some(secret)) => request.basic_auth(username, Some(secret.expose())),
            _ => request,
        }
    }

    fn classify(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> super::Classification {
        classify(status, headers, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_map_to_the_import_shape() {
        let event = sightline_model::event::parse_event(
            &json!({"event_id": "evt-1", "product_id": "shop", "session.id": "sess-1", "event.type": "page.view",
                "event.timestamp": "2026-11-24T10:00:00.123Z", "page.url": "https://shop/x", "page.referrer": "https://g",
                "page.path": "/x"}),
            1,
        )
        .expect("valid");
        let object = mixpanel_event(&event);
        assert_eq!(object["event"], "Page View");
        let properties = &object["properties"];
        assert_eq!(properties["time"], 1_795_514_400_123i64);
        assert_eq!(properties["distinct_id"], "sess-1", "no user: the session");
        assert_eq!(properties["$insert_id"], "evt-1");
        assert_eq!(properties["$current_url"], "https://shop/x");
        assert_eq!(properties["$referrer"], "https://g");
        assert_eq!(properties["page_path"], "/x");
        assert_eq!(properties["session_id"], "sess-1");
    }

    #[test]
    fn insert_ids_fit_mixpanel() {
        assert_eq!(insert_id("abc-123"), "abc-123");
        let hashed = insert_id("evt_with_underscores:and:colons-that-are-long-enough");
        assert_eq!(hashed.len(), 32);
        assert_eq!(hashed, insert_id("evt_with_underscores:and:colons-that-are-long-enough"), "stable");
    }

    #[test]
    fn url_has_strict_and_project_id() {
        let exporter = MixpanelExporter::new(MixpanelSettings {
            token: None,
            service_account_username: Some("sa".into()),
            service_account_secret: Some(super::super::Secret::new("s")),
            project_id: Some("123".into()),
            region: Region::Eu,
            endpoint: None,
        });
        assert_eq!(exporter.url, "https://api-eu.mixpanel.com/import?strict=1&project_id=123");
    }
}
