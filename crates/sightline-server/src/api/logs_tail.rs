//! Live log tail over Server-Sent Events: `GET /api/v1/projects/{project}/logs/tail` (read key)
//! streams the project's log records as they are committed, filtered with the log search's
//! parameters (`q`, `severity_min`, `service`, `trace_id`, `from`, `to`; `limit` and `cursor`
//! are accepted and ignored). The dashboard's `GET /p/{project}/logs/tail` streams the same.
//!
//! Events (HTML Living Standard, "Server-sent events"):
//! - `event: log`, `data:` one log as the search returns it (`api/logs.rs`, `LogView`);
//! - `event: lagged`, `data: {"missed": n}`: the reader fell behind and `n` records of the
//!   project were dropped for it (the tail never blocks ingest nor buffers without bound);
//! - a comment line every [`KEEP_ALIVE`] so proxies keep the connection and a gone client is
//!   noticed.
//!
//! Errors: 401 / 403 / 404 as every read endpoint, 400 for bad filters, 503 with `Retry-After`
//! when [`crate::Config::max_tail_connections`] streams are open already.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::mpsc;
use tokio_stream::StreamExt as _;
use tokio_stream::wrappers::ReceiverStream;

use super::logs::{LogView, parse_log_query};
use super::params::{QueryParams, path_params, query_params};
use super::{ApiError, authorize_read};
use crate::live_tail::{TailError, TailSubscription};
use crate::server::AppState;
use crate::store::{LogQuery, StoredLog};

/// Interval of the keep-alive comments.
pub const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Seconds a refused tail is told to wait (`Retry-After`).
pub const TAIL_RETRY_AFTER_SECONDS: u64 = 5;
/// Events one connection holds for a slow client before its records count as lagged.
const EVENTS_PER_CONNECTION: usize = 16;

/// Routes of this module.
pub(super) fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/api/v1/projects/{project}/logs/tail", get(tail_logs))
}

async fn tail_logs(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    path: Result<Path<String>, PathRejection>,
    query: Result<Query<QueryParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let project = authorize_read(&state, &headers, path_params(path)?).await?;
    let filter = parse_log_query(&query_params(query)?)?;
    match state.log_tail.subscribe(project.id) {
        Ok(subscription) => Ok(tail_response(subscription, filter)),
        Err(refused) => Ok(refused_response(refused)),
    }
}

/// The 503 of a refused subscription, with `Retry-After`, as the API's JSON error.
pub(crate) fn refused_response(refused: TailError) -> Response {
    let error = ApiError { status: StatusCode::SERVICE_UNAVAILABLE, code: "unavailable", message: refused.to_string() };
    let mut response = error.into_response();
    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(TAIL_RETRY_AFTER_SECONDS));
    response
}

/// Whether a committed record passes a log search's filters, as the store applies them
/// (`store/sqlite/read.rs::search_logs`): time on the record's effective time, severity at
/// least, exact service and trace, and a case-insensitive substring of the body (the text of
/// a string body, the JSON of any other).
pub(crate) fn log_matches(filter: &LogQuery, log: &StoredLog) -> bool {
    let time = log.record.effective_time_unix_nano();
    if filter.from_unix_nano.is_some_and(|from| time < from) || filter.to_unix_nano.is_some_and(|to| time > to) {
        return false;
    }
    if filter.severity_min.is_some_and(|minimum| log.record.severity_number < minimum) {
        return false;
    }
    if filter.trace_id.is_some() && log.record.trace_id != filter.trace_id {
        return false;
    }
    if filter.service.as_deref().is_some_and(|service| log.resource.service_name() != service) {
        return false;
    }
    if let Some(text) = &filter.text {
        let body = match &log.record.body {
            serde_json::Value::String(body) => body.to_lowercase(),
            other => other.to_string().to_lowercase(),
        };
        if !body.contains(&text.to_lowercase()) {
            return false;
        }
    }
    true
}

/// The event stream of a subscription: a task moves matching records from the project's
/// broadcast channel into a small per-connection queue that the response reads. It ends when
/// the client goes (the queue closes), or the tail closes at shutdown.
pub(crate) fn tail_response(subscription: TailSubscription, filter: LogQuery) -> Response {
    let (sender, receiver) = mpsc::channel::<Event>(EVENTS_PER_CONNECTION);
    tokio::spawn(forward_matching(subscription, filter, sender));
    let stream = ReceiverStream::new(receiver).map(Ok::<Event, Infallible>);
    let mut response = Sse::new(stream).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response();
    // Proxies such as nginx buffer responses unless told not to, which would hold events back.
    response.headers_mut().insert("x-accel-buffering", HeaderValue::from_static("no"));
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

async fn forward_matching(mut subscription: TailSubscription, filter: LogQuery, sender: mpsc::Sender<Event>) {
    loop {
        let received = tokio::select! {
            () = sender.closed() => return,
            received = subscription.receiver.recv() => received,
        };
        let event = match received {
            Ok(log) if log_matches(&filter, &log) => log_event(&log),
            Ok(_) => continue,
            Err(RecvError::Lagged(missed)) => {
                Event::default().event("lagged").data(serde_json::json!({ "missed": missed }).to_string())
            }
            Err(RecvError::Closed) => return,
        };
        // Waiting here while the client is slow lets the broadcast ring run ahead: the records
        // it drops meanwhile are reported as `lagged` next.
        if sender.send(event).await.is_err() {
            return;
        }
    }
}

fn log_event(log: &StoredLog) -> Event {
    let view = LogView::from(log.clone());
    match serde_json::to_string(&view) {
        Ok(json) => Event::default().event("log").data(json),
        // A log view is string-keyed JSON and always serializes; were it not to, say so.
        Err(error) => {
            Event::default().event("error").data(serde_json::json!({ "message": error.to_string() }).to_string())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sightline_model::{LogRecord, Resource, Scope, TraceId};

    fn log(severity_number: i32, body: serde_json::Value, service: &str) -> StoredLog {
        let mut resource = Resource::default();
        resource.attributes.0.insert("service.name".into(), serde_json::json!(service));
        StoredLog {
            record: LogRecord { severity_number, body, time_unix_nano: 1_000, ..crate::live_tail::blank_log_record() },
            resource,
            scope: Scope::default(),
        }
    }

    #[test]
    fn filters_match_like_the_search() {
        let record = log(17, serde_json::json!("Payment TIMEOUT after 3 tries"), "checkout");
        let everything = LogQuery::default();
        assert!(log_matches(&everything, &record));
        assert!(log_matches(&LogQuery { text: Some("timeout".into()), ..LogQuery::default() }, &record));
        assert!(!log_matches(&LogQuery { text: Some("refused".into()), ..LogQuery::default() }, &record));
        assert!(log_matches(&LogQuery { severity_min: Some(17), ..LogQuery::default() }, &record));
        assert!(!log_matches(&LogQuery { severity_min: Some(18), ..LogQuery::default() }, &record));
        assert!(log_matches(&LogQuery { service: Some("checkout".into()), ..LogQuery::default() }, &record));
        assert!(!log_matches(&LogQuery { service: Some("cart".into()), ..LogQuery::default() }, &record));
        assert!(!log_matches(&LogQuery { trace_id: Some(TraceId([1; 16])), ..LogQuery::default() }, &record));
        assert!(!log_matches(&LogQuery { from_unix_nano: Some(1_001), ..LogQuery::default() }, &record));
        assert!(!log_matches(&LogQuery { to_unix_nano: Some(999), ..LogQuery::default() }, &record));
        let structured = log(9, serde_json::json!({"event": "Cart Emptied"}), "cart");
        assert!(log_matches(&LogQuery { text: Some("cart emptied".into()), ..LogQuery::default() }, &structured));
    }
}
