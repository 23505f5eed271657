//! Service performance from the endpoint RED rollups (issue 5, deliverable 7). Durations in the
//! responses are **milliseconds** (floats); percentiles come from merged DDSketches and are
//! within 1% of the exact value (see `store::rollups`); min, max and avg are exact.
//!
//! - `GET /api/v1/projects/{project}/services/{service}/performance?timeRange=7d&environment=`
//!   → `{service, environment, from_unix_nano, to_unix_nano, bucket_seconds, summary: {requests,
//!   rpm, errors, error_rate, p50_ms, p95_ms, p99_ms}, endpoints: [EndpointStats], series:
//!   [{start_unix_nano, requests, errors, p50_ms, p95_ms, p99_ms}]}`, endpoints by requests,
//!   most first. `EndpointStats` = `{operation, method, route, requests, rpm, errors, error_percent, min_ms,
//!   avg_ms, max_ms, p50_ms, p90_ms, p95_ms, p99_ms, status_classes: {"2xx": n, ...}}`.
//! - `GET .../services/{service}/endpoints/{operation}?timeRange=&environment=&limit=5` (the
//!   operation URL-encoded, e.g. `GET%20%2Fusers%2F%7Bid%7D`) → `{service, operation, ...,
//!   stats: EndpointStats, histogram: [{lower_ms, upper_ms, count}], status_codes: {"200": n},
//!   series, slowest_traces: [{trace_id, span_id, duration_ms, start_unix_nano, trace}]}`; the
//!   slowest are exact (every rollup row keeps its 10 slowest requests), `limit` 1..=10.
//!
//! `timeRange` is `30m`, `24h`, `7d` … (at most 90d, default 24h) ending now; buckets starting
//! in the range count whole (an hour row coarsened from minutes counts when its hour starts in
//! the range). Series buckets: 1 min up to 1 h, 5 min up to 6 h, 15 min up to 24 h, 1 h up
//! to 7 d, 1 day beyond. 404 for an unknown service; 400 for bad parameters.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::rollups::{DurationSketch, EndpointRollup, RollupQuery, SLOWEST_KEPT, SlowRequest, merge_slowest};

const NANOS_PER_MINUTE: u64 = 60_000_000_000;
const DEFAULT_RANGE: &str = "24h";

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/services/{service}/performance", get(service_performance))
        .route("/api/v1/projects/{project}/services/{service}/endpoints/{operation}", get(endpoint_detail))
}

/// Series bucket width for a range (see the module docs).
pub(super) fn bucket_seconds_for(range_nanos: u64) -> u64 {
    let hours = range_nanos as f64 / 3.6e12;
    if hours <= 1.0 {
        60
    } else if hours <= 6.0 {
        300
    } else if hours <= 24.0 {
        900
    } else if hours <= 168.0 {
        3600
    } else {
        86_400
    }
}

/// Counts and a merged sketch over some rollup rows.
#[derive(Debug, Default, Clone)]
pub(super) struct Accumulated {
    pub(super) method: String,
    pub(super) route: String,
    pub(super) requests: u64,
    pub(super) errors: u64,
    pub(super) status_classes: BTreeMap<&'static str, u64>,
    pub(super) status_codes: BTreeMap<u16, u64>,
    pub(super) durations: DurationSketch,
    pub(super) slowest: Vec<SlowRequest>,
    /// Keep the slowest requests (only the endpoint detail lists them).
    pub(super) track_slowest: bool,
}

impl Accumulated {
    pub(super) fn add(&mut self, rollup: &EndpointRollup) -> Result<(), ApiError> {
        if self.method.is_empty() && self.route.is_empty() {
            self.method.clone_from(&rollup.key.method);
            self.route.clone_from(&rollup.key.route);
        }
        self.requests += rollup.requests;
        self.errors += rollup.errors;
        *self.status_classes.entry(rollup.key.status_class.as_str()).or_default() += rollup.requests;
        for (code, count) in &rollup.status_codes {
            *self.status_codes.entry(*code).or_default() += count;
        }
        self.durations
            .merge(&rollup.durations)
            .map_err(|error| ApiError::from(crate::store::StoreError::Database(error.to_string())))?;
        if self.track_slowest {
            merge_slowest(&mut self.slowest, &rollup.slowest, SLOWEST_KEPT);
        }
        Ok(())
    }

    /// Adds another accumulation (sketch merge; no slowest list).
    fn add_accumulated(&mut self, other: &Accumulated) -> Result<(), ApiError> {
        self.requests += other.requests;
        self.errors += other.errors;
        self.durations
            .merge(&other.durations)
            .map_err(|error| ApiError::from(crate::store::StoreError::Database(error.to_string())))
    }

    /// Adds a cell accumulated with [`Accumulated::add`]: everything `add` keeps (the first
    /// method and route, counts, status classes and codes, the sketch; the slowest requests when
    /// tracked).
    fn add_cell(&mut self, cell: &Accumulated) -> Result<(), ApiError> {
        if self.method.is_empty() && self.route.is_empty() {
            self.method.clone_from(&cell.method);
            self.route.clone_from(&cell.route);
        }
        for (class, count) in &cell.status_classes {
            *self.status_classes.entry(class).or_default() += count;
        }
        for (code, count) in &cell.status_codes {
            *self.status_codes.entry(*code).or_default() += count;
        }
        if self.track_slowest {
            merge_slowest(&mut self.slowest, &cell.slowest, SLOWEST_KEPT);
        }
        self.add_accumulated(cell)
    }

    fn quantile_ms(&self, q: f64) -> Value {
        json!(self.durations.quantile_nanos(q).map(nanos_to_ms))
    }

    /// The per-endpoint table row (without the operation).
    fn stats(&self, range_minutes: f64) -> Value {
        let count = self.durations.count();
        json!({
            "method": self.method,
            "route": self.route,
            "requests": self.requests,
            "rpm": self.requests as f64 / range_minutes,
            "errors": self.errors,
            "error_percent": percent(self.errors, self.requests),
            "min_ms": self.durations.min_nanos().map(nanos_to_ms),
            "avg_ms": (count > 0).then(|| nanos_to_ms(self.durations.sum_nanos() / count as f64)),
            "max_ms": self.durations.max_nanos().map(nanos_to_ms),
            "p50_ms": self.quantile_ms(0.5),
            "p90_ms": self.quantile_ms(0.9),
            "p95_ms": self.quantile_ms(0.95),
            "p99_ms": self.quantile_ms(0.99),
            "status_classes": self.status_classes,
        })
    }
}

/// A slowest-request exemplar with its trace link: `{trace_id, span_id, duration_ms,
/// start_unix_nano, trace}`.
pub(super) fn slow_trace_json(project_slug: &str, slow: &SlowRequest) -> Value {
    json!({
        "trace_id": slow.trace_id.to_hex(),
        "span_id": slow.span_id.to_hex(),
        "duration_ms": nanos_to_ms(slow.duration_nanos as f64),
        "start_unix_nano": slow.start_time_unix_nano,
        "trace": format!("/api/v1/projects/{project_slug}/traces/{}", slow.trace_id.to_hex()),
    })
}

pub(super) fn nanos_to_ms(nanos: f64) -> f64 {
    nanos / 1e6
}

fn percent(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 * 100.0 / whole as f64 }
}

/// The range and filters every endpoint of this module takes.
#[derive(Debug, Clone)]
pub(crate) struct RangeParams {
    /// Start of the range (ns, a whole minute).
    pub(crate) from_unix_nano: u64,
    /// End of the range (ns, now).
    pub(crate) to_unix_nano: u64,
    /// `deployment.environment.name` to keep, or all.
    pub(crate) environment: Option<String>,
}

/// The parameters of `GET .../services/{service}/endpoints/{operation}`.
#[derive(Debug, Clone)]
pub(crate) struct EndpointParams {
    /// Range and environment.
    pub(crate) range: RangeParams,
    /// Slowest traces listed, 1..=10.
    pub(crate) limit: usize,
}

/// Parses the query of `GET .../services/{service}/performance` (`timeRange`, `environment`);
/// 400 for unknown or bad parameters.
pub(crate) fn parse_performance_params(params: &QueryParams, now_unix_nano: u64) -> Result<RangeParams, ApiError> {
    reject_unknown_params(params, &["timeRange", "environment"], None)?;
    range_params(params, now_unix_nano)
}

/// Parses the query of `GET .../services/{service}/endpoints/{operation}` (`timeRange`,
/// `environment`, `limit`); 400 for unknown or bad parameters.
pub(crate) fn parse_endpoint_params(params: &QueryParams, now_unix_nano: u64) -> Result<EndpointParams, ApiError> {
    reject_unknown_params(params, &["timeRange", "environment", "limit"], None)?;
    let range = range_params(params, now_unix_nano)?;
    let limit = parse_limit(params, 5, SLOWEST_KEPT)?;
    Ok(EndpointParams { range, limit })
}

fn range_params(params: &QueryParams, now_unix_nano: u64) -> Result<RangeParams, ApiError> {
    let from_unix_nano = range_start(params, now_unix_nano)?;
    let environment = params.get("environment").filter(|environment| !environment.is_empty()).cloned();
    Ok(RangeParams { from_unix_nano, to_unix_nano: now_unix_nano, environment })
}

/// The start of `timeRange` (default 24h) ending now, at a whole minute so that the first
/// rollup bucket counts whole; 400 for a range that does not parse.
pub(super) fn range_start(params: &QueryParams, now_unix_nano: u64) -> Result<u64, ApiError> {
    let range = super::params::time_range_param(params, DEFAULT_RANGE)?;
    Ok(now_unix_nano.saturating_sub(range) / NANOS_PER_MINUTE * NANOS_PER_MINUTE)
}

/// Start of the series bucket holding `from_unix_nano`.
fn series_first_bucket(from_unix_nano: u64, bucket_seconds: u64) -> u64 {
    let width = bucket_seconds * 1_000_000_000;
    from_unix_nano / width * width
}

/// Per-bucket requests, errors and p50 / p95 / p99 from `from` to `to`, empty buckets included.
fn series(
    rollups: &[EndpointRollup],
    from_unix_nano: u64,
    to_unix_nano: u64,
    bucket_seconds: u64,
) -> Result<Value, ApiError> {
    let width = bucket_seconds * 1_000_000_000;
    let first = series_first_bucket(from_unix_nano, bucket_seconds);
    let mut buckets: BTreeMap<u64, Accumulated> = BTreeMap::new();
    for rollup in rollups {
        let index = rollup.bucket_start_unix_nano.saturating_sub(first) / width;
        buckets.entry(index).or_default().add(rollup)?;
    }
    Ok(series_json(&buckets, first, to_unix_nano, bucket_seconds))
}

/// The series array: one entry per bucket from `first` through the one holding `to`, from
/// `buckets` by bucket index (absent = empty; indexes past `to` are left out).
fn series_json(buckets: &BTreeMap<u64, Accumulated>, first: u64, to_unix_nano: u64, bucket_seconds: u64) -> Value {
    let width = bucket_seconds * 1_000_000_000;
    let count = to_unix_nano.saturating_sub(first) / width + 1;
    let empty = Accumulated::default();
    Value::Array(
        (0..count)
            .map(|index| {
                let bucket = buckets.get(&index).unwrap_or(&empty);
                json!({
                    "start_unix_nano": first + index * width,
                    "requests": bucket.requests,
                    "errors": bucket.errors,
                    "p50_ms": bucket.quantile_ms(0.5),
                    "p95_ms": bucket.quantile_ms(0.95),
                    "p99_ms": bucket.quantile_ms(0.99),
                })
            })
            .collect(),
    )
}

/// 404 unless the project has seen the service.
pub(super) fn require_service(state: &AppState, project_id: i64, service: &str) -> Result<(), ApiError> {
    let known = state.store.list_services(project_id)?.iter().any(|stats| stats.service_name == service);
    if known {
        Ok(())
    } else {
        Err(ApiError::not_found(format!("service {service:?} has sent nothing to this project")))
    }
}

async fn service_performance(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, service) = path_params(path)?;
    let params = query_params(query)?;
    let range = parse_performance_params(&params, crate::clock::now_unix_nano())?;
    let project = authorize_read(&state, &headers, project).await?;
    let state = state.clone();
    blocking(move || Ok(Json(performance_response(&state, project.id, &service, &range)?.0))).await
}

/// The body of `GET .../services/{service}/performance` (see the module docs), and the
/// environments the service reported in the range (sorted; `""` for none), read from the
/// rollups in one pass. 404 for a service the project has not seen. Blocking.
pub(crate) fn performance_response(
    state: &AppState,
    project_id: i64,
    service: &str,
    range: &RangeParams,
) -> Result<(Value, Vec<String>), ApiError> {
    require_service(state, project_id, service)?;
    let query = RollupQuery {
        service: Some(service.to_owned()),
        environment: None,
        operation: None,
        from_unix_nano: range.from_unix_nano,
        to_unix_nano: range.to_unix_nano,
    };
    let mut rollups = state.store.endpoint_rollup_sketches(project_id, &query)?;
    let environments: std::collections::BTreeSet<String> =
        rollups.iter().map(|rollup| rollup.key.environment.clone()).collect();
    if let Some(environment) = &range.environment {
        rollups.retain(|rollup| rollup.key.environment == *environment);
    }
    Ok((performance_body(service, range, &rollups)?, environments.into_iter().collect()))
}

/// Per-service summaries over the range, for the services list: `[{service, requests, rpm,
/// errors, error_rate, p50_ms, p95_ms, p99_ms}]` by service name (the `summary` of each
/// service's performance body, from one read of the project's rollups), and the environments
/// seen. Blocking.
pub(crate) fn services_summary(
    state: &AppState,
    project_id: i64,
    range: &RangeParams,
) -> Result<(Vec<Value>, Vec<String>), ApiError> {
    let query = RollupQuery {
        service: None,
        environment: None,
        operation: None,
        from_unix_nano: range.from_unix_nano,
        to_unix_nano: range.to_unix_nano,
    };
    let rollups = state.store.endpoint_rollup_sketches(project_id, &query)?;
    let range_minutes = range_minutes(range);
    let mut environments = std::collections::BTreeSet::new();
    let mut by_service: BTreeMap<&str, Accumulated> = BTreeMap::new();
    for rollup in &rollups {
        environments.insert(rollup.key.environment.clone());
        if range.environment.as_ref().is_some_and(|wanted| *wanted != rollup.key.environment) {
            continue;
        }
        by_service.entry(rollup.key.service_name.as_str()).or_default().add(rollup)?;
    }
    let summaries = by_service
        .iter()
        .map(|(service, total)| {
            let mut summary = summary_json(total, range_minutes);
            summary["service"] = json!(service);
            summary
        })
        .collect();
    Ok((summaries, environments.into_iter().collect()))
}

fn range_minutes(range: &RangeParams) -> f64 {
    ((range.to_unix_nano - range.from_unix_nano) as f64 / NANOS_PER_MINUTE as f64).max(1.0)
}

/// `{requests, rpm, errors, error_rate, p50_ms, p95_ms, p99_ms}` of an accumulation.
fn summary_json(total: &Accumulated, range_minutes: f64) -> Value {
    json!({
        "requests": total.requests,
        "rpm": total.requests as f64 / range_minutes,
        "errors": total.errors,
        "error_rate": if total.requests == 0 { 0.0 } else { total.errors as f64 / total.requests as f64 },
        "p50_ms": total.quantile_ms(0.5),
        "p95_ms": total.quantile_ms(0.95),
        "p99_ms": total.quantile_ms(0.99),
    })
}

fn performance_body(service: &str, range: &RangeParams, rollups: &[EndpointRollup]) -> Result<Value, ApiError> {
    let range_nanos = range.to_unix_nano - range.from_unix_nano;
    let range_minutes = range_minutes(range);
    let bucket_seconds = bucket_seconds_for(range_nanos);
    let series_first = series_first_bucket(range.from_unix_nano, bucket_seconds);
    let width = bucket_seconds * 1_000_000_000;
    // Each row is merged once, into its (operation, series bucket) cell; the endpoint table and
    // the series then merge those cells — for 7 days at most 169 per operation — instead of
    // every row twice (a sketch merge walks the row's bins).
    let mut cells: BTreeMap<(&str, u64), Accumulated> = BTreeMap::new();
    for rollup in rollups {
        let index = rollup.bucket_start_unix_nano.saturating_sub(series_first) / width;
        cells.entry((rollup.key.operation.as_str(), index)).or_default().add(rollup)?;
    }
    let mut by_operation: BTreeMap<&str, Accumulated> = BTreeMap::new();
    let mut by_bucket: BTreeMap<u64, Accumulated> = BTreeMap::new();
    for ((operation, index), cell) in &cells {
        by_operation.entry(operation).or_default().add_cell(cell)?;
        by_bucket.entry(*index).or_default().add_accumulated(cell)?;
    }
    // The service total merges the few per-endpoint sketches, not every row again.
    let mut total = Accumulated::default();
    for endpoint in by_operation.values() {
        total.add_accumulated(endpoint)?;
    }
    let mut endpoints: Vec<(&str, Accumulated)> = by_operation.into_iter().collect();
    endpoints.sort_by(|left, right| right.1.requests.cmp(&left.1.requests).then(left.0.cmp(right.0)));
    Ok(json!({
        "service": service,
        "environment": range.environment,
        "from_unix_nano": range.from_unix_nano,
        "to_unix_nano": range.to_unix_nano,
        "bucket_seconds": bucket_seconds,
        "summary": summary_json(&total, range_minutes),
        "endpoints": endpoints.iter().map(|(operation, stats)| {
            let mut row = stats.stats(range_minutes);
            row["operation"] = json!(operation);
            row
        }).collect::<Vec<_>>(),
        "series": series_json(&by_bucket, series_first, range.to_unix_nano, bucket_seconds),
    }))
}

async fn endpoint_detail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, service, operation) = path_params(path)?;
    let params = query_params(query)?;
    let endpoint_params = parse_endpoint_params(&params, crate::clock::now_unix_nano())?;
    let project = authorize_read(&state, &headers, project).await?;
    let state = state.clone();
    blocking(move || {
        Ok(Json(endpoint_response(&state, project.id, &project.slug, &service, &operation, &endpoint_params)?))
    })
    .await
}

/// The body of `GET .../services/{service}/endpoints/{operation}` (see the module docs); 404
/// for a service the project has not seen. Blocking.
pub(crate) fn endpoint_response(
    state: &AppState,
    project_id: i64,
    project_slug: &str,
    service: &str,
    operation: &str,
    params: &EndpointParams,
) -> Result<Value, ApiError> {
    let range = &params.range;
    require_service(state, project_id, service)?;
    let query = RollupQuery {
        service: Some(service.to_owned()),
        environment: range.environment.clone(),
        operation: Some(operation.to_owned()),
        from_unix_nano: range.from_unix_nano,
        to_unix_nano: range.to_unix_nano,
    };
    let rollups = state.store.endpoint_rollups(project_id, &query)?;
    let mut total = Accumulated { track_slowest: true, ..Accumulated::default() };
    for rollup in &rollups {
        total.add(rollup)?;
    }
    let range_nanos = range.to_unix_nano - range.from_unix_nano;
    let bucket_seconds = bucket_seconds_for(range_nanos);
    let slowest: Vec<Value> =
        total.slowest.iter().take(params.limit).map(|slow| slow_trace_json(project_slug, slow)).collect();
    let histogram: Vec<Value> = total
        .durations
        .histogram()
        .iter()
        .map(|bin| {
            json!({"lower_ms": nanos_to_ms(bin.lower_nanos), "upper_ms": nanos_to_ms(bin.upper_nanos), "count": bin.count})
        })
        .collect();
    let status_codes: BTreeMap<String, u64> =
        total.status_codes.iter().map(|(code, count)| (code.to_string(), *count)).collect();
    Ok(json!({
        "service": service,
        "operation": operation,
        "environment": range.environment,
        "from_unix_nano": range.from_unix_nano,
        "to_unix_nano": range.to_unix_nano,
        "bucket_seconds": bucket_seconds,
        "stats": total.stats(range_minutes(range)),
        "histogram": histogram,
        "status_codes": status_codes,
        "series": series(&rollups, range.from_unix_nano, range.to_unix_nano, bucket_seconds)?,
        "slowest_traces": slowest,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rollups::{EndpointKey, MINUTE_SECONDS, StatusClass};

    fn rollup(operation: &str, class: StatusClass, minute: u64, durations_ms: &[u64], errors: u64) -> EndpointRollup {
        let key = EndpointKey {
            service_name: "shop".into(),
            environment: String::new(),
            operation: operation.into(),
            method: "GET".into(),
            route: operation.trim_start_matches("GET ").into(),
            status_class: class,
        };
        let mut rollup = EndpointRollup::empty(key, minute * NANOS_PER_MINUTE, MINUTE_SECONDS);
        for duration in durations_ms {
            rollup.requests += 1;
            rollup.durations.add_nanos(duration * 1_000_000);
        }
        rollup.errors = errors;
        rollup
    }

    #[test]
    fn bucket_widths_follow_the_range() {
        assert_eq!(bucket_seconds_for(3_600_000_000_000), 60);
        assert_eq!(bucket_seconds_for(24 * 3_600_000_000_000), 900);
        assert_eq!(bucket_seconds_for(7 * 24 * 3_600_000_000_000), 3600);
        assert_eq!(bucket_seconds_for(30 * 24 * 3_600_000_000_000), 86_400);
    }

    #[test]
    fn the_body_sums_endpoints_classes_and_buckets() {
        let rollups = vec![
            rollup("GET /a", StatusClass::Success, 10, &[10, 20, 30], 0),
            rollup("GET /a", StatusClass::ServerError, 11, &[40], 1),
            rollup("GET /b", StatusClass::Success, 11, &[5], 0),
        ];
        let range = RangeParams {
            from_unix_nano: 10 * NANOS_PER_MINUTE,
            to_unix_nano: 70 * NANOS_PER_MINUTE,
            environment: None,
        };
        let body = performance_body("shop", &range, &rollups).expect("body");
        assert_eq!(body["summary"]["requests"], 5);
        assert_eq!(body["summary"]["rpm"], 5.0 / 60.0);
        assert_eq!(body["summary"]["error_rate"], 0.2);
        assert_eq!(body["endpoints"][0]["operation"], "GET /a");
        assert_eq!(body["endpoints"][0]["status_classes"], json!({"2xx": 3, "5xx": 1}));
        assert_eq!(body["endpoints"][0]["error_percent"], 25.0);
        assert_eq!(body["endpoints"][0]["min_ms"], 10.0);
        assert_eq!(body["endpoints"][0]["max_ms"], 40.0);
        assert_eq!(body["endpoints"][0]["avg_ms"], 25.0);
        let series = body["series"].as_array().expect("series");
        assert_eq!(series.len(), 61, "one-minute buckets over an hour, both ends");
        assert_eq!((series[0]["requests"].as_u64(), series[1]["requests"].as_u64()), (Some(3), Some(2)));
        assert_eq!(series[2]["p95_ms"], Value::Null);
        // Each bucket has its own percentiles. The sketch ranks like DDSketch (rank q × (n − 1),
        // rounded down): minute 10 held 10, 20, 30 ms (p50 and p99 = 20); minute 11 held 40 and
        // 5 ms (p99 = 5).
        let ms = |bucket: usize, field: &str| series[bucket][field].as_f64().unwrap_or(f64::NAN);
        let close = |value: f64, exact: f64| (value - exact).abs() <= exact * 0.01;
        assert!(close(ms(0, "p50_ms"), 20.0) && close(ms(0, "p99_ms"), 20.0), "{}", series[0]);
        assert!(close(ms(1, "p50_ms"), 5.0) && close(ms(1, "p99_ms"), 5.0), "{}", series[1]);
        assert_eq!(series[2]["p99_ms"], Value::Null);
    }
}
