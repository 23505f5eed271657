//! What an OTLP destination's answer means, per the OTLP specification
//! (`opentelemetry-proto/docs/specification.md`, "Failures" and "Throttling" for both
//! transports): delivered (possibly with some items rejected: never retried), retry later
//! (honouring the server's `Retry-After` / `RetryInfo`), or a permanent failure.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, StatusCode};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceResponse;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
use prost::Message;
use tonic::Code;
use tonic_types::StatusExt;

use super::request::OtlpSignal;

/// Longest part of a response body kept in a reason (bytes).
const MAX_REASON_BYTES: usize = 512;

/// The meaning of one export attempt's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtlpOutcome {
    /// Accepted. `rejected_items` > 0 is a partial success: the server refused those items
    /// for good and the client must not retry them; `message` is its explanation (or a
    /// warning when nothing was rejected).
    Delivered {
        /// Spans / data points / log records the server rejected.
        rejected_items: u64,
        /// The server's `partial_success.error_message` (may be empty).
        message: String,
    },
    /// A transient failure: send again later, not before `retry_after` when the server said.
    Retry {
        /// The server's `Retry-After` / `RetryInfo.retry_delay`.
        retry_after: Option<Duration>,
        /// What happened (status and message).
        reason: String,
    },
    /// The request will never succeed as it is (bad data, auth, unsupported signal): dead-letter it.
    Permanent {
        /// What happened (status and message).
        reason: String,
    },
}

/// Classifies an OTLP/HTTP response. Only 429, 502, 503 and 504 are retryable (spec,
/// "Retryable Response Codes"); every other non-2xx status is permanent. A 200 body is the
/// signal's `Export*ServiceResponse`, whose `partial_success` counts rejected items.
pub fn classify_http(signal: OtlpSignal, status: StatusCode, headers: &HeaderMap, body: &[u8]) -> OtlpOutcome {
    if status.is_success() {
        let (rejected_items, message) = partial_success(signal, body);
        return OtlpOutcome::Delivered { rejected_items, message };
    }
    let reason = format!("HTTP {}: {}", status.as_u16(), error_message(body));
    match status.as_u16() {
        429 | 502 | 503 | 504 => {
            let retry_after = headers
                .get(http::header::RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| parse_retry_after(value, SystemTime::now()));
            OtlpOutcome::Retry { retry_after, reason }
        }
        _ => OtlpOutcome::Permanent { reason },
    }
}

/// Classifies an OTLP/gRPC failure status. Retryable: CANCELLED, DEADLINE_EXCEEDED, ABORTED,
/// OUT_OF_RANGE, UNAVAILABLE, DATA_LOSS, and RESOURCE_EXHAUSTED only when the server attached
/// `RetryInfo` (spec, "OTLP/gRPC Throttling"). Everything else is permanent.
pub fn classify_grpc_status(status: &tonic::Status) -> OtlpOutcome {
    let reason = format!("gRPC {:?}: {}", status.code(), truncate(status.message()));
    let retry_after = status.get_details_retry_info().and_then(|info| info.retry_delay);
    match status.code() {
        Code::Cancelled
        | Code::DeadlineExceeded
        | Code::Aborted
        | Code::OutOfRange
        | Code::Unavailable
        | Code::DataLoss => OtlpOutcome::Retry { retry_after, reason },
        Code::ResourceExhausted if retry_after.is_some() => OtlpOutcome::Retry { retry_after, reason },
        _ => OtlpOutcome::Permanent { reason },
    }
}

/// The partial success of a decoded gRPC response or an HTTP 200 body: (rejected, message).
/// An undecodable body counts as a full success (the server said 200).
pub fn partial_success(signal: OtlpSignal, body: &[u8]) -> (u64, String) {
    let decoded = match signal {
        OtlpSignal::Traces => ExportTraceServiceResponse::decode(body)
            .ok()
            .and_then(|response| response.partial_success)
            .map(|partial| (partial.rejected_spans, partial.error_message)),
        OtlpSignal::Metrics => ExportMetricsServiceResponse::decode(body)
            .ok()
            .and_then(|response| response.partial_success)
            .map(|partial| (partial.rejected_data_points, partial.error_message)),
        OtlpSignal::Logs => ExportLogsServiceResponse::decode(body)
            .ok()
            .and_then(|response| response.partial_success)
            .map(|partial| (partial.rejected_log_records, partial.error_message)),
    };
    decoded.map(|(rejected, message)| (rejected.max(0) as u64, message)).unwrap_or_default()
}

/// `Retry-After` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), relative to `now`.
/// A date in the past means "now" (zero); anything else unreadable is `None`.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let date = httpdate::parse_http_date(value).ok()?;
    Some(date.duration_since(now).unwrap_or(Duration::ZERO))
}

/// An error body's message: `google.rpc.Status.message` when it decodes as one (what OTLP/HTTP
/// servers send), else the body as text, cut to [`MAX_REASON_BYTES`].
fn error_message(body: &[u8]) -> String {
    if let Ok(status) = tonic_types::pb::Status::decode(body)
        && !status.message.is_empty()
    {
        return truncate(&status.message);
    }
    truncate(&String::from_utf8_lossy(body))
}

fn truncate(text: &str) -> String {
    if text.len() <= MAX_REASON_BYTES {
        return text.to_owned();
    }
    let mut end = MAX_REASON_BYTES;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTracePartialSuccess;
    use tonic_types::ErrorDetails;

    use super::*;

    fn headers(retry_after: Option<&str>) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Some(value) = retry_after {
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn only_the_four_retryable_http_statuses_are_retried() {
        for code in [429, 502, 503, 504] {
            let outcome =
                classify_http(OtlpSignal::Traces, StatusCode::from_u16(code).unwrap(), &headers(Some("7")), b"busy");
            assert_eq!(
                outcome,
                OtlpOutcome::Retry { retry_after: Some(Duration::from_secs(7)), reason: format!("HTTP {code}: busy") }
            );
        }
        for code in [400, 401, 403, 404, 413, 415, 500, 501] {
            let outcome = classify_http(OtlpSignal::Logs, StatusCode::from_u16(code).unwrap(), &headers(None), b"no");
            assert!(matches!(outcome, OtlpOutcome::Permanent { .. }), "{code}: {outcome:?}");
        }
    }

    #[test]
    fn a_200_with_partial_success_is_delivered_and_counts_the_rejected() {
        let body = ExportTraceServiceResponse {
            partial_success: Some(ExportTracePartialSuccess {
                rejected_spans: 3,
                error_message: "3 spans had empty ids".into(),
            }),
        }
        .encode_to_vec();
        let outcome = classify_http(OtlpSignal::Traces, StatusCode::OK, &headers(None), &body);
        assert_eq!(outcome, OtlpOutcome::Delivered { rejected_items: 3, message: "3 spans had empty ids".into() });
        let empty = classify_http(OtlpSignal::Metrics, StatusCode::OK, &headers(None), b"");
        assert_eq!(empty, OtlpOutcome::Delivered { rejected_items: 0, message: String::new() });
    }

    #[test]
    fn error_bodies_in_google_rpc_status_give_their_message() {
        let body =
            tonic_types::pb::Status { code: 3, message: "invalid span id".into(), details: vec![] }.encode_to_vec();
        let outcome = classify_http(OtlpSignal::Traces, StatusCode::BAD_REQUEST, &headers(None), &body);
        assert_eq!(outcome, OtlpOutcome::Permanent { reason: "HTTP 400: invalid span id".into() });
        let long = "x".repeat(5_000);
        let OtlpOutcome::Permanent { reason } =
            classify_http(OtlpSignal::Traces, StatusCode::BAD_REQUEST, &headers(None), long.as_bytes())
        else {
            panic!("permanent expected");
        };
        assert!(reason.len() < 600, "reasons are bounded: {}", reason.len());
    }

    #[test]
    fn retry_after_accepts_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480);
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        // RFC 9110's example date is 1445412480 s after the epoch.
        assert_eq!(parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", now), Some(Duration::ZERO));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30)),
            "a future date is the time until it"
        );
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn grpc_codes_follow_the_spec_table() {
        for code in [
            Code::Cancelled,
            Code::DeadlineExceeded,
            Code::Aborted,
            Code::OutOfRange,
            Code::Unavailable,
            Code::DataLoss,
        ] {
            let outcome = classify_grpc_status(&tonic::Status::new(code, "x"));
            assert!(matches!(outcome, OtlpOutcome::Retry { retry_after: None, .. }), "{code:?}: {outcome:?}");
        }
        for code in
            [Code::InvalidArgument, Code::Unauthenticated, Code::PermissionDenied, Code::Unimplemented, Code::Internal]
        {
            let outcome = classify_grpc_status(&tonic::Status::new(code, "x"));
            assert!(matches!(outcome, OtlpOutcome::Permanent { .. }), "{code:?}: {outcome:?}");
        }
        let bare = classify_grpc_status(&tonic::Status::new(Code::ResourceExhausted, "full"));
        assert!(matches!(bare, OtlpOutcome::Permanent { .. }), "RESOURCE_EXHAUSTED without RetryInfo: {bare:?}");
        let with_info = tonic::Status::with_error_details(
            Code::ResourceExhausted,
            "full",
            ErrorDetails::with_retry_info(Some(Duration::from_secs(4))),
        );
        assert_eq!(
            classify_grpc_status(&with_info),
            OtlpOutcome::Retry {
                retry_after: Some(Duration::from_secs(4)),
                reason: "gRPC ResourceExhausted: full".into()
            }
        );
    }
}
