//! The server middleware: a tower [`Layer`] (axum, tonic, hyper via `tower::ServiceBuilder`)
//! that starts the server span of every request and records its RED metric.
//!
//! Per request it
//! 1. extracts the remote context with the global propagator (see [`crate::propagation`]);
//! 2. reads `X-Session-ID` and `X-User-ID` (else the `session.id` / `user.id` baggage the caller
//!    sent) and `X-Request-ID`, generating a UUID v4 when absent; the id is put on the request
//!    (so handlers see it) and echoed in the response;
//! 3. starts a `tracing` span with OpenTelemetry HTTP server semconv attributes
//!    (`http.request.method`, `http.route`, `url.path`, `url.scheme`, `user_agent.original`,
//!    `client.address`, later `http.response.status_code`) plus `session.id`, `user.id` and
//!    `http.request.header.x-request-id`, and parents it on the remote context with the three ids
//!    added to its baggage, so downstream calls carry them;
//! 4. records a panic (re-raised after recording, so an outer `CatchPanicLayer` still answers
//!    500) or an inner-service error as an `exception` span event with status ERROR, and a
//!    5xx answer as status ERROR (4xx is not an error for a server span: HTTP semconv);
//! 5. records `http.server.request.duration` (histogram, seconds, semconv buckets).
//!
//! Span names follow HTTP semconv: `{method} {http.route}`, or `{method}` when no route is
//! known. With the `axum` feature the route is axum's `MatchedPath`, present when the layer is
//! added with `Router::layer`.

mod future;

use std::sync::Arc;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use http::{HeaderMap, HeaderValue, Request, Response};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::metrics::{Histogram, Meter};
use opentelemetry::{Context, KeyValue};
use tower::{Layer, Service};
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub use future::ResponseFuture;
pub(crate) use future::record_exception;

use crate::context::{
    REQUEST_ID_HEADER, REQUEST_ID_KEY, RequestIdentity, SESSION_ID_HEADER, SESSION_ID_KEY, USER_ID_HEADER, USER_ID_KEY,
};

/// `http.server.request.duration` bucket boundaries, seconds (HTTP semconv "Metric:
/// http.server.request.duration", advisory explicit buckets).
pub const DURATION_BUCKETS_SECONDS: [f64; 14] =
    [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0];
/// The instrumentation scope name of the middleware's meter.
pub const INSTRUMENTATION_SCOPE: &str = "sightline-sdk";
/// Longest accepted `X-Session-ID` / `X-User-ID` / `X-Request-ID`, bytes; longer values are
/// ignored (and a request id is generated) so a client cannot blow up span and baggage size.
pub const MAX_ID_BYTES: usize = 256;

/// Shared by every clone of the service.
#[derive(Debug)]
struct Shared {
    duration_seconds: Histogram<f64>,
}

/// The tower layer (see the module docs).
#[derive(Debug, Clone)]
pub struct SightlineLayer {
    shared: Arc<Shared>,
}

impl Default for SightlineLayer {
    fn default() -> Self {
        Self::new()
    }
}

impl SightlineLayer {
    /// A layer recording metrics on the global meter provider (set by [`crate::init`]).
    pub fn new() -> Self {
        Self::with_meter(&opentelemetry::global::meter(INSTRUMENTATION_SCOPE))
    }

    /// A layer recording metrics on `meter`.
    pub fn with_meter(meter: &Meter) -> Self {
        let duration_seconds = meter
            .f64_histogram("http.server.request.duration")
            .with_unit("s")
            .with_description("Duration of HTTP server requests.")
            .with_boundaries(DURATION_BUCKETS_SECONDS.to_vec())
            .build();
        SightlineLayer { shared: Arc::new(Shared { duration_seconds }) }
    }
}

impl<S> Layer<S> for SightlineLayer {
    type Service = SightlineService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SightlineService { inner, shared: self.shared.clone() }
    }
}

/// The service [`SightlineLayer`] wraps around an inner service.
#[derive(Debug, Clone)]
pub struct SightlineService<S> {
    inner: S,
    shared: Arc<Shared>,
}

/// A header's value as text when present, non-empty and at most [`MAX_ID_BYTES`].
fn bounded_header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    let text = headers.get(name)?.to_str().ok()?.trim();
    (!text.is_empty() && text.len() <= MAX_ID_BYTES).then_some(text)
}

/// HTTP semconv: `http.request.method` is the known method, or `_OTHER` for anything else
/// (so a client cannot create unbounded metric cardinality).
fn semconv_method(method: &http::Method) -> &'static str {
    match *method {
        http::Method::GET => "GET",
        http::Method::POST => "POST",
        http::Method::PUT => "PUT",
        http::Method::DELETE => "DELETE",
        http::Method::PATCH => "PATCH",
        http::Method::HEAD => "HEAD",
        http::Method::OPTIONS => "OPTIONS",
        http::Method::CONNECT => "CONNECT",
        http::Method::TRACE => "TRACE",
        _ => "_OTHER",
    }
}

#[cfg(feature = "axum")]
fn matched_route<B>(request: &Request<B>) -> Option<String> {
    request.extensions().get::<axum::extract::MatchedPath>().map(|path| path.as_str().to_owned())
}

#[cfg(not(feature = "axum"))]
fn matched_route<B>(_request: &Request<B>) -> Option<String> {
    None
}

/// `client.address`: the first `X-Forwarded-For` hop (semconv prefers forwarded headers), else
/// the peer address axum's `ConnectInfo` recorded.
fn client_address<B>(request: &Request<B>) -> Option<String> {
    if let Some(forwarded) = request.headers().get("x-forwarded-for").and_then(|value| value.to_str().ok())
        && let Some(first) = forwarded.split(',').next().map(str::trim).filter(|hop| !hop.is_empty())
    {
        return Some(first.to_owned());
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(peer)) =
        request.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return Some(peer.ip().to_string());
    }
    None
}

/// The remote context plus the request's ids in its baggage (existing entries kept).
fn context_with_identity(parent: &Context, identity: &RequestIdentity) -> Context {
    let mut entries: Vec<KeyValue> =
        parent.baggage().iter().map(|(key, (value, _))| KeyValue::new(key.clone(), value.clone())).collect();
    let mut set = |key: &'static str, value: &Option<String>| {
        if let Some(value) = value {
            entries.retain(|entry| entry.key.as_str() != key);
            entries.push(KeyValue::new(key, value.clone()));
        }
    };
    set(SESSION_ID_KEY, &identity.session_id);
    set(USER_ID_KEY, &identity.user_id);
    set(REQUEST_ID_KEY, &identity.request_id);
    parent.with_baggage(entries)
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for SightlineService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: std::fmt::Display,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, task: &mut TaskContext<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(task)
    }

    fn call(&mut self, mut request: Request<ReqBody>) -> Self::Future {
        let start = Instant::now();
        let parent = opentelemetry::global::get_text_map_propagator(|propagator| {
            propagator.extract(&opentelemetry_http::HeaderExtractor(request.headers()))
        });
        let from_baggage = RequestIdentity::from_context(&parent);
        let headers = request.headers();
        let session_id = bounded_header(headers, SESSION_ID_HEADER).map(str::to_owned).or(from_baggage.session_id);
        let user_id = bounded_header(headers, USER_ID_HEADER).map(str::to_owned).or(from_baggage.user_id);
        let request_id = match bounded_header(headers, REQUEST_ID_HEADER) {
            Some(request_id) => request_id.to_owned(),
            None => uuid::Uuid::new_v4().to_string(),
        };
        // A generated id is plain ASCII hex, and a received one was read as visible ASCII.
        let request_id_value = HeaderValue::from_str(&request_id).ok();
        if let Some(value) = &request_id_value {
            request.headers_mut().insert(REQUEST_ID_HEADER, value.clone());
        }

        let method = semconv_method(request.method());
        let route = matched_route(&request);
        let span_name = match &route {
            Some(route) => format!("{method} {route}"),
            None => method.to_owned(),
        };
        let scheme = request.uri().scheme_str().unwrap_or("http").to_owned();
        let user_agent = request.headers().get(http::header::USER_AGENT).and_then(|value| value.to_str().ok());
        let span = tracing::info_span!(
            "HTTP request",
            otel.name = %span_name,
            otel.kind = "server",
            http.request.method = method,
            http.route = route.as_deref(),
            url.path = request.uri().path(),
            url.scheme = %scheme,
            user_agent.original = user_agent,
            client.address = client_address(&request),
            session.id = session_id.as_deref(),
            user.id = user_id.as_deref(),
            "http.request.header.x-request-id" = %request_id,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        let identity = RequestIdentity { session_id, user_id, request_id: Some(request_id) };
        let cx = context_with_identity(&parent, &identity);
        // Fails only when no OpenTelemetry layer is installed; the attached context below
        // still carries the ids then.
        let _ = span.set_parent(cx.clone());

        let mut metric_attributes =
            vec![KeyValue::new("http.request.method", method), KeyValue::new("url.scheme", scheme)];
        if let Some(route) = route {
            metric_attributes.push(KeyValue::new("http.route", route));
        }
        let inner = {
            let _attached = cx.clone().attach();
            let _entered = span.enter();
            self.inner.call(request)
        };
        ResponseFuture::new(
            inner,
            future::RequestState {
                span,
                cx,
                request_id: request_id_value,
                start,
                metric_attributes,
                duration_seconds: self.shared.duration_seconds.clone(),
            },
        )
    }
}

#[cfg(test)]
mod tests;

/// Records an `exception` event and status ERROR on the current `tracing` span.
pub(crate) fn record_exception_on_current_span(exception_type: &str, message: &str) {
    future::record_exception(&tracing::Span::current(), exception_type, message);
}

#[cfg(test)]
mod tower_tests;
