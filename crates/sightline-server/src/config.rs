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
            endpoint_rollups: true,
            rollup_coarsen_after: Duration::from_secs(24 * 3600),
            slow_query_threshold: Duration::from_millis(500),
            forward_otlp: None,
            forward_otlp_max_queue_bytes: 512 << 20,
            secure_cookies: false,
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
    fn slow_query_threshold_is_validated() {
        assert_eq!(Config::default().slow_query_threshold, Duration::from_millis(500));
        assert!(Config { slow_query_threshold: Duration::ZERO, ..Config::default() }.validate().is_err());
        assert!(Config { slow_query_threshold: Duration::from_secs(7200), ..Config::default() }.validate().is_err());
    }
}
