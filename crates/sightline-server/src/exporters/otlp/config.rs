//! Configuration of an OTLP destination, following the OpenTelemetry exporter settings
//! (`OTEL_EXPORTER_OTLP_ENDPOINT`, `_PROTOCOL`, `_HEADERS`, `_COMPRESSION`, `_TIMEOUT`; spec
//! "OpenTelemetry Protocol Exporter", `specification/protocol/exporter.md`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::exporters::Secret;

/// Transport to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    /// OTLP/gRPC (`grpc`), usually port 4317. Plain-text HTTP/2 (`http://` endpoints).
    #[serde(rename = "grpc")]
    Grpc,
    /// OTLP/HTTP with binary protobuf bodies (`http/protobuf`), usually port 4318.
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

/// Request body compression. The OTLP spec names only gzip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OtlpCompression {
    /// No compression.
    None,
    /// gzip (the exporter default here: telemetry compresses 5–10×).
    #[default]
    Gzip,
}

/// Which signals go to the destination.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct OtlpSignals {
    /// Forward traces.
    pub traces: bool,
    /// Forward metrics.
    pub metrics: bool,
    /// Forward logs.
    pub logs: bool,
}

impl Default for OtlpSignals {
    fn default() -> Self {
        Self { traces: true, metrics: true, logs: true }
    }
}

/// Where and how to forward. Deserializes from the JSON/TOML destination settings:
/// `{"endpoint": "http://collector:4318", "protocol": "http/protobuf", "headers":
/// {"authorization": "Bearer ..."}, "compression": "gzip", "timeout_ms": 10000,
/// "signals": {"traces": true, "metrics": true, "logs": false}}`.
#[derive(Debug, Clone, Deserialize)]
pub struct OtlpDestinationConfig {
    /// Base URL (`http://host:port`, optionally with a path prefix). For OTLP/HTTP the signal
    /// path `v1/traces`, `v1/metrics` or `v1/logs` is appended, as the spec says for
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`; for gRPC the service paths are fixed by the protocol.
    pub endpoint: String,
    /// Transport.
    pub protocol: OtlpProtocol,
    /// Extra request headers (gRPC: metadata), e.g. credentials. Names are case-insensitive.
    #[serde(default)]
    pub headers: BTreeMap<String, Secret>,
    /// Body compression (default gzip).
    #[serde(default)]
    pub compression: OtlpCompression,
    /// Time allowed for one export request, in ms (spec default 10 s).
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Which signals are forwarded (default all).
    #[serde(default)]
    pub signals: OtlpSignals,
}

fn default_timeout_ms() -> u64 {
    10_000
}

/// Why a configuration was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OtlpConfigError {
    /// The endpoint is not an absolute `http://` or `https://` URL.
    #[error("endpoint {0:?} must be an absolute http:// or https:// URL, e.g. http://collector:4318")]
    BadEndpoint(String),
    /// gRPC over TLS is not built in.
    #[error(
        "endpoint {0:?}: OTLP/gRPC is forwarded over plain-text HTTP/2 only; use an http:// endpoint or protocol http/protobuf for TLS"
    )]
    GrpcTls(String),
    /// A header name or value HTTP cannot carry.
    #[error("header {0:?} is not a valid HTTP header name and value")]
    BadHeader(String),
    /// A zero or absurd timeout.
    #[error("timeout_ms must be between 1 and 600000, got {0}")]
    BadTimeout(u64),
}

impl OtlpDestinationConfig {
    /// A configuration with defaults for `endpoint` and `protocol`.
    pub fn new(endpoint: impl Into<String>, protocol: OtlpProtocol) -> Self {
        Self {
            endpoint: endpoint.into(),
            protocol,
            headers: BTreeMap::new(),
            compression: OtlpCompression::default(),
            timeout_ms: default_timeout_ms(),
            signals: OtlpSignals::default(),
        }
    }

    /// Checks the settings. Errors name the field and what would be accepted.
    pub fn validate(&self) -> Result<(), OtlpConfigError> {
        let endpoint = self.endpoint.trim();
        let parsed: http::Uri = endpoint.parse().map_err(|_| OtlpConfigError::BadEndpoint(self.endpoint.clone()))?;
        let scheme_ok = matches!(parsed.scheme_str(), Some("http" | "https"));
        if !scheme_ok || parsed.host().is_none() {
            return Err(OtlpConfigError::BadEndpoint(self.endpoint.clone()));
        }
        if self.protocol == OtlpProtocol::Grpc && parsed.scheme_str() == Some("https") {
            return Err(OtlpConfigError::GrpcTls(self.endpoint.clone()));
        }
        for (name, value) in &self.headers {
            let name_ok = http::HeaderName::from_bytes(name.as_bytes()).is_ok();
            let value_ok = http::HeaderValue::from_str(value.expose()).is_ok();
            if !name_ok || !value_ok {
                return Err(OtlpConfigError::BadHeader(name.clone()));
            }
        }
        if self.timeout_ms == 0 || self.timeout_ms > 600_000 {
            return Err(OtlpConfigError::BadTimeout(self.timeout_ms));
        }
        Ok(())
    }

    /// Parses headers in the `OTEL_EXPORTER_OTLP_HEADERS` format: comma-separated `key=value`
    /// pairs, values percent-decoded (OTel spec, "Specifying headers via environment
    /// variables", which follows the W3C Baggage format). Errors name the bad pair's key
    /// (never its value: it may be a credential).
    pub fn parse_headers(text: &str) -> Result<BTreeMap<String, Secret>, OtlpConfigError> {
        let mut headers = BTreeMap::new();
        for (index, pair) in text.split(',').map(str::trim).filter(|pair| !pair.is_empty()).enumerate() {
            let Some((name, value)) = pair.split_once('=') else {
                // The pair may be a pasted credential: name its position, not its text.
                return Err(OtlpConfigError::BadHeader(format!("number {} (no '=')", index + 1)));
            };
            let name = name.trim();
            let value = percent_encoding::percent_decode_str(value.trim())
                .decode_utf8()
                .map_err(|_| OtlpConfigError::BadHeader(name.to_owned()))?;
            if name.is_empty() {
                return Err(OtlpConfigError::BadHeader(String::new()));
            }
            headers.insert(name.to_owned(), Secret::new(value.into_owned()));
        }
        Ok(headers)
    }

    /// The request timeout.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The settings as shown by the API: everything but header values (`"set"` instead).
    pub fn redacted(&self) -> serde_json::Value {
        let headers: serde_json::Map<String, serde_json::Value> =
            self.headers.keys().map(|name| (name.clone(), serde_json::Value::from("set"))).collect();
        serde_json::json!({
            "endpoint": self.endpoint,
            "protocol": self.protocol,
            "headers": headers,
            "compression": self.compression,
            "timeout_ms": self.timeout_ms,
            "signals": self.signals,
        })
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_redacted_views_never_show_header_values() {
        let mut config = OtlpDestinationConfig::new("http://collector:4318", OtlpProtocol::HttpProtobuf);
        config.headers.insert("authorization".into(), Secret::new("Bearer very-secret-token"));
        assert!(!format!("{config:?}").contains("very-secret-token"));
        let shown = config.redacted().to_string();
        assert!(!shown.contains("very-secret-token"), "{shown}");
        assert!(shown.contains("\"authorization\":\"set\""), "{shown}");
    }

    #[test]
    fn deserializes_the_documented_json_shape() {
        let config: OtlpDestinationConfig = serde_json::from_value(serde_json::json!({
            "endpoint": "http://127.0.0.1:4317",
            "protocol": "grpc",
            "headers": {"x-api-key": "k"},
            "signals": {"logs": false}
        }))
        .unwrap();
        assert_eq!(config.protocol, OtlpProtocol::Grpc);
        assert_eq!(config.compression, OtlpCompression::Gzip);
        assert_eq!(config.timeout_ms, 10_000);
        assert_eq!(config.signals, OtlpSignals { traces: true, metrics: true, logs: false });
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn headers_parse_like_otel_exporter_otlp_headers() {
        let headers =
            OtlpDestinationConfig::parse_headers("api-key=abc, Authorization=Bearer%20tok%3D%3D ,,x-empty=").unwrap();
        let shown: Vec<(&str, &str)> = headers.iter().map(|(name, value)| (name.as_str(), value.expose())).collect();
        assert_eq!(shown, vec![("Authorization", "Bearer tok=="), ("api-key", "abc"), ("x-empty", "")]);
        assert_eq!(OtlpDestinationConfig::parse_headers("").unwrap().len(), 0);
        let error = OtlpDestinationConfig::parse_headers("a=b,sk-secret-token").unwrap_err();
        assert_eq!(error, OtlpConfigError::BadHeader("number 2 (no '=')".into()));
        assert!(OtlpDestinationConfig::parse_headers("=secret").is_err());
    }

    #[test]
    fn validation_names_what_is_wrong() {
        let check = |endpoint: &str, protocol| OtlpDestinationConfig::new(endpoint, protocol).validate();
        assert!(matches!(check("collector:4318", OtlpProtocol::HttpProtobuf), Err(OtlpConfigError::BadEndpoint(_))));
        assert!(matches!(check("ftp://collector", OtlpProtocol::HttpProtobuf), Err(OtlpConfigError::BadEndpoint(_))));
        assert!(matches!(check("https://collector:4317", OtlpProtocol::Grpc), Err(OtlpConfigError::GrpcTls(_))));
        assert_eq!(check("https://collector:4318/otlp", OtlpProtocol::HttpProtobuf), Ok(()));
        let mut config = OtlpDestinationConfig::new("http://c:4318", OtlpProtocol::HttpProtobuf);
        config.headers.insert("bad header".into(), Secret::new("x"));
        assert_eq!(config.validate(), Err(OtlpConfigError::BadHeader("bad header".into())));
        config.headers.clear();
        config.timeout_ms = 0;
        assert_eq!(config.validate(), Err(OtlpConfigError::BadTimeout(0)));
    }
}
