//! Webhook destination: JSON batches `{"events": [ProductEvent, ...]}` POSTed to a URL and
//! signed with HMAC-SHA256 of the body (before compression) in
//! `X-Sightline-Signature: sha256=<lowercase hex>`, the scheme GitHub uses for its webhooks.
//! Receivers verify the signature with the shared secret and deduplicate by `event_id` (a
//! batch may be delivered again after a crash or a lost response).
//!
//! Responses: 2xx delivered; 408, 429 and 5xx retried (`Retry-After` honoured); 413 split;
//! other statuses permanent.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use sightline_model::ProductEvent;

use super::config::WebhookSettings;
use super::delivery::{Exporter, Limits};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "x-sightline-signature";

/// Webhook limits: 2000 events, 5 MiB per request (ours; receivers are often small services).
pub const LIMITS: Limits = Limits { max_events: 2000, max_bytes: 5 * 1024 * 1024 };

/// `sha256=<hex>` HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &[u8], body: &[u8]) -> String {
    // HMAC takes keys of any length (RFC 2104), so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret) {
        Ok(mac) => mac,
        Err(_) => return String::new(),
    };
    mac.update(body);
    format!("sha256={}", const_hex::encode(mac.finalize().into_bytes()))
}

/// The webhook exporter.
#[derive(Debug)]
pub struct WebhookExporter {
    settings: WebhookSettings,
}

impl WebhookExporter {
    /// An exporter for these settings.
    pub fn new(settings: WebhookSettings) -> Self {
        Self { settings }
    }
}

impl Exporter for WebhookExporter {
    fn limits(&self) -> Limits {
        LIMITS
    }

    fn overhead_bytes(&self) -> usize {
        13
    }

    fn encode_event(&self, event: &ProductEvent, _session_start_unix_ms: Option<i64>) -> Result<Vec<u8>, String> {
        serde_json::to_vec(event).map_err(|error| error.to_string())
    }

    fn body(&self, events: &[&[u8]]) -> Vec<u8> {
        super::delivery::join_json(b"{\"events\":[", events, b"]}")
    }

    fn gzip(&self) -> bool {
        self.settings.gzip
    }

    fn sign(&self, body: &[u8]) -> Option<(&'static str, String)> {
        Some((SIGNATURE_HEADER, signature(self.settings.secret.expose().as_bytes(), body)))
    }

    fn request(&self, client: &reqwest::Client, body: Vec<u8>) -> reqwest::RequestBuilder {
        client.post(&self.settings.url).header(http::header::CONTENT_TYPE, "application/json").body(body)
    }

    fn classify(&self, status: u16, headers: &http::HeaderMap, body: &[u8]) -> super::Classification {
        super::classify::classify_generic(status, headers, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_rfc_4231_test_case_2() {
        // RFC 4231 §4.3: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            signature(b"Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
