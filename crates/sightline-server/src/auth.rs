//! API keys: generation, hashing, scopes, and extraction from HTTP headers / gRPC metadata.
//!
//! Keys look like `sl_<scope>_<32 random base62 chars>` (≈190 bits). Only their SHA-256 is
//! stored; the plain key is shown once when created. Clients send it as `X-API-Key: <key>` or
//! `Authorization: Bearer <key>` (what `OTEL_EXPORTER_OTLP_HEADERS` carries).

use std::fmt;

use rand::Rng;
use rand::distr::Alphanumeric;
use sha2::{Digest, Sha256};

/// What a key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyScope {
    /// Send telemetry only (safe to embed in clients).
    Ingest,
    /// Read through the query API only.
    Read,
    /// Both.
    All,
}

impl KeyScope {
    /// Stored / printed name: `ingest`, `read`, `all`.
    pub fn as_str(&self) -> &'static str {
        match self {
            KeyScope::Ingest => "ingest",
            KeyScope::Read => "read",
            KeyScope::All => "all",
        }
    }

    /// Parses a stored / user-given name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "ingest" => Some(KeyScope::Ingest),
            "read" => Some(KeyScope::Read),
            "all" => Some(KeyScope::All),
            _ => None,
        }
    }

    /// True when the key may send telemetry.
    pub fn can_ingest(&self) -> bool {
        matches!(self, KeyScope::Ingest | KeyScope::All)
    }

    /// True when the key may read through the API.
    pub fn can_read(&self) -> bool {
        matches!(self, KeyScope::Read | KeyScope::All)
    }
}

/// A plain API key. Its `Debug` and `Display` print only the prefix, so it never lands in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKeySecret(String);

impl ApiKeySecret {
    /// Generates a new random key for `scope`.
    pub fn generate(scope: KeyScope) -> Self {
        let random: String = rand::rng().sample_iter(&Alphanumeric).take(32).map(char::from).collect();
        Self(format!("sl_{}_{random}", scope.as_str()))
    }

    /// Wraps a key received from a client.
    pub fn new(text: impl Into<String>) -> Self {
        Self(text.into())
    }

    /// The key itself, to show the user once.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// SHA-256 of the key: what the store keeps and looks up.
    pub fn hash(&self) -> [u8; 32] {
        Sha256::digest(self.0.as_bytes()).into()
    }

    /// First characters, safe to display to identify the key (`sl_ingest_AbC…`).
    pub fn prefix(&self) -> String {
        self.0.chars().take(14).collect()
    }
}

impl fmt::Debug for ApiKeySecret {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "ApiKeySecret({}…)", self.prefix())
    }
}

/// Reads the key from `X-API-Key` or `Authorization: Bearer` (header names are
/// case-insensitive; gRPC metadata uses the lowercase forms).
pub fn key_from_headers(headers: &http::HeaderMap) -> Option<ApiKeySecret> {
    if let Some(value) = headers.get("x-api-key").and_then(|value| value.to_str().ok()) {
        let trimmed = value.trim();
        if !trimmed.is_empty() {
            return Some(ApiKeySecret::new(trimmed));
        }
    }
    let authorization = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = authorization.trim().split_once(' ')?;
    if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() {
        return Some(ApiKeySecret::new(token.trim()));
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_never_prints_the_key() {
        let key = ApiKeySecret::generate(KeyScope::Ingest);
        let printed = format!("{key:?}");
        assert!(!printed.contains(key.expose()), "{printed}");
        assert!(printed.starts_with("ApiKeySecret(sl_ingest_"));
    }

    #[test]
    fn reads_bearer_and_x_api_key() {
        let mut headers = http::HeaderMap::new();
        headers.insert("authorization", "bearer abc".parse().unwrap());
        assert_eq!(key_from_headers(&headers), Some(ApiKeySecret::new("abc")));
        headers.insert("x-api-key", "xyz".parse().unwrap());
        assert_eq!(key_from_headers(&headers), Some(ApiKeySecret::new("xyz")));
        headers.clear();
        headers.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(key_from_headers(&headers), None);
    }
}
