//! Ingest errors and their protocol answers, in one place: HTTP status (+ `Retry-After`) for
//! OTLP/HTTP and `/api`, gRPC code (+ `RetryInfo`) for OTLP/gRPC.
//!
//! Retryability follows the OTLP spec: only 429/502/503/504 are retryable over HTTP; over gRPC
//! RESOURCE_EXHAUSTED is retryable only with RetryInfo, so an oversize message is answered
//! RESOURCE_EXHAUSTED *without* RetryInfo (tonic's own OUT_OF_RANGE would invite retries).

use std::time::Duration;

use http::StatusCode;
use tonic_types::{ErrorDetails, StatusExt};

use crate::store::StoreError;

/// Why an ingest request was not (fully) accepted.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    /// No key, or an unknown or revoked key.
    #[error("missing or unknown API key: send it as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'")]
    Unauthenticated,
    /// The key exists but may not do this (e.g. a read-only key used to ingest).
    #[error("this API key may not {0}")]
    PermissionDenied(&'static str),
    /// Body larger than the limit after decompression.
    #[error("request body exceeds {limit_bytes} bytes after decompression")]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit_bytes: usize,
    },
    /// Content-Type or Content-Encoding not supported.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Undecodable body (bad protobuf, JSON or compression stream).
    #[error("{0}")]
    BadRequest(String),
    /// The ingest queue is full: retry after the delay.
    #[error("ingest queue is full; retry after {} s", retry_after.as_secs().max(1))]
    Overloaded {
        /// How long the client should wait.
        retry_after: Duration,
    },
    /// Storage failed or the server is shutting down: nothing was acknowledged; retry.
    #[error("temporarily unavailable: {reason}")]
    Unavailable {
        /// What failed.
        reason: String,
        /// How long the client should wait.
        retry_after: Duration,
    },
}

impl IngestError {
    /// The HTTP status for this error.
    pub fn http_status(&self) -> StatusCode {
        match self {
            IngestError::Unauthenticated => StatusCode::UNAUTHORIZED,
            IngestError::PermissionDenied(_) => StatusCode::FORBIDDEN,
            IngestError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            IngestError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            IngestError::BadRequest(_) => StatusCode::BAD_REQUEST,
            IngestError::Overloaded { .. } => StatusCode::TOO_MANY_REQUESTS,
            IngestError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// Seconds for a `Retry-After` header, for retryable errors.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match self {
            IngestError::Overloaded { retry_after } | IngestError::Unavailable { retry_after, .. } => {
                Some(retry_after.as_secs().max(1))
            }
            _ => None,
        }
    }

    /// The `google.rpc.Code` matching [`IngestError::to_grpc_status`], for `google.rpc.Status`
    /// bodies over HTTP.
    pub fn rpc_code(&self) -> tonic::Code {
        match self {
            IngestError::Unauthenticated => tonic::Code::Unauthenticated,
            IngestError::PermissionDenied(_) => tonic::Code::PermissionDenied,
            IngestError::PayloadTooLarge { .. } => tonic::Code::ResourceExhausted,
            IngestError::UnsupportedMediaType(_) | IngestError::BadRequest(_) => tonic::Code::InvalidArgument,
            IngestError::Overloaded { .. } => tonic::Code::ResourceExhausted,
            IngestError::Unavailable { .. } => tonic::Code::Unavailable,
        }
    }

    /// The gRPC status: retryable ones carry `google.rpc.RetryInfo`.
    pub fn to_grpc_status(&self) -> tonic::Status {
        let message = self.to_string();
        match self.retry_after_secs() {
            Some(seconds) => {
                let details = ErrorDetails::with_retry_info(Some(Duration::from_secs(seconds)));
                tonic::Status::with_error_details(self.rpc_code(), message, details)
            }
            None => tonic::Status::new(self.rpc_code(), message),
        }
    }
}

impl From<StoreError> for IngestError {
    fn from(error: StoreError) -> Self {
        IngestError::Unavailable { reason: error.to_string(), retry_after: Duration::from_secs(1) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overload_is_retryable_and_oversize_is_not() {
        let overloaded = IngestError::Overloaded { retry_after: Duration::from_secs(2) }.to_grpc_status();
        assert_eq!(overloaded.code(), tonic::Code::ResourceExhausted);
        assert_eq!(overloaded.get_details_retry_info().and_then(|info| info.retry_delay), Some(Duration::from_secs(2)));

        let oversize = IngestError::PayloadTooLarge { limit_bytes: 10 }.to_grpc_status();
        assert_eq!(oversize.code(), tonic::Code::ResourceExhausted);
        assert!(oversize.get_details_retry_info().is_none());
        assert_eq!(IngestError::PayloadTooLarge { limit_bytes: 10 }.http_status(), StatusCode::PAYLOAD_TOO_LARGE);
    }
}
