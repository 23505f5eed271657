//! OTLP export requests → model batches, validating every item.
//!
//! Invalid items are left out and counted, so the receiver can answer with OTLP
//! `partial_success` (`rejected_spans` / `rejected_log_records` / `rejected_data_points` and an
//! `error_message`) while keeping the valid ones (OTLP spec, "Partial Success").
//!
//! Validation also catches what OTLP/JSON decoding loses silently: opentelemetry-proto's serde
//! flattening turns a malformed `Metric.data`, `NumberDataPoint.value` or `Exemplar.value` into
//! "absent" instead of an error (opentelemetry-rust issue #3527), so an absent value here is
//! reported as a rejected item rather than stored as nothing.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::InstrumentationScope;
use opentelemetry_proto::tonic::metrics::v1 as otlp_metrics;
use opentelemetry_proto::tonic::resource::v1::Resource as OtlpResource;
use opentelemetry_proto::tonic::trace::v1 as otlp_trace;
use serde_json::Value;

use crate::attributes::{Attributes, encode_any_value};
use crate::ids::{SpanId, TraceId};
use crate::log::LogRecord;
use crate::metric::{Exemplar, Metric, MetricKind, MetricPoint, NumberValue, PointValue};
use crate::resource::{Resource, ResourceGroup, Scope, ScopeGroup};
use crate::span::{Span, SpanEvent, SpanLink};
use crate::{Batch, Countable, batch_len};

/// How many distinct rejection reasons an `error_message` lists before summarising.
const MAX_LISTED_REASONS: usize = 5;

/// The valid items of a request and an account of the rejected ones.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted<T> {
    /// Valid items, in request order.
    pub batch: Batch<T>,
    /// Number of rejected items (spans, log records or data points).
    pub rejected: u64,
    /// Human-readable reasons, first few distinct ones with their item paths.
    pub reasons: Vec<String>,
}

impl<T: Countable> Converted<T> {
    /// Number of accepted items.
    pub fn accepted(&self) -> usize {
        batch_len(&self.batch)
    }

    /// The OTLP `partial_success.error_message`: empty when nothing was rejected.
    pub fn error_message(&self) -> String {
        if self.rejected == 0 {
            return String::new();
        }
        let mut message = format!("{} item(s) rejected: {}", self.rejected, self.reasons.join("; "));
        if self.reasons.len() >= MAX_LISTED_REASONS {
            message.push_str("; ...");
        }
        message
    }
}

struct Rejections {
    rejected: u64,
    reasons: Vec<String>,
}

impl Rejections {
    fn new() -> Self {
        Self { rejected: 0, reasons: Vec::new() }
    }

    fn reject(&mut self, count: u64, path: impl FnOnce() -> String, reason: &str) {
        self.rejected += count;
        if self.reasons.len() < MAX_LISTED_REASONS {
            self.reasons.push(format!("{}: {reason}", path()));
        }
    }
}

fn convert_resource(resource: Option<&OtlpResource>, schema_url: &str) -> Resource {
    let Some(resource) = resource else {
        return Resource { schema_url: schema_url.to_owned(), ..Resource::default() };
    };
    let entity_refs = if resource.entity_refs.is_empty() {
        Value::Null
    } else {
        Value::Array(
            resource
                .entity_refs
                .iter()
                .map(|entity_ref| {
                    serde_json::json!({
                        "schema_url": entity_ref.schema_url,
                        "type": entity_ref.r#type,
                        "id_keys": entity_ref.id_keys,
                        "description_keys": entity_ref.description_keys,
                    })
                })
                .collect(),
        )
    };
    Resource {
        attributes: Attributes::from_otlp(&resource.attributes),
        dropped_attributes_count: resource.dropped_attributes_count,
        schema_url: schema_url.to_owned(),
        entity_refs,
    }
}

fn convert_scope(scope: Option<&InstrumentationScope>, schema_url: &str) -> Scope {
    let Some(scope) = scope else {
        return Scope { schema_url: schema_url.to_owned(), ..Scope::default() };
    };
    Scope {
        name: scope.name.clone(),
        version: scope.version.clone(),
        attributes: Attributes::from_otlp(&scope.attributes),
        dropped_attributes_count: scope.dropped_attributes_count,
        schema_url: schema_url.to_owned(),
    }
}

/// Converts an `ExportTraceServiceRequest`. A span is rejected when its trace id is not 16
/// non-zero bytes, its span id not 8 non-zero bytes, its parent span id neither empty nor 8
/// bytes, a link id is malformed, its name is empty, or its start time is 0.
pub fn convert_traces(request: &ExportTraceServiceRequest) -> Converted<Span> {
    let mut rejections = Rejections::new();
    let mut batch = Vec::with_capacity(request.resource_spans.len());
    for (resource_index, resource_spans) in request.resource_spans.iter().enumerate() {
        let resource = convert_resource(resource_spans.resource.as_ref(), &resource_spans.schema_url);
        let mut scopes = Vec::with_capacity(resource_spans.scope_spans.len());
        for (scope_index, scope_spans) in resource_spans.scope_spans.iter().enumerate() {
            let mut items = Vec::with_capacity(scope_spans.spans.len());
            for (span_index, span) in scope_spans.spans.iter().enumerate() {
                match convert_span(span) {
                    Ok(converted) => items.push(converted),
                    Err(reason) => rejections.reject(
                        1,
                        || format!("resourceSpans[{resource_index}].scopeSpans[{scope_index}].spans[{span_index}]"),
                        &reason,
                    ),
                }
            }
            if !items.is_empty() {
                let scope = convert_scope(scope_spans.scope.as_ref(), &scope_spans.schema_url);
                scopes.push(ScopeGroup { scope, items });
            }
        }
        if !scopes.is_empty() {
            batch.push(ResourceGroup { resource, scopes });
        }
    }
    Converted { batch, rejected: rejections.rejected, reasons: rejections.reasons }
}

fn convert_span(span: &otlp_trace::Span) -> Result<Span, String> {
    let trace_id = TraceId::from_bytes(&span.trace_id).map_err(|error| error.to_string())?;
    let span_id = SpanId::from_bytes(&span.span_id).map_err(|error| error.to_string())?;
    let parent_span_id =
        SpanId::from_optional_bytes(&span.parent_span_id).map_err(|error| format!("parent_{error}"))?;
    if span.name.is_empty() {
        return Err("name is required".to_owned());
    }
    if span.start_time_unix_nano == 0 {
        return Err("start_time_unix_nano is required".to_owned());
    }
    let mut links = Vec::with_capacity(span.links.len());
    for link in &span.links {
        links.push(SpanLink {
            trace_id: TraceId::from_bytes(&link.trace_id).map_err(|error| format!("link {error}"))?,
            span_id: SpanId::from_bytes(&link.span_id).map_err(|error| format!("link {error}"))?,
            trace_state: link.trace_state.clone(),
            attributes: Attributes::from_otlp(&link.attributes),
            dropped_attributes_count: link.dropped_attributes_count,
            flags: link.flags,
        });
    }
    let (status_code, status_message) = match &span.status {
        Some(status) => (status.code, status.message.clone()),
        None => (0, String::new()),
    };
    Ok(Span {
        trace_id,
        span_id,
        parent_span_id,
        trace_state: span.trace_state.clone(),
        flags: span.flags,
        name: span.name.clone(),
        kind: span.kind,
        start_time_unix_nano: span.start_time_unix_nano,
        end_time_unix_nano: span.end_time_unix_nano,
        attributes: Attributes::from_otlp(&span.attributes),
        dropped_attributes_count: span.dropped_attributes_count,
        events: span
            .events
            .iter()
            .map(|event| SpanEvent {
                time_unix_nano: event.time_unix_nano,
                name: event.name.clone(),
                attributes: Attributes::from_otlp(&event.attributes),
                dropped_attributes_count: event.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: span.dropped_events_count,
        links,
        dropped_links_count: span.dropped_links_count,
        status_code,
        status_message,
    })
}

/// Converts an `ExportLogsServiceRequest`. A record is rejected when its trace id is neither
/// empty nor 16 bytes, its span id neither empty nor 8 bytes, or its severity number is outside
/// 0..=24.
pub fn convert_logs(request: &ExportLogsServiceRequest) -> Converted<LogRecord> {
    let mut rejections = Rejections::new();
    let mut batch = Vec::with_capacity(request.resource_logs.len());
    for (resource_index, resource_logs) in request.resource_logs.iter().enumerate() {
        let resource = convert_resource(resource_logs.resource.as_ref(), &resource_logs.schema_url);
        let mut scopes = Vec::with_capacity(resource_logs.scope_logs.len());
        for (scope_index, scope_logs) in resource_logs.scope_logs.iter().enumerate() {
            let mut items = Vec::with_capacity(scope_logs.log_records.len());
            for (record_index, record) in scope_logs.log_records.iter().enumerate() {
                let converted = (|| -> Result<LogRecord, String> {
                    if !(0..=24).contains(&record.severity_number) {
                        return Err(format!("severity_number {} is outside 0..=24", record.severity_number));
                    }
                    Ok(LogRecord {
                        time_unix_nano: record.time_unix_nano,
                        observed_time_unix_nano: record.observed_time_unix_nano,
                        severity_number: record.severity_number,
                        severity_text: record.severity_text.clone(),
                        body: encode_any_value(record.body.as_ref()),
                        attributes: Attributes::from_otlp(&record.attributes),
                        dropped_attributes_count: record.dropped_attributes_count,
                        flags: record.flags,
                        trace_id: TraceId::from_optional_bytes(&record.trace_id).map_err(|error| error.to_string())?,
                        span_id: SpanId::from_optional_bytes(&record.span_id).map_err(|error| error.to_string())?,
                        event_name: record.event_name.clone(),
                    })
                })();
                match converted {
                    Ok(record) => items.push(record),
                    Err(reason) => rejections.reject(
                        1,
                        || {
                            format!(
                                "resourceLogs[{resource_index}].scopeLogs[{scope_index}].logRecords[{record_index}]"
                            )
                        },
                        &reason,
                    ),
                }
            }
            if !items.is_empty() {
                let scope = convert_scope(scope_logs.scope.as_ref(), &scope_logs.schema_url);
                scopes.push(ScopeGroup { scope, items });
            }
        }
        if !scopes.is_empty() {
            batch.push(ResourceGroup { resource, scopes });
        }
    }
    Converted { batch, rejected: rejections.rejected, reasons: rejections.reasons }
}

/// Converts an `ExportMetricsServiceRequest`. A metric without a name or without data (absent
/// or undecodable `Metric.data`) rejects one data point (OTLP counts data points and there is
/// none to count); a data point is rejected when its value is absent, its histogram buckets do
/// not match its bounds, or one of its exemplars has no value or malformed ids.
pub fn convert_metrics(request: &ExportMetricsServiceRequest) -> Converted<Metric> {
    let mut rejections = Rejections::new();
    let mut batch = Vec::with_capacity(request.resource_metrics.len());
    for (resource_index, resource_metrics) in request.resource_metrics.iter().enumerate() {
        let resource = convert_resource(resource_metrics.resource.as_ref(), &resource_metrics.schema_url);
        let mut scopes = Vec::with_capacity(resource_metrics.scope_metrics.len());
        for (scope_index, scope_metrics) in resource_metrics.scope_metrics.iter().enumerate() {
            let mut items = Vec::with_capacity(scope_metrics.metrics.len());
            for (metric_index, metric) in scope_metrics.metrics.iter().enumerate() {
                let path =
                    || format!("resourceMetrics[{resource_index}].scopeMetrics[{scope_index}].metrics[{metric_index}]");
                if metric.name.is_empty() {
                    let count = data_point_count(metric).max(1) as u64;
                    rejections.reject(count, path, "name is required");
                    continue;
                }
                let Some(data) = metric.data.as_ref() else {
                    rejections.reject(
                        1,
                        path,
                        "data (gauge/sum/histogram/exponentialHistogram/summary) is missing or malformed",
                    );
                    continue;
                };
                let (kind, points) = convert_metric_data(data, &mut |index, reason| {
                    rejections.reject(1, || format!("{}.dataPoints[{index}]", path()), reason)
                });
                if points.is_empty() {
                    continue;
                }
                items.push(Metric {
                    name: metric.name.clone(),
                    description: metric.description.clone(),
                    unit: metric.unit.clone(),
                    metadata: Attributes::from_otlp(&metric.metadata),
                    kind,
                    points,
                });
            }
            if !items.is_empty() {
                let scope = convert_scope(scope_metrics.scope.as_ref(), &scope_metrics.schema_url);
                scopes.push(ScopeGroup { scope, items });
            }
        }
        if !scopes.is_empty() {
            batch.push(ResourceGroup { resource, scopes });
        }
    }
    Converted { batch, rejected: rejections.rejected, reasons: rejections.reasons }
}

fn data_point_count(metric: &otlp_metrics::Metric) -> usize {
    use otlp_metrics::metric::Data;
    match &metric.data {
        Some(Data::Gauge(gauge)) => gauge.data_points.len(),
        Some(Data::Sum(sum)) => sum.data_points.len(),
        Some(Data::Histogram(histogram)) => histogram.data_points.len(),
        Some(Data::ExponentialHistogram(histogram)) => histogram.data_points.len(),
        Some(Data::Summary(summary)) => summary.data_points.len(),
        None => 0,
    }
}

fn convert_metric_data(
    data: &otlp_metrics::metric::Data,
    reject: &mut dyn FnMut(usize, &str),
) -> (MetricKind, Vec<MetricPoint>) {
    use otlp_metrics::metric::Data;
    let mut points = Vec::new();
    let mut keep = |index: usize, converted: Result<MetricPoint, String>| match converted {
        Ok(point) => points.push(point),
        Err(reason) => reject(index, &reason),
    };
    let kind = match data {
        Data::Gauge(gauge) => {
            for (index, point) in gauge.data_points.iter().enumerate() {
                keep(index, convert_number_point(point));
            }
            MetricKind::Gauge
        }
        Data::Sum(sum) => {
            for (index, point) in sum.data_points.iter().enumerate() {
                keep(index, convert_number_point(point));
            }
            MetricKind::Sum { aggregation_temporality: sum.aggregation_temporality, is_monotonic: sum.is_monotonic }
        }
        Data::Histogram(histogram) => {
            for (index, point) in histogram.data_points.iter().enumerate() {
                let converted = (|| {
                    if !point.bucket_counts.is_empty() && point.bucket_counts.len() != point.explicit_bounds.len() + 1 {
                        return Err(format!(
                            "bucket_counts has {} entries, explicit_bounds {} (must be bounds + 1)",
                            point.bucket_counts.len(),
                            point.explicit_bounds.len()
                        ));
                    }
                    Ok(MetricPoint {
                        attributes: Attributes::from_otlp(&point.attributes),
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        flags: point.flags,
                        value: PointValue::Histogram {
                            count: point.count,
                            sum: point.sum,
                            min: point.min,
                            max: point.max,
                            bucket_counts: point.bucket_counts.clone(),
                            explicit_bounds: point.explicit_bounds.clone(),
                        },
                        exemplars: convert_exemplars(&point.exemplars)?,
                    })
                })();
                keep(index, converted);
            }
            MetricKind::Histogram { aggregation_temporality: histogram.aggregation_temporality }
        }
        Data::ExponentialHistogram(histogram) => {
            for (index, point) in histogram.data_points.iter().enumerate() {
                let converted = (|| {
                    let positive = point.positive.clone().unwrap_or_default();
                    let negative = point.negative.clone().unwrap_or_default();
                    Ok(MetricPoint {
                        attributes: Attributes::from_otlp(&point.attributes),
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        flags: point.flags,
                        value: PointValue::ExponentialHistogram {
                            count: point.count,
                            sum: point.sum,
                            min: point.min,
                            max: point.max,
                            scale: point.scale,
                            zero_count: point.zero_count,
                            zero_threshold: point.zero_threshold,
                            positive_offset: positive.offset,
                            positive_bucket_counts: positive.bucket_counts,
                            negative_offset: negative.offset,
                            negative_bucket_counts: negative.bucket_counts,
                        },
                        exemplars: convert_exemplars(&point.exemplars)?,
                    })
                })();
                keep(index, converted);
            }
            MetricKind::ExponentialHistogram { aggregation_temporality: histogram.aggregation_temporality }
        }
        Data::Summary(summary) => {
            for (index, point) in summary.data_points.iter().enumerate() {
                keep(
                    index,
                    Ok(MetricPoint {
                        attributes: Attributes::from_otlp(&point.attributes),
                        start_time_unix_nano: point.start_time_unix_nano,
                        time_unix_nano: point.time_unix_nano,
                        flags: point.flags,
                        value: PointValue::Summary {
                            count: point.count,
                            sum: point.sum,
                            quantile_values: point
                                .quantile_values
                                .iter()
                                .map(|quantile| (quantile.quantile, quantile.value))
                                .collect(),
                        },
                        exemplars: Vec::new(),
                    }),
                );
            }
            MetricKind::Summary
        }
    };
    (kind, points)
}

/// `DataPointFlags.FLAG_NO_RECORDED_VALUE`: the point deliberately carries no value.
const FLAG_NO_RECORDED_VALUE: u32 = 1;

fn convert_number_point(point: &otlp_metrics::NumberDataPoint) -> Result<MetricPoint, String> {
    let value = match point.value {
        Some(otlp_metrics::number_data_point::Value::AsInt(integer)) => NumberValue::Int(integer),
        Some(otlp_metrics::number_data_point::Value::AsDouble(double)) => NumberValue::Double(double),
        None if point.flags & FLAG_NO_RECORDED_VALUE != 0 => NumberValue::Double(f64::NAN),
        None => return Err("value (asInt/asDouble) is missing or malformed".to_owned()),
    };
    Ok(MetricPoint {
        attributes: Attributes::from_otlp(&point.attributes),
        start_time_unix_nano: point.start_time_unix_nano,
        time_unix_nano: point.time_unix_nano,
        flags: point.flags,
        value: PointValue::Number { value },
        exemplars: convert_exemplars(&point.exemplars)?,
    })
}

fn convert_exemplars(exemplars: &[otlp_metrics::Exemplar]) -> Result<Vec<Exemplar>, String> {
    exemplars
        .iter()
        .map(|exemplar| {
            let value = match exemplar.value {
                Some(otlp_metrics::exemplar::Value::AsInt(integer)) => NumberValue::Int(integer),
                Some(otlp_metrics::exemplar::Value::AsDouble(double)) => NumberValue::Double(double),
                None => return Err("exemplar value (asInt/asDouble) is missing or malformed".to_owned()),
            };
            Ok(Exemplar {
                filtered_attributes: Attributes::from_otlp(&exemplar.filtered_attributes),
                time_unix_nano: exemplar.time_unix_nano,
                value,
                span_id: SpanId::from_optional_bytes(&exemplar.span_id).map_err(|error| format!("exemplar {error}"))?,
                trace_id: TraceId::from_optional_bytes(&exemplar.trace_id)
                    .map_err(|error| format!("exemplar {error}"))?,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests;
