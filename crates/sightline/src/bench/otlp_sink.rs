//! A loopback OTLP/HTTP trace sink for `sightline bench ingest --forward-otlp`: it decodes
//! each forwarded request (gzip, protobuf) as a real receiver would, counts the spans and notes
//! when the first and the last arrived, and answers 200 with an empty response.

use std::io::Read;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// What the sink received so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct SinkCounts {
    /// Spans decoded.
    pub spans: u64,
    /// Requests received.
    pub requests: u64,
    /// Bytes received (as sent, compressed).
    pub bytes: u64,
    /// When the first request arrived.
    pub first_at: Option<Instant>,
    /// When the latest request arrived.
    pub last_at: Option<Instant>,
}

/// A running sink.
pub struct OtlpSink {
    /// Where it listens (`http://{address}` is the OTLP/HTTP endpoint).
    pub address: SocketAddr,
    counts: Arc<Mutex<SinkCounts>>,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpSink {
    /// Starts the sink on an ephemeral loopback port.
    pub async fn start() -> anyhow::Result<Self> {
        let counts = Arc::new(Mutex::new(SinkCounts::default()));
        let app = Router::new().route("/v1/traces", post(receive)).with_state(counts.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let address = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, counts, task })
    }

    /// A snapshot of the counts.
    pub fn counts(&self) -> SinkCounts {
        self.counts.lock().map(|counts| *counts).unwrap_or_default()
    }
}

impl Drop for OtlpSink {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn receive(State(counts): State<Arc<Mutex<SinkCounts>>>, headers: HeaderMap, body: Bytes) -> StatusCode {
    let received_bytes = body.len() as u64;
    let gzipped = headers.get("content-encoding").is_some_and(|value| value.as_bytes() == b"gzip");
    let decoded = tokio::task::spawn_blocking(move || -> Option<u64> {
        let raw = if gzipped {
            let mut raw = Vec::new();
            flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut raw).ok()?;
            Bytes::from(raw)
        } else {
            body
        };
        let request = ExportTraceServiceRequest::decode(raw).ok()?;
        Some(
            request
                .resource_spans
                .iter()
                .flat_map(|resource| &resource.scope_spans)
                .map(|scope| scope.spans.len() as u64)
                .sum(),
        )
    })
    .await
    .ok()
    .flatten();
    let Some(spans) = decoded else {
        return StatusCode::BAD_REQUEST;
    };
    let now = Instant::now();
    if let Ok(mut counts) = counts.lock() {
        counts.spans += spans;
        counts.requests += 1;
        counts.bytes += received_bytes;
        counts.first_at.get_or_insert(now);
        counts.last_at = Some(now);
    }
    StatusCode::OK
}
