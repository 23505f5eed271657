//! Sessions: summaries maintained at ingest and one merged timeline per session.
//!
//! - `GET /api/v1/projects/{project}/sessions?user=&from=&to=&has_errors=&limit=&cursor=` →
//!   `{sessions: [...], next_cursor, correlation}`, newest session start first; `from`/`to`
//!   bound the session start and the correlation counters' days.
//! - `GET /api/v1/projects/{project}/sessions/correlation?from=&to=` →
//!   `{server_spans, with_session, rate}`: the share of SERVER spans carrying a session id.
//! - `GET /api/v1/projects/{project}/sessions/{session_id}?limit=&cursor=` → the summary plus
//!   `timeline` (frontend events, backend requests, logs and errors in time order, at most
//!   `limit` ≤ 5,000 per page) and `next_cursor`. Requests and logs link to their trace, errors
//!   to their issue. (A session literally named `correlation` is shadowed by the route above.)

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking, parse_time};
use crate::server::AppState;
use crate::store::sessions::{MAX_TIMELINE_ENTRIES, SessionQuery, TimelineEntry, TimelineQuery};

/// Timeline entries per page when `limit` is not given.
const DEFAULT_TIMELINE_ENTRIES: usize = 1_000;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/sessions", get(list_sessions))
        .route("/api/v1/projects/{project}/sessions/correlation", get(correlation))
        .route("/api/v1/projects/{project}/sessions/{session_id}", get(get_session))
}

fn parse_has_errors(params: &QueryParams) -> Result<Option<bool>, ApiError> {
    match params.get("has_errors").map(String::as_str) {
        None | Some("") => Ok(None),
        Some("true" | "1") => Ok(Some(true)),
        Some("false" | "0") => Ok(Some(false)),
        Some(other) => Err(ApiError::invalid(format!("has_errors={other:?}: use true or false"))),
    }
}

/// The session list's filters (`user, from, to, has_errors, limit ≤ 1000 (50), cursor`), as
/// the list endpoint and the dashboard's session list read them; 400 for an unknown parameter
/// or a bad value.
pub(crate) fn parse_session_query(params: &QueryParams) -> Result<SessionQuery, ApiError> {
    reject_unknown_params(params, &["user", "from", "to", "has_errors", "limit", "cursor"], None)?;
    let non_empty = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    Ok(SessionQuery {
        user: non_empty("user"),
        from_unix_nano: parse_time("from", params.get("from"))?,
        to_unix_nano: parse_time("to", params.get("to"))?,
        has_errors: parse_has_errors(params)?,
        limit: parse_limit(params, 50, 1000)?,
        cursor: non_empty("cursor"),
    })
}

/// One session's timeline paging (`limit ≤ 5000 (1000), cursor`), as the session endpoint and
/// the dashboard's session page read it; 400 for an unknown parameter or a bad limit.
pub(crate) fn parse_timeline_query(params: &QueryParams) -> Result<TimelineQuery, ApiError> {
    reject_unknown_params(params, &["limit", "cursor"], None)?;
    Ok(TimelineQuery {
        limit: parse_limit(params, DEFAULT_TIMELINE_ENTRIES, MAX_TIMELINE_ENTRIES)?,
        cursor: params.get("cursor").filter(|cursor| !cursor.is_empty()).cloned(),
    })
}

async fn list_sessions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    let session_query = parse_session_query(&params)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let store = state.store.clone();
    let (page, correlation) = blocking(move || {
        let page = store.list_sessions(project.id, &session_query)?;
        let correlation =
            store.session_correlation(project.id, session_query.from_unix_nano, session_query.to_unix_nano)?;
        Ok((page, correlation))
    })
    .await?;
    Ok(Json(json!({"sessions": page.items, "next_cursor": page.next_cursor, "correlation": correlation})))
}

async fn correlation(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    reject_unknown_params(&params, &["from", "to"], None)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let from = parse_time("from", params.get("from"))?;
    let to = parse_time("to", params.get("to"))?;
    let store = state.store.clone();
    let rate = blocking(move || Ok(store.session_correlation(project.id, from, to)?)).await?;
    Ok(Json(json!(rate)))
}

async fn get_session(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, String)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<axum::response::Response, ApiError> {
    let params = query_params(query)?;
    let timeline_query = parse_timeline_query(&params)?;
    let (project, session_id) = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let store = state.store.clone();
    let project_id = project.id;
    let slug = project.slug.clone();
    let body = blocking(move || {
        let detail = store
            .get_session(project_id, &session_id, &timeline_query)?
            .ok_or_else(|| ApiError::not_found(format!("session {session_id:?} not found")))?;
        // Serialized straight to bytes on the blocking thread: a full page is thousands of
        // entries, and building a `serde_json::Value` tree first took most of the query's time.
        let body = SessionBody {
            summary: &detail.summary,
            timeline: detail
                .timeline
                .iter()
                .map(|entry| LinkedEntry { link: entry_link(&slug, entry), entry })
                .collect(),
            next_cursor: detail.next_cursor.as_deref(),
            links: SessionLinks {
                events: format!(
                    "/api/v1/projects/{slug}/events?session={}",
                    percent_encode(&detail.summary.session_id)
                ),
            },
        };
        // Serializing these types cannot fail (string keys, no non-finite floats kept as numbers).
        serde_json::to_vec(&body).map_err(|error| ApiError::from(crate::store::StoreError::Database(error.to_string())))
    })
    .await?;
    Ok(([(axum::http::header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// `GET .../sessions/{session_id}`: the summary's fields, then the timeline page.
#[derive(serde::Serialize)]
struct SessionBody<'a> {
    #[serde(flatten)]
    summary: &'a crate::store::sessions::SessionSummary,
    timeline: Vec<LinkedEntry<'a>>,
    next_cursor: Option<&'a str>,
    links: SessionLinks,
}

#[derive(serde::Serialize)]
struct SessionLinks {
    events: String,
}

/// A timeline entry with its link: requests and logs to their trace, errors to their issue.
#[derive(serde::Serialize)]
struct LinkedEntry<'a> {
    #[serde(flatten)]
    entry: &'a TimelineEntry,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<String>,
}

fn entry_link(slug: &str, entry: &TimelineEntry) -> Option<String> {
    match entry {
        TimelineEntry::Request { trace_id, .. } | TimelineEntry::Log { trace_id: Some(trace_id), .. } => {
            Some(format!("/api/v1/projects/{slug}/traces/{trace_id}"))
        }
        TimelineEntry::Error { issue_id, .. } => Some(format!("/api/v1/projects/{slug}/issues/{issue_id}")),
        TimelineEntry::Log { trace_id: None, .. } | TimelineEntry::Event { .. } => None,
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (for a query value).
fn percent_encode(text: &str) -> String {
    let mut encoded = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            encoded.push(byte as char);
        } else {
            encoded.push_str(&format!("%{byte:02X}"));
        }
    }
    encoded
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn has_errors_accepts_booleans_only() {
        let params = |value: &str| QueryParams::from([("has_errors".to_owned(), value.to_owned())]);
        assert_eq!(parse_has_errors(&params("true")).ok(), Some(Some(true)));
        assert_eq!(parse_has_errors(&params("0")).ok(), Some(Some(false)));
        assert_eq!(parse_has_errors(&QueryParams::new()).ok(), Some(None));
        assert!(parse_has_errors(&params("yes")).is_err());
    }

    #[test]
    fn session_ids_are_encoded_for_links() {
        assert_eq!(percent_encode("sess-lx3k2a-8f3kd92a"), "sess-lx3k2a-8f3kd92a");
        assert_eq!(percent_encode("a b&c"), "a%20b%26c");
    }
}
