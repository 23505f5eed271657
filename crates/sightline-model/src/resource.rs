//! Resources and instrumentation scopes, and the OTLP nesting resource → scope → items.

use std::hash::{DefaultHasher, Hash, Hasher};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::attributes::Attributes;
use crate::semconv;

/// An OTLP `Resource`: the entity producing telemetry (opentelemetry-proto `resource/v1`).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    /// Resource attributes, e.g. `service.name`.
    pub attributes: Attributes,
    /// `dropped_attributes_count` as sent.
    pub dropped_attributes_count: u32,
    /// The `schema_url` of the enclosing `Resource{Spans,Logs,Metrics}`.
    pub schema_url: String,
    /// `entity_refs` (development in OTLP) kept as JSON so nothing sent is lost.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub entity_refs: Value,
}

impl Resource {
    /// The `service.name` attribute, or `unknown_service` as the SDK specification prescribes
    /// when it is missing.
    pub fn service_name(&self) -> &str {
        self.attributes.get_str(semconv::SERVICE_NAME).unwrap_or(semconv::UNKNOWN_SERVICE)
    }

    /// A stable 64-bit fingerprint of the whole resource, used by stores to deduplicate rows.
    pub fn fingerprint(&self) -> i64 {
        fingerprint_of(&serde_json::to_string(self).unwrap_or_default())
    }
}

/// An OTLP `InstrumentationScope` with the `schema_url` of its `Scope{Spans,Logs,Metrics}`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    /// Scope name, e.g. the instrumentation library.
    pub name: String,
    /// Scope version.
    pub version: String,
    /// Scope attributes.
    pub attributes: Attributes,
    /// `dropped_attributes_count` as sent.
    pub dropped_attributes_count: u32,
    /// The `schema_url` of the enclosing `Scope{Spans,Logs,Metrics}`.
    pub schema_url: String,
}

impl Scope {
    /// A stable 64-bit fingerprint of the whole scope, used by stores to deduplicate rows.
    pub fn fingerprint(&self) -> i64 {
        fingerprint_of(&serde_json::to_string(self).unwrap_or_default())
    }
}

fn fingerprint_of(text: &str) -> i64 {
    // DefaultHasher with no keys (SipHash-1-3, fixed zero key) is stable within one build of the
    // standard library; stores only use the fingerprint as a cache key beside the full text, so a
    // change across Rust versions costs a duplicate row, never a wrong match.
    let mut hasher = DefaultHasher::new();
    text.hash(&mut hasher);
    hasher.finish() as i64
}

/// Items of one resource, grouped by scope (OTLP `Resource{Spans,Logs,Metrics}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceGroup<T> {
    /// The resource all items share.
    pub resource: Resource,
    /// The scopes and their items.
    pub scopes: Vec<ScopeGroup<T>>,
}

/// Items of one instrumentation scope (OTLP `Scope{Spans,Logs,Metrics}`).
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeGroup<T> {
    /// The instrumentation scope.
    pub scope: Scope,
    /// Spans, log records or metrics.
    pub items: Vec<T>,
}
