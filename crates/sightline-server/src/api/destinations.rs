//! Forwarding destinations of a project (issue 6): create, list, change, delete, delivery
//! state, dead letters and their replay.
//!
//! - `GET  /api/v1/projects/{project}/destinations` (read): the project's destinations and the
//!   server-wide ones (`"scope": "server"`, from environment variables; read-only here).
//! - `POST /api/v1/projects/{project}/destinations` (scope `all`):
//!   `{"name", "enabled"?, "config": {"type": "amplitude" | "mixpanel" | "webhook", ...}}` → 201.
//! - `GET | PATCH | DELETE .../destinations/{id}`: PATCH takes `name`, `enabled` and `config`
//!   as a JSON merge patch (RFC 7386) of the stored settings, so secrets not sent are kept.
//! - `GET .../destinations/{id}/dead-letters?limit=&before=` (read), newest first.
//! - `POST .../destinations/{id}/dead-letters/replay` (scope `all`), body `{"ids": [..]}` or
//!   empty for all → `{"replayed": n}`.
//! - A server-wide destination carries every project's events: through a project, its dead
//!   letters are listed and replayed only for that project's own events.
//!
//! Each destination reads `{"id", "name", "type", "enabled", "scope", "config" (secrets shown
//! as "set" / "unset"), "state": {"queued", "in_flight", "delivered", "dead_lettered",
//! "filtered", "lag_ms", "last_error", "last_error_at_unix_ms", "last_delivered_at_unix_ms"}}`.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::params::path_params;
use super::{Access, ApiError, authorize, blocking};
use crate::exporters::DestinationConfig;
use crate::server::AppState;
use crate::store::outbox::{Destination, SERVER_WIDE_PROJECT};

/// Longest destination name, bytes.
const MAX_NAME_BYTES: usize = 128;

pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/destinations", get(list).post(create))
        .route("/api/v1/projects/{project}/destinations/{destination_id}", get(get_one).patch(update).delete(delete))
        .route("/api/v1/projects/{project}/destinations/{destination_id}/dead-letters", get(dead_letters))
        .route("/api/v1/projects/{project}/destinations/{destination_id}/dead-letters/replay", post(replay))
}

/// A destination as the API shows it (secrets as `"set"` / `"unset"`, delivery state).
pub(crate) fn view(state: &AppState, destination: &Destination) -> Result<Value, ApiError> {
    let stats = state.store.outbox_stats(destination.id)?;
    let worker = state.delivery.worker_state(destination.id);
    let in_flight =
        worker.as_ref().map(|worker| worker.in_flight.load(std::sync::atomic::Ordering::Relaxed)).unwrap_or(0);
    Ok(json!({
        "id": destination.id,
        "name": destination.name,
        "type": destination.config.settings.kind(),
        "enabled": destination.enabled,
        "scope": if destination.project_id == SERVER_WIDE_PROJECT { "server" } else { "project" },
        "created_at_unix_ms": destination.created_at_unix_ms,
        "config": destination.config.redacted_json(),
        "state": {
            "queued": stats.queued.saturating_sub(in_flight),
            "in_flight": in_flight,
            "delivered": destination.delivered_count,
            "dead_lettered": destination.dead_letter_count,
            "filtered": destination.filtered_count,
            "lag_ms": stats.lag_ms,
            "last_error": destination.last_error,
            "last_error_at_unix_ms": destination.last_error_at_unix_ms,
            "last_delivered_at_unix_ms": destination.last_delivered_at_unix_ms,
        },
    }))
}

fn parse_json(body: &Bytes, headers: &HeaderMap, allow_empty: bool) -> Result<Value, ApiError> {
    if body.is_empty() && allow_empty {
        return Ok(json!({}));
    }
    let content_type =
        headers.get(axum::http::header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("");
    if !content_type.is_empty() && !content_type.starts_with("application/json") {
        return Err(ApiError {
            status: StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code: "unsupported_media_type",
            message: format!("send application/json, not {content_type:?}"),
        });
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|error| ApiError::invalid(format!("body is not valid JSON: {error}")))?;
    if !value.is_object() {
        return Err(ApiError::invalid("body must be a JSON object"));
    }
    Ok(value)
}

/// Parses and validates a destination's `config` (400 naming the field).
pub(crate) fn parse_config(value: Value) -> Result<DestinationConfig, ApiError> {
    let config: DestinationConfig =
        serde_json::from_value(value).map_err(|error| ApiError::invalid(format!("config: {error}")))?;
    config.validate().map_err(|message| ApiError::invalid(format!("config.{message}")))?;
    Ok(config)
}

/// Validates a destination name (trimmed, 1 to 128 bytes); `None` when absent.
pub(crate) fn parse_name(value: Option<&Value>) -> Result<Option<String>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::String(name)) if !name.trim().is_empty() && name.len() <= MAX_NAME_BYTES => {
            Ok(Some(name.trim().to_owned()))
        }
        Some(_) => Err(ApiError::invalid(format!("name: a non-empty string of at most {MAX_NAME_BYTES} bytes"))),
    }
}

fn parse_enabled(value: Option<&Value>) -> Result<Option<bool>, ApiError> {
    match value {
        None => Ok(None),
        Some(Value::Bool(enabled)) => Ok(Some(*enabled)),
        Some(_) => Err(ApiError::invalid("enabled: true or false")),
    }
}

/// A destination of the project (or server-wide) by id; 404 otherwise.
pub(crate) fn find(state: &AppState, project_id: i64, destination_id: i64) -> Result<Destination, ApiError> {
    state
        .store
        .get_destination(destination_id)?
        .filter(|destination| destination.project_id == project_id || destination.project_id == SERVER_WIDE_PROJECT)
        .ok_or_else(|| ApiError::not_found(format!("destination {destination_id} not found in this project")))
}

/// 403 for a server-wide destination, which only its environment variables change.
pub(crate) fn owned(destination: &Destination) -> Result<(), ApiError> {
    if destination.project_id == SERVER_WIDE_PROJECT {
        return Err(ApiError {
            status: StatusCode::FORBIDDEN,
            code: "forbidden",
            message: "this destination is server-wide (environment variables); change it there".into(),
        });
    }
    Ok(())
}

/// The project to scope a destination's dead letters to: a server-wide destination carries
/// every project's events, and a project reads and replays only its own (`None`: the project
/// owns the destination and all of its letters).
pub(crate) fn own_events_only(destination: &Destination, project_id: i64) -> Option<i64> {
    (destination.project_id == SERVER_WIDE_PROJECT).then_some(project_id)
}

/// Restarts the delivery workers after a change of destinations (logs a failure).
pub(crate) fn reload(state: &AppState) {
    if let Err(error) = state.delivery.reload() {
        tracing::error!(%error, "Cannot restart delivery workers");
    }
}

async fn list(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = authorize(&state, &headers, path_params(path)?, Access::Read).await?;
    let answer = blocking(move || {
        let destinations = state.store.list_destinations(Some(project.id))?;
        let views = destinations.iter().map(|destination| view(&state, destination)).collect::<Result<Vec<_>, _>>()?;
        Ok(json!({"destinations": views}))
    })
    .await?;
    Ok(Json(answer))
}

async fn create(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let project = authorize(&state, &headers, path_params(path)?, Access::Admin).await?;
    let mut request = parse_json(&body, &headers, false)?;
    let name = parse_name(request.get("name"))?.ok_or_else(|| ApiError::invalid("name: required"))?;
    let enabled = parse_enabled(request.get("enabled"))?.unwrap_or(true);
    let config = parse_config(request.get_mut("config").map(Value::take).unwrap_or(Value::Null))?;
    let answer = blocking(move || {
        let destination = state.store.create_destination(project.id, &name, enabled, &config)?;
        reload(&state);
        view(&state, &destination)
    })
    .await?;
    Ok((StatusCode::CREATED, Json(answer)).into_response())
}

async fn get_one(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, destination_id) = path_params(path)?;
    let project = authorize(&state, &headers, project, Access::Read).await?;
    let answer = blocking(move || view(&state, &find(&state, project.id, destination_id)?)).await?;
    Ok(Json(answer))
}

async fn update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (project, destination_id) = path_params(path)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    let request = parse_json(&body, &headers, false)?;
    let name = parse_name(request.get("name"))?;
    let enabled = parse_enabled(request.get("enabled"))?;
    let patch = request.get("config").cloned();
    let answer = blocking(move || {
        let destination = find(&state, project.id, destination_id)?;
        owned(&destination)?;
        let config = match patch {
            None => destination.config.clone(),
            Some(patch) => {
                let mut stored = serde_json::to_value(&destination.config)
                    .map_err(|error| ApiError::invalid(format!("stored settings unreadable: {error}")))?;
                crate::exporters::config::merge_patch(&mut stored, &patch);
                parse_config(stored)?
            }
        };
        let name = name.unwrap_or_else(|| destination.name.clone());
        let updated =
            state.store.update_destination(destination_id, &name, enabled.unwrap_or(destination.enabled), &config)?;
        reload(&state);
        view(&state, &updated)
    })
    .await?;
    Ok(Json(answer))
}

async fn delete(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let (project, destination_id) = path_params(path)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    blocking(move || {
        owned(&find(&state, project.id, destination_id)?)?;
        state.store.delete_destination(destination_id)?;
        reload(&state);
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct DeadLetterParams {
    limit: Option<usize>,
    before: Option<i64>,
}

async fn dead_letters(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    query: Result<Query<DeadLetterParams>, axum::extract::rejection::QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, destination_id) = path_params(path)?;
    let Query(params) = query.map_err(|rejection| ApiError::invalid(rejection.body_text()))?;
    let project = authorize(&state, &headers, project, Access::Read).await?;
    let limit = params.limit.unwrap_or(100).clamp(1, 1000);
    let answer = blocking(move || {
        let destination = find(&state, project.id, destination_id)?;
        let letters = state.store.dead_letters(
            destination_id,
            own_events_only(&destination, project.id),
            limit + 1,
            params.before,
        )?;
        let next = if letters.len() > limit { letters.get(limit - 1).map(|letter| letter.id) } else { None };
        let letters: Vec<_> = letters.into_iter().take(limit).collect();
        Ok(json!({"dead_letters": letters, "next_before": next}))
    })
    .await?;
    Ok(Json(answer))
}

async fn replay(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (project, destination_id) = path_params(path)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    let request = parse_json(&body, &headers, true)?;
    let ids: Option<Vec<i64>> = match request.get("ids") {
        None => None,
        Some(value) => Some(
            serde_json::from_value(value.clone()).map_err(|_| ApiError::invalid("ids: an array of dead-letter ids"))?,
        ),
    };
    if ids.as_ref().is_some_and(|ids| ids.len() > 10_000) {
        return Err(ApiError::invalid("ids: at most 10000 per request"));
    }
    let answer = blocking(move || {
        let destination = find(&state, project.id, destination_id)?;
        let replayed = state.store.replay_dead_letters(
            destination_id,
            own_events_only(&destination, project.id),
            ids.as_deref(),
        )?;
        Ok(json!({"replayed": replayed}))
    })
    .await?;
    Ok(Json(answer))
}
