//! The REST query API under `/api/v1`, plus `/health` and `/ready`.
//!
//! Every project route authenticates a key with read scope that belongs to the project in the
//! path (slug or id). Errors are JSON `{"error": {"code", "message"}}` with the matching status.

pub(crate) mod analytics;
mod cross_project;
pub(crate) mod databases;
pub(crate) mod destinations;
mod event_stats;
mod events;
pub(crate) mod health;
pub(crate) mod issues;
mod jobs;
pub(crate) mod journeys;
pub(crate) mod logs;
pub(crate) mod logs_tail;
pub(crate) mod metrics;
pub(crate) mod params;
pub(crate) mod performance;
pub(crate) mod privacy;
mod prometheus_view;
pub(crate) mod series;
pub(crate) mod service_map;
pub(crate) mod services;
pub(crate) mod sessions;
mod sourcemaps;
pub(crate) mod system;
#[cfg(test)]
mod tests;
pub(crate) mod traces;
pub(crate) mod web_vitals;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::auth::{KeyScope, key_from_headers};
use crate::server::AppState;
use crate::store::{Project, StoreError};

/// An API error: HTTP status, a stable machine code and a message saying what to do.
#[derive(Debug)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable code, e.g. `not_found`, `invalid_parameter`.
    pub code: &'static str,
    /// Human-readable explanation.
    pub message: String,
}

impl ApiError {
    /// 400 `invalid_parameter`.
    pub fn invalid(message: impl Into<String>) -> Self {
        Self { status: StatusCode::BAD_REQUEST, code: "invalid_parameter", message: message.into() }
    }

    /// 404 `not_found`.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self { status: StatusCode::NOT_FOUND, code: "not_found", message: message.into() }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(json!({"error": {"code": self.code, "message": self.message}}))).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::NotFound(what) => ApiError::not_found(format!("{what} not found")),
            StoreError::Conflict(message) => ApiError::invalid(message),
            StoreError::Database(message) => {
                tracing::error!(%message, "Query failed");
                ApiError {
                    status: StatusCode::SERVICE_UNAVAILABLE,
                    code: "unavailable",
                    message: "storage is unavailable; retry shortly".into(),
                }
            }
        }
    }
}

/// Runs a blocking store call on the blocking pool.
pub(crate) async fn blocking<T: Send + 'static>(
    call: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(call).await.map_err(|error| ApiError {
        status: StatusCode::INTERNAL_SERVER_ERROR,
        code: "internal",
        message: error.to_string(),
    })?
}

/// What a route needs the key to allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    /// Reading data: keys with scope `read` or `all`.
    Read,
    /// Changing project settings (retention can delete data): keys with scope `all` only.
    Admin,
}

/// Resolves `{project}` and checks the request's key may read it: the key's own project, or one
/// granted to it (`sightline project grant`). Errors: 401 without a valid key, 403 for an
/// ingest-only key, 404 when the project does not exist or the key may not read it (not
/// revealing which projects exist).
pub(crate) async fn authorize_read(
    state: &AppState,
    headers: &HeaderMap,
    project: String,
) -> Result<Project, ApiError> {
    authorize(state, headers, project, Access::Read).await
}

/// Like [`authorize_read`] for `access`; `Admin` answers 403 to `read` and `ingest` keys.
pub(crate) async fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    project: String,
    access: Access,
) -> Result<Project, ApiError> {
    let key = key_from_headers(headers).ok_or_else(|| ApiError {
        status: StatusCode::UNAUTHORIZED,
        code: "unauthenticated",
        message: "send a read API key as 'Authorization: Bearer <key>' or 'X-API-Key: <key>'".into(),
    })?;
    let store = state.store.clone();
    blocking(move || {
        let record = store.find_api_key(&key)?.ok_or_else(|| ApiError {
            status: StatusCode::UNAUTHORIZED,
            code: "unauthenticated",
            message: "unknown or revoked API key".into(),
        })?;
        let forbidden = |message: &str| ApiError { status: StatusCode::FORBIDDEN, code: "forbidden", message: message.into() };
        match access {
            Access::Read if !record.scope.can_read() => {
                return Err(forbidden("this is an ingest key; create a read key with 'sightline key create --scope read'"));
            }
            Access::Admin if record.scope != KeyScope::All => {
                return Err(forbidden(
                    "changing project settings or uploads needs a key with scope 'all': 'sightline key create --scope all'",
                ));
            }
            _ => {}
        }
        let not_found = || ApiError::not_found(format!("project {project:?} not found for this key"));
        let found = store.find_project(&project)?.ok_or_else(not_found)?;
        // Settings stay with the key's own project; reading extends to granted projects.
        let allowed = match access {
            Access::Admin => found.id == record.project_id,
            Access::Read => found.id == record.project_id || store.key_may_read(&record, found.id)?,
        };
        if allowed { Ok(found) } else { Err(not_found()) }
    })
    .await
}

/// Parses an optional query parameter, naming it in the error.
pub(crate) fn parse_param<T: std::str::FromStr>(name: &str, value: Option<&String>) -> Result<Option<T>, ApiError> {
    match value {
        None => Ok(None),
        Some(text) if text.is_empty() => Ok(None),
        Some(text) => text.parse().map(Some).map_err(|_| ApiError::invalid(format!("{name}={text:?} is not valid"))),
    }
}

/// Parses a time parameter: RFC 3339 (`2026-11-24T10:00:00Z`), or integer ns / ms / s since the
/// epoch (told apart by magnitude). Returns ns since the epoch.
pub(crate) fn parse_time(name: &str, value: Option<&String>) -> Result<Option<u64>, ApiError> {
    let Some(text) = value.filter(|text| !text.is_empty()) else {
        return Ok(None);
    };
    if let Ok(number) = text.parse::<u64>() {
        let nanos = if number >= 1_000_000_000_000_000 {
            number
        } else if number >= 1_000_000_000_000 {
            number.saturating_mul(1_000_000)
        } else {
            number.saturating_mul(1_000_000_000)
        };
        return Ok(Some(nanos));
    }
    let parsed = humantime::parse_rfc3339_weak(text)
        .map_err(|_| ApiError::invalid(format!("{name}={text:?}: use RFC 3339 or ns/ms/s since the epoch")))?;
    let nanos = parsed.duration_since(std::time::UNIX_EPOCH).map(|elapsed| elapsed.as_nanos() as u64).unwrap_or(0);
    Ok(Some(nanos))
}

/// Routes for `/api/v1/...`, `/health` and `/ready`.
pub fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/health", get(health))
        .route("/ready", get(ready))
        .route("/metrics", get(prometheus_metrics))
        .merge(traces::routes())
        .merge(issues::routes())
        .merge(events::routes())
        .merge(event_stats::routes())
        .merge(journeys::routes())
        .merge(web_vitals::routes())
        .merge(logs::routes())
        .merge(logs_tail::routes())
        .merge(metrics::routes())
        .merge(services::routes())
        .merge(performance::routes())
        .merge(health::routes())
        .merge(service_map::routes())
        .merge(databases::routes())
        .merge(jobs::routes())
        .merge(cross_project::routes())
        .merge(destinations::routes())
        .merge(system::routes())
        .merge(prometheus_view::routes())
        .merge(sourcemaps::routes())
        .merge(sessions::routes())
        .merge(privacy::routes())
        .fallback(|| async { ApiError::not_found("no such route; see the README for the API") })
}

async fn health() -> Json<serde_json::Value> {
    Json(json!({"status": "ok"}))
}

/// Prometheus scrape endpoint (see [`crate::telemetry`]).
async fn prometheus_metrics(State(state): State<Arc<AppState>>) -> Response {
    let metrics = crate::telemetry::metrics();
    metrics.queue_items.set(state.ingestor.queue().queued_items() as i64);
    (
        [(axum::http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
        metrics.encode(),
    )
        .into_response()
}

/// `{"status": "ready", "queued_items": n}` when the store answers (503 otherwise); queued
/// items are those accepted but not yet committed.
async fn ready(State(state): State<Arc<AppState>>) -> Response {
    let store = state.store.clone();
    let ready = tokio::task::spawn_blocking(move || store.is_ready()).await.unwrap_or(false);
    let queued_items = state.ingestor.queue().queued_items();
    if ready {
        Json(json!({"status": "ready", "queued_items": queued_items})).into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, Json(json!({"status": "unavailable"}))).into_response()
    }
}
