//! Background jobs and messaging from the job rollups (issue 5, item 4; which spans count and
//! where queue lag comes from: `pipeline/jobs.rs`). Durations and lags are **milliseconds**
//! (floats); percentiles come from merged DDSketches (within 1% of the exact value, see
//! `store::rollups`); counts, failures, avg and max are exact.
//!
//! - `GET /api/v1/projects/{project}/jobs?timeRange=24h&service=&environment=&sort=&limit=50`
//!   → `{from_unix_nano, to_unix_nano, sort, jobs: [JobStats]}`, one entry per (service,
//!   environment, messaging system, destination or job name, operation), sorted largest first
//!   by `sort`: `throughput` (default), `failure_rate`, `p95` or `lag`. `JobStats` =
//!   `{name, messaging_system, operation, service, environment, count, throughput_per_minute,
//!   failures, failure_rate, avg_ms, p50_ms, p95_ms, p99_ms, max_ms, lag}` where `lag` is
//!   `{samples, p50_ms, p95_ms, max_ms}` or `null` when no span of the entry had a known lag.
//! - `GET .../jobs/{name}?timeRange=&service=&environment=&limit=5` (the name URL-encoded) →
//!   `{name, from_unix_nano, to_unix_nano, bucket_seconds, summary: JobStats without the key
//!   fields, operations: [JobStats], series: [{start_unix_nano, count, failures, p95_ms,
//!   lag_p95_ms}], slowest_traces: [{trace_id, span_id, duration_ms, start_unix_nano, trace}]}`;
//!   404 when nothing of that name was seen in the range.
//!
//! `timeRange` as for the performance endpoints (default 24h, at most 90d); the throughput is
//! per minute of the range. 400 for bad parameters.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::performance::{bucket_seconds_for, nanos_to_ms, range_start, slow_trace_json};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::StoreError;
use crate::store::job_rollups::{JOB_SLOWEST_KEPT, JobKey, JobRollup, JobRollupQuery};
use crate::store::rollups::MINUTE_SECONDS;

const NANOS_PER_MINUTE: u64 = 60_000_000_000;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/jobs", get(list_jobs))
        .route("/api/v1/projects/{project}/jobs/{name}", get(job_detail))
}

/// The `sort` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    /// Spans per minute.
    Throughput,
    /// Failed share.
    FailureRate,
    /// 95th percentile duration.
    P95,
    /// 95th percentile queue lag.
    Lag,
}

impl SortBy {
    fn parse(text: Option<&String>) -> Result<Self, ApiError> {
        match text.map(String::as_str) {
            None | Some("") | Some("throughput") => Ok(SortBy::Throughput),
            Some("failure_rate") => Ok(SortBy::FailureRate),
            Some("p95") => Ok(SortBy::P95),
            Some("lag") => Ok(SortBy::Lag),
            Some(other) => Err(ApiError::invalid(format!("sort={other:?}: use throughput, failure_rate, p95 or lag"))),
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            SortBy::Throughput => "throughput",
            SortBy::FailureRate => "failure_rate",
            SortBy::P95 => "p95",
            SortBy::Lag => "lag",
        }
    }

    fn value_of(self, total: &JobRollup) -> f64 {
        match self {
            SortBy::Throughput => total.count as f64,
            SortBy::FailureRate => failure_rate(total),
            SortBy::P95 => total.durations.quantile_nanos(0.95).unwrap_or(0.0),
            SortBy::Lag => total.lags.quantile_nanos(0.95).unwrap_or(-1.0),
        }
    }
}

fn failure_rate(total: &JobRollup) -> f64 {
    if total.count == 0 { 0.0 } else { total.failures as f64 / total.count as f64 }
}

fn merge_error(error: crate::store::rollups::RollupError) -> ApiError {
    ApiError::from(StoreError::Database(error.to_string()))
}

/// The range and filters both endpoints take.
struct JobParams {
    query: JobRollupQuery,
    range_minutes: f64,
}

fn job_params(params: &QueryParams, name: Option<String>) -> Result<JobParams, ApiError> {
    let now_unix_nano = crate::clock::now_unix_nano();
    let from_unix_nano = range_start(params, now_unix_nano)?;
    let text = |key: &str| params.get(key).filter(|value| !value.is_empty()).cloned();
    let query = JobRollupQuery {
        service: text("service"),
        environment: text("environment"),
        name,
        from_unix_nano,
        to_unix_nano: now_unix_nano,
    };
    let range_minutes = ((now_unix_nano - from_unix_nano) as f64 / NANOS_PER_MINUTE as f64).max(1.0);
    Ok(JobParams { query, range_minutes })
}

async fn list_jobs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = path_params(path)?;
    let params = query_params(query)?;
    reject_unknown_params(&params, &["timeRange", "service", "environment", "sort", "limit"], None)?;
    let sort = SortBy::parse(params.get("sort"))?;
    let limit = parse_limit(&params, 50, 1000)?;
    let job_params = job_params(&params, None)?;
    let project = authorize_read(&state, &headers, project).await?;
    let state = state.clone();
    blocking(move || {
        let rollups = state.store.job_rollups(project.id, &job_params.query)?;
        let mut totals = totals_by_key(&rollups)?;
        // Largest first; the key breaks ties so pages are stable.
        totals.sort_by(|left, right| {
            sort.value_of(right)
                .partial_cmp(&sort.value_of(left))
                .unwrap_or(Ordering::Equal)
                .then(left.key.cmp(&right.key))
        });
        let jobs: Vec<Value> =
            totals.iter().take(limit).map(|total| keyed_stats(total, job_params.range_minutes)).collect();
        Ok(Json(json!({
            "from_unix_nano": job_params.query.from_unix_nano,
            "to_unix_nano": job_params.query.to_unix_nano,
            "sort": sort.as_str(),
            "jobs": jobs,
        })))
    })
    .await
}

/// One merged rollup per key, in key order.
fn totals_by_key(rollups: &[JobRollup]) -> Result<Vec<JobRollup>, ApiError> {
    let mut by_key: BTreeMap<&JobKey, JobRollup> = BTreeMap::new();
    for rollup in rollups {
        by_key
            .entry(&rollup.key)
            .or_insert_with(|| JobRollup::empty(rollup.key.clone(), 0, MINUTE_SECONDS))
            .merge(rollup)
            .map_err(merge_error)?;
    }
    Ok(by_key.into_values().collect())
}

/// Counts, rates and percentiles of a merged rollup (no key fields).
fn stats(total: &JobRollup, range_minutes: f64) -> Value {
    let durations = &total.durations;
    let count = durations.count();
    let lags = &total.lags;
    let lag = (lags.count() > 0).then(|| {
        json!({
            "samples": lags.count(),
            "p50_ms": lags.quantile_nanos(0.5).map(nanos_to_ms),
            "p95_ms": lags.quantile_nanos(0.95).map(nanos_to_ms),
            "max_ms": lags.max_nanos().map(nanos_to_ms),
        })
    });
    json!({
        "count": total.count,
        "throughput_per_minute": total.count as f64 / range_minutes,
        "failures": total.failures,
        "failure_rate": failure_rate(total),
        "avg_ms": (count > 0).then(|| nanos_to_ms(durations.sum_nanos() / count as f64)),
        "p50_ms": durations.quantile_nanos(0.5).map(nanos_to_ms),
        "p95_ms": durations.quantile_nanos(0.95).map(nanos_to_ms),
        "p99_ms": durations.quantile_nanos(0.99).map(nanos_to_ms),
        "max_ms": durations.max_nanos().map(nanos_to_ms),
        "lag": lag,
    })
}

/// [`stats`] with the key fields.
fn keyed_stats(total: &JobRollup, range_minutes: f64) -> Value {
    let mut row = stats(total, range_minutes);
    row["name"] = json!(total.key.name);
    row["messaging_system"] = json!(total.key.messaging_system);
    row["operation"] = json!(total.key.operation);
    row["service"] = json!(total.key.service_name);
    row["environment"] = json!(total.key.environment);
    row
}

async fn job_detail(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, name) = path_params(path)?;
    let params = query_params(query)?;
    reject_unknown_params(&params, &["timeRange", "service", "environment", "limit"], None)?;
    let limit = parse_limit(&params, 5, JOB_SLOWEST_KEPT)?;
    let job_params = job_params(&params, Some(name.clone()))?;
    let project = authorize_read(&state, &headers, project).await?;
    let state = state.clone();
    blocking(move || {
        let rollups = state.store.job_rollups(project.id, &job_params.query)?;
        if rollups.is_empty() {
            return Err(ApiError::not_found(format!("no job or destination named {name:?} in this time range")));
        }
        let JobParams { query, range_minutes } = &job_params;
        let mut summary = JobRollup::empty(rollups[0].key.clone(), 0, MINUTE_SECONDS);
        for rollup in &rollups {
            summary.merge(rollup).map_err(merge_error)?;
        }
        let operations: Vec<Value> =
            totals_by_key(&rollups)?.iter().map(|total| keyed_stats(total, *range_minutes)).collect();
        let bucket_seconds = bucket_seconds_for(query.to_unix_nano - query.from_unix_nano);
        let slowest: Vec<Value> =
            summary.slowest.iter().take(limit).map(|slow| slow_trace_json(&project.slug, slow)).collect();
        Ok(Json(json!({
            "name": name,
            "from_unix_nano": query.from_unix_nano,
            "to_unix_nano": query.to_unix_nano,
            "bucket_seconds": bucket_seconds,
            "summary": stats(&summary, *range_minutes),
            "operations": operations,
            "series": series(&rollups, query.from_unix_nano, query.to_unix_nano, bucket_seconds)?,
            "slowest_traces": slowest,
        })))
    })
    .await
}

/// Per-bucket counts, failures, p95 duration and p95 lag from `from` to `to`, empty buckets
/// included.
fn series(
    rollups: &[JobRollup],
    from_unix_nano: u64,
    to_unix_nano: u64,
    bucket_seconds: u64,
) -> Result<Value, ApiError> {
    let width = bucket_seconds * 1_000_000_000;
    let first = from_unix_nano / width * width;
    let count = (to_unix_nano.saturating_sub(first) / width + 1) as usize;
    let Some(template) = rollups.first() else {
        return Ok(json!([]));
    };
    let mut buckets: Vec<JobRollup> =
        (0..count).map(|index| JobRollup::empty(template.key.clone(), first + index as u64 * width, 0)).collect();
    for rollup in rollups {
        let index = (rollup.bucket_start_unix_nano.saturating_sub(first) / width) as usize;
        if let Some(bucket) = buckets.get_mut(index) {
            bucket.merge(rollup).map_err(merge_error)?;
        }
    }
    Ok(Value::Array(
        buckets
            .iter()
            .map(|bucket| {
                json!({
                    "start_unix_nano": bucket.bucket_start_unix_nano,
                    "count": bucket.count,
                    "failures": bucket.failures,
                    "p95_ms": bucket.durations.quantile_nanos(0.95).map(nanos_to_ms),
                    "lag_p95_ms": bucket.lags.quantile_nanos(0.95).map(nanos_to_ms),
                })
            })
            .collect(),
    ))
}

#[cfg(test)]
mod tests {
    use sightline_model::{SpanId, TraceId};

    use super::*;
    use crate::store::rollups::SlowRequest;

    fn rollup(name: &str, minute: u64, durations_ms: &[u64], failures: usize, lag_ms: Option<u64>) -> JobRollup {
        let key = JobKey {
            service_name: "worker".into(),
            environment: String::new(),
            messaging_system: "rabbitmq".into(),
            name: name.into(),
            operation: "process".into(),
        };
        let mut rollup = JobRollup::empty(key, minute * NANOS_PER_MINUTE, MINUTE_SECONDS);
        for (index, duration_ms) in durations_ms.iter().enumerate() {
            let slow = SlowRequest {
                trace_id: TraceId([index as u8 + 1; 16]),
                span_id: SpanId([index as u8 + 1; 8]),
                duration_nanos: duration_ms * 1_000_000,
                start_time_unix_nano: 0,
            };
            rollup.add_span(slow, index < failures, lag_ms.map(|lag| lag * 1_000_000));
        }
        rollup
    }

    #[test]
    fn sort_orders_stats_and_series() {
        let rows = vec![
            rollup("mail", 10, &[10; 30], 0, None),
            rollup("orders", 10, &[100, 200], 1, Some(5_000)),
            rollup("orders", 11, &[300], 0, Some(1_000)),
            rollup("thumbs", 11, &[900, 1, 1, 1], 3, Some(10)),
        ];
        let order = |sort: SortBy| -> Vec<String> {
            let mut totals = totals_by_key(&rows).expect("totals");
            totals.sort_by(|left, right| {
                sort.value_of(right).partial_cmp(&sort.value_of(left)).unwrap_or(Ordering::Equal)
            });
            totals.iter().map(|total| total.key.name.clone()).collect()
        };
        assert_eq!(order(SortBy::Throughput), ["mail", "thumbs", "orders"]);
        assert_eq!(order(SortBy::FailureRate), ["thumbs", "orders", "mail"]);
        assert_eq!(order(SortBy::P95), ["orders", "mail", "thumbs"], "one outlier does not move thumbs' p95");
        assert_eq!(order(SortBy::Lag), ["orders", "thumbs", "mail"], "no lag sorts last");
        let totals = totals_by_key(&rows).expect("totals");
        let orders = keyed_stats(&totals[1], 60.0);
        assert_eq!(orders["count"], 3);
        assert_eq!(orders["throughput_per_minute"], 3.0 / 60.0);
        assert_eq!(orders["failure_rate"], 1.0 / 3.0);
        assert_eq!(orders["avg_ms"], 200.0);
        assert_eq!(orders["max_ms"], 300.0);
        assert_eq!(orders["lag"]["samples"], 3);
        assert_eq!(orders["lag"]["max_ms"], 5_000.0);
        assert_eq!(keyed_stats(&totals[0], 60.0)["lag"], Value::Null);
        let series = series(&rows[1..3], 10 * NANOS_PER_MINUTE, 70 * NANOS_PER_MINUTE, 60).expect("series");
        let series = series.as_array().expect("array");
        assert_eq!(series.len(), 61);
        assert_eq!((series[0]["count"].as_u64(), series[1]["count"].as_u64()), (Some(2), Some(1)));
        assert_eq!(series[2]["p95_ms"], Value::Null);
        assert!(SortBy::parse(Some(&"p99".to_owned())).is_err());
    }
}
