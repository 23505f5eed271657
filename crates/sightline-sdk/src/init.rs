//! One-call setup: traces, metrics and logs over OTLP/HTTP (protobuf) to a Sightline endpoint,
//! the product-event client, propagators, and a `tracing` subscriber with log correlation.
//!
//! [`init`] reads the environment and installs everything globally, returning a
//! [`SightlineGuard`] that flushes and shuts everything down when dropped. [`builder`] sets the
//! same things in code; [`SightlineBuilder::build`] returns the pieces without installing them
//! (two services in one test process, or a custom subscriber).
//!
//! Environment (OTel SDK names where they exist): `SIGHTLINE_ENDPOINT` (else
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, else `PRODUCTGRAPH_ENDPOINT`; base URL such as
//! `http://localhost:4318`), `SIGHTLINE_API_KEY` (else `PRODUCTGRAPH_API_KEY`), sent as
//! `X-API-Key`; `OTEL_SERVICE_NAME`; `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`;
//! `OTEL_PROPAGATORS`; `RUST_LOG` (default `info`); `SIGHTLINE_LOG_FORMAT` = `text` | `json`.

use std::collections::HashMap;
use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider};
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt;

use crate::events::{EventClient, EventClientConfig};
use crate::logs::LogFormat;
use crate::propagation::Propagation;
use crate::secret::ApiKey;

/// Why setup failed.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    /// No endpoint configured.
    #[error("no Sightline endpoint: set SIGHTLINE_ENDPOINT (e.g. http://localhost:4318) or call .endpoint(...)")]
    MissingEndpoint,
    /// An environment value could not be read.
    #[error("{name}: {reason}")]
    InvalidSetting {
        /// The variable.
        name: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// An OTLP exporter could not be built.
    #[error("cannot build the OTLP {signal} exporter: {reason}")]
    Exporter {
        /// `traces`, `metrics` or `logs`.
        signal: &'static str,
        /// The exporter's error.
        reason: String,
    },
    /// The event client configuration is invalid.
    #[error(transparent)]
    Events(#[from] crate::events::ConfigError),
    /// A global subscriber was already installed.
    #[error("a global tracing subscriber is already set: {0}")]
    SubscriberAlreadySet(String),
}

/// Trace sampling (OTel SDK sampler names).
#[derive(Debug, Clone, PartialEq)]
pub enum Sampling {
    /// `always_on`.
    AlwaysOn,
    /// `always_off`.
    AlwaysOff,
    /// `traceidratio`: keep this fraction (0..=1) of traces by trace id.
    TraceIdRatio(f64),
    /// `parentbased_*`: follow the caller's decision; use the inner sampler for root spans.
    ParentBased(Box<Sampling>),
}

impl Default for Sampling {
    /// `parentbased_always_on`, the OTel SDK default.
    fn default() -> Self {
        Sampling::ParentBased(Box::new(Sampling::AlwaysOn))
    }
}

impl Sampling {
    /// Reads `OTEL_TRACES_SAMPLER` and `OTEL_TRACES_SAMPLER_ARG` values.
    pub fn parse(sampler: &str, argument: Option<&str>) -> Result<Self, InitError> {
        let ratio = || -> Result<f64, InitError> {
            let Some(argument) = argument else { return Ok(1.0) };
            match argument.trim().parse::<f64>() {
                Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
                _ => Err(InitError::InvalidSetting {
                    name: "OTEL_TRACES_SAMPLER_ARG",
                    reason: format!("{argument:?} is not a ratio between 0 and 1"),
                }),
            }
        };
        Ok(match sampler.trim() {
            "always_on" => Sampling::AlwaysOn,
            "always_off" => Sampling::AlwaysOff,
            "traceidratio" => Sampling::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Sampling::ParentBased(Box::new(Sampling::AlwaysOn)),
            "parentbased_always_off" => Sampling::ParentBased(Box::new(Sampling::AlwaysOff)),
            "parentbased_traceidratio" => Sampling::ParentBased(Box::new(Sampling::TraceIdRatio(ratio()?))),
            other => {
                return Err(InitError::InvalidSetting {
                    name: "OTEL_TRACES_SAMPLER",
                    reason: format!(
                        "unknown sampler {other:?}: use always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio"
                    ),
                });
            }
        })
    }

    fn to_sampler(&self) -> Sampler {
        match self {
            Sampling::AlwaysOn => Sampler::AlwaysOn,
            Sampling::AlwaysOff => Sampler::AlwaysOff,
            Sampling::TraceIdRatio(ratio) => Sampler::TraceIdRatioBased(*ratio),
            Sampling::ParentBased(root) => Sampler::ParentBased(Box::new(root.to_sampler())),
        }
    }
}

/// Everything [`builder`] can set; see the module docs for the environment equivalents.
#[derive(Debug, Clone)]
pub struct SightlineBuilder {
    endpoint: Option<String>,
    api_key: Option<ApiKey>,
    service_name: String,
    service_version: Option<String>,
    sampling: Sampling,
    propagation: Vec<Propagation>,
    log_format: LogFormat,
    log_filter: String,
    traces: bool,
    metrics: bool,
    logs: bool,
    events: bool,
    metrics_interval: Duration,
    shutdown_timeout: Duration,
    events_config: Option<EventClientConfig>,
}

/// A builder with defaults (nothing read from the environment).
pub fn builder() -> SightlineBuilder {
    SightlineBuilder {
        endpoint: None,
        api_key: None,
        service_name: "unknown_service".into(),
        service_version: None,
        sampling: Sampling::default(),
        propagation: Propagation::DEFAULT.to_vec(),
        log_format: LogFormat::Text,
        log_filter: "info".into(),
        traces: true,
        metrics: true,
        logs: true,
        events: true,
        metrics_interval: Duration::from_secs(60),
        shutdown_timeout: Duration::from_secs(5),
        events_config: None,
    }
}

/// Reads the environment and installs everything globally (see the module docs).
pub fn init() -> Result<SightlineGuard, InitError> {
    builder().from_env()?.install()
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|value| !value.trim().is_empty())
}

impl SightlineBuilder {
    /// Applies the environment variables that are set.
    pub fn from_env(mut self) -> Result<Self, InitError> {
        if let Some(endpoint) = env("SIGHTLINE_ENDPOINT")
            .or_else(|| env("OTEL_EXPORTER_OTLP_ENDPOINT"))
            .or_else(|| env("PRODUCTGRAPH_ENDPOINT"))
        {
            self.endpoint = Some(endpoint);
        }
        if let Some(api_key) = env("SIGHTLINE_API_KEY").or_else(|| env("PRODUCTGRAPH_API_KEY")) {
            self.api_key = Some(ApiKey::new(api_key));
        }
        if let Some(service_name) = env("OTEL_SERVICE_NAME") {
            self.service_name = service_name;
        }
        if let Some(sampler) = env("OTEL_TRACES_SAMPLER") {
            self.sampling = Sampling::parse(&sampler, env("OTEL_TRACES_SAMPLER_ARG").as_deref())?;
        }
        self.propagation = crate::propagation::from_env()
            .map_err(|error| InitError::InvalidSetting { name: "OTEL_PROPAGATORS", reason: error.to_string() })?;
        if let Some(filter) = env("RUST_LOG") {
            self.log_filter = filter;
        }
        if let Some(format) = env("SIGHTLINE_LOG_FORMAT") {
            self.log_format = match format.trim().to_ascii_lowercase().as_str() {
                "json" => LogFormat::Json,
                "text" => LogFormat::Text,
                other => {
                    return Err(InitError::InvalidSetting {
                        name: "SIGHTLINE_LOG_FORMAT",
                        reason: format!("{other:?}: use text or json"),
                    });
                }
            };
        }
        if self.events {
            let mut events = self.events_config.take().unwrap_or_else(|| EventClientConfig::new(String::new()));
            if let Ok(from_env) = EventClientConfig::from_env() {
                events.endpoint = from_env.endpoint;
                events.api_key = from_env.api_key.or(events.api_key);
                events.product_id = from_env.product_id;
            }
            self.events_config = Some(events);
        }
        Ok(self)
    }

    /// Base URL of Sightline, e.g. `http://localhost:4318`.
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }
    /// Ingest key.
    pub fn api_key(mut self, api_key: impl Into<String>) -> Self {
        self.api_key = Some(ApiKey::new(api_key));
        self
    }
    /// `service.name`.
    pub fn service_name(mut self, service_name: impl Into<String>) -> Self {
        self.service_name = service_name.into();
        self
    }
    /// `service.version`.
    pub fn service_version(mut self, service_version: impl Into<String>) -> Self {
        self.service_version = Some(service_version.into());
        self
    }
    /// Trace sampling.
    pub fn sampling(mut self, sampling: Sampling) -> Self {
        self.sampling = sampling;
        self
    }
    /// Propagation formats.
    pub fn propagation(mut self, formats: &[Propagation]) -> Self {
        self.propagation = formats.to_vec();
        self
    }
    /// Log line format on stdout.
    pub fn log_format(mut self, format: LogFormat) -> Self {
        self.log_format = format;
        self
    }
    /// `EnvFilter` directives for logs and spans, e.g. `info,shop=debug`.
    pub fn log_filter(mut self, filter: impl Into<String>) -> Self {
        self.log_filter = filter.into();
        self
    }
    /// Turns signals on or off (all on by default).
    pub fn signals(mut self, traces: bool, metrics: bool, logs: bool, events: bool) -> Self {
        (self.traces, self.metrics, self.logs, self.events) = (traces, metrics, logs, events);
        self
    }
    /// Metric export interval (OTel default 60 s).
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics_interval = interval;
        self
    }
    /// How long dropping the guard may take in total (default 5 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.shutdown_timeout = timeout;
        self
    }
    /// Event client settings (endpoint and key default to the builder's).
    pub fn events_config(mut self, config: EventClientConfig) -> Self {
        self.events_config = Some(config);
        self
    }

    fn resource(&self) -> Resource {
        let mut resource = Resource::builder().with_service_name(self.service_name.clone());
        if let Some(version) = &self.service_version {
            resource = resource.with_attribute(opentelemetry::KeyValue::new("service.version", version.clone()));
        }
        resource.build()
    }

    /// Builds every piece without installing anything globally.
    pub fn build(self) -> Result<Telemetry, InitError> {
        let endpoint = self.endpoint.clone().ok_or(InitError::MissingEndpoint)?;
        let base = endpoint.trim_end_matches('/').to_owned();
        let mut headers = HashMap::new();
        if let Some(api_key) = &self.api_key {
            headers.insert("x-api-key".to_owned(), api_key.expose().to_owned());
        }
        let resource = self.resource();
        let tracer_provider = if self.traces {
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{base}/v1/traces"))
                .with_headers(headers.clone())
                .build()
                .map_err(|error| InitError::Exporter { signal: "traces", reason: error.to_string() })?;
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource.clone())
                    .with_sampler(self.sampling.to_sampler())
                    .with_batch_exporter(exporter)
                    .build(),
            )
        } else {
            None
        };
        let meter_provider = if self.metrics {
            let exporter = opentelemetry_otlp::MetricExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{base}/v1/metrics"))
                .with_headers(headers.clone())
                .build()
                .map_err(|error| InitError::Exporter { signal: "metrics", reason: error.to_string() })?;
            let reader = PeriodicReader::builder(exporter).with_interval(self.metrics_interval).build();
            Some(SdkMeterProvider::builder().with_resource(resource.clone()).with_reader(reader).build())
        } else {
            None
        };
        let logger_provider = if self.logs {
            let exporter = opentelemetry_otlp::LogExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{base}/v1/logs"))
                .with_headers(headers)
                .build()
                .map_err(|error| InitError::Exporter { signal: "logs", reason: error.to_string() })?;
            Some(
                SdkLoggerProvider::builder()
                    .with_resource(resource)
                    .with_log_processor(crate::logs::SessionLogProcessor)
                    .with_batch_exporter(exporter)
                    .build(),
            )
        } else {
            None
        };
        let events = if self.events {
            let mut config = self.events_config.clone().unwrap_or_else(|| EventClientConfig::new(String::new()));
            if config.endpoint.is_empty() {
                config.endpoint = base.clone();
            }
            if config.api_key.is_none() {
                config.api_key = self.api_key.clone();
            }
            if config.product_id == "default" {
                config.product_id = self.service_name.clone();
            }
            Some(EventClient::new(config)?)
        } else {
            None
        };

        let filter = tracing_subscriber::EnvFilter::try_new(&self.log_filter)
            .map_err(|error| InitError::InvalidSetting { name: "RUST_LOG", reason: error.to_string() })?;
        let otel_layer = tracer_provider.as_ref().map(|provider| {
            tracing_opentelemetry::layer().with_tracer(provider.tracer(crate::middleware::INSTRUMENTATION_SCOPE))
        });
        // The exporters' own HTTP stack logs through `tracing` too; shipping those records over
        // OTLP would feed back into itself, so they stay local.
        let log_bridge = logger_provider.as_ref().map(|provider| {
            opentelemetry_appender_tracing::layer::OpenTelemetryTracingBridge::new(provider).with_filter(
                tracing_subscriber::filter::filter_fn(|metadata| {
                    let target = metadata.target();
                    !["hyper", "h2", "reqwest", "tonic", "tower", "opentelemetry"]
                        .iter()
                        .any(|prefix| target.starts_with(prefix))
                }),
            )
        });
        let subscriber = tracing_subscriber::registry()
            .with(filter)
            .with(otel_layer)
            .with(crate::logs::fmt_layer(self.log_format))
            .with(log_bridge);
        Ok(Telemetry {
            subscriber: Some(Box::new(subscriber)),
            propagation: self.propagation,
            guard: SightlineGuard {
                tracer_provider,
                meter_provider,
                logger_provider,
                events,
                shutdown_timeout: self.shutdown_timeout,
                uninstall_global_events: false,
            },
        })
    }

    /// Builds and installs globally: subscriber, tracer and meter providers, propagator, event
    /// client.
    pub fn install(self) -> Result<SightlineGuard, InitError> {
        self.build()?.install()
    }
}

/// The pieces [`SightlineBuilder::build`] made.
pub struct Telemetry {
    /// The `tracing` subscriber (filter, OpenTelemetry, correlated fmt, OTLP log bridge).
    pub subscriber: Option<Box<dyn tracing::Subscriber + Send + Sync>>,
    /// The propagation formats chosen.
    pub propagation: Vec<Propagation>,
    /// Owns the providers and the event client.
    pub guard: SightlineGuard,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("Telemetry").field("propagation", &self.propagation).field("guard", &self.guard).finish()
    }
}

impl Telemetry {
    /// Installs everything globally.
    pub fn install(mut self) -> Result<SightlineGuard, InitError> {
        if let Some(subscriber) = self.subscriber.take() {
            tracing::subscriber::set_global_default(subscriber)
                .map_err(|error| InitError::SubscriberAlreadySet(error.to_string()))?;
        }
        crate::propagation::install(&self.propagation);
        if let Some(provider) = &self.guard.tracer_provider {
            opentelemetry::global::set_tracer_provider(provider.clone());
        }
        if let Some(provider) = &self.guard.meter_provider {
            opentelemetry::global::set_meter_provider(provider.clone());
        }
        if let Some(events) = &self.guard.events {
            crate::events::set_global(Some(events.clone()));
            self.guard.uninstall_global_events = true;
        }
        Ok(self.guard)
    }
}

/// Owns the providers and the event client; dropping it flushes and shuts them down within the
/// shutdown timeout (events first, then traces, logs, metrics).
#[derive(Debug)]
pub struct SightlineGuard {
    tracer_provider: Option<SdkTracerProvider>,
    meter_provider: Option<SdkMeterProvider>,
    logger_provider: Option<SdkLoggerProvider>,
    events: Option<EventClient>,
    shutdown_timeout: Duration,
    uninstall_global_events: bool,
}

impl SightlineGuard {
    /// The event client, when events are on.
    pub fn events(&self) -> Option<&EventClient> {
        self.events.as_ref()
    }
    /// The meter provider (for [`crate::SightlineLayer::with_meter`] when not global).
    pub fn meter_provider(&self) -> Option<&SdkMeterProvider> {
        self.meter_provider.as_ref()
    }
    /// The tracer provider.
    pub fn tracer_provider(&self) -> Option<&SdkTracerProvider> {
        self.tracer_provider.as_ref()
    }

    /// Exports everything buffered now (events within the shutdown timeout).
    pub fn flush(&self) {
        if let Some(events) = &self.events
            && let Err(error) = events.flush(self.shutdown_timeout)
        {
            tracing::warn!(%error, "Events not all delivered at flush");
        }
        if let Some(provider) = &self.tracer_provider {
            let _ = provider.force_flush();
        }
        if let Some(provider) = &self.logger_provider {
            let _ = provider.force_flush();
        }
        if let Some(provider) = &self.meter_provider {
            let _ = provider.force_flush();
        }
    }
}

impl Drop for SightlineGuard {
    /// One deadline for everything: a dead endpoint costs at most `shutdown_timeout` in total.
    fn drop(&mut self) {
        let deadline = std::time::Instant::now() + self.shutdown_timeout;
        let remaining = || deadline.saturating_duration_since(std::time::Instant::now());
        if self.uninstall_global_events {
            crate::events::set_global(None);
        }
        if let Some(events) = self.events.take()
            && let Err(error) = events.shutdown(remaining())
        {
            tracing::warn!(%error, "Events not all delivered at shutdown");
        }
        if let Some(provider) = self.tracer_provider.take() {
            let _ = provider.shutdown_with_timeout(remaining());
        }
        if let Some(provider) = self.logger_provider.take() {
            let _ = provider.shutdown_with_timeout(remaining());
        }
        if let Some(provider) = self.meter_provider.take() {
            let _ = provider.shutdown_with_timeout(remaining());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampler_names_follow_the_otel_env_spec() {
        assert_eq!(
            Sampling::parse("parentbased_traceidratio", Some("0.25")).expect("valid"),
            Sampling::ParentBased(Box::new(Sampling::TraceIdRatio(0.25)))
        );
        assert_eq!(Sampling::parse("traceidratio", None).expect("valid"), Sampling::TraceIdRatio(1.0));
        assert!(Sampling::parse("traceidratio", Some("2")).is_err());
        assert!(Sampling::parse("sometimes", None).expect_err("unknown").to_string().contains("unknown sampler"));
    }

    #[test]
    fn building_without_an_endpoint_says_what_to_set() {
        let error = builder().build().expect_err("no endpoint");
        assert!(error.to_string().contains("SIGHTLINE_ENDPOINT"), "{error}");
    }
}
