//! Metric endpoints: the list of metrics, and one metric as time series.
//!
//! - `GET /api/v1/projects/{project}/metrics` → `{metrics: [MetricDescription]}`.
//! - `GET /api/v1/projects/{project}/metrics/{name}/series?from=&to=&step=&group_by=&stat=` →
//!   `{metric, from_unix_nano, to_unix_nano, step_seconds, series: [{group, points}], truncated}`;
//!   the math per metric type is in `api/series.rs`.

use std::collections::BTreeSet;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::params::{QueryParams, path_params, query_params, reject_unknown_params};
use super::series::{BucketGrid, Series, SeriesRequest, Stat, compute_series};
use super::{ApiError, authorize_read, blocking, parse_time};
use crate::server::AppState;
use crate::store::{MetricDescription, Store};

const NANOS_PER_SECOND: u64 = 1_000_000_000;
/// Range shown when `from` is absent: the hour before `to`.
const DEFAULT_RANGE_NANOS: u64 = 3_600 * NANOS_PER_SECOND;
/// Buckets the default step aims at.
const DEFAULT_BUCKETS: u64 = 60;
/// How far before `from` to read points (at least a step), so the first bucket of a cumulative
/// stream has a previous point to difference against (exporters report every 10–60 s by
/// default).
const LOOKBACK_NANOS: u64 = 5 * 60 * NANOS_PER_SECOND;
/// Points one series request reads at most; beyond, the response says `truncated` (the store
/// returns the oldest first, so the newest buckets are the ones missing).
const MAX_POINTS_PER_REQUEST: usize = 200_000;
/// Most `group_by` keys.
const MAX_GROUP_BY_KEYS: usize = 10;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/metrics", get(list_metrics))
        .route("/api/v1/projects/{project}/metrics/{name}/series", get(metric_series))
}

/// The metrics of a project.
#[derive(Debug, Serialize)]
struct MetricList {
    /// Metric streams' descriptions, by name.
    metrics: Vec<MetricDescription>,
}

async fn list_metrics(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<MetricList>, ApiError> {
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let store = state.store.clone();
    let metrics = blocking(move || Ok(store.list_metrics(project.id)?)).await?;
    Ok(Json(MetricList { metrics }))
}

/// One metric as series.
#[derive(Debug, Serialize)]
pub(crate) struct SeriesResponse {
    /// The metric's description (type, temporality, unit, ...).
    pub metric: MetricDescription,
    /// Start of the first bucket, ns since the epoch.
    pub from_unix_nano: u64,
    /// End of the range (inclusive), ns since the epoch.
    pub to_unix_nano: u64,
    /// Bucket width in seconds.
    pub step_seconds: u64,
    /// One series per group, ordered by group.
    pub series: Vec<Series>,
    /// True when the point or series limit cut data off.
    pub truncated: bool,
}

/// The parsed query of a series request.
#[derive(Debug, Clone)]
pub(crate) struct SeriesParams {
    from_unix_nano: u64,
    to_unix_nano: u64,
    step_seconds: u64,
    request: SeriesRequest,
}

use crate::clock::now_unix_nano;

/// `step` in whole seconds: a number of seconds or a duration (`30s`, `5m`, `1h`). Absent, the
/// range split in [`DEFAULT_BUCKETS`], rounded up to a whole second.
fn parse_step_seconds(value: Option<&String>, range_nanos: u64) -> Result<u64, ApiError> {
    let Some(text) = value.filter(|text| !text.is_empty()) else {
        let step_nanos = range_nanos / DEFAULT_BUCKETS;
        return Ok(step_nanos.div_ceil(NANOS_PER_SECOND).max(1));
    };
    let invalid = || ApiError::invalid(format!("step={text:?}: use whole seconds (60) or a duration (1m)"));
    let seconds = match text.parse::<u64>() {
        Ok(seconds) => seconds,
        Err(_) => {
            let duration = humantime::parse_duration(text).map_err(|_| invalid())?;
            if duration.subsec_nanos() != 0 {
                return Err(invalid());
            }
            duration.as_secs()
        }
    };
    if seconds == 0 {
        return Err(ApiError::invalid("step must be at least 1 second"));
    }
    Ok(seconds)
}

/// Reads a series request's query string (`from, to, step, group_by, stat`; 400 otherwise).
pub(crate) fn parse_series_params(params: &QueryParams, now_unix_nano: u64) -> Result<SeriesParams, ApiError> {
    const KNOWN: [&str; 5] = ["from", "to", "step", "group_by", "stat"];
    reject_unknown_params(params, &KNOWN, None)?;
    let to_unix_nano = parse_time("to", params.get("to"))?.unwrap_or(now_unix_nano);
    let from_unix_nano =
        parse_time("from", params.get("from"))?.unwrap_or(to_unix_nano.saturating_sub(DEFAULT_RANGE_NANOS));
    if from_unix_nano > to_unix_nano {
        return Err(ApiError::invalid("from must not be after to"));
    }
    let step_seconds = parse_step_seconds(params.get("step"), to_unix_nano - from_unix_nano)?;
    let grid = BucketGrid::new(from_unix_nano, to_unix_nano, step_seconds.saturating_mul(NANOS_PER_SECOND))
        .map_err(|error| ApiError::invalid(error.to_string()))?;
    let mut group_by: Vec<String> = Vec::new();
    for key in params.get("group_by").into_iter().flat_map(|keys| keys.split(',')) {
        let key = key.trim();
        if !key.is_empty() && !group_by.iter().any(|known| known == key) {
            group_by.push(key.to_owned());
        }
    }
    if group_by.len() > MAX_GROUP_BY_KEYS {
        return Err(ApiError::invalid(format!(
            "group_by names {} keys; use at most {MAX_GROUP_BY_KEYS}",
            group_by.len()
        )));
    }
    let stat = match params.get("stat").filter(|text| !text.is_empty()) {
        None => None,
        Some(text) => Some(Stat::parse(text).map_err(|error| ApiError::invalid(error.to_string()))?),
    };
    // Reading from before `from` gives cumulative streams a previous point for the first bucket.
    let complete_from_unix_nano = from_unix_nano.saturating_sub(LOOKBACK_NANOS.max(grid.step_nanos()));
    Ok(SeriesParams {
        from_unix_nano,
        to_unix_nano,
        step_seconds,
        request: SeriesRequest { grid, group_by, stat, complete_from_unix_nano },
    })
}

async fn metric_series(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<SeriesResponse>, ApiError> {
    let (project, name) = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let params = query_params(query)?;
    let series_params = parse_series_params(&params, now_unix_nano())?;
    let store = state.store.clone();
    // Reading and the math both run on the blocking pool: a wide range is CPU work.
    let response = blocking(move || read_series(store.as_ref(), project.id, &name, &series_params)).await?;
    Ok(Json(response.series))
}

/// A series response with what the dashboard also needs from the points read.
#[derive(Debug)]
pub(crate) struct SeriesRead {
    /// The API's response.
    pub series: SeriesResponse,
    /// Point attribute keys seen in the range, sorted, plus `service.name`: the `group_by`
    /// choices.
    pub attribute_keys: Vec<String>,
}

/// Reads metric `name` and computes its series, on the calling (blocking) thread. Errors: 404
/// for an unknown metric, 400 for a `stat` that does not apply to its type.
pub(crate) fn read_series(
    store: &dyn Store,
    project_id: i64,
    name: &str,
    series_params: &SeriesParams,
) -> Result<SeriesRead, ApiError> {
    // A name may have been sent with several types over time; show the latest.
    let metric = store
        .list_metrics(project_id)?
        .into_iter()
        .filter(|metric| metric.name == name)
        .max_by_key(|metric| metric.last_seen_unix_nano)
        .ok_or_else(|| ApiError::not_found(format!("metric {name:?} not found")))?;
    let request = &series_params.request;
    if let Some(stat) = request.stat {
        stat.check_applies_to(&metric.kind).map_err(|error| ApiError::invalid(error.to_string()))?;
    }
    let mut points = store.metric_points(
        project_id,
        name,
        request.complete_from_unix_nano,
        series_params.to_unix_nano,
        MAX_POINTS_PER_REQUEST + 1,
    )?;
    let points_truncated = points.len() > MAX_POINTS_PER_REQUEST;
    points.truncate(MAX_POINTS_PER_REQUEST);
    if points_truncated {
        tracing::warn!(metric = %name, limit = MAX_POINTS_PER_REQUEST, "Series request hit the point limit");
    }
    let mut keys: BTreeSet<String> = BTreeSet::from(["service.name".to_owned()]);
    for stored in points.iter().filter(|stored| stored.kind == metric.kind) {
        keys.extend(stored.point.attributes.0.keys().cloned());
    }
    let result = compute_series(&metric.kind, &points, request);
    Ok(SeriesRead {
        series: SeriesResponse {
            metric,
            from_unix_nano: series_params.from_unix_nano,
            to_unix_nano: series_params.to_unix_nano,
            step_seconds: series_params.step_seconds,
            series: result.series,
            truncated: points_truncated || result.series_truncated,
        },
        attribute_keys: keys.into_iter().collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_700_000_000 * NANOS_PER_SECOND;

    fn params(pairs: &[(&str, &str)]) -> QueryParams {
        pairs.iter().map(|(name, value)| ((*name).to_owned(), (*value).to_owned())).collect()
    }

    #[test]
    fn defaults_are_the_last_hour_in_sixty_steps() {
        let parsed = parse_series_params(&params(&[]), NOW).expect("valid");
        assert_eq!(parsed.to_unix_nano, NOW);
        assert_eq!(parsed.from_unix_nano, NOW - DEFAULT_RANGE_NANOS);
        assert_eq!(parsed.step_seconds, 60);
        assert!(parsed.request.group_by.is_empty());
        assert_eq!(parsed.request.stat, None);
    }

    #[test]
    fn step_accepts_seconds_and_durations_and_keeps_buckets_bounded() {
        assert_eq!(parse_step_seconds(Some(&"30".into()), 0).ok(), Some(30));
        assert_eq!(parse_step_seconds(Some(&"5m".into()), 0).ok(), Some(300));
        assert_eq!(parse_step_seconds(None, 10 * NANOS_PER_SECOND).ok(), Some(1));
        assert!(parse_step_seconds(Some(&"0".into()), 0).is_err());
        assert!(parse_step_seconds(Some(&"1500ms".into()), 0).is_err());
        assert!(parse_step_seconds(Some(&"soon".into()), 0).is_err());

        let day = params(&[("from", "1699913600"), ("to", "1700000000"), ("step", "1")]);
        let error = parse_series_params(&day, NOW).expect_err("86,401 buckets");
        assert!(error.message.contains("more than 11000"), "{}", error.message);
        let day = params(&[("from", "1699913600"), ("to", "1700000000"), ("step", "8")]);
        assert!(parse_series_params(&day, NOW).is_ok());
    }

    #[test]
    fn group_by_and_stat_are_read() {
        let parsed = parse_series_params(
            &params(&[("group_by", "service.name, http.route,,service.name"), ("stat", "p95")]),
            NOW,
        )
        .expect("valid");
        assert_eq!(parsed.request.group_by, vec!["service.name", "http.route"]);
        assert_eq!(parsed.request.stat, Some(Stat::Quantile(0.95)));
        assert!(parse_series_params(&params(&[("stat", "median")]), NOW).is_err());
        assert!(parse_series_params(&params(&[("from", "1700000001")]), NOW).is_err());
        assert!(parse_series_params(&params(&[("groupby", "x")]), NOW).is_err());
    }
}
