//! The middleware's response future: polls the inner service inside the request's span and
//! context, then records the outcome (status, exception, duration metric).

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};
use std::time::Instant;

use http::{HeaderValue, Response};
use opentelemetry::metrics::Histogram;
use opentelemetry::trace::Status;
use opentelemetry::{Context, KeyValue};
use pin_project_lite::pin_project;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::context::REQUEST_ID_HEADER;

/// What the future needs to finish the request's telemetry.
pub(super) struct RequestState {
    pub(super) span: tracing::Span,
    pub(super) cx: Context,
    pub(super) request_id: Option<HeaderValue>,
    pub(super) start: Instant,
    pub(super) metric_attributes: Vec<KeyValue>,
    pub(super) duration_seconds: Histogram<f64>,
}

pin_project! {
    /// Future returned by [`super::SightlineService`].
    pub struct ResponseFuture<F> {
        #[pin]
        inner: F,
        state: Option<RequestState>,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, state: RequestState) -> Self {
        ResponseFuture { inner, state: Some(state) }
    }
}

/// Records an `exception` span event (semconv "Exceptions": `exception.type`,
/// `exception.message`) and status ERROR.
pub(crate) fn record_exception(span: &tracing::Span, exception_type: &str, message: &str) {
    span.add_event(
        "exception",
        vec![
            KeyValue::new("exception.type", exception_type.to_owned()),
            KeyValue::new("exception.message", message.to_owned()),
        ],
    );
    span.set_status(Status::error(message.to_owned()));
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(text) = payload.downcast_ref::<&str>() {
        (*text).to_owned()
    } else if let Some(text) = payload.downcast_ref::<String>() {
        text.clone()
    } else {
        "panic with a non-string payload".to_owned()
    }
}

impl RequestState {
    fn finish(self, status_code: u16, error_type: Option<&str>) {
        self.span.record("http.response.status_code", i64::from(status_code));
        let mut attributes = self.metric_attributes;
        attributes.push(KeyValue::new("http.response.status_code", i64::from(status_code)));
        if let Some(error_type) = error_type {
            self.span.record("error.type", error_type);
            attributes.push(KeyValue::new("error.type", error_type.to_owned()));
        }
        self.duration_seconds.record(self.start.elapsed().as_secs_f64(), &attributes);
    }
}

impl<F, ResBody, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<ResBody>, E>>,
    E: std::fmt::Display,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, task: &mut TaskContext<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let Some(state) = this.state.as_ref() else {
            // Polled after completion: the inner future decides (usually a panic of its own).
            return this.inner.poll(task);
        };
        let polled = {
            let _attached = state.cx.clone().attach();
            let _entered = state.span.enter();
            let inner = this.inner;
            catch_unwind(AssertUnwindSafe(|| inner.poll(task)))
        };
        match polled {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(mut response))) => {
                let Some(state) = this.state.take() else { return Poll::Ready(Ok(response)) };
                let status = response.status();
                if let Some(request_id) = &state.request_id {
                    response.headers_mut().insert(REQUEST_ID_HEADER, request_id.clone());
                }
                if status.is_server_error() {
                    state.span.set_status(Status::error(format!("HTTP {}", status.as_u16())));
                    let code = status.as_u16().to_string();
                    state.finish(status.as_u16(), Some(&code));
                } else {
                    state.finish(status.as_u16(), None);
                }
                Poll::Ready(Ok(response))
            }
            Ok(Poll::Ready(Err(error))) => {
                if let Some(state) = this.state.take() {
                    let message = error.to_string();
                    let exception_type = std::any::type_name::<E>();
                    record_exception(&state.span, exception_type, &message);
                    state.finish(500, Some(exception_type));
                }
                Poll::Ready(Err(error))
            }
            Err(payload) => {
                if let Some(state) = this.state.take() {
                    record_exception(&state.span, "panic", &panic_message(payload.as_ref()));
                    state.finish(500, Some("panic"));
                }
                resume_unwind(payload)
            }
        }
    }
}
