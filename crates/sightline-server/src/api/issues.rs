//! Error tracking API: issues (Sentry's error groups) and their events.
//!
//! - `GET  /api/v1/projects/{project}/issues?status=&service=&environment=&release=&level=&user=&from=&to=&q=&sort=last_seen|count|users&limit=&cursor=`
//! - `GET  /api/v1/projects/{project}/issues/{id}?hours=24` — latest event with frames and
//!   context, occurrences per hour, top tag values, history, links to trace and session
//! - `GET  /api/v1/projects/{project}/issues/{id}/events?limit=&cursor=`
//! - `PATCH /api/v1/projects/{project}/issues/{id}` and `PATCH .../issues` (bulk, `"ids": [...]`)
//!   with `{"status": "resolved" | "resolved_in_release" | "ignored" | "unresolved",
//!   "release"?, "ignore_for_events"?, "ignore_until"?}` — needs a key with scope `all`
//! - `GET  /api/v1/projects/{project}/errors/stats?timeRange=24h&service=`

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::{Access, ApiError, authorize, authorize_read, blocking, parse_time};
use crate::auth::key_from_headers;
use crate::server::AppState;
use crate::store::errors::{IssueQuery, IssueSort, IssueStatus, Level, StatusChange};

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/projects/{project}/issues", get(list_issues).patch(bulk_update))
        .route("/api/v1/projects/{project}/issues/{issue_id}", get(get_issue).patch(update_issue))
        .route("/api/v1/projects/{project}/issues/{issue_id}/events", get(issue_events))
        .route("/api/v1/projects/{project}/errors/stats", get(error_stats))
}

use crate::clock::now_unix_nano;

pub(crate) fn parse_issue_query(params: &QueryParams) -> Result<IssueQuery, ApiError> {
    const KNOWN: [&str; 13] = [
        "status",
        "service",
        "environment",
        "release",
        "level",
        "user",
        "from",
        "to",
        "q",
        "sort",
        "limit",
        "cursor",
        "browser",
    ];
    reject_unknown_params(params, &KNOWN, Some("tag."))?;
    let non_empty = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    let status = match non_empty("status") {
        None => None,
        Some(text) => Some(IssueStatus::parse(&text).ok_or_else(|| {
            ApiError::invalid(format!("status={text:?}: use unresolved, resolved, resolved_in_release or ignored"))
        })?),
    };
    let level = match non_empty("level") {
        None => None,
        Some(text) => Some(
            Level::parse(&text)
                .ok_or_else(|| ApiError::invalid(format!("level={text:?}: use warning, error or fatal")))?,
        ),
    };
    let sort = match non_empty("sort").as_deref() {
        None | Some("last_seen") => IssueSort::LastSeen,
        Some("count") => IssueSort::Count,
        Some("users") => IssueSort::Users,
        Some(other) => return Err(ApiError::invalid(format!("sort={other:?}: use last_seen, count or users"))),
    };
    let mut tags = Vec::new();
    for key in ["service", "environment", "release", "browser"] {
        if let Some(value) = non_empty(key) {
            tags.push((key.to_owned(), value));
        }
    }
    for (name, value) in params {
        if let Some(key) = name.strip_prefix("tag.") {
            tags.push((key.to_owned(), value.clone()));
        }
    }
    tags.sort();
    Ok(IssueQuery {
        status,
        tags,
        level,
        user: non_empty("user"),
        from_unix_nano: parse_time("from", params.get("from"))?,
        to_unix_nano: parse_time("to", params.get("to"))?,
        text: non_empty("q"),
        sort,
        limit: parse_limit(params, 25, 1000)?,
        cursor: non_empty("cursor"),
    })
}

async fn list_issues(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let issue_query = parse_issue_query(&params)?;
    let store = state.store.clone();
    let page = blocking(move || Ok(store.list_issues(project.id, &issue_query)?)).await?;
    Ok(Json(json!({"issues": page.items, "next_cursor": page.next_cursor})))
}

async fn get_issue(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    reject_unknown_params(&params, &["hours"], None)?;
    let (project, issue_id) = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let hours = super::parse_param::<u32>("hours", params.get("hours"))?.unwrap_or(24);
    if !(1..=24 * 90).contains(&hours) {
        return Err(ApiError::invalid("hours must be between 1 and 2160"));
    }
    let store = state.store.clone();
    let project_id = project.id;
    let detail = blocking(move || Ok(store.get_issue(project_id, issue_id, hours)?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("issue {issue_id} not found")))?;
    let links = detail.latest_event.as_ref().map(|latest| {
        let context = &latest.event.context;
        json!({
            "trace": context.trace_id.map(|trace_id| format!("/api/v1/projects/{}/traces/{}", project.slug, trace_id)),
            "trace_id": context.trace_id,
            "span_id": context.span_id,
            "session_id": context.session_id,
        })
    });
    let mut body = serde_json::to_value(&detail).map_err(|error| ApiError::invalid(error.to_string()))?;
    body["links"] = links.unwrap_or(Value::Null);
    Ok(Json(body))
}

async fn issue_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    reject_unknown_params(&params, &["limit", "cursor"], None)?;
    let (project, issue_id) = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let limit = parse_limit(&params, 50, 1000)?;
    let cursor = params.get("cursor").filter(|cursor| !cursor.is_empty()).cloned();
    let store = state.store.clone();
    let page = blocking(move || Ok(store.issue_events(project.id, issue_id, limit, cursor.as_deref())?))
        .await?
        .ok_or_else(|| ApiError::not_found(format!("issue {issue_id} not found")))?;
    Ok(Json(json!({"events": page.items, "next_cursor": page.next_cursor})))
}

/// The body of a status change.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatusBody {
    /// Issue ids (bulk form only).
    #[serde(default)]
    ids: Option<Vec<i64>>,
    status: String,
    #[serde(default)]
    release: Option<String>,
    #[serde(default)]
    ignore_for_events: Option<u64>,
    #[serde(default)]
    ignore_until: Option<String>,
}

fn parse_status_body(body: &Bytes, actor: String) -> Result<(Option<Vec<i64>>, StatusChange), ApiError> {
    let parsed: StatusBody =
        serde_json::from_slice(body).map_err(|error| ApiError::invalid(format!("invalid JSON body: {error}")))?;
    let status = IssueStatus::parse(&parsed.status).ok_or_else(|| {
        ApiError::invalid(format!(
            "status={:?}: use unresolved, resolved, resolved_in_release or ignored",
            parsed.status
        ))
    })?;
    if status != IssueStatus::Ignored && (parsed.ignore_for_events.is_some() || parsed.ignore_until.is_some()) {
        return Err(ApiError::invalid("ignore_for_events and ignore_until go with status \"ignored\""));
    }
    if status != IssueStatus::ResolvedInRelease && parsed.release.is_some() {
        return Err(ApiError::invalid("release goes with status \"resolved_in_release\""));
    }
    if parsed.ignore_for_events == Some(0) {
        return Err(ApiError::invalid("ignore_for_events must be at least 1"));
    }
    let ignore_until_unix_nano = parse_time("ignore_until", parsed.ignore_until.as_ref())?;
    let change = StatusChange {
        status,
        release: parsed.release,
        ignore_for_events: parsed.ignore_for_events,
        ignore_until_unix_nano,
        actor,
    };
    Ok((parsed.ids, change))
}

fn actor(headers: &HeaderMap) -> String {
    key_from_headers(headers).map(|key| key.prefix()).unwrap_or_else(|| "unknown".into())
}

async fn apply_change(
    state: &AppState,
    project_id: i64,
    ids: Vec<i64>,
    change: StatusChange,
) -> Result<Value, ApiError> {
    let store = state.store.clone();
    let issues = blocking(move || Ok(store.change_issue_status(project_id, &ids, &change)?)).await?;
    Ok(json!({"issues": issues}))
}

async fn update_issue(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<(String, i64)>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let (project, issue_id) = path_params(path)?;
    let project = authorize(&state, &headers, project, Access::Admin).await?;
    let (ids, change) = parse_status_body(&body, actor(&headers))?;
    if ids.is_some() {
        return Err(ApiError::invalid("\"ids\" belongs to the bulk form PATCH .../issues"));
    }
    let mut answer = apply_change(&state, project.id, vec![issue_id], change).await?;
    Ok(Json(answer["issues"].get_mut(0).map(Value::take).unwrap_or(Value::Null)))
}

async fn bulk_update(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let project = authorize(&state, &headers, path_params(path)?, Access::Admin).await?;
    let (ids, change) = parse_status_body(&body, actor(&headers))?;
    let ids =
        ids.filter(|ids| !ids.is_empty()).ok_or_else(|| ApiError::invalid("the bulk form needs \"ids\": [..]"))?;
    if ids.len() > 1000 {
        return Err(ApiError::invalid("at most 1000 ids per request"));
    }
    Ok(Json(apply_change(&state, project.id, ids, change).await?))
}

/// `24h`, `7d`, `90m`, `3600s` → ns.
pub(super) fn parse_time_range(text: &str) -> Option<u64> {
    let (number, unit) = text.split_at(text.find(|character: char| !character.is_ascii_digit())?);
    let number: u64 = number.parse().ok()?;
    let seconds = match unit {
        "s" => number,
        "m" => number * 60,
        "h" => number * 3600,
        "d" => number * 86_400,
        _ => return None,
    };
    (seconds > 0 && seconds <= 90 * 86_400).then_some(seconds * 1_000_000_000)
}

async fn error_stats(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<Value>, ApiError> {
    let params = query_params(query)?;
    reject_unknown_params(&params, &["timeRange", "service"], None)?;
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let range = super::params::time_range_param(&params, "24h")?;
    let service = params.get("service").filter(|service| !service.is_empty()).cloned();
    let to = now_unix_nano();
    let from = to.saturating_sub(range);
    let store = state.store.clone();
    let stats = blocking(move || Ok(store.error_stats(project.id, from, to, service.as_deref())?)).await?;
    Ok(Json(json!({"from_unix_nano": from, "to_unix_nano": to, "stats": stats})))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn time_ranges_parse_with_units() {
        assert_eq!(parse_time_range("24h"), Some(24 * 3_600_000_000_000));
        assert_eq!(parse_time_range("7d"), Some(7 * 86_400_000_000_000));
        assert_eq!(parse_time_range("91d"), None);
        assert_eq!(parse_time_range("h"), None);
        assert_eq!(parse_time_range("10"), None);
    }

    #[test]
    fn status_bodies_are_validated() {
        let ok = Bytes::from_static(br#"{"status": "ignored", "ignore_for_events": 100}"#);
        let (ids, change) = parse_status_body(&ok, "me".into()).unwrap();
        assert_eq!((ids, change.status, change.ignore_for_events), (None, IssueStatus::Ignored, Some(100)));
        for bad in [
            r#"{"status": "closed"}"#,
            r#"{"status": "resolved", "ignore_for_events": 3}"#,
            r#"{"status": "resolved", "release": "1.0"}"#,
            r#"{"status": "ignored", "ignore_for_events": 0}"#,
            r#"{"status": "resolved", "extra": 1}"#,
        ] {
            assert!(parse_status_body(&Bytes::from(bad), "me".into()).is_err(), "{bad}");
        }
    }
}
