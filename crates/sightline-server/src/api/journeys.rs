//! Journeys and funnels from `journey.*` product events (frontend `/v1/events` and backend
//! OpenTelemetry log events alike); the rules are in `api/analytics/funnel.rs`.
//!
//! - `GET /api/v1/projects/{project}/journeys?from=&to=` → `{from_unix_nano, to_unix_nano,
//!   journeys: [{journey_id, sessions, users, first_seen_unix_nano, last_seen_unix_nano,
//!   steps: [{step_id, name, sessions, server_confirmed, median_position}],
//!   conversions: {converted, abandoned, server_confirmed, conversion_rate}}],
//!   journeys_truncated, truncated}`.
//! - `GET /api/v1/projects/{project}/journeys/{journey_id}/funnel?from=&to=&steps=a,b,c` →
//!   `{journey_id, from_unix_nano, to_unix_nano, step_order, sessions, completed_sessions,
//!   overall_conversion_rate, steps: [{position, step_id, name, entered, completed,
//!   server_confirmed, reached_any_order, conversion_rate, conversion_rate_from_start,
//!   median_ms_from_previous, median_position}], conversions, truncated}`; 404 when the journey
//!   has no events in the range.
//!
//! The range defaults to the 7 days before `to` (now): journeys span sessions, and a day holds
//! too few conversions to compare steps.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use super::analytics::funnel::{Funnel, JourneySummary, compute_funnel, summarize_journeys};
use super::analytics::{NANOS_PER_HOUR, now_unix_nano, time_range};
use super::params::{QueryParams, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking};
use crate::server::AppState;
use crate::store::Store;
use crate::store::analytics::JourneyTouchQuery;

/// Range read when `from` is absent: 7 days before `to`.
const DEFAULT_RANGE_NANOS: u64 = 7 * 24 * NANOS_PER_HOUR;
/// Journey events read per request at most (the oldest are kept); beyond, `truncated`.
const MAX_TOUCHES: usize = 200_000;
/// Journeys listed at most (those with the most sessions).
const MAX_JOURNEYS: usize = 200;
/// Steps `steps=` may name.
const MAX_STEPS: usize = 50;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/journeys", get(list_journeys))
        .route("/api/v1/projects/{project}/journeys/{journey_id}/funnel", get(journey_funnel))
}

/// The journeys seen in a range.
#[derive(Debug, Serialize)]
pub(crate) struct JourneyList {
    /// Range start (ns since the epoch).
    pub from_unix_nano: u64,
    /// Range end (ns since the epoch).
    pub to_unix_nano: u64,
    /// Journeys, most sessions first.
    pub journeys: Vec<JourneySummary>,
    /// True when more than [`MAX_JOURNEYS`] journeys were seen.
    pub journeys_truncated: bool,
    /// True when the range held more journey events than were read.
    pub truncated: bool,
}

/// `from` and `to` of the journeys list (`to` defaults to now, `from` to 7 days before it);
/// 400 for an unknown parameter or a bad time.
pub(crate) fn parse_list_params(params: &QueryParams) -> Result<(u64, u64), ApiError> {
    reject_unknown_params(params, &["from", "to"], None)?;
    time_range(params, now_unix_nano(), DEFAULT_RANGE_NANOS)
}

/// The journeys with events in `[from, to]` (ns): a bounded read of journey events, summarized.
/// Runs store reads: call it on the blocking pool.
pub(crate) fn read_journey_list(
    store: &dyn Store,
    project_id: i64,
    from_unix_nano: u64,
    to_unix_nano: u64,
) -> Result<JourneyList, ApiError> {
    let touch_query = JourneyTouchQuery { from_unix_nano, to_unix_nano, journey_id: None, max_touches: MAX_TOUCHES };
    let touches = store.journey_touches(project_id, &touch_query)?;
    let mut journeys = summarize_journeys(&touches.items);
    let journeys_truncated = journeys.len() > MAX_JOURNEYS;
    journeys.truncate(MAX_JOURNEYS);
    Ok(JourneyList { from_unix_nano, to_unix_nano, journeys, journeys_truncated, truncated: touches.truncated })
}

async fn list_journeys(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<JourneyList>, ApiError> {
    let params = query_params(query)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let (from_unix_nano, to_unix_nano) = parse_list_params(&params)?;
    let store = state.store.clone();
    let list = blocking(move || read_journey_list(store.as_ref(), project.id, from_unix_nano, to_unix_nano)).await?;
    Ok(Json(list))
}

/// A journey's funnel over a range.
#[derive(Debug, Serialize)]
pub(crate) struct FunnelResponse {
    /// Range start (ns since the epoch).
    pub from_unix_nano: u64,
    /// Range end (ns since the epoch).
    pub to_unix_nano: u64,
    /// The funnel.
    #[serde(flatten)]
    pub funnel: Funnel,
    /// True when the range held more events of the journey than were read.
    pub truncated: bool,
}

/// What a funnel request asks for: the range and the explicit step order, if any.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FunnelParams {
    /// Range start (ns since the epoch).
    pub from_unix_nano: u64,
    /// Range end (ns since the epoch).
    pub to_unix_nano: u64,
    /// `steps=a,b,c`, in funnel order; `None` for the observed order.
    pub steps: Option<Vec<String>>,
}

/// `from`, `to` and `steps` of a funnel request; 400 for an unknown parameter or a bad value.
pub(crate) fn parse_funnel_params(params: &QueryParams) -> Result<FunnelParams, ApiError> {
    reject_unknown_params(params, &["from", "to", "steps"], None)?;
    let (from_unix_nano, to_unix_nano) = time_range(params, now_unix_nano(), DEFAULT_RANGE_NANOS)?;
    Ok(FunnelParams { from_unix_nano, to_unix_nano, steps: parse_steps(params.get("steps"))? })
}

/// The funnel of `journey_id` over the request's range; 404 when the journey has no events
/// with a session there. Runs store reads: call it on the blocking pool.
pub(crate) fn read_funnel(
    store: &dyn Store,
    project_id: i64,
    journey_id: &str,
    request: &FunnelParams,
) -> Result<FunnelResponse, ApiError> {
    let touch_query = JourneyTouchQuery {
        from_unix_nano: request.from_unix_nano,
        to_unix_nano: request.to_unix_nano,
        journey_id: Some(journey_id.to_owned()),
        max_touches: MAX_TOUCHES,
    };
    let touches = store.journey_touches(project_id, &touch_query)?;
    let funnel = compute_funnel(journey_id, &touches.items, request.steps.as_deref());
    if funnel.sessions == 0 {
        return Err(ApiError::not_found(format!(
            "journey {journey_id:?} has no events with a session between from and to; list journeys with GET .../journeys"
        )));
    }
    Ok(FunnelResponse {
        from_unix_nano: request.from_unix_nano,
        to_unix_nano: request.to_unix_nano,
        funnel,
        truncated: touches.truncated,
    })
}

/// `steps=a,b,c`: step ids in funnel order, each once; `None` when absent or empty.
fn parse_steps(value: Option<&String>) -> Result<Option<Vec<String>>, ApiError> {
    let Some(text) = value.filter(|text| !text.trim().is_empty()) else {
        return Ok(None);
    };
    let mut steps: Vec<String> = Vec::new();
    for step in text.split(',').map(str::trim).filter(|step| !step.is_empty()) {
        if steps.iter().any(|known| known == step) {
            return Err(ApiError::invalid(format!("steps names {step:?} twice; list each step once, in funnel order")));
        }
        steps.push(step.to_owned());
    }
    if steps.len() > MAX_STEPS {
        return Err(ApiError::invalid(format!("steps names {} steps; use at most {MAX_STEPS}", steps.len())));
    }
    Ok((!steps.is_empty()).then_some(steps))
}

async fn journey_funnel(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<FunnelResponse>, ApiError> {
    let params = query_params(query)?;
    let (project, journey_id) = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let request = parse_funnel_params(&params)?;
    let store = state.store.clone();
    let response = blocking(move || read_funnel(store.as_ref(), project.id, &journey_id, &request)).await?;
    Ok(Json(response))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_are_read_in_order_once_each() {
        assert_eq!(parse_steps(None).ok(), Some(None));
        assert_eq!(parse_steps(Some(&" ".into())).ok(), Some(None));
        assert_eq!(
            parse_steps(Some(&"cart, shipping,,payment".into())).ok(),
            Some(Some(vec!["cart".to_owned(), "shipping".to_owned(), "payment".to_owned()]))
        );
        let twice = parse_steps(Some(&"cart,cart".into())).expect_err("duplicate");
        assert!(twice.message.contains("twice"), "{}", twice.message);
        let many = (0..=MAX_STEPS).map(|index| format!("s{index}")).collect::<Vec<_>>().join(",");
        assert!(parse_steps(Some(&many)).is_err());
    }
}
