//! The OTLP client: sends one payload to the destination over OTLP/HTTP (protobuf) or
//! OTLP/gRPC and classifies the answer. One attempt per call; the delivery driver retries.

use std::io::Write;

use bytes::Bytes;
use flate2::Compression;
use flate2::write::GzEncoder;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message;
use tonic::codec::CompressionEncoding;
use tonic::metadata::{MetadataKey, MetadataValue};
use tonic::transport::{Channel, Endpoint};

use super::classify::{OtlpOutcome, classify_grpc_status, classify_http};
use super::config::{OtlpCompression, OtlpConfigError, OtlpDestinationConfig, OtlpProtocol};
use super::request::{OtlpPayload, OtlpSignal};

/// Largest decoded gRPC response accepted (responses are tiny; this only bounds a rogue server).
const MAX_GRPC_RESPONSE_BYTES: usize = 4 << 20;

/// Sends payloads to one OTLP destination. Cheap to share (`Arc`); connections are pooled
/// (HTTP) or multiplexed over one lazily connected HTTP/2 channel (gRPC).
pub struct OtlpForwarder {
    config: OtlpDestinationConfig,
    transport: Transport,
}

enum Transport {
    Http(reqwest::Client),
    Grpc(Channel),
}

impl OtlpForwarder {
    /// Builds the client for `config`. Errors when the configuration is invalid (see
    /// [`OtlpDestinationConfig::validate`]). No connection is made until the first send.
    pub fn new(config: OtlpDestinationConfig) -> Result<Self, OtlpConfigError> {
        config.validate()?;
        let transport = match config.protocol {
            OtlpProtocol::HttpProtobuf => {
                let client = reqwest::Client::builder()
                    .timeout(config.timeout())
                    .connect_timeout(config.timeout())
                    .build()
                    .map_err(|_| OtlpConfigError::BadEndpoint(config.endpoint.clone()))?;
                Transport::Http(client)
            }
            OtlpProtocol::Grpc => {
                let endpoint = Endpoint::from_shared(config.endpoint.trim().to_owned())
                    .map_err(|_| OtlpConfigError::BadEndpoint(config.endpoint.clone()))?
                    .connect_timeout(config.timeout())
                    .timeout(config.timeout());
                Transport::Grpc(endpoint.connect_lazy())
            }
        };
        Ok(Self { config, transport })
    }

    /// The destination's settings.
    pub fn config(&self) -> &OtlpDestinationConfig {
        &self.config
    }

    /// True when the destination takes this signal.
    pub fn accepts(&self, signal: OtlpSignal) -> bool {
        match signal {
            OtlpSignal::Traces => self.config.signals.traces,
            OtlpSignal::Metrics => self.config.signals.metrics,
            OtlpSignal::Logs => self.config.signals.logs,
        }
    }

    /// Sends one payload (one attempt, bounded by the configured timeout). Connection
    /// failures and timeouts are retryable; a body that does not decode as its signal's
    /// request (gRPC only re-decodes) is permanent.
    pub async fn send(&self, payload: &OtlpPayload) -> OtlpOutcome {
        match &self.transport {
            Transport::Http(client) => self.send_http(client, payload).await,
            Transport::Grpc(channel) => self.send_grpc(channel.clone(), payload).await,
        }
    }

    fn http_url(&self, signal: OtlpSignal) -> String {
        let base = self.config.endpoint.trim().trim_end_matches('/');
        format!("{base}/{}", signal.http_path())
    }

    async fn send_http(&self, client: &reqwest::Client, payload: &OtlpPayload) -> OtlpOutcome {
        let mut request =
            client.post(self.http_url(payload.signal)).header(http::header::CONTENT_TYPE, "application/x-protobuf");
        for (name, value) in &self.config.headers {
            request = request.header(name.as_str(), value.expose());
        }
        let body = match self.config.compression {
            OtlpCompression::None => payload.body.clone(),
            OtlpCompression::Gzip => {
                request = request.header(http::header::CONTENT_ENCODING, "gzip");
                gzip(&payload.body)
            }
        };
        let response = match request.body(body).send().await {
            Ok(response) => response,
            Err(error) => return transport_failure(&error),
        };
        let status = response.status();
        let headers = response.headers().clone();
        match response.bytes().await {
            Ok(body) => classify_http(payload.signal, status, &headers, &body),
            // The status arrived; a cut body only loses the partial-success details.
            Err(_) if status.is_success() => OtlpOutcome::Delivered { rejected_items: 0, message: String::new() },
            Err(error) => transport_failure(&error),
        }
    }

    async fn send_grpc(&self, channel: Channel, payload: &OtlpPayload) -> OtlpOutcome {
        let result = match payload.signal {
            OtlpSignal::Traces => {
                let Some(request) = self.grpc_request::<ExportTraceServiceRequest>(&payload.body) else {
                    return undecodable(payload.signal);
                };
                let mut client = TraceServiceClient::new(channel).max_decoding_message_size(MAX_GRPC_RESPONSE_BYTES);
                if self.config.compression == OtlpCompression::Gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                client.export(request).await.map(|response| {
                    let partial = response.into_inner().partial_success;
                    partial.map(|partial| (partial.rejected_spans, partial.error_message))
                })
            }
            OtlpSignal::Metrics => {
                let Some(request) = self.grpc_request::<ExportMetricsServiceRequest>(&payload.body) else {
                    return undecodable(payload.signal);
                };
                let mut client = MetricsServiceClient::new(channel).max_decoding_message_size(MAX_GRPC_RESPONSE_BYTES);
                if self.config.compression == OtlpCompression::Gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                client.export(request).await.map(|response| {
                    let partial = response.into_inner().partial_success;
                    partial.map(|partial| (partial.rejected_data_points, partial.error_message))
                })
            }
            OtlpSignal::Logs => {
                let Some(request) = self.grpc_request::<ExportLogsServiceRequest>(&payload.body) else {
                    return undecodable(payload.signal);
                };
                let mut client = LogsServiceClient::new(channel).max_decoding_message_size(MAX_GRPC_RESPONSE_BYTES);
                if self.config.compression == OtlpCompression::Gzip {
                    client = client.send_compressed(CompressionEncoding::Gzip);
                }
                client.export(request).await.map(|response| {
                    let partial = response.into_inner().partial_success;
                    partial.map(|partial| (partial.rejected_log_records, partial.error_message))
                })
            }
        };
        match result {
            Ok(partial) => {
                let (rejected, message) = partial.unwrap_or_default();
                OtlpOutcome::Delivered { rejected_items: rejected.max(0) as u64, message }
            }
            Err(status) => classify_grpc_status(&status),
        }
    }

    /// Decodes a stored payload into the typed request tonic's client sends, with the
    /// configured headers as metadata and the timeout as `grpc-timeout`.
    fn grpc_request<M: Message + Default>(&self, body: &Bytes) -> Option<tonic::Request<M>> {
        let message = M::decode(body.clone()).ok()?;
        let mut request = tonic::Request::new(message);
        request.set_timeout(self.config.timeout());
        for (name, value) in &self.config.headers {
            // Validated at construction; gRPC metadata keys are lower-case.
            let key = MetadataKey::from_bytes(name.to_ascii_lowercase().as_bytes()).ok()?;
            let value = MetadataValue::try_from(value.expose()).ok()?;
            request.metadata_mut().insert(key, value);
        }
        Some(request)
    }
}

fn gzip(body: &[u8]) -> Bytes {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default().into()
}

fn transport_failure(error: &reqwest::Error) -> OtlpOutcome {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "connection failed"
    } else {
        "transport error"
    };
    OtlpOutcome::Retry { retry_after: None, reason: format!("{kind}: {error}") }
}

fn undecodable(signal: OtlpSignal) -> OtlpOutcome {
    OtlpOutcome::Permanent { reason: format!("stored {} payload is not a valid export request", signal.as_str()) }
}
