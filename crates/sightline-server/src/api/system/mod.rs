//! System health of a service (issue 5, "System health"): CPU, memory, uptime, filesystem,
//! network and runtime numbers per host, from the OTLP metrics the service sends under the
//! OpenTelemetry semantic conventions (which metrics, and how each becomes a number, is in
//! [`signals`]).
//!
//! `GET /api/v1/projects/{project}/services/{service}/system?timeRange=1h&host=` →
//! `{service, from_unix_nano, to_unix_nano, step_seconds, truncated, hosts: [{host, current:
//! {cpu_cores, cpu_utilization, system_cpu_cores, system_cpu_utilization, memory_bytes,
//! virtual_memory_bytes, system_memory_bytes, memory_utilization, uptime_s,
//! filesystem_utilization, filesystem_used_bytes, network_bytes_per_s: {transmit, receive},
//! runtime: {jvm_*, nodejs_*}}, series: {<same fields>: [{time_unix_nano, value}]}}]}`, hosts by name. Units
//! are in the field names (cores = CPU-seconds per second; utilization is a fraction 0..=1).
//!
//! A host is the resource's `host.name`, else its `service.instance.id`, else `"unknown"`.
//! Only signals whose metrics were sent appear: a missing field means "not reported", never
//! zero. `timeRange` is `30m`, `24h`, `7d` … (at most 90d, default 1h) ending now; series
//! buckets as on the performance page (1 min up to 1 h, 5 min up to 6 h, ...). 400 for bad
//! parameters, 404 for a service that never sent anything.

mod signals;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Map, Value, json};

use self::signals::{SIGNALS, Signal, SignalValues, Source, compute_signal};
use super::params::{QueryParams, path_params, query_params, reject_unknown_params};
use super::performance::{bucket_seconds_for, require_service};
use super::series::BucketGrid;
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::StoredMetricPoint;

const NANOS_PER_SECOND: u64 = 1_000_000_000;
const DEFAULT_RANGE: &str = "1h";
/// How far before the range to read points, so the first bucket of a cumulative counter has a
/// previous point to difference against (exporters report every 10–60 s by default).
const LOOKBACK_NANOS: u64 = 5 * 60 * NANOS_PER_SECOND;
/// Points read per metric at most; beyond, the response says `truncated`.
const MAX_POINTS_PER_METRIC: usize = 200_000;
/// The resource attributes naming a host, preferred first.
const HOST_KEYS: [&str; 2] = ["host.name", "service.instance.id"];
const UNKNOWN_HOST: &str = "unknown";

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/services/{service}/system", get(service_system))
}

/// The parsed query.
#[derive(Debug, Clone)]
pub(crate) struct SystemParams {
    grid: BucketGrid,
    from_unix_nano: u64,
    to_unix_nano: u64,
    step_seconds: u64,
    host: Option<String>,
}

/// Parses `timeRange` (default 1h) and `host`; 400 for unknown or bad parameters.
pub(crate) fn parse_params(params: &QueryParams, now_unix_nano: u64) -> Result<SystemParams, ApiError> {
    reject_unknown_params(params, &["timeRange", "host"], None)?;
    let range_nanos = super::params::time_range_param(params, DEFAULT_RANGE)?;
    let step_seconds = bucket_seconds_for(range_nanos);
    let step_nanos = step_seconds * NANOS_PER_SECOND;
    let from_unix_nano = now_unix_nano.saturating_sub(range_nanos) / step_nanos * step_nanos;
    let grid = BucketGrid::new(from_unix_nano, now_unix_nano, step_nanos)
        .map_err(|error| ApiError::invalid(error.to_string()))?;
    let host = params.get("host").filter(|host| !host.is_empty()).cloned();
    Ok(SystemParams { grid, from_unix_nano, to_unix_nano: now_unix_nano, step_seconds, host })
}

/// The host a point came from (see the module docs).
fn host_of(stored: &StoredMetricPoint) -> String {
    HOST_KEYS
        .iter()
        .find_map(|key| match stored.resource.attributes.0.get(*key) {
            Some(Value::String(text)) if !text.is_empty() => Some(text.clone()),
            Some(other @ (Value::Number(_) | Value::Bool(_))) => Some(other.to_string()),
            _ => None,
        })
        .unwrap_or_else(|| UNKNOWN_HOST.to_owned())
}

/// A signal, the source metric chosen for it, and that metric's points from the service.
type SignalPoints = (&'static Signal, &'static Source, Vec<StoredMetricPoint>);

/// Adds the signal to a host's `current` and `series` objects, nested under its section.
fn insert_signal(
    current: &mut Map<String, Value>,
    series: &mut Map<String, Value>,
    signal: &Signal,
    values: &SignalValues,
) {
    let (current_target, series_target) = match signal.section {
        None => (current, series),
        Some(section) => {
            let current_section = current.entry(section).or_insert_with(|| json!({}));
            let series_section = series.entry(section).or_insert_with(|| json!({}));
            match (current_section, series_section) {
                (Value::Object(current_section), Value::Object(series_section)) => (current_section, series_section),
                _ => return,
            }
        }
    };
    if let Some(value) = values.current {
        current_target.insert(signal.field.to_owned(), json!(value));
    }
    let points = values
        .series
        .iter()
        .map(|(time_unix_nano, value)| json!({"time_unix_nano": time_unix_nano, "value": value}))
        .collect();
    series_target.insert(signal.field.to_owned(), Value::Array(points));
}

/// The response body from each signal's points, already read for the service.
fn system_body(service: &str, params: &SystemParams, signal_points: &[SignalPoints], truncated: bool) -> Value {
    let complete_from_unix_nano = read_from_unix_nano(params);
    // host → its signals, in [`SIGNALS`] order.
    let mut hosts: BTreeMap<String, Vec<(&Signal, SignalValues)>> = BTreeMap::new();
    for (signal, source, points) in signal_points {
        let mut by_host: BTreeMap<String, Vec<StoredMetricPoint>> = BTreeMap::new();
        for stored in points {
            by_host.entry(host_of(stored)).or_default().push(stored.clone());
        }
        for (host, host_points) in by_host {
            if params.host.as_ref().is_some_and(|wanted| *wanted != host) {
                continue;
            }
            if let Some(values) = compute_signal(source, &host_points, &params.grid, complete_from_unix_nano) {
                hosts.entry(host).or_default().push((signal, values));
            }
        }
    }
    let host_bodies: Vec<Value> = hosts
        .iter()
        .map(|(host, signals)| {
            let mut current = Map::new();
            let mut series = Map::new();
            for (signal, values) in signals {
                insert_signal(&mut current, &mut series, signal, values);
            }
            json!({"host": host, "current": current, "series": series})
        })
        .collect();
    json!({
        "service": service,
        "from_unix_nano": params.from_unix_nano,
        "to_unix_nano": params.to_unix_nano,
        "step_seconds": params.step_seconds,
        "truncated": truncated,
        "hosts": host_bodies,
    })
}

/// Points are read from this time on: the range plus a lookback for counters.
fn read_from_unix_nano(params: &SystemParams) -> u64 {
    params.from_unix_nano.saturating_sub(LOOKBACK_NANOS.max(params.grid.step_nanos()))
}

async fn service_system(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, service) = path_params(path)?;
    let params = query_params(query)?;
    let system_params = parse_params(&params, crate::clock::now_unix_nano())?;
    let project = authorize_read(&state, &headers, project).await?;
    let state = state.clone();
    blocking(move || Ok(Json(system_response(&state, project.id, &service, &system_params)?))).await
}

/// The body of `GET .../services/{service}/system` (see the module docs); 404 for a service
/// the project has not seen. Blocking.
pub(crate) fn system_response(
    state: &AppState,
    project_id: i64,
    service: &str,
    system_params: &SystemParams,
) -> Result<Value, ApiError> {
    require_service(state, project_id, service)?;
    let known: Vec<String> = state.store.list_metrics(project_id)?.into_iter().map(|metric| metric.name).collect();
    let mut signal_points: Vec<SignalPoints> = Vec::new();
    let mut truncated = false;
    for signal in SIGNALS {
        // The first source metric that this service sent.
        for source in signal.sources.iter().filter(|source| known.iter().any(|name| name == source.metric)) {
            let mut points = state.store.service_metric_points(
                project_id,
                service,
                source.metric,
                read_from_unix_nano(system_params),
                system_params.to_unix_nano,
                MAX_POINTS_PER_METRIC + 1,
            )?;
            if points.is_empty() {
                continue;
            }
            truncated |= points.len() > MAX_POINTS_PER_METRIC;
            points.truncate(MAX_POINTS_PER_METRIC);
            signal_points.push((signal, source, points));
            break;
        }
    }
    if truncated {
        tracing::warn!(service = %service, limit = MAX_POINTS_PER_METRIC, "System health hit the point limit");
    }
    Ok(system_body(service, system_params, &signal_points, truncated))
}

#[cfg(test)]
mod tests {
    use sightline_model::{Attributes, MetricKind, MetricPoint, PointValue, Resource};

    use super::*;

    const NOW: u64 = 1_700_000_030 * NANOS_PER_SECOND;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    fn stored_with_resource(pairs: &[(&str, Value)]) -> StoredMetricPoint {
        let attributes = pairs.iter().map(|(key, value)| ((*key).to_owned(), value.clone())).collect();
        StoredMetricPoint {
            kind: MetricKind::Gauge,
            service_name: "api".into(),
            resource: Resource { attributes: Attributes(attributes), ..Resource::default() },
            point: MetricPoint {
                attributes: Attributes::default(),
                start_time_unix_nano: 0,
                time_unix_nano: NOW,
                flags: 0,
                value: PointValue::Number { value: sightline_model::metric::NumberValue::Double(1.0) },
                exemplars: Vec::new(),
            },
        }
    }

    #[test]
    fn params_default_to_the_last_hour_in_minutes_and_reject_bad_input() {
        let parsed = parse_params(&params(&[]), NOW).expect("valid");
        assert_eq!(parsed.step_seconds, 60);
        assert_eq!(parsed.from_unix_nano, (NOW - 3_600 * NANOS_PER_SECOND) / 60_000_000_000 * 60_000_000_000);
        assert_eq!(parsed.host, None);
        let week = parse_params(&params(&[("timeRange", "7d"), ("host", "web-1")]), NOW).expect("valid");
        assert_eq!(week.step_seconds, 3_600);
        assert_eq!(week.host.as_deref(), Some("web-1"));
        assert!(parse_params(&params(&[("timeRange", "soon")]), NOW).is_err());
        assert!(parse_params(&params(&[("timeRange", "365d")]), NOW).is_err());
        assert!(parse_params(&params(&[("hosts", "web-1")]), NOW).is_err());
    }

    #[test]
    fn host_is_host_name_then_instance_id_then_unknown() {
        let both = stored_with_resource(&[("host.name", json!("web-1")), ("service.instance.id", json!("pod-7"))]);
        assert_eq!(host_of(&both), "web-1");
        let instance = stored_with_resource(&[("host.name", json!("")), ("service.instance.id", json!("pod-7"))]);
        assert_eq!(host_of(&instance), "pod-7");
        assert_eq!(host_of(&stored_with_resource(&[])), UNKNOWN_HOST);
    }
}
