//! OTLP/HTTP client side of the benchmarks: one reqwest client (so one keep-alive connection)
//! per simulated exporter, POSTing pre-encoded protobuf to `/v1/traces` or `/v1/logs`.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::Bytes;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE};

use super::load::{Attempt, ExportSender};

/// OTLP exporters' default export timeout is 10 s; a slower answer is a failure worth seeing.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Which OTLP export the bodies are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OtlpSignal {
    /// `ExportTraceServiceRequest` to `/v1/traces`.
    Traces,
    /// `ExportLogsServiceRequest` to `/v1/logs`.
    Logs,
}

impl OtlpSignal {
    fn path(self) -> &'static str {
        match self {
            OtlpSignal::Traces => "/v1/traces",
            OtlpSignal::Logs => "/v1/logs",
        }
    }

    /// `partial_success.rejected_*` of a 200 answer's body.
    fn rejected_items(self, answer: Bytes) -> Result<u64, prost::DecodeError> {
        let rejected = match self {
            OtlpSignal::Traces => {
                ExportTraceServiceResponse::decode(answer)?.partial_success.map(|partial| partial.rejected_spans)
            }
            OtlpSignal::Logs => {
                ExportLogsServiceResponse::decode(answer)?.partial_success.map(|partial| partial.rejected_log_records)
            }
        };
        Ok(rejected.unwrap_or(0).max(0) as u64)
    }
}

/// One OTLP/HTTP exporter connection.
pub struct HttpSender {
    client: reqwest::Client,
    signal: OtlpSignal,
    url: String,
    authorization: String,
}

impl HttpSender {
    /// Builds a client for the server at `http_addr` and opens its connection (a `/health`
    /// request), so connection set-up stays out of the timed phase.
    pub async fn connect(http_addr: SocketAddr, ingest_key: &str, signal: OtlpSignal) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .tcp_nodelay(true)
            .pool_max_idle_per_host(1)
            .build()
            .context("building the HTTP client")?;
        let health = format!("http://{http_addr}/health");
        client
            .get(&health)
            .send()
            .await
            .and_then(|response| response.error_for_status())
            .with_context(|| format!("GET {health}"))?;
        Ok(Self {
            client,
            signal,
            url: format!("http://{http_addr}{}", signal.path()),
            authorization: format!("Bearer {ingest_key}"),
        })
    }
}

impl ExportSender for HttpSender {
    async fn send(&mut self, body: Bytes) -> Attempt {
        let sent = self
            .client
            .post(&self.url)
            .header(CONTENT_TYPE, "application/x-protobuf")
            .header(AUTHORIZATION, &self.authorization)
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => return Attempt::Failed { reason: format!("POST {}: {error}", self.signal.path()) },
        };
        let status = response.status().as_u16();
        // Reading the whole answer lets the connection be reused for the next request.
        let answer = response.bytes().await.unwrap_or_default();
        match status {
            200 => match self.signal.rejected_items(answer) {
                Ok(rejected_items) => Attempt::Accepted { rejected_items },
                Err(error) => Attempt::Failed { reason: format!("HTTP 200 with an undecodable body: {error}") },
            },
            // OTLP/HTTP spec, "Retryable Response Codes".
            429 | 502 | 503 | 504 => Attempt::Retryable { reason: format!("HTTP {status}") },
            _ => Attempt::Failed {
                reason: format!("HTTP {status}: {}", String::from_utf8_lossy(&answer[..answer.len().min(200)])),
            },
        }
    }
}
