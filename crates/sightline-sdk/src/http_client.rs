//! Outgoing HTTP calls: a `reqwest-middleware` middleware that starts a client span (HTTP
//! semconv: `http.request.method`, `server.address`, `server.port`, `url.full`,
//! `http.response.status_code`) and injects its context with the global propagator, plus
//! `X-Session-ID`, `X-User-ID` and `X-Request-ID` from the current baggage.
//!
//! ```ignore
//! let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
//!     .with(sightline_sdk::http_client::PropagationMiddleware)
//!     .build();
//! ```

use http::{Extensions, HeaderValue};
use opentelemetry::baggage::BaggageExt;
use opentelemetry::trace::{Status, TraceContextExt};
use reqwest_middleware::{Middleware, Next};
use tracing::Instrument;
use tracing::field::Empty;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::{REQUEST_ID_HEADER, RequestIdentity, SESSION_ID_HEADER, USER_ID_HEADER};

/// The middleware (see the module docs).
#[derive(Debug, Clone, Copy, Default)]
pub struct PropagationMiddleware;

/// A client with [`PropagationMiddleware`] around `client`.
pub fn client(client: reqwest::Client) -> reqwest_middleware::ClientWithMiddleware {
    reqwest_middleware::ClientBuilder::new(client).with(PropagationMiddleware).build()
}

/// Injects the trace context of `cx` and its request identity into `headers` (for clients
/// other than `reqwest`).
pub fn inject_headers(cx: &opentelemetry::Context, headers: &mut http::HeaderMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut opentelemetry_http::HeaderInjector(headers));
    });
    let identity = RequestIdentity::from_context(cx);
    for (header, value) in [
        (SESSION_ID_HEADER, identity.session_id),
        (USER_ID_HEADER, identity.user_id),
        (REQUEST_ID_HEADER, identity.request_id),
    ] {
        if let Some(value) = value.and_then(|value| HeaderValue::from_str(&value).ok())
            && !headers.contains_key(header)
        {
            headers.insert(header, value);
        }
    }
}

#[async_trait::async_trait]
impl Middleware for PropagationMiddleware {
    async fn handle(
        &self,
        mut request: reqwest::Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let method = request.method().as_str().to_owned();
        let url = request.url();
        let mut redacted = url.clone();
        // semconv: url.full must not carry credentials.
        let _ = redacted.set_username("");
        let _ = redacted.set_password(None);
        let span = tracing::info_span!(
            "HTTP client request",
            otel.name = %method,
            otel.kind = "client",
            http.request.method = %method,
            server.address = url.host_str(),
            server.port = url.port_or_known_default(),
            url.full = %redacted,
            http.response.status_code = Empty,
            error.type = Empty,
        );
        let parent = crate::context::current_context();
        let span_cx = span.context();
        // Without the OpenTelemetry layer the span has no context of its own: pass the parent's.
        let cx = if span_cx.span().span_context().is_valid() { span_cx } else { parent.clone() };
        let cx = if cx.baggage().is_empty() && !parent.baggage().is_empty() {
            let entries: Vec<opentelemetry::KeyValue> = parent
                .baggage()
                .iter()
                .map(|(key, (value, _))| opentelemetry::KeyValue::new(key.clone(), value.clone()))
                .collect();
            cx.with_baggage(entries)
        } else {
            cx
        };
        inject_headers(&cx, request.headers_mut());
        let result = next.run(request, extensions).instrument(span.clone()).await;
        match &result {
            Ok(response) => {
                let status = response.status().as_u16();
                span.record("http.response.status_code", i64::from(status));
                // HTTP semconv: for client spans every 4xx and 5xx is an error.
                if status >= 400 {
                    span.record("error.type", status.to_string());
                    span.set_status(Status::error(format!("HTTP {status}")));
                }
            }
            Err(error) => {
                span.record("error.type", "transport");
                crate::middleware::record_exception(&span, "reqwest_middleware::Error", &error.to_string());
            }
        }
        result
    }
}
