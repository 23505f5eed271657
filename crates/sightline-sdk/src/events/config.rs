//! Event client configuration: in code or from the environment.
//!
//! Environment names: `SIGHTLINE_ENDPOINT`, `SIGHTLINE_API_KEY`, `SIGHTLINE_PRODUCT_ID`, and
//! the ProductGraph clients' `PRODUCTGRAPH_ENDPOINT`, `PRODUCTGRAPH_API_KEY`,
//! `PRODUCTGRAPH_PRODUCT_ID` (or its older `PRODUCTGRAPH_PROJECT_ID`); the `SIGHTLINE_*` name
//! wins when both are set. Defaults follow the ProductGraph Go client (batch 50, 5 s, 10 s
//! timeout).

use std::time::Duration;

use crate::secret::ApiKey;

/// Events per request by default (ProductGraph Go client).
pub const DEFAULT_BATCH_SIZE: usize = 50;
/// Flush interval by default (ProductGraph Go client).
pub const DEFAULT_FLUSH_INTERVAL: Duration = Duration::from_secs(5);
/// Queue capacity by default, events. A full queue drops (and counts) new events.
pub const DEFAULT_QUEUE_CAPACITY: usize = 10_000;
/// Attempts per batch by default (first try plus two retries).
pub const DEFAULT_MAX_ATTEMPTS: u32 = 3;
/// Per-request timeout by default (ProductGraph Go client).
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Largest batch the receiver accepts (ProductGraph `maxBatch`).
pub const MAX_BATCH_SIZE: usize = 1000;

/// A configuration that cannot work.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// No endpoint in code or environment.
    #[error("no event endpoint: set SIGHTLINE_ENDPOINT (or PRODUCTGRAPH_ENDPOINT), e.g. http://localhost:4318")]
    MissingEndpoint,
    /// The endpoint is not an http(s) URL.
    #[error("event endpoint {0:?} is not an http:// or https:// URL")]
    InvalidEndpoint(String),
    /// The worker thread or its runtime could not be started.
    #[error("cannot start the event worker: {0}")]
    Worker(String),
    /// A number out of range.
    #[error("{field} must be {expected}, got {value}")]
    OutOfRange {
        /// The setting.
        field: &'static str,
        /// What is allowed.
        expected: &'static str,
        /// What was given.
        value: String,
    },
}

/// How the event client batches and delivers.
#[derive(Debug, Clone)]
pub struct EventClientConfig {
    /// Base URL of Sightline (or any ProductGraph-compatible server), e.g.
    /// `http://localhost:4318`; `/v1/events` is appended unless the URL already ends with it.
    pub endpoint: String,
    /// Ingest key, sent as `X-API-Key`.
    pub api_key: Option<ApiKey>,
    /// `product_id` put on every event (ProductGraph requires one; Sightline files the event
    /// under the key's project whatever it says).
    pub product_id: String,
    /// Events per request, 1..=1000.
    pub batch_size: usize,
    /// Longest time an event waits in a partial batch.
    pub flush_interval: Duration,
    /// Bounded queue size, events.
    pub queue_capacity: usize,
    /// Attempts per batch, ≥ 1.
    pub max_attempts: u32,
    /// Timeout of one request.
    pub request_timeout: Duration,
    /// First retry delay before jitter; doubles per attempt.
    pub initial_backoff: Duration,
    /// Longest delay between attempts (a longer `Retry-After` is capped to it).
    pub max_backoff: Duration,
    /// Compress bodies with gzip.
    pub gzip: bool,
}

impl EventClientConfig {
    /// Defaults for `endpoint`.
    pub fn new(endpoint: impl Into<String>) -> Self {
        EventClientConfig {
            endpoint: endpoint.into(),
            api_key: None,
            product_id: "default".into(),
            batch_size: DEFAULT_BATCH_SIZE,
            flush_interval: DEFAULT_FLUSH_INTERVAL,
            queue_capacity: DEFAULT_QUEUE_CAPACITY,
            max_attempts: DEFAULT_MAX_ATTEMPTS,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            initial_backoff: Duration::from_millis(200),
            max_backoff: Duration::from_secs(10),
            gzip: true,
        }
    }

    /// Sets the API key.
    pub fn with_api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey::new(api_key));
        self
    }

    /// Reads the environment (see the module docs).
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// [`Self::from_env`] over any lookup (tests pass a map).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let first =
            |names: &[&str]| names.iter().find_map(|name| lookup(name).filter(|value| !value.trim().is_empty()));
        let endpoint = first(&["SIGHTLINE_ENDPOINT", "PRODUCTGRAPH_ENDPOINT"]).ok_or(ConfigError::MissingEndpoint)?;
        let mut config = EventClientConfig::new(endpoint.trim());
        config.api_key = first(&["SIGHTLINE_API_KEY", "PRODUCTGRAPH_API_KEY"]).map(ApiKey::new);
        if let Some(product_id) = first(&["SIGHTLINE_PRODUCT_ID", "PRODUCTGRAPH_PRODUCT_ID", "PRODUCTGRAPH_PROJECT_ID"])
        {
            config.product_id = product_id;
        }
        config.validate()?;
        Ok(config)
    }

    /// Checks every field; the client refuses to start otherwise.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.endpoint.is_empty() {
            return Err(ConfigError::MissingEndpoint);
        }
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://"))
            || reqwest::Url::parse(&self.endpoint).is_err()
        {
            return Err(ConfigError::InvalidEndpoint(self.endpoint.clone()));
        }
        let out_of_range = |field, expected, value: String| Err(ConfigError::OutOfRange { field, expected, value });
        if self.batch_size == 0 || self.batch_size > MAX_BATCH_SIZE {
            return out_of_range("batch_size", "1..=1000", self.batch_size.to_string());
        }
        if self.queue_capacity == 0 {
            return out_of_range("queue_capacity", "at least 1", "0".into());
        }
        if self.max_attempts == 0 {
            return out_of_range("max_attempts", "at least 1", "0".into());
        }
        if self.flush_interval.is_zero() {
            return out_of_range("flush_interval", "more than 0", "0s".into());
        }
        Ok(())
    }

    /// The `/v1/events` URL.
    pub fn events_url(&self) -> String {
        let base = self.endpoint.trim_end_matches('/');
        if base.ends_with("/v1/events") { base.to_owned() } else { format!("{base}/v1/events") }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> Result<EventClientConfig, ConfigError> {
        let map: HashMap<String, String> = pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
        EventClientConfig::from_lookup(|name| map.get(name).cloned())
    }

    #[test]
    fn sightline_names_win_and_productgraph_names_work_alone() {
        let config = from(&[
            ("SIGHTLINE_ENDPOINT", "http://127.0.0.1:4318/"),
            ("PRODUCTGRAPH_ENDPOINT", "http://other:8080"),
            ("PRODUCTGRAPH_API_KEY", "pg-key"),
            ("PRODUCTGRAPH_PROJECT_ID", "shop"),
        ])
        .expect("valid");
        assert_eq!(config.events_url(), "http://127.0.0.1:4318/v1/events");
        assert_eq!(config.api_key.as_ref().map(ApiKey::expose), Some("pg-key"));
        assert_eq!(config.product_id, "shop");
        let productgraph = from(&[("PRODUCTGRAPH_ENDPOINT", "http://pg:8080/v1/events")]).expect("valid");
        assert_eq!(productgraph.events_url(), "http://pg:8080/v1/events");
        assert_eq!(productgraph.batch_size, 50);
        assert_eq!(productgraph.flush_interval, Duration::from_secs(5));
    }

    #[test]
    fn bad_settings_are_refused_with_a_reason() {
        assert_eq!(from(&[]).expect_err("no endpoint"), ConfigError::MissingEndpoint);
        assert!(matches!(from(&[("SIGHTLINE_ENDPOINT", "localhost:4318")]), Err(ConfigError::InvalidEndpoint(_))));
        let mut config = EventClientConfig::new("http://localhost:4318");
        config.batch_size = 1001;
        assert!(config.validate().expect_err("too large").to_string().contains("batch_size must be 1..=1000"));
    }
}
