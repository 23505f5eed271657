//! Privacy endpoints (issue 6, item 4): the project's privacy rules, its opt-out list and user
//! erasure (GDPR art. 17).
//!
//! - `GET /api/v1/projects/{project}/privacy` → the settings (`crate::privacy::PrivacySettings`)
//!   and `opt_out_count`. Never the hash key.
//! - `PUT /api/v1/projects/{project}/privacy` (scope `all`) with the settings → the settings;
//!   400 naming the problem for rules that do not compile.
//! - `GET /api/v1/projects/{project}/privacy/opt-outs` → `{"opt_outs": [user_id, ...]}`.
//! - `POST` / `DELETE /api/v1/projects/{project}/privacy/opt-outs/{user_id}` (scope `all`) →
//!   `{"user_id", "opted_out", "changed"}`: the user's events are no longer / again forwarded.
//! - `DELETE /api/v1/projects/{project}/users/{user_id}` (scope `all`) → 200 with what was
//!   removed per kind (`store::privacy::Erasure`); the user's pseudonym (their `user.id` hashed
//!   with the project's key, as `@anything:hash` stores it) is erased too. Idempotent.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::path_params;
use super::{Access, ApiError, authorize, authorize_read, blocking};
use crate::privacy::PrivacySettings;
use crate::server::AppState;

/// Longest user id accepted in a path, bytes (`user.id` values are at most 2,048 bytes).
const MAX_USER_ID_BYTES: usize = 2048;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/privacy", get(get_settings).put(put_settings))
        .route("/api/v1/projects/{project}/privacy/opt-outs", get(list_opt_outs))
        .route("/api/v1/projects/{project}/privacy/opt-outs/{user_id}", post(add_opt_out).delete(remove_opt_out))
        .route("/api/v1/projects/{project}/users/{user_id}", delete(erase_user))
}

fn check_user_id(user_id: &str) -> Result<(), ApiError> {
    if user_id.is_empty() || user_id.len() > MAX_USER_ID_BYTES {
        return Err(ApiError::invalid(format!("user_id must be 1 to {MAX_USER_ID_BYTES} bytes")));
    }
    Ok(())
}

/// The settings as the API shows them.
fn settings_body(settings: &PrivacySettings, opt_out_count: usize) -> Value {
    let mut body = serde_json::to_value(settings).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        // Shown even when empty, so a client sees that nothing applies.
        object.entry("applications").or_insert_with(|| json!({}));
        object.entry("rules").or_insert_with(|| json!({}));
        object.insert("opt_out_count".into(), json!(opt_out_count));
    }
    body
}

async fn get_settings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let engine = state.ingestor.privacy().clone();
    let store = state.store.clone();
    let (privacy, opt_outs) = blocking(move || {
        let privacy = engine.for_project(project.id)?;
        Ok((privacy, store.privacy_settings(project.id)?.opt_outs.len()))
    })
    .await?;
    Ok(Json(settings_body(&privacy.settings, opt_outs)))
}

async fn put_settings(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = authorize(&state, &headers, path_params(path)?, Access::Admin).await?;
    let (privacy, opt_outs) = save_settings(&state, &project, &body).await?;
    Ok(Json(settings_body(&privacy.settings, opt_outs)))
}

/// Parses `body` as `PUT .../privacy` does (400 naming the problem), stores the settings and
/// reloads the ingest cache; returns the settings now in force and the opt-out count. The
/// dashboard's privacy form uses this too.
pub(crate) async fn save_settings(
    state: &AppState,
    project: &crate::store::Project,
    body: &[u8],
) -> Result<(Arc<crate::privacy::ProjectPrivacy>, usize), ApiError> {
    let settings = PrivacySettings::parse(body).map_err(|error| ApiError::invalid(error.to_string()))?;
    let store = state.store.clone();
    let engine = state.ingestor.privacy().clone();
    let project_id = project.id;
    let json = settings.to_json();
    let (privacy, opt_outs) = blocking(move || {
        store.put_privacy_settings(project_id, &json)?;
        engine.invalidate(project_id);
        let privacy = engine.for_project(project_id)?;
        Ok((privacy, store.privacy_settings(project_id)?.opt_outs.len()))
    })
    .await?;
    tracing::info!(
        project = %project.slug,
        scrub_before_storing = privacy.settings.scrub_before_storing,
        selectors = privacy.settings.config.applications.len(),
        "Privacy settings changed"
    );
    Ok((privacy, opt_outs))
}

async fn list_opt_outs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let store = state.store.clone();
    let opt_outs = blocking(move || Ok(store.privacy_settings(project.id)?.opt_outs)).await?;
    Ok(Json(json!({"opt_outs": opt_outs})))
}

async fn change_opt_out(
    state: Arc<AppState>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    opted_out: bool,
) -> Result<Json<Value>, ApiError> {
    let (project, user_id) = path_params(path)?;
    check_user_id(&user_id)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    let changed = set_opt_out(&state, project.id, &user_id, opted_out).await?;
    Ok(Json(json!({"user_id": user_id, "opted_out": opted_out, "changed": changed})))
}

/// Adds `user_id` to the project's opt-out list (`opted_out`) or removes it, after the same
/// check as the API (1 to 2,048 bytes); false when nothing changed. The dashboard uses this too.
pub(crate) async fn set_opt_out(
    state: &AppState,
    project_id: i64,
    user_id: &str,
    opted_out: bool,
) -> Result<bool, ApiError> {
    check_user_id(user_id)?;
    let store = state.store.clone();
    let changed_user = user_id.to_owned();
    let changed = blocking(move || {
        Ok(if opted_out {
            store.add_opt_out(project_id, &changed_user)?
        } else {
            store.remove_opt_out(project_id, &changed_user)?
        })
    })
    .await?;
    state.ingestor.privacy().invalidate(project_id);
    Ok(changed)
}

async fn add_opt_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    change_opt_out(state, headers, path, true).await
}

async fn remove_opt_out(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    change_opt_out(state, headers, path, false).await
}

async fn erase_user(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
) -> Result<Json<Value>, ApiError> {
    let (project, user_id) = path_params(path)?;
    check_user_id(&user_id)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    let store = state.store.clone();
    let engine = state.ingestor.privacy().clone();
    let project_id = project.id;
    let erased_user = user_id.clone();
    let erasure = blocking(move || {
        let mut user_ids = vec![erased_user.clone()];
        if let Some(pseudonym) = engine.for_project(project_id)?.pseudonym(&erased_user) {
            user_ids.push(pseudonym);
        }
        Ok(store.erase_user(project_id, &user_ids)?)
    })
    .await?;
    // Which user is not logged: the erasure itself must not leave the id behind.
    tracing::info!(
        project = %project.slug,
        events = erasure.events,
        sessions = erasure.sessions,
        error_events = erasure.error_events,
        "User data erased"
    );
    let mut body = serde_json::to_value(erasure).unwrap_or_else(|_| json!({}));
    if let Some(object) = body.as_object_mut() {
        object.insert("user_id".into(), json!(user_id));
    }
    Ok(Json(body))
}
