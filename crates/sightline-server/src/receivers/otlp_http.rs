//! OTLP/HTTP receiver: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` (OTLP spec, "OTLP/HTTP").
//!
//! Protobuf and JSON on the same paths, answered in the request's content type; gzip and zstd
//! bodies; limits after decompression (413); 415 for unknown types and encodings; 400 with a
//! `google.rpc.Status` for undecodable bodies; 200 with `partial_success` for invalid items;
//! 401/403 for keys; 429/503 with `Retry-After` when the queue is full or storage fails.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;
use serde_json::json;

use super::body::{ContentEncoding, PayloadFormat, decode, decompress};
use crate::auth::key_from_headers;
use crate::error::IngestError;
use crate::pipeline::{self, IngestReport, PrepareContext, Prepared};
use crate::server::AppState;
use crate::store::Project;

/// Bodies at least this large are decoded and validated on a blocking thread so the reactor is never held
/// for more than a fraction of a millisecond (≈ 230k spans/s/core → 64 KiB ≈ 1 ms of decode).
const DECODE_INLINE_MAX_BYTES: usize = 16 * 1024;

/// Routes for the three OTLP signals.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/v1/traces", post(export_traces))
        .route("/v1/metrics", post(export_metrics))
        .route("/v1/logs", post(export_logs))
}

/// Which signal a request carries; decides the `rejected_*` field name.
#[derive(Clone, Copy)]
enum Signal {
    Traces,
    Metrics,
    Logs,
}

async fn export_traces(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    handle::<ExportTraceServiceRequest>(state, headers, body, Signal::Traces).await
}

async fn export_metrics(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    handle::<ExportMetricsServiceRequest>(state, headers, body, Signal::Metrics).await
}

async fn export_logs(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Body) -> Response {
    handle::<ExportLogsServiceRequest>(state, headers, body, Signal::Logs).await
}

/// Implemented by the three export requests so one handler serves them all.
trait ExportRequest: Message + Default + serde::de::DeserializeOwned + Send + 'static {
    /// Runs the CPU-bound pipeline steps for this signal.
    fn prepare(context: &PrepareContext, project: &Project, request: &Self) -> Prepared;

    /// Whether preparing may read the store (source maps for stack traces), which must not
    /// happen on the reactor.
    fn may_read_store(&self) -> bool;
}

impl ExportRequest for ExportTraceServiceRequest {
    fn prepare(context: &PrepareContext, project: &Project, request: &Self) -> Prepared {
        pipeline::prepare_traces(context, project, request)
    }

    fn may_read_store(&self) -> bool {
        pipeline::trace_request_has_stack_traces(self)
    }
}

impl ExportRequest for ExportMetricsServiceRequest {
    fn prepare(context: &PrepareContext, project: &Project, request: &Self) -> Prepared {
        pipeline::prepare_metrics(context, project, request)
    }

    fn may_read_store(&self) -> bool {
        false
    }
}

impl ExportRequest for ExportLogsServiceRequest {
    fn prepare(context: &PrepareContext, project: &Project, request: &Self) -> Prepared {
        pipeline::prepare_logs(context, project, request)
    }

    fn may_read_store(&self) -> bool {
        pipeline::log_request_has_stack_traces(self)
    }
}

async fn handle<R: ExportRequest>(state: Arc<AppState>, headers: HeaderMap, body: Body, signal: Signal) -> Response {
    let format = match PayloadFormat::from_headers(&headers) {
        Ok(format) => format,
        Err(error) => return error_response(&error, PayloadFormat::Json),
    };
    match process::<R>(&state, &headers, body, format).await {
        Ok(report) => success_response(&report, format, signal),
        Err(error) => {
            if error.http_status().is_server_error() || error.http_status() == StatusCode::TOO_MANY_REQUESTS {
                tracing::warn!(%error, "OTLP/HTTP request refused");
            }
            error_response(&error, format)
        }
    }
}

async fn process<R: ExportRequest>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    format: PayloadFormat,
) -> Result<IngestReport, IngestError> {
    let project = state.ingestor.authenticate(key_from_headers(headers)).await?;
    let encoding = ContentEncoding::from_headers(headers)?;
    let max_bytes = state.max_body_bytes;
    let raw = http_body_util::Limited::new(body, max_bytes)
        .collect()
        .await
        .map_err(|error| {
            if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                IngestError::PayloadTooLarge { limit_bytes: max_bytes }
            } else {
                IngestError::BadRequest(format!("cannot read body: {error}"))
            }
        })?
        .to_bytes();
    let context = state.ingestor.prepare_context();
    let join_failed = |error: tokio::task::JoinError| IngestError::Unavailable {
        reason: error.to_string(),
        retry_after: std::time::Duration::from_secs(1),
    };
    let prepared = if raw.len() < DECODE_INLINE_MAX_BYTES && encoding == ContentEncoding::Identity {
        let request = decode::<R>(&raw, format)?;
        if request.may_read_store() {
            tokio::task::spawn_blocking(move || R::prepare(&context, &project, &request)).await.map_err(join_failed)?
        } else {
            R::prepare(&context, &project, &request)
        }
    } else {
        tokio::task::spawn_blocking(move || -> Result<Prepared, IngestError> {
            let request = decode::<R>(&decompress(raw, encoding, max_bytes)?, format)?;
            Ok(R::prepare(&context, &project, &request))
        })
        .await
        .map_err(join_failed)??
    };
    state.ingestor.submit(prepared).await
}

fn success_response(report: &IngestReport, format: PayloadFormat, signal: Signal) -> Response {
    // OTLP: leave partial_success unset when everything was accepted.
    let rejected = report.rejected as i64;
    let has_partial = report.rejected > 0 || !report.error_message.is_empty();
    let message = report.error_message.clone();
    let body = match format {
        PayloadFormat::Protobuf => match signal {
            Signal::Traces => ExportTraceServiceResponse {
                partial_success: has_partial
                    .then(|| ExportTracePartialSuccess { rejected_spans: rejected, error_message: message }),
            }
            .encode_to_vec(),
            Signal::Metrics => ExportMetricsServiceResponse {
                partial_success: has_partial
                    .then(|| ExportMetricsPartialSuccess { rejected_data_points: rejected, error_message: message }),
            }
            .encode_to_vec(),
            Signal::Logs => ExportLogsServiceResponse {
                partial_success: has_partial
                    .then(|| ExportLogsPartialSuccess { rejected_log_records: rejected, error_message: message }),
            }
            .encode_to_vec(),
        },
        PayloadFormat::Json => {
            let field = match signal {
                Signal::Traces => "rejectedSpans",
                Signal::Metrics => "rejectedDataPoints",
                Signal::Logs => "rejectedLogRecords",
            };
            // proto3 JSON mapping: int64 as a decimal string.
            let value = if has_partial {
                json!({"partialSuccess": {field: rejected.to_string(), "errorMessage": message}})
            } else {
                json!({})
            };
            value.to_string().into_bytes()
        }
    };
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// A `google.rpc.Status` body in the request's encoding, with the error's HTTP status and
/// `Retry-After` when retryable (OTLP spec, "Failures").
pub fn error_response(error: &IngestError, format: PayloadFormat) -> Response {
    let code = error.rpc_code() as i32;
    let message = error.to_string();
    let body = match format {
        PayloadFormat::Protobuf => tonic_types::pb::Status { code, message, details: Vec::new() }.encode_to_vec(),
        PayloadFormat::Json => json!({"code": code, "message": message}).to_string().into_bytes(),
    };
    let mut response = (error.http_status(), [(header::CONTENT_TYPE, format.content_type())], body).into_response();
    if let Some(seconds) = error.retry_after_secs() {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}
