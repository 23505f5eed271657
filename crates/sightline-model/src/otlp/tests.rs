//! Decoder tests on the OTLP/JSON example files shipped with opentelemetry-proto
//! (`opentelemetry-proto/examples/*.json`, copied to `tests/fixtures/otlp/*.input.json`).

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use serde_json::json;

use super::*;
use crate::span::kind;

const TRACE_JSON: &str = include_str!("../../tests/fixtures/otlp/trace.input.json");
const LOGS_JSON: &str = include_str!("../../tests/fixtures/otlp/logs.input.json");
const EVENTS_JSON: &str = include_str!("../../tests/fixtures/otlp/events.input.json");
const METRICS_JSON: &str = include_str!("../../tests/fixtures/otlp/metrics.input.json");

#[test]
fn example_trace_decodes_field_by_field() {
    let request: ExportTraceServiceRequest = serde_json::from_str(TRACE_JSON).unwrap();
    let converted = convert_traces(&request);
    assert_eq!(converted.rejected, 0, "{}", converted.error_message());
    assert_eq!(converted.accepted(), 1);
    let group = &converted.batch[0];
    assert_eq!(group.resource.service_name(), "my.service");
    let scope = &group.scopes[0].scope;
    assert_eq!((scope.name.as_str(), scope.version.as_str()), ("my.library", "1.0.0"));
    assert_eq!(scope.attributes.get_str("my.scope.attribute"), Some("some scope attribute"));
    let span = &group.scopes[0].items[0];
    assert_eq!(span.trace_id.to_hex(), "5b8efff798038103d269b633813fc60c");
    assert_eq!(span.span_id.to_hex(), "eee19b7ec3c1b174");
    assert_eq!(span.parent_span_id.unwrap().to_hex(), "eee19b7ec3c1b173");
    assert_eq!(span.name, "I'm a server span");
    assert_eq!(span.kind, kind::SERVER);
    assert_eq!(span.start_time_unix_nano, 1_544_712_660_000_000_000);
    assert_eq!(span.duration_nanos(), 1_000_000_000);
    assert_eq!(span.attributes.get_str("my.span.attr"), Some("some value"));
}

#[test]
fn example_logs_keep_every_value_type() {
    let request: ExportLogsServiceRequest = serde_json::from_str(LOGS_JSON).unwrap();
    let converted = convert_logs(&request);
    assert_eq!(converted.rejected, 0, "{}", converted.error_message());
    let record = &converted.batch[0].scopes[0].items[0];
    assert_eq!(record.severity_number, 10);
    assert_eq!(record.severity_text, "Information");
    assert_eq!(record.body, json!("Example log record"));
    assert_eq!(record.trace_id.unwrap().to_hex(), "5b8efff798038103d269b633813fc60c");
    assert_eq!(record.attributes.0["int.attribute"], json!(10));
    assert_eq!(record.attributes.0["double.attribute"], json!(637.704));
    assert_eq!(record.attributes.0["boolean.attribute"], json!(true));
    assert_eq!(record.attributes.0["array.attribute"], json!(["many", "values"]));
    assert!(record.attributes.0["map.attribute"]["kvlist"].is_object());
}

#[test]
fn example_event_keeps_event_name_and_structured_body() {
    let request: ExportLogsServiceRequest = serde_json::from_str(EVENTS_JSON).unwrap();
    let converted = convert_logs(&request);
    let record = &converted.batch[0].scopes[0].items[0];
    assert_eq!(record.event_name, "browser.page_view");
    assert_eq!(record.body["kvlist"]["type"], json!(0));
    assert_eq!(record.body["kvlist"]["url"], json!("https://www.guidgenerator.com/online-guid-generator.aspx"));
}

#[test]
fn example_metrics_cover_every_type() {
    let request: ExportMetricsServiceRequest = serde_json::from_str(METRICS_JSON).unwrap();
    let converted = convert_metrics(&request);
    assert_eq!(converted.rejected, 0, "{}", converted.error_message());
    let metrics = &converted.batch[0].scopes[0].items;
    let types: Vec<&str> = metrics.iter().map(|metric| metric.kind.type_name()).collect();
    assert_eq!(types, ["sum", "gauge", "histogram", "exponential_histogram"]);
    assert!(metrics[0].kind.is_monotonic());
    match &metrics[2].points[0].value {
        PointValue::Histogram { bucket_counts, explicit_bounds, .. } => {
            assert_eq!(bucket_counts.len(), explicit_bounds.len() + 1);
        }
        other => panic!("expected a histogram point, got {other:?}"),
    }
}

#[test]
fn malformed_json_values_are_rejected_not_silently_dropped() {
    // `asDouble` as an object is malformed; opentelemetry-proto's flattened oneof decodes it as
    // "no value" instead of failing (opentelemetry-rust #3527).
    let body = json!({"resourceMetrics": [{"scopeMetrics": [{"metrics": [
        {"name": "ok", "gauge": {"dataPoints": [{"asDouble": 1.5, "timeUnixNano": "1"}]}},
        {"name": "bad.point", "gauge": {"dataPoints": [{"asDoubel": 2.5, "timeUnixNano": "1"}]}},
        {"name": "bad.data", "gaueg": {"dataPoints": [{"asDouble": 2.5}]}}
    ]}]}]});
    let request: ExportMetricsServiceRequest = serde_json::from_value(body).unwrap();
    let converted = convert_metrics(&request);
    assert_eq!(converted.accepted(), 1);
    assert_eq!(converted.rejected, 2);
    let message = converted.error_message();
    assert!(message.contains("metrics[1].dataPoints[0]"), "{message}");
    assert!(message.contains("metrics[2]: data"), "{message}");
}

#[test]
fn bad_ids_and_missing_fields_are_rejected_per_span() {
    let body = json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "name": "ok", "startTimeUnixNano": "1"},
        {"traceId": "5b8efff798038103", "spanId": "eee19b7ec3c1b174", "name": "short trace id", "startTimeUnixNano": "1"},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "0000000000000000", "name": "zero span id", "startTimeUnixNano": "1"},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b175", "name": "", "startTimeUnixNano": "1"},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b176", "name": "no start"}
    ]}]}]});
    let request: ExportTraceServiceRequest = serde_json::from_value(body).unwrap();
    let converted = convert_traces(&request);
    assert_eq!(converted.accepted(), 1);
    assert_eq!(converted.rejected, 4);
    let message = converted.error_message();
    assert!(message.contains("spans[1]: trace_id must be 16 bytes, got 8"), "{message}");
    assert!(message.contains("spans[2]: span_id must not be all zeros"), "{message}");
    assert!(message.contains("spans[3]: name is required"), "{message}");
}
