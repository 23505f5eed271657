//! Processing: authenticate → validate (OTLP → model) → sample → scrub (privacy rules, when the
//! project scrubs before storing) → derive summaries, endpoint
//! and database query rollups, sessions and errors (symbolicating JavaScript frames with source
//! maps) → commit.
//!
//! Each step is a plain function in its own module; [`Ingestor`] runs them in order for one
//! request and reports the OTLP outcome (accepted / rejected with reasons).

pub mod db_queries;
pub mod errors;
pub mod jobs;
pub mod otel_events;
pub mod query_normalize;
pub mod rollups;
pub mod sample;
pub mod scrub;
pub mod session;
pub mod symbolicate;
pub mod trace_summary;
pub mod writer;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use sightline_model::otlp::{self, Converted};
use sightline_model::{Countable, batch_len};

use crate::auth::ApiKeySecret;
use crate::error::IngestError;
use crate::exporters::otlp::{OtlpPayload, OtlpSignal};
use crate::privacy::{PrivacyEngine, ProjectPrivacy};
use crate::store::{Outcomes, Project, SignalBatch, Store, TraceSummaryDelta, WriteBatch};
use errors::DeriveOptions;
use symbolicate::{ProjectSourceMaps, SourceMapCache};
pub use writer::{IngestQueue, WriterHandle, start_writer};

/// How long a key lookup or project's settings are reused before asking the store again
/// (a revoked key or a new sampling rate takes effect within this time).
const CACHE_TTL: Duration = Duration::from_secs(10);

/// What the client is told about an accepted request (OTLP `partial_success`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IngestReport {
    /// Items stored (after sampling).
    pub accepted: u64,
    /// Items rejected by validation (`rejected_spans` / `_log_records` / `_data_points`).
    pub rejected: u64,
    /// Items dropped by head sampling (not reported to the client as rejected).
    pub sampled_out: u64,
    /// `partial_success.error_message`; empty when nothing was rejected.
    pub error_message: String,
}

/// What the CPU-bound prepare steps share across requests besides the request itself: today
/// the source map cache. Cheap to clone (one `Arc`); get it from [`Ingestor::prepare_context`]
/// and move it into the blocking task that prepares a request.
#[derive(Clone)]
pub struct PrepareContext {
    sourcemaps: Arc<SourceMapCache>,
    endpoint_rollups: bool,
    otlp_forwarding: Option<Arc<crate::exporters::otlp::OtlpForwarding>>,
    privacy: Option<Arc<PrivacyEngine>>,
}

impl PrepareContext {
    /// A context using `sourcemaps`.
    pub fn new(sourcemaps: Arc<SourceMapCache>) -> Self {
        Self { sourcemaps, endpoint_rollups: true, otlp_forwarding: None, privacy: None }
    }

    /// The same context queuing every export request that produced a batch for the OTLP
    /// forwarding destinations (as received: before sampling, like a Collector's fan-out).
    pub fn with_otlp_forwarding(mut self, forwarding: Option<Arc<crate::exporters::otlp::OtlpForwarding>>) -> Self {
        self.otlp_forwarding = forwarding;
        self
    }

    /// Queues the request for forwarding when a destination takes its signal. Encoding runs
    /// here, on the prepare thread, only then.
    fn attach_forward(
        &self,
        prepared: &mut Prepared,
        signal: crate::exporters::otlp::OtlpSignal,
        encode: impl FnOnce() -> crate::exporters::otlp::OtlpPayload,
    ) {
        let (Some(forwarding), Some(batch)) = (&self.otlp_forwarding, &mut prepared.batch) else {
            return;
        };
        if forwarding.wants(signal) {
            batch.otlp_forward = forwarding.admit(encode());
        }
    }

    /// The same context applying each project's privacy rules before storing, when the project
    /// asks for it (without an engine nothing is scrubbed).
    pub fn with_privacy(mut self, privacy: Arc<PrivacyEngine>) -> Self {
        self.privacy = Some(privacy);
        self
    }

    /// The project's privacy settings when it scrubs before storing. Normally found in the
    /// cache, which [`Ingestor::authenticate`] refreshed; otherwise read from the store here
    /// (blocking; a failure is logged and nothing is scrubbed).
    fn scrub_before_storing(&self, project: &Project) -> Option<Arc<ProjectPrivacy>> {
        let engine = self.privacy.as_ref()?;
        let privacy = match engine.cached(project.id) {
            Some(privacy) => privacy,
            None => match engine.for_project(project.id) {
                Ok(privacy) => privacy,
                Err(error) => {
                    tracing::error!(project = %project.slug, %error, "Privacy settings unavailable; not scrubbing");
                    return None;
                }
            },
        };
        privacy.scrub_before_storing().then_some(privacy)
    }

    /// The same context deriving endpoint rollups from spans or not (on by default; the
    /// benchmark switches them off for its baseline).
    pub fn with_endpoint_rollups(mut self, enabled: bool) -> Self {
        self.endpoint_rollups = enabled;
        self
    }

    /// The source map cache.
    pub fn sourcemaps(&self) -> &Arc<SourceMapCache> {
        &self.sourcemaps
    }

    /// The derivation options for one project: its in-app rules and source maps.
    fn derive_options<'a>(&'a self, project: &Project, rules: &'a sightline_grouping::InAppRules) -> DeriveOptions<'a> {
        DeriveOptions { rules, sourcemaps: Some(ProjectSourceMaps { cache: &self.sourcemaps, project_id: project.id }) }
    }
}

/// Runs the ingest steps and owns the caches they need.
pub struct Ingestor {
    store: Arc<dyn Store>,
    queue: IngestQueue,
    keys: Mutex<HashMap<[u8; 32], (Instant, Option<Project>)>>,
    prepare_context: PrepareContext,
    privacy: Arc<PrivacyEngine>,
}

impl Ingestor {
    /// Creates an ingestor writing through `queue`.
    pub fn new(store: Arc<dyn Store>, queue: IngestQueue) -> Self {
        let privacy = Arc::new(PrivacyEngine::new(store.clone()));
        let prepare_context =
            PrepareContext::new(Arc::new(SourceMapCache::new(store.clone()))).with_privacy(privacy.clone());
        Self { store, queue, keys: Mutex::new(HashMap::new()), prepare_context, privacy }
    }

    /// Derive endpoint rollups from spans or not (`Config::endpoint_rollups`).
    pub fn with_endpoint_rollups(mut self, enabled: bool) -> Self {
        self.prepare_context = self.prepare_context.with_endpoint_rollups(enabled);
        self
    }

    /// Forward accepted OTLP export requests to these destinations (`Config::forward_otlp`).
    pub fn with_otlp_forwarding(mut self, forwarding: Option<Arc<crate::exporters::otlp::OtlpForwarding>>) -> Self {
        self.prepare_context = self.prepare_context.with_otlp_forwarding(forwarding);
        self
    }

    /// The shared state [`prepare_traces`] and [`prepare_logs`] need (a clone).
    pub fn prepare_context(&self) -> PrepareContext {
        self.prepare_context.clone()
    }

    /// Every project's privacy settings (the privacy API invalidates them; exporters call
    /// [`PrivacyEngine::for_project`] and `ProjectPrivacy::prepare_for_forwarding`).
    pub fn privacy(&self) -> &Arc<PrivacyEngine> {
        &self.privacy
    }

    /// Forgets the cached key lookups that led to `project_id`, so a key revoked or a setting
    /// changed there (sampling rate) applies to the next request instead of within
    /// [`CACHE_TTL`]. Other nodes sharing a store still take up to that long.
    pub fn forget_keys_of(&self, project_id: i64) {
        if let Ok(mut keys) = self.keys.lock() {
            keys.retain(|_, (_, project)| project.as_ref().is_some_and(|project| project.id != project_id));
        }
    }

    /// The OTLP forwarding destinations of this server (`Config::forward_otlp`), if any.
    pub fn otlp_forwarding(&self) -> Option<&Arc<crate::exporters::otlp::OtlpForwarding>> {
        self.prepare_context.otlp_forwarding.as_ref()
    }

    /// The source map cache (the upload API invalidates it).
    pub fn sourcemaps(&self) -> &SourceMapCache {
        &self.prepare_context.sourcemaps
    }

    /// The project an ingest key belongs to, with its privacy settings loaded into the cache the
    /// prepare steps read. Errors: `Unauthenticated` (missing, unknown or revoked key),
    /// `PermissionDenied` (read-only key), `Unavailable` (store failure; nothing is stored
    /// unscrubbed because its settings could not be read).
    pub async fn authenticate(&self, key: Option<ApiKeySecret>) -> Result<Project, IngestError> {
        let project = self.authenticate_key(key).await?;
        self.privacy.refresh(project.id).await.map_err(|error| IngestError::Unavailable {
            reason: format!("privacy settings unavailable: {error}"),
            retry_after: Duration::from_secs(1),
        })?;
        Ok(project)
    }

    async fn authenticate_key(&self, key: Option<ApiKeySecret>) -> Result<Project, IngestError> {
        let key = key.ok_or(IngestError::Unauthenticated)?;
        let hash = key.hash();
        if let Some((fetched_at, cached)) = self.keys.lock().ok().and_then(|keys| keys.get(&hash).cloned())
            && fetched_at.elapsed() < CACHE_TTL
        {
            return cached.ok_or(IngestError::Unauthenticated);
        }
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || -> Result<Option<Project>, IngestError> {
            let Some(record) = store.find_api_key(&key)? else {
                return Ok(None);
            };
            if !record.scope.can_ingest() {
                return Err(IngestError::PermissionDenied("send telemetry (it is a read key)"));
            }
            Ok(store.find_project(&record.project_id.to_string())?)
        })
        .await
        .map_err(|error| IngestError::Unavailable {
            reason: error.to_string(),
            retry_after: Duration::from_secs(1),
        })??;
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() > 10_000 {
                keys.clear();
            }
            keys.insert(hash, (Instant::now(), found.clone()));
        }
        found.ok_or(IngestError::Unauthenticated)
    }

    /// Validates, samples, summarizes and commits a trace export.
    pub async fn ingest_traces(
        &self,
        project: &Project,
        request: &ExportTraceServiceRequest,
    ) -> Result<IngestReport, IngestError> {
        self.submit(prepare_traces(&self.prepare_context, project, request)).await
    }

    /// Validates and commits a logs export.
    pub async fn ingest_logs(
        &self,
        project: &Project,
        request: &ExportLogsServiceRequest,
    ) -> Result<IngestReport, IngestError> {
        self.submit(prepare_logs(&self.prepare_context, project, request)).await
    }

    /// Validates and commits a metrics export.
    pub async fn ingest_metrics(
        &self,
        project: &Project,
        request: &ExportMetricsServiceRequest,
    ) -> Result<IngestReport, IngestError> {
        self.submit(prepare_metrics(&self.prepare_context, project, request)).await
    }

    /// Commits a prepared batch and returns its report once the data is durable. Errors:
    /// `Overloaded` (queue full), `Unavailable` (commit failed or shutting down).
    pub async fn submit(&self, prepared: Prepared) -> Result<IngestReport, IngestError> {
        if let Some(batch) = prepared.batch {
            self.queue.submit(batch, prepared.report.accepted as usize).await?;
        }
        Ok(prepared.report)
    }

    /// The queue, for health and metrics.
    pub fn queue(&self) -> &IngestQueue {
        &self.queue
    }

    /// The store, for the query API.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }
}

/// A request after the CPU-bound steps (validate, sample, summarize), ready to commit. Build it
/// with [`prepare_traces`], [`prepare_logs`] or [`prepare_metrics`] (on a blocking thread for big
/// requests) and hand it to [`Ingestor::submit`].
#[derive(Debug)]
pub struct Prepared {
    /// What the client will be told.
    pub report: IngestReport,
    /// What to commit; `None` for an empty request (OTLP: answer success, write nothing).
    pub batch: Option<WriteBatch>,
}

fn prepared(
    project: &Project,
    report: IngestReport,
    signal: SignalBatch,
    trace_summaries: Vec<TraceSummaryDelta>,
    endpoint_rollups: Vec<crate::store::rollups::EndpointRollup>,
    errors: Vec<crate::store::errors::ErrorEvent>,
    derived_events: Vec<sightline_model::ProductEvent>,
) -> Prepared {
    if report.accepted == 0 && report.sampled_out == 0 && report.rejected == 0 {
        return Prepared { report, batch: None };
    }
    let outcomes = Outcomes { accepted: report.accepted, sampled_out: report.sampled_out, invalid: report.rejected };
    let sessions = match &signal {
        SignalBatch::Traces(spans) => session::sessions_from_spans(spans),
        SignalBatch::Logs(records) => session::sessions_from_logs(records),
        SignalBatch::Metrics(metrics) => session::sessions_from_metrics(metrics),
        // Product events are summarized at commit, where retried events are recognised.
        SignalBatch::Events(_) => Default::default(),
    };
    let mut batch = WriteBatch {
        project_id: project.id,
        signal,
        trace_summaries,
        endpoint_rollups,
        query_rollups: Vec::new(),
        job_rollups: Vec::new(),
        call_halves: Vec::new(),
        paired_calls: Default::default(),
        outcomes,
        errors,
        derived_events,
        sessions,
        serialized: Default::default(),
        otlp_forward: None,
    };
    batch.serialize_items();
    Prepared { report, batch: Some(batch) }
}

/// The project's in-app rules for stack frames.
fn in_app_rules(project: &Project) -> sightline_grouping::InAppRules {
    sightline_grouping::InAppRules {
        include_prefixes: project.in_app_include.clone(),
        exclude_prefixes: project.in_app_exclude.clone(),
    }
}

/// Validate → sample (per-project rate) → summarize → derive errors, for a trace export. May
/// load source maps from the store (through the context's cache): call from a blocking thread
/// when the request carries stack traces.
pub fn prepare_traces(context: &PrepareContext, project: &Project, request: &ExportTraceServiceRequest) -> Prepared {
    let (report_base, batch) = split(otlp::convert_traces(request));
    let (mut kept, sampled_out) = sample::sample_traces(batch, project.trace_sample_rate);
    if let Some(privacy) = context.scrub_before_storing(project) {
        scrub::scrub_spans(&privacy, &mut kept);
    }
    let trace_summaries = trace_summary::summarize(&kept);
    let endpoint_rollups = if context.endpoint_rollups { rollups::rollups_from_spans(&kept) } else { Vec::new() };
    let rules = in_app_rules(project);
    let errors = errors::errors_from_spans(&kept, context.derive_options(project, &rules));
    let report = IngestReport { accepted: batch_len(&kept) as u64, sampled_out, ..report_base };
    let query_rollups = if context.endpoint_rollups { db_queries::query_rollups_from_spans(&kept) } else { Vec::new() };
    let call_halves = if context.endpoint_rollups { crate::store::service_map::call_halves(&kept) } else { Vec::new() };
    let job_rollups = if context.endpoint_rollups { jobs::job_rollups_from_spans(&kept) } else { Vec::new() };
    let mut prepared =
        prepared(project, report, SignalBatch::Traces(kept), trace_summaries, endpoint_rollups, errors, Vec::new());
    if let Some(batch) = &mut prepared.batch {
        batch.query_rollups = query_rollups;
        batch.call_halves = call_halves;
        batch.job_rollups = job_rollups;
    }
    context.attach_forward(&mut prepared, OtlpSignal::Traces, || OtlpPayload::traces(request));
    prepared
}

/// Validate → derive errors, for a logs export. Like [`prepare_traces`], may load source maps.
pub fn prepare_logs(context: &PrepareContext, project: &Project, request: &ExportLogsServiceRequest) -> Prepared {
    let (report_base, mut batch) = split(otlp::convert_logs(request));
    if let Some(privacy) = context.scrub_before_storing(project) {
        scrub::scrub_logs(&privacy, &mut batch);
    }
    let rules = in_app_rules(project);
    let errors = errors::errors_from_logs(&batch, context.derive_options(project, &rules));
    let report = IngestReport { accepted: batch_len(&batch) as u64, ..report_base };
    let derived_events = otel_events::product_events_from_logs(&batch);
    let mut prepared =
        prepared(project, report, SignalBatch::Logs(batch), Vec::new(), Vec::new(), errors, derived_events);
    context.attach_forward(&mut prepared, OtlpSignal::Logs, || OtlpPayload::logs(request));
    prepared
}

/// Scrub (when the project asks) → derive errors (events of type `error`), for product events already parsed and validated by
/// the `/v1/events` receiver; `rejected` counts the events it refused.
pub fn prepare_events(
    context: &PrepareContext,
    project: &Project,
    mut events: Vec<sightline_model::ProductEvent>,
    rejected: u64,
) -> Prepared {
    if let Some(privacy) = context.scrub_before_storing(project) {
        scrub::scrub_events(&privacy, &mut events);
    }
    let rules = in_app_rules(project);
    let errors = errors::errors_from_product_events(&events, context.derive_options(project, &rules));
    let report = IngestReport { accepted: events.len() as u64, rejected, sampled_out: 0, error_message: String::new() };
    prepared(project, report, SignalBatch::Events(events), Vec::new(), Vec::new(), errors, Vec::new())
}

/// Validate, for a metrics export (the context only says whether to forward it).
pub fn prepare_metrics(context: &PrepareContext, project: &Project, request: &ExportMetricsServiceRequest) -> Prepared {
    let (report_base, batch) = split(otlp::convert_metrics(request));
    let report = IngestReport { accepted: batch_len(&batch) as u64, ..report_base };
    let mut prepared =
        prepared(project, report, SignalBatch::Metrics(batch), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    context.attach_forward(&mut prepared, OtlpSignal::Metrics, || OtlpPayload::metrics(request));
    prepared
}

/// True when a trace export has a span event with `exception.stacktrace`. Preparing such a
/// request may load source maps from the store, so receivers prepare it on a blocking thread
/// however small it is.
pub fn trace_request_has_stack_traces(request: &ExportTraceServiceRequest) -> bool {
    request
        .resource_spans
        .iter()
        .flat_map(|resource_spans| &resource_spans.scope_spans)
        .flat_map(|scope_spans| &scope_spans.spans)
        .flat_map(|span| &span.events)
        .any(|event| event.attributes.iter().any(|attribute| attribute.key == "exception.stacktrace"))
}

/// True when a logs export has a record with `exception.stacktrace` (see
/// [`trace_request_has_stack_traces`]).
pub fn log_request_has_stack_traces(request: &ExportLogsServiceRequest) -> bool {
    request
        .resource_logs
        .iter()
        .flat_map(|resource_logs| &resource_logs.scope_logs)
        .flat_map(|scope_logs| &scope_logs.log_records)
        .any(|record| record.attributes.iter().any(|attribute| attribute.key == "exception.stacktrace"))
}

fn split<T: Countable>(converted: Converted<T>) -> (IngestReport, sightline_model::Batch<T>) {
    let report = IngestReport {
        accepted: 0,
        rejected: converted.rejected,
        sampled_out: 0,
        error_message: converted.error_message(),
    };
    (report, converted.batch)
}

#[cfg(test)]
mod tests {
    use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, span};

    use super::*;

    fn attribute(key: &str) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(any_value::Value::StringValue("x".into())) }),
            ..Default::default()
        }
    }

    #[test]
    fn requests_with_stack_traces_are_recognized() {
        let traces = |key: &str| ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans {
                    spans: vec![Span {
                        events: vec![span::Event {
                            name: "exception".into(),
                            attributes: vec![attribute(key)],
                            ..Default::default()
                        }],
                        ..Default::default()
                    }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert!(trace_request_has_stack_traces(&traces("exception.stacktrace")));
        assert!(!trace_request_has_stack_traces(&traces("exception.message")));
        let logs = |key: &str| ExportLogsServiceRequest {
            resource_logs: vec![ResourceLogs {
                scope_logs: vec![ScopeLogs {
                    log_records: vec![LogRecord { attributes: vec![attribute(key)], ..Default::default() }],
                    ..Default::default()
                }],
                ..Default::default()
            }],
        };
        assert!(log_request_has_stack_traces(&logs("exception.stacktrace")));
        assert!(!log_request_has_stack_traces(&logs("exception.type")));
    }
}
