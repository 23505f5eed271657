//! Endpoint and service health (issue 5, "Endpoint health"): each endpoint and each service is
//! healthy, degraded or failing by its error rate and p95 latency against the project's
//! thresholds ([`HealthThresholds`], defaults in `store::health`), over the last 5 and the last
//! 60 minutes, from the endpoint RED rollups.
//!
//! `GET /api/v1/projects/{project}/health?environment=` →
//! `{status, thresholds, services: [{service, status, windows: {"5m": Window, "60m": Window},
//! endpoints_by_status: {"healthy": n, ...}, endpoints: [{operation, method, route, status,
//! windows}]}]}` with `Window` = `{status, requests, errors, error_percent, p95_ms}`.
//! A window holds the minute buckets that started in the last 5 (60) minutes, the current
//! partial minute included. `status` is the 5-minute window's, or the 60-minute window's when
//! the last 5 minutes had no traffic; a service's windows merge its endpoints' sketches; the
//! project's `status` is its worst service's. Services worst first, then by name; endpoints
//! likewise. Durations in ms.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::{QueryParams, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::health::{HealthStatus, HealthThresholds, classify};
use crate::store::rollups::{DurationSketch, EndpointRollup, RollupQuery};

const MINUTE_NANOS: u64 = 60_000_000_000;
/// The two windows, (label, minutes).
const WINDOWS: [(&str, u64); 2] = [("5m", 5), ("60m", 60)];

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/health", get(project_health))
}

/// Counts and merged durations of one window.
#[derive(Default)]
struct WindowCounts {
    requests: u64,
    errors: u64,
    durations: DurationSketch,
}

impl WindowCounts {
    fn add(&mut self, rollup: &EndpointRollup) -> Result<(), ApiError> {
        self.requests += rollup.requests;
        self.errors += rollup.errors;
        self.durations.merge(&rollup.durations).map_err(store_error)
    }

    fn judge(&self, thresholds: &HealthThresholds) -> (HealthStatus, Value) {
        let p95_ms = self.durations.quantile_nanos(0.95).map(|nanos| nanos / 1e6);
        let status = classify(thresholds, self.requests, self.errors, p95_ms);
        let error_percent = if self.requests == 0 { 0.0 } else { self.errors as f64 * 100.0 / self.requests as f64 };
        let window = json!({
            "status": status,
            "requests": self.requests,
            "errors": self.errors,
            "error_percent": error_percent,
            "p95_ms": p95_ms,
        });
        (status, window)
    }
}

fn store_error(error: impl std::fmt::Display) -> ApiError {
    ApiError::from(crate::store::StoreError::Database(error.to_string()))
}

/// One endpoint's or service's two windows, judged.
fn judge_windows(windows: &[WindowCounts; 2], thresholds: &HealthThresholds) -> (HealthStatus, Value) {
    let mut statuses = Vec::with_capacity(2);
    let mut body = serde_json::Map::new();
    for ((label, _), counts) in WINDOWS.iter().zip(windows) {
        let (status, window) = counts.judge(thresholds);
        statuses.push(status);
        body.insert((*label).to_owned(), window);
    }
    // The recent window decides; an endpoint idle for 5 minutes shows the last hour.
    let status = if statuses[0] == HealthStatus::NoTraffic { statuses[1] } else { statuses[0] };
    (status, Value::Object(body))
}

/// A service's windows, and each of its operations' (method, route) and windows.
type ServiceWindows<'a> = ([WindowCounts; 2], BTreeMap<&'a str, ((&'a str, &'a str), [WindowCounts; 2])>);

/// Health of every service and endpoint from the last hour's rollups.
pub(crate) fn health_body(
    rollups: &[EndpointRollup],
    thresholds: &HealthThresholds,
    now_unix_nano: u64,
) -> Result<Value, ApiError> {
    let mut services: BTreeMap<&str, ServiceWindows<'_>> = BTreeMap::new();
    for rollup in rollups {
        let (service_windows, endpoints) = services.entry(rollup.key.service_name.as_str()).or_default();
        let (_, endpoint_windows) = endpoints
            .entry(rollup.key.operation.as_str())
            .or_insert_with(|| ((rollup.key.method.as_str(), rollup.key.route.as_str()), Default::default()));
        for (index, (_, minutes)) in WINDOWS.iter().enumerate() {
            let window_start = now_unix_nano.saturating_sub(minutes * MINUTE_NANOS) / MINUTE_NANOS * MINUTE_NANOS;
            if rollup.bucket_start_unix_nano >= window_start {
                service_windows[index].add(rollup)?;
                endpoint_windows[index].add(rollup)?;
            }
        }
    }
    let mut project_status = HealthStatus::NoTraffic;
    let mut service_bodies = Vec::new();
    for (service, (service_windows, endpoints)) in &services {
        let (service_status, windows) = judge_windows(service_windows, thresholds);
        project_status = project_status.max(service_status);
        let mut by_status: BTreeMap<HealthStatus, u64> = BTreeMap::new();
        let mut endpoint_bodies = Vec::new();
        for (operation, ((method, route), endpoint_windows)) in endpoints {
            let (status, windows) = judge_windows(endpoint_windows, thresholds);
            *by_status.entry(status).or_default() += 1;
            endpoint_bodies.push((
                status,
                json!({"operation": operation, "method": method, "route": route, "status": status, "windows": windows}),
            ));
        }
        // Worst first; the map's order (by operation) breaks ties.
        endpoint_bodies.sort_by_key(|(status, _)| std::cmp::Reverse(*status));
        service_bodies.push((
            service_status,
            json!({
                "service": service,
                "status": service_status,
                "windows": windows,
                "endpoints_by_status": by_status,
                "endpoints": endpoint_bodies.into_iter().map(|(_, body)| body).collect::<Vec<_>>(),
            }),
        ));
    }
    service_bodies.sort_by_key(|(status, _)| std::cmp::Reverse(*status));
    Ok(json!({
        "status": project_status,
        "thresholds": thresholds,
        "services": service_bodies.into_iter().map(|(_, body)| body).collect::<Vec<_>>(),
    }))
}

async fn project_health(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    reject_unknown_params(&params, &["environment"], None)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let environment = params.get("environment").filter(|environment| !environment.is_empty()).cloned();
    let state = state.clone();
    blocking(move || Ok(Json(project_health_response(&state, &project, environment, crate::clock::now_unix_nano())?)))
        .await
}

/// The body of `GET /api/v1/projects/{project}/health` (see the module docs) for one
/// environment or all. Blocking.
pub(crate) fn project_health_response(
    state: &AppState,
    project: &crate::store::Project,
    environment: Option<String>,
    now: u64,
) -> Result<Value, ApiError> {
    let longest = WINDOWS[WINDOWS.len() - 1].1;
    let query = RollupQuery {
        service: None,
        environment,
        operation: None,
        from_unix_nano: now.saturating_sub(longest * MINUTE_NANOS) / MINUTE_NANOS * MINUTE_NANOS,
        to_unix_nano: now + 1,
    };
    let rollups = state.store.endpoint_rollups(project.id, &query)?;
    health_body(&rollups, &project.health_thresholds, now)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::rollups::{EndpointKey, StatusClass};

    const NOW: u64 = 1_800_000_000 * 1_000_000_000 + 30 * 1_000_000_000;

    fn rollup(service: &str, operation: &str, minutes_ago: u64, durations_ms: &[u64], errors: u64) -> EndpointRollup {
        let key = EndpointKey {
            service_name: service.into(),
            environment: String::new(),
            operation: operation.into(),
            method: "GET".into(),
            route: operation.trim_start_matches("GET ").into(),
            status_class: StatusClass::of(Some(200)),
        };
        let bucket = (NOW / MINUTE_NANOS - minutes_ago) * MINUTE_NANOS;
        let mut rollup = EndpointRollup::empty(key, bucket, 60);
        for duration in durations_ms {
            rollup.durations.add_nanos(duration * 1_000_000);
        }
        rollup.requests = durations_ms.len() as u64;
        rollup.errors = errors;
        rollup
    }

    #[test]
    fn windows_services_and_endpoints_are_judged() {
        let fast = vec![20; 100];
        let rollups = vec![
            // checkout: GET /cart fine now; GET /pay failing now (10 % errors); an old error burst
            // on /cart 30 minutes ago only shows in the hour window.
            rollup("checkout", "GET /cart", 1, &fast, 0),
            rollup("checkout", "GET /cart", 30, &fast, 40),
            rollup("checkout", "GET /pay", 2, &fast, 10),
            // search: slow (p95 1.5 s) → degraded; idle for the last 5 minutes.
            rollup("search", "GET /q", 20, &[1_500; 50], 0),
            // Too old for either window.
            rollup("search", "GET /old", 90, &fast, 100),
        ];
        let body = health_body(&rollups, &HealthThresholds::default(), NOW).expect("body");
        assert_eq!(body["status"], "failing");
        let services = body["services"].as_array().expect("services");
        assert_eq!(services[0]["service"], "checkout", "worst first");
        assert_eq!(services[0]["status"], "failing");
        let checkout_5m = &services[0]["windows"]["5m"];
        assert_eq!((checkout_5m["requests"].as_u64(), checkout_5m["errors"].as_u64()), (Some(200), Some(10)));
        assert_eq!(services[0]["windows"]["60m"]["requests"], 300);
        let endpoints = services[0]["endpoints"].as_array().expect("endpoints");
        assert_eq!(endpoints[0]["operation"], "GET /pay");
        assert_eq!(endpoints[0]["status"], "failing");
        assert_eq!(endpoints[1]["operation"], "GET /cart");
        assert_eq!(endpoints[1]["status"], "healthy", "the recent window decides");
        assert_eq!(endpoints[1]["windows"]["60m"]["status"], "failing", "40 errors of 200 in the hour");
        assert_eq!(services[0]["endpoints_by_status"], json!({"healthy": 1, "failing": 1}));

        assert_eq!(services[1]["service"], "search");
        assert_eq!(services[1]["status"], "degraded", "no traffic for 5 minutes: the hour decides");
        assert_eq!(services[1]["windows"]["5m"]["status"], "no_traffic");
        let p95 = services[1]["windows"]["60m"]["p95_ms"].as_f64().expect("p95");
        assert!((p95 - 1_500.0).abs() <= 15.0, "within the sketch's 1 %: {p95}");
        assert_eq!(services[1]["endpoints"].as_array().expect("endpoints").len(), 2, "old endpoints listed, idle");
        assert_eq!(services[1]["endpoints"][1]["status"], "no_traffic");
    }

    #[test]
    fn project_thresholds_apply() {
        let rollups = vec![rollup("checkout", "GET /cart", 1, &[400; 100], 0)];
        let strict = HealthThresholds { p95_ms_degraded: 300.0, p95_ms_failing: 350.0, ..HealthThresholds::default() };
        assert_eq!(health_body(&rollups, &HealthThresholds::default(), NOW).expect("body")["status"], "healthy");
        assert_eq!(health_body(&rollups, &strict, NOW).expect("body")["status"], "failing");
        assert_eq!(health_body(&[], &strict, NOW).expect("body")["status"], "no_traffic");
    }
}
