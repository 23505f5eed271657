//! The service map and a service's dependencies (issue 5, "Service map"), from the edges paired
//! at ingest (`store::service_map`). Durations in ms; percentiles are the client spans'
//! durations (what the caller waited) merged over the range, within 1 % (DDSketch).
//!
//! - `GET /api/v1/projects/{project}/service-map?from=&to=` (RFC 3339 or ns/ms/s; default the
//!   last hour) → `{from_unix_nano, to_unix_nano, nodes: [{service, virtual, calls_in,
//!   calls_out}], edges: [Edge]}` with `Edge` = `{caller, callee, virtual_callee, calls,
//!   errors, error_rate, p50_ms, p95_ms, p99_ms}`, edges by calls, most first.
//! - `GET .../services/{service}/dependencies?timeRange=1h` → `{service, upstream: [Edge],
//!   downstream: [Edge]}`: who calls the service, and whom it calls.
//!
//! A virtual callee sent no spans of its own: it is named by the client spans' `peer.service`
//! (else `server.address`, else the database system).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::{QueryParams, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking, parse_time};
use crate::server::AppState;
use crate::store::rollups::DurationSketch;
use crate::store::service_map::{EdgeKey, EdgeRollup};

const HOUR_NANOS: u64 = 3_600_000_000_000;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/service-map", get(service_map))
        .route("/api/v1/projects/{project}/services/{service}/dependencies", get(dependencies))
}

#[derive(Default)]
struct EdgeTotals {
    calls: u64,
    errors: u64,
    durations: DurationSketch,
}

/// The rows summed per edge, most calls first.
fn sum_edges(rows: &[EdgeRollup]) -> Result<Vec<(EdgeKey, EdgeTotals)>, ApiError> {
    let mut totals: BTreeMap<EdgeKey, EdgeTotals> = BTreeMap::new();
    for row in rows {
        let total = totals.entry(row.key.clone()).or_default();
        total.calls += row.calls;
        total.errors += row.errors;
        total
            .durations
            .merge(&row.durations)
            .map_err(|error| ApiError::from(crate::store::StoreError::Database(error.to_string())))?;
    }
    let mut edges: Vec<_> = totals.into_iter().collect();
    edges.sort_by(|left, right| right.1.calls.cmp(&left.1.calls).then_with(|| left.0.cmp(&right.0)));
    Ok(edges)
}

fn edge_json(key: &EdgeKey, totals: &EdgeTotals) -> Value {
    let quantile = |q: f64| totals.durations.quantile_nanos(q).map(|nanos| nanos / 1e6);
    json!({
        "caller": key.caller,
        "callee": key.callee,
        "virtual_callee": key.virtual_callee,
        "calls": totals.calls,
        "errors": totals.errors,
        "error_rate": if totals.calls == 0 { 0.0 } else { totals.errors as f64 / totals.calls as f64 },
        "p50_ms": quantile(0.5),
        "p95_ms": quantile(0.95),
        "p99_ms": quantile(0.99),
    })
}

fn map_body(rows: &[EdgeRollup], from_unix_nano: u64, to_unix_nano: u64) -> Result<Value, ApiError> {
    let edges = sum_edges(rows)?;
    // service → (virtual, calls in, calls out)
    let mut nodes: BTreeMap<&str, (bool, u64, u64)> = BTreeMap::new();
    for (key, totals) in &edges {
        nodes.entry(key.caller.as_str()).or_insert((false, 0, 0)).2 += totals.calls;
        let callee = nodes.entry(key.callee.as_str()).or_insert((key.virtual_callee, 0, 0));
        callee.0 &= key.virtual_callee;
        callee.1 += totals.calls;
    }
    Ok(json!({
        "from_unix_nano": from_unix_nano,
        "to_unix_nano": to_unix_nano,
        "nodes": nodes.iter().map(|(service, (virtual_node, calls_in, calls_out))| json!({
            "service": service, "virtual": virtual_node, "calls_in": calls_in, "calls_out": calls_out,
        })).collect::<Vec<_>>(),
        "edges": edges.iter().map(|(key, totals)| edge_json(key, totals)).collect::<Vec<_>>(),
    }))
}

/// Parses `from` / `to` (default the last hour); 400 for unknown or bad parameters and for
/// `from` not before `to`. Returns `(from, to)` in ns.
pub(crate) fn parse_map_params(params: &QueryParams, now_unix_nano: u64) -> Result<(u64, u64), ApiError> {
    reject_unknown_params(params, &["from", "to"], None)?;
    let to = parse_time("to", params.get("to"))?.unwrap_or(now_unix_nano + 1);
    let from = parse_time("from", params.get("from"))?.unwrap_or(to.saturating_sub(HOUR_NANOS));
    if from >= to {
        return Err(ApiError::invalid("from must be before to"));
    }
    Ok((from, to))
}

async fn service_map(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    reject_unknown_params(&params, &["from", "to"], None)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let (from, to) = parse_map_params(&params, crate::clock::now_unix_nano())?;
    let state = state.clone();
    blocking(move || Ok(Json(service_map_response(&state, project.id, from, to)?))).await
}

/// The body of `GET .../service-map` for `[from, to)` (ns). Blocking.
pub(crate) fn service_map_response(
    state: &AppState,
    project_id: i64,
    from_unix_nano: u64,
    to_unix_nano: u64,
) -> Result<Value, ApiError> {
    let rows = state.store.service_edges(project_id, None, from_unix_nano, to_unix_nano)?;
    map_body(&rows, from_unix_nano, to_unix_nano)
}

async fn dependencies(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, service) = path_params(path)?;
    let params = query_params(query)?;
    reject_unknown_params(&params, &["timeRange"], None)?;
    let range = super::params::time_range_param(&params, "1h")?;
    let project = authorize_read(&state, &headers, project).await?;
    let now = crate::clock::now_unix_nano();
    let state = state.clone();
    blocking(move || Ok(Json(dependencies_response(&state, project.id, &service, range, now)?))).await
}

/// The body of `GET .../services/{service}/dependencies` over the `range_nanos` before
/// `now_unix_nano`: `{service, upstream: [Edge], downstream: [Edge]}`. Blocking.
pub(crate) fn dependencies_response(
    state: &AppState,
    project_id: i64,
    service: &str,
    range_nanos: u64,
    now_unix_nano: u64,
) -> Result<Value, ApiError> {
    let rows = state.store.service_edges(
        project_id,
        Some(service),
        now_unix_nano.saturating_sub(range_nanos),
        now_unix_nano + 1,
    )?;
    let edges = sum_edges(&rows)?;
    let side = |upstream: bool| -> Vec<Value> {
        edges
            .iter()
            .filter(|(key, _)| if upstream { key.callee == service } else { key.caller == service })
            .map(|(key, totals)| edge_json(key, totals))
            .collect()
    };
    Ok(json!({"service": service, "upstream": side(true), "downstream": side(false)}))
}
