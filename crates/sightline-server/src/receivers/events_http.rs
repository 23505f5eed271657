//! Product events receiver: `POST /v1/events`, compatible with ProductGraph clients
//! (plexusone/productgraph `internal/events/handler.go`).
//!
//! Body `{"events": [...]}` with at most 1,000 events; each event is validated on its own and
//! the answer is `202 {"accepted", "rejected", "errors": [{"index", "error"}]}` — valid events of
//! a batch are kept even when others are rejected. Keys come in `X-API-Key`,
//! `Authorization: Bearer`, `X-PG-API-Key`, or — for `navigator.sendBeacon`, which cannot set
//! headers — the `api_key` query parameter; beacon bodies arrive as `text/plain` JSON. Browsers
//! post cross-origin: preflights are answered for any origin, and the real request is refused
//! (403) when the project lists allowed origins and the request's `Origin` is not one of them.
//! A retried batch does not double-count: events are stored once per `event_id`.

use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;
use serde_json::json;
use sightline_model::event::ProductEvent;

use super::body::{ContentEncoding, decompress};
use crate::auth::{ApiKeySecret, key_from_headers};
use crate::error::IngestError;
use crate::pipeline;
use crate::server::AppState;
use crate::store::Project;

/// Most events in one batch (ProductGraph's `maxBatch`).
pub const MAX_EVENTS_PER_BATCH: usize = sightline_model::event::MAX_EVENTS_PER_BATCH;
/// Batches at least this large are parsed on a blocking thread.
const PARSE_INLINE_MAX_BYTES: usize = 16 * 1024;

/// The `/v1/events` routes (POST and the CORS preflight).
pub fn routes() -> Router<Arc<AppState>> {
    Router::new().route("/v1/events", post(ingest_events).options(preflight))
}

fn cors_headers(response: &mut Response, origin: Option<&HeaderValue>) {
    let headers = response.headers_mut();
    match origin {
        Some(origin) => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin.clone());
            headers.insert(header::VARY, HeaderValue::from_static("Origin"));
        }
        None => {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
        }
    }
}

/// Preflight: the key is not sent with it, so it is answered for every origin; the POST that
/// follows is checked against the project's allowed origins.
async fn preflight(headers: HeaderMap) -> Response {
    let mut response = StatusCode::NO_CONTENT.into_response();
    cors_headers(&mut response, headers.get(header::ORIGIN));
    let response_headers = response.headers_mut();
    response_headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, HeaderValue::from_static("POST, OPTIONS"));
    response_headers.insert(
        header::ACCESS_CONTROL_ALLOW_HEADERS,
        HeaderValue::from_static("content-type, content-encoding, authorization, x-api-key, x-pg-api-key, x-session-id, x-request-id, x-user-id"),
    );
    response_headers.insert(header::ACCESS_CONTROL_MAX_AGE, HeaderValue::from_static("86400"));
    response
}

fn error_response(
    status: StatusCode,
    code: &str,
    message: String,
    origin: Option<&HeaderValue>,
    retry_after: Option<u64>,
) -> Response {
    let mut response = (status, axum::Json(json!({"error": {"code": code, "message": message}}))).into_response();
    cors_headers(&mut response, origin);
    if let Some(seconds) = retry_after {
        response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    }
    response
}

fn ingest_error_response(error: &IngestError, origin: Option<&HeaderValue>) -> Response {
    let code = match error.http_status() {
        StatusCode::UNAUTHORIZED => "unauthenticated",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::UNSUPPORTED_MEDIA_TYPE => "unsupported_media_type",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        _ => "invalid_request",
    };
    error_response(error.http_status(), code, error.to_string(), origin, error.retry_after_secs())
}

fn event_key(headers: &HeaderMap, query: &std::collections::HashMap<String, String>) -> Option<ApiKeySecret> {
    key_from_headers(headers)
        .or_else(|| {
            let value = headers.get("x-pg-api-key")?.to_str().ok()?.trim();
            (!value.is_empty()).then(|| ApiKeySecret::new(value))
        })
        .or_else(|| query.get("api_key").filter(|key| !key.is_empty()).map(|key| ApiKeySecret::new(key.as_str())))
}

/// `application/json`, or `text/plain` (what `navigator.sendBeacon` sends for a string body);
/// a missing type is read as JSON too.
fn check_content_type(headers: &HeaderMap) -> Result<(), IngestError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    match essence.as_str() {
        "application/json" | "text/plain" | "" => Ok(()),
        other => Err(IngestError::UnsupportedMediaType(format!(
            "unsupported Content-Type {other:?}: send application/json (or text/plain JSON from sendBeacon)"
        ))),
    }
}

fn origin_allowed(project: &Project, origin: Option<&HeaderValue>) -> bool {
    let Some(origin) = origin.and_then(|origin| origin.to_str().ok()) else {
        return true;
    };
    project.allowed_origins.is_empty()
        || project.allowed_origins.iter().any(|allowed| allowed == "*" || allowed.eq_ignore_ascii_case(origin))
}

/// The parsed batch: valid events and per-index errors.
struct ParsedBatch {
    events: Vec<ProductEvent>,
    errors: Vec<(usize, String)>,
}

fn parse_batch(body: &[u8], now_unix_nano: u64) -> Result<ParsedBatch, IngestError> {
    let entries = sightline_model::event::parse_batch(body, now_unix_nano)
        .map_err(|error| IngestError::BadRequest(error.to_string()))?;
    let mut events = Vec::with_capacity(entries.len());
    let mut errors = Vec::new();
    for (index, entry) in entries.into_iter().enumerate() {
        match entry {
            Ok(event) => events.push(event),
            Err(error) => errors.push((index, error)),
        }
    }
    Ok(ParsedBatch { events, errors })
}

async fn ingest_events(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(query): Query<std::collections::HashMap<String, String>>,
    body: Body,
) -> Response {
    let origin = headers.get(header::ORIGIN).cloned();
    let result = async {
        check_content_type(&headers)?;
        let project = state.ingestor.authenticate(event_key(&headers, &query)).await?;
        if !origin_allowed(&project, origin.as_ref()) {
            return Err(IngestError::PermissionDenied(
                "send events from this origin (not in the project's allowed origins)",
            ));
        }
        let encoding = ContentEncoding::from_headers(&headers)?;
        let max_bytes = state.max_body_bytes;
        let raw = http_body_util::Limited::new(body, max_bytes)
            .collect()
            .await
            .map_err(|error| {
                if error.downcast_ref::<http_body_util::LengthLimitError>().is_some() {
                    IngestError::PayloadTooLarge { limit_bytes: max_bytes }
                } else {
                    IngestError::BadRequest(format!("cannot read body: {error}"))
                }
            })?
            .to_bytes();
        let now = crate::clock::now_unix_nano();
        let prepare_context = state.ingestor.prepare_context();
        let inline = encoding == ContentEncoding::Identity && raw.len() < PARSE_INLINE_MAX_BYTES;
        let prepare = move |project: Project| -> Result<(pipeline::Prepared, Vec<(usize, String)>), IngestError> {
            let parsed = parse_batch(&decompress(raw, encoding, max_bytes)?, now)?;
            let prepared =
                pipeline::prepare_events(&prepare_context, &project, parsed.events, parsed.errors.len() as u64);
            Ok((prepared, parsed.errors))
        };
        let (prepared, errors) = if inline {
            prepare(project)?
        } else {
            tokio::task::spawn_blocking(move || prepare(project)).await.map_err(|error| {
                IngestError::Unavailable { reason: error.to_string(), retry_after: std::time::Duration::from_secs(1) }
            })??
        };
        let report = state.ingestor.submit(prepared).await?;
        Ok::<_, IngestError>((report, errors))
    }
    .await;
    match result {
        Ok((report, errors)) => {
            let body = json!({
                "accepted": report.accepted,
                "rejected": errors.len(),
                "errors": errors.iter().map(|(index, error)| json!({"index": index, "error": error})).collect::<Vec<_>>(),
            });
            let mut response = (StatusCode::ACCEPTED, axum::Json(body)).into_response();
            cors_headers(&mut response, origin.as_ref());
            response
        }
        Err(error) => {
            if matches!(error, IngestError::Overloaded { .. } | IngestError::Unavailable { .. }) {
                tracing::warn!(%error, "Event batch refused");
            }
            ingest_error_response(&error, origin.as_ref())
        }
    }
}
