//! Database query statistics from the query rollups (issue 5, item 3; OTel semconv "Database
//! spans"). Durations are **milliseconds** (floats); percentiles come from merged DDSketches
//! (within 1% of the exact value, see `store::rollups`); count, errors, total, avg and max are
//! exact.
//!
//! `GET /api/v1/projects/{project}/databases/queries?sort=p95|total|count&timeRange=24h&service=&system=&limit=50`
//! → `{from_unix_nano, to_unix_nano, sort, slow_query_threshold_ms, queries: [{query, system,
//! namespace, service, count, errors, total_ms, avg_ms, p50_ms, p95_ms, p99_ms, max_ms, slow,
//! slow_traces: [{trace_id, span_id, duration_ms, start_unix_nano, trace}]}]}`, one entry per
//! (service, system, namespace, normalized query), sorted by the `sort` key, largest first
//! (default `p95`). `slow` is true when p95 or max exceeds the deployment's threshold
//! (`Config::slow_query_threshold`); slow queries list their slowest calls (at most 5) with
//! links to their traces, others an empty list. `limit` 1..=1000. 400 for bad parameters.

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
use super::performance::{nanos_to_ms, range_start, slow_trace_json};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::StoreError;
use crate::store::query_rollups::{QueryKey, QueryRollup, QueryRollupQuery};
use crate::store::rollups::MINUTE_SECONDS;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/databases/queries", get(database_queries))
}

/// The `sort` parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SortBy {
    /// 95th percentile duration.
    P95,
    /// Total time spent in the query.
    Total,
    /// Number of calls.
    Count,
}

impl SortBy {
    fn parse(text: Option<&String>) -> Result<Self, ApiError> {
        match text.map(String::as_str) {
            None | Some("") | Some("p95") => Ok(SortBy::P95),
            Some("total") => Ok(SortBy::Total),
            Some("count") => Ok(SortBy::Count),
            Some(other) => Err(ApiError::invalid(format!("sort={other:?}: use p95, total or count"))),
        }
    }

    /// The parameter's value for this order.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            SortBy::P95 => "p95",
            SortBy::Total => "total",
            SortBy::Count => "count",
        }
    }

    fn value_of(self, total: &QueryRollup) -> f64 {
        match self {
            SortBy::P95 => total.durations.quantile_nanos(0.95).unwrap_or(0.0),
            SortBy::Total => total.durations.sum_nanos(),
            SortBy::Count => total.calls as f64,
        }
    }
}

/// The parsed query of `GET .../databases/queries`.
#[derive(Debug, Clone)]
pub(crate) struct QueriesParams {
    /// Sort key.
    pub(crate) sort: SortBy,
    /// Rows at most, 1..=1000.
    pub(crate) limit: usize,
    /// Range and filters for the store.
    pub(crate) rollup_query: QueryRollupQuery,
}

/// Parses `sort, timeRange, service, system, limit`; 400 for unknown or bad parameters.
pub(crate) fn parse_queries_params(params: &QueryParams, now_unix_nano: u64) -> Result<QueriesParams, ApiError> {
    reject_unknown_params(params, &["sort", "timeRange", "service", "system", "limit"], None)?;
    let sort = SortBy::parse(params.get("sort"))?;
    let limit = parse_limit(params, 50, 1000)?;
    let rollup_query = QueryRollupQuery {
        service: params.get("service").filter(|service| !service.is_empty()).cloned(),
        db_system: params.get("system").filter(|system| !system.is_empty()).cloned(),
        from_unix_nano: range_start(params, now_unix_nano)?,
        to_unix_nano: now_unix_nano,
    };
    Ok(QueriesParams { sort, limit, rollup_query })
}

async fn database_queries(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = path_params(path)?;
    let params = query_params(query)?;
    let parsed = parse_queries_params(&params, crate::clock::now_unix_nano())?;
    let project = authorize_read(&state, &headers, project).await?;
    let state = state.clone();
    blocking(move || Ok(Json(queries_response(&state, project.id, &project.slug, &parsed)?))).await
}

/// The body of `GET .../databases/queries` (see the module docs). Blocking.
pub(crate) fn queries_response(
    state: &AppState,
    project_id: i64,
    project_slug: &str,
    params: &QueriesParams,
) -> Result<Value, ApiError> {
    let rollups = state.store.query_rollups(project_id, &params.rollup_query)?;
    let threshold_nanos = state.slow_query_threshold.as_nanos() as f64;
    let queries = query_table(&rollups, params.sort, params.limit, threshold_nanos, project_slug)?;
    Ok(json!({
        "from_unix_nano": params.rollup_query.from_unix_nano,
        "to_unix_nano": params.rollup_query.to_unix_nano,
        "sort": params.sort.as_str(),
        "slow_query_threshold_ms": nanos_to_ms(threshold_nanos),
        "queries": queries,
    }))
}

/// Merges the rows per query, sorts and renders the `queries` list.
fn query_table(
    rollups: &[QueryRollup],
    sort: SortBy,
    limit: usize,
    threshold_nanos: f64,
    project_slug: &str,
) -> Result<Vec<Value>, ApiError> {
    let mut by_query: BTreeMap<&QueryKey, QueryRollup> = BTreeMap::new();
    for rollup in rollups {
        by_query
            .entry(&rollup.key)
            .or_insert_with(|| QueryRollup::empty(rollup.key.clone(), 0, MINUTE_SECONDS))
            .merge(rollup)
            .map_err(|error| ApiError::from(StoreError::Database(error.to_string())))?;
    }
    let mut totals: Vec<QueryRollup> = by_query.into_values().collect();
    // Largest first; the key (BTreeMap order) breaks ties so pages are stable.
    totals.sort_by(|left, right| {
        sort.value_of(right).partial_cmp(&sort.value_of(left)).unwrap_or(Ordering::Equal).then(left.key.cmp(&right.key))
    });
    Ok(totals.iter().take(limit).map(|total| query_json(total, threshold_nanos, project_slug)).collect())
}

fn query_json(total: &QueryRollup, threshold_nanos: f64, project_slug: &str) -> Value {
    let durations = &total.durations;
    let quantile_ms = |q: f64| durations.quantile_nanos(q).map(nanos_to_ms);
    let p95_nanos = durations.quantile_nanos(0.95).unwrap_or(0.0);
    let max_nanos = durations.max_nanos().unwrap_or(0.0);
    let slow = p95_nanos > threshold_nanos || max_nanos > threshold_nanos;
    let slow_traces: Vec<Value> =
        if slow { total.slowest.iter().map(|call| slow_trace_json(project_slug, call)).collect() } else { Vec::new() };
    let count = durations.count();
    json!({
        "query": total.key.query,
        "system": total.key.db_system,
        "namespace": total.key.db_namespace,
        "service": total.key.service_name,
        "count": total.calls,
        "errors": total.errors,
        "total_ms": nanos_to_ms(durations.sum_nanos()),
        "avg_ms": (count > 0).then(|| nanos_to_ms(durations.sum_nanos() / count as f64)),
        "p50_ms": quantile_ms(0.5),
        "p95_ms": quantile_ms(0.95),
        "p99_ms": quantile_ms(0.99),
        "max_ms": durations.max_nanos().map(nanos_to_ms),
        "slow": slow,
        "slow_traces": slow_traces,
    })
}

#[cfg(test)]
mod tests {
    use sightline_model::{SpanId, TraceId};

    use super::*;
    use crate::store::rollups::SlowRequest;

    fn rollup(query: &str, durations_ms: &[u64]) -> QueryRollup {
        let key = QueryKey {
            service_name: "shop".into(),
            db_system: "postgresql".into(),
            db_namespace: String::new(),
            query: query.into(),
        };
        let mut rollup = QueryRollup::empty(key, 0, MINUTE_SECONDS);
        for (index, duration_ms) in durations_ms.iter().enumerate() {
            let slow = SlowRequest {
                trace_id: TraceId([index as u8 + 1; 16]),
                span_id: SpanId([index as u8 + 1; 8]),
                duration_nanos: duration_ms * 1_000_000,
                start_time_unix_nano: 0,
            };
            rollup.add_call(slow, false);
        }
        rollup
    }

    #[test]
    fn sorts_flag_slow_queries_and_link_their_traces() {
        // Few slow calls; many fast calls with the largest total; one very slow outlier.
        let rows = vec![rollup("A", &[100, 100]), rollup("B", &[10; 30]), rollup("C", &[1, 1, 1, 900])];
        let order = |sort: SortBy| -> Vec<String> {
            query_table(&rows, sort, 10, 500e6, "shop")
                .expect("table")
                .iter()
                .map(|row| row["query"].as_str().unwrap_or_default().to_owned())
                .collect()
        };
        // C's p95 is its third-slowest of four calls (1 ms): one outlier does not move it.
        assert_eq!(order(SortBy::P95), ["A", "B", "C"]);
        assert_eq!(order(SortBy::Total), ["C", "B", "A"]);
        assert_eq!(order(SortBy::Count), ["B", "C", "A"]);
        let table = query_table(&rows, SortBy::Total, 2, 500e6, "shop").expect("table");
        assert_eq!(table.len(), 2, "limit");
        assert_eq!(table[0]["slow"], true, "max 900 ms > 500 ms");
        assert_eq!(table[0]["slow_traces"][0]["duration_ms"], 900.0);
        assert_eq!(table[0]["slow_traces"][0]["trace"], format!("/api/v1/projects/shop/traces/{}", "04".repeat(16)));
        assert_eq!(table[1]["slow"], false);
        assert_eq!(table[1]["slow_traces"], json!([]));
        assert_eq!(table[1]["total_ms"], 300.0);
        assert!(SortBy::parse(Some(&"p99".to_owned())).is_err());
    }
}
