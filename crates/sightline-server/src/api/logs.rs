//! Log search: `GET /api/v1/projects/{project}/logs?from=&to=&severity_min=&trace_id=&service=&q=&limit=&cursor=`
//! → `{logs: [...], next_cursor}`, newest first. Each log is the OTLP record's fields plus
//! `service_name`, `resource` and `scope`.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;
use sightline_model::{LogRecord, Resource, Scope, TraceId};

use super::params::{QueryParams, parse_limit, path_params, query_params, reject_unknown_params};
use super::{ApiError, authorize_read, blocking, parse_time};
use crate::server::AppState;
use crate::store::{LogQuery, StoredLog};

/// Log records per page unless `limit` says otherwise.
const DEFAULT_LOG_LIMIT: usize = 100;
/// Largest `limit` a log search accepts.
const MAX_LOG_LIMIT: usize = 1000;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/logs", get(search_logs))
}

/// Reads a minimum severity: an OTLP `SeverityNumber` 1..=24, or a severity name of the OTLP
/// logs data model (`trace`, `debug`, `info`, `warn`, `error`, `fatal`, any case, `warning`
/// too), optionally with its level digit 1..=4 (`info` = `info1` = 9, `warn2` = 14).
pub(crate) fn parse_severity(text: &str) -> Option<i32> {
    if let Ok(number) = text.parse::<i32>() {
        return (1..=24).contains(&number).then_some(number);
    }
    let lowercase = text.to_ascii_lowercase();
    let (name, level) = match lowercase.as_bytes().last() {
        Some(&digit) if (b'1'..=b'4').contains(&digit) => (&lowercase[..lowercase.len() - 1], i32::from(digit - b'1')),
        _ => (lowercase.as_str(), 0),
    };
    let base = match name {
        "trace" => 1,
        "debug" => 5,
        "info" => 9,
        "warn" | "warning" => 13,
        "error" => 17,
        "fatal" => 21,
        _ => return None,
    };
    Some(base + level)
}

/// Reads a log search's query string (400 for unknown parameters, bad severities, trace ids,
/// times or limits); shared by the search, the live tail and the dashboard.
pub(crate) fn parse_log_query(params: &QueryParams) -> Result<LogQuery, ApiError> {
    const KNOWN: [&str; 8] = ["from", "to", "severity_min", "trace_id", "service", "q", "limit", "cursor"];
    reject_unknown_params(params, &KNOWN, None)?;
    let non_empty = |name: &str| params.get(name).filter(|value| !value.is_empty()).cloned();
    let severity_min = match non_empty("severity_min") {
        None => None,
        Some(text) => Some(parse_severity(&text).ok_or_else(|| {
            ApiError::invalid(format!("severity_min={text:?}: use 1..=24 or trace, debug, info, warn, error, fatal"))
        })?),
    };
    let trace_id = match non_empty("trace_id") {
        None => None,
        Some(hex) => Some(
            TraceId::from_hex(&hex)
                .map_err(|error| ApiError::invalid(format!("trace_id={hex:?}: {error}; use 32 hex characters")))?,
        ),
    };
    Ok(LogQuery {
        from_unix_nano: parse_time("from", params.get("from"))?,
        to_unix_nano: parse_time("to", params.get("to"))?,
        severity_min,
        trace_id,
        service: non_empty("service"),
        text: non_empty("q"),
        limit: parse_limit(params, DEFAULT_LOG_LIMIT, MAX_LOG_LIMIT)?,
        cursor: non_empty("cursor"),
    })
}

/// One log record as the API shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub(crate) struct LogView {
    /// The OTLP record's fields (ids as hex or `null`, body and attributes typed JSON).
    #[serde(flatten)]
    pub record: LogRecord,
    /// The resource's `service.name`.
    pub service_name: String,
    /// The resource.
    pub resource: Resource,
    /// The instrumentation scope.
    pub scope: Scope,
}

impl From<StoredLog> for LogView {
    fn from(stored: StoredLog) -> Self {
        Self {
            service_name: stored.resource.service_name().to_owned(),
            record: stored.record,
            resource: stored.resource,
            scope: stored.scope,
        }
    }
}

/// A page of log records.
#[derive(Debug, Serialize)]
struct LogPage {
    /// Records, newest first.
    logs: Vec<LogView>,
    /// Cursor for the next page; `null` on the last.
    next_cursor: Option<String>,
}

async fn search_logs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Json<LogPage>, ApiError> {
    let project = path_params(path)?;
    let project = authorize_read(&state, &headers, project).await?;
    let params = query_params(query)?;
    let log_query = parse_log_query(&params)?;
    let store = state.store.clone();
    let page = blocking(move || Ok(store.search_logs(project.id, &log_query)?)).await?;
    Ok(Json(LogPage { logs: page.items.into_iter().map(LogView::from).collect(), next_cursor: page.next_cursor }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn severity_accepts_numbers_and_names() {
        assert_eq!(parse_severity("1"), Some(1));
        assert_eq!(parse_severity("24"), Some(24));
        assert_eq!(parse_severity("0"), None);
        assert_eq!(parse_severity("25"), None);
        assert_eq!(parse_severity("trace"), Some(1));
        assert_eq!(parse_severity("debug"), Some(5));
        assert_eq!(parse_severity("INFO"), Some(9));
        assert_eq!(parse_severity("Warn"), Some(13));
        assert_eq!(parse_severity("warning"), Some(13));
        assert_eq!(parse_severity("error"), Some(17));
        assert_eq!(parse_severity("fatal"), Some(21));
        assert_eq!(parse_severity("info1"), Some(9));
        assert_eq!(parse_severity("warn2"), Some(14));
        assert_eq!(parse_severity("fatal4"), Some(24));
        assert_eq!(parse_severity("fatal5"), None);
        assert_eq!(parse_severity("verbose"), None);
        assert_eq!(parse_severity(""), None);
    }

    #[test]
    fn query_parameters_map_to_the_store_query() {
        let params: QueryParams = [
            ("severity_min", "warn"),
            ("trace_id", "5B8EFFF798038103D269B633813FC60C"),
            ("q", "timeout"),
            ("limit", "5"),
        ]
        .iter()
        .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
        .collect();
        let query = parse_log_query(&params).expect("valid query");
        assert_eq!(query.severity_min, Some(13));
        assert_eq!(
            query.trace_id.map(|trace_id| trace_id.to_hex()).as_deref(),
            Some("5b8efff798038103d269b633813fc60c")
        );
        assert_eq!(query.text.as_deref(), Some("timeout"));
        assert_eq!(query.limit, 5);

        let bad_trace: QueryParams = [("trace_id".to_owned(), "xyz".to_owned())].into();
        assert!(parse_log_query(&bad_trace).is_err());
        let bad_severity: QueryParams = [("severity_min".to_owned(), "loud".to_owned())].into();
        assert!(parse_log_query(&bad_severity).is_err());
    }
}
