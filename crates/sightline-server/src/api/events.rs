//! Product event list: `GET /api/v1/projects/{project}/events?name=&type=&user=&session=&from=&to=&q=&limit=&cursor=`
//! → `{events: [...], next_cursor}`, newest first. Each event has the ProductGraph identity
//! fields, `timestamp_unix_nano`, `properties` (dotted schema fields) and `metadata`.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};
use sightline_model::EventType;

use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking, parse_time};
use crate::server::AppState;
use crate::store::EventQuery;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/events", get(list_events))
}

fn parse_event_query(params: &QueryParams) -> Result<EventQuery, ApiError> {
    const KNOWN: [&str; 9] = ["name", "type", "user", "session", "from", "to", "q", "limit", "cursor"];
    reject_unknown_params(params, &KNOWN, None)?;
    let non_empty = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    let event_type = match non_empty("type") {
        None => None,
        Some(text) => Some(
            EventType::parse(&text).ok_or_else(|| ApiError::invalid(format!("type={text:?} is not an event type")))?,
        ),
    };
    Ok(EventQuery {
        name: non_empty("name"),
        event_type,
        user: non_empty("user"),
        session: non_empty("session"),
        from_unix_nano: parse_time("from", params.get("from"))?,
        to_unix_nano: parse_time("to", params.get("to"))?,
        text: non_empty("q"),
        limit: parse_limit(params, 100, 1000)?,
        cursor: non_empty("cursor"),
    })
}

async fn list_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let event_query = parse_event_query(&params)?;
    let store = state.store.clone();
    let page = blocking(move || Ok(store.search_events(project.id, &event_query)?)).await?;
    let events: Vec<Value> = page
        .items
        .into_iter()
        .map(|event| {
            json!({
                "event_id": event.event_id,
                "product_id": event.product_id,
                "session.id": event.session_id,
                "user.id": event.user_id,
                "org.id": event.org_id,
                "event.type": event.event_type.as_str(),
                "event.name": event.event_name,
                "timestamp_unix_nano": event.timestamp_unix_nano,
                "event.sequence": event.sequence,
                "properties": event.properties,
                "metadata": event.metadata,
            })
        })
        .collect();
    Ok(Json(json!({"events": events, "next_cursor": page.next_cursor})))
}
