//! The request identity Sightline correlates on — `session.id`, `user.id` and the request id —
//! carried as W3C baggage next to the trace context, and the current context it is read from.
//!
//! Header names follow the ProductGraph Go client (`X-Session-ID`, `X-Request-ID`,
//! `X-User-ID`); baggage and span attribute keys follow OpenTelemetry semconv (`session.id`,
//! `user.id`); the request id is recorded as `http.request.header.x-request-id` (semconv HTTP
//! header attributes) and travels in baggage as `request.id`.

use opentelemetry::Context;
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// `x-session-id` (header names are case-insensitive; `http` stores them lower-case).
pub const SESSION_ID_HEADER: &str = "x-session-id";
/// `x-request-id`.
pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// `x-user-id`.
pub const USER_ID_HEADER: &str = "x-user-id";
/// Baggage / attribute key for the session (semconv `session.id`).
pub const SESSION_ID_KEY: &str = "session.id";
/// Baggage / attribute key for the user (semconv `user.id`).
pub const USER_ID_KEY: &str = "user.id";
/// Baggage key for the request id.
pub const REQUEST_ID_KEY: &str = "request.id";
/// Span attribute for the request id (semconv `http.request.header.<key>`).
pub const REQUEST_ID_ATTRIBUTE: &str = "http.request.header.x-request-id";

/// Session, user and request ids of the request being served, as far as they are known.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RequestIdentity {
    /// `session.id`.
    pub session_id: Option<String>,
    /// `user.id`.
    pub user_id: Option<String>,
    /// The request id (`X-Request-ID`).
    pub request_id: Option<String>,
}

impl RequestIdentity {
    /// Reads the ids from `cx`'s baggage.
    pub fn from_context(cx: &Context) -> Self {
        let baggage = cx.baggage();
        let read = |key: &str| baggage.get(key).map(|value| value.as_str().to_owned()).filter(|text| !text.is_empty());
        RequestIdentity {
            session_id: read(SESSION_ID_KEY),
            user_id: read(USER_ID_KEY),
            request_id: read(REQUEST_ID_KEY),
        }
    }

    /// The ids of the current context (see [`current_context`]).
    pub fn current() -> Self {
        Self::from_context(&current_context())
    }
}

/// The OpenTelemetry context of the code running now: the current `tracing` span's context when
/// the `tracing-opentelemetry` layer is installed (its span plus the baggage its parent carried),
/// else the attached OpenTelemetry context (which the middleware also sets, so baggage is found
/// either way).
pub fn current_context() -> Context {
    let attached = Context::current();
    let span_cx = tracing::Span::current().context();
    if !span_cx.span().span_context().is_valid() {
        return attached;
    }
    if span_cx.baggage().is_empty() && !attached.baggage().is_empty() {
        let baggage: Vec<opentelemetry::KeyValue> = attached
            .baggage()
            .iter()
            .map(|(key, (value, _))| opentelemetry::KeyValue::new(key.clone(), value.clone()))
            .collect();
        return span_cx.with_baggage(baggage);
    }
    span_cx
}
