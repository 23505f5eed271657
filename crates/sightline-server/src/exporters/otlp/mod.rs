//! OTLP destination: forwards traces, metrics and logs as received to another OTLP endpoint
//! (an OpenTelemetry Collector, Jaeger, another Sightline) over gRPC or HTTP/protobuf.
//!
//! The pieces, each in its own file: [`config`] (where and how), [`request`] (the encoded
//! `Export*ServiceRequest` payloads and how several merge into one request), [`classify`]
//! (what a response means per the OTLP specification: delivered, retry later, or give up) and
//! [`service`] (the client that sends one payload and classifies the answer). Batching,
//! retries and durability belong to the shared delivery driver.

pub mod classify;
pub mod config;
pub mod request;
pub mod service;
pub mod worker;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests;

pub use classify::OtlpOutcome;
pub use config::{OtlpCompression, OtlpDestinationConfig, OtlpProtocol, OtlpSignals};
pub use request::{OtlpPayload, OtlpSignal};
pub use service::OtlpForwarder;
pub use worker::{DeliverySettings, OtlpForwarding};
