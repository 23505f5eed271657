//! Server configuration: one typed struct with documented defaults, validated at start.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

/// Everything `sightline serve` can be told. The binary fills it from flags and `SIGHTLINE_*`
/// environment variables; [`Config::validate`] runs before anything starts.
#[derive(Debug, Clone)]
pub struct Config {
    /// Directory holding `sightline.db` (created if missing). Default `./sightline-data`.
    pub data_dir: PathBuf,
    /// OTLP/gRPC listen address. Default `0.0.0.0:4317`.
    pub grpc_addr: SocketAddr,
    /// HTTP listen address (OTLP/HTTP, REST API, health). Default `0.0.0.0:4318`.
    pub http_addr: SocketAddr,
    /// Largest request accepted, in bytes, after decompression (OTLP Collector default: 20 MiB).
    /// Larger requests get 413 (HTTP) or RESOURCE_EXHAUSTED without RetryInfo (gRPC).
    pub max_body_bytes: usize,
    /// Items (spans, log records, data points) waiting for commit before new requests are
    /// refused with 429 / RESOURCE_EXHAUSTED and a retry delay. Default 200,000.
    pub max_queued_items: usize,
    /// Most items one transaction commits (group commit). Default 50,000.
    pub max_items_per_commit: usize,
    /// How often the retention job runs. Default 60 s.
    pub retention_interval: Duration,
    /// Rows the retention job deletes per transaction, so ingest never waits long. Default 5,000.
    pub retention_chunk_rows: usize,
    /// Delay clients are told to wait when the queue is full (`Retry-After`). Default 1 s.
    pub retry_after: Duration,
    /// Live log tail (Server-Sent Events) connections open at once, dashboard and API together;
    /// beyond, tail requests get 503 with `Retry-After`. Default 64.
    pub max_tail_connections: usize,
    /// Derive endpoint RED rollups (requests, errors, status codes, duration sketches) from
    /// SERVER spans, and database query rollups from database spans, at ingest. Default on;
    /// off only to measure ingest without them.
    pub endpoint_rollups: bool,
    /// Age after which 1-minute endpoint rollups are merged into 1-hour rows by the retention
    /// job. Default 24 h: every range up to a day keeps minute resolution, and a 7-day
    /// performance page (hourly series) reads about 1,440 + 144 rows per endpoint instead of
    /// 10,080. At least 2 h (the current hour is never coarsened), at most 90 days.
    pub rollup_coarsen_after: Duration,
    /// A database query is flagged slow on `GET …/databases/queries` when its p95 or its
    /// slowest call exceeds this. Default 500 ms (a common APM default for slow SQL); between
    /// 1 ms and 1 hour.
    pub slow_query_threshold: Duration,
    /// Forward every accepted OTLP export request (traces, metrics, logs as received, before
    /// sampling) to this OTLP endpoint: a Collector, Jaeger, another Sightline. Durable: the
    /// request is queued in the transaction that stores it and delivered at least once, in
    /// order, with retries. Default none.
    pub forward_otlp: Option<crate::exporters::otlp::OtlpDestinationConfig>,
    /// Most bytes of export requests waiting for the forwarding destination; beyond it new
    /// requests are still stored but not forwarded (`sightline_otlp_forward_items_total{outcome="dropped"}`).
    /// Default 512 MiB, at least 1 MiB.
    pub forward_otlp_max_queue_bytes: u64,
    /// Mark the dashboard's session cookie `Secure` (sent over HTTPS only). Default off, since
    /// the listener speaks plain HTTP; turn it on when a TLS-terminating proxy fronts Sightline.
    pub secure_cookies: bool,
    /// The server-wide destinations of the ProductGraph environment variables.
    pub forwarding: ProductGraphForwarding,
    /// First delay of the delivery backoff (doubling per attempt, jittered, capped at 60 s).
    /// Default 250 ms.
    pub delivery_retry_base: Duration,
    /// Destinations declared in the configuration file (`--config`), created or updated at start.
    pub file_destinations: Vec<crate::config_file::FileDestination>,
}

/// Forwarding as ProductGraph configures it (`ANALYTICS_ENABLED`, `AMPLITUDE_ENABLED`,
/// `AMPLITUDE_API_KEY`, `MIXPANEL_ENABLED`, `MIXPANEL_TOKEN`): server-wide destinations named
/// `amplitude` and `mixpanel` that take the product events of every project. A destination is
/// on when `analytics_enabled` and its own flag are both true; a run without them disables
/// (but keeps) the destination a previous run created.
#[derive(Debug, Clone, Default)]
pub struct ProductGraphForwarding {
    /// `ANALYTICS_ENABLED`: master switch. Default false.
    pub analytics_enabled: bool,
    /// `AMPLITUDE_ENABLED`. Default false.
    pub amplitude_enabled: bool,
    /// `AMPLITUDE_API_KEY` (required when Amplitude is enabled).
    pub amplitude_api_key: Option<crate::exporters::Secret>,
    /// `SIGHTLINE_AMPLITUDE_ENDPOINT`: a URL replacing `https://api2.amplitude.com/2/httpapi`
    /// (e.g. `https://api.eu.amplitude.com/2/httpapi` for the EU data centre).
    pub amplitude_endpoint: Option<String>,
    /// `MIXPANEL_ENABLED`. Default false.
    pub mixpanel_enabled: bool,
    /// `MIXPANEL_TOKEN` (required when Mixpanel is enabled).
    pub mixpanel_token: Option<crate::exporters::Secret>,
    /// `SIGHTLINE_MIXPANEL_ENDPOINT`: a URL replacing `https://api.mixpanel.com/import`.
    pub mixpanel_endpoint: Option<String>,
}

/// A server-wide destination the variables describe: (name, enabled, settings — `None` when
/// the vendor has no key at all).
pub type ServerDestination = (&'static str, bool, Option<crate::exporters::DestinationConfig>);

impl ProductGraphForwarding {
    /// The server-wide destinations these variables describe: (name, enabled, settings);
    /// `None` settings when the vendor is not configured at all. Errors when a vendor is
    /// enabled without its key.
    pub fn destinations(&self) -> Result<Vec<ServerDestination>, ConfigError> {
        use crate::exporters::config::{AmplitudeSettings, MixpanelSettings};
        use crate::exporters::{DestinationConfig, DestinationSettings};
        let present = |secret: &Option<crate::exporters::Secret>| secret.clone().filter(|secret| !secret.is_empty());
        let amplitude_on = self.analytics_enabled && self.amplitude_enabled;
        let mixpanel_on = self.analytics_enabled && self.mixpanel_enabled;
        if amplitude_on && present(&self.amplitude_api_key).is_none() {
            return Err(ConfigError("AMPLITUDE_ENABLED needs AMPLITUDE_API_KEY".into()));
        }
        if mixpanel_on && present(&self.mixpanel_token).is_none() {
            return Err(ConfigError("MIXPANEL_ENABLED needs MIXPANEL_TOKEN".into()));
        }
        let config = |settings| DestinationConfig { settings, routing: Default::default(), batch: Default::default() };
        let amplitude = present(&self.amplitude_api_key).map(|api_key| {
            config(DestinationSettings::Amplitude(AmplitudeSettings {
                api_key,
                region: Default::default(),
                api: Default::default(),
                endpoint: self.amplitude_endpoint.clone(),
            }))
        });
        let mixpanel = present(&self.mixpanel_token).map(|token| {
            config(DestinationSettings::Mixpanel(MixpanelSettings {
                token: Some(token),
                service_account_username: None,
                service_account_secret: None,
                project_id: None,
                region: Default::default(),
                endpoint: self.mixpanel_endpoint.clone(),
            }))
        });
        let destinations = vec![("amplitude", amplitude_on, amplitude), ("mixpanel", mixpanel_on, mixpanel)];
        for (name, _, config) in &destinations {
            if let Some(config) = config {
                config.validate().map_err(|message| ConfigError(format!("{name}: {message}")))?;
            }
        }
        Ok(destinations)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("./sightline-data"),
            grpc_addr: SocketAddr::from(([0, 0, 0, 0], 4317)),
            http_addr: SocketAddr::from(([0, 0, 0, 0], 4318)),
            max_body_bytes: 20 * 1024 * 1024,
            max_queued_items: 200_000,
            max_items_per_commit: 50_000,
            retention_interval: Duration::from_secs(60),
            retention_chunk_rows: 5_000,
            retry_after: Duration::from_secs(1),
            max_tail_connections: 64,
            endpoint_rollups: true,
            rollup_coarsen_after: Duration::from_secs(24 * 3600),
            slow_query_threshold: Duration::from_millis(500),
            forward_otlp: None,
            forward_otlp_max_queue_bytes: 512 << 20,
            secure_cookies: false,
            forwarding: ProductGraphForwarding::default(),
            delivery_retry_base: Duration::from_millis(250),
            file_destinations: Vec::new(),
        }
    }
}

/// A configuration value that cannot work.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);

impl Config {
    /// Checks limits are usable. Errors name the setting and what to do.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.max_body_bytes < 1024 {
            return Err(ConfigError("max body bytes must be at least 1024".into()));
        }
        if self.max_queued_items == 0 || self.max_items_per_commit == 0 {
            return Err(ConfigError("queue and commit sizes must be positive".into()));
        }
        if self.max_tail_connections == 0 {
            return Err(ConfigError("max tail connections must be at least 1".into()));
        }
        if self.retention_chunk_rows == 0 {
            return Err(ConfigError("retention chunk rows must be positive".into()));
        }
        let coarsen_range = Duration::from_secs(2 * 3600)..=Duration::from_secs(90 * 86_400);
        if !coarsen_range.contains(&self.rollup_coarsen_after) {
            return Err(ConfigError(format!(
                "rollup coarsen age {:?} must be between 2 hours and 90 days",
                self.rollup_coarsen_after
            )));
        }
        let slow_query_range = Duration::from_millis(1)..=Duration::from_secs(3600);
        if !slow_query_range.contains(&self.slow_query_threshold) {
            return Err(ConfigError(format!(
                "slow query threshold {:?} must be between 1 ms and 1 hour",
                self.slow_query_threshold
            )));
        }
        if let Some(destination) = &self.forward_otlp {
            destination.validate().map_err(|error| ConfigError(format!("OTLP forwarding: {error}")))?;
        }
        if self.forward_otlp_max_queue_bytes < 1 << 20 {
            return Err(ConfigError("OTLP forwarding queue must hold at least 1 MiB".into()));
        }
        self.forwarding.destinations()?;
        Ok(())
    }

    /// Path of the SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_dir.join("sightline.db")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollup_coarsening_age_is_validated() {
        assert!(Config::default().validate().is_ok());
        let too_soon = Config { rollup_coarsen_after: Duration::from_secs(600), ..Config::default() };
        assert!(too_soon.validate().is_err());
        let too_late = Config { rollup_coarsen_after: Duration::from_secs(91 * 86_400), ..Config::default() };
        assert!(too_late.validate().is_err());
    }

    #[test]
    fn productgraph_variables_need_their_keys_and_never_show_them() {
        let mut forwarding =
            ProductGraphForwarding { analytics_enabled: true, amplitude_enabled: true, ..Default::default() };
        assert!(Config { forwarding: forwarding.clone(), ..Config::default() }.validate().is_err());
        forwarding.amplitude_api_key = Some(crate::exporters::Secret::new("amp-key-secret"));
        let config = Config { forwarding, ..Config::default() };
        config.validate().expect("valid");
        assert!(!format!("{config:?}").contains("amp-key-secret"), "Debug of the config redacts keys");
        let destinations = config.forwarding.destinations().expect("destinations");
        assert_eq!(destinations[0].0, "amplitude");
        assert!(destinations[0].1, "analytics and amplitude enabled");
        assert!(!destinations[1].1 && destinations[1].2.is_none(), "mixpanel not configured");
    }

    #[test]
    fn slow_query_threshold_is_validated() {
        assert_eq!(Config::default().slow_query_threshold, Duration::from_millis(500));
        assert!(Config { slow_query_threshold: Duration::ZERO, ..Config::default() }.validate().is_err());
        assert!(Config { slow_query_threshold: Duration::from_secs(7200), ..Config::default() }.validate().is_err());
    }
}
