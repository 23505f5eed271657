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
struct JourneyList {
    /// Range start (ns since the epoch).
    from_unix_nano: u64,
    /// Range end (ns since the epoch).
    to_unix_nano: u64,
    /// Journeys, most sessions first.
    journeys: Vec<JourneySummary>,
    /// True when more than [`MAX_JOURNEYS`] journeys were seen.
    journeys_truncated: bool,
    /// True when the range held more journey events than were read.
    truncated: bool,
}

async fn list_journeys(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<JourneyList>, ApiError> {
    let params = query_params(query)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    reject_unknown_params(&params, &["from", "to"], None)?;
    let (from_unix_nano, to_unix_nano) = time_range(&params, now_unix_nano(), DEFAULT_RANGE_NANOS)?;
    let store = state.store.clone();
    let list = blocking(move || {
        let touch_query =
            JourneyTouchQuery { from_unix_nano, to_unix_nano, journey_id: None, max_touches: MAX_TOUCHES };
        let touches = store.journey_touches(project.id, &touch_query)?;
        let mut journeys = summarize_journeys(&touches.items);
        let journeys_truncated = journeys.len() > MAX_JOURNEYS;
        journeys.truncate(MAX_JOURNEYS);
        Ok(JourneyList { from_unix_nano, to_unix_nano, journeys, journeys_truncated, truncated: touches.truncated })
    })
    .await?;
    Ok(Json(list))
}

/// A journey's funnel over a range.
#[derive(Debug, Serialize)]
struct FunnelResponse {
    /// Range start (ns since the epoch).
    from_unix_nano: u64,
    /// Range end (ns since the epoch).
    to_unix_nano: u64,
    /// The funnel.
    #[serde(flatten)]
    funnel: Funnel,
    /// True when the range held more events of the journey than were read.
    truncated: bool,
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
    reject_unknown_params(&params, &["from", "to", "steps"], None)?;
    let (from_unix_nano, to_unix_nano) = time_range(&params, now_unix_nano(), DEFAULT_RANGE_NANOS)?;
    let steps = parse_steps(params.get("steps"))?;
    let store = state.store.clone();
    let response = blocking(move || {
        let touch_query = JourneyTouchQuery {
            from_unix_nano,
            to_unix_nano,
            journey_id: Some(journey_id.clone()),
            max_touches: MAX_TOUCHES,
        };
        let touches = store.journey_touches(project.id, &touch_query)?;
        let funnel = compute_funnel(&journey_id, &touches.items, steps.as_deref());
        if funnel.sessions == 0 {
            return Err(ApiError::not_found(format!(
                "journey {journey_id:?} has no events with a session between from and to; list journeys with GET .../journeys"
            )));
        }
        Ok(FunnelResponse { from_unix_nano, to_unix_nano, funnel, truncated: touches.truncated })
    })
    .await?;
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
