//! Receivers: decode, authenticate and bound requests, then hand them to the
//! [`crate::pipeline::Ingestor`]. They answer only after the data is committed.

pub mod body;
pub mod events_http;
pub mod otlp_grpc;
pub mod otlp_http;
