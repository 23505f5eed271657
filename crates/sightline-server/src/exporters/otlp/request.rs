//! Payloads to forward: one protobuf-encoded `Export{Trace,Metrics,Logs}ServiceRequest` each,
//! and merging several into one request.
//!
//! Merging needs no decoding: the protobuf encoding of a message whose fields are all repeated
//! (an export request holds only `resource_spans` / `resource_metrics` / `resource_logs`) is the
//! concatenation of its elements, and "concatenating two serialized messages merges them:
//! repeated fields are appended" (protobuf encoding guide, "Last One Wins" / merging).

use bytes::{Bytes, BytesMut};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// The OTLP signal of a payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum OtlpSignal {
    /// `ExportTraceServiceRequest`.
    Traces,
    /// `ExportMetricsServiceRequest`.
    Metrics,
    /// `ExportLogsServiceRequest`.
    Logs,
}

impl OtlpSignal {
    /// Stored / metric label name: `traces`, `metrics`, `logs`.
    pub fn as_str(&self) -> &'static str {
        match self {
            OtlpSignal::Traces => "traces",
            OtlpSignal::Metrics => "metrics",
            OtlpSignal::Logs => "logs",
        }
    }

    /// Parses [`OtlpSignal::as_str`].
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "traces" => Some(OtlpSignal::Traces),
            "metrics" => Some(OtlpSignal::Metrics),
            "logs" => Some(OtlpSignal::Logs),
            _ => None,
        }
    }

    /// The OTLP/HTTP path appended to the endpoint (OTLP spec, "OTLP/HTTP Request").
    pub fn http_path(&self) -> &'static str {
        match self {
            OtlpSignal::Traces => "v1/traces",
            OtlpSignal::Metrics => "v1/metrics",
            OtlpSignal::Logs => "v1/logs",
        }
    }
}

/// One encoded export request and how many items (spans, data points, log records) it holds.
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpPayload {
    /// The signal.
    pub signal: OtlpSignal,
    /// Protobuf encoding of the signal's `Export*ServiceRequest`.
    pub body: Bytes,
    /// Spans, data points or log records inside (for delivery counters).
    pub items: u64,
}

impl OtlpPayload {
    /// Encodes a trace export request.
    pub fn traces(request: &ExportTraceServiceRequest) -> Self {
        let items = request
            .resource_spans
            .iter()
            .flat_map(|resource| &resource.scope_spans)
            .map(|scope| scope.spans.len() as u64)
            .sum();
        Self { signal: OtlpSignal::Traces, body: request.encode_to_vec().into(), items }
    }

    /// Encodes a metrics export request; items are data points.
    pub fn metrics(request: &ExportMetricsServiceRequest) -> Self {
        use opentelemetry_proto::tonic::metrics::v1::metric::Data;
        let points = |data: &Option<Data>| -> u64 {
            match data {
                Some(Data::Gauge(gauge)) => gauge.data_points.len() as u64,
                Some(Data::Sum(sum)) => sum.data_points.len() as u64,
                Some(Data::Histogram(histogram)) => histogram.data_points.len() as u64,
                Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len() as u64,
                Some(Data::Summary(summary)) => summary.data_points.len() as u64,
                None => 0,
            }
        };
        let items = request
            .resource_metrics
            .iter()
            .flat_map(|resource| &resource.scope_metrics)
            .flat_map(|scope| &scope.metrics)
            .map(|metric| points(&metric.data))
            .sum();
        Self { signal: OtlpSignal::Metrics, body: request.encode_to_vec().into(), items }
    }

    /// Encodes a logs export request.
    pub fn logs(request: &ExportLogsServiceRequest) -> Self {
        let items = request
            .resource_logs
            .iter()
            .flat_map(|resource| &resource.scope_logs)
            .map(|scope| scope.log_records.len() as u64)
            .sum();
        Self { signal: OtlpSignal::Logs, body: request.encode_to_vec().into(), items }
    }
}

/// Merges payloads of one signal into as few requests as possible, each at most
/// `max_request_bytes` (a payload larger than that alone goes out alone). Payloads of another
/// signal than the first are an error of the caller and are left out of the result.
pub fn merge(payloads: &[OtlpPayload], max_request_bytes: usize) -> Vec<OtlpPayload> {
    let Some(first) = payloads.first() else {
        return Vec::new();
    };
    let signal = first.signal;
    let mut merged = Vec::new();
    let mut body = BytesMut::new();
    let mut items = 0;
    for payload in payloads.iter().filter(|payload| payload.signal == signal) {
        if !body.is_empty() && body.len() + payload.body.len() > max_request_bytes {
            merged.push(OtlpPayload { signal, body: std::mem::take(&mut body).freeze(), items });
            items = 0;
        }
        body.extend_from_slice(&payload.body);
        items += payload.items;
    }
    if !body.is_empty() || items > 0 {
        merged.push(OtlpPayload { signal, body: body.freeze(), items });
    }
    merged
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};

    use super::*;

    fn trace_request(names: &[&str]) -> ExportTraceServiceRequest {
        let spans = names.iter().map(|name| Span { name: (*name).into(), ..Default::default() }).collect();
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                scope_spans: vec![ScopeSpans { spans, ..Default::default() }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn merged_bytes_decode_to_the_concatenated_requests() {
        let first = OtlpPayload::traces(&trace_request(&["a", "b"]));
        let second = OtlpPayload::traces(&trace_request(&["c"]));
        let merged = merge(&[first, second], usize::MAX);
        assert_eq!(merged.len(), 1);
        assert_eq!(merged[0].items, 3);
        let decoded = ExportTraceServiceRequest::decode(merged[0].body.clone()).unwrap();
        let names: Vec<Vec<&str>> = decoded
            .resource_spans
            .iter()
            .map(|resource| resource.scope_spans[0].spans.iter().map(|span| span.name.as_str()).collect())
            .collect();
        assert_eq!(names, vec![vec!["a", "b"], vec!["c"]]);
    }

    #[test]
    fn merge_splits_at_the_size_limit_and_keeps_oversized_payloads_whole() {
        let payloads: Vec<OtlpPayload> =
            (0..5).map(|index| OtlpPayload::traces(&trace_request(&[&"x".repeat(100 + index)]))).collect();
        let one = payloads[0].body.len();
        let merged = merge(&payloads, one * 2 + 5);
        assert_eq!(merged.iter().map(|payload| payload.items).sum::<u64>(), 5);
        assert!(merged.len() >= 3, "{} requests", merged.len());
        for payload in &merged {
            assert!(payload.body.len() <= one * 2 + 5 || payload.items == 1);
            ExportTraceServiceRequest::decode(payload.body.clone()).unwrap();
        }
        let tiny = merge(&payloads, 1);
        assert_eq!(tiny.len(), 5, "each payload alone when the limit is below one payload");
    }

    #[test]
    fn items_count_spans_points_and_records() {
        assert_eq!(OtlpPayload::traces(&trace_request(&["a", "b", "c"])).items, 3);
        assert_eq!(OtlpPayload::logs(&ExportLogsServiceRequest::default()).items, 0);
        assert_eq!(merge(&[], 10), Vec::new());
    }
}
