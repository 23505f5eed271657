//! Project-level endpoints: the project and its settings, the services seen and the outcome
//! counters.
//!
//! - `GET /api/v1/projects/{project}` → the project (`id, slug, name, retention_days,
//!   trace_sample_rate, created_at_unix_ms`).
//! - `PATCH /api/v1/projects/{project}` with `{"retention_days": n, "trace_sample_rate": x}`
//!   (either or both) → the updated project.
//! - `GET /api/v1/projects/{project}/services` → `{services: [ServiceStats]}`.
//! - `GET /api/v1/projects/{project}/outcomes` → `{outcomes: [{signal, outcome, count}]}`.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::{Deserialize, Serialize};

use super::params::path_params;
use super::{Access, ApiError, authorize, authorize_read, blocking};
use crate::server::AppState;
use crate::store::{OutcomeCount, Project, ServiceStats};

/// Allowed `retention_days`: a day to ten years.
const RETENTION_DAYS_RANGE: std::ops::RangeInclusive<u32> = 1..=3650;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}", get(get_project).patch(update_project))
        .route("/api/v1/projects/{project}/services", get(list_services))
        .route("/api/v1/projects/{project}/outcomes", get(list_outcomes))
}

async fn get_project(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<Project>, ApiError> {
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    Ok(Json(project))
}

/// The body of `PATCH /api/v1/projects/{project}`; absent fields keep their value.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ProjectSettingsPatch {
    /// Days data is kept, 1..=3650.
    pub(crate) retention_days: Option<u32>,
    /// Head-sampling rate for traces, 0.0..=1.0.
    pub(crate) trace_sample_rate: Option<f64>,
    /// Module / path prefixes of the project's own code (stack frames are in-app).
    pub(crate) in_app_include: Option<Vec<String>>,
    /// Module / path prefixes that are never in-app.
    pub(crate) in_app_exclude: Option<Vec<String>>,
    /// Origins browsers may post product events from (`https://app.example.com`, or `*`).
    pub(crate) allowed_origins: Option<Vec<String>>,
    /// Endpoint health thresholds (absent fields take their defaults).
    pub(crate) health_thresholds: Option<crate::store::health::HealthThresholds>,
}

/// Reads and validates a settings patch.
fn parse_settings_patch(body: &[u8]) -> Result<ProjectSettingsPatch, ApiError> {
    let patch: ProjectSettingsPatch = serde_json::from_slice(body).map_err(|error| {
        ApiError::invalid(format!(
            "body: {error}; send any of {{\"retention_days\": 30, \"trace_sample_rate\": 1.0, \"in_app_include\": [\"myapp.\"], \"in_app_exclude\": []}}"
        ))
    })?;
    patch.validate()?;
    Ok(patch)
}

impl ProjectSettingsPatch {
    /// Checks every field present (the dashboard's settings form uses this too): 400 naming
    /// the field and its allowed range.
    pub(crate) fn validate(&self) -> Result<(), ApiError> {
        let patch = self;
        if let Some(days) = patch.retention_days
            && !RETENTION_DAYS_RANGE.contains(&days)
        {
            return Err(ApiError::invalid(format!("retention_days={days}: use 1 to 3650")));
        }
        if let Some(rate) = patch.trace_sample_rate
            && !(0.0..=1.0).contains(&rate)
        {
            return Err(ApiError::invalid(format!("trace_sample_rate={rate}: use 0.0 (keep none) to 1.0 (keep all)")));
        }
        if let Some(origins) = &patch.allowed_origins
            && (origins.len() > 100
                || origins
                    .iter()
                    .any(|origin| origin != "*" && !(origin.starts_with("http://") || origin.starts_with("https://"))))
        {
            return Err(ApiError::invalid(
                "allowed_origins: at most 100, each \"*\" or an origin like https://app.example.com",
            ));
        }
        if let Some(thresholds) = &patch.health_thresholds {
            thresholds.validate().map_err(ApiError::invalid)?;
        }
        for prefixes in [&patch.in_app_include, &patch.in_app_exclude].into_iter().flatten() {
            if prefixes.len() > 100 || prefixes.iter().any(|prefix| prefix.is_empty() || prefix.len() > 200) {
                return Err(ApiError::invalid("in-app prefixes: at most 100, each 1 to 200 characters"));
            }
        }
        Ok(())
    }
}

async fn update_project(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Project>, ApiError> {
    let project = authorize(&state, &headers, path_params(path)?, Access::Admin).await?;
    let patch = parse_settings_patch(&body)?;
    Ok(Json(apply_settings_patch(&state, project, patch).await?))
}

/// Stores a validated patch over `project`'s settings and returns the project as updated (the
/// dashboard's settings form uses this too); the ingest caches see the change at once.
pub(crate) async fn apply_settings_patch(
    state: &AppState,
    project: Project,
    patch: ProjectSettingsPatch,
) -> Result<Project, ApiError> {
    if patch == ProjectSettingsPatch::default() {
        return Ok(project);
    }
    let retention_days = patch.retention_days.unwrap_or(project.retention_days);
    let trace_sample_rate = patch.trace_sample_rate.unwrap_or(project.trace_sample_rate);
    let in_app_include = patch.in_app_include.clone().unwrap_or(project.in_app_include.clone());
    let in_app_exclude = patch.in_app_exclude.clone().unwrap_or(project.in_app_exclude.clone());
    let allowed_origins = patch.allowed_origins.clone().unwrap_or(project.allowed_origins.clone());
    let health_thresholds = patch.health_thresholds.unwrap_or(project.health_thresholds);
    let store = state.store.clone();
    let updated = blocking(move || {
        store.update_project_settings(project.id, retention_days, trace_sample_rate)?;
        store.update_in_app_rules(project.id, &in_app_include, &in_app_exclude)?;
        store.update_allowed_origins(project.id, &allowed_origins)?;
        Ok(store.update_health_thresholds(project.id, &health_thresholds)?)
    })
    .await?;
    tracing::info!(
        project = %updated.slug,
        retention_days = updated.retention_days,
        trace_sample_rate = updated.trace_sample_rate,
        "Project settings changed"
    );
    state.ingestor.forget_keys_of(updated.id);
    Ok(updated)
}

/// The services of a project.
#[derive(Debug, Serialize)]
struct ServiceList {
    /// Per-service counters, by name.
    services: Vec<ServiceStats>,
}

async fn list_services(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<ServiceList>, ApiError> {
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let store = state.store.clone();
    let services = blocking(move || Ok(store.list_services(project.id)?)).await?;
    Ok(Json(ServiceList { services }))
}

/// The outcome counters of a project.
#[derive(Debug, Serialize)]
struct OutcomeList {
    /// Counters by signal and outcome.
    outcomes: Vec<OutcomeCount>,
}

async fn list_outcomes(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
) -> Result<Json<OutcomeList>, ApiError> {
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let store = state.store.clone();
    let outcomes = blocking(move || Ok(store.outcomes(project.id)?)).await?;
    Ok(Json(OutcomeList { outcomes }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_patch_is_validated() {
        assert_eq!(
            parse_settings_patch(br#"{"retention_days": 7}"#).ok(),
            Some(ProjectSettingsPatch { retention_days: Some(7), ..ProjectSettingsPatch::default() })
        );
        assert_eq!(
            parse_settings_patch(br#"{"trace_sample_rate": 0}"#).ok().and_then(|patch| patch.trace_sample_rate),
            Some(0.0)
        );
        for bad in [
            &br#"{"retention_days": 0}"#[..],
            br#"{"retention_days": 3651}"#,
            br#"{"retention_days": -1}"#,
            br#"{"trace_sample_rate": 1.5}"#,
            br#"{"trace_sample_rate": "all"}"#,
            br#"{"retention": 7}"#,
            b"",
            b"[]",
        ] {
            assert!(parse_settings_patch(bad).is_err(), "{} must be refused", String::from_utf8_lossy(bad));
        }
    }
}
