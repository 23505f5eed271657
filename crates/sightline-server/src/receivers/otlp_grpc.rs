//! OTLP/gRPC receiver (tonic): the Trace, Metrics and Logs services on one server.
//!
//! gzip and zstd requests are accepted (without `accept_compressed` tonic answers UNIMPLEMENTED).
//! Message size: tonic refuses a message longer than its limit with OUT_OF_RANGE, which OTLP
//! clients retry; [`oversize_is_not_retryable`] rewrites that answer to RESOURCE_EXHAUSTED
//! without RetryInfo, which they do not.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest, ExportMetricsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use tonic::codec::CompressionEncoding;
use tonic::{Request, Response, Status};

use crate::auth::key_from_headers;
use crate::error::IngestError;
use crate::pipeline::{self, IngestReport, Ingestor, PrepareContext, Prepared};
use crate::store::Project;

/// The three OTLP gRPC services sharing one [`Ingestor`].
#[derive(Clone)]
pub struct OtlpGrpcReceiver {
    ingestor: Arc<Ingestor>,
}

impl OtlpGrpcReceiver {
    /// Creates the receiver.
    pub fn new(ingestor: Arc<Ingestor>) -> Self {
        Self { ingestor }
    }

    async fn authenticate<T>(&self, request: &Request<T>) -> Result<Project, Status> {
        let headers = request.metadata().clone().into_headers();
        self.ingestor.authenticate(key_from_headers(&headers)).await.map_err(|error| error.to_grpc_status())
    }

    /// Tonic services with compression and `max_message_bytes` as the decode limit.
    pub fn into_services(
        self,
        max_message_bytes: usize,
    ) -> (TraceServiceServer<Self>, MetricsServiceServer<Self>, LogsServiceServer<Self>) {
        let traces = TraceServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(max_message_bytes);
        let metrics = MetricsServiceServer::new(self.clone())
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(max_message_bytes);
        let logs = LogsServiceServer::new(self)
            .accept_compressed(CompressionEncoding::Gzip)
            .accept_compressed(CompressionEncoding::Zstd)
            .max_decoding_message_size(max_message_bytes);
        (traces, metrics, logs)
    }
}

fn log_refusal(error: &IngestError) {
    if matches!(error, IngestError::Overloaded { .. } | IngestError::Unavailable { .. }) {
        tracing::warn!(%error, "OTLP/gRPC request refused");
    }
}

/// Runs the CPU-bound pipeline steps on a blocking thread so big requests (and source map
/// loads) never hold the reactor.
async fn prepare_off_reactor<R: Send + 'static>(
    context: PrepareContext,
    project: Project,
    request: R,
    prepare: fn(&PrepareContext, &Project, &R) -> Prepared,
) -> Result<Prepared, Status> {
    tokio::task::spawn_blocking(move || prepare(&context, &project, &request))
        .await
        .map_err(|error| Status::internal(format!("processing failed: {error}")))
}

fn has_partial(report: &IngestReport) -> bool {
    report.rejected > 0 || !report.error_message.is_empty()
}

#[tonic::async_trait]
impl TraceService for OtlpGrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportTraceServiceRequest>,
    ) -> Result<Response<ExportTraceServiceResponse>, Status> {
        let project = self.authenticate(&request).await?;
        let prepared = prepare_off_reactor(
            self.ingestor.prepare_context(),
            project,
            request.into_inner(),
            pipeline::prepare_traces,
        )
        .await?;
        let report =
            self.ingestor.submit(prepared).await.inspect_err(log_refusal).map_err(|error| error.to_grpc_status())?;
        Ok(Response::new(ExportTraceServiceResponse {
            partial_success: has_partial(&report).then(|| ExportTracePartialSuccess {
                rejected_spans: report.rejected as i64,
                error_message: report.error_message.clone(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for OtlpGrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportMetricsServiceRequest>,
    ) -> Result<Response<ExportMetricsServiceResponse>, Status> {
        let project = self.authenticate(&request).await?;
        let prepared = prepare_off_reactor(
            self.ingestor.prepare_context(),
            project,
            request.into_inner(),
            pipeline::prepare_metrics,
        )
        .await?;
        let report =
            self.ingestor.submit(prepared).await.inspect_err(log_refusal).map_err(|error| error.to_grpc_status())?;
        Ok(Response::new(ExportMetricsServiceResponse {
            partial_success: has_partial(&report).then(|| ExportMetricsPartialSuccess {
                rejected_data_points: report.rejected as i64,
                error_message: report.error_message.clone(),
            }),
        }))
    }
}

#[tonic::async_trait]
impl LogsService for OtlpGrpcReceiver {
    async fn export(
        &self,
        request: Request<ExportLogsServiceRequest>,
    ) -> Result<Response<ExportLogsServiceResponse>, Status> {
        let project = self.authenticate(&request).await?;
        let prepared =
            prepare_off_reactor(self.ingestor.prepare_context(), project, request.into_inner(), pipeline::prepare_logs)
                .await?;
        let report =
            self.ingestor.submit(prepared).await.inspect_err(log_refusal).map_err(|error| error.to_grpc_status())?;
        Ok(Response::new(ExportLogsServiceResponse {
            partial_success: has_partial(&report).then(|| ExportLogsPartialSuccess {
                rejected_log_records: report.rejected as i64,
                error_message: report.error_message.clone(),
            }),
        }))
    }
}

/// Rewrites tonic's OUT_OF_RANGE "message length too large" answer (retryable per OTLP) into
/// RESOURCE_EXHAUSTED without RetryInfo (not retryable). Other responses pass unchanged.
pub fn oversize_is_not_retryable<B>(mut response: http::Response<B>) -> http::Response<B> {
    let out_of_range = (tonic::Code::OutOfRange as i32).to_string();
    let is_out_of_range =
        response.headers().get("grpc-status").is_some_and(|value| value.as_bytes() == out_of_range.as_bytes());
    if is_out_of_range {
        let exhausted = (tonic::Code::ResourceExhausted as i32).to_string();
        if let Ok(value) = http::HeaderValue::from_str(&exhausted) {
            response.headers_mut().insert("grpc-status", value);
        }
    }
    response
}
