//! Processing: authenticate → validate (OTLP → model) → sample → derive summaries → commit.
//!
//! Each step is a plain function in its own module; [`Ingestor`] runs them in order for one
//! request and reports the OTLP outcome (accepted / rejected with reasons).

pub mod errors;
pub mod sample;
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
use crate::store::{Outcomes, Project, SignalBatch, Store, TraceSummaryDelta, WriteBatch};
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

/// Runs the ingest steps and owns the caches they need.
pub struct Ingestor {
    store: Arc<dyn Store>,
    queue: IngestQueue,
    keys: Mutex<HashMap<[u8; 32], (Instant, Option<Project>)>>,
}

impl Ingestor {
    /// Creates an ingestor writing through `queue`.
    pub fn new(store: Arc<dyn Store>, queue: IngestQueue) -> Self {
        Self { store, queue, keys: Mutex::new(HashMap::new()) }
    }

    /// The project an ingest key belongs to. Errors: `Unauthenticated` (missing, unknown or
    /// revoked key), `PermissionDenied` (read-only key), `Unavailable` (store failure).
    pub async fn authenticate(&self, key: Option<ApiKeySecret>) -> Result<Project, IngestError> {
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
        .map_err(|error| IngestError::Unavailable { reason: error.to_string(), retry_after: Duration::from_secs(1) })??;
        if let Ok(mut keys) = self.keys.lock() {
            if keys.len() > 10_000 {
                keys.clear();
            }
            keys.insert(hash, (Instant::now(), found.clone()));
        }
        found.ok_or(IngestError::Unauthenticated)
    }

    /// Validates, samples, summarizes and commits a trace export.
    pub async fn ingest_traces(&self, project: &Project, request: &ExportTraceServiceRequest) -> Result<IngestReport, IngestError> {
        self.submit(prepare_traces(project, request)).await
    }

    /// Validates and commits a logs export.
    pub async fn ingest_logs(&self, project: &Project, request: &ExportLogsServiceRequest) -> Result<IngestReport, IngestError> {
        self.submit(prepare_logs(project, request)).await
    }

    /// Validates and commits a metrics export.
    pub async fn ingest_metrics(&self, project: &Project, request: &ExportMetricsServiceRequest) -> Result<IngestReport, IngestError> {
        self.submit(prepare_metrics(project, request)).await
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
    errors: Vec<crate::store::errors::ErrorEvent>,
) -> Prepared {
    if report.accepted == 0 && report.sampled_out == 0 && report.rejected == 0 {
        return Prepared { report, batch: None };
    }
    let outcomes = Outcomes { accepted: report.accepted, sampled_out: report.sampled_out, invalid: report.rejected };
    let batch = WriteBatch { project_id: project.id, signal, trace_summaries, outcomes, errors };
    Prepared { report, batch: Some(batch) }
}

/// The project's in-app rules for stack frames.
fn in_app_rules(project: &Project) -> sightline_grouping::InAppRules {
    sightline_grouping::InAppRules {
        include_prefixes: project.in_app_include.clone(),
        exclude_prefixes: project.in_app_exclude.clone(),
    }
}

/// Validate → sample (per-project rate) → summarize → derive errors, for a trace export.
pub fn prepare_traces(project: &Project, request: &ExportTraceServiceRequest) -> Prepared {
    let (report_base, batch) = split(otlp::convert_traces(request));
    let (kept, sampled_out) = sample::sample_traces(batch, project.trace_sample_rate);
    let trace_summaries = trace_summary::summarize(&kept);
    let errors = errors::errors_from_spans(&kept, &in_app_rules(project));
    let report = IngestReport { accepted: batch_len(&kept) as u64, sampled_out, ..report_base };
    prepared(project, report, SignalBatch::Traces(kept), trace_summaries, errors)
}

/// Validate → derive errors, for a logs export.
pub fn prepare_logs(project: &Project, request: &ExportLogsServiceRequest) -> Prepared {
    let (report_base, batch) = split(otlp::convert_logs(request));
    let errors = errors::errors_from_logs(&batch, &in_app_rules(project));
    let report = IngestReport { accepted: batch_len(&batch) as u64, ..report_base };
    prepared(project, report, SignalBatch::Logs(batch), Vec::new(), errors)
}

/// Validate, for a metrics export.
pub fn prepare_metrics(project: &Project, request: &ExportMetricsServiceRequest) -> Prepared {
    let (report_base, batch) = split(otlp::convert_metrics(request));
    let report = IngestReport { accepted: batch_len(&batch) as u64, ..report_base };
    prepared(project, report, SignalBatch::Metrics(batch), Vec::new(), Vec::new())
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
