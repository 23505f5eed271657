//! gRPC metadata as a propagation carrier (tonic `MetadataMap`), and a tonic interceptor that
//! injects the current context and `x-session-id` into outgoing calls.
//!
//! gRPC metadata keys are lower-case ASCII (gRPC over HTTP/2 spec); binary (`-bin`) keys are
//! not used by any supported format and are skipped on extraction.

use opentelemetry::Context;
use opentelemetry::propagation::{Extractor, Injector};
use tonic::metadata::{KeyRef, MetadataKey, MetadataMap, MetadataValue};

/// Writes propagation fields into tonic metadata; values that are not valid metadata are
/// dropped (no format produces them).
pub struct MetadataInjector<'a>(pub &'a mut MetadataMap);

impl Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        let Ok(key) = MetadataKey::from_bytes(key.to_ascii_lowercase().as_bytes()) else { return };
        let Ok(value) = MetadataValue::try_from(value.as_str()) else { return };
        self.0.insert(key, value);
    }
}

/// Reads propagation fields from tonic metadata.
pub struct MetadataExtractor<'a>(pub &'a MetadataMap);

impl Extractor for MetadataExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key.to_ascii_lowercase().as_str()).and_then(|value| value.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0
            .keys()
            .filter_map(|key| match key {
                KeyRef::Ascii(key) => Some(key.as_str()),
                KeyRef::Binary(_) => None,
            })
            .collect()
    }
}

/// Injects `cx` (trace context, baggage) with the global propagator, plus `x-session-id` /
/// `x-user-id` from its baggage, into `metadata`.
pub fn inject(cx: &Context, metadata: &mut MetadataMap) {
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(cx, &mut MetadataInjector(metadata));
    });
    let identity = crate::context::RequestIdentity::from_context(cx);
    let mut injector = MetadataInjector(metadata);
    if let Some(session_id) = identity.session_id {
        injector.set(crate::context::SESSION_ID_HEADER, session_id);
    }
    if let Some(user_id) = identity.user_id {
        injector.set(crate::context::USER_ID_HEADER, user_id);
    }
}

/// Extracts the remote context from incoming metadata with the global propagator.
pub fn extract(metadata: &MetadataMap) -> Context {
    opentelemetry::global::get_text_map_propagator(|propagator| propagator.extract(&MetadataExtractor(metadata)))
}

/// A tonic client interceptor (`Client::with_interceptor(channel, sightline_sdk::propagation::grpc::interceptor)`)
/// that injects the current context; it never fails.
pub fn interceptor(mut request: tonic::Request<()>) -> Result<tonic::Request<()>, tonic::Status> {
    inject(&crate::context::current_context(), request.metadata_mut());
    Ok(request)
}

#[cfg(test)]
mod tests {
    use opentelemetry::KeyValue;
    use opentelemetry::baggage::BaggageExt;
    use opentelemetry::propagation::TextMapPropagator;
    use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};

    use super::*;
    use crate::propagation::{Propagation, composite};

    #[test]
    fn w3c_and_baggage_round_trip_through_metadata() {
        let propagator = composite(&Propagation::DEFAULT);
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx =
            Context::new().with_remote_span_context(span_context).with_baggage([KeyValue::new("session.id", "sess-1")]);
        let mut metadata = MetadataMap::new();
        propagator.inject_context(&cx, &mut MetadataInjector(&mut metadata));
        assert_eq!(
            metadata.get("traceparent").and_then(|value| value.to_str().ok()),
            Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
        );
        let extracted = propagator.extract(&MetadataExtractor(&metadata));
        assert_eq!(extracted.span().span_context().trace_id().to_string(), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(
            extracted.baggage().get("session.id").map(|value| value.as_str().to_owned()).as_deref(),
            Some("sess-1")
        );
        assert!(MetadataExtractor(&metadata).keys().contains(&"traceparent"));
    }

    #[test]
    fn the_interceptor_injects_the_current_context_and_session() {
        crate::propagation::install(&Propagation::DEFAULT);
        let span_context = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").expect("hex"),
            SpanId::from_hex("00f067aa0ba902b7").expect("hex"),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let cx = Context::new()
            .with_remote_span_context(span_context)
            .with_baggage([KeyValue::new("session.id", "sess-grpc"), KeyValue::new("user.id", "u-2")]);
        let request = {
            let _attached = cx.attach();
            interceptor(tonic::Request::new(())).expect("never fails")
        };
        let metadata = request.metadata();
        let text = |key: &str| metadata.get(key).and_then(|value| value.to_str().ok()).map(str::to_owned);
        assert_eq!(text("traceparent").as_deref(), Some("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"));
        assert_eq!(text("x-session-id").as_deref(), Some("sess-grpc"));
        assert_eq!(text("x-user-id").as_deref(), Some("u-2"));
        let extracted = extract(metadata);
        assert_eq!(extracted.span().span_context().span_id().to_string(), "00f067aa0ba902b7");
    }
}
