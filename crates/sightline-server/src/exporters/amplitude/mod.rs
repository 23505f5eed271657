//! Amplitude HTTP V2 (`POST /2/httpapi`) and Batch API (`POST /batch`) destination.
//!
//! Request (developers.amplitude.com "HTTP V2 API"): `{"api_key", "events": [{"event_type",
//! "user_id" | "device_id" (≥ 5 characters), "time" (ms), "insert_id", "session_id" (session
//! start in ms, -1 out of session), "event_properties", "user_properties"}]}`; < 1 MB and
//! ≤ 2000 events per request on HTTP V2, 20 MB on the Batch API. `insert_id` repeats within 7
//! days are ignored by Amplitude, which makes our at-least-once delivery effectively once.
//!
//! Mapping: `event_type` from [`super::event_display_name`]; `user_id` from `user.id` when ≥ 5
//! characters; `device_id` from a `device.id` property or `metadata.device_id`, else the
//! session id; `event_properties` are the properties with `.` → `_` (`page.path` →
//! `page_path`) plus `event_category` (the ProductGraph type), `product_id`, `org_id` and the
//! `metadata` object; `user_properties` from `metadata.user_properties` when it is an object.

mod response;

pub use response::classify;

use serde_json::{Map, Value, json};
use sightline_model::ProductEvent;

use super::config::{AmplitudeApi, AmplitudeSettings, Region};
use super::delivery::{Exporter, Limits};

/// Amplitude's minimum length of `user_id` and `device_id`.
pub const MIN_ID_LENGTH: usize = 5;

/// Request limits per API (HTTP V2: < 1 MB and ≤ 2000 events; Batch: 20 MB).
pub fn limits(api: AmplitudeApi) -> Limits {
    match api {
        AmplitudeApi::HttpV2 => Limits { max_events: 2000, max_bytes: 1_000_000 - 1 },
        AmplitudeApi::Batch => Limits { max_events: 2000, max_bytes: 20_000_000 - 1 },
    }
}

/// The Amplitude exporter.
#[derive(Debug)]
pub struct AmplitudeExporter {
    settings: AmplitudeSettings,
    url: String,
    /// `{"api_key":"...","events":[` — the body up to the first event.
    prefix: Vec<u8>,
}

impl AmplitudeExporter {
    /// An exporter for these settings.
    pub fn new(settings: AmplitudeSettings) -> Self {
        let url = settings.endpoint.clone().unwrap_or_else(|| {
            let host = match settings.region {
                Region::Us => "https://api2.amplitude.com",
                Region::Eu => "https://api.eu.amplitude.com",
            };
            let path = match settings.api {
                AmplitudeApi::HttpV2 => "/2/httpapi",
                AmplitudeApi::Batch => "/batch",
            };
            format!("{host}{path}")
        });
        let api_key = serde_json::to_string(settings.api_key.expose()).unwrap_or_else(|_| "\"\"".into());
        let prefix = format!("{{\"api_key\":{api_key},\"events\":[").into_bytes();
        Self { settings, url, prefix }
    }
}

fn text_property<'a>(event: &'a ProductEvent, names: &[&str]) -> Option<&'a str> {
    names
        .iter()
        .find_map(|name| event.properties.get(*name).or_else(|| event.metadata.get(*name)).and_then(Value::as_str))
}

/// The Amplitude event object for one event. Errors (the event can never be accepted) when
/// neither `user_id` nor `device_id` reaches Amplitude's 5 characters.
pub fn amplitude_event(event: &ProductEvent, session_start_unix_ms: Option<i64>) -> Result<Value, String> {
    let user_id = event.user_id.as_deref().filter(|id| id.chars().count() >= MIN_ID_LENGTH);
    let device_id = text_property(event, &["device.id", "device_id"])
        .filter(|id| id.chars().count() >= MIN_ID_LENGTH)
        .or_else(|| Some(event.session_id.as_str()).filter(|id| id.chars().count() >= MIN_ID_LENGTH));
    if user_id.is_none() && device_id.is_none() {
        return Err(format!(
            "user_id and device_id shorter than {MIN_ID_LENGTH} characters (Amplitude requires at least {MIN_ID_LENGTH})"
        ));
    }
    let mut properties = Map::with_capacity(event.properties.len() + 4);
    for (name, value) in &event.properties {
        properties.insert(super::flat_name(name), value.clone());
    }
    properties.insert("event_category".into(), Value::from(event.event_type.as_str()));
    properties.insert("product_id".into(), Value::from(event.product_id.as_str()));
    if let Some(org_id) = &event.org_id {
        properties.insert("org_id".into(), Value::from(org_id.as_str()));
    }
    let mut metadata = event.metadata.clone();
    let user_properties = metadata.remove("user_properties").filter(Value::is_object);
    if !metadata.is_empty() {
        properties.insert("metadata".into(), Value::Object(metadata));
    }
    let mut object = json!({
        "event_type": super::event_display_name(event),
        "time": (event.timestamp_unix_nano / 1_000_000) as i64,
        "insert_id": event.event_id,
        "session_id": session_start_unix_ms.unwrap_or(-1),
        "event_properties": properties,
    });
    if let Some(fields) = object.as_object_mut() {
        if let Some(user_id) = user_id {
            fields.insert("user_id".into(), Value::from(user_id));
        }
        if let Some(device_id) = device_id {
            fields.insert("device_id".into(), Value::from(device_id));
        }
        if let Some(user_properties) = user_properties {
            fields.insert("user_properties".into(), user_properties);
        }
    }
    Ok(object)
}

impl Exporter for AmplitudeExporter {
    fn limits(&self) -> Limits {
        limits(self.settings.api)
    }

    fn overhead_bytes(&self) -> usize {
        self.prefix.len() + 2
    }

    fn encode_event(&self, event: &ProductEvent, session_start_unix_ms: Option<i64>) -> Result<Vec<u8>, String> {
        let object = amplitude_event(event, session_start_unix_ms)?;
        serde_json::to_vec(&object).map_err(|error| error.to_string())
    }

    fn body(&self, events: &[&[u8]]) -> Vec<u8> {
        super::delivery::join_json(&self.prefix, events, b"]}")
    }

    fn gzip(&self) -> bool {
        // Amplitude documents no request compression for HTTP V2; send plain JSON.
        false
    }

    fn request(&self, client: &reqwest::Client, body: Vec<u8>) -> reqwest::RequestBuilder {
        client
            .post(&self.url)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(http::header::ACCEPT, "*/*")
            .body(body)
    }

    fn classify(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> super::Classification {
        classify(status, headers, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(extra: Value) -> ProductEvent {
        let mut object = json!({"event_id": "evt-1", "product_id": "shop", "session.id": "sess-lx3k2a-8f3kd92a",
            "user.id": "user-42", "event.type": "page.view", "event.timestamp": "2026-11-24T10:00:00.123Z",
            "page.path": "/checkout"});
        if let (Some(target), Value::Object(more)) = (object.as_object_mut(), extra) {
            target.extend(more);
        }
        sightline_model::event::parse_event(&object, 1).expect("valid")
    }

    #[test]
    fn events_map_to_the_http_v2_shape() {
        let object =
            amplitude_event(&event(json!({"metadata": {"user_properties": {"plan": "pro"}}})), Some(1_764_000))
                .expect("encodes");
        assert_eq!(object["event_type"], "Page View");
        assert_eq!(object["user_id"], "user-42");
        assert_eq!(object["device_id"], "sess-lx3k2a-8f3kd92a");
        assert_eq!(object["time"], 1_795_514_400_123i64);
        assert_eq!(object["insert_id"], "evt-1");
        assert_eq!(object["session_id"], 1_764_000);
        assert_eq!(object["event_properties"]["page_path"], "/checkout");
        assert_eq!(object["event_properties"]["event_category"], "page.view");
        assert_eq!(object["user_properties"]["plan"], "pro");
        let unknown_session = amplitude_event(&event(json!({})), None).expect("encodes");
        assert_eq!(unknown_session["session_id"], -1);
    }

    #[test]
    fn short_ids_are_left_out_or_refused() {
        let short_user = amplitude_event(&event(json!({"user.id": "u1"})), None).expect("device id suffices");
        assert!(short_user.get("user_id").is_none());
        let hopeless = amplitude_event(&event(json!({"user.id": "u1", "session.id": "s1"})), None);
        assert!(hopeless.expect_err("refused").contains("5 characters"));
    }

    #[test]
    fn body_is_the_documented_envelope() {
        let exporter = AmplitudeExporter::new(AmplitudeSettings {
            api_key: super::super::Secret::new("key-1"),
            region: Region::Eu,
            api: AmplitudeApi::HttpV2,
            endpoint: None,
        });
        assert_eq!(exporter.url, "https://api.eu.amplitude.com/2/httpapi");
        let one = exporter.encode_event(&event(json!({})), None).expect("encodes");
        let body: Value = serde_json::from_slice(&exporter.body(&[&one, &one])).expect("JSON");
        assert_eq!(body["api_key"], "key-1");
        assert_eq!(body["events"].as_array().map(Vec::len), Some(2));
    }
}
