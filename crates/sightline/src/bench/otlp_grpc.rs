//! OTLP/gRPC client side of the benchmark: one tonic channel (one HTTP/2 connection) per
//! simulated exporter, calling `TraceService/Export`.
//!
//! The request bodies are the same pre-encoded protobuf bytes the HTTP phase sends, framed by a
//! pass-through codec, instead of `TraceServiceClient` re-encoding a decoded message on every
//! call: on a 2-core machine the client shares the CPU with the server, so client-side
//! encoding would lower the server's figure and make gRPC and HTTP incomparable. On the wire it
//! is the same call `TraceServiceClient::export` makes.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::Context;
use bytes::{BufMut, Bytes};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::Status;
use tonic::client::Grpc;
use tonic::codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::metadata::MetadataValue;
use tonic::transport::{Channel, Endpoint};

use super::load::{Attempt, ExportSender};

/// The method `TraceServiceClient::export` calls (opentelemetry-proto's generated client).
const EXPORT_PATH: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

/// OTLP exporters' default export timeout.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// One OTLP/gRPC exporter connection.
pub struct GrpcSender {
    grpc: Grpc<Channel>,
    authorization: MetadataValue<tonic::metadata::Ascii>,
}

impl GrpcSender {
    /// Connects to the server at `grpc_addr` (the connection is open when this returns).
    pub async fn connect(grpc_addr: SocketAddr, ingest_key: &str) -> anyhow::Result<Self> {
        let channel = Endpoint::from_shared(format!("http://{grpc_addr}"))
            .context("gRPC endpoint")?
            .tcp_nodelay(true)
            .timeout(REQUEST_TIMEOUT)
            .connect()
            .await
            .with_context(|| format!("connecting to {grpc_addr} (gRPC)"))?;
        let authorization =
            MetadataValue::try_from(format!("Bearer {ingest_key}")).context("the ingest key is not valid metadata")?;
        Ok(Self { grpc: Grpc::new(channel), authorization })
    }
}

impl ExportSender for GrpcSender {
    async fn send(&mut self, body: Bytes) -> Attempt {
        let mut request = tonic::Request::new(body);
        request.metadata_mut().insert("authorization", self.authorization.clone());
        if let Err(error) = self.grpc.ready().await {
            return Attempt::Failed { reason: format!("gRPC channel not ready: {error}") };
        }
        let answer = self.grpc.unary(request, PathAndQuery::from_static(EXPORT_PATH), PreEncodedCodec).await;
        match answer {
            Ok(response) => Attempt::Accepted {
                rejected_items: response
                    .into_inner()
                    .partial_success
                    .map(|partial| partial.rejected_spans.max(0) as u64)
                    .unwrap_or(0),
            },
            // OTLP/gRPC: the server sends RESOURCE_EXHAUSTED with RetryInfo when its queue is
            // full and UNAVAILABLE when storage fails; both are retried.
            Err(status) if matches!(status.code(), tonic::Code::ResourceExhausted | tonic::Code::Unavailable) => {
                Attempt::Retryable { reason: format!("gRPC {:?}", status.code()) }
            }
            Err(status) => Attempt::Failed { reason: format!("gRPC {:?}: {}", status.code(), status.message()) },
        }
    }
}

/// Sends already-encoded request bytes and decodes the `ExportTraceServiceResponse`.
#[derive(Clone, Copy)]
struct PreEncodedCodec;

struct PreEncodedEncoder;

struct ExportResponseDecoder;

impl Codec for PreEncodedCodec {
    type Encode = Bytes;
    type Decode = ExportTraceServiceResponse;
    type Encoder = PreEncodedEncoder;
    type Decoder = ExportResponseDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        PreEncodedEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ExportResponseDecoder
    }
}

impl Encoder for PreEncodedEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, destination: &mut EncodeBuf<'_>) -> Result<(), Status> {
        destination.put(item);
        Ok(())
    }
}

impl Decoder for ExportResponseDecoder {
    type Item = ExportTraceServiceResponse;
    type Error = Status;

    fn decode(&mut self, source: &mut DecodeBuf<'_>) -> Result<Option<Self::Item>, Status> {
        ExportTraceServiceResponse::decode(source)
            .map(Some)
            .map_err(|error| Status::internal(format!("undecodable ExportTraceServiceResponse: {error}")))
    }
}
